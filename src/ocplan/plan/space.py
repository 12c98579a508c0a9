"""A search space declared as axes and constraints, not a nest of loops.

Each :class:`Axis` lists the values of one layout field. Each :class:`Constraint` names
the axes it reads and a predicate over columns of candidate values (numpy arrays); it
prunes as soon as all its axes are present. :meth:`SearchSpace.candidates` grows the
cartesian product axis by axis, applying every constraint at the earliest point, and
counts what each reason removed in units of full-space points, so
``sum(pruned) + len(candidates) == size``.

Size guard: the full product (:attr:`SearchSpace.size`) is no measure of the memory a
space needs, since constraints prune as the axes grow (GPT-3 175B on 512 chips declares
69 million layouts and holds at most 1.9 million at once). What is allocated is each
growth step: the rows kept so far times the values of the next axis. Before allocating a
step, :meth:`SearchSpace.candidates` computes that number and refuses with a
:class:`~ocplan.errors.SpecError` above :data:`MAX_SPACE_ROWS`; the axes themselves are
not bounded, so a space under the limit is searched in full. A model with 100,000 layers
declares 100,000 interleaving depths and is refused in about two seconds.

Memory per row is kept small: columns are stored in the narrowest integer type that holds
their values (int8 for option codes, int16/int32 for sizes), and constraints and derived
columns read them widened to int64, so no product of sizes can overflow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ocplan.errors import Problem, SpecError
from ocplan.plan.layout import LayoutField
from ocplan.plan.pipeline_schedules import PipelineSchedule, unmet
from ocplan.plan.plan import LAYOUT, LAYOUT_FIELDS, end_credit, split_places, stage_layers
from ocplan.plan.recompute import ModelFeature, Stack, searched_modes
from ocplan.units import or_listed
from ocplan.workloads.mixers import MixerDims

__all__ = ["MAX_SPACE_ROWS", "Axis", "Columns", "Constraint", "SearchSpace", "training_space"]

Columns = dict[str, np.ndarray]

#: Why a constraint removes layouts that would run: the same as another layout
#: (``duplicate``) or never better than one (``dominated``); every other reason is a
#: rule a layout must keep.
PREFERENCE_REASONS = ("duplicate", "dominated")

#: Most candidate rows one growth step of :meth:`SearchSpace.candidates` may hold. At its
#: peak a step holds the rows before its constraints prune them: the new axis, the
#: columns the constraints read and the int32 parent index (narrow types, ~10 bytes),
#: the int64 temporaries of the constraint being evaluated (~24 bytes) and the previous
#: step's columns (~8 bytes per row here when the axis doubles the rows): about 40 bytes
#: per row (measured: the largest validation search, Qwen3-235B on 256 chips, peaks at
#: 16.2 million rows and 0.45 GiB under tracemalloc, 30 bytes per row). 24 million rows
#: keeps the growth under ~1 GiB and admits that search with 50 % to spare.
MAX_SPACE_ROWS = 24_000_000


@dataclass(frozen=True)
class Axis:
    """One layout field's values (encoded, :meth:`~ocplan.plan.plan.Plan.columns`).

    With ``resolve``, ``values`` are options whose value depends on earlier axes: once
    the axis is added, ``resolve(columns)`` turns each row's option into its value (the
    hybrid-sharding group is off or the data-parallel ranks of one scale-up domain, so
    it has two options but many values). The space's size counts the options."""

    name: str
    values: tuple[int, ...]
    resolve: Callable[[Columns], np.ndarray] | None = None


@dataclass(frozen=True)
class Constraint:
    """Keep the candidates for which ``keep(columns)`` is true; count the rest as
    ``reason``. A constraint that removes values of one axis as duplicates or dominated
    options names it ``subject``: a space that pins that axis drops the constraint, since
    the pinned value is then the only one, however it compares with the others."""

    reason: str
    axes: tuple[str, ...]
    keep: Callable[[Columns], np.ndarray]
    subject: str | None = None

    def __post_init__(self) -> None:
        assert (self.subject is not None) == (self.reason in PREFERENCE_REASONS), self.reason
        assert self.subject is None or self.subject in self.axes, self.subject


