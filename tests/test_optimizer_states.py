"""Adam's state recipe as a request field: fp32 master and moments (12 bytes a parameter),
the fp32 master with BF16 moments (8; DeepSeek-V3, Megatron-LM's precision-aware
optimizer) and BF16 moments alone (4). The API, the CLI's flag and the web form take it
from one declaration, and it changes the optimizer's bytes and nothing else."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, get_args

import pytest

from clikit import one_line, run
from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.workloads.workload import OPTIMIZER_STATES, OptimizerStates

CAT = load_catalog()
JOB = dict(model="llama3-8b", chip="h100-sxm-80gb", chips=8, global_batch=64, seq_len=4096,
           tp=1, pp=1, micro_batch=1, zero=1, recompute="full")
FLAGS = ["--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "8",
         "--global-batch", "64", "--seq-len", "4096", "--recompute", "full"]


def _memory(**extra: Any) -> dict[str, float]:
    req = api.EstimateRequest(**JOB, **extra)
    result, _, wl = api.run_estimate(CAT, req)
    assert result.feasible, result.reason
    assert result.memory is not None
    assert wl.optimizer_states == req.optimizer_states
    return {k: float(v) for k, v in asdict(result.memory).items()} | {
        "total_bytes": result.memory.total_bytes}


def test_the_recipes_are_declared_once_in_order_of_bytes() -> None:
    assert list(OPTIMIZER_STATES) == list(get_args(OptimizerStates))
    assert OPTIMIZER_STATES == {"fp32": 12.0, "bf16_moments": 8.0, "bf16": 4.0}
    assert api.field_choices()["optimizer_states"] == list(OPTIMIZER_STATES)
    assert api.EstimateRequest(**JOB).optimizer_states == "fp32"


@pytest.mark.parametrize("recipe", ["bf16_moments", "bf16"])
def test_a_recipe_scales_the_optimizer_bytes_alone(recipe: str) -> None:
    """ZeRO-1 over 8 ranks: the optimizer's bytes scale with the recipe's bytes a
    parameter (8/12, 4/12), the weights, gradients and activations stay."""
    base, other = _memory(), _memory(optimizer_states=recipe)
    ratio = OPTIMIZER_STATES[recipe] / OPTIMIZER_STATES["fp32"]
    assert other["optimizer_bytes"] == pytest.approx(ratio * base["optimizer_bytes"])
    for key in ("weights_bytes", "grads_bytes", "activations_bytes"):
        assert other[key] == base[key], key
    assert other["total_bytes"] < base["total_bytes"]


def test_the_flag_gives_what_the_request_gives(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "estimate", *FLAGS, "--optimizer-states", "bf16_moments",
                     "--format", "json")
    assert rc == 0
    memory = json.loads(out)["memory"]
    assert memory["optimizer_bytes"] == pytest.approx(
        _memory(optimizer_states="bf16_moments")["optimizer_bytes"])


def test_a_recipe_it_does_not_know_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line(*run(capsys, "estimate", *FLAGS, "--optimizer-states", "fp8"))
    assert "--optimizer-states" in line
    assert "'fp8'" in line
    for name in OPTIMIZER_STATES:
        assert repr(name) in line


@pytest.mark.parametrize("command", ["search", "compare"])
def test_search_and_compare_take_it(capsys: pytest.CaptureFixture[str], command: str) -> None:
    """A search and a comparison held to BF16 moments: where they pick the layout they
    pick under fp32 states, it keeps more of the chip free; a different pick is never
    slower (every layout that fits with fp32 states fits with fewer bytes)."""
    def best(recipe: str) -> dict[str, Any]:
        args = ([command, "--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "8"]
                if command == "search" else
                [command, "h100-sxm-80gb", "--model", "llama3-8b", "--chips", "8"])
        rc, out, _ = run(capsys, *args, "--global-batch", "64", "--seq-len", "4096",
                         "--optimizer-states", recipe, "--format", "json")
        assert rc == 0
        data = json.loads(out)
        row: dict[str, Any] = data["best"] if command == "search" else data["systems"][0]
        return row
    fp32, bf16 = best("fp32"), best("bf16")
    if fp32["layout"] != bf16["layout"]:
        assert bf16["tokens_per_s_per_chip"] >= fp32["tokens_per_s_per_chip"]
    elif command == "search":
        assert bf16["memory_bytes_per_chip"] < fp32["memory_bytes_per_chip"]
    else:
        assert bf16["memory_headroom_pct"] > fp32["memory_headroom_pct"]
