"""The unfused attention core of Megatron-LM before FlashAttention (the plan's
``fused_attention`` off): its operators, their costs, the scores it keeps, what selective
recompute re-runs of it, and the validation's reading of which published runs used it."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.costmodel.op_time import Efficiencies, profile
from ocplan.costmodel.roofline import HBM_EFFICIENCY
from ocplan.errors import SpecError
from ocplan.plan.calibration import load_calibration
from ocplan.plan.engine import chip_peaks, efficiencies, evaluate, system_model
from ocplan.plan.estimate import estimate
from ocplan.plan.layer_cost import job_shard, stage_compute
from ocplan.plan.layout_arrays import derive_layout
from ocplan.plan.plan import LAYOUT, Plan
from ocplan.plan.space import training_space
from ocplan.results.validation import plan_from_row, predates_flash_attention, shape_from_row
from ocplan.workloads.memory import korthikanti_layer_bytes, layer_activation_bytes
from ocplan.workloads.operators import (
    UNFUSED_CORE_OPERATORS,
    Shard,
    attention_operator,
    layer_operators,
)
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "validation" / "training_dev.csv"
CAT = load_catalog()
H, A, S, B, T = 6144, 64, 2048, 4, 8


def gpt(dropout: bool = True, layers: int = 48) -> ModelShape:
    """GPT 22B of Korthikanti et al. (MHA, GeLU MLP of 4h)."""
    return ModelShape(name="gpt-22b", n_layers=layers, hidden=H, n_heads=A, n_kv_heads=A,
                      head_dim=H // A, ffn=4 * H, mlp_mats=2, vocab=51200, dropout=dropout)


def ops(shape: ModelShape, phase: str, fused: bool) -> dict[str, object]:
    shard = Shard(tp=float(T), batch=float(B), seq_len=float(S), sp=True,
                  fused_attention=fused)
    return {op.name: op for op in layer_operators(shape, phase, shard)}  # type: ignore[arg-type]


def test_the_unfused_core_replaces_the_fused_kernel() -> None:
    fused, unfused = ops(gpt(), "forward", True), ops(gpt(), "forward", False)
    assert "attn" in fused
    assert not UNFUSED_CORE_OPERATORS & set(fused)
    assert "attn" not in unfused
    assert set(unfused) >= UNFUSED_CORE_OPERATORS
    # everything else is the same list
    assert set(fused) - {"attn"} == set(unfused) - UNFUSED_CORE_OPERATORS
    without = ops(gpt(dropout=False), "forward", False)
    assert "attn_dropout" not in without
    assert "attn_softmax" in without


def test_the_unfused_core_counts_the_whole_score_square() -> None:
    """Both batched GEMMs compute all ``s^2`` scores per head (the causal mask comes
    after): twice the fused kernel's causal half, and the softmax and dropout each pass
    over ``b a s^2 / t`` 16-bit values (dropout also writing a one-byte mask)."""
    heads = A / T
    scores = B * heads * S * S
    o = ops(gpt(), "forward", False)
    assert o["attn_scores"].flops == pytest.approx(2 * scores * (H // A))  # type: ignore[attr-defined]
    assert o["attn_values"].flops == pytest.approx(2 * scores * (H // A))  # type: ignore[attr-defined]
    fused = ops(gpt(), "forward", True)["attn"]
    core = o["attn_scores"].flops + o["attn_values"].flops  # type: ignore[attr-defined]
    assert core == pytest.approx(2 * fused.flops, rel=2 * S ** -1)  # type: ignore[attr-defined]
    assert o["attn_softmax"].bytes == pytest.approx(4 * scores)  # type: ignore[attr-defined]
    assert o["attn_dropout"].bytes_written == pytest.approx(3 * scores)  # type: ignore[attr-defined]
    back = ops(gpt(), "backward", False)
    # dropout backward reads the gradient and the mask, writes the gradient
    assert back["attn_dropout.bwd"].bytes_read == pytest.approx(3 * scores)  # type: ignore[attr-defined]
    assert back["attn_softmax.bwd"].bytes == pytest.approx(6 * scores)  # type: ignore[attr-defined]


def test_key_and_value_gradients_are_activations_not_weights() -> None:
    """The batched GEMMs' second operands are keys and values: their gradients are
    written once in 16-bit, with no fp32 main-grad read or write as a weight has."""
    back = ops(gpt(), "backward", False)
    d = H // A
    keys = B * (A / T) * S * d
    assert back["attn_scores.wgrad"].bytes_written == pytest.approx(2 * keys)  # type: ignore[attr-defined]
    assert back["attn_values.wgrad"].bytes_written == pytest.approx(2 * keys)  # type: ignore[attr-defined]
    assert back["qkv.wgrad"].bytes_written == pytest.approx(4 * H * 3 * H / T)  # type: ignore[attr-defined]


def test_serving_phases_refuse_the_unfused_core() -> None:
    shard = Shard(tp=1.0, batch=1.0, seq_len=128.0, fused_attention=False)
    with pytest.raises(SpecError, match="fused_attention"):
        attention_operator(gpt(), "prefill", shard)


def test_score_passes_stream_at_the_achieved_rate_whatever_the_calibration() -> None:
    """The score-matrix kernels run at HBM_EFFICIENCY; the calibrated memory efficiency
    slows the per-token elementwise kernels only."""
    sm = system_model(system_for_chip(CAT, "a100-sxm-80gb", 8))
    chip = chip_peaks(sm, "fp16")
    layer = layer_operators(gpt(), "forward", Shard(tp=8.0, batch=4.0, seq_len=2048.0,
                                                     fused_attention=False))
    prof = profile(layer, chip, 1)
    names = list(prof.names)
    slow = Efficiencies(gemm=0.8, gemm_8bit=0.8, attention=0.5, launch_s=0.0, memory=0.3)
    fast = replace(slow, memory=0.9)
    t_slow, t_fast = prof.op_s(slow)[:, 0], prof.op_s(fast)[:, 0]
    soft = names.index("attn_softmax")
    assert t_slow[soft] == pytest.approx(t_fast[soft])
    assert t_slow[soft] == pytest.approx(layer[soft].bytes / (sm.hbm_Bps * HBM_EFFICIENCY))
    norm = names.index("norm_attn")
    assert t_slow[norm] == pytest.approx(3 * t_fast[norm])


def _workload(shape: ModelShape) -> Workload:
    return Workload(shape, S, 64, "fp16")


def test_an_unfused_core_is_slower_and_keeps_its_scores() -> None:
    """Same layout, attention unfused: a slower step, and (without selective recompute)
    the b a s^2 scores kept per layer, Korthikanti's ``5 a s / h`` term of Table 2."""
    system = system_for_chip(CAT, "a100-sxm-80gb", 8)
    wl = _workload(gpt(layers=8))
    base = Plan(tp=8, pp=1, dp=1, micro_batch=1, sequence_parallel=True)
    fused = estimate(wl, base, system)
    unfused = estimate(wl, replace(base, fused_attention=False), system)
    assert fused.feasible
    assert unfused.feasible
    assert unfused.step_s > 1.1 * fused.step_s
    assert unfused.memory is not None
    assert fused.memory is not None
    extra = unfused.memory.activations_bytes - fused.memory.activations_bytes
    per_layer = korthikanti_layer_bytes(S, 1, H, A, t=T, sp=True) \
        - korthikanti_layer_bytes(S, 1, H, A, t=T, sp=True) * 34 / (34 + 5 * A * S / H)
    assert extra == pytest.approx(8 * per_layer, rel=0.01)
    sel = estimate(wl, replace(base, fused_attention=False, recompute="selective"), system)
    assert sel.memory is not None
    assert sel.memory.activations_bytes == pytest.approx(fused.memory.activations_bytes,
                                                          rel=1e-9)


