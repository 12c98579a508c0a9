"""How often a training cluster is interrupted: component counts times component rates.

A synchronous job stops when any of its parts fails, so its parts are in series and
their failure rates add (the series-system rule; e.g. Kokolis et al. 2024, arXiv
2410.21680, model job MTTF as inverse to the node count):

    lambda = sum_i rate_i x count_i           MTBF = 1 / lambda

Failures are taken as a Poisson process at that constant rate (the same assumption
Young 1974 and Daly 2006 build their checkpoint intervals on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ocplan.errors import Problem, SpecError
from ocplan.reliability.rates import COMPONENTS, RateTable
from ocplan.topology.cluster import hosts_for_chips

if TYPE_CHECKING:
    from ocplan.catalog.system import System

__all__ = [
    "ClusterFailureRate",
    "ComponentCounts",
    "cluster_failure_rate",
    "counts_for_chips",
    "counts_from_system",
    "poisson_quantile",
]

#: Most components of one kind: far beyond any cluster (a million-GPU job has a few
#: million links); more is a typo.
MAX_COMPONENTS = 100_000_000


@dataclass(frozen=True)
class ComponentCounts:
    """The parts of a job whose failure stops it.

    Attributes
    ----------
    accelerators
        Accelerator modules (GPU, OAM, TPU chip) in the job; software rates are charged
        per accelerator too (one rank each).
    servers
        Host nodes (a rack-scale server such as NVL72 has one per compute tray).
    nics
        Scale-out NICs.
    switches
        Scale-out switches; 0 when the rate set folds switches into the per-link rate.
    cables
        Scale-out links counted at the NIC side (one per NIC port).
    """

    accelerators: int
    servers: int
    nics: int = 0
    switches: int = 0
    cables: int = 0

    def __post_init__(self) -> None:
        problems = [Problem("argument", f"counts.{name}", f"must be an integer from 0 to "
                            f"{MAX_COMPONENTS:,}", value)
                    for name, value in self._items()
                    if isinstance(value, bool) or not isinstance(value, int)
                    or not 0 <= value <= MAX_COMPONENTS]
        if not problems and self.servers < 1:
            problems.append(Problem("argument", "counts.servers", "a job needs at least one "
                                    "server", self.servers))
        if problems:
            raise SpecError(problems)

    def _items(self) -> tuple[tuple[str, int], ...]:
        return (("accelerators", self.accelerators), ("servers", self.servers),
                ("nics", self.nics), ("switches", self.switches), ("cables", self.cables))

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        """The counts in the order of :data:`~ocplan.reliability.rates.COMPONENTS`."""
        return (self.accelerators, self.servers, self.nics, self.switches, self.cables)


assert tuple(name for name, _ in ComponentCounts(1, 1)._items()) == (
    "accelerators", "servers", "nics", "switches", "cables")
assert COMPONENTS == ("accelerator", "server", "nic", "switch", "cable")


@dataclass(frozen=True)
class ClusterFailureRate:
    """Interruptions per second of a job, by kind, and the part that dominates.

    Attributes
    ----------
    hardware_per_s, software_per_s
        Unplanned interruptions per second; ``hardware`` ones take a server out.
    planned_per_s
        Scheduled maintenance interruptions per second.
    by_component_per_s
        Unplanned rate charged to each component kind (order of ``COMPONENTS``).
    dominant
        The component kind with the largest unplanned rate.
    """

    hardware_per_s: float
    software_per_s: float
    planned_per_s: float
    by_component_per_s: tuple[float, float, float, float, float]
    dominant: str

    @property
    def unplanned_per_s(self) -> float:
        return self.hardware_per_s + self.software_per_s

    @property
    def unplanned_per_hour(self) -> float:
        return self.unplanned_per_s * 3600.0

    @property
    def mtbf_s(self) -> float | None:
        """Mean time between unplanned interruptions, 1 / lambda; ``None`` when the rate
        is zero (no failure ever)."""
        rate = self.unplanned_per_s
        return 1.0 / rate if rate > 0 else None


def cluster_failure_rate(counts: ComponentCounts, rates: RateTable) -> ClusterFailureRate:
    """Interruption rate of a job: lambda = sum_i rate_i x count_i (series system).

    Parameters
    ----------
    counts
        The job's components.
    rates
        Failures per second per component (:func:`~ocplan.reliability.rates.rate_table`).

    Returns
    -------
    ClusterFailureRate
        Rates per second by kind; ``mtbf_s`` is its inverse.

    Examples
    --------
    >>> from ocplan.reliability.rates import default_table
    >>> r = cluster_failure_rate(ComponentCounts(16384, 2048, 16384, 0, 16384),
    ...                          default_table("llama3-405b-h100"))
    >>> round(r.unplanned_per_s * 54 * 86400)
    419
    """
    n = counts.as_tuple()
    hw, sw, pl = rates.hardware_per_s, rates.software_per_s, rates.planned_per_s
    by = (n[0] * (hw[0] + sw[0]), n[1] * (hw[1] + sw[1]), n[2] * (hw[2] + sw[2]),
          n[3] * (hw[3] + sw[3]), n[4] * (hw[4] + sw[4]))
    hardware = n[0] * hw[0] + n[1] * hw[1] + n[2] * hw[2] + n[3] * hw[3] + n[4] * hw[4]
    software = n[0] * sw[0] + n[1] * sw[1] + n[2] * sw[2] + n[3] * sw[3] + n[4] * sw[4]
    planned = n[0] * pl[0] + n[1] * pl[1] + n[2] * pl[2] + n[3] * pl[3] + n[4] * pl[4]
    dominant = COMPONENTS[max(range(len(by)), key=by.__getitem__)]
    return ClusterFailureRate(hardware, software, planned, by, dominant)


def counts_from_system(system: System) -> ComponentCounts:
    """The components of a resolved system: its chips, host nodes, scale-out NICs and one
    NIC-side link per NIC port. Switches are left at 0: the built-in rate sets charge
    network failures per link (see ``failure_rates.yaml``)."""
    return counts_for_chips(system, system.num_chips)


def counts_for_chips(system: System, chips: int) -> ComponentCounts:
    """The components a job on ``chips`` chips of ``system`` depends on: its chips, the
    host nodes holding them (of a multi-host server it fills in part, a TPU pod slice,
    only the hosts its chips attach to: :func:`~ocplan.topology.cluster.hosts_for_chips`),
    their scale-out NICs (a server's NICs spread evenly over its hosts) and one link per
    NIC port (switches are charged per link by the built-in rate sets)."""
    hosts = hosts_for_chips(system, chips)
    nics = round(system.nics_per_server * hosts / system.server.hosts)
    ports = system.nic.ports if system.nic is not None else 1
    return ComponentCounts(accelerators=chips, servers=hosts, nics=nics, switches=0,
                           cables=nics * ports)


#: Standard normal quantile at 0.9 (so -z is the 0.1 quantile): Phi^-1(0.9).
Z_P90 = 1.2815515655446004
#: Below this mean the Poisson quantile is found by summing its pmf exactly; above it
#: the Cornish-Fisher expansion is used (error well under one event there).
_POISSON_EXACT_MAX_MEAN = 50.0


def poisson_quantile(mean: float, q: float) -> float:
    """The ``q`` quantile (0.1 or 0.9) of a Poisson count of mean ``mean``.

    Exact (smallest k with CDF(k) >= q) for small means; above
    ``_POISSON_EXACT_MAX_MEAN`` the Cornish-Fisher expansion
    ``k = mean + z sqrt(mean) + (z^2 - 1) / 6`` (skewness 1/sqrt(mean)), with ``z`` the
    standard normal quantile, as a real number.
    """
    assert q in (0.1, 0.9), "only the p10/p90 spread is supported"
    assert mean >= 0
    assert math.isfinite(mean)
    if mean == 0:
        return 0.0
    if mean > _POISSON_EXACT_MAX_MEAN:
        z = Z_P90 if q == 0.9 else -Z_P90
        return max(0.0, mean + z * math.sqrt(mean) + (z * z - 1.0) / 6.0)
    term = math.exp(-mean)
    cdf = term
    k = 0
    while cdf < q:
        k += 1
        term *= mean / k
        cdf += term
    return float(k)
