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

- work is counted in *units* of ``u`` prompt tokens; a prompt is ``q`` units and an
  iteration carries at most ``k`` units (:func:`units`; the caller may cut them finer,
  and rounds a prompt to whole units keeping its work, :func:`equivalent_arrivals`);
- the state is the units waiting at an iteration's start, ``n``; the iteration carries
  ``m = min(n, k)`` of them and lasts ``T(m)`` (the step model with ``m u`` prompt
  tokens beside the decoding batch); ``A ~ Poisson(lam T(m))`` prompts arrive during it,
  so the next state is ``n - m + q A``;
- a request arrives during an iteration picked in proportion to ``pi(n) T(m(n))`` (long
  iterations catch more arrivals: the inspection paradox), at a uniform point ``v`` of
  it; the units ahead of it are ``n - m`` plus those of the ``Poisson(lam v T)`` prompts
  that arrived earlier in the same iteration. It waits the rest of the iteration, then
  ``i - 1`` full iterations ``T(k)`` while the units ahead clear, and its first token
  comes at the end of the iteration that carries its last unit; that one carries what is
  left of its own prompt and of the queue ahead, and the prompts that arrived after it up
  to the budget (their mean: a second-order term);
- prompts whose lengths spread arrive as :func:`equivalent_arrivals` (the arriving work's
  mean and variance kept), and a request's own prompt is ``y`` units with the
  probabilities :attr:`PromptQueue.own_units` (:func:`own_units` of the workload's
  length classes).

Checked against the discrete-event simulation (:mod:`ocplan.serving.simulate`, which runs
the same rules request by request; ``tests/test_prompt_queue.py``): prefill-heavy loads at
30-70 % of capacity within a few percent in the mean and 15 % at p99, where a wait for a
sequence slot alone came out 40-55 % short; lognormal lengths (MLPerf-like) within 10 % in
the mean and 15 % at p90, 25-40 % short at p99 (the far tail of long prompts holding the
queue is more than its first two moments).

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

