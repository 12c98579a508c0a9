"""The workbench in headless Chromium (Playwright), against a real server.

Compose the 1,024-accelerator example cluster, see its findings, estimate GPT-3 175B on
it, see the charts render, save the scenario, reload and find it again; browse the
catalog; run and cancel a search; compare two scenarios; open an ``ocplan report`` page
with every network request blocked. Screenshots of each step go to test-artifacts/.

Only the system's Chromium is used (never a downloaded browser); without
/usr/bin/chromium the tests are skipped (``make test`` installs it).
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml

from browserkit import needs_chromium
from ocplan.cli.main import main
from ocplan.reports.summary import (
    COMPARE_ROWS,
    MFU_LABEL,
    SEARCH_COLUMNS,
    SERVING_COMPARE_ROWS,
    row_labels,
)
from ocplan.web.app import create_app

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Response, Route

pytestmark = needs_chromium
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
EXAMPLE_FILE = ROOT / "examples" / "ubb-1024-liquid.yaml"
EXAMPLE: dict[str, Any] = yaml.safe_load(EXAMPLE_FILE.read_text(encoding="utf-8"))
TOKEN = "browser-token"
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def base(serve: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    db = tmp_path_factory.mktemp("browser") / "scenarios.db"
    return str(serve(create_app(f"sqlite:///{db}")))


class Watch:
    """What a page did that it should not: requests off its allowed origin, JS errors."""

    def __init__(self, allowed: str) -> None:
        self.allowed = allowed
        self.blocked: list[str] = []
        self.errors: list[str] = []

    def route(self, route: Route) -> None:
        if route.request.url.startswith(self.allowed):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()


def open_page(browser: Browser, allowed: str) -> tuple[Page, Watch]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    watch = Watch(allowed)
    context.route("**/*", watch.route)
    page = context.new_page()
    page.on("pageerror", lambda exc: watch.errors.append(str(exc)))
    page.on("console", lambda msg: watch.errors.append(msg.text) if msg.type == "error"
            and "Failed to load resource" not in msg.text else None)
    return page, watch


@pytest.fixture
def workbench(browser: Browser, base: str) -> Iterator[Page]:
    """A fresh browser context on the workbench; no request may leave the server."""
    page, watch = open_page(browser, base)
    page.goto(base + "/")
    page.wait_for_selector('body[data-ready="1"]')
    yield page
    page.context.close()
    assert watch.blocked == [], "the page tried to reach the network"
    assert watch.errors == []


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def plot_rendered(page: Page, div: str) -> int:
    """Wait for Plotly's SVG in the div; return how many bar or scatter points it drew."""
    page.wait_for_selector(f"{div} .main-svg")
    points: int = page.locator(f"{div} .point, {div} .scatterlayer .trace path, "
                               f"{div} .sankey-node").count()
    return points


def wait_js(page: Page, expression: str) -> None:
    """Wait until the JavaScript ``expression`` is truthy in the page.

    Polled with ``page.evaluate`` (run through the browser's debugging protocol):
    Playwright's ``wait_for_function`` evals the expression inside the page, which the
    workbench's Content-Security-Policy (no ``'unsafe-eval'``) refuses, as it should.
    """
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(20)


def api(base: str, method: str, path: str, body: Any = None) -> Any:
    with httpx.Client(base_url=base, timeout=60) as c:
        resp = c.request(method, path, json=body)
        assert resp.status_code < 300, resp.text
        return resp.json()


def side_by_side_rows(page: Page, table: str) -> list[list[str]]:
    """[data-key, label] of each body row of the comparison ``table`` (a selector)."""
    rows: list[list[str]] = page.evaluate(
        f"[...document.querySelectorAll('{table} tbody tr')]"
        ".map((tr) => [tr.dataset.key, tr.querySelector('th').textContent])")
    return rows


def declared_rows_shown(answer: dict[str, Any]) -> list[list[str]]:
    """The rows a comparison answer declares (its ``rows``) that some system has."""
    return [[key, label] for key, label in answer["rows"]
            if any(r.get(key) is not None for r in answer["systems"])]


# ---- the main flow ---------------------------------------------------------------------

def compose_example(page: Page) -> None:
    page.click('#tabs button[data-tab="composer"]')
    rack = EXAMPLE["rack"]
    so = EXAMPLE["scale_out"]
    page.fill("#sys-name", EXAMPLE["name"])
    page.select_option("#sys-server", EXAMPLE["server"])
    page.select_option("#sys-accelerator", EXAMPLE["accelerator"])
    page.fill("#sys-servers", str(EXAMPLE["servers"]))
    page.select_option("#sys-cooling", EXAMPLE["cooling"])
    page.select_option("#sys-fabric", so["fabric"])
    page.select_option("#sys-nic", so["nic"])
    page.fill("#sys-nics", str(so["nics_per_server"]))
    page.select_option("#sys-topology", so["topology"])
    page.fill("#sys-rack-servers", str(rack["servers_per_rack"]))
    page.fill("#sys-rack-power", rack["power_limit"])
    page.fill("#sys-pue", str(EXAMPLE["facility"]["pue"]))
    storage = EXAMPLE["storage"]
    page.select_option("#sys-storage-kind", storage["kind"])
    page.fill("#sys-storage-write", storage["write_bandwidth"])
    page.fill("#sys-storage-read", storage["read_bandwidth"])
    page.fill("#sys-storage-client", storage["client_bandwidth"])
    page.wait_for_selector('#sys-status[data-state="ready"]')


def job_form(page: Page, prefix: str, model: str, chip: str,
             fields: tuple[tuple[str, object], ...]) -> None:
    """Open a job form's tab (estimate, search or inference), pick the model and a chip
    on its default server, and fill the given inputs (``#<prefix>-<field>``)."""
    tab = {"est": "estimate", "srch": "search", "inf": "inference"}[prefix]
    page.click(f'#tabs button[data-tab="{tab}"]')
    page.select_option(f"#{prefix}-model", model)
    page.check(f'input[name="{prefix}-hw"][value="chip"]')
    page.select_option(f"#{prefix}-chip", chip)
    for field, value in fields:
        page.fill(f"#{prefix}-{field}", str(value))


def test_compose_estimate_save_reload(workbench: Page, base: str) -> None:
    page = workbench
    shot(page, "01-workbench-opened")

    # compose the 1,024-accelerator cluster: findings and board drawing from the API
    compose_example(page)
    check = api(base, "POST", "/api/check", EXAMPLE)
    status = page.inner_text("#sys-status")
    assert "1,024 chips" in status
    assert f"{check['errors']} errors, {check['warnings']} warnings" in status
    rows = page.locator("#findings tbody tr")
    assert rows.count() == len(check["findings"]) > 0
    for i, f in enumerate(check["findings"]):
        cells = [c.strip() for c in rows.nth(i).locator("td").all_inner_texts()]
        assert cells == [f["rule"], f["severity"], f["message"], f["section"]]
    assert page.locator("#sys-errors").is_hidden()
    assert plot_rendered(page, "#plot-topology") > 0
    assert "1024" in page.inner_text("#topo-summary").replace(",", "")
    page.fill("#sys-save-name", "the 1,024 cluster")
    page.click("#sys-save")
    page.wait_for_selector("#sys-saved[data-saved-id]")
    system_id = page.get_attribute("#sys-saved", "data-saved-id")
    assert api(base, "GET", f"/api/scenarios/{system_id}")["request"] == EXAMPLE
    shot(page, "02-composer-1024-cluster")

    # a bad value shows the API's one-line message; fixing it clears it
    page.fill("#sys-servers", "many")
    page.wait_for_selector('#sys-status[data-state="ready"]')
    assert "servers = 'many'" in page.inner_text("#sys-errors")
    shot(page, "03-composer-bad-input")
    page.fill("#sys-servers", str(EXAMPLE["servers"]))
    page.wait_for_selector('#sys-status[data-state="ready"]')
    assert page.locator("#sys-errors").is_hidden()

    # estimate GPT-3 175B on the composed system
    page.click('#tabs button[data-tab="estimate"]')
    # the layout inputs are the plan's declared fields, one each (GET /api/layout)
    layout = api(base, "GET", "/api/layout")
    assert page.locator("#est-layout [data-field]").count() == len(layout)
    for f in layout:
        tag = "select" if f["kind"] in ("bool", "choice") else "input"
        control = page.locator(f'#est-layout {tag}[data-field="{f["name"]}"]')
        assert control.count() == 1, f["name"]
        assert control.get_attribute("id") == "est-" + f["name"].replace("_", "-")
    page.select_option("#est-model", "gpt3-175b")
    page.check('input[name="est-hw"][value="system"]')
    for field, value in (("chips", 1024), ("global-batch", 1536), ("seq-len", 2048),
                         ("tp", 8), ("pp", 8), ("vpp", 6)):
        page.fill(f"#est-{field}", str(value))
    page.select_option("#est-precision", "fp8")
    page.click("#est-run")
    page.wait_for_selector('#est-status[data-state="ready"]')
    assert page.locator("#est-errors").is_hidden()
    est = api(base, "POST", "/api/estimate", {
        "model": "gpt3-175b", "system": EXAMPLE, "chips": 1024, "global_batch": 1536,
        "seq_len": 2048, "precision": "fp8", "tp": 8, "pp": 8, "vpp": 6})
    breakdown = est["figures"]["breakdown"]
    assert plot_rendered(page, "#plot-breakdown") > 0
    traces = page.locator("#plot-breakdown .barlayer .trace")
    assert traces.count() == len(breakdown["data"])
    assert page.locator("#plot-breakdown .barlayer .point path").count() > 0
    assert page.text_content("#plot-breakdown .gtitle") == breakdown["layout"]["title"]["text"]
    assert plot_rendered(page, "#plot-memory") > 0
    assert plot_rendered(page, "#plot-timeline") > 0
    assert page.inner_text("#est-summary tr[data-key=bound] td") == est["bound"]
    assert page.inner_text("#est-summary tr[data-key=layout] td") == est["layout"]
    # issue 13: where the facility's power goes, and the cluster's racks and CDUs
    assert plot_rendered(page, "#plot-power-flow") > 0
    racks = page.inner_text("#est-cluster tr[data-key=racks] td")
    assert racks.startswith(f'{est["cluster"]["facility"]["racks"]:,} in ')
    shot(page, "04-estimate-charts")

    # save it, reload the page, find it in the scenarios list
    name = "GPT-3 175B on 1,024 x MI355X"
    page.fill("#est-save-name", name)
    page.click("#est-save")
    page.wait_for_selector("#est-saved[data-saved-id]")
    saved_id = page.get_attribute("#est-saved", "data-saved-id")
    shot(page, "05-estimate-saved")
    page.reload()
    page.wait_for_selector('body[data-ready="1"]')
    page.click('#tabs button[data-tab="scenarios"]')
    row = page.locator(f'#scn-list tr[data-id="{saved_id}"]')
    row.wait_for()
    assert row.locator(".scn-name").inner_text() == name
    assert "estimate" in row.inner_text()
    stored = api(base, "GET", f"/api/scenarios/{saved_id}")
    assert stored["request"]["system"]["server"] == EXAMPLE["server"]
    assert stored["result"]["step_s"] == est["step_s"]
    shot(page, "06-scenarios-after-reload")

    # open it: its numbers and charts come back from the store
    row.locator(".scn-open").click()
    pane = page.locator(".scn-pane")
    pane.wait_for()
    assert plot_rendered(page, '.scn-pane [data-figure="breakdown"]') > 0
    shot(page, "07-scenario-opened")


