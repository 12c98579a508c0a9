"""The workbench's costs carry the currency the server runs with (session 9, QA item 3).

Before: ``ocplan --currency EUR serve`` ignored the flag; the API answered costs as bare
numbers (and /api/infer dropped a price altogether, where ``ocplan infer`` answers the
cost of a million output tokens); the page showed ``cost_to_train`` as "51,530". Now every
answer holding a cost carries ``currency`` as the CLI's JSON does, GET /api/settings names
it, and the page prints it beside each cost and each price input.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from browserkit import needs_chromium
from ocplan.cli.main import main
from ocplan.reports.summary import COMPARE_ROWS, row_labels
from ocplan.web.app import create_app

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CURRENCY = "EUR"
CHIPS = 8
SMALL: dict[str, Any] = {"model": "llama3-8b", "chip": "h100-sxm-80gb", "chips": CHIPS}
TRAIN = SMALL | {"global_batch": 64, "seq_len": 4096, "train_tokens": 1e12}
PRICE = 2.5
SECONDS_PER_HOUR = 3600.0
#: Output tokens a cost_per_mtok is quoted for.
TOKENS_PER_MTOK = 1e6


@pytest.fixture(scope="module")
def base(serve: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    db = tmp_path_factory.mktemp("qa2-web") / "scenarios.db"
    return str(serve(create_app(f"sqlite:///{db}", currency=CURRENCY)))


@pytest.fixture
def client(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=60) as c:
        yield c


def post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = client.post(path, json=body)
    assert resp.status_code in (200, 202), resp.text
    data: dict[str, Any] = resp.json()
    return data


def job_result(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    job = post(client, path, body)
    deadline = time.monotonic() + 60
    while job["status"] not in ("done", "cancelled", "error"):
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
        job = client.get(f"/api/jobs/{job['id']}").json()
    assert job["status"] == "done", job
    result: dict[str, Any] = job["result"]
    return result


# ---- the API ---------------------------------------------------------------------------

def test_settings_name_the_servers_currency(client: httpx.Client) -> None:
    assert client.get("/api/settings").json()["currency"] == CURRENCY


def test_an_estimate_with_a_price_says_its_currency(client: httpx.Client) -> None:
    priced = post(client, "/api/estimate", TRAIN | {"price_per_chip_hour": PRICE})
    assert priced["currency"] == CURRENCY
    # the cost is the chips' hours at the price
    hours = priced["time_to_train_s"] / SECONDS_PER_HOUR
    assert priced["cost_to_train"] == pytest.approx(CHIPS * PRICE * hours)
    unpriced = post(client, "/api/estimate", TRAIN)
    assert "cost_to_train" not in unpriced
    assert "currency" not in unpriced  # nothing to label, as the CLI


def test_infer_with_a_price_answers_the_cost_per_million_tokens(client: httpx.Client
                                                               ) -> None:
    res = post(client, "/api/infer", SMALL | {"price_per_chip_hour": PRICE})
    assert res["feasible"]
    assert res["currency"] == CURRENCY
    per_token_s = 1.0 / res["output_tokens_per_s"]
    expected = CHIPS * PRICE / SECONDS_PER_HOUR * per_token_s * TOKENS_PER_MTOK
    assert res["cost_per_mtok"] == pytest.approx(expected)
    bare = post(client, "/api/infer", SMALL)
    assert "cost_per_mtok" not in bare
    assert "currency" not in bare


def test_search_and_compare_jobs_say_their_currency(client: httpx.Client) -> None:
    found = job_result(client, "/api/search",
                       TRAIN | {"price_per_chip_hour": PRICE, "top_k": 2})
    assert found["currency"] == CURRENCY
    assert all(row["cost_to_train"] > 0 for row in found["top"])
    compared = job_result(client, "/api/compare", {
        "model": "llama3-8b", "systems": [{"chip": "h100-sxm-80gb"}, {"chip": "mi300x"}],
        "chips": 8, "global_batch": 64, "seq_len": 4096, "train_tokens": 1e12,
        "price_per_chip_hour": [PRICE]})
    assert compared["currency"] == CURRENCY
    assert all(r["cost_to_train"] > 0 for r in compared["systems"])
    # the rows the page shows, as the CLI table and the report (ocplan.reports.summary)
    assert compared["rows"] == row_labels(COMPARE_ROWS)
    assert "currency" not in job_result(client, "/api/search", TRAIN | {"top_k": 1})


# ---- ocplan serve hands the app its --currency -------------------------------------------

@pytest.mark.parametrize(("argv", "currency"), [([], "USD"), (["--currency", "CHF"], "CHF")])
def test_serve_runs_the_app_in_the_currency_given(monkeypatch: pytest.MonkeyPatch,
                                                  argv: list[str], currency: str) -> None:
    import uvicorn

    import ocplan.web.app as web_app

    monkeypatch.delenv("OCPLAN_CURRENCY", raising=False)
    given: dict[str, Any] = {}

    def app_of(*args: Any, **kwargs: Any) -> str:
        given.update(kwargs)
        return "app"

    monkeypatch.setattr(web_app, "create_app", app_of)
    # a served process restores the collector's thresholds: not this test process's
    monkeypatch.setattr("ocplan.cli.reporting.restore_collector", lambda: None)
    monkeypatch.setattr(uvicorn, "run", lambda app, **_: given.setdefault("ran", app))
    assert main([*argv, "serve"]) == 0
    assert given["ran"] == "app"
    assert given["currency"] == currency


# ---- the page ----------------------------------------------------------------------------

@needs_chromium
def test_the_page_prints_costs_and_prices_with_the_currency(base: str) -> None:
    from playwright.sync_api import sync_playwright

    from browserkit import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as pw:
        browser: Browser = pw.chromium.launch(executable_path=str(CHROMIUM),
                                              args=CHROMIUM_ARGS)
        try:
            page: Page = browser.new_page()
            page.set_default_timeout(30_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(base + "/")
            page.wait_for_selector('body[data-ready="1"]')
            labels = page.locator("label:has(#est-price), label:has(#inf-price)")
            assert all(f", {CURRENCY}" in t for t in labels.all_inner_texts())
            # an estimate with a price: the cost reads in the server's currency
            page.click('#tabs button[data-tab="estimate"]')
            page.select_option("#est-model", "llama3-8b")
            page.check('input[name="est-hw"][value="chip"]')
            page.select_option("#est-chip", "h100-sxm-80gb")
            for field, value in (("chips", 8), ("global-batch", 64), ("seq-len", 4096),
                                 ("train-tokens", "1e12"), ("price", PRICE)):
                page.fill(f"#est-{field}", str(value))
            page.click("#est-run")
            page.wait_for_selector('#est-summary tr[data-key="cost to train"]')
            cost = page.text_content('#est-fields tr[data-key="cost_to_train"] td')
            amount, label = cost.rsplit(" ", 1)
            assert label == CURRENCY
            assert float(amount.replace(",", "")) > 0
            # the row people read prints it with the currency's sign
            assert page.inner_text('#est-summary tr[data-key="cost to train"] td')[0] == "€"
            # serving: the price input gives the cost of a million output tokens
            page.click('#tabs button[data-tab="inference"]')
            page.select_option("#inf-model", "llama3-8b")
            page.check('input[name="inf-hw"][value="chip"]')
            page.select_option("#inf-chip", "h100-sxm-80gb")
            page.fill("#inf-chips", "8")
            page.fill("#inf-price", str(PRICE))
            page.click("#inf-run")
            page.wait_for_selector('#inf-summary tr[data-key="cost per million output tokens"]')
            per_mtok = page.text_content('#inf-fields tr[data-key="cost_per_mtok"] td')
            assert per_mtok.endswith(f" {CURRENCY}")
            shown = page.inner_text('#inf-summary tr[data-key="cost per million output tokens"] td')
            assert shown.startswith("€")
            assert errors == []
        finally:
            browser.close()
