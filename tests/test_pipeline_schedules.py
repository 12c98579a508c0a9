"""Bidirectional pipeline schedules (DualPipe, DualPipeV): the bubble law of the DualPipe
README, what the engine charges for them against 1F1B, the conditions they run under
(the plan's check and the search's constraints agree), and DeepSeek-V3's published
training rate on 2,048 H800s, which no fit has seen."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from ocplan.api import EstimateRequest, resolve_job, training_workload
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.errors import Infeasible
from ocplan.plan.calibration import load_calibration
from ocplan.plan.engine import evaluate, system_model
from ocplan.plan.estimate import estimate
from ocplan.plan.pipeline_schedules import (
    PIPELINE_SCHEDULES,
    WGRAD_SHARE,
    bidirectional_bubble,
    schedule,
)
from ocplan.plan.plan import LAYOUT, RECOMPUTE_AUTO, Plan
from ocplan.plan.recompute import model_features
from ocplan.plan.search import _eval_columns, search
from ocplan.plan.space import training_space
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

CAT = load_catalog()
CAL = load_calibration()
SCHEDULE = LAYOUT["pp_schedule"]


def _bubble(pp: float, share: float, layers: float, f: float, b: float, r: float) -> float:
    return float(bidirectional_bubble(np.array(pp), np.array(share), np.array(layers),
                                      np.array(f), np.array(b), np.array(r)))


# ---- 1. the README's law ---------------------------------------------------------------

def test_dualpipe_bubble_is_the_readme_law_in_chunk_times() -> None:
    """DualPipe on p = 8 ranks, chunks F = 1, B = 2, W = B/2 = 1: (8/2 - 1)(F&B + B -
    3W) = 3 (3 + 2 - 3) = 6 s over a micro-batch's F + B = 3 s: 2 micro-batch times
    (1F1B: p - 1 = 7). Recomputing the forward (R = 1) lengthens the full backward to 3:
    3 (4 + 3 - 3) / 4 = 3."""
    assert WGRAD_SHARE == 0.5
    assert _bubble(8, 1.0, 10, 1.0, 2.0, 0.0) == pytest.approx(2.0)
    assert _bubble(8, 1.0, 10, 1.0, 2.0, 1.0) == pytest.approx(3.0)
    # two ranks: p/2 - 1 = 0, no bubble at all
    assert _bubble(2, 1.0, 10, 1.0, 2.0, 0.0) == 0.0


def test_dualpipev_bubble_counts_its_half_stages() -> None:
    """DualPipeV on 4 ranks runs 8 half stages: chunk F = 0.5, B = 1, W = 0.5 of a rank's
    F = 1, B = 2; (8/2 - 1)(1.5 + 1 - 1.5) = 3 s over 3 s a micro-batch: 1. With 7
    layers a rank its halves hold 4 and 3, and it keeps the pace of 4: 4/7 of a rank's
    time a chunk instead of 1/2."""
    assert _bubble(4, 0.5, 8, 1.0, 2.0, 0.0) == pytest.approx(1.0)
    assert _bubble(4, 0.5, 7, 1.0, 2.0, 0.0) == pytest.approx(1.0 * (4 / 7) / 0.5)


def test_every_schedule_is_declared_with_its_conditions() -> None:
    """The plan's choices are the declared schedules, 1F1B first (the default)."""
    assert SCHEDULE.choices == tuple(s.name for s in PIPELINE_SCHEDULES)
    assert SCHEDULE.default == "1f1b"
    assert not schedule("1f1b").bidirectional
    assert schedule("dualpipe").param_copies == 2
    assert schedule("dualpipe").even_stages
    assert schedule("dualpipev").param_copies == 1
    assert not schedule("dualpipev").even_stages


# ---- 2. what the engine charges ---------------------------------------------------------

LLAMA = Workload(ModelShape.from_arch(CAT.model("llama3-70b")), 4096, 256, "bf16")
SYSTEM = system_for_chip(CAT, "h100-sxm-80gb", 64)
SM = system_model(SYSTEM)


