"""The error types survive pickling (worker processes send them back to the server)."""

from __future__ import annotations

import pickle

from ocplan.errors import Infeasible, Problem, SpecError


def test_spec_error_pickles_with_its_problems() -> None:
    exc = SpecError([Problem("f.yaml", "servers", "must be at least 1", 0),
                     Problem("f.yaml", "cooling", "not allowed", "water")])
    back = pickle.loads(pickle.dumps(exc))
    assert isinstance(back, SpecError)
    assert back.problems == exc.problems
    assert str(back) == str(exc)


def test_infeasible_pickles_with_reason_and_detail() -> None:
    back = pickle.loads(pickle.dumps(Infeasible("size", "too many nodes")))
    assert isinstance(back, Infeasible)
    assert (back.reason, back.detail, str(back)) == ("size", "too many nodes",
                                                     "size: too many nodes")