@dataclass(frozen=True)
class SearchSpace:
    axes: tuple[Axis, ...]
    constraints: tuple[Constraint, ...]
    derived: Mapping[str, Callable[[Columns], np.ndarray]]
    """Columns computed from axes (dp = chips / (tp * pp * cp)), added when their inputs
    exist; constraints may read them."""
    name: str = "search space"
    """What the space is of (model and chips), for the size guard's message."""

    def narrowing(self, values: Mapping[str, int] | None = None, most: int = 3) -> str:
        """What would shrink the space most, for the size guards' messages: give one
        value of the searched layout fields with the most values (held to one, each
        divides the space by about its count), ``most`` of them, widest first; ``values``
        counts each field's values among the candidates where they are known, else each
        axis's options count. Empty when no field has two values."""
        counts = values if values is not None else {a.name: len(a.values) for a in self.axes}
        wide = sorted(((n, name) for name, n in counts.items() if n > 1),
                      key=lambda c: -c[0])[:most]
        names = [f"{name} ({n} values)" for n, name in wide]
        if not names:
            return ""
        return f"give one value of {or_listed(names)} to search within it"

    @property
    def size(self) -> int:
        size = 1
        for axis in self.axes:
            size *= len(axis.values)
        return size

    def candidates(self) -> tuple[Columns, dict[str, int]]:
        """Surviving candidates as columns (narrow integer types), and pruned counts by
        reason.

        Raises :class:`~ocplan.errors.SpecError` before allocating a growth step of more
        than :data:`MAX_SPACE_ROWS` rows (see the module docstring).
        """
        cols: Columns = {}
        n = 1
        pruned: dict[str, int] = {}
        pending = list(self.constraints)
        remaining = self.size
        for axis in self.axes:
            values = _narrow(np.asarray(axis.values, dtype=np.int64))
            rows = n * len(values)
            if rows > MAX_SPACE_ROWS:
                raise SpecError.one(
                    "search", "space", f"{self.name}: {rows:,} layouts to hold at once when "
                    f"adding axis '{axis.name}' ({len(values):,} values), over the limit of "
                    f"{MAX_SPACE_ROWS:,}; {self.narrowing() or 'fewer chips make it smaller'}")
            remaining //= len(values)
            # Constraints on this axis alone prune its values before they are paired with
            # every earlier row (the same rows and counts as pruning the pairs).
            unary = [c for c in pending if c.axes == (axis.name,) and axis.resolve is None]
            for c in unary:
                keep = np.asarray(c.keep(_Wide({axis.name: values})), dtype=bool)
                dropped = int((~keep).sum())
                if dropped:
                    pruned[c.reason] = pruned.get(c.reason, 0) + dropped * n * remaining
                    values = values[keep]
            pending = [c for c in pending if c not in unary]
            grown = _Grown(cols, len(values), {axis.name: np.tile(values, n)})
            wide = _Wide(grown)
            if axis.resolve is not None:
                grown[axis.name] = _narrow(axis.resolve(wide))
            for name, fn in self.derived.items():
                if name not in cols:
                    with contextlib.suppress(KeyError):  # inputs not all present yet
                        grown[name] = _narrow(fn(wide))
            still: list[Constraint] = []
            for c in pending:
                if all(a in grown for a in c.axes):
                    keep = np.asarray(c.keep(wide), dtype=bool)
                    dropped = int((~keep).sum())
                    if dropped:
                        pruned[c.reason] = pruned.get(c.reason, 0) + dropped * remaining
                        grown.filter(keep)
                else:
                    still.append(c)
            pending = still
            cols = grown.columns()
            n = len(cols[axis.name])
        assert not pending, f"constraints on unknown axes: {[c.reason for c in pending]}"
        return cols, pruned


