"""The pipeline timelines reproduce the analytical bubbles: 1F1B's (Narayanan et al. SC'21),
DualPipe's and DualPipeV's (the DualPipe README's law)."""

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocplan.plan.pipeline_schedules import bidirectional_bubble
from ocplan.plan.schedule import bidirectional, one_f_one_b


@settings(max_examples=80, deadline=None)
@given(p=st.integers(1, 8), groups=st.integers(1, 6), v=st.integers(1, 4),
       tf=st.floats(0.1, 5.0), tb=st.floats(0.1, 10.0))
def test_makespan_matches_bubble_formula(p: int, groups: int, v: int, tf: float,
                                         tb: float) -> None:
    m = p * groups
    events, makespan = one_f_one_b(p, m, tf, tb, v)
    assert makespan == pytest.approx((m + (p - 1) / v) * (tf + tb), rel=1e-9)
    assert len(events) == 2 * p * m * v


@settings(max_examples=40, deadline=None)
@given(p=st.integers(1, 6), m=st.integers(1, 12), v=st.integers(1, 3))
def test_stages_never_overlap_and_dependencies_hold(p: int, m: int, v: int) -> None:
    if v > 1:
        m = p * max(1, m // p)
    events, _ = one_f_one_b(p, m, 1.0, 2.0, v, p2p_s=0.1)
    for s in range(p):
        mine = sorted((e for e in events if e.stage == s), key=lambda e: e.start_s)
        for a, b in itertools.pairwise(mine):
            assert b.start_s >= a.end_s - 1e-12
    end = {(e.kind, e.micro_batch, e.chunk, e.stage): e.end_s for e in events}
    for e in events:
        if e.kind == "B":
            assert e.start_s >= end[("F", e.micro_batch, e.chunk, e.stage)] - 1e-12
        elif e.stage > 0:
            assert e.start_s >= end[("F", e.micro_batch, e.chunk, e.stage - 1)] + 0.1 - 1e-12


def test_p2p_lengthens_the_pipeline() -> None:
    _, fast = one_f_one_b(4, 8, 1.0, 2.0)
    _, slow = one_f_one_b(4, 8, 1.0, 2.0, p2p_s=0.5)
    assert slow > fast


# ---- bidirectional schedules (DualPipe, DualPipeV) ------------------------------------

@pytest.mark.parametrize("v_shape", [False, True], ids=["dualpipe", "dualpipev"])
@pytest.mark.parametrize("p", [2, 4, 8, 16])
@pytest.mark.parametrize("per_rank", [2, 3, 5])
def test_bidirectional_idle_time_is_the_readme_law(v_shape: bool, p: int,
                                                  per_rank: int) -> None:
    """With a chunk's backward twice its forward and its weight gradient half the
    backward (the README's reference), the simulated schedule idles exactly ``(S/2 -
    1)(F&B + B - 3W)`` chunk times (S = p stages for DualPipe, 2p for DualPipeV), which
    is the engine's bubble law in micro-batch times of a rank."""
    m = per_rank * p
    share = 0.5 if v_shape else 1.0
    f, b, w = share * 1.0, share * 2.0, share * 1.0
    _, makespan = bidirectional(p, m, f, b, w, v_shape)
    work = m * (1.0 + 2.0)                       # a rank's m micro-batches, F + B each
    stages = 2 * p if v_shape else p
    assert makespan - work == pytest.approx((stages / 2 - 1) * (f + b + b - 3 * w))
    law = float(bidirectional_bubble(np.array(float(p)), np.array(share), np.array(4.0),
                                     np.array(1.0), np.array(2.0), np.array(0.0)))
    assert makespan - work == pytest.approx(law * 3.0)


@settings(max_examples=60, deadline=None)
@given(p=st.integers(1, 6), per_rank=st.integers(2, 4), v_shape=st.booleans(),
       tf=st.floats(0.1, 3.0), tb=st.floats(0.2, 6.0), w_share=st.floats(0.1, 0.9))
def test_bidirectional_schedules_do_all_the_work_in_order(
        p: int, per_rank: int, v_shape: bool, tf: float, tb: float, w_share: float) -> None:
    """Any chunk times: each rank runs one operation at a time, does a forward and a
    backward of every micro-batch on each of its stages and every weight gradient it
    split off, and no operation starts before its input (the previous stage's forward,
    the next stage's backward, or its own forward at the chain's end) ends."""
    if not v_shape:
        p *= 2
    m = per_rank * p * (1 if v_shape else 2)
    tw = w_share * tb
    events, makespan = bidirectional(p, m, tf, tb, tw, v_shape)
    stages = 2 * p if v_shape else p
    # a chunk is a stage: a V rank holds two of them for every micro-batch, a DualPipe
    # rank one for each of its m micro-batches (half of them from either end)
    work = (2 if v_shape else 1) * m * (tf + tb)
    for r in range(p):
        mine = sorted((e for e in events if e.stage == r), key=lambda e: e.start_s)
        for a, b in itertools.pairwise(mine):
            assert b.start_s >= a.end_s - 1e-9
        busy = sum(e.end_s - e.start_s for e in mine)
        assert busy == pytest.approx(work)
        for kind in ("F", "B"):
            assert sorted((e.chunk, e.micro_batch) for e in mine if e.kind == kind) \
                == sorted((c, k) for c in (0, 1) for k in _streams(m, v_shape, r, p, c))
    assert makespan >= work - 1e-9

    def stage(e: Any) -> tuple[int, int]:
        """(stream, position in its chain) of an event, as the schedule places them."""
        if v_shape:
            return 0, (e.stage if e.chunk == 0 else 2 * p - 1 - e.stage)
        d = e.chunk if e.stage < p // 2 else 1 - e.chunk
        return d, (e.stage if d == 0 else p - 1 - e.stage)

    end = {(e.kind, *stage(e), e.micro_batch): e for e in events if e.kind != "W"}
    for (kind, stream, at, mb), e in end.items():
        if kind == "F" and at > 0:
            need = end[("F", stream, at - 1, mb)]
        elif kind == "B":
            need = end[("B", stream, at + 1, mb)] if at < stages - 1 \
                else end[("F", stream, at, mb)]
        else:
            continue
        # (an overlapped pair's results are ready when the pair ends, after both bars)
        assert e.start_s >= need.end_s - 1e-9


def _streams(m: int, v_shape: bool, r: int, p: int, phase: int) -> range:
    """The micro-batches rank ``r`` runs in ``phase``: all of them on a V; on DualPipe
    the first half of them in the direction from rank 0, the second the other way."""
    if v_shape:
        return range(m)
    d = phase if r < p // 2 else 1 - phase
    return range(0, m // 2) if d == 0 else range(m // 2, m)
