"""The Match page and ``/api/match`` (ocplan.web.match_routes, issue 12 item 3).

Over HTTP against a real server: the endpoint answers what :func:`ocplan.api.run_match`
answers, with the perf/W against perf/price figure (one point per platform that serves
the mix and has a price); bad bodies get 400 and bad fields 422 with the field named.
In headless Chromium (the system's, as the other browser tests): the page builds its
form from the declarations and the example mix, runs a match, shows the platforms
ranked by TCO and the chart's points, and raising one platform's price moves it exactly
where its new TCO belongs; an uploaded mix fills the form; the CSV holds every platform.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml

from browserkit import needs_chromium
from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.matching import ARCHETYPES, MatchRequest
from ocplan.web.app import create_app

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[1]
MIX_FILE = ROOT / "examples" / "cloud-mix.yaml"
MIX: dict[str, Any] = yaml.safe_load(MIX_FILE.read_text(encoding="utf-8"))
TIMEOUT_MS = 30_000
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def base(serve: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    db = tmp_path_factory.mktemp("match") / "scenarios.db"
    return str(serve(create_app(f"sqlite:///{db}", job_workers=1, pool_workers=1)))


def _post(base: str, path: str, body: Any) -> httpx.Response:
    return httpx.post(base + path, json=body, timeout=60)


# ---- the endpoint -----------------------------------------------------------------------


def test_endpoint_answers_what_the_api_answers(base: str) -> None:
    answer = _post(base, "/api/match", MIX)
    assert answer.status_code == 200, answer.text
    found = answer.json()
    expected = api.run_match(load_catalog(), MIX).as_json()
    assert [p["platform"] for p in found["platforms"]] == \
        [p["platform"] for p in expected["platforms"]]
    assert [p["tco"] for p in found["platforms"]] == \
        pytest.approx([p["tco"] for p in expected["platforms"]])
    served = [p for p in found["platforms"] if p["feasible"]]
    tcos = [p["tco"] for p in served]
    assert tcos == sorted(tcos)  # the mix's objective is tco
    traces = found["figures"]["pareto"]["data"]
    plotted = sorted(name for t in traces for name in t["text"])
    assert plotted == sorted(p["platform"] for p in served if p["perf_per_cost"])
    # the chart plots exactly each platform's perf/cost and perf/kW
    by_id = {p["platform"]: p for p in served}
    for trace in traces:
        for name, x, y in zip(trace["text"], trace["x"], trace["y"], strict=True):
            assert (x, y) == (by_id[name]["perf_per_cost"], by_id[name]["perf_per_kW"])


def test_endpoint_refuses_bad_bodies_with_the_field(base: str) -> None:
    not_json = httpx.post(base + "/api/match", content=b"{not json", headers=JSON, timeout=30)
    assert not_json.status_code == 400
    assert "not JSON" in not_json.json()["detail"][0]
    bad = _post(base, "/api/match", MIX | {"constraints": {"rack_power": "20 parsecs"}})
    assert bad.status_code == 422
    assert any("rack_power" in line for line in bad.json()["detail"])
    unknown = _post(base, "/api/match", MIX | {"demand": {"mining": 3}})
    assert unknown.status_code == 422
    assert any("mining" in line for line in unknown.json()["detail"])
    listed = _post(base, "/api/match", [MIX])
    assert listed.status_code == 422


def test_form_declares_every_request_field(base: str) -> None:
    form = httpx.get(base + "/api/match/form", timeout=30).json()
    assert [a["id"] for a in form["archetypes"]] == list(ARCHETYPES)
    assert all(a["unit"] for a in form["archetypes"])
    constraints = {f["name"]: f for f in form["constraints"]}
    assert set(constraints) == set(MIX["constraints"]) | {"min_lanes"}
    assert constraints["isa"]["kind"] == "choices"
    assert set(MIX["constraints"]["isa"]) <= set(constraints["isa"]["choices"])
    assert constraints["rack_power"]["kind"] == "quantity"
    assert constraints["rack_power"]["unit"] == "W"
    settings = {f["name"] for f in form["settings"]}
    # with the mix's own parts (name, demand, constraints, prices) the form covers
    # every field of a request
    assert settings | {"name", "demand", "constraints", "prices"} == \
        set(MatchRequest.model_fields)
    ids = {p["id"] for p in form["platforms"]}
    assert set(MIX["prices"]) - {"default"} <= ids
    assert form["example"] == MIX


def test_parse_reads_an_uploaded_mix(base: str) -> None:
    text = MIX_FILE.read_text(encoding="utf-8")
    parsed = _post(base, "/api/match/parse", {"name": "cloud-mix.yaml", "text": text})
    assert parsed.status_code == 200
    assert parsed.json() == MIX
    broken = _post(base, "/api/match/parse",
                   {"name": "mine.yaml", "text": text.replace("pue: 1.3", "pue: 0.5")})
    assert broken.status_code == 422
    assert broken.json()["detail"][0].startswith("mine.yaml: pue")


# ---- the page -----------------------------------------------------------------------------


@pytest.fixture
def page(browser: Browser, base: str) -> Iterator[Page]:
    """The Match page; no request may leave the server and no script may fail."""
    context = browser.new_context(viewport={"width": 1500, "height": 1000},
                                  accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    blocked: list[str] = []
    errors: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(base):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    p = context.new_page()
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    p.goto(base + "/match")
    p.wait_for_selector('body[data-ready="1"]')
    yield p
    context.close()
    assert blocked == []
    assert errors == []


def _run(page: Page) -> None:
    """Press Match and wait for its answer (the status is cleared first, so an earlier
    answer cannot pass for this one)."""
    page.evaluate("document.querySelector('#mt-status').dataset.state = ''")
    page.click("#mt-run")
    page.wait_for_selector('#mt-status[data-state="done"]')


def _ranked(page: Page) -> list[dict[str, float | str]]:
    """The ranked table as raw values: platform, servers, capex, tco."""
    rows = []
    for row in page.locator("#mt-table tbody tr").all():
        values = {key: row.locator(f'td[data-key="{key}"]').get_attribute("data-value") or ""
                  for key in ("platform", "servers", "capex", "tco")}
        rows.append({"platform": values["platform"], "servers": float(values["servers"]),
                     "capex": float(values["capex"]), "tco": float(values["tco"])})
    return rows


@needs_chromium
def test_page_ranks_platforms_and_a_price_moves_one(page: Page) -> None:
    assert page.input_value("#mt-name") == MIX["name"]  # the example fills the form
    _run(page)
    before = _ranked(page)
    assert len(before) > 10
    tcos = [r["tco"] for r in before]
    assert tcos == sorted(tcos)
    page.wait_for_selector("#plot-match .main-svg")
    points = page.locator("#plot-match .scatterlayer .point").count()
    assert points == len(before)  # every platform that serves the mix has a price
    assert page.locator("#mt-refused tbody tr").count() >= 1
    # Raise the leader's price so that its TCO passes the runner-up's by 1 %: its fleet
    # does not change, its TCO grows by the raise times its servers, every other TCO
    # stays, and it lands where its new TCO sorts.
    first, second = before[0], before[1]
    price = first["capex"] / first["servers"]
    raise_by = math.ceil((second["tco"] * 1.01 - first["tco"]) / first["servers"])
    row = page.locator(f'.mt-price[data-key="{first["platform"]}"]')
    if row.count() == 0:
        page.click("#mt-add-price")
        page.locator(".mt-price-key").last.fill(str(first["platform"]))
        row = page.locator(f'.mt-price[data-key="{first["platform"]}"]')
    row.locator(".mt-price-value").fill(f"{price + raise_by:.0f}")
    _run(page)
    after = _ranked(page)
    moved = {r["platform"]: r for r in after}[first["platform"]]
    assert moved["servers"] == first["servers"]
    assert moved["tco"] == pytest.approx(first["tco"] + raise_by * first["servers"])
    others_before = [r for r in before if r["platform"] != first["platform"]]
    others_after = [r for r in after if r["platform"] != first["platform"]]
    assert others_after == others_before
    place = sum(r["tco"] < moved["tco"] for r in others_after)
    assert after[place]["platform"] == first["platform"]
    assert after[0]["platform"] == second["platform"]
    assert place >= 1


@needs_chromium
def test_page_uploads_a_mix_shows_errors_and_exports_csv(page: Page, tmp_path: Path) -> None:
    mine = MIX | {"name": "uploaded mix", "demand": {"big-data": 5000},
                  "constraints": {"isa": ["arm64"]}, "prices": {"default": 10000}}
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(mine), encoding="utf-8")
    page.set_input_files("#mt-upload", str(path))
    page.wait_for_selector("#mt-status:has-text('Loaded mine.yaml')")
    assert page.input_value("#mt-name") == "uploaded mix"
    assert page.input_value("#mt-demand-big-data") == "5000"
    assert page.input_value("#mt-demand-cloud-throughput") == ""
    assert page.locator(".mt-price").count() == 0
    _run(page)
    isas = page.locator('#mt-table tbody td[data-key="isa"]').all_inner_texts()
    assert isas
    assert set(isas) == {"arm64"}
    with page.expect_download() as info:
        page.click("#mt-csv")
    saved = tmp_path / "match.csv"
    info.value.save_as(saved)
    with saved.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    served = page.locator("#mt-table tbody tr").count()
    refused = page.locator("#mt-refused tbody tr").count()
    assert len(rows) == served + refused
    assert [r["platform"] for r in rows[:served]] == \
        page.locator('#mt-table tbody td[data-key="platform"]').all_inner_texts()
    # a bad value reaches the API as typed and its one-line message is shown
    page.fill("#mt-c-rack-power", "20 parsecs")
    page.evaluate("document.querySelector('#mt-status').dataset.state = ''")
    page.click("#mt-run")
    page.wait_for_selector('#mt-status[data-state="error"]')
    assert "rack_power" in page.inner_text("#mt-errors")


def test_page_is_served_with_its_assets_and_nothing_from_elsewhere(base: str) -> None:
    page = httpx.get(base + "/match", timeout=30)
    assert page.status_code == 200
    assert 'data-scripts="static/plotly.min.js static/common.js static/match.js"' in page.text
    for name in ("match.html", "common.js", "match.js", "match.css"):
        asset = httpx.get(f"{base}/static/{name}", timeout=30)
        assert asset.status_code == 200, name
        assert "://" not in asset.text, name  # offline: no CDN, no other host


@needs_chromium
def test_the_workbench_links_to_the_match_page(page: Page, base: str) -> None:
    page.goto(base + "/")
    page.click("#match-link")
    page.wait_for_selector('body[data-ready="1"]')
    assert page.url == base + "/match"
    assert page.input_value("#mt-name") == MIX["name"]


#: A mix without prices (a match QA pass, session 43).
UNPRICED: dict[str, Any] = {"name": "unpriced mix", "demand": {"cloud-throughput": 100},
                            "electricity_per_kwh": 0.12}


@needs_chromium
def test_an_unpriced_match_shows_per_kw_and_says_why_the_chart_is_empty(
        page: Page, tmp_path: Path) -> None:
    """The per-kW column under its own key, the platforms not modelled counted in the
    status line, and a chart without points that says why."""
    path = tmp_path / "unpriced.yaml"
    path.write_text(yaml.safe_dump(UNPRICED), encoding="utf-8")
    page.set_input_files("#mt-upload", str(path))
    page.wait_for_selector("#mt-status:has-text('Loaded unpriced.yaml')")
    page.evaluate("document.querySelector('#mt-status').dataset.state = ''")
    page.click("#mt-run")
    page.wait_for_selector('#mt-status[data-state="done"]')
    per_kw = page.locator('#mt-table tbody td[data-key="perf_per_kW"]').first
    assert float(per_kw.get_attribute("data-value") or "nan") > 0
    assert page.locator('#mt-table td[data-key="perf_per_watt"]').count() == 0
    assert "not modelled" in page.inner_text("#mt-status")
    page.wait_for_selector("#plot-match .main-svg")
    assert "No points" in page.inner_text("#plot-match")
