"""Recompute modes (ocplan.plan.recompute): what each re-runs and keeps, against the
operator list and the memory formulas; how validation rows and the search pick them. And
the other fact of the run's framework the engine reads: the gradient reduction's width."""

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.costmodel.op_time import profile
from ocplan.plan.calibration import Calibration, load_calibration
from ocplan.plan.engine import chip_peaks, efficiencies, system_model
from ocplan.plan.estimate import Estimate, estimate
from ocplan.plan.memory_terms import OFFLOAD_RESIDENT_LAYERS
from ocplan.plan.plan import LAYOUT, RECOMPUTE, Plan
from ocplan.plan.recompute import (
    ATTENTION_PROJECTIONS,
    MLA_UP_OPERATORS,
    NORM_ACT_OPERATORS,
    RECOMPUTE_MODES,
    XLA_DEAD_OPERATORS,
    mode,
    model_features,
    searched_modes,
    stack_of,
    whole_layer_mode,
)
from ocplan.plan.search import search
from ocplan.plan.space import training_space
from ocplan.results.validation import predict_prepared, prepare_row, row_recompute
from ocplan.workloads.memory import (
    ACT_BYTES,
    grad_reduce_bytes,
    mla_up_bytes,
    norm_act_bytes,
    qkv_activation_bytes,
)
from ocplan.workloads.operators import Shard, layer_operators
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "validation" / "training_dev.csv"
HOLDOUT = ROOT / "validation" / "holdout" / "training_holdout.csv"
CAT = load_catalog()
CAL = load_calibration()
LLAMA70 = ModelShape.from_arch(CAT.model("llama3-70b"))
LLAMA8 = ModelShape.from_arch(CAT.model("llama3-8b"))
QWEN = ModelShape.from_arch(CAT.model("qwen3-30b-a3b"))
DSV3 = ModelShape.from_arch(CAT.model("deepseek-v3"))
DSV2LITE = ModelShape.from_arch(CAT.model("deepseek-v2-lite"))
TPU = system_for_chip(CAT, "tpu-v5p", 256)
H100 = system_for_chip(CAT, "h100-sxm-80gb", 64)


def _est(wl: Workload, plan: Plan, system=TPU) -> Estimate:  # type: ignore[no-untyped-def]
    e = estimate(wl, plan, system, CAL)
    assert e.feasible, e.reason
    return e


def _names(shape: ModelShape, layer: int) -> set[str]:
    shard = Shard(tp=1.0, batch=1.0, seq_len=4096.0, ep=8.0 if shape.is_moe else 1.0)
    return {op.name for op in layer_operators(shape, "forward", shard, layer=layer,
                                              precision="bf16")}


def test_declared_operator_names_exist() -> None:
    """A name the operator list never emits would make a mode silently re-run
    everything: each dead operator and projection is emitted by some layer."""
    emitted = (_names(LLAMA70, 0) | _names(DSV3, 0) | _names(DSV3, 10)
               | _names(QWEN, 0))
    assert emitted >= XLA_DEAD_OPERATORS
    assert emitted >= NORM_ACT_OPERATORS
    assert emitted | _names(DSV2LITE, 1) >= MLA_UP_OPERATORS  # q_proj: no query LoRA
    assert "experts_act" not in _names(LLAMA70, 0)  # moe_act: routed experts only
    assert {"qkv", "q_down", "q_up", "kv_down", "kv_up"} <= emitted
    assert ATTENTION_PROJECTIONS - emitted == {"q_proj"}  # MLA without a q LoRA rank
    assert tuple(m.name for m in RECOMPUTE_MODES) == RECOMPUTE
    assert LAYOUT["recompute"].choices == RECOMPUTE


def _forward_s(shape: ModelShape, plan: Plan, names: frozenset[str] | None) -> float:
    """One dense layer's forward seconds on the TPU, all operators or those in
    ``names``, at the committed calibration (computed here from the operator list)."""
    sm = system_model(TPU)
    shard = Shard(tp=float(plan.tp), batch=float(plan.micro_batch), seq_len=4096.0)
    prof = profile(layer_operators(shape, "forward", shard, precision="bf16"),
                   chip_peaks(sm, "bf16"), 1)
    eff = efficiencies(sm, CAL)
    if names is None:
        return float(prof.time(eff).total_s[0])
    return float(prof.named_s(prof.op_s(eff), names)[0])


