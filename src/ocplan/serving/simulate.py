"""Discrete-event simulation of one LLM serving instance with continuous batching.

The engine is modelled the way vLLM's V1 scheduler and Sarathi-Serve's chunked prefill
(Agrawal et al., "Taming Throughput-Latency Tradeoff in LLM Inference with
Sarathi-Serve", OSDI 2024) run it: the instance executes *iterations* back to back; each
iteration mixes one decode token for every sequence past its prefill with as many prompt
tokens as the per-iteration token budget leaves. The cost of an iteration comes from a
caller-supplied :data:`StepTime` model, so the simulator knows nothing about hardware.

Scheduling rules, applied at the start of every iteration at clock ``t``
--------------------------------------------------------------------------
0. *Arrivals.* Requests with ``arrival_s <= t`` join the back of the waiting queue, in
   request order. When nothing is running and nothing is waiting, the clock jumps to
   the next arrival.
1. *KV check and preemption.* A running sequence holds KV-cache tokens: a decoding one
   holds its whole context (prompt plus tokens generated so far, including the token it
   feeds in this iteration); a sequence still in prefill *reserves its whole prompt*
   from the moment it is admitted (so a prefill chunk never needs new room). If the sum
   exceeds :attr:`Scheduler.kv_capacity_tokens` because the decodes grew, the most
   recently admitted running sequence is preempted, recompute style, until it fits: its
   KV is freed, it goes to the *front* of the waiting queue, and its generated tokens
   are kept and become part of the prompt it must prefill again (all of it, or with
   :attr:`Scheduler.reuse_preempted` only what the prefix cache did not keep). Every
   preempted sequence counts in :attr:`SimResult.preemptions`. An iteration that
   preempts admits nobody (as in vLLM V1): the head of the queue is then the last
   victim, which by construction does not fit.
2. *Decode.* Every running sequence whose prefill is complete generates one token; it
   costs one token of the budget :attr:`Scheduler.max_batched_tokens`.
3. *Prefill, first come first served.* The rest of the budget goes first to the
   partially prefilled running sequence (there is at most one: it is the last one
   admitted), then to waiting requests taken from the front of the queue while fewer
   than :attr:`Scheduler.max_seqs` sequences run and the KV cache can hold the
   request's whole prompt besides everything already held or reserved. The queue is
   never overtaken: admission stops at the first request that does not fit. With
   ``chunked_prefill`` a prompt takes what budget is left and continues in the next
   iterations; without it a prompt is prefilled whole in one iteration and is admitted
   only if it fits in the budget left, or if it is the first prefill of the iteration
   (so a prompt longer than the budget still runs, as the only prefill).
4. *Time.* The iteration lasts ``step_time(prefill_tokens, decode_seqs,
   decode_context_tokens)`` seconds; every token it produces is stamped at its end. The
   iteration that completes a prefill produces that sequence's next token (the first
   output token, or the next one after a recompute); a sequence finishes, and frees its
   KV, in the iteration that produces its ``output_len``-th token.

A request that cannot run even alone, i.e. whose largest KV need ``input_len +
output_len - 1`` (its context in its last decode iteration) exceeds
``kv_capacity_tokens``, would be preempted and re-admitted forever; :func:`simulate`
rejects it up front with a :class:`~ocplan.errors.SpecError` on the field
``kv_capacity_tokens`` (the capacity is the knob a user sizes against the longest
request, and the message names the request and its need).

Implementation
--------------
We run our own event loop rather than SimPy for speed: resuming a SimPy process costs
microseconds, and one process per sequence resumed every iteration means millions of
resumes (10,000 requests x 200 output tokens), tens of seconds, while this loop does such
a 10,000-request run in a few hundredths of a second (bench/bench_simulate.py). The loop
never visits the sequences of the running set per iteration: all decoding sequences
advance together by one token, so the loop keeps only aggregates (number of decoding
sequences, sum of their contexts) and, per sequence, the iteration at which it will
finish, kept in buckets keyed by iteration. Work per iteration is O(1) plus O(1) per
admission, completion or preemption. Stretches where the batch only decodes and no
event can happen are run in a tighter inner loop that still calls ``step_time`` once
per iteration, so results equal the iteration-by-iteration rule bit for bit.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
import numpy.typing as npt

from ocplan.errors import Problem, SpecError

__all__ = [
    "IterationTrace",
    "LengthDistribution",
    "Metric",
    "Requests",
    "Scheduler",
    "SimResult",
    "Statistic",
    "StepTime",
    "offline_requests",
    "poisson_requests",
    "simulate",
]

StepTime = Callable[[float, float, float], float]
"""``(prefill_tokens, decode_seqs, decode_context_tokens) -> seconds`` of one iteration.

