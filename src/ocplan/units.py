"""Units: the one place where human quantities become SI floats.

Inside ocplan every quantity is a plain ``float`` in SI base units: seconds, bytes,
FLOP, bytes per second, FLOP per second, watts, volts, bits per second for raw
signalling rates. Human strings such as ``"80 GB"``, ``"3.35 TB/s"``, ``"989 TFLOP/s"``,
``"400 Gb/s"`` or ``"700 W"`` are parsed only at the boundary (spec files, CLI flags),
by the functions here.

Decimal and binary prefixes are distinct: ``"1 GB"`` is 1e9 bytes, ``"1 GiB"`` is
2**30 bytes. A lower-case ``b`` means bits, an upper-case ``B`` bytes, so
``"400 Gb/s"`` is 5e10 B/s. A bare number where a unit is required is an error,
because a spec that says ``hbm_capacity: 80`` is ambiguous.

Examples
--------
>>> parse_quantity("80 GiB", BYTES)
85899345920.0
>>> parse_quantity("400 Gb/s", BANDWIDTH)
50000000000.0
>>> parse_quantity("989.4 TFLOP/s", FLOPS)
989400000000000.0
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = [
    "BANDWIDTH",
    "BITRATE",
    "BYTES",
    "DIMENSIONS",
    "FLOPS",
    "FREQUENCY",
    "LENGTH",
    "POWER",
    "TIME",
    "VOLTAGE",
    "Dimension",
    "UnitError",
    "format_quantity",
    "parse_quantity",
]

DECIMAL_PREFIXES: dict[str, float] = {
    "": 1.0,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
}
BINARY_PREFIXES: dict[str, float] = {
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
}
SMALL_PREFIXES: dict[str, float] = {"m": 1e-3, "u": 1e-6, "µ": 1e-6, "n": 1e-9}

BITS_PER_BYTE = 8.0


class UnitError(ValueError):
    """A quantity string that cannot be read in the expected dimension."""


@dataclass(frozen=True)
class Dimension:
    """A physical dimension with the unit symbols (after the prefix) that express it.

    ``symbols`` maps a unit symbol to the factor that turns one of it into the SI
    base unit of the dimension (e.g. ``"b/s": 1/8`` for bandwidth in bytes/s).
    """

    name: str
    si_unit: str
    symbols: tuple[tuple[str, float], ...]
    allow_binary: bool = False
    allow_small: bool = False

    def describe(self) -> str:
        units = ", ".join(sym for sym, _ in self.symbols)
        return f"a number with a unit of {self.name} ({units}; e.g. '{self.example}')"

    @property
    def example(self) -> str:
        return _EXAMPLES[self.name]


BYTES = Dimension("size", "B", (("B", 1.0), ("bytes", 1.0), ("b", 1 / BITS_PER_BYTE)),
                  allow_binary=True)
BANDWIDTH = Dimension(
    "bandwidth",
    "B/s",
    (("B/s", 1.0), ("Bps", 1.0), ("b/s", 1 / BITS_PER_BYTE), ("bps", 1 / BITS_PER_BYTE)),
    allow_binary=True,
)
BITRATE = Dimension("signalling rate", "b/s", (("b/s", 1.0), ("bps", 1.0), ("T/s", 1.0)))
FLOPS = Dimension("compute rate", "FLOP/s",
                  (("FLOP/s", 1.0), ("FLOPS", 1.0), ("OP/s", 1.0), ("OPS", 1.0)))
POWER = Dimension("power", "W", (("W", 1.0),), allow_small=True)
VOLTAGE = Dimension("voltage", "V", (("V", 1.0),), allow_small=True)
TIME = Dimension("time", "s", (("s", 1.0), ("min", 60.0), ("h", 3600.0)), allow_small=True)
FREQUENCY = Dimension("frequency", "Hz", (("Hz", 1.0),))
LENGTH = Dimension("length", "m", (("m", 1.0),), allow_small=True)

_EXAMPLES = {
    "size": "80 GB",
    "bandwidth": "3.35 TB/s",
    "signalling rate": "112 Gb/s",
    "compute rate": "989 TFLOP/s",
    "power": "700 W",
    "voltage": "54 V",
    "time": "2 us",
    "frequency": "2.1 GHz",
    "length": "165 mm",
}

DIMENSIONS: dict[str, Dimension] = {
    d.name: d for d in (BYTES, BANDWIDTH, BITRATE, FLOPS, POWER, VOLTAGE, TIME, FREQUENCY, LENGTH)
}

_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*([^\s\d].*?)?\s*$")


def _prefix_table(dim: Dimension) -> dict[str, float]:
    table = dict(DECIMAL_PREFIXES)
    if dim.allow_binary:
        table.update(BINARY_PREFIXES)
    if dim.allow_small:
        table.update(SMALL_PREFIXES)
    return table


def _unit_factor(unit: str, dim: Dimension) -> float | None:
    prefixes = _prefix_table(dim)
    # Longest symbol first so that "B/s" is not read as prefix "B" + "/s".
    for symbol, factor in sorted(dim.symbols, key=lambda s: -len(s[0])):
        if unit.endswith(symbol):
            prefix = unit[: len(unit) - len(symbol)]
            if prefix in prefixes:
                return prefixes[prefix] * factor
    return None


def parse_quantity(text: object, dim: Dimension) -> float:
    """Parse a human quantity string into an SI float of dimension ``dim``.

    Parameters
    ----------
    text
        A string such as ``"80 GB"``; a bare number is rejected (units are mandatory).
    dim
        The expected dimension (``BYTES``, ``BANDWIDTH``, ``FLOPS``, ...).

    Returns
    -------
    float
        The value in the SI base unit of ``dim`` (bytes, B/s, FLOP/s, W, ...).

    Raises
    ------
    UnitError
        When the string is not a number followed by a unit of ``dim``, or the value is
        not finite.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise UnitError(f"expected {dim.describe()}, got {type(text).__name__}")
    if isinstance(text, (int, float)):
        raise UnitError(f"missing unit: expected {dim.describe()}")
    match = _QUANTITY.match(text)
    if match is None:
        raise UnitError(f"not a quantity: expected {dim.describe()}")
    number, unit = match.group(1), (match.group(2) or "").replace(" ", "")
    if not unit:
        raise UnitError(f"missing unit: expected {dim.describe()}")
    factor = _unit_factor(unit, dim)
    if factor is None:
        raise UnitError(f"unit {unit!r} is not {dim.name}: expected {dim.describe()}")
    value = float(number) * factor
    if not math.isfinite(value):
        raise UnitError(f"not a finite number: expected {dim.describe()}")
    return value


def format_quantity(value: float, si_unit: str, digits: int = 3) -> str:
    """Format an SI float with a decimal prefix, e.g. ``format_quantity(8e10, "B")`` -> ``"80 GB"``.

    >>> format_quantity(3.35e12, "B/s")
    '3.35 TB/s'
    >>> format_quantity(0.0021, "s")
    '2.1 ms'
    """
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {si_unit}"
    steps = [(1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"),
             (1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n")]
    mag = abs(value)
    for scale, prefix in steps:
        if mag >= scale * 0.9995:
            return f"{value / scale:.{digits}g} {prefix}{si_unit}"
    return f"{value:.{digits}g} {si_unit}"
