"""Goodput of a training job: the share of wall time that is useful compute.

The model is Daly's complete one (Daly 2006, "A higher order estimate of the optimum
checkpoint interval for restart dumps", FGCS 22(3):303-312): failures arrive as a
Poisson process of mean interval ``M`` over the whole wall time, the job computes
``tau`` between checkpoints that stall it ``delta``, and each failure costs the work
since the last checkpoint plus a restart ``R``. One segment (``tau`` of work and its
checkpoint, ``L = tau + delta``) takes on average

    E = M e^(R/M) (e^(L/M) - 1),        T_w = E T_s / tau  for T_s of work,

which splits exactly into useful ``tau``, checkpoint ``delta``, lost work
``M (e^(L/M) - 1) - L`` (the partial segments, about ``L/2`` per failure) and restarts
``(e^(L/M) - 1) M (e^(R/M) - 1)`` (about ``R`` per failure; failures may strike during a
restart too). Expected failures over the run are ``T_w / M``. To first order in
``1/M`` goodput is ``(1 - (R + L/2)/M) / (1 + delta/tau)``, the ETTR estimate of
Kokolis et al. 2024 (arXiv 2410.21680).

Asynchronous checkpoints (MegaScale, Jiang et al. 2024, Section 4.4) stall only for the
device-to-host copy ``delta_b``; the write ``delta_w`` overlaps training, so the last
durable checkpoint lags by ``delta_w`` and a failure re-does ``rho = min(delta_w, tau)``
more work, charged like restart time. A next checkpoint cannot start before the previous
write ends, so below ``tau = delta_w`` the stall grows to ``delta_b + delta_w - tau``.
This never costs more than the synchronous save, which stalls for the copy and the
write, ``delta_b + delta_w``, at any ``tau``:
``e^(delta_w/M) (e^((tau + delta_b)/M) - 1) <= e^((tau + delta_b + delta_w)/M) - 1``.

Each failure costs a restart ``R`` (:mod:`~ocplan.reliability.recovery`: detection,
replacement wait with or without hot spares, start-up, checkpoint load). Planned
maintenance is drained with a final checkpoint: it costs ``delta_b + delta_w + init +
load``, loses no work, and stretches the wall time by ``1 / (1 - rate x cost)``.

Spread: the number of unplanned failures over the run is Poisson with mean ``T_w / M``;
each adds the mean cost per failure, which gives the wall time's standard deviation and
p10/p90.

Monotonicity: at the optimal interval (the default) goodput never rises with the
failure rate, restart time or checkpoint time, because the cost at every ``tau`` is
monotone in each of them and the optimum of monotone functions is monotone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ocplan.catalog.storage import StorageSpec
from ocplan.errors import SpecError
from ocplan.reliability.checkpoint import CheckpointCost, checkpoint_cost
from ocplan.reliability.failures import (
    ClusterFailureRate,
    ComponentCounts,
    cluster_failure_rate,
    poisson_quantile,
)
from ocplan.reliability.interval import daly_interval_s, optimal_interval_s, young_interval_s
from ocplan.reliability.options import DEFAULT_OPTIONS, GoodputOptions
from ocplan.reliability.rates import RateTable, default_table
from ocplan.reliability.recovery import restart_per_failure_s

__all__ = ["Goodput", "expected_wall_s", "goodput"]

#: Largest exponent evaluated: beyond it a segment never completes in practice.
_MAX_EXPONENT = 700.0
#: Below this ratio e^x - 1 - x is summed as its series (avoids cancellation).
_SERIES_BELOW = 1e-4
SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class Goodput:
    """Expected wall time of a training job with failures, and where it goes.

    Times are totals over the run, s; fractions are of the mean wall time. When the job
    cannot make progress (``reason`` set) the time, energy and cost fields are ``None``
    and ``goodput`` is 0.
    """

    goodput: float
    """Useful compute / wall time (the effective training time ratio)."""
    useful_s: float
    checkpoint_s: float
    """Training stalled by checkpoints."""
    lost_work_s: float
    """Work re-done after failures, incl. partial checkpoints and the async write lag."""
    restart_s: float
    """Detection, replacement wait, start-up and checkpoint load, over all failures."""
    planned_s: float
    """Drain, restart and load of planned maintenance."""
    dominant_loss: str
    """The largest of checkpoint, lost_work, restart and planned (``none`` if all 0)."""
    interval_s: float | None
    """Compute time between checkpoints; ``None`` when none is needed."""
    checkpoint: CheckpointCost
    restart_per_failure_s: float
    spare_available_probability: float | None
    """Chance a hardware failure finds a spare (``None`` without a spare pool model)."""
    failure_rate: ClusterFailureRate
    mtbf_s: float | None
    expected_failures: float
    """Unplanned interruptions over the run (Poisson mean)."""
    expected_planned: float
    wall_s: float | None
    wall_sd_s: float | None
    wall_p10_s: float | None
    wall_p90_s: float | None
    energy_J: float | None
    energy_p10_J: float | None
    energy_p90_J: float | None
    cost: float | None
    cost_p10: float | None
    cost_p90: float | None
    rate_set: str
    reason: str | None
    notes: tuple[str, ...]

    def fractions(self) -> dict[str, float]:
        """Shares of the mean wall time: useful, checkpoint, lost_work, restart, planned
        (they add up to 1)."""
        total = (self.useful_s + self.checkpoint_s + self.lost_work_s + self.restart_s
                 + self.planned_s)
        if total <= 0 or not math.isfinite(total):
            return {"useful": 0.0, "checkpoint": 0.0, "lost_work": 0.0, "restart": 0.0,
                    "planned": 0.0}
        return {"useful": self.useful_s / total, "checkpoint": self.checkpoint_s / total,
                "lost_work": self.lost_work_s / total, "restart": self.restart_s / total,
                "planned": self.planned_s / total}


def _expm1_minus_x(x: float) -> float:
    """e^x - 1 - x without cancellation for small x."""
    if x < _SERIES_BELOW:
        return x * x * (0.5 + x * (1.0 / 6.0 + x / 24.0))
    return math.expm1(x) - x


@dataclass(frozen=True)
class _Segment:
    """One checkpoint segment of Daly's model: expected time and its parts, s."""

    time_s: float
    checkpoint_s: float
    lost_s: float
    restart_s: float
    rework_s: float


