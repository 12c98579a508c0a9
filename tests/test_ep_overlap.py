"""The expert-parallel overlap switch (``ep_overlap``, DeepEP-style dispatch/combine
overlap; issue 9 item 3): one declaration in the plan gives the engine term, the flag,
the API field and the search's handling."""

from __future__ import annotations

import numpy as np
import pytest

from moekit import MOE, estimate
from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.plan.calibration import load_calibration
from ocplan.plan.comm_terms import _Layouts, ep_exposed_s
from ocplan.plan.engine import chip_peaks, efficiencies, system_model
from ocplan.plan.layer_cost import job_shard, stage_compute
from ocplan.plan.layout_arrays import derive_layout
from ocplan.plan.plan import Plan

ONE_NODE = dict(model="mixtral-8x7b", chip="h200-sxm-141gb", chips=8, global_batch=128,
                seq_len=4096, tp=1, ep=8, zero=3, recompute="full")


def test_off_exposes_the_dispatch_and_combine_in_full() -> None:
    """Inside one server the deduplicated and plain all-to-alls are the same traffic:
    exposed = (1 - hidden) x the all-to-alls when on, all of them when off."""
    on, off = estimate(ONE_NODE), estimate(ONE_NODE, ep_overlap=False)
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
    """Across servers the deduplicated (DeepEP-style) dispatch crosses scale-out once
    per remote server holding one of a token's experts; the plain all-to-all sends every
    copy: overlapped, less than (1 - hidden) x the plain in-line time is exposed."""
    on, off = estimate(MOE), estimate(MOE, ep_overlap=False, ep_dedup=False)
    assert on.time is not None
    assert off.time is not None
    hidden = load_calibration().ep_overlap
    assert on.time.ep_comm_s < (1 - hidden) * off.time.ep_comm_s * (1 - 1e-6)


def test_the_overlap_hides_no_more_than_the_compute_beside_it() -> None:
    """``C - min(o C / 2, B) - min(o C / 2, F)``: with no compute to hide behind all of
    it is exposed, with plenty the calibrated share is hidden, and each half hides only
    behind its own phase (the forward all-to-alls behind another micro-batch's backward,
    the backward ones behind its forward)."""
    cat = load_catalog()
    wl = api.training_workload(cat, api.EstimateRequest.model_validate(MOE))
    sm = system_model(system_for_chip(cat, "h100-sxm-80gb", 16, "test"))
    cal = load_calibration()
    d = derive_layout(wl, Plan(tp=2, dp=8, ep=8).encoded())
    sc = stage_compute(wl.model, wl.precision, chip_peaks(sm, wl.precision),
                       efficiencies(sm, cal), job_shard(wl), shard=d.shard_columns(),
                       per_stage=d.per_stage)
    g = _Layouts(d, sc.moe_layers)

    def exposed(forward: float, backward: float) -> float:
        return float(ep_exposed_s(wl, sm.fabric, cal, d, sc.moe_layers, g,
                                  np.full_like(d.tp, forward), np.full_like(d.tp, backward)))

    none, ample = exposed(0.0, 0.0), exposed(1e9, 1e9)
    assert none > 0
    assert ample == pytest.approx((1 - cal.ep_overlap) * none, rel=1e-12)
    half = 0.5 * cal.ep_overlap * none
    # a long backward hides the forward half only; a long forward the backward half only
    assert exposed(0.0, 1e9) == pytest.approx(none - half, rel=1e-12)
    assert exposed(1e9, 0.0) == pytest.approx(none - half, rel=1e-12)
    assert exposed(0.5 * half, 0.5 * half) == pytest.approx(none - half, rel=1e-12)
