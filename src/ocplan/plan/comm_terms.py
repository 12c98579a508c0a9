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

Speed: over arrays of layouts each collective is computed once per distinct group of the
few layout fields its arguments follow from (:class:`_Layouts`, grouped by lookup
tables, not by sorting byte counts); a single layout's collective times are remembered,
since they do not depend on the calibration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeGuard

import numpy as np
from numpy.typing import NDArray

from ocplan.collectives import cost
from ocplan.collectives.fabric import CommFabric, placement
from ocplan.costmodel.roofline import FloatArray
from ocplan.plan.calibration import Calibration
from ocplan.plan.compute_terms import ComputeTerms
from ocplan.plan.distinct import distinct_apply
from ocplan.plan.layer_cost import StageCompute
from ocplan.plan.layout_arrays import DerivedLayout, gathered_per_step
from ocplan.plan.params import StageParams
from ocplan.workloads.memory import ACT_BYTES, PARAM_BYTES, grad_reduce_bytes
from ocplan.workloads.operators import ATTN_BWD_FACTOR, Shard, expert_load
from ocplan.workloads.recipes import RECIPES
from ocplan.workloads.workload import Workload

__all__ = ["NO_TP_OVERLAP_PRECISIONS", "PP_EXPOSED", "CommTerms", "comm_terms",
           "last_bucket_share"]

#: Fraction of steady-state pipeline send/receive left on the critical path (Megatron
#: batches isend/irecv with the next compute; warm-up and cool-down transfers are not).
PP_EXPOSED = 0.5
#: Megatron-LM's default gradient bucket, parameters: ``max(40M, 1M x dp x cp)``
#: (``DistributedDataParallelConfig.bucket_size``).
BUCKET_MIN_PARAMS = 4.0e7
BUCKET_PARAMS_PER_RANK = 1.0e6
#: Collectives per block (attention or mixer, dense MLP, shared experts) per micro-batch
#: of TP, forward and backward: a dense layer has two blocks, a MoE layer's routed
#: experts none (they split over EP), a layer pattern's layers one block each.
TP_COLLECTIVES_PER_BLOCK = 2.0
#: All-to-alls per MoE layer per micro-batch: dispatch and combine, forward and backward.
EP_ALL_TO_ALLS = 4.0
#: Each of a recurrent mixer layer's two context-parallel all-to-alls (input to
#: head-sharded, output back) per micro-batch: forward and backward.
MIXER_CP_ALL_TO_ALLS = 2.0
#: Training precisions whose recipe runs the tensor-parallel collectives without
#: overlapping them with the GEMMs, whatever the layout asks
#: (:attr:`~ocplan.workloads.recipes.Recipe.tp_overlap`: NVFP4).
NO_TP_OVERLAP_PRECISIONS = frozenset(p for p, r in RECIPES.items() if not r.tp_overlap)


#: Collective times of single layouts by collective, fabric (by identity: the entry
#: holds the fabric, so its ``id`` cannot be reused while cached) and arguments. A
#: layout's collectives do not depend on the calibration, and layouts of a sweep share
#: most of them (the same TP group and activation whatever the ZeRO stage or recompute).
_SCALAR: dict[tuple[object, ...], tuple[CommFabric, float]] = {}
_SCALAR_MAX = 32_768
#: Layouts below this many are timed directly (grouping them costs more).
_GROUP_MIN = 64
#: Whole-number fields spanning fewer values than this are coded by a lookup table
#: (no sort); so are combined keys below it.
_TABLE = 1 << 22

Fn = Callable[..., object]


def _codes(x: FloatArray) -> tuple[NDArray[np.int64], int]:
    """Codes ``0..k-1`` of the ``k`` distinct values of ``x`` (1-D), in value order:
    whole numbers in a short range by a lookup table, anything else by a sort."""
    lo, hi = float(x.min()), float(x.max())
    if hi - lo < _TABLE and np.array_equal(x, np.floor(x)):
        idx = (x - lo).astype(np.int64)
        seen = np.zeros(int(hi - lo) + 1, dtype=bool)
        seen[idx] = True
        rank = np.cumsum(seen) - 1
        return rank[idx], int(rank[-1]) + 1
    values, inverse = np.unique(x, return_inverse=True)
    return inverse.ravel().astype(np.int64), len(values)


