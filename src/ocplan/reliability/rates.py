"""Failure-rate data: the schema of ``data/failure_rates.yaml`` and its per-second table.

A :class:`RateSet` is one published observation turned into rates per component-day,
each with the counts it was derived from and its source (the catalog's
:class:`~ocplan.catalog.schema.Source`). :func:`rate_table` folds a set into a
:class:`RateTable`: failures per second per component, by kind, in the order of
:data:`COMPONENTS`, so that the goodput model multiplies five counts by five rates
without looking anything up.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from ocplan.catalog.fields import Id, Spec
from ocplan.catalog.loader import load_yaml, validate_as
from ocplan.catalog.schema import Source
from ocplan.errors import SpecError

__all__ = [
    "COMPONENTS",
    "RATES_FILE",
    "SECONDS_PER_DAY",
    "ComponentKind",
    "FailureKind",
    "FailureRate",
    "FailureRatesFile",
    "RateSet",
    "RateTable",
    "default_table",
    "load_rates",
    "rate_set",
    "rate_table",
]

#: The built-in rate file.
RATES_FILE = Path(__file__).parent / "data" / "failure_rates.yaml"
#: Seconds in a day: rates are stored per component-day and used per second.
SECONDS_PER_DAY = 86_400.0

ComponentKind = Literal["accelerator", "server", "nic", "switch", "cable"]
#: The components a rate can be charged to, in the order of :class:`RateTable`'s tuples.
COMPONENTS: tuple[ComponentKind, ...] = ("accelerator", "server", "nic", "switch", "cable")
FailureKind = Literal["hardware", "software", "planned"]
"""``hardware``: the failed server leaves the job and is replaced; ``software``: the job
restarts on the same servers; ``planned``: scheduled maintenance, drained with a final
checkpoint."""

#: Largest plausible rate, failures per component-day: one a day per component is far
#: beyond any fleet (the published rates are 1e-5 to 1e-2); more is a unit error.
MAX_RATE_PER_COMPONENT_DAY = 1.0
#: Relative tolerance between a stored rate and events / component_days (six digits kept).
_RATE_MATCH_REL = 1e-5


class FailureRate(Spec):
    """One root-cause category, charged per component of one kind."""

    id: Id
    name: Annotated[str, Field(min_length=2, max_length=120)]
    component: ComponentKind
    kind: FailureKind
    rate_per_component_day: Annotated[float, Field(strict=True, ge=0,
                                                   le=MAX_RATE_PER_COMPONENT_DAY)]
    events: Annotated[int, Field(strict=True, ge=0)] | None = None
    """Interruptions observed (when the source gives a count)."""
    component_days: Annotated[float, Field(gt=0)] | None = None
    """Exposure the count was observed over: components x days."""
    derivation: Annotated[str, Field(min_length=10, max_length=1000)]
    """How the number follows from the source, with the counts."""

    @model_validator(mode="after")
    def _rate_matches_counts(self) -> FailureRate:
        if (self.events is None) != (self.component_days is None):
            raise ValueError("give both events and component_days, or neither")
        if self.events is not None and self.component_days is not None:
            derived = self.events / self.component_days
            if not math.isclose(derived, self.rate_per_component_day,
                                rel_tol=_RATE_MATCH_REL, abs_tol=1e-15):
                raise ValueError(f"rate_per_component_day {self.rate_per_component_day:.6e} "
                                 f"is not events / component_days = {derived:.6e}")
        return self


class RateSet(Spec):
    """Rates from one observation of one fleet."""

    id: Id
    name: Annotated[str, Field(min_length=2, max_length=160)]
    hardware: Annotated[str, Field(min_length=2, max_length=200)]
    sources: Annotated[tuple[Source, ...], Field(min_length=1)]
    notes: Annotated[str, Field(max_length=2000)] | None = None
    rates: Annotated[tuple[FailureRate, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _ids_unique_and_sourced(self) -> RateSet:
        ids = [r.id for r in self.rates]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"rate ids repeated: {', '.join(dup)}")
        covered = {c for s in self.sources for c in s.covers}
        missing = [i for i in ids if i not in covered and "*" not in covered]
        if missing:
            raise ValueError(f"rates backed by no source: {', '.join(missing)}")
        return self


class FailureRatesFile(Spec):
    """The whole rate file: its sets and the one used when none is named."""

    default: Id
    sets: Annotated[tuple[RateSet, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _default_exists(self) -> FailureRatesFile:
        ids = [s.id for s in self.sets]
        if len(set(ids)) != len(ids):
            raise ValueError("rate set ids must be unique")
        if self.default not in ids:
            raise ValueError(f"default '{self.default}' is not one of {', '.join(ids)}")
        return self


@dataclass(frozen=True)
class RateTable:
    """Failures per second per component, by kind, in the order of :data:`COMPONENTS`.

    ``replacing`` is the part of ``hardware`` after which the failed server leaves the job
    (every hardware rate today; kept apart so that a set may add repairable-in-place
    hardware later).
    """

    set_id: str
    hardware_per_s: tuple[float, float, float, float, float]
    software_per_s: tuple[float, float, float, float, float]
    planned_per_s: tuple[float, float, float, float, float]

    def scaled(self, factor: float) -> RateTable:
        """Every rate times ``factor`` (what-if studies and property tests)."""
        assert factor >= 0
        assert math.isfinite(factor)

        def mul(v: tuple[float, float, float, float, float]
                ) -> tuple[float, float, float, float, float]:
            return (v[0] * factor, v[1] * factor, v[2] * factor, v[3] * factor,
                    v[4] * factor)

        return RateTable(f"{self.set_id} x {factor:g}", mul(self.hardware_per_s),
                         mul(self.software_per_s), mul(self.planned_per_s))


def rate_table(rates: RateSet) -> RateTable:
    """Fold a rate set into per-second rates per component kind (rate / 86,400 s)."""
    sums: dict[FailureKind, list[float]] = {k: [0.0] * len(COMPONENTS)
                                            for k in ("hardware", "software", "planned")}
    for r in rates.rates:
        sums[r.kind][COMPONENTS.index(r.component)] += r.rate_per_component_day / SECONDS_PER_DAY

    def five(v: list[float]) -> tuple[float, float, float, float, float]:
        return (v[0], v[1], v[2], v[3], v[4])

    return RateTable(rates.id, five(sums["hardware"]), five(sums["software"]),
                     five(sums["planned"]))


@functools.cache
def load_rates(path: Path = RATES_FILE) -> FailureRatesFile:
    """Read and validate a rate file (cached: the built-in one is read once).

    Raises
    ------
    SpecError
        When the file is missing, malformed or fails the schema.
    """
    return validate_as(FailureRatesFile, load_yaml(path), str(path))


def rate_set(set_id: str | None = None, path: Path = RATES_FILE) -> RateSet:
    """The rate set ``set_id`` of the file (its default when ``None``).

    Raises
    ------
    SpecError
        When no set has that id.
    """
    data = load_rates(path)
    wanted = set_id or data.default
    for s in data.sets:
        if s.id == wanted:
            return s
    raise SpecError.one(str(path), "sets", f"no rate set '{wanted}'; known: "
                        + ", ".join(s.id for s in data.sets), wanted)


@functools.cache
def default_table(set_id: str | None = None) -> RateTable:
    """The built-in set's :class:`RateTable`, computed once per id."""
    return rate_table(rate_set(set_id))
