"""NVFP4 training (``precision="fp4"``): Transformer Engine's recipe as Megatron-Bridge
runs it. Each test checks one consequence of the recipe against a quantity it must
change, so a lost case (fp4 cast like fp8, saved like bf16, run on an 8-bit unit) fails.
The out-of-sample score against Megatron-Bridge's NVFP4 rows is in tests/test_caveats.py
(the ``fp4-training`` caveat re-scores them)."""

from __future__ import annotations

import pytest

from ocplan import api
from ocplan.catalog import load_catalog
from ocplan.catalog.loader import validate_as
from ocplan.plan.comm_terms import NO_TP_OVERLAP_PRECISIONS
from ocplan.plan.engine import NATIVE_ONLY_PRECISIONS
from ocplan.plan.estimate import Estimate
from ocplan.plan.memory_terms import saved_gemm_input_bytes
from ocplan.workloads.operators import (
    GEMM_INPUT_BYTES,
    NVFP4_BLOCK,
    PRODUCER_QUANTIZED,
    WGRAD_PRECISION,
    Operator,
    Phase,
    Shard,
    layer_operators,
)
from ocplan.workloads.recipes import RECIPES
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import PRECISIONS

CAT = load_catalog()
LLAMA70 = ModelShape.from_arch(CAT.model("llama3-70b"))
SHARD = Shard(tp=1, batch=1, seq_len=8192)


def _ops(phase: Phase, precision: str) -> dict[str, Operator]:
    return {op.name: op for op in layer_operators(LLAMA70, phase, SHARD, precision=precision)}


def test_fp4_operands_are_cast_in_passes_of_their_own() -> None:
    """FP8's norm and activation write the next GEMM's operand already quantized, so the
    QKV and FC1 GEMMs have no cast kernel; NVFP4's per-tensor scale needs the tensor's
    absolute maximum first, so every GEMM operand gets its cast: read in 16 bits, written
    row- and column-wise in 4 bits with one E4M3 scale per 16 values."""
    fp8, fp4 = _ops("forward", "fp8"), _ops("forward", "fp4")
    casts8 = {n for n in fp8 if n.endswith(".cast")}
    casts4 = {n for n in fp4 if n.endswith(".cast")}
    assert casts8 < casts4
    assert "qkv.cast" in casts4
    assert "qkv.cast" not in casts8
    cast = fp4["qkv.cast"]
    elements = 8192 * LLAMA70.hidden
    assert cast.bytes_read == pytest.approx(2.0 * elements)
    per_element = 2 * (0.5 + 1.0 / NVFP4_BLOCK)
    assert cast.bytes_written == pytest.approx(per_element * elements)
    assert GEMM_INPUT_BYTES["fp4"] == pytest.approx(0.5625)


def test_all_three_gemms_run_in_fp4() -> None:
    """The recipe quantizes the forward, data-gradient and weight-gradient GEMMs (unlike
    AQT int8, whose weight gradient stays bf16)."""
    bwd = _ops("backward", "fp4")
    for name in ("qkv", "o_proj"):
        assert bwd[f"{name}.dgrad"].precision == "fp4"
        assert bwd[f"{name}.wgrad"].precision == "fp4"
    assert _ops("backward", "int8")["qkv.wgrad"].precision == "bf16"


def test_saved_gemm_inputs_are_the_4bit_copies() -> None:
    assert saved_gemm_input_bytes("fp4") == pytest.approx(0.5625)
    assert saved_gemm_input_bytes("fp8") == 1.0
    assert saved_gemm_input_bytes("bf16") == 2.0


def _estimate(chip: str, precision: str, tp: int = 1) -> Estimate:
    """Llama 3 70B on 64 chips at Megatron-Bridge's GB300 NVFP4 layout (PP4 VP5), with
    ``tp`` to fit smaller memories."""
    req = validate_as(api.EstimateRequest, {
        "model": "llama3-70b", "chip": chip, "chips": 64, "global_batch": 256,
        "seq_len": 8192, "precision": precision, "tp": tp, "pp": 4, "vpp": 5,
        "micro_batch": 1}, "test")
    result, _, _ = api.run_estimate(CAT, req)
    return result


