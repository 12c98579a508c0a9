"""The training-step model: one implementation of the physics, over arrays of layouts.

:func:`evaluate` takes a workload, a system and layout fields that are ints or numpy
arrays (one element per candidate layout) and returns every term of the step time and
memory as arrays. :func:`ocplan.plan.estimate.estimate` is the one-layout case, and the
search evaluates thousands of layouts in one call of the same function.

Step time (per optimizer step, slowest pipeline stage):

``step = (m + (p-1)/v) * t_mb + pp_comm + dp_exposed + optimizer``

- ``m = B / (dp * b)`` micro-batches of ``b`` sequences; ``(p-1)/v`` the 1F1B
  (interleaved) bubble in micro-batch times (Narayanan et al. SC'21, §2.2);
- ``t_mb``: forward + backward (+ recompute) of the stage's ``ceil(L/p)`` layers for one
  micro-batch, plus exposed TP, EP and CP communication, plus the LM head on the last
  stage;
- per layer, time = GEMMs / (peak * eta_gemm) + kernel overhead + attention /
  (peak16 * eta_attn) + elementwise bytes / (HBM bandwidth * eta_mem). Backward costs
  2x the GEMM FLOPs and 2.5x the flash-attention FLOPs (FlashAttention-2 backward
  runs five matmuls to the forward's two; Dao 2023 §3.1.2);
- communication: see :mod:`ocplan.collectives.cost`; overlap fractions are calibrated.

Memory per chip: ZeRO model states (:func:`~ocplan.workloads.memory.model_state_bytes`)
plus activations (:func:`~ocplan.workloads.memory.layer_activation_bytes`) of the micro-
batches in flight on the first stage (p for 1F1B, times ``1 + (p-1)/(p*v)`` when
interleaved; Korthikanti et al. §4.2.3), logits, fp8 weight copies and a fixed reserve.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ocplan.catalog.system import System
from ocplan.collectives import cost
from ocplan.collectives.fabric import CommFabric, comm_fabric, placement
from ocplan.errors import Infeasible
from ocplan.plan.calibration import Calibration, FamilyCalibration
from ocplan.topology.cluster import pcie_Bps
from ocplan.workloads.memory import (
    ACT_BYTES,
    GRAD_BYTES,
    PARAM_BYTES,
    layer_activation_bytes,
    model_state_bytes,
)
from ocplan.workloads.workload import Workload

__all__ = [
    "HBM_EFFICIENCY",
    "RESERVED_BYTES",
    "TRAINING_PATH_PRECISIONS",
    "SystemModel",
    "check_system",
    "evaluate",
    "matrix_peaks",
    "system_model",
]

Num = Any

#: Kernels one layer's forward launches: two norms, QKV, rotary, attention, output
#: projection, two residual adds, up/gate, activation, down, and bias/dropout/cast
#: kernels; backward launches about twice as many (charged through the 2x GEMM term).
KERNELS_PER_LAYER = 16.0
#: Extra kernels per layer forward in 8-bit training: a cast (and, for delayed or current
#: scaling, an amax reduction) of each GEMM input and weight in Transformer Engine style
#: recipes; three per GEMM for the four GEMMs of a layer.
FP8_EXTRA_KERNELS_PER_LAYER = 12.0
#: Achieved / peak HBM bandwidth for streaming elementwise kernels (STREAM-like copy
#: kernels reach 80-90 % of peak on H100/MI300X: ROCm and NVIDIA bandwidth tests).
HBM_EFFICIENCY = 0.80
#: Memory the framework keeps outside tensors: CUDA/ROCm context, NCCL buffers and
#: allocator fragmentation (Megatron and PyTorch report 1-3 GB): 2 GiB.
RESERVED_BYTES = 2.0 * 2**30
#: Bytes the optimizer step moves per locally owned parameter: fp32 master, momentum,
#: variance read and written (24), gradient read (2) and 16-bit parameter written (2).
OPTIMIZER_RW_BYTES = 28.0
#: Fraction of steady-state pipeline send/receive left on the critical path (Megatron
#: batches isend/irecv with the next compute; warm-up and cool-down transfers are not).
PP_EXPOSED = 0.5
#: FlashAttention-2 backward / forward FLOPs (five matmuls against two; Dao 2023).
ATTN_BWD_FACTOR = 2.5
#: 8-bit training saves GEMM inputs as their 8-bit casts (Transformer Engine).
FP8_GEMM_INPUT_BYTES = 1.0
#: Layers of saved activations resident in HBM under host offload: the layer being
#: computed; copies to and from the host stream per tensor as it is produced or needed.
OFFLOAD_RESIDENT_LAYERS = 1.0
#: Bytes per logit kept for the loss: 16-bit logits; fused cross-entropy kernels
#: (Megatron's vocab-parallel CE, MaxText's) upcast block by block, not the whole tensor.
LOGIT_BYTES = 2.0
#: Matrix-unit precisions that can carry the floating-point parts of a training step
#: (attention scores and values, the LM head, and the GEMMs of a precision the chip has no
#: unit for), in order of preference: the 16-bit formats of mixed-precision training
#: (Micikevicius et al. 2018), then fp8, which FlashAttention-3 and Transformer Engine use
#: for attention too. An integer unit alone (int8) cannot: softmax and gradients are
#: floating-point, so a chip with none of these cannot train (:func:`matrix_peaks`).
TRAINING_PATH_PRECISIONS = ("bf16", "fp16", "fp8")


@dataclass(frozen=True)
class SystemModel:
    """Numbers of one system that the step model reads."""

    chip: str
    peak: dict[str, float]
    hbm_Bps: float
    hbm_bytes: float
    host_Bps: float
    """Host link (PCIe / C2C) bandwidth per direction, for activation offload."""
    fabric: CommFabric
    domain: int
    server: str = ""
    """Server id (for messages)."""
    family: str | None = None
    """The chip's calibration family (catalog data; None: the default priors)."""


