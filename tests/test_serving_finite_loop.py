"""A finite closed loop started at once (``vllm bench serve --max-concurrency c
--num-prompts N``): the first ``c`` requests arrive as a burst, the others replace
finished ones. The analytical estimate (:func:`ocplan.serving.steady._finite_closed`) is
checked against the discrete-event simulation of the same rules, request by request."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import System, system_for_chip
from ocplan.cli.main import app
from ocplan.errors import SpecError
from ocplan.serving.dynamics import simulate_serving
from ocplan.serving.estimate import estimate_serving
from ocplan.serving.plan import ServingPlan
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.shape import ModelShape

CAT = load_catalog()
LLAMA8 = ModelShape.from_arch(CAT.model("llama3-8b"))
QWEN_MOE = ModelShape.from_arch(CAT.model("qwen3-30b-a3b"))
H100_1 = system_for_chip(CAT, "h100-sxm-80gb", 1)
H100_2 = system_for_chip(CAT, "h100-sxm-80gb", 2)
H200_1 = system_for_chip(CAT, "h200-sxm-141gb", 1)


def loop(shape: ModelShape, c: int, n: int | None, isl: float = 1024.0,
         osl: float = 1024.0) -> ServingWorkload:
    return ServingWorkload(model=shape, input_len=isl, output_len=osl, load="concurrency",
                           concurrency=c, requests=n)


# (model, system, plan, concurrency, prompt / answer tokens): loops within their batch
# limit, a decode-heavy one and a prefill-heavy one, dense and MoE, one and two instances
CASES: list[tuple[ModelShape, System, ServingPlan, int, float, float]] = [
    (LLAMA8, H100_2, ServingPlan(dp=2), 64, 1000.0, 1000.0),
    (LLAMA8, H100_1, ServingPlan(), 32, 4096.0, 256.0),
    (QWEN_MOE, H200_1, ServingPlan(), 64, 1024.0, 1024.0),
]


@pytest.mark.parametrize("case", CASES, ids=["llama8b-dp2", "llama8b-prefill-heavy", "qwen3-moe"])
@pytest.mark.parametrize("waves", [1, 2, 10])
def test_rate_matches_the_simulated_run(
        case: tuple[ModelShape, System, ServingPlan, int, float, float], waves: int) -> None:
    """The burst plus the steady loop gives the simulated run's output rate within 2 %
    (observed within 1.5 % from N = c to 10 c) where the loop fits its batch limit."""
    shape, system, plan, c, isl, osl = case
    wl = loop(shape, c, waves * c, isl, osl)
    est = estimate_serving(wl, plan, system)
    sim = simulate_serving(wl, plan, system)
    assert est.feasible
    assert sim is not None
    # the precondition: the loop fits its batch limit (all c in flight)
    assert est.batch_per_instance == pytest.approx(c / plan.instances)
    assert sim.result.n == waves * c // plan.instances
    assert est.output_tokens_per_s == pytest.approx(sim.output_tokens_per_s, rel=0.02)


def test_burst_start_costs_a_ramp_that_fades_with_the_run() -> None:
    """2,048 / 512 at concurrency 128 on one H100: the endless loop hides each prompt's
    prefill in iterations that wait on HBM anyway, the burst prefills all 262K prompt
    tokens before most answers start. A run of c requests is slower; longer runs approach
    the loop from below, monotonically, and the mean TTFT falls from the burst's towards
    the loop's."""
    endless = estimate_serving(loop(LLAMA8, 128, None, 2048.0, 512.0), ServingPlan(), H100_1)
    runs = [estimate_serving(loop(LLAMA8, 128, k * 128, 2048.0, 512.0), ServingPlan(), H100_1)
            for k in (1, 2, 4, 16, 256)]
    rates = [r.output_tokens_per_s for r in runs]
    assert rates == sorted(rates)
    assert rates[0] < 0.975 * endless.output_tokens_per_s
    assert rates[-1] < endless.output_tokens_per_s
    assert rates[-1] == pytest.approx(endless.output_tokens_per_s, rel=0.001)
    ttfts = [r.ttft_s for r in runs]
    loop_ttft = endless.ttft_s
    assert loop_ttft is not None
    assert None not in ttfts
    means = [float(t or 0.0) for t in ttfts]
    assert means == sorted(means, reverse=True)
    assert means[-1] > loop_ttft
    assert means[0] > 10 * loop_ttft


def test_a_run_no_longer_than_the_loop_is_a_finite_offline_run() -> None:
    """N <= c: every request arrives at once, which is the offline run of N."""
    for n in (8, 64):
        run = estimate_serving(loop(LLAMA8, 64, n), ServingPlan(), H100_1)
        offline = estimate_serving(ServingWorkload(model=LLAMA8, input_len=1024.0,
                                                   output_len=1024.0, requests=n),
                                   ServingPlan(), H100_1)
        assert run.output_tokens_per_s == pytest.approx(offline.output_tokens_per_s, rel=1e-12)
        assert run.ttft_s == pytest.approx(offline.ttft_s, rel=1e-12)
        assert any("all started at once" in note for note in run.notes)


