"""Native or portable attention kernel (``native_attention``): one declaration in the plan
gives the engine's term (attention at the chip's measured ``portable_attention`` rate),
the API field, the search's fixed value (the default) and the validation reading (torchtitan's runs
attend with PyTorch SDPA's FlashAttention-2 backend)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from moekit import DEV, estimate
from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.costmodel.op_time import PassTime
from ocplan.plan.calibration import load_calibration
from ocplan.plan.engine import evaluate_one, system_model
from ocplan.plan.layer_cost import StageCompute, with_attention_rate
from ocplan.results.validation import plan_from_row, shape_from_row

LONG = dict(model="llama3-8b", chips=8, global_batch=64, seq_len=8192, tp=1, zero=3)


def _attention_s(job: dict[str, object], **layout: object) -> tuple[float, float]:
    """(attention seconds per step, step seconds) of ``job`` laid out by ``layout``."""
    req = api.EstimateRequest.model_validate({**job, **layout})
    e, system, workload = api.run_estimate(load_catalog(), req)
    assert e.feasible, e.reason
    f = evaluate_one(workload, system_model(system), load_calibration(), e.plan)
    return float(f["attn_time_share"]) * e.step_s, e.step_s


def test_the_catalog_carries_the_measured_rate_on_hopper_only() -> None:
    catalog = load_catalog()
    rates = {chip: system_model(system_for_chip(catalog, chip, 8)).compute.portable_attention
             for chip in ("h100-sxm-80gb", "h200-sxm-141gb", "a100-sxm-80gb", "b200")}
    assert rates == {"h100-sxm-80gb": 0.58, "h200-sxm-141gb": 0.58, "a100-sxm-80gb": 1.0,
                     "b200": 1.0}


def test_with_attention_rate_divides_only_the_attention_seconds() -> None:
    one = np.array([1.0, 1.0])
    p = PassTime(2 * one, 3 * one, 5 * one)
    sc = StageCompute(p, p, 7 * one, p, p, one, (11 * one,))
    out = with_attention_rate(sc, np.array([1.0, 0.5]))
    assert out.forward.attention_s.tolist() == [3.0, 6.0]
    assert out.backward.attention_s.tolist() == [3.0, 6.0]
    assert out.attention_fwd_s.tolist() == [7.0, 14.0]
    assert out.forward.matrix_s.tolist() == [2.0, 2.0]
    assert out.backward.memory_s.tolist() == [5.0, 5.0]
    assert out.head_fwd is sc.head_fwd
    assert out.named_s is sc.named_s


def test_a_portable_kernel_slows_hopper_attention_by_the_measured_rate() -> None:
    """Llama 3 8B at 8192 tokens on H100: attention seconds grow by 1 / 0.58 and the step
    by exactly that growth (nothing else moves)."""
    job = dict(LONG, chip="h100-sxm-80gb")
    native_attn, native_step = _attention_s(job)
    portable_attn, portable_step = _attention_s(job, native_attention=False)
    assert portable_attn == pytest.approx(native_attn / 0.58, rel=1e-9)
    assert portable_step - native_step == pytest.approx(portable_attn - native_attn, rel=1e-9)
    assert native_attn > 0.05 * native_step


def test_on_a100_the_portable_kernel_is_the_native_one() -> None:
    job = dict(LONG, chip="a100-sxm-80gb")
    assert estimate(job, native_attention=False).step_s == pytest.approx(
        estimate(job).step_s, rel=1e-12)


def test_the_declaration_reaches_the_api_label_and_search() -> None:
    assert "native_attention" in api.EstimateRequest.model_fields
    assert any(f["name"] == "native_attention" for f in api.layout_fields())
    job = dict(LONG, chip="h100-sxm-80gb")
    assert "native_attn" in estimate(job, native_attention=False).plan.label()
    assert "native_attn" not in estimate(job).plan.label()
    # held fixed in a search, as grouped_gemm is: a search looks for the best layout of
    # a stack with the native kernel
    req = api.SearchRequest(model="llama3-8b", chip="h100-sxm-80gb", chips=8,
                            global_batch=64, seq_len=8192, top_k=3)
    found = api.run_search(load_catalog(), req)
    assert found.top
    assert all(e.plan.native_attention for e in found.top)


def test_torchtitan_and_llm_foundry_rows_run_the_portable_kernel() -> None:
    """The development set's torchtitan rows (R088-R090, R093) and llm-foundry's MPT rows
    (R078, R079 on H100, R081 on A100; FlashAttention-2 through ``attn_impl: flash``) read
    as portable attention; Megatron-Bridge's (R076) and MLPerf's (R124) as native."""
    rows = {r["case_id"]: r
            for r in csv.DictReader(DEV.read_text(encoding="utf-8").splitlines())}
    ids = ("R088", "R089", "R090", "R093", "R078", "R079", "R081", "R076", "R124")
    flags = {cid: plan_from_row(rows[cid], shape_from_row(rows[cid])).native_attention
             for cid in ids}
    assert flags == {"R088": False, "R089": False, "R090": False, "R093": False,
                     "R078": False, "R079": False, "R081": False,
                     "R076": True, "R124": True}