class _Layouts:
    """The layouts of one :func:`comm_terms` call, grouped by the few whole-number fields
    each collective's arguments follow from, so that each collective is computed once
    per distinct group (a search's chunk of tens of thousands of layouts has a few
    hundred TP groups and activation sizes) without sorting its byte counts."""

    def __init__(self, d: DerivedLayout, moe_layers: FloatArray) -> None:
        self.d = d
        self.moe_layers = moe_layers
        self.shape = np.shape(d.tp)
        self.size = int(np.size(d.tp))
        self._codes: dict[str, tuple[NDArray[np.int64], int]] = {}
        self._groups: dict[tuple[str, ...], tuple[NDArray[np.intp], NDArray[np.int64]]] = {}

    def _field(self, name: str) -> FloatArray:
        value = self.moe_layers if name == "moe_layers" else getattr(self.d, name)
        out: FloatArray = np.broadcast_to(np.asarray(value, dtype=np.float64),
                                          self.shape).ravel()
        return out

    def _group(self, by: tuple[str, ...]) -> tuple[NDArray[np.intp], NDArray[np.int64]]:
        """(one layout of each group, the group of each layout) for the fields ``by``."""
        hit = self._groups.get(by)
        if hit is not None:
            return hit
        key = np.zeros(self.size, dtype=np.int64)
        span = 1
        for name in by:
            if name not in self._codes:
                self._codes[name] = _codes(self._field(name))
            codes, k = self._codes[name]
            if span * k >= _TABLE:  # compact the key so far first
                key, span = _codes(key.astype(np.float64))
            key = key * k + codes
            span *= k
        group, k = _codes(key.astype(np.float64))
        first = np.zeros(k, dtype=np.intp)
        first[group] = np.arange(self.size)
        self._groups[by] = (first, group)
        return first, group

    def apply(self, by: tuple[str, ...], fn: Fn, *args: object) -> FloatArray:
        """``fn(*args)`` for arguments (arrays over the layouts, or numbers) that follow
        from the layout fields ``by`` (and the moe layers of the stage, named
        ``"moe_layers"``), computed once per distinct combination of them. ``fn`` must
        be elementwise. One layout: remembered across calls (:data:`_SCALAR`)."""
        if self.size < _GROUP_MIN:
            return _direct(fn, *args)
        first, group = self._group(by)
        sub = [np.broadcast_to(a, self.shape).ravel()[first] if _is_array(a) else a
               for a in args]
        values = np.broadcast_to(np.asarray(fn(*sub), dtype=np.float64), (len(first),))
        out: FloatArray = values[group].reshape(self.shape)
        return out


def _is_array(a: object) -> TypeGuard[NDArray[np.generic]]:
    """Whether ``a`` is an array over layouts (not a number, a 0-d array or a fabric)."""
    return isinstance(a, np.ndarray) and a.ndim > 0


def _direct(fn: Fn, *args: object) -> FloatArray:
    """``fn(*args)`` on few layouts; for one layout (0-d arguments, a collective and its
    fabric first) the result is remembered."""
    if not isinstance(args[0], CommFabric) or any(_is_array(a) for a in args[1:]):
        return distinct_apply(fn, *args)
    fab = args[0]
    key = (fn, id(fab), *(float(a) for a in args[1:]))  # type: ignore[arg-type]
    hit = _SCALAR.get(key)
    if hit is not None and hit[0] is fab:
        return np.asarray(hit[1], dtype=np.float64)
    out = distinct_apply(fn, *args)
    if len(_SCALAR) >= _SCALAR_MAX:
        _SCALAR.clear()
    _SCALAR[key] = (fab, float(out))
    return out


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


