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
import numbers
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "BANDWIDTH",
    "BITRATE",
    "BYTES",
    "COUNT_FORMS",
    "DEFAULT_CURRENCY",
    "DIMENSIONS",
    "FLOPS",
    "FREQUENCY",
    "LENGTH",
    "POWER",
    "TIME",
    "VOLTAGE",
    "Dimension",
    "UnitError",
    "dimension_of",
    "format_duration",
    "format_energy",
    "format_money",
    "format_number",
    "format_quantity",
    "is_whole",
    "parse_count",
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
#: Seconds in a day: deadlines of training runs are given in days.
SECONDS_PER_DAY = 86400.0
TIME = Dimension("time", "s", (("s", 1.0), ("min", 60.0), ("h", 3600.0),
                               ("d", SECONDS_PER_DAY), ("day", SECONDS_PER_DAY),
                               ("days", SECONDS_PER_DAY)),
                 allow_small=True)
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


def dimension_of(si_unit: str | None) -> Dimension | None:
    """The dimension whose SI unit is ``si_unit`` (``s``: time), or None (a plain number
    or a unit ocplan does not read, ``requests/s``)."""
    return next((d for d in DIMENSIONS.values() if d.si_unit == si_unit), None)

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


def is_whole(value: object) -> bool:
    """Whether ``value`` is a whole number (numpy's too), not a bool (a Python bool is an
    int) nor text: what a count of chips, tokens or sequences must be."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


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


#: Suffixes of large counts as people write them for tokens and parameters ("15T tokens",
#: "300B"): thousand, million, billion (B, or SI's G), trillion, quadrillion.
COUNT_SUFFIXES: dict[str, float] = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9,
                                    "G": 1e9, "T": 1e12, "P": 1e15}
#: The forms a count takes, in words (the error line and the API schema say the same).
COUNT_FORMS = "a number, optionally with K, M, B or T (e.g. '15T', '3e11')"
_COUNT_TAKES = f"expected a count: {COUNT_FORMS}"
#: The noun a count may end with ("300B tokens").
_COUNT_NOUNS = ("tokens", "token")


def parse_count(text: object) -> float:
    """A count of tokens as people write it: ``"15T"``, ``"300B tokens"``, ``"3e11"``,
    ``"1.5 M"`` (:data:`COUNT_SUFFIXES`); a :class:`UnitError` saying what is taken
    otherwise."""
    match = _QUANTITY.match(str(text))
    if match is None:
        raise UnitError(_COUNT_TAKES)
    suffix = match.group(2) or ""
    noun = next((n for n in _COUNT_NOUNS if suffix.endswith(n)), "")
    suffix = suffix.removesuffix(noun).rstrip()
    if suffix not in COUNT_SUFFIXES:
        raise UnitError(_COUNT_TAKES)
    value = float(match.group(1)) * COUNT_SUFFIXES[suffix]
    if not math.isfinite(value):
        raise UnitError(f"not a finite number: {_COUNT_TAKES}")
    return value


def or_listed(items: Sequence[str]) -> str:
    """Choices in words: ``a``, ``a or b``, ``a, b or c``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


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


#: Significant digits of a bare number for people (a rate, a likely range's ends): the
#: workbench's ``fmtNum`` prints the same, so a range reads alike in a table and a note.
NUMBER_DIGITS = 4
#: Whole numbers below this print whole, as the workbench's ``fmtNum`` does.
WHOLE_BELOW = 1e15


def format_number(value: float, digits: int = NUMBER_DIGITS) -> str:
    """``value`` to ``digits`` significant digits, thousands separated, no trailing zeros;
    a whole number whole (the workbench's ``fmtNum`` rule).

    >>> format_number(11846.3)
    '11,850'
    >>> format_number(0.512345)
    '0.5123'
    >>> format_number(11846.0)
    '11,846'
    """
    if not math.isfinite(value):
        return f"{value:g}"
    if value.is_integer() and abs(value) < WHOLE_BELOW:
        return f"{int(value):,}"
    rounded = _rounded(value, digits)
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(rounded))))
    text = f"{rounded:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


#: Joules in one watt-hour (1 W for 3600 s).
J_PER_WH = 3600.0
#: Significant digits of a printed energy or amount of money: "12.3 MWh", "$456 k".
SIGNIFICANT_DIGITS = 3
#: Energy units of :func:`format_energy` in joules, largest first (Wh only below 1 kWh).
ENERGY_STEPS: tuple[tuple[float, str], ...] = (
    (1e12 * J_PER_WH, "TWh"), (1e9 * J_PER_WH, "GWh"), (1e6 * J_PER_WH, "MWh"),
    (1e3 * J_PER_WH, "kWh"), (J_PER_WH, "Wh"))
#: Multiples of :func:`format_money`, largest first (short scale; "bn" and "tn" rather
#: than "B" and "T", which the same tables use for bytes and tera).
MONEY_STEPS: tuple[tuple[float, str], ...] = ((1e12, "tn"), (1e9, "bn"), (1e6, "M"),
                                             (1e3, "k"))
