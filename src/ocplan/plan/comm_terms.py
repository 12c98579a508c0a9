"""Exposed communication of a training step: TP, EP, CP per micro-batch; PP and DP per
step. Collective times come from :mod:`ocplan.collectives.cost` on the system's fabric;
the calibrated overlap fractions say how much of each hides behind compute.

Per layer and micro-batch (Megatron-LM, Shoeybi et al. 2019 §3; Korthikanti et al. 2022
§4.2.2):

- TP: a dense layer runs 2 collectives forward and 2 backward on a ``T h`` activation
  (all-reduce, or all-gather + reduce-scatter with sequence parallelism); a MoE layer's
  routed experts run on the sequence-parallel shard, so only its attention (and shared
  experts) use TP collectives;
- EP: dispatch and combine all-to-alls forward and backward (4) of the ``(T/t) K h``
  token copies the chip sends (fewer when a capacity factor drops some);
- CP: ``c - 1`` ring steps of the chip's K/V chunk forward, twice that backward, hidden
  behind the attention they feed (Liu et al., Ring Attention, 2023);

per step: pipeline send/receive of each micro-batch boundary (half hidden), and the
data-parallel gradient reduction and parameter gathering per ZeRO stage (Rajbhandari et
al. SC'20 §5), hidden behind the last micro-batch's backward (and forward) by the
calibrated DP overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ocplan.collectives import cost
from ocplan.collectives.fabric import CommFabric, placement
from ocplan.costmodel.roofline import FloatArray
from ocplan.plan.calibration import Calibration
from ocplan.plan.compute_terms import ComputeTerms
from ocplan.plan.distinct import distinct_apply as _once
from ocplan.plan.layer_cost import StageCompute
from ocplan.plan.layout_arrays import DerivedLayout
from ocplan.plan.params import StageParams
from ocplan.workloads.memory import ACT_BYTES, GRAD_BYTES, PARAM_BYTES
from ocplan.workloads.operators import ATTN_BWD_FACTOR, Shard, expert_load
from ocplan.workloads.workload import Workload

__all__ = ["PP_EXPOSED", "CommTerms", "comm_terms"]

#: Fraction of steady-state pipeline send/receive left on the critical path (Megatron
#: batches isend/irecv with the next compute; warm-up and cool-down transfers are not).
PP_EXPOSED = 0.5
#: Collectives per layer per micro-batch (forward + backward) of TP on a dense layer's
#: attention and MLP blocks, and of a MoE layer's attention block alone.
TP_COLLECTIVES_DENSE = 4.0
TP_COLLECTIVES_MOE = 2.0
#: All-to-alls per MoE layer per micro-batch: dispatch and combine, forward and backward.
EP_ALL_TO_ALLS = 4.0


@dataclass(frozen=True)
class CommTerms:
    """Exposed seconds (arrays over layouts): TP, EP, CP per micro-batch, PP and DP per
    step."""

    tp_s: FloatArray
    ep_s: FloatArray
    cp_s: FloatArray
    pp_s: FloatArray
    dp_s: FloatArray

    @property
    def per_microbatch_s(self) -> FloatArray:
        out: FloatArray = self.tp_s + self.ep_s + self.cp_s
        return out


def tp_exposed_s(wl: Workload, fab: CommFabric, cal: Calibration, d: DerivedLayout,
                 moe_layers: FloatArray) -> FloatArray:
    """TP collectives of the stage's layers, minus the calibrated overlap."""
    act = d.tokens * wl.model.hidden * ACT_BYTES
    shared = TP_COLLECTIVES_MOE if wl.model.moe_shared else 0.0
    n_coll = (d.per_stage - moe_layers) * TP_COLLECTIVES_DENSE \
        + moe_layers * (TP_COLLECTIVES_MOE + shared)
    one = np.where(d.sp, 2.0 * _once(cost.all_gather, fab, act, d.tp, 1),
                   _once(cost.all_reduce, fab, act, d.tp, 1))
    hidden = np.where(d.tp_overlap, cal.tp_overlap, 0.0)
    out: FloatArray = np.where(d.tp > 1, (1.0 - hidden) * n_coll * one, 0.0)
    return out


def ep_exposed_s(wl: Workload, fab: CommFabric, cal: Calibration, d: DerivedLayout,
                 moe_layers: FloatArray) -> FloatArray:
    """Token dispatch and combine all-to-alls over the ``e`` ranks of the expert group
    (members ``t_e`` apart), minus the calibrated overlap."""
    m = wl.model
    if not m.is_moe:
        return np.zeros_like(d.tp)
    shard = Shard(tp=d.tp, batch=d.mb, seq_len=float(wl.seq_len), cp=d.cp, ep=d.ep,
                  etp=d.etp, capacity_factor=wl.moe_capacity_factor,
                  imbalance=wl.moe_imbalance)
    kept = np.asarray(expert_load(m, shard).kept_fraction, dtype=np.float64)
    sent = d.tokens / d.tp * m.moe_top_k * kept * m.hidden * ACT_BYTES
    t = EP_ALL_TO_ALLS * _once(cost.all_to_all, fab, sent, d.ep, d.etp)
    out: FloatArray = np.where(d.ep > 1, (1.0 - cal.ep_overlap) * moe_layers * t, 0.0)
    return out