#: The layout fields each collective's arguments follow from (d.tokens is mb s / cp,
#: d.t_sp is tp with sp, the stage's parameters follow from tp, pp, ep, etp, its moe
#: layers and the pipeline split (the fullest, first and last stages' layers: the end
#: stages hold the embedding and the head), d.dp_expert and d.replicas from dp, cp, tp,
#: ep, etp and dp_shard; the gradients' bytes from grad_reduce_bf16).
_BY_TP = ("mb", "cp", "tp")
_BY_EP = ("mb", "cp", "tp", "ep", "etp")
_BY_PP = ("mb", "cp", "tp", "sp", "pp", "dp")
_BY_DP = ("tp", "pp", "ep", "etp", "moe_layers", "per_stage", "first_layers", "last_layers",
          "dp", "cp", "dp_shard", "grad_reduce_bf16")


def tp_exposed_s(wl: Workload, fab: CommFabric, cal: Calibration, d: DerivedLayout,
                 moe_layers: FloatArray, g: _Layouts) -> FloatArray:
    """TP collectives of the stage's layers, minus the calibrated overlap."""
    act = d.tokens * wl.model.hidden * ACT_BYTES
    m = wl.model
    shared = 1.0 if m.moe_shared else 0.0
    n_coll = TP_COLLECTIVES_PER_BLOCK * (
        (d.per_stage - moe_layers) * (m.token_share(False) + m.mlp_share(False))
        + moe_layers * (m.token_share(True) + shared))
    one = np.where(d.sp, 2.0 * g.apply(_BY_TP, cost.all_gather, fab, act, d.tp, 1),
                   g.apply(_BY_TP, cost.all_reduce, fab, act, d.tp, 1))
    overlap = cal.tp_overlap if wl.precision not in NO_TP_OVERLAP_PRECISIONS else 0.0
    hidden = np.where(d.tp_overlap, overlap, 0.0)
    out: FloatArray = np.where(d.tp > 1, (1.0 - hidden) * n_coll * one, 0.0)
    return out


def _slot_fraction(wl: Workload, tp: FloatArray, mb: FloatArray, cp: FloatArray,
                   ep: FloatArray, etp: FloatArray) -> FloatArray:
    """Token copies the dispatch moves, over those routed
    (:attr:`~ocplan.workloads.operators.ExpertLoad.slot_fraction`)."""
    shard = Shard(tp=tp, batch=mb, seq_len=float(wl.seq_len), cp=cp, ep=ep, etp=etp,
                  capacity_factor=wl.moe_capacity_factor, imbalance=wl.moe_imbalance)
    out: FloatArray = np.asarray(expert_load(wl.model, shard).slot_fraction, dtype=np.float64)
    return out


def ep_exposed_s(wl: Workload, fab: CommFabric, cal: Calibration, d: DerivedLayout,
                 moe_layers: FloatArray, g: _Layouts, forward_s: FloatArray,
                 backward_s: FloatArray) -> FloatArray:
    """Token dispatch and combine over the ``e`` ranks of the expert group (members
    ``t_e`` apart), minus what the layout's overlap hides.

    The dispatch is node-deduplicated where the layout says so (``ep_dedup``: DeepEP,
    HybridEP; :func:`~ocplan.collectives.cost.moe_dispatch`: a token crosses scale-out
    once per remote domain holding one of its experts), else an all-to-all of every
    routed copy (Megatron-Core's alltoall dispatcher). With ``ep_overlap`` the 1F1B
    all-to-all overlap runs one micro-batch's forward dispatch and combine (half the
    ``C`` of a micro-batch) under another's backward ``B`` and its backward ones under
    the other's forward ``F`` (Megatron-Core ``--overlap-moe-expert-parallel-comm``,
    DeepSeek-V3 §3.2.1's DualPipe pairing), the calibrated share ``o`` of each, no more
    than the compute it hides behind: ``C - min(o C / 2, B) - min(o C / 2, F)``. Without
    it, exposed in full."""
    m = wl.model
    if not m.is_moe:
        return np.zeros_like(d.tp)
    moved = g.apply(_BY_EP, lambda *a: _slot_fraction(wl, *a), d.tp, d.mb, d.cp, d.ep, d.etp)
    rows = d.tokens / d.tp * moved
    row_bytes = m.hidden * ACT_BYTES
    dedup = EP_ALL_TO_ALLS * g.apply(
        _BY_EP, lambda r, n, st: cost.moe_dispatch(fab, r, row_bytes, m.moe_top_k, n, st),
        rows, d.ep, d.etp)
    if np.all(d.ep_dedup):  # the search's layouts: the plain dispatch is not an axis
        total = moe_layers * dedup
    else:
        plain = EP_ALL_TO_ALLS * g.apply(_BY_EP, cost.all_to_all, fab,
                                         rows * m.moe_top_k * row_bytes, d.ep, d.etp)
        total = moe_layers * np.where(d.ep_dedup, dedup, plain)
    half = cal.ep_overlap * total / 2
    hidden = np.where(d.ep_overlap, np.minimum(half, backward_s) + np.minimum(half, forward_s),
                      0.0)
    out: FloatArray = np.where(d.ep > 1, total - hidden, 0.0)
    return out