``prefill_tokens``: prompt tokens processed in the iteration (sum of the chunks);
``decode_seqs``: sequences generating one token in it; ``decode_context_tokens``: sum
over those decode sequences of their current context length (prompt + generated so
far). The simulator passes Python ``int`` values."""

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

Metric = Literal["ttft", "tpot", "e2e", "queue"]
Statistic = Literal["mean", "p50", "p90", "p99"]
LengthKind = Literal["fixed", "uniform", "exponential", "lognormal"]

_SOURCE = "argument"
"""Problem.source for every bad-input error: these are Python API arguments."""

_PERCENTILES: dict[str, float] = {"p50": 50.0, "p90": 90.0, "p99": 99.0}
"""Percentile (0-100) behind each percentile name accepted by :meth:`SimResult.stat`."""

_LENGTH_KINDS: tuple[str, ...] = ("fixed", "uniform", "exponential", "lognormal")

_MAX_UNIFORM_SPREAD = 1.0
"""A uniform length's half-width is at most its mean: the low end must stay >= 0."""

_Record = tuple[float, float, int, int, int, int, int, int, int, int]
"""One iteration as recorded for :class:`IterationTrace`, in its field order."""
_RECORD_FIELDS = 10

_STREAMS = 3
"""Independent random streams per request set (arrivals, input lengths, output lengths),
so changing one distribution does not reshuffle the others under the same seed."""


def _is_int(value: object) -> bool:
    """True for a Python or numpy integer, but not a bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    """True for a Python or numpy real number, but not a bool."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool
    )


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Scheduler:
    """Scheduler limits of one serving instance (vLLM's ``max_num_seqs``,
    ``max_num_batched_tokens`` and the KV-cache size).

    Attributes
    ----------
    max_seqs
        Sequences in flight (running) at once, >= 1.
    max_batched_tokens
        Token budget of one iteration: one token per decoding sequence plus the prefill
        chunk tokens; >= ``max_seqs`` (as vLLM requires), so every running decode always
        fits.
    kv_capacity_tokens
        KV-cache capacity of the instance in tokens, > 0; ``math.inf`` for unlimited.
    chunked_prefill
        ``True``: a prompt may be split across iterations. ``False``: a prompt is
        prefilled whole in one iteration; it may exceed the budget only as the sole
        prefill of its iteration.
    reserve_output
        ``False``: admission by the room the prompt needs now, growth met by preemption
        (rule 1). ``True``: TensorRT-LLM's ``GUARANTEED_NO_EVICT``: a request is
        admitted only if the cache also holds what every running request and it will
        hold at their last decode (``input_len + output_len - 1`` each), so nothing is
        ever preempted.
    reuse_preempted
        ``False``: a preempted sequence recomputes its whole context when re-admitted.
        ``True``: its KV is found again in the prefix cache (vLLM's prefix caching and
        TensorRT-LLM's block reuse keep a freed sequence's blocks reusable until they
        are handed out again; here they always are found): its re-admission needs the
        room of its whole context but computes only what was not cached (its last
        token; a preempted partial prefill keeps what it had prefilled).
    """

    max_seqs: int
    max_batched_tokens: int
    kv_capacity_tokens: float
    chunked_prefill: bool = True
    reserve_output: bool = False
    reuse_preempted: bool = False

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        if not _is_int(self.max_seqs) or self.max_seqs < 1:
            problems.append(Problem(_SOURCE, "max_seqs", "must be an integer >= 1",
                                    self.max_seqs))
        if not _is_int(self.max_batched_tokens) or self.max_batched_tokens < 1:
            problems.append(Problem(_SOURCE, "max_batched_tokens",
                                    "must be an integer >= 1", self.max_batched_tokens))
        elif _is_int(self.max_seqs) and self.max_batched_tokens < self.max_seqs:
            problems.append(Problem(
                _SOURCE, "max_batched_tokens",
                f"must be >= max_seqs ({self.max_seqs}) so that every running sequence "
                "can decode in each iteration", self.max_batched_tokens))
        cap = self.kv_capacity_tokens
        if not _is_real(cap) or not float(cap) > 0.0:
            problems.append(Problem(_SOURCE, "kv_capacity_tokens",
                                    "must be a number > 0 (math.inf for unlimited)", cap))
        for name in ("chunked_prefill", "reserve_output", "reuse_preempted"):
            if not isinstance(getattr(self, name), bool):
                problems.append(Problem(_SOURCE, name, "must be True or False",
                                        getattr(self, name)))
        if problems:
            raise SpecError(problems)


