"""A fleet for a target load: how many deployments of one serving layout a request rate
needs, and what they take in chips, power and money.

The serving estimate answers for one deployment (one system of ``chips`` chips in its
best layout); a buyer plans for a load: "1,000 requests/s of this job within its latency
limits". Replicas of the deployment behind a load balancer each take an equal share of
the arrivals (a Poisson stream split at random is Poisson again, Feller vol. 1 §XVII),
so each meets the limits while its share stays within what one deployment sustains
within them: its SLO goodput; without limits, the rate one serves under the job's load
(offline: the most it serves; a Poisson rate or a closed loop: that load's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ocplan.reliability.goodput import SECONDS_PER_HOUR
from ocplan.serving.estimate import TOKENS_PER_REPORT, ServingEstimate

__all__ = ["Fleet", "fleet", "replicas_needed"]

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
class Fleet:
    """The deployments a target rate needs and what they take (all replicas of one
    layout, each at ``target / replicas`` requests/s)."""

    replicas: int
    chips: int
    power_W: float | None
    """IT power at TDP of every replica; None where the chip publishes no TDP."""
    cost_per_hour: float | None
    """Chip-hours of every replica at the price per chip-hour; None without a price."""
    cost_per_mtok: float | None
    """The fleet's hourly cost over the output tokens the target rate asks for in an
    hour, per million: above one deployment's own where rounding up leaves headroom."""


def fleet(best: ServingEstimate, target_rate_per_s: float, rate_per_replica_s: float,
          price_per_chip_hour: float | None) -> Fleet:
    """The fleet of ``best``'s deployment that serves ``target_rate_per_s``, each replica
    sustaining ``rate_per_replica_s`` (its SLO goodput, or the rate it serves);
    output tokens per request are the estimate's own (its output over its request
    rate)."""
    assert best.feasible
    assert best.requests_per_s > 0
    k = replicas_needed(target_rate_per_s, rate_per_replica_s)
    chips = k * best.chips
    cost_h = None if price_per_chip_hour is None else chips * price_per_chip_hour
    tokens_per_request = best.output_tokens_per_s / best.requests_per_s
    tokens_per_hour = target_rate_per_s * tokens_per_request * SECONDS_PER_HOUR
    power = None if best.power_W is None else k * best.power_W
    return Fleet(k, chips, power, cost_h,
                 None if cost_h is None else cost_h / tokens_per_hour * TOKENS_PER_REPORT)
