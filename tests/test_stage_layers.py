"""The first and last pipeline stages' layer counts (``first_stage_layers``,
``last_stage_layers``; Megatron-Core ``--decoder-first/last-pipeline-num-layers`` and
the stages of a ``--pipeline-model-parallel-layout``): one split rule, the compute,
memory and parameters it derives, the request's checks, and the Megatron-Bridge layouts
the validation reads."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.errors import Infeasible
from ocplan.plan.estimate import Estimate, estimate
from ocplan.plan.layout_arrays import derive_layout
from ocplan.plan.plan import LAYOUT, Plan, stage_split
from ocplan.plan.search import search
from ocplan.plan.space import _head_stage, training_space
from ocplan.reports.summary import estimate_rows
from ocplan.results.validation import (
    PIPELINE_LAYOUTS,
    automodel_stage_layers,
    pipeline_layout_stages,
    plan_from_row,
    shape_from_row,
)
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "validation" / "training_dev.csv"
CAT = load_catalog()
LLAMA8 = ModelShape.from_arch(CAT.model("llama3-8b"))
WL8 = Workload(LLAMA8, 8192, 64, "bf16")


def _est(wl: Workload, plan: Plan, chip: str = "h100-sxm-80gb") -> Estimate:
    return estimate(wl, plan, system_for_chip(CAT, chip, plan.chips))


def test_the_split_rule_gives_the_rest_to_the_stages_not_named() -> None:
    # DeepSeek-V3's 16-chunk layout at pp 8: first stage 8, last 5 (and the module)
    assert tuple(stage_split(61, 8, False, 1, 8, 5)) == (8, 8, 5)
    # only the last named: the 15 others share 60 layers, 4 each
    assert tuple(stage_split(61, 16, False, 1, 0, 1)) == (4, 4, 1)
    # only the first named: 70 layers over 3 stages, ceil 24
    assert tuple(stage_split(80, 4, False, 0, 10, 0)) == (10, 24, 24)
    # a named stage may be the fullest
    assert tuple(stage_split(61, 2, False, 1, 32, 29)) == (32, 32, 29)
    # nothing named: the ends rule (Llama 3 405B at pp 16, 128 places) or the even split
    assert tuple(stage_split(126, 16, True)) == (7, 8, 7)
    assert tuple(stage_split(61, 8, True, 1)) == (7, 8, 6)   # 64 places; the module's
    assert tuple(stage_split(94, 2, True)) == (47, 47, 47)
    assert tuple(stage_split(80, 4, False)) == (20, 20, 20)
    # one stage: everything, whatever is named
    assert tuple(stage_split(80, 1, False, 0, 10, 5)) == (80, 80, 80)


def test_megatron_layout_strings_split_by_stage() -> None:
    ds = "Et*4|(t*4|)*14tmL"
    assert pipeline_layout_stages(ds, 16) == (4, 1)
    assert pipeline_layout_stages(ds, 8) == (8, 5)     # chunks 0, 8 and 7, 15
    assert pipeline_layout_stages(ds, 4) == (16, 13)
    assert pipeline_layout_stages(ds, 2) == (32, 29)
    assert pipeline_layout_stages("Et|(tt|)*30mL", 8) == (7, 6)
    assert pipeline_layout_stages("Et*16|t*16|t*16|t*13L", 4) == (16, 13)
    for chunks, layout in PIPELINE_LAYOUTS.items():
        assert layout.count("|") + 1 <= chunks  # repeats write out the rest
        first, last = pipeline_layout_stages(layout, chunks)
        assert first >= last >= 0
    with pytest.raises(AssertionError, match="chunks over pp"):
        pipeline_layout_stages(ds, 3)


def test_a_lighter_head_stage_hides_the_head() -> None:
    """Llama 3 8B at pp 4: the head's stage with fewer layers costs the slowest stage
    only the head's excess over the layers it gave up (``head_places``)."""
    even = Plan(tp=1, pp=4, dp=2, micro_batch=1)
    light = replace(even, last_stage_layers=5)
    d = derive_layout(WL8, light.encoded())
    assert float(d.per_stage) == 9.0        # 27 layers over the 3 other stages
    assert float(d.first_layers) == 9.0
    assert float(d.head_places) == 4.0
    t_even = _est(WL8, even).time
    t_light = _est(WL8, light).time
    t_six = _est(WL8, replace(even, last_stage_layers=6)).time
    assert t_even is not None
    assert t_light is not None
    assert t_six is not None
    # even: 8 layers and the whole head (about two layers' time at 8k tokens); light:
    # the 9-layer stages bind, the head runs in the 4 places its stage gave up
    assert t_light.compute_s < t_even.compute_s
    # 6 layers leave it 3 places, still enough: the fullest stage alone sets the pace
    assert t_six.compute_s == pytest.approx(t_light.compute_s, rel=1e-12)
    # named as the even split would give it, nothing changes
    same = _est(WL8, replace(even, last_stage_layers=8)).time
    assert same is not None
    assert same.compute_s == pytest.approx(t_even.compute_s, rel=1e-12)