@dataclass(frozen=True)
class LengthDistribution:
    """A distribution of token lengths (prompt or output), sampled as integers.

    Attributes
    ----------
    kind
        ``"fixed"``: always ``round(mean)``. ``"uniform"``: integers uniform on
        ``[mean * (1 - spread), mean * (1 + spread)]`` (rounded ends). ``"exponential"``:
        exponential with mean ``mean``, rounded. ``"lognormal"``: lognormal with mean
        ``mean`` and log-space standard deviation ``spread``, rounded.
    mean
        Mean length in tokens, > 0 (before rounding and clipping).
    spread
        ``"uniform"``: half-width as a fraction of ``mean``, in [0, 1]; ``"lognormal"``:
        sigma, >= 0; ignored otherwise.
    low, high
        Every sample is clipped into ``[low, high]`` tokens; ``low >= 1``, ``high`` is
        ``None`` for no upper clip. Clipping moves the mean of the samples.
    """

    kind: LengthKind
    mean: float
    spread: float = 0.0
    low: int = 1
    high: int | None = None

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        if self.kind not in _LENGTH_KINDS:
            problems.append(Problem(_SOURCE, "kind", f"must be one of {list(_LENGTH_KINDS)}",
                                    self.kind))
        if not _is_real(self.mean) or not 0.0 < float(self.mean) < math.inf:
            problems.append(Problem(_SOURCE, "mean", "must be a finite number > 0 (tokens)",
                                    self.mean))
        if not _is_real(self.spread) or not 0.0 <= float(self.spread) < math.inf:
            problems.append(Problem(_SOURCE, "spread", "must be a finite number >= 0",
                                    self.spread))
        elif self.kind == "uniform" and self.spread > _MAX_UNIFORM_SPREAD:
            problems.append(Problem(_SOURCE, "spread",
                                    "a uniform half-width must be at most 1 (the mean)",
                                    self.spread))
        if not _is_int(self.low) or self.low < 1:
            problems.append(Problem(_SOURCE, "low", "must be an integer >= 1", self.low))
        if self.high is not None and (not _is_int(self.high) or (
                _is_int(self.low) and self.high < self.low)):
            problems.append(Problem(_SOURCE, "high", "must be None or an integer >= low",
                                    self.high))
        if problems:
            raise SpecError(problems)

    def sample(self, n: int, rng: np.random.Generator) -> IntArray:
        """``n`` lengths in tokens as an int64 array, drawn from ``rng``."""
        mean = float(self.mean)
        raw: npt.NDArray[np.float64]
        if self.kind == "fixed":
            raw = np.full(n, mean)
        elif self.kind == "uniform":
            lo = round(mean * (1.0 - self.spread))
            hi = round(mean * (1.0 + self.spread))
            raw = rng.integers(lo, hi, size=n, endpoint=True).astype(np.float64)
        elif self.kind == "exponential":
            raw = rng.exponential(mean, size=n)
        else:  # lognormal, parameterised by its mean: E[X] = exp(mu + sigma^2 / 2)
            sigma = float(self.spread)
            raw = rng.lognormal(math.log(mean) - sigma * sigma / 2.0, sigma, size=n)
        high = math.inf if self.high is None else float(self.high)
        return cast(IntArray, np.clip(np.rint(raw), self.low, high).astype(np.int64))