def cp_exposed_s(wl: Workload, fab: CommFabric, d: DerivedLayout,
                 attention_fwd_s: FloatArray, g: _Layouts) -> FloatArray:
    """Ring exchange of K/V chunks, hidden behind the attention it feeds, in the stage's
    attention layers, and a hybrid's recurrent layers' all-to-alls
    (:func:`mixer_cp_s`)."""
    m = wl.model
    kv = d.tokens * 2 * m.kv_width * ACT_BYTES / np.minimum(d.tp, m.n_kv_heads)
    _, cp_out = placement(d.cp, d.tp, fab.domain)
    attending = d.per_stage * m.n_attention_layers / m.n_layers
    ring = (d.cp - 1.0) * g.apply(_BY_TP, cost.send_recv, fab, kv, cp_out > 1) * attending
    out: FloatArray = np.where(d.cp > 1, np.maximum(0.0, ring - attention_fwd_s)
                               + np.maximum(0.0, 2 * ring - ATTN_BWD_FACTOR * attention_fwd_s),
                               0.0)
    return out + mixer_cp_s(wl, fab, d, g)


def mixer_cp_s(wl: Workload, fab: CommFabric, d: DerivedLayout, g: _Layouts) -> FloatArray:
    """A recurrent mixer under context parallelism: its core needs whole sequences, so
    each layer turns its input projection's output from sequence- to head-sharded with
    an all-to-all over the ``cp`` ranks before the convolution and scan, and its output
    back after, forward and backward (Megatron-Core ``MambaContextParallel``), on the
    critical path: ``2 n_mix (A2A(T w_in / t) + A2A(T n_v d_v / t))`` for ``T`` tokens a
    rank holds, ``w_in`` the projection's width (:attr:`MixerDims.in_proj_width`)."""
    m, mx = wl.model, wl.model.mixer
    if mx is None or m.n_mixer_layers == 0:
        return np.zeros_like(d.cp)
    layers = d.per_stage * m.n_mixer_layers / m.n_layers
    moved = (g.apply(_BY_TP, cost.all_to_all, fab,
                     d.tokens * mx.in_proj_width * ACT_BYTES / d.tp, d.cp, d.tp)
             + g.apply(_BY_TP, cost.all_to_all, fab,
                       d.tokens * mx.value_width * ACT_BYTES / d.tp, d.cp, d.tp))
    out: FloatArray = np.where(d.cp > 1, MIXER_CP_ALL_TO_ALLS * layers * moved, 0.0)
    return out


def pp_exposed_s(wl: Workload, fab: CommFabric, d: DerivedLayout, g: _Layouts) -> FloatArray:
    """Activations sent to the next stage and gradients back, per micro-batch and chunk,
    and per fill and drain of each of the step's runs of the schedule."""
    act = d.tokens * wl.model.hidden * ACT_BYTES / d.t_sp
    _, pp_out = placement(d.pp, d.tp * d.cp * d.dp, fab.domain)
    p2p = g.apply(_BY_PP, cost.send_recv, fab, act, pp_out > 1)
    transfers = d.micro + d.runs * (d.pp - 1)
    out: FloatArray = np.where(d.pp > 1, 2 * d.vpp * p2p * transfers * PP_EXPOSED, 0.0)
    return out


