"""The columns of the search tables are declared once (ocplan.reports.summary's
SEARCH_COLUMNS and SERVING_SEARCH_COLUMNS) and every surface shows them: the ``ocplan
search`` and ``ocplan infer --search`` tables, the top table of ``ocplan report --search``
and the workbench's Search page (whose answer carries them as ``columns``:
tests/test_browser.py).

Before, each surface spelled its own: the CLI "tok/s/chip", "step", "memory" (the tied
layouts inside the layout's cell) and, serving, "out tok/s/chip", "batch", "SLO goodput
req/s"; the report "tok/s/chip", "step s", "memory GB", "tied", "days to train"; the
workbench a map of its own.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from clikit import run_wide
from ocplan.reports.summary import (
    COMPARE_ROWS,
    LAYOUT_HEADING,
    ONLY_SHARED,
    RANK_HEADING,
    SEARCH_COLUMNS,
    SERVING_COMPARE_ROWS,
    SERVING_SEARCH_COLUMNS,
    CompareRow,
    search_table,
    shared_cells,
)
from ocplan.units import DEFAULT_CURRENCY

JOB = ["--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "8", "--global-batch",
       "64", "--seq-len", "4096"]
#: Jobs whose tables have every declared column (time and cost to train; SLO goodput and
#: cost per million output tokens).
SEARCH = ["search", *JOB, "--train-tokens", "1e12", "--price", "2", "--top", "3"]
SERVING = ["infer", *JOB[:6], "--search", "--slo-tpot", "40ms", "--price", "2"]
#: A rich table's cell separators: its heading row's, its body rows'.
HEAD_BAR, BAR = "\u2503", "\u2502"


def _headings(out: str) -> list[str]:
    """The headings of the rich table in ``out`` (one line on a wide terminal)."""
    line = next(line for line in out.splitlines() if line.startswith(HEAD_BAR))
    return [cell.strip() for cell in line.split(HEAD_BAR)[1:-1]]


def _cells(out: str) -> list[list[str]]:
    """The cells of the rich table's rows in ``out`` (a row a line on a wide terminal)."""
    return [[cell.strip() for cell in line.split(BAR)[1:-1]]
            for line in out.splitlines() if line.startswith(BAR)]


@pytest.mark.parametrize(("argv", "columns", "key"),
                         [(SEARCH, SEARCH_COLUMNS, "top"),
                          (SERVING, SERVING_SEARCH_COLUMNS, "results")],
                         ids=["search", "infer-search"])
def test_the_table_prints_the_declared_columns(argv: list[str],
                                               columns: tuple[CompareRow, ...],
                                               key: str) -> None:
    answer = json.loads(run_wide(*argv, "--format", "json"))
    rows = [r for r in answer[key] if r.get("feasible", True)][:10]  # those the table lists
    headings, cells = search_table(columns, rows, DEFAULT_CURRENCY)
    # every declared column, in order: each a field of the answer's rows (those with
    # failures belong to the failure-aware objectives, tests/test_cluster_outlook.py)
    assert headings == [RANK_HEADING, *(c.label for c in columns
                                        if not c.field.endswith(("with_failures",
                                                                 "with_failures_s")))]
    out = run_wide(*argv)
    assert _headings(out) == headings
    assert _cells(out) == cells  # each cell as the declaration prints it
    if key == "results":  # the serving front's sentence names the rate as the column does
        front = next(line for line in out.splitlines() if line.startswith("throughput-TPOT"))
        assert f"{columns[2].label} at" in front


