"""MoE routing under a capacity factor: every expert's input padded to its capacity
(static shapes: the dense GEMM path, the capacity's slots moved and kept), and the
one-hot einsum dispatch of GShard and MaxText's ``dense_matmul`` (its dense GEMMs
growing with the sequence); the workload's ``moe_dispatch`` and how the validation
reader chooses it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.errors import SpecError
from ocplan.plan.estimate import estimate
from ocplan.plan.plan import Plan
from ocplan.results.validation import moe_dispatch, prepare_row
from ocplan.workloads.operators import Shard, layer_operators
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import MOE_DISPATCH, Workload

CAT = load_catalog()
MIXTRAL = ModelShape.from_arch(CAT.model("mixtral-8x7b"))
DSV3 = ModelShape.from_arch(CAT.model("deepseek-v3"))
S = 4096


def _ops(shape: ModelShape, phase: str, shard: Shard, layer: int = 5) -> dict[str, object]:
    return {op.name: op for op in layer_operators(shape, phase, shard, layer=layer)}


@pytest.mark.parametrize(("shape", "cf"), [(MIXTRAL, 1.25), (DSV3, 1.25), (DSV3, 1.0)])
def test_the_einsums_cost_two_h_s_k_cf_a_token_each(shape: ModelShape, cf: float) -> None:
    """``BSM,BSEC -> EBCM`` and ``EBCM,BSEC -> BSM`` over the ``E C = S K cf`` slots of a
    sequence: ``2 h S K cf`` FLOPs a token each, in place of the permutes; the masks
    (``S x E C`` a sequence) are written once."""
    shard = Shard(tp=2, batch=2, seq_len=S, ep=8, capacity_factor=cf, einsum_dispatch=True)
    fwd = _ops(shape, "forward", shard)
    assert "dispatch" not in fwd
    assert "combine" not in fwd
    tokens_on_chip = 2 * S / 2  # T / t rows route on the chip
    per_token = 2 * shape.hidden * S * shape.moe_top_k * cf
    for name in ("dispatch_einsum", "combine_einsum"):
        assert fwd[name].flops == pytest.approx(tokens_on_chip * per_token, rel=1e-12)
    slots = S * shape.moe_top_k * cf
    assert fwd["dispatch_masks"].bytes_written == pytest.approx(
        tokens_on_chip * slots * 3, rel=1e-12)  # a 16-bit and a boolean mask element
    # against the permutes of the same routing
    permuted = _ops(shape, "forward", replace(shard, einsum_dispatch=False))
    assert "dispatch" in permuted
    assert "dispatch_einsum" not in permuted
    assert fwd["experts_up"].flops == permuted["experts_up"].flops


def test_the_boolean_dispatch_mask_takes_no_gradient() -> None:
    """Backward: the dispatch einsum's token gradient only (its mask is boolean); the
    combine's gradients of the expert outputs and of the gate-weighted mask."""
    shard = Shard(tp=1, batch=1, seq_len=S, ep=8, capacity_factor=1.25, einsum_dispatch=True)
    fwd, bwd = _ops(MIXTRAL, "forward", shard), _ops(MIXTRAL, "backward", shard)
    assert "dispatch_einsum.dgrad" in bwd
    assert "dispatch_einsum.wgrad" not in bwd
    assert {"combine_einsum.dgrad", "combine_einsum.wgrad"} <= set(bwd)
    assert bwd["dispatch_einsum.dgrad"].flops == pytest.approx(fwd["dispatch_einsum"].flops)


def test_the_einsum_work_outgrows_the_experts_at_long_sequence() -> None:
    """Its FLOPs a token grow with the sequence, the experts' do not: at 4,096 tokens
    DeepSeek-V3's two einsums (1.17 GFLOP a token) pass its padded expert GEMMs (0.88)."""
    def work(seq: int) -> tuple[float, float]:
        ops = _ops(DSV3, "forward", Shard(tp=1, batch=1, seq_len=seq, ep=8,
                                          capacity_factor=1.25, einsum_dispatch=True))
        einsums = ops["dispatch_einsum"].flops + ops["combine_einsum"].flops
        experts = ops["experts_up"].flops + ops["experts_down"].flops
        return einsums / seq, experts / seq
    short, long = work(1024), work(4096)
    assert long[0] == pytest.approx(4 * short[0], rel=1e-12)
    assert long[1] == pytest.approx(short[1], rel=1e-12)
    assert long[0] > long[1]


def test_an_einsum_dispatch_needs_a_capacity() -> None:
    with pytest.raises(SpecError) as err:
        Shard(tp=1, batch=1, seq_len=S, einsum_dispatch=True)
    assert "einsum_dispatch" in str(err.value)
    with pytest.raises(SpecError) as err:
        Workload(MIXTRAL, S, 64, moe_dispatch="einsum")
    assert "moe_dispatch" in str(err.value)
    assert "capacity" in str(err.value)
    with pytest.raises(SpecError) as err:
        Workload(MIXTRAL, S, 64, moe_dispatch="scatter")  # type: ignore[arg-type]
    assert all(name in str(err.value) for name in MOE_DISPATCH)


H100_16 = system_for_chip(CAT, "h100-sxm-80gb", 16)
PLAN = Plan(tp=2, dp=8, ep=8, ep_dedup=False, ep_overlap=False, recompute="full")