def test_scores_without_dropout_keep_only_the_softmax_output() -> None:
    args = (S, 1, 1, False, 1, False, False)
    with_drop = layer_activation_bytes(gpt(), *args, False, False) \
        - layer_activation_bytes(gpt(), *args, True, False)
    without = layer_activation_bytes(gpt(False), *args, False, False) \
        - layer_activation_bytes(gpt(False), *args, True, False)
    assert float(with_drop) == pytest.approx(5 * A * S * S)
    assert float(without) == pytest.approx(2 * A * S * S)


def test_selective_recompute_reruns_the_unfused_core_forward() -> None:
    """Selective recompute re-runs exactly the core's forward operators (Korthikanti
    §5): the recompute term equals their summed forward times over the stage's layers."""
    system = system_for_chip(CAT, "a100-sxm-80gb", 8)
    wl = _workload(gpt(layers=8))
    cal = load_calibration()
    plan = Plan(tp=8, pp=1, dp=1, micro_batch=1, sequence_parallel=True,
                fused_attention=False, recompute="selective")
    sm = system_model(system)
    eff = efficiencies(sm, cal)
    chip = chip_peaks(sm, wl.precision)
    layer = layer_operators(wl.model, "forward", Shard(tp=8.0, batch=1.0, seq_len=float(S),
                                                        fused_attention=False),
                            precision=wl.precision)
    prof = profile(layer, chip, 1)
    core = prof.named_s(prof.op_s(eff), UNFUSED_CORE_OPERATORS)
    got = evaluate(wl, sm, cal, plan.encoded())
    micro = wl.global_batch  # dp 1, micro-batch 1
    assert float(got["recompute_s"]) == pytest.approx(micro * 8 * float(core[0]), rel=1e-9)


