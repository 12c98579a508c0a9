"""The prompt queue at the token budget: time to first token under Poisson arrivals.

A continuous-batching engine (vLLM V1, Sarathi-Serve) admits waiting prompts at the
start of each iteration, first come first served, into the token budget the decodes
leave (``R`` tokens). Prompts that arrive during an iteration wait for its end (the
engine is *gated*: an iteration's work is fixed when it starts), and an iteration that
carries more prompt tokens lasts longer, so more prompts arrive during it: under a
prefill-heavy load the first token waits mostly for other prompts, not for a sequence
slot. The queue is an embedded Markov chain at iteration starts (a bulk-service queue
with state-dependent service, Bailey, "On queueing processes with bulk service", JRSS B
16, 1954; here with the iteration time of the step model):

- work is counted in *units* of ``u`` prompt tokens; a prompt is ``Y`` units, ``f(y)``
  the probability of ``y`` (one size for fixed lengths, the length classes of the
  workload when they spread: :func:`prompt_units`), and an iteration carries at most
  ``k`` units (:func:`units`; the caller may cut them finer);
- the state is the units waiting at an iteration's start, ``n``; the iteration carries
  ``m = min(n, k)`` of them and lasts ``T(m)`` (the step model with ``m u`` prompt
  tokens beside the decoding batch); ``Poisson(lam T(m))`` prompts arrive during it,
  ``A`` units in all (a compound Poisson sum, :func:`compound_poisson_pmf`), so the next
  state is ``n - m + A``;
- a request arrives during an iteration picked in proportion to ``pi(n) T(m(n))`` (long
  iterations catch more arrivals: the inspection paradox), at a uniform point ``v`` of
  it; the units ahead of it are ``n - m`` plus those of the ``Poisson(lam v T)`` prompts
  that arrived earlier in the same iteration, and its own prompt is one more draw of
  ``f`` (the three summed by a product of transforms). It waits the rest of the iteration, then
  ``i - 1`` full iterations ``T(k)`` while the units ahead clear, and its first token
  comes at the end of the iteration that carries its last unit; that one carries what is
  left of its own prompt and of the queue ahead, and the prompts that arrived after it up
  to the budget (their mean: a second-order term).

Checked against the discrete-event simulation (:mod:`ocplan.serving.simulate`, which runs
the same rules request by request; ``tests/test_prompt_queue.py``): prefill-heavy loads at
30-70 % of capacity within a few percent in the mean and 15 % at p99, where a wait for a
sequence slot alone came out 40-55 % short; lognormal lengths (MLPerf-like) within 10 % in
the mean, 15 % at p90 and 1-10 % short at p99 (with arrivals of one size of the same
first two moments in place of the real mix, the p99 was 25-40 % short: the far tail of
long prompts holding the queue is more than two moments); 20-26 % short at p99 towards
80 % of the budget's capacity.

Assumptions: the decoding batch is its mean (its slow drift near the capacity is not in
the chain, so very close to the capacity the tail comes out short); a pipeline of ``p``
stages admits into each stage's iteration and a prompt's last iteration takes ``p`` stage
times; the chain is truncated at :func:`states` units waiting (the mass beyond is kept in
the last state).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ocplan.costmodel.roofline import FloatArray, f64

__all__ = ["MIN_UNITS", "POISSON_SPAN_SD", "PromptQueue", "compound_poisson_pmf", "compound_reach",
           "first_token_s", "first_token_stats", "prompt_units", "units"]

#: Units an iteration's prompt budget is split into at least, so that a budget that holds
#: a prompt and a fraction (or a fraction of a prompt) is not rounded to whole prompts: a
#: quarter of the budget at most is lost to the rounding.
MIN_UNITS = 4
#: Most units an iteration's budget is split into (prompts of a few dozen tokens against
#: a budget of thousands would otherwise make a chain of thousands of states, for a
#: queue that the budget barely ever holds back).
MAX_CAPACITY = 32
#: Prompts' worth of queue the chain covers, divided by ``1 - rho`` (``rho`` the budget's
#: utilisation at full iterations): a queue with service at a fixed rate has a tail
#: ``P(N > n) ~ rho^n``, so ``n = 12 / (1 - rho)`` leaves well under ``1e-5`` beyond it.
PROMPTS_COVERED = 12.0
#: Largest chain (units waiting): a dense solve of this size costs about a millisecond.
MAX_STATES = 256
#: Points of the uniform arrival instant inside an iteration (midpoint rule).
ARRIVAL_POINTS = 8
#: Standard deviations of the Poisson arrivals per iteration the sums reach beyond the
#: largest mean.
POISSON_SPAN_SD = 10.0
#: Quantile of each tail statistic.
QUANTILE = {"p50": 0.50, "p90": 0.90, "p99": 0.99}
#: Share of the probability below which a (state, instant, arrivals) point of a
#: request's arrival is dropped from its TTFT distribution (the Poisson terms' far tails).
NEGLIGIBLE = 1e-9
#: Relative slack when counting whole units in a token count (floating-point division).
_SLACK = 1e-9


def units(prefill_len: float, room: float) -> tuple[float, int]:
    """``(u, k)``: tokens per unit and whole units per iteration for prompts of
    ``prefill_len`` tokens and an iteration with ``room`` tokens of budget for prompts.
    The unit is a whole share of ``min(prefill_len, room)`` small enough that the budget
    holds at least :data:`MIN_UNITS` of them, and not so small that it holds more than
    :data:`MAX_CAPACITY` (prompts much shorter than the budget are then under a unit: the
    caller rounds them up and lowers their rate, keeping their work)."""
    assert prefill_len > 0
    assert room > 0
    piece = min(prefill_len, room)
    u = max(piece / math.ceil(MIN_UNITS * piece / room - _SLACK), room / MAX_CAPACITY)
    return u, max(1, math.floor(room / u + _SLACK))


@dataclass(frozen=True)
class PromptQueue:
    """One instance's prompt queue at one decoding batch (see the module docstring)."""

    iteration_s: FloatArray
    """``T(m)``: a stage's iteration carrying ``m = 0 .. k`` units, s."""
    prompt_units: FloatArray
    """``f(y)``: probability that a prompt is ``y`` units, by ``y`` (``f(0) = 0``); the
    arriving prompts' and the request's own (:func:`prompt_units`)."""
    rate_per_s: float
    """``lam``: prompts arriving per second at this instance."""
    stages: int = 1
    """``p``: pipeline stages (a prompt's last iteration takes ``p`` stage times)."""

    def __post_init__(self) -> None:
        assert self.iteration_s.ndim == 1
        assert self.iteration_s.size >= 2
        assert self.prompt_units.ndim == 1
        assert self.prompt_units[0] == 0.0
        assert abs(float(self.prompt_units.sum()) - 1.0) < 1e-9
        assert self.rate_per_s > 0
        assert self.stages >= 1

    @staticmethod
    def fixed(iteration_s: FloatArray, units_per_prompt: int, rate_per_s: float,
              stages: int = 1) -> PromptQueue:
        """The queue of prompts of ``units_per_prompt`` units each."""
        sizes = np.zeros(units_per_prompt + 1)
        sizes[-1] = 1.0
        return PromptQueue(iteration_s, f64(sizes), rate_per_s, stages)

    @property
    def capacity(self) -> int:
        """``k``: units an iteration carries at most."""
        return int(self.iteration_s.size - 1)

    @property
    def mean_units(self) -> float:
        """``E[Y]``: units of a prompt on average."""
        return float(np.arange(self.prompt_units.size) @ self.prompt_units)

    @property
    def utilisation(self) -> float:
        """Arriving units over the units full iterations clear per second."""
        k = self.capacity
        return self.rate_per_s * self.mean_units * float(self.iteration_s[k]) / k

    def states(self) -> int:
        """Units waiting the chain covers (see :data:`PROMPTS_COVERED`; prompts counted
        at their size-biased mean ``E[Y^2] / E[Y]``, the size the work waiting is made
        of)."""
        y = np.arange(self.prompt_units.size)
        biased = float(y * y @ self.prompt_units) / self.mean_units
        spare = max(1.0 - self.utilisation, 1.0 / MAX_STATES)
        need = self.capacity + math.ceil(biased * PROMPTS_COVERED / spare)
        return int(min(MAX_STATES, need))


