"""Units: decimal vs binary prefixes, bits vs bytes, mandatory units."""

import pytest

from ocplan.units import (
    BANDWIDTH,
    BITRATE,
    BYTES,
    FLOPS,
    POWER,
    TIME,
    UnitError,
    format_quantity,
    parse_quantity,
)


@pytest.mark.parametrize(
    ("text", "dim", "expected"),
    [
        ("80 GB", BYTES, 80e9),
        ("80 GiB", BYTES, 80 * 2**30),
        ("141GB", BYTES, 141e9),
        ("50 MB", BYTES, 50e6),
        ("3.35 TB/s", BANDWIDTH, 3.35e12),
        ("400 Gb/s", BANDWIDTH, 50e9),
        ("400 Gbps", BANDWIDTH, 50e9),
        ("1 GiB/s", BANDWIDTH, 2**30),
        ("112 Gb/s", BITRATE, 112e9),
        ("989.4 TFLOP/s", FLOPS, 989.4e12),
        ("1979 TOP/s", FLOPS, 1979e12),
        ("2 PFLOPS", FLOPS, 2e15),
        ("700 W", POWER, 700.0),
        ("1.2 kW", POWER, 1200.0),
        ("2 us", TIME, 2e-6),
        ("1.5e3 W", POWER, 1500.0),
    ],
)
def test_parse_quantity(text: str, dim: object, expected: float) -> None:
    assert parse_quantity(text, dim) == pytest.approx(expected, rel=1e-12)  # type: ignore[arg-type]


def test_decimal_and_binary_prefixes_differ() -> None:
    assert parse_quantity("1 GiB", BYTES) / parse_quantity("1 GB", BYTES) == pytest.approx(
        1.073741824)


@pytest.mark.parametrize(
    ("text", "dim", "fragment"),
    [
        (80, BYTES, "missing unit"),
        ("80", BYTES, "missing unit"),
        ("80 GB/s", BYTES, "not size"),
        ("eighty GB", BYTES, "not a quantity"),
        ("700 V", POWER, "not power"),
        ("3 GiW", POWER, "not power"),
        ([1, 2], BYTES, "expected"),
        (True, BYTES, "expected"),
        ("1e999 W", POWER, "finite"),
    ],
)
def test_parse_quantity_rejects(text: object, dim: object, fragment: str) -> None:
    with pytest.raises(UnitError, match=fragment):
        parse_quantity(text, dim)  # type: ignore[arg-type]


def test_format_quantity() -> None:
    assert format_quantity(3.35e12, "B/s") == "3.35 TB/s"
    assert format_quantity(0.0021, "s") == "2.1 ms"
    assert format_quantity(700.0, "W") == "700 W"
