"""Serve one workload on several systems, each at its best serving layout, side by side.

The serving twin of :mod:`ocplan.results.compare`: a buyer's question for inference is
which accelerator serves the model at the latency it needs for the least money or energy
per token. Each system's own layout search (:func:`ocplan.serving.search.search_serving`)
picks its best layout; this module lines the best layouts up, names the leader of each
measure and divides by a baseline row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ocplan.plan.calibration import likely_rate
from ocplan.results.compare import Ranged, leader, reach, reach_note
from ocplan.results.fleet import (
    BASE_OUTAGE_S,
    DeploymentFailures,
    Fleet,
    FleetAvailability,
    failure_rates_name,
    fleet,
)
from ocplan.serving.estimate import ServingEstimate
from ocplan.serving.search import ServingSearch, objective_note
from ocplan.units import format_duration

__all__ = ["SERVING_MEASURES", "ServedInput", "ServedSystem", "ServingComparison",
           "compare_serving"]

#: Measures of a serving comparison and whether larger is better: output rate per chip,
#: the latencies, the SLO-meeting request rate per chip, cost and energy per million
#: output tokens, and the deployment's IT power.
SERVING_MEASURES: dict[str, bool] = {
    "output_tokens_per_s_per_chip": True, "ttft_s": False, "tpot_s": False,
    "slo_rate_per_s_per_chip": True, "cost_per_mtok": False, "energy_per_mtok_J": False,
    "power_W": False, "fleet_replicas": False, "fleet_spares": False, "fleet_chips": False,
    "fleet_power_W": False, "fleet_cost_per_hour": False, "fleet_cost_per_mtok": False}
#: The measures of the fleet a target rate needs (:mod:`ocplan.results.fleet`), each
#: the :class:`~ocplan.results.fleet.Fleet` attribute after its prefix.
FLEET_PREFIX = "fleet_"
#: What a fleet's rows mean, with the target rate and what one deployment sustains.
FLEET_NOTE = ("Fleet: the deployments of each best layout that together serve {rate:,.4g} "
              "requests/s, each taking an equal share of the arrivals {within}; their "
              "chips, IT power and cost per hour, and that cost over the output tokens the "
              "target asks for. Likely deployments: as many as the target needs if each "
              "sustains the high or the low end of what a real one likely would ({likely}).")
#: How a deployment's likely rate is found, by objective.
FLEET_LIKELY = {"goodput": "its SLO goodput with the iteration at either end of its "
                           "family's held-out throughput range",
                "throughput": "the rate it serves over either end of its family's held-out "
                              "throughput range"}
#: What the spares of a fleet are for, with the availability goal and the extra outage of
#: a hardware failure.
FLEET_SPARES_NOTE = ("Spares: the fewest more deployments that keep the target served "
                     "{availability_pct:.6g} % of the time through failures, each deployment "
                     "failing at the rates of {rates} (its chips and hosts; scale-out NICs and "
                     "links when it spans hosts) and out {outage} a failure (detection and "
                     "restart, MegaScale's bounds){repair}; chips, power and cost include "
                     "them.")
FLEET_WITHIN = {"goodput": "within its SLO goodput",
                "throughput": "at the rate one serves under the job's load (offline: the most)"}
#: Measures per output token: taken at the SLO goodput rate when the comparison ranks
#: by goodput (:meth:`ServedSystem.measure`).
PER_TOKEN_MEASURES: tuple[str, ...] = ("cost_per_mtok", "energy_per_mtok_J")
#: What a goodput comparison adds to the search's note.
GOODPUT_COST_NOTE = ("Cost and energy per million output tokens: at the SLO goodput rate "
                     "(the deployment run as fast as its latency limits allow).")


@dataclass(frozen=True)
class ServedSystem:
    """One system's best serving layout (or why it has none)."""

    name: str
    system: str
    """The system's own name (a chip id's default server says which)."""
    chip: str
    chips: int
    best: ServingEstimate | None
    """The best feasible layout by the comparison's objective; None when none fits."""
    reason: str | None
    """Why no layout fits (the first reasons of the search), else None."""
    price_per_chip_hour: float | None
    objective: str = "throughput"
    """What the comparison ranks by: with ``goodput`` the cost and energy per token are
    taken at the SLO goodput rate (:meth:`measure`)."""
    target_rate_per_s: float | None = None
    """The load to plan a fleet for, requests/s (:meth:`fleet`); None: no fleet."""
    availability: FleetAvailability | None = None
    """What the fleet must survive (spares); None: no spares counted."""

    def fleet(self) -> Fleet | None:
        """The replicas of the best layout's deployment that serve the target rate, each
        within what one sustains by the objective: its SLO goodput under ``goodput``,
        under ``throughput`` the rate it serves under the job's load (offline: the most
        it serves); None without a target, a layout that
        runs, or (under goodput) a rate that meets the SLOs."""
        e = self.best
        if e is None or self.target_rate_per_s is None or e.requests_per_s <= 0:
            return None
        per_replica = e.slo_rate_per_s if self.objective == "goodput" else e.requests_per_s
        if per_replica is None or per_replica <= 0:
            return None
        return fleet(e, self.target_rate_per_s, per_replica, self.price_per_chip_hour,
                     self.availability, self._likely_per_replica())

    def _likely_per_replica(self) -> tuple[float, float] | None:
        """(low, high) rate one deployment would likely sustain: its SLO goodput with the
        iteration at either end of its family's held-out range under ``goodput``
        (:attr:`~ocplan.serving.estimate.ServingEstimate.likely_slo_rate_per_s`), the
        rate it serves scaled as its likely throughput under ``throughput``; None where
        that rate is its load's (a rate or a batch it keeps up with: a faster or slower
        iteration does not change it)."""
        e = self.best
        assert e is not None
        if self.objective == "goodput":
            return e.likely_slo_rate_per_s
        if e.held_out_range_pct is None or e.rate_set_by_arrivals:
            return None
        return likely_rate(e.requests_per_s, e.held_out_range_pct)

    def measure(self, key: str) -> float | None:
        """The value of one of :data:`SERVING_MEASURES` (None when absent). Ranked by
        goodput, cost and energy per million output tokens are those of the deployment
        run at its SLO goodput rate (the rate it would be sold at), not at the most load
        it sustains: the same hours and power over fewer tokens, ``x r / r_slo``; None
        when no rate meets the SLOs."""
        e = self.best
        if e is None:
            return None
        if key.startswith(FLEET_PREFIX):
            planned = self.fleet()
            value = None if planned is None else getattr(planned,
                                                         key.removeprefix(FLEET_PREFIX))
            return None if value is None else float(value)
        if key == "slo_rate_per_s_per_chip":
            return None if e.slo_rate_per_s is None else e.slo_rate_per_s / e.chips
        if key == "cost_per_mtok":
            value = None if self.price_per_chip_hour is None \
                else e.cost_per_mtok(self.price_per_chip_hour)
        else:
            value = getattr(e, key)
        if value is None:
            return None
        if key in PER_TOKEN_MEASURES and self.objective == "goodput":
            slo = e.slo_rate_per_s
            if slo is None or slo <= 0 or e.requests_per_s <= 0:
                return None
            return float(value) * e.requests_per_s / slo
        return float(value)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "system": self.system, "chip": self.chip,
                "chips": self.chips, "feasible": self.best is not None,
                "reason": self.reason, "price_per_chip_hour": self.price_per_chip_hour,
                "layout": None if self.best is None else self.best.plan.label(),
                "bound": None if self.best is None else self.best.bound,
                **{k: self.measure(k) for k in SERVING_MEASURES},
                "likely_output_tokens_per_s_per_chip": self._likely(),
                "fleet_likely_replicas": self._likely_replicas(),
                "best": None if self.best is None else self.best.as_dict()}

    def _likely_replicas(self) -> list[int | None] | None:
        planned = self.fleet()
        span = None if planned is None else planned.likely_replicas
        return None if span is None else list(span)

    def _likely(self) -> list[float] | None:
        likely = None if self.best is None else self.best.likely_output_tokens_per_s_per_chip
        return None if likely is None else list(likely)