def _segment(tau: float, blocking_s: float, write_s: float, restart_s: float,
             mtbf_s: float | None) -> _Segment | None:
    """Expected time of a segment of ``tau`` work (None when it practically never ends).

    ``E = M e^((R + rho)/M) (e^(L/M) - 1)`` with ``L = tau + blocking + max(0, write -
    tau)`` and ``rho = min(write, tau)``; see the module docstring for the split.
    """
    stall = blocking_s + max(0.0, write_s - tau)
    rework = min(write_s, tau)
    length = tau + stall
    if mtbf_s is None:
        return _Segment(length, stall, 0.0, 0.0, 0.0)
    x = length / mtbf_s
    y = (restart_s + rework) / mtbf_s
    if x > _MAX_EXPONENT or y > _MAX_EXPONENT:
        return None
    attempts = math.expm1(x)  # expected failed attempts per segment
    lost = mtbf_s * _expm1_minus_x(x)  # = M (e^x - 1) - L
    recover = attempts * mtbf_s * math.expm1(y)
    share = restart_s / (restart_s + rework) if restart_s + rework > 0 else 1.0
    return _Segment(length + lost + recover, stall, lost, recover * share,
                    recover * (1.0 - share))


def expected_wall_s(ideal_train_s: float, interval_s: float, checkpoint_s: float,
                    restart_s: float, mtbf_s: float | None) -> float:
    """Daly's complete model: ``T_w = M e^(R/M) (e^((tau + delta)/M) - 1) T_s / tau``, s
    (``T_s (1 + delta/tau)`` without failures; infinity when a segment never ends)."""
    seg = _segment(interval_s, checkpoint_s, 0.0, restart_s, mtbf_s)
    return math.inf if seg is None else seg.time_s * ideal_train_s / interval_s


def _per_work(tau: float, ck: CheckpointCost, restart_s: float, mtbf_s: float) -> float:
    seg = _segment(tau, ck.blocking_s, ck.write_s, restart_s, mtbf_s)
    return math.inf if seg is None else seg.time_s / tau