def test_catalog_browser(workbench: Page, base: str) -> None:
    page = workbench
    servers = api(base, "GET", "/api/catalog?kind=server")
    page.select_option("#cat-kind", "server")
    wait_js(page, f"document.querySelectorAll('#cat-list li').length == {len(servers)}")
    page.fill("#cat-filter", "mi355x")
    page.click('#cat-list li[data-id="amd-mi355x-platform"]')
    entry = api(base, "GET", "/api/catalog/amd-mi355x-platform")
    page.wait_for_selector("#cat-sources li")
    assert page.inner_text("#cat-entry h2") == entry["name"]
    sources = page.locator("#cat-sources li")
    assert sources.count() == len(entry["sources"])
    assert entry["sources"][0]["title"] in sources.first.inner_text()
    shot(page, "08-catalog-entry")

    # issue 11: quantities with units, years as years (not 1,307,000,000,000,000 or 2,023)
    page.select_option("#cat-kind", "accelerator")
    page.fill("#cat-filter", "mi300x")
    page.click('#cat-list li[data-id="mi300x"]')
    page.wait_for_selector('#cat-fields tr[data-key="launch_year"]')
    assert page.inner_text('#cat-fields tr[data-key="launch_year"] td') == "2023"
    assert page.inner_text('#cat-fields tr[data-key="peak_flops.bf16"] td') == "1.307 PFLOP/s"
    assert page.inner_text('#cat-fields tr[data-key="memory.hbm_capacity"] td') == "192 GB"


def test_search_progress_cancel_and_pareto(workbench: Page, base: str) -> None:
    page = workbench
    job_form(page, "srch", "gpt3-175b", "mi355x",
             (("chips", 1024), ("global-batch", 1536), ("seq-len", 2048), ("top-k", 5)))
    page.select_option("#srch-precision", "fp8")

    page.click("#srch-start")
    wait_js(page, "document.querySelector('#srch-progress').value > 0")
    shot(page, "09-search-progress")
    page.wait_for_selector('#srch-status[data-state="done"]', timeout=90_000)
    progress = page.locator("#srch-progress")
    assert progress.get_attribute("value") == progress.get_attribute("max")
    assert page.locator("#srch-top tbody tr").count() == 5
    assert plot_rendered(page, "#plot-pareto") > 0
    assert page.inner_text("#srch-why")
    assert page.locator("#srch-caveats").is_hidden()  # the best MI355X layout has none
    shot(page, "10-search-done")
    page.fill("#srch-save-name", "search gpt3-175b")
    page.click("#srch-save")
    page.wait_for_selector("#srch-saved[data-saved-id]")

    page.click("#srch-start")
    page.click("#srch-cancel")
    page.wait_for_selector('#srch-status[data-state="cancelled"]')
    assert page.is_enabled("#srch-start")
    shot(page, "11-search-cancelled")

    # bad input: the API's messages, and no job
    page.fill("#srch-top-k", "0")
    page.click("#srch-start")
    page.wait_for_selector("#srch-errors:not([hidden])")
    assert "top_k = 0" in page.inner_text("#srch-errors")


def test_compare_two_scenarios(workbench: Page, base: str) -> None:
    page = workbench
    ids, summaries = [], []
    for tp in (1, 2):
        req = {"model": "llama3-8b", "chip": "mi300x", "chips": 8, "global_batch": 64,
               "seq_len": 4096, "tp": tp}
        est = api(base, "POST", "/api/estimate", req)
        est.pop("timeline")
        est["figures"].pop("timeline")
        if tp == 2:  # saved before estimates carried the rows a person reads
            est.pop("summary")
        summaries.append(est.get("summary"))
        ids.append(api(base, "POST", "/api/scenarios", {
            "name": f"llama3-8b tp{tp}", "kind": "estimate", "request": req,
            "result": est})["id"])
    page.click('#tabs button[data-tab="scenarios"]')
    for i in ids:
        page.locator(f'#scn-list tr[data-id="{i}"] .scn-pick').check()
    page.click("#scn-compare")
    page.wait_for_selector("#scn-diff-table")
    panes = page.locator(".scn-pane")
    assert panes.count() == 2
    assert [panes.nth(i).locator("h3").inner_text() for i in range(2)] == [
        "llama3-8b tp1", "llama3-8b tp2"]
    for i in range(2):
        for figure in ("breakdown", "memory"):
            div = f'.scn-pane:nth-child({i + 1}) [data-figure="{figure}"]'
            assert plot_rendered(page, div)
            # issue 11: charts in compare panes collapsed to a strip
            height = page.locator(div).bounding_box()
            assert height is not None
            assert height["height"] > 200, (div, height)
    # a result's rows as the Estimate page shows them (ocplan.reports.summary), else,
    # saved without them, its fields
    shown = page.evaluate(
        "[...document.querySelectorAll('.scn-pane:nth-child(1) table.summary tr')]"
        ".map((tr) => [tr.querySelector('th').textContent, tr.querySelector('td').textContent])")
    assert shown == [[label.strip(), text] for label, text in summaries[0]]
    assert page.locator(".scn-pane:nth-child(2) table.summary").count() == 0
    assert page.locator('.scn-pane:nth-child(2) tr[data-key="step_s"]').count() == 1
    tp_row = page.locator('#scn-diff-table tr[data-key="plan.tp"] td').all_inner_texts()
    assert tp_row == ["1", "2"]
    step = page.locator('#scn-diff-table tr[data-key="step_s"] td').all_inner_texts()
    assert len(step) == 2
    assert step[0] != step[1]
    shot(page, "12-scenarios-compared")

    # load one back into the estimate form
    page.locator(f'#scn-list tr[data-id="{ids[1]}"] .scn-load').click()
    page.wait_for_selector("#tab-estimate.active")
    assert page.input_value("#est-tp") == "2"
    assert page.input_value("#est-model") == "llama3-8b"
    assert page.is_checked('input[name="est-hw"][value="chip"]')


def test_workbench_with_a_token(browser: Browser, serve: Any, tmp_path: Path) -> None:
    base = serve(create_app(f"sqlite:///{tmp_path / 's.db'}", token=TOKEN))
    page, watch = open_page(browser, base)
    assert page.goto(base + "/").status == 401  # type: ignore[union-attr]
    page.goto(f"{base}/?token={TOKEN}")
    page.wait_for_selector('body[data-ready="1"]')
    assert page.inner_text("#health") == "server ok"
    assert page.locator("#cat-list li").count() > 0
    assert page.locator("#global-errors").is_hidden()
    shot(page, "13-token")
    page.context.close()
    assert watch.blocked == []
    assert watch.errors == []


# ---- the HTML report, offline ----------------------------------------------------------

