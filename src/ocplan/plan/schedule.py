"""Pipeline schedules as timelines: which stage runs which micro-batch when.

:func:`one_f_one_b` lays out the 1F1B schedule (PipeDream-Flush; Narayanan et al. SC'21
§2.2) for ``p`` stages and ``m`` micro-batches, with interleaving over ``v`` model chunks
per stage (the chunk's time is the stage's time divided by ``v``). Each operation starts
when its stage is free and its input has arrived: the forward of chunk c on stage s needs
the forward of the previous chunk in model order; a backward needs the backward of the
next chunk and its own forward. It returns the events for a Gantt chart and the makespan,
whose bubble matches ``(p - 1) / v`` micro-batch times when ``m >= p``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["PipelineEvent", "bidirectional", "one_f_one_b"]


@dataclass(frozen=True)
class PipelineEvent:
    stage: int
    micro_batch: int
    chunk: int
    kind: str
    """``"F"`` (forward), ``"B"`` (backward) or ``"W"`` (a weight gradient split off a
    backward, :func:`bidirectional`)."""
    start_s: float
    end_s: float


def _order(stage: int, p: int, m: int, v: int) -> list[tuple[str, int, int]]:
    """The (kind, micro-batch, chunk) sequence one stage executes.

    Micro-batches go through the chunks in groups of ``p`` (Megatron's interleaved
    order); warm-up runs ``(p - stage - 1) * 2 + (v - 1) * p`` forwards (``p - stage - 1``
    without interleaving), then alternates one forward and one backward.
    """
    total = m * v
    def fwd_item(k: int) -> tuple[int, int]:
        group, pos = divmod(k, p * v)
        chunk, offset = divmod(pos, p)
        return group * p + offset, chunk

    def bwd_item(k: int) -> tuple[int, int]:
        mb, chunk = fwd_item(k)
        return mb, v - 1 - chunk

    warm = min(p - stage - 1, m) if v == 1 else min((p - stage - 1) * 2 + (v - 1) * p, total)
    ops: list[tuple[str, int, int]] = []
    f = b = 0
    for _ in range(warm):
        mb, c = fwd_item(f)
        ops.append(("F", mb, c))
        f += 1
    while f < total:
        mb, c = fwd_item(f)
        ops.append(("F", mb, c))
        f += 1
        mb, c = bwd_item(b)
        ops.append(("B", mb, c))
        b += 1
    while b < total:
        mb, c = bwd_item(b)
        ops.append(("B", mb, c))
        b += 1
    return ops


def one_f_one_b(p: int, m: int, t_fwd_s: float, t_bwd_s: float, v: int = 1,
                p2p_s: float = 0.0) -> tuple[list[PipelineEvent], float]:
    """Simulate the (interleaved) 1F1B schedule; returns (events, makespan in s).

    ``t_fwd_s`` / ``t_bwd_s`` are one stage's forward / backward time for one
    micro-batch (all chunks); ``p2p_s`` the send time between consecutive stages.
    Micro-batch counts that are not a multiple of ``p`` are allowed without interleaving.
    """
    assert p >= 1
    assert m >= 1
    assert v >= 1
    if v > 1:
        assert m % p == 0, "interleaved schedules need micro-batches in multiples of pp"
    tf, tb = t_fwd_s / v, t_bwd_s / v
    queues = [_order(s, p, m, v) for s in range(p)]
    pos = [0] * p
    free = [0.0] * p
    done: dict[tuple[str, int, int, int], float] = {}   # (kind, mb, chunk, stage) -> end
    events: list[PipelineEvent] = []
    n_ops = sum(len(q) for q in queues)
    while len(events) < n_ops:
        progressed = False
        for s in range(p):
            if pos[s] >= len(queues[s]):
                continue
            kind, mb, chunk = queues[s][pos[s]]
            ready = _ready(kind, mb, chunk, s, p, v, done, p2p_s)
            if ready is None:
                continue
            start = max(free[s], ready)
            end = start + (tf if kind == "F" else tb)
            done[(kind, mb, chunk, s)] = end
            events.append(PipelineEvent(s, mb, chunk, kind, start, end))
            free[s] = end
            pos[s] += 1
            progressed = True
        assert progressed, "pipeline schedule deadlocked"
    return events, max(e.end_s for e in events)


def _ready(kind: str, mb: int, chunk: int, s: int, p: int, v: int,
           done: dict[tuple[str, int, int, int], float], p2p: float) -> float | None:
    """When the inputs of an operation are available, or None if not yet produced."""
    if kind == "F":
        if s > 0:
            key = ("F", mb, chunk, s - 1)
        elif chunk > 0:
            key = ("F", mb, chunk - 1, p - 1)
        else:
            return 0.0
        return done[key] + p2p if key in done else None
    own = done.get(("F", mb, chunk, s))
    if own is None:
        return None
    if s < p - 1:
        key = ("B", mb, chunk, s + 1)
    elif chunk < v - 1:
        key = ("B", mb, chunk + 1, 0)
    else:
        return own
    return max(own, done[key] + p2p) if key in done else None


# ---- bidirectional schedules (DualPipe, DualPipeV) --------------------------------------

class _Op(NamedTuple):
    """One operation of a rank's bidirectional schedule: ``F`` (a forward of ``phase``),
    ``B`` (a backward of ``phase``; ``deferred``: its weight gradient split off and run
    later as a ``W``, zero-bubble style), ``W``, or ``FB`` (a forward of ``phase`` run
    overlapped with a backward of ``other``)."""

    kind: str
    phase: int = 0
    other: int = 0
    deferred: bool = False


def _dual_order(i: int, n: int, c: int) -> list[_Op]:
    """The operations of a rank of a bidirectional schedule, in the eight steps of
    DualPipe's ``step`` (github.com/deepseek-ai/DualPipe; DualPipeV's ``step`` has the
    same steps): ``i`` the rank's distance from its nearer end (DualPipe
    ``half_rank``, DualPipeV ``rank``), ``n`` the ranks of a half (DualPipe ``p / 2``,
    DualPipeV ``p``), ``c`` the micro-batches of each phase's stream (DualPipe ``m /
    2`` a direction, DualPipeV ``m``)."""
    f0, f1, w = _Op("F", 0), _Op("F", 1), _Op("W")
    fb01, fb10 = _Op("FB", 0, 1), _Op("FB", 1, 0)
    ops = [f0] * ((n - i - 1) * 2)                                   # 1: warm-up
    ops += [f0, f1] * (i + 1)                                        # 2
    ops += [_Op("B", 1, deferred=True), w, f1] * (n - i - 1)         # 3
    for j in range(c - 2 * n + i + 1):                               # 4: steady state
        # the rank next to the middle runs its first pair apart (a smaller bubble)
        ops += [f0, _Op("B", 1)] if j == 0 and i == n - 1 else [fb01]
        ops.append(fb10)
    ops += [_Op("B", 1), fb10] * (n - i - 1)                         # 5
    deferred = False
    for j in range(i + 1):                       # 6: drain; its second half zero-bubble
        if j == (i + 1) // 2 and i % 2 == 1:
            deferred = True
        ops.append(_Op("B", 1, deferred=deferred))
        if j == (i + 1) // 2 and i % 2 == 0:
            deferred = True
        ops.append(_Op("B", 0, deferred=deferred))
    ops += [w, _Op("B", 0, deferred=True)] * (n - i - 1)             # 7
    ops += [w] * (i + 1)                                             # 8
    return ops


def bidirectional(p: int, m: int, t_fwd_s: float, t_bwd_s: float, t_wgrad_s: float,
                  v_shape: bool = False) -> tuple[list[PipelineEvent], float]:
    """Simulate DualPipe (``v_shape`` False) or DualPipeV on ``p`` ranks with ``m``
    micro-batches; returns (events, makespan in s). ``t_fwd_s``, ``t_bwd_s`` and
    ``t_wgrad_s`` are one chunk's forward, full backward and weight-gradient times (a
    DualPipe chunk is a rank's stage, a DualPipeV chunk half of it).

    DualPipe: micro-batches ``0 .. m/2 - 1`` run from rank 0 to rank ``p - 1``, ``m/2 ..
    m - 1`` the other way; a rank's phase 0 is the first direction on the first half
    of the ranks and the other on the second. DualPipeV: every micro-batch runs phase 0
    down the ranks and phase 1 back up (``2p`` stages of a V). An operation starts when
    its rank is free and its inputs are done; an overlapped forward and backward takes
    ``t_fwd_s + t_bwd_s`` and both results are ready at its end; a deferred backward
    takes ``t_bwd_s - t_wgrad_s`` and its weight gradient runs at a later "W". Events
    are "F", "B" and "W" (an overlapped pair drawn as its forward, then its backward;
    a W's micro-batch is -1); ``chunk`` is the phase. At ``t_bwd_s = 2 t_fwd_s = 2
    t_wgrad_s`` the idle time is the DualPipe README's ``(S/2 - 1)(F&B + B - 3W)``
    exactly (:func:`~ocplan.plan.pipeline_schedules.bidirectional_bubble`)."""
    assert p >= 1
    assert m >= 2 * p, "a bidirectional schedule needs at least 2 pp micro-batches"
    if v_shape:
        n, c, stages = p, m, 2 * p
    else:
        assert p % 2 == 0, "DualPipe needs an even pp"
        assert m % 2 == 0, "DualPipe needs an even number of micro-batches"
        n, c, stages = p // 2, m // 2, p

    def place(r: int, phase: int) -> tuple[int, int]:
        """(stream, position in its chain of stages) of rank ``r``'s ``phase``."""
        if v_shape:
            return 0, (r if phase == 0 else 2 * p - 1 - r)
        d = phase if r < n else 1 - phase
        return d, (r if d == 0 else p - 1 - r)

    def needs(kind: str, stream: int, at: int, mb: int) -> tuple[str, int, int, int] | None:
        """What an operation waits for: the previous stage's forward, the next stage's
        backward, or at the chain's end its own forward."""
        if kind == "F":
            return ("F", stream, at - 1, mb) if at > 0 else None
        return ("B", stream, at + 1, mb) if at < stages - 1 else ("F", stream, at, mb)

    queues = [_dual_order(r if v_shape else min(r, p - 1 - r), n, c) for r in range(p)]
    pos, free = [0] * p, [0.0] * p
    taken: list[dict[tuple[str, int], int]] = [{} for _ in range(p)]
    done: dict[tuple[str, int, int, int], float] = {}   # (kind, stream, position, mb)
    waiting = [0] * p                                    # deferred weight gradients
    events: list[PipelineEvent] = []
    remaining = sum(len(q) for q in queues)
    while remaining:
        progressed = False
        for r in range(p):
            if pos[r] == len(queues[r]):
                continue
            op = queues[r][pos[r]]
            parts = ([("F", op.phase), ("B", op.other)] if op.kind == "FB"
                     else [] if op.kind == "W" else [(op.kind, op.phase)])
            keys = [(kind, phase, *place(r, phase), taken[r].get((kind, phase), 0))
                    for kind, phase in parts]
            deps = [needs(kind, stream, at, mb) for kind, _, stream, at, mb in keys]
            if any(d is not None and d not in done for d in deps):
                continue
            at_s = max([free[r], *(done[d] for d in deps if d is not None)])
            if op.kind == "W":
                assert waiting[r] > 0, "a W with no deferred weight gradient"
                waiting[r] -= 1
                events.append(PipelineEvent(r, -1, 0, "W", at_s, at_s + t_wgrad_s))
                at_s += t_wgrad_s
            for kind, phase, stream, _, mb in keys:
                length = t_fwd_s if kind == "F" else \
                    t_bwd_s - t_wgrad_s if op.deferred else t_bwd_s
                label = mb + (c if not v_shape and stream == 1 else 0)
                events.append(PipelineEvent(r, label, phase, kind, at_s, at_s + length))
                at_s += length
            waiting[r] += op.deferred
            for kind, phase, stream, at, mb in keys:
                done[(kind, stream, at, mb)] = at_s
                taken[r][(kind, phase)] = mb + 1
            free[r] = at_s
            pos[r] += 1
            remaining -= 1
            progressed = True
        assert progressed, "bidirectional schedule deadlocked"
    assert not any(waiting), "weight gradients left over"
    return events, max(free)
