"""Cooling equipment: CDU capacity and count, pumps, CRAH fans and heat rejection.

Each function is one formula; the constants it needs come from the sourced tables in
``ocplan/facility/data/`` (:mod:`ocplan.facility.data`).
"""

from __future__ import annotations

import math

__all__ = [
    "PA_PER_PSI",
    "cdu_count",
    "cdu_usable_capacity_W",
    "crah_fan_W",
    "heat_rejection_W",
    "pump_power_W",
]

#: Pascal in one pound-force per square inch (NIST SP 811, B.8: 6.894757 kPa).
PA_PER_PSI = 6_894.757


def cdu_usable_capacity_W(rated_W: float, rated_approach_K: float | None,
                          approach_K: float | None) -> float:
    """Heat a CDU moves at approach ``approach_K``, from its rating at ``rated_approach_K``.

    In a counter-flow plate exchanger with equal capacity rates on both sides the
    temperature difference is the same along the plates, so the log-mean temperature
    difference equals the approach and ``Q = U A * approach``: at fixed flows the
    capacity scales linearly with the approach. It is capped at the rating (the pumps and
    the exchanger area were sized for it): ``Q = Q_rated * min(1, ATD / ATD_rated)``.
    Without both approaches the rating is returned unchanged.

    Examples
    --------
    CoolIT CHx2000, 2000 kW at 5 K, run at a 2.5 K approach:

    >>> cdu_usable_capacity_W(2.0e6, 5.0, 2.5)
    1000000.0
    """
    if rated_approach_K is None or approach_K is None:
        return rated_W
    return rated_W * min(1.0, approach_K / rated_approach_K)


def cdu_count(liquid_W: float, usable_W: float, redundancy: str) -> int:
    """CDUs for a liquid heat load: ``ceil(Q_liq / Q_usable)``, plus one for N+1.

    No load needs no CDU, redundant or not.

    Examples
    --------
    >>> cdu_count(2.5e6, 2.3e6, "N+1")
    3
    """
    assert usable_W > 0.0
    if liquid_W <= 0.0:
        return 0
    need = math.ceil(liquid_W / usable_W - 1e-9)
    return need + (1 if redundancy == "N+1" else 0)


def pump_power_W(volume_flow_m3_per_s: float, head_Pa: float,
                 wire_to_water_efficiency: float) -> float:
    """Electric power of the pumps: hydraulic power over wire-to-water efficiency,
    ``P = dp * V_dot / eta_ww`` (eta_ww = pump x motor x drive efficiency)."""
    assert 0.0 < wire_to_water_efficiency <= 1.0
    return head_Pa * volume_flow_m3_per_s / wire_to_water_efficiency


def crah_fan_W(air_heat_W: float, airflow_cfm_per_W: float, fan_W_per_cfm: float) -> float:
    """Fan power of the room units that carry the air-side heat:
    ``P = Q_air * (airflow per W) * (fan W per cfm)``. The airflow the room units move is at
    least what the IT fans push through the servers."""
    return air_heat_W * airflow_cfm_per_W * fan_W_per_cfm


def heat_rejection_W(heat_W: float, cop: float) -> float:
    """Electric power to reject heat to the outside: ``P = Q / COP`` (chiller compressor
    and condenser fans, or the fans of a dry cooler or a tower)."""
    assert cop > 0.0
    return heat_W / cop