def test_xla_full_recompute_skips_the_down_projection_of_dense_layers() -> None:
    """Llama 3 70B: every layer dense, so full_xla re-runs the layer forward less its
    down projection and output residual, the rest of full's recompute."""
    wl = Workload(LLAMA70, 4096, 256, "bf16")
    plan = Plan(tp=1, pp=1, dp=256, micro_batch=1, zero=3, recompute="full")
    full = _est(wl, plan).time.recompute_s
    xla = _est(wl, replace(plan, recompute="full_xla")).time.recompute_s
    fwd = _forward_s(LLAMA70, plan, None)
    dead = _forward_s(LLAMA70, plan, XLA_DEAD_OPERATORS)
    assert xla / full == pytest.approx((fwd - dead) / fwd, rel=1e-9)
    # the down projection is a quarter of a SwiGLU layer's GEMM FLOPs (f = 3.5 h, GQA)
    assert 0.70 < xla / full < 0.85


def test_xla_recompute_reruns_routed_experts() -> None:
    """Qwen3-30B-A3B: every layer MoE without shared experts. The gate gradient reads
    the routed experts' outputs, so only the residual is not re-run."""
    wl = Workload(QWEN, 4096, 256, "bf16")
    plan = Plan(tp=1, pp=1, dp=256, ep=8, micro_batch=1, zero=1, recompute="full")
    full = _est(wl, plan).time.recompute_s
    xla = _est(wl, replace(plan, recompute="full_xla")).time.recompute_s
    assert 0.97 < xla / full < 1.0


def test_recompute_modes_order_time_and_memory() -> None:
    """More kept, less re-run: recompute time none < qkv_xla < full_xla < full, and
    activation memory the other way round (full and full_xla keep the same input)."""
    wl = Workload(LLAMA70, 4096, 256, "bf16")
    plan = Plan(tp=1, pp=1, dp=256, micro_batch=1, zero=3)
    e = {m: _est(wl, replace(plan, recompute=m)) for m in ("none", "qkv_xla", "full_xla",
                                                            "full")}
    rc = {m: x.time.recompute_s for m, x in e.items()}
    assert rc["none"] == 0.0 < rc["qkv_xla"] < rc["full_xla"] < rc["full"]
    act = {m: x.memory.activations_bytes for m, x in e.items() if x.memory}
    assert act["none"] > act["qkv_xla"] > act["full_xla"] == act["full"]


def test_qkv_xla_keeps_the_projections_on_top_of_the_input() -> None:
    """The extra bytes are Korthikanti's Q, K and V terms, per layer and micro-batch in
    flight: s b (a d + 2 k d) x 2 B (GQA: 64 query and 8 KV heads of 128)."""
    wl = Workload(LLAMA70, 4096, 256, "bf16")
    plan = Plan(tp=1, pp=1, dp=256, micro_batch=1, zero=3, recompute="full_xla")
    base = _est(wl, plan).memory
    kept = _est(wl, replace(plan, recompute="qkv_xla")).memory
    assert base is not None
    assert kept is not None
    per_layer = 4096 * 1 * ACT_BYTES * (64 * 128 + 2 * 8 * 128)
    assert qkv_activation_bytes(LLAMA70, 4096, 1, 1, 1) == per_layer
    assert kept.activations_bytes - base.activations_bytes == pytest.approx(
        LLAMA70.n_layers * per_layer, rel=1e-9)


