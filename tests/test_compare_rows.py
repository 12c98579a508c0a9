"""The rows of a side-by-side comparison are declared once (ocplan.reports.summary's
COMPARE_ROWS and SERVING_COMPARE_ROWS) and every surface shows them: the ``ocplan
compare`` and ``ocplan infer --search --vs`` tables, their HTML reports and the
workbench (whose answers carry them as ``rows``: tests/test_browser.py,
tests/test_serving_compare.py, tests/test_s9_qa2_web.py).

Before, each surface spelled its own rows: the CLI printed "tok/s/chip", "HBM free",
"energy (facility)", "out tok/s/chip" and no accelerator, servers, bound or calibration
row; the report "output tokens/s per chip"; the workbench "output tok/s per chip" and
"HBM left free, %".
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest

from clikit import run_wide
from ocplan.reports.summary import COMPARE_ROWS, SERVING_COMPARE_ROWS, CompareRow

COMPARE = ["compare", "b200", "mi355x", "--model", "llama3-8b", "--chips", "8",
           "--global-batch", "64", "--seq-len", "4096", "--train-tokens", "1e12",
           "--price", "3,2.5"]
SERVING = ["infer", "--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "8",
           "--search", "--vs", "mi300x"]
#: A rich table's cell separator.
BAR = "\u2502"


def _shown(rows: tuple[CompareRow, ...], answer: dict[str, Any]) -> list[str]:
    """The labels of the declared rows some compared system of ``answer`` has a value
    for, in the declared order."""
    systems = answer["systems"]
    for row in rows:  # every declared field is one the answer names
        assert all(row.field in s for s in systems), row.field
    return [row.label for row in rows if any(s[row.field] is not None for s in systems)]


def _table_labels(out: str) -> list[str]:
    """The first cell of each row of the rich table in ``out`` (a wrapped row's further
    lines have none)."""
    cells = [line.split(BAR)[1].strip() for line in out.splitlines() if line.startswith(BAR)]
    return [c for c in cells if c]


def _report_labels(page: Path) -> list[str]:
    """The row labels of a report's comparison table."""
    text = page.read_text(encoding="utf-8")
    return [html.unescape(label) for label in re.findall(r"<tr><th>([^<]*)</th><td", text)]


@pytest.mark.parametrize(("argv", "rows"), [(COMPARE, COMPARE_ROWS),
                                            (SERVING, SERVING_COMPARE_ROWS)],
                         ids=["compare", "infer-vs"])
def test_the_table_and_the_report_show_the_declared_rows(
        tmp_path: Path, argv: list[str], rows: tuple[CompareRow, ...]) -> None:
    page = tmp_path / "report.html"
    answer = json.loads(run_wide(*argv, "--format", "json", "--report", page))
    expected = _shown(rows, answer)
    assert _table_labels(run_wide(*argv)) == expected
    assert _report_labels(page) == expected


def test_the_declarations_read_as_the_tests_quote_them() -> None:
    training = {row.field: row.label for row in COMPARE_ROWS}
    serving = {row.field: row.label for row in SERVING_COMPARE_ROWS}
    assert len(training) == len(COMPARE_ROWS)
    assert len(serving) == len(SERVING_COMPARE_ROWS)
    assert training["tokens_per_s_per_chip"] == "tokens/s per chip"
    assert training["likely_tokens_per_s_per_chip"] == "likely measured tokens/s per chip"
    assert training["time_to_train_s"] == "time to train"
    assert training["energy_to_train_J"] == "energy to train (facility)"
    assert serving["output_tokens_per_s_per_chip"] == "output tokens/s per chip"
    assert serving["likely_output_tokens_per_s_per_chip"] == \
        "likely measured output tokens/s per chip"
