"""Expert tensor parallelism that fits the stage: an unset ``etp`` is ``tp`` (Megatron-Core's
default), and ``ep x etp`` must divide a stage's ``tp x dp x cp`` ranks, as Megatron-Core
requires. Before, an unset ``etp`` skipped the rule, so tp = 2 with ep = 64 on 64 GB200s
(an expert group of 128 ranks on 64 chips) was estimated, its all-to-all placed across
two NVLink domains of a one-rack system; the search offered such layouts too."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.plan.plan import Plan
from ocplan.plan.search import search
from ocplan.results.validation import plan_from_row, read_cases, shape_from_row
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

DEV = Path(__file__).resolve().parents[2] / "shared" / "validation" / "training_dev.csv"


def test_the_search_offers_only_expert_groups_that_fit_and_whole_experts() -> None:
    cat = load_catalog()
    wl = Workload(ModelShape.from_arch(cat.model("qwen3-235b-a22b")), 4096, 1024, "fp8")
    found = search(wl, system_for_chip(cat, "gb200", 64), 64, top_k=20)
    assert found.top
    for est in found.top:
        p = est.plan
        assert (p.tp * p.dp * p.cp) % (p.ep * p.expert_tp) == 0, p.label()
        # every row checks as a plan the user could have typed
        p.check(wl)
    # tensor parallelism with whole experts is among what it weighs (etp 1, tp > 1)
    assert any(e.plan.tp > 1 and e.plan.etp == 1 for e in found.top)


def test_a_dense_search_never_sets_expert_tp() -> None:
    cat = load_catalog()
    wl = Workload(ModelShape.from_arch(cat.model("llama3-8b")), 4096, 64, "bf16")
    found = search(wl, system_for_chip(cat, "h100-sxm-80gb", 8), 8, top_k=10)
    assert found.top
    assert all(e.plan.etp is None for e in found.top)


@pytest.mark.skipif(not DEV.exists(), reason="needs ../shared/validation")
def test_the_validation_reads_expert_tp_from_the_recipe_or_the_rule() -> None:
    rows = {r["case_id"]: r for r in read_cases(DEV)}

    def plan(case: str) -> Plan:
        row = rows[case]
        return plan_from_row(row, shape_from_row(row))

    # Megatron-Bridge's MoE presets set expert_tensor_parallel_size=1: its TP 2 rows
    # (Qwen3-235B on 256 H100 at EP 32, whose 32 ranks a stage could not hold 32 x 2;
    # DeepSeek-V3 at EP 64 on 1,024) keep experts whole
    assert plan("R069").etp == 1
    assert plan("R241").etp == 1
    # MindSpeed's Mixtral on Ascend at TP 8, EP 1: Megatron-Core's default
    assert plan("R255").etp is None
    assert plan("R255").expert_tp == 8
    # a dense row has nothing to split
    assert plan("R022").etp is None