def test_norm_act_drops_the_norm_and_expert_activation_outputs() -> None:
    """Korthikanti's terms per token: the two norm outputs (QKV and MLP inputs, 2 h x
    2 B, replicated without SP) and, in a MoE layer, each routed copy's activation output
    (f x 2 B, top-k copies, sharded by TP). Qwen3-30B-A3B: h 2048, 8 of 128 experts of
    f 768."""
    tokens = 4096 * 2
    assert (QWEN.hidden, QWEN.moe_top_k, QWEN.moe_ffn) == (2048, 8, 768)
    dense = norm_act_bytes(QWEN, 4096, 2, 1, False, 1, False)
    assert dense == tokens * 2 * 2 * 2048
    moe = norm_act_bytes(QWEN, 4096, 2, 4, True, 1, True)
    assert moe == pytest.approx(tokens * (2 * 2 * 2048 / 4 + 8 * 2 * 768 / 4), rel=1e-12)
    # fp8 training saves the 8-bit casts of GEMM inputs: half of it
    assert norm_act_bytes(QWEN, 4096, 2, 1, False, 1, True, gemm_input_bytes=1.0) == \
        pytest.approx(norm_act_bytes(QWEN, 4096, 2, 1, False, 1, True) / 2, rel=1e-12)


@pytest.mark.parametrize("shape", [LLAMA8, QWEN], ids=["dense", "moe"])
def test_norm_act_keeps_that_much_less_and_reruns_those_operators(shape: ModelShape) -> None:
    """One stage (pp 1), so every layer holds one micro-batch: the activation bytes fall by
    n_layers x :func:`norm_act_bytes`, and the recompute time is the forward of the norms
    (and experts' activation) of every layer, a few per cent of a step, on the GPU."""
    moe = shape.is_moe
    wl = Workload(shape, 4096, 256, "bf16")
    plan = Plan(tp=1, pp=1, dp=64, ep=8 if moe else 1, micro_batch=1, zero=3)
    none = _est(wl, plan, H100)
    kept = _est(wl, replace(plan, recompute="norm_act"), H100)
    assert none.memory is not None
    assert kept.memory is not None
    dropped = norm_act_bytes(shape, 4096, 1, 1, False, 1, moe)
    assert none.memory.activations_bytes - kept.memory.activations_bytes == pytest.approx(
        shape.n_layers * dropped, rel=1e-9)
    assert none.time.recompute_s == 0.0
    assert 0.0 < kept.time.recompute_s < 0.06 * kept.step_s
    assert kept.step_s == pytest.approx(none.step_s + kept.time.recompute_s, rel=0.02)
    full = _est(wl, replace(plan, recompute="full"), H100)
    assert kept.time.recompute_s < 0.2 * full.time.recompute_s


def test_mla_up_drops_the_query_key_and_value_heads() -> None:
    """DeepSeek-V3: 128 heads, query/key width 192 (128 + 64 rope), value 128: per token
    2 B x 128 x (192 + 192 + 128) rebuilt from the latents; nothing on a GQA model."""
    assert (DSV3.n_heads, DSV3.qk_dim, DSV3.v_dim) == (128, 192, 128)
    assert mla_up_bytes(DSV3, 4096, 1, 1, 1) == 4096 * 2 * 128 * (192 + 192 + 128)
    assert mla_up_bytes(DSV3, 4096, 1, 4, 2) == 4096 * 2 * 128 * (192 + 192 + 128) / 8
    assert mla_up_bytes(LLAMA70, 4096, 1, 1, 1) == 0.0


def test_mla_up_keeps_less_and_reruns_the_up_projections() -> None:
    """DeepSeek-V2-Lite in one stage: the activations fall by n_layers x
    :func:`mla_up_bytes`; the re-run up-projections and RoPE cost under 5 % of a step."""
    wl = Workload(DSV2LITE, 4096, 256, "bf16")
    plan = Plan(tp=1, pp=1, dp=64, ep=8, micro_batch=1, zero=3)
    none = _est(wl, plan, H100)
    kept = _est(wl, replace(plan, recompute="mla_up"), H100)
    assert none.memory is not None
    assert kept.memory is not None
    assert none.memory.activations_bytes - kept.memory.activations_bytes == pytest.approx(
        DSV2LITE.n_layers * mla_up_bytes(DSV2LITE, 4096, 1, 1, 1), rel=1e-9)
    assert 0.0 < kept.time.recompute_s < 0.05 * kept.step_s