def _terms(pp_schedule: str, recompute: str = "none", wl: Workload = LLAMA,
           **layout: Any) -> Any:
    plan = Plan(tp=8, pp=8, dp=1, micro_batch=1, recompute=recompute,
                pp_schedule=pp_schedule, **layout)  # type: ignore[arg-type]
    return evaluate(wl, SM, CAL, plan.encoded())


def _per_microbatch_s(t: Any) -> float:
    """One micro-batch's time on the slowest rank: what the bubble is counted in."""
    return float((t["step_s"] - t["bubble_s"] - t["pp_comm_s"] - t["dp_comm_s"]
                  - t["optimizer_s"]) / t["micro_batches"])


def test_dualpipe_bubble_is_a_fraction_of_1f1b() -> None:
    """Llama 3.1 70B on 8 stages: 1F1B idles p - 1 = 7 micro-batch times; DualPipe
    (p/2 - 1) = 3 times (F + 2B - 3W)/(F + B), which is 2/3 at B = 2F and, with the
    attention core's backward at 2.5 forwards, a little more: between 0.55 and 0.8.
    With full recompute the backward carries a forward more, and the share is near 1."""
    one = _terms("1f1b")
    assert float(one["bubble_s"]) / _per_microbatch_s(one) == pytest.approx(7.0)
    dual = _terms("dualpipe")
    share = float(dual["bubble_s"]) / _per_microbatch_s(dual) / 3.0
    assert 0.55 <= share <= 0.8, share
    full = _terms("dualpipe", recompute="full")
    share_full = float(full["bubble_s"]) / _per_microbatch_s(full) / 3.0
    assert 0.9 <= share_full <= 1.05, share_full
    v = _terms("dualpipev")
    # DualPipeV: 16 half stages, (16/2 - 1) x 1/2 = 3.5 micro-batch times of the share
    assert float(v["bubble_s"]) / _per_microbatch_s(v) == pytest.approx(3.5 * share,
                                                                         rel=1e-9)


def test_a_paired_rank_shares_the_head_over_its_two_stages() -> None:
    """An even split (10 layers a stage) leaves the LM head and loss on the last stage
    beyond its layers; 1F1B's slowest stage pays all of it each micro-batch, the paired
    first rank of DualPipe and DualPipeV (embedding stage with head stage) half."""
    one, dual, v = _terms("1f1b"), _terms("dualpipe"), _terms("dualpipev")
    assert float(dual["compute_s"]) == pytest.approx(float(v["compute_s"]), rel=1e-12)
    assert float(dual["compute_s"]) < float(one["compute_s"])
    # 1F1B pays n t_L + t_H, the pair n t_L + t_H / 2. The head's GEMM (2 h V = 2.1
    # GFLOP a token) is about 1.15 of a layer's (2 x 0.86 B parameters plus causal
    # attention at 4K), so the saving is about 0.58 / 11.15 = 5 % of 1F1B's stage
    saving = 1.0 - float(dual["compute_s"]) / float(one["compute_s"])
    assert 0.04 <= saving <= 0.065, saving


def test_dualpipe_holds_two_copies_and_one_micro_batch_more() -> None:
    """Llama 3.1 70B (embedding and head of equal size, no MTP): 1F1B's rank holds its
    layers and one edge; DualPipe's first rank two copies of its layers' worth and both
    edges, exactly twice; DualPipeV's the layers once and both edges. Activations: p + 1
    micro-batches (DualPipe) and p + 1/2 (DualPipeV) against 1F1B's p, of a rank's 10
    layers."""
    one, dual, v = _terms("1f1b"), _terms("dualpipe"), _terms("dualpipev")
    assert float(dual["weights_bytes"]) == pytest.approx(2 * float(one["weights_bytes"]))
    assert float(one["weights_bytes"]) < float(v["weights_bytes"]) \
        < float(dual["weights_bytes"])
    assert float(dual["activations_bytes"]) == pytest.approx(
        9 / 8 * float(one["activations_bytes"]))
    assert float(v["activations_bytes"]) == pytest.approx(
        8.5 / 8 * float(one["activations_bytes"]))


