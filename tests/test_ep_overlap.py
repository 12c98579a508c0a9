"""The expert-parallel overlap switch (``ep_overlap``, DeepEP-style dispatch/combine
overlap; issue 9 item 3): one declaration in the plan gives the engine term, the flag,
the API field and the search's handling."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.plan.calibration import load_calibration
from ocplan.plan.estimate import Estimate
from ocplan.results.validation import plan_from_row, shape_from_row

DEV = Path(__file__).resolve().parents[2] / "shared" / "validation" / "training_dev.csv"

MOE = dict(model="mixtral-8x7b", chip="h100-sxm-80gb", chips=16, global_batch=128,
           seq_len=4096, tp=2, ep=8)
DENSE = dict(model="llama3-8b", chip="h100-sxm-80gb", chips=8, global_batch=64, seq_len=4096,
             tp=2)


def _estimate(job: dict[str, object], **layout: object) -> Estimate:
    req = api.EstimateRequest.model_validate({**job, **layout})
    result, _, _ = api.run_estimate(load_catalog(), req)
    assert result.feasible, result.reason
    return result


def test_off_exposes_the_dispatch_and_combine_in_full() -> None:
    on, off = _estimate(MOE), _estimate(MOE, ep_overlap=False)
    assert on.time is not None
    assert off.time is not None
    hidden = load_calibration().ep_overlap
    assert 0 < hidden < 1
    # exposed = (1 - hidden) x the all-to-alls when on, all of them when off
    assert off.time.ep_comm_s == pytest.approx(on.time.ep_comm_s / (1 - hidden), rel=1e-9)
    assert off.step_s > on.step_s
    assert off.memory is not None
    assert on.memory is not None
    assert off.memory.total_bytes == pytest.approx(on.memory.total_bytes, rel=1e-12)


def test_a_dense_model_does_not_care() -> None:
    assert _estimate(DENSE, ep_overlap=False).step_s == pytest.approx(
        _estimate(DENSE).step_s, rel=1e-12)


def test_the_declaration_reaches_the_api_and_the_search() -> None:
    assert "ep_overlap" in api.EstimateRequest.model_fields
    assert any(f["name"] == "ep_overlap" for f in api.layout_fields())
    req = api.SearchRequest(model="mixtral-8x7b", chip="h100-sxm-80gb", chips=16,
                            global_batch=128, seq_len=4096, top_k=3)
    found = api.run_search(load_catalog(), req)
    assert found.top
    assert all(e.plan.ep_overlap for e in found.top)  # off only ever exposes more
    assert found.pruned["dominated"] > 0


def test_a_validation_row_that_says_no_deepep_runs_without_the_overlap() -> None:
    rows = {r["case_id"]: r
            for r in csv.DictReader(DEV.read_text(encoding="utf-8").splitlines())}
    # R204: "baseline, 1F1B schedule, no Primus-Turbo/DeepEP features" (AMD Primus)
    off = rows["R204"]
    assert not plan_from_row(off, shape_from_row(off)).ep_overlap
    # R207: the same source's optimized run, "Primus-Turbo DeepEP" enabled
    on = rows["R207"]
    assert plan_from_row(on, shape_from_row(on)).ep_overlap
    # notes that say nothing keep the default
    quiet = dict(off, measured_from="reported_tps: tokens/s/GPU")
    assert plan_from_row(quiet, shape_from_row(quiet)).ep_overlap