@pytest.mark.parametrize(("name", "args", "figures"), [
    ("report-estimate", ["--model", "gpt3-175b", "--system", str(EXAMPLE_FILE),
                         "--chips", "1024", "--global-batch", "1536", "--seq-len", "2048",
                         "--precision", "fp8", "--tp", "8", "--pp", "8", "--vpp", "6"],
     ["breakdown", "memory", "timeline", "sensitivity", "topology", "cluster", "power_flow"]),
    ("report-search", ["--model", "llama3-8b", "--chip", "mi355x", "--chips", "64",
                       "--global-batch", "256", "--seq-len", "4096", "--search"],
     ["breakdown", "memory", "timeline", "sensitivity", "topology", "cluster", "power_flow",
      "pareto"]),
])
def test_report_renders_offline(browser: Browser, tmp_path: Path, name: str,
                                args: list[str], figures: list[str]) -> None:
    """Issue 11: each report was 4.9 MB (Plotly inlined); now Plotly is one shared file
    beside the reports and a page is well under 1 MB, still working offline."""
    out = tmp_path / f"{name}.html"
    assert main(["report", *args, "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert re.findall(r"<script[^>]+src=\"([^\"]+)\"", html) == ["ocplan-plotly.min.js"]
    assert (tmp_path / "ocplan-plotly.min.js").stat().st_size > 1_000_000
    assert len(html.encode()) < 1_000_000
    page, watch = open_page(browser, "file://")
    page.goto(out.as_uri())
    for fig in figures:
        assert plot_rendered(page, f"#{fig}") > 0, fig
    assert page.locator(".fig").count() == len(figures)
    shot(page, f"14-{name}")
    page.context.close()
    assert watch.blocked == [], "the report tried to reach the network"
    assert watch.errors == []


def test_inference_page_draws_a_monotone_throughput_latency_curve(workbench: Page) -> None:
    page = workbench
    job_form(page, "inf", "llama3-70b", "mi300x",
             (("chips", 8), ("input-len", 2048), ("output-len", 512), ("slo-ttft", 2),
              ("slo-tpot", 0.05), ("rate", 4)))
    page.select_option("#inf-load", "poisson")
    page.select_option("#inf-weight-precision", "fp8")
    page.select_option("#inf-activation-precision", "fp8")
    page.fill("#inf-tp", "8")  # the layout inputs come from GET /api/serving-layout
    page.click("#inf-run")
    page.wait_for_selector('#inf-status[data-state="ready"]')
    assert "output tok/s per chip" in page.inner_text("#inf-status")
    assert plot_rendered(page, "#plot-infer-curve") > 0
    assert plot_rendered(page, "#plot-infer-breakdown") > 0
    xs: list[float] = page.evaluate("document.querySelector('#plot-infer-curve').data[0].x")
    ys: list[float] = page.evaluate("document.querySelector('#plot-infer-curve').data[0].y")
    assert len(xs) == len(ys) >= 10
    # more load: more tokens per second and a longer time per token, point by point
    assert all(b > a for a, b in itertools.pairwise(ys))
    assert all(b >= a for a, b in itertools.pairwise(xs))
    height = page.evaluate("document.querySelector('#plot-infer-curve').getBoundingClientRect()"
                           ".height")
    assert height > 200
    shot(page, "14-inference-curve")

    page.fill("#inf-input-len", "-5")
    page.click("#inf-run")
    page.wait_for_selector("#inf-errors:not([hidden])")
    assert "input_len" in page.inner_text("#inf-errors")


def test_inference_lists_the_serving_caveats(workbench: Page, base: str) -> None:
    """A gpt-oss-120b deployment on B200 shows its serving caveat as a list above the
    summary (the API's own sentences, not summary rows); a dense model's hides it."""
    page = workbench
    job_form(page, "inf", "gpt-oss-120b", "b200",
             (("chips", 8), ("input-len", 5000), ("output-len", 1300)))
    page.fill("#inf-tp", "1")
    page.click("#inf-run")
    page.wait_for_selector('#inf-status[data-state="ready"]')
    res = api(base, "POST", "/api/infer", {
        "model": "gpt-oss-120b", "chip": "b200", "chips": 8, "tp": 1, "input_len": 5000,
        "output_len": 1300})
    assert res["feasible"]
    assert res["caveats"]
    items = page.locator("#inf-caveats li")
    assert items.all_inner_texts() == res["caveats"]
    assert page.locator("#inf-caveats").is_visible()
    assert page.locator('#inf-summary tr[data-key="caveat"]').count() == 0
    page.select_option("#inf-model", "llama3-70b")
    page.fill("#inf-tp", "8")
    page.click("#inf-run")
    page.wait_for_selector('#inf-status[data-state="ready"]')
    assert "infeasible" not in page.inner_text("#inf-status")
    assert page.locator("#inf-caveats").is_hidden()


def test_api_docs_render_offline(browser: Browser, base: str) -> None:
    """Issue 11: /docs was blank without the internet (Swagger UI came from a CDN). With
    every request off this server blocked, the page lists the API's operations."""
    page, watch = open_page(browser, base)
    try:
        page.goto(base + "/docs")
        page.wait_for_selector(".swagger-ui .opblock")
        assert page.locator(".swagger-ui .opblock").count() >= 10
        assert "ocplan workbench" in page.inner_text(".swagger-ui .info")
        shot(page, "15-api-docs")
    finally:
        page.context.close()
    assert watch.blocked == []
    assert watch.errors == []


def test_report_options_findings_cost_and_top_table(browser: Browser, tmp_path: Path) -> None:
    """Issue 11: ``ocplan report`` lacked --train-tokens, --price, --objective, --format,
    the check findings, the cost and the top table."""
    args = ["report", "--model", "llama3-8b", "--chip", "gaudi3", "--chips", "64",
            "--global-batch", "256", "--seq-len", "4096", "--search", "--objective", "cost",
            "--top", "3", "--train-tokens", "1e12", "--price", "2"]
    single = tmp_path / "one" / "single.html"
    single.parent.mkdir()
    assert main([*args, "--inline-plotly", "--out", str(single)]) == 0
    html = single.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=", html)  # one self-contained file
    assert "Top layouts (cost)" in html
    assert "Check findings" in html
    assert "cost to train" in html
    # the top table's columns, declared once with the CLI's (tests/test_search_columns.py)
    assert "<th>time to train</th><th>cost to train</th>" in html
    page, watch = open_page(browser, "file://")
    page.goto(single.as_uri())
    assert plot_rendered(page, "#pareto") > 0
    page.context.close()
    assert watch.blocked == []
    as_json = tmp_path / "report.json"
    assert main([*args, "--format", "json", "--out", str(as_json)]) == 0
    import json
    data = json.loads(as_json.read_text(encoding="utf-8"))
    assert data["to_train"]["cost_to_train"] > 0
    assert len(data["search"]["top"]) == 3
    # the Gaudi 3 server of the catalog passes its checks in its air profile (900 W)
    assert all(f["severity"] != "error" for f in data["findings"])
    assert all({"rule", "severity", "message"} <= set(f) for f in data["findings"])


def test_workbench_rough_edges(workbench: Page) -> None:
    """Issue 11: picking a server showed "servers: required field is missing" before
    anything was typed; an infeasible estimate showed a table of zeros; MFU showed as
    0.526; the timeline drew the first 32 micro-batches without saying so."""
    page = workbench
    page.click('#tabs button[data-tab="composer"]')
    page.select_option("#sys-server", EXAMPLE["server"])
    page.wait_for_selector('#sys-status[data-state="ready"]')
    assert page.is_hidden("#sys-errors")
    assert "1 x " in page.inner_text("#sys-status") or "chips" in page.inner_text("#sys-status")

    # a storage bandwidth typed while the kind is still "(none)" is not dropped silently:
    # the check names the missing kind and its choices; clearing it clears the error
    page.fill("#sys-storage-write", "500 GB/s")
    page.wait_for_selector('#sys-status[data-state="ready"]')
    errors = page.inner_text("#sys-errors")
    assert "storage.kind" in errors
    assert "parallel-fs" in errors
    page.fill("#sys-storage-write", "")
    page.wait_for_selector('#sys-status[data-state="ready"]')
    assert page.is_hidden("#sys-errors")

    job_form(page, "est", "gpt3-175b", "h100-sxm-80gb",
             (("chips", 8), ("global-batch", 8), ("seq-len", 2048), ("tp", 8)))
    page.click("#est-run")
    page.wait_for_selector('#est-status[data-state="ready"]')
    assert "infeasible" in page.inner_text("#est-status")
    summary = page.inner_text("#est-summary")
    assert "what to change" in summary
    assert "memory per chip" in summary
    assert page.locator('#est-summary tr[data-key="optimizer state"]').count() == 1
    assert "step time" not in summary
    assert "tokens/s" not in summary
    assert "optimizer_bytes" in page.text_content("#est-fields")

    for field, value in (("chips", 512), ("global-batch", 1536), ("pp", 8)):
        page.fill(f"#est-{field}", str(value))
    page.click("#est-run")
    page.wait_for_selector('#est-status[data-state="ready"]')
    mfu = page.inner_text(f'#est-summary tr[data-key="{MFU_LABEL}"] td')
    assert mfu.endswith("%")
    assert 10 < float(mfu.split("%")[0]) < 90
    title = page.evaluate("document.querySelector('#plot-timeline').layout.title.text")
    assert "first 32 of 192 micro-batches" in title


def test_search_form_and_table_for_a_buyer(workbench: Page) -> None:
    """Issue 11: the search table had 21 columns with the useful ones off-screen, raw
    field names, and the form had no headroom, power cap or chip counts."""
    page = workbench
    job_form(page, "srch", "llama3-8b", "h100-sxm-80gb",
             (("chips", 64), ("global-batch", 256), ("seq-len", 4096), ("top-k", 3),
              ("train-tokens", "1e12"), ("price", 2), ("memory-headroom", 0.1),
              ("chip-counts", "32,64")))
    polled: list[Response] = []  # the job's answers, the last one done
    page.on("response", lambda r: polled.append(r) if "/api/jobs/" in r.url else None)
    page.click("#srch-start")
    page.wait_for_selector('#srch-status[data-state="done"]', timeout=90_000)
    heads = page.locator("#srch-top thead th").all_inner_texts()
    assert heads[:5] == ["#", "chips", "layout", "tokens/s per chip", "MFU"]
    assert "time to train" in heads
    assert "cost to train" in heads
    assert len(heads) <= 12
    # the columns are the answer's, declared once with the CLI's and the report's
    # (ocplan.reports.summary): here every one, in that order, as headed
    answer = next(j["result"] for j in (r.json() for r in reversed(polled))
                  if j["status"] == "done")
    assert answer["columns"] == row_labels(SEARCH_COLUMNS)
    keys = page.locator("#srch-top thead th[data-key]")
    # (a failure-blind search's rows have no with-failures figures: those columns stay out)
    shown = [(field, heading) for field, heading in answer["columns"]
             if any(row.get(field) is not None for row in answer["top"])]
    assert [field for field, _ in answer["columns"] if (field, _) not in shown] == [
        "time_to_train_with_failures_s", "cost_to_train_with_failures"]
    assert [keys.nth(i).get_attribute("data-key") for i in range(keys.count())] == [
        field for field, _ in shown]
    assert heads == ["#", *(heading for _, heading in shown)]
    chips = page.locator('#srch-top tbody tr td:nth-child(2)').all_inner_texts()
    assert chips
    assert set(chips) <= {"32", "64"}
    days = page.locator("#srch-top tbody tr td").all_inner_texts()
    assert any(t.endswith(" days") for t in days)
    page.check("#srch-all-columns")
    assert page.locator("#srch-top thead th").count() > len(heads)


def test_search_form_pins_the_layout_fields_given(workbench: Page) -> None:
    """The search form's layout inputs come from GET /api/search-layout: blank means
    searched, a value pins it in every layout searched (tp 2 here), as ``ocplan search
    --tp 2`` does; a value the space lacks is the API's one-line refusal."""
    page = workbench
    job_form(page, "srch", "llama3-8b", "h100-sxm-80gb",
             (("chips", 16), ("global-batch", 256), ("seq-len", 4096), ("top-k", 3),
              ("chip-counts", "")))
    page.click("#srch-layout >> xpath=..")  # open the layout section
    assert page.get_attribute("#srch-tp", "placeholder") == "searched"
    assert page.inner_text("#srch-sequence-parallel option[value='']") == "(searched)"
    assert page.inner_text("#srch-grad-reduce-bf16 option[value='']") == "(default)"
    page.fill("#srch-tp", "2")
    polled: list[Response] = []
    page.on("response", lambda r: polled.append(r) if "/api/jobs/" in r.url else None)
    page.click("#srch-start")
    page.wait_for_selector('#srch-status[data-state="done"]', timeout=90_000)
    answer = next(j["result"] for j in (r.json() for r in reversed(polled))
                  if j["status"] == "done")
    assert answer["top"]
    assert all(row["tp"] == 2 for row in answer["top"])
    page.fill("#srch-tp", "16")
    page.click("#srch-start")
    page.wait_for_selector("#srch-errors:not([hidden])")
    assert "the search tries tp 1, 2, 4, 8 only" in page.inner_text("#srch-errors")
    page.fill("#srch-tp", "")


def test_search_shows_the_best_layouts_caveats(workbench: Page) -> None:
    """Two TPU v5e pods over the datacenter network: the best layout carries the
    multi-slice caveat, and the search page lists it under the reason the winner wins."""
    page = workbench
    job_form(page, "srch", "llama3-8b", "tpu-v5e",
             (("chips", 512), ("global-batch", 512), ("seq-len", 2048), ("top-k", 3),
              ("chip-counts", "")))
    page.click("#srch-start")
    page.wait_for_selector('#srch-status[data-state="done"]', timeout=90_000)
    items = page.locator("#srch-caveats li").all_inner_texts()
    assert items
    assert any(t.startswith("Data parallelism across TPU slices") for t in items)


def test_estimate_form_takes_tokens_and_price(workbench: Page) -> None:
    """Issue 11: the estimate form had no tokens to train or price; time, energy and cost
    to train vanished from the workbench."""
    page = workbench
    job_form(page, "est", "llama3-8b", "h100-sxm-80gb",
             (("chips", 64), ("global-batch", 256), ("seq-len", 4096), ("train-tokens", "1T"),
              ("price", 2)))
    page.click("#est-run")
    page.wait_for_selector('#est-status[data-state="ready"]')
    days = page.text_content('#est-fields tr[data-key="time_to_train_s"] td')
    assert days.endswith(" days")
    cost = page.text_content('#est-fields tr[data-key="cost_to_train"] td')
    rate = float(page.text_content('#est-fields tr[data-key="tokens_per_s"] td')
                 .replace(",", ""))
    expected = 64 * 2 * 1e12 / rate / 3600
    assert cost.endswith(" USD")  # the server's currency (test_s9_qa2_web.py)
    assert float(cost.removesuffix(" USD").replace(",", "")) == pytest.approx(expected, rel=0.01)
    # the default server names no checkpoint storage: goodput says so instead of a number
    assert "storage" in page.inner_text("#est-cluster tr[data-key=goodput] td")


def test_a_composed_system_is_estimated_with_the_chips_box_blank(workbench: Page,
                                                                base: str) -> None:
    """Session 39: a blank Chips box means every chip of the composed system (the CLI's
    default for --system), not "chips: required field is missing"."""
    page = workbench
    compose_example(page)
    page.click('#tabs button[data-tab="estimate"]')
    # before an estimate, and for one that cannot run, no section heading over nothing
    heads = ("#est-sensitivity-head", "#est-cluster-head")
    assert all(page.locator(h).is_hidden() for h in heads)
    settings = api(base, "GET", "/api/settings")
    assert page.get_attribute("#est-chips", "placeholder") == \
        f"all of the system, else {settings['default_chips']}"
    page.select_option("#est-model", "llama3-70b")
    page.check('input[name="est-hw"][value="system"]')
    page.fill("#est-chips", "")
    for field, value in (("global-batch", 1024), ("tp", 8), ("pp", 2)):
        page.fill(f"#est-{field}", str(value))
    page.click("#est-run")
    page.wait_for_selector('#est-status[data-state="ready"]')
    assert page.locator("#est-errors").is_hidden()
    assert page.text_content('#est-fields tr[data-key="chips"] td') == "1,024"
    # dp = 1,024 / (tp 8 x pp 2)
    assert "dp=64," in page.inner_text('#est-summary tr[data-key="layout"] td')
    assert all(page.locator(h).is_visible() for h in heads)
    page.fill("#est-tp", "3")  # 64 heads do not split over tp 3: an infeasible layout
    page.fill("#est-chips", "1020")
    page.click("#est-run")
    page.wait_for_selector('#est-status[data-state="ready"]')
    assert "infeasible" in page.inner_text("#est-status")
    assert all(page.locator(h).is_hidden() for h in heads)


def test_picking_an_accelerator_runs_on_it(workbench: Page) -> None:
    """Session 39: the Estimate and Search forms start on the composed system; picking an
    accelerator switches them to it, so the job is not sent without hardware."""
    page = workbench
    for prefix, tab in (("est", "estimate"), ("srch", "search")):
        page.click(f'#tabs button[data-tab="{tab}"]')
        assert page.is_checked(f'input[name="{prefix}-hw"][value="system"]')
        page.select_option(f"#{prefix}-chip", "mi300x")
        assert page.is_checked(f'input[name="{prefix}-hw"][value="chip"]')
    page.click('#tabs button[data-tab="estimate"]')
    page.select_option("#est-model", "llama3-8b")
    page.click("#est-run")
    page.wait_for_selector('#est-status[data-state="ready"]')
    assert page.locator("#est-errors").is_hidden()
    assert page.text_content('#est-fields tr[data-key="chips"] td') == "8"


def test_the_estimate_reads_as_the_cli_table(workbench: Page, base: str) -> None:
    """Session 40: the Estimate page listed the answer's JSON fields (step_s, mfu,
    time_to_train_s shown in days); it now shows the rows the CLI table prints, with the
    step's and the memory's parts under them, and keeps every field one click away."""
    page = workbench
    fields = (("chips", 64), ("global-batch", 256), ("seq-len", 4096), ("tp", 2),
              ("train-tokens", "1T"), ("price", 2))
    job_form(page, "est", "llama3-8b", "h100-sxm-80gb", fields)
    page.click("#est-run")
    page.wait_for_selector('#est-status[data-state="ready"]')
    est = api(base, "POST", "/api/estimate", {
        "model": "llama3-8b", "chip": "h100-sxm-80gb", "chips": 64, "global_batch": 256,
        "seq_len": 4096, "tp": 2, "train_tokens": 1e12, "price_per_chip_hour": 2})
    shown = [(th, td) for th, td in zip(
        page.locator("#est-summary th").all_inner_texts(),
        page.locator("#est-summary td").all_inner_texts(), strict=True)]
    wanted = [(label.strip(), text) for label, text in est["summary"] if label != "caveat"]
    assert shown == wanted
    labels = [label for label, _ in shown]
    # the job in words first (as the CLI table), then the layout and its step
    assert labels[:3] == ["job", "layout", "step time"]
    assert shown[0][1] == "256 sequences x 4,096 tokens a step; Precision: bf16"
    assert {"likely measured", MFU_LABEL, "calibration", "time to train",
            "cost to train", "TP communication", "optimizer state"} <= set(labels)
    assert not any("_" in label for label in labels)
    # the step's parts are indented under it
    assert page.locator('#est-summary tr.part[data-key="compute"]').count() == 1
    assert page.locator('#est-summary tr.part[data-key="step time"]').count() == 0
    # every field of the answer, by its API name, folded away
    assert page.locator("#est-fields-box").is_visible()
    assert not page.eval_on_selector("#est-fields-box", "d => d.open")
    assert page.text_content('#est-fields tr[data-key="step_s"] th') == "step_s"
    page.click("#est-fields-box summary")
    assert page.locator('#est-fields tr[data-key="mfu"]').is_visible()
    cluster = page.locator("#est-cluster th").all_inner_texts()
    assert cluster == [label for label, _ in est["cluster_summary"]]
    assert "rack power delivery" in cluster


def test_estimate_shows_what_each_resource_buys(workbench: Page, base: str) -> None:
    """The estimate page draws the sensitivity the API answers, at the form's factor."""
    page = workbench
    fields = (("chips", 64), ("global-batch", 256), ("seq-len", 4096), ("tp", 8),
              ("sensitivity-factor", 0.5))
    job_form(page, "est", "llama3-70b", "h100-sxm-80gb", fields)
    page.click("#est-run")
    page.wait_for_selector('#est-status[data-state="ready"]')
    answer = api(base, "POST", "/api/estimate",
                 {"model": "llama3-70b", "chip": "h100-sxm-80gb", "chips": 64,
                  "global_batch": 256, "seq_len": 4096, "tp": 8, "sensitivity": 0.5})
    assert page.inner_text("#est-sensitivity") == answer["sensitivity"]["summary"]
    assert "x0.5" in answer["sensitivity"]["summary"]
    present = [e for e in answer["sensitivity"]["effects"] if e["present"]]
    assert plot_rendered(page, "#plot-sensitivity") == len(present) + 1


def test_inference_shows_what_each_resource_buys(workbench: Page, base: str) -> None:
    """The inference page draws the serving sensitivity the API answers at the form's
    factor; a comparison afterwards clears it (a search has none)."""
    page = workbench
    job_form(page, "inf", "llama3-8b", "h100-sxm-80gb",
             (("chips", 8), ("sensitivity-factor", 0.5)))
    assert page.locator("#inf-sensitivity-head").is_hidden()  # no heading over nothing
    page.fill("#inf-tp", "8")
    page.click("#inf-run")
    page.wait_for_selector('#inf-status[data-state="ready"]')
    answer = api(base, "POST", "/api/infer", {"model": "llama3-8b", "chip": "h100-sxm-80gb",
                                              "chips": 8, "tp": 8, "sensitivity": 0.5})
    sens = answer["sensitivity"]
    assert page.inner_text("#inf-sensitivity") == sens["summary"]
    assert "x0.5" in sens["summary"]
    present = [e for e in sens["effects"] if e["present"]]
    assert plot_rendered(page, "#plot-infer-sensitivity") == len(present) + 1
    assert page.locator("#inf-sensitivity-head").is_visible()
    page.fill("#inf-vs", "b200")
    page.click("#inf-compare")
    page.wait_for_selector("#inf-compare-table")
    page.wait_for_selector('#inf-status[data-state="ready"]')
    assert page.inner_text("#inf-sensitivity") == ""
    assert page.locator("#inf-sensitivity-head").is_hidden()
    assert page.locator("#inf-errors").is_hidden()


def test_inference_simulates_the_run_on_request(workbench: Page, base: str) -> None:
    """"Simulate the run" shows the simulated run's rows as the API answers them (a
    finite closed loop of 64 requests, 16 in flight); a comparison, which has no
    simulation, clears them and is not refused for the field."""
    page = workbench
    job_form(page, "inf", "llama3-8b", "h100-sxm-80gb", (("chips", 1),))
    assert page.locator("#inf-simulation-head").is_hidden()
    page.select_option("#inf-load", "concurrency")
    page.fill("#inf-concurrency", "16")
    page.fill("#inf-requests", "64")
    page.select_option("#inf-simulate", "true")
    page.click("#inf-run")
    page.wait_for_selector('#inf-status[data-state="ready"]')
    answer = api(base, "POST", "/api/infer", {
        "model": "llama3-8b", "chip": "h100-sxm-80gb", "chips": 1, "load": "concurrency",
        "concurrency": 16, "requests": 64, "simulate": True})
    rows = page.locator("#inf-simulation tr")
    shown = [(r.locator("th").inner_text(), r.locator("td").inner_text()) for r in rows.all()]
    assert shown == [tuple(r) for r in answer["simulation_summary"]]
    assert answer["simulation"]["requests"] == 64
    assert page.locator("#inf-simulation-head").is_visible()
    page.fill("#inf-vs", "b200")
    page.click("#inf-compare")
    page.wait_for_selector("#inf-compare-table")
    page.wait_for_selector('#inf-status[data-state="ready"]')
    assert page.locator("#inf-errors").is_hidden()
    assert page.locator("#inf-simulation-head").is_hidden()
    assert page.locator("#inf-simulation tr").count() == 0
    page.fill("#inf-vs", "")
    page.select_option("#inf-simulate", "")
    page.select_option("#inf-load", "")
    page.fill("#inf-concurrency", "")
    page.fill("#inf-requests", "")


def test_inference_admission_select_comes_from_the_declaration(workbench: Page,
                                                                base: str) -> None:
    """The serving form's admission select is built from the layout declaration (the
    page's HTML has none): its options are the declared choices, and a run with reserve
    shows the API's answer for that layout, its batch capped by whole requests."""
    page = workbench
    job_form(page, "inf", "llama3-8b", "h100-sxm-80gb",
             (("chips", 1), ("input-len", 1024), ("output-len", 1024)))
    values = page.eval_on_selector_all("#inf-admission option", "os => os.map(o => o.value)")
    assert values == ["", "refill", "reserve"]
    page.select_option("#inf-load", "concurrency")
    page.fill("#inf-concurrency", "512")
    page.select_option("#inf-admission", "reserve")
    page.click("#inf-run")
    page.wait_for_selector('#inf-status[data-state="ready"]')
    job = {"model": "llama3-8b", "chip": "h100-sxm-80gb", "chips": 1, "input_len": 1024,
           "output_len": 1024, "load": "concurrency", "concurrency": 512}
    reserve = api(base, "POST", "/api/infer", job | {"admission": "reserve"})
    refill = api(base, "POST", "/api/infer", job)
    status = page.inner_text("#inf-status")
    assert reserve["bound"] in status
    assert reserve["bound"] != refill["bound"]
    page.select_option("#inf-admission", "")
    page.select_option("#inf-load", "")
    page.fill("#inf-concurrency", "")


def test_training_forms_show_the_apis_defaults_and_objectives(workbench: Page,
                                                              base: str) -> None:
    """Session 68: the training forms' empty number boxes show what the API takes for
    them (global batch, sequence length, top K, memory headroom), and the Objective
    selects of the search and comparison list every objective the API declares, the
    failure-aware ones included (the page had listed four by hand)."""
    page = workbench
    settings = api(base, "GET", "/api/settings")
    defaults = settings["job_defaults"]
    for prefix in ("est", "srch", "cmp"):
        for field in ("global-batch", "seq-len"):
            shown = page.get_attribute(f"#{prefix}-{field}", "placeholder")
            assert shown == str(defaults[field.replace("-", "_")]), (prefix, field)
    assert page.get_attribute("#srch-top-k", "placeholder") == str(defaults["top_k"])
    for box in ("#srch-memory-headroom", "#cmp-memory-headroom"):
        assert page.get_attribute(box, "placeholder") == str(defaults["memory_headroom"])
    for sel in ("#srch-objective", "#cmp-objective"):
        values = page.eval_on_selector_all(f"{sel} option", "os => os.map(o => o.value)")
        assert values == ["", *settings["objectives"]], sel
    assert "time_with_failures" in settings["objectives"]


def test_format_selects_are_the_apis_choices_and_fp4_trains(workbench: Page,
                                                             base: str) -> None:
    """The precision selects of the training and serving forms hold the values the API
    declares (GET /api/choices), none written into the page: NVFP4 training (fp4),
    added to the declaration, appears in all three training forms, and an fp4 estimate
    on GB300 from the form answers the API's figure with its caveat."""
    page = workbench
    choices = api(base, "GET", "/api/choices")
    assert "fp4" in choices["precision"]
    for sel, field in (("#est-precision", "precision"), ("#srch-precision", "precision"),
                       ("#cmp-precision", "precision"),
                       ("#inf-weight-precision", "weight_precision"),
                       ("#inf-expert-weight-precision", "weight_precision"),
                       ("#inf-activation-precision", "activation_precision"),
                       ("#inf-kv-precision", "kv_precision"),
                       ("#inf-state-precision", "state_precision")):
        values = page.eval_on_selector_all(f"{sel} option", "os => os.map(o => o.value)")
        assert values == ["", *choices[field]], sel
    job_form(page, "est", "llama3-70b", "gb300",
             (("chips", 64), ("global-batch", 256), ("seq-len", 8192), ("tp", 1), ("pp", 4),
              ("vpp", 5)))
    page.select_option("#est-precision", "fp4")
    page.click("#est-run")
    page.wait_for_selector('#est-status[data-state="ready"]')
    assert page.locator("#est-errors").is_hidden()
    est = api(base, "POST", "/api/estimate", {
        "model": "llama3-70b", "chip": "gb300", "chips": 64, "global_batch": 256,
        "seq_len": 8192, "precision": "fp4", "tp": 1, "pp": 4, "vpp": 5})
    assert est["feasible"]
    shown = page.text_content('#est-fields tr[data-key="tokens_per_s"] td')
    assert float(shown.replace(",", "")) == pytest.approx(est["tokens_per_s"], rel=1e-3)
    assert any(c.startswith("NVFP4 training") for c in est["caveats"])
    # the caveats stand as a list beside the figures, one item each, not a table cell
    items = page.locator("#est-caveats li")
    assert items.count() == len(est["caveats"])
    assert any(t.startswith("NVFP4 training") for t in items.all_inner_texts())
    assert page.locator('#est-summary tr[data-key="caveat"]').count() == 0
    assert page.locator('#est-fields tr[data-key="caveats"]').count() == 0
    # a job without caveats hides the list
    page.select_option("#est-chip", "gb200")
    page.fill("#est-tp", "2")
    page.select_option("#est-precision", "bf16")
    page.click("#est-run")
    page.wait_for_selector('#est-status[data-state="ready"]')
    assert "infeasible" not in page.inner_text("#est-status")
    assert page.locator("#est-caveats").is_hidden()


def test_training_option_inputs_follow_the_declaration(workbench: Page, base: str) -> None:
    """Each training form holds one input per declared option (GET
    /api/training-options), under its label and with its choices; a Mixtral estimate
    padded to a capacity with one-hot einsums, typed into the generated inputs, answers
    the API's figure for the same request."""
    page = workbench
    declared = api(base, "GET", "/api/training-options")
    for prefix in ("est", "cmp", "srch"):
        labels = page.eval_on_selector_all(
            f"#{prefix}-options label", "ls => ls.map(l => [l.dataset.option, "
            "l.firstChild.textContent.trim()])")
        assert labels == [[f["name"], f["label"]] for f in declared], prefix
        for f in declared:
            sel = f"#{prefix}-{f['name'].replace('_', '-')}"
            if f["kind"] == "choice":
                values = page.eval_on_selector_all(f"{sel} option",
                                                   "os => os.map(o => o.value)")
                assert values == ["", *f["choices"]], sel
            else:
                assert page.get_attribute(sel, "data-type") == "float", sel
                # an option left out says what that means (a capacity: dropless)
                assert page.get_attribute(sel, "placeholder") == (f["empty"] or ""), sel
    job_form(page, "est", "mixtral-8x7b", "h100-sxm-80gb",
             (("chips", 16), ("global-batch", 64), ("seq-len", 4096), ("tp", 2), ("ep", 8),
              ("moe-capacity-factor", 1.25)))
    page.select_option("#est-recompute", "full")
    page.select_option("#est-moe-dispatch", "einsum")
    page.click("#est-run")
    page.wait_for_selector('#est-status[data-state="ready"]')
    est = api(base, "POST", "/api/estimate", {
        "model": "mixtral-8x7b", "chip": "h100-sxm-80gb", "chips": 16, "global_batch": 64,
        "seq_len": 4096, "tp": 2, "ep": 8, "recompute": "full",
        "moe_capacity_factor": 1.25, "moe_dispatch": "einsum"})
    plain = api(base, "POST", "/api/estimate", {
        "model": "mixtral-8x7b", "chip": "h100-sxm-80gb", "chips": 16, "global_batch": 64,
        "seq_len": 4096, "tp": 2, "ep": 8, "recompute": "full"})
    assert est["tokens_per_s"] != pytest.approx(plain["tokens_per_s"], rel=1e-3)
    shown = page.text_content('#est-fields tr[data-key="tokens_per_s"] td')
    assert float(shown.replace(",", "")) == pytest.approx(est["tokens_per_s"], rel=1e-3)


def test_serving_inputs_follow_the_declaration(workbench: Page, base: str) -> None:
    """The serving form holds one input per declared field of a serving job (GET
    /api/serving-options), under its label and unit, with its choices, its id from its
    flag and a blank that says what leaving it out means; a job typed into them (a
    closed loop of uniform lengths with an FP8 cache, half of each prompt cached)
    answers the API's figure for the same request and names the job first."""
    page = workbench
    declared = api(base, "GET", "/api/serving-options")
    labels = page.eval_on_selector_all(
        "#inf-options label", "ls => ls.map(l => [l.dataset.option, "
        "l.firstChild.textContent.trim()])")
    assert labels == [[f["name"], f["label"] + (", " + f["unit"] if f["unit"] else "")]
                      for f in declared]
    for f in declared:
        sel = "#inf-" + f["flag"].removeprefix("--")
        assert page.get_attribute(sel, "data-field") == f["name"], sel
        if f["kind"] == "choice":
            values = page.eval_on_selector_all(f"{sel} option", "os => os.map(o => o.value)")
            assert values == ["", *f["choices"]], sel
            blank = page.inner_text(f"{sel} option[value='']")
            assert blank == f"({f['empty'] or f['default']})", sel
        else:
            kind = "float" if f["kind"] == "number" else "int"
            assert page.get_attribute(sel, "data-type") == kind, sel
            shown = f["empty"] or ("" if f["default"] is None else f"{f['default']:g}")
            assert page.get_attribute(sel, "placeholder") == shown, sel
    given = {"load": "concurrency", "concurrency": 32, "length_distribution": "uniform",
             "length_spread": 0.3, "kv_precision": "fp8", "prefix_hit": 0.5}
    job_form(page, "inf", "llama3-8b", "h100-sxm-80gb", (("chips", 1),))
    for name, value in given.items():  # each field's flag is its name here
        sel = "#inf-" + name.replace("_", "-")
        if isinstance(value, str):
            page.select_option(sel, value)
        else:
            page.fill(sel, str(value))
    page.click("#inf-run")
    page.wait_for_selector('#inf-status[data-state="ready"]')
    body = {"model": "llama3-8b", "chip": "h100-sxm-80gb", "chips": 1}
    est = api(base, "POST", "/api/infer", body | given)
    plain = api(base, "POST", "/api/infer", body)
    assert est["output_tokens_per_s_per_chip"] != pytest.approx(
        plain["output_tokens_per_s_per_chip"], rel=1e-3)
    shown = page.text_content('#inf-fields tr[data-key="output_tokens_per_s_per_chip"] td')
    assert float(shown.replace(",", "")) == pytest.approx(est["output_tokens_per_s_per_chip"],
                                                          rel=1e-3)
    assert page.text_content('#inf-summary tr[data-key="job"] td') == est["summary"][0][1]
    for name, value in given.items():  # the form as the next test expects it
        sel = "#inf-" + name.replace("_", "-")
        if isinstance(value, str):
            page.select_option(sel, "")
        else:
            page.fill(sel, "")


def test_loading_a_scenario_runs_it_again(workbench: Page, base: str) -> None:
    """Issue 11: "Load" of a scenario filled the form but did not re-run it."""
    page = workbench
    req = {"model": "llama3-8b", "chip": "mi300x", "chips": 8, "global_batch": 64,
           "seq_len": 4096, "tp": 2}
    est = api(base, "POST", "/api/estimate", req)
    est.pop("timeline")
    est["figures"].pop("timeline")
    sid = api(base, "POST", "/api/scenarios", {"name": "load me", "kind": "estimate",
                                                "request": req, "result": est})["id"]
    page.click('#tabs button[data-tab="scenarios"]')
    page.locator(f'#scn-list tr[data-id="{sid}"] .scn-load').click()
    page.wait_for_selector('#est-status[data-state="ready"]')
    wait_js(page, "document.querySelector('#est-summary tr[data-key=\"step time\"]') !== null")
    assert "tp=2" in page.inner_text('#est-summary tr[data-key="layout"] td')
    assert plot_rendered(page, "#plot-breakdown") > 0


def test_compare_page_with_three_systems(workbench: Page) -> None:
    """Issue 11: the compare page puts one job on three systems (a composed system and
    two chips) side by side, with ratios, the best of each row, findings and both charts
    at a real size."""
    page = workbench
    compose_example(page)  # the 1,024 x MI355X liquid cluster
    page.click('#tabs button[data-tab="compare"]')
    page.select_option("#cmp-model", "llama3-8b")
    for field, value in (("global-batch", 256), ("seq-len", 4096), ("chips", 16),
                         ("train-tokens", "1e12"), ("price", "3.5,2,2.5")):
        page.fill(f"#cmp-{field}", str(value))
    page.click("#cmp-add-system")
    for chip in ("h100-sxm-80gb", "mi300x"):
        page.select_option("#cmp-chip", chip)
        page.click("#cmp-add-chip")
    assert page.locator("#cmp-systems li").count() == 3
    polled: list[Response] = []  # the job's answers, the last one done
    page.on("response", lambda r: polled.append(r) if "/api/jobs/" in r.url else None)
    page.click("#cmp-run")
    page.wait_for_selector('#cmp-status[data-state="done"]', timeout=90_000)
    wait_js(page, "document.querySelector('#cmp-table tbody tr') !== null")
    # the rows are the answer's, declared once with the CLI's and the report's
    # (ocplan.reports.summary), each one some system has, in that order, as labelled
    answer = next(j["result"] for j in (r.json() for r in reversed(polled))
                  if j["status"] == "done")
    assert answer["rows"] == row_labels(COMPARE_ROWS)
    shown = side_by_side_rows(page, "#cmp-table")
    assert shown == declared_rows_shown(answer)
    assert {"chip", "tokens_per_s_per_chip", "likely_tokens_per_s_per_chip", "time_to_train_s",
            "energy_to_train_J", "cost_to_train", "calibration"} <= {k for k, _ in shown}
    heads = page.locator("#cmp-table thead th").all_inner_texts()
    assert heads[1:] == [EXAMPLE["name"], "h100-sxm-80gb", "mi300x"]
    speed = page.locator('#cmp-table tr[data-key="tokens_per_s_per_chip"] td').all_inner_texts()
    assert len(speed) == 3
    assert "x)" not in speed[0]
    assert all("x)" in s for s in speed[1:])
    # exactly one best cell per measure row that has a leader
    assert page.locator('#cmp-table tr[data-key="tokens_per_s_per_chip"] td.lead').count() == 1
    days = page.locator('#cmp-table tr[data-key="time_to_train_s"] td').all_inner_texts()
    assert all(d.split(" (")[0].endswith("days") for d in days)
    # energies read in watt-hours, as the CLI and the report print them
    energy = page.locator('#cmp-table tr[data-key="energy_to_train_J"] td').all_inner_texts()
    assert energy
    assert all(e.split(" (")[0].endswith("Wh") for e in energy)
    # the HBM left free is a percentage already: its cells say so (the label does not)
    free = page.locator('#cmp-table tr[data-key="memory_headroom_pct"] td').all_inner_texts()
    assert free
    assert all(f.split(" (")[0].endswith(" %") for f in free), free
    assert page.inner_text("#cmp-progress-text") == "3 / 3 systems"
    # each row's likely measured rate reads as a range around its estimate, and one
    # sentence says whether the fastest row's lead is wider than the model's error
    likely = page.locator('#cmp-table tr[data-key="likely_tokens_per_s_per_chip"] td')
    assert [" to " in t for t in likely.all_inner_texts()] == [True] * 3
    wait_js(page, "!document.querySelector('#cmp-ranking').hidden")
    note = page.inner_text("#cmp-ranking")
    assert " leads on tokens/s per chip" in note
    # the cost axis names the currency the prices were given in
    pareto_y = page.evaluate(
        "document.querySelector('#plot-cmp-pareto').layout.yaxis.title.text")
    assert pareto_y == "cost to train (USD)"
    for div in ("#plot-cmp-bars", "#plot-cmp-pareto"):
        assert plot_rendered(page, div) > 0
        height = page.evaluate(f"document.querySelector('{div}').getBoundingClientRect().height")
        assert height > 200, f"{div} collapsed to {height}px"
    shot(page, "compare-three-systems")


def deadline_comparison(page: Page) -> None:
    """Fill the compare page: llama3-8b on 16 H100 and on 16 MI300X, 1e12 tokens,
    priced 2 and 2.5 a chip-hour, within 75 days."""
    page.click('#tabs button[data-tab="compare"]')
    page.select_option("#cmp-model", "llama3-8b")
    for field, value in (("global-batch", 256), ("seq-len", 4096), ("chips", 16),
                         ("train-tokens", "1e12"), ("price", "2,2.5"), ("deadline", "75")):
        page.fill(f"#cmp-{field}", str(value))
    for chip in ("h100-sxm-80gb", "mi300x"):
        page.select_option("#cmp-chip", chip)
        page.click("#cmp-add-chip")


def test_compare_page_picks_within_a_deadline(workbench: Page) -> None:
    """A deadline typed in days reaches the API in seconds and picks the row that meets
    it: llama3-8b on 16 chips, 1e12 tokens, takes about 70 days on H100 and 79 on MI300X,
    so 75 days leaves the H100 row alone (a deadline sent as 75 s would leave none)."""
    page = workbench
    deadline_comparison(page)
    page.click("#cmp-run")
    page.wait_for_selector('#cmp-status[data-state="done"]', timeout=90_000)
    wait_js(page, "!document.querySelector('#cmp-budget').hidden")
    note = page.inner_text("#cmp-budget")
    assert note.startswith("budget (time <= 75.0 days): h100-sxm-80gb, the cheapest of the "
                           "1 row(s) within it")
    assert page.get_attribute("#cmp-budget", "data-pick") == "h100-sxm-80gb"
    # the H100 leads within reach of the MI300X's range: the sentence quotes both ranges
    # as their table cells read them (it once said 11,846 where the cell said 11,850)
    ranking = page.inner_text("#cmp-ranking")
    assert "within the model's error" in ranking
    cells = page.locator('#cmp-table tr[data-key="likely_tokens_per_s_per_chip"] td')
    ranges = [t.split(" (")[0] for t in cells.all_inner_texts()]
    assert len(ranges) == 2
    assert f"its likely range ({ranges[0]})" in ranking
    assert f"mi300x {ranges[1]}" in ranking


def test_the_inference_page_compares_systems(workbench: Page) -> None:
    """The serving comparison (ocplan infer --search --vs) on the Inference page: one
    column per system, the B200 leading output tokens per chip on a small model (as the
    CLI's answer does, tests/test_serving_compare.py), costs in the server's currency; a
    layout field typed above is dropped, since a comparison searches the layouts."""
    page = workbench
    job_form(page, "inf", "llama3-8b", "h100-sxm-80gb",
             (("chips", 8), ("input-len", 1024), ("output-len", 256), ("vs", "mi300x,b200"),
              ("vs-prices", "2.5,2,4")))
    page.fill("#inf-tp", "8")
    with page.expect_response(lambda r: r.url.endswith("/api/infer/compare")) as sent:
        page.click("#inf-compare")
    page.wait_for_selector("#inf-compare-table")
    # the rows are the answer's, declared once with the CLI's and the report's
    answer = sent.value.json()
    assert answer["rows"] == row_labels(SERVING_COMPARE_ROWS)
    shown = side_by_side_rows(page, "#inf-compare-table")
    assert shown == declared_rows_shown(answer)
    assert {"output_tokens_per_s_per_chip", "likely_output_tokens_per_s_per_chip",
            "cost_per_mtok"} <= {k for k, _ in shown}
    heads = page.locator("#inf-compare-table thead th").all_inner_texts()
    assert heads[1:] == ["h100-sxm-80gb", "mi300x", "b200"]
    row = '#inf-compare-table tr[data-key="output_tokens_per_s_per_chip"] td'
    lead = page.locator(row + ".lead").all_inner_texts()
    assert len(lead) == 1
    assert page.locator(row).all_inner_texts().index(lead[0]) == 2
    cost = page.locator('#inf-compare-table tr[data-key="cost_per_mtok"] td').all_inner_texts()
    assert all("USD" in c for c in cost)
    assert "3 systems compared by throughput" in page.inner_text("#inf-status")
    assert "at the most load" not in page.inner_text("#inf-status")
    # under a latency limit the ranking is SLO goodput, and the page says where its
    # TTFT and TPOT rows are taken (the API's note)
    page.fill("#inf-slo-tpot", "0.04")
    page.click("#inf-compare")
    page.wait_for_selector('#inf-status[data-state="ready"]')
    wait_js(page, "document.querySelector('#inf-status').textContent.includes('goodput')")
    status = page.inner_text("#inf-status")
    assert "compared by goodput" in status
    assert "TTFT and TPOT at the most load each layout sustains" in status
    # a target rate sizes each system's fleet: its rows appear, with the request's figures
    page.fill("#inf-target-rate", "200")
    with page.expect_response(lambda r: r.url.endswith("/api/infer/compare")) as sent:
        page.click("#inf-compare")
    page.wait_for_selector('#inf-status[data-state="ready"]')
    answer = sent.value.json()
    assert answer["target_rate_per_s"] == 200
    chips = page.locator('#inf-compare-table tr[data-key="fleet_chips"] td').all_inner_texts()
    assert [c.split(" ")[0].replace(",", "") for c in chips] == [
        f"{r['fleet_chips']:.0f}" for r in answer["systems"]]
    assert "together serve 200 requests/s" in page.inner_text("#inf-status")
    # an availability goal and a repair time in hours: spares, the request in seconds
    page.fill("#inf-availability", "0.9999")
    page.fill("#inf-repair", "48")
    with page.expect_response(lambda r: r.url.endswith("/api/infer/compare")) as sent:
        page.click("#inf-compare")
    page.wait_for_selector('#inf-status[data-state="ready"]')
    answer = sent.value.json()
    assert (answer["availability"], answer["repair_s"]) == (0.9999, 48 * 3600.0)
    spares = page.locator('#inf-compare-table tr[data-key="fleet_spares"] td').all_inner_texts()
    assert [c.split(" ")[0] for c in spares] == [
        f"{r['fleet_spares']:.0f}" for r in answer["systems"]]
    assert "99.99 % of the time" in page.inner_text("#inf-status")
    page.fill("#inf-availability", "")
    page.fill("#inf-repair", "")
    page.fill("#inf-target-rate", "")
    page.fill("#inf-slo-tpot", "")


def test_export_system_yaml_and_results_csv(workbench: Page, tmp_path: Path) -> None:
    """Issue 11: export a composed system to YAML (it loads back and checks) and a
    search's results to CSV (one row per listed layout, the raw values)."""
    import csv

    from ocplan.catalog.catalog import load_catalog
    from ocplan.catalog.system import load_system

    page = workbench
    compose_example(page)
    with page.expect_download() as info:
        page.click("#sys-export")
    path = tmp_path / "system.yaml"
    info.value.save_as(path)
    system = load_system(path, load_catalog())
    assert system.spec.name == EXAMPLE["name"]
    assert system.num_chips == 1024
    job_form(page, "srch", "llama3-8b", "h100-sxm-80gb",
             (("chips", 16), ("global-batch", 64), ("seq-len", 2048), ("top-k", 3)))
    page.click("#srch-start")
    page.wait_for_selector('#srch-status[data-state="done"]', timeout=90_000)
    with page.expect_download() as info:
        page.click("#srch-csv")
    csv_path = tmp_path / "search.csv"
    info.value.save_as(csv_path)
    with csv_path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    shown = page.locator("#srch-top tbody tr").count()
    assert len(rows) == shown > 0
    assert all(float(r["tokens_per_s_per_chip"]) > 0 for r in rows)
    assert {r["chips"] for r in rows} == {"16"}


def test_match_report_renders_its_chart_offline(browser: Browser, tmp_path: Path) -> None:
    """Issue 12: the match report section: ranked platforms and the perf/W against
    perf/price chart, one point per platform that serves the mix, offline."""
    out = tmp_path / "match.html"
    mix = ROOT / "examples" / "cloud-mix.yaml"
    assert main(["match", "--workload", str(mix), "--report", str(out), "--top", "5"]) == 0
    page, watch = open_page(browser, "file://")
    page.goto(out.as_uri())
    assert plot_rendered(page, "#match") > 5
    assert page.locator("table").first.locator("tr").count() == 6  # header + top 5
    page.context.close()
    assert watch.blocked == []
    assert watch.errors == []


def save_shown(page: Page, base: str, prefix: str, name: str) -> tuple[str, Any]:
    """Save what a page shows under ``name`` (its ``#<prefix>-save`` button): the new
    scenario's id and the scenario as the API serves it back."""
    before = page.get_attribute(f"#{prefix}-saved", "data-saved-id")
    page.fill(f"#{prefix}-save-name", name)
    page.click(f"#{prefix}-save")
    wait_js(page, f"(document.querySelector('#{prefix}-saved').dataset.savedId || '') "
                  f"!== '{before or ''}'")
    sid = page.get_attribute(f"#{prefix}-saved", "data-saved-id")
    assert sid
    return sid, api(base, "GET", f"/api/scenarios/{sid}")


def test_serving_answers_are_saved_opened_and_loaded(workbench: Page, base: str) -> None:
    """A serving estimate and a serving comparison are saved from the Inference page as
    their own kinds, open side by side, and Load fills the form and runs them again (a
    QA pass, session 46: only training estimates, searches and systems could be saved)."""
    page = workbench
    job_form(page, "inf", "llama3-8b", "h100-sxm-80gb",
             (("chips", 8), ("input-len", 1024), ("output-len", 256)))
    page.fill("#inf-tp", "2")
    assert page.is_disabled("#inf-save")
    page.click("#inf-run")
    page.wait_for_selector('#inf-status[data-state="ready"]')
    status = page.inner_text("#inf-status")
    one, stored = save_shown(page, base, "inf", "serve 8b")
    assert stored["kind"] == "infer"
    assert stored["request"]["tp"] == 2
    assert stored["result"]["output_tokens_per_s_per_chip"] > 0

    page.fill("#inf-vs", "mi300x")
    page.fill("#inf-vs-prices", "2.5,2")
    page.click("#inf-compare")
    page.wait_for_selector("#inf-compare-table")
    page.wait_for_selector('#inf-status[data-state="ready"]')
    two, stored = save_shown(page, base, "inf", "serve 8b vs mi300x")
    assert stored["kind"] == "infer-compare"
    assert stored["request"]["vs"] == ["mi300x"]
    assert [r["name"] for r in stored["result"]["systems"]] == ["h100-sxm-80gb", "mi300x"]

    # opened together: the comparison as its side-by-side table, the estimate's rows
    page.click('#tabs button[data-tab="scenarios"]')
    for sid in (one, two):
        page.locator(f'#scn-list tr[data-id="{sid}"] .scn-pick').check()
    page.click("#scn-compare")
    page.wait_for_selector("#scn-diff-table")
    heads = page.locator(".scn-pane:nth-child(2) table.scn-compare thead th").all_inner_texts()
    assert heads[1:] == ["h100-sxm-80gb", "mi300x"]
    cells = page.locator('.scn-pane:nth-child(2) tr[data-key="output_tokens_per_s_per_chip"] td')
    assert cells.count() == 2
    assert page.locator('#scn-diff-table tr[data-key="mi300x.output_tokens_per_s_per_chip"]'
                        ).count() == 1

    # loaded into a fresh page: the form is the comparison's again and it runs
    page.reload()
    page.wait_for_selector('body[data-ready="1"]')
    page.click('#tabs button[data-tab="scenarios"]')
    page.locator(f'#scn-list tr[data-id="{two}"] .scn-load').click()
    page.wait_for_selector("#inf-compare-table")
    assert page.input_value("#inf-vs") == "mi300x"
    assert page.input_value("#inf-vs-prices") == "2.5,2"
    # and the estimate: its layout back in the form, the comparison's inputs cleared
    page.click('#tabs button[data-tab="scenarios"]')
    page.locator(f'#scn-list tr[data-id="{one}"] .scn-load').click()
    wait_js(page, "document.querySelector('#inf-compare-table') === null")
    page.wait_for_selector('#inf-status[data-state="ready"]')
    assert page.input_value("#inf-tp") == "2"
    assert page.input_value("#inf-vs") == ""
    assert page.inner_text("#inf-status") == status


def test_a_training_comparison_is_saved_and_loaded(workbench: Page, base: str) -> None:
    """The compare page saves its comparison (kind ``compare``); Load puts the job, the
    deadline in days and the systems back in the form and runs it again."""
    page = workbench
    deadline_comparison(page)
    assert page.is_disabled("#cmp-save")
    page.click("#cmp-run")
    page.wait_for_selector('#cmp-status[data-state="done"]', timeout=90_000)
    sid, stored = save_shown(page, base, "cmp", "8b on two chips")
    assert stored["kind"] == "compare"
    assert stored["request"]["max_time_to_train_s"] == 75 * 86400
    assert [s["chip"] for s in stored["request"]["systems"]] == ["h100-sxm-80gb", "mi300x"]
    assert stored["result"]["pick"]["name"] == "h100-sxm-80gb"

    page.reload()
    page.wait_for_selector('body[data-ready="1"]')
    page.click('#tabs button[data-tab="scenarios"]')
    page.locator(f'#scn-list tr[data-id="{sid}"] .scn-load').click()
    page.wait_for_selector('#cmp-status[data-state="done"]', timeout=90_000)
    assert page.locator("#cmp-systems li").count() == 2
    assert page.input_value("#cmp-deadline") == "75"
    assert page.input_value("#cmp-price") == "2,2.5"
    assert page.get_attribute("#cmp-budget", "data-pick") == "h100-sxm-80gb"
