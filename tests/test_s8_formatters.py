"""Energy and money printed one way (session 8, item 4).

:func:`ocplan.units.format_energy` picks Wh, kWh, MWh, GWh or TWh so that one to three
digits stand before the point, with three significant digits; :func:`format_money`
prints cents below one thousand and three significant digits with k, M, bn, tn above.
Every table and report prints energy and money through them; JSON keeps SI numbers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ocplan.cli.main import main
from ocplan.units import format_energy, format_money

#: One watt-hour, J: 1 W for 3600 s.
WH = 3600.0
KWH = 1e3 * WH
MWH = 1e6 * WH
JOB = ["--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "8",
       "--train-tokens", "1e11", "--price", "2.5"]


@pytest.mark.parametrize(("energy_J", "text"), [
    (999 * KWH, "999 kWh"),
    (1000 * KWH, "1.00 MWh"),
    (999.4 * KWH, "999 kWh"),        # rounds down, stays in kWh
    (999.6 * KWH, "1.00 MWh"),       # would round to 1000 kWh: the next unit instead
    (1.0e6 * 3600.0, "1.00 MWh"),    # 1 MW for one hour
    (12.345 * MWH, "12.3 MWh"),
    (456.0 * 1e9 * WH, "456 GWh"),
    (2.5 * WH, "2.50 Wh"),
    (0.5 * WH, "0.500 Wh"),          # below the smallest unit: still three digits
    (5e3 * 1e12 * WH, "5,000 TWh"),  # beyond the largest: grouped digits
    (0.0, "0 Wh"),
])
def test_format_energy(energy_J: float, text: str) -> None:
    assert format_energy(energy_J) == text


def test_energy_keeps_one_to_three_digits_before_the_point() -> None:
    for exponent in range(4, 17):
        for mantissa in (1.0, 2.2, 4.99, 9.994, 9.996):
            number = format_energy(mantissa * 10.0**exponent).split()[0]
            whole = number.split(".")[0]
            assert 1 <= len(whole) <= 3, (mantissa, exponent, number)
            assert len(number.replace(".", "")) == 3, (mantissa, exponent, number)


@pytest.mark.parametrize(("amount", "currency", "text"), [
    (12_345_678, "USD", "$12.3 M"),
    (456_000, "USD", "$456 k"),
    (78.9, "USD", "$78.90"),
    (999.99, "USD", "$999.99"),
    (999.996, "USD", "$1.00 k"),      # cents round to 1,000.00: the next multiple
    (999_499, "USD", "$999 k"),
    (999_500, "USD", "$1.00 M"),
    (1.5e9, "EUR", "\u20ac1.50 bn"),
    (3e13, "GBP", "\u00a330.0 tn"),
    (2_500, "CHF", "2.50 k CHF"),     # other labels follow the amount
    (0.0523, "USD", "$0.052"),        # under a dime: two significant digits
    (0.5, "USD", "$0.50"),
    (0, "USD", "$0.00"),
    (-5, "USD", "-$5.00"),
])
def test_format_money(amount: float, currency: str, text: str) -> None:
    assert format_money(amount, currency) == text


def test_non_finite_values_say_so() -> None:
    assert format_energy(float("inf")) == "inf J"
    assert format_money(float("nan"), "USD") == "nan USD"


def _table_value(out: str, label: str) -> str:
    """The value cell of the row ``label`` of a rich table printed as text."""
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("\u2502")]
        if len(cells) > 2 and cells[1] == label:
            return cells[2]
    raise AssertionError(f"no row {label!r} in:\n{out}")


def test_estimate_table_prints_the_json_figures_formatted(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", *JOB, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert main(["estimate", *JOB]) == 0
    out = capsys.readouterr().out
    energy = _table_value(out, "energy to train (facility)")
    cost = _table_value(out, "cost to train")
    assert energy == format_energy(data["energy_to_train_J"])
    assert cost == format_money(data["cost_to_train"], "USD")
    assert re.fullmatch(r"\d{1,3}(\.\d+)? (Wh|kWh|MWh|GWh|TWh)", energy)
    assert re.fullmatch(r"\$\d{1,3}(\.\d+)?( k| M| bn| tn)?", cost)
    # JSON keeps SI numbers: joules and a plain amount
    assert isinstance(data["energy_to_train_J"], float)
    assert isinstance(data["cost_to_train"], float)


def test_report_page_prints_them_the_same_way(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    page = tmp_path / "r.json"
    assert main(["--currency", "CHF", "report", *JOB, "--out", str(page),
                 "--format", "json"]) == 0
    to_train = json.loads(page.read_text(encoding="utf-8"))["to_train"]
    html_page = tmp_path / "r.html"
    assert main(["--currency", "CHF", "report", *JOB, "--out", str(html_page)]) == 0
    capsys.readouterr()
    text = html_page.read_text(encoding="utf-8")
    energy = format_energy(to_train["energy_to_train_J"])
    assert f"<th>energy to train (facility)</th><td>{energy}</td>" in text
    cost = format_money(to_train["cost_to_train"], "CHF")
    assert f"<th>cost to train</th><td>{cost}</td>" in text
    assert cost.endswith(" CHF")