@dataclass(frozen=True)
class ServingComparison:
    """The rows of a serving comparison, its baseline and the leader of each measure."""

    objective: str
    baseline: str
    systems: tuple[ServedSystem, ...]
    leaders: dict[str, str]
    """Name of the best row for each measure two or more rows have."""
    ratios: dict[str, dict[str, float | None]] = field(default_factory=dict)
    """Row name -> measure -> value divided by the baseline's."""
    target_rate_per_s: float | None = None
    """The load each row's fleet is sized for (requests/s), if any."""
    availability: float | None = None
    """The availability goal the fleets' spares are sized for, if any."""
    repair_s: float = 0.0
    """The extra outage of a hardware failure the spares were sized with."""

    def as_json(self) -> dict[str, Any]:
        return {"objective": self.objective, "baseline": self.baseline,
                "target_rate_per_s": self.target_rate_per_s,
                "availability": self.availability, "repair_s": self.repair_s,
                "systems": [s.as_json() | {"ratios": self.ratios.get(s.name, {})}
                            for s in self.systems],
                "leaders": self.leaders, "note": self.note(),
                "ranking_note": self.ranking_note()}

    def note(self) -> str | None:
        """The sentences the comparison's table needs beside it (None: none)."""
        notes = []
        if (said := objective_note(self.objective)) is not None:
            notes.append(f"{said} {GOODPUT_COST_NOTE}")
        if self.target_rate_per_s is not None:
            notes.append(FLEET_NOTE.format(rate=self.target_rate_per_s,
                                           within=FLEET_WITHIN[self.objective],
                                           likely=FLEET_LIKELY[self.objective]))
            if self.availability is not None:
                repair = ("" if self.repair_s == 0 else
                          f", plus {format_duration(self.repair_s)} for a hardware "
                          "failure's repair or replacement")
                notes.append(FLEET_SPARES_NOTE.format(
                    availability_pct=100 * self.availability, rates=failure_rates_name(),
                    outage=format_duration(BASE_OUTAGE_S), repair=repair))
        return " ".join(notes) or None

    def within_reach(self) -> tuple[str, ...]:
        """Rows whose likely output rate reaches the output-rate leader's
        (:func:`~ocplan.results.compare.within_reach`); empty without a leader."""
        found = self._reach()
        return () if found is None else tuple(r.name for r in found[1])

    def ranking_note(self) -> str | None:
        """Whether the output-rate leader's lead is wider than the model's error
        (:func:`~ocplan.results.compare.reach_note`); None without a leader or ranges."""
        found = self._reach()
        return None if found is None else reach_note(*found, "output tokens/s per chip")

    def _reach(self) -> tuple[Ranged, tuple[Ranged, ...]] | None:
        """The output-rate leader and the rows within its reach; None without a leader."""
        name = self.leaders.get("output_tokens_per_s_per_chip")
        ranged = {s.name: r for s in self.systems if (r := _ranged(s)) is not None}
        lead = ranged.get(name or "")
        return None if lead is None else reach(lead, list(ranged.values()))


