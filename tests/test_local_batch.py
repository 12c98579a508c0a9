"""A pipeline's local batch (``Plan.local_batch``: PyTorch pipelining's
``local_batch_size`` in torchtitan and NeMo AutoModel): a step whose batch is several
local batches runs the pipeline schedule once per local batch, each run with its own
fill and drain; the gradients are reduced once a step (AutoModel defers the sync to the
step's last backward). The engine against the schedule's simulation, the plan's checks,
the search holding the field, and the published AutoModel run the validation reads it
from."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.cli.main import app
from ocplan.plan.estimate import Estimate, estimate
from ocplan.plan.layout_arrays import derive_layout
from ocplan.plan.plan import Plan
from ocplan.plan.schedule import one_f_one_b
from ocplan.plan.search import search
from ocplan.results.validation import plan_from_row, shape_from_row
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "validation" / "training_dev.csv"
CAT = load_catalog()
LLAMA70 = ModelShape.from_arch(CAT.model("llama3-70b"))
# 64 sequences over dp 2: 32 a rank, 32 micro-batches of one sequence a step
WL = Workload(LLAMA70, 4096, 64, "bf16")
BASE = Plan(tp=8, pp=4, dp=2, micro_batch=1, zero=1, recompute="full")


def _est(plan: Plan, wl: Workload = WL) -> Estimate:
    return estimate(wl, plan, system_for_chip(CAT, "h100-sxm-80gb", plan.chips))


def _per_micro_batch_s(e: Estimate, m: int) -> float:
    t = e.time
    assert t is not None
    return (t.compute_s + t.recompute_s + t.tp_comm_s + t.cp_comm_s + t.ep_comm_s) / m


@pytest.mark.parametrize(("vpp", "local"), [(1, 8), (1, 16), (2, 8), (4, 4)])
def test_a_step_of_runs_is_that_many_simulated_schedules(vpp: int, local: int) -> None:
    """Compute and bubble of a step of ``r`` runs equal ``r`` makespans of the 1F1B
    (interleaved) schedule simulated over one run's micro-batches."""
    plan = replace(BASE, vpp=vpp, local_batch=local)
    e = _est(plan)
    assert e.feasible, e.reason
    assert e.time is not None
    m, m_run = plan.micro_batches(WL), plan.micro_batches_per_run(WL)
    assert (m, m_run) == (32, local)
    assert plan.pipeline_runs(WL) == 32 // local
    per_mb = _per_micro_batch_s(e, m)
    _, makespan = one_f_one_b(plan.pp, m_run, per_mb / 3, 2 * per_mb / 3, vpp)
    runs = m // m_run
    assert m * per_mb + e.time.bubble_s == pytest.approx(runs * makespan, rel=1e-9)


def test_more_runs_cost_more_fills_and_drains_and_nothing_else() -> None:
    whole = _est(BASE)
    one_run = _est(replace(BASE, local_batch=32))
    four = _est(replace(BASE, local_batch=8))
    assert whole.time is not None
    assert four.time is not None
    assert one_run.time is not None
    # one run of the whole batch is the Megatron-LM default, term for term
    assert one_run.time == whole.time
    assert one_run.step_s == whole.step_s
    assert four.time.compute_s == whole.time.compute_s
    assert four.time.recompute_s == whole.time.recompute_s
    assert four.time.bubble_s == pytest.approx(4 * whole.time.bubble_s, rel=1e-12)
    # the gradients are reduced, and the parameters gathered, once a step
    assert four.time.dp_comm_s == whole.time.dp_comm_s
    assert four.time.dp_comm_s > 0
    # fill and drain transfers: m + r (p - 1) per chunk instead of m + p - 1
    assert four.time.pp_comm_s / whole.time.pp_comm_s == pytest.approx((32 + 4 * 3) / (32 + 3))
    assert four.step_s > whole.step_s


def test_zero3_per_micro_batch_gathers_do_not_multiply() -> None:
    """Without a pipeline ZeRO-3 gathers per micro-batch anyway, and the local batch is
    idle: the estimate is the default's."""
    plan = Plan(tp=8, pp=1, dp=8, micro_batch=1, zero=3, recompute="full")
    assert _est(replace(plan, local_batch=2)).time == _est(plan).time
    assert derive_layout(WL, replace(plan, local_batch=2).encoded()).runs == 1


