"""The expert-parallel overlap switch (``ep_overlap``, DeepEP-style dispatch/combine
overlap; issue 9 item 3): one declaration in the plan gives the engine term, the flag,
the API field and the search's handling."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.plan.calibration import load_calibration
from ocplan.plan.comm_terms import _Layouts, ep_exposed_s
from ocplan.plan.engine import chip_peaks, efficiencies, system_model
from ocplan.plan.estimate import Estimate
from ocplan.plan.layer_cost import stage_compute
from ocplan.plan.layout_arrays import derive_layout
from ocplan.plan.plan import Plan
from ocplan.results.validation import plan_from_row, shape_from_row

DEV = Path(__file__).resolve().parents[2] / "shared" / "validation" / "training_dev.csv"

MOE = dict(model="mixtral-8x7b", chip="h100-sxm-80gb", chips=16, global_batch=128,
           seq_len=4096, tp=2, ep=8)
ONE_NODE = dict(model="mixtral-8x7b", chip="h200-sxm-141gb", chips=8, global_batch=128,
                seq_len=4096, tp=1, ep=8, zero=3, recompute="full")
DENSE = dict(model="llama3-8b", chip="h100-sxm-80gb", chips=8, global_batch=64, seq_len=4096,
             tp=2)


def _estimate(job: dict[str, object], **layout: object) -> Estimate:
    req = api.EstimateRequest.model_validate({**job, **layout})
    result, _, _ = api.run_estimate(load_catalog(), req)
    assert result.feasible, result.reason
    return result


def test_off_exposes_the_dispatch_and_combine_in_full() -> None:
    """Inside one server the deduplicated and plain all-to-alls are the same traffic:
    exposed = (1 - hidden) x the all-to-alls when on, all of them when off."""
    on, off = _estimate(ONE_NODE), _estimate(ONE_NODE, ep_overlap=False)
    assert on.time is not None
    assert off.time is not None
    hidden = load_calibration().ep_overlap
    assert 0 < hidden < 1
    assert off.time.ep_comm_s == pytest.approx(on.time.ep_comm_s / (1 - hidden), rel=1e-9)
    assert off.step_s > on.step_s
    assert off.memory is not None
    assert on.memory is not None
    assert off.memory.total_bytes == pytest.approx(on.memory.total_bytes, rel=1e-12)


def test_deepep_sends_a_token_once_per_remote_node() -> None:
    """Across servers the overlapped (DeepEP-style) dispatch crosses scale-out once per
    remote server holding one of a token's experts; the plain all-to-all sends every
    copy: less than (1 - hidden) x the plain time is exposed."""
    on, off = _estimate(MOE), _estimate(MOE, ep_overlap=False)
    assert on.time is not None
    assert off.time is not None
    hidden = load_calibration().ep_overlap
    assert on.time.ep_comm_s < (1 - hidden) * off.time.ep_comm_s * (1 - 1e-6)


def test_the_overlap_hides_no_more_than_the_compute_beside_it() -> None:
    """``C - min(o C, W)``: with no compute to hide behind all of it is exposed, with
    plenty the calibrated share is hidden."""
    cat = load_catalog()
    wl = api.training_workload(cat, api.EstimateRequest.model_validate(MOE))
    sm = system_model(system_for_chip(cat, "h100-sxm-80gb", 16, "test"))
    cal = load_calibration()
    d = derive_layout(wl, Plan(tp=2, dp=8, ep=8).encoded())
    sc = stage_compute(wl.model, wl.precision, chip_peaks(sm, wl.precision),
                       efficiencies(sm, cal), wl.seq_len, tp=d.tp, mb=d.mb, cp=d.cp,
                       ep=d.ep, etp=d.etp, sp=d.sp.astype(float), per_stage=d.per_stage)
    g = _Layouts(d, sc.moe_layers)

    def exposed(window: float) -> float:
        return float(ep_exposed_s(wl, sm.fabric, cal, d, sc.moe_layers, g,
                                  np.full_like(d.tp, window)))

    none, ample = exposed(0.0), exposed(1e9)
    assert none > 0
    assert ample == pytest.approx((1 - cal.ep_overlap) * none, rel=1e-12)
    assert exposed(0.5 * cal.ep_overlap * none) == pytest.approx(
        none * (1 - 0.5 * cal.ep_overlap), rel=1e-12)


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
