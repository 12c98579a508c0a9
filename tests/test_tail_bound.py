"""What a free factor per publication, chip or both could do for the tail of the
development set's errors (scripts/tail_bound.py, docs/tail-bound.md)."""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scriptkit import load_script

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "validation" / "training_dev.csv"


@pytest.fixture(scope="module")
def tb() -> ModuleType:
    return load_script("tail_bound")


errors = st.lists(st.tuples(st.floats(-80.0, 300.0), st.sampled_from("abcd")),
                  min_size=1, max_size=30)


@given(errors)
def test_a_groups_factor_centres_its_log_errors(tb: ModuleType,
                                                runs: list[tuple[float, str]]) -> None:
    """After its factor a group's log errors average zero, and the sum of squared log
    errors of no group rises (the factor is that sum's least-squares optimum)."""
    errs, groups = [e for e, _ in runs], [g for _, g in runs]
    out = tb.offset_errors(errs, groups)
    for g in set(groups):
        before = [math.log1p(e / 100) for e, h in zip(errs, groups, strict=True) if h == g]
        after = [math.log1p(e / 100) for e, h in zip(out, groups, strict=True) if h == g]
        assert abs(sum(after)) <= 1e-9 * max(1.0, sum(abs(x) for x in before))
        assert sum(x * x for x in after) <= sum(x * x for x in before) + 1e-9


def test_a_constant_per_group_is_removed_whatever_its_size(tb: ModuleType) -> None:
    """Runs that differ from the truth by one factor per group come out exact; runs that
    scatter within a group keep their scatter around the group's geometric mean."""
    assert tb.offset_errors([25.0, 25.0, -20.0, -20.0], list("aabb")) == pytest.approx(
        [0.0, 0.0, 0.0, 0.0], abs=1e-12)
    # 1.1 and 1 / 1.1 around a geometric mean of 1: +10 % and -9.09 % stay as they are
    out = tb.offset_errors([10.0, 100.0 * (1 / 1.1 - 1)], ["a", "a"])
    assert out == pytest.approx([10.0, 100.0 * (1 / 1.1 - 1)])


def test_spread_counts_the_goals(tb: ModuleType) -> None:
    s = tb.spread([1.0, -5.0, 5.5, 12.0, -12.5, 30.0])
    assert (s.within_median_goal, s.above_p90_goal) == (2, 2)
    assert s.median_pct == pytest.approx(8.75)


@pytest.mark.skipif(not DEV.exists(), reason="needs ../shared/validation")
def test_the_report_is_the_committed_models(tb: ModuleType) -> None:
    """docs/tail-bound.md equals a fresh scoring: a change that moves a development
    prediction must rewrite it (``.venv/bin/python scripts/tail_bound.py``)."""
    assert tb.REPORT.read_text(encoding="utf-8") == tb.report(DEV)
