"""Compute time of one pipeline stage's layers, from the operator list and the cost model.

A model's layers come in at most six kinds (dense or MoE MLP; full or sliding-window
attention or a hybrid's recurrent mixer; :func:`layer_kinds`), or four with a layer
pattern (a mixer, attention, a dense MLP or a MoE block alone). For each kind the
operators of one layer on one chip (:func:`~ocplan.workloads.operators.layer_operators`)
are timed forward and backward by
:func:`~ocplan.costmodel.op_time.profile`, and the slowest stage's ``ceil(L / p)``
layers are filled with the slowest kinds first (:func:`stage_layers`): with DeepSeek-V3's
three dense layers on 16 stages, the slowest stage holds four MoE layers, not a blend.

Layouts differ in the few fields that change a layer's operators (the per-layout fields
of :class:`~ocplan.workloads.operators.Shard`: tp, micro-batch, cp, ep, expert-TP,
sequence parallelism, grouped expert GEMMs); :func:`stage_compute` times each distinct
combination once and gathers the result back over all layouts, so a search over a
million layouts times a few hundred layer shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache

import numpy as np

from ocplan.costmodel.op_time import ChipPeaks, Efficiencies, PassTime, Profile, profile
from ocplan.costmodel.roofline import FloatArray
from ocplan.plan.distinct import distinct_columns
from ocplan.plan.recompute import RECOMPUTE_MODES
from ocplan.workloads.operators import (
    UNFUSED_CORE_OPERATORS,
    Shard,
    embedding_operators,
    has_mlp,
    head_operators,
    is_attention_layer,
    is_mixer_layer,
    is_moe_layer,
    is_windowed_layer,
    layer_operators,
    mtp_operators,
)
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

__all__ = ["LAYOUT_SHARD_FIELDS", "JobShard", "LayerKind", "StageCompute", "job_shard",
           "layer_kinds", "select_compute", "stage_compute", "stage_layers",
           "with_attention_rate"]


@dataclass(frozen=True)
class JobShard:
    """The :class:`~ocplan.workloads.operators.Shard` fields one call of
    :func:`stage_compute` gives every layout: the job's sequence and MoE routing, and the
    attention kernel (which changes which operators a layer has, so it is one value per
    call). Hashable: with the model, precision and chip it keys the cost caches."""

    seq_len: int
    capacity_factor: float | None = None
    imbalance: float = 1.0
    fused_attention: bool = True
    einsum_dispatch: bool = False


def job_shard(wl: Workload, fused_attention: bool = True) -> JobShard:
    """The per-call Shard fields of the training workload ``wl``."""
    return JobShard(wl.seq_len, wl.moe_capacity_factor, wl.moe_imbalance, fused_attention,
                    wl.moe_dispatch == "einsum")


#: Shard fields a training call leaves at their defaults: the key length of a decode step.
_SERVING_ONLY_SHARD_FIELDS = frozenset({"kv_len"})
#: :class:`~ocplan.workloads.operators.Shard` fields that are neither :class:`JobShard`'s
#: nor serving's: what a layout sets, one column each
#: (:meth:`~ocplan.plan.layout_arrays.DerivedLayout.shard_columns`). A layout field that
#: changes a layer's operators is a Shard field; nothing here names it.
LAYOUT_SHARD_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(Shard)
    if f.name not in {g.name for g in fields(JobShard)} | _SERVING_ONLY_SHARD_FIELDS)
#: Shard fields that are flags (their defaults are bools): columns of 0/1, passed as bools.
_FLAG_FIELDS = frozenset(f.name for f in fields(Shard) if isinstance(f.default, bool))


@dataclass(frozen=True)
class LayerKind:
    """Layers of one kind: a representative index and how many the model has."""

    index: int
    count: int
    moe: bool
    windowed: bool
    mixer: bool = False
    """A hybrid model's recurrent-mixer layer (no attention)."""
    attention: bool = True
    """The layer has softmax attention (not a mixer layer, nor an MLP-only layer of a
    layer pattern)."""
    mlp: bool = True
    """The layer ends in an MLP, dense or MoE (not a token-mixer-only layer of a layer
    pattern)."""


@lru_cache(maxsize=256)
def layer_kinds(shape: ModelShape) -> tuple[LayerKind, ...]:
    """The distinct (MoE, windowed, mixer, attention, MLP) kinds of ``shape``'s layers
    with their counts."""
    seen: dict[tuple[bool, bool, bool, bool, bool], list[int]] = {}
    for i in range(shape.n_layers):
        key = (is_moe_layer(shape, i), is_windowed_layer(shape, i), is_mixer_layer(shape, i),
               is_attention_layer(shape, i), has_mlp(shape, i))
        seen.setdefault(key, []).append(i)
    return tuple(LayerKind(v[0], len(v), *k) for k, v in seen.items())


