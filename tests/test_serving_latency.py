"""Serving latencies at a published load (scripts/serving_latency.py,
docs/serving-latency.md): the report is what the model answers now for every result it
covers; each result is estimated at its own measured rate; the means are read from the
row's source; and a rate beyond the layout's capacity is reported as such."""

from __future__ import annotations

import csv
import json
import statistics
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from typer.testing import CliRunner

from ocplan.catalog.catalog import load_catalog
from ocplan.cli.main import app
from ocplan.results.serving_validation import prepare_serving_row, published_plan
from ocplan.serving.caveats import (
    LATENCY_AT_LOAD,
    LIKELY_RANGE_HELD,
    LOADED_RESULTS,
    LOADED_TPOT_MEDIAN_PCT,
    LOADED_TPOT_RANGE_PCT,
    LOADED_TTFT_MEDIAN_PCT,
    OPERATING_POINT_ERROR_PCT,
    OPERATING_POINTS,
)
from ocplan.serving.estimate import estimate_serving
from scriptkit import load_script

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "validation" / "inference_dev.csv"

pytestmark = pytest.mark.skipif(not DEV.exists(), reason="needs ../shared/validation")


@pytest.fixture(scope="module")
def sl() -> ModuleType:
    return load_script("serving_latency")


@pytest.fixture(scope="module")
def measured(sl: ModuleType) -> list[Any]:
    return sl.measure(sl.rows())


def test_the_report_is_the_model_now(sl: ModuleType, measured: list[Any]) -> None:
    """The committed report is the rendering of every result estimated now: a change
    that moves serving latencies must run the script again."""
    assert sl.REPORT.read_text(encoding="utf-8") == sl.render(measured)


def test_every_covered_result_is_loaded_published_and_has_means(
        sl: ModuleType, measured: list[Any]) -> None:
    """The results are exactly the Server and Interactive rows of the three files with a
    published aggregated layout and logged means; each is at its measured rate."""
    catalog = load_catalog()
    wanted = []
    for r in sl.rows():
        p = prepare_serving_row(r, catalog)
        if published_plan(p) is not None and p.role == "aggregated":
            wanted.append((r["case_id"], float(r["measured_output_tokens_per_s_per_chip"])
                           * p.chips / p.workload.output_len))
    assert len(wanted) >= 50
    assert [(x.case_id, x.rate_per_s) for x in measured] == wanted
    assert {x.scenario for x in measured} == {"server", "interactive"}


def test_a_result_is_estimated_at_its_rate_with_its_layout(
        sl: ModuleType, measured: list[Any]) -> None:
    """M6060 (B300, Llama 2 70B Interactive): the log's means (61.3 / 31.8 ms) and the
    estimate's at 258 requests/s, the rate 8,840.5 tokens/s a chip over 8 chips at
    273.8 tokens an answer, Poisson."""
    x = next(x for x in measured if x.case_id == "M6060")
    assert (x.ttft_mean_ms, x.tpot_mean_ms) == (61.3, 31.8)
    assert (x.ttft_p99_ms, x.tpot_p99_ms) == (154.8, 39.9)
    with sl.SWEEP.open(newline="", encoding="utf-8") as f:
        row = next(r for r in csv.DictReader(f) if r["case_id"] == "M6060")
    p = prepare_serving_row(row, load_catalog())
    plan = published_plan(p)
    assert plan is not None
    assert x.rate_per_s == pytest.approx(8840.5 * 8 / p.workload.output_len)
    assert x.rate_per_s == pytest.approx(258.3, rel=2e-3)
    est = estimate_serving(replace(p.workload, load="poisson", rate_per_s=x.rate_per_s),
                           plan, p.system)
    assert x.status == "ok"
    assert est.tpot_s is not None
    assert est.ttft_s is not None
    assert x.predicted_tpot_mean_ms == pytest.approx(est.tpot_s * 1e3, rel=1e-12)
    assert x.predicted_ttft_mean_ms == pytest.approx(est.ttft_s * 1e3, rel=1e-12)
    # at a slower rate the same layout answers sooner
    slow = estimate_serving(replace(p.workload, load="poisson", rate_per_s=x.rate_per_s / 4),
                            plan, p.system)
    assert slow.tpot_s is not None
    assert slow.tpot_s < est.tpot_s


def test_a_rate_beyond_capacity_is_overloaded_without_latencies(
        sl: ModuleType, measured: list[Any]) -> None:
    over = [x for x in measured if x.status == "overloaded"]
    ok = [x for x in measured if x.status == "ok"]
    assert ok
    for x in over:
        assert x.predicted_tpot_mean_ms is None
        assert x.predicted_ttft_p99_ms is None
    for x in ok:
        assert x.predicted_tpot_mean_ms is not None
        assert x.predicted_tpot_mean_ms > 0
    # the same result at ten times its rate cannot be kept up with
    x = ok[0]
    with sl.SWEEP.open(newline="", encoding="utf-8") as f:
        rows = {r["case_id"]: r for r in csv.DictReader(f)}
    row = rows.get(x.case_id)
    if row is None:  # a development or hold-out result
        row = next(r for r in sl.rows() if r["case_id"] == x.case_id)
    fast = dict(row)
    fast["measured_output_tokens_per_s_per_chip"] = str(
        10 * float(row["measured_output_tokens_per_s_per_chip"]))
    (y,) = sl.measure([fast])
    assert y.status == "overloaded"


