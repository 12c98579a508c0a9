"""The training-step engine: consistency, physical monotonicity, infeasibility."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.plan.calibration import load_calibration
from ocplan.plan.engine import evaluate, system_model
from ocplan.plan.estimate import estimate
from ocplan.plan.plan import RECOMPUTE, Plan
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

CAT = load_catalog()
LLAMA70 = ModelShape.from_arch(CAT.model("llama3-70b"))
MIXTRAL = ModelShape.from_arch(CAT.model("mixtral-8x7b"))
H100_64 = system_for_chip(CAT, "h100-sxm-80gb", 64)
CAL = load_calibration()

layouts = st.fixed_dictionaries({
    "tp": st.sampled_from([1, 2, 4, 8]),
    "pp": st.sampled_from([1, 2, 4]),
    "cp": st.sampled_from([1, 2]),
    "mb": st.sampled_from([1, 2]),
    "zero": st.sampled_from([0, 1, 2, 3]),
    "recompute": st.sampled_from(RECOMPUTE),
    "sp": st.booleans(),
})


def _plan(d: dict, chips: int = 64) -> Plan:  # type: ignore[type-arg]
    dp = chips // (d["tp"] * d["pp"] * d["cp"])
    return Plan(tp=d["tp"], pp=d["pp"], dp=dp, cp=d["cp"], micro_batch=d["mb"],
                zero=d["zero"], recompute=d["recompute"], sequence_parallel=d["sp"])


def _eval(plan: Plan, wl: Workload, sm=None):  # type: ignore[no-untyped-def]
    sm = sm or system_model(H100_64)
    return evaluate(wl, sm, CAL, plan.encoded())


def test_breakdown_sums_to_step() -> None:
    wl = Workload(LLAMA70, 4096, 256, "bf16")
    est = estimate(wl, Plan(tp=8, pp=4, dp=2, vpp=5, recompute="full"), H100_64)
    assert est.feasible
    assert est.time is not None
    assert est.time.total_s == pytest.approx(est.step_s, rel=1e-12)
    assert est.tokens_per_s == pytest.approx(256 * 4096 / est.step_s)
    assert 0.05 < est.mfu < 0.8


def test_mfu_uses_palm_model_flops() -> None:
    wl = Workload(LLAMA70, 4096, 256, "bf16")
    est = estimate(wl, Plan(tp=8, pp=4, dp=2, recompute="full"), H100_64)
    n = LLAMA70.matmul_params_per_token
    flops = 6 * n + 12 * 80 * 4096 * 64 * 128
    assert est.mfu == pytest.approx(est.tokens_per_s_per_chip * flops / 989.4e12, rel=1e-9)


def test_model_flops_count_a_sliding_window_layer_over_its_window() -> None:
    """gpt-oss alternates 128-token windowed and full layers: PaLM's full-matrix count
    of a windowed layer is its window, not the sequence."""
    oss = ModelShape.from_arch(CAT.model("gpt-oss-120b"))
    s, w, layers = 8192, 128, 36
    assert (oss.sliding_window, oss.full_attention_every, oss.n_layers) == (w, 2, layers)
    wl = Workload(oss, s, 64, "bf16")
    attn = 6 * oss.n_heads * (oss.qk_dim + oss.v_dim) * (layers // 2 * s + layers // 2 * w)
    assert wl.model_flops_per_token == pytest.approx(
        6 * oss.matmul_params_per_token + attn, rel=1e-12)


def test_mfu_ceiling_is_palm_over_causal_flops() -> None:
    """PaLM counts the whole score matrix; causal kernels run half of it, and a capacity
    factor below 1 drops routed-expert work, so the largest MFU a chip at its peak can
    show is above 1 where those dominate, and exactly their ratio."""
    short, long = Workload(LLAMA70, 4096, 256), Workload(LLAMA70, 131072, 8)
    n6 = 6 * LLAMA70.matmul_params_per_token
    per_key = 6 * 64 * (128 + 128) * 80
    for wl in (short, long):
        s = wl.seq_len
        assert wl.mfu_ceiling == pytest.approx((n6 + per_key * s) / (n6 + per_key * s / 2),
                                               rel=1e-12)
    assert 1.0 < short.mfu_ceiling < 1.05 < 1.5 < long.mfu_ceiling < 2.0
    dropless = Workload(MIXTRAL, 4096, 256)
    dropping = Workload(MIXTRAL, 4096, 256, moe_capacity_factor=0.5)
    routed = 6 * 32 * 2 * MIXTRAL.expert_params
    assert dropping.model_flops_per_token == dropless.model_flops_per_token
    assert dropless.model_flops_per_token / dropping.mfu_ceiling == pytest.approx(
        dropless.model_flops_per_token / dropless.mfu_ceiling - routed / 2, rel=1e-12)


#: The highest efficiency the fit allows (scripts/fit_calibration.py MAX_EFFICIENCY), the
#: Blackwell attention value of session 56's fit.
FAST_ATTENTION = 0.90


def test_long_attention_bound_step_reports_mfu_within_its_ceiling() -> None:
    """A step dominated by causal attention may show an MFU above 1 under PaLM's count,
    never above the ceiling (it used to trip the engine's MFU <= 1 assertion). The
    Blackwell attention efficiency is set to the fit's cap so the step stays in that
    regime whatever a refit gives (session 57's gives 0.75, HFU 0.92)."""
    small = ModelShape.from_arch(CAT.model("llama3-8b"))
    wl = Workload(small, 524288, 8, "bf16")
    fast = replace(CAL, families={**CAL.families, "blackwell": replace(
        CAL.for_family("blackwell"), attention=FAST_ATTENTION)})
    est = estimate(wl, Plan(cp=8, recompute="full"), system_for_chip(CAT, "b200", 8), fast)
    assert est.feasible
    assert 0.0 < est.mfu <= wl.mfu_ceiling
    assert est.hfu > 1.0  # full recompute on top of PaLM's full-matrix count


@pytest.mark.parametrize("model_id", ["deepseek-v2", "llama4-maverick", "gpt-oss-120b"])
def test_attention_bound_step_that_does_not_fit_says_memory(model_id: str) -> None:
    """128K tokens on one B200: the timed step shows a PaLM MFU above 1 (DeepSeek-V2:
    about 1.05), which the engine's check took for a bug before the memory check could
    answer; now the answer is the memory reason."""
    wl = Workload(ModelShape.from_arch(CAT.model(model_id)), 131072, 1, "bf16")
    est = estimate(wl, Plan(), system_for_chip(CAT, "b200", 1))
    assert not est.feasible
    assert est.reason is not None
    assert est.reason.startswith("memory")


def test_out_of_memory_is_a_result_with_reason() -> None:
    wl = Workload(LLAMA70, 8192, 64, "bf16")
    est = estimate(wl, Plan(tp=1, pp=1, dp=64, zero=0), H100_64)
    assert not est.feasible
    assert est.reason is not None
    assert est.reason.startswith("memory")
    assert est.memory is not None
    assert est.memory.total_bytes > est.memory.capacity_bytes


def test_indivisible_layout_is_a_result_with_reason() -> None:
    wl = Workload(LLAMA70, 4096, 100, "bf16")
    est = estimate(wl, Plan(tp=8, pp=1, dp=8, micro_batch=3), H100_64)
    assert not est.feasible
    assert est.reason is not None
    assert "batch" in est.reason


@settings(max_examples=60, deadline=None)
@given(d=layouts)
def test_tp1_has_no_tp_traffic(d: dict) -> None:  # type: ignore[type-arg]
    d = d | {"tp": 1}
    plan = _plan(d)
    r = _eval(plan, Workload(LLAMA70, 4096, 512, "bf16"))
    assert float(r["tp_comm_s"]) == 0.0


@settings(max_examples=60, deadline=None)
@given(d=layouts, factor=st.floats(1.0, 16.0))
def test_more_bandwidth_never_slows_a_step(d: dict, factor: float) -> None:  # type: ignore[type-arg]
    sm = system_model(H100_64)
    fab = sm.fabric
    faster = replace(sm, hbm_Bps=sm.hbm_Bps * factor, fabric=replace(
        fab, up_group_Bps={k: v * factor for k, v in fab.up_group_Bps.items()},
        up_chip_Bps=fab.up_chip_Bps * factor, nvls_Bps=fab.nvls_Bps * factor,
        out_Bps=fab.out_Bps * factor))
    plan = _plan(d)
    wl = Workload(LLAMA70, 4096, 512, "bf16")
    base = float(_eval(plan, wl, sm)["step_s"])
    fast = float(_eval(plan, wl, faster)["step_s"])
    assert fast <= base * (1 + 1e-12)


@settings(max_examples=40, deadline=None)
@given(d=layouts, doublings=st.integers(1, 4))
def test_more_chips_at_fixed_per_chip_work_never_lower_throughput(
        d: dict, doublings: int) -> None:  # type: ignore[type-arg]
    """Scale dp and the global batch together: per-chip work stays fixed."""
    plan = _plan(d, chips=64)
    wl = Workload(LLAMA70, 4096, 64 * plan.dp, "bf16")
    small = estimate(wl, plan, system_for_chip(CAT, "h100-sxm-80gb", 64))
    k = 2**doublings
    big_plan = replace(plan, dp=plan.dp * k)
    big_wl = Workload(LLAMA70, 4096, 64 * plan.dp * k, "bf16")
    big = estimate(big_wl, big_plan, system_for_chip(CAT, "h100-sxm-80gb", 64 * k))
    if small.feasible:
        assert big.feasible
        assert big.tokens_per_s >= small.tokens_per_s * (1 - 1e-12)


def test_scalar_and_vectorized_agree() -> None:
    """One implementation: evaluating arrays of layouts equals evaluating each alone."""
    rng = np.random.default_rng(7)
    n = 400
    wl = Workload(MIXTRAL, 4096, 1024, "bf16")
    sm = system_model(H100_64)
    cols = {
        "tp": rng.choice([1, 2, 4, 8], n), "pp": rng.choice([1, 2, 4], n),
        "cp": rng.choice([1, 2], n), "ep": rng.choice([1, 2, 4, 8], n),
        "vpp": rng.choice([1, 2], n), "mb": rng.choice([1, 2, 4], n),
        "zero": rng.choice([0, 1, 2, 3], n),
        "recompute": rng.choice([0, 1, 2], n),
        "sequence_parallel": rng.random(n) < 0.5,
    }
    cols["dp"] = 64 // (cols["tp"] * cols["pp"] * cols["cp"])
    cols["micro_batch"] = cols.pop("mb")
    vec = evaluate(wl, sm, CAL, Plan.columns(**cols))
    for i in range(0, n, 7):
        one = evaluate(wl, sm, CAL, Plan.columns(**{k: v[i] for k, v in cols.items()}))
        for key in ("step_s", "memory_bytes", "tp_comm_s", "ep_comm_s", "dp_comm_s", "mfu"):
            assert float(one[key]) == pytest.approx(float(vec[key][i]), rel=1e-9, abs=0.0)


def test_moe_expert_parallel_adds_all_to_all() -> None:
    wl = Workload(MIXTRAL, 4096, 256, "bf16")
    no_ep = estimate(wl, Plan(tp=2, pp=4, dp=8, ep=1, recompute="full"), H100_64)
    ep8 = estimate(wl, Plan(tp=2, pp=4, dp=8, ep=8, recompute="full"), H100_64)
    assert no_ep.time is not None
    assert ep8.time is not None
    assert no_ep.time.ep_comm_s == 0.0
    assert ep8.time.ep_comm_s > 0.0
    assert ep8.memory is not None
    assert no_ep.memory is not None
    assert ep8.memory.weights_bytes < no_ep.memory.weights_bytes


def test_pipeline_bubble_shrinks_with_interleaving() -> None:
    wl = Workload(LLAMA70, 4096, 64, "bf16")
    flat = estimate(wl, Plan(tp=8, pp=8, dp=1, vpp=1, recompute="full"), H100_64)
    inter = estimate(wl, Plan(tp=8, pp=8, dp=1, vpp=5, recompute="full"), H100_64)
    assert flat.time is not None
    assert inter.time is not None
    assert inter.time.bubble_s < flat.time.bubble_s


def test_hybrid_sharding_shards_within_groups_and_all_reduces_across() -> None:
    """HSDP: states sharded over the group, not all DP ranks; replicas add an all-reduce."""
    wl = Workload(ModelShape.from_arch(CAT.model("llama3-8b")), 4096, 512, "bf16")
    system = system_for_chip(CAT, "h100-sxm-80gb", 64)
    full = estimate(wl, Plan(tp=1, pp=1, dp=64, zero=3, recompute="full"), system)
    hybrid = estimate(wl, Plan(tp=1, pp=1, dp=64, zero=3, recompute="full", shard_group=8),
                      system)
    # with nothing hidden, so the comparison is of traffic, not of the fitted overlap
    full_x, hybrid_x = (estimate(wl, replace(e.plan, dp_overlap=False), system)
                        for e in (full, hybrid))
    assert full.memory is not None
    assert hybrid.memory is not None
    states = lambda m: m.weights_bytes + m.grads_bytes + m.optimizer_bytes  # noqa: E731
    assert states(hybrid.memory) == pytest.approx(8 * states(full.memory), rel=0.02)
    # the per-micro-batch gathers stay inside a server: less DP time
    assert hybrid_x.time is not None
    assert full_x.time is not None
    assert hybrid_x.time.dp_comm_s < full_x.time.dp_comm_s
    bad = estimate(wl, Plan(tp=1, pp=1, dp=64, zero=3, shard_group=7), system)
    assert not bad.feasible
    assert bad.reason is not None
    assert "shard group" in bad.reason


def test_first_stage_holds_p_micro_batches_without_interleaving() -> None:
    """Korthikanti et al. 2022 §4.2.3: under plain 1F1B the first stage keeps the
    activations of p micro-batches; only the interleaved schedule keeps (p - 1)/(p v) of
    one more. Everything else equal, the activation bytes scale exactly so."""
    wl = Workload(LLAMA70, 4096, 256, "bf16")
    acts = {}
    for vpp in (1, 2, 4):
        r = _eval(Plan(tp=8, pp=4, dp=2, vpp=vpp, recompute="full"), wl)
        acts[vpp] = float(r["activations_bytes"])
    per_micro_batch = acts[1] / 4
    assert acts[2] == pytest.approx(per_micro_batch * 4 * (1 + 3 / 8), rel=1e-12)
    assert acts[4] == pytest.approx(per_micro_batch * 4 * (1 + 3 / 16), rel=1e-12)


def test_calibration_family_is_catalog_data() -> None:
    """The family a chip is calibrated with comes from its catalog entry; a family no
    published run fitted (MI300X's cdna3) falls back to the default values (the fitted
    families' median), and the estimate says so with the number of runs behind the
    values it used and their held-out error."""
    wl = Workload(LLAMA70, 4096, 256, "bf16")
    plan = Plan(tp=8, pp=2, dp=4, recompute="full")
    h100 = estimate(wl, plan, H100_64)
    assert CAT.accelerator("h100-sxm-80gb").family == "hopper"
    assert (h100.calibration_family, h100.calibration_runs) == ("hopper",
                                                                CAL.families["hopper"].runs)
    assert h100.calibration_runs > 0
    assert h100.calibration_cv_error_pct is not None
    assert 0 < h100.calibration_cv_error_pct < 50
    mi300x = system_for_chip(CAT, "mi300x", 64)
    assert mi300x.accelerator.family == "cdna3"
    assert "cdna3" not in CAL.families
    other = estimate(wl, plan, mi300x)
    assert (other.calibration_family, other.calibration_runs) == ("default", 0)
    # the same chip declared in the hopper family uses hopper's fitted values
    as_hopper = replace(mi300x, accelerator=mi300x.accelerator.model_copy(
        update={"family": "hopper"}))
    moved = estimate(wl, plan, as_hopper)
    assert moved.calibration_family == "hopper"
    # it reads hopper's values: slowing hopper's GEMMs slows it and not the default chip
    # (the default can equal hopper's values: it is the run-weighted median of the
    # families, and hopper holds a third of the runs)
    slow = replace(CAL, families={**CAL.families, "hopper": replace(
        CAL.families["hopper"], gemm=CAL.families["hopper"].gemm * 0.8)})
    assert estimate(wl, plan, as_hopper, slow).step_s > moved.step_s
    assert estimate(wl, plan, mi300x, slow).step_s == other.step_s


@pytest.mark.parametrize("slices", [2, 4, 8])
def test_dcn_steps_cost_layers_times_slices_on_tpu_slices_only(slices: int) -> None:
    """Across TPU slices (host-staged DCN) each ring step of the per-layer gradient
    all-reduce costs ``dcn_step_s``: HSDP with one replica per slice adds exactly
    layers x 2(S - 1) steps to the exposed DP time, whatever the gradient bytes; the same
    layout on GPU nodes (RDMA) does not read it."""
    wl = Workload(LLAMA70, 2048, 256 * slices, "bf16")
    cal = load_calibration()
    tpu = system_for_chip(CAT, "tpu-v5e", 256 * slices)
    plan = Plan(tp=1, pp=1, dp=256 * slices, zero=3, recompute="full_xla", shard_group=256,
                micro_batch=1)

    def dp_s(system, plan: Plan, step: float) -> float:  # type: ignore[no-untyped-def]
        e = estimate(wl, plan, system, cal.with_values(dcn_step_s=step))
        assert e.feasible, e.reason
        return e.time.dp_comm_s

    added = dp_s(tpu, plan, 1e-3) - dp_s(tpu, plan, 0.0)
    assert added == pytest.approx(LLAMA70.n_layers * 2 * (slices - 1) * 1e-3)
    gpu = system_for_chip(CAT, "h100-sxm-80gb", 32 * slices)
    gpu_plan = Plan(tp=8, pp=4, dp=slices, zero=1, recompute="full", micro_batch=1)
    assert dp_s(gpu, gpu_plan, 1e-3) == dp_s(gpu, gpu_plan, 0.0)


@pytest.mark.parametrize(("chip", "recompute", "eager"), [
    ("h100-sxm-80gb", "full", True),      # Megatron/NeMo/torchtitan: an eager step
    ("h100-sxm-80gb", "full_xla", False),  # MaxText on GPUs: one compiled program
    ("tpu-v5p", "full", False),            # a chip programmed only through XLA
])
def test_step_overhead_is_paid_once_per_eager_step(chip: str, recompute: str,
                                                   eager: bool) -> None:
    """``step_overhead_s`` adds exactly itself to the step (in the optimizer term) of a
    PyTorch-stack layout, whatever its size, and nothing on the XLA stack."""
    wl = Workload(ModelShape.from_arch(CAT.model("llama3-8b")), 4096, 64, "bf16")
    system = system_for_chip(CAT, chip, 8)
    plan = Plan(tp=1, pp=1, dp=8, recompute=recompute)
    base = estimate(wl, plan, system, CAL.with_values(step_overhead_s=0.0))
    more = estimate(wl, plan, system, CAL.with_values(step_overhead_s=0.05))
    assert base.time is not None
    assert more.time is not None
    added = 0.05 if eager else 0.0
    assert more.step_s - base.step_s == pytest.approx(added, abs=1e-12)
    assert more.time.optimizer_s - base.time.optimizer_s == pytest.approx(added, abs=1e-12)
    assert more.time.total_s == pytest.approx(more.step_s)


def test_calibration_files_without_a_step_overhead_read_as_none() -> None:
    data = CAL.to_json()
    assert data["step_overhead_s"] == CAL.step_overhead_s
    del data["step_overhead_s"]
    assert type(CAL).from_json(data).step_overhead_s == 0.0
    assert type(CAL).from_json(CAL.to_json()) == CAL
