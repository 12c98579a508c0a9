"""The numbers every step term reads from a batch of layouts, derived once.

:func:`derive_layout` turns a :meth:`~ocplan.plan.plan.Plan.columns` plan (encoded
arrays, one element per layout) into float arrays with the options already resolved:
sequence parallelism only with TP, the recompute mode's declared properties
(:mod:`ocplan.plan.recompute`) as arrays, expert-TP defaulting to TP (Megatron-Core's default for
``--expert-tensor-parallel-size``), the hybrid-sharding group defaulting to all
data-parallel ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ocplan.costmodel.roofline import FloatArray, f64
from ocplan.plan.pipeline_schedules import PIPELINE_SCHEDULES
from ocplan.plan.plan import Plan, stage_split
from ocplan.plan.recompute import RECOMPUTE_MODES, stack_of
from ocplan.workloads.workload import Workload

__all__ = ["DerivedLayout", "derive_layout", "gathered_per_step", "layout_stacks"]

# The declared properties of each recompute code, for indexing by an array of codes.
_WHOLE = np.array([m.whole_layers for m in RECOMPUTE_MODES])
_ATTENTION = np.array([m.attention_only for m in RECOMPUTE_MODES])
_QKV = np.array([m.keeps_qkv for m in RECOMPUTE_MODES])
_MODULES = np.array([bool(m.modules) for m in RECOMPUTE_MODES])
#: Whether each recompute mode (by code) is the XLA stack's.
_XLA_MODE = np.array([m.stack == "xla" for m in RECOMPUTE_MODES])
# The declared properties of each pipeline schedule code.
_BIDIRECTIONAL = np.array([s.bidirectional for s in PIPELINE_SCHEDULES])
_STAGE_SHARE = np.array([s.stage_share for s in PIPELINE_SCHEDULES])
_PARAM_COPIES = np.array([float(s.param_copies) for s in PIPELINE_SCHEDULES])
_EXTRA_IN_FLIGHT = np.array([s.extra_in_flight for s in PIPELINE_SCHEDULES])


@dataclass(frozen=True)
class DerivedLayout:
    """Float arrays (broadcast to one shape) the step terms read.

    ``micro``: micro-batches per step ``B / (dp b)``; ``runs``: runs of the pipeline
    schedule per step, ``B / (dp l)`` for a local batch ``l`` under a pipeline, else 1
    (:attr:`~ocplan.plan.plan.Plan.local_batch`); ``tokens``: token rows per chip per
    micro-batch ``b s / c``; ``per_stage``, ``first_layers``, ``last_layers``: the
    pipeline split (:func:`~ocplan.plan.plan.stage_split`); ``t_sp``: the TP size
    activations are split by (``tp`` with SP, else 1); ``rc_full``: fraction of a
    stage's layers recomputed whole; ``rc_mode``: the recompute code
    (:data:`~ocplan.plan.recompute.RECOMPUTE_MODES`); ``rc_qkv``: whole layers keep
    their Q/K/V projections; ``rc_mod``: named modules are recomputed
    (:attr:`~ocplan.plan.recompute.RecomputeMode.modules`); ``dp_shard``: ranks
    ZeRO shards over; ``replicas``: HSDP replica groups; ``dp_expert``: expert
    data-parallel size ``dp c t / (e t_e)``; ``paired``: a bidirectional pipeline
    schedule with a pipeline (:mod:`ocplan.plan.pipeline_schedules`), whose
    ``stage_share``, ``param_copies`` and ``extra_in_flight`` are its declared ones (1,
    1 and 0 for the rest)."""

    tp: FloatArray
    pp: FloatArray
    dp: FloatArray
    cp: FloatArray
    ep: FloatArray
    etp: FloatArray
    vpp: FloatArray
    mb: FloatArray
    zero: FloatArray
    rc_full: FloatArray
    rc_sel: np.ndarray
    rc_mode: np.ndarray
    rc_qkv: np.ndarray
    rc_mod: np.ndarray
    sp: np.ndarray
    offload: np.ndarray
    tp_overlap: np.ndarray
    ep_overlap: np.ndarray
    ep_dedup: np.ndarray
    grouped_gemm: np.ndarray
    dp_overlap: np.ndarray
    grad_reduce_bf16: np.ndarray
    native_attention: np.ndarray
    fused_attention: np.ndarray
    micro: FloatArray
    runs: FloatArray
    tokens: FloatArray
    per_stage: FloatArray
    first_layers: FloatArray
    """Transformer layers of the first stage, which holds the embedding and the most
    micro-batches in flight."""
    last_layers: FloatArray
    """Transformer layers of the last stage, which holds the LM head, the loss and any
    multi-token prediction modules."""
    t_sp: FloatArray
    dp_shard: FloatArray
    replicas: FloatArray
    dp_expert: FloatArray
    offloaded: FloatArray
    """Layers of the fullest stage whose saved activations go to host memory: none
    without offload, else ``offload_layers`` (at most the stage's), all of them when that
    is unset."""
    paired: np.ndarray
    stage_share: FloatArray
    param_copies: FloatArray
    extra_in_flight: FloatArray
    head_places: FloatArray
    """Layers fewer than the fullest stage's that the stage holding the LM head (and any
    multi-token prediction modules) has, in whose places they run: ``per_stage -
    last_layers`` (``1 + D`` where the ends are counted at ``p > 2``, ``D`` at ``p = 2``,
    0 for an even split; :func:`~ocplan.plan.compute_terms.head_charge`)."""

    def shard_columns(self) -> dict[str, np.ndarray]:
        """What each layout holds of a layer, by :class:`~ocplan.workloads.operators.Shard`
        field (:data:`~ocplan.plan.layer_cost.LAYOUT_SHARD_FIELDS`): the one place the
        layout's names meet the operators'."""
        return {"tp": self.tp, "batch": self.mb, "cp": self.cp, "ep": self.ep,
                "etp": self.etp, "sp": self.sp, "grouped_gemm": self.grouped_gemm,
                "ep_dedup": self.ep_dedup}

    @property
    def chips(self) -> FloatArray:
        out: FloatArray = self.tp * self.pp * self.dp * self.cp
        return out

    @property
    def bubble_fraction(self) -> FloatArray:
        """Micro-batch times of 1F1B (interleaved) fill and drain: ``(p - 1)`` steps of
        one model chunk, ``(p - 1) / v`` for chunks of equal size (Narayanan et al. SC'21
        §2.2). The schedule advances at the pace of the largest chunk, ceil(L_s / v) of a
        stage's L_s layers, so chunks of unequal size (24 layers in 11) cost the bubble
        of their largest: (p - 1) x ceil(L_s / v) / L_s. (A bidirectional schedule's
        bubble depends on its chunks' forward and backward times:
        :func:`~ocplan.plan.pipeline_schedules.bidirectional_bubble`.)"""
        out: FloatArray = (self.pp - 1.0) * np.ceil(self.per_stage / self.vpp) / self.per_stage
        return out


def derive_layout(wl: Workload, lay: Plan) -> DerivedLayout:
    """:class:`DerivedLayout` of the encoded layouts ``lay`` for ``wl``."""
    tp, pp, dp, cp = f64(lay.tp), f64(lay.pp), f64(lay.dp), f64(lay.cp)
    ep, vpp, mb = f64(lay.ep), f64(lay.vpp), f64(lay.micro_batch)
    sched = np.asarray(lay.pp_schedule).astype(np.intp)
    assert np.all((sched >= 0) & (sched < len(PIPELINE_SCHEDULES))), "schedule code"
    paired = _BIDIRECTIONAL[sched] & (pp > 1)
    etp_raw = f64(lay.etp)
    etp = np.where(etp_raw > 0, etp_raw, tp) if wl.model.is_moe else np.ones_like(tp)
    rc = np.asarray(lay.recompute)
    assert np.all((rc >= 0) & (rc < len(RECOMPUTE_MODES))), "recompute code is no mode"
    ends = np.asarray(lay.ends_as_layers, dtype=bool)
    split = stage_split(wl.model.n_layers, pp, ends, wl.model.mtp_depth,
                        f64(lay.first_stage_layers), f64(lay.last_stage_layers))
    per_stage = split.fullest
    layers = f64(lay.recompute_layers)
    rc_full = np.where(_WHOLE[rc], np.where(layers > 0, np.minimum(1.0, layers / per_stage),
                                            1.0), 0.0)
    sp = np.asarray(lay.sequence_parallel, dtype=bool) & (tp > 1)
    dp_dense = dp * cp
    shard = f64(lay.shard_group)
    dp_shard = np.where(shard > 0, np.minimum(shard, dp_dense), dp_dense)
    arrays = np.broadcast_arrays(
        tp, pp, dp, cp, ep, etp, vpp, mb, f64(lay.zero), rc_full,
        _ATTENTION[rc], rc, _QKV[rc] & (rc_full > 0), _MODULES[rc], sp,
        np.asarray(lay.offload, dtype=bool),
        np.asarray(lay.tp_overlap, dtype=bool), np.asarray(lay.ep_overlap, dtype=bool),
        np.asarray(lay.ep_dedup, dtype=bool), np.asarray(lay.grouped_gemm, dtype=bool),
        np.asarray(lay.dp_overlap, dtype=bool), np.asarray(lay.grad_reduce_bf16, dtype=bool),
        np.asarray(lay.native_attention, dtype=bool),
        np.asarray(lay.fused_attention, dtype=bool),
        np.floor(wl.global_batch / (dp * mb)), _runs(wl.global_batch, dp, pp,
                                                     f64(lay.local_batch)),
        mb * wl.seq_len / cp, per_stage,
        split.first, split.last,
        np.where(sp, tp, 1.0), dp_shard, dp_dense / dp_shard,
        np.maximum(1.0, dp * cp * tp / (ep * etp)),
        _offloaded(np.asarray(lay.offload, dtype=bool), f64(lay.offload_layers), per_stage),
        paired, np.where(paired, _STAGE_SHARE[sched], 1.0),
        np.where(paired, _PARAM_COPIES[sched], 1.0),
        np.where(paired, _EXTRA_IN_FLIGHT[sched], 0.0),
        per_stage - split.last)
    return DerivedLayout(*arrays)


def _runs(global_batch: int, dp: FloatArray, pp: FloatArray, local: FloatArray) -> FloatArray:
    """:attr:`DerivedLayout.runs`: ``B / (dp l)`` runs of the schedule per step where a
    local batch ``l`` is set (encoded 0 when unset) under a pipeline, else 1. PyTorch's
    pipeline schedules (``torch.distributed.pipelining``, ``PipelineSchedule.step``) run
    the micro-batches of one call, and torchtitan and NeMo AutoModel call them once per
    local batch, accumulating gradients over the calls."""
    out: FloatArray = np.where((local > 0) & (pp > 1),
                               np.floor(global_batch / (dp * np.maximum(local, 1.0))), 1.0)
    return out


def _offloaded(offload: np.ndarray, layers: FloatArray, per_stage: FloatArray) -> FloatArray:
    """:attr:`DerivedLayout.offloaded` (``layers`` 0 encodes unset: all of them)."""
    out: FloatArray = np.where(offload, np.where(layers > 0, np.minimum(layers, per_stage),
                                                 per_stage), 0.0)
    return out


def layout_stacks(d: DerivedLayout, family: str | None) -> np.ndarray:
    """Whether each layout runs on the XLA stack: it recomputes the XLA way (a JAX run,
    MaxText on GPUs too), or its chip is programmed only through XLA
    (:func:`~ocplan.plan.recompute.stack_of`). A layout that recomputes nothing on a GPU
    states no stack and is read as PyTorch's."""
    out: np.ndarray = _XLA_MODE[d.rc_mode.astype(np.int64)] | (stack_of(family) == "xla")
    return out


def gathered_per_step(d: DerivedLayout, xla: np.ndarray) -> np.ndarray:
    """Whether each layout's ZeRO-3 gathers its stage's parameters once per step rather
    than once per micro-batch: sharded data parallelism under a pipeline on the PyTorch
    stack (``xla`` False). PyTorch's pipeline schedules drive FSDP2 themselves
    (``torch.distributed.pipelining.stage``, ``backward_maybe_with_nosync``): every
    backward but a step's last runs without resharding and without gradient sync,
    gradients accumulate unsharded, and after the last one each parameter group's
    reduce-scatter is issued; torchtitan and NeMo Automodel also keep the gathered
    parameters after the forward under a pipeline (``reshard_after_forward=False``,
    torchtitan ``apply_fsdp``: per-micro-batch gathers "can be expensive and
    non-overlapped"). Such a stage holds its parameters and gradients whole through the
    step (ZeRO-1's memory) and communicates once. MaxText's pipeline gathers per
    iteration unless ``pipeline_fsdp_ag_once`` is set, so the XLA stack keeps the
    per-micro-batch form; Megatron-LM and DeepSpeed do not run ZeRO-3 under a pipeline."""
    out: np.ndarray = (d.zero >= 3) & (d.pp > 1) & ~xla
    return out