def test_fewer_micro_batches_in_flight_when_a_run_is_shorter_than_the_pipeline() -> None:
    """1F1B holds min(p, m) micro-batches' activations, ``m`` those of one run."""
    whole, short = _est(BASE), _est(replace(BASE, local_batch=2))
    assert whole.memory is not None
    assert short.memory is not None
    assert short.memory.activations_bytes == pytest.approx(
        whole.memory.activations_bytes * 2 / 4, rel=1e-9)
    assert short.memory.weights_bytes == whole.memory.weights_bytes


@pytest.mark.parametrize(("local", "micro", "said"), [
    (3, 2, "local_batch 3 is not a multiple of micro_batch 2"),
    (12, 1, "local_batch 12 does not split a data-parallel rank's 32 sequences"),
])
def test_a_local_batch_that_does_not_split_is_infeasible(local: int, micro: int,
                                                         said: str) -> None:
    e = _est(replace(BASE, local_batch=local, micro_batch=micro))
    assert not e.feasible
    assert e.reason is not None
    assert e.reason.startswith("batch: ")
    assert said in e.reason


def test_an_interleaved_run_needs_its_own_micro_batches_to_fill_the_pipeline() -> None:
    """A bidirectional schedule's conditions hold per run: DualPipeV needs 2p
    micro-batches, which 32 a step meet and 4 a run do not."""
    plan = Plan(tp=8, pp=4, dp=2, micro_batch=1, zero=1, recompute="full",
                pp_schedule="dualpipev")
    assert _est(plan).feasible
    e = _est(replace(plan, local_batch=4))
    assert not e.feasible
    assert e.reason is not None
    assert "4 micro-batches (at least 8)" in e.reason


def test_the_search_holds_a_given_local_batch() -> None:
    wl = Workload(LLAMA70, 4096, 256, "bf16")
    system = system_for_chip(CAT, "h100-sxm-80gb", 64)
    free = search(wl, system, 64, top_k=50, fixed={"pp": 4})
    held = search(wl, system, 64, top_k=50, fixed={"pp": 4, "local_batch": 8})
    assert held.top
    assert free.top
    assert held.best
    assert free.best
    for r in held.top:
        plan = r.plan
        assert plan.local_batch == 8
        assert plan.local_batch % plan.micro_batch == 0
        assert (256 // plan.dp) % 8 == 0
        # each listed row is the scalar estimate of its layout
        assert r.step_s == pytest.approx(_est(plan, wl).step_s, rel=1e-9)
    # shorter runs pay more fills and drains: the best can only be slower
    assert held.best.tokens_per_s_per_chip < free.best.tokens_per_s_per_chip


def _row(case: str) -> dict[str, str]:
    with DEV.open(newline="") as fh:
        return next(r for r in csv.DictReader(fh) if r["case_id"] == case)


@pytest.mark.skipif(not DEV.exists(), reason="needs ../shared/validation")
def test_the_automodel_runs_read_their_local_batch() -> None:
    """NeMo AutoModel's DeepSeek-V3 table: LBS 8 with GA 4 on 1,024 H100s (four runs of
    the schedule a step) and GA 1 on 256 (one run)."""
    runs = {}
    for case in ("R242", "R243"):
        row = _row(case)
        shape = shape_from_row(row)
        plan = plan_from_row(row, shape)
        assert plan.local_batch == 8
        wl = Workload(shape, int(row["seq_len"]), int(row["global_batch"]), "bf16")
        runs[case] = float(derive_layout(wl, plan.encoded()).runs)
    assert runs == {"R242": 4.0, "R243": 1.0}


def test_the_cli_takes_the_field_and_says_why_a_value_cannot_run() -> None:
    args = ["estimate", "--model", "llama3-70b", "--chip", "h100-sxm-80gb", "--chips", "64",
            "--global-batch", "64", "--tp", "8", "--pp", "4", "--micro-batch", "1",
            "--format", "json"]
    ok = CliRunner().invoke(app, [*args, "--local-batch", "8"])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.output)
    assert data["feasible"]
    assert data["plan"]["local_batch"] == 8
    bad = CliRunner().invoke(app, [*args, "--local-batch", "5"])
    assert bad.exit_code == 1   # an estimate that cannot run: a result, with its reason
    said = json.loads(bad.output)
    assert not said["feasible"]
    assert "local_batch 5 does not split" in said["reason"]
    wrong = CliRunner().invoke(app, [*args, "--local-batch", "0"])
    assert wrong.exit_code == 2
    assert "local_batch" in wrong.output
    assert "Traceback" not in wrong.output


