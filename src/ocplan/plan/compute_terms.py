"""Compute of one micro-batch on the slowest pipeline stage: forward, backward,
recompute and the LM head, from the operator cost model.

``t_mb = n_L (t_fwd + t_bwd) + t_rc + t_head`` per micro-batch, where ``n_L`` layers of
the slowest stage are timed operator by operator (:mod:`ocplan.plan.layer_cost`);
recompute repeats the forward of the recomputed layers (full, Megatron
``--recompute-granularity full``; JAX/XLA remat less what the backward never reads,
:mod:`ocplan.plan.recompute`), the attention cores (selective; Korthikanti et al.
2022 §5) or named modules (Megatron-Core's layer norms and experts' activation);
activation offload hides its host copies behind compute where they fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ocplan.costmodel.op_time import PassTime
from ocplan.costmodel.roofline import FloatArray, f64
from ocplan.plan.layer_cost import StageCompute
from ocplan.plan.layout_arrays import DerivedLayout
from ocplan.plan.memory_terms import saved_layer_bytes
from ocplan.workloads.workload import Workload

__all__ = ["ComputeTerms", "compute_terms", "head_charge", "recompute_s"]

@dataclass(frozen=True)
class ComputeTerms:
    """Seconds per micro-batch on the slowest stage (arrays over layouts)."""

    forward_s: FloatArray
    """Forward of the stage's layers (and the head)."""
    backward_s: FloatArray
    recompute_s: FloatArray
    offload_s: FloatArray
    """Host copies of offloaded activations not hidden behind compute."""
    matrix_s: FloatArray
    attention_s: FloatArray
    memory_s: FloatArray
    """Forward + backward by category (matrix, attention, memory-bound)."""

    @property
    def microbatch_s(self) -> FloatArray:
        out: FloatArray = self.forward_s + self.backward_s + self.recompute_s + self.offload_s
        return out


def _offload_exposed_s(wl: Workload, d: DerivedLayout, host_Bps: float, moe_layers: FloatArray,
                       fwd_layer: FloatArray, bwd_layer: FloatArray) -> FloatArray:
    """Offloaded activations (what the recompute mode keeps,
    :func:`~ocplan.plan.memory_terms.saved_layer_bytes`) go to the host in forward and
    come back in backward, for the stage's offloaded layers
    (:attr:`~ocplan.plan.layout_arrays.DerivedLayout.offloaded`); each copy hides behind
    the layer's compute and the rest is exposed."""
    if not np.any(d.offload):
        return f64(np.zeros_like(fwd_layer))
    copy = saved_layer_bytes(wl, d, moe_layers) / host_Bps
    out: FloatArray = np.where(d.offload, np.maximum(0.0, copy - fwd_layer)
                               + np.maximum(0.0, copy - bwd_layer), 0.0) * d.offloaded
    return out


def head_charge(layers: PassTime, head: PassTime, per_stage: FloatArray,
                places: FloatArray, paired: np.ndarray | bool = False) -> PassTime:
    """The embedding, LM head and loss (and any multi-token prediction modules) as the
    slowest stage pays for them: in full, or, where the stage holding them has ``c``
    layers fewer than the fullest (``places``,
    :attr:`~ocplan.plan.layout_arrays.DerivedLayout.head_places`), only what they exceed
    ``c`` of the stage's ``n`` layers by. The slowest of a full stage (``n t_L``) and
    the head's (``(n - c) t_L + t_H``) is ``n t_L + max(0, t_H - c t_L)``.

    ``paired`` (a bidirectional schedule, :mod:`ocplan.plan.pipeline_schedules`): one
    rank holds the embedding's stage and the head's and runs each for half the
    micro-batches, so per micro-batch it pays ``n t_L + (t_H - c t_L) / 2``, ``c`` the
    layers both end stages have fewer than the fullest (the caller's ``places``)."""
    h = head.total_s
    excess = np.maximum(0.0, h - places * layers.total_s / np.maximum(per_stage, 1.0))
    excess = np.where(paired, 0.5 * excess, excess)
    # no places given up (c = 0): the excess is the whole head, its share 1
    share = np.where(h > 0, excess / np.where(h > 0, h, 1.0), 0.0)
    return head.scaled(share)


def recompute_s(sc: StageCompute, d: DerivedLayout) -> FloatArray:
    """Forward seconds re-run before the backward, per micro-batch:
    ``rho (t_fwd - t_named) + [selective] t_attn + [modules] t_named``, ``rho`` the
    share of the stage's layers recomputed whole, ``t_named`` the forward of the
    operators the mode names (:mod:`ocplan.plan.recompute`: for a whole-layer mode those
    it does not re-run, none for Megatron's full recompute, the down projections under
    JAX/XLA remat; for a module mode those it re-runs, the layer norms and the experts'
    activation), ``t_attn`` the attention cores (Korthikanti et al. 2022 §5)."""
    named = np.choose(d.rc_mode.astype(np.intp), sc.named_s)
    out: FloatArray = (d.rc_full * (sc.forward.total_s - named)
                       + np.where(d.rc_sel, sc.attention_fwd_s, 0.0)
                       + np.where(d.rc_mod, named, 0.0))
    return out


def compute_terms(wl: Workload, sc: StageCompute, d: DerivedLayout,
                  host_Bps: float) -> ComputeTerms:
    """:class:`ComputeTerms` of the layouts ``d`` from the stage's timed operators."""
    # A bidirectional schedule's first rank holds both end stages: their places add up.
    places = d.head_places + np.where(d.paired, d.per_stage - d.first_layers, 0.0)
    head_f = head_charge(sc.forward, sc.head_fwd, d.per_stage, places, d.paired)
    head_b = head_charge(sc.backward, sc.head_bwd, d.per_stage, places, d.paired)
    fwd = sc.forward.total_s + head_f.total_s
    bwd = sc.backward.total_s + head_b.total_s
    recompute = recompute_s(sc, d)
    offload = _offload_exposed_s(wl, d, host_Bps, sc.moe_layers,
                                 sc.forward.total_s / d.per_stage,
                                 sc.backward.total_s / d.per_stage)
    both = sc.forward.plus(sc.backward).plus(head_f).plus(head_b)
    return ComputeTerms(fwd, bwd, recompute, offload, both.matrix_s,
                        both.attention_s, both.memory_s)