def test_the_fuller_first_stage_holds_the_parameters_and_activations() -> None:
    even = Plan(tp=1, pp=4, dp=2, micro_batch=1)
    light = replace(even, last_stage_layers=5)    # first stage 9 layers and the embedding
    m_even, m_light = _est(WL8, even).memory, _est(WL8, light).memory
    assert m_even is not None
    assert m_light is not None
    layer = (LLAMA8.mean_token_mixer_params + LLAMA8.dense_mlp_params)
    want = (9 * layer + LLAMA8.embedding_params) / (8 * layer + LLAMA8.head_params)
    assert m_light.weights_bytes / m_even.weights_bytes == pytest.approx(want, rel=1e-9)
    assert m_light.activations_bytes / m_even.activations_bytes == pytest.approx(9 / 8)
    # a first stage lighter than the rest: the second stage's (p - 1) / p share of the
    # in-flight micro-batches binds (first 2 layers; the others 10 each)
    short = replace(even, first_stage_layers=2)
    m_short = _est(WL8, short).memory
    assert m_short is not None
    assert m_short.activations_bytes / m_even.activations_bytes == pytest.approx(
        (10 * 3 / 4) / 8)


def test_splits_that_cannot_be_are_refused_with_the_reason() -> None:
    with pytest.raises(Infeasible, match="needs pp > 1"):
        Plan(tp=1, pp=1, dp=8, last_stage_layers=3).check(WL8)
    with pytest.raises(Infeasible, match="both set the pipeline split"):
        Plan(pp=4, dp=2, ends_as_layers=True, first_stage_layers=7).check(WL8)
    with pytest.raises(Infeasible, match="hold 30 layers, not the model's 32"):
        Plan(pp=2, dp=4, first_stage_layers=15, last_stage_layers=15).check(WL8)
    with pytest.raises(Infeasible, match="leave 1 of the 32 layers for the other 2 stages"):
        Plan(pp=4, dp=2, first_stage_layers=16, last_stage_layers=15).check(WL8)
    with pytest.raises(Infeasible, match="last_stage_layers 40 is more than the model's 32"):
        Plan(pp=4, dp=2, last_stage_layers=40).check(WL8)
    with pytest.raises(Infeasible, match="last_stage_layers 30 leaves 2 of the 32 layers"):
        Plan(pp=4, dp=2, last_stage_layers=30).check(WL8)
    Plan(pp=2, dp=4, first_stage_layers=17, last_stage_layers=15).check(WL8)
    job = {"model": "llama3-8b", "chip": "h100-sxm-80gb", "chips": 8, "global_batch": 64,
           "seq_len": 8192, "pp": 4, "ends_as_layers": True}
    with pytest.raises(ValidationError, match="ends_as_layers = false"):
        api.EstimateRequest.model_validate(job | {"last_stage_layers": 5})
    req = api.EstimateRequest.model_validate(job | {"ends_as_layers": False,
                                                    "last_stage_layers": 5})
    result, _, _ = api.run_estimate(CAT, req)
    assert result.feasible
    assert "last_layers=5" in result.plan.label()
    # declared once: a request and the CLI take it, a search leaves it to the split rule
    assert LAYOUT["last_stage_layers"].search == "derived"
    assert "last_layers" not in Plan(pp=1, last_stage_layers=5).label()   # idle


@pytest.mark.skipif(not DEV.exists(), reason="needs ../shared/validation")
def test_the_validation_reads_megatron_bridge_layouts() -> None:
    with DEV.open(encoding="utf-8") as handle:
        rows = {r["case_id"]: r for r in csv.DictReader(handle)}

    def split(case: str) -> tuple[int | None, int | None, bool]:
        plan = plan_from_row(rows[case], shape_from_row(rows[case]))
        return plan.first_stage_layers, plan.last_stage_layers, plan.ends_as_layers

    assert split("R064") == (32, 29, False)   # GB300 DeepSeek-V3, PP2 VP8
    assert split("R067") == (8, 5, False)     # B200 DeepSeek-V3, PP8 VP2
    assert split("R235") == (16, 13, False)   # GB300 Kimi-K2, PP4 VP4
    assert split("R241") == (7, 6, False)     # H100 DeepSeek-V3, PP8 VP4: 32 chunks
    # NeMo Automodel splits its own way: 61 layers over 32 virtual stages by divmod,
    # the first 29 of 2 layers and the last 3 of 1; rank r runs r, r + 4, ...
    assert split("R242") == (16, 15, False)
    assert split("R243") == (16, 15, False)
    assert automodel_stage_layers(61, 4, 1) == (16, 15)
    assert automodel_stage_layers(10, 2, 2) == (5, 5)
    assert automodel_stage_layers(62, 4, 8) == (16, 15)   # 30 of 2, 2 of 1
    assert split("R246")[:2] == (None, None)      # Automodel, no pipeline
    assert split("R069")[:2] == (None, None)      # Qwen3-235B: the ends counted
    assert split("R069")[2]
    # a reduced-depth variant is not the 61-layer recipe's layout: the ends rule decides
    short = dict(rows["R067"], n_layers="29")
    assert plan_from_row(short, shape_from_row(short)).last_stage_layers is None