def _mixtral(**routing: object) -> Workload:
    return Workload(MIXTRAL, S, 64, **routing)  # type: ignore[arg-type]


def test_padding_moves_and_keeps_the_capacity() -> None:
    """Padded to a capacity of 1.25 the all-to-all carries 1.25 times the copies, the
    experts compute 1.25 times the rows and keep their activations; the einsum dispatch
    costs more than the permutes it replaces; at a capacity of 1 with balanced routing
    the padded run moves what the dropless one does."""
    dropless = estimate(_mixtral(), PLAN, H100_16)
    padded = estimate(_mixtral(moe_capacity_factor=1.25), PLAN, H100_16)
    even = estimate(_mixtral(moe_capacity_factor=1.0), PLAN, H100_16)
    einsum = estimate(_mixtral(moe_capacity_factor=1.25, moe_dispatch="einsum"), PLAN,
                      H100_16)
    for e in (dropless, padded, even, einsum):
        assert e.feasible, e.reason
    assert padded.time.ep_comm_s > 1.2 * dropless.time.ep_comm_s
    assert even.time.ep_comm_s == pytest.approx(dropless.time.ep_comm_s, rel=1e-9)
    no_recompute = replace(PLAN, recompute="none")
    kept = {cf: estimate(_mixtral(moe_capacity_factor=cf), no_recompute, H100_16).memory
            for cf in (1.0, 1.25)}
    assert kept[1.25].activations_bytes > kept[1.0].activations_bytes
    assert einsum.time.compute_s > padded.time.compute_s


def test_padded_experts_are_faster_than_the_dropless_grouped_kernel() -> None:
    """At the balanced load (capacity 1, no drops) the FLOPs are the same, but the
    padded experts run at the dense GEMM's efficiency, the dropless ones at the
    calibrated grouped-GEMM one (below it)."""
    dropless = estimate(_mixtral(), PLAN, H100_16)
    even = estimate(_mixtral(moe_capacity_factor=1.0), PLAN, H100_16)
    assert even.time.compute_s < dropless.time.compute_s


def _row(notes: str, source: str = "somewhere") -> dict[str, str]:
    return {"measured_from": notes, "source": source}


def test_the_reader_chooses_the_einsum_for_maxtexts_dense_path() -> None:
    assert moe_dispatch(_row("MaxText dense_matmul, capacity factor 1.25"), 1.25) == "einsum"
    assert moe_dispatch(_row("capacity factor 1.25", "AI-Hypercomputer/maxtext"),
                        1.25) == "einsum"
    assert moe_dispatch(_row("capacity factor 1.0 with padding (Megatron-Core)"),
                        1.0) == "permute"
    assert moe_dispatch(_row("MaxText dense_matmul"), None) == "permute"


ROW = {
    "case_id": "X1", "source": "a published recipe", "model": "Mixtral-8x7B",
    "n_layers": "32", "hidden_size": "4096", "n_heads": "32", "n_kv_heads": "8",
    "head_dim": "", "ffn_hidden": "14336", "mlp": "swiglu", "vocab_size": "32000",
    "seq_len": "4096", "moe_num_experts": "8", "moe_top_k": "2", "moe_expert_ffn": "14336",
    "moe_shared_experts": "0", "moe_layer_freq": "1", "moe_first_dense_layers": "0",
    "chip": "h100-sxm-80gb", "num_chips": "64", "chips_per_node": "8",
    "scale_out": "8x400G-IB", "precision": "bf16", "tp": "2", "pp": "4", "dp": "8",
    "cp": "1", "ep": "8", "vpp": "", "sequence_parallel": "yes", "zero_stage": "1",
    "micro_batch": "1", "global_batch": "256", "recompute": "none",
    "measured_tokens_per_s_per_chip": "1000", "confidence": "high"}


def test_the_reader_takes_a_recipes_stated_facts_from_the_notes() -> None:
    """The facts a sweep built from published recipes states in its notes become the
    plan's fields and the workload's routing."""
    bare = prepare_row({**ROW, "measured_from": ""}, CAT)
    stated = prepare_row({**ROW, "measured_from": (
        "moe_grouped_gemm false; capacity factor 1.0 with padding; gradients reduced in "
        "bf16; NVTE_FUSED_ATTN=0; ETP 1; first pipeline stage 7 layers, last pipeline "
        "stage 9 layers; mtp_num_layers 1")}, CAT)
    assert (bare.plan.grouped_gemm, bare.plan.grad_reduce_bf16,
            bare.plan.native_attention) == (True, False, True)
    assert (stated.plan.grouped_gemm, stated.plan.grad_reduce_bf16,
            stated.plan.native_attention) == (False, True, False)
    assert (bare.plan.etp, stated.plan.etp) == (None, 1)
    assert (stated.plan.first_stage_layers, stated.plan.last_stage_layers) == (7, 9)
    assert (bare.plan.first_stage_layers, bare.plan.last_stage_layers) == (None, None)
    assert (bare.workload.model.mtp_depth, stated.workload.model.mtp_depth) == (0, 1)
    assert (bare.workload.moe_capacity_factor, stated.workload.moe_capacity_factor) == (
        None, 1.0)
    assert stated.workload.moe_dispatch == "permute"