def _ranged(row: ServedSystem) -> Ranged | None:
    """A row's output rate as a likely range with the family it comes from."""
    e = row.best
    if e is None:
        return None
    return Ranged(row.name, e.likely_output_tokens_per_s_per_chip, e.range_family)


@dataclass(frozen=True)
class ServedInput:
    """One system of a serving comparison: its row name, system name, chip, chips, its
    layout search (None when the system is refused) and price per chip-hour."""

    name: str
    system: str
    chip: str
    chips: int
    found: ServingSearch | None
    price_per_chip_hour: float | None
    refused: str | None = None
    """Why estimates on the system are refused (a failed compliance check), else None."""
    failures: DeploymentFailures | None = None
    """How often one deployment fails (:func:`~ocplan.results.fleet.deployment_failures`);
    needed for spares."""


def _best(s: ServedInput) -> tuple[ServingEstimate | None, str | None]:
    if s.found is None:
        assert s.refused is not None, s.name
        return None, s.refused
    feasible = [e for e in s.found.results if e.feasible]
    if feasible:
        return feasible[0], None
    reasons = sorted({e.reason or "" for e in s.found.results})
    return None, "no layout fits: " + "; ".join(reasons[:3])


def compare_serving(objective: str, searched: Sequence[ServedInput],
                    baseline: int = 0,
                    target_rate_per_s: float | None = None,
                    availability: float | None = None,
                    repair_s: float = 0.0) -> ServingComparison:
    """Line up each system's best serving layout.

    Parameters
    ----------
    objective
        The objective every search ranked by (``throughput`` or ``goodput``).
    searched
        The systems, in order; names must be distinct.
    baseline
        Index of the row the ratios divide by.
    target_rate_per_s
        A load to size each system's fleet for (requests/s): the ``fleet_`` measures.
    availability, repair_s
        With a target: the share of time each fleet must serve it through failures, and
        the extra outage of a hardware failure (s), which size its spares
        (:func:`~ocplan.results.fleet.spares_needed`); every system needs ``failures``.
    """
    assert availability is None or all(s.failures is not None for s in searched)
    assert searched, "a comparison needs at least one system"
    assert 0 <= baseline < len(searched)
    assert len({s.name for s in searched}) == len(searched), "row names repeat"
    rows = []
    for s in searched:
        best, reason = _best(s)
        survive = (None if availability is None or s.failures is None
                   else FleetAvailability(availability, s.failures, repair_s))
        rows.append(ServedSystem(s.name, s.system, s.chip, s.chips, best, reason,
                                 s.price_per_chip_hour, objective, target_rate_per_s,
                                 survive))
    leaders: dict[str, str] = {}
    for key, larger in SERVING_MEASURES.items():
        scored = [(v, r.name) for r in rows if (v := r.measure(key)) is not None]
        if (name := leader(scored, larger)) is not None:
            leaders[key] = name
    base = rows[baseline]
    ratios = {r.name: {k: (a / b if (a := r.measure(k)) is not None
                           and (b := base.measure(k)) else None)
                       for k in SERVING_MEASURES} for r in rows}
    return ServingComparison(objective, base.name, tuple(rows), leaders, ratios,
                             target_rate_per_s, availability if target_rate_per_s else None,
                             repair_s)
