"""QA of the Match page: the per-kW column under its own key, the platforms not modelled
counted in the status line, and a chart without points that says why (headless
Chromium against a real server, as ``test_web_match``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from browserkit import needs_chromium
from ocplan.web.app import create_app

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

TIMEOUT_MS = 30_000
UNPRICED: dict[str, Any] = {"name": "unpriced mix", "demand": {"cloud-throughput": 100},
                            "electricity_per_kwh": 0.12}


@pytest.fixture(scope="module")
def base(serve: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    db = tmp_path_factory.mktemp("match_qa") / "scenarios.db"
    return str(serve(create_app(f"sqlite:///{db}", job_workers=1, pool_workers=1)))


@pytest.fixture
def page(browser: Browser, base: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    p = context.new_page()
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    p.goto(base + "/match")
    p.wait_for_selector('body[data-ready="1"]')
    yield p
    context.close()
    assert errors == []


@needs_chromium
def test_an_unpriced_match_shows_per_kw_and_says_why_the_chart_is_empty(
        page: Page, tmp_path: Path) -> None:
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