__all__ = ["MIN_UNITS", "PromptQueue", "equivalent_arrivals", "first_token_s", "own_units", "units"]

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
    :data:`MAX_CAPACITY` (prompts much shorter than the budget are then under a unit;
    :func:`equivalent_arrivals` keeps their work)."""
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
    units_per_prompt: int
    """``q``."""
    rate_per_s: float
    """``lam``: prompts arriving per second at this instance."""
    stages: int = 1
    """``p``: pipeline stages (a prompt's last iteration takes ``p`` stage times)."""
    own_units: FloatArray | None = None
    """Probability that a request's own prompt is ``y`` units, by ``y`` (None: always
    ``q``). With a spread of lengths the arrivals are :func:`equivalent_arrivals`."""

    def __post_init__(self) -> None:
        assert self.iteration_s.ndim == 1
        assert self.iteration_s.size >= 2
        assert self.units_per_prompt >= 1
        assert self.rate_per_s > 0
        assert self.stages >= 1
        if self.own_units is not None:
            assert self.own_units.ndim == 1
            assert self.own_units[0] == 0.0
            assert abs(float(self.own_units.sum()) - 1.0) < 1e-9

    def own(self) -> FloatArray:
        """:attr:`own_units` (one-hot at ``q`` when not given)."""
        if self.own_units is not None:
            return self.own_units
        out = np.zeros(self.units_per_prompt + 1)
        out[-1] = 1.0
        return f64(out)

    @property
    def capacity(self) -> int:
        """``k``: units an iteration carries at most."""
        return int(self.iteration_s.size - 1)

    @property
    def utilisation(self) -> float:
        """Arriving units over the units full iterations clear per second."""
        k, q = self.capacity, self.units_per_prompt
        return self.rate_per_s * q * float(self.iteration_s[k]) / k

    def states(self) -> int:
        """Units waiting the chain covers (see :data:`PROMPTS_COVERED`)."""
        spare = max(1.0 - self.utilisation, 1.0 / MAX_STATES)
        need = self.capacity + self.units_per_prompt * math.ceil(PROMPTS_COVERED / spare)
        return int(min(MAX_STATES, need))


def equivalent_arrivals(rate_per_s: float, mean_units: float, moment_factor: float
                        ) -> tuple[float, int]:
    """``(lam', q')``: Poisson arrivals of a fixed ``q'`` units standing for prompts of a
    spread of sizes, ``mean_units`` on average with ``E[X^2] = moment_factor
    E[X]^2``, arriving at ``rate_per_s``: the work arriving in any interval keeps its
    mean ``lam E[X]`` and (up to rounding ``q'`` to whole units) its variance
    ``lam E[X^2]``, so ``q' = E[X^2] / E[X]`` and ``lam' = lam E[X] / q'`` (the queue
    waits as much as its service's second moment says: Pollaczek-Khinchine)."""
    q = max(1, round(mean_units * moment_factor))
    return rate_per_s * mean_units / q, q


def own_units(mean_units: float, classes: tuple[tuple[float, float], ...]) -> FloatArray:
    """Probability of a request's own prompt being ``y`` units, by ``y``, from its
    length classes (relative length, probability): each class its nearest whole units,
    at least one."""
    sizes = [max(1, round(mean_units * rel)) for rel, _ in classes]
    out = np.zeros(max(sizes) + 1)
    for y, (_, prob) in zip(sizes, classes, strict=True):
        out[y] += prob
    return f64(out / out.sum())


def _poisson_pmf(mean: FloatArray, count: int) -> FloatArray:
    """``P(A = j)`` for ``j = 0 .. count-1`` and each mean (last axis ``j``)."""
    j = np.arange(count, dtype=np.float64)
    log_fact = np.cumsum(np.log(np.maximum(j, 1.0)))
    mu = f64(mean)[..., None]
    return f64(np.exp(j * np.log(mu) - mu - log_fact))


def _stationary(queue: PromptQueue, n_states: int) -> tuple[FloatArray, FloatArray, int]:
    """Stationary law of the units waiting at iteration starts, each state's iteration
    time and the arrivals per iteration the sums reach."""
    k, q, lam = queue.capacity, queue.units_per_prompt, queue.rate_per_s
    n = np.arange(n_states)
    m = np.minimum(n, k)
    t = f64(queue.iteration_s[m])
    top = lam * float(t.max())
    count = math.ceil(top + POISSON_SPAN_SD * math.sqrt(top)) + 2
    pmf = _poisson_pmf(lam * t, count)
    dest = (n - m)[:, None] + q * np.arange(count)[None, :]
    inside = dest < n_states - 1
    moves = np.zeros((n_states, n_states))
    rows = np.broadcast_to(n[:, None], dest.shape)
    moves[rows[inside], dest[inside]] = pmf[inside]     # distinct per row: q >= 1
    moves[:, -1] += 1.0 - moves.sum(axis=1)             # beyond the chain: its last state
    system = moves.T - np.eye(n_states)
    system[-1, :] = 1.0
    rhs = np.zeros(n_states)
    rhs[-1] = 1.0
    law = np.maximum(np.linalg.solve(system, rhs), 0.0)
    return f64(law / law.sum()), t, count


def first_token_s(queue: PromptQueue, stat: str) -> float:
    """Time from a request's arrival to its first token at the statistic ``stat``
    (``mean``, ``p50``, ``p90`` or ``p99``), s (see the module docstring); infinite when
    the prompts arrive faster than full iterations clear them (the queue grows without
    bound)."""
    if queue.utilisation >= 1.0:
        return math.inf
    n_states = queue.states()
    law, t, count = _stationary(queue, n_states)
    k, q, lam = queue.capacity, queue.units_per_prompt, queue.rate_per_s
    full = float(queue.iteration_s[k])
    pick = law * t
    n = np.arange(n_states)
    v = (np.arange(ARRIVAL_POINTS) + 0.5) / ARRIVAL_POINTS
    # (state, instant, arrivals before it): its weight, iteration and the units ahead
    weight = (pick[:, None, None] * _poisson_pmf(lam * v[None, :] * t[:, None], count)
              / (pick.sum() * ARRIVAL_POINTS))
    live = weight > weight.sum() * NEGLIGIBLE
    idx_n, idx_v, idx_j = np.nonzero(live)
    t_n, v_at, w = t[idx_n], v[idx_v], weight[live]
    ahead = (n - np.minimum(n, k))[idx_n] + q * idx_j
    own = queue.own()
    y = np.nonzero(own)[0]
    total = ahead[:, None] + y[None, :]
    waits = np.floor((total - 1) / k)                                   # full iterations
    rest = total - waits * k
    after = lam * q * ((1.0 - v_at)[:, None] * t_n[:, None] + waits * full)
    last = np.interp(np.minimum(rest + after, k), np.arange(k + 1.0), queue.iteration_s)
    ttft = ((1.0 - v_at) * t_n)[:, None] + waits * full + queue.stages * last
    share = w[:, None] * own[y][None, :]
    if stat == "mean":
        return float((ttft * share).sum() / share.sum())
    order = np.argsort(ttft, axis=None)
    cdf = np.cumsum(share.ravel()[order])
    at = min(int(np.searchsorted(cdf, QUANTILE[stat] * cdf[-1])), cdf.size - 1)
    return float(ttft.ravel()[order[at]])
