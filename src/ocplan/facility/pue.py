"""Facility power and PUE derived from the cooling design, not assumed.

Design point: full heat load on a design day (the plant constants are rating-point
figures), so the result is the peak PUE, not an annual average with economiser hours.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocplan.facility._frozen import make
from ocplan.facility.cooling import heat_rejection_W
from ocplan.facility.delivery import chain_loss_W

__all__ = ["PueBreakdown", "derive_pue"]


@dataclass(frozen=True)
class PueBreakdown:
    """Facility power by consumer, W, and the PUE it implies."""

    it_W: float
    """Power into the IT equipment (server supplies and switches)."""
    chain_loss_W: float
    """UPS and distribution loss."""
    pump_W: float
    """Rack-loop (CDU) pumps."""
    crah_fan_W: float
    """Room-unit fans carrying the air-side heat."""
    liquid_rejection_W: float
    """Plant rejecting the liquid loop's heat (dry cooler, tower or chiller)."""
    air_rejection_W: float
    """Chiller behind the room units."""
    cooling_W: float
    facility_W: float
    pue: float
    dominant: str
    """The largest overhead: ``chain``, ``pumps``, ``fans``, ``liquid-plant`` or
    ``air-plant``."""


def derive_pue(it_W: float, liquid_W: float, air_W: float, chain_efficiency: float,
               pump_W: float, crah_W_per_W: float, liquid_cop: float,
               air_cop: float) -> PueBreakdown:
    """Facility power of an IT load whose heat splits into ``liquid_W`` and ``air_W``.

    ``P_fac = P_it + P_chain + P_pump + P_crah + Q_liq' / COP_liq + Q_air' / COP_air``
    with the chain loss ``P_chain = P_it (1/eta - 1)``, the heat the plants see
    ``Q_liq' = Q_liq + P_pump`` (pump work ends up in the loop) and
    ``Q_air' = (Q_air + P_chain) / (1 - k)`` (the chain loss and the room fans' own
    power ``P_crah = k Q_air'`` are air-side heat), and ``PUE = P_fac / P_it``. Lighting
    and offices are left out (The Green Grid counts them; they are small next to AI
    loads).
    """
    assert it_W > 0.0
    assert 0.0 <= crah_W_per_W < 1.0
    chain = chain_loss_W(it_W, chain_efficiency)
    q_air = (air_W + chain) / (1.0 - crah_W_per_W)
    crah = crah_W_per_W * q_air
    liquid_plant = heat_rejection_W(liquid_W + pump_W, liquid_cop)
    air_plant = heat_rejection_W(q_air, air_cop)
    cooling = pump_W + crah + liquid_plant + air_plant
    facility = it_W + chain + cooling
    parts = {"chain": chain, "pumps": pump_W, "fans": crah, "liquid-plant": liquid_plant,
             "air-plant": air_plant}
    dominant = max(parts, key=parts.__getitem__)
    return make(PueBreakdown, it_W, chain, pump_W, crah, liquid_plant, air_plant, cooling,
                facility, facility / it_W, dominant)