@dataclass(frozen=True)
class StageCompute:
    """Compute of the slowest stage for one micro-batch, per layout (s).

    ``forward``/``backward``: the stage's layers; ``attention_fwd_s``: the attention
    cores of those layers forward (what selective recompute repeats: the fused kernel,
    or an unfused core's operators, :data:`~ocplan.workloads.operators.
    UNFUSED_CORE_OPERATORS`); ``head_fwd`` and
    ``head_bwd``: embedding, final norm, LM head and loss, and any multi-token
    prediction modules (charged to the slowest stage, which holds them when p = 1 and is
    the last stage otherwise); ``moe_layers``: MoE
    layers in the stage."""

    forward: PassTime
    backward: PassTime
    attention_fwd_s: FloatArray
    head_fwd: PassTime
    head_bwd: PassTime
    moe_layers: FloatArray
    named_s: tuple[FloatArray, ...]
    """Per recompute mode (:data:`~ocplan.plan.recompute.RECOMPUTE_MODES`), the forward
    seconds of the stage's operators the mode names
    (:attr:`~ocplan.plan.recompute.RecomputeMode.named`: those a whole-layer mode does
    not re-run, those a module mode re-runs)."""


def with_attention_rate(sc: StageCompute, rate: FloatArray) -> StageCompute:
    """``sc`` with its attention cores run at ``rate`` times the modelled kernel's speed
    (arrays over layouts, 0 < rate <= 1): the attention seconds of the forward, the
    backward and the selectively recomputed forward divided by ``rate``. No recompute
    mode names an attention core (:mod:`ocplan.plan.recompute`), so ``named_s`` is
    unchanged."""
    assert np.all((rate > 0) & (rate <= 1)), "attention rate outside (0, 1]"

    def slowed(p: PassTime) -> PassTime:
        return PassTime(p.matrix_s, p.attention_s / rate, p.memory_s)
    return replace(sc, forward=slowed(sc.forward), backward=slowed(sc.backward),
                   attention_fwd_s=sc.attention_fwd_s / rate)


def select_compute(where: np.ndarray, a: StageCompute, b: StageCompute) -> StageCompute:
    """Per layout, ``a`` where ``where`` holds and ``b`` elsewhere (two calls of
    :func:`stage_compute` over the same layouts, e.g. with and without fused attention)."""
    def pick(x: FloatArray, y: FloatArray) -> FloatArray:
        out: FloatArray = np.where(where, x, y)
        return out

    def pick_p(x: PassTime, y: PassTime) -> PassTime:
        return PassTime(pick(x.matrix_s, y.matrix_s), pick(x.attention_s, y.attention_s),
                        pick(x.memory_s, y.memory_s))
    return StageCompute(pick_p(a.forward, b.forward), pick_p(a.backward, b.backward),
                        pick(a.attention_fwd_s, b.attention_fwd_s),
                        pick_p(a.head_fwd, b.head_fwd), pick_p(a.head_bwd, b.head_bwd),
                        pick(a.moe_layers, b.moe_layers),
                        tuple(pick(x, y) for x, y in zip(a.named_s, b.named_s, strict=True)))


def stage_layers(kinds: tuple[LayerKind, ...], per_stage: FloatArray,
                 times: list[FloatArray]) -> list[FloatArray]:
    """Layers of each kind in the slowest stage of ``per_stage`` layers: the kinds taken
    slowest first (by ``times``, one array per kind), each up to its count.

    Assumes stages are contiguous runs of layers and the kinds interleave or cluster so
    that a stage can be made of the slowest kind alone when the model has enough of it
    (DeepSeek's leading dense layers; GPT-OSS's alternating windows are equal in count
    and nearly in time)."""
    order = np.argsort(-np.stack(times), axis=0, kind="stable")
    left = np.array(per_stage, dtype=np.float64)
    taken = [np.zeros_like(left) for _ in kinds]
    for rank in range(len(kinds)):
        pick = order[rank]
        for j, kind in enumerate(kinds):
            here = pick == j
            take = np.where(here, np.minimum(left, kind.count), 0.0)
            taken[j] = taken[j] + take
            left = left - take
    return taken


@dataclass(frozen=True)
class _Profiles:
    """Profiles of each layer kind (forward, backward) and of the head, for distinct
    layer shapes (columns)."""

    forward: tuple[Profile, ...]
    backward: tuple[Profile, ...]
    head_forward: Profile
    head_backward: Profile