def _as_readonly(array: npt.ArrayLike, dtype: type[np.generic]) -> npt.NDArray[np.generic]:
    out = np.array(array, dtype=dtype, copy=True)
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class Requests:
    """A set of requests, in issue order; the arrays are copied and made read-only.

    Attributes
    ----------
    arrival_s
        Arrival time of each request in seconds, float64, finite and non-decreasing.
    input_len
        Prompt length in tokens, int64 >= 1.
    output_len
        Tokens to generate, int64 >= 1; the first one is produced by the iteration that
        finishes the prefill.
    """

    arrival_s: FloatArray
    input_len: IntArray
    output_len: IntArray

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        arrival = np.asarray(self.arrival_s)
        lengths = {"input_len": np.asarray(self.input_len),
                   "output_len": np.asarray(self.output_len)}
        if arrival.ndim != 1 or arrival.size == 0:
            problems.append(Problem(_SOURCE, "arrival_s",
                                    "must be a non-empty one-dimensional array", arrival.shape))
        elif arrival.dtype.kind not in "iuf" or not np.all(np.isfinite(arrival)):
            problems.append(Problem(_SOURCE, "arrival_s", "must hold finite numbers (seconds)"))
        elif np.any(np.diff(arrival) < 0):
            problems.append(Problem(_SOURCE, "arrival_s", "must be non-decreasing"))
        for name, values in lengths.items():
            if values.shape != arrival.shape:
                problems.append(Problem(_SOURCE, name, f"must have the shape of arrival_s "
                                        f"{arrival.shape}", values.shape))
            elif values.dtype.kind not in "iuf" or not np.all(
                    np.isfinite(values) & (values == np.round(values))):
                problems.append(Problem(_SOURCE, name, "must hold whole numbers of tokens"))
            elif values.size and int(values.min()) < 1:
                problems.append(Problem(_SOURCE, name, "every length must be >= 1 token",
                                        int(values.min())))
        if problems:
            raise SpecError(problems)
        object.__setattr__(self, "arrival_s", _as_readonly(arrival, np.float64))
        object.__setattr__(self, "input_len", _as_readonly(lengths["input_len"], np.int64))
        object.__setattr__(self, "output_len", _as_readonly(lengths["output_len"], np.int64))

    @property
    def n(self) -> int:
        """Number of requests."""
        return int(self.arrival_s.size)


def _lengths(n: int, spec: int | LengthDistribution, rng: np.random.Generator,
             field: str) -> IntArray:
    if isinstance(spec, LengthDistribution):
        return spec.sample(n, rng)
    if not _is_int(spec) or spec < 1:
        raise SpecError.one(_SOURCE, field, "must be an integer >= 1 or a LengthDistribution",
                            spec)
    return np.full(n, int(spec), dtype=np.int64)


def _check_count(n: int) -> None:
    if not _is_int(n) or n < 1:
        raise SpecError.one(_SOURCE, "n", "must be an integer >= 1", n)


def offline_requests(n: int, input_len: int | LengthDistribution,
                     output_len: int | LengthDistribution, seed: int = 0) -> Requests:
    """``n`` requests that all arrive at t = 0 s (an offline batch job).

    ``input_len`` / ``output_len`` are a fixed token count or a
    :class:`LengthDistribution` sampled with ``seed``.
    """
    _check_count(n)
    _, in_rng, out_rng = (np.random.default_rng(s)
                          for s in np.random.SeedSequence(seed).spawn(_STREAMS))
    return Requests(np.zeros(n), _lengths(n, input_len, in_rng, "input_len"),
                    _lengths(n, output_len, out_rng, "output_len"))


