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

__all__ = ["PipelineEvent", "one_f_one_b"]


@dataclass(frozen=True)
class PipelineEvent:
    stage: int
    micro_batch: int
    chunk: int
    kind: str
    """``"F"`` (forward) or ``"B"`` (backward)."""
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
