"""The workbench's sweeps (``/api/sweeps`` and the Sweeps tab) against a real server on
127.0.0.1, a real SQLite file shared with the CLI, a real process pool and a headless
Chromium.

A sweep stored by ``ocplan sweep`` shows in the workbench as its run computed it; one run
from the workbench is checked whole before it starts (one line per problem), skips what
is stored, can be cancelled, and shows in ``ocplan sweeps``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml

from browserkit import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from clikit import run
from ocplan.catalog.catalog import load_catalog
from ocplan.reports.summary import SWEEP_COLUMNS_BY_KIND, row_labels
from ocplan.store.db import open_store
from ocplan.sweep.runner import DELAY_ENV, run_sweep
from ocplan.sweep.spec import parse_sweep
from ocplan.sweep.stored import read_sweep
from ocplan.web.app import create_app
from ocplan.web.sweep_routes import MAX_WEB_SWEEP_TASKS
from sweepkit import pinned_sweep_env

if TYPE_CHECKING:
    from playwright.sync_api import Browser

#: 1 model x 1 chip x 2 sizes: two searches of well under a second each.
PAIR: dict[str, Any] = {
    "name": "pair", "models": ["llama3-8b"], "chips": ["h100-sxm-80gb"],
    "cluster_sizes": [8, 16], "global_batch": 64, "seq_len": 2048, "top_k": 2}
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module", autouse=True)
def _clean_env() -> Iterator[None]:
    with pinned_sweep_env("test-web-sweeps"):
        yield


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store where the command line has run sweep ``pair``."""
    path = tmp_path_factory.mktemp("web-sweeps") / "ocplan.db"
    with open_store(str(path)) as store:
        report = run_sweep(parse_sweep(yaml.safe_dump(PAIR), "pair.yaml"), store, workers=2,
                           catalog=load_catalog())
    assert not report.failed
    return path


@pytest.fixture(scope="module")
def base(serve: Any, db: Path) -> str:
    return str(serve(create_app(f"sqlite:///{db}")))


@pytest.fixture
def client(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=60) as c:
        yield c


def text_of(**changes: Any) -> str:
    return yaml.safe_dump(PAIR | changes, sort_keys=False)


