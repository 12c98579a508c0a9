"""The serving simulator: queueing theory, exact small cases, conservation laws, and a
bit-for-bit comparison with a naive iteration-by-iteration reference implementation."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

from ocplan.errors import SpecError
from ocplan.serving.simulate import (
    LengthDistribution,
    Metric,
    Requests,
    Scheduler,
    SimResult,
    Statistic,
    StepTime,
    offline_requests,
    poisson_requests,
    simulate,
)

D = 2.0**-7
"""Constant step time in seconds; a power of two so sums of it are exact in float64."""

UNLIMITED_KV = math.inf


def constant_step(_p: float, _d: float, _c: float) -> float:
    return D


def linear_step(p: float, d: float, c: float) -> float:
    """A cheap affine iteration-time model: fixed cost, per prompt token, per decode
    sequence, per context token read."""
    return 0.01 + 1e-6 * p + 2e-5 * d + 1e-9 * c


# ------------------------------------------------------------------- queueing theory


# n large enough that the sampling error of the mean wait (autocorrelated, worse near
# saturation) is ~0.5 %, four times inside the 2 % tolerance.
@pytest.mark.parametrize(("rho", "n"), [(0.5, 400_000), (0.8, 1_000_000)])
def test_md1_mean_wait_is_pollaczek_khinchine(rho: float, n: int) -> None:
    reqs = poisson_requests(n, rho / D, 16, 1, seed=7)
    res = simulate(reqs, constant_step, Scheduler(1, 16, UNLIMITED_KV))
    expected = rho * D / (2.0 * (1.0 - rho))
    assert res.stat("queue", "mean") == pytest.approx(expected, rel=0.02)
    # Deterministic service: every request spends one iteration being served (up to the
    # rounding of differences of clock readings near 1e4 s).
    np.testing.assert_allclose(res.e2e_s - res.queue_s, D, rtol=0.0, atol=1e-9)


def test_littles_law_on_a_poisson_run() -> None:
    reqs = poisson_requests(3000, 4.0, LengthDistribution("lognormal", 800, 0.6, high=6000),
                            LengthDistribution("exponential", 150, high=1500), seed=3)
    res = simulate(reqs, linear_step, Scheduler(64, 2048, 400_000), trace=True)
    tr = res.trace
    assert tr is not None
    # Time average of the number in system, sampled at iteration starts; idle gaps
    # (the clock jumping to the next arrival) hold nobody and weigh zero.
    mean_in_system = float(np.sum(tr.in_system * tr.step_s)) / res.duration_s
    assert mean_in_system == pytest.approx(res.requests_per_s * res.stat("e2e", "mean"),
                                           rel=0.03)
    assert mean_in_system > 1.0  # the check is not vacuous: requests overlap


# --------------------------------------------------------------------- exact cases


@pytest.mark.parametrize(("n", "prompt", "budget", "prefill_iterations"),
                         [(8, 100, 1024, 1), (1, 5000, 1024, 5), (1, 1024, 1024, 1)])
def test_offline_one_batch_duration_is_exact(n: int, prompt: int, budget: int,
                                             prefill_iterations: int) -> None:
    output = 50
    reqs = offline_requests(n, prompt, output)
    res = simulate(reqs, constant_step, Scheduler(16, budget, UNLIMITED_KV), trace=True)
    # The iteration that completes the prefill yields token 1; output - 1 decodes follow.
    iterations = prefill_iterations + output - 1
    assert res.iterations == iterations
    assert res.duration_s == iterations * D
    assert np.all(res.ttft_s == prefill_iterations * D)
    assert np.all(res.tpot_s == D)
    tr = res.trace
    assert tr is not None
    assert int(tr.tokens_out.sum()) == int(reqs.output_len.sum())
    assert int(tr.prefill_tokens.sum()) == int(reqs.input_len.sum())
    assert res.output_tokens_per_s == n * output / res.duration_s


@pytest.mark.parametrize("prompt", [1000, 1024, 1025, 4097, 10_000])
def test_chunked_prefill_takes_ceil_len_over_budget_iterations(prompt: int) -> None:
    budget = 1024
    reqs = offline_requests(1, prompt, 3)
    res = simulate(reqs, constant_step, Scheduler(4, budget, UNLIMITED_KV), trace=True)
    chunks = math.ceil(prompt / budget)
    assert res.ttft_s[0] == chunks * D
    assert res.trace is not None
    expected = [budget] * (chunks - 1) + [prompt - budget * (chunks - 1)]
    assert res.trace.prefill_tokens[:chunks].tolist() == expected

    whole = simulate(reqs, constant_step, Scheduler(4, budget, UNLIMITED_KV, False),
                     trace=True)
    assert whole.ttft_s[0] == D  # alone, an unchunked prompt may exceed the budget
    assert whole.trace is not None
    assert whole.trace.prefill_tokens[0] == prompt


def test_chunks_share_the_budget_with_decodes() -> None:
    # Request 0 decodes while request 1's long prompt is chunked around it.
    reqs = Requests(np.array([0.0, D]), np.array([10, 3000]), np.array([100, 2]))
    res = simulate(reqs, constant_step, Scheduler(4, 1024, UNLIMITED_KV), trace=True)
    tr = res.trace
    assert tr is not None
    assert tr.prefill_tokens[:5].tolist() == [10, 1023, 1023, 954, 0]
    assert tr.decode_seqs[:5].tolist() == [0, 1, 1, 1, 2]
    assert res.ttft_s[1] == 3 * D


# ----------------------------------------------------------------------- KV cache


def test_kv_pressure_preempts_and_still_completes_everything() -> None:
    n, prompt, output = 32, 100, 100
    reqs = offline_requests(n, prompt, output)
    final_context = n * (prompt + output - 1)
    capacity = 4000
    assert capacity < final_context
    res = simulate(reqs, constant_step, Scheduler(n, 4096, capacity), trace=True)
    tr = res.trace
    assert tr is not None
    assert res.preemptions > 0
    assert res.preemptions == int(tr.preempted.sum())
    assert np.all(np.isfinite(res.e2e_s))
    assert int(tr.tokens_out.sum()) == n * output  # nothing lost, nothing duplicated
    assert int(tr.kv_tokens.max()) <= capacity
    assert int(tr.prefill_tokens.sum()) > n * prompt  # preempted work was recomputed

    ample = simulate(reqs, constant_step, Scheduler(n, 4096, final_context), trace=True)
    assert ample.preemptions == 0
    assert ample.trace is not None
    assert int(ample.trace.prefill_tokens.sum()) == n * prompt
    assert ample.duration_s < res.duration_s


def test_reused_preemptions_compute_only_what_was_not_cached() -> None:
    """With ``reuse_preempted`` a preempted sequence's context is found again: a decoding
    victim computes one token when re-admitted, a partial prefill resumes where it was,
    so the prefill work is the prompts plus at most one token a preemption, and the run
    is never slower than the recomputing one under the same pressure."""
    n, prompt, output = 32, 100, 100
    reqs = offline_requests(n, prompt, output)
    capacity = 4000
    recompute = simulate(reqs, linear_step, Scheduler(n, 4096, capacity), trace=True)
    reuse = simulate(reqs, linear_step, Scheduler(n, 4096, capacity, reuse_preempted=True),
                     trace=True)
    assert reuse.trace is not None
    assert reuse.preemptions > 0
    assert int(reuse.trace.tokens_out.sum()) == n * output
    assert int(reuse.trace.kv_tokens.max()) <= capacity
    work = int(reuse.trace.prefill_tokens.sum())
    assert n * prompt <= work <= n * prompt + reuse.preemptions
    assert recompute.trace is not None
    assert int(recompute.trace.prefill_tokens.sum()) > work
    assert reuse.duration_s < recompute.duration_s


def test_admission_waits_for_kv_room() -> None:
    # Room for exactly two prompts: the third request starts when one finishes.
    reqs = offline_requests(3, 100, 1)
    res = simulate(reqs, constant_step, Scheduler(8, 1024, 200))
    assert res.queue_s.tolist() == [0.0, 0.0, D]


# -------------------------------------------------------------------- closed loop


def test_closed_loop_caps_in_flight_and_throughput_rises_until_max_seqs() -> None:
    max_seqs = 16
    reqs = offline_requests(400, LengthDistribution("uniform", 300, 0.5), 64, seed=1)
    sched = Scheduler(max_seqs, 2048, UNLIMITED_KV)
    throughput = {}
    for c in (1, 2, 4, 8, 16, 32):
        res = simulate(reqs, linear_step, sched, concurrency=c, trace=True)
        assert res.trace is not None
        assert int(res.trace.in_system.max()) == c  # reached, never exceeded
        assert int(res.trace.running.max()) <= max_seqs
        throughput[c] = res.output_tokens_per_s
    rising = [throughput[c] for c in (1, 2, 4, 8, 16)]
    assert rising == sorted(rising)
    assert rising[-1] > 4 * rising[0]
    # Beyond max_seqs extra requests only queue: throughput stops growing.
    assert throughput[32] == pytest.approx(throughput[16], rel=0.02)


def test_closed_loop_issues_the_next_request_at_a_completion() -> None:
    reqs = offline_requests(5, 10, 4)
    res = simulate(reqs, constant_step, Scheduler(8, 64, UNLIMITED_KV), concurrency=1)
    # One at a time: each request runs 4 iterations, the next one arrives as it ends.
    assert res.duration_s == 5 * 4 * D
    assert np.all(res.e2e_s == 4 * D)
    assert np.all(res.queue_s == 0.0)


# ---------------------------------------------------------------------- bad input


def _field(excinfo: pytest.ExceptionInfo[SpecError]) -> set[str]:
    return {p.field for p in excinfo.value.problems}


@pytest.mark.parametrize(("build", "field_name"), [
    (lambda: Requests(np.zeros(2), np.array([5, -1]), np.array([1, 1])), "input_len"),
    (lambda: Requests(np.zeros(2), np.array([5, 5]), np.array([0, 1])), "output_len"),
    (lambda: Requests(np.array([1.0, 0.0]), np.array([5, 5]), np.array([1, 1])),
     "arrival_s"),
    (lambda: Requests(np.zeros(2), np.array([5.5, 5]), np.array([1, 1])), "input_len"),
    (lambda: Scheduler(0, 64, 1e6), "max_seqs"),
    (lambda: Scheduler(128, 64, 1e6), "max_batched_tokens"),
    (lambda: Scheduler(8, 64, 0.0), "kv_capacity_tokens"),
    (lambda: offline_requests(0, 5, 5), "n"),
    (lambda: offline_requests(3, -5, 5), "input_len"),
    (lambda: poisson_requests(3, 0.0, 5, 5), "rate_per_s"),
    (lambda: LengthDistribution("exponential", -3.0), "mean"),
    (lambda: LengthDistribution("uniform", 10.0, 2.0), "spread"),
    (lambda: LengthDistribution("gamma", 10.0), "kind"),  # type: ignore[arg-type]
    (lambda: simulate(offline_requests(2, 900, 200), constant_step,
                      Scheduler(8, 1024, 1000)), "kv_capacity_tokens"),
    (lambda: simulate(offline_requests(2, 9, 2), constant_step, Scheduler(8, 64, 1e6),
                      concurrency=0), "concurrency"),
    (lambda: simulate(offline_requests(2, 9, 2), lambda p, d, c: 0.0,
                      Scheduler(8, 64, 1e6)), "step_time"),
])
def test_bad_input_names_the_field(build: Callable[[], object], field_name: str) -> None:
    with pytest.raises(SpecError) as excinfo:
        build()
    assert field_name in _field(excinfo)


def test_a_request_that_exactly_fits_alone_runs() -> None:
    # input + output - 1 == capacity: the boundary of the kv_capacity_tokens check.
    res = simulate(offline_requests(3, 801, 200), constant_step, Scheduler(8, 1024, 1000))
    assert np.all(np.isfinite(res.e2e_s))


# --------------------------------------------------------------------- statistics


def test_stat_agrees_with_numpy() -> None:
    reqs = poisson_requests(500, 30.0, LengthDistribution("exponential", 200),
                            LengthDistribution("exponential", 3.0), seed=5)
    res = simulate(reqs, linear_step, Scheduler(32, 1024, UNLIMITED_KV))
    assert np.isnan(res.tpot_s).any()  # some one-token outputs: NaN must be skipped
    arrays: dict[Metric, np.ndarray] = {"ttft": res.ttft_s, "tpot": res.tpot_s,
                                        "e2e": res.e2e_s, "queue": res.queue_s}
    percentiles: tuple[tuple[Statistic, float], ...] = (("p50", 50), ("p90", 90), ("p99", 99))
    for metric, values in arrays.items():
        assert res.stat(metric, "mean") == pytest.approx(np.nanmean(values), rel=1e-12)
        for name, q in percentiles:
            assert res.stat(metric, name) == pytest.approx(np.nanpercentile(values, q),
                                                           rel=1e-12)
    single = simulate(offline_requests(4, 8, 1), constant_step, Scheduler(4, 64, 1e6))
    assert math.isnan(single.stat("tpot", "p90"))


@pytest.mark.parametrize("kind", ["fixed", "uniform", "exponential", "lognormal"])
def test_length_distribution_mean_and_clip(kind: str) -> None:
    dist = LengthDistribution(kind, 500.0, 0.5, low=1, high=100_000)  # type: ignore[arg-type]
    samples = dist.sample(200_000, np.random.default_rng(0))
    assert samples.dtype == np.int64
    assert samples.min() >= 1
    assert float(samples.mean()) == pytest.approx(500.0, rel=0.01)
    clipped = LengthDistribution(kind, 500.0, 0.5, low=450, high=520)  # type: ignore[arg-type]
    got = clipped.sample(10_000, np.random.default_rng(0))
    assert got.min() >= 450
    assert got.max() <= 520


# ------------------------------------------------- reference: iteration by iteration


@dataclass
class _Seq:
    """One request inside the reference engine."""

    idx: int
    target: int
    gen: int = 0
    done: int = 0
    prefilling: bool = True
    ctx_log: list[int] = field(default_factory=list)


def reference_simulate(reqs: Requests, step_time: StepTime, sched: Scheduler,
                       concurrency: int | None = None) -> dict[str, object]:
    """The scheduling rules of the module docstring, transcribed literally: every
    iteration visits every running sequence. Slow, and obviously right."""
    n = reqs.n
    inp = reqs.input_len.tolist()
    out = reqs.output_len.tolist()
    arr = reqs.arrival_s.tolist()
    issued = n if concurrency is None else min(concurrency, n)
    if concurrency is not None:
        arr = [arr[0]] * issued + [math.nan] * (n - issued)
    seqs = [_Seq(i, inp[i]) for i in range(n)]
    waiting: deque[_Seq] = deque()
    running: list[_Seq] = []
    first_sched = [math.nan] * n
    first_tok = [math.nan] * n
    finish = [math.nan] * n
    t, nxt, completed, iterations, preemptions, dec_total = arr[0], 0, 0, 0, 0, 0
    trace: list[tuple[float, ...]] = []

    def kv_of(s: _Seq) -> int:
        return s.target if s.prefilling else inp[s.idx] + s.gen

    while completed < n:
        while nxt < issued and arr[nxt] <= t:
            waiting.append(seqs[nxt])
            nxt += 1
        if not running and not waiting:
            t = arr[nxt]
            continue
        preempted = 0
        while sum(kv_of(s) for s in running) > sched.kv_capacity_tokens:
            victim = running.pop()
            victim.target, victim.done, victim.prefilling = inp[victim.idx] + victim.gen, 0, True
            waiting.appendleft(victim)
            preempted += 1
        preemptions += preempted
        decodes = [s for s in running if not s.prefilling]
        budget = sched.max_batched_tokens - len(decodes)
        prefill = 0
        completing = []
        for s in running:
            if s.prefilling:
                chunk = min(budget, s.target - s.done)
                s.done += chunk
                prefill += chunk
                budget -= chunk
                if s.done == s.target:
                    completing.append(s)
        while (waiting and len(running) < sched.max_seqs
               and sum(kv_of(s) for s in running) + waiting[0].target
               <= sched.kv_capacity_tokens):
            s = waiting[0]
            if sched.chunked_prefill:
                if budget <= 0:
                    break
                chunk = min(budget, s.target)
            else:
                if s.target > budget and prefill > 0:
                    break
                chunk = s.target
            waiting.popleft()
            running.append(s)
            if math.isnan(first_sched[s.idx]):
                first_sched[s.idx] = t
            s.done = chunk
            prefill += chunk
            budget -= chunk
            if s.done == s.target:
                completing.append(s)
        context = sum(inp[s.idx] + s.gen for s in decodes)
        dt = step_time(prefill, len(decodes), context)
        trace.append((t, dt, prefill, len(decodes), context, len(running), len(waiting),
                      sum(kv_of(s) for s in running), len(decodes) + len(completing),
                      preempted))
        t += dt
        iterations += 1
        dec_total += len(decodes)
        for s in decodes + completing:
            s.gen += 1
            s.prefilling = False
            if s.gen == 1:
                first_tok[s.idx] = t
            if s.gen == out[s.idx]:
                running.remove(s)
                finish[s.idx] = t
                completed += 1
                if issued < n:
                    arr[issued] = t
                    issued += 1
    a = np.array(arr)
    return {"ttft": np.array(first_tok) - a, "e2e": np.array(finish) - a,
            "queue": np.array(first_sched) - a, "iterations": iterations,
            "preemptions": preemptions, "mean_batch": dec_total / iterations,
            "trace": trace}


def _same(res: SimResult, ref: dict[str, object]) -> None:
    assert res.iterations == ref["iterations"]
    assert res.preemptions == ref["preemptions"]
    assert res.mean_batch == ref["mean_batch"]
    assert np.array_equal(res.ttft_s, ref["ttft"])  # type: ignore[arg-type]
    assert np.array_equal(res.e2e_s, ref["e2e"])  # type: ignore[arg-type]
    assert np.array_equal(res.queue_s, ref["queue"])  # type: ignore[arg-type]
    tr = res.trace
    assert tr is not None
    columns = [tr.start_s, tr.step_s, tr.prefill_tokens, tr.decode_seqs,
               tr.decode_context_tokens, tr.running, tr.waiting, tr.kv_tokens,
               tr.tokens_out, tr.preempted]
    got = list(zip(*(c.tolist() for c in columns), strict=True))
    assert got == ref["trace"]


@pytest.mark.parametrize("seed", range(16))
def test_matches_the_iteration_by_iteration_reference(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(20, 120))
    inputs = LengthDistribution("lognormal", float(rng.integers(20, 400)), 0.8, high=1500)
    outputs = LengthDistribution("exponential", float(rng.integers(2, 60)), high=300)
    if seed % 3 == 0:
        reqs = offline_requests(n, inputs, outputs, seed=seed)
    else:
        reqs = poisson_requests(n, float(rng.uniform(5, 200)), inputs, outputs, seed=seed)
    max_seqs = int(rng.integers(1, 24))
    budget = int(rng.integers(max_seqs, 2048))
    need = int((reqs.input_len + reqs.output_len - 1).max())
    # Half the cases starve the KV cache to force preemptions.
    capacity = need * (1.2 if seed % 2 else 20.0)
    sched = Scheduler(max_seqs, budget, capacity, chunked_prefill=seed % 4 != 1)
    concurrency = int(rng.integers(1, 40)) if seed % 5 == 2 else None
    res = simulate(reqs, linear_step, sched, concurrency=concurrency, trace=True)
    _same(res, reference_simulate(reqs, linear_step, sched, concurrency))
    untraced = simulate(reqs, linear_step, sched, concurrency=concurrency)
    assert np.array_equal(untraced.e2e_s, res.e2e_s)