def test_norm_act_mla_up_keeps_what_neither_keeps_and_reruns_both() -> None:
    """DeepSeek-V3's own recipe (its report §3.2.3, §3.3.3) names disjoint operators:
    the activations it drops are the sum of what norm_act and mla_up drop, and its
    re-run forward the sum of theirs."""
    assert not NORM_ACT_OPERATORS & MLA_UP_OPERATORS
    wl = Workload(DSV2LITE, 4096, 256, "bf16")
    plan = Plan(tp=1, pp=1, dp=64, ep=8, micro_batch=1, zero=3)
    none, na, up, both = (_est(wl, replace(plan, recompute=r), H100)  # type: ignore[arg-type]
                          for r in ("none", "norm_act", "mla_up", "norm_act_mla_up"))
    act = [e.memory.activations_bytes for e in (none, na, up, both)
           if e.memory is not None]
    assert len(act) == 4
    assert act[0] - act[3] == pytest.approx((act[0] - act[1]) + (act[0] - act[2]), rel=1e-9)
    assert both.time.recompute_s == pytest.approx(na.time.recompute_s + up.time.recompute_s,
                                                  rel=1e-9)
    assert na.time.recompute_s > 0.0
    assert up.time.recompute_s > 0.0


def test_mla_up_on_a_model_without_latent_attention_is_infeasible() -> None:
    from ocplan import api
    wl = Workload(LLAMA70, 4096, 256, "bf16")
    e = estimate(wl, Plan(tp=8, pp=1, dp=8, recompute="mla_up"), H100, CAL)
    assert not e.feasible
    assert e.reason is not None
    assert e.reason.startswith("recompute: ")
    assert "multi-head latent attention" in e.reason
    hint = api.infeasible_hint(e.reason)
    assert hint is not None
    assert "mla_up" in hint


def test_norm_act_is_a_cli_and_request_choice() -> None:
    """Declared once: the plan's choices, hence the request, the flags and the form."""
    from ocplan import api
    assert "norm_act" in RECOMPUTE
    req = api.EstimateRequest.model_validate({"model": "qwen3-30b-a3b", "chip": "b200",
                                              "ep": 8, "recompute": "norm_act"})
    result, _, _ = api.run_estimate(CAT, req)
    assert result.plan.recompute == "norm_act"
    assert result.feasible
    assert result.time.recompute_s > 0


def test_offload_keeps_one_layer_of_what_the_mode_keeps() -> None:
    """Offload with a whole-layer mode: the layer inputs (and projections) go to the
    host, one layer of them stays resident (MaxText's decoder_layer_input offload)."""
    wl = Workload(LLAMA70, 4096, 256, "bf16")
    plan = Plan(tp=1, pp=1, dp=256, micro_batch=1, zero=3, recompute="qkv_xla")
    held = _est(wl, plan).memory
    off = _est(wl, replace(plan, offload=True)).memory
    assert held is not None
    assert off is not None
    assert off.activations_bytes == pytest.approx(
        held.activations_bytes / LLAMA70.n_layers * OFFLOAD_RESIDENT_LAYERS, rel=1e-9)


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return {r["case_id"]: r for r in csv.DictReader(f)}


@pytest.mark.skipif(not DEV.exists(), reason="needs ../shared/validation")
def test_validation_rows_state_their_frameworks_recompute() -> None:
    """JAX runs (MaxText) recompute XLA-style; Megatron rows keep their mode; an
    offloading policy that names the projections keeps them."""
    rows = _rows(DEV)
    assert row_recompute(rows["R094"]) == ("full_xla", False)     # remat_policy=full
    assert row_recompute(rows["R097"]) == ("qkv_xla", True)       # qkv_proj_offloaded
    assert row_recompute(rows["R103"]) == ("full_xla", True)      # custom, input offloaded
    assert row_recompute(rows["R248"]) == ("full_xla", False)     # MaxText on B200
    assert row_recompute(rows["R001"]) == ("full", False)         # Megatron-LM
    assert row_recompute(rows["R011"]) == ("selective", False)
    held = _rows(HOLDOUT)
    assert row_recompute(held["HT014"]) == ("qkv_xla", True)
    assert row_recompute(held["HT016"]) == ("full_xla", True)


