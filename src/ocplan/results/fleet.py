"""A fleet for a target load: how many deployments of one serving layout a request rate
needs, and what they take in chips, power and money.

The serving estimate answers for one deployment (one system of ``chips`` chips in its
best layout); a buyer plans for a load: "1,000 requests/s of this job within its latency
limits". Replicas of the deployment behind a load balancer each take an equal share of
the arrivals (a Poisson stream split at random is Poisson again, Feller vol. 1 §XVII),
so each meets the limits while its share stays within what one deployment sustains
within them: its SLO goodput; without limits, the rate one serves under the job's load
(offline: the most it serves; a Poisson rate or a closed loop: that load's).

Failures. Deployments fail and are out until detected, restarted and, for a hardware
failure, repaired or replaced; a fleet that must keep serving the target through them
needs spare deployments. With an availability goal ``A`` (the share of time the target
is served in full) the fleet has ``k + s`` deployments, ``s`` the fewest with
P(at most ``s`` of the ``k + s`` are out) >= ``A`` (:func:`spares_needed`). Each is out
a share ``u = lambda T / (1 + lambda T)`` of the time (:func:`replica_unavailability`),
``lambda`` its unplanned failure rate from the sourced rates of
:mod:`ocplan.reliability` (its chips and hosts; its scale-out NICs and links only when
it spans hosts) and ``T`` the mean outage per failure (:func:`mean_outage_s`); failures
of distinct deployments are taken as independent, so the number out is binomial.
Planned maintenance is left out: it is drained and scheduled at low load.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from ocplan.catalog.system import System
from ocplan.reliability.failures import ComponentCounts, cluster_failure_rate, counts_for_chips
from ocplan.reliability.goodput import SECONDS_PER_HOUR
from ocplan.reliability.options import DETECT_AND_RESTART_S
from ocplan.reliability.rates import default_table, rate_set
from ocplan.serving.estimate import TOKENS_PER_REPORT, ServingEstimate

__all__ = ["BASE_OUTAGE_S", "DeploymentFailures", "Fleet", "FleetAvailability",
           "deployment_counts", "deployment_failures", "failure_rates_name", "fleet",
           "fleet_availability", "mean_outage_s", "replica_unavailability",
           "replicas_needed", "spares_needed"]

#: Relative slack before rounding a replica count up, so that a target that is an exact
#: multiple of one deployment's rate is not one replica more through float rounding.
ROUNDING_SLACK = 1e-9


def replicas_needed(target_rate_per_s: float, rate_per_replica_s: float) -> int:
    """Replicas ``k = ceil(R / r)`` that together sustain the target rate ``R``
    (requests/s) when each sustains ``r``; at least one."""
    assert target_rate_per_s > 0
    assert rate_per_replica_s > 0
    return max(1, math.ceil(target_rate_per_s / rate_per_replica_s * (1 - ROUNDING_SLACK)))


@dataclass(frozen=True)
class DeploymentFailures:
    """How often one deployment fails, by kind (unplanned only), per second."""

    hardware_per_s: float
    """Failures that take a server out (it is repaired or replaced)."""
    software_per_s: float
    """Failures that a restart in place clears."""


#: Outage of every failure: detection and diagnosis plus restart, at MegaScale's bounds
#: (Jiang et al. 2024, Sections 6.3 and 3.5).
BASE_OUTAGE_S = DETECT_AND_RESTART_S


@functools.cache
def failure_rates_name() -> str:
    """What the deployment failure rates come from (the built-in set's name)."""
    return rate_set().name


def deployment_counts(system: System, chips: int) -> ComponentCounts:
    """The components one serving deployment of ``chips`` chips depends on: its chips and
    hosts and, only when it spans several hosts, their scale-out NICs and links (within
    one host its traffic stays on the scale-up fabric)."""
    counts = counts_for_chips(system, chips)
    if counts.servers > 1:
        return counts
    return ComponentCounts(accelerators=counts.accelerators, servers=counts.servers,
                           nics=0, switches=0, cables=0)


def deployment_failures(system: System, chips: int) -> DeploymentFailures:
    """One deployment's unplanned failure rates from the built-in sourced rate set
    (:func:`~ocplan.reliability.rates.default_table`: Llama 3's 54 days on 16,384 H100)."""
    rate = cluster_failure_rate(deployment_counts(system, chips), default_table())
    return DeploymentFailures(rate.hardware_per_s, rate.software_per_s)


def mean_outage_s(failures: DeploymentFailures, repair_s: float) -> float:
    """Mean time a failure keeps a deployment out, s: detection and diagnosis plus
    restart, ``D + I`` (MegaScale's bounds, Jiang et al. 2024, Sections 6.3 and 3.5),
    and for a hardware failure also ``repair_s``, the wait for a repaired or replaced
    server (0: swapped at once from a healthy pool, as MegaScale does):
    ``T = D + I + repair_s x lambda_hw / (lambda_hw + lambda_sw)``."""
    assert repair_s >= 0
    total = failures.hardware_per_s + failures.software_per_s
    share = failures.hardware_per_s / total if total > 0 else 0.0
    return BASE_OUTAGE_S + repair_s * share


def replica_unavailability(failures_per_s: float, outage_s: float) -> float:
    """Long-run share of time a deployment is out, ``u = lambda T / (1 + lambda T)``:
    up for ``1 / lambda`` on average, then out for ``T`` (an alternating renewal
    process, MTTR / (MTBF + MTTR); Barlow and Proschan 1975, Ch. 7)."""
    assert failures_per_s >= 0
    assert outage_s >= 0
    x = failures_per_s * outage_s
    return x / (1.0 + x)


def fleet_availability(deployments: int, down_allowed: int, unavailability: float) -> float:
    """P(at most ``s`` of ``n`` deployments are out), each out with probability ``u``
    independently: ``sum_{j <= s} C(n, j) u^j (1 - u)^(n - j)`` (binomial), summed in
    log space so that large fleets neither underflow nor overflow."""
    n, s, u = deployments, down_allowed, unavailability
    assert n >= 1
    assert s >= 0
    assert 0.0 <= u < 1.0
    if u == 0.0 or s >= n:
        return 1.0
    log_u, log_up = math.log(u), math.log1p(-u)
    terms = [math.exp(math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1)
                      + j * log_u + (n - j) * log_up) for j in range(s + 1)]
    return min(1.0, math.fsum(terms))