def cp_exposed_s(wl: Workload, fab: CommFabric, d: DerivedLayout,
                 attention_fwd_s: FloatArray) -> FloatArray:
    """Ring exchange of K/V chunks, hidden behind the attention it feeds."""
    m = wl.model
    kv = d.tokens * 2 * m.kv_width * ACT_BYTES / np.minimum(d.tp, m.n_kv_heads)
    _, cp_out = placement(d.cp, d.tp, fab.domain)
    ring = (d.cp - 1.0) * _once(cost.send_recv, fab, kv, cp_out > 1) * d.per_stage
    out: FloatArray = np.where(d.cp > 1, np.maximum(0.0, ring - attention_fwd_s)
                               + np.maximum(0.0, 2 * ring - ATTN_BWD_FACTOR * attention_fwd_s),
                               0.0)
    return out


def pp_exposed_s(wl: Workload, fab: CommFabric, d: DerivedLayout) -> FloatArray:
    """Activations sent to the next stage and gradients back, per micro-batch and chunk."""
    act = d.tokens * wl.model.hidden * ACT_BYTES / d.t_sp
    _, pp_out = placement(d.pp, d.tp * d.cp * d.dp, fab.domain)
    p2p = _once(cost.send_recv, fab, act, pp_out > 1)
    out: FloatArray = np.where(d.pp > 1, 2 * d.vpp * p2p * (d.micro + d.pp - 1) * PP_EXPOSED,
                               0.0)
    return out


def dp_exposed_s(fab: CommFabric, cal: Calibration, d: DerivedLayout, p: StageParams,
                 c: ComputeTerms) -> FloatArray:
    """Gradient reduction and parameter gathering per ZeRO stage, hidden behind the last
    micro-batch's backward (gradients) and the first's forward (parameters); ZeRO-3 /
    FSDP gathers and reduces every micro-batch, layer by layer."""
    g_d, g_e = GRAD_BYTES * p.dense, GRAD_BYTES * p.expert
    has_e = p.expert > 0
    rs = _once(cost.reduce_scatter, fab, g_d, d.dp_shard, d.tp) + np.where(
        has_e, _once(cost.reduce_scatter, fab, g_e, d.dp_expert, d.ep * d.etp), 0.0)
    ag = _once(cost.all_gather, fab, PARAM_BYTES * p.dense, d.dp_shard, d.tp) + np.where(
        has_e, _once(cost.all_gather, fab, PARAM_BYTES * p.expert, d.dp_expert,
                     d.ep * d.etp), 0.0)
    ar = _once(cost.all_reduce, fab, g_d, d.dp * d.cp, d.tp) + np.where(
        has_e, _once(cost.all_reduce, fab, g_e, d.dp_expert, d.ep * d.etp), 0.0)
    replicas = np.where(d.replicas > 1, _once(
        cost.all_reduce, fab, g_d / d.dp_shard, d.replicas, d.tp * d.dp_shard), 0.0)
    o = np.where(d.dp_overlap, cal.dp_overlap, 0.0)
    win_b, win_f = o * c.backward_s, o * c.forward_s
    z0 = np.maximum(0.0, ar - win_b)
    z12 = np.maximum(0.0, rs - win_b) + np.maximum(0.0, ag - win_f)
    fsdp = 2 * ag + rs
    z3 = d.micro * np.maximum(0.0, fsdp - o * (c.forward_s + c.backward_s)) \
        + fsdp / np.maximum(d.per_stage, 1.0)
    single = d.dp * d.cp <= 1
    out: FloatArray = np.where(single, 0.0, np.where(d.zero >= 3, z3, np.where(
        d.zero >= 1, z12, z0))) + np.where(d.zero >= 1, np.maximum(0.0, replicas - win_b), 0.0)
    return out


def comm_terms(wl: Workload, fab: CommFabric, cal: Calibration, d: DerivedLayout,
               sc: StageCompute, c: ComputeTerms, p: StageParams) -> CommTerms:
    """All exposed communication terms of the layouts ``d``."""
    return CommTerms(
        tp_s=tp_exposed_s(wl, fab, cal, d, sc.moe_layers),
        ep_s=ep_exposed_s(wl, fab, cal, d, sc.moe_layers),
        cp_s=cp_exposed_s(wl, fab, d, sc.attention_fwd_s),
        pp_s=pp_exposed_s(wl, fab, d),
        dp_s=dp_exposed_s(fab, cal, d, p, c))
