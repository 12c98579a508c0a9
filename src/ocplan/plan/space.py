"""A search space declared as axes and constraints, not a nest of loops.

Each :class:`Axis` lists the values of one layout field. Each :class:`Constraint` names
the axes it reads and a predicate over columns of candidate values (numpy arrays); it
prunes as soon as all its axes are present. :meth:`SearchSpace.candidates` grows the
cartesian product axis by axis, applying every constraint at the earliest point, and
counts what each reason removed in units of full-space points, so
``sum(pruned) + len(candidates) == size``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["Axis", "Columns", "Constraint", "SearchSpace", "training_space"]

Columns = dict[str, np.ndarray]


@dataclass(frozen=True)
class Axis:
    name: str
    values: tuple[int, ...]


@dataclass(frozen=True)
class Constraint:
    """Keep the candidates for which ``keep(columns)`` is true; count the rest as
    ``reason``."""

    reason: str
    axes: tuple[str, ...]
    keep: Callable[[Columns], np.ndarray]


@dataclass(frozen=True)
class SearchSpace:
    axes: tuple[Axis, ...]
    constraints: tuple[Constraint, ...]
    derived: Mapping[str, Callable[[Columns], np.ndarray]]
    """Columns computed from axes (dp = chips / (tp * pp * cp)), added when their inputs
    exist; constraints may read them."""

    @property
    def size(self) -> int:
        size = 1
        for axis in self.axes:
            size *= len(axis.values)
        return size

    def candidates(self) -> tuple[Columns, dict[str, int]]:
        """Surviving candidates as columns, and pruned counts by reason."""
        cols: Columns = {}
        n = 1
        pruned: dict[str, int] = {}
        pending = list(self.constraints)
        remaining = self.size
        for axis in self.axes:
            values = np.asarray(axis.values, dtype=np.int64)
            remaining //= len(values)
            cols = {k: np.repeat(v, len(values)) for k, v in cols.items()}
            cols[axis.name] = np.tile(values, n)
            n *= len(values)
            for name, fn in self.derived.items():
                if name not in cols:
                    with contextlib.suppress(KeyError):  # inputs not all present yet
                        cols[name] = fn(cols)
            still: list[Constraint] = []
            for c in pending:
                if all(a in cols for a in c.axes):
                    keep = np.asarray(c.keep(cols), dtype=bool)
                    dropped = int((~keep).sum())
                    if dropped:
                        pruned[c.reason] = pruned.get(c.reason, 0) + dropped * remaining
                        cols = {k: v[keep] for k, v in cols.items()}
                        n = int(keep.sum())
                else:
                    still.append(c)
            pending = still
        assert not pending, f"constraints on unknown axes: {[c.reason for c in pending]}"
        return cols, pruned


def _divisors(n: int, limit: int | None = None) -> tuple[int, ...]:
    top = n if limit is None else min(n, limit)
    return tuple(d for d in range(1, top + 1) if n % d == 0)


#: Recompute axis codes: 0 none, 1 selective, 2 full, 3 auto (the fewest layers per
#: stage recomputed in full that make the layout fit; Megatron --recompute-num-layers).
RECOMPUTE_CODES = {"none": 0, "selective": 1, "full": 2, "auto": 3}


def training_space(*, chips: int, n_layers: int, n_heads: int, n_kv_heads: int,
                   seq_len: int, global_batch: int, domain: int, experts: int = 0,
                   max_cp: int = 16, max_tp: int | None = None,
                   offload: bool = False) -> SearchSpace:
    """The layout space of one training job on ``chips`` chips.

    Axes: tp, pp, cp, ep, vpp, micro-batch, ZeRO stage, recompute, sequence parallelism,
    TP and DP communication overlap, and (``offload``) host activation offload.
    Constraints mirror :meth:`ocplan.plan.plan.Plan.check`, plus TP inside the scale-up
    domain and duplicates (options that change nothing) removed.
    """
    tp_limit = min(domain, max_tp or domain)
    axes = (
        Axis("tp", _divisors(chips, tp_limit)),
        Axis("pp", _divisors(chips, n_layers)),
        Axis("cp", _divisors(chips, max_cp)),
        Axis("ep", _divisors(experts, chips) if experts else (1,)),
        Axis("vpp", tuple(sorted(set(_divisors(n_layers)) | set(range(1, 9))))),
        Axis("mb", _divisors(global_batch)),
        Axis("zero", (0, 1, 2, 3)),
        Axis("recompute", tuple(RECOMPUTE_CODES.values())),
        Axis("sp", (0, 1)),
        Axis("offload", (0, 1) if offload else (0,)),
        Axis("tp_overlap", (0, 1)),
        Axis("dp_overlap", (0, 1)),
    )

    def dp(c: Columns) -> np.ndarray:
        ranks: np.ndarray = chips // (c["tp"] * c["pp"] * c["cp"])
        return ranks

    def kv_split(c: Columns) -> np.ndarray:
        tp = c["tp"]
        split: np.ndarray = np.where(tp <= n_kv_heads, n_kv_heads % tp == 0,
                                     tp % n_kv_heads == 0)
        return split

    constraints = (
        Constraint("chips", ("tp", "pp", "cp"),
                   lambda c: chips % (c["tp"] * c["pp"] * c["cp"]) == 0),
        Constraint("heads", ("tp",), lambda c: (n_heads % c["tp"] == 0) & kv_split(c)),
        Constraint("sequence", ("cp",), lambda c: (c["cp"] == 1) | (seq_len % (2 * c["cp"]) == 0)),
        Constraint("batch", ("tp", "pp", "cp"), lambda c: global_batch % dp(c) == 0),
        Constraint("experts", ("ep", "tp", "pp", "cp"),
                   lambda c: (c["ep"] == 1) | ((dp(c) * c["cp"] * c["tp"]) % c["ep"] == 0)),
        Constraint("layers", ("pp", "vpp"), lambda c: (c["pp"] * c["vpp"] <= n_layers)
                   & ((c["vpp"] == 1) | (c["pp"] > 1))),
        Constraint("batch", ("mb", "tp", "pp", "cp"),
                   lambda c: global_batch % (dp(c) * c["mb"]) == 0),
        Constraint("duplicate", ("zero", "tp", "pp", "cp"),
                   lambda c: (c["zero"] == 0) | (dp(c) * c["cp"] > 1)),
        Constraint("duplicate", ("sp", "tp"), lambda c: (c["sp"] == 0) | (c["tp"] > 1)),
        Constraint("duplicate", ("offload", "recompute"),
                   lambda c: (c["offload"] == 0) | (c["recompute"] == 0)),
        Constraint("duplicate", ("tp_overlap", "tp"),
                   lambda c: (c["tp_overlap"] == 1) | (c["tp"] > 1)),
        Constraint("duplicate", ("dp_overlap", "tp", "pp", "cp"),
                   lambda c: (c["dp_overlap"] == 1) | (dp(c) * c["cp"] > 1)),
        # Dominated options, pruned with a reason instead of evaluated: in the engine,
        # overlapping communication has no cost, so "off" can only be slower; and with
        # flash attention selective recompute saves no memory but costs time.
        Constraint("dominated", ("tp_overlap", "dp_overlap"),
                   lambda c: (c["tp_overlap"] == 1) & (c["dp_overlap"] == 1)),
        Constraint("dominated", ("recompute",), lambda c: c["recompute"] != 1),
    )
    return SearchSpace(axes, constraints, {"dp": dp})