def test_the_report_shows_the_declared_columns(tmp_path: Path) -> None:
    argv = ["report", *JOB, "--search"]
    page, data = tmp_path / "search.html", tmp_path / "search.json"
    run_wide(*argv, "--out", page)
    run_wide(*argv, "--out", data)
    headings, cells = search_table(SEARCH_COLUMNS, json.loads(data.read_text())["search"]["top"],
                                   DEFAULT_CURRENCY)
    # no tokens to train, no price: no time or cost to train
    assert headings == ["#", "chips", "layout", "tokens/s per chip", "MFU", "step time",
                        "memory per chip", "bound", "tied layouts"]
    table = page.read_text(encoding="utf-8").split("<h2>Top layouts (throughput)</h2>")[1]
    table = table.split("</table>")[0]
    assert [html.unescape(h) for h in re.findall(r"<th>([^<]*)</th>", table)] == headings
    assert [[html.unescape(c) for c in re.findall(r"<td>([^<]*)</td>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", table)[1:]] == cells


def test_a_heading_names_a_measure_as_the_other_tables_do() -> None:
    """A column's heading is the label the comparisons (and the estimate's rows) give the
    same measure; a search row's layout is its own ("layout", not "best layout")."""
    compared: dict[str, str] = {r.field: r.label for r in (*COMPARE_ROWS, *SERVING_COMPARE_ROWS)
                                if r.field != "layout"}
    for columns in (SEARCH_COLUMNS, SERVING_SEARCH_COLUMNS):
        assert len({c.field for c in columns}) == len({c.label for c in columns}) == len(columns)
        for c in columns:
            assert c.label == compared.get(c.field, c.label), c
        assert {c.field: c.label for c in columns}["layout"] == "layout"
    labels = {c.field: c.label for c in SEARCH_COLUMNS}
    assert [labels[f] for f in ("tokens_per_s_per_chip", "step_s", "mfu", "time_to_train_s",
                                "cost_to_train", "bound")] == [
        "tokens/s per chip", "step time", "MFU", "time to train", "cost to train", "bound"]
    serving = {c.field: c.label for c in SERVING_SEARCH_COLUMNS}
    assert serving["batch_per_instance"] == "batch per instance"  # as ocplan infer's row


def test_a_narrow_table_states_what_every_row_shares_once() -> None:
    headings = [RANK_HEADING, "chips", LAYOUT_HEADING, "MFU", "bound"]
    cells = [["1", "64", "tp=2, pp=1, zero=3, recompute=none", "60.2%", "compute"],
             ["2", "64", "tp=1, pp=1, zero=3, recompute=full", "59.9%", "compute"],
             ["3", "64", "tp=4, pp=2, zero=3, recompute=none", "59.4%", "compute"]]
    narrow, rows, shared = shared_cells(headings, cells)
    # the columns that read the same in every row leave the table; the rank stays
    assert narrow == [RANK_HEADING, LAYOUT_HEADING, "MFU"]
    assert shared == [("chips", "64"), (LAYOUT_HEADING, "zero=3"), ("bound", "compute")]
    # a field shared by only some rows (pp=1, recompute=none) stays in their cells
    assert rows == [["1", "tp=2, pp=1, recompute=none", "60.2%"],
                    ["2", "tp=1, pp=1, recompute=full", "59.9%"],
                    ["3", "tp=4, pp=2, recompute=none", "59.4%"]]
    # rows told apart by their chips alone: their layout cells name no field of their own
    twins = [["1", "8", "tp=8", "40%", "compute"], ["2", "16", "tp=8", "41%", "compute"]]
    narrow, rows, shared = shared_cells(headings, twins)
    assert narrow == [RANK_HEADING, "chips", LAYOUT_HEADING, "MFU"]
    assert [r[2] for r in rows] == [ONLY_SHARED, ONLY_SHARED]
    assert shared == [(LAYOUT_HEADING, "tp=8"), ("bound", "compute")]
    # one row: nothing to share
    assert shared_cells(headings, cells[:1]) == (headings, cells[:1], [])


def test_the_search_on_a_narrow_terminal_keeps_every_layout_whole() -> None:
    """At 80 columns the table wrapped each layout over nine lines; now what every row
    shares is stated once and, the table still too wide, each row is a line: its rank,
    its own layout fields, then each column's heading and cell."""
    argv = ["search", "--model", "llama3-70b", "--chip", "h100-sxm-80gb", "--chips", "64",
            "--global-batch", "512", "--seq-len", "8192", "--top", "4"]
    top = json.loads(run_wide(*argv, "--format", "json"))["top"]
    wide = run_wide(*argv)
    assert "in every row:" not in wide  # the whole table fits: nothing is taken out
    out = run_wide(*argv, columns=80)
    assert "\u2026" not in out
    assert HEAD_BAR not in out
    line = next(line for line in out.splitlines() if line.startswith("in every row: "))
    shared = dict(part.split(" ", 1) for part in line.removeprefix("in every row: ")
                  .split("; "))
    assert shared["chips"] == "64"  # the search ran on 64 chips only
    common = shared[LAYOUT_HEADING].split(", ")
    rows = [ln for ln in out.splitlines() if re.match(r"[0-9]+\. ", ln)]
    assert len(rows) == len(top)
    for i, (row, answer) in enumerate(zip(rows, top, strict=True), 1):
        own, _, rest = row.removeprefix(f"{i}. ").partition(": ")
        # a row's own fields and the shared ones make its whole layout
        assert sorted(own.split(", ") + common) == sorted(answer["layout"].split(", "))
        assert not set(own.split(", ")) & set(common)
        assert f"{SEARCH_COLUMNS[2].label} {answer['tokens_per_s_per_chip']:,.1f}" in rest
