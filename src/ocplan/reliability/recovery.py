"""Restart time per failure, and the hot-spare pool that shortens it.

Restart ``R`` = detection and diagnosis + wait for a replacement server (hardware
failures only) + job initialisation + checkpoint load.

Hot spares: with ``S`` spare servers and failed ones away for ``repair_s``, the number
under repair is Poisson with mean ``lambda_hw x repair_s`` (the M/G/infinity queue,
Palm's theorem); a failure finds a spare when fewer than ``S`` others are under repair
(Poisson arrivals see time averages) and waits ``swap_s``, else ``requeue_s``. Without
a modelled pool (``spare_servers=None``) every replacement comes from a large healthy
pool at ``swap_s``, as in MegaScale (Jiang et al. 2024, Section 4.1).
"""

from __future__ import annotations

import math

from ocplan.reliability.failures import ClusterFailureRate
from ocplan.reliability.options import GoodputOptions

__all__ = ["restart_per_failure_s", "spare_available_probability"]

#: Largest Poisson mean whose e^-mean is evaluated (it underflows beyond about 745).
_MAX_EXPONENT = 700.0


def spare_available_probability(replacing_per_s: float, spares: int,
                                repair_s: float) -> float:
    """P(a failed server finds a spare) = P(Poisson(lambda x repair_s) <= S - 1).

    Servers under repair form an M/G/infinity queue: their number is Poisson with mean
    ``lambda x repair_s`` whatever the repair-time law (Palm's theorem), and a failure
    sees that distribution (PASTA). It needs the others under repair to be fewer than
    the ``S`` spares.
    """
    assert replacing_per_s >= 0
    assert spares >= 0
    assert repair_s > 0
    if spares == 0:
        return 0.0
    mean = replacing_per_s * repair_s
    if mean == 0:
        return 1.0
    if mean > _MAX_EXPONENT:
        # e^-mean underflows; the pool is exhausted unless S is far above the mean.
        return 1.0 if spares > mean + 40.0 * math.sqrt(mean) else 0.0
    term = math.exp(-mean)
    cdf = term
    for k in range(1, spares):
        term *= mean / k
        cdf += term
        if k > mean and term < 1e-17 * cdf:
            break
    return min(cdf, 1.0)


def restart_per_failure_s(rate: ClusterFailureRate, load_s: float,
                          options: GoodputOptions) -> tuple[float, float | None]:
    """Mean restart time per unplanned failure, s, and the chance a hardware failure finds
    a spare (``None`` without a modelled pool).

    ``R = detection + (hardware share) x wait + init + load``, with
    ``wait = P(spare) swap_s + (1 - P(spare)) requeue_s``.
    """
    unplanned = rate.unplanned_per_s
    p_spare: float | None = None
    if options.spare_servers is None:
        wait = options.swap_s
    else:
        if options.spare_servers > 0:
            assert options.repair_s is not None
            p_spare = spare_available_probability(rate.hardware_per_s,
                                                  options.spare_servers, options.repair_s)
        else:
            p_spare = 0.0
        assert options.requeue_s is not None
        wait = p_spare * options.swap_s + (1.0 - p_spare) * options.requeue_s
    hardware_share = rate.hardware_per_s / unplanned if unplanned > 0 else 0.0
    return options.detection_s + hardware_share * wait + options.init_s + load_s, p_spare
