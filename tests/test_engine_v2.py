"""The operator-level engine: profiles, stage composition, MoE routing, expert-TP memory,
optimizer-state recipes, and the validation rows' notes turned into model inputs."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.costmodel.op_time import Efficiencies, Profile, profile
from ocplan.plan.calibration import load_calibration
from ocplan.plan.engine import chip_peaks, evaluate, system_model
from ocplan.plan.estimate import estimate
from ocplan.plan.layer_cost import LayerKind, layer_kinds, stage_layers
from ocplan.plan.plan import RECOMPUTE, Plan
from ocplan.results.validation import moe_routing, optimizer_states, shape_from_row
from ocplan.workloads.operators import Shard, layer_operators
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

CAT = load_catalog()
CAL = load_calibration()
DSV3 = ModelShape.from_arch(CAT.model("deepseek-v3"))
QWEN = ModelShape.from_arch(CAT.model("qwen3-30b-a3b"))
MIXTRAL = ModelShape.from_arch(CAT.model("mixtral-8x7b"))
LLAMA8 = ModelShape.from_arch(CAT.model("llama3-8b"))
H100_16 = system_for_chip(CAT, "h100-sxm-80gb", 16)
EFF = Efficiencies(gemm=0.7, gemm_8bit=0.6, attention=0.5, launch_s=5e-6, memory=0.5)


def test_profile_time_is_max_of_compute_over_eta_and_memory_plus_launch() -> None:
    """t_i = max(c_i / eta_path, m_i / eta_mem if memory-bound) + launch, per category."""
    sm = system_model(H100_16)
    ops = layer_operators(LLAMA8, "forward", Shard(tp=1.0, batch=2.0, seq_len=4096.0),
                          precision="bf16")
    prof = profile(ops, chip_peaks(sm, "bf16"), 1)
    got = prof.time(EFF)
    want = {"matrix": 0.0, "attention": 0.0, "memory": 0.0}
    for i, (path, cat) in enumerate(zip(prof.paths, prof.categories, strict=True)):
        eta = {"gemm": 0.7, "gemm_8bit": 0.6, "attention": 0.5, "memory": 1.0}[path]
        mem = prof.memory_s[i, 0] / (0.5 if path == "memory" else 1.0)
        want[cat] += max(prof.compute_s[i, 0] / eta, mem) + 5e-6
    assert float(got.matrix_s[0]) == pytest.approx(want["matrix"], rel=1e-12)
    assert float(got.attention_s[0]) == pytest.approx(want["attention"], rel=1e-12)
    assert float(got.memory_s[0]) == pytest.approx(want["memory"], rel=1e-12)
    assert want["matrix"] > want["memory"] > 0
    assert want["attention"] > 0


def test_profiles_carry_no_calibration() -> None:
    """Higher efficiencies never slow an operator list; halving every eta doubles the
    compute-bound terms at most."""
    sm = system_model(H100_16)
    prof: Profile = profile(layer_operators(QWEN, "backward", Shard(
        tp=1.0, batch=2.0, seq_len=4096.0, ep=8.0), layer=5, precision="fp8"),
        chip_peaks(sm, "fp8"), 1)
    slow = prof.time(replace(EFF, gemm=0.35, gemm_8bit=0.3, attention=0.25))
    fast = prof.time(EFF)
    assert float(slow.total_s[0]) > float(fast.total_s[0])
    assert float(slow.total_s[0]) <= 2 * float(fast.total_s[0])


def test_stage_takes_the_slowest_layer_kind_first() -> None:
    """DeepSeek-V3: 3 dense + 58 MoE layers. A stage of 4 layers holds 4 of the slower
    kind; a stage of 61 holds all of both."""
    kinds = layer_kinds(DSV3)
    assert sorted(k.count for k in kinds) == [3, 58]
    slow_moe = [np.array([2.0]) if k.moe else np.array([1.0]) for k in kinds]
    counts = stage_layers(kinds, np.array([4.0]), slow_moe)
    taken = {k.moe: float(c[0]) for k, c in zip(kinds, counts, strict=True)}
    assert taken == {True: 4.0, False: 0.0}
    slow_dense = [np.array([1.0]) if k.moe else np.array([2.0]) for k in kinds]
    counts = stage_layers(kinds, np.array([4.0]), slow_dense)
    taken = {k.moe: float(c[0]) for k, c in zip(kinds, counts, strict=True)}
    assert taken == {True: 1.0, False: 3.0}
    counts = stage_layers(kinds, np.array([61.0]), slow_moe)
    assert sorted(float(c[0]) for c in counts) == [3.0, 58.0]
    one = (LayerKind(0, 32, False, False),)
    assert float(stage_layers(one, np.array([8.0]), [np.array([1.0])])[0][0]) == 8.0


def _est(wl: Workload, plan: Plan, system=H100_16):  # type: ignore[no-untyped-def]
    e = estimate(wl, plan, system, CAL)
    assert e.feasible, e.reason
    return e


def test_imbalanced_routing_is_never_faster() -> None:
    plan = Plan(tp=1, pp=1, dp=16, ep=8, micro_batch=1, recompute="full")
    base = Workload(QWEN, 4096, 256, "bf16")
    balanced = _est(base, plan).step_s
    for r in (1.2, 1.7, 3.0):
        assert _est(replace(base, moe_imbalance=r), plan).step_s > balanced


def test_capacity_factor_drops_tokens_and_saves_time_under_imbalance() -> None:
    plan = Plan(tp=1, pp=1, dp=16, ep=8, micro_batch=1, recompute="full")
    skew = Workload(QWEN, 4096, 256, "bf16", moe_imbalance=2.0)
    dropless = _est(skew, plan).step_s
    capped = _est(replace(skew, moe_capacity_factor=1.25), plan).step_s
    assert capped < dropless


def test_expert_tensor_parallel_defaults_to_tp_and_divides_expert_weights() -> None:
    """Megatron-Core: expert-TP defaults to TP; expert weights are split over ep x etp
    ranks, so Mixtral with tp = 8 holds 1/8 of its experts' weights per chip."""
    wl = Workload(MIXTRAL, 4096, 64, "bf16")
    sm = system_model(system_for_chip(CAT, "h100-sxm-80gb", 64))
    one = evaluate(wl, sm, CAL, Plan(tp=8, pp=4, dp=2, ep=1, zero=0).encoded())
    mixtral_experts = MIXTRAL.n_moe_layers * MIXTRAL.moe_experts * MIXTRAL.expert_params
    per_stage_experts = mixtral_experts / 4 / 8
    # weights = 2 B x (dense / tp + experts / (ep etp)); the expert part dominates.
    assert float(one.weights_bytes) == pytest.approx(
        2 * per_stage_experts + 2 * (MIXTRAL.total_params - mixtral_experts) / 4 / 8, rel=0.1)


