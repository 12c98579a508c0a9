"""The pipeline timeline reproduces the analytical 1F1B bubble (Narayanan et al. SC'21)."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocplan.plan.schedule import one_f_one_b


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