def _choose_interval(ck: CheckpointCost, restart_s: float, mtbf_s: float,
                     options: GoodputOptions, notes: list[str]) -> float:
    """The interval: the user's, Young's, Daly's or the exact optimum (the global one
    of the asynchronous piecewise cost, see the module docstring)."""
    if options.interval_s is not None:
        return options.interval_s
    if options.interval_rule == "young":
        tau = young_interval_s(ck.blocking_s, mtbf_s)
    elif options.interval_rule == "daly":
        tau = daly_interval_s(ck.blocking_s, mtbf_s)
    else:
        tau = optimal_interval_s(ck.blocking_s, mtbf_s)
        if ck.write_s > tau:
            # tau >= write: the smooth cost has its optimum at max(tau*, write); below
            # write the cost per work e^(tau/M)/tau is least at min(M, write).
            above = ck.write_s
            below = min(mtbf_s, ck.write_s)
            tau = min((above, below), key=lambda t: _per_work(t, ck, restart_s, mtbf_s))
        return max(tau, 1e-300)
    if ck.write_s > tau:
        notes.append(f"interval raised from {tau:.3g} s to the asynchronous write time "
                     f"{ck.write_s:.3g} s (a checkpoint cannot start before the last one "
                     "is written)")
        tau = ck.write_s
    return max(tau, 1e-300)