#: Label of prices and costs when nothing names a currency (CLI, web server, workload
#: mixes, reports alike).
DEFAULT_CURRENCY = "USD"
#: Currency labels printed as a symbol before the amount; any other label follows it.
CURRENCY_SYMBOLS: dict[str, str] = {"USD": "$", "EUR": "\u20ac", "GBP": "\u00a3"}
#: Amounts of money of at least this much (in the currency) print with cents; smaller
#: ones (a cost per million tokens) with two significant digits.
CENTS_FROM = 0.1


def _rounded(value: float, digits: int) -> float:
    """``value`` rounded to ``digits`` significant digits (0 stays 0)."""
    return float(f"{value:.{digits}g}")


def _fixed(value: float, digits: int) -> str:
    """An already rounded ``value`` in fixed notation showing ``digits`` significant
    digits, trailing zeros kept: 1.00, 12.3, 456; thousands separated (1,234)."""
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:,.{decimals}f}"


def _scaled(value: float, steps: tuple[tuple[float, str], ...], digits: int
            ) -> tuple[str, str]:
    """``value`` as (number, suffix) in the largest step whose number, once rounded to
    ``digits`` significant digits, is at least 1 (so 999.6 kWh reads 1.00 MWh, not
    1000 kWh); below the smallest step, in the smallest."""
    for scale, suffix in steps:
        number = _rounded(value / scale, digits)
        if abs(number) >= 1:
            return _fixed(number, digits), suffix
    scale, suffix = steps[-1]
    return _fixed(_rounded(value / scale, digits), digits), suffix


#: Seconds of a (Julian) year, for durations of training runs that take years.
SECONDS_PER_YEAR = 365.25 * SECONDS_PER_DAY


def format_duration(seconds: float) -> str:
    """A duration in the largest sensible unit (years, days, hours, minutes or seconds).

    >>> format_duration(90 * 86400)
    '90.0 days'
    >>> format_duration(3 * 365.25 * 86400)
    '3.0 years (1,096 days)'
    >>> format_duration(0.0021)
    '2.1 ms'
    """
    if seconds >= 2 * SECONDS_PER_YEAR:
        return f"{seconds / SECONDS_PER_YEAR:,.1f} years ({seconds / SECONDS_PER_DAY:,.0f} days)"
    for unit, size in (("days", SECONDS_PER_DAY), ("h", 3600.0), ("min", 60.0)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.1f} {unit}"
    return format_quantity(seconds, "s")


def format_energy(energy_J: float, digits: int = SIGNIFICANT_DIGITS) -> str:
    """An energy for people, in Wh, kWh, MWh, GWh or TWh with one to three digits
    before the point (``digits`` significant in all); JSON keeps joules.

    Parameters
    ----------
    energy_J
        Energy, J (1 Wh = 3600 J).
    digits
        Significant digits shown.

    >>> format_energy(999 * 3.6e6)
    '999 kWh'
    >>> format_energy(1000 * 3.6e6)
    '1.00 MWh'
    >>> format_energy(4.43e13)
    '12.3 GWh'
    """
    if not math.isfinite(energy_J):
        return f"{energy_J:g} J"
    if energy_J == 0:
        return "0 Wh"
    number, unit = _scaled(energy_J, ENERGY_STEPS, digits)
    return f"{number} {unit}"


def _amount(amount: float) -> str:
    """An amount below one thousand: cents from :data:`CENTS_FROM`, else two significant
    digits (0.052)."""
    if amount == 0 or abs(amount) >= CENTS_FROM:
        return f"{amount:,.2f}"
    decimals = 1 - math.floor(math.log10(abs(amount)))
    return f"{amount:.{decimals}f}"


def format_money(amount: float, currency: str = DEFAULT_CURRENCY,
                 digits: int = SIGNIFICANT_DIGITS) -> str:
    """An amount of money for people: cents below one thousand, else ``digits``
    significant digits with k, M, bn or tn; USD, EUR and GBP as a symbol in front, any
    other currency label after. JSON keeps the plain number.

    Parameters
    ----------
    amount
        The amount, in ``currency``.
    currency
        The currency label (``--currency``), e.g. USD or CHF.
    digits
        Significant digits shown from one thousand on.

    >>> format_money(12_345_678)
    '$12.3 M'
    >>> format_money(456_000)
    '$456 k'
    >>> format_money(78.9)
    '$78.90'
    >>> format_money(2_500, "CHF")
    '2.50 k CHF'
    """
    if not math.isfinite(amount):
        return f"{amount:g} {currency}"
    sign = "-" if amount < 0 else ""
    magnitude = abs(amount)
    if round(magnitude, 2) < MONEY_STEPS[-1][0]:
        number = _amount(magnitude)
    else:
        value, suffix = _scaled(magnitude, MONEY_STEPS, digits)
        number = f"{value} {suffix}"
    symbol = CURRENCY_SYMBOLS.get(currency)
    if symbol is not None:
        return f"{sign}{symbol}{number}"
    return f"{sign}{number} {currency}"