@settings(max_examples=40, deadline=None)
@given(tp=st.sampled_from([1, 2, 4, 8]), pp=st.sampled_from([2, 4, 8]),
       vpp=st.sampled_from([1, 2]), mb=st.sampled_from([1, 2]),
       zero=st.sampled_from([0, 1, 2, 3]), halvings=st.integers(0, 4))
def test_shorter_runs_never_speed_a_step_or_add_memory(tp: int, pp: int, vpp: int, mb: int,
                                                       zero: int, halvings: int) -> None:
    """Over random pipelined layouts: splitting a step into more runs never makes it
    faster, never holds more activations, and leaves every other term alone."""
    dp = 64 // (tp * pp)
    wl = Workload(LLAMA70, 4096, 32 * dp, "bf16")
    plan = Plan(tp=tp, pp=pp, dp=dp, vpp=vpp, micro_batch=mb, zero=zero, recompute="full")
    local = max(mb, 32 >> halvings)
    whole, runs = _est(plan, wl), _est(replace(plan, local_batch=local), wl)
    if not whole.feasible:
        return
    assert runs.feasible, runs.reason
    assert whole.time is not None
    assert runs.time is not None
    assert whole.memory is not None
    assert runs.memory is not None
    assert runs.step_s >= whole.step_s * (1 - 1e-12)
    assert runs.time.bubble_s == pytest.approx(32 // local * whole.time.bubble_s, rel=1e-9)
    assert runs.memory.activations_bytes <= whole.memory.activations_bytes * (1 + 1e-12)
    for term in ("compute_s", "recompute_s", "tp_comm_s", "ep_comm_s", "dp_comm_s",
                 "optimizer_s"):
        assert getattr(runs.time, term) == getattr(whole.time, term), term


def test_the_timeline_draws_one_run_and_says_so() -> None:
    """The workbench's and the report's Gantt chart of a step of four runs draws the
    first run's 8 micro-batches, and its title says the step has four runs, each filling
    and draining the pipeline."""
    from ocplan import api
    from ocplan.reports.figures import timeline_figure

    plan = replace(BASE, local_batch=8)
    e = _est(plan)
    events = api.pipeline_timeline(e, WL)
    assert {ev["micro_batch"] for ev in events} == set(range(8))
    title = timeline_figure(events, plan.micro_batches(WL), e.pipeline_runs)[
        "layout"]["title"]["text"]
    assert "the first of the step's 4 runs, its 8 micro-batches" in title
    whole = _est(BASE)
    one = timeline_figure(api.pipeline_timeline(whole, WL), BASE.micro_batches(WL),
                          whole.pipeline_runs)["layout"]["title"]["text"]
    assert "runs" not in one
    assert "first 32 of 32" not in one


def test_the_estimate_and_its_rows_say_how_many_runs() -> None:
    from ocplan.reports.summary import estimate_rows

    four, whole = _est(replace(BASE, local_batch=8)), _est(BASE)
    assert four.pipeline_runs == (4, 8)
    assert four.as_dict()["pipeline_runs"] == (4, 8)
    assert whole.pipeline_runs is None
    assert _est(replace(BASE, local_batch=32)).pipeline_runs is None  # one run
    rows = dict(estimate_rows(four, {}, "USD"))
    assert rows["pipeline runs"].startswith("4 a step of 8 micro-batches each")
    assert "pipeline runs" not in dict(estimate_rows(whole, {}, "USD"))
