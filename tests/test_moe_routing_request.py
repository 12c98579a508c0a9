"""The MoE routing of a training job as request fields: a capacity factor (copies beyond
it dropped, every expert's input padded to it) and the dispatch (permutes or one-hot
einsums). The API, the CLI's flags, the search and the comparison take them from the
workload's declaration, and a capacity-padded Mixtral layer runs its experts as dense
GEMMs (faster than the dropless grouped kernel at the same balanced load)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clikit import one_line, run
from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.workloads.workload import MOE_DISPATCH

CAT = load_catalog()
JOB = dict(model="mixtral-8x7b", chip="h100-sxm-80gb", chips=16, global_batch=64,
           seq_len=4096, tp=2, ep=8, recompute="full")
FLAGS = ["--model", "mixtral-8x7b", "--chip", "h100-sxm-80gb", "--chips", "16",
         "--global-batch", "64", "--seq-len", "4096", "--tp", "2", "--ep", "8",
         "--recompute", "full"]


def _rate(**extra: Any) -> float:
    req = api.EstimateRequest(**JOB, **extra)
    result, _, wl = api.run_estimate(CAT, req)
    assert result.feasible, result.reason
    assert (wl.moe_capacity_factor, wl.moe_dispatch) == (req.moe_capacity_factor,
                                                         req.moe_dispatch)
    return result.tokens_per_s_per_chip


def test_the_dispatches_are_declared_once() -> None:
    assert api.field_choices()["moe_dispatch"] == list(MOE_DISPATCH)
    req = api.EstimateRequest(**JOB)
    assert (req.moe_capacity_factor, req.moe_dispatch) == (None, "permute")


def test_padding_and_the_einsums_move_the_rate() -> None:
    """Balanced (capacity 1): the padded experts at the dense GEMM's rate beat the
    dropless grouped kernel; the one-hot einsums over the same capacity cost more than
    the permutes."""
    dropless, padded = _rate(), _rate(moe_capacity_factor=1.0)
    einsum = _rate(moe_capacity_factor=1.0, moe_dispatch="einsum")
    assert padded > dropless
    assert einsum < padded


def test_the_flags_give_what_the_request_gives(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "estimate", *FLAGS, "--moe-capacity-factor", "1.25",
                     "--moe-dispatch", "einsum", "--format", "json")
    assert rc == 0
    assert json.loads(out)["tokens_per_s_per_chip"] == pytest.approx(
        _rate(moe_capacity_factor=1.25, moe_dispatch="einsum"), rel=1e-12)


def test_bad_routing_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line(*run(capsys, "estimate", *FLAGS, "--moe-dispatch", "einsum"))
    assert line.startswith("--moe-dispatch: ")
    assert "capacity factor" in line
    line = one_line(*run(capsys, "estimate", *FLAGS, "--moe-capacity-factor", "200"))
    assert "--moe-capacity-factor" in line
    assert "64" in line
    line = one_line(*run(capsys, "estimate", *FLAGS, "--moe-dispatch", "scatter"))
    assert "--moe-dispatch" in line
    for name in MOE_DISPATCH:
        assert repr(name) in line


@pytest.mark.parametrize("command", ["search", "compare"])
def test_search_and_compare_take_them(capsys: pytest.CaptureFixture[str],
                                      command: str) -> None:
    """Held to a capacity of 1 (balanced, padded), the best layout of a search and of a
    comparison is faster than the dropless job's: every layout's experts leave the
    grouped kernel for the dense GEMM."""
    def best(*routing: str) -> float:
        args = ([command, "--model", "mixtral-8x7b", "--chip", "h100-sxm-80gb",
                 "--chips", "16"] if command == "search" else
                [command, "h100-sxm-80gb", "--model", "mixtral-8x7b", "--chips", "16"])
        rc, out, _ = run(capsys, *args, "--global-batch", "64", "--seq-len", "4096",
                         *routing, "--format", "json")
        assert rc == 0
        data = json.loads(out)
        row: dict[str, Any] = data["best"] if command == "search" else data["systems"][0]
        return float(row["tokens_per_s_per_chip"])
    assert best("--moe-capacity-factor", "1") > best()