def prompt_units(mean_units: float, classes: tuple[tuple[float, float], ...]) -> FloatArray:
    """Probability of a prompt being ``y`` units, by ``y``, from its length classes
    (relative length, probability): each class its nearest whole units, at least one."""
    sizes = [max(1, round(mean_units * rel)) for rel, _ in classes]
    out = np.zeros(max(sizes) + 1)
    for y, (_, prob) in zip(sizes, classes, strict=True):
        out[y] += prob
    return f64(out / out.sum())


def compound_poisson_pmf(means: FloatArray, sizes: FloatArray, count: int) -> FloatArray:
    """``P(S = x)`` for ``x = 0 .. count-1`` (last axis) and each of ``means``: ``S`` the
    units of ``N ~ Poisson(mu)`` prompts of independent sizes ``f(y) = sizes[y]`` (a
    compound Poisson sum; :func:`_compound_spectrum`)."""
    mu = f64(np.maximum(means, 0.0))
    n = _transform_size(count + sizes.size, float(mu.max()) if mu.size else 0.0, sizes)
    pmf = np.fft.irfft(_compound_spectrum(mu, np.fft.rfft(sizes, n)), n)[..., :count]
    return f64(np.maximum(pmf, 0.0))


def _compound_spectrum(mu: FloatArray, size_spectrum: np.ndarray) -> np.ndarray:
    """Transform of the compound Poisson sums of means ``mu`` (new last axis): the
    generating function ``exp(mu (F(z) - 1))``, ``F`` the sizes' (Feller, *An
    Introduction to Probability Theory*, vol. 1, XII.2), at the roots of unity."""
    return np.exp(mu[..., None] * (size_spectrum - 1.0))


