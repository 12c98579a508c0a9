"""Gradients reduced in bf16 or fp32 over the data-parallel ranks, declared once as the
layout field ``grad_reduce_bf16``.

Megatron-LM reduces bf16 and 8-bit runs' gradients in fp32 unless told
``--grad-reduce-in-bf16``; Megatron-Bridge's performance configs set
``grad_reduce_in_fp32 = False``. The engine had moved 4 bytes per gradient element for
every bf16/fp8 run, so those runs' data-parallel traffic was counted twice over.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from clikit import run
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.plan.calibration import load_calibration
from ocplan.plan.engine import evaluate, system_model
from ocplan.plan.estimate import estimate
from ocplan.plan.plan import LAYOUT_FIELDS, Plan
from ocplan.results.validation import plan_from_row, read_cases, shape_from_row
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

DEV = Path(__file__).resolve().parents[2] / "shared" / "validation" / "training_dev.csv"
CAT = load_catalog()
H100_64 = system_for_chip(CAT, "h100-sxm-80gb", 64)


def job(precision: str) -> Workload:
    return Workload(ModelShape.from_arch(CAT.model("llama3-8b")), 4096, 256, precision)


def dp_comm(wl: Workload, plan: Plan) -> float:
    est = estimate(wl, plan, H100_64)
    assert est.feasible, est.reason
    assert est.time is not None
    return est.time.dp_comm_s


@pytest.mark.parametrize("zero", [0, 1, 2, 3])
@pytest.mark.parametrize("dp_overlap", [False, True])
def test_bf16_reduction_halves_the_gradient_traffic(zero: int, dp_overlap: bool) -> None:
    """Without overlap the exposed reduction is the traffic itself: the gradients' share
    halves (ZeRO 0-2 move gradients and, from stage 1, 16-bit parameters; ZeRO-3 also
    gathers parameters twice per micro-batch), so the time falls, by at most half."""
    wl = job("bf16")
    plan = Plan(tp=4, dp=16, zero=zero, recompute="full", dp_overlap=dp_overlap)
    fp32 = dp_comm(wl, plan)
    bf16 = dp_comm(wl, replace(plan, grad_reduce_bf16=True))
    assert bf16 <= fp32
    if not dp_overlap:
        assert 0.5 * fp32 <= bf16 < 0.9 * fp32
    if zero == 0 and not dp_overlap:  # an all-reduce of gradients alone
        assert bf16 == pytest.approx(0.5 * fp32, rel=0.05)


def test_fp16_training_reduces_in_fp16_either_way() -> None:
    wl = job("fp16")
    plan = Plan(tp=4, dp=16, zero=1, recompute="full", dp_overlap=False)
    assert dp_comm(wl, replace(plan, grad_reduce_bf16=True)) == pytest.approx(
        dp_comm(wl, plan), rel=1e-12)


def test_vectorized_layouts_mixing_both_reductions_match_the_scalar_estimates() -> None:
    """The collectives are timed once per group of layouts sharing their arguments: a
    group must not mix the two gradient sizes (128 layouts, past the grouping threshold)."""
    wl = job("fp8")
    n = 128
    zero = np.tile([0, 1, 2, 3], n // 4)
    bf16 = np.tile([False, False, True, True, True, True, False, False], n // 8)
    out = evaluate(wl, system_model(H100_64), load_calibration(),
                   Plan.columns(tp=np.full(n, 4), dp=np.full(n, 16), zero=zero,
                                grad_reduce_bf16=bf16, recompute=np.full(n, 1)))
    for i in range(8):
        plan = Plan(tp=4, dp=16, zero=int(zero[i]), recompute="full",
                    grad_reduce_bf16=bool(bf16[i]))
        assert float(out.dp_comm_s[i]) == pytest.approx(dp_comm(wl, plan), rel=1e-12)
    # the same ZeRO stage, fp32 (0, 1) against bf16 (4, 5): the groups kept them apart
    assert out.dp_comm_s[4] < out.dp_comm_s[0]
    assert out.dp_comm_s[5] < out.dp_comm_s[1]


def test_declared_once_and_read_by_every_surface(capsys: pytest.CaptureFixture[str]) -> None:
    field = next(f for f in LAYOUT_FIELDS if f.name == "grad_reduce_bf16")
    assert field.default is False
    assert field.search == "fixed"
    assert "grad_bf16=on" in Plan(dp=8, grad_reduce_bf16=True).label()
    rc, out, _ = run(capsys, "estimate", "--model", "llama3-8b", "--chip", "h100-sxm-80gb",
                     "--chips", "64", "--tp", "4", "--recompute", "full",
                     "--grad-reduce-bf16", "-f", "json")
    assert rc == 0
    assert '"grad_reduce_bf16": true' in out


@pytest.mark.skipif(not DEV.exists(), reason="needs ../shared/validation")
def test_the_validation_reads_megatron_bridge_recipes_as_bf16() -> None:
    rows = read_cases(DEV)
    for row in rows:
        plan = plan_from_row(row, shape_from_row(row))
        assert plan.grad_reduce_bf16 == ("Megatron-Bridge" in row["source"]), row["case_id"]
    assert any("Megatron-Bridge" in r["source"] for r in rows)


def test_a_search_keeps_the_stack_it_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    """The fields a search holds fixed describe the software stack: given, every layout
    it ranks takes them (each re-estimated alike, the search asserts), and its best is no
    slower than with fp32 reduction; a field it varies, or a bad value, is refused."""
    from ocplan.errors import SpecError
    from ocplan.plan.search import search

    wl = job("bf16")
    plain = search(wl, H100_64, 64, top_k=3)
    bf16 = search(wl, H100_64, 64, top_k=3, fixed={"grad_reduce_bf16": True})
    assert plain.best is not None
    assert bf16.best is not None
    assert all(e.plan.grad_reduce_bf16 for e in bf16.top)
    assert not any(e.plan.grad_reduce_bf16 for e in plain.top)
    assert bf16.best.tokens_per_s_per_chip >= plain.best.tokens_per_s_per_chip
    with pytest.raises(SpecError) as exc:
        search(wl, H100_64, 64, fixed={"offload": True, "ep_dedup": "yes"})
    fields = {p.field: p.message for p in exc.value.problems}
    assert "no field a search takes as given" in fields["offload"]
    assert "grad_reduce_bf16" in fields["offload"]  # the allowed ones are named
    assert "ep_dedup" in fields
    # the CLI's flag, from the same declaration
    rc, out, _ = run(capsys, "search", "--model", "llama3-8b", "--chip", "h100-sxm-80gb",
                     "--chips", "64", "--global-batch", "256", "--top", "2",
                     "--grad-reduce-bf16", "-f", "json")
    assert rc == 0
    assert '"grad_reduce_bf16": true' in out
    assert '"grad_reduce_bf16": false' not in out
