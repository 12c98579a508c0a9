"""The cluster around a training estimate: its facility (racks, cooling, power delivery,
derived PUE) and its goodput under failures and checkpoints.

A step time says how fast a job runs while nothing breaks. At thousands of accelerators
the run is interrupted every few hours, and the room decides power and cooling; this
module puts the two models next to the estimate without changing it:

- :func:`ocplan.facility.facility_plan` for the whole system as built;
- :func:`ocplan.reliability.goodput` for the chips the job uses, with the checkpoint the
  model's weights and optimizer state make and the storage tier of the system file.

Goodput needs tokens to train (the ideal time) and a ``storage`` block in the system file
(no storage bandwidth is invented); without either it is ``None`` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ocplan.catalog.system import System
from ocplan.facility import FacilityPlan, facility_plan
from ocplan.plan.estimate import Estimate
from ocplan.reliability import (
    Goodput,
    GoodputOptions,
    checkpoint_bytes,
    counts_for_chips,
    goodput,
)
from ocplan.workloads.workload import Workload

__all__ = ["ClusterOutlook", "cluster_outlook", "job_facility_W"]


@dataclass(frozen=True)
class ClusterOutlook:
    """Facility of the system and goodput of the job on it."""

    facility: FacilityPlan
    goodput: Goodput | None
    goodput_reason: str | None
    """Why there is no goodput (no tokens to train, no storage, the layout cannot run)."""
    job_facility_W: float
    """Facility power of the job's share of the system (its chips), W."""

    def as_json(self) -> dict[str, Any]:
        f = self.facility
        facility = {
            "racks": f.rack.racks, "rows": f.rack.rows, "floor_area_m2": f.rack.floor_area_m2,
            "servers_per_rack": f.rack.servers_per_rack,
            "racks_per_server": f.rack.racks_per_server,
            "chips_per_rack": f.rack.chips_per_rack, "rack_W": f.rack.wall_W,
            "rack_air_W": f.rack.air_W, "rack_air_limit_W": f.rack.air_limit_W,
            "busbar": f.rack.busbar, "busbar_current_A": f.rack.busbar_current_A,
            "busbar_margin": f.rack.busbar_margin,
            "liquid_W": f.liquid_W, "air_W": f.air_W, "cdus": f.cooling.cdus,
            "cdu": f.cooling.cdu, "coolant": f.cooling.coolant,
            "water_class": f.cooling.water_class,
            "coolant_flow_L_per_min": f.cooling.flow_L_per_min,
            "coolant_delta_T_K": f.cooling.delta_T_K, "it_W": f.it_W,
            "facility_W": f.facility_W, "pue": f.pue, "pue_derived": f.pue_derived,
            "pue_given": f.pue_given, "power_flow": [list(e) for e in f.power_flow],
            "findings": [x.as_dict() for x in f.findings], "notes": list(f.notes)}
        out: dict[str, Any] = {"facility": facility, "goodput_reason": self.goodput_reason,
                               "job_facility_W": self.job_facility_W}
        g = self.goodput
        out["goodput"] = None if g is None else {
            "goodput": g.goodput, "fractions": g.fractions(), "dominant_loss": g.dominant_loss,
            "interval_s": g.interval_s, "expected_failures": g.expected_failures,
            "mtbf_s": g.mtbf_s, "restart_per_failure_s": g.restart_per_failure_s,
            "checkpoint_mode": g.checkpoint.mode,
            "checkpoint_blocking_s": g.checkpoint.blocking_s,
            "checkpoint_load_s": g.checkpoint.load_s,
            "wall_s": g.wall_s, "wall_p10_s": g.wall_p10_s, "wall_p90_s": g.wall_p90_s,
            "energy_J": g.energy_J, "cost": g.cost, "cost_p10": g.cost_p10,
            "cost_p90": g.cost_p90, "rate_set": g.rate_set, "reason": g.reason,
            "notes": list(g.notes)}
        return out


def job_facility_W(system: System, chips: int) -> float:
    """Facility power of a job's share of ``system`` (its ``chips``), W: the facility
    plan's power (IT with supply losses, distribution and cooling; its PUE derived unless
    the system file gives one) times the job's share of the chips. Every energy figure
    (to train, with failures, in a comparison) uses this one power."""
    return facility_plan(system).facility_W * chips / system.num_chips


def cluster_outlook(result: Estimate, workload: Workload, system: System,
                    train_tokens: float | None = None,
                    price_per_chip_hour: float | None = None,
                    options: GoodputOptions | None = None) -> ClusterOutlook:
    """The facility of ``system`` and the goodput of the estimated job on it.

    Energy in the goodput is the job's share of the facility power (derived PUE unless
    the system file gives one) over the expected wall time with failures.
    """
    facility = facility_plan(system)
    job_W = job_facility_W(system, result.chips)
    reason: str | None = None
    found: Goodput | None = None
    if train_tokens is None:
        reason = "give the tokens to train for goodput and time to train with failures"
    elif not result.feasible:
        reason = "the layout cannot run"
    elif system.spec.storage is None:
        reason = ("no checkpoint storage is named (a system file's storage: kind, "
                  "write_bandwidth, read_bandwidth; a chip id's default system has none); "
                  "goodput needs its bandwidth")
    else:
        opts = replace(options or GoodputOptions(), power_W=job_W,
                       price_per_chip_hour=price_per_chip_hour)
        found = goodput(result.time_to_train_s(train_tokens),
                        counts_for_chips(system, result.chips),
                        checkpoint_bytes(workload.model.total_params), system.spec.storage,
                        opts)
    return ClusterOutlook(facility, found, reason, job_W)