def test_the_latency_caveat_quotes_the_report(measured: list[Any]) -> None:
    """The sentence every estimate at a given rate carries states the report's count,
    medians and TPOT range."""
    ok = [x for x in measured if x.status == "ok"]
    tpot = [100.0 * (x.predicted_tpot_mean_ms / x.tpot_mean_ms - 1.0) for x in ok]
    ttft = [100.0 * (x.predicted_ttft_mean_ms / x.ttft_mean_ms - 1.0) for x in ok]
    assert len(ok) == LOADED_RESULTS
    assert round(statistics.median(tpot), 1) == LOADED_TPOT_MEDIAN_PCT
    assert round(statistics.median(ttft), 1) == LOADED_TTFT_MEDIAN_PCT
    assert (round(min(tpot), 1), round(max(tpot), 1)) == LOADED_TPOT_RANGE_PCT
    assert f"({LOADED_RESULTS} the model keeps up with)" in LATENCY_AT_LOAD
    assert f"TPOT was {-LOADED_TPOT_MEDIAN_PCT:.0f} %" in LATENCY_AT_LOAD
    its = [abs(100.0 * (x.predicted_iteration_ms / x.iteration_ms - 1.0)) for x in measured
           if x.iteration_ms is not None]
    assert len(its) == OPERATING_POINTS
    assert round(statistics.median(its), 1) == OPERATING_POINT_ERROR_PCT[0]
    a = sorted(its)
    assert round(a[round(0.9 * (len(a) - 1))], 1) == OPERATING_POINT_ERROR_PCT[1]
    assert f"{OPERATING_POINTS} MLPerf Server and Interactive" in LATENCY_AT_LOAD
    assert f"within {OPERATING_POINT_ERROR_PCT[0]:.0f} % at the median" in LATENCY_AT_LOAD
    held = tuple(sum(bool(x.within_likely(w)) for x in measured) for w in ("tpot", "ttft"))
    assert held == LIKELY_RANGE_HELD
    assert all(x.likely_tpot_mean_ms is not None for x in measured)
    assert (f"held {held[0]} of those {OPERATING_POINTS} logged mean TPOTs and {held[1]} of "
            "their mean TTFTs") in LATENCY_AT_LOAD
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert (f"That range held {held[0]} of the {OPERATING_POINTS} logged mean TPOTs and "
            f"{held[1]} of their mean TTFTs.") in readme
    guide = " ".join((ROOT / "docs" / "serving.md").read_text(encoding="utf-8").split())
    assert f"it held {held[0]} logged mean TPOTs and {held[1]} mean TTFTs" in guide


def test_an_estimate_at_a_rate_carries_the_latency_caveat() -> None:
    runner = CliRunner()
    args = ["infer", "--model", "llama3-70b", "--chip", "h200-sxm-141gb", "--chips", "8",
            "--tp", "8", "--format", "json"]
    loaded = runner.invoke(app, [*args, "--load", "poisson", "--rate", "2"])
    assert loaded.exit_code == 0, loaded.output
    assert json.loads(loaded.output)["caveats"] == [LATENCY_AT_LOAD]
    offline = runner.invoke(app, args)
    assert offline.exit_code == 0, offline.output
    assert LATENCY_AT_LOAD not in json.loads(offline.output)["caveats"]


def test_the_operating_point_follows_littles_law(sl: ModuleType,
                                                 measured: list[Any]) -> None:
    """M6060: 258.3 requests/s over 8 instances at a 31.8 ms mean TPOT and 273.8-token
    answers hold about 281 decoding sequences an instance, and about one prompt (of the
    mean input) enters each iteration; the model's iteration there is the one the report
    lists, and a longer iteration holds more sequences."""
    x = next(x for x in measured if x.case_id == "M6060")
    with sl.SWEEP.open(newline="", encoding="utf-8") as f:
        row = next(r for r in csv.DictReader(f) if r["case_id"] == "M6060")
    p = prepare_serving_row(row, load_catalog())
    plan = published_plan(p)
    assert plan is not None
    tokens, prompts, seqs = sl.operating_point(p, plan, x.rate_per_s, 0.0318)
    assert seqs == pytest.approx(x.rate_per_s / 8 * p.workload.output_len * 0.0318)
    assert seqs == pytest.approx(281, abs=1.5)
    assert prompts == pytest.approx(x.rate_per_s / 8 * 0.0318)
    assert tokens == pytest.approx(prompts * p.workload.prefill_len)
    assert x.iteration_ms == x.tpot_mean_ms
    assert x.predicted_iteration_ms is not None
    assert 0.5 * x.iteration_ms < x.predicted_iteration_ms < 1.5 * x.iteration_ms
    assert sl.operating_point(p, plan, x.rate_per_s, 0.05)[2] > seqs