def last_bucket_share(d: DerivedLayout, p: StageParams) -> FloatArray:
    """Share ``f`` of a stage's data-parallel traffic that no backward is left to hide: the
    last gradient bucket (reduced after the last layer's backward) and the first parameter
    bucket (gathered before the first layer's forward).

    ``f = min(1, B / P)``, with ``P`` the parameters a chip holds and ``B`` the bucket,
    Megatron-LM's default ``max(40M, 1M x dp x cp)`` parameters
    (``DistributedDataParallelConfig.bucket_size``, megatron/core/distributed/
    distributed_data_parallel_config.py); overlapped collectives are launched bucket by
    bucket as the backward produces them, so at least one bucket's worth stays exposed
    however long the backward is. Runs that set larger buckets (MLPerf's Llama 3.1 8B
    configs: 768M) expose more; the default is what a plan states nothing about."""
    bucket = np.maximum(BUCKET_MIN_PARAMS, BUCKET_PARAMS_PER_RANK * d.dp * d.cp)
    share: FloatArray = np.minimum(1.0, bucket / np.maximum(p.dense + p.expert, 1.0))
    return share


def dp_exposed_s(fab: CommFabric, overlap: FloatArray, d: DerivedLayout, p: StageParams,
                 grad_bytes: FloatArray, c: ComputeTerms, g: _Layouts,
                 per_step: np.ndarray) -> FloatArray:
    """Gradient reduction and parameter gathering per ZeRO stage, hidden behind the last
    micro-batch's backward (gradients) and the first's forward (parameters); ZeRO-3 /
    FSDP gathers and reduces every micro-batch, layer by layer, except where it gathers
    once per step under a pipeline (``per_step``,
    :func:`~ocplan.plan.layout_arrays.gathered_per_step`): there the parameters are
    gathered behind the first forward and the gradients reduced after the stage's last
    backward, exposed. Gradients move at
    ``grad_bytes`` per element (:func:`~ocplan.workloads.memory.grad_reduce_bytes`),
    parameters at 16 bits; ``overlap`` is the calibrated share of the compute they can hide
    behind, per layout (its stack's:
    :func:`~ocplan.plan.layout_arrays.layout_stacks`); the last bucket stays exposed
    whatever the overlap (:func:`last_bucket_share`): ``max(f C, C - o W)``. A step of
    several runs of a PyTorch pipeline schedule (:attr:`~ocplan.plan.layout_arrays.
    DerivedLayout.runs`) still reduces once: NeMo AutoModel patches the stage's
    ``backward_maybe_with_nosync`` so that only the step's last backward syncs and
    reshards (``nemo_automodel/components/moe/fsdp_mixin.py``, ``MoEFSDPSyncMixin``),
    and torchtitan's trainer passes the schedule ``finalize_gradients`` on the step's last
    run only; a loop that does neither syncs at each run's last backward (not counted)."""
    g_d, g_e = grad_bytes * p.dense, grad_bytes * p.expert
    has_e = p.expert > 0

    def once(fn: Fn, *args: object) -> FloatArray:
        return g.apply(_BY_DP, fn, fab, *args)

    rs = once(cost.reduce_scatter, g_d, d.dp_shard, d.tp) + np.where(
        has_e, once(cost.reduce_scatter, g_e, d.dp_expert, d.ep * d.etp), 0.0)
    ag = once(cost.all_gather, PARAM_BYTES * p.dense, d.dp_shard, d.tp) + np.where(
        has_e, once(cost.all_gather, PARAM_BYTES * p.expert, d.dp_expert,
                    d.ep * d.etp), 0.0)
    ar = once(cost.all_reduce, g_d, d.dp * d.cp, d.tp) + np.where(
        has_e, once(cost.all_reduce, g_e, d.dp_expert, d.ep * d.etp), 0.0)
    replicas = np.where(d.replicas > 1, once(
        cost.all_reduce, g_d / d.dp_shard, d.replicas, d.tp * d.dp_shard), 0.0)
    o = np.where(d.dp_overlap, overlap, 0.0)
    win_b, win_f = o * c.backward_s, o * c.forward_s
    tail = np.where(d.dp_overlap, last_bucket_share(d, p), 1.0)
    z0 = np.maximum(tail * ar, ar - win_b)
    z12 = np.maximum(tail * rs, rs - win_b) + np.maximum(tail * ag, ag - win_f)
    fsdp = 2 * ag + rs
    z3 = np.where(per_step, rs + np.maximum(tail * ag, ag - win_f),
                  d.micro * np.maximum(0.0, fsdp - o * (c.forward_s + c.backward_s))
                  + fsdp / np.maximum(d.per_stage, 1.0))
    single = d.dp * d.cp <= 1
    out: FloatArray = np.where(single, 0.0, np.where(d.zero >= 3, z3, np.where(
        d.zero >= 1, z12, z0))) + np.where(d.zero >= 1, np.maximum(0.0, replicas - win_b), 0.0)
    return out


