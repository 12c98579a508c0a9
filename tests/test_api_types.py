"""The library's entry points answer wrong-typed values with a SpecError naming the
argument, as the CLI and the API requests do (a docs QA pass, session 43, found
TypeError and AttributeError tracebacks): a text chip count, a text sequence length, a
model id where a ModelShape belongs, a bool batch, a text sensitivity factor."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.errors import SpecError
from ocplan.plan.plan import Plan
from ocplan.plan.search import search
from ocplan.plan.sensitivity import sensitivity
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

CAT = load_catalog()
SHAPE = ModelShape.from_arch(CAT.model("llama3-8b"))
WL = Workload(SHAPE, 4096, 64, "bf16")
SYSTEM = system_for_chip(CAT, "h100-sxm-80gb", 8)


@pytest.mark.parametrize(("call", "field"), [
    (lambda: system_for_chip(CAT, "h100-sxm-80gb", "8"), "chips"),
    (lambda: system_for_chip(CAT, "h100-sxm-80gb", -8), "chips"),
    (lambda: Workload(SHAPE, "4096", 64, "bf16"), "seq_len"),  # type: ignore[arg-type]
    (lambda: Workload("llama3-8b", 4096, 64, "bf16"), "model"),  # type: ignore[arg-type]
    (lambda: Workload(SHAPE, 4096, True, "bf16"), "global_batch"),
    (lambda: search(WL, SYSTEM, "8"), "chips"),  # type: ignore[arg-type]
    (lambda: sensitivity(WL, Plan(dp=8), SYSTEM, "2"), "factor"),  # type: ignore[arg-type]
])
def test_wrong_types_are_spec_errors(call: Callable[[], object], field: str) -> None:
    with pytest.raises(SpecError) as exc:
        call()
    assert [p.field for p in exc.value.problems] == [field]


def test_requests_built_with_validate_as_name_every_problem() -> None:
    with pytest.raises(SpecError) as exc:
        api.validate_as(api.EstimateRequest, {"model": "llama3-8b", "chips": -1,
                                               "tpp": 2}, "request")
    assert {p.field for p in exc.value.problems} == {"chips", "tpp"}
    # numpy whole numbers are whole numbers
    np = pytest.importorskip("numpy")
    assert Workload(SHAPE, np.int64(4096), np.int64(64), "bf16").tokens_per_step == 4096 * 64
