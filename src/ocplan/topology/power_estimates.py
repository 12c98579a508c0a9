"""Power of a NIC or switch system that publishes none, estimated from those that do.

The catalog gives a vendor's *typical* power (passive copper cables, pluggable optics not
included; each entry's notes say so) for some NICs and scale-out switch systems. For the
others :func:`ocplan.topology.power.power_budget` counts an estimate instead of 0 W, by one
ratio law per class of part::

    P = r x C

``C`` is the part's bandwidth per direction in B/s: for a NIC its ports times the port
rate, for a switch system its switching capacity, radix times the fabric's link rate.
``r`` (W per B/s) is the median of ``P_i / C_i`` over the built-in catalog entries of the
same class whose power figure is covered by a source; with two entries the median is their
mean. Pairs with the same power and capacity (one switch box described by two fabric
entries, e.g. ``roce-400g`` and ``roce-800g``) count once, so a box is not weighted twice.

The law is deliberately simple and coarse. Power is not proportional to bandwidth (PCIe,
control processors, fans and conversion losses are fixed costs; DPUs add Arm cores), so an
estimate is a placeholder flagged as such, not a datasheet value. Its leave-one-out errors on
the sourced entries are checked in ``tests/test_power_estimates.py``.

Only the built-in catalog (``ocplan/catalog/data``) feeds the constants: entries from user
folders carry no provenance the law could rely on, but they are estimated by it.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.schema import Entry, Fabric, Nic
from ocplan.units import BITS_PER_BYTE

__all__ = [
    "LeaveOneOut",
    "PartKind",
    "PowerEstimate",
    "PowerLaw",
    "PowerSample",
    "builtin_nic_law",
    "builtin_switch_law",
    "estimate_nic",
    "estimate_switch",
    "fit_ratio_law",
    "leave_one_out",
    "nic_capacity_Bps",
    "nic_samples",
    "switch_capacity_Bps",
    "switch_samples",
]

PartKind = Literal["nic", "switch"]

#: Bits per second in one Gb/s and one Tb/s: the units the law is quoted in for people.
_GBPS = 1e9
_TBPS = 1e12


@dataclass(frozen=True)
class PowerSample:
    """One catalog entry with a sourced power: its id, power (W) and capacity (B/s)."""

    entry_id: str
    power_W: float
    capacity_Bps: float

    @property
    def W_per_Bps(self) -> float:
        """Power per unit of bandwidth, W per (B/s)."""
        return self.power_W / self.capacity_Bps


@dataclass(frozen=True)
class PowerLaw:
    """``P = W_per_Bps x C`` for one class of part, fitted on the entries in ``basis``."""

    kind: PartKind
    W_per_Bps: float
    basis: tuple[str, ...]
    """Ids of the catalog entries (NIC ids, fabric ids) the constant is the median of."""

    def power_W(self, capacity_Bps: float) -> float:
        """Estimated power of a part with ``capacity_Bps`` per direction, W."""
        assert capacity_Bps > 0, capacity_Bps
        return self.W_per_Bps * capacity_Bps

    def describe(self) -> str:
        """The law in human units, e.g. ``"23.8 W per Tb/s of switching capacity ..."``."""
        if self.kind == "nic":
            rate = f"{self.W_per_Bps * _GBPS / BITS_PER_BYTE:.3g} W per Gb/s of port bandwidth"
        else:
            rate = (f"{self.W_per_Bps * _TBPS / BITS_PER_BYTE:.3g} W per Tb/s of switching "
                    "capacity (radix x link rate)")
        return f"{rate}, median of {', '.join(self.basis)}"


@dataclass(frozen=True)
class PowerEstimate:
    """An estimated power for a part without a published figure."""

    part: str
    """The part as power budgets name it: ``"nic <id>"`` or ``"switch <name>"``."""
    power_W: float
    capacity_Bps: float
    law: PowerLaw


@dataclass(frozen=True)
class LeaveOneOut:
    """A sourced entry predicted by the law fitted on the other entries of its class."""

    entry_id: str
    published_W: float
    estimated_W: float

    @property
    def error(self) -> float:
        """Relative error of the estimate, ``estimated / published - 1``."""
        return self.estimated_W / self.published_W - 1.0


def nic_capacity_Bps(nic: Nic) -> float:
    """Line rate of all of a NIC's ports, per direction: ``ports x port_bandwidth``, B/s."""
    return nic.ports * nic.port_bandwidth