def compound_reach(mean_count: float, sizes: FloatArray) -> float:
    """Units a compound Poisson sum of mean count ``mean_count`` and sizes ``sizes``
    reaches: its mean ``mu E[Y]`` plus :data:`POISSON_SPAN_SD` standard deviations
    ``sqrt(mu E[Y^2])`` (the mass beyond is negligible)."""
    y = np.arange(sizes.size)
    return (mean_count * float(y @ sizes)
            + POISSON_SPAN_SD * math.sqrt(mean_count * float(y * y @ sizes)))


def _transform_size(span: float, top_mean: float, sizes: FloatArray) -> int:
    """Length of a transform that holds ``span`` units plus a compound Poisson sum of
    mean count ``top_mean`` (:func:`compound_reach`; the mass beyond, which the inverse
    transform folds back, is negligible)."""
    return 1 << max(4, math.ceil(math.log2(span + compound_reach(top_mean, sizes))))


def _stationary(queue: PromptQueue, n_states: int) -> tuple[FloatArray, FloatArray]:
    """Stationary law of the units waiting at iteration starts and each state's
    iteration time."""
    k, lam = queue.capacity, queue.rate_per_s
    n = np.arange(n_states)
    m = np.minimum(n, k)
    arrive = compound_poisson_pmf(lam * queue.iteration_s, queue.prompt_units, n_states)
    dest = (n - m)[:, None] + n[None, :]
    inside = dest < n_states - 1
    moves = np.zeros((n_states, n_states))
    rows = np.broadcast_to(n[:, None], dest.shape)
    moves[rows[inside], dest[inside]] = arrive[m][inside]    # distinct per row
    moves[:, -1] += 1.0 - moves.sum(axis=1)             # beyond the chain: its last state
    system = moves.T - np.eye(n_states)
    system[-1, :] = 1.0
    rhs = np.zeros(n_states)
    rhs[-1] = 1.0
    law = np.maximum(np.linalg.solve(system, rhs), 0.0)
    return f64(law / law.sum()), f64(queue.iteration_s[m])