def poisson_requests(n: int, rate_per_s: float, input_len: int | LengthDistribution,
                     output_len: int | LengthDistribution, seed: int = 0) -> Requests:
    """``n`` requests arriving as a Poisson process of ``rate_per_s`` requests per second.

    Inter-arrival times are exponential with mean ``1 / rate_per_s`` s; the first request
    arrives one inter-arrival time after t = 0. Lengths as in :func:`offline_requests`.
    """
    _check_count(n)
    if not _is_real(rate_per_s) or not 0.0 < float(rate_per_s) < math.inf:
        raise SpecError.one(_SOURCE, "rate_per_s", "must be a finite number > 0", rate_per_s)
    arr_rng, in_rng, out_rng = (np.random.default_rng(s)
                                for s in np.random.SeedSequence(seed).spawn(_STREAMS))
    arrival = np.cumsum(arr_rng.exponential(1.0 / float(rate_per_s), size=n))
    return Requests(arrival, _lengths(n, input_len, in_rng, "input_len"),
                    _lengths(n, output_len, out_rng, "output_len"))


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class IterationTrace:
    """One entry per iteration, in order (only when ``simulate(..., trace=True)``).

    Attributes
    ----------
    start_s, step_s
        Start time and duration of the iteration, seconds.
    prefill_tokens, decode_seqs, decode_context_tokens
        The arguments passed to the :data:`StepTime` model.
    running
        Sequences in the running set during the iteration (admissions included).
    waiting
        Requests arrived by ``start_s`` and not running (the waiting queue).
    kv_tokens
        KV-cache tokens held or reserved during the iteration (rule 1 of the module).
    tokens_out
        Output tokens produced by the iteration (decodes plus completed prefills).
    preempted
        Sequences preempted at the start of the iteration.
    """

    start_s: FloatArray
    step_s: FloatArray
    prefill_tokens: IntArray
    decode_seqs: IntArray
    decode_context_tokens: IntArray
    running: IntArray
    waiting: IntArray
    kv_tokens: IntArray
    tokens_out: IntArray
    preempted: IntArray

    @property
    def in_system(self) -> IntArray:
        """Requests arrived and not finished at the start of each iteration."""
        return cast(IntArray, self.running + self.waiting)


@dataclass(frozen=True, eq=False)
class SimResult:
    """Outcome of :func:`simulate`; per-request arrays follow the request order.

    Attributes
    ----------
    n
        Number of requests.
    duration_s
        First arrival to last completion, seconds.
    output_tokens_per_s, input_tokens_per_s, requests_per_s
        Totals divided by ``duration_s``.
    ttft_s
        Time to first token: end of the iteration producing the first token minus
        arrival, seconds.
    tpot_s
        Time per output token after the first: ``(finish - first token) /
        (output_len - 1)`` seconds; NaN where ``output_len == 1``.
    e2e_s
        Finish minus arrival, seconds.
    queue_s
        Arrival to the start of the iteration that first scheduled the request, seconds.
    mean_batch
        Mean number of decoding sequences per iteration.
    iterations
        Engine iterations run.
    preemptions
        Sequences preempted (a sequence preempted twice counts twice).
    trace
        Per-iteration record when requested, else ``None``.

    Arrival times are those of the run: in closed loop (``concurrency``) they are the
    moments the requests were issued, not ``Requests.arrival_s``.
    """

    n: int
    duration_s: float
    output_tokens_per_s: float
    input_tokens_per_s: float
    requests_per_s: float
    ttft_s: FloatArray
    tpot_s: FloatArray
    e2e_s: FloatArray
    queue_s: FloatArray
    mean_batch: float
    iterations: int
    preemptions: int
    trace: IterationTrace | None = None

    def stat(self, metric: Metric, statistic: Statistic) -> float:
        """``statistic`` (``"mean"``, ``"p50"``, ``"p90"``, ``"p99"``) of the per-request
        ``metric`` (``"ttft"``, ``"tpot"``, ``"e2e"``, ``"queue"``) in seconds, ignoring
        NaN entries (``tpot`` of one-token outputs); NaN when no entry is defined.
        Percentiles use numpy's default (linear) interpolation."""
        arrays = {"ttft": self.ttft_s, "tpot": self.tpot_s, "e2e": self.e2e_s,
                  "queue": self.queue_s}
        if metric not in arrays:
            raise SpecError.one(_SOURCE, "metric", f"must be one of {sorted(arrays)}", metric)
        if statistic != "mean" and statistic not in _PERCENTILES:
            raise SpecError.one(_SOURCE, "statistic",
                                f"must be one of {['mean', *_PERCENTILES]}", statistic)
        values = arrays[metric]
        values = values[~np.isnan(values)]
        if values.size == 0:
            return math.nan
        if statistic == "mean":
            return float(np.mean(values))
        return float(np.percentile(values, _PERCENTILES[statistic]))