def test_the_search_gives_the_head_stage_what_the_even_share_leaves() -> None:
    # 61 layers: at p 16 four a stage and the last one (Megatron-Bridge's DeepSeek-V3
    # and Kimi-K2 layouts), p 8 eight and five, p 4 sixteen and thirteen, p 2 31 and
    # 30 (Megatron-Bridge's own chunks of four give 32 and 29 there); an even
    # split, one stage, or a last stage with fewer layers than chunks keep it unset
    pp = np.array([16, 8, 4, 2, 1, 16, 8])
    vpp = np.array([1, 2, 4, 8, 1, 2, 1])
    assert list(_head_stage(61, pp, vpp)) == [1, 5, 13, 30, 0, 0, 5]
    assert list(_head_stage(64, pp, vpp)) == [0] * 7
    space = training_space(chips=256, n_layers=61, n_heads=128, n_kv_heads=128,
                           seq_len=4096, global_batch=4096, domain=8, experts=256,
                           mtp_depth=1)
    cols, pruned = space.candidates()
    assert pruned["dominated"] > 0
    ends, last, p16 = cols["ends_as_layers"], cols["last_stage_layers"], cols["pp"] == 16
    assert not np.any((ends == 1) & (last > 0))          # one split rule per layout
    # where counting the ends pays (64 places in 16 stages) both splits are searched:
    # neither dominates (the ends relieve the first stage, the slack the head's)
    assert np.any(p16 & (ends == 1))
    assert np.any(p16 & (ends == 0) & (last == 1))
    assert not np.any((cols["pp"] == 1) & (last > 0))


def test_a_searched_split_estimates_as_it_was_searched() -> None:
    """DeepSeek-V3 on 256 B200 at Megatron-Bridge's p 8 x v 2: the best layout gives the
    head's stage five layers (its head and MTP module outweigh two layers, so the slack
    beats counting the ends), its label says so, and its scalar estimate is the
    vectorized one (the search asserts that) and faster than the even split's."""
    ds = ModelShape.from_arch(CAT.model("deepseek-v3"))
    wl = Workload(ds, 4096, 4096, "fp8")
    system = system_for_chip(CAT, "b200", 256)
    result = search(wl, system, 256, fixed={"pp": 8, "vpp": 2}, top_k=3)
    best = result.best
    assert best is not None
    assert best.plan.last_stage_layers == 5
    assert not best.plan.ends_as_layers
    assert "last_layers=5" in best.plan.label()
    even = estimate(wl, replace(best.plan, last_stage_layers=None), system)
    ends = estimate(wl, replace(best.plan, last_stage_layers=None, ends_as_layers=True),
                    system)
    assert best.step_s is not None
    assert even.step_s is not None
    assert ends.step_s is not None
    assert best.step_s < ends.step_s < even.step_s


def test_an_estimate_states_its_split_and_the_table_shows_it() -> None:
    light = Plan(tp=1, pp=4, dp=2, micro_batch=1, last_stage_layers=5)
    est = _est(WL8, light)
    assert est.stage_layers == (9, 9, 5)
    assert tuple(est.as_dict()["stage_layers"]) == (9, 9, 5)
    assert _est(WL8, Plan(tp=1, pp=4, dp=2)).stage_layers == (8, 8, 8)
    assert _est(WL8, Plan(tp=1, pp=1, dp=8)).stage_layers is None
    rows = dict(estimate_rows(est, {}, "USD"))
    assert rows["pipeline stages"].startswith("9 / 9 / 5 layers")
    # a split that cannot be has none; one that does not fit in memory keeps it
    assert _est(WL8, Plan(pp=4, dp=2, last_stage_layers=40)).stage_layers is None
    big = Workload(ModelShape.from_arch(CAT.model("llama3-70b")), 8192, 64, "bf16")
    short = _est(big, Plan(tp=1, pp=2, dp=4, last_stage_layers=30))
    assert not short.feasible
    assert short.reason is not None
    assert short.reason.startswith("memory")
    assert short.stage_layers == (50, 50, 30)
