"""Serving dynamics: the request stream of a workload through the discrete-event
simulation (:mod:`ocplan.serving.simulate`), with iterations costed by the step model.

The simulation gives what the steady state cannot: latency distributions (p50/p90/p99
TTFT and TPOT), queueing, preemptions, and the ramp-up and drain of a finite run. Its
iteration time is :class:`ExactStepTime`, the step model itself evaluated once for every
count an iteration's cost depends on: the token rows (an integer per iteration) and, for
decode attention, the decoding sequences (the cost taken linear in their mean context for
a given count, from two contexts: each sequence reads its own cache).

One instance is simulated; deployment rates are the instance's times the instances.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import get_args

import numpy as np

from ocplan.catalog.system import System
from ocplan.costmodel.roofline import f64
from ocplan.plan.calibration import Calibration, load_calibration
from ocplan.plan.engine import chip_peaks, system_model
from ocplan.serving.calibration import ServingCalibration, load_serving_calibration
from ocplan.serving.estimate import ServingEstimate, estimate_serving
from ocplan.serving.plan import ServingPlan
from ocplan.serving.simulate import (
    LengthDistribution,
    Metric,
    Requests,
    Scheduler,
    SimResult,
    Statistic,
    offline_requests,
    poisson_requests,
    simulate,
)
from ocplan.serving.steady import DEFAULT_MAX_SEQS
from ocplan.serving.step import StepModel, step_model
from ocplan.workloads.serving import ServingWorkload

__all__ = ["DEFAULT_REQUESTS", "ExactStepTime", "LatencyStats", "RunSummary", "SimulatedServing",
           "instance_requests", "simulate_serving"]

#: Requests simulated when the workload names no count.
DEFAULT_REQUESTS = 2000
#: Second count of the decode-attention linearisation in the context.
_CONTEXT_PROBE = 1024.0


class ExactStepTime:
    """The step model as the simulator's ``step_time(prefill_tokens, decode_seqs,
    decode_context)``: prompts are the workload's (``prefill_tokens / prefill_len``
    sequences). Every count an iteration can have (token rows per rank up to
    ``max_rows``, decoding sequences per rank up to ``max_seqs``) is evaluated once, in
    one vectorised pass per part, so a call is a few list lookups.

    A pipelined instance (``p`` stages) runs an iteration's work as ``p`` micro-batches
    of a ``p``-th each, one per stage at a time, so each sequence's token takes ``p``
    stage times of a ``p``-th of the batch, as the steady state has it (module
    :mod:`ocplan.serving.steady`); the simulator's iteration is those ``p`` stage times
    (session 42: it had been one stage's, a pp 8 instance's TPOT an eighth of its
    steady state's). Its prompt tokens are spread over the micro-batches like its
    decodes, which keeps the throughput of a prefill-heavy load (a prompt's chunk in one
    micro-batch, timed as ``p`` stage times of the whole chunk, halved it and more). A
    prompt's own trip through the stages is added to its first token afterwards
    (:meth:`trip_s`, :func:`simulate_serving`)."""

    def __init__(self, model: StepModel, max_rows: int, max_seqs: int) -> None:
        self.model = model
        wl = model.workload
        rows = f64(np.arange(max_rows + 1, dtype=np.float64).clip(1.0))
        self._rows = model.rows_part(rows).time.total_s.tolist()
        self._comm = f64(model.comm_s(rows)).tolist()
        self._head = model.head_part(rows).time.total_s.tolist()
        seqs = f64(np.arange(max_seqs + 1, dtype=np.float64).clip(1.0))
        q = float(wl.spec_tokens + 1)
        near = model.decode_attention_part(seqs, np.full_like(seqs, q)).time.total_s
        far = model.decode_attention_part(seqs, np.full_like(seqs, q + _CONTEXT_PROBE)
                                          ).time.total_s
        slope = (far - near) / _CONTEXT_PROBE
        self._dec_base = (near - q * slope).tolist()
        self._dec_slope = slope.tolist()
        one = np.ones(1)
        self._prefill = float(model.prefill_attention_part(
            one, one * wl.prefill_len, one * max(wl.input_len, wl.prefill_len)
        ).time.total_s[0])
        self._ranks = float(model.ranks)
        self._stages = float(model.plan.pp)
        self._g = float(wl.verified_per_step)
        self._prompt = wl.prefill_len
        self._overlap = model.plan.overlap
        self._host = model.serving.iteration_overhead_s
        self._per_seq = model.serving.seq_overhead_s

    def __call__(self, prefill_tokens: float, decode_seqs: float,
                 decode_context: float) -> float:
        p = self._stages
        if p > 1.0:
            return p * self._stage(prefill_tokens / p, decode_seqs / p, decode_context / p)
        return self._stage(prefill_tokens, decode_seqs, decode_context)

    def trip_s(self, chunk_tokens: float) -> float:
        """What a prompt's last chunk adds to its first token beyond the iteration that
        computes it, s: ``(p - 1)`` stage times of the chunk's own rows. A chunk rides in
        one micro-batch whole (a vLLM virtual engine's), so it takes ``p`` stage times of
        its micro-batch where the iteration, the pipeline's period, spreads its work
        over ``p`` micro-batches; for a stage time affine in the rows the difference is
        ``(p - 1) (t(c) - t(0))`` whatever else shares the iteration (a lone 1,000-token
        prompt on 8 stages: 237 ms, not the 55 ms period). 0 without pipelining."""
        p = self._stages
        if p <= 1.0 or chunk_tokens <= 0:
            return 0.0
        return (p - 1.0) * (self._stage(chunk_tokens, 0.0, 0.0) - self._stage(0.0, 0.0, 0.0))

    def _stage(self, prefill_tokens: float, decode_seqs: float,
               decode_context: float) -> float:
        """One stage's time for an iteration's share of work."""
        r = self._ranks
        m = round((prefill_tokens + decode_seqs * self._g) / r)
        device, comm = self._rows[m], self._comm[m]
        if decode_seqs > 0:
            b = round(decode_seqs / r)
            device += self._dec_base[b] + self._dec_slope[b] * decode_context / decode_seqs
        prompts = prefill_tokens / self._prompt
        if prefill_tokens > 0:
            device += self._prefill * prompts / r
        device += self._head[min(round((decode_seqs * self._g + prompts) / r),
                                 len(self._head) - 1)]
        if self._overlap:
            comm = max(comm - device, 0.0)
        return float(device + comm + self._host + self._per_seq * (decode_seqs + prompts) / r)


@dataclass(frozen=True)
class SimulatedServing:
    """A simulated run of one instance and the deployment rates it implies."""

    estimate: ServingEstimate
    """The analytical estimate of the same layout (memory, calibration, notes)."""
    result: SimResult
    instances: int
    output_tokens_per_s: float
    """Deployment: the instance's simulated rate times the instances (a finite load:
    the whole load at the pace of the busiest instance, which is the one simulated)."""

    def summary(self) -> RunSummary:
        """What the run shows a reader: rates, latency statistics, preemptions."""
        r = self.result

        def stats(metric: Metric) -> LatencyStats | None:
            values = [r.stat(metric, s) for s in get_args(Statistic)]
            return None if math.isnan(values[0]) else LatencyStats(*values)

        ttft = stats("ttft")
        assert ttft is not None  # every request has a first token
        return RunSummary(r.n, self.instances, r.duration_s, self.output_tokens_per_s,
                          self.output_tokens_per_s / self.estimate.chips, ttft,
                          stats("tpot"), r.mean_batch, r.preemptions)


@dataclass(frozen=True)
class LatencyStats:
    """One latency over a run's requests, s (percentiles linearly interpolated)."""

    mean: float
    p50: float
    p90: float
    p99: float


@dataclass(frozen=True)
class RunSummary:
    """A simulated run as a reader sees it (:meth:`SimulatedServing.summary`)."""

    requests: int
    """Requests simulated: the busiest instance's (the deployment runs the others
    alike)."""
    instances: int
    duration_s: float
    """First arrival to last completion."""
    output_tokens_per_s: float
    """The deployment's."""
    output_tokens_per_s_per_chip: float
    ttft_s: LatencyStats
    tpot_s: LatencyStats | None
    """None for one-token answers (no token after the first)."""
    mean_batch: float
    """Decoding sequences per iteration, mean."""
    preemptions: int
    """Sequences preempted for cache room and re-admitted, their context found again in
    the prefix cache (one preempted twice counts twice)."""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _lengths(wl: ServingWorkload, mean: float) -> int | LengthDistribution:
    if wl.length_distribution == "fixed":
        return max(1, round(mean))
    return LengthDistribution(wl.length_distribution, mean, wl.length_spread)


def _requests(wl: ServingWorkload, plan: ServingPlan, n: int, seed: int) -> Requests:
    isl, osl = _lengths(wl, wl.prefill_len), _lengths(wl, wl.output_len)
    if wl.load == "poisson":
        assert wl.rate_per_s is not None
        return poisson_requests(n, wl.rate_per_s / plan.instances, isl, osl, seed=seed)
    return offline_requests(n, isl, osl, seed=seed)


def simulate_serving(workload: ServingWorkload, plan: ServingPlan, system: System, *,
                     requests: int | None = None, seed: int = 0,
                     calibration: Calibration | None = None,
                     serving: ServingCalibration | None = None) -> SimulatedServing | None:
    """Simulate ``requests`` requests (default: the workload's count, else
    :data:`DEFAULT_REQUESTS`) through one instance of ``plan``: of a finite load (a
    static batch, a closed loop, a counted offline run or loop), the busiest instance's
    share; None when the layout is infeasible or disaggregated (the estimate says why),
    or the workload speculates (the simulated scheduler gains one token per step, and its
    cache one token per sequence: the estimate models speculation)."""
    cal = calibration or load_calibration()
    scal = serving or load_serving_calibration()
    est = estimate_serving(workload, plan, system, cal, scal)
    if not est.feasible or plan.prefill_chips is not None or est.memory is None \
            or workload.spec_tokens > 0:
        return None
    sm = system_model(system)
    model = step_model(workload, plan, sm, chip_peaks(sm, "bf16"), cal, scal)
    seqs = plan.max_seqs if plan.max_seqs is not None else DEFAULT_MAX_SEQS * model.ranks
    n, share = instance_requests(workload, plan, requests)
    total = _finite_total(workload, requests)
    if workload.load == "static":
        seqs = min(seqs, n)
    scheduler = Scheduler(max_seqs=seqs, max_batched_tokens=max(plan.token_budget, seqs),
                          kv_capacity_tokens=est.memory.kv_tokens,
                          reserve_output=plan.admission == "reserve",
                          reuse_preempted=True)
    concurrency = share if workload.load == "concurrency" else None
    step = ExactStepTime(model, math.ceil((scheduler.max_batched_tokens + seqs
                                           * workload.verified_per_step) / model.ranks) + 1,
                         math.ceil(seqs / model.ranks) + 1)
    reqs = _requests(workload, plan, n, seed)
    result = _with_pipeline_trip(simulate(reqs, step, scheduler, concurrency=concurrency),
                                 step, reqs.input_len, scheduler.max_batched_tokens)
    scale = plan.instances if total is None else total / share
    return SimulatedServing(est, result, plan.instances, result.output_tokens_per_s * scale)


def instance_requests(workload: ServingWorkload, plan: ServingPlan,
                      requests: int | None = None) -> tuple[int, int]:
    """The requests :func:`simulate_serving` runs through its one instance, and that
    instance's share of a finite load (its static batch, counted run or loop's
    concurrency; 0 for a stream). A finite load is shared out over the instances: the
    busiest one, which holds the most, is simulated, and the deployment serves the whole
    load at its pace. ``requests``: a sample size for the simulation alone (default the
    workload's count, else :data:`DEFAULT_REQUESTS`)."""
    total = _finite_total(workload, requests)
    share = 0 if total is None else math.ceil(total / min(plan.instances, total))
    if workload.load == "static" or (workload.load == "offline" and total is not None):
        return share, share
    if workload.load == "concurrency" and requests is None and workload.requests:
        assert total is not None
        # a finite loop's requests are shared out over the instances its loop keeps busy
        return math.ceil(workload.requests / min(plan.instances, total)), share
    return requests or workload.requests or DEFAULT_REQUESTS, share


def _finite_total(wl: ServingWorkload, requests: int | None) -> int | None:
    """Sequences of a finite load shared out over the instances: the workload's
    :attr:`~ocplan.workloads.serving.ServingWorkload.finite_sequences` (an offline count
    only when ``requests``, a sample size for the simulation alone, is not given), or a
    closed loop's concurrency; None for a stream."""
    if wl.load == "concurrency":
        return wl.concurrency or 1
    return None if wl.load == "offline" and requests is not None else wl.finite_sequences


def _with_pipeline_trip(result: SimResult, step: ExactStepTime, prompts: np.ndarray,
                        budget: int) -> SimResult:
    """``result`` with each request's first token (and so its end) later by its last
    chunk's trip through the pipeline (:meth:`ExactStepTime.trip_s`); the last chunk of a
    prompt of ``I`` tokens cut into ``budget``-token chunks is ``I - budget floor((I - 1) /
    budget)``. The rates keep the iterations' timing: the trip is latency, not work."""
    if step.trip_s(1.0) == 0.0:
        return result
    last = prompts - budget * np.floor((prompts - 1) / budget)
    trips = {c: step.trip_s(float(c)) for c in np.unique(last)}
    extra = np.array([trips[c] for c in last])
    return replace(result, ttft_s=result.ttft_s + extra, e2e_s=result.e2e_s + extra)
