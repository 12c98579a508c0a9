"""A serving estimate states the throughput its measurement would likely show.

As for training (``tests/test_likely_range.py``), the range is the 10th to 90th
percentile of the signed errors of published results each predicted by a calibration
fitted without them (``scripts/fit_serving.py``, by
:func:`~ocplan.plan.calibration.held_out_ranges`), kept per chip family in the serving
calibration with ``default`` for the families it has no results of. These tests check
the stored form, which family's range an estimate takes, that it turns the range into
rates the right way round, that a layout that cannot run has none, that validation
judges the serving rows by it, and that the CLI prints it.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from clikit import run
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.plan.calibration import RANGE_PERCENTILES, held_out_ranges
from ocplan.results.serving_validation import ServingCase
from ocplan.serving.calibration import (
    ServingCalibration,
    load_serving_calibration,
    serving_range_note,
)
from ocplan.serving.estimate import estimate_serving
from ocplan.serving.plan import ServingPlan
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.shape import ModelShape

CAT = load_catalog()
COMMITTED = load_serving_calibration()
RANGES = ServingCalibration(held_out_range_pct=(("default", (-30.0, 20.0)),
                                                ("hopper", (-10.0, 40.0))),
                            family_rows=(("cdna3", 4), ("hopper", 18)))


def _llama8b_on(chip: str, serving: ServingCalibration, tp: int = 1):  # type: ignore[no-untyped-def]
    wl = ServingWorkload(ModelShape.from_arch(CAT.model("llama3-8b")), input_len=512,
                         output_len=512)
    return estimate_serving(wl, ServingPlan(tp=tp), system_for_chip(CAT, chip, tp),
                            serving=serving)


def test_calibration_file_round_trips_and_older_files_have_no_range() -> None:
    again = ServingCalibration.from_json(json.loads(json.dumps(RANGES.to_json())))
    assert again == RANGES
    data = RANGES.to_json()
    del data["held_out_range_pct"], data["family_rows"]
    old = ServingCalibration.from_json(data)
    assert old.held_out_range_pct == ()
    assert old.family_rows == ()
    assert old.range_for("hopper").range_pct is None


def test_a_family_takes_its_own_range_else_default_s() -> None:
    own = RANGES.range_for("hopper")
    assert own == ((-10.0, 40.0), "hopper", 18)
    # cdna3 has results but no range of its own: default's, and it says so
    other = RANGES.range_for("cdna3")
    assert other.range_pct == (-30.0, 20.0)
    assert other.family == "default"
    assert RANGES.range_for(None).family == "default"


def test_estimate_divides_its_rates_by_one_plus_each_end() -> None:
    est = _llama8b_on("h100-sxm-80gb", RANGES)
    assert est.feasible
    assert est.held_out_range_pct == (-10.0, 40.0)
    assert (est.range_family, est.range_rows) == ("hopper", 18)
    low, high = est.likely_output_tokens_per_s_per_chip or (0.0, 0.0)
    rate = est.output_tokens_per_s_per_chip
    # over-predicted by up to 40 %: the run may measure 1/1.4 of the estimate; under by
    # up to 10 %: up to 1/0.9 of it
    assert low == pytest.approx(rate / 1.4)
    assert high == pytest.approx(rate / 0.9)
    assert low < rate < high
    ilow = (est.likely_input_tokens_per_s_per_chip or (0.0, 0.0))[0]
    assert ilow / est.input_tokens_per_s_per_chip == pytest.approx(low / rate)
    data = est.as_dict()
    assert data["likely_output_tokens_per_s_per_chip"] == pytest.approx([low, high])
    assert json.loads(json.dumps(data))["held_out_range_pct"] == [-10.0, 40.0]
    # a chip of another family: default's range
    assert _llama8b_on("mi300x", RANGES).range_family == "default"


def test_no_range_without_one_and_none_for_a_layout_that_cannot_run() -> None:
    plain = _llama8b_on("h100-sxm-80gb", replace(RANGES, held_out_range_pct=()))
    assert plain.feasible
    assert plain.likely_output_tokens_per_s_per_chip is None
    wl = ServingWorkload(ModelShape.from_arch(CAT.model("llama3-405b")), input_len=512,
                         output_len=512)
    big = estimate_serving(wl, ServingPlan(tp=1), system_for_chip(CAT, "h100-sxm-80gb", 1),
                           serving=RANGES)
    assert not big.feasible
    assert big.likely_output_tokens_per_s_per_chip is None
    data = big.as_dict()
    assert data["likely_output_tokens_per_s_per_chip"] is None
    assert data["held_out_range_pct"] is None


def test_serving_case_judged_at_the_edges() -> None:
    base = ServingCase("X", "s", "h100-sxm-80gb", "m", "offline", "output", 100.0, 120.0,
                       20.0, "ok", None, likely_range_pct=(-10.0, 20.0))
    assert base.within_likely_range is True
    assert replace(base, error_pct=20.1).within_likely_range is False
    assert replace(base, error_pct=-10.0).within_likely_range is True
    assert replace(base, likely_range_pct=None).within_likely_range is None
    assert replace(base, error_pct=None).within_likely_range is None
    assert base.as_json()["within_likely_range"] is True


def test_committed_serving_ranges_follow_the_rule() -> None:
    """The committed ranges exist, straddle zero, and a family with too few results
    never gets a range narrower than ``default``'s (the widening rule)."""
    ranges = dict(COMMITTED.held_out_range_pct)
    assert "default" in ranges
    d_low, d_high = ranges["default"]
    assert d_low < 0.0 < d_high
    rows = dict(COMMITTED.family_rows)
    assert sum(rows.values()) == COMMITTED.rows
    for fam, (low, high) in ranges.items():
        assert low < high
        if fam != "default" and rows.get(fam, 0) < 10:
            assert low <= d_low
            assert high >= d_high


