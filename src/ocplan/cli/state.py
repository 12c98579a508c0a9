"""The state one ``ocplan`` run shares between its commands: the root options' values and
the output format.
"""

from __future__ import annotations

from enum import StrEnum

from ocplan.units import DEFAULT_CURRENCY


class Format(StrEnum):
    """What a command writes on stdout: tables for people, or one JSON document."""

    table = "table"
    json = "json"


class _State:
    """The root options of this run (``ocplan --catalog ... --currency ...``)."""

    catalog_dirs: tuple[str, ...] = ()
    currency: str = DEFAULT_CURRENCY
    currency_given: bool = False
    """--currency (or OCPLAN_CURRENCY) was given, so a mix file must not say otherwise."""
    json_errors: bool = False
    """The command line asks for JSON on stdout (set per run from the raw arguments, so
    that usage errors, found before any option is parsed, answer in JSON too)."""


state = _State()