def goodput(ideal_train_s: float, counts: ComponentCounts, checkpoint_bytes: float,
            storage: StorageSpec, options: GoodputOptions = DEFAULT_OPTIONS,
            rates: RateTable | None = None) -> Goodput:
    """Expected goodput, wall time, energy and cost of a training job with failures.

    Parameters
    ----------
    ideal_train_s
        Failure-free training time (steps x step time), s.
    counts
        The job's components (:class:`ComponentCounts`).
    checkpoint_bytes
        Size of one checkpoint (:func:`~ocplan.reliability.checkpoint.checkpoint_bytes`).
    storage
        The checkpoint storage tier.
    options
        Recovery and checkpoint options (:class:`GoodputOptions`).
    rates
        Failure rates; default: the built-in default set.

    Returns
    -------
    Goodput
        Breakdown, interval, failures, MTBF, wall time with its Poisson spread, energy
        and cost.

    Raises
    ------
    SpecError
        When ``ideal_train_s`` or ``checkpoint_bytes`` is not a positive finite number.
    """
    if not (isinstance(ideal_train_s, (int, float)) and math.isfinite(ideal_train_s)
            and ideal_train_s > 0):
        raise SpecError.one("argument", "ideal_train_s", "must be a positive finite number "
                            "of seconds", ideal_train_s)
    if not (isinstance(checkpoint_bytes, (int, float)) and math.isfinite(checkpoint_bytes)
            and checkpoint_bytes > 0):
        raise SpecError.one("argument", "checkpoint_bytes", "must be a positive finite "
                            "number of bytes", checkpoint_bytes)
    table = rates if rates is not None else default_table()
    rate = cluster_failure_rate(counts, table)
    ck = checkpoint_cost(checkpoint_bytes, storage, counts.servers,
                         options.d2h_per_server_Bps, options.asynchronous)
    restart, p_spare = restart_per_failure_s(rate, ck.load_s, options)
    mtbf = rate.mtbf_s
    notes: list[str] = []
    if storage.kind == "local-nvme":
        notes.append("local-nvme checkpoints are assumed replicated to a peer: one on the "
                     "failed server alone would be lost with it")

    if mtbf is None and options.interval_s is None:
        tau: float | None = None
        seg = _Segment(1.0, 0.0, 0.0, 0.0, 0.0)
        segments = ideal_train_s
        notes.append("no unplanned failures: no checkpoint is needed")
    else:
        tau = (options.interval_s if mtbf is None
               else _choose_interval(ck, restart, mtbf, options, notes))
        assert tau is not None
        assert tau > 0
        found = _segment(tau, ck.blocking_s, ck.write_s, restart, mtbf)
        if found is None:
            return _infeasible(rate, ck, tau, restart, p_spare, table.set_id, notes,
                               "failures arrive faster than a checkpoint segment and its "
                               "recovery can complete")
        seg = found
        segments = ideal_train_s / tau

    useful = ideal_train_s
    checkpoint_total = segments * seg.checkpoint_s
    lost_total = segments * (seg.lost_s + seg.rework_s)
    restart_total = segments * seg.restart_s
    running = segments * seg.time_s

    planned_rate = rate.planned_per_s if options.include_planned else 0.0
    planned_cost = ck.blocking_s + ck.write_s + options.init_s + ck.load_s
    planned_share = planned_rate * planned_cost
    if planned_share >= 1.0:
        return _infeasible(rate, ck, tau, restart, p_spare, table.set_id, notes,
                           f"planned maintenance every {1 / planned_rate:.3g} s costs "
                           f"{planned_cost:.3g} s each")
    stretch = 1.0 / (1.0 - planned_share)
    wall = running * stretch
    planned_total = wall - running

    failures = running / mtbf if mtbf is not None else 0.0
    per_failure = (lost_total + restart_total) / failures * stretch if failures > 0 else 0.0
    base = wall - failures * per_failure
    sd = per_failure * math.sqrt(failures)
    p10 = base + per_failure * poisson_quantile(failures, 0.1)
    p90 = base + per_failure * poisson_quantile(failures, 0.9)

    losses = {"checkpoint": checkpoint_total, "lost_work": lost_total,
              "restart": restart_total, "planned": planned_total}
    dominant = max(losses, key=losses.__getitem__)
    if losses[dominant] <= 0:
        dominant = "none"
    energy = _scaled(options.power_W, (wall, p10, p90))
    chips_billed = float(counts.accelerators)
    if options.spare_servers:
        chips_billed += options.spare_servers * counts.accelerators / counts.servers
    price = (None if options.price_per_chip_hour is None
             else options.price_per_chip_hour * chips_billed / SECONDS_PER_HOUR)
    cost = _scaled(price, (wall, p10, p90))
    return Goodput(
        goodput=useful / wall, useful_s=useful, checkpoint_s=checkpoint_total,
        lost_work_s=lost_total, restart_s=restart_total, planned_s=planned_total,
        dominant_loss=dominant, interval_s=tau, checkpoint=ck,
        restart_per_failure_s=restart, spare_available_probability=p_spare,
        failure_rate=rate, mtbf_s=mtbf, expected_failures=failures,
        expected_planned=planned_rate * wall, wall_s=wall, wall_sd_s=sd,
        wall_p10_s=p10, wall_p90_s=p90, energy_J=energy[0], energy_p10_J=energy[1],
        energy_p90_J=energy[2], cost=cost[0], cost_p10=cost[1], cost_p90=cost[2],
        rate_set=table.set_id, reason=None, notes=tuple(notes))


def _scaled(factor: float | None, values: tuple[float, float, float]
            ) -> tuple[float | None, float | None, float | None]:
    if factor is None:
        return (None, None, None)
    return (factor * values[0], factor * values[1], factor * values[2])


def _infeasible(rate: ClusterFailureRate, ck: CheckpointCost, tau: float | None,
                restart: float, p_spare: float | None, set_id: str,
                notes: list[str], why: str) -> Goodput:
    """A job that makes no progress: goodput 0, no wall time; ``reason`` starts with the
    countable key ``reliability``."""
    reason = f"reliability: {why}, so the job makes no progress"
    return Goodput(
        goodput=0.0, useful_s=0.0, checkpoint_s=0.0, lost_work_s=0.0, restart_s=0.0,
        planned_s=0.0, dominant_loss="restart", interval_s=tau, checkpoint=ck,
        restart_per_failure_s=restart, spare_available_probability=p_spare,
        failure_rate=rate, mtbf_s=rate.mtbf_s, expected_failures=0.0,
        expected_planned=0.0, wall_s=None, wall_sd_s=None, wall_p10_s=None,
        wall_p90_s=None, energy_J=None, energy_p10_J=None, energy_p90_J=None, cost=None,
        cost_p10=None, cost_p90=None, rate_set=set_id, reason=reason, notes=tuple(notes))
