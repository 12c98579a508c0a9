"""Consoles and tables of the ``ocplan`` command: sanitized text, styled lines, the tables
and grids every command prints, progress bars.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, cast

from ocplan.cli.state import Format, state
from ocplan.lazy import lazy_module
from ocplan.units import format_quantity

if TYPE_CHECKING:
    import rich.console as rich_console
    import rich.measure as rich_measure
    import rich.table as rich_table
    import rich.text as rich_text
    from rich.progress import Progress

    from ocplan.reports.summary import CompareRow
else:
    # rich draws tables and styled lines (~30 ms to import); JSON output needs none.
    rich_console = lazy_module("rich.console")
    rich_measure = lazy_module("rich.measure")
    rich_table = lazy_module("rich.table")
    rich_text = lazy_module("rich.text")


#: Exit code when standard output's reader closed the pipe (``ocplan ... | head -1``):
#: 128 + SIGPIPE (13), what a shell reports for a program SIGPIPE ended
#: (``yes | head -1``); rich's default, 1, would read as "the answer is no".
EXIT_READER_GONE = 141


def reader_gone() -> NoReturn:
    """Stop quietly with :data:`EXIT_READER_GONE`, standard output pointed at /dev/null
    so that the interpreter's last flush does not fail on the closed pipe as well (the
    Python documentation's remedy, "Note on SIGPIPE")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real descriptor behind stdout: nothing to flush
        pass
    finally:
        os.close(devnull)
    raise SystemExit(EXIT_READER_GONE)


# Markup, emoji codes and highlighting are off: names, ids and paths come from users and
# must print as written, never as styles or links. Our own styling uses Text spans.
#: Columns of tables written to a file or a pipe, where rich would assume 80 and cut ids,
#: layouts and reasons short; ``COLUMNS`` still wins.
PIPE_WIDTH = 160
#: A width no table reaches: what a table is measured against to learn its natural width.
UNBOUNDED_WIDTH = 100_000


class _LazyConsole:
    """A rich Console made on first use (see the rich imports above), as wide as
    :data:`PIPE_WIDTH` when its stream is not a terminal."""

    def __init__(self, **options: bool) -> None:
        self._options: dict[str, Any] = dict(options)
        self._console: rich_console.Console | None = None

    def reset(self) -> None:
        """Forget the console made, so that the next use measures its stream and
        ``COLUMNS`` again: rich fixes a console's width when it is made, and one process
        may run several commands in different environments (``main(argv)`` called by a
        program, or by tests one after another)."""
        self._console = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            options = dict(self._options)
            stream = sys.stderr if options.get("stderr") else sys.stdout
            if not stream.isatty() and not os.environ.get("COLUMNS"):
                options["width"] = PIPE_WIDTH
            self._console = rich_console.Console(**options)
            self._console.on_broken_pipe = reader_gone  # type: ignore[method-assign]
        return getattr(self._console, name)


out = cast("rich_console.Console",
           _LazyConsole(soft_wrap=True, markup=False, emoji=False, highlight=False))
err = cast("rich_console.Console", _LazyConsole(stderr=True, soft_wrap=True, markup=False,
                                                emoji=False, highlight=False))


def reset_consoles() -> None:
    """Make :data:`out` and :data:`err` anew on their next use (:meth:`_LazyConsole.reset`),
    at the start of each command run."""
    for console in (out, err):
        cast(_LazyConsole, console).reset()