def switch_capacity_Bps(fabric: Fabric) -> float:
    """Switching capacity of a fabric's switch, per direction: ``radix x link_bandwidth``, B/s.

    The radix counts ports at the fabric's link rate, so a box split into more, slower
    ports (128 x 400G instead of 64 x 800G) keeps its capacity.
    """
    return fabric.switch.radix * fabric.link_bandwidth


def _sourced(entry: Entry, field: str) -> bool:
    return any("*" in s.covers or field in s.covers for s in entry.sources)


def nic_samples(nics: Iterable[Nic]) -> tuple[PowerSample, ...]:
    """The NICs whose ``power`` is given and covered by a source, as law samples."""
    return _unique(PowerSample(n.id, n.power, nic_capacity_Bps(n))
                   for n in nics if n.power is not None and _sourced(n, "power"))


def switch_samples(fabrics: Iterable[Fabric]) -> tuple[PowerSample, ...]:
    """The fabrics whose ``switch.power`` is given and covered by a source, as law samples."""
    return _unique(PowerSample(f.id, f.switch.power, switch_capacity_Bps(f))
                   for f in fabrics if f.switch.power is not None and _sourced(f, "switch"))


def _unique(samples: Iterable[PowerSample]) -> tuple[PowerSample, ...]:
    # one box listed twice (same power, same capacity) is one observation
    seen: dict[tuple[float, float], PowerSample] = {}
    for s in sorted(samples, key=lambda s: s.entry_id):
        seen.setdefault((s.power_W, s.capacity_Bps), s)
    return tuple(seen.values())


def fit_ratio_law(kind: PartKind, samples: Sequence[PowerSample]) -> PowerLaw | None:
    """``r = median_i(P_i / C_i)`` over ``samples``; ``None`` when there are none."""
    if not samples:
        return None
    ratio = statistics.median(s.W_per_Bps for s in samples)
    return PowerLaw(kind, ratio, tuple(s.entry_id for s in samples))


def leave_one_out(kind: PartKind, samples: Sequence[PowerSample]) -> tuple[LeaveOneOut, ...]:
    """Each sample predicted by the law fitted on the others (none when fewer than two)."""
    cases = []
    for i, held_out in enumerate(samples):
        law = fit_ratio_law(kind, [s for j, s in enumerate(samples) if j != i])
        if law is not None:
            cases.append(LeaveOneOut(held_out.entry_id, held_out.power_W,
                                     law.power_W(held_out.capacity_Bps)))
    return tuple(cases)


@lru_cache(maxsize=1)
def builtin_nic_law() -> PowerLaw | None:
    """The NIC law fitted on the built-in catalog (computed once per process)."""
    entries = load_catalog(use_env=False).all("nic")
    return fit_ratio_law("nic", nic_samples(e for e in entries if isinstance(e, Nic)))


@lru_cache(maxsize=1)
def builtin_switch_law() -> PowerLaw | None:
    """The switch-system law fitted on the built-in catalog's fabrics (computed once)."""
    entries = load_catalog(use_env=False).all("fabric")
    return fit_ratio_law("switch", switch_samples(e for e in entries if isinstance(e, Fabric)))


def estimate_nic(nic: Nic, law: PowerLaw | None = None) -> PowerEstimate | None:
    """Estimated power of one ``nic`` by ``law`` (default: the built-in NIC law), W."""
    law = law if law is not None else builtin_nic_law()
    if law is None:
        return None
    capacity = nic_capacity_Bps(nic)
    return PowerEstimate(f"nic {nic.id}", law.power_W(capacity), capacity, law)


def estimate_switch(fabric: Fabric, law: PowerLaw | None = None) -> PowerEstimate | None:
    """Estimated power of one switch system of ``fabric`` by ``law`` (default: built-in), W."""
    law = law if law is not None else builtin_switch_law()
    if law is None:
        return None
    capacity = switch_capacity_Bps(fabric)
    return PowerEstimate(f"switch {fabric.switch.name}", law.power_W(capacity), capacity, law)
