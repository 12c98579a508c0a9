"""Units: decimal vs binary prefixes, bits vs bytes, mandatory units."""

import json

import pytest

from clikit import one_line, run
from ocplan.units import (
    BANDWIDTH,
    BITRATE,
    BYTES,
    FLOPS,
    POWER,
    TIME,
    UnitError,
    format_number,
    format_quantity,
    parse_count,
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


@pytest.mark.parametrize(("text", "expected"), [
    ("15T", 15e12), ("300B", 300e9), ("300B tokens", 300e9), ("3e11", 3e11), ("1.5 M", 1.5e6),
    ("2k", 2e3), ("2K tokens", 2e3), ("7G", 7e9), ("42", 42.0), (" 1 token ", 1.0)])
def test_parse_count(text: str, expected: float) -> None:
    assert parse_count(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["15X", "15t", "T", "", "15 TB", "1e400T", "nan", "15TT"])
def test_parse_count_rejects(text: str) -> None:
    with pytest.raises(UnitError, match="expected a count"):
        parse_count(text)


def test_cli_train_tokens_take_counts(capsys: pytest.CaptureFixture[str]) -> None:
    """--train-tokens 15T is 15e12 tokens (the same time to train); a bad count is one
    line naming the flag, exit 2."""
    job = ("estimate", "--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "8",
           "--format", "json")
    rc, out, _ = run(capsys, *job, "--train-tokens", "15T")
    assert rc == 0
    by_suffix = json.loads(out)["time_to_train_s"]
    rc, out, _ = run(capsys, *job, "--train-tokens", "15e12")
    assert rc == 0
    assert json.loads(out)["time_to_train_s"] == by_suffix
    line = one_line(*run(capsys, "estimate", "--model", "llama3-8b", "--chip",
                         "h100-sxm-80gb", "--train-tokens", "15X"))
    assert line.startswith("--train-tokens: train_tokens = '15X': expected a count")


@pytest.mark.parametrize(("value", "text"), [
    (11846.3, "11,850"), (9634.2, "9,634"), (0.512345, "0.5123"), (123.96, "124"),
    (11846.0, "11,846"), (2.0, "2"), (1.5e-3, "0.0015"), (0.0, "0"), (-2345.67, "-2,346"),
    (99996.0, "99,996"), (99996.5, "100,000"),
])
def test_format_number_is_the_workbench_rule(value: float, text: str) -> None:
    """Four significant digits, thousands separated, trailing zeros dropped, whole numbers
    whole: what the workbench's fmtNum prints (toLocaleString, maximumSignificantDigits
    4), so a range reads alike in a web table and in the server's sentence about it."""
    assert format_number(value) == text
