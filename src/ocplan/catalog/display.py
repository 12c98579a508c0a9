"""Catalog entries for people: every quantity with its unit and SI prefix.

Entries hold SI floats (``1.835e15`` FLOP/s, ``1.28e11`` bytes); a person reads
``1.84 PFLOP/s`` and ``128 GB``. :func:`human_fields` walks an entry's pydantic fields,
finds each quantity's dimension on its validator (:func:`~ocplan.catalog.fields.
dimension_of`) and prints it with :func:`~ocplan.units.format_quantity`; nested blocks
become dotted keys; counts and years print as plain integers.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel

from ocplan.catalog.fields import dimension_of
from ocplan.units import Dimension, format_quantity

__all__ = ["human_fields"]

#: Significant digits of a displayed quantity.
DIGITS = 4


def _dimension(annotation: Any, metadata: list[Any]) -> Dimension | None:
    """The dimension of a field or of the values of a dict/list field."""
    found = dimension_of(metadata)
    if found is not None:
        return found
    for arg in typing.get_args(annotation):
        found = dimension_of(getattr(arg, "__metadata__", ()))
        if found is None and typing.get_args(arg):
            found = _dimension(arg, [])
        if found is not None:
            return found
    return None


#: Words for the size of a large count without a unit (a parameter count), largest first.
COUNT_WORDS = ((1e12, "trillion"), (1e9, "billion"), (1e6, "million"))


def _count(value: float) -> str:
    """A unitless number as a person reads it: ``27.0 billion`` for ``2.7e10``, plain
    digits below a million."""
    for scale, word in COUNT_WORDS:
        if abs(value) >= scale:
            return f"{value / scale:.{DIGITS}g} {word}"
    return f"{value:.{DIGITS}g}"


def _text(value: Any, dim: Dimension | None) -> str:
    if isinstance(value, bool) or value is None:
        return str(value).lower() if isinstance(value, bool) else "-"
    if isinstance(value, float) and dim is not None:
        return format_quantity(value, dim.si_unit, DIGITS)
    if isinstance(value, float):
        return _count(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_text(v, dim)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "; ".join(_text(v, dim) for v in value)
    if isinstance(value, BaseModel):
        return ", ".join(f"{k}: {v}" for k, v in human_fields(value).items())
    return str(value)


def human_fields(entry: BaseModel, prefix: str = "", skip: tuple[str, ...] = ()
                 ) -> dict[str, str]:
    """``{dotted field: text with unit}`` of every field of ``entry`` that is set."""
    out: dict[str, str] = {}
    for name, info in type(entry).model_fields.items():
        value = getattr(entry, name)
        if name in skip or value is None:
            continue
        key = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            out |= human_fields(value, key + ".")
            continue
        out[key] = _text(value, _dimension(info.annotation, list(info.metadata)))
    return out