#: Most spares :func:`spares_needed` tries per deployment needed (a bound on the loop; a
#: deployment out half the time needs about one spare per deployment at most goals).
MAX_SPARES_PER_REPLICA = 20


def spares_needed(replicas: int, unavailability: float, availability: float) -> int:
    """The fewest spare deployments ``s`` for which ``replicas`` of ``replicas + s`` are
    up with probability at least ``availability`` (:func:`fleet_availability`)."""
    assert replicas >= 1
    assert 0.0 < availability < 1.0
    for s in range(MAX_SPARES_PER_REPLICA * replicas + 1):
        if fleet_availability(replicas + s, s, unavailability) >= availability:
            return s
    raise AssertionError(f"no spare count reaches {availability} at u = {unavailability}")


@dataclass(frozen=True)
class FleetAvailability:
    """What a fleet must survive: its availability goal and its deployments' failures."""

    availability: float
    """Share of time the fleet serves the whole target rate (0.999: all but 8.8 h a year)."""
    failures: DeploymentFailures
    repair_s: float = 0.0
    """Extra outage of a hardware failure (:func:`mean_outage_s`)."""


@dataclass(frozen=True)
class Fleet:
    """The deployments a target rate needs and what they take (all replicas of one
    layout, each at ``target / replicas`` requests/s), spares included."""

    replicas: int
    """Deployments that serve the target (spares not counted)."""
    spares: int | None
    """Spare deployments for the availability goal; None without one."""
    chips: int
    power_W: float | None
    """IT power at TDP of every replica; None where the chip publishes no TDP."""
    cost_per_hour: float | None
    """Chip-hours of every replica at the price per chip-hour; None without a price."""
    cost_per_mtok: float | None
    """The fleet's hourly cost over the output tokens the target rate asks for in an
    hour, per million: above one deployment's own where rounding up leaves headroom."""
    likely_replicas: tuple[int, int | None] | None = None
    """(fewest, most) deployments the target likely needs, spares not counted: with each
    sustaining the high and the low end of its likely rate; most is None where at the low
    end no rate meets the SLOs. None without a likely rate."""


def fleet(best: ServingEstimate, target_rate_per_s: float, rate_per_replica_s: float,
          price_per_chip_hour: float | None,
          availability: FleetAvailability | None = None,
          likely_rate_per_replica_s: tuple[float, float] | None = None) -> Fleet:
    """The fleet of ``best``'s deployment that serves ``target_rate_per_s``, each replica
    sustaining ``rate_per_replica_s`` (its SLO goodput, or the rate it serves), with the
    spares ``availability`` asks for; chips, power and cost count the spares (they are
    bought and powered), the output tokens only the target's. Output tokens per request
    are the estimate's own (its output over its request rate). With
    ``likely_rate_per_replica_s`` (low, high), the replicas at each end too."""
    assert best.feasible
    assert best.requests_per_s > 0
    k = replicas_needed(target_rate_per_s, rate_per_replica_s)
    spares = None
    if availability is not None:
        f = availability.failures
        u = replica_unavailability(f.hardware_per_s + f.software_per_s,
                                   mean_outage_s(f, availability.repair_s))
        spares = spares_needed(k, u, availability.availability)
    deployed = k + (spares or 0)
    chips = deployed * best.chips
    cost_h = None if price_per_chip_hour is None else chips * price_per_chip_hour
    tokens_per_request = best.output_tokens_per_s / best.requests_per_s
    tokens_per_hour = target_rate_per_s * tokens_per_request * SECONDS_PER_HOUR
    power = None if best.power_W is None else deployed * best.power_W
    likely = None
    if likely_rate_per_replica_s is not None:
        low, high = likely_rate_per_replica_s
        assert 0.0 <= low <= high, likely_rate_per_replica_s
        assert high > 0.0, likely_rate_per_replica_s
        likely = (replicas_needed(target_rate_per_s, high),
                  replicas_needed(target_rate_per_s, low) if low > 0.0 else None)
    return Fleet(k, spares, chips, power, cost_h,
                 None if cost_h is None else cost_h / tokens_per_hour * TOKENS_PER_REPORT,
                 likely)