@pytest.mark.parametrize(("chip", "tp"), [("gb300", 1), ("gb200", 2), ("b200", 2)])
def test_fp4_steps_are_faster_than_fp8_but_not_by_the_peak_ratio(chip: str, tp: int) -> None:
    """Only the GEMMs move to the 4-bit peak (2x FP8 on Blackwell, 3x on Blackwell Ultra);
    attention, the head, norms and the extra casts do not, so the step gains less than
    the peak ratio; the saved activations shrink with the 4-bit copies."""
    r4, r8 = _estimate(chip, "fp4", tp), _estimate(chip, "fp8", tp)
    assert r4.feasible
    assert r8.feasible
    acc = CAT.accelerator(chip)
    fp4, fp8 = acc.peak_flops.get("fp4"), acc.peak_flops.get("fp8")
    assert fp4
    assert fp8
    peak_ratio = fp4 / fp8
    gain = r4.tokens_per_s_per_chip / r8.tokens_per_s_per_chip
    assert 1.1 < gain < peak_ratio
    assert r4.memory is not None
    assert r8.memory is not None
    assert r4.memory.activations_bytes < r8.memory.activations_bytes
    assert any(c.startswith("NVFP4 training") for c in r4.caveats)
    assert not any(c.startswith("NVFP4 training") for c in r8.caveats)


def test_a_chip_without_a_4bit_unit_cannot_train_in_fp4() -> None:
    """H100 has FP8 but no FP4 tensor cores: the recipe does not exist there, and the
    estimate says so rather than running it on the FP8 unit."""
    r = _estimate("h100-sxm-80gb", "fp4", tp=4)
    assert not r.feasible
    assert str(r.reason).startswith("precision: h100-sxm-80gb has no fp4 matrix unit")
    assert _estimate("h100-sxm-80gb", "fp8", tp=4).feasible


def test_the_recipe_leaves_tensor_parallel_collectives_exposed() -> None:
    """Megatron-Bridge and NVIDIA's MLPerf NVFP4 configs turn the TP communication
    overlap off (comm_terms.NO_TP_OVERLAP_PRECISIONS): an fp4 layout asking for it pays
    what an fp8 layout pays without it (the collectives move 16-bit activations in both),
    and more than the fp8 layout with it."""
    def tp_s(precision: str, overlap: bool) -> float:
        req = validate_as(api.EstimateRequest, {
            "model": "llama3-70b", "chip": "gb200", "chips": 64, "global_batch": 256,
            "seq_len": 8192, "precision": precision, "tp": 2, "pp": 4, "vpp": 5,
            "micro_batch": 1, "tp_overlap": overlap}, "test")
        est, _, _ = api.run_estimate(CAT, req)
        assert est.feasible
        assert est.time is not None
        return est.time.tp_comm_s

    assert tp_s("fp4", True) == pytest.approx(tp_s("fp8", False))
    assert tp_s("fp4", True) == pytest.approx(tp_s("fp4", False))
    assert tp_s("fp8", True) < 0.5 * tp_s("fp8", False)


def test_each_precision_has_one_recipe_that_its_readers_follow() -> None:
    """The recipe registry is the one place a precision's behaviour is spelled: the
    operator list's weight-gradient format and fused casts, the engine's own-unit rule
    and the TP term's overlap rule agree with it for every training precision."""
    assert tuple(RECIPES) == PRECISIONS
    for p, r in RECIPES.items():
        assert r.source
        assert WGRAD_PRECISION.get(p, p) == r.wgrad
        assert (p in PRODUCER_QUANTIZED) == r.producer_quantized
        assert (p in NATIVE_ONLY_PRECISIONS) == r.needs_own_unit
        assert (p in NO_TP_OVERLAP_PRECISIONS) == (not r.tp_overlap)
    assert [p for p, r in RECIPES.items() if r.needs_own_unit] == ["fp4"]