def finished(client: httpx.Client, job: dict[str, Any], limit_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    while job["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
        job = client.get(f"/api/jobs/{job['id']}").json()
    return job


def test_a_sweep_of_the_command_line_shows_as_it_ran(client: httpx.Client, db: Path) -> None:
    listing = client.get("/api/sweeps").json()
    assert [(s["name"], s["kind"], s["tasks"], s["stored"]) for s in listing["sweeps"]] == [
        ("pair", "training", 2, 2)]
    example = listing["example"]
    assert example["name"] == "sweep-small.yaml"
    assert parse_sweep(example["text"], example["name"]).spec.name == "small"

    shown = client.get("/api/sweeps/pair").json()
    with open_store(str(db)) as store:
        want = read_sweep(store, "pair").as_json()
    assert shown["results"] == want["results"]
    assert shown["columns"] == row_labels(SWEEP_COLUMNS_BY_KIND["training"])
    (trace,) = shown["figures"]["sweep"]["data"]
    assert trace["x"] == [8, 16]
    assert trace["y"] == [r["best"]["tokens_per_s_per_chip"] for r in want["results"]]

    # its file, as the editor opens it, is the spec it ran
    assert parse_sweep(shown["text"], "pair.yaml").spec.model_dump() == want["spec"] | {
        "servers": None, "systems": None}
    missing = client.get("/api/sweeps/nope")
    assert missing.status_code == 404
    assert missing.json() == {"detail": ["no sweep nope"]}


@pytest.mark.parametrize(("body", "needle"), [
    ({"text": text_of(systems=["/etc/passwd"], chips=None)}, "systems = '/etc/passwd'"),
    ({"text": text_of(cluster_sizes=list(range(8, 8 * (MAX_WEB_SWEEP_TASKS + 2), 8)))},
     f"tasks = {MAX_WEB_SWEEP_TASKS + 1}: more than the {MAX_WEB_SWEEP_TASKS}"),
    ({"name": "typo.yaml", "text": text_of(chips=["h100-sxm-80gbx"])},
     "typo.yaml: chips[0] = 'h100-sxm-80gbx': unknown accelerator id"),
    ({"text": "name: [unclosed\n"}, "sweep: malformed YAML at line 2"),
    ({"name": "s.yaml"}, "request: text"),
])
def test_a_bad_sweep_is_refused_before_it_runs(client: httpx.Client, body: dict[str, Any],
                                               needle: str) -> None:
    if "systems" in needle:
        body = {"text": body["text"].replace("chips: null\n", "")}
    got = client.post("/api/sweeps", json=body)
    assert got.status_code == 422, got.text
    assert any(needle in line for line in got.json()["detail"]), got.json()
    assert "nope" not in {s["name"] for s in client.get("/api/sweeps").json()["sweeps"]}


def test_a_sweep_run_here_skips_what_is_stored_and_shows_in_the_cli(
        client: httpx.Client, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    started = client.post("/api/sweeps", json={"name": "more.yaml", "text": text_of(
        name="more", cluster_sizes=[16, 32])})
    assert started.status_code == 202, started.text
    job = finished(client, started.json())
    assert job["status"] == "done", job
    result = job["result"]
    assert (result["tasks"], result["skipped"], result["ran"], result["failed"]) == (2, 1, 1, 0)
    assert result["results"] == client.get("/api/sweeps/more").json()["results"]
    # the size pair stored is the same search, so the same stored row
    pair = client.get("/api/sweeps/pair").json()["results"]
    assert result["results"][0]["best"] == pair[1]["best"]
    rc, out, err = run(capsys, "sweeps", "more", "--db", db, "-f", "json")
    assert rc == 0, err
    assert json.loads(out)["results"] == result["results"]


def test_a_sweep_is_forgotten_but_its_results_stay(client: httpx.Client, db: Path) -> None:
    started = client.post("/api/sweeps", json={"text": text_of(name="brief",
                                                                cluster_sizes=[8])})
    assert finished(client, started.json())["status"] == "done"
    with open_store(str(db)) as store:
        results = store.count()
    gone = client.request("DELETE", "/api/sweeps/brief", headers=JSON)
    assert gone.status_code == 200
    assert gone.json() == {"deleted": "brief"}
    assert client.get("/api/sweeps/brief").status_code == 404
    again = client.request("DELETE", "/api/sweeps/brief", headers=JSON)
    assert again.status_code == 404
    with open_store(str(db)) as store:
        assert store.count() == results
    assert "pair" in {s["name"] for s in client.get("/api/sweeps").json()["sweeps"]}


def test_a_running_sweep_can_be_cancelled(client: httpx.Client,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DELAY_ENV, "3")  # each task sleeps 3 s before its search
    started = client.post("/api/sweeps", json={"text": text_of(
        name="slow", cluster_sizes=[64, 128, 256])}).json()
    time.sleep(0.5)
    cancelled = client.request("DELETE", f"/api/jobs/{started['id']}", headers=JSON)
    assert cancelled.status_code == 200
    job = finished(client, cancelled.json())
    assert job["status"] == "cancelled", job
    # a cancelled run records no sweep (its finished tasks stay stored for a rerun)
    assert client.get("/api/sweeps/slow").status_code == 404


@needs_chromium
def test_the_sweeps_tab_shows_and_runs_sweeps(base: str, client: httpx.Client,
                                              tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    pair = client.get("/api/sweeps/pair").json()
    with sync_playwright() as pw:
        browser: Browser = pw.chromium.launch(executable_path=str(CHROMIUM),
                                              args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(base + "/#sweeps")
        page.wait_for_selector('body[data-ready="1"]')
        page.wait_for_selector("#swp-pick option[value='pair']", state="attached")
        assert "name: small" in page.input_value("#swp-text")  # the example to edit
        page.select_option("#swp-pick", "pair")
        page.wait_for_selector("#plot-sweep .main-svg")
        rows = page.locator("#swp-table tbody tr")
        assert rows.count() == 2
        for i, r in enumerate(pair["results"]):
            cells = rows.nth(i).locator("td")
            assert cells.nth(3).text_content() == str(r["chips"])
            assert cells.nth(5).text_content() == r["best"]["layout"]
        headings = page.locator("#swp-table thead th").all_text_contents()
        assert headings[:6] == ["#", "model", "hardware", "chips", "status", "best layout"]
        assert "tokens/s per chip" in headings

        # a file of system paths: refused, the line naming the field
        page.fill("#swp-text", text_of(name="local", chips=None, systems=["a.yaml"])
                  .replace("chips: null\n", ""))
        page.click("#swp-start")
        page.wait_for_selector("#swp-errors:not([hidden])")
        assert "systems = 'a.yaml'" in page.text_content("#swp-errors")

        page.fill("#swp-text", text_of(name="browser", cluster_sizes=[8]))
        page.click("#swp-start")
        page.wait_for_selector("#swp-status:has-text('done')", timeout=120_000)
        assert "1 already stored, 0 run, 0 failed" in page.text_content("#swp-status")
        assert page.input_value("#swp-pick") == "browser"
        assert page.locator("#swp-table tbody tr").count() == 1
        assert page.locator("#swp-errors").is_hidden()
        page.screenshot(path=str(tmp_path / "sweeps.png"), full_page=True)
        # its file back in the editor, then forgotten: gone from the list
        page.fill("#swp-text", "")
        page.click("#swp-edit")
        assert "name: browser" in page.input_value("#swp-text")
        assert page.input_value("#swp-name") == "browser.yaml"
        page.click("#swp-forget")
        page.wait_for_selector("#swp-status:has-text('forgot sweep browser')")
        page.wait_for_selector("#swp-pick option[value='browser']", state="detached")
        browser.close()
    assert errors == []
