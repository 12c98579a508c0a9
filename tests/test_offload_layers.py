"""Activation offload of some of a stage's layers (``offload_layers``, Megatron-Core
``--cpu-offloading-num-layers``): one layout declaration, the memory and the exposed
copy time it derives, the request's check, and the Megatron-Bridge presets it reads."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import ValidationError

from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.errors import Infeasible
from ocplan.plan.estimate import Estimate, estimate
from ocplan.plan.memory_terms import OFFLOAD_RESIDENT_LAYERS
from ocplan.plan.plan import LAYOUT, Plan
from ocplan.results.validation import offload_layers, plan_from_row, shape_from_row
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "validation" / "training_dev.csv"
CAT = load_catalog()
LLAMA70 = ModelShape.from_arch(CAT.model("llama3-70b"))
WL = Workload(LLAMA70, 8192, 256, "fp8")
#: Megatron-Bridge's GB300 FP8 preset of Llama 3 70B: FSDP over 64 GPUs, micro-batch 2.
PLAN = Plan(tp=1, pp=1, dp=64, micro_batch=2, zero=3)


def _est(plan: Plan, chip: str = "gb300") -> Estimate:
    return estimate(WL, plan, system_for_chip(CAT, chip, 64))


def test_offloaded_layers_leave_hbm_one_layer_at_a_time() -> None:
    kept = _est(PLAN).memory
    assert kept is not None
    per_layer = kept.activations_bytes / LLAMA70.n_layers
    for k in (1, 20, 79):
        mem = _est(replace(PLAN, offload=True, offload_layers=k)).memory
        assert mem is not None
        want = per_layer * (LLAMA70.n_layers - k + OFFLOAD_RESIDENT_LAYERS)
        assert mem.activations_bytes == pytest.approx(want, rel=1e-9)
    every = _est(replace(PLAN, offload=True)).memory
    named = _est(replace(PLAN, offload=True, offload_layers=LLAMA70.n_layers)).memory
    assert every is not None
    assert named is not None
    assert every.activations_bytes == pytest.approx(named.activations_bytes, rel=1e-12)
    assert every.activations_bytes == pytest.approx(per_layer * OFFLOAD_RESIDENT_LAYERS)
    # without offload the count is idle
    assert _est(replace(PLAN, offload_layers=20)).memory == kept


def test_the_exposed_copies_scale_with_the_layers_offloaded() -> None:
    # an H100's PCIe host link cannot hide a layer's activations behind its compute
    plan = Plan(tp=4, pp=4, dp=4, micro_batch=1, zero=1)
    base = _est(plan, "h100-sxm-80gb").time
    assert base is not None
    extra = []
    for k in (5, 10, 20):
        t = _est(replace(plan, offload=True, offload_layers=k), "h100-sxm-80gb").time
        assert t is not None
        extra.append(t.compute_s - base.compute_s)
    assert extra[0] > 0
    assert extra[1] == pytest.approx(2 * extra[0], rel=1e-9)
    assert extra[2] == pytest.approx(4 * extra[0], rel=1e-9)


def test_a_count_beyond_the_stage_or_without_offload_is_refused() -> None:
    with pytest.raises(Infeasible, match="offload_layers 81 is more than the 80 layers"):
        replace(PLAN, offload=True, offload_layers=81).check(WL)
    with pytest.raises(Infeasible, match="offload_layers 41 is more than the 40 layers"):
        Plan(tp=1, pp=2, dp=32, offload=True, offload_layers=41).check(WL)
    job = {"model": "llama3-70b", "chip": "gb300", "chips": 64, "global_batch": 256,
           "seq_len": 8192, "precision": "fp8", "micro_batch": 2, "zero": 3}
    with pytest.raises(ValidationError, match="offload_layers"):
        api.EstimateRequest.model_validate(job | {"offload_layers": 20})
    req = api.EstimateRequest.model_validate(job | {"offload": True, "offload_layers": 20})
    result, _, _ = api.run_estimate(CAT, req)
    assert result.feasible
    assert result.plan.offload_layers == 20
    # declared once: the search holds it as a stack's setting, the label names it
    assert LAYOUT["offload_layers"].search == "fixed"
    assert "offload_layers=20" in result.plan.label()


@pytest.mark.skipif(not DEV.exists(), reason="needs ../shared/validation")
def test_the_validation_reads_the_presets_offload() -> None:
    with DEV.open(encoding="utf-8") as handle:
        rows = {r["case_id"]: r for r in csv.DictReader(handle)}
    r058 = rows["R058"]  # GB300, Llama 3 70B, FP8, FSDP: 20 layers
    assert offload_layers(r058) == 20
    plan = plan_from_row(r058, shape_from_row(r058))
    assert plan.offload
    assert plan.offload_layers == 20
    assert offload_layers(dict(r058, chip="gb200")) == 40
    assert offload_layers(dict(r058, precision="bf16")) == 30
    # not the presets: without FSDP, in MXFP8, or another model
    assert offload_layers(dict(r058, zero_stage="1")) is None
    mx = dict(r058, measured_from=r058["measured_from"] + "; precision: MXFP8")
    assert offload_layers(mx) is None
    assert offload_layers(rows["R060"]) is None
    assert not plan_from_row(rows["R060"], shape_from_row(rows["R060"])).offload
