"""Expert dispatch: node-deduplicated (DeepEP, HybridEP) or a plain all-to-all, and the
1F1B overlap that pairs a micro-batch's forward all-to-alls with another's backward.

``ep_overlap`` had meant both DeepEP-style deduplication and the overlap; Megatron-Bridge's
Qwen3-235B recipe on 256 H100 (R069) overlaps a plain alltoall dispatcher, which sends
every routed copy over InfiniBand. ``ep_dedup`` is the dispatch, declared once.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.plan.estimate import estimate
from ocplan.plan.plan import LAYOUT_FIELDS, Plan
from ocplan.results.validation import plan_from_row, read_cases, shape_from_row
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

DEV = Path(__file__).resolve().parents[2] / "shared" / "validation" / "training_dev.csv"
CAT = load_catalog()
QWEN = Workload(ModelShape.from_arch(CAT.model("qwen3-235b-a22b")), 4096, 2048, "fp8")


def ep_comm(plan: Plan, chips: int, chip: str = "h100-sxm-80gb") -> float:
    est = estimate(QWEN, plan, system_for_chip(CAT, chip, chips))
    assert est.feasible, est.reason
    return est.time.ep_comm_s


@pytest.mark.parametrize("overlap", [True, False])
def test_a_plain_all_to_all_costs_more_only_across_domains(overlap: bool) -> None:
    across = Plan(tp=2, pp=8, dp=16, ep=32, etp=1, ep_overlap=overlap)
    dedup, plain = ep_comm(across, 256), ep_comm(replace(across, ep_dedup=False), 256)
    # 32 ranks over 4 eight-GPU nodes: a token's 8 copies reach 2.7 other nodes on
    # average, once each when deduplicated, 6 times (8 x 24 / 32) when not
    assert plain > 1.5 * dedup
    # the same group inside one GB200 NVL72 domain crosses no scale-out link
    inside = Plan(tp=1, pp=8, dp=8, ep=8, ep_overlap=overlap)
    assert ep_comm(replace(inside, ep_dedup=False), 64, "gb200") == pytest.approx(
        ep_comm(inside, 64, "gb200"), rel=1e-12)


def test_the_overlap_hides_each_half_behind_the_other_phase() -> None:
    """Overlapped, a plain dispatch over InfiniBand outgrows the forward compute it
    hides behind (the backward's all-to-alls run under another micro-batch's forward,
    a third of its compute), so part of it shows; deduplicated, it all hides but the
    calibrated share's remainder."""
    plan = Plan(tp=2, pp=8, dp=16, ep=32, etp=1, ep_dedup=False)
    shown = ep_comm(plan, 256)
    inline = ep_comm(replace(plan, ep_overlap=False), 256)
    assert 0.0 < shown < inline
    deduplicated = ep_comm(replace(plan, ep_dedup=True), 256)
    deduplicated_inline = ep_comm(replace(plan, ep_dedup=True, ep_overlap=False), 256)
    assert deduplicated / deduplicated_inline < shown / inline


def test_the_field_is_declared_once_and_the_search_keeps_the_deduplicated_dispatch() -> None:
    field = next(f for f in LAYOUT_FIELDS if f.name == "ep_dedup")
    assert field.default is True
    assert field.search == "fixed"
    assert "ep_dedup=off" in Plan(ep=8, ep_dedup=False).label()
    assert "ep_dedup" not in Plan(ep=1, ep_dedup=False).label()  # idle without experts


@pytest.mark.skipif(not DEV.exists(), reason="needs ../shared/validation")
def test_the_validation_reads_the_dispatcher() -> None:
    rows = {r["case_id"]: r for r in read_cases(DEV)}

    def plan(case: str) -> Plan:
        row = rows[case]
        return plan_from_row(row, shape_from_row(row))

    # Megatron-Bridge Qwen3-235B on H100: alltoall dispatcher, overlapped
    assert not plan("R069").ep_dedup
    assert plan("R069").ep_overlap
    # its GB200 recipe dispatches with HybridEP
    assert plan("R232").ep_dedup
    # DeepSeek-V3's recipes dispatch with HybridEP
    assert plan("R067").ep_dedup
    # Primus without DeepEP: neither
    assert not plan("R204").ep_dedup
    assert not plan("R204").ep_overlap