def test_without_a_pipeline_a_schedule_changes_nothing() -> None:
    """pp = 1: no stages to pair, the schedule is idle (as sequence parallelism at tp 1)."""
    base = Plan(tp=8, pp=1, dp=8, micro_batch=1, recompute="full")
    ref = evaluate(LLAMA, SM, CAL, base.encoded())
    for name in ("dualpipe", "dualpipev"):
        got = evaluate(LLAMA, SM, CAL, Plan(tp=8, pp=1, dp=8, micro_batch=1,
                                            recompute="full",
                                            pp_schedule=name).encoded())  # type: ignore[arg-type]
        for key, value in ref.items():
            assert float(got[key]) == float(value), key


# ---- 3. the conditions they run under -------------------------------------------------

@pytest.mark.parametrize(("layout", "words"), [
    (dict(pp=7, dp=1, tp=8, pp_schedule="dualpipe"), "an even pp"),
    (dict(pp=8, vpp=2, tp=8, pp_schedule="dualpipev"), "vpp 1"),
    (dict(pp=8, tp=8, micro_batch=32, pp_schedule="dualpipe"), "at least 16"),
    (dict(pp=4, tp=8, micro_batch=28, pp_schedule="dualpipe"), "an even number"),
])
def test_a_schedule_refuses_what_it_cannot_run(layout: dict[str, Any], words: str) -> None:
    wl = Workload(LLAMA.model, 4096, 252 if layout.get("micro_batch") == 28 else 256, "bf16")
    plan = Plan(**layout)
    with pytest.raises(Infeasible) as err:
        plan.check(wl)
    assert err.value.reason == "schedule"
    assert words in str(err.value)
    assert layout["pp_schedule"] in str(err.value)


def test_dualpipev_needs_two_layers_a_rank() -> None:
    """80 layers on 64 ranks fill 1F1B's stages but not DualPipeV's 128 half stages."""
    plan = Plan(pp=64, micro_batch=1, pp_schedule="dualpipev")
    Plan(pp=64, micro_batch=1).check(Workload(LLAMA.model, 4096, 1024, "bf16"))
    with pytest.raises(Infeasible, match=r"^schedule: .*128 stages"):
        plan.check(Workload(LLAMA.model, 4096, 1024, "bf16"))


@pytest.mark.parametrize("name", ["dualpipe", "dualpipev"])
def test_the_search_space_keeps_what_the_plan_accepts(name: str) -> None:
    """Every candidate of the space with the schedule held passes the plan's check, and
    every layout the plan accepts among the full space's candidates is kept: the
    constraints mirror :meth:`Plan.check`. Sampled layouts that fit agree between the
    vectorized and the scalar evaluation."""
    m = ModelShape.from_arch(CAT.model("mixtral-8x7b"))
    wl = Workload(m, 4096, 512, "bf16")
    system = system_for_chip(CAT, "h100-sxm-80gb", 64)
    kw = dict(chips=64, n_layers=m.n_layers, n_heads=m.n_heads, n_kv_heads=m.n_kv_heads,
              seq_len=wl.seq_len, global_batch=wl.global_batch,
              domain=system.chips_per_server, experts=m.moe_experts,
              features=model_features(m))
    held, _ = training_space(**kw, pp_schedule=schedule(name)).candidates()  # type: ignore[arg-type]
    full, _ = training_space(**kw).candidates()  # type: ignore[arg-type]
    code = SCHEDULE.encode(name)

    def accepted(cols: dict[str, np.ndarray], i: int) -> bool:
        row = {k: v for k, v in cols.items()} | {"pp_schedule": np.array(code)}
        row["recompute"] = np.where(row["recompute"] == RECOMPUTE_AUTO,
                                    LAYOUT["recompute"].code("full"), row["recompute"])
        try:
            Plan.decode_row(row, i).check(wl)
        except Infeasible:
            return False
        return True

    rng = np.random.default_rng(7)
    sample = rng.choice(len(held["tp"]), size=400, replace=False)
    assert all(accepted(held, int(i)) for i in sample)
    key = ("tp", "pp", "cp", "ep", "etp", "vpp", "micro_batch")
    kept = {tuple(int(held[k][i]) for k in key) for i in range(len(held["tp"]))}
    for i in rng.choice(len(full["tp"]), size=2000, replace=False):
        if accepted(full, int(i)):
            assert tuple(int(full[k][i]) for k in key) in kept
    assert any(int(held["pp"][i]) > 1 for i in sample)
    cols = {k: v[sample] for k, v in held.items()}
    cols["recompute"] = np.where(cols["recompute"] == RECOMPUTE_AUTO,
                                 LAYOUT["recompute"].code("full"), cols["recompute"])
    cols["pp_schedule"] = np.full(len(sample), code)
    vec = _eval_columns(wl, system, CAL, Plan.columns(**cols))
    fits = np.flatnonzero(vec["memory_bytes"] <= vec["capacity_bytes"])
    assert len(fits) >= 50
    for i in fits:
        plan = Plan.decode_row(cols, int(i))
        e = estimate(wl, plan, system, CAL)
        assert e.feasible, f"{plan}: {e.reason}"
        assert math.isclose(e.step_s, float(vec["step_s"][i]), rel_tol=1e-9), plan