# --------------------------------------------------------------------------- the loop


def _check_fits(requests: Requests, scheduler: Scheduler) -> None:
    """Raise SpecError on ``kv_capacity_tokens`` if some request cannot run even alone."""
    need = requests.input_len + requests.output_len - 1
    worst = int(np.argmax(need))
    if need[worst] > scheduler.kv_capacity_tokens:
        raise SpecError.one(
            _SOURCE, "kv_capacity_tokens",
            f"request {worst} needs {int(need[worst])} KV tokens alone (input_len "
            f"{int(requests.input_len[worst])} + output_len "
            f"{int(requests.output_len[worst])} - 1); it could never finish",
            scheduler.kv_capacity_tokens)


def _bad_step(value: float, prefill: int, decode: int, context: int) -> SpecError:
    return SpecError.one(
        _SOURCE, "step_time",
        f"must return a finite number of seconds > 0; got it for ({prefill}, {decode}, "
        f"{context})", value)


def simulate(requests: Requests, step_time: StepTime, scheduler: Scheduler, *,
             concurrency: int | None = None, trace: bool = False) -> SimResult:
    """Run ``requests`` through one instance scheduled by ``scheduler``.

    Parameters
    ----------
    requests
        The requests, in issue order.
    step_time
        Seconds of one iteration (see :data:`StepTime`); must return a finite value > 0.
    scheduler
        Limits of the instance; the rules are in the module docstring.
    concurrency
        ``None``: open loop, each request arrives at ``requests.arrival_s``. An integer
        ``c >= 1``: closed loop, at most ``c`` requests are in the system; the first
        ``min(c, n)`` are issued at ``requests.arrival_s[0]`` and each completion issues
        the next request in order at that moment (``arrival_s`` of the later requests is
        ignored).
    trace
        Record an :class:`IterationTrace` in :attr:`SimResult.trace` (a little slower).

    Raises
    ------
    SpecError
        ``kv_capacity_tokens`` too small for some request alone, ``concurrency`` not an
        integer >= 1, or ``step_time`` returning a non-positive or non-finite time.
    """
    if concurrency is not None and (not _is_int(concurrency) or concurrency < 1):
        raise SpecError.one(_SOURCE, "concurrency", "must be None or an integer >= 1",
                            concurrency)
    _check_fits(requests, scheduler)

    n = requests.n
    inp: list[int] = requests.input_len.tolist()
    out: list[int] = requests.output_len.tolist()
    arr: list[float] = requests.arrival_s.tolist()
    if concurrency is None:
        issued = n  # requests whose arrival time is known
    else:
        issued = min(int(concurrency), n)
        arr = [arr[0]] * issued + [math.nan] * (n - issued)
    start_t = arr[0]

    max_seqs = int(scheduler.max_seqs)
    max_tokens = int(scheduler.max_batched_tokens)
    cap = float(scheduler.kv_capacity_tokens)
    chunked = scheduler.chunked_prefill
    reserve = scheduler.reserve_output
    reuse = scheduler.reuse_preempted
    reserved = 0  # with reserve_output: final contexts of the running requests
    step = step_time
    inf = math.inf
    nan = math.nan

    # Per-request state (Python lists: scalar access to them is several times faster
    # than to numpy arrays, and the loop touches one request at a time).
    target = inp[:]       # prompt tokens to prefill when (re)admitted
    cached = [0] * n      # of them, found in the prefix cache (reuse_preempted)
    last = [i + o - 1 for i, o in zip(inp, out, strict=True)]  # context at the last decode
    gen = [0] * n         # tokens generated, valid as of iteration base[r]
    base = [0] * n        # while decoding: generated now = gen[r] + it - base[r]
    fin_it = [-1] * n     # iteration in which a decoding request finishes, else -1
    first_sched = [nan] * n
    first_tok = [nan] * n
    finish = [nan] * n

    waiting: deque[int] = deque()
    running: dict[int, None] = {}  # insertion order = admission order
    partial = -1        # the partially prefilled running request, or -1
    partial_done = 0    # its prompt tokens already prefilled
    n_dec = 0           # decoding requests (running, prefill complete)
    sum_ctx = 0         # sum of their contexts in the coming iteration
    buckets: dict[int, list[int]] = {}  # finish iteration -> requests (stale ones skipped)
    fin_heap: list[int] = []            # keys of buckets, for the next finish
    records: list[_Record] = []

    t = start_t
    it = 0
    nxt = 0             # next request to arrive
    completed = 0
    preemptions = 0
    dec_total = 0       # sum over iterations of decoding requests

    while completed < n:
        while nxt < issued and arr[nxt] <= t:
            waiting.append(nxt)
            nxt += 1
        if not running and not waiting:
            t = arr[nxt]
            continue

        # Rule 1: make room for this iteration's decodes.
        kv = sum_ctx + (target[partial] if partial >= 0 else 0)
        preempted = 0
        while kv > cap:
            r = running.popitem()[0]
            if r == partial:
                kv -= target[r]
                cached[r] = partial_done if reuse else 0
                partial = -1
            else:
                g = gen[r] + it - base[r]
                ctx = inp[r] + g
                kv -= ctx
                sum_ctx -= ctx
                n_dec -= 1
                gen[r] = g
                target[r] = ctx
                cached[r] = ctx - 1 if reuse else 0
                fin_it[r] = -1
            waiting.appendleft(r)
            preempted += 1
        preemptions += preempted

        if partial < 0 and (not waiting or n_dec >= max_seqs):
            # Decode-only stretch: no prefill can start before the next finish, arrival
            # or KV overflow, and only decode_context_tokens changes between iterations.
            while buckets and fin_heap[0] not in buckets:
                heapq.heappop(fin_heap)
            stop = fin_heap[0]
            if stop > it:
                next_arrival = arr[nxt] if nxt < issued else inf
                n_run = len(running)
                n_wait = len(waiting)
                while True:
                    dt = step(0, n_dec, sum_ctx)
                    if not 0.0 < dt < inf:
                        raise _bad_step(dt, 0, n_dec, sum_ctx)
                    if trace:
                        records.append((t, dt, 0, n_dec, sum_ctx, n_run, n_wait,
                                        sum_ctx, n_dec, 0))
                    t += dt
                    sum_ctx += n_dec
                    dec_total += n_dec
                    it += 1
                    if it >= stop or sum_ctx > cap or t >= next_arrival:
                        break
                continue

        # Rules 2 and 3: decodes take n_dec tokens of the budget, prefills the rest.
        budget = max_tokens - n_dec
        prefill = 0
        completing: list[int] = []
        if partial >= 0:
            rest = target[partial] - partial_done
            if rest <= budget:
                prefill = rest
                budget -= rest
                completing.append(partial)
                partial = -1
            else:
                prefill = budget
                partial_done += budget
                budget = 0
        if budget > 0:
            room = max_seqs - len(running)
            while waiting and room > 0:
                r = waiting[0]
                tgt = target[r]
                work = tgt - cached[r]  # tokens to compute
                if kv + tgt > cap:
                    break
                if reserve and reserved + last[r] > cap:
                    break
                if chunked:
                    if budget <= 0:
                        break
                elif work > budget and prefill > 0:
                    break
                waiting.popleft()
                running[r] = None
                room -= 1
                kv += tgt
                if reserve:
                    reserved += last[r]
                if first_sched[r] != first_sched[r]:  # NaN: never scheduled before
                    first_sched[r] = t
                if chunked and work > budget:
                    partial = r
                    partial_done = cached[r] + budget
                    prefill += budget
                    budget = 0
                else:
                    prefill += work
                    budget -= work
                    completing.append(r)

        # Rule 4: run the iteration. It always has work: a queue head that fits alone
        # (checked up front) is admitted into an empty engine, and a partial prefill
        # leaves budget because fewer than max_seqs <= max_batched_tokens decodes run.
        assert prefill > 0 or n_dec > 0, "an iteration with nothing to run"
        dt = step(prefill, n_dec, sum_ctx)
        if not 0.0 < dt < inf:
            raise _bad_step(dt, prefill, n_dec, sum_ctx)
        if trace:
            records.append((t, dt, prefill, n_dec, sum_ctx, len(running), len(waiting), kv,
                            n_dec + len(completing), preempted))
        t += dt
        dec_total += n_dec

        bucket = buckets.pop(it, None)
        if bucket is not None:
            for r in bucket:
                if fin_it[r] != it:
                    continue  # preempted since it was filed here
                fin_it[r] = -1
                del running[r]
                n_dec -= 1
                sum_ctx -= last[r]
                if reserve:
                    reserved -= last[r]
                finish[r] = t
                completed += 1
                if issued < n:
                    arr[issued] = t
                    issued += 1
        sum_ctx += n_dec  # each remaining decode grew by the token it produced
        for r in completing:
            g = gen[r] + 1
            if g == 1:
                first_tok[r] = t
            if g >= out[r]:
                del running[r]
                if reserve:
                    reserved -= last[r]
                finish[r] = t
                completed += 1
                if issued < n:
                    arr[issued] = t
                    issued += 1
                continue
            gen[r] = g
            base[r] = it + 1
            n_dec += 1
            sum_ctx += inp[r] + g
            done_at = it + out[r] - g  # the iteration whose decode yields token out[r]
            fin_it[r] = done_at
            slot = buckets.get(done_at)
            if slot is None:
                buckets[done_at] = [r]
                heapq.heappush(fin_heap, done_at)
            else:
                slot.append(r)
        it += 1

    arrival = np.asarray(arr, dtype=np.float64)
    first = np.asarray(first_tok, dtype=np.float64)
    end = np.asarray(finish, dtype=np.float64)
    outputs = requests.output_len
    with np.errstate(divide="ignore", invalid="ignore"):
        tpot = np.where(outputs > 1, (end - first) / (outputs - 1), np.nan)
    duration = float(end.max()) - start_t
    return SimResult(
        n=n,
        duration_s=duration,
        output_tokens_per_s=float(outputs.sum()) / duration,
        input_tokens_per_s=float(requests.input_len.sum()) / duration,
        requests_per_s=n / duration,
        ttft_s=first - arrival,
        tpot_s=tpot,
        e2e_s=end - arrival,
        queue_s=np.asarray(first_sched, dtype=np.float64) - arrival,
        mean_batch=dec_total / it,
        iterations=it,
        preemptions=preemptions,
        trace=_trace(records) if trace else None,
    )


def _trace(records: list[_Record]) -> IterationTrace:
    """Columns of the per-iteration records as an :class:`IterationTrace`."""
    table = np.array(records, dtype=np.float64).reshape(len(records), _RECORD_FIELDS)
    # Every integer column holds token or sequence counts far below 2**53: exact in float64.
    ints = [table[:, k].astype(np.int64) for k in range(2, _RECORD_FIELDS)]
    return IterationTrace(table[:, 0].copy(), table[:, 1].copy(), *ints)