def test_a_loop_beyond_the_cache_bursts_only_what_fits() -> None:
    """Concurrency 512 of 1,024 + 1,024 tokens on one H200 is more than its cache holds
    at their final length: the burst is the first wave, the rest wait for slots, and the
    run stays below the endless loop."""
    run = estimate_serving(loop(QWEN_MOE, 512, 2048), ServingPlan(), H200_1)
    endless = estimate_serving(loop(QWEN_MOE, 512, None), ServingPlan(), H200_1)
    assert run.feasible
    assert run.batch_per_instance < 512
    assert run.output_tokens_per_s < endless.output_tokens_per_s
    assert any("wait for a slot" in note for note in run.notes)
    assert any("the first 512 arrive together" in note for note in run.notes)


def test_requests_still_refused_with_other_loads() -> None:
    with pytest.raises(SpecError, match="requests = 10: applies only with load offline or "
                                        "concurrency"):
        ServingWorkload(model=LLAMA8, input_len=1024.0, output_len=256.0, load="poisson",
                        rate_per_s=1.0, requests=10)
    assert replace(loop(LLAMA8, 4, 40), requests=None).requests is None


def test_cli_finite_loop_json_and_refusal() -> None:
    runner = CliRunner()
    base = ["infer", "--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "1",
            "--input-len", "4096", "--output-len", "256", "-f", "json"]
    endless = json.loads(runner.invoke(app, [*base, "--load", "concurrency",
                                             "--concurrency", "32"]).stdout)
    res = runner.invoke(app, [*base, "--load", "concurrency", "--concurrency", "32",
                              "--requests", "64"])
    assert res.exit_code == 0, res.output
    finite = json.loads(res.stdout)
    assert finite["output_tokens_per_s"] < endless["output_tokens_per_s"]
    assert any("a run of 64 requests started at once" in n for n in finite["notes"])
    bad = runner.invoke(app, [*base, "--load", "poisson", "--rate", "1", "--requests", "64"])
    assert bad.exit_code == 2
    problems = json.loads(bad.stdout)["error"]["problems"]
    assert [p["field"] for p in problems] == ["requests"]
    assert "offline or concurrency" in problems[0]["allowed"]


def test_simulate_on_request_reports_the_run() -> None:
    """``simulate`` on one layout's request adds the simulated run (API and CLI): its
    rate is the simulation's, its percentiles ordered, and a run too long to simulate
    while a request waits is refused with its size, the field named."""
    from ocplan import api

    req = api.InferRequest(model="llama3-8b", chip="h100-sxm-80gb", chips=1,
                           input_len=1024.0, output_len=256.0, load="concurrency",
                           concurrency=16, requests=64, simulate=True)
    view = api.run_infer_view(CAT, req)
    run = view.simulation
    assert run is not None
    direct = simulate_serving(loop(LLAMA8, 16, 64, 1024.0, 256.0), view.result.plan,
                              H100_1)
    assert direct is not None
    assert run.output_tokens_per_s == pytest.approx(direct.output_tokens_per_s, rel=1e-12)
    assert run.requests == 64
    assert run.tpot_s is not None
    for stats in (run.ttft_s, run.tpot_s):
        assert 0 < stats.p50 <= stats.p90 <= stats.p99
    assert api.run_infer_view(CAT, req.model_copy(update={"simulate": False})
                              ).simulation is None
    huge = req.model_copy(update={"concurrency": 1, "requests": 100_000})
    with pytest.raises(SpecError, match="simulate = True: a run of 100,000 requests"):
        api.run_infer_view(CAT, huge)


def test_cli_simulate_json_table_and_refusals() -> None:
    runner = CliRunner()
    base = ["infer", "--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "1",
            "--load", "concurrency", "--concurrency", "16", "--requests", "64", "--simulate"]
    res = runner.invoke(app, [*base, "-f", "json"])
    assert res.exit_code == 0, res.output
    sim = json.loads(res.stdout)["simulation"]
    assert sim["requests"] == 64
    assert sim["ttft_s"]["p99"] >= sim["ttft_s"]["p50"] > 0
    table = runner.invoke(app, base)
    assert table.exit_code == 0, table.output
    assert "simulated run" in table.stdout
    assert "TTFT mean / p50 / p90 / p99" in table.stdout
    plain = runner.invoke(app, [*base[:-1], "-f", "json"])
    assert "simulation" not in json.loads(plain.stdout)
    for extra in (["--search"], ["--requests", "1000000", "--concurrency", "1"]):
        bad = runner.invoke(app, [*base, *extra, "-f", "json"])
        assert bad.exit_code == 2, bad.output
        problems = json.loads(bad.stdout)["error"]["problems"]
        assert [p["field"] for p in problems] == ["simulate"]
