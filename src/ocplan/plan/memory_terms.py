"""Memory per chip on the first pipeline stage (the one holding the most activations):
model states per ZeRO stage, activations of the micro-batches in flight, logits and a
runtime reserve; and the optimizer step's HBM traffic.

Model states: :func:`~ocplan.workloads.memory.model_state_bytes` (ZeRO paper §3), with
the optimizer-state bytes per parameter of the workload's recipe. Activations:
:func:`~ocplan.workloads.memory.layer_activation_bytes` (Korthikanti et al. 2022 §4)
for ``p`` micro-batches in flight under 1F1B, times ``1 + (p - 1)/(p v)`` interleaved
(§4.2.3), ``p + 1`` under DualPipe (``p + 1/2`` DualPipeV).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ocplan.costmodel.roofline import HBM_EFFICIENCY, FloatArray, f64
from ocplan.plan.layout_arrays import DerivedLayout, gathered_per_step
from ocplan.plan.params import StageParams
from ocplan.plan.recompute import RECOMPUTE_MODES
from ocplan.workloads.memory import (
    ACT_BYTES,
    layer_activation_bytes,
    mla_up_bytes,
    model_state_bytes,
    norm_act_bytes,
    qkv_activation_bytes,
)
from ocplan.workloads.operators import GEMM_INPUT_BYTES
from ocplan.workloads.workload import Workload

__all__ = ["LOGIT_BYTES", "OFFLOAD_RESIDENT_LAYERS", "RESERVED_BYTES", "MemoryTerms",
           "memory_terms", "optimizer_time_s", "saved_gemm_input_bytes", "saved_layer_bytes"]

#: Memory the framework keeps outside tensors: CUDA/ROCm context, NCCL buffers and
#: allocator fragmentation (Megatron and PyTorch report 1-3 GB): 2 GiB.
RESERVED_BYTES = 2.0 * 2**30
#: Bytes per logit kept for the loss: 16-bit logits; fused cross-entropy kernels
#: (Megatron's vocab-parallel CE, MaxText's) upcast block by block, not the whole tensor.
LOGIT_BYTES = 2.0
#: Layers of saved activations resident in HBM under host offload: the layer being
#: computed; copies to and from the host stream per tensor as it is produced or needed.
OFFLOAD_RESIDENT_LAYERS = 1.0
#: Bytes the optimizer step moves per locally owned parameter beyond its optimizer
#: state read and written: the gradient read (2) and the 16-bit parameter written (2).
OPTIMIZER_EXTRA_RW_BYTES = 4.0
#: The ZeRO stage whose memory a stage that gathers its parameters once per step holds:
#: optimizer states sharded, parameters and gradients whole (ZeRO paper Fig. 1, P_os).
ZERO_OPTIMIZER_ONLY = 1.0


@dataclass(frozen=True)
class MemoryTerms:
    """Bytes per chip (arrays over layouts) and the parameters whose optimizer state the
    chip owns."""

    weights: FloatArray
    grads: FloatArray
    optimizer: FloatArray
    activations: FloatArray
    logits: FloatArray
    owned_params: FloatArray

    @property
    def total(self) -> FloatArray:
        out: FloatArray = (self.weights + self.grads + self.optimizer + self.activations
                           + self.logits + RESERVED_BYTES)
        return out


def saved_gemm_input_bytes(precision: str) -> float:
    """Bytes per element of a GEMM input kept for the backward: low-bit training keeps
    the quantized copy the weight-gradient GEMM reads (Transformer Engine: 1 for the
    8-bit formats, NVFP4's 0.5 + 1/16 with its block scales,
    :data:`~ocplan.workloads.operators.GEMM_INPUT_BYTES`), 16-bit training the 16-bit
    tensor."""
    return min(GEMM_INPUT_BYTES.get(precision, ACT_BYTES), ACT_BYTES)


def _norm_act(wl: Workload, d: DerivedLayout, moe_layer: bool, g: float) -> FloatArray:
    return f64(norm_act_bytes(wl.model, wl.seq_len, d.mb, d.tp, d.sp, d.cp, moe_layer,
                              expert_rows_factor(wl), gemm_input_bytes=g))


def _mla_up(wl: Workload, d: DerivedLayout, moe_layer: bool, g: float) -> FloatArray:
    return f64(mla_up_bytes(wl.model, wl.seq_len, d.mb, d.tp, d.cp))


#: What each module-recompute mode (:attr:`~ocplan.plan.recompute.RecomputeMode.modules`)
#: does not keep, by mode name: ``(workload, layouts, MoE layer, saved GEMM-input
#: bytes) -> bytes per layer and micro-batch``.
MODULE_BYTES: dict[str, Callable[[Workload, DerivedLayout, bool, float], FloatArray]] = {
    "norm_act": _norm_act, "mla_up": _mla_up,
    # the two name disjoint operators (NORM_ACT_OPERATORS, MLA_UP_OPERATORS)
    "norm_act_mla_up": lambda wl, d, moe, g: _norm_act(wl, d, moe, g) + _mla_up(wl, d, moe, g)}
assert set(MODULE_BYTES) == {m.name for m in RECOMPUTE_MODES if m.modules}, \
    "a module-recompute mode without its bytes"


def expert_rows_factor(wl: Workload) -> float:
    """Rows each routed expert saves activations for, over the balanced ``T K / E``: the
    balanced load's :attr:`~ocplan.workloads.operators.ExpertLoad.slot_fraction`, which
    needs no layout: the capacity factor where the experts' input is padded to capacity
    (it computes and keeps ``C`` rows, padding or dropping), else 1 (dropless)."""
    return wl.moe_capacity_factor if wl.moe_capacity_factor is not None else 1.0


def module_bytes(wl: Workload, d: DerivedLayout, moe_layer: bool,
                 gemm_input_bytes: float) -> FloatArray:
    """Bytes of one layer and micro-batch that the layouts' module-recompute mode does
    not keep (:data:`MODULE_BYTES`); 0 under every other mode."""
    out: FloatArray = np.zeros(np.shape(d.mb))
    for code, mode in enumerate(RECOMPUTE_MODES):
        here = d.rc_mode == code
        if mode.modules and np.any(here):
            out = np.where(here, MODULE_BYTES[mode.name](wl, d, moe_layer, gemm_input_bytes),
                           out)
    return out


def saved_layer_bytes(wl: Workload, d: DerivedLayout, moe_layers: FloatArray) -> FloatArray:
    """Activation bytes one layer of the stage keeps for its backward, per micro-batch:
    everything (less the attention cores under selective recompute, and what a module
    mode does not keep: :func:`module_bytes`), or for the share
    ``rc_full`` of layers recomputed whole their input, and their Q/K/V projections
    where the recompute mode keeps them; dense and MoE layers mixed as the stage holds
    them."""
    m = wl.model
    g_in = saved_gemm_input_bytes(wl.precision)
    args = (m, wl.seq_len, d.mb, d.tp, d.sp, d.cp, False, d.rc_sel, d.fused_attention)
    dense = layer_activation_bytes(*args, False, gemm_input_bytes=g_in) \
        - module_bytes(wl, d, False, g_in)
    moe = layer_activation_bytes(*args, True, expert_rows_factor(wl), gemm_input_bytes=g_in) \
        - module_bytes(wl, d, True, g_in) if m.is_moe else 0.0
    kept_input = layer_activation_bytes(m, wl.seq_len, d.mb, d.tp, d.sp, d.cp, True, False,
                                        True, False)
    kept = kept_input + np.where(d.rc_qkv, qkv_activation_bytes(m, wl.seq_len, d.mb, d.tp,
                                                                 d.cp), 0.0)
    moe_frac = moe_layers / d.per_stage
    out: FloatArray = d.rc_full * kept + (1 - d.rc_full) * (
        (1 - moe_frac) * dense + moe_frac * moe)
    return out


def activation_bytes(wl: Workload, d: DerivedLayout, moe_layers: FloatArray) -> FloatArray:
    """Saved activations of the first stage: its layers for the micro-batches in flight,
    less those offloaded to the host (which keep one layer resident); with one stage, the
    multi-token prediction modules' layers with them."""
    per_layer = saved_layer_bytes(wl, d, moe_layers)
    in_flight = np.minimum(d.pp, d.micro / d.runs) * np.where(
        d.vpp > 1, 1 + (d.pp - 1) / (d.pp * d.vpp), 1.0)
    # A bidirectional schedule holds p + 1 of a stage's micro-batches (DualPipe README,
    # "Activation Per Device"; DualPipeV's 2p + 1 half stages), over a rank's layers.
    in_flight = np.where(d.paired, d.pp + d.extra_in_flight, in_flight)
    # The first stage holds its layers for the most micro-batches in flight; where it is
    # short of the fullest (the ends counted, or a given split), the next stage's
    # fullest count for (p - 1)/p of them may hold more.
    layers_held = np.where(d.paired, d.per_stage,
                           np.maximum(d.first_layers, d.per_stage * (d.pp - 1.0) / d.pp))
    # One stage holds the multi-token prediction modules' layers too; under a pipeline
    # they sit on the last stage, which has one micro-batch in flight, not the first.
    layers_held = layers_held + np.where(d.pp == 1, wl.model.mtp_depth, 0.0)
    # Offloaded layers leave one layer's activations resident, whatever their number;
    # the rest of the stage keeps its in-flight micro-batches in HBM.
    kept = np.maximum(layers_held - d.offloaded, 0.0)
    out: FloatArray = per_layer * (kept * in_flight
                                   + np.where(d.offloaded > 0, OFFLOAD_RESIDENT_LAYERS, 0.0))
    return out