@pytest.mark.skipif(not HOLDOUT.exists(), reason="needs the hold-out file")
def test_an_unstated_recompute_is_the_stacks_whole_layer_mode() -> None:
    """MaxText's Llama 3.1 405B on 8 x 8 MI355X (HT011) states no remat policy and does
    not fit without one: the fewest layers recomputed the XLA way that fit."""
    row = _rows(HOLDOUT)["HT011"]
    assert row["recompute"] == ""
    p = prepare_row(row, CAT)
    assert p.stack == "xla"
    e = predict_prepared(p, CAL)
    assert e.feasible, e.reason
    assert e.plan.recompute == "full_xla"
    assert e.plan.recompute_layers is not None
    assert 0 < e.plan.recompute_layers <= 126
    assert e.memory is not None
    assert e.memory.total_bytes <= e.memory.capacity_bytes


@pytest.mark.skipif(not DEV.exists(), reason="needs ../shared/validation")
def test_an_unstated_recompute_takes_the_fastest_mode_that_fits() -> None:
    """Megatron-Bridge's DeepSeek-V3 on 256 GB300 (R064, PP2 VP8 EP32, micro-batch 2)
    states no recompute and does not fit without one; its recipe recomputes the MLA
    up-projections. The validation takes the fastest that fits of the module modes and
    the fewest whole layers: a module mode here, faster than the whole layers, while a
    dense run that does not fit (R058, Llama 3 70B on GB300, without the 20 layers of
    activation offload its recipe sets) keeps whole layers."""
    rows = _rows(DEV)
    p = prepare_row(rows["R064"], CAT)
    assert not p.recompute_stated
    assert not estimate(p.workload, p.plan, p.system, CAL).feasible
    e = predict_prepared(p, CAL)
    assert e.feasible, e.reason
    assert e.plan.recompute in ("mla_up", "norm_act")
    layers = [estimate(p.workload, replace(p.plan, recompute="full", recompute_layers=n),
                       p.system, CAL) for n in range(1, 5)]
    fastest_whole = min(x.step_s for x in layers if x.feasible and x.step_s is not None)
    assert e.step_s is not None
    assert e.step_s < fastest_whole
    r058 = prepare_row(rows["R058"], CAT)
    assert r058.plan.offload_layers == 20
    assert predict_prepared(r058, CAL).plan.recompute == "none"
    unloaded = replace(r058, plan=replace(r058.plan, offload=False, offload_layers=None))
    assert not estimate(unloaded.workload, unloaded.plan, unloaded.system, CAL).feasible
    dense = predict_prepared(unloaded, CAL)
    assert dense.plan.recompute == "full"
    assert dense.plan.recompute_layers is not None


def test_the_search_tries_the_chips_stack() -> None:
    """TPUs run XLA: their search tries none, full_xla, qkv_xla and auto (whole layers
    the XLA way); a GPU's tries none, selective, full and auto, for a MoE model
    norm_act too, and for one with latent attention mla_up and the two together."""
    assert stack_of(system_model(TPU).family) == "xla"
    assert stack_of(system_model(H100).family) == "torch"
    assert whole_layer_mode("xla").name == "full_xla"
    assert whole_layer_mode("torch").name == "full"
    code = LAYOUT["recompute"].code
    for stack, want in (("xla", {"none", "full_xla", "qkv_xla"}),
                        ("torch", {"none", "selective", "full"})):
        for shape, extra in ((LLAMA70, set()), (QWEN, {"norm_act"}),
                             (DSV3, {"norm_act", "mla_up", "norm_act_mla_up"})):
            extra = extra if stack == "torch" else set()
            features = model_features(shape)
            assert {m.name for m in searched_modes(stack, features)} == want | extra
            space = training_space(chips=64, n_layers=32, n_heads=32, n_kv_heads=8,
                                   seq_len=4096, global_batch=256, domain=8, stack=stack,
                                   experts=8 if shape.is_moe else 0, features=features)
            (axis,) = (a for a in space.axes if a.name == "recompute")
            assert set(axis.values) == {code(n) for n in want | extra} | {code("auto")}