def test_a_search_given_dualpipe_returns_its_own_scalar_estimates() -> None:
    m = ModelShape.from_arch(CAT.model("mixtral-8x7b"))
    wl = Workload(m, 4096, 512, "bf16")
    system = system_for_chip(CAT, "h100-sxm-80gb", 64)
    found = search(wl, system, 64, calibration=CAL, top_k=5,
                   fixed={"pp_schedule": "dualpipe"})
    assert found.top
    for e in found.top:
        assert e.plan.pp_schedule == "dualpipe"
        again = estimate(wl, e.plan, system, CAL)
        assert again.feasible
        assert math.isclose(again.step_s, e.step_s, rel_tol=1e-9)


def test_the_estimate_says_what_the_schedule_needs(capsys: pytest.CaptureFixture[str]) -> None:
    """An odd pp under DualPipe is a result with its reason and the schedule's own hint
    (exit 1, valid JSON), not the sizes' divisibility hint."""
    import json

    from clikit import run
    rc, out, _ = run(capsys, "estimate", "--model", "llama3-70b", "--chip", "h100-sxm-80gb",
                     "--chips", "56", "--tp", "8", "--pp", "7", "--global-batch", "56",
                     "--pp-schedule", "dualpipe", "-f", "json")
    assert rc == 1
    data = json.loads(out)
    assert data["feasible"] is False
    assert data["reason"] == "schedule: pp_schedule dualpipe cannot run pp = 7 (an even pp)"
    assert "an even pp" in data["hint"]
    assert "pp_schedule 1f1b" in data["hint"]


# ---- 4. DeepSeek-V3 on 2,048 H800s ---------------------------------------------------

#: DeepSeek-AI, DeepSeek-V3 Technical Report (arXiv 2412.19437), §1: "training
#: DeepSeek-V3 on each trillion tokens requires only 180K H800 GPU hours, i.e., 3.7 days
#: on our cluster with 2048 H800 GPUs": 1e12 / (180e3 x 3600) tokens per GPU-second.
DEEPSEEK_V3_TOKENS_PER_S_PER_GPU = 1e12 / (180e3 * 3600)
#: The report's recipe (§3.2, §4.2): 16-way pipeline (DualPipe), 64-way expert
#: parallelism over 8 nodes, ZeRO-1 data parallelism, no tensor parallelism, FP8 GEMMs,
#: 4K sequences, batch 15,360 for most of the run, RMSNorm, the MLA up-projections and
#: the SwiGLU output recomputed (§3.2.3, §3.3.3), AdamW's moments in BF16 with an FP32
#: master (§3.3.3); the 61 layers and the MTP module split 4
#: a stage with the head's stage holding 1 (the report does not state the split; DualPipe
#: pairs the two end stages on one rank).
DEEPSEEK_V3_REQUEST = dict(model="deepseek-v3", chip="h800-sxm-80gb", chips=2048,
                           global_batch=15360, seq_len=4096, precision="fp8", pp=16,
                           ep=64, micro_batch=1, recompute="norm_act_mla_up",
                           last_stage_layers=1, pp_schedule="dualpipe",
                           optimizer_states="bf16_moments")