def first_token_s(queue: PromptQueue, stat: str) -> float:
    """Time from a request's arrival to its first token at the statistic ``stat``
    (``mean``, ``p50``, ``p90`` or ``p99``), s (see the module docstring); infinite when
    the prompts arrive faster than full iterations clear them (the queue grows without
    bound)."""
    [out] = first_token_stats(queue, (stat,))
    return out


def first_token_stats(queue: PromptQueue, stats: tuple[str, ...]) -> tuple[float, ...]:
    """:func:`first_token_s` at each of ``stats``, from one stationary law."""
    if queue.utilisation >= 1.0:
        return tuple(math.inf for _ in stats)
    n_states = queue.states()
    law, t = _stationary(queue, n_states)
    k, lam, own = queue.capacity, queue.rate_per_s, queue.prompt_units
    t_m = queue.iteration_s
    full = float(t_m[k])
    v = (np.arange(ARRIVAL_POINTS) + 0.5) / ARRIVAL_POINTS
    # A request lands in state n's iteration (m = min(n, k) units) with probability
    # pi(n) T(m) / E[T], at the instant v; ahead of it are the n - m units left over
    # and those of the prompts that arrived before it in the iteration (compound
    # Poisson of mean count lam v T(m)); its own prompt comes last. The total of the
    # three, by (m, v), is a convolution: a product of transforms.
    pick = law * t / float(law @ t)
    left = np.zeros((k + 1, n_states - k))
    left[np.arange(k), 0] = pick[:k]
    left[k] = pick[k:]
    size = _transform_size(left.shape[1] + 2 * own.size, lam * full, own)
    spectrum = np.fft.rfft(own, size)
    # the arrivals up to the instants v = (j + 1/2) / V: a half step, then whole steps
    # (a product of transforms is the sum of independent arrivals)
    step = _compound_spectrum(lam * t_m / ARRIVAL_POINTS, spectrum)
    arrived = np.empty((k + 1, ARRIVAL_POINTS, spectrum.size), dtype=np.complex128)
    arrived[:, 0] = _compound_spectrum(lam * t_m / (2 * ARRIVAL_POINTS), spectrum)
    for j in range(1, ARRIVAL_POINTS):
        arrived[:, j] = arrived[:, j - 1] * step
    totals = np.fft.irfft(np.fft.rfft(left, size)[:, None, :] * spectrum * arrived, size)
    weight = np.maximum(totals, 0.0) / ARRIVAL_POINTS
    live = weight > weight.sum() * NEGLIGIBLE
    live[:, :, 0] = False                       # an own prompt is one unit at least
    idx_m, idx_v, total = np.nonzero(live)
    t_n, v_at, share = t_m[idx_m], v[idx_v], weight[live]
    waits = np.floor((total - 1) / k)                                   # full iterations
    rest = total - waits * k
    after = lam * queue.mean_units * ((1.0 - v_at) * t_n + waits * full)
    last = np.interp(np.minimum(rest + after, k), np.arange(k + 1.0), t_m)
    ttft = (1.0 - v_at) * t_n + waits * full + queue.stages * last
    return tuple(_statistic(ttft, share, stat) for stat in stats)


def _statistic(value: FloatArray, weight: FloatArray, stat: str) -> float:
    """The mean or the quantile ``stat`` of ``value`` under the weights ``weight``."""
    if stat == "mean":
        return float((value * weight).sum() / weight.sum())
    order = np.argsort(value, axis=None)
    cdf = np.cumsum(weight.ravel()[order])
    at = min(int(np.searchsorted(cdf, QUANTILE[stat] * cdf[-1])), cdf.size - 1)
    return float(value.ravel()[order[at]])