def _narrow(values: np.ndarray) -> np.ndarray:
    """``values`` in the narrowest signed integer type that holds them all (values that
    are not integers are returned as they are)."""
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.integer):
        return values
    if values.size == 0:
        return values.astype(np.int8)
    lo, hi = int(values.min()), int(values.max())
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return values.astype(dtype, copy=False)
    return values.astype(np.int64, copy=False)


class _Wide(dict[str, np.ndarray]):
    """A read-only view of a growth step's columns widened to int64, for constraints and
    derived columns (products of sizes stay exact). Each read is a temporary copy, never
    kept, so the narrow columns stay the only stored ones."""

    def __init__(self, cols: Columns) -> None:
        super().__init__()
        self.cols = cols

    def __missing__(self, key: str) -> np.ndarray:
        wide: np.ndarray = self.cols[key].astype(np.int64, copy=False)
        return wide

    def __contains__(self, key: object) -> bool:
        return key in self.cols


class _Grown(dict[str, np.ndarray]):
    """The columns of one growth step, row ``i * k + j`` pairing earlier row ``i`` with
    value ``j`` of the new axis. The new axis and derived columns are held in full; the
    earlier columns are gathered only when a constraint reads them (and in full once the
    step's constraints have pruned), so pruned rows are never built for every column."""

    def __init__(self, base: Columns, k: int, fresh: Columns) -> None:
        super().__init__(fresh)
        self.base = base
        self.k = k
        self.parent: np.ndarray | None = None  # earlier row of each row, once pruned

    def _gather(self, values: np.ndarray) -> np.ndarray:
        if self.parent is None:
            # One value (a fixed field): the rows are the earlier rows; nothing to copy.
            return values if self.k == 1 else np.repeat(values, self.k)
        gathered: np.ndarray = values[self.parent]
        return gathered

    def __missing__(self, key: str) -> np.ndarray:
        if key not in self.base:
            raise KeyError(key)
        value = self[key] = self._gather(self.base[key])
        return value

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self.base

    def filter(self, keep: np.ndarray) -> None:
        if self.parent is None:
            n = len(next(iter(self.base.values()))) if self.base else 1
            # int32 halves the index (rows are bounded by MAX_SPACE_ROWS < 2**31).
            self.parent = np.repeat(np.arange(n, dtype=np.int32), self.k)
        self.parent = self.parent[keep]
        for key in list(dict.keys(self)):
            dict.__setitem__(self, key, dict.__getitem__(self, key)[keep])

    def columns(self) -> Columns:
        out = {k: dict.__getitem__(self, k) if dict.__contains__(self, k) else self._gather(v)
               for k, v in self.base.items()}
        out.update((k, v) for k, v in self.items() if k not in out)
        return out


def _divisors(n: int, limit: int | None = None) -> tuple[int, ...]:
    top = n if limit is None else min(n, limit)
    return tuple(d for d in range(1, top + 1) if n % d == 0)


#: A number field whose declared range is at most this long is an axis of every value
#: without a rule of its own (the ZeRO stages).
_LISTED_AXIS = 16


def _declared_values(f: LayoutField) -> tuple[int, ...]:
    """The axis of a field without a value rule: every code of a flag or a choice
    (search codes included), every value of a short number range (the ZeRO stages)."""
    if f.kind in ("bool", "choice"):
        return f.codes
    assert f.kind == "int", f"layout field {f.name}: an axis needs a value rule"
    assert f.low is not None, f.name
    assert f.high is not None, f.name
    assert f.high - f.low < _LISTED_AXIS, f"layout field {f.name}: an axis needs a value rule"
    return tuple(range(f.low, f.high + 1))