def memory_terms(wl: Workload, d: DerivedLayout, p: StageParams,
                 moe_layers: FloatArray, xla: np.ndarray) -> MemoryTerms:
    """:class:`MemoryTerms` of the layouts ``d`` (``xla``: which run on the XLA stack,
    :func:`~ocplan.plan.layout_arrays.layout_stacks`). A ZeRO-3 stage that gathers once
    per step (:func:`~ocplan.plan.layout_arrays.gathered_per_step`) holds its
    parameters and gradients whole, as ZeRO-1 does."""
    k = wl.optimizer_state_bytes
    zero = np.where(gathered_per_step(d, xla), ZERO_OPTIMIZER_ONLY, d.zero)
    pb_d, gb_d, ob_d = model_state_bytes(p.dense, zero, d.dp_shard, k)
    pb_e, gb_e, ob_e = model_state_bytes(p.expert, zero, d.dp_expert, k)
    owned = np.where(d.zero >= 1, p.dense / d.dp_shard + p.expert / d.dp_expert,
                     p.dense + p.expert)
    logits = d.tokens * wl.model.vocab / d.tp * LOGIT_BYTES
    return MemoryTerms(pb_d + pb_e, gb_d + gb_e, ob_d + ob_e,
                       activation_bytes(wl, d, moe_layers), logits, owned)


def optimizer_time_s(wl: Workload, owned_params: FloatArray, hbm_Bps: float) -> FloatArray:
    """Adam step over the locally owned parameters: the optimizer state read and written
    plus the gradient read and the parameter written, at streaming HBM bandwidth."""
    per_param = 2.0 * wl.optimizer_state_bytes + OPTIMIZER_EXTRA_RW_BYTES
    out: FloatArray = owned_params * per_param / (hbm_Bps * HBM_EFFICIENCY)
    return out
