"""Steady-state serving: the operating point of an instance under a load, analytically.

Per instance, with ``I`` prompt tokens computed per request (after prefix-cache hits),
``O`` output tokens, ``g`` tokens gained per decode step (speculation), ``D = O / g``
decode steps per request, ``Q`` the token budget of an iteration, ``S`` the sequence cap
and ``K`` the KV capacity in tokens:

- **offline / saturated** (continuous batching, Orca, Yu et al. OSDI 2022; vLLM): ``B``
  sequences decode while finished ones are replaced, so each iteration also prefills
  ``B I / D`` prompt tokens of ``B / D`` sequences. ``B`` is the largest that fits:
  ``min(S, K / (I_all + O/2), Q / (g + I/D))`` (mean context of a running sequence; the
  token budget). Throughput ``B g / t(B)``.
- **static**: batches of ``b`` run to completion in waves; a wave prefills ``b I``
  tokens in iterations of ``Q`` tokens, then decodes ``D`` steps at mean context
  ``I + O/2`` (decode time is linear in the context, so the mean is exact).
- **poisson** at rate ``lam``: by Little's law the decoding batch solves
  ``B = lam D t(B)``; TPOT ``t(B)/g``; TTFT the prompt's own iterations plus the wait
  for a free sequence slot as in an M/M/1 queue whose utilisation is ``B / B_max``.
- **concurrency** ``c``: ``B = min(c, B_max)``; requests beyond ``B_max`` queue.

Pipeline parallelism (``p`` stages): ``p`` micro-batches of ``B/p`` are in flight; a
stage takes ``t(B/p)``, a token ``p t(B/p)``.

Latency statistics of the analytical path: TPOT is a per-request mean over ``D``
iterations, so its tails are taken equal to its mean; TTFT tails scale the queueing wait
by the exponential quantile (``-ln(1 - q)``). The discrete-event simulation
(:mod:`ocplan.serving.simulate`) gives true distributions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from ocplan.serving.step import IterationTime, StepModel

__all__ = [
    "DEFAULT_MAX_SEQS",
    "STAT_QUANTILE",
    "OperatingPoint",
    "batch_limits",
    "operating_point",
    "slo_rate",
]

#: Sequence cap of an engine left at its defaults: TensorRT-LLM's ``max_batch_size``
#: default (2,048; trtllm-bench tunes up to it). Per rank with DP attention (each
#: SGLang DP rank schedules its own requests).
DEFAULT_MAX_SEQS = 2048
#: Quantile of each latency statistic (mean handled apart).
STAT_QUANTILE = {"p50": 0.50, "p90": 0.90, "p99": 0.99}
#: Points of the batch grid the Poisson and SLO searches evaluate at once.
GRID_POINTS = 48


@dataclass(frozen=True)
class OperatingPoint:
    """Where one instance runs: batch, iteration and the rates and latencies."""

    batch: float
    """Sequences decoding at once (mean)."""
    batch_limit: float
    limit: str
    """What caps the batch: ``KV capacity``, ``sequence cap``, ``token budget`` or ``load``."""
    iteration: IterationTime
    """The iteration at this point (one element)."""
    output_tokens_per_s: float
    """Per instance."""
    ttft_s: float
    tpot_s: float
    requests_per_s: float


def _context(sm: StepModel) -> float:
    wl = sm.workload
    return wl.input_len + wl.output_len / 2.0


def batch_limits(sm: StepModel, kv_tokens: float) -> tuple[float, str]:
    """Largest mean decoding batch of one instance and what sets it."""
    wl, pl = sm.workload, sm.plan
    steps = wl.output_len / wl.tokens_per_step
    cap = float(pl.max_seqs if pl.max_seqs is not None else DEFAULT_MAX_SEQS * sm.ranks)
    prompt = 0.0 if sm.decode_only else wl.prefill_len / steps
    limits = {"sequence cap": cap, "KV capacity": kv_tokens / _context(sm),
              "token budget": pl.chunk_tokens / (wl.tokens_per_step + prompt)}
    name = min(limits, key=lambda k: limits[k])
    return limits[name], name


def _mixed(sm: StepModel, batch: np.ndarray) -> IterationTime:
    """Saturated continuous batching at decoding batch ``batch`` (per stage)."""
    wl = sm.workload
    p = float(sm.plan.pp)
    b = batch / p
    arrivals = 0.0 if sm.decode_only else b * wl.tokens_per_step / wl.output_len
    return sm.iteration(arrivals * wl.prefill_len, arrivals, b, b * _context(sm),
                        prefill_keys=wl.input_len)


def _take(it: IterationTime, i: int) -> IterationTime:
    return IterationTime(*(np.atleast_1d(getattr(it, f.name))[i:i + 1] for f in fields(it)))


def _prefill_s(sm: StepModel, step_s: float, batch: float) -> float:
    """Time from admission to the first token: the iterations the prompt's chunks take
    beside ``batch`` decoding sequences."""
    wl, pl = sm.workload, sm.plan
    if sm.decode_only:
        return 0.0
    room = max(pl.chunk_tokens - batch * wl.tokens_per_step / pl.pp, 1.0)
    return pl.pp * step_s * max(1.0, math.ceil(wl.prefill_len / room))


def _saturated(sm: StepModel, limit: float, name: str) -> OperatingPoint:
    wl, p = sm.workload, float(sm.plan.pp)
    it = _mixed(sm, np.array([limit]))
    t = float(it.total_s[0])
    out = limit * wl.tokens_per_step / (p * t)
    return OperatingPoint(limit, limit, name, it, out, _prefill_s(sm, t, limit),
                          p * t / wl.tokens_per_step, out / wl.output_len)


def _static(sm: StepModel, limit: float, name: str) -> OperatingPoint:
    """Waves of the static batch (see the module docstring)."""
    wl, pl = sm.workload, sm.plan
    size = max(1.0, float(wl.batch or 1) / pl.instances)
    wave = min(size, math.floor(limit)) if limit >= 1 else 0.0
    waves = math.ceil(size / wave)
    last = size - (waves - 1) * wave
    steps = wl.output_len / wl.tokens_per_step
    total = 0.0
    its = []
    for b, count in ((wave, waves - 1), (last, 1)):
        if count == 0:
            continue
        chunk = min(float(pl.chunk_tokens), b * wl.prefill_len)
        n_chunks = math.ceil(b * wl.prefill_len / chunk)
        pre = sm.iteration(chunk, chunk / wl.prefill_len, 0.0, 0.0, prefill_keys=wl.input_len)
        dec = sm.iteration(0.0, 0.0, b / pl.pp, b / pl.pp * _context(sm))
        t_pre = n_chunks * float(pre.total_s[0])
        t_dec = steps * pl.pp * float(dec.total_s[0])
        total += count * (t_pre + t_dec)
        its.append((dec, t_pre, t_dec, b))
    dec, t_pre, t_dec, b = its[0]
    out = size * wl.output_len / total
    return OperatingPoint(b, limit, name if wave < size else "load", dec, out, t_pre,
                          (t_pre + t_dec) / wl.output_len, out / wl.output_len)


def _wait_factor(stat: str) -> float:
    return 1.0 if stat == "mean" else -math.log(1.0 - STAT_QUANTILE[stat])


def _poisson(sm: StepModel, rate: float, limit: float, name: str) -> OperatingPoint:
    """Little's law fixed point on a batch grid; beyond the largest batch the queue
    grows without bound and the point is the saturated one."""
    wl, p = sm.workload, float(sm.plan.pp)
    grid = np.unique(np.concatenate([np.geomspace(1.0, max(limit, 1.0), GRID_POINTS),
                                     [limit]]))
    it = _mixed(sm, grid)
    t = it.total_s * p
    lam = grid * wl.tokens_per_step / (wl.output_len * t)
    if rate >= lam[-1]:
        point = _saturated(sm, limit, name)
        return OperatingPoint(point.batch, limit, "queueing", point.iteration,
                              point.output_tokens_per_s, math.inf, point.tpot_s,
                              point.requests_per_s)
    i = int(np.searchsorted(lam, rate))
    b = float(np.interp(rate, lam, grid))
    step = float(np.interp(rate, lam, t)) / p
    rho = rate / lam[-1]
    wait = rho / (1.0 - rho) * wl.output_len / wl.tokens_per_step * step * p / limit
    ttft = _prefill_s(sm, step, b) + wait * _wait_factor(wl.slo_stat)
    return OperatingPoint(b, limit, "load", _take(it, min(i, grid.size - 1)),
                          rate * wl.output_len, ttft, p * step / wl.tokens_per_step, rate)


def _closed(sm: StepModel, limit: float, name: str) -> OperatingPoint:
    wl = sm.workload
    c = float(wl.concurrency or 1) / sm.plan.instances
    if c >= limit:
        return _saturated(sm, limit, name)
    point = _saturated(sm, c, "load")
    return OperatingPoint(c, limit, "load", point.iteration, point.output_tokens_per_s,
                          point.ttft_s, point.tpot_s, point.requests_per_s)


def operating_point(sm: StepModel, kv_tokens: float) -> OperatingPoint | None:
    """The instance's operating point under the workload's load; None when not even one
    sequence fits (the caller reports why)."""
    limit, name = batch_limits(sm, kv_tokens)
    if limit < 1.0:
        return None
    load = sm.workload.load
    if load == "static":
        return _static(sm, limit, name)
    if load == "poisson":
        assert sm.workload.rate_per_s is not None
        return _poisson(sm, sm.workload.rate_per_s / sm.plan.instances, limit, name)
    if load == "concurrency":
        return _closed(sm, limit, name)
    return _saturated(sm, limit, name)


def slo_rate(sm: StepModel, kv_tokens: float) -> tuple[float, str] | None:
    """Highest arrival rate per instance (requests/s) whose TTFT and TPOT statistics
    stay within the workload's SLOs, and the limit that binds there; None without SLOs.
    Evaluated on the Poisson batch grid (rate, TTFT and TPOT all rise with the batch)."""
    wl, p = sm.workload, float(sm.plan.pp)
    if wl.slo_ttft_s is None and wl.slo_tpot_s is None:
        return None
    limit, _ = batch_limits(sm, kv_tokens)
    if limit < 1.0:
        return 0.0, "KV capacity"
    grid = np.unique(np.concatenate([np.geomspace(1.0, limit, GRID_POINTS), [limit]]))
    t = _mixed(sm, grid).total_s * p
    lam = grid * wl.tokens_per_step / (wl.output_len * t)
    rho = np.minimum(lam / lam[-1], 1.0 - 1e-9)
    wait = rho / (1.0 - rho) * wl.output_len / wl.tokens_per_step * t / limit
    room = np.maximum(sm.plan.chunk_tokens - grid * wl.tokens_per_step / p, 1.0)
    ttft = t * np.maximum(1.0, np.ceil(wl.prefill_len / room)) + wait * _wait_factor(wl.slo_stat)
    tpot = t / wl.tokens_per_step
    ok_ttft = ttft <= (wl.slo_ttft_s if wl.slo_ttft_s is not None else math.inf)
    ok_tpot = tpot <= (wl.slo_tpot_s if wl.slo_tpot_s is not None else math.inf)
    ok = ok_ttft & ok_tpot
    if not ok.any():
        return 0.0, "TPOT limit" if not ok_tpot[0] else "TTFT limit"
    i = int(np.nonzero(ok)[0].max())
    binding = "load" if i == grid.size - 1 else ("TPOT limit" if not ok_tpot[i + 1]
                                                  else "TTFT limit")
    return float(lam[i]), binding