def printable(value: object) -> str:
    """``value`` as one line of plain printable text: control characters (escape
    sequences, newlines, bells) are shown as Python escapes instead of being sent to the
    terminal."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def add_row(table: rich_table.Table, *cells: object) -> None:
    """Add a row of sanitized cells (names and ids in cells come from users)."""
    table.add_row(*(printable(c) for c in cells))


def styled(*parts: str | tuple[str, str]) -> rich_text.Text:
    """A line of plain text pieces and (text, style) pieces; every piece is sanitized."""
    return rich_text.Text.assemble(*((printable(p[0]), p[1]) if isinstance(p, tuple)
                                     else printable(p) for p in parts))


#: Elasticities smaller than this print as 0.00: half the last printed place.
ELASTICITY_ZERO = 0.005


def quantity(value: float | None, unit: str) -> str:
    return "-" if value is None else format_quantity(value, unit)


def summary_table(rows: list[tuple[str, str]], title: str | None = None
                  ) -> rich_table.Table:
    """A two-column table of summary rows (:mod:`ocplan.reports.summary`), labels bold."""
    table = rich_table.Table(title=None if title is None else printable(title), show_header=False)
    table.add_column("measure", style="bold")
    table.add_column("value")
    for label, text in rows:
        add_row(table, label, text)
    return table


def measure_text(value: float | None, unit: str) -> str:
    """A figure of a serving sensitivity with its unit ("-" when missing)."""
    if value is None:
        return "-"
    return quantity(value, "s") if unit == "s" else f"{value:,.4g} {unit}"


def change_cell(change: float | None) -> str:
    return "-" if change is None else f"{change:+.1%}"


def elasticity_cell(value: float | None) -> str:
    """An elasticity to two places ("-" when missing; no "-0.00" for a rounding
    residue)."""
    if value is None:
        return "-"
    return f"{0.0 if abs(value) < ELASTICITY_ZERO else value:.2f}"


def print_search_grid(title: str, columns: tuple[CompareRow, ...],
                      rows: list[dict[str, Any]]) -> None:
    """Print a search's table: ``rows`` (its answer's) ranked, in the ``columns`` declared
    once for every surface (:data:`~ocplan.reports.summary.SEARCH_COLUMNS`,
    :data:`~ocplan.reports.summary.SERVING_SEARCH_COLUMNS`) that some row has. Where the
    table is wider than the terminal, what every row shares (a column, a layout's
    fields) is printed once above it (:func:`~ocplan.reports.summary.shared_cells`)
    rather than wrapping each layout over a dozen lines; if it still does not fit, a
    line per row (:func:`print_rows`)."""
    from ocplan.reports.summary import search_table, shared_cells

    headings, cells = search_table(columns, rows, state.currency)
    note = None
    if not _fits(_grid(title, headings, cells)):
        headings, cells, shared = shared_cells(headings, cells)
        if shared:
            note = "in every row: " + "; ".join(f"{h} {v}" for h, v in shared)
    print_rows(title, headings, cells, note)


def _fits(table: rich_table.Table) -> bool:
    """Whether ``table`` fits the terminal without wrapping or cutting a cell."""
    natural = rich_measure.Measurement.get(out, out.options.update_width(UNBOUNDED_WIDTH),
                                           table).maximum
    return natural <= out.width


def print_rows(title: str, headings: list[str], cells: list[list[str]],
               note: str | None = None) -> None:
    """Print a ranking: a table where it fits the terminal, else one line per row, its
    rank and name first and then each other column's heading and value (a table of
    long names squeezed into 80 columns cuts every name to an ellipsis); ``note`` (what
    every row shares) goes before the rows."""
    table = _grid(title, headings, cells)
    if _fits(table):
        if note:
            out.print(printable(note))
        out.print(table)
        return
    out.print(styled((title, "bold")))
    if note:
        out.print(printable(note))
    for row in cells:
        rest = "; ".join(f"{h} {v}" for h, v in zip(headings[2:], row[2:], strict=True)
                         if v not in ("", "-"))
        # a bare number beside the rank ("1. 8:") reads as a second rank: name it
        name = f"{headings[1]} {row[1]}" if row[1].replace(",", "").isdigit() else row[1]
        out.print(printable(f"{row[0]}. {name}: {rest}"))


def _grid(title: str, headings: list[str], cells: list[list[str]]) -> rich_table.Table:
    table = rich_table.Table(title=printable(title))
    for heading in headings:
        table.add_column(heading)
    for row in cells:
        add_row(table, *row)
    return table


def _side_by_side_cell(text: str, lead: bool, style: str = "") -> rich_text.Text:
    """One cell of a comparison table (its value and ratio to the baseline,
    :func:`~ocplan.reports.summary.compared_text`): the best of the row in green with a
    star (the star marks it where colour does not show: a pipe, a file, NO_COLOR); else
    in ``style``."""
    return rich_text.Text(text + " *" if lead else text, style="green bold" if lead else style)


def side_by_side_rows(table: rich_table.Table, rows: tuple[CompareRow, ...],
                      systems: list[dict[str, Any]], leaders: dict[str, str],
                      baseline: str) -> None:
    """The rows of a comparison table (:data:`~ocplan.reports.summary.COMPARE_ROWS`,
    :data:`~ocplan.reports.summary.SERVING_COMPARE_ROWS`) some system has: a cell per
    system (its JSON answer) as every surface prints it, its ratio to ``baseline`` and
    the best of the row marked; why a system has no layout in red."""
    from ocplan.reports.summary import compared_text, present

    for row in present(rows, systems):
        key = row.field
        # a row every system ties on has no leader (results.compare.leader): no star
        table.add_row(row.label, *[
            _side_by_side_cell(compared_text(row, r, baseline, state.currency),
                               leaders.get(key) == r["name"], "red" if key == "reason" else "")
            for r in systems])


def pct(value: float | None, sign: str = "") -> str:
    """A percentage with one decimal, or ``-`` when there is none."""
    return "-" if value is None else f"{value:{sign}.1f}"


def print_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Rows as CSV on stdout: numbers as Python writes them (SI units), none as empty."""
    import csv

    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])


class _NoBar:
    """A progress bar that draws nothing (JSON output, or stderr not a terminal)."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: float | None = None) -> Any:
        return None

    def update(self, task: Any, completed: float | None = None,
               total: float | None = None) -> None:
        return None


def progress_bar(label: str, fmt: Format) -> Progress | _NoBar:
    """A transient progress bar on stderr, none for JSON output and when stderr is not a
    terminal (rich's bar is imported only when one is drawn)."""
    if fmt is Format.json or not err.is_terminal:
        return _NoBar()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=True)