def test_the_fit_rule_is_the_training_one_on_serving_errors() -> None:
    """The serving fit hands :func:`held_out_ranges` its source-group and chip folds: a
    family with 10 results gets its own percentiles."""
    source = {i: float(i) for i in range(10)} | {10: 50.0, 11: -50.0}
    chip = {i: 2.0 * e for i, e in source.items()}
    family_of: list[str | None] = ["hopper"] * 10 + ["gaudi"] * 2
    out = held_out_ranges({"source": source, "chip": chip}, family_of, ["hopper", "gaudi"])
    assert out["hopper"] == pytest.approx((0.9, 8.1))  # linear percentiles of 0..9
    assert RANGE_PERCENTILES == (10.0, 90.0)
    assert out["gaudi"][0] <= out["default"][0]
    assert out["gaudi"][1] >= out["default"][1]


def test_infer_prints_the_likely_throughput(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "infer", "--model", "llama3-8b", "--chip", "h100-sxm-80gb",
                     "--chips", "1", "--input-len", "512", "--output-len", "512")
    assert rc == 0
    assert "likely measured" in out
    assert "output tokens/s per chip" in out
    rc, out, _ = run(capsys, "infer", "--model", "llama3-8b", "--chip", "h100-sxm-80gb",
                     "--chips", "1", "--input-len", "512", "--output-len", "512",
                     "-f", "json")
    data = json.loads(out)
    low, high = data["likely_output_tokens_per_s_per_chip"]
    assert low < data["output_tokens_per_s_per_chip"] < high


def test_range_note_names_its_basis() -> None:
    own = serving_range_note((100.0, 200.0), "hopper", 18)
    assert "hopper family's 18 published serving results" in own
    assert "source group" in own
    pooled = serving_range_note((100.0, 200.0), "default", 0)
    assert "all published serving results" in pooled
    assert "widened" not in pooled
    thin = serving_range_note((100.0, 200.0), "gaudi", 8)
    assert "widened to the gaudi family's 8 serving results" in thin

