"""Spec limits the compliance rules test against, each with where it comes from.

Tags follow ``../shared/reference/hardware.md``: [V] read in a primary source, [S] a
secondary source quoting the spec, [D] derived, [I] inferred from shipping products
because the spec text (OAM v1.5 §8.4 tables, OAM/UBB r2.0) was not retrievable.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AIR_GUIDANCE_W", "MIN_POWER_CAP_FRACTION", "MIN_POWER_CAP_SOURCE", "RAIL_LIMITS",
           "RailLimit", "rail_limit"]


@dataclass(frozen=True)
class RailLimit:
    """Highest module TDP on a main rail of an OAM version, and the rail's voltage window."""

    version: str
    rail: str
    min_V: float
    max_V: float
    max_tdp_W: float
    section: str


#: OAM main-rail power limits by spec version.
RAIL_LIMITS: tuple[RailLimit, ...] = (
    # [V] OAM 1.0 (hardwareluxx, OCP Summit 2019 coverage): 12 V up to 350 W, 48 V up to 700 W.
    RailLimit("1.0", "12V", 11.0, 13.2, 350.0, "OAM v1.0 §power (12 V: 350 W)"),
    RailLimit("1.0", "48V", 40.0, 59.5, 700.0, "OAM v1.0 §power (48 V: 700 W)"),
    # [I] OAM 1.1 is a revision of 1.0 with the same power envelope.
    RailLimit("1.1", "12V", 11.0, 13.2, 350.0, "OAM v1.1 §power (as v1.0)"),
    RailLimit("1.1", "48V", 40.0, 59.5, 700.0, "OAM v1.1 §power (as v1.0)"),
    # [S] OAM 1.5: P48V window 44-59.5 V, 12 V only auxiliary (~50 W). [I] TDP ceiling
    # 1000 W from products on OAM 1.5-era UBBs (MI325X 1000 W).
    RailLimit("1.5", "48V", 44.0, 59.5, 1000.0, "OAM v1.5 §8 (P48V 44-59.5 V; §8.4 TDP)"),
    # [I] OAM 2.0: Gaudi 3 HL-325L 1200 W liquid, MI355X 1400 W liquid.
    RailLimit("2.0", "48V", 44.0, 59.5, 1400.0, "OAM r2.0 power profiles (from products)"),
)

#: Air-cooling guidance for a module when neither the chassis nor the module gives one:
#: [V] OAM 1.0 guidance, air up to about 440 W (hardwareluxx 2019). Later versions rely on
#: the chassis rating (the MX1 air-cools 450 W; Gaudi 3 air-cools 900 W).
AIR_GUIDANCE_W: dict[str, float] = {"1.0": 440.0, "1.1": 440.0}


#: Lowest power cap, as a share of the module's TDP, a vendor's management interface lets
#: an operator set: [V] NVIDIA DGX B200 User Guide, "Managing Power Capping": a B200's
#: ``PowerLimitWatts`` reads ``AllowableMin`` 200 W of ``AllowableMax`` 1000 W (0.20; the
#: H100's is 200 W of 700 W, 0.29). The smallest such ratio found: no per-chip floor is
#: catalogued, so a cap below this share of any module's TDP is one no vendor is known to
#: accept (and a clock it could not hold).
MIN_POWER_CAP_FRACTION = 0.2
#: Where :data:`MIN_POWER_CAP_FRACTION` comes from (``Finding.section``).
MIN_POWER_CAP_SOURCE = ("NVIDIA DGX B200 User Guide, Managing Power Capping (GPU power "
                        "limit AllowableMin 200 W of AllowableMax 1000 W; "
                        "docs.nvidia.com/dgx/dgxb200-user-guide/power-capping.html)")


def rail_limit(version: str, rail_V: float) -> RailLimit | None:
    """The limit for a module of OAM ``version`` fed at ``rail_V`` volts.

    Returns the limit of the rail class whose window holds ``rail_V``, or ``None`` when
    no rail of that version accepts the voltage (itself a finding).
    """
    for limit in RAIL_LIMITS:
        if limit.version == version and limit.min_V <= rail_V <= limit.max_V:
            return limit
    return None
