"""Where the heat goes and how much coolant carries it: the heat split of a server and the
first law for the rack loop.

Symbols: Q heat flow (W), m_dot mass flow (kg/s), V_dot volume flow (m^3/s), c_p isobaric
specific heat (J/(kg K)), rho density (kg/m^3), dT return minus supply temperature (K).
"""

from __future__ import annotations

__all__ = [
    "L_PER_MIN_PER_M3_PER_S",
    "delta_T_for_flow_ratio_K",
    "heat_to_liquid_W",
    "mass_flow_kg_per_s",
    "volume_flow_m3_per_s",
]

#: Litres per minute in one m^3/s: 1000 L/m^3 x 60 s/min.
L_PER_MIN_PER_M3_PER_S = 60_000.0
#: Watts in a kilowatt (flow ratios are quoted per kW).
W_PER_KW = 1_000.0


def heat_to_liquid_W(captured_W: float, capture_ratio: float) -> float:
    """Heat the liquid carries: ``Q_liq = r * P``, ``P`` the power the ratio is a share of.

    Parameters
    ----------
    captured_W
        ``P``, W: the cold-plated parts (accelerators and CPUs) for a cold-plate ratio;
        everything else in the server (fans, drives, NICs, memory, supply losses) and the
        uncaptured share ``1 - r`` leave as air-side heat. For a rack-scale system whose
        maker publishes the rack's liquid/air split (capture scope ``server``), the whole
        server's wall power.
    capture_ratio
        ``r``, 0..1: share of ``P`` that reaches the liquid.

    Examples
    --------
    >>> heat_to_liquid_W(10_000.0, 0.8)
    8000.0
    """
    assert 0.0 <= capture_ratio <= 1.0
    assert captured_W >= 0.0
    return capture_ratio * captured_W


def mass_flow_kg_per_s(heat_W: float, specific_heat_J_per_kgK: float,
                       delta_T_K: float) -> float:
    """Coolant mass flow that carries ``heat_W`` at a temperature rise ``delta_T_K``.

    First law for a steady, single-phase stream: ``Q = m_dot * c_p * dT``, so
    ``m_dot = Q / (c_p * dT)``. Assumes constant c_p over the rise (a few tenths of a
    per cent for water or PG25 across 10 K).

    Examples
    --------
    100 kW carried by water (c_p = 4179 J/(kg K)) with a 10 K rise:

    >>> round(mass_flow_kg_per_s(100e3, 4179.0, 10.0), 3)
    2.393
    """
    assert specific_heat_J_per_kgK > 0.0
    assert delta_T_K > 0.0
    return heat_W / (specific_heat_J_per_kgK * delta_T_K)


def volume_flow_m3_per_s(mass_flow: float, density_kg_per_m3: float) -> float:
    """Volume flow of a mass flow: ``V_dot = m_dot / rho``, m^3/s."""
    assert density_kg_per_m3 > 0.0
    return mass_flow / density_kg_per_m3


def delta_T_for_flow_ratio_K(L_per_min_per_kW: float, density_kg_per_m3: float,
                             specific_heat_J_per_kgK: float) -> float:
    """Temperature rise that a design flow ratio implies: ``dT = Q / (rho * V_dot * c_p)``
    with ``V_dot / Q = (L/min per kW) / (60,000 L/min per m^3/s x 1000 W/kW)``.

    Examples
    --------
    The OCP/Meta rack design flow of 1.5 L/min per kW of PG25 (1022.5 kg/m^3,
    3920 J/(kg K)) means a rise of about 10 K:

    >>> round(delta_T_for_flow_ratio_K(1.5, 1022.5, 3920.0), 2)
    9.98
    """
    assert L_per_min_per_kW > 0.0
    v_dot_per_W = L_per_min_per_kW / (L_PER_MIN_PER_M3_PER_S * W_PER_KW)
    return 1.0 / (density_kg_per_m3 * v_dot_per_W * specific_heat_J_per_kgK)