def test_layouts_mixing_fused_and_unfused_cores_match_their_single_estimates() -> None:
    system = system_for_chip(CAT, "a100-sxm-80gb", 16)
    wl = _workload(gpt(layers=8))
    cal = load_calibration()
    sm = system_model(system)
    plans = [Plan(tp=8, pp=2, dp=1, micro_batch=1, fused_attention=f, recompute=r)
             for f in (True, False) for r in ("none", "selective")]
    cols = {k: np.concatenate([np.atleast_1d(p.encoded().as_columns()[k]) for p in plans])
            for k in plans[0].encoded().as_columns()}
    together = evaluate(wl, sm, cal, Plan.columns(**cols))["step_s"]
    alone = [float(evaluate(wl, sm, cal, p.encoded())["step_s"]) for p in plans]
    assert np.allclose(together, alone, rtol=1e-12)
    assert alone[2] > alone[0]
    assert alone[3] > alone[1]


def test_stage_compute_names_the_core_as_the_attention_forward() -> None:
    sm = system_model(system_for_chip(CAT, "a100-sxm-80gb", 8))
    wl = _workload(gpt(layers=8))
    d = derive_layout(wl, Plan(tp=8, pp=1, dp=1, micro_batch=1).encoded())
    eff = efficiencies(sm, load_calibration())
    args = (wl.model, wl.precision, chip_peaks(sm, wl.precision), eff)
    fused = stage_compute(*args, job_shard(wl), shard=d.shard_columns(),
                          per_stage=d.per_stage)
    unfused = stage_compute(*args, job_shard(wl, fused_attention=False),
                            shard=d.shard_columns(), per_stage=d.per_stage)
    assert float(unfused.forward.attention_s) == 0.0
    assert float(fused.attention_fwd_s) == pytest.approx(float(fused.forward.attention_s))
    assert float(unfused.attention_fwd_s) > 2 * float(fused.attention_fwd_s)


@pytest.mark.parametrize(("source", "before"), [
    ("Narayanan et al., 'Efficient Large-Scale ...', SC'21 (arXiv:2104.04473)", True),
    ("Korthikanti et al., MLSys 2023 (arXiv:2205.05198); Table 5", True),
    ("Dao et al. (arXiv:2205.14135)", False),
    ("Jiang et al., 'MegaScale' (arXiv:2402.15032); cites arXiv:2104.04473", False),
    ("NVIDIA-NeMo/Megatron-Bridge repo docs/performance-summary.md", False),
])
def test_runs_published_before_flash_attention_read_as_unfused(source: str,
                                                               before: bool) -> None:
    assert predates_flash_attention(source) is before


def test_the_development_rows_of_2021_22_papers_are_read_unfused() -> None:
    if not DEV.exists():
        pytest.skip("shared validation data not beside the checkout")
    with DEV.open() as f:
        rows = list(csv.DictReader(f))
    unfused = {r["case_id"] for r in rows
               if not plan_from_row(r, shape_from_row(r)).fused_attention}
    assert {"R001", "R011", "R012", "R033"} <= unfused
    assert not {"R043", "R030", "R076"} & unfused


def test_the_search_keeps_selective_recompute_only_for_an_unfused_core() -> None:
    """With a fused core selective recompute saves no memory and the space drops it as
    dominated; an unfused core's scores are what it saves, so the space keeps it."""
    selective = LAYOUT["recompute"].code("selective")

    def modes(fused: bool) -> set[int]:
        space = training_space(chips=64, n_layers=48, n_heads=64, n_kv_heads=64,
                               seq_len=2048, global_batch=64, domain=8,
                               fused_attention=fused)
        cols, _ = space.candidates()
        return set(np.unique(cols["recompute"]).tolist())
    assert selective not in modes(True)
    assert selective in modes(False)
    assert modes(True) < modes(False)