def _deepseek_v3(**changes: Any) -> Any:
    """Every step term of the report's recipe (with ``changes`` to its layout), its
    memory not checked: the engine's arrays, as the estimate reads them."""
    req = EstimateRequest(**DEEPSEEK_V3_REQUEST | changes)  # type: ignore[arg-type]
    system, wl, chips = resolve_job(CAT, req, None, "request",
                                    lambda: training_workload(CAT, req))
    layout = req.layout()
    plan = Plan(**layout, dp=chips // (layout["tp"] * layout["pp"] * layout["cp"]))
    return evaluate(wl, system_model(system), CAL, plan.encoded())


def test_deepseek_v3_on_2048_h800s_lands_in_the_hopper_range() -> None:
    """Never fitted: the step time of the report's recipe falls in the range the hopper
    family's published runs fall in when predicted without their publication (the
    calibration's likely range), against the report's 1,543 tokens/s per GPU."""
    t = _deepseek_v3()
    err = float(t["tokens_per_s_per_chip"]) / DEEPSEEK_V3_TOKENS_PER_S_PER_GPU - 1.0
    span = CAL.for_family("hopper").held_out_range_pct
    assert span is not None
    low, high = span
    assert low / 100 <= err <= high / 100, err
    # the schedule is what gets it there: 1F1B at the same split idles 15 micro-batch
    # times of 120, DualPipe about 5
    one = _deepseek_v3(pp_schedule="1f1b")
    assert float(one["bubble_s"]) > 2.5 * float(t["bubble_s"])


def test_deepseek_v3_recipe_fits_an_h800() -> None:
    """DualPipe's two parameter copies and p + 1 micro-batches in flight, with the
    report's recompute and optimizer states, fit the H800's 80 GB (the memory model
    keeps the SwiGLU input in BF16 where the report caches it in FP8, so the run had
    more room than this); without the norms and SwiGLU recomputed they do not."""
    t = _deepseek_v3()
    assert float(t["memory_bytes"]) <= float(t["capacity_bytes"])
    up_only = _deepseek_v3(recompute="mla_up")
    assert float(up_only["memory_bytes"]) > float(up_only["capacity_bytes"])


# ---- 5. the timeline a person sees ---------------------------------------------------

@pytest.mark.parametrize("name", ["dualpipe", "dualpipev"])
def test_the_timeline_draws_the_schedule_with_its_weight_gradients(name: str) -> None:
    """The workbench's and the report's Gantt chart of a bidirectional layout is that
    schedule's (:func:`ocplan.plan.schedule.bidirectional`): every rank, the first 32
    micro-batches, forwards and backwards in both phases, and the weight gradients it
    splits off drawn on their own."""
    from ocplan import api
    from ocplan.reports.figures import timeline_figure
    req = EstimateRequest(model="llama3-70b", chip="h100-sxm-80gb", chips=64,
                          global_batch=256, seq_len=4096, tp=8, pp=8, micro_batch=1,
                          recompute="full", pp_schedule=name)  # type: ignore[arg-type]
    result, _, wl = api.run_estimate(CAT, req)
    assert result.feasible, result.reason
    events = api.pipeline_timeline(result, wl)
    assert {e["stage"] for e in events} == set(range(8))
    assert {e["kind"] for e in events} == {"F", "B", "W"}
    assert {e["chunk"] for e in events} == {0, 1}
    assert {e["micro_batch"] for e in events if e["kind"] != "W"} == set(range(32))
    fig = timeline_figure(events, result.plan.micro_batches(wl))
    assert [t["name"] for t in fig["data"]] == ["forward", "backward", "weight gradients"]
    assert "first 32 of 256" in fig["layout"]["title"]["text"]
