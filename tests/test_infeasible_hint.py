"""A layout that does not fit in memory is told only the remedies it has not taken: the
hint had listed "zero 3" and "a smaller micro-batch" to a ZeRO-3 layout at micro-batch 1."""

from __future__ import annotations

import json

import pytest

from clikit import run
from ocplan import api
from ocplan.plan.plan import Plan

MEMORY = "memory: needs 210.8 GB per chip, gb200 has 186.0 GB"


def test_the_memory_hint_leaves_out_what_the_plan_took() -> None:
    taken = api.infeasible_hint(MEMORY, plan=Plan(zero=3, micro_batch=1, recompute="full",
                                                   offload=True))
    assert taken is not None
    for remedy in ("zero 3", "recompute full", "smaller micro-batch", "offload"):
        assert remedy not in taken
    assert "raise tp or pp" in taken
    assert "more chips" in taken
    # a plan that took none of them is told every one the plan-less hint lists, but a
    # dense model is not told to raise ep
    fresh = api.infeasible_hint(MEMORY, plan=Plan(zero=1, micro_batch=4))
    every = api.infeasible_hint(MEMORY)
    assert fresh is not None
    assert every is not None
    assert "raise ep" in every
    assert "raise ep" not in fresh
    assert fresh.split(", ") == [r for r in every.split(", ") if not r.startswith("raise ep")]
    # recomputing only some layers in full leaves recomputing all of them open
    some = api.infeasible_hint(MEMORY, plan=Plan(recompute="full", recompute_layers=2))
    assert some is not None
    assert "recompute full" in some
    # other reasons and serving keep their hints
    assert api.infeasible_hint("divisibility: x", plan=Plan()) == \
        api.INFEASIBLE_HINTS["divisibility"]
    assert api.infeasible_hint(MEMORY, serving=True, plan=Plan()) == \
        api.SERVING_INFEASIBLE_HINTS["memory"]


def test_a_mixture_of_experts_plan_is_told_to_raise_ep_until_each_expert_has_a_chip(
        ) -> None:
    """DeepSeek-V3 (256 routed experts) out of memory at ep 1 was told every remedy but
    the one that shards its largest part."""
    at_one = api.infeasible_hint(MEMORY, plan=Plan(ep=1), experts=256)
    at_64 = api.infeasible_hint(MEMORY, plan=Plan(ep=64), experts=256)
    at_all = api.infeasible_hint(MEMORY, plan=Plan(ep=256), experts=256)
    assert at_one is not None
    assert at_64 is not None
    assert at_all is not None
    assert "raise ep" in at_one
    assert "raise ep" in at_64
    assert "raise ep" not in at_all
    assert "raise tp or pp" in at_all


def test_the_estimate_answer_carries_the_plans_hint(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "estimate", "--model", "deepseek-v3", "--chip", "gb200",
                     "--chips", "64", "--tp", "2", "--ep", "32", "--etp", "1",
                     "--micro-batch", "1", "--zero", "3", "--recompute", "mla_up", "-f", "json")
    assert rc == 1
    data = json.loads(out)
    assert data["feasible"] is False
    assert data["reason"].startswith("memory")
    assert "zero 3" not in data["hint"]
    assert "smaller micro-batch" not in data["hint"]
    assert "recompute full" in data["hint"]
    # 256 experts over ep 32: raising ep is open, and the table says the same
    assert "raise ep" in data["hint"]
    rc, out, _ = run(capsys, "estimate", "--model", "deepseek-v3", "--chip", "gb200",
                     "--chips", "64", "--tp", "2", "--ep", "32", "--etp", "1",
                     "--micro-batch", "1", "--zero", "3", "--recompute", "mla_up")
    assert rc == 1
    assert "raise ep" in " ".join(out.split())
    rc, out, _ = run(capsys, "estimate", "--model", "llama3-405b", "--chip", "gb200",
                     "--chips", "8", "-f", "json")
    assert rc == 1
    assert json.loads(out)["reason"].startswith("memory")
    assert "raise ep" not in json.loads(out)["hint"]


def test_a_chip_count_over_the_system_names_the_option_given(
        capsys: pytest.CaptureFixture[str]) -> None:
    """It named --chips for a count given in --chip-counts."""
    from clikit import one_line

    line = one_line(*run(capsys, "search", "--model", "llama3-8b", "--chip", "h100-sxm-80gb",
                         "--chips", "8", "--chip-counts", "4,16"))
    assert line.startswith("--chip-counts: chip_counts = 16")
    assert "8 chips" in line


def test_more_recomputed_layers_than_a_stage_holds_is_said(
        capsys: pytest.CaptureFixture[str]) -> None:
    """``--recompute-layers 100`` on a 32-layer model had been taken as all of them and
    printed ``rc_layers=100``: the layout cannot run as written, and the hint says why."""

    rc, out, _ = run(capsys, "estimate", "--model", "llama3-8b", "--chip", "h100-sxm-80gb",
                     "--recompute", "full", "--recompute-layers", 100, "-f", "json")
    assert rc == 1
    data = json.loads(out)
    assert data["feasible"] is False
    assert "recompute_layers 100 is more than the 32 layers a stage holds" in data["reason"]
    assert "recompute_layers no more than the layers a stage holds" in data["hint"]
    rc, out, _ = run(capsys, "estimate", "--model", "llama3-8b", "--chip", "h100-sxm-80gb",
                     "--recompute", "full", "--recompute-layers", 32, "-f", "json")
    assert rc == 0
    assert json.loads(out)["feasible"] is True