def _profiles_of(shape: ModelShape, precision: str, chip: ChipPeaks, job: JobShard,
                 cols: FloatArray) -> _Profiles:
    """Profiles of the layer shapes ``cols`` (one row per :data:`LAYOUT_SHARD_FIELDS`)."""
    n = cols.shape[1]
    per_layout = {name: row.astype(bool) if name in _FLAG_FIELDS else row
                  for name, row in zip(LAYOUT_SHARD_FIELDS, cols, strict=True)}
    shard = Shard(**(asdict(job) | {"seq_len": float(job.seq_len)}), **per_layout)
    kinds = layer_kinds(shape)
    fwd = tuple(profile(layer_operators(shape, "forward", shard, layer=k.index,
                                        precision=precision), chip, n) for k in kinds)
    bwd = tuple(profile(layer_operators(shape, "backward", shard, layer=k.index,
                                        precision=precision), chip, n) for k in kinds)
    # the multi-token prediction modules sit with the output head on the last stage
    head_f = profile(embedding_operators(shape, "forward", shard)
                     + head_operators(shape, "forward", shard)
                     + mtp_operators(shape, "forward", shard, precision), chip, n)
    head_b = profile(embedding_operators(shape, "backward", shard)
                     + head_operators(shape, "backward", shard)
                     + mtp_operators(shape, "backward", shard, precision), chip, n)
    return _Profiles(fwd, bwd, head_f, head_b)


_Context = tuple[ModelShape, str, ChipPeaks, JobShard]
_Column = tuple[float, ...]
#: Unit-efficiency costs per job context and layer shape: the operator lists and their
#: costs do not depend on the calibration or on the other layout fields, so a search or a
#: calibration fit computes each layer shape once. Bounded: cleared when it grows past
#: :data:`_CACHE_COLUMNS` shapes.
_CACHE: dict[_Context, dict[_Column, list[tuple[FloatArray, FloatArray, FloatArray | None]]]] = {}
_META: dict[_Context, _Profiles] = {}
_CACHE_COLUMNS = 200_000


def _all(p: _Profiles) -> list[Profile]:
    return [*p.forward, *p.backward, p.head_forward, p.head_backward]


def _profiles(context: _Context, cols: FloatArray) -> _Profiles:
    """Profiles of the layer shapes ``cols`` (rows :data:`LAYOUT_SHARD_FIELDS`), each shape
    costed once per job context."""
    if sum(map(len, list(_CACHE.values()))) > _CACHE_COLUMNS:
        _CACHE.clear()
        _META.clear()
    store = _CACHE.setdefault(context, {})
    keys: list[_Column] = [tuple(col) for col in cols.T.tolist()]
    found = [store.get(k) for k in keys]
    known = _META.get(context)
    missing = [i for i, r in enumerate(found) if r is None or known is None]
    if missing:
        fresh = _profiles_of(*context, cols[:, missing])
        known = _META.setdefault(context, fresh)
        for j, i in enumerate(missing):
            found[i] = store[keys[i]] = [
                (p.compute_s[:, j], p.memory_s[:, j],
                 None if p.floor_s is None else p.floor_s[:, j]) for p in _all(fresh)]
    assert known is not None
    rows = [r for r in found if r is not None]
    built = [Profile(np.stack([r[q][0] for r in rows], axis=1),
                     np.stack([r[q][1] for r in rows], axis=1), m.paths, m.categories,
                     _floors([r[q][2] for r in rows]), m.names)
             for q, m in enumerate(_all(known))]
    k = len(known.forward)
    return _Profiles(tuple(built[:k]), tuple(built[k:2 * k]), built[2 * k], built[2 * k + 1])


def _floors(columns: list[FloatArray | None]) -> FloatArray | None:
    """The floor terms of cached columns stacked; None when the profile has none (a
    profile has one or not whatever its layouts, :func:`~ocplan.costmodel.op_time.
    profile`)."""
    present = [c for c in columns if c is not None]
    if not present:
        return None
    assert len(present) == len(columns)
    return np.stack(present, axis=1)


def _compose(shape: ModelShape, prof: _Profiles, eff: Efficiencies,
             per_stage: FloatArray) -> StageCompute:
    kinds = layer_kinds(shape)
    fwd_ops = [p.op_s(eff) for p in prof.forward]
    fwd = [p.time(eff, t) for p, t in zip(prof.forward, fwd_ops, strict=True)]
    bwd = [p.time(eff) for p in prof.backward]
    totals = [f.total_s + b.total_s for f, b in zip(fwd, bwd, strict=True)]
    # A layer pattern interleaves its blocks (Nemotron-H: M-M-M-M*-...), so a stage's
    # contiguous run of layers holds each in about the pattern's proportion.
    counts = [per_stage * (k.count / shape.n_layers) for k in kinds] \
        if shape.layer_pattern else stage_layers(kinds, per_stage, totals)
    zero = np.zeros_like(per_stage)
    forward, backward = PassTime(zero, zero, zero), PassTime(zero, zero, zero)
    attention, moe = zero, zero
    for kind, n, f, b, p, t in zip(kinds, counts, fwd, bwd, prof.forward, fwd_ops,
                                   strict=True):
        forward, backward = forward.plus(f.scaled(n)), backward.plus(b.scaled(n))
        attention = attention + n * (f.attention_s + p.named_s(t, UNFUSED_CORE_OPERATORS))
        moe = moe + (n if kind.moe else 0.0)
    named = tuple(
        sum((n * p.named_s(t, m.named)
             for n, p, t in zip(counts, prof.forward, fwd_ops, strict=True)), zero)
        if m.named else zero
        for m in RECOMPUTE_MODES)
    return StageCompute(forward, backward, attention, prof.head_forward.time(eff),
                        prof.head_backward.time(eff), moe, named)