def dcn_steps_s(fab: CommFabric, step_s: float, d: DerivedLayout) -> FloatArray:
    """Host-side cost of the data-parallel collectives that cross a host-staged network
    (TPU slices over the data-center network): ``step_s`` per ring step per layer,
    exposed.

    XLA scans the layers, so gradients are reduced and parameters gathered layer by
    layer; over ``S`` slices a reduce-scatter or all-gather takes ``S - 1`` ring steps and
    an all-reduce ``2(S - 1)``, and each step waits for the slowest of the slice's hosts,
    which stage the data through host memory. ZeRO-3 gathers twice and reduce-scatters
    once per micro-batch; ZeRO-1/2 reduce-scatter and gather once per step; ZeRO-0 and
    HSDP's replicas all-reduce once per step. MaxText's v5e table
    (``validation/scaling/``, ``docs/slice-scaling.md``) loses per-chip rate in
    proportion to layers x (slices - 1) at three model sizes whose gradient bytes per
    chip differ 8x: a per-step cost, not a bandwidth one. ``step_s`` is fitted
    (``dcn_step_s``). Expert-parallel reductions are not counted."""
    if not fab.out_host_staged:
        return np.zeros_like(d.tp)
    _, shard_out = placement(d.dp_shard, d.tp, fab.domain)
    _, all_out = placement(d.dp * d.cp, d.tp, fab.domain)
    _, rep_out = placement(d.replicas, d.tp * d.dp_shard, fab.domain)
    steps = np.where(d.zero >= 3, 3 * d.micro * (shard_out - 1),
                     np.where(d.zero >= 1, 2 * (shard_out - 1), 2 * (all_out - 1)))
    steps = steps + np.where(d.zero >= 1, 2 * (rep_out - 1), 0.0)
    out: FloatArray = np.where(d.dp * d.cp <= 1, 0.0, d.per_stage * steps * step_s)
    return out


def comm_terms(wl: Workload, fab: CommFabric, cal: Calibration, d: DerivedLayout,
               sc: StageCompute, c: ComputeTerms, p: StageParams,
               xla: np.ndarray) -> CommTerms:
    """All exposed communication terms of the layouts ``d`` (``xla``: which run on the
    XLA stack, :func:`~ocplan.plan.layout_arrays.layout_stacks`)."""
    g = _Layouts(d, sc.moe_layers)
    return CommTerms(
        tp_s=tp_exposed_s(wl, fab, cal, d, sc.moe_layers, g),
        ep_s=ep_exposed_s(wl, fab, cal, d, sc.moe_layers, g, c.forward_s, c.backward_s),
        cp_s=cp_exposed_s(wl, fab, d, sc.attention_fwd_s, g),
        pp_s=pp_exposed_s(wl, fab, d, g),
        dp_s=dp_exposed_s(fab, np.where(xla, cal.dp_overlap_xla, cal.dp_overlap), d, p,
                          grad_reduce_bytes(wl.precision, d.grad_reduce_bf16), c, g,
                          gathered_per_step(d, xla))
        + dcn_steps_s(fab, cal.dcn_step_s, d))
