"""Serving latencies as a request sees them (session 42, a QA pass's findings).

TPOT is the time per output token after the first, the decode alone: a static batch's
had included its prefill (a 64-prompt batch of 8,000 tokens printed 121 ms for a 13.5 ms
decode step). A request's answer rides iterations that carry the prompts of the *other*
requests: at light Poisson load almost none (the grid had started at one sequence in
flight, every iteration sharing a prompt's chunks: 18.8 ms against a 9.2 ms step for
30,000-token prompts), and in a closed loop of one none at all. A static wave's TTFT is
the mean over its prompts of when each one's last chunk leaves the last pipeline stage:
not one stage's time (pp 8 had printed 30 ms for a 240 ms pipeline), nor the last
prompt's (the wave's whole prefill).
"""

from __future__ import annotations

import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.serving.estimate import ServingEstimate, estimate_serving
from ocplan.serving.plan import ServingPlan
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.shape import ModelShape

CAT = load_catalog()


def run(model: str, chip: str, chips: int, plan: ServingPlan, **kw: object
        ) -> ServingEstimate:
    wl = ServingWorkload(ModelShape.from_arch(CAT.model(model)), **kw)  # type: ignore[arg-type]
    est = estimate_serving(wl, plan, system_for_chip(CAT, chip, chips))
    assert est.feasible, est.reason
    return est


def test_a_lone_request_answers_at_the_decode_step() -> None:
    """Static batch of one, closed loop of one and Poisson arrivals far apart: the same
    lone decode step per output token (no other request's prompt beside it)."""
    job = dict(input_len=30_000, output_len=100)
    static = run("qwen3-8b", "h100-sxm-80gb", 1, ServingPlan(), load="static", batch=1, **job)
    closed = run("qwen3-8b", "h100-sxm-80gb", 1, ServingPlan(), load="concurrency",
                 concurrency=1, **job)
    sparse = run("qwen3-8b", "h100-sxm-80gb", 1, ServingPlan(), load="poisson",
                 rate_per_s=1e-4, **job)
    assert static.iteration is not None
    assert static.tpot_s == pytest.approx(static.iteration.total_s, rel=1e-9)
    assert closed.tpot_s == pytest.approx(static.tpot_s, rel=1e-6)
    assert sparse.tpot_s == pytest.approx(static.tpot_s, rel=0.01)
    # The prompt's chunks are a second per request: averaged into the answer they had
    # doubled its TPOT.
    assert static.ttft_s is not None
    assert static.ttft_s > 50 * static.tpot_s


def test_light_load_meets_a_tpot_limit_the_lone_step_meets() -> None:
    job = dict(input_len=30_000, output_len=100, load="poisson", rate_per_s=0.01,
               slo_tpot_s=0.015)
    est = run("qwen3-8b", "h100-sxm-80gb", 1, ServingPlan(), **job)
    lone = run("qwen3-8b", "h100-sxm-80gb", 1, ServingPlan(), input_len=30_000,
               output_len=100, load="static", batch=1)
    assert lone.tpot_s < 0.015
    assert est.slo_met is True
    assert est.slo_rate_per_s is not None
    assert est.slo_rate_per_s > 0.01
    # the TPOT rises with the load from the lone step
    busier = run("qwen3-8b", "h100-sxm-80gb", 1, ServingPlan(),
                 **{**job, "rate_per_s": 0.05})
    assert lone.tpot_s <= est.tpot_s < busier.tpot_s


