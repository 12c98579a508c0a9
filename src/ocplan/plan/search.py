"""Search: the best parallel layout for a job on a system, over a declared space.

Every candidate of :func:`~ocplan.plan.space.training_space` that survives the
constraints is evaluated by the same vectorized engine the scalar estimate uses
(:func:`ocplan.plan.engine.evaluate`), in chunks. Layouts that do not fit in memory are
counted as pruned by ``"memory"``. The top candidates are re-evaluated one by one with
:func:`~ocplan.plan.estimate.estimate` to give their full breakdowns (and the two paths
are asserted to agree on feasibility and step time).

A chip count that no layout can use on the system (:func:`~ocplan.plan.engine.check_system`:
a chip without a floating-point matrix unit, or chips in several scale-up domains with no
scale-out bandwidth) is not evaluated: its whole space is pruned under that reason
(``"precision"``, ``"network"``), as the scalar estimate would refuse every layout of it.
Memory is bounded by two guards, each a :class:`~ocplan.errors.SpecError` naming the
model, the count and the limit: a space whose growth would hold more than
:data:`~ocplan.plan.space.MAX_SPACE_ROWS` rows at once is refused before that step is
allocated, and a search whose chip counts leave more than :data:`MAX_CANDIDATES`
layouts to evaluate in all is refused before the per-layout arrays are.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np

from ocplan.catalog.fields import MAX_TOP_K
from ocplan.catalog.system import System
from ocplan.errors import Infeasible, Problem, SpecError
from ocplan.plan.calibration import Calibration, likely_range_note, load_calibration
from ocplan.plan.engine import check_system, evaluate, evaluate_memory, system_model
from ocplan.plan.estimate import Estimate, TimeBreakdown, estimate
from ocplan.plan.layout import LayoutValue, given_problems
from ocplan.plan.pipeline_schedules import schedule
from ocplan.plan.plan import (
    LAYOUT,
    RECOMPUTE_AUTO,
    SEARCH_GIVEN_LAYOUT,
    SEARCH_PINNABLE_LAYOUT,
    Plan,
)
from ocplan.plan.recompute import Stack, model_features, stack_of, whole_layer_mode
from ocplan.plan.search_defaults import DEFAULT_MEMORY_HEADROOM, TIE_TOLERANCE
from ocplan.plan.space import PREFERENCE_REASONS, Columns, SearchSpace, training_space
from ocplan.topology.power import power_budget
from ocplan.units import is_whole
from ocplan.workloads.workload import Workload

__all__ = ["FAILURE_OBJECTIVES", "OBJECTIVES", "SearchResult", "check_given",
           "failure_goodput", "pareto_front", "run_inputs_problems", "search"]

K = TypeVar("K")
V = TypeVar("V")
Objective = Literal["throughput", "time", "cost", "energy", "time_with_failures",
                    "cost_with_failures"]
OBJECTIVES: tuple[str, ...] = ("throughput", "time", "cost", "energy", "time_with_failures",
                               "cost_with_failures")
#: Ideal training time the failure overhead of a chip count is evaluated at, s: the
#: overhead of Daly's model, wall / ideal, does not depend on it (only the Poisson spread
#: does), so one evaluation per chip count serves every layout of that count.
_OVERHEAD_PROBE_S = 30 * 86400.0
#: Candidates evaluated per vectorized call (bounds memory to a few hundred MB).
CHUNK = 50_000
#: Threads that evaluate chunks at once (at most 4: beyond, memory traffic and the GIL
#: leave little to gain).
SEARCH_THREADS = min(4, os.cpu_count() or 1)
#: Most layouts one search evaluates, over all its chip counts. Each costs about 115
#: bytes for the whole search (its columns in narrow integer types, step time, memory,
#: recompute layers, fit flag, then score, order and index when ranking; measured: the
#: largest validation search, Qwen3-235B on 256 chips, evaluates 5.05 million layouts at a
#: tracemalloc peak of 0.55 GiB), so 24 million keeps a search under ~3 GiB. It admits
#: the whole space of DeepSeek-V3 on 2,048 chips (global batch 15,360: 20.9 million
#: layouts, 22 s on two cores at a peak RSS of 1.85 GB, session 80), which 8 million,
#: the earlier limit, refused.
MAX_CANDIDATES = 24_000_000
#: Step-time difference under which two layouts are called a tie in the "why" text (well
#: below the model's accuracy).
TIE_FRACTION = 0.0005
#: Tokens assumed for time/energy/cost objectives when none are given (1 trillion).
DEFAULT_TRAIN_TOKENS = 1e12

#: Variants listed per row.
MAX_VARIANTS = 8
_NONE = LAYOUT["recompute"].code("none")


@dataclass(frozen=True)
class SearchResult:
    """What a search found, and how every layout of the space was accounted for.

    ``space_size`` is the full cartesian product of the axes. ``pruned`` counts, by
    reason, the layouts removed before evaluation (the space's constraints, in units of
    full-space points) and after it: ``"memory"`` (does not fit, even with the fewest
    layers recomputed for ``auto``) and, within ``"duplicate"``, ``auto`` recompute
    rows equal to the none or full rows. ``evaluated`` counts the layouts left by the
    constraints, each run through the engine; ``feasible`` those that fit. So
    ``sum(pruned.values()) + feasible == space_size`` and ``feasible <= evaluated``;
    ``evaluated - feasible`` of the pruned layouts were counted after evaluation.
    """

    objective: str
    best: Estimate | None
    top: tuple[Estimate, ...]
    space_size: int
    pruned: Mapping[str, int]
    evaluated: int
    feasible: int
    elapsed_s: float
    why: str
    pareto: tuple[Mapping[str, float], ...]
    """Non-dominated layouts for (step time, memory per chip), both minimized."""
    memory_headroom: float = 0.0
    """Fraction of HBM every listed layout leaves free."""
    variants: tuple[tuple[str, ...], ...] = ()
    """Per row of ``top``: labels of layouts tied with it (at most :data:`MAX_VARIANTS`)."""
    tied: tuple[int, ...] = ()
    """Per row of ``top``: how many layouts tie with it within :data:`TIE_TOLERANCE`."""
    train_tokens: float | None = None
    """Tokens to train on, when given: rows then carry time (and cost) to train."""
    price_per_chip_hour: float | None = None
    failure_factors: Mapping[int, float] = field(default_factory=lambda: FrozenMap({}))
    """For the failure-aware objectives: per chip count, the wall time with failures,
    checkpoints and restarts over the time without (1 / goodput), the factor the
    ranking used; ``inf`` where a run makes no progress."""

    @property
    def best_ends(self) -> bool:
        """Whether there is a best layout and a run of it ends: not when failures come
        faster than checkpoints (its failure factor is infinite)."""
        if self.best is None:
            return False
        return math.isfinite(self.failure_factors.get(self.best.chips, 1.0))

    def to_train(self, e: Estimate) -> dict[str, float | None]:
        """Time (and, with a price, cost) to train :attr:`train_tokens` at ``e``; for a
        failure-aware objective, also both with failures (what the rows are ranked by;
        None where a run makes no progress, so never ends)."""
        if self.train_tokens is None:
            return {}
        time_s = e.time_to_train_s(self.train_tokens)
        out: dict[str, float | None] = {"time_to_train_s": time_s}
        cost = None
        if self.price_per_chip_hour is not None:
            cost = out["cost_to_train"] = e.cost(self.train_tokens, self.price_per_chip_hour)
        factor = self.failure_factors.get(e.chips)
        if factor is not None:
            ends = math.isfinite(factor)
            out["time_to_train_with_failures_s"] = time_s * factor if ends else None
            if cost is not None:
                out["cost_to_train_with_failures"] = cost * factor if ends else None
        return out

    def as_json(self) -> dict[str, Any]:
        def row(e: Estimate, i: int | None = None) -> dict[str, Any]:
            assert e.memory is not None
            extra: dict[str, Any] = {}
            if i is not None and i < len(self.variants):
                extra = {"tied": self.tied[i], "variants": list(self.variants[i])}
            return e.plan.as_dict() | {
                "layout": e.plan.label(), "chips": e.chips,
                "tokens_per_s_per_chip": e.tokens_per_s_per_chip, "mfu": e.mfu,
                "step_s": e.step_s, "memory_bytes_per_chip": e.memory.total_bytes,
                "bound": e.bound, "time": asdict(e.time) if e.time else None,
                "caveats": list(e.caveats)} | self.to_train(e) | extra
        return {
            "objective": self.objective,
            "tie_tolerance": TIE_TOLERANCE,
            "best": row(self.best, 0) if self.best else None,
            "top": [row(e, i) for i, e in enumerate(self.top)],
            "space_size": self.space_size,
            "pruned": dict(self.pruned),
            "evaluated": self.evaluated,
            "feasible": self.feasible,
            "elapsed_s": self.elapsed_s,
            "why": self.why,
            "pareto": [dict(p) for p in self.pareto],
            "memory_headroom": self.memory_headroom,
        }


class FrozenMap(Mapping[K, V]):
    """A read-only mapping (a frozen result's parts must not change either) that, unlike
    ``types.MappingProxyType``, pickles: results cross process pools (searches of a
    sweep, the robustness tests' workers)."""

    def __init__(self, data: Mapping[K, V]) -> None:
        self._data = dict(data)

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


def pareto_front(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Indices of the points not dominated when minimizing both ``a`` and ``b`` (of
    equal points, one)."""
    order = np.lexsort((b, a))
    if order.size == 0:
        return order.astype(np.int64)
    bs = np.asarray(b, dtype=np.float64)[order]
    # sorted by a (then b): a point is on the front when its b is below every b before
    # it; the first point is on the front, even at b = inf
    before = np.minimum.accumulate(np.concatenate(([np.inf], bs[:-1])))
    keep = bs < before
    keep[0] = True
    return order[keep].astype(np.int64)


def _eval_columns(wl: Workload, system: System, cal: Calibration,
                  lay: Plan) -> dict[str, np.ndarray]:
    """Every step term of the layouts of ``lay``, a :meth:`~ocplan.plan.plan.Plan.columns`
    plan (the search's candidate columns are named and encoded as its fields)."""
    out: dict[str, np.ndarray] = dict(evaluate(wl, system_model(system), cal, lay).items())
    return out


def _memory(wl: Workload, system: System, cal: Calibration, lay: Plan) -> np.ndarray:
    """Bytes per chip of the layouts of ``lay`` (the engine's memory terms alone)."""
    out: np.ndarray = evaluate_memory(wl, system_model(system), cal, lay).memory_bytes
    return out


def _auto_recompute(wl: Workload, system: System, cal: Calibration, c: Columns,
                    m0: np.ndarray, cap: float,
                    full: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Layers per stage to recompute in full for the ``auto`` rows (0 for the others),
    which rows are kept, and which are duplicates: auto equal to none (fits without
    recompute) or to full (needs every layer recomputed). Auto not fitting even with
    full recompute is dropped. ``m0`` is the memory of the rows with auto as none;
    ``full`` the code of the stack's whole-layer mode."""
    auto = c["recompute"] == RECOMPUTE_AUTO
    layers_kept = np.zeros(len(auto), dtype=np.int16)  # at most MAX_LAYERS
    keep = ~auto
    dup = np.zeros(len(auto), dtype=bool)
    if not auto.any():
        return layers_kept, keep, dup
    sub = {k: v[auto] for k, v in c.items()}
    m1 = _memory(wl, system, cal, Plan.columns(**(sub | {"recompute": full})))
    m0 = m0[auto]
    per_stage = np.ceil(wl.model.n_layers / sub["pp"])
    saved = np.maximum((m0 - m1) / per_stage, 1.0)
    layers = np.clip(np.ceil((m0 - cap) / saved), 1, per_stage)
    fits0, fits1 = m0 <= cap, m1 <= cap
    kept = ~fits0 & fits1 & (layers < per_stage)
    keep[auto] = kept
    dup[auto] = fits0 | (fits1 & (layers >= per_stage))
    layers_kept[auto] = np.where(kept, layers, 0)
    return layers_kept, keep, dup


def _replace_rows(values: np.ndarray, rows: np.ndarray, new: np.ndarray) -> np.ndarray:
    """``values`` with the ``rows`` (a mask) replaced by ``new`` (one per masked row)."""
    out = np.array(np.broadcast_to(values, rows.shape), dtype=np.result_type(values, new))
    out[rows] = new
    return out


@dataclass(frozen=True)
class _Evaluated:
    """The evaluated space of one chip count. ``cols`` are the candidates with the
    ``auto`` rows that fit turned into full recompute of ``recompute_layers`` layers, so
    that :meth:`~ocplan.plan.plan.Plan.decode_row` gives each layout that fits."""

    chips: int
    cols: Columns
    step: np.ndarray
    mem: np.ndarray
    fits: np.ndarray
    pruned: dict[str, int]
    size: int


def _space(workload: Workload, system: System, chips: int,
           allow_offload: bool, pinned: Mapping[str, int] | None = None,
           held: Mapping[str, int] | None = None) -> SearchSpace:
    """The layout space of one chip count; ``held``: the encoded fields the search holds
    fixed (an unfused attention core makes selective recompute worth searching)."""
    m = workload.model
    fused = LAYOUT["fused_attention"]
    sched = LAYOUT["pp_schedule"]
    schedule_name = sched.decode((held or {}).get(sched.name, sched.encode(sched.default)))
    return training_space(chips=chips, n_layers=m.n_layers, n_heads=m.n_heads,
                          n_kv_heads=m.n_kv_heads, seq_len=workload.seq_len,
                          global_batch=workload.global_batch, domain=system.chips_per_server,
                          experts=m.moe_experts, features=model_features(m),
                          mixer=m.mixer, offload=allow_offload,
                          stack=_stack(system), pinned=pinned, mtp_depth=m.mtp_depth,
                          fused_attention=bool((held or {}).get(
                              fused.name, fused.encode(fused.default))),
                          pp_schedule=schedule(str(schedule_name)),
                          # an optional number's code is itself, 0 for None
                          local_batch=(held or {}).get("local_batch", 0) or None,
                          name=f"model '{m.name}' on {chips} chips")


def _stack(system: System) -> Stack:
    """The software stack of the system's chip (:func:`~ocplan.plan.recompute.stack_of`)."""
    return stack_of(system_model(system).family)


def _given_codes(fixed: Mapping[str, LayoutValue], source: str
                 ) -> tuple[dict[str, int], dict[str, int]]:
    """The encoded values of a search's given fields: (held stack fields, pinned axes);
    SpecError naming every field a search does not take, or whose value its declaration
    refuses."""
    problems = given_problems(fixed, SEARCH_GIVEN_LAYOUT, "a search takes as given")
    if problems:
        raise SpecError([Problem(source, name, message, fixed[name])
                         for name, message in problems])
    codes = {name: LAYOUT[name].encode(value) for name, value in fixed.items()}
    axes = {f.name for f in SEARCH_PINNABLE_LAYOUT}
    return ({k: v for k, v in codes.items() if k not in axes},
            {k: v for k, v in codes.items() if k in axes})


def _values_taken(cols: Mapping[str, np.ndarray], space: SearchSpace) -> dict[str, int]:
    """How many values each searched layout field takes among the candidates ``cols``
    (integers of a modest range, codes and sizes, so a count per value from the
    smallest is cheap at millions of rows)."""
    def taken(col: np.ndarray) -> int:
        codes = col.astype(np.int64)
        return int(np.count_nonzero(np.bincount(codes - codes.min()))) if codes.size else 0

    return {a.name: taken(cols[a.name]) for a in space.axes
            if a.name in cols and len(a.values) > 1}


def _evaluate_space(workload: Workload, system: System, cal: Calibration, chips: int,
                    allow_offload: bool, memory_headroom: float,
                    progress: Callable[[int, int], None] | None,
                    budget: int = MAX_CANDIDATES, threads: int | None = None,
                    held: Mapping[str, int] | None = None,
                    pinned: Mapping[str, int] | None = None) -> _Evaluated:
    """Evaluate the space of one chip count, every layout with the encoded fixed fields
    ``held`` and the ``pinned`` axis values (:func:`_given_codes`); refuse (SpecError)
    when it leaves more than ``budget`` layouts (what is left of
    :data:`MAX_CANDIDATES`) to evaluate."""
    space = _space(workload, system, chips, allow_offload, pinned, held)
    cols, pruned = space.candidates()
    n = len(cols["tp"])
    # a held field is one value for every row: a read-only view, not n copies of it
    cols |= {name: np.broadcast_to(np.int64(code), (n,)) for name, code in (held or {}).items()}
    if n > budget:
        narrower = space.narrowing(_values_taken(cols, space))
        raise SpecError.one("search", "space", f"{space.name}: {n:,} layouts to evaluate "
                            f"(with {MAX_CANDIDATES - budget:,} of other chip counts), over "
                            f"the limit of {MAX_CANDIDATES:,}; "
                            + (f"{narrower}, or fewer chip counts" if narrower
                               else "fewer chip counts make it smaller"))
    step = np.full(n, np.inf)
    mem = np.full(n, np.inf)
    rc_layers = np.zeros(n, dtype=np.int16)
    fits = np.zeros(n, dtype=bool)
    cap = system_model(system).hbm_bytes
    usable = _usable_bytes(system, memory_headroom)
    full = LAYOUT["recompute"].code(whole_layer_mode(_stack(system)).name)

    def run(sl: slice) -> tuple[int, int]:
        """Evaluate rows ``sl`` into the shared arrays (each chunk writes only its own
        rows); (duplicates, pruned for memory) of the chunk."""
        c = {k: v[sl] for k, v in cols.items()}
        # Memory first: only the layouts that fit are timed (the terms are elementwise,
        # so timing a subset gives the same values). auto rows are first sized without
        # recompute, to find what they must save.
        auto_as_none = np.where(c["recompute"] == RECOMPUTE_AUTO, _NONE, c["recompute"])
        final = c | {"recompute": auto_as_none}
        m = _memory(workload, system, cal, Plan.columns(**final))
        # auto rows equal to the none or full rows are duplicates (see _auto_recompute).
        layers, keep, dup = _auto_recompute(workload, system, cal, c, m, cap, full)
        redo = layers > 0
        if redo.any():
            final = final | {"recompute": np.where(redo, full, auto_as_none),
                             "recompute_layers": layers}
            m = _replace_rows(m, redo, _memory(workload, system, cal, Plan.columns(
                **{k: v[redo] for k, v in final.items()})))
        rc_layers[sl] = layers
        ok = keep & (m <= usable)
        mem[sl] = m
        fits[sl] = ok
        if ok.any():  # a chunk where nothing fits has nothing to time
            timed = _eval_columns(workload, system, cal, Plan.columns(
                **{k: v[ok] for k, v in final.items()}))
            step[sl] = _replace_rows(np.full(len(ok), np.inf), ok, timed["step_s"])
            assert np.isfinite(timed["step_s"]).all(), (
                f"engine bug: a layout of {workload.model.name} on {chips} x "
                f"{system.accelerator.id} fits but has a non-finite step time")
        return int(dup.sum()), int((~ok & ~dup).sum())

    for dups, over in _run_chunks(run, n, threads, progress):
        pruned["duplicate"] = pruned.get("duplicate", 0) + dups
        pruned["memory"] = pruned.get("memory", 0) + over
    # The auto rows kept are full recompute of so many layers; the others never fit.
    cols["recompute"] = np.where(rc_layers > 0, full, cols["recompute"]).astype(
        cols["recompute"].dtype)
    cols["recompute_layers"] = rc_layers
    return _Evaluated(chips, cols, step, mem, fits, pruned, space.size)


def _run_chunks(run: Callable[[slice], tuple[int, int]], n: int, threads: int | None,
                progress: Callable[[int, int], None] | None) -> list[tuple[int, int]]:
    """``run`` over ``n`` rows in chunks of :data:`CHUNK`, on up to ``threads`` threads
    (default :data:`SEARCH_THREADS`), calling ``progress(done, n)`` as chunks finish;
    each chunk's counts, in chunk order.

    numpy releases the GIL inside its array loops, where a chunk spends most of its time,
    so chunks run side by side on several cores. Chunks write disjoint rows and the counts
    come back in chunk order, so the result is the sequential one, bit for bit (tested)."""
    chunks = [slice(start, min(n, start + CHUNK)) for start in range(0, n, CHUNK)]
    workers = min(threads if threads is not None else SEARCH_THREADS, len(chunks))
    if workers <= 1:
        counts = []
        for sl in chunks:
            counts.append(run(sl))
            if progress is not None:
                progress(sl.stop, n)
        return counts
    found: dict[int, tuple[int, int]] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run, sl): i for i, sl in enumerate(chunks)}
        done = 0
        try:
            for future in as_completed(futures):
                i = futures[future]
                found[i] = future.result()
                done += chunks[i].stop - chunks[i].start
                if progress is not None:
                    progress(done, n)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return [found[i] for i in range(len(chunks))]


#: The objectives that rank by time or cost with failures, checkpoints and restarts.
FAILURE_OBJECTIVES: tuple[str, ...] = tuple(o for o in OBJECTIVES if o.endswith("_with_failures"))


def run_inputs_problems(objective: str, train_tokens: float | None,
                        price_per_chip_hour: float | Sequence[float] | None,
                        systems: Sequence[tuple[str, System]], source: str) -> list[Problem]:
    """What a training run's money inputs and objective lack, every problem at once: a
    price prices the tokens to train (without them no cost is shown, and the ranking
    is the same at any price), so it needs them; a failure-aware objective counts the
    failures of that run, so it needs its tokens and each system's checkpoint storage
    (no bandwidth is invented). ``systems``: (name, system) pairs. Shared by the
    search, the comparison, the sweep and the API's request checks, so a request is
    refused when it is read, not when its job runs."""
    problems: list[Problem] = []
    if price_per_chip_hour is not None and train_tokens is None:
        prices = ((price_per_chip_hour,) if isinstance(price_per_chip_hour, float | int)
                  else tuple(price_per_chip_hour))
        shown = prices[0] if len(prices) == 1 else ",".join(map(str, prices))
        problems.append(Problem(source, "price_per_chip_hour",
                                "needs train_tokens (the run it prices)", shown))
    if objective in FAILURE_OBJECTIVES:
        if train_tokens is None:
            problems.append(Problem(source, "objective", "needs train_tokens (the run whose "
                                                         "failures it counts)", objective))
        bare = sorted({name for name, s in systems if s.spec.storage is None})
        if bare:
            problems.append(_no_storage(objective, bare, source))
    return problems


def _no_storage(objective: str, names: Sequence[str], source: str) -> Problem:
    """A failure-aware ``objective`` on the systems ``names``, which name no checkpoint
    storage."""
    return Problem(source, "objective", f"the failure-aware objectives need each system's "
                   f"checkpoint storage; {', '.join(names)} names none (add storage: kind, "
                   "write_bandwidth, read_bandwidth to its system file; a chip id's default "
                   "system has none)", objective)


def failure_goodput(workload: Workload, system: System, chips: int,
                    objective: str = "time_with_failures") -> float:
    """Goodput of a job on ``chips`` chips of ``system`` under failures, checkpoints and
    restarts (:func:`ocplan.reliability.goodput` at its optimal checkpoint interval), for
    the failure-aware objectives. SpecError when the system file names no checkpoint
    storage (no bandwidth is invented)."""
    from ocplan.reliability import checkpoint_bytes, counts_for_chips, goodput

    storage = system.spec.storage
    if storage is None:  # search() refuses it first (run_inputs_problems)
        raise SpecError([_no_storage(objective, [system.spec.name], "--objective")])
    found = goodput(_OVERHEAD_PROBE_S, counts_for_chips(system, chips),
                    checkpoint_bytes(workload.model.total_params), storage)
    return max(found.goodput, 0.0)


@dataclass
class _Sweep:
    """What the chip counts of one search gave, gathered count by count: the evaluated
    spaces and their scores (lower is better), the layouts pruned by reason, the reasons
    whole counts were refused or ranked last, each count's failure factor and the full
    space size."""

    parts: list[_Evaluated] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)
    pruned: dict[str, int] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    factors: dict[int, float] = field(default_factory=dict)
    size: int = 0

    def prune(self, reason: str, n: int) -> None:
        """Count ``n`` layouts as pruned for ``reason``."""
        self.pruned[reason] = self.pruned.get(reason, 0) + n


def search(workload: Workload, system: System, chips: int, *,
           objective: str = "throughput", top_k: int = 5,
           train_tokens: float | None = None, price_per_chip_hour: float | None = None,
           calibration: Calibration | None = None, allow_offload: bool = False,
           chip_counts: Sequence[int] | None = None, max_power_W: float | None = None,
           memory_headroom: float = DEFAULT_MEMORY_HEADROOM,
           fixed: Mapping[str, LayoutValue] | None = None,
           progress: Callable[[int, int], None] | None = None,
           source: str = "search") -> SearchResult:
    """Find the best layouts of ``workload`` on ``chips`` chips of ``system``.

    Parameters
    ----------
    objective
        ``throughput`` (max tokens/s), ``time`` (min time to train ``train_tokens``),
        ``cost`` (min chips x price x time), ``energy`` (min TDP energy), or
        ``time_with_failures`` / ``cost_with_failures``: the same with the expected
        overhead of failures, checkpoints and restarts of each chip count
        (:func:`failure_goodput`; needs the system file's ``storage``).
    allow_offload
        Also try keeping activations in host memory (host memory capacity is not in the
        catalog, so this is off unless asked for).
    chip_counts
        Chip counts to search over (each at most ``chips``); default ``[chips]``. With
        several, cost and energy objectives can prefer fewer chips.
    max_power_W
        Counts whose IT power at TDP (the chips' share of the system, switches included)
        exceeds this are pruned as ``power``.
    memory_headroom
        Fraction of HBM to keep free (0.1 = layouts must fit in 90 % of it); default
        :data:`DEFAULT_MEMORY_HEADROOM`.
    fixed
        Values of fields the search does not vary
        (:data:`~ocplan.plan.plan.SEARCH_FIXED_LAYOUT`: what the software stack does,
        such as ``grad_reduce_bf16`` or ``ep_dedup``); every layout takes them. Fields not
        given keep their declared defaults.
    progress
        Called with (done, total) candidates after each evaluated chunk.
    source
        Where ``fixed`` came from, named by the SpecError of a bad one (``request``,
        the CLI's flags).
    """
    counts = _checked_counts(system, chips, chip_counts, objective, top_k, memory_headroom)
    if problems := run_inputs_problems(objective, train_tokens, price_per_chip_hour,
                                       [(system.spec.name, system)], source):
        raise SpecError(problems)
    held, pinned = _given_codes(fixed or {}, source)
    counts, unpinnable = _pinnable_counts(workload, system, counts, allow_offload, pinned,
                                          source)
    t0 = time.perf_counter()
    cal = calibration or load_calibration()
    sweep = _Sweep(refused=list(unpinnable))
    it_W = power_budget(system).it_W
    for count in counts:
        power_W = it_W * count / system.num_chips
        if not _count_runs(sweep, workload, system, count, power_W, max_power_W,
                           allow_offload, pinned, held):
            continue
        ev = _evaluate_space(workload, system, cal, count, allow_offload, memory_headroom,
                             progress, MAX_CANDIDATES - sum(len(p.step) for p in sweep.parts),
                             held=held, pinned=pinned)
        sweep.parts.append(ev)
        sweep.size += ev.size
        for reason, n in ev.pruned.items():
            sweep.prune(reason, n)
        sweep.scores.append(_scores(sweep, workload, system, ev, objective,
                                    train_tokens or DEFAULT_TRAIN_TOKENS,
                                    price_per_chip_hour, power_W))
    parts = sweep.parts
    if pinned and parts and not sum(len(ev.step) for ev in parts):
        raise _pins_leave_nothing(parts, pinned, fixed or {}, counts, source)
    starts, groups = _ranked_groups(parts, sweep.scores, top_k)
    top = _scalar_top(workload, system, cal, parts, starts, [g[0] for g in groups])
    variants = tuple(tuple(_row_plan(parts, starts, o).label() for o in g[1:1 + MAX_VARIANTS])
                     for g in groups)
    return SearchResult(objective, top[0] if top else None, top, sweep.size,
                        FrozenMap(sweep.pruned), sum(len(ev.step) for ev in parts),
                        sum(int(ev.fits.sum()) for ev in parts), time.perf_counter() - t0,
                        _why(top, sweep.refused, _least_memory(parts),
                             _usable_bytes(system, memory_headroom)),
                        _pareto(parts), memory_headroom, variants,
                        tuple(len(g) - 1 for g in groups), train_tokens,
                        price_per_chip_hour if train_tokens is not None else None,
                        FrozenMap(sweep.factors))


def _checked_counts(system: System, chips: int, chip_counts: Sequence[int] | None,
                    objective: str, top_k: int, memory_headroom: float) -> list[int]:
    """The sorted chip counts a search covers; SpecError (the first problem, named by its
    flag) for an unknown objective, a ``top_k`` or ``memory_headroom`` out of bounds, or a
    count that is not a whole number of the system's chips."""
    if objective not in OBJECTIVES:
        raise SpecError.one("--objective", "objective", f"expected one of "
                                                        f"{', '.join(OBJECTIVES)}", objective)
    if not 1 <= top_k <= MAX_TOP_K:
        raise SpecError.one("--top", "top", f"must be between 1 and {MAX_TOP_K}", top_k)
    if not 0.0 <= memory_headroom < 1.0:
        raise SpecError.one("--memory-headroom", "memory_headroom", "must be in [0, 1)",
                            memory_headroom)
    named = [("--chips", "chips", chips),
             *(("--chip-counts", "chip_counts", c) for c in chip_counts or ())]
    for flag, name, count in named:
        if not (is_whole(count) and 1 <= count <= system.num_chips):
            raise SpecError.one(flag, name, f"must be between 1 and the system's "
                                            f"{system.num_chips} chips", count)
    return sorted(set(chip_counts or [chips]))


def _count_runs(sweep: _Sweep, workload: Workload, system: System, count: int,
                power_W: float, max_power_W: float | None, allow_offload: bool,
                pinned: Mapping[str, int], held: Mapping[str, int]) -> bool:
    """Whether any layout of ``count`` chips can run: not when the count's IT power at
    TDP (``power_W``) is over ``max_power_W``, nor when the system refuses every layout
    of it (:func:`~ocplan.plan.engine.check_system`, as the scalar estimate would). A
    refused count's whole space is pruned in ``sweep`` under its reason, with the
    reason's sentence."""
    reason = sentence = ""
    if max_power_W is not None and power_W > max_power_W:
        reason = "power"
        sentence = (f"power: {count} chips draw {power_W / 1e3:,.1f} kW of IT power at "
                    f"TDP, over the limit of {max_power_W / 1e3:,.1f} kW")
    else:
        try:
            check_system(workload, system_model(system), count)
        except Infeasible as exc:
            reason, sentence = exc.reason, str(exc)
    if not reason:
        return True
    n = _space(workload, system, count, allow_offload, pinned, held).size
    sweep.prune(reason, n)
    sweep.size += n
    sweep.refused.append(sentence)
    return False


def _scores(sweep: _Sweep, workload: Workload, system: System, ev: _Evaluated,
            objective: str, tokens: float, price_per_chip_hour: float | None,
            power_W: float) -> np.ndarray:
    """Each evaluated layout's score under ``objective``, lower is better: minus its
    tokens/s for ``throughput``; else its rate of time, cost (``count x price / 3600``
    per second; chip-hours without a price) or energy (``power_W``) times the seconds to
    train ``tokens``, times the count's failure factor (wall / ideal time, recorded in
    ``sweep``) for the failure-aware objectives. A layout that does not run scores
    +inf whatever the price (a price of 0 must not turn 0 x inf into NaN)."""
    with np.errstate(divide="ignore"):
        tps = workload.tokens_per_step / ev.step
    if objective == "throughput":
        return -tps
    runs = tps > 0
    seconds = tokens / np.where(runs, tps, 1.0)
    price = 1.0 if price_per_chip_hour is None else price_per_chip_hour
    per_second = {"time": 1.0, "cost": ev.chips * price / 3600.0, "energy": power_W}
    if objective in FAILURE_OBJECTIVES:
        factor = sweep.factors[ev.chips] = _failure_factor(sweep, workload, system,
                                                           ev.chips, objective)
        rate = per_second[objective.removesuffix("_with_failures")]
        return np.where(runs, rate * factor * seconds, np.inf) if math.isfinite(factor) \
            else np.full(len(ev.step), np.inf)
    return np.where(runs, per_second[objective] * seconds, np.inf)


def _failure_factor(sweep: _Sweep, workload: Workload, system: System, count: int,
                    objective: str) -> float:
    """Wall time with failures, checkpoints and restarts over the ideal time of ``count``
    chips (1 / goodput under Daly's model at its optimal interval,
    :func:`failure_goodput`); ``inf`` when failures outpace checkpoints, so a run never
    ends (the reason goes to ``sweep``)."""
    found = failure_goodput(workload, system, count, objective)
    if found > 0:
        return 1.0 / found
    sweep.refused.append(f"{count} chips: failures come faster than checkpoints can be "
                         "written and read back, so a run makes no progress (faster "
                         "checkpoint storage, or fewer chips)")
    return math.inf


def _pins_leave_nothing(parts: Sequence[_Evaluated], pinned: Mapping[str, int],
                        fixed: Mapping[str, LayoutValue], counts: Sequence[int],
                        source: str) -> SpecError:
    """The SpecError for pinned fields that leave no layout to evaluate (bad input, not
    an infeasible design): every layout broke a rule of the space, named here."""
    rules = sorted({k for ev in parts for k in ev.pruned if k not in PREFERENCE_REASONS})
    given = ", ".join(f"{k}={fixed[k]}" for k in pinned)
    return SpecError.one(source, next(iter(pinned)),
                         f"no layout of {_counted(counts)} chips takes {given}: every one "
                         f"breaks a rule ({', '.join(rules)})", given)


def _ranked_groups(parts: Sequence[_Evaluated], scores: Sequence[np.ndarray], top_k: int
                   ) -> tuple[np.ndarray, list[list[int]]]:
    """Where each part's rows start in the concatenation of all parts, and the first
    ``top_k`` tie groups of the layouts that fit (:func:`_tie_groups`), best first. Only
    the layouts that fit are sorted (a MoE space holds several times more that do not);
    equal scores (runs that never end with failures score inf alike) go by the step, the
    faster first, then by position, as the sort is stable."""
    starts = np.cumsum([0, *(len(ev.step) for ev in parts)])
    if not parts:
        return starts, []
    all_scores = np.concatenate(scores)
    fit_rows = np.flatnonzero(np.concatenate([ev.fits for ev in parts]))
    steps = np.concatenate([ev.step for ev in parts])
    ranked = fit_rows[np.lexsort((steps[fit_rows], all_scores[fit_rows]))]
    return starts, _tie_groups(all_scores, ranked, top_k)


def _located(parts: Sequence[_Evaluated], starts: np.ndarray, o: int
             ) -> tuple[_Evaluated, int]:
    """The part a concatenated row ``o`` belongs to, and its index there (looked up for
    the few rows listed, not laid out for every row)."""
    j = int(np.searchsorted(starts, o, side="right")) - 1
    return parts[j], o - int(starts[j])


def _row_plan(parts: Sequence[_Evaluated], starts: np.ndarray, o: int) -> Plan:
    """The layout of concatenated row ``o``."""
    ev, i = _located(parts, starts, o)
    return Plan.decode_row(ev.cols, i)


def _scalar_top(workload: Workload, system: System, cal: Calibration,
                parts: Sequence[_Evaluated], starts: np.ndarray, order: Sequence[int]
                ) -> tuple[Estimate, ...]:
    """The full estimates of the listed rows, each asserted to agree with the vectorized
    evaluation on feasibility and step time (the two paths are one engine)."""
    top = []
    for o in order:
        ev, i = _located(parts, starts, o)
        assert ev.fits[i]
        e = estimate(workload, Plan.decode_row(ev.cols, i), system, cal)
        assert e.feasible, f"a searched layout failed its scalar estimate: {e.plan}: {e.reason}"
        assert math.isclose(e.step_s, ev.step[i], rel_tol=1e-9), (
            f"scalar and vectorized disagree on {e.plan}: {e.step_s} s against {ev.step[i]} s")
        top.append(e)
    return tuple(top)


def _pareto(parts: Sequence[_Evaluated]) -> tuple[Mapping[str, float], ...]:
    """The first 50 layouts that fit on the (step time, memory per chip) front, both
    minimized, over every chip count."""
    if not any(ev.fits.any() for ev in parts):
        return ()
    steps = np.concatenate([ev.step[ev.fits] for ev in parts])
    mems = np.concatenate([ev.mem[ev.fits] for ev in parts])
    n_chips = np.concatenate([np.full(int(ev.fits.sum()), ev.chips) for ev in parts])
    return tuple(FrozenMap({"step_s": float(steps[j]), "memory_bytes_per_chip": float(mems[j]),
                            "chips": int(n_chips[j])})
                 for j in pareto_front(steps, mems)[:50])


def check_given(workload: Workload, system: System, chip_counts: Sequence[int],
                fixed: Mapping[str, LayoutValue], allow_offload: bool = False,
                source: str = "search") -> None:
    """The SpecError :func:`search` raises for its ``fixed`` fields (a field it does not
    take, a bad value, a pinned value no chip count's space holds), raised without
    searching: a request is refused when it is read."""
    _, pinned = _given_codes(fixed, source)
    _pinnable_counts(workload, system, sorted(set(chip_counts)), allow_offload, pinned, source)


def _pinnable_counts(workload: Workload, system: System, counts: list[int],
                     allow_offload: bool, pinned: Mapping[str, int], source: str
                     ) -> tuple[list[int], tuple[str, ...]]:
    """The chip counts whose spaces hold every ``pinned`` value, and why each other count
    is left out; SpecError (every count's problems, from ``source``) when none does."""
    if not pinned:
        return counts, ()
    kept: list[int] = []
    problems: list[Problem] = []
    for count in counts:
        try:
            _space(workload, system, count, allow_offload, pinned)
            kept.append(count)
        except SpecError as exc:
            problems += [dataclasses.replace(p, source=source) for p in exc.problems]
    if not kept:
        raise SpecError(problems)
    return kept, tuple(f"pinned {p.field}={p.value}: {p.message}" for p in problems)


def _counted(counts: Sequence[int]) -> str:
    """``8``, or ``8 or 16`` for several chip counts."""
    return " or ".join(f"{c:,}" for c in counts)


def _tie_groups(scores: np.ndarray, ranked: np.ndarray, top_k: int) -> list[list[int]]:
    """The first ``top_k`` groups of ``ranked`` (best first) whose scores lie within
    :data:`TIE_TOLERANCE` of their group's leader: layouts that differ only in how the
    same work is reshuffled (dp against cp, ZeRO stages of equal time) form one row."""
    groups: list[list[int]] = []
    lead = 0.0
    for o in ranked:
        s = float(scores[o])
        if groups and abs(s - lead) <= TIE_TOLERANCE * abs(lead):
            groups[-1].append(int(o))
            continue
        if len(groups) == top_k:
            break
        groups.append([int(o)])
        lead = s
    return groups


def _usable_bytes(system: System, memory_headroom: float) -> float:
    """HBM bytes per chip a layout may fill: the capacity less the headroom kept free."""
    return system_model(system).hbm_bytes * (1.0 - memory_headroom)


def _least_memory(parts: Sequence[_Evaluated]) -> float | None:
    """Bytes per chip of the evaluated layout that needs the least (None: none was)."""
    finite = [float(ev.mem[np.isfinite(ev.mem)].min()) for ev in parts
              if np.isfinite(ev.mem).any()]
    return min(finite, default=None)


def _why(top: tuple[Estimate, ...], refused: Sequence[str] = (),
         least_memory_B: float | None = None, usable_B: float | None = None) -> str:
    """One paragraph on the winner: what dominates its step, and what the runner-up
    loses on; without one, why not (``refused``: the reasons whole chip counts were
    refused for; ``least_memory_B`` against ``usable_B``: how far the layout needing the
    least memory is from fitting)."""
    if not top:
        if refused:  # the whole job was refused: its reasons are the answer
            return " ".join(["No layout fits:", *dict.fromkeys(refused)])
        text = "No layout fits: every candidate was pruned (see 'pruned')."
        if least_memory_B is not None and usable_B is not None and least_memory_B > usable_B:
            text += (f" The layout needing the least memory needs "
                     f"{least_memory_B / 1e9:,.1f} GB per chip, over the "
                     f"{usable_B / 1e9:,.1f} GB usable (HBM less the memory headroom): give "
                     "more chips, a chip with more HBM, or a lower precision.")
        return text
    best = top[0]
    assert best.time is not None
    terms = asdict(best.time)
    total = best.step_s
    big = sorted(terms.items(), key=lambda kv: -kv[1])[:3]
    parts = ", ".join(f"{TimeBreakdown.label(k)} {v / total:.0%}" for k, v in big if v > 0)
    p = best.plan
    text = (f"The best layout ({p.label()}) reaches {best.tokens_per_s_per_chip:,.1f} "
            f"tokens/s per chip at {best.mfu:.1%} MFU; its step is {parts}.")
    likely = best.likely_tokens_per_s_per_chip
    if likely is not None:  # the calibration's held-out range: what a run would show
        text += " A run of it would likely measure " + likely_range_note(
            likely, best.calibration_family, best.calibration_runs) + "."
    if len(top) > 1:
        runner = top[1]
        assert runner.time is not None
        diffs = {k: getattr(runner.time, k) - v for k, v in terms.items()}
        worst = max(diffs, key=lambda k: diffs[k])
        changed = runner.plan.changes_from(p)
        gap = runner.step_s / best.step_s - 1
        if gap < TIE_FRACTION:
            text += (f" The runner-up ({', '.join(changed) or 'same sizes'}) ties with it "
                     f"(within {TIE_FRACTION:.2%} of the step): either layout will do.")
        else:
            text += (f" The runner-up ({', '.join(changed) or 'same sizes'}) is {gap:.1%} "
                     f"slower, mostly in {TimeBreakdown.label(worst)} "
                     f"(+{diffs[worst] * 1e3:.1f} ms per step).")
    if refused:  # chip counts set aside or ranked last, and why
        text += " Chip counts set aside or ranked last: " + " ".join(dict.fromkeys(refused))
    return text