def test_bf16_optimizer_states_take_a_third_of_fp32() -> None:
    wl = Workload(LLAMA8, 4096, 64, "bf16")
    plan = Plan(tp=1, pp=1, dp=16, zero=1)
    fp32 = _est(wl, plan).memory
    bf16 = _est(replace(wl, optimizer_states="bf16"), plan).memory
    assert fp32 is not None
    assert bf16 is not None
    assert bf16.optimizer_bytes == pytest.approx(fp32.optimizer_bytes * 4 / 12)
    assert bf16.weights_bytes == fp32.weights_bytes


@settings(max_examples=40, deadline=None)
@given(tp=st.sampled_from([1, 2, 4, 8]), pp=st.sampled_from([1, 2, 4]),
       ep=st.sampled_from([1, 2, 4, 8]), mb=st.sampled_from([1, 2]),
       rc=st.sampled_from(RECOMPUTE),
       imbalance=st.floats(1.0, 4.0), hbm=st.floats(1.0, 3.0), peak=st.floats(1.0, 3.0))
def test_more_bandwidth_or_peak_never_slows_and_nothing_is_nan(
        tp: int, pp: int, ep: int, mb: int, rc: str, imbalance: float, hbm: float,
        peak: float) -> None:
    assume(tp * pp <= 16 and (16 // (tp * pp) * tp) % ep == 0)
    wl = Workload(QWEN, 4096, 256, "bf16", moe_imbalance=imbalance)
    plan = Plan(tp=tp, pp=pp, dp=16 // (tp * pp), ep=ep, micro_batch=mb, recompute=rc)
    sm = system_model(H100_16)
    faster = replace(sm, hbm_Bps=sm.hbm_Bps * hbm,
                     peak={k: v * peak for k, v in sm.peak.items()})
    base = evaluate(wl, sm, CAL, plan.encoded())
    quick = evaluate(wl, faster, CAL, plan.encoded())
    for name, value in base.items():
        assert np.isfinite(value).all(), name
        assert (np.asarray(value) >= 0).all(), name
    assert float(quick.step_s) <= float(base.step_s) * (1 + 1e-12)
    balanced = evaluate(replace(wl, moe_imbalance=1.0), sm, CAL, plan.encoded())
    assert float(balanced.step_s) <= float(base.step_s) * (1 + 1e-12)


ROW = {"model": "DeepSeek-V3 671B (MaxText)", "n_layers": "61", "hidden_size": "7168",
       "n_heads": "128", "n_kv_heads": "128", "head_dim": "", "ffn_hidden": "18432",
       "mlp": "swiglu", "vocab_size": "129280", "moe_num_experts": "256", "moe_top_k": "8",
       "moe_expert_ffn": "2048", "moe_shared_experts": "1", "moe_layer_freq": "1",
       "moe_first_dense_layers": "3", "source": "AMD-AGI/maxtext-slurm",
       "measured_from": "MLA q_lora 1536 / kv_lora 512; capacity_factor 1.25 dropping"}


def test_row_notes_give_mla_capacity_factor_and_optimizer_recipe() -> None:
    shape = shape_from_row(ROW)
    assert (shape.mla_q_rank, shape.mla_kv_rank, shape.mla_nope_dim, shape.mla_rope_dim,
            shape.mla_v_dim) == (1536, 512, 128, 64, 128)
    assert shape.qk_dim == 192
    assert shape.v_dim == 128
    assert moe_routing(ROW) == (1.25, 1.0)
    assert optimizer_states(ROW) == "bf16"
    lite = dict(ROW, model="DeepSeek-V2-Lite", measured_from="MLA without q-lora "
                "(kv_lora_rank 512, qk 128+64, v 128)")
    assert shape_from_row(lite).mla_q_rank == 0
    assert optimizer_states(lite) == "fp32"
    assert optimizer_states(dict(ROW, model="Kimi-K2 1T (MaxText, dropless)")) == "bf16"
    assert optimizer_states(dict(ROW, model="MaxText synthetic 128B")) == "fp32"
    assert moe_routing(lite) == (None, 1.0)
    real = dict(ROW, source="Ascend/MindSpeed-LLM", measured_from="aux-loss routing")
    assert moe_routing(real)[1] > 1.0
    dense = dict(ROW, moe_num_experts="0", measured_from="GPT-3")
    assert shape_from_row(dense).mla_kv_rank == 0
    assert moe_routing(dense) == (None, 1.0)


def test_gpt_oss_notes_give_alternating_windows() -> None:
    row = dict(ROW, model="GPT OSS 120B", n_heads="64", n_kv_heads="8", head_dim="64",
               hidden_size="2880", measured_from="alternating 128-token sliding-window and "
               "full attention")
    shape = shape_from_row(row)
    assert (shape.sliding_window, shape.full_attention_every) == (128, 2)
    assert shape.mla_kv_rank == 0


def test_distinct_apply_equals_direct_evaluation() -> None:
    """Per-distinct evaluation gathers back exactly what evaluating every element gives,
    for float and whole-number inputs, wide ranges included."""
    from ocplan.plan.distinct import distinct_apply, distinct_columns

    rng = np.random.default_rng(3)
    n = 5000
    a = rng.choice([1.5e9, 2.5e9, 7.0e10], n)
    b = rng.choice([1, 2, 4, 8, 2**19, 2**21], n).astype(float)
    c = rng.integers(0, 3, n).astype(float)

    def fn(x, y, z):  # type: ignore[no-untyped-def]
        return x / y + z * np.sqrt(y)

    np.testing.assert_array_equal(distinct_apply(fn, a, b, c), fn(a, b, c))
    unique, inverse = distinct_columns(np.stack([a, b, c]))
    assert unique.shape[1] <= 3 * 6 * 3
    np.testing.assert_array_equal(unique[:, inverse], np.stack([a, b, c]))


def test_memory_only_evaluation_equals_the_full_one() -> None:
    from ocplan.plan.engine import evaluate_memory

    rng = np.random.default_rng(11)
    n = 300
    tp = rng.choice([1, 2, 4], n)
    pp = rng.choice([1, 2], n)
    cols = {"tp": tp, "pp": pp, "dp": 16 // (tp * pp), "ep": rng.choice([1, 2], n),
            "micro_batch": rng.choice([1, 2], n), "zero": rng.choice([0, 1, 2, 3], n),
            "recompute": rng.choice([0, 1, 2], n),
            "sequence_parallel": rng.random(n) < 0.5}
    wl = Workload(QWEN, 4096, 256, "bf16")
    sm = system_model(H100_16)
    lay = Plan.columns(**cols)
    full = evaluate(wl, sm, CAL, lay)
    mem = evaluate_memory(wl, sm, CAL, lay)
    np.testing.assert_allclose(mem.memory_bytes, full.memory_bytes, rtol=1e-12)
    np.testing.assert_allclose(mem.capacity_bytes, full.capacity_bytes, rtol=0)