def test_static_ttft_crosses_every_pipeline_stage() -> None:
    """One prompt through 8 stages takes 8 stage times, as the closed loop of one says;
    one stage's time (what it had printed) is an eighth of that."""
    job = dict(input_len=1000, output_len=500)
    for pp in (1, 8):
        plan = ServingPlan(tp=8 // pp, pp=pp)
        static = run("llama3-70b", "h200-sxm-141gb", 8, plan, load="static", batch=1, **job)
        closed = run("llama3-70b", "h200-sxm-141gb", 8, plan, load="concurrency",
                     concurrency=1, **job)
        assert static.ttft_s is not None
        assert closed.ttft_s is not None
        # the closed loop adds half an iteration of waiting for the running one
        assert static.ttft_s == pytest.approx(closed.ttft_s, rel=0.15)
    one = run("llama3-70b", "h200-sxm-141gb", 8, ServingPlan(tp=8), load="static", batch=1,
              **job)
    eight = run("llama3-70b", "h200-sxm-141gb", 8, ServingPlan(tp=1, pp=8), load="static",
                batch=1, **job)
    assert eight.ttft_s is not None
    assert one.ttft_s is not None
    assert eight.ttft_s > 3 * one.ttft_s


def test_static_wave_ttft_is_the_mean_over_its_prompts() -> None:
    """64 prompts of 8,000 tokens, cut in order into iterations: the k-th first token
    comes about k/64 of the way through the wave's prefill, so the mean is about half of
    it (the last one's is all of it)."""
    est = run("llama3-70b", "h200-sxm-141gb", 8, ServingPlan(tp=8), input_len=8000,
              output_len=200, load="static", batch=64)
    assert est.ttft_s is not None
    prefill = 64 * 200 / est.output_tokens_per_s - 200 * est.tpot_s
    assert 0.45 * prefill < est.ttft_s < 0.55 * prefill


def test_the_simulation_times_a_pipelined_token_over_every_stage() -> None:
    """A pipelined instance's token takes ``p`` stage times: the simulation had timed it
    by one stage (pp 8: 6.7 ms against the steady state's 53 ms). A lone request and a
    light Poisson load now agree with the steady state on TPOT at every depth."""
    import numpy as np

    from ocplan.serving.dynamics import simulate_serving

    system = system_for_chip(CAT, "h200-sxm-141gb", 8)
    shape = ModelShape.from_arch(CAT.model("llama3-70b"))
    for pp in (1, 8):
        plan = ServingPlan(tp=8 // pp, pp=pp)
        wl = ServingWorkload(shape, 1000, 200, load="poisson", rate_per_s=0.5)
        est = estimate_serving(wl, plan, system)
        sim = simulate_serving(wl, plan, system, requests=300)
        assert sim is not None
        assert float(np.nanmean(sim.result.tpot_s)) == pytest.approx(est.tpot_s, rel=0.05)


def test_the_simulation_adds_a_prompts_trip_through_the_stages() -> None:
    """A pipelined prompt's first token waits for its own chunk to cross every stage:
    the simulation's TTFT at pp 8 had left that out (about 55 ms for a 1,000-token
    prompt where the steady state's 240 ms is the chunk through eight stages); it now
    agrees with the steady state within 10 % at pp 2 and 8, light or loaded, without
    moving the throughput (the trip is latency, not work) or a pp 1 instance."""
    import numpy as np

    from ocplan.serving.dynamics import ExactStepTime, simulate_serving

    system = system_for_chip(CAT, "h200-sxm-141gb", 8)
    shape = ModelShape.from_arch(CAT.model("llama3-70b"))
    for pp in (2, 8):
        plan = ServingPlan(tp=8 // pp, pp=pp)
        for rate in (0.05, 2.0):
            wl = ServingWorkload(shape, 1000, 200, load="poisson", rate_per_s=rate)
            est = estimate_serving(wl, plan, system)
            sim = simulate_serving(wl, plan, system, requests=300)
            assert sim is not None
            assert float(np.mean(sim.result.ttft_s)) == pytest.approx(est.ttft_s, rel=0.10)
            assert sim.result.output_tokens_per_s == pytest.approx(
                rate * 200, rel=0.1)  # a light load's rate: arrivals x output
    # the trip is (p - 1) stage times of the chunk's rows, 0 at pp 1
    from ocplan.plan.calibration import load_calibration
    from ocplan.plan.engine import chip_peaks, system_model
    from ocplan.serving.calibration import load_serving_calibration
    from ocplan.serving.step import step_model

    sm = system_model(system)
    wl = ServingWorkload(shape, 1000, 200)
    cal, scal = load_calibration(), load_serving_calibration()
    one = step_model(wl, ServingPlan(tp=8), sm, chip_peaks(sm, "bf16"), cal, scal)
    eight = step_model(wl, ServingPlan(tp=1, pp=8), sm, chip_peaks(sm, "bf16"), cal, scal)
    assert ExactStepTime(one, 2048, 8).trip_s(1000.0) == 0.0
    step = ExactStepTime(eight, 2048, 8)
    assert step.trip_s(1000.0) > 6 * step.trip_s(0.0) >= 0.0
    assert step.trip_s(1000.0) == pytest.approx(7 * (step(8000.0, 0.0, 0.0) / 8
                                                     - step(0.0, 0.0, 0.0) / 8), rel=1e-9)