def test_a_tpu_search_recomputes_the_xla_way() -> None:
    """Llama 3 70B on 256 v5p chips needs recompute at a large micro-batch; every
    layout the search returns uses a mode of the XLA stack."""
    wl = Workload(LLAMA70, 8192, 1024, "bf16")
    result = search(wl, TPU, chips=256, top_k=20)
    modes = {c.plan.recompute for c in result.top}
    assert modes, "nothing fits"
    assert all(mode(m).stack in (None, "xla") for m in modes), modes
    assert np.isfinite([c.step_s for c in result.top]).all()


def test_gradients_are_reduced_in_fp32_unless_the_run_is_fp16() -> None:
    """Megatron-LM reduces bf16 runs' gradients in fp32 and fp16 runs' in fp16. With the
    data-parallel traffic exposed (no overlap), ZeRO-1 reduce-scatters the gradients and
    all-gathers 16-bit parameters: (4 + 2) / (2 + 2) = 1.5 times the bytes in bf16 (the
    same peak on an H100; ring latency keeps the ratio a little under)."""
    plan = Plan(tp=1, pp=1, dp=64, micro_batch=1, zero=1, recompute="full",
                dp_overlap=False)
    dp = {p: _est(Workload(ModelShape.from_arch(CAT.model("llama3-8b")), 4096, 64, p),
                  plan, H100).time.dp_comm_s for p in ("bf16", "fp16")}
    assert grad_reduce_bytes("bf16") == grad_reduce_bytes("fp8") == 4.0
    assert grad_reduce_bytes("fp16") == 2.0
    assert 1.45 < dp["bf16"] / dp["fp16"] <= 1.5


def test_data_parallel_overlap_is_the_stacks() -> None:
    """The share of ZeRO traffic hidden behind compute is fitted per stack: a TPU
    estimate reads ``dp_overlap_xla`` and never ``dp_overlap``, a GPU one the reverse
    unless it recomputes the XLA way (a JAX run on GPUs), and a calibration file from
    before the split uses its one share for both."""
    wl = Workload(ModelShape.from_arch(CAT.model("llama3-8b")), 4096, 256, "bf16")
    plan = Plan(tp=1, pp=1, dp=256, micro_batch=1, zero=3, recompute="full_xla")
    gpu_plan = Plan(tp=1, pp=1, dp=64, micro_batch=1, zero=3, recompute="full")

    def dp_s(system, plan: Plan, **values: float) -> float:  # type: ignore[no-untyped-def]
        e = estimate(wl, plan, system, CAL.with_values(**values))
        assert e.feasible, e.reason
        return e.time.dp_comm_s

    tpu = {o: dp_s(TPU, plan, dp_overlap=0.5, dp_overlap_xla=o) for o in (0.0, 0.9)}
    assert tpu[0.0] > tpu[0.9]
    assert dp_s(TPU, plan, dp_overlap=0.0, dp_overlap_xla=0.9) == tpu[0.9]
    gpu = {o: dp_s(H100, gpu_plan, dp_overlap=o, dp_overlap_xla=0.5) for o in (0.0, 0.9)}
    assert gpu[0.0] > gpu[0.9]
    assert dp_s(H100, gpu_plan, dp_overlap=0.9, dp_overlap_xla=0.0) == gpu[0.9]
    jax_gpu = replace(gpu_plan, recompute="full_xla")
    xla_gpu = {o: dp_s(H100, jax_gpu, dp_overlap=0.5, dp_overlap_xla=o) for o in (0.0, 0.9)}
    assert xla_gpu[0.0] > xla_gpu[0.9]
    assert dp_s(H100, jax_gpu, dp_overlap=0.0, dp_overlap_xla=0.9) == xla_gpu[0.9]
    old = {k: v for k, v in CAL.to_json().items() if k != "dp_overlap_xla"}
    assert Calibration.from_json(old).dp_overlap_xla == CAL.dp_overlap