#: The slowest stage's times per job context, calibration (:class:`Efficiencies`) and
#: stage shape (:data:`LAYOUT_SHARD_FIELDS`, layers per stage): the :data:`_WIDTH`
#: numbers of a :class:`StageCompute` column (:func:`_stage_columns`). Single-layout estimates of a
#: sweep or a search's top rows share a few stage shapes; a calibration fit changes
#: ``eff`` and composes again from :data:`_CACHE`. Bounded: cleared past
#: :data:`_COMPOSED_COLUMNS` columns (a few tens of megabytes).
_COMPOSED: dict[tuple[_Context, Efficiencies], dict[_Column, list[float]]] = {}
_COMPOSED_COLUMNS = 50_000
#: Numbers per :class:`StageCompute` column: four passes of three categories, the
#: attention forward and the MoE layers (:data:`_FIXED`), then one named-operator time
#: per recompute mode.
_FIXED = 4 * 3 + 2
_WIDTH = _FIXED + len(RECOMPUTE_MODES)


def _stage_columns(sc: StageCompute) -> list[FloatArray]:
    """The arrays of ``sc`` in the order of a :data:`_COMPOSED` row."""
    out: list[FloatArray] = []
    for p in (sc.forward, sc.backward):
        out += [p.matrix_s, p.attention_s, p.memory_s]
    out.append(sc.attention_fwd_s)
    for p in (sc.head_fwd, sc.head_bwd):
        out += [p.matrix_s, p.attention_s, p.memory_s]
    out.append(sc.moe_layers)
    out += sc.named_s
    return out


def stage_compute(shape: ModelShape, precision: str, chip: ChipPeaks, eff: Efficiencies,
                  job: JobShard, *, shard: Mapping[str, FloatArray | np.ndarray],
                  per_stage: FloatArray) -> StageCompute:
    """:class:`StageCompute` of every layout (arrays broadcast to one shape), timing each
    distinct layer shape (``shard``: one array per :data:`LAYOUT_SHARD_FIELDS`) and stage
    depth (``per_stage``) once (and once per job context and calibration: the results are
    remembered); ``job`` gives every layout the same sequence, MoE routing and attention
    kernel (:class:`JobShard`)."""
    assert set(shard) == set(LAYOUT_SHARD_FIELDS), sorted(set(shard) ^ set(LAYOUT_SHARD_FIELDS))
    arrays = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (
        *(shard[name] for name in LAYOUT_SHARD_FIELDS), per_stage)))
    shape_out = arrays[0].shape
    stacked = np.stack([a.ravel() for a in arrays])
    unique, inverse = distinct_columns(stacked)
    n = unique.shape[1]
    context: _Context = (shape, precision, chip, job)
    if sum(map(len, list(_COMPOSED.values()))) > _COMPOSED_COLUMNS:
        _COMPOSED.clear()
    memo = _COMPOSED.setdefault((context, eff), {})
    keys: list[_Column] = [tuple(col) for col in unique.T.tolist()]
    rows: list[list[float] | None] = [memo.get(k) for k in keys]
    missing = [i for i, r in enumerate(rows) if r is None]
    if missing:
        sub = unique[:, missing]
        k = len(LAYOUT_SHARD_FIELDS)
        prof = _profiles(context, sub[:k])
        sc = _compose(shape, prof, eff, sub[k])
        table = np.stack([np.broadcast_to(x, (len(missing),)) for x in _stage_columns(sc)],
                         axis=1).tolist()
        for i, row in zip(missing, table, strict=True):
            rows[i] = memo[keys[i]] = row
    cols = np.array(rows, dtype=np.float64).reshape(n, _WIDTH).T

    def back(j: int) -> FloatArray:
        out: FloatArray = cols[j][inverse].reshape(shape_out)
        return out

    def back_p(j: int) -> PassTime:
        return PassTime(back(j), back(j + 1), back(j + 2))

    return StageCompute(back_p(0), back_p(3), back(6), back_p(7), back_p(10), back(13),
                        tuple(back(_FIXED + j) for j in range(len(RECOMPUTE_MODES))))