def _least_depth(n_layers: int, c: Columns) -> np.ndarray:
    """Whether each row's interleave depth v is the smallest giving its largest chunk,
    ceil(L_s / v) layers of a stage's L_s = ceil(L / p)."""
    per_stage = -(-n_layers // c["pp"])
    chunk = -(-per_stage // c["vpp"])
    least: np.ndarray = c["vpp"] == -(-per_stage // chunk)
    return least


def _ends_pay(n_layers: int, pp: np.ndarray, mtp: int = 0) -> np.ndarray:
    """Where counting the embedding and the loss (and ``mtp`` prediction modules) as
    layers leaves the fullest stage's layer count unchanged
    (:func:`~ocplan.plan.plan.stage_layers` with and without) and gives the end stages
    their credit (``p > 2``)."""
    pays: np.ndarray = (end_credit(pp, True) > 0) & (
        stage_layers(n_layers, pp, True, mtp) == stage_layers(n_layers, pp, False, mtp))
    return pays.astype(np.int64)


def _head_stage(n_layers: int, pp: np.ndarray, vpp: np.ndarray) -> np.ndarray:
    """The last stage's layers where the even share ``n = ceil(L / p)`` leaves slack
    (``p n > L``): what the other stages leave, ``L - (p - 1) n``, at least one a chunk;
    0 (unset) elsewhere. The fullest stage keeps its ``n`` layers and the LM head and
    any modules run in the slack's places, so the split is never slower and never holds
    more than all stages at ``n`` (which also overcounts the layers); Megatron-Bridge's
    DeepSeek-V3 and Kimi-K2 layouts are this split (61 layers at p 16: 4 a stage, the
    last 1)."""
    n = -(-n_layers // pp)
    last = n_layers - (pp - 1) * n
    out: np.ndarray = np.where((pp > 1) & (last < n) & (last >= vpp), last, 0)
    return out


_SELECTIVE = LAYOUT["recompute"].code("selective")


def training_space(*, chips: int, n_layers: int, n_heads: int, n_kv_heads: int,
                   seq_len: int, global_batch: int, domain: int, experts: int = 0,
                   features: frozenset[ModelFeature] = frozenset(),
                   mixer: MixerDims | None = None, max_cp: int = 16, max_tp: int | None = None,
                   offload: bool = False, stack: Stack = "torch",
                   pinned: Mapping[str, int] | None = None, mtp_depth: int = 0,
                   fused_attention: bool = True,
                   pp_schedule: PipelineSchedule | None = None,
                   local_batch: int | None = None,
                   name: str = "search space") -> SearchSpace:
    """The layout space of one training job on ``chips`` chips (a model of ``n_layers``
    layers and ``mtp_depth`` multi-token prediction modules, which take places of the
    pipeline split as the layers do).

    One axis per layout field the declarations mark ``search="axis"``
    (:data:`~ocplan.plan.plan.LAYOUT_FIELDS`), in their order, named as the field and
    holding encoded values: tp, pp, cp, ep, expert TP (unset, i.e. tp, or 1 for a MoE
    model), vpp, the ends split (taken where it does not
    grow the fullest stage, :func:`_ends_pay`; without it the last stage holds what the
    even share leaves, :func:`_head_stage`, a derived ``last_stage_layers``),
    micro-batch, ZeRO stage, the recompute modes of the software ``stack`` for a model
    with ``features``
    (:func:`~ocplan.plan.recompute.searched_modes`, with the search code "auto",
    :data:`~ocplan.plan.plan.RECOMPUTE_AUTO`), sequence
    parallelism, host activation offload (only with ``offload``), TP and DP
    communication overlap, hybrid sharding within a scale-up domain. ``dp`` is derived;
    fields marked ``fixed`` stay at their defaults. ``pinned`` holds encoded values of
    axis fields (:data:`~ocplan.plan.plan.SEARCH_PINNABLE_LAYOUT`) each of whose axes
    then holds that value alone, without the constraints that would drop it as a
    duplicate or dominated option (:attr:`Constraint.subject`); SpecError naming every
    pinned value its axis does not hold (tp across servers, a recompute mode of another
    stack), with the values it does. Constraints mirror
    :meth:`ocplan.plan.plan.Plan.check` (a hybrid ``mixer``'s heads included), plus TP
    inside the scale-up domain and duplicates (options that change nothing) removed.
    ``fused_attention``: the layouts' attention cores are fused kernels (the plan's field,
    which a search holds fixed); then selective recompute saves no memory and is dropped
    as dominated, while an unfused core's scores are what it saves. ``pp_schedule``: the
    pipeline schedule the layouts run (the plan's field, held fixed; None for 1F1B),
    whose own conditions on a pipeline then apply (:meth:`Plan.check`). ``local_batch``:
    the sequences per rank in one run of a pipeline schedule (the plan's field, held
    fixed; None: the step's in one run), which pipelined layouts must split into whole
    micro-batches and whose runs must make up a rank's batch. ``name`` says what
    the space is of in the size guard's message (see :meth:`SearchSpace.candidates`).
    """
    tp_limit = min(domain, max_tp or domain)

    def dp(c: Columns) -> np.ndarray:
        ranks: np.ndarray = chips // (c["tp"] * c["pp"] * c["cp"])
        return ranks

    def kv_split(c: Columns) -> np.ndarray:
        tp = c["tp"]
        split: np.ndarray = np.where(tp <= n_kv_heads, n_kv_heads % tp == 0,
                                     tp % n_kv_heads == 0)
        return split

    def domain_group(c: Columns) -> np.ndarray:
        """Hybrid sharding group: the data-parallel ranks of one scale-up domain."""
        group: np.ndarray = np.minimum(dp(c) * c["cp"], np.maximum(1, domain // c["tp"]))
        return group

    # The value rule of each axis field that is not every code of its kind; keyed by
    # the Plan field.
    rules: dict[str, tuple[int, ...]] = {
        "tp": _divisors(chips, tp_limit),
        "pp": _divisors(chips, n_layers),
        "cp": _divisors(chips, max_cp),
        "ep": _divisors(experts, chips) if experts else (1,),
        # Expert TP: unset (0: tp, Megatron-Core's default) or 1 (whole experts, what MoE
        # recipes set); nothing to split in a dense model.
        "etp": (0, 1) if experts else (0,),
        # Every interleave depth whose chunks hold at least one layer each (the "layers"
        # constraint): stages may be uneven, as in Plan.check, so vpp need not divide the
        # layers per stage (published runs use e.g. 94 layers at pp=4, vpp=12).
        "vpp": tuple(range(1, n_layers + 1)),
        "micro_batch": _divisors(global_batch),
        "offload": (0, 1) if offload else (0,),
        # The recompute modes of the stack (ocplan.plan.recompute) and the search code
        # "auto".
        "recompute": (*(LAYOUT["recompute"].code(m.name)
                        for m in searched_modes(stack, features)),
                      *(LAYOUT["recompute"].code(c) for c in LAYOUT["recompute"].search_codes)),
        # Options: 0 off (None), 1 the domain group (resolved below).
        "shard_group": (0, 1),
    }
    resolve = {"shard_group": lambda c: np.where(c["shard_group"] == 1, domain_group(c), 0)}
    fields = [f for f in LAYOUT_FIELDS if f.search == "axis"]
    assert set(rules) | set(resolve) <= {f.name for f in fields}, "rule for no axis"
    axes = _pin(tuple(Axis(f.name, rules[f.name] if f.name in rules else _declared_values(f),
                           resolve.get(f.name)) for f in fields), pinned or {}, name)

    constraints: tuple[Constraint, ...] = (
        Constraint("chips", ("tp", "pp", "cp"),
                   lambda c: chips % (c["tp"] * c["pp"] * c["cp"]) == 0),
        Constraint("heads", ("tp",), lambda c: (n_heads % c["tp"] == 0) & kv_split(c)),
        Constraint("sequence", ("cp",), lambda c: (c["cp"] == 1) | (seq_len % (2 * c["cp"]) == 0)),
        Constraint("batch", ("tp", "pp", "cp"), lambda c: global_batch % dp(c) == 0),
        Constraint("experts", ("ep", "etp", "tp", "pp", "cp"),
                   lambda c: (dp(c) * c["cp"] * c["tp"])
                   % (c["ep"] * np.where(c["etp"] == 0, c["tp"], c["etp"])) == 0),
        Constraint("duplicate", ("etp", "tp"), lambda c: (c["etp"] == 0) | (c["tp"] > 1),
                   "etp"),
        # Chunks hold a layer each, or the embedding or the loss (ends_as_layers: two
        # more places, checked once that axis exists).
        Constraint("layers", ("pp", "vpp"),
                   lambda c: (c["pp"] * c["vpp"]
                              <= split_places(n_layers, c["pp"], True, mtp_depth))
                   & ((c["vpp"] == 1) | (c["pp"] > 1))),
        Constraint("layers", ("pp", "vpp", "ends_as_layers"),
                   lambda c: c["pp"] * c["vpp"]
                   <= split_places(n_layers, c["pp"], c["ends_as_layers"], mtp_depth)),
        # Counting the ends as layers either keeps the fullest stage's layers (then it
        # is never slower and needs no more memory than the even split: the head costs
        # only its excess over a layer) or adds one (then it is never faster); with
        # p <= 2 it changes nothing. Without it the last stage holds what the others
        # leave (_head_stage), which gives the head more places but the first stage no
        # credit: neither dominates the other, so both stay where both exist.
        Constraint("dominated", ("ends_as_layers", "pp", "vpp"),
                   lambda c: np.where(c["ends_as_layers"] == 1,
                                      _ends_pay(n_layers, c["pp"], mtp_depth) == 1,
                                      (_ends_pay(n_layers, c["pp"], mtp_depth) == 0)
                                      | (_head_stage(n_layers, c["pp"], c["vpp"]) > 0)),
                   "ends_as_layers"),
        # An interleave depth whose largest chunk is that of a smaller depth (24 layers
        # in 11 chunks: chunks of 3, as in 8) has its bubble and more chunk transfers
        # (DerivedLayout.bubble_fraction); only the smallest depth of each chunk size is
        # kept, so the depths searched are the even splits and the most even others.
        # (Its in-flight activations are (p - 1) / (p v) x smaller at most: ignored.)
        Constraint("dominated", ("pp", "vpp"), lambda c: _least_depth(n_layers, c), "vpp"),
        Constraint("batch", ("micro_batch", "tp", "pp", "cp"),
                   lambda c: global_batch % (dp(c) * c["micro_batch"]) == 0),
        *([Constraint("batch", ("micro_batch", "tp", "pp", "cp"),
                      lambda c: (c["pp"] == 1) | ((local_batch % c["micro_batch"] == 0)
                                                  & (global_batch % (dp(c) * local_batch)
                                                     == 0)))]
          if local_batch is not None else []),
        Constraint("duplicate", ("zero", "tp", "pp", "cp"),
                   lambda c: (c["zero"] == 0) | (dp(c) * c["cp"] > 1), "zero"),
        Constraint("duplicate", ("sequence_parallel", "tp"),
                   lambda c: (c["sequence_parallel"] == 0) | (c["tp"] > 1),
                   "sequence_parallel"),
        Constraint("duplicate", ("tp_overlap", "tp"),
                   lambda c: (c["tp_overlap"] == 1) | (c["tp"] > 1), "tp_overlap"),
        Constraint("duplicate", ("dp_overlap", "tp", "pp", "cp"),
                   lambda c: (c["dp_overlap"] == 1) | (dp(c) * c["cp"] > 1), "dp_overlap"),
        # Dominated options, pruned with a reason instead of evaluated: in the engine,
        # overlapping communication has no cost, so "off" can only be slower; and with
        # fused attention selective recompute saves no memory but costs time (an unfused
        # core keeps its scores unless recomputed: below).
        Constraint("dominated", ("tp_overlap",), lambda c: c["tp_overlap"] == 1,
                   "tp_overlap"),
        Constraint("dominated", ("dp_overlap",), lambda c: c["dp_overlap"] == 1,
                   "dp_overlap"),
        Constraint("dominated", ("ep_overlap",), lambda c: c["ep_overlap"] == 1,
                   "ep_overlap"),
        *([Constraint("dominated", ("recompute",), lambda c: c["recompute"] != _SELECTIVE,
                      "recompute")] if fused_attention else []),
        # Hybrid sharding (a group, not 0): only with ZeRO, only when the domain group is
        # smaller than all data-parallel ranks, and only when it divides them.
        Constraint("duplicate", ("shard_group", "zero", "tp", "pp", "cp"),
                   lambda c: (c["shard_group"] == 0)
                   | ((c["zero"] >= 1) & (c["shard_group"] < dp(c) * c["cp"])),
                   "shard_group"),
        Constraint("divisibility", ("shard_group", "tp", "pp", "cp"),
                   lambda c: (c["shard_group"] == 0)
                   | ((dp(c) * c["cp"]) % np.maximum(c["shard_group"], 1) == 0)),
    )
    if pp_schedule is not None and pp_schedule.bidirectional:  # 1F1B states no condition
        constraints += (Constraint("schedule", ("micro_batch", "tp", "pp", "cp", "vpp",
                                                "ends_as_layers"),
                                   _schedule_fits(pp_schedule, n_layers, mtp_depth,
                                                  global_batch, dp, local_batch)),)
    if mixer is not None:  # a hybrid's recurrent mixer splits its heads over tp x cp
        split = mixer.splits
        constraints += (Constraint("heads", ("tp", "cp"),
                                   lambda c: split(c["tp"], c["cp"])),)
    def last_stage(c: Columns) -> np.ndarray:
        """The last stage's layers of a split without the ends counted (_head_stage)."""
        out: np.ndarray = np.where(c["ends_as_layers"] == 0,
                                   _head_stage(n_layers, c["pp"], c["vpp"]), 0)
        return out

    held = set(pinned or ())
    return SearchSpace(axes, tuple(c for c in constraints if c.subject not in held),
                       {"dp": dp, "last_stage_layers": last_stage}, name)


def _schedule_fits(s: PipelineSchedule, n_layers: int, mtp_depth: int, global_batch: int,
                   dp: Callable[[Columns], np.ndarray], local_batch: int | None
                   ) -> Callable[[Columns], np.ndarray]:
    """Which layouts the schedule ``s`` can run: those missing none of its conditions
    (:func:`~ocplan.plan.pipeline_schedules.unmet`, as :meth:`Plan.check` reads them)
    with the micro-batches of one run of it."""
    def keep(c: Columns) -> np.ndarray:
        batch = global_batch // dp(c) if local_batch is None else local_batch
        misses = unmet(s, c["pp"], c["vpp"], batch // c["micro_batch"],
                       split_places(n_layers, c["pp"], c["ends_as_layers"], mtp_depth))
        out: np.ndarray = ~np.logical_or.reduce(list(misses.values()))
        return out
    return keep


def _pin(axes: tuple[Axis, ...], pinned: Mapping[str, int], name: str) -> tuple[Axis, ...]:
    """``axes`` with each pinned one holding its pinned code alone; SpecError naming
    every pinned code an axis does not hold, with the values it does."""
    problems = []
    out = []
    for axis in axes:
        code = pinned.get(axis.name)
        if code is None:
            out.append(axis)
            continue
        f = LAYOUT[axis.name]
        assert f.pinnable, f"{axis.name} is no pinnable axis"
        assert axis.resolve is None, f"{axis.name}: a resolved axis holds options"
        if code not in axis.values:
            # a search code ("auto") is no value a caller can give
            tried = ", ".join(str(f.decode(v)) for v in axis.values
                              if f.kind != "choice" or v < len(f.choices))
            problems.append(Problem("search", axis.name, f"{name}: the search tries "
                                    f"{f.name} {tried} only", f.decode(code)))
        out.append(Axis(axis.name, (code,)))
    assert set(pinned) <= {a.name for a in axes}, f"pinned no axis: {set(pinned)}"
    if problems:
        raise SpecError(problems)
    return tuple(out)

