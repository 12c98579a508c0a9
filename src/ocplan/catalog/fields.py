"""Typed, bounded field types shared by every spec schema.

A quantity field accepts only a string with a unit (``"80 GB"``) and stores an SI float.
Bounds are physical sanity limits: they reject typos (``"80 TB"`` of HBM on one chip)
without judging designs; design limits are compliance rules, not schema bounds.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ocplan import units
from ocplan.units import Dimension

__all__ = [
    "Bandwidth",
    "BitRate",
    "Bytes",
    "Count",
    "FlopRate",
    "Frequency",
    "Id",
    "Length",
    "Power",
    "Spec",
    "Time",
    "Voltage",
    "quantity",
]


class Spec(BaseModel):
    """Base of every spec model: unknown fields are errors and values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def quantity(dim: Dimension) -> BeforeValidator:
    """A pydantic validator that parses a unit string of dimension ``dim`` to an SI float."""

    def parse(value: Any) -> float:
        return units.parse_quantity(value, dim)

    return BeforeValidator(parse)


# Bounds: gt/le in SI units. They are generous envelopes around every part that exists.
Bytes = Annotated[float, quantity(units.BYTES), Field(gt=0, le=1e15)]
Bandwidth = Annotated[float, quantity(units.BANDWIDTH), Field(gt=0, le=1e15)]
BitRate = Annotated[float, quantity(units.BITRATE), Field(gt=0, le=1e13)]
FlopRate = Annotated[float, quantity(units.FLOPS), Field(gt=0, le=1e18)]
Power = Annotated[float, quantity(units.POWER), Field(gt=0, le=1e7)]
Voltage = Annotated[float, quantity(units.VOLTAGE), Field(gt=0, le=1000)]
Time = Annotated[float, quantity(units.TIME), Field(ge=0, le=1e9)]
Frequency = Annotated[float, quantity(units.FREQUENCY), Field(gt=0, le=1e11)]
Length = Annotated[float, quantity(units.LENGTH), Field(gt=0, le=100)]
Count = Annotated[int, Field(ge=1, le=1_000_000, strict=True)]
Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._+-]*$", min_length=2, max_length=64)]