@lru_cache(maxsize=4096)
def system_model(system: System) -> SystemModel:
    acc = system.accelerator
    peaks = {p: v for p in ("bf16", "fp16", "fp8", "int8")
             if (v := acc.peak_flops.get(p)) is not None}
    return SystemModel(
        chip=acc.id,
        family=acc.family,
        peak=peaks,
        hbm_Bps=acc.memory.hbm_bandwidth,
        hbm_bytes=acc.memory.hbm_capacity,
        host_Bps=acc.host.bandwidth or pcie_Bps(acc.host.gen or 4, acc.host.lanes),
        fabric=comm_fabric(system),
        domain=system.chips_per_server,
        server=system.server.id,
    )


def matrix_peaks(sm: SystemModel, precision: str) -> tuple[float, float]:
    """(GEMM peak at the workload's precision, peak of the floating-point path), FLOP/s.

    The floating-point path is the first of :data:`TRAINING_PATH_PRECISIONS` the chip has
    (bf16, else fp16, else fp8); attention and the LM head run on it. GEMMs run at the
    chip's peak for ``precision``, or on the floating-point path when the chip has no unit
    for that precision (fp8 asked of an A100 runs its GEMMs in bf16).

    Raises :class:`~ocplan.errors.Infeasible` (reason ``"precision"``) when the chip has
    no floating-point matrix unit at all (an int8-only part such as the MLU290-M5):
    training needs one, whatever precision its GEMMs use.
    """
    path = next((sm.peak[p] for p in TRAINING_PATH_PRECISIONS if sm.peak.get(p)), None)
    if path is None:
        units = "/".join(TRAINING_PATH_PRECISIONS)
        has = ", ".join(sorted(sm.peak)) or "none"
        raise Infeasible("precision", f"{sm.chip} has no {units} matrix unit (peaks: {has}); "
                                      f"training in {precision} is not supported on it")
    gemm = sm.peak.get(precision) or path
    return gemm, path


