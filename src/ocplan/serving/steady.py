"""Steady-state serving: the operating point of an instance under a load, analytically.

Per instance, with ``I`` prompt tokens computed per request (after prefix-cache hits),
``O`` output tokens, ``g`` tokens gained per decode step (speculation), ``D = O / g``
iterations a request holds its slot, ``Q`` the token budget of an iteration, ``S`` the
sequence cap and ``K`` the KV capacity in tokens. ``D`` counts the iteration carrying the
prompt's last chunk, which samples the first token, as one of ``O`` one-token steps: the
same as ``1 + (O - 1) / g`` without speculation, one decode row per admitted prompt too
many (under 1 % of the rows from ``O`` of 100 on), and short by ``(1 - 1/g)`` of an
iteration with it (the static waves count the ``(O - 1) / g`` decode steps exactly):

- **offline / saturated** (continuous batching, Orca, Yu et al. OSDI 2022; vLLM): ``B``
  sequences decode while finished ones are replaced, so each iteration also prefills
  ``B I / D`` prompt tokens of ``B / D`` sequences. ``B`` is the largest that fits:
  ``min(S, K / L, Q / (g + I/D))``, ``L`` the mean context of a running sequence
  (``I + O/2``; ``I + E[O^2] / 2E[O]`` for a length distribution, long requests staying
  longer) and ``Q / (g + I/D)`` the token budget. Throughput ``B g / t(B)``; a
  request's TPOT counts the prompts of the other ``B - 1`` slots, not its own.
- **static**: batches of ``b`` run to completion in waves; a wave prefills ``b I``
  tokens in iterations of ``Q`` tokens, then decodes ``D`` steps at mean context
  ``I + O/2`` (decode time is linear in the context, so the mean is exact). The TTFT is
  the mean over the batch's sequences: the waves before a sequence's own, then the
  prefill iterations up to its prompt's last chunk and through the pipeline's stages;
  the TPOT is the decode alone (the time per output token after the first). Its sequences
  grow together, so a wave holds at most ``K / (I + O)`` of them: the cache must take
  them all at their final length (TensorRT-LLM reserves it at admission; vLLM preempts
  what no longer fits, which comes to the same smaller waves). A finite
  offline run of fixed-length requests that are all admitted at once (no more than the
  sequence cap, their prompts within the cache: ``vllm bench throughput`` with
  ``--num-prompts`` at ``--max-num-seqs``) is such a batch: they start together and
  finish together, never refilled.
- **poisson** at rate ``lam``: by Little's law the decoding batch solves
  ``B = lam D t(B)``, with the prompt chunks of an iteration a Poisson count capped by
  the budget (:func:`_chunk_count_law`) and, where the rate dips, the batch past the dip
  (:func:`_settling`); TPOT ``t(B)/g`` plus the prompt backlog a request's answer starts
  behind (:func:`_answer_s`), in the size-biased batch (:func:`_size_biased_s`), from a
  lone request's decode step at zero load (below one sequence in flight the iteration
  is interpolated from there, the backlog solved at :data:`BELOW_ONE_POINTS` rates);
  TTFT from the prompt
  queue at the token budget (:mod:`ocplan.serving.prompt_queue`: the iterations a prompt
  waits for and rides in, beside the decoding batch) plus, when the cache or the
  sequence cap bounds the batch, the wait for one of ``B_max`` slots (M/M/c,
  :func:`slot_wait_s`).
- **concurrency** ``c``: ``B = min(c, B_max)``; requests beyond ``B_max`` queue. A
  finite loop of ``N`` requests started at once (a serving benchmark's burst start)
  runs its first ``m = min(N, c)`` (at most one wave the cache holds) as a finite
  offline run of ``m`` and the other ``N - m`` at the loop's steady rate
  (:func:`_finite_closed`).

Pipeline parallelism (``p`` stages): ``p`` micro-batches of ``B/p`` are in flight; a
stage takes ``t(B/p)``, a token ``p t(B/p)``.

Latency statistics of the analytical path: TPOT is a per-request mean over ``D``
iterations of a batch that drifts slowly around ``B`` (Poisson occupancy) plus the
prompts admitted during it, so its statistic is the mean plus ``z`` standard deviations
(:meth:`_Grid.tpot_s`); TTFT statistics are those of the prompt queue's distribution
and of the slot wait's (0 with probability ``1 - C``, else exponential). A Poisson
point carries the means and both latencies at the workload's ``slo_stat``; the SLO
search judges the statistic. The discrete-event simulation
(:mod:`ocplan.serving.simulate`) gives true distributions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

import numpy as np

from ocplan.costmodel.roofline import FloatArray, f64, sum_rows
from ocplan.serving.plan import ServingPlan
from ocplan.serving.prompt_queue import (
    MAX_CAPACITY,
    POISSON_SPAN_SD,
    PromptQueue,
    compound_poisson_pmf,
    compound_reach,
    first_token_stats,
    prompt_units,
    units,
)
from ocplan.serving.step import IterationTime, StepModel
from ocplan.workloads.serving import ServingWorkload

__all__ = [
    "DEFAULT_MAX_SEQS",
    "STAT_QUANTILE",
    "OperatingPoint",
    "batch_limits",
    "busy_instances",
    "held_tokens",
    "lone_first_token_s",
    "operating_point",
    "prefill_first_token_s",
    "slo_rate",
]

#: Sequence cap of an engine left at its defaults: TensorRT-LLM's ``max_batch_size``
#: default (2,048; trtllm-bench tunes up to it). Per rank with DP attention (each
#: SGLang DP rank schedules its own requests).
DEFAULT_MAX_SEQS = 2048
#: Quantile of each latency statistic (mean handled apart).
STAT_QUANTILE = {"p50": 0.50, "p90": 0.90, "p99": 0.99}
#: Standard normal quantiles of the tail statistics (the batch a request lives through
#: is Poisson-distributed under Poisson arrivals, close to normal at serving batches).
NORMAL_Z = {"p90": 1.2816, "p99": 2.3263}
#: Quantiles at which the TPOT tail cuts the answer lengths into classes: fine at the
#: short end, whose few iterations average the least (each request's TPOT is its own mean).
ANSWER_CLASS_EDGES = (0.0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 1.0)
#: Prompts admitted during a request's life up to which their work's law is computed
#: exactly (compound Poisson); beyond, the normal law of the sum (its skew then matters
#: little: a request that sees many prompts lives long and averages them).
DEVIATION_EXACT_PROMPTS = 20.0
#: Units a prompt of the mean length is for the TPOT deviation when lengths spread.
DEVIATION_UNITS = 2.0
#: Halvings of the bracket of a TPOT deviation quantile (2^-40 of the bracket).
BISECTIONS = 40
#: Halvings of a grid step when the SLO rate is bisected on the TTFT (1/256 of a step:
#: the grid's batches are about 15 % apart).
RATE_BISECTIONS = 8
#: Arrival rate, as a share of the capacity, at which the zero-load grid point's prompt
#: queue is solved (the queue needs arrivals; at a millionth of the capacity a prompt
#: finds another in the queue one time in a million).
ZERO_LOAD_SHARE = 1e-6
#: Floor of a divisor that may be zero (no prompt chunks, no spread).
_TINY = 1e-30
#: Slack under a whole count before rounding it up (a prompt that ends exactly at an
#: iteration's end is that iteration's, not the next: floating-point products).
_CEIL_SLACK = 1e-9
#: Largest feedback elasticity of the step on the batch used for the batch's spread
#: (beyond it the queue is near saturation and the variance formula diverges).
MAX_ELASTICITY = 0.9
#: TTFT statistics at given rates a grid keeps (an estimate, its SLO search's
#: bisection and its likely range ask a few dozen).
RATES_REMEMBERED = 256
#: Points of the batch grid the Poisson and SLO searches evaluate at once.
GRID_POINTS = 48
#: Steps of the grid between zero load and its first batch (one sequence in flight):
#: rates at ``1/n .. (n-1)/n`` of the first batch's (:meth:`_Grid.of`). A prompt-heavy
#: load reaches one sequence in flight at well over half its capacity (Llama 3 70B on
#: eight H200 at 16,000 / 64 tokens: 60 %), and a request's prompt backlog grows as
#: ``rho / (1 - rho)`` over that span, far from the straight line between its ends.
BELOW_ONE_POINTS = 8
#: Units a prompt of the mean length is cut into at least when lengths spread (so that
#: short prompts are not rounded up to a long one's work).
SPREAD_UNITS = 4
#: Points of prompt work beyond the first unit at which the prompt queue's iteration is
#: evaluated.
TABLE_PROBES = 6
#: Prompt chunks per iteration up to which the law of the count under Poisson arrivals
#: is evaluated exactly (:func:`_chunk_count_law`); where that law reaches beyond, its
#: spread is small beside its mean and the two counts around the mean stand for it.
ARRIVAL_CHUNKS_MAX = 12
#: Probability beyond :data:`ARRIVAL_CHUNKS_MAX` chunks under which the exact law is used.
ARRIVAL_TAIL = 1e-6
#: Newton steps solving the Poisson mean of the chunk count before the budget caps it
#: (the function is concave and increasing: the steps rise monotonically to the root).
CAP_NEWTON_STEPS = 20
#: Batch limits that are sequence slots a request may wait for (the token budget's wait
#: is the prompt queue's, :mod:`ocplan.serving.prompt_queue`).
SLOT_LIMITS = ("KV capacity", "sequence cap")


@dataclass(frozen=True)
class OperatingPoint:
    """Where one instance runs: batch, iteration and the rates and latencies."""

    batch: float
    """Sequences decoding at once (mean)."""
    batch_limit: float
    limit: str
    """What caps the batch: ``KV capacity``, ``sequence cap``, ``token budget`` or ``load``
    (under an overload the cap the queue keeps the batch at)."""
    iteration: IterationTime
    """The iteration at this point (one element)."""
    output_tokens_per_s: float
    """Per instance."""
    ttft_s: float | None
    """Mean; None when the queue grows without bound (``limit`` is ``queueing``):
    arrivals beyond the capacity wait ever longer, no TTFT statistic exists."""
    tpot_s: float
    """Mean, of the requests being served (at the saturated batch when queueing)."""
    requests_per_s: float
    """Served, per instance (the capacity when queueing)."""
    waves: int = 1
    """Synchronized batches one instance runs one after another (static loads and
    finite runs admitted at once); 1 for a refilled steady state."""
    latency_stat: str | None = None
    """The workload's statistic (``slo_stat``) of :attr:`ttft_stat_s` and
    :attr:`tpot_stat_s`; None where only means are modelled (loads other than Poisson,
    and an overload)."""
    ttft_stat_s: float | None = None
    tpot_stat_s: float | None = None

    @property
    def queueing(self) -> bool:
        """Arrivals at or above the capacity: the queue grows without bound."""
        return self.ttft_s is None


def _context(sm: StepModel) -> float:
    wl = sm.workload
    return wl.running_context


def held_tokens(wl: ServingWorkload, plan: ServingPlan) -> float:
    """Cache tokens a running sequence keeps from others on average: its context under
    the ``refill`` admission; under ``reserve`` its prompt and whole output from
    admission on, ``I + E[O^2] / E[O]`` (length-biased, as the context; ``I + O`` for
    fixed lengths), which is what caps the batch of an engine that never preempts
    (TensorRT-LLM's ``GUARANTEED_NO_EVICT``)."""
    if plan.admission == "reserve":
        return wl.input_len + wl.output_second_moment / wl.output_len
    return wl.running_context


def _admitted_tokens(sm: StepModel) -> float:
    """Free cache a request needs to be admitted: its prompt (``refill``), or its
    prompt and whole output (``reserve``)."""
    wl = sm.workload
    if sm.plan.admission == "reserve":
        return wl.input_len + wl.output_len
    return wl.prefill_len


def _sequence_cap(sm: StepModel) -> float:
    pl = sm.plan
    return float(pl.max_seqs if pl.max_seqs is not None else DEFAULT_MAX_SEQS * sm.ranks)


def busy_instances(sm: StepModel) -> int:
    """Instances a finite load keeps busy: a static batch or a finite offline run of
    fewer sequences than instances leaves the others idle (one sequence on four
    instances is one busy instance, not four); every instance otherwise."""
    total = sm.workload.finite_sequences
    return sm.plan.instances if total is None else min(sm.plan.instances, total)


def synchronized_size(sm: StepModel, kv_tokens: float) -> float | None:
    """Sequences per busy instance (:func:`busy_instances`) of a run whose requests
    start together and finish together (see the module docstring): a static batch, or a
    finite offline run of fixed-length requests all admitted at once; None for a run
    that refills its batch."""
    wl = sm.workload
    if wl.load == "static":
        return float(wl.batch or 1) / busy_instances(sm)
    if wl.load != "offline" or wl.requests is None or wl.length_distribution != "fixed":
        return None
    n = wl.requests / busy_instances(sm)
    if n <= _sequence_cap(sm) and n * _admitted_tokens(sm) <= kv_tokens:
        return n
    return None


def batch_limits(sm: StepModel, kv_tokens: float) -> tuple[float, str]:
    """Largest mean decoding batch of one instance and what sets it."""
    wl, pl = sm.workload, sm.plan
    steps = wl.output_len / wl.tokens_per_step
    prompt = 0.0 if sm.decode_only else wl.prefill_len / steps
    synchronized = synchronized_size(sm, kv_tokens) is not None
    held = wl.input_len + wl.output_len if synchronized else held_tokens(wl, pl)
    limits = {"sequence cap": _sequence_cap(sm), "KV capacity": kv_tokens / held,
              "token budget": pl.token_budget / (wl.verified_per_step + prompt)}
    if wl.load == "offline" and wl.requests is not None:
        # a finite run never has more sequences in flight than it has requests
        limits["request count"] = wl.requests / busy_instances(sm)
    name = min(limits, key=lambda k: limits[k])
    return limits[name], name


@dataclass(frozen=True)
class _Mixed:
    """Saturated continuous batching at some decoding batches (arrays over them)."""

    mean: IterationTime
    """The mean iteration: a mixture of iterations by the prompt chunks they carry,
    ``u`` per iteration on average (:func:`_mixed`)."""
    with_prompt_s: FloatArray
    """An iteration carrying one chunk of a newly admitted prompt, s (what its first
    token waits for, chunk by chunk)."""
    chunks_per_prompt: FloatArray
    chunk_s: FloatArray
    """What one more prompt chunk adds to an iteration, s."""
    decode: IterationTime
    """The iteration without prompt chunks: what a lone request's answer rides."""

    def tpot_iteration_s(self, batch: FloatArray) -> FloatArray:
        """The mean iteration of a request's answer in a refilled batch of ``batch``
        sequences per instance (closed loop or saturated), s: the prompts it sees are
        those of the other ``B - 1`` slots, each refilled once in its life, not its own
        (admitted before its first token), so ``1 / B`` of the chunks' share is taken
        off the mean iteration (all of it for a lone request)."""
        share = self.mean.total_s - self.decode.total_s
        return f64(self.mean.total_s - share / np.maximum(f64(batch), 1.0))


def _mixed(sm: StepModel, batch: FloatArray, arrivals: bool = False) -> _Mixed:
    """Saturated continuous batching at decoding batch ``batch`` (per stage).

    Each iteration admits ``a = b g / O`` prompts on average, ``c = min(I, room)``
    tokens of a prompt per chunk (``room``: the token budget the decodes leave), so
    ``u = a I / c`` chunks. Prompts arrive whole, not as fractions: a decode-heavy
    iteration without a prompt is cheaper than one with, and the iteration time is not
    linear in its rows (weights are read once either way), so the mean iteration is a
    mixture of whole chunk counts rather than ``t(u)``. Refilled slots (offline, closed
    loop) admit as sequences finish, evenly: the two counts ``n0 = floor(u)`` and
    ``n0 + 1``, ``(1 - f) t(n0) + f t(n0 + 1)``. With ``arrivals`` (Poisson) the count
    is random (:func:`_chunk_count_law`): an iteration with no prompt is more frequent
    than the even mixture has it, one with several too, and since the first chunk costs
    the most (it turns a weight-reading decode into a compute-bound iteration) the
    mean iteration is shorter."""
    wl = sm.workload
    p = float(sm.plan.pp)
    b = f64(batch) / p
    ctx = b * _context(sm)
    if sm.decode_only:
        it = sm.iteration(0.0 * b, 0.0 * b, b, ctx)
        return _Mixed(it, it.total_s, f64(np.ones_like(b)), f64(np.zeros_like(b)), it)
    room = np.maximum(sm.plan.token_budget - b * wl.verified_per_step, 1.0)
    chunk = np.minimum(wl.prefill_len, room)
    units = b * wl.tokens_per_step / wl.output_len * wl.prefill_len / chunk
    n0 = np.floor(units)
    frac = units - n0
    chunks = np.concatenate([n0, n0 + 1.0])
    tokens = chunks * np.concatenate([chunk, chunk])
    both = sm.iteration(tokens, tokens / wl.prefill_len, np.concatenate([b, b]),
                        np.concatenate([ctx, ctx]), prefill_keys=wl.input_len)
    n = b.size
    mean = IterationTime(*(getattr(both, f.name)[:n] * (1.0 - frac)
                           + getattr(both, f.name)[n:] * frac for f in fields(both)))
    if arrivals:
        mean = _arrival_mean(sm, mean, units, np.floor(room / chunk), chunk, b, ctx)
    decode = sm.iteration(0.0 * b, 0.0 * b, b, ctx)
    return _Mixed(mean, both.total_s[n:], f64(np.ceil(wl.prefill_len / chunk)),
                  f64(np.maximum(both.total_s[n:] - both.total_s[:n], 0.0)), decode)


def _arrival_mean(sm: StepModel, even: IterationTime, units: FloatArray, cap: FloatArray,
                  chunk: FloatArray, b: FloatArray, ctx: FloatArray) -> IterationTime:
    """The mean iteration when prompts arrive as a Poisson stream: the mixture over the
    chunk count's law (:func:`_chunk_count_law`) where it is exact, ``even`` (the mixture
    of the two counts around the mean) elsewhere."""
    weights, exact = _chunk_count_law(units, np.maximum(cap, 1.0))
    if not exact.any():
        return even
    k, n = weights.shape[0], b.size
    counts = np.repeat(np.arange(k, dtype=np.float64), n)
    tokens = counts * np.tile(chunk, k)
    every = sm.iteration(tokens, tokens / sm.workload.prefill_len, np.tile(b, k),
                         np.tile(ctx, k), prefill_keys=sm.workload.input_len)
    return IterationTime(*(f64(np.where(exact, sum_rows(getattr(every, f.name).reshape(k, n)
                                                        * weights),
                                        getattr(even, f.name)))
                           for f in fields(every)))


def _chunk_count_law(units: FloatArray, cap: FloatArray) -> tuple[FloatArray, np.ndarray]:
    """Law of the prompt chunks an iteration carries under Poisson arrivals: weights of
    0 to ``k`` chunks (rows) at each point (columns), and where the law is exact.

    The prompts that arrived during an iteration are admitted into the next, so their
    count ``N`` is Poisson; the budget takes at most ``cap`` chunks (``floor(room / c)``),
    the rest wait their turn: ``K = min(N, cap)``. The Poisson mean ``nu`` is set so
    that ``E[K] = u``, the chunks per iteration the batch's rate brings (Newton on the
    concave ``E[min(N, cap)]``, whose slope is ``P(N < cap)``). A prompt that fills the
    room (``cap`` 1) gives ``P(K = 1) = u``, the even mixture. Exact where ``u < cap``
    and the law ends within :data:`ARRIVAL_CHUNKS_MAX` chunks (``cap`` within it, or
    the mass beyond under :data:`ARRIVAL_TAIL`). ``k`` is the largest count needed."""
    u = f64(np.minimum(units, cap * (1.0 - _CEIL_SLACK)))
    k = int(min(ARRIVAL_CHUNKS_MAX, max(1.0, float(np.max(cap)))))
    counts = np.arange(k + 1, dtype=np.float64)[:, None]
    log_fact = np.array([math.lgamma(c + 1.0) for c in range(k + 1)])[:, None]
    below = counts < cap

    def pmf(nu: FloatArray) -> FloatArray:
        return f64(np.exp(counts * np.log(np.maximum(nu, _TINY)) - nu - log_fact))

    nu = u.copy()
    for _ in range(CAP_NEWTON_STEPS):
        w = pmf(nu) * below
        under = sum_rows(w)  # P(N < cap), within the counts evaluated
        mean = sum_rows(counts * w) + cap * (1.0 - under)
        nu = f64(np.maximum(nu + (u - mean) / np.maximum(under, _TINY), 0.0))
    w = pmf(nu) * below
    capped = np.minimum(cap, float(k))
    w = f64(w + (counts == capped) * (1.0 - sum_rows(w)))
    exact = (units < cap) & ((cap <= k) | (1.0 - sum_rows(pmf(nu)) < ARRIVAL_TAIL))
    return w, exact


def _take_at(it: IterationTime, idx: np.ndarray) -> IterationTime:
    return IterationTime(*(getattr(it, f.name)[idx] for f in fields(it)))


def _pick(m: _Mixed, idx: np.ndarray) -> _Mixed:
    """``m`` at the batches ``idx``."""
    return _Mixed(_take_at(m.mean, idx), m.with_prompt_s[idx], m.chunks_per_prompt[idx],
                  m.chunk_s[idx], _take_at(m.decode, idx))


def _lerp_mixed(a: _Mixed, b: _Mixed, f: FloatArray) -> _Mixed:
    """The straight line from ``a`` to ``b`` (each at one batch) at the fractions ``f``."""
    def line(x: FloatArray, y: FloatArray) -> FloatArray:
        return f64(x[0] + f * (y[0] - x[0]))

    def it(x: IterationTime, y: IterationTime) -> IterationTime:
        return IterationTime(*(line(getattr(x, n.name), getattr(y, n.name))
                               for n in fields(x)))

    return _Mixed(it(a.mean, b.mean), line(a.with_prompt_s, b.with_prompt_s),
                  line(a.chunks_per_prompt, b.chunks_per_prompt),
                  line(a.chunk_s, b.chunk_s), it(a.decode, b.decode))


def _concat_mixed(first: _Mixed, rest: _Mixed) -> _Mixed:
    """``first``'s batches, then ``rest``'s."""
    return _Mixed(_join(first.mean, rest.mean),
                  f64(np.concatenate([first.with_prompt_s, rest.with_prompt_s])),
                  f64(np.concatenate([first.chunks_per_prompt, rest.chunks_per_prompt])),
                  f64(np.concatenate([first.chunk_s, rest.chunk_s])),
                  _join(first.decode, rest.decode))


def _join(first: IterationTime, rest: IterationTime) -> IterationTime:
    return IterationTime(*(f64(np.concatenate([getattr(first, f.name), getattr(rest, f.name)]))
                           for f in fields(first)))


def _take(it: IterationTime, i: int) -> IterationTime:
    return IterationTime(*(np.atleast_1d(getattr(it, f.name))[i:i + 1] for f in fields(it)))


def _room(sm: StepModel, batch: FloatArray) -> FloatArray:
    """Prompt tokens a stage's iteration has budget for beside ``batch`` sequences
    decoding (per instance)."""
    b = batch / float(sm.plan.pp)
    return f64(np.maximum(sm.plan.token_budget - b * sm.workload.verified_per_step, 1.0))


def _full_budget_s(sm: StepModel, batch: FloatArray) -> FloatArray:
    """Iteration carrying a full budget of prompt tokens beside ``batch`` sequences
    decoding (per instance), s per stage: the longest a request's answer rides."""
    wl = sm.workload
    b, room = batch / float(sm.plan.pp), _room(sm, batch)
    return f64(sm.iteration(room, room / wl.prefill_len, b, b * _context(sm),
                            prefill_keys=wl.input_len).total_s)


def _answer_s(sm: StepModel, batch: FloatArray, mixed: _Mixed, rate: FloatArray,
              full: FloatArray, q: float | None = None) -> FloatArray:
    """Mean iteration a request's answer rides under Poisson arrivals at ``rate`` per
    instance with ``batch`` sequences decoding (arrays over grid points), s per stage;
    ``full`` is :func:`_full_budget_s` there; with ``q``, the answer of a request whose
    first token came at the ``q`` quantile.

    The mean iteration ``t`` is a time average; a request's answer is not a random
    sample of it. Its first token comes when its own prompt is done, and every prompt
    that arrived meanwhile (first come, first served) is still queued: ``n = lam T1``
    of them, ``T1`` its mean time to first token (Little's law). They are prefilled at
    the full budget ``R`` the decodes leave, iterations of ``t_R`` carrying one answer
    token each, while arrivals go on at utilisation ``rho = lam I t_R / R``, a busy
    period of ``k = n I / (p R (1 - rho))`` of the request's iterations (``p`` stages
    share the backlog). Its ``D = O / g`` iterations are then ``min(k, D)`` of ``t_R``
    and the rest of ``t``: ``t + min(k, D) (t_R - t) / D``. ``T1`` is the zero-load
    first token plus the Pollaczek-Khinchine mean wait of deterministic service,
    ``rho s / (2 (1 - rho))`` with ``s = I t_R / R`` (Kleinrock 1975, Queueing Systems
    I, eq. 5.105), so the grid needs no queue solve per point; at ``rho >= 1`` every
    iteration carries a full budget. The mean takes the cap ``D`` inside
    (:func:`_mean_capped_backlog`): the waits spread, and near the capacity of a
    prompt-heavy load many of them alone would fill the answer. Against the
    discrete-event simulation (:mod:`ocplan.serving.simulate`) of 54 loads (3 models,
    prompts of 500 to 16,000 tokens, answers of 50 to 1,000, at 30 to 85 % of capacity;
    ``scripts/serving_vs_simulation.py``), the mean TPOT's median error is 2.3 % and its
    90th percentile 14 % (with the size-biased batch, :func:`_size_biased_s`), against
    8.2 and 48 % for ``t`` alone: a prompt-heavy load's answer spends a quarter to three
    quarters of its time behind prompts.

    A request that waited longer has more prompts behind it: at the quantile ``q`` the
    wait is that of the exponential tail with the M/D/1 wait's mean ``W`` and chance of
    waiting ``rho``, ``P(wait > w) = rho exp(-rho w / W)``, so ``W / rho ln(rho / (1 -
    q))`` (0 when ``rho <= 1 - q``): the statistic's backlog (:meth:`_Grid.tpot_s`).
    A decode-only instance has no prompts; its answer rides ``t``."""
    t = mixed.mean.total_s
    if sm.decode_only:
        return f64(t)
    wl, p = sm.workload, float(sm.plan.pp)
    room = _room(sm, batch)
    service = wl.prefill_len * full / room
    rho = rate * service
    busy = rho < 1.0
    free = np.where(busy, 1.0 - rho, 1.0)
    wait = rho * service / (2.0 * free)
    if q is not None:
        chance = np.maximum(rho, _TINY)
        wait = np.where(rho > 1.0 - q, wait / chance * np.log(chance / (1.0 - q)), 0.0)
    per_s = rate * wl.prefill_len / (p * room * free)   # backlog iterations per second waited
    d = wl.output_len / wl.tokens_per_step
    if q is None:
        k = _mean_capped_backlog(per_s * _first_token_s(sm, mixed), per_s * wait, rho, d)
    else:
        k = np.minimum(per_s * (_first_token_s(sm, mixed) + wait), d)
    k = np.where(busy, k, d)
    return f64(t + k * np.maximum(full - t, 0.0) / d)


def _mean_capped_backlog(base: FloatArray, mean_extra: FloatArray, rho: FloatArray,
                         d: float) -> FloatArray:
    """Mean over requests of ``min(k, D)``, the backlog iterations an answer of ``D``
    iterations spends behind prompts, ``k = base + c W`` growing with the request's wait
    ``W``: 0 with probability ``1 - rho``, else exponential of mean ``W-bar / rho`` (the
    tail :func:`_answer_s` takes for its quantiles), ``mean_extra = c W-bar``. The cap
    is taken inside the mean: ``E[min(k, D)]`` falls short of ``min(E[k], D)`` wherever
    the waits reach ``D`` (the cap is concave), which near the capacity of a
    prompt-heavy load is most of them: ``(1 - rho) min(a, D) + rho (a + s (1 -
    exp(-(D - a) / s)))`` for ``a = base < D`` (``s = mean_extra / rho``), ``D`` beyond."""
    a = np.minimum(base, d)
    chance = np.maximum(rho, _TINY)
    s = np.maximum(mean_extra / chance, _TINY)
    waited = a + s * -np.expm1(-(d - a) / s)
    return f64((1.0 - rho) * a + rho * np.minimum(waited, d))


def _first_token_s(sm: StepModel, mixed: _Mixed, i: int | slice = slice(None)) -> FloatArray:
    """Time from admission to the first token: the rest of the running iteration (half
    of one on average), then the iterations carrying the prompt's chunks."""
    if sm.decode_only:
        return f64(np.zeros_like(mixed.with_prompt_s[i]))
    p = float(sm.plan.pp)
    return f64(p * (0.5 * mixed.mean.total_s[i]
                    + mixed.with_prompt_s[i] * mixed.chunks_per_prompt[i]))


def _saturated(sm: StepModel, limit: float, name: str) -> OperatingPoint:
    wl, p = sm.workload, float(sm.plan.pp)
    mixed = _mixed(sm, f64(np.array([limit])))
    t = float(mixed.mean.total_s[0])
    answer = float(mixed.tpot_iteration_s(f64(np.array([limit])))[0])
    out = limit * wl.tokens_per_step / (p * t)
    return OperatingPoint(limit, limit, name, mixed.mean, out,
                          float(_first_token_s(sm, mixed)[0]), p * answer / wl.tokens_per_step,
                          out / wl.output_len)


def _static(sm: StepModel, limit: float, name: str, size: float) -> OperatingPoint:
    """Waves of a synchronized batch of ``size`` sequences per instance (see the module
    docstring).

    A wave prefills its ``b`` prompts in order, ``Q`` tokens an iteration, through the
    ``p`` pipeline stages: the ``j``-th prompt's last chunk is iteration
    ``ceil(j I / Q)``, whose output leaves the last stage ``p - 1`` stage times later, so
    its first token comes ``(ceil(j I / Q) + p - 1)`` prefill iterations into the wave
    (the wave's TTFT is the mean over ``j``, its prefill the last). Decode follows: the
    prefill samples each sequence's first token, so ``(O - 1) / g`` steps of ``p`` stage
    times give the other ``O - 1``; TPOT is one step's time per token gained (the first
    token is TTFT's; a one-token answer has no decode)."""
    wl, pl = sm.workload, sm.plan
    wave = min(size, math.floor(limit)) if limit >= 1 else 0.0
    waves = math.ceil(size / wave)
    last = size - (waves - 1) * wave
    steps = (wl.output_len - 1) / wl.tokens_per_step
    total = 0.0
    its = []
    first_token = 0.0  # summed over the sequences: the waves before theirs, then a prefill
    for b, count in ((wave, waves - 1), (last, 1)):
        if count == 0:
            continue
        chunk = min(float(pl.token_budget), b * wl.prefill_len)
        n_chunks = math.ceil(b * wl.prefill_len / chunk)
        pre = sm.iteration(chunk, chunk / wl.prefill_len, 0.0, 0.0, prefill_keys=wl.input_len)
        dec = sm.iteration(0.0, 0.0, b / pl.pp, b / pl.pp * _context(sm))
        stage = float(pre.total_s[0])
        t_pre = (n_chunks + pl.pp - 1) * stage
        own = (_mean_last_chunk(b, wl.prefill_len / chunk) + pl.pp - 1) * stage
        t_dec = steps * pl.pp * float(dec.total_s[0])
        # the count waves of b start total, total + T, ..., total + (count - 1) T
        span = t_pre + t_dec
        first_token += b * (count * (total + own) + span * count * (count - 1) / 2)
        total += count * span
        its.append((dec, b))
    dec, b = its[0]
    out = size * wl.output_len / total
    whole = "load" if wl.load == "static" else "request count"
    return OperatingPoint(b, limit, name if wave < size else whole, dec, out,
                          first_token / size, pl.pp * float(dec.total_s[0]) / wl.tokens_per_step,
                          out / wl.output_len, waves)


def lone_first_token_s(sm: StepModel) -> float:
    """A lone request's time to first token: its prompt in budget-sized chunks through
    the ``p`` stages, ``ceil(I / Q) + p - 1`` prefill iterations (a static wave of one,
    :func:`_static`)."""
    wl, pl = sm.workload, sm.plan
    chunk = min(float(pl.token_budget), wl.prefill_len)
    pre = sm.iteration(chunk, chunk / wl.prefill_len, 0.0, 0.0, prefill_keys=wl.input_len)
    return (math.ceil(wl.prefill_len / chunk) + pl.pp - 1) * float(pre.total_s[0])


def _mean_last_chunk(b: float, tokens_per_prompt: float) -> float:
    """Mean over a wave's ``b`` prompts of the prefill iteration that ends each, in
    iterations of one token budget each, when prompts of ``tokens_per_prompt`` budgets
    are cut into them in order: ``mean_j ceil(j I / Q)``, ``j = 1 .. b`` (a fractional
    ``b``, a wave of a fractional batch per instance, rounds up)."""
    j = np.arange(1.0, math.ceil(b) + 1.0)
    return float(np.mean(np.ceil(j * tokens_per_prompt - _CEIL_SLACK)))


def _poisson(sm: StepModel, rate: float, limit: float, name: str) -> OperatingPoint:
    """Little's law fixed point on a batch grid; at or beyond the capacity (the rate of
    the largest batch) the queue grows without bound: the point is the saturated one
    and has no TTFT (so also when the prompt queue alone cannot keep up, a hair below
    it: its units round the budget)."""
    wl, p = sm.workload, float(sm.plan.pp)
    g = _grid(sm, limit, name)
    tail = g.ttft_s(sm, rate) if rate < g.rate[-1] else math.inf
    if not math.isfinite(tail):
        return replace(_saturated(sm, limit, name), ttft_s=None)
    i = min(int(np.searchsorted(g.rate, rate)), g.batch.size - 1)
    answer = float(np.interp(rate, g.rate, g.answer_s))
    # the two are interpolated apart between grid points: the floor may bind here alone
    b = float(_decoding(sm, rate, answer, float(np.interp(rate, g.rate, g.batch)), limit)[0])
    return OperatingPoint(b, limit, "load", _take(g.mixed.mean, i), rate * wl.output_len,
                          g.ttft_s(sm, rate, "mean"), p * answer / wl.tokens_per_step, rate,
                          latency_stat=wl.slo_stat, ttft_stat_s=tail,
                          tpot_stat_s=float(np.interp(rate, g.rate, g.tpot_s(sm))))


def _decode_hold_s(sm: StepModel, answer_s: float) -> float:
    """Time a request decodes, s: its ``D = O / g`` iterations of the answer's iteration
    ``answer_s`` (per stage), ``p`` stage times each."""
    wl = sm.workload
    return wl.output_len / wl.tokens_per_step * answer_s * float(sm.plan.pp)


def _decoding(sm: StepModel, rate: FloatArray | float, answer_s: FloatArray | float,
              batch: FloatArray | float, limit: float) -> FloatArray:
    """Sequences decoding under ``rate`` arrivals per second: the rate times a request's
    decode hold (Little's law, :func:`_decode_hold_s`; the hold is linear in the
    answer's iteration ``answer_s``), within ``limit`` and at least the grid's ``batch``
    (the rate times the time-averaged iteration, which the answer outlasts behind the
    prompt backlog)."""
    held = f64(np.atleast_1d(rate)) * _decode_hold_s(sm, 1.0) * f64(np.atleast_1d(answer_s))
    return f64(np.maximum(batch, np.minimum(held, limit)))


def _settling(batch: FloatArray, rate: FloatArray) -> np.ndarray:
    """Indices of the grid batches a Poisson stream settles at, rates rising along them
    and the last one the capacity (the largest rate).

    The decoding batch is a birth-death process: arrivals at ``lam``, completions at
    ``mu(n) = n g / (O p t(n))``, every sequence in flight advancing together (a
    symmetric queue, whose stationary law depends on the answer lengths only through
    their mean: Kelly, "Reversibility and Stochastic Networks", 1979, sec. 3.3). Its law
    is ``pi(n) ~ exp(n ln lam - M(n))``, ``M(n)`` the sum of ``ln mu`` up to ``n``,
    peaked at serving batches: the batch settles where ``M(n) - n ln lam`` is least, a
    batch on the lower convex hull of ``M``. Where the rate dips (the rows cross into
    another wave of tiles) ``M`` bends down, and the batch does not stop below the dip
    at the first rate that matches ``lam``: a fluctuation into the dip, where the step
    outgrows the batch, carries it past, and it settles beyond (Maxwell's equal-area
    rule). Llama 3 70B on eight H200 at 500 / 1,000 tokens and 85 % of capacity: the
    simulation's batch is 695 sequences, the first crossing 502, the hull's 665. Past
    the capacity (the step outgrows the batch) the grid ends; ``M`` is summed by the
    trapezoid rule between the grid's batches."""
    top = int(np.argmax(rate))
    b, log_rate = batch[:top + 1], np.log(np.maximum(rate[:top + 1], _TINY))
    m = np.concatenate([[0.0], np.cumsum(np.diff(b) * 0.5 * (log_rate[1:] + log_rate[:-1]))])
    hull: list[int] = []
    for i in range(b.size):
        while len(hull) >= 2 and _cross(b, m, hull[-2], hull[-1], i) <= 0.0:
            hull.pop()
        hull.append(i)
    kept = np.array(hull)
    rising = rate[kept] > np.concatenate([[-np.inf],
                                           np.maximum.accumulate(rate[kept])[:-1]])
    settled: np.ndarray = kept[rising]
    return settled


def _cross(x: FloatArray, y: FloatArray, a: int, b: int, c: int) -> float:
    """Cross product of ``b - a`` and ``c - a``: positive when ``a, b, c`` turn left
    (``b`` lies below the chord from ``a`` to ``c``)."""
    return float((x[b] - x[a]) * (y[c] - y[a]) - (y[b] - y[a]) * (x[c] - x[a]))


def _grid(sm: StepModel, limit: float, name: str) -> _Grid:
    """:meth:`_Grid.of` for the batch limit ``limit`` set by ``name``, built once per
    model context and limit (the operating point and the SLO search of one estimate
    share it)."""
    slots = name in SLOT_LIMITS
    return sm.remember(("grid", limit, slots), lambda: _frozen(_Grid.of(sm, limit, slots)))


def _frozen(g: _Grid) -> _Grid:
    """``g`` with its arrays read-only: it is shared by every estimate of its context."""
    mean, decode = g.mixed.mean, g.mixed.decode
    for a in (g.batch, g.step_s, g.rate, g.answer_s, g.full_s, *g.answer_tail_s.values(),
              g.mixed.with_prompt_s, g.mixed.chunks_per_prompt,
              g.mixed.chunk_s, *(getattr(mean, f.name) for f in fields(mean)),
              *(getattr(decode, f.name) for f in fields(decode))):
        a.flags.writeable = False
    return g


@dataclass(frozen=True)
class _Grid:
    """The Poisson operating points of a batch grid: batch, mean iteration, rate."""

    batch: FloatArray
    mixed: _Mixed
    step_s: FloatArray
    rate: FloatArray
    limit: float
    answer_s: FloatArray
    """The mean iteration a request's answer rides (:func:`_answer_s`), s: the mean
    iteration and the prompt backlog queued behind the request's own prompt, in the
    size-biased batch (:func:`_size_biased_s`)."""
    answer_tail_s: dict[str, FloatArray]
    """:attr:`answer_s` of a request whose first token came at each tail statistic's
    quantile (:data:`NORMAL_Z`), s."""
    full_s: FloatArray
    """The iteration carrying a full budget of prompt (:func:`_full_budget_s`), s; inf
    at zero load and on a decode-only instance: what no request's mean iteration
    exceeds."""
    slots: bool = False
    """The cache or the sequence cap bounds the batch (a request may wait for a slot)."""
    _ttft: dict[tuple[int, str], float] = field(default_factory=dict, compare=False,
                                                repr=False)
    """TTFT statistics by grid batch and statistic (the grid is shared, :func:`_grid`;
    so are they)."""
    _tables: list[tuple[FloatArray, float]] = field(default_factory=list, compare=False,
                                                  repr=False)
    """:meth:`_prompt_tables`, once built."""
    _tpot: dict[str, FloatArray] = field(default_factory=dict, compare=False, repr=False)
    """:meth:`tpot_s` by statistic."""
    _at_rate: dict[tuple[float, str], float] = field(default_factory=dict, compare=False,
                                                     repr=False)
    """:meth:`ttft_s` by rate and statistic (an estimate asked again at its rate solves
    no queue), at most :data:`RATES_REMEMBERED` of them."""

    @staticmethod
    def of(sm: StepModel, limit: float, slots: bool = False) -> _Grid:
        wl = sm.workload
        grid = f64(np.unique(np.concatenate([np.geomspace(1.0, max(limit, 1.0), GRID_POINTS),
                                             [limit]])))
        both = _mixed(sm, f64(np.concatenate([[0.0], grid])), arrivals=True)
        zero, mixed = _pick(both, np.arange(1)), _pick(both, np.arange(1, grid.size + 1))
        t = mixed.mean.total_s
        rate = grid * wl.tokens_per_step / (wl.output_len * t * sm.plan.pp)
        idx = _settling(grid, rate)
        # Below one sequence in flight the grid starts at zero load: no batch, no rate,
        # and a lone request answering in iterations of its own (one sequence's decode,
        # no other prompt beside it); between there and the first batch the prompts a
        # request sees grow with the rate, so its iteration is linear in it, while its
        # backlog is not (_answer_s at each rate): BELOW_ONE_POINTS steps between them.
        lone = _take_at(mixed.decode, np.arange(1))  # grid[0] is one sequence
        start = _Mixed(lone, zero.with_prompt_s, zero.chunks_per_prompt, zero.chunk_s, lone)
        kept = _pick(mixed, idx)
        f = f64(np.arange(1.0, BELOW_ONE_POINTS) / BELOW_ONE_POINTS)
        ahead = _concat_mixed(_lerp_mixed(start, _pick(kept, np.arange(1)), f), kept)
        on = np.concatenate([np.zeros(f.size, dtype=np.intp), np.arange(idx.size)])
        batches = f64(np.concatenate([[0.0], f * grid[idx[0]], grid[idx]]))
        rates = f64(np.concatenate([[0.0], f * rate[idx[0]], rate[idx]]))
        full = (f64(np.full(idx.shape, np.inf)) if sm.decode_only
                else f64(np.maximum(_full_budget_s(sm, f64(grid[idx])), kept.mean.total_s)))

        step = f64(np.concatenate([lone.total_s, ahead.mean.total_s]))
        biased = _size_biased_s(batches, step, f64(np.concatenate(
            [lone.total_s, ahead.decode.total_s])))

        def answers(q: float | None = None) -> FloatArray:
            # below the first batch its room: one sequence's decode beside the prompts
            return f64(biased + np.concatenate([lone.total_s, _answer_s(
                sm, f64(grid[idx][on]), ahead, rates[1:], full[on], q)]))

        return _Grid(batches, _concat_mixed(start, ahead), step, rates,
                     float(grid[idx[-1]]), answers(),
                     {stat: answers(STAT_QUANTILE[stat]) for stat in NORMAL_Z},
                     f64(np.concatenate([[np.inf], full[on]])), slots)

    def tpot_s(self, sm: StepModel) -> FloatArray:
        """TPOT statistic (the workload's ``slo_stat``) at each grid batch. The mean is
        the mean iteration; a quantile adds to it two deviations of a request's mean
        iteration:

        - the batch it lives through: under Poisson arrivals the sequences in flight
          are Poisson-like around ``B``, widened by the feedback of a longer step on a
          longer stay: variance ``B / (1 - eta)``, ``eta = B t'(B) / t(B)`` (capped at
          :data:`MAX_ELASTICITY`); the step moves by ``t'(B)`` per sequence; ``z``
          standard deviations of it (``z`` the normal quantile);
        - the prompts admitted during its ``D`` decode iterations
          (:func:`_prompt_deviation`): a request's TPOT is its own mean over its own
          answer, so short answers, which average over few iterations, make the tail.

        The two add as quantiles of comonotonic variables, linearly: a request that
        lives through a larger batch also lives longer and sees more prompts (in
        quadrature, as if independent, the p99 fell 4-10 % short of the simulation).
        The mean is that of the answer's iteration (:attr:`answer_s`), which counts the
        prompt backlog behind the request's own. A quantile adds a third deviation, the
        backlog of a request whose first token came at that quantile
        (:attr:`answer_tail_s`: it waited longer, so more prompts queued behind it), in
        quadrature with the other two: it comes from the arrivals before the request's
        first token, they from those after, and a Poisson stream's counts on disjoint
        stretches are independent (added linearly, the p90 of a moderate load, Llama 3 8B
        at 870 / 128 tokens and 25 requests/s, came out 5.1 % above the simulation). The
        statistic stays within the full-budget iteration (:attr:`full_s`), the longest
        any of the request's iterations is. Against the simulation's 54 loads
        (``scripts/serving_vs_simulation.py``) the p99's 90th percentile error fell from
        47 to 43 %. Remembered on the grid (the operating point and the SLO search share
        it)."""
        wl = sm.workload
        stat = wl.slo_stat
        if stat not in self._tpot:
            b, t = self.batch, self.step_s
            dev = f64(np.zeros_like(t))
            if stat in NORMAL_Z and b.size >= 2:
                slope, eta = _elasticity(b, t)
                sd_batch = slope * np.sqrt(_life_averaged(1.0 - eta) * b / (1.0 - eta))
                dev = f64(NORMAL_Z[stat] * sd_batch
                          + _prompt_deviation(sm, self, STAT_QUANTILE[stat]))
            if stat in self.answer_tail_s:
                # the backlog comes from arrivals before the first token, the deviation
                # from those after it: disjoint stretches of a Poisson stream, independent
                extra = self.answer_tail_s[stat] - self.answer_s
                body = np.minimum(self.answer_s + np.sqrt(extra * extra + dev * dev),
                                  self.full_s)
            else:
                body = self.answer_s + dev
            out = f64(body * sm.plan.pp / wl.tokens_per_step)
            out.flags.writeable = False
            self._tpot[stat] = out
        return self._tpot[stat]

    def queue(self, sm: StepModel, i: int, rate: float) -> PromptQueue:
        """The prompt queue at grid batch ``i`` under ``rate`` arrivals per second
        (:mod:`ocplan.serving.prompt_queue`)."""
        iteration_s, u = self._prompt_tables(sm)[i]
        return _prompt_queue(sm, iteration_s, u, rate)

    def _prompt_tables(self, sm: StepModel) -> list[tuple[FloatArray, float]]:
        """:func:`_prompt_tables` of the grid's batches per stage, remembered on the
        grid."""
        if not self._tables:
            self._tables.extend(_prompt_tables(sm, f64(self.decoding(sm) / sm.plan.pp)))
        return self._tables

    def decoding(self, sm: StepModel) -> FloatArray:
        """Sequences decoding at each grid batch's rate (:func:`_decoding`)."""
        return _decoding(sm, self.rate, self.answer_s, self.batch, self.limit)

    def slot_wait_s(self, sm: StepModel, i: int, stat: str, rate: float | None = None
                    ) -> float:
        """Wait for a sequence slot at grid batch ``i`` under ``rate`` arrivals per
        second (default the grid's there) when the cache or the sequence cap bounds the
        batch (0 when the token budget bounds it: the prompt queue is that wait):
        :func:`slot_wait_s` with ``B_max`` slots and a request holding its slot for its
        ``D`` iterations of the answer's iteration (:attr:`answer_s`). The slots held are
        the offered load, the rate times that hold (Little's law), not the grid's batch:
        that one is the rate times the time-averaged iteration, which a request's answer,
        starting behind the prompt backlog, outlasts."""
        if not self.slots:
            return 0.0
        hold = _decode_hold_s(sm, float(self.answer_s[i]))
        offered = (float(self.rate[i]) if rate is None else rate) * hold
        return slot_wait_s(self.limit, offered, hold, stat)

    def ttft_at(self, sm: StepModel, i: int, stat: str, rate: float | None = None) -> float:
        """TTFT statistic ``stat`` at grid batch ``i`` (under the grid's rate there
        unless ``rate`` is given): the prompt queue's first token
        (:func:`~ocplan.serving.prompt_queue.first_token_s`; none on a decode-only
        instance) plus the slot wait. Remembered on the grid at the grid's rates (the
        operating point, the SLO search and the curve come back to them), the mean and
        the workload's statistic from one solve of the queue."""
        if rate is not None:
            [out] = self._ttft_stats(sm, i, (stat,), rate)
            return out
        if (i, stat) not in self._ttft:
            stats = tuple(dict.fromkeys((stat, "mean", sm.workload.slo_stat)))
            for s, v in zip(stats, self._ttft_stats(sm, i, stats, float(self.rate[i])),
                            strict=True):
                self._ttft[(i, s)] = v
        return self._ttft[(i, stat)]

    def _ttft_stats(self, sm: StepModel, i: int, stats: tuple[str, ...],
                    rate: float) -> tuple[float, ...]:
        # the zero-load point's queue is its limit as arrivals vanish
        rate = max(rate, ZERO_LOAD_SHARE * float(self.rate[-1]))
        first = ((0.0,) * len(stats) if sm.decode_only
                 else first_token_stats(self.queue(sm, i, rate), stats))
        return tuple(f + self.slot_wait_s(sm, i, s, rate)
                     for f, s in zip(first, stats, strict=True))

    def ttft_s(self, sm: StepModel, rate: float, stat: str | None = None) -> float:
        """TTFT statistic ``stat`` (default the workload's) at arrival rate ``rate``
        (below the capacity): the prompt queue at this rate beside each of the grid
        batches around it, weighted by where the rate lies between theirs (below the
        grid's first rate, at its first batch). The queue is solved at the rate itself
        because its wait is far from linear in the rate: on a prefill-heavy load the
        first grid batch (one sequence decoding) is already at half the capacity, and a
        straight line from zero load to there had a faster chip's TTFT limit met at a
        lower rate (its line ends at a higher rate, and higher). It rises with the
        rate (both queues and the weight do, the larger batch's queue being the slower),
        and each queue falls with a faster resource; a quantile can still step the other
        way where a wait first reaches it (``tests/test_serving_monotone.py``)."""
        stat = stat or sm.workload.slo_stat
        key = (rate, stat)
        if key not in self._at_rate:
            value = self._ttft_between(sm, rate, stat)
            if len(self._at_rate) >= RATES_REMEMBERED:
                self._at_rate.clear()
            self._at_rate[key] = value
        return self._at_rate[key]

    def _ttft_between(self, sm: StepModel, rate: float, stat: str) -> float:
        """:meth:`ttft_s`, computed."""
        if rate <= self.rate[0]:
            return self.ttft_at(sm, 0, stat, rate)
        hi = min(int(np.searchsorted(self.rate, rate)), self.batch.size - 1)
        if rate >= self.rate[hi]:
            return self.ttft_at(sm, hi, stat)
        low = self.ttft_at(sm, hi - 1, stat, rate)
        high = self.ttft_at(sm, hi, stat, rate)
        if not math.isfinite(high):
            # the budget saturates at the grid's next batch: the queue at this rate
            # beside the batch below it
            return low
        w = (rate - float(self.rate[hi - 1])) / float(self.rate[hi] - self.rate[hi - 1])
        return (1.0 - w) * low + w * high

    def ttft_within(self, sm: StepModel, bound_s: float) -> int:
        """Last grid batch whose TTFT statistic is within ``bound_s`` (-1 when none):
        a bisection, the TTFT rising with the rate along the grid."""
        stat = sm.workload.slo_stat
        lo, hi = -1, self.batch.size - 1
        if self.ttft_at(sm, hi, stat) <= bound_s:
            return hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.ttft_at(sm, mid, stat) <= bound_s:
                lo = mid
            else:
                hi = mid
        return lo


def _elasticity(batch: FloatArray, step: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``(t'(B), eta)`` along a grid: the mean iteration's slope in the batch, s per
    sequence (at least 0), and its elasticity ``eta = B t'(B) / t(B)``, capped at
    :data:`MAX_ELASTICITY` (the feedback of a longer step on a longer stay)."""
    slope = f64(np.maximum(np.gradient(step, batch), 0.0))
    return slope, f64(np.clip(batch * slope / step, 0.0, MAX_ELASTICITY))


def _size_biased_s(batch: FloatArray, step: FloatArray, decode: FloatArray) -> FloatArray:
    """What the batch a request decodes in adds to the iteration it rides, beyond the
    time-averaged batch ``B``, s (arrays along a grid).

    A request sees the batch size-biased: its own slot and the others in flight. With
    the batch Poisson-like around ``B``, variance ``B / (1 - eta)`` (:meth:`_Grid.tpot_s`),
    the batch a request lives in is ``B + Var / B = B + 1 / (1 - eta)`` on average (the
    inspection paradox: Feller, *An Introduction to Probability Theory and Its
    Applications* II, 1971, sec. XI.4); below one sequence in flight, where the grid's
    iterations decode one, it is ``1 + B`` (the others, Poisson of mean ``B``, beside
    its own). The decode iteration ``decode`` is read there against where the grid
    reads it; beyond the grid's last batch (the limit) nothing is added. It matters at
    a few sequences in flight and where a sequence more costs much (a mixture of
    experts at small batches reads the weights of more experts)."""
    _, eta = _elasticity(batch, step)
    at = np.maximum(batch, 1.0)
    seen = np.where(batch < 1.0, 1.0 + batch, batch + 1.0 / (1.0 - eta))
    grid = batch >= 1.0
    b, d = batch[grid], decode[grid]
    if b.size == 0:
        return f64(np.zeros_like(batch))
    extra = np.interp(np.minimum(seen, b[-1]), b, d) - np.interp(np.minimum(at, b[-1]), b, d)
    return f64(np.maximum(extra, 0.0))


def _life_averaged(x: FloatArray) -> FloatArray:
    """Share of the batch's variance a request's answer keeps by averaging the batch
    over its own life ``T``: the batch relaxes to its mean in ``T / x`` (one life,
    lengthened by the feedback of a longer step on a longer stay, ``x = 1 - eta``), and
    the mean over a window ``T`` of a process with that correlation time keeps
    ``2 (x - 1 + exp(-x)) / x^2`` of its variance (the variance of a time average of an
    Ornstein-Uhlenbeck process; Papoulis, "Probability, Random Variables and Stochastic
    Processes", the mean-ergodic variance). Without feedback (``x`` 1) 0.74, near the
    capacity (``x`` to 0) 1: a request lives through a fraction of one slow swing."""
    return f64(2.0 * (x - 1.0 + np.exp(-x)) / (x * x))


def _prompt_tables(sm: StepModel, batch: FloatArray) -> list[tuple[FloatArray, float]]:
    """Per decoding batch of a stage: its iteration carrying ``0 .. k`` units of prompt
    tokens (the budget the batch leaves, :func:`~ocplan.serving.prompt_queue.units`)
    and the unit's tokens, read-only; one vectorised pass of the step model over all the
    batches at :func:`_probes`, interpolated between them."""
    wl = sm.workload
    room = np.maximum(sm.plan.token_budget - batch * wl.verified_per_step, 1.0)
    shapes = [units(wl.prefill_len, float(r)) for r in room]
    probes = [_probes(k) for _, k in shapes]
    tokens = f64(np.concatenate([m * u for (u, _), m in zip(shapes, probes, strict=True)]))
    seqs = f64(np.repeat(batch, [m.size for m in probes]))
    it = sm.iteration(tokens, tokens / wl.prefill_len, seqs, seqs * _context(sm),
                      prefill_keys=wl.input_len)
    cuts = np.cumsum([m.size for m in probes])[:-1]
    out = []
    for t, m, (u, k) in zip(np.split(f64(np.array(it.total_s)), cuts), probes, shapes,
                               strict=True):
        table = f64(np.interp(np.arange(k + 1.0), m, t))
        table.flags.writeable = False
        out.append((table, u))
    return out


def _probes(k: int) -> FloatArray:
    """Units of prompt at which a prompt-queue table is evaluated: 0, 1 and
    :data:`TABLE_PROBES` points up to ``k`` (the iteration is close to linear in its
    prompt tokens beyond the first unit; the others are interpolated)."""
    return f64(np.unique(np.concatenate([[0.0, 1.0], np.linspace(1.0, k, TABLE_PROBES)])
                         .round()))


def _prompt_deviation(sm: StepModel, g: _Grid, q: float) -> FloatArray:
    """Quantile ``q`` over requests of how far the prompts admitted during a request's
    life raise its mean iteration above the mean iteration, s, at each grid batch (0
    when the quantile is below the mean).

    A request whose answer is ``r`` times the mean (``r`` from the answer classes,
    :data:`ANSWER_CLASS_EDGES`) lives ``D_r = max(1, r D)`` iterations, during which
    ``N ~ Poisson(B r)`` prompts are admitted (``B`` per ``D`` iterations in the steady
    state), of the workload's prompt lengths: ``X`` units in all, a compound Poisson sum
    (:func:`~ocplan.serving.prompt_queue.prompt_units`,
    :func:`~ocplan.serving.prompt_queue.compound_poisson_pmf`). A unit adds ``c delta /
    E[Y]`` to the iteration it rides (``c`` chunks per mean prompt, ``delta`` what a chunk
    adds: the iteration is close to linear in its prompt tokens), so the request's mean
    iteration moves by ``(X - E[X]) c delta / (E[Y] D_r)``. The statistic is the
    quantile of the mixture over the answer classes (bisection on its distribution); a
    class that sees more than :data:`DEVIATION_EXACT_PROMPTS` prompts takes the normal law
    of its sum. Short answers average over few iterations: they make the tail (MLPerf's
    TPOT, like the simulation's, is each request's own mean)."""
    wl = sm.workload
    answers = wl.length_classes(ANSWER_CLASS_EDGES)
    rel = f64(np.array([r for r, _ in answers]))
    prob = f64(np.array([w for _, w in answers]))
    spread = wl.length_moment_factor != 1.0
    sizes = prompt_units(DEVIATION_UNITS if spread else 1.0, wl.length_classes())
    y = np.arange(sizes.size)
    ey, ey2 = float(y @ sizes), float(y * y @ sizes)
    steps = np.maximum(1.0, rel * wl.output_len / wl.tokens_per_step)
    scale = (g.mixed.chunks_per_prompt * g.mixed.chunk_s / ey)[:, None] / steps[None, :]
    mu = g.batch[:, None] * rel[None, :]
    mean = mu * ey
    exact = mu <= DEVIATION_EXACT_PROMPTS
    count = sizes.size + math.ceil(compound_reach(DEVIATION_EXACT_PROMPTS, sizes))
    cdf = np.ones((*mu.shape, count))
    cdf[exact] = np.cumsum(compound_poisson_pmf(mu[exact], sizes, count), axis=-1)
    sd = f64(np.sqrt(mu * ey2))

    def below(d: FloatArray) -> FloatArray:
        """Share of requests whose deviation is at most ``d`` (per grid batch)."""
        units = d[:, None] / np.maximum(scale, _TINY)
        at = np.floor(mean + units).astype(np.int64)
        known = np.take_along_axis(cdf, np.clip(at, 0, count - 1)[..., None], -1)[..., 0]
        known = np.where(at < 0, 0.0, known)
        normal = _normal_cdf(units / np.maximum(sd, _TINY))
        return f64((np.where(exact, known, normal) * prob[None, :]).sum(axis=1))

    reach = np.maximum((count - mean) * scale, POISSON_SPAN_SD * sd * scale).max(axis=1)
    lo, hi = f64(np.zeros_like(g.batch)), f64(reach)
    done = below(lo) >= q
    for _ in range(BISECTIONS):
        mid = f64(0.5 * (lo + hi))
        up = below(mid) >= q
        hi = f64(np.where(up, mid, hi))
        lo = f64(np.where(up, lo, mid))
    return f64(np.where(done, 0.0, hi))


def _normal_cdf(x: FloatArray) -> FloatArray:
    """Standard normal distribution function from the error function's rational
    approximation (Abramowitz and Stegun, *Handbook of Mathematical Functions*, 7.1.26;
    absolute error below 1.5e-7)."""
    a = np.abs(x) / math.sqrt(2.0)
    k = 1.0 / (1.0 + 0.3275911 * a)
    poly = k * (0.254829592 + k * (-0.284496736 + k * (1.421413741
                                                       + k * (-1.453152027 + k * 1.061405429))))
    erf = 1.0 - poly * np.exp(-a * a)
    return f64(0.5 * (1.0 + np.sign(x) * erf))


def _prompt_queue(sm: StepModel, iteration_s: FloatArray, unit: float,
                  rate: float) -> PromptQueue:
    """The prompt queue of the workload's prompts in units of ``unit`` tokens: prompts
    (arriving, and the request's own) of the sizes of the workload's length classes
    (:func:`~ocplan.serving.prompt_queue.prompt_units`), at a rate that keeps the
    arriving work (whole units round each class). With a spread of lengths the units
    are cut finer, to at most :data:`~ocplan.serving.prompt_queue.MAX_CAPACITY` per
    iteration, so that the mean prompt is :data:`SPREAD_UNITS` of them."""
    wl = sm.workload
    k = iteration_s.size - 1
    split = 1
    if wl.length_moment_factor != 1.0:
        split = max(1, min(math.ceil(SPREAD_UNITS * unit / wl.prefill_len - 1e-9),
                           MAX_CAPACITY // k))
    table = f64(np.interp(np.arange(k * split + 1.0) / split, np.arange(k + 1.0), iteration_s))
    mean = wl.prefill_len / unit * split
    sizes = prompt_units(mean, wl.length_classes())
    work = float(np.arange(sizes.size) @ sizes)
    return PromptQueue(table, sizes, rate * mean / work, sm.plan.pp)


def prefill_first_token_s(sm: StepModel, rate: float, stats: tuple[str, ...]
                          ) -> tuple[float, ...]:
    """TTFT statistics ``stats`` on a prefill-only instance (a disaggregated prefill
    pool) under Poisson arrivals at ``rate`` per second, below its capacity: the prompt
    queue (:mod:`ocplan.serving.prompt_queue`) with the whole token budget for prompts."""
    [(table, u)] = _prompt_tables(sm, f64(np.zeros(1)))
    return first_token_stats(_prompt_queue(sm, table, u, rate), stats)


def _erlang_c(servers: int, offered: float) -> float:
    """Probability that an arrival waits in an M/M/c queue with ``c = servers`` and
    offered load ``A = offered`` (< c): ``C = c B / (c - A (1 - B))`` with Erlang's loss
    ``B = P(X = c) / P(X <= c)``, ``X`` Poisson of mean ``A`` (Erlang, 1917; computed in
    logarithms so that thousands of servers do not overflow)."""
    k = np.arange(servers + 1, dtype=np.float64)
    log_pmf = k * math.log(offered) - offered - np.cumsum(np.log(np.maximum(k, 1.0)))
    top = float(log_pmf.max())
    loss = math.exp(float(log_pmf[-1]) - top) / float(np.exp(log_pmf - top).sum())
    return servers * loss / (servers - offered * (1.0 - loss))


def slot_wait_s(slots: float, busy: float, hold_s: float, stat: str) -> float:
    """Wait for one of ``slots`` sequence slots when ``busy`` are held on average and a
    request holds one for ``hold_s``: an M/M/c queue (``c`` the whole slots), whose wait
    is 0 with probability ``1 - C`` and otherwise exponential of mean
    ``hold_s / (c - A)`` (Kleinrock, *Queueing Systems* I, 1975, sec. 3.5): the mean
    ``C hold_s / (c - A)``, the quantile ``q`` ``hold_s ln(C / (1 - q)) / (c - A)`` (0
    when ``C <= 1 - q``). Many slots barely wait below the capacity, unlike one server
    turning over ``c`` times faster."""
    if busy <= 0.0:
        return 0.0  # nothing held, nothing to wait for
    c = max(1, math.floor(slots))
    a = min(busy, c * (1.0 - 1e-9))
    wait = _erlang_c(c, a)
    scale = hold_s / (c - a)
    if stat == "mean":
        return wait * scale
    tail = 1.0 - STAT_QUANTILE[stat]
    return math.log(wait / tail) * scale if wait > tail else 0.0


def _closed(sm: StepModel, limit: float, name: str) -> OperatingPoint:
    """A closed loop of ``c`` requests per instance. Beyond the batch limit ``B`` the
    other ``c - B`` wait for a slot: by Little's law a request spends ``c / X`` in the
    system and ``B / X`` of it running (``X`` the completion rate), so its first token
    also waits ``(c - B) / X``."""
    wl = sm.workload
    c = float(wl.concurrency or 1) / sm.plan.instances
    if c >= limit:
        point = _saturated(sm, limit, name)
        assert point.ttft_s is not None
        wait = (c - limit) / point.requests_per_s
        return replace(point, ttft_s=point.ttft_s + wait)
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
    size = synchronized_size(sm, kv_tokens)
    if size is not None:
        return _static(sm, limit, name, size)
    if load == "poisson":
        assert sm.workload.rate_per_s is not None
        return _poisson(sm, sm.workload.rate_per_s / sm.plan.instances, limit, name)
    if load == "concurrency":
        point = _closed(sm, limit, name)
        return point if sm.workload.requests is None else _finite_closed(sm, kv_tokens, point)
    point = _saturated(sm, limit, name)
    if load == "offline" and sm.workload.requests is not None:
        return _finite_queue(sm, point)
    return point


def _finite_closed(sm: StepModel, kv_tokens: float, steady: OperatingPoint
                   ) -> OperatingPoint:
    """A closed loop of ``c`` in flight that serves ``N`` requests, started at once
    (``vllm bench serve --max-concurrency c --num-prompts N``), per instance.

    Its first ``m`` requests arrive together (:func:`_burst`), taking
    ``t_1 = m O / X_1`` at their run's output rate ``X_1``. Each later request replaces
    one that finished, so the other ``N - m`` are served at the loop's steady rate ``X``:
    ``T = t_1 + (N - m) O / X``, and the run's rate is ``N O / T``. Its TTFT and TPOT are
    the means over the requests of the two parts'. Checked against the discrete-event
    simulation of the same rules (``tests/test_serving_finite_loop.py``): within 1.5 % in
    the rate from ``N = c`` to ``10 c`` where the loop fits its batch limit; the later
    requests' TTFT comes out short (requests that finished together are replaced
    together, so the burst's bunching lasts, which the steady loop spreads out)."""
    wl, instances = sm.workload, sm.plan.instances
    n = wl.requests
    assert n is not None
    first, busy, burst = _burst(sm, kv_tokens)
    # neither a finite offline run nor a closed loop ever queues without bound
    assert burst.ttft_s is not None
    assert steady.ttft_s is not None
    t_first = first / busy * wl.output_len / burst.output_tokens_per_s
    rest = (n - first) / instances
    total = t_first + rest * wl.output_len / steady.output_tokens_per_s
    out = n / instances * wl.output_len / total

    def mean(a: float, b: float) -> float:
        return (first * a + (n - first) * b) / n

    return replace(steady, output_tokens_per_s=out, requests_per_s=out / wl.output_len,
                   ttft_s=mean(burst.ttft_s, steady.ttft_s),
                   tpot_s=mean(burst.tpot_s, steady.tpot_s))


def _burst(sm: StepModel, kv_tokens: float) -> tuple[int, int, OperatingPoint]:
    """The requests a finite closed loop starts with, the instances they keep busy, and
    their run: ``m = min(N, c)`` arriving together are the finite offline run of ``m``
    (prefilled as a burst, then decoded). For fixed lengths that run is a synchronized
    wave, so ``m`` is at most one wave, what the sequence cap, the cache at the
    requests' final length and the token budget hold; the loop's steady state (slot
    waits and all) takes the rest."""
    wl = sm.workload
    assert wl.requests is not None
    assert wl.concurrency is not None
    first = min(wl.requests, wl.concurrency)
    if wl.length_distribution == "fixed":
        wave = min(_sequence_cap(sm), kv_tokens / (wl.input_len + wl.output_len))
        first = min(first, max(math.floor(wave), 1) * sm.plan.instances)
    while True:
        model = replace(sm, workload=replace(wl, load="offline", concurrency=None,
                                             requests=first))
        point = operating_point(model, kv_tokens)
        # the burst has the loop's memory and at least one request: it fits where the
        # loop does
        assert point is not None
        busy = busy_instances(model)
        if point.waves == 1:
            return first, busy, point
        smaller = math.floor(point.batch) * busy  # a wave the token budget cuts smaller
        assert 1 <= smaller < first
        first = smaller


def _finite_queue(sm: StepModel, point: OperatingPoint) -> OperatingPoint:
    """A finite offline run of ``N`` requests per busy instance, all queued at once,
    served by a refilled batch of ``B`` at the completion rate ``X``: the first ``B``
    start at once and the ``k``-th of the other ``M = N - B`` waits for a slot.

    - lengths that vary: the slots free one by one, the ``k``-th ``k / X`` in, so the
      mean first token also waits ``M (M + 1) / (2 N X)``;
    - fixed lengths: the sequences started together finish together, a life ``B / X``
      later (Little's law), so the ``k``-th late request waits ``ceil(k / w)`` lives
      (``w = floor(B)`` slots a life): ``(B / X) (w F (F + 1) / 2 + r (F + 1)) / N`` with
      ``F = floor(M / w)`` lives and ``r = M - F w`` in the last. (One slot a ``1 / X``
      would have the first late request start before any could finish: 300 requests of
      1,000 + 1,000 tokens in waves had waited longer than 400 refilled.)"""
    wl = sm.workload
    assert wl.requests is not None
    n = wl.requests / busy_instances(sm)
    late = n - point.batch
    if late <= 0 or point.ttft_s is None or point.requests_per_s <= 0:
        return point
    if wl.length_distribution == "fixed":
        w = max(1.0, math.floor(point.batch))
        lives = math.floor(late / w)
        rest = late - lives * w
        waits = w * lives * (lives + 1.0) / 2.0 + rest * (lives + 1.0)
        wait = point.batch / point.requests_per_s * waits / n
    else:
        wait = late * (late + 1.0) / (2.0 * n * point.requests_per_s)
    return replace(point, ttft_s=point.ttft_s + wait)


def slo_rate(sm: StepModel, kv_tokens: float) -> tuple[float, str] | None:
    """Highest arrival rate per instance (requests/s) whose TTFT and TPOT statistics
    stay within the workload's SLOs, and the limit that binds there; None without SLOs.
    Evaluated on the Poisson batch grid (rate, TTFT and TPOT all rise with the batch)."""
    wl = sm.workload
    if wl.slo_ttft_s is None and wl.slo_tpot_s is None:
        return None
    limit, name = batch_limits(sm, kv_tokens)
    if limit < 1.0:
        return 0.0, "KV capacity"
    g = _grid(sm, limit, name)
    last = g.batch.size - 1 if wl.slo_ttft_s is None else g.ttft_within(sm, wl.slo_ttft_s)
    ok_ttft = np.arange(g.batch.size) <= last
    tpot = g.tpot_s(sm)
    ok_tpot = tpot <= (wl.slo_tpot_s if wl.slo_tpot_s is not None else math.inf)
    ok = ok_ttft & ok_tpot
    if not ok.any():
        return 0.0, "TPOT limit" if not ok_tpot[0] else "TTFT limit"
    # the rate need not rise with the batch to the end (a compute-bound step can grow
    # faster than the batch): the best meeting point, not the last
    i = int(np.argmax(np.where(ok, g.rate, -np.inf)))
    if i == g.batch.size - 1 or ok[i + 1]:
        return float(g.rate[i]), "load"
    # between grid batches the operating point's latencies are linear in the rate: the
    # limit is met up to where the first of them crosses it (so that an estimate at any
    # rate below the result meets the SLOs and one above does not)
    crossings = []
    if not ok_tpot[i + 1]:
        assert wl.slo_tpot_s is not None
        crossings.append((_crossing(g.rate[i:i + 2], tpot[i:i + 2], wl.slo_tpot_s),
                          "TPOT limit"))
    if not ok_ttft[i + 1]:
        assert wl.slo_ttft_s is not None
        crossings.append((_ttft_crossing(sm, g, i, wl.slo_ttft_s), "TTFT limit"))
    return min(crossings)


def _ttft_crossing(sm: StepModel, g: _Grid, i: int, limit: float) -> float:
    """Highest rate between grid batches ``i`` and ``i + 1`` whose TTFT statistic is
    within ``limit``: the operating point's TTFT there is the queue solved at the rate
    (:meth:`_Grid.ttft_s`), not linear in it, so the rate is bisected
    (:data:`RATE_BISECTIONS` halvings)."""
    lo, hi = float(g.rate[i]), float(g.rate[i + 1])
    for _ in range(RATE_BISECTIONS):
        mid = 0.5 * (lo + hi)
        if g.ttft_s(sm, mid) <= limit:
            lo = mid
        else:
            hi = mid
    return lo


def _crossing(rate: FloatArray, value: FloatArray, limit: float) -> float:
    """Rate between ``rate[0]`` (where ``value`` meets ``limit``) and ``rate[1]``
    (where it does not) at which the linear interpolation of ``value`` reaches the
    limit; ``rate[0]`` when the second value is not finite (a saturated queue)."""
    low, high = float(value[0]), float(value[1])
    if not math.isfinite(high) or high <= low:
        return float(rate[0])
    share = (limit - low) / (high - low)
    return float(rate[0] + (rate[1] - rate[0]) * min(max(share, 0.0), 1.0))


@dataclass(frozen=True)
class Curve:
    """Throughput against latency of one instance under Poisson load, batch by batch:
    the batches that raise the throughput (arrays, rising along the batch up to the
    capacity; the others are dominated: more latency for no more tokens)."""

    batch: FloatArray
    rate_per_s: FloatArray
    output_tokens_per_s: FloatArray
    tpot_s: FloatArray
    ttft_s: FloatArray
    """Mean TTFT (the prompt queue's first token plus the mean slot wait)."""


def latency_curve(sm: StepModel, kv_tokens: float) -> Curve | None:
    """The throughput-latency curve every serving paper draws, from the Poisson batch
    grid; None when not even one sequence fits."""
    limit, name = batch_limits(sm, kv_tokens)
    if limit < 1.0:
        return None
    wl, p = sm.workload, float(sm.plan.pp)
    g = _grid(sm, limit, name)
    ttft = f64(np.array([g.ttft_at(sm, i, "mean") for i in range(g.batch.size)]))
    # a batch whose prompts already saturate the budget has no TTFT: the curve stops
    # before it
    ok = np.isfinite(ttft)
    return Curve(g.batch[ok], g.rate[ok], f64(g.rate[ok] * wl.output_len),
                 f64(g.answer_s[ok] * p / wl.tokens_per_step), f64(ttft[ok]))
