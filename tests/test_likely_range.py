"""An estimate states the range its measurement would likely fall in, from held-out runs.

The range is the 10th to 90th percentile of the signed errors of published runs each
predicted by a calibration fitted without them (``scripts/fit_calibration.py``), stored
per family in ``calibration.json``: a family with enough runs takes its own runs left
out with their publication; the others every run left out with its chip, widened to
their own runs where those reach further; ``default`` every run left out with its chip.
These tests check how the fits choose and computes the ranges, that an estimate turns
the committed range into rates the right way round, that validation reports how often
the ranges held, and that the CLI and JSON outputs carry it.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from clikit import run
from ocplan import ModelShape, Plan, Workload, estimate, load_catalog, system_for_chip
from ocplan.plan.calibration import (
    MIN_RANGE_RUNS,
    RANGE_PERCENTILES,
    Calibration,
    FamilyCalibration,
    held_out_ranges,
    load_calibration,
    range_from_own_runs,
)
from ocplan.plan.estimate import Estimate
from ocplan.results.validation import (
    Case,
    range_coverage,
    read_cases,
    run_validation,
    source_group,
)
from ocplan.units import format_number

DEV = Path(__file__).resolve().parents[2] / "shared" / "validation" / "training_dev.csv"


def _synthetic_held() -> tuple[dict[str, dict[int, float]], list[str | None]]:
    """Held-out errors of 30 runs: 12 of family ``big`` (all positive), 6 of ``small``
    (large), 12 of ``other``; one NaN (a run not predicted) in ``big``."""
    rng = np.random.default_rng(7)
    family_of: list[str | None] = ["big"] * 12 + ["small"] * 6 + ["other"] * 12
    source = {i: float(rng.uniform(5.0, 25.0)) for i in range(12)}
    source |= {i: float(rng.uniform(-60.0, 60.0)) for i in range(12, 18)}
    source |= {i: float(rng.uniform(-10.0, 10.0)) for i in range(18, 30)}
    source[3] = math.nan
    chip = {i: 1.5 * e if not math.isnan(e) else e for i, e in source.items()}
    return {"source": source, "chip": chip}, family_of


def test_fit_takes_own_runs_only_with_enough_of_them() -> None:
    held, family_of = _synthetic_held()
    ranges = held_out_ranges(held, family_of, ["big", "small", "other"])
    pooled = np.percentile([e for e in held["chip"].values() if not math.isnan(e)],
                           RANGE_PERCENTILES)
    own_big = np.percentile([held["source"][i] for i in range(12) if i != 3],
                            RANGE_PERCENTILES)
    # 11 predicted runs of "big" (>= MIN_RANGE_RUNS): its own range, all over-predictions
    assert MIN_RANGE_RUNS <= 11
    assert ranges["big"] == pytest.approx(tuple(own_big), abs=0.05)
    assert ranges["big"][0] > 0
    # "small" has 6 runs: the pooled leave-one-chip-out range (default's), widened to
    # its own, wider runs
    own_small = np.percentile([held["source"][i] for i in range(12, 18)], RANGE_PERCENTILES)
    assert ranges["default"] == pytest.approx(tuple(pooled), abs=0.05)
    assert ranges["small"] == pytest.approx((min(pooled[0], own_small[0]),
                                             max(pooled[1], own_small[1])), abs=0.05)
    assert ranges["small"][1] - ranges["small"][0] >= pooled[1] - pooled[0] - 0.1
    # a family with no predicted run takes default's
    assert held_out_ranges(held, family_of, ["none"])["none"] == ranges["default"]
    assert ranges["big"][0] <= ranges["big"][1]
    # without both schemes there is nothing to compute
    assert held_out_ranges({"source": held["source"]}, family_of, ["big"]) == {}


def test_calibration_file_round_trips_the_ranges(tmp_path: Path) -> None:
    cal = Calibration(families={"default": FamilyCalibration(held_out_range_pct=(-20.0, 15.0)),
                                "hopper": FamilyCalibration(runs=33,
                                                            held_out_range_pct=(-9.5, 12.25))})
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(cal.to_json()), encoding="utf-8")
    back = load_calibration(path)
    assert back.families["hopper"].held_out_range_pct == (-9.5, 12.25)
    assert back.families["default"].held_out_range_pct == (-20.0, 15.0)
    # a file written before the ranges existed still loads, without them
    old = cal.to_json()
    for fam in old["families"].values():  # type: ignore[union-attr]
        del fam["held_out_range_pct"]
    path.write_text(json.dumps(old), encoding="utf-8")
    load_calibration.cache_clear()
    assert load_calibration(path).families["hopper"].held_out_range_pct is None
    load_calibration.cache_clear()


def test_committed_ranges_are_sane() -> None:
    cal = load_calibration()
    for name, fam in cal.families.items():
        assert fam.held_out_range_pct is not None, name
        low, high = fam.held_out_range_pct
        assert low < 0 < high, (name, low, high)
    # a family backed by its own runs has its own range; a thin one at least default's
    base = cal.families["default"].held_out_range_pct
    assert base is not None
    for name, fam in cal.families.items():
        if not range_from_own_runs(name, fam.runs):
            low, high = fam.held_out_range_pct  # type: ignore[misc]
            assert low <= base[0], name
            assert high >= base[1], name


def _estimate(chip: str = "h100-sxm-80gb") -> Estimate:
    cat = load_catalog()
    system = system_for_chip(cat, chip, 64)
    wl = Workload(ModelShape.from_arch(cat.model("llama3-70b")), 8192, 128, "fp8")
    return estimate(wl, Plan(tp=4, pp=4, dp=2, cp=2, vpp=5), system)


def test_estimate_divides_its_rate_by_one_plus_each_end() -> None:
    est = _estimate()
    fam = load_calibration().families[est.calibration_family]
    assert est.held_out_range_pct == fam.held_out_range_pct
    likely = est.likely_tokens_per_s_per_chip
    assert likely is not None
    low, high = fam.held_out_range_pct  # type: ignore[misc]
    rate = est.tokens_per_s_per_chip
    assert likely == pytest.approx((rate / (1 + high / 100), rate / (1 + low / 100)))
    assert likely[0] < rate < likely[1]
    # a family that over-predicts (errors all positive) is measured below its estimate
    over = replace(est, held_out_range_pct=(10.0, 30.0)).likely_tokens_per_s_per_chip
    assert over is not None
    assert over[1] < rate
    assert over[0] == pytest.approx(rate / 1.3)


def test_json_has_the_range_and_an_infeasible_layout_has_none() -> None:
    est = _estimate()
    data = json.loads(json.dumps(est.as_dict()))
    assert data["likely_tokens_per_s_per_chip"] == pytest.approx(
        list(est.likely_tokens_per_s_per_chip or ()))
    assert data["held_out_range_pct"] == list(est.held_out_range_pct or ())
    cat = load_catalog()
    system = system_for_chip(cat, "h100-sxm-80gb", 8)
    wl = Workload(ModelShape.from_arch(cat.model("llama3-405b")), 8192, 8, "bf16")
    bad = estimate(wl, Plan(tp=8), system)
    assert not bad.feasible
    assert bad.likely_tokens_per_s_per_chip is None
    out = bad.as_dict()
    assert out["likely_tokens_per_s_per_chip"] is None
    assert out["held_out_range_pct"] is None


def _case(error: float | None, span: tuple[float, float] | None) -> Case:
    return Case("X", "s", "c", "m", 100.0, None if error is None else 100.0 + error, error,
                "ok", None, likely_range_pct=span)


def test_case_within_range_at_the_edges() -> None:
    assert _case(-10.0, (-10.0, 5.0)).within_likely_range is True
    assert _case(5.0, (-10.0, 5.0)).within_likely_range is True
    assert _case(5.1, (-10.0, 5.0)).within_likely_range is False
    assert _case(None, (-10.0, 5.0)).within_likely_range is None
    assert _case(1.0, None).within_likely_range is None
    cases = [_case(0.0, (-1.0, 1.0)), _case(3.0, (-1.0, 1.0)), _case(None, (-1.0, 1.0))]
    assert range_coverage(cases) == (1, 2)


@pytest.mark.skipif(not DEV.exists(), reason="../shared/validation is not beside the checkout")
def test_development_runs_fall_in_their_ranges_at_least_as_often_as_stated() -> None:
    """In sample the errors are tighter than held out, so at least the stated share of the
    development runs lies within the ranges taken from their held-out errors; a range
    turned the wrong way round, or taken from the wrong runs, falls short of it."""
    cases = run_validation(read_cases(DEV), load_catalog())
    within, judged = range_coverage(cases)
    assert judged == len(cases)
    assert within / judged >= (RANGE_PERCENTILES[1] - RANGE_PERCENTILES[0]) / 100.0


def test_cli_prints_the_range(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "estimate", "--model", "llama3-70b", "--chip", "h100-sxm-80gb",
                     "--chips", "64", "--global-batch", "128", "--seq-len", "8192",
                     "--precision", "fp8", "--tp", "4", "--pp", "4", "--cp", "2", "--vpp", "5")
    assert rc == 0
    est = _estimate()
    text = " ".join(out.split())
    likely = est.likely_tokens_per_s_per_chip
    assert likely is not None
    assert "likely measured" in text
    assert f"{format_number(likely[0])} to {format_number(likely[1])} tokens/s per chip" in text


@pytest.mark.skipif(not DEV.exists(), reason="../shared/validation is not beside the checkout")
def test_validate_json_counts_the_runs_within_range(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "validate", DEV, "--format", "json")
    assert rc == 0
    data = json.loads(out)
    flags = [c["within_likely_range"] for c in data["cases"]]
    assert data["summary"]["judged_for_range"] == sum(f is not None for f in flags)
    assert data["summary"]["within_likely_range"] == sum(f is True for f in flags)
    # each case carries what the table prints and groups by, and the range it was judged by
    with DEV.open(encoding="utf-8") as handle:
        rows = {r["case_id"]: r for r in csv.DictReader(handle)}
    assert [c["case_id"] for c in data["cases"]] == list(rows)
    for case in data["cases"]:
        row = rows[case["case_id"]]
        assert (case["chip"], case["model"]) == (row["chip"], row["model"])
        assert case["source"] == source_group(row["source"])
        assert case["architecture"] == ("moe" if row["moe_num_experts"] not in ("", "0")
                                        else "dense")
        low_high = case["likely_range_pct"]
        if case["within_likely_range"] is not None:
            low, high = low_high
            assert low < 0 < high
            assert case["within_likely_range"] == (low <= case["error_pct"] <= high)