def check_system(wl: Workload, sm: SystemModel, chips: int) -> None:
    """Raise :class:`~ocplan.errors.Infeasible` when no layout of ``chips`` chips can run
    ``wl`` on the system, whatever the split:

    - ``"precision"``: the chip has no floating-point matrix unit (:func:`matrix_peaks`);
    - ``"network"``: the chips span more than one scale-up domain but the system has no
      scale-out bandwidth (no server NICs and no integrated NIC ports, e.g. the
      China-market Gaudi 2 HL-225B, whose 21 remaining ports are all scale-up, in the
      HLS-Gaudi2 server, whose scale-out is the cards' own ports). Every layout of a job
      joins all its chips (tp x pp x dp x cp = chips, each group within the product), so
      with more chips than one domain some group must cross domains.

    A layout that passes runs every group it has on links of positive bandwidth, so every
    term :func:`evaluate` returns for it is finite.
    """
    matrix_peaks(sm, wl.precision)
    if chips > sm.domain and not sm.fabric.out_Bps > 0:
        domains = -(-chips // sm.domain)
        where = f" in {sm.server}" if sm.server else ""
        raise Infeasible("network", f"{sm.chip}{where} has no scale-out bandwidth (no server "
                                    f"NICs, no integrated NIC ports): {chips} chips span "
                                    f"{domains} scale-up domains of {sm.domain} and nothing "
                                    "joins them; use at most "
                                    f"{sm.domain} chips or a system with a scale-out NIC")


def evaluate(wl: Workload, sm: SystemModel, cal: Calibration, *, tp: Num, pp: Num, dp: Num,
             cp: Num, ep: Num, vpp: Num, mb: Num, zero: Num, rc_full: Num, rc_sel: Num,
             sp: Num, offload: Num = False, tp_overlap: Num = True,
             dp_overlap: Num = True, shard: Num = 0) -> dict[str, Num]:
    """Every term of step time (s) and memory (bytes per chip) for the given layouts.

    Layout fields broadcast against each other. ``rc_full`` is the fraction of each
    stage's layers recomputed in full (Megatron ``--recompute-num-layers``; 1 = all,
    booleans accepted); booleans ``rc_sel`` and ``sp`` select selective recompute (when
    no layer is fully recomputed) and sequence parallelism; ``offload`` keeps saved
    activations in host memory (HBM then holds only each layer's input, as with full
    recompute, and the copies over the host link overlap with compute). ``tp_overlap``
    and ``dp_overlap`` switch the framework's communication overlap on (the calibrated
    fraction is hidden) or off (all of it is exposed). ``shard`` is the hybrid-sharding
    group (HSDP): ZeRO shards over groups of that many data-parallel ranks and the groups
    all-reduce their gradient shards once per step; 0 shards over all of them.

    Assumes :func:`check_system` passes for the chips of the layouts: it raises
    :class:`~ocplan.errors.Infeasible` itself for a chip without a floating-point matrix
    unit, and a group that would have to cross scale-up domains on a system without
    scale-out bandwidth takes infinite time (:mod:`ocplan.collectives.cost`).
    """
    m_ = wl.model
    fam: FamilyCalibration = cal.for_family(sm.family)
    fab = sm.fabric
    s, B = float(wl.seq_len), float(wl.global_batch)
    h, a = float(m_.hidden), float(m_.n_heads)
    L, Lm = float(m_.n_layers), float(m_.n_moe_layers)
    V = float(m_.vocab)
    eight_bit = wl.precision in ("fp8", "int8")
    peak_gemm, peak16 = matrix_peaks(sm, wl.precision)
    # MFU and HFU are relative to the fastest matrix rate the step runs at: the GEMMs' peak
    # at the workload's precision, or the floating-point path of attention and the head
    # when that is faster (int8 on B300/GB300, whose int8 unit is a fraction of bf16).
    # Relative to the slower GEMM peak alone, attention-heavy steps would exceed 100 %.
    peak_util = max(peak_gemm, peak16)
    eta_gemm = fam.gemm_8bit if eight_bit else fam.gemm
    rate_gemm = peak_gemm * eta_gemm
    rate_attn = peak16 * fam.attention
    rate_head = peak16 * fam.gemm
    hbm = sm.hbm_Bps * HBM_EFFICIENCY

    tp = np.asarray(tp, dtype=float)
    pp = np.asarray(pp, dtype=float)
    dp = np.asarray(dp, dtype=float)
    cp = np.asarray(cp, dtype=float)
    ep = np.asarray(ep, dtype=float)
    vpp = np.asarray(vpp, dtype=float)
    mb = np.asarray(mb, dtype=float)
    zero = np.asarray(zero)
    rc_full = np.clip(np.asarray(rc_full, dtype=float), 0.0, 1.0)
    rc_sel = np.asarray(rc_sel, dtype=bool) & (rc_full == 0)
    sp = np.asarray(sp, dtype=bool) & (tp > 1)
    offload = np.asarray(offload, dtype=bool) & (rc_full == 0)
    t_sp = np.where(sp, tp, 1.0)

    micro = np.floor(B / (dp * mb))
    tokens = mb * s / cp                              # tokens per chip per micro-batch
    layers_stage = np.ceil(L / pp)
    moe_frac = Lm / L

    # ---- compute per layer, one micro-batch, per chip ------------------------------
    attn_params = float(m_.attn_params)
    dense_mlp = float(m_.dense_mlp_params)
    moe_active = float((m_.moe_top_k + m_.moe_shared) * m_.expert_params
                       + m_.hidden * m_.moe_experts)
    mlp_params = (1 - moe_frac) * dense_mlp + moe_frac * moe_active
    gemm_flops = 2 * tokens * (attn_params + mlp_params) / tp
    attn_flops = tokens * s * a * (m_.qk_dim + m_.v_dim) / tp   # causal: half of 2*2*s*s
    kernels = KERNELS_PER_LAYER + (FP8_EXTRA_KERNELS_PER_LAYER if eight_bit else 0.0)
    t_gemm = gemm_flops / rate_gemm + kernels * cal.kernel_overhead_s
    t_attn = attn_flops / rate_attn
    ffn_width = (1 - moe_frac) * m_.ffn + moe_frac * (m_.moe_top_k + m_.moe_shared) * m_.moe_ffn
    elem_bytes = tokens * ACT_BYTES * (cal.elementwise_h * h / t_sp + m_.mlp_mats * ffn_width / tp)
    moe_permute = moe_frac * tokens * m_.moe_top_k * h * ACT_BYTES * 4 / t_sp
    t_elem = (elem_bytes + moe_permute) / hbm
    t_fwd = t_gemm + t_attn + t_elem
    t_bwd = 2 * t_gemm + ATTN_BWD_FACTOR * t_attn + 2 * t_elem
    t_recompute = rc_full * t_fwd + np.where(rc_sel, t_attn, 0.0)

    # ---- communication per layer ---------------------------------------------------
    act_full = tokens * h * ACT_BYTES                 # one activation of the micro-batch
    tp_colls = 4.0 * (1 - moe_frac) + moe_frac * (2.0 + (2.0 if m_.moe_shared else 0.0))
    t_ag = cost.all_gather(fab, act_full, tp, 1)
    t_ar = cost.all_reduce(fab, act_full, tp, 1)
    t_tp = np.where(tp > 1, np.where(sp, 2 * tp_colls * t_ag, tp_colls * t_ar), 0.0)
    o_tp = np.where(np.asarray(tp_overlap, dtype=bool), cal.tp_overlap, 0.0)
    o_dp = np.where(np.asarray(dp_overlap, dtype=bool), cal.dp_overlap, 0.0)
    tp_exposed = (1 - o_tp) * t_tp

    a2a_bytes = tokens / t_sp * m_.moe_top_k * h * ACT_BYTES
    t_a2a = np.where(ep > 1, 4 * cost.all_to_all(fab, a2a_bytes, ep, 1), 0.0) * moe_frac
    ep_exposed = (1 - cal.ep_overlap) * t_a2a

    kv_bytes = tokens * 2 * m_.kv_width * ACT_BYTES / np.minimum(tp, m_.n_kv_heads)
    _cp_in, cp_out = _placement(fab, cp, tp)
    t_cp_step = cost.send_recv(fab, kv_bytes, cp_out > 1)
    t_cp_f = (cp - 1) * t_cp_step
    cp_exposed = np.where(cp > 1, np.maximum(0.0, t_cp_f - t_attn)
                          + np.maximum(0.0, 2 * t_cp_f - ATTN_BWD_FACTOR * t_attn), 0.0)

    # Offloaded activations go to the host in forward and come back in backward.
    act_kept = layer_activation_bytes(m_, s, mb, tp, sp, cp, False, rc_sel, True, False)
    t_offload = act_kept / sm.host_Bps
    offload_exposed = np.where(offload, np.maximum(0.0, t_offload - t_fwd)
                               + np.maximum(0.0, t_offload - t_bwd), 0.0)
    t_layer = t_fwd + t_bwd + t_recompute + tp_exposed + ep_exposed + cp_exposed \
        + offload_exposed
    head_flops = 2 * tokens * h * V / tp
    t_head = 3 * head_flops / rate_head + 3 * tokens * V / tp * LOGIT_BYTES / hbm
    t_mb = layers_stage * t_layer + t_head

    # ---- pipeline --------------------------------------------------------------------
    bubble_frac = (pp - 1) / vpp
    t_compute_mb = layers_stage * (t_fwd + t_bwd) + t_head
    p2p_bytes = act_full / t_sp
    _, pp_out = _placement(fab, pp, tp * cp * dp)
    t_p2p = np.where(pp > 1, cost.send_recv(fab, p2p_bytes, pp_out > 1), 0.0)
    pp_comm = 2 * vpp * t_p2p * (micro + pp - 1) * PP_EXPOSED

    # ---- data parallel and optimizer -------------------------------------------------
    expert_params_layer = float(m_.moe_experts * m_.expert_params)
    nonexpert_layer = attn_params + (1 - moe_frac) * dense_mlp + moe_frac * (
        m_.moe_shared * m_.expert_params + m_.hidden * m_.moe_experts)
    edge = float(max(m_.embedding_params, m_.head_params))   # first/last stage extra
    p_dense = (layers_stage * nonexpert_layer + edge) / tp
    p_expert = layers_stage * moe_frac * expert_params_layer / ep
    dp_dense = dp * cp
    shard = np.asarray(shard, dtype=float)
    dp_shard = np.where(shard > 0, np.minimum(shard, dp_dense), dp_dense)
    replicas = dp_dense / dp_shard
    dp_expert = np.maximum(1.0, dp * cp * tp / ep)
    grad_bytes = GRAD_BYTES * p_dense
    grad_bytes_e = GRAD_BYTES * p_expert
    rs = cost.reduce_scatter(fab, grad_bytes, dp_shard, tp) + np.where(
        p_expert > 0, cost.reduce_scatter(fab, grad_bytes_e, dp_expert, ep), 0.0)
    ag = cost.all_gather(fab, PARAM_BYTES * p_dense, dp_shard, tp) + np.where(
        p_expert > 0, cost.all_gather(fab, PARAM_BYTES * p_expert, dp_expert, ep), 0.0)
    # Hybrid sharding: the replicas of each gradient shard all-reduce once per step.
    t_replicas = np.where(replicas > 1, cost.all_reduce(fab, grad_bytes / dp_shard, replicas,
                                                        tp * dp_shard), 0.0)
    ar = cost.all_reduce(fab, grad_bytes, dp_dense, tp) + np.where(
        p_expert > 0, cost.all_reduce(fab, grad_bytes_e, dp_expert, ep), 0.0)
    t_bwd_mb = layers_stage * t_bwd
    t_fwd_mb = layers_stage * t_fwd
    window_b = o_dp * t_bwd_mb
    window_f = o_dp * t_fwd_mb
    dp_z0 = np.maximum(0.0, ar - window_b)
    dp_z12 = np.maximum(0.0, rs - window_b) + np.maximum(0.0, ag - window_f)
    # ZeRO-3 / FSDP: gather parameters for forward and backward and reduce-scatter
    # gradients in every micro-batch, overlapped layer by layer with compute.
    fsdp_mb = 2 * ag + rs
    dp_z3 = micro * np.maximum(0.0, fsdp_mb - o_dp * t_compute_mb) \
        + fsdp_mb / np.maximum(layers_stage, 1.0)
    single = dp_dense * 1.0 <= 1
    dp_exposed = np.where(single, 0.0, np.where(
        zero >= 3, dp_z3, np.where(zero >= 1, dp_z12, dp_z0))) \
        + np.where(zero >= 1, np.maximum(0.0, t_replicas - window_b), 0.0)
    owned = np.where(zero >= 1, (p_dense / dp_shard + p_expert / dp_expert),
                     p_dense + p_expert)
    t_opt = owned * OPTIMIZER_RW_BYTES / hbm

    pipeline = (micro + bubble_frac) * t_mb
    bubble = bubble_frac * t_mb
    step = pipeline + pp_comm + dp_exposed + t_opt

    # ---- memory ----------------------------------------------------------------------
    pb_d, gb_d, ob_d = model_state_bytes(p_dense, zero, dp_shard)
    pb_e, gb_e, ob_e = model_state_bytes(p_expert, zero, dp_expert)
    weights = pb_d + pb_e
    grads = gb_d + gb_e
    optim = ob_d + ob_e
    ep_tokens = np.ones_like(ep)
    g_in = FP8_GEMM_INPUT_BYTES if eight_bit else ACT_BYTES
    act_dense = layer_activation_bytes(m_, s, mb, tp, sp, cp, False, rc_sel, True, False,
                                       gemm_input_bytes=g_in)
    act_moe = layer_activation_bytes(m_, s, mb, tp, sp, cp, False, rc_sel, True, True,
                                     ep_tokens, gemm_input_bytes=g_in) if m_.is_moe else 0.0
    act_input = layer_activation_bytes(m_, s, mb, tp, sp, cp, True, False, True, False)
    act_layer = rc_full * act_input + (1 - rc_full) * (
        (1 - moe_frac) * act_dense + moe_frac * act_moe)
    # Korthikanti et al. 2022 §4.2.3: the first stage holds p micro-batches under 1F1B;
    # only the interleaved schedule adds the (p - 1) / (p v) share of one more.
    in_flight = np.minimum(pp, micro) * np.where(vpp > 1, 1 + (pp - 1) / (pp * vpp), 1.0)
    # Offloaded: HBM holds the layer being computed and the one being copied.
    activations = np.where(offload, OFFLOAD_RESIDENT_LAYERS * act_layer,
                           act_layer * layers_stage * in_flight)
    logits = tokens * V / tp * LOGIT_BYTES
    memory = weights + grads + optim + activations + logits + RESERVED_BYTES

    # ---- totals ----------------------------------------------------------------------
    chips = tp * pp * dp * cp
    tokens_step = B * s
    tps_chip = tokens_step / step / chips
    mfu = tps_chip * wl.model_flops_per_token / peak_util
    hw_flops_mb = layers_stage * (3 * gemm_flops + (1 + ATTN_BWD_FACTOR) * attn_flops) \
        + rc_full * layers_stage * (gemm_flops + attn_flops) \
        + np.where(rc_sel, layers_stage * attn_flops, 0.0) + 3 * head_flops
    hfu = hw_flops_mb * micro / step / peak_util
    compute = micro * t_compute_mb
    return {
        "step_s": step,
        "tokens_per_s_per_chip": tps_chip,
        "mfu": mfu,
        "hfu": hfu,
        "compute_s": compute,
        "recompute_s": micro * layers_stage * t_recompute,
        "tp_comm_s": micro * layers_stage * tp_exposed,
        "cp_comm_s": micro * layers_stage * cp_exposed,
        "ep_comm_s": micro * layers_stage * ep_exposed,
        "pp_comm_s": pp_comm,
        "dp_comm_s": dp_exposed,
        "bubble_s": bubble,
        "optimizer_s": t_opt,
        "weights_bytes": weights,
        "grads_bytes": grads,
        "optimizer_bytes": optim,
        "activations_bytes": activations,
        "logits_bytes": logits,
        "reserved_bytes": np.full_like(step, RESERVED_BYTES),
        "memory_bytes": memory,
        "capacity_bytes": np.full_like(step, sm.hbm_bytes),
        "micro_batches": micro,
        "gemm_time_share": micro * layers_stage * t_gemm * 3 / step,
        "attn_time_share": micro * layers_stage * t_attn * (1 + ATTN_BWD_FACTOR) / step,
        "elementwise_time_share": micro * layers_stage * t_elem * 3 / step,
    }


def _placement(fab: CommFabric, n: Num, stride: Num) -> tuple[Num, Num]:
    return placement(n, stride, fab.domain)
