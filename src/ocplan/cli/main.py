"""The ``ocplan`` command: a thin client of the Python API.

Exit codes: 0 success (``check``: no errors), 1 ``check`` found errors, a ``sweep`` task
failed, a ``validate`` row failed or was infeasible, nothing fits a ``search``, or the
layout of an ``estimate`` or ``infer`` cannot run (the result, with its breakdown and
what to change, is still printed), 2 bad input (one line per problem on stderr, no
traceback).

With ``--format json`` stdout is always one JSON document: the result, or, on bad input,
``{"error": {"exit_code": 2, "problems": [{"source", "field", "value", "allowed",
"message"}]}}`` whose each ``message`` is the line printed on stderr.
"""

from __future__ import annotations

import functools
import gc
import inspect
import math
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from enum import Enum, StrEnum
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    NoReturn,
    ParamSpec,
    TypeVar,
    cast,
    get_args,
)

import typer
from typer._click.core import Command as ClickCommand  # typer vendors click
from typer._click.core import Context, Parameter
from typer._click.exceptions import (
    BadOptionUsage,
    BadParameter,
    ClickException,
    NoSuchOption,
)
from typer._click.formatting import HelpFormatter
from typer.core import TyperArgument, TyperCommand, TyperGroup
from typer.models import CommandFunctionType

from ocplan import jsonio
from ocplan.catalog.catalog import Catalog, load_catalog
from ocplan.catalog.display import human_fields
from ocplan.catalog.fields import MAX_PRICE_PER_CHIP_HOUR, MAX_TOP_K, Spec
from ocplan.catalog.filekinds import managed_kind, refuse_other_file
from ocplan.catalog.loader import load_yaml, validate_as
from ocplan.catalog.schema import KINDS, Accelerator, Entry
from ocplan.cli import restore_collector
from ocplan.cli.layout_options import (
    serving_values,
    with_layout_options,
    with_search_fixed_options,
    with_serving_layout_options,
    with_serving_options,
    with_training_options,
)
from ocplan.errors import Infeasible, Problem, SpecError
from ocplan.lazy import lazy_module
from ocplan.plan.calibration import (
    coverage_note,
)
from ocplan.plan.layout import LayoutField, LayoutValue
from ocplan.plan.plan import SEARCH_FIXED_LAYOUT, SEARCH_PINNABLE_LAYOUT
from ocplan.plan.search_defaults import (
    DEFAULT_GLOBAL_BATCH,
    DEFAULT_MEMORY_HEADROOM,
    DEFAULT_SEQ_LEN,
    SENSITIVITY_FACTOR,
    TIE_TOLERANCE,
)
from ocplan.units import (
    DEFAULT_CURRENCY,
    POWER,
    TIME,
    UnitError,
    format_money,
    format_quantity,
    parse_quantity,
)
from ocplan.workloads.options import OptionValue, serving_option_fields

if TYPE_CHECKING:
    import rich.console as rich_console
    import rich.measure as rich_measure
    import rich.table as rich_table
    import rich.text as rich_text
    from rich.progress import Progress
    from typer.models import CommandInfo

    from ocplan import api
    from ocplan.catalog.system import System
    from ocplan.matching.match import MatchResult
    from ocplan.plan.estimate import Estimate
    from ocplan.plan.sensitivity import Sensitivity
    from ocplan.redfish.host import CpuNode
    from ocplan.reports.summary import CompareRow
    from ocplan.results.cluster import ClusterOutlook
    from ocplan.results.compare import Comparison
    from ocplan.results.serving_compare import ServingComparison
    from ocplan.results.serving_validation import ServingCase
    from ocplan.results.validation import Case
    from ocplan.serving.dynamics import RunSummary
    from ocplan.serving.estimate import ServingEstimate
    from ocplan.serving.search import ServingSearch
    from ocplan.serving.sensitivity import ServingSensitivity
    from ocplan.sweep.runner import TaskSummary
    from ocplan.topology.analysis import TopologySummary
else:
    # The API imports every estimator; a command loads it when it first calls it, so
    # that ``ocplan match`` or ``ocplan catalog`` start without the training engine.
    api = lazy_module("ocplan.api")
    # rich draws tables and styled lines (~30 ms to import); JSON output needs none.
    rich_console = lazy_module("rich.console")
    rich_measure = lazy_module("rich.measure")
    rich_table = lazy_module("rich.table")
    rich_text = lazy_module("rich.text")

__all__ = ["app", "main"]

P = ParamSpec("P")
R = TypeVar("R")


def handles_bad_input(func: Callable[P, R]) -> Callable[P, R]:
    """Turn SpecError into one stderr line per problem and exit code 2 (no traceback);
    with ``--format json``, also the error document on stdout (:func:`_bad_input`)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except SpecError as exc:
            problems = [replace(p, source=_flag(p.field)) if p.source == FLAGS and p.field
                        else p for p in exc.problems]
            fmt = kwargs.get("fmt")
            _bad_input(problems, fmt is Format.json if isinstance(fmt, Format)
                       else state.json_errors)
            raise typer.Exit(2) from None
        except BrokenPipeError:  # written past rich (rich's own: _reader_gone)
            _reader_gone()

    return wrapper


#: Exit code when standard output's reader closed the pipe (``ocplan ... | head -1``):
#: 128 + SIGPIPE (13), what a shell reports for a program SIGPIPE ended
#: (``yes | head -1``); rich's default, 1, would read as "the answer is no".
EXIT_READER_GONE = 141


def _reader_gone() -> NoReturn:
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


def _bad_input(problems: Sequence[Problem], as_json: bool) -> None:
    """One stderr line per problem; with ``as_json`` also, on stdout, the error document
    naming each problem's source, field, value, what is allowed and its stderr line (a
    pipe into ``jq`` gets JSON whatever happened)."""
    lines = [_t(p.line()) for p in problems]
    for line in lines:
        err.print(line)
    if as_json:
        _print_json(_error_document(2, [
            _problem_json(p.source, p.field, p.value, p.message, line)
            for p, line in zip(problems, lines, strict=True)]))


def _error_document(exit_code: int, problems: list[dict[str, Any]]) -> dict[str, Any]:
    return {"error": {"exit_code": exit_code, "problems": problems}}


def _problem_json(source: str, field: str, value: object, allowed: str, line: str
                  ) -> dict[str, Any]:
    return {"source": _t(source), "field": _t(field), "value": _json_value(value),
            "allowed": _t(allowed), "message": line}


#: Largest integer a problem's JSON value keeps as a number (beyond it, JSON readers
#: that use doubles would round it, and Python will not print one of 4,300+ digits).
MAX_JSON_INT = 2**53


def _json_value(value: object) -> object:
    """A problem's value as a JSON scalar: numbers as numbers (finite ones), text as the
    stderr line shows it (control characters escaped), anything else as text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) <= MAX_JSON_INT else f"an integer of {value.bit_length()} bits"
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    return _t(value)


#: Commands whose ``--format`` is that of the file they write, not of stdout.
FILE_FORMAT_COMMANDS = ("report",)


def format_is_json(args: Sequence[str]) -> bool:
    """Whether the last ``--format``/``-f`` value of ``args`` (also ``--format=json``,
    ``-fjson``) is json, whatever the command does with it."""
    wanted = False
    for i, token in enumerate(args):
        if token in ("--format", "-f") and i + 1 < len(args):
            wanted = args[i + 1] == "json"
        elif token.startswith("--format="):
            wanted = token == "--format=json"
        elif token.startswith("-f") and not token.startswith("--") and len(token) > 2:
            wanted = token == "-fjson"
    return wanted


def _asks_json(args: Sequence[str]) -> bool:
    """Whether ``args`` ask for JSON on stdout: :func:`format_is_json`, for a command
    that prints its result (not :data:`FILE_FORMAT_COMMANDS`)."""
    return format_is_json(args) and _command_word(args) not in FILE_FORMAT_COMMANDS


#: The root options that take a value (``ocplan --catalog DIR estimate ...``).
ROOT_VALUE_OPTIONS = ("--catalog", "--currency")


def _command_word(args: Sequence[str]) -> str | None:
    """The first word of ``args`` that is neither an option nor a root option's value:
    the command, when the line names one."""
    skip = False
    for token in args:
        if skip:
            skip = False
        elif token in ROOT_VALUE_OPTIONS:
            skip = True
        elif not token.startswith("-"):
            return token
    return None


def _no_type_column(ctx: Context) -> None:
    """The type column of an argument whose metavar already names what it takes."""
    return None


def _flags_without_metavar(params: list[Parameter]) -> list[Parameter]:
    """``params`` with the value placeholder of each on/off flag blanked: a flag takes
    no value, and typer would show ``<bool>`` beside ``--search`` or ``--help``. A
    repeated argument with its own metavar (``SYSTEM.yaml|CHIP...``) loses typer's type
    column too, which would print the Python annotation ``<list[str]>``."""
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
        elif isinstance(param, TyperArgument) and param.nargs != 1 \
                and param.metavar is not None:
            # typer reads the type column from this method; an instance attribute wins.
            param.display_type_rich = _no_type_column  # type: ignore[method-assign]
    return params


#: A reST inline literal in a docstring (````kind: compute-module````).
_LITERAL = re.compile(r"``([^`]+)``")


def _terminal_help(text: str | None) -> str | None:
    """A command's docstring as terminal text: its reST literals quoted ('x'), the
    backquotes being markup for the API docs, not for a shell."""
    return None if text is None else _LITERAL.sub(r"'\1'", text)


def _one_line(text: str) -> str:
    """The first paragraph of ``text`` on one line: the command list shows it, and rich
    keeps a docstring's line breaks there."""
    return " ".join(inspect.cleandoc(text).split("\n\n")[0].split())


#: Columns rich's option table spends besides its name and placeholder columns: the
#: panel's and table's edges, each cell's padding and the required-option marker.
_HELP_TABLE_FRAME = 16
#: The narrowest help-text column worth reading (a few words a line).
_HELP_TEXT_MIN = 24


def _option_table_width(params: Sequence[Parameter]) -> int:
    """Columns rich's ``--help`` option table needs to print every option name whole:
    its name columns (long, short, negation; a name never wraps, it is cut with an
    ellipsis) and placeholder column at their widest, plus the frame and a readable
    help column."""
    def widest(strings: Sequence[str]) -> int:
        return max((len(s) for s in strings), default=0)

    longs = [",".join(o for o in p.opts if o.startswith("--")) for p in params]
    shorts = [",".join(o for o in p.opts if not o.startswith("--")) for p in params]
    negations = [",".join(p.secondary_opts) for p in params]
    placeholders = [p.metavar or "" for p in params]
    return (sum(widest(c) for c in (longs, shorts, negations, placeholders))
            + _HELP_TABLE_FRAME + _HELP_TEXT_MIN)


class _Command(TyperCommand):
    """A command whose flags read as flags in ``--help`` (``--ep-overlap/--no-ep-overlap``,
    not ``<bool>``), whose help is terminal text and whose line in the command list is
    one sentence, not its docstring's line breaks. On a terminal too narrow for rich's
    option table to print every option name whole, ``--help`` is click's plain list,
    which wraps the help under each name instead of cutting names to ``--ends-as-laye…``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = _terminal_help(self.help)
        if self.short_help is None and self.help:
            self.short_help = _one_line(self.help)

    def get_params(self, ctx: Context) -> list[Parameter]:
        return _flags_without_metavar(super().get_params(ctx))

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        if _option_table_width(self.get_params(ctx)) > shutil.get_terminal_size().columns:
            ClickCommand.format_help(self, ctx, formatter)
            return
        super().format_help(ctx, formatter)


class _Group(TyperGroup):
    """A group whose flags read as flags in ``--help``."""

    def get_params(self, ctx: Context) -> list[Parameter]:
        return _flags_without_metavar(super().get_params(ctx))


class _Typer(typer.Typer):
    """A typer application whose commands are :class:`_Command` unless told otherwise."""

    def command(self, name: str | None = None, *, cls: type[TyperCommand] | None = None,
                **kwargs: Any) -> Callable[[CommandFunctionType], CommandFunctionType]:
        return super().command(name, cls=cls or _Command, **kwargs)


def _new_app() -> typer.Typer:
    return _Typer(cls=_Group, no_args_is_help=True, add_completion=False,
                  help="ocplan: check, measure and plan open-standard (OAM/UBB/OCM) AI "
                       "systems.")


app = _new_app()
catalog_app = _Typer(cls=_Group, no_args_is_help=True,
                     help="Browse the hardware and model catalog.")
app.add_typer(catalog_app, name="catalog")

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

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            stream = sys.stderr if self._options.get("stderr") else sys.stdout
            if not stream.isatty() and not os.environ.get("COLUMNS"):
                self._options["width"] = PIPE_WIDTH
            self._console = rich_console.Console(**self._options)
            self._console.on_broken_pipe = _reader_gone  # type: ignore[method-assign]
        return getattr(self._console, name)


out = cast("rich_console.Console",
           _LazyConsole(soft_wrap=True, markup=False, emoji=False, highlight=False))
err = cast("rich_console.Console", _LazyConsole(stderr=True, soft_wrap=True, markup=False,
                                                emoji=False, highlight=False))


def _hops(n: int) -> str:
    """A hop count in words: "1 hop", "6 hops", "disconnected" for -1."""
    return "disconnected" if n < 0 else f"{n} hop" + ("" if n == 1 else "s")


def _t(value: object) -> str:
    """``value`` as one line of plain printable text: control characters (escape
    sequences, newlines, bells) are shown as Python escapes instead of being sent to the
    terminal."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _row(table: rich_table.Table, *cells: object) -> None:
    """Add a row of sanitized cells (names and ids in cells come from users)."""
    table.add_row(*(_t(c) for c in cells))


def _styled(*parts: str | tuple[str, str]) -> rich_text.Text:
    """A line of plain text pieces and (text, style) pieces; every piece is sanitized."""
    return rich_text.Text.assemble(*((_t(p[0]), p[1]) if isinstance(p, tuple) else _t(p)
                                     for p in parts))


class Format(StrEnum):
    table = "table"
    json = "json"


class _State:
    catalog_dirs: tuple[str, ...] = ()
    currency: str = DEFAULT_CURRENCY
    currency_given: bool = False
    """--currency (or OCPLAN_CURRENCY) was given, so a mix file must not say otherwise."""
    json_errors: bool = False
    """The command line asks for JSON on stdout (set per run from the raw arguments, so
    that usage errors, found before any option is parsed, answer in JSON too)."""


state = _State()


def _one_of(choices: Sequence[str]) -> str:
    """The help placeholder of an option that takes one of ``choices``: ``<a|b|c>``."""
    return "<" + "|".join(choices) + ">"


#: The objectives of a training search (:data:`ocplan.plan.search.Objective`, which
#: loads the engine; a test keeps the two equal).
TRAINING_OBJECTIVES = ("throughput", "time", "cost", "energy", "time_with_failures",
                       "cost_with_failures")
#: Elasticities smaller than this print as 0.00: half the last printed place.
ELASTICITY_ZERO = 0.005
#: Help of the ``--sensitivity`` option of ``estimate`` and ``infer``.
SENSITIVITY_HELP = ("Scale each hardware resource (matrix peak, HBM, scale-up, scale-out, "
                    "...) by this factor to show what it buys {what}: 2 = twice as fast, "
                    "0.5 = half{default}.")
#: The objectives of ``ocplan match`` (``MatchRequest.objective``; a test keeps them equal).
MATCH_OBJECTIVES = ("tco", "perf_per_watt", "perf_per_cost", "servers")
#: ``ocplan sweep --backend`` values (:data:`ocplan.sweep.runner.BACKENDS`; a test keeps
#: them equal).
SWEEP_BACKENDS = ("local", "ray")
#: The files ``ocplan report`` writes.
REPORT_FORMATS = ("html", "json")
#: Placeholder of an option taking a catalog id.
ID_METAVAR = "<id>"

CatalogOpt = Annotated[list[Path] | None, typer.Option(
    "--catalog", metavar="<folder>",
    help="Extra catalog folder (repeatable); also OCPLAN_CATALOG.")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
ModelOpt = Annotated[str, typer.Option(metavar=ID_METAVAR,
                                       help="Model id (ocplan catalog list --kind model).")]
#: What a --price is counted in (the help of every command that takes one).
PRICE_UNIT = f"in the --currency (default {DEFAULT_CURRENCY}) per chip-hour"
#: Tokens to train on, as people write them ("15T", "300B", "3e11"): the request models
#: read the text (catalog.fields.TrainTokens).
TrainTokensOpt = Annotated[str | None, typer.Option(
    metavar="<count>", help="Tokens to train on (e.g. 15T, 300B, 3e11), for time, energy "
                            "and cost to train.")]


#: Longest currency label (ISO 4217 codes are 3 letters; a symbol or "kUSD" fits).
MAX_CURRENCY_CHARS = 8


@app.callback()
@handles_bad_input
def _root(catalog: CatalogOpt = None,
          currency: Annotated[str | None, typer.Option(
              metavar="<label>", envvar="OCPLAN_CURRENCY", show_default=False,
              help="Currency label printed with costs (prices are in it; a workload "
                   "mix's own 'currency:' must agree); also OCPLAN_CURRENCY. "
                   f"Default {DEFAULT_CURRENCY}.")] = None) -> None:
    state.catalog_dirs = tuple(str(p) for p in catalog or [])
    state.currency_given = currency is not None
    currency = DEFAULT_CURRENCY if currency is None else currency
    if not currency.strip() or len(currency) > MAX_CURRENCY_CHARS or not currency.isprintable():
        raise SpecError.one("--currency", "currency", f"expected a label of 1 to "
                                                      f"{MAX_CURRENCY_CHARS} printable "
                                                      "characters, e.g. USD or EUR", currency)
    state.currency = currency.strip()


def _priced(price: object) -> dict[str, str]:
    """``{"currency": label}`` for a JSON answer holding costs (a price was given), so a
    reader knows what the cost numbers count; nothing without a price."""
    return {} if price is None else {"currency": state.currency}


def _money(value: float) -> str:
    """A cost in the ``--currency``, for people (:func:`~ocplan.units.format_money`)."""
    return format_money(value, state.currency)


def _catalog() -> Catalog:
    return load_catalog(state.catalog_dirs)


def _print_json(data: Any) -> None:
    sys.stdout.write(jsonio.dumps(data, indent=2) + "\n")


def _entry_json(entry: Entry) -> dict[str, Any]:
    return entry.model_dump(mode="json", exclude_none=True)


def _q(value: float | None, unit: str) -> str:
    return "-" if value is None else format_quantity(value, unit)


@catalog_app.command("list")
@handles_bad_input
def catalog_list(
    kind: Annotated[str | None, typer.Option(
        "--kind", "-k", metavar=_one_of(KINDS), help="Entries of this kind only.")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """List catalog entries."""
    if kind is not None and kind not in KINDS:
        raise SpecError.one("--kind", "kind", f"unknown kind; expected one of "
                                              f"{', '.join(KINDS)}", kind)
    cat = _catalog()
    entries = cat.all(kind)
    if fmt is Format.json:
        _print_json([_entry_json(e) for e in entries])
        return
    title = f"ocplan catalog{f' ({kind})' if kind else ''}: {len(entries)} entries"
    table = rich_table.Table(title=title)
    table.add_column("kind")
    table.add_column("id", style="bold")
    table.add_column("name")
    table.add_column("key figures")
    for e in entries:
        _row(table, getattr(e, "kind", ""), e.id, e.name, _key_figures(e))
    out.print(table)


def _key_figures(e: Entry) -> str:
    if isinstance(e, Accelerator):
        bf16 = e.peak_flops.bf16 or e.peak_flops.fp16
        return (f"{_q(bf16, 'FLOP/s')} bf16, {_q(e.memory.hbm_capacity, 'B')} "
                f"@ {_q(e.memory.hbm_bandwidth, 'B/s')}, {_q(e.power.tdp, 'W')}, "
                f"{e.form_factor}{' ' + e.oam_version if e.oam_version else ''}")
    fields = e.model_dump(exclude={"id", "name", "sources", "notes", "kind"})
    shown = [f"{k}={v}" for k, v in fields.items() if isinstance(v, (int, str)) and v != ""]
    return ", ".join(shown[:4])


@catalog_app.command("show")
@handles_bad_input
def catalog_show(entry_id: Annotated[str, typer.Argument(metavar="ID")],
                 fmt: FormatOpt = Format.table) -> None:
    """Show one entry with its sources."""
    entry = _catalog().find(entry_id)
    data = _entry_json(entry)
    if fmt is Format.json:
        _print_json(data)
        return
    table = rich_table.Table(title=_t(f"{entry.name} ({entry.id})"), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in human_fields(entry, skip=("sources", "name", "id")).items():
        _row(table, key, value)
    out.print(table)
    out.print(_styled(("Sources", "bold")))
    for src in entry.sources:
        where = f" ({src.locator})" if src.locator else ""
        out.print(_t(f"  - {src.title}{where}; covers {', '.join(src.covers)}"))
        if src.url:
            out.print(_t(f"    {src.url}"))


@app.command()
@handles_bad_input
def check(file: Annotated[Path, typer.Argument(metavar="SYSTEM.yaml")],
          fmt: FormatOpt = Format.table) -> None:
    """Check a system file, or a compute-module file (``kind: compute-module``), against
    the OAM/UBB/OCM specs; exit 1 on errors."""
    # The kind first, as ``serve --system`` decides it: another kind is one line, not
    # every key of the file as an unknown system field.
    kind = managed_kind(file, "ocplan check")
    catalog = _catalog()
    if kind == "compute-module":
        module = api.read_module(catalog, file)
        findings = api.check_module(module, catalog)
        name = module.name
        memory = module.memory
        summary = f"{module.sockets} x {module.cpu}, " + (
            "soldered memory" if memory.module_type == "soldered" else
            f"{memory.dimms_per_channel} {memory.module_type} DIMM(s) per channel")
    else:
        system = api.read_system(catalog, file)
        findings = api.check_system(system)
        name = system.spec.name
        summary = (f"{system.num_chips} x {system.accelerator.id} in {system.num_servers} x "
                   f"{system.server.id}")
    errors = sum(f.severity == "error" for f in findings)
    warnings = sum(f.severity == "warning" for f in findings)
    if fmt is Format.json:
        _print_json({"system": name, "file": str(file), "errors": errors,
                     "warnings": warnings, "findings": [f.as_dict() for f in findings]})
    else:
        out.print(_styled((name, "bold"), f" ({file}): {summary}"))
        if not findings:
            out.print(_styled(("  no findings: the composition meets every rule", "green")))
        colours = {"error": "red", "warning": "yellow", "info": "cyan"}
        for f in findings:
            out.print(_styled("  ", (f"{f.severity.upper():7}", colours[f.severity]),
                              f" {f.rule}: {f.message} ", (f"({f.section})", "dim")))
        out.print(f"  {errors} error(s), {warnings} warning(s)")
    if errors:
        raise typer.Exit(1)


@app.command()
@handles_bad_input
def topology(file: Annotated[Path, typer.Argument(metavar="SYSTEM.yaml")],
             fmt: FormatOpt = Format.table) -> None:
    """Summarize a system's topology: chips, links, bandwidths, bisection, diameter."""
    system = api.read_system(_catalog(), file)
    try:
        summary, budget = api.topology_summary(system)
    except Infeasible as exc:  # too large to summarize: one line, as for bad input
        raise SpecError.one(str(file), "", exc.detail) from None
    data = api.topology_figures(summary, budget, system)
    if fmt is Format.json:
        _print_json(data)
        return
    table = rich_table.Table(title=_t(f"{summary.name}: topology"), show_header=False)
    table.add_column("measure", style="bold")
    table.add_column("value")
    rows = [
        ("chips", f"{summary.chips} ({summary.servers} servers x {summary.chips_per_server})"),
        ("board topology", _board_topology(summary)),
        ("graph", f"{summary.nodes} nodes, {summary.links} links ({summary.method})"),
        ("scale-up per port", _q(summary.scale_up_port_Bps, "B/s")),
        ("scale-up per chip", _q(summary.scale_up_Bps_per_chip, "B/s")),
        ("scale-out per chip", _q(summary.scale_out_Bps_per_chip, "B/s")),
        ("board bisection", _q(summary.board_bisection_Bps, "B/s")),
        ("system bisection", _q(summary.bisection_Bps, "B/s")),
        ("diameter", f"{_hops(summary.diameter_hops)} (chip to chip)"),
        ("scale-up diameter", f"{_hops(summary.board_diameter_hops)} (chip to chip within a "
                              "server, scale-up links only)"),
        ("scale-out", f"{summary.scale_out_tiers} tier(s), {summary.scale_out_switches} switches"),
        ("power", f"{_q(budget.server_W, 'W')} per server; IT (servers and switches) "
                  f"{_q(budget.it_W, 'W')} at TDP, {_q(data['supply_input_power_W'], 'W')} "
                  f"at the supplies' input; {_q(data['facility_power_W'], 'W')} facility at "
                  f"PUE {data['pue']:.2f}"),
    ]
    for k, v in rows:
        _row(table, k, v)
    out.print(table)
    out.print(_styled(("bandwidths are per direction", "dim")))


def _board_topology(summary: TopologySummary) -> str:
    """The board's topology kind; a torus with its shape and, where its dimensions run at
    different rates, each dimension's link rate."""
    dims, rates = summary.torus_dims, summary.torus_link_Bps
    if dims is None or rates is None:
        return summary.board_topology
    text = f"{summary.board_topology} {'x'.join(str(d) for d in dims)}"
    if len(set(rates)) > 1:
        text += " (links " + ", ".join(_q(r, "B/s") for r in rates) + " per dimension)"
    return text


#: The source of problems found in flag values; each such line is shown with its flag.
FLAGS = "command line"
#: Rows of a report's top-layouts table (``report --search --top``).
REPORT_TOP = 10
#: What ``report --search`` ranks by unless told (a search's own default).
REPORT_OBJECTIVE = "throughput"
#: Request fields whose flag is not the field name with dashes (the serving workload's
#: declare theirs).
FLAG_OF_FIELD = {"top_k": "--top", "price_per_chip_hour": "--price",
                 "max_power_W": "--max-power", "max_time_to_train_s": "--deadline",
                 "max_facility_power_W": "--max-power",
                 "target_rate_per_s": "--target-rate", "repair_s": "--repair"} | {
    f.name: f.flag for f in serving_option_fields() if f.cli is not None}

Req = TypeVar("Req", bound=Spec)


def _flag(field: str) -> str:
    name = field.split(".")[0].split("[")[0]
    return FLAG_OF_FIELD.get(name, "--" + name.replace("_", "-"))


def _from_flags(request: type[Req], /, **values: object) -> Req:
    """Validate flag values with the API's request model, so that the CLI, the API and
    the web share one set of bounds; each problem line names its flag (the source
    FLAGS becomes the flag in :func:`handles_bad_input`)."""
    return validate_as(request, values, FLAGS)


def _picked_by_search(layout: LayoutFlags, fields: Sequence[LayoutField],
                      keep: Sequence[LayoutField] = ()) -> list[Problem]:
    """With --search: a problem for each layout flag of ``fields`` given away from its
    default, since the search picks that field and would drop the flag unsaid; the
    fields of ``keep`` (what a search holds fixed and takes) are allowed."""
    kept = {f.name for f in keep}
    return [Problem(FLAGS, f.name, "the search picks it: leave it out with --search",
                    layout[f.name])
            for f in fields if f.name not in kept and layout[f.name] != f.default]


def _counts(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise SpecError.one("--chip-counts", "chip_counts", "expected positive whole numbers "
                                                            "separated by commas", text)
    return counts


def _power(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_quantity(text, POWER)
    except UnitError as exc:
        raise SpecError.one("--max-power", "max_power", str(exc), text) from None


CHIPS_HELP = (f"Number of chips (default: all chips of --system, else {api.DEFAULT_CHIPS}).")
ChipOpt = Annotated[str | None, typer.Option(
    metavar=ID_METAVAR, help="Accelerator id; implies its default server and fabric.")]
ChipsOpt = Annotated[int | None, typer.Option(help=CHIPS_HELP)]


#: A training job's size, on every training command (estimate, search, compare, report);
#: the defaults are the API's (``search_defaults``).
GlobalBatchOpt = Annotated[int, typer.Option(help="Sequences per step.")]
SeqLenOpt = Annotated[int, typer.Option(help="Tokens per sequence.")]
SystemFileOpt = Annotated[Path | None, typer.Option(help="System file instead of --chip.")]


AllowInvalidOpt = Annotated[bool, typer.Option(
    "--allow-invalid", help="Estimate even when the system fails a compliance check "
                            "(ocplan check); the output then says so.")]


def _print_trust(system: System, allow_invalid: bool) -> None:
    """The system's check errors and warnings, and a red line when it is estimated
    although invalid: every estimate says what it ran on."""
    trust = api.trust(system, allow_invalid)
    if trust["allowed_invalid"]:
        out.print(_styled(("INVALID SYSTEM", "red bold"),
                          ": estimated anyway (--allow-invalid); the findings below are "
                          "not accounted for in the numbers"))
    for f in trust["findings"]:
        out.print(_t(f"check {f['severity']} {f['rule']}: {f['message']}"))


def _refused(exc: Infeasible, system_name: str, fmt: Format) -> NoReturn:
    """Print why a search on an invalid system was refused, and exit 1."""
    reason = f"{exc.reason}: {exc.detail}"
    if fmt is Format.json:
        _print_json({"feasible": False, "reason": reason, "system": system_name,
                     "hint": api.infeasible_hint(reason)})
    else:
        out.print(_styled((system_name, "bold"), ": ", ("refused", "red"), f": {reason}"))
        hint = api.infeasible_hint(reason)
        if hint:
            out.print(_t(f"what to change: {hint}"))
    raise typer.Exit(1)


#: The layout flags' values as a command receives them (see :mod:`.layout_options`).
LayoutFlags = dict[str, LayoutValue]
#: The training option flags' values, the same way (:func:`.with_training_options`).
OptionFlags = dict[str, OptionValue]
#: The serving job's workload flags' values, the same way (:func:`.with_serving_options`).
JobFlags = dict[str, object]


@app.command("estimate")
@handles_bad_input
@with_layout_options
@with_training_options
def estimate_cmd(
    model: ModelOpt,
    chip: ChipOpt = None,
    chips: ChipsOpt = None,
    global_batch: GlobalBatchOpt = DEFAULT_GLOBAL_BATCH,
    seq_len: SeqLenOpt = DEFAULT_SEQ_LEN,
    system: SystemFileOpt = None,
    train_tokens: TrainTokensOpt = None,
    price: Annotated[float | None, typer.Option(
        help=f"Price {PRICE_UNIT}, e.g. 2.5.")] = None,
    allow_invalid: AllowInvalidOpt = False,
    sensitivity: Annotated[float, typer.Option(help=SENSITIVITY_HELP.format(
        what="the step", default=""))] = SENSITIVITY_FACTOR,
    fmt: FormatOpt = Format.table,
    *,
    options: OptionFlags,
    layout: LayoutFlags,
) -> None:
    """Estimate step time, throughput, MFU and memory of one parallel layout, and what
    each hardware resource would buy it."""
    req = _from_flags(
        api.EstimateRequest, model=model, chip=chip, chips=chips,
        global_batch=global_batch,
        seq_len=seq_len, train_tokens=train_tokens, price_per_chip_hour=price,
        allow_invalid=allow_invalid, sensitivity=sensitivity, **options, **layout)
    result, sysm, workload = api.run_estimate(_catalog(), req, system, FLAGS)
    extra = _to_train(result, req, sysm)
    cluster = api.outlook(result, workload, sysm, req.train_tokens, price)
    sens = api.run_sensitivity(result, workload, sysm, req.sensitivity)
    if fmt is Format.json:
        _print_json(result.as_dict() | extra | {"model": model, "system": sysm.spec.name,
                                                "hint": api.infeasible_hint(
                                                    result.reason, plan=result.plan)}
                    | api.trust(sysm, allow_invalid) | {"cluster": cluster.as_json()}
                    | {"sensitivity": sens.as_dict() if sens is not None else None}
                    | {"job": api.job_json(req)} | _priced(price))
    else:
        _print_estimate(result, f"{model} on {sysm.spec.name}", extra,
                        sysm.accelerator.family, api.job_json(req))
        if result.feasible:
            _print_cluster(cluster)
        if sens is not None:
            _print_sensitivity(sens)
        _print_trust(sysm, allow_invalid)
    if not result.feasible:
        raise typer.Exit(1)


def _summary_table(rows: list[tuple[str, str]], title: str | None = None
                   ) -> rich_table.Table:
    """A two-column table of summary rows (:mod:`ocplan.reports.summary`), labels bold."""
    table = rich_table.Table(title=None if title is None else _t(title), show_header=False)
    table.add_column("measure", style="bold")
    table.add_column("value")
    for label, text in rows:
        _row(table, label, text)
    return table


def _print_estimate(result: Estimate, title: str, extra: dict[str, float],
                    chip_family: str | None = None,
                    job: dict[str, object] | None = None) -> None:
    from ocplan.reports.summary import estimate_rows

    rows = estimate_rows(result, extra, state.currency, chip_family, job)
    if not result.feasible:
        out.print(_styled((title, "bold"), ": ", ("infeasible", "red"), f": {result.reason}"))
        out.print(_summary_table(rows))
        return
    out.print(_summary_table(rows, title))


def _print_sensitivity(sens: Sensitivity) -> None:
    """What each hardware resource buys the step, and the sentence that sums it up."""
    f = f"x{sens.factor:g}"
    table = rich_table.Table(title=f"what each resource buys: the step with it {f}")
    for column in ("resource", "step", "change", "elasticity"):
        table.add_column(column, justify="left" if column == "resource" else "right")
    _row(table, "as estimated", _q(sens.base_step_s, "s"), "", "")
    for e in sens.effects:
        if e.present:
            _row(table, e.label, _q(e.step_s, "s"), f"{e.change:+.1%}",
                 _elasticity_cell(e.elasticity))
        else:
            _row(table, e.label, "-", e.absent, "-")
    _row(table, f"every resource {f}", _q(sens.together_s, "s"),
         f"{sens.together_change:+.1%}", "")
    out.print(table)
    out.print(_t(sens.summary()))


def _print_cluster(view: ClusterOutlook) -> None:
    """The facility around the system and the job's goodput under failures."""
    from ocplan.reports.summary import cluster_rows

    out.print(_summary_table(cluster_rows(view, state.currency),
                             "cluster: facility and failures"))
    for finding in view.facility.findings:
        out.print(_t(f"facility {finding.severity} {finding.rule}: {finding.message}"))


@app.command("infer")
@handles_bad_input
@with_serving_layout_options
@with_serving_options
def infer_cmd(
    model: ModelOpt,
    chip: ChipOpt = None,
    chips: ChipsOpt = None,
    system: SystemFileOpt = None,
    price: Annotated[str | None, typer.Option(
        metavar="<price[,price...]>",
        help=f"Price {PRICE_UNIT}, e.g. 2.5; with --vs one per system separated by commas "
             "(or one for all).")] = None,
    search: Annotated[bool, typer.Option("--search", help="Search the serving layouts of "
                                                          "the chips instead of estimating "
                                                          "one.")] = False,
    vs: Annotated[list[str] | None, typer.Option(
        "--vs", metavar="<chip|SYSTEM.yaml>",
        help="With --search: also search this chip (or system file) at the same --chips "
             "and compare the best layouts side by side (repeatable).")] = None,
    disaggregate: Annotated[bool, typer.Option(
        "--disaggregate", help="With --search: also try prefill/decode pool splits.")
    ] = False,
    target_rate: Annotated[float | None, typer.Option(
        metavar="<requests/s>",
        help="With --vs: a load to plan for; each system's row then says how many "
             "deployments of its best layout serve it within the latency limits (each its "
             "share of the arrivals), and their chips, power and cost.")] = None,
    availability: Annotated[float | None, typer.Option(
        metavar="<fraction>",
        help="With --target-rate: the share of time each fleet must serve the whole "
             "target through failures, e.g. 0.999; the rows then count the spare "
             "deployments that takes (in chips, power and cost too).")] = None,
    repair: Annotated[str | None, typer.Option(
        metavar="<time>",
        help="With --availability: how much longer a hardware failure keeps a deployment "
             "out than detection and restart (the comparison's note says how long those "
             "take), e.g. '3 days' for repair in place. Default 0: swapped at once from a "
             "healthy pool.")] = None,
    report_file: Annotated[Path | None, typer.Option(
        "--report", help="Also write a self-contained HTML report (curve, breakdown, "
                         "topology) to this file.")] = None,
    sensitivity: Annotated[float | None, typer.Option(help=SENSITIVITY_HELP.format(
        what="the deployment", default=f"; default {SENSITIVITY_FACTOR:g}, one layout "
                                       "only (not with --search)"))] = None,
    simulate: Annotated[bool, typer.Option(
        "--simulate", help="Also run the job request by request (discrete-event "
                           "simulation of the scheduler: the --requests given, else "
                           "2,000): TTFT and TPOT percentiles, preemptions, a finite "
                           "run's ramp and drain; one layout only.")] = False,
    allow_invalid: AllowInvalidOpt = False,
    fmt: FormatOpt = Format.table,
    *,
    job: JobFlags,
    layout: LayoutFlags,
) -> None:
    """Estimate serving throughput, latency, memory and cost of one layout, and what each
    hardware resource would buy it (or search; --vs compares the best layouts of several
    systems)."""
    problems: list[Problem] = []
    given = serving_values(job, FLAGS, problems)
    prices = _gathered(problems, _prices, price)
    if vs and not search:
        problems.append(Problem(FLAGS, "vs", "compares the best layouts: give --search too",
                                ",".join(vs)))
    if report_file is not None and search and not vs:
        problems.append(Problem(FLAGS, "report", "writes one layout's report or, with --vs, "
                                                 "the comparison's; not a search's",
                                str(report_file)))
    if prices is not None and len(prices) > 1 and not vs:
        problems.append(Problem(FLAGS, "price", "one price per chip-hour (several only "
                                                "with --vs)", price))
    if sensitivity is not None and search:
        problems.append(Problem(FLAGS, "sensitivity", "applies to one layout's estimate, "
                                                      "not to a search", sensitivity))
    if simulate and search:
        problems.append(Problem(FLAGS, "simulate", "runs one layout's job, not a search's",
                                True))
    if target_rate is not None and not vs:
        problems.append(Problem(FLAGS, "target_rate", "plans a fleet for each compared "
                                                      "system: give --search and --vs too",
                                target_rate))
    repair_s = _duration(repair, "--repair", problems)
    problems += api.fleet_problems(target_rate, availability, repair_s, FLAGS)
    if availability is not None and target_rate is None:
        problems.append(Problem(FLAGS, "availability", "sizes the spares of a fleet: give "
                                                       "--target-rate too", availability))
    if repair is not None and availability is None:
        problems.append(Problem(FLAGS, "repair", "sizes the spares of a fleet: give "
                                                 "--availability too", repair))
    if disaggregate and not search:
        problems.append(Problem(FLAGS, "disaggregate", "tries prefill/decode splits in a "
                                                       "search: give --search too", True))
    # with --search, a layout flag given pins that field in every layout searched
    pinned = {f.name: layout[f.name] for f in api.SERVING_REQUEST_LAYOUT
              if layout[f.name] != f.default} if search else {}
    if vs:  # a comparison searches each system freely
        problems += _picked_by_search(layout, api.SERVING_REQUEST_LAYOUT)
    price_one = None if prices is None else prices[0]
    one = {} if search else layout | ({} if sensitivity is None
                                     else {"sensitivity": sensitivity}) \
        | ({"simulate": True} if simulate else {})
    values = dict(model=model, chip=chip, chips=chips, price_per_chip_hour=price_one,
                  allow_invalid=allow_invalid) | given
    try:
        req = _from_flags(api.InferSearchRequest if search else api.InferRequest, **values,
                          **one)
        # the workload's own bounds and the chip or system, now and all at once
        api.resolve_job(_catalog(), req, system, FLAGS,
                        lambda: api.serving_workload(_catalog(), req, FLAGS))
    except SpecError as exc:
        raise SpecError(problems + list(exc.problems)) from None
    if problems:
        raise SpecError(problems)
    if search and vs:
        if report_file is not None:
            _check_report_page(report_file)
        compared = api.run_infer_compare(_catalog(), req, vs, prices, system, FLAGS,
                                         disaggregate, target_rate_per_s=target_rate,
                                         availability=availability,
                                         repair_s=repair_s or 0.0)
        if report_file is not None:
            from ocplan.reports.html import render_serving_compare_report

            _write_linked_report(report_file, render_serving_compare_report(
                f"ocplan serving comparison: {model}", compared.as_json(), None,
                state.currency), announce=fmt is not Format.json, flag="--report")
        _print_serving_compare(compared, model, fmt, price, api.serving_job_json(req))
        return
    if search:
        objective = api.serving_objective(req)
        try:
            found, sysm, workload = api.run_infer_search(_catalog(), req, system, objective,
                                                         FLAGS, disaggregate, pinned)
        except Infeasible as exc:
            _refused(exc, model, fmt)
        _print_serving_search(found, f"{model} on {sysm.spec.name}", fmt, price_one,
                              api.slo_shortfall(found, workload), api.serving_job_json(req))
        if fmt is not Format.json:
            _print_trust(sysm, allow_invalid)
        runs = [e for e in found.results if e.feasible]
        if not runs:  # nothing fits, as `search` says
            raise typer.Exit(1)
        if all(e.reason for e in runs):  # every layout falls behind the arrival rate
            if fmt is not Format.json:
                best = max(runs, key=lambda e: e.requests_per_s)
                out.print(_t(f"no layout keeps up with {workload.rate_per_s:.3g} req/s: the "
                             f"most any serves is {best.requests_per_s:.3g} req/s "
                             f"({best.plan.label()}); more chips or a lower rate"),
                          style="red")
            raise typer.Exit(1)
        return
    if report_file is not None:
        _check_report_page(report_file)
    assert isinstance(req, api.InferOneJob)
    view = api.run_infer_view(_catalog(), req, system, FLAGS)
    result, sysm = view.result, view.system
    if report_file is not None:
        from ocplan.reports.html import plotly_js_path, render_serving_report

        page = render_serving_report(f"ocplan serving report: {model} on {sysm.spec.name}",
                                     result, view.curve, api.topology_report(sysm),
                                     plotly_js_path(), view.sensitivity,
                                     api.serving_job_json(req))
        # JSON output stays one JSON document: the file is the only sign
        _write_page(report_file, page, announce=fmt is not Format.json, flag="--report")
    extra: dict[str, float | None] = (
        {} if price_one is None else {"cost_per_mtok": result.cost_per_mtok(price_one)})
    if fmt is Format.json:
        sens = view.sensitivity
        _print_json(result.as_dict() | extra | {"model": model, "job": api.serving_job_json(req),
                                                "system": sysm.spec.name,
                                                "hint": api.infeasible_hint(result.reason,
                                                                            serving=True)}
                    | api.trust(sysm, allow_invalid)
                    | {"sensitivity": sens.as_dict() if sens is not None else None}
                    | ({"simulation": view.simulation.as_dict()
                        if view.simulation is not None else None} if simulate else {})
                    | _priced(price_one))
    else:
        _print_serving(result, f"{model} on {sysm.spec.name}", extra, sysm.accelerator.family,
                       api.serving_job_json(req))
        if view.sensitivity is not None:
            _print_serving_sensitivity(view.sensitivity)
        if simulate:
            _print_simulation(view.simulation, result.feasible)
        _print_trust(sysm, allow_invalid)
    if not result.feasible or result.reason:  # cannot run, or cannot keep up
        raise typer.Exit(1)


def _print_simulation(run: RunSummary | None, feasible: bool) -> None:
    """The simulated run's rows, or why there is none."""
    from ocplan.reports.summary import simulation_rows

    if run is not None:
        out.print(_summary_table(simulation_rows(run), "simulated run"))
    elif feasible:
        out.print(_t("no simulation: disaggregated and speculative layouts are not "
                     "simulated (the estimate above models them)"))


def _duration(text: str | None, flag: str, problems: list[Problem]) -> float | None:
    """A duration flag in seconds; a bad one is added to ``problems``."""
    if text is None:
        return None
    try:
        return parse_quantity(text, TIME)
    except UnitError as exc:
        problems.append(Problem(flag, flag.removeprefix("--").replace("-", "_"), str(exc),
                                text))
        return None


def _print_serving(result: ServingEstimate, title: str, extra: dict[str, float | None],
                   chip_family: str | None, job: dict[str, object]) -> None:
    from ocplan.reports.summary import serving_rows

    rows = serving_rows(result, extra.get("cost_per_mtok"), state.currency, chip_family, job)
    if not result.feasible:
        out.print(_styled((title, "bold"), ": ", ("infeasible", "red"), f": {result.reason}"))
        for label, text in rows:
            out.print(_t(f"{label}: {text}"))
        return
    out.print(_summary_table(rows, title))


def _print_serving_sensitivity(sens: ServingSensitivity) -> None:
    """What each hardware resource buys the deployment: every figure's change, the
    headline's elasticity, and the sentence that sums it up."""
    from ocplan.serving.sensitivity import MEASURES  # loaded with the result

    shown = [m for m in MEASURES if sens.base[m.name] is not None]
    table = rich_table.Table(title=f"what each resource buys: the deployment with it "
                                   f"x{sens.factor:g}")
    table.add_column("resource")
    for m in shown:
        table.add_column(m.label + (" (headline)" if m.name == sens.headline else ""),
                         justify="right")
    table.add_column("elasticity", justify="right")
    _row(table, "as estimated", *(_measure(sens.base[m.name], m.unit) for m in shown), "")
    for e in sens.rows:
        if not e.present:
            _row(table, e.label, e.absent or "", *(["-"] * (len(shown) - 1)), "-")
            continue
        _row(table, e.label, *(_change_cell(e.changes[m.name]) for m in shown),
             _elasticity_cell(e.elasticity))
    out.print(table)
    out.print(_t(sens.summary()))
    for e in sens.rows:
        if e.reason is not None:
            out.print(_t(f"with {e.label} x{sens.factor:g}: {e.reason}"))


def _measure(value: float | None, unit: str) -> str:
    """A figure of a serving sensitivity with its unit ("-" when missing)."""
    if value is None:
        return "-"
    return _q(value, "s") if unit == "s" else f"{value:,.4g} {unit}"


def _change_cell(change: float | None) -> str:
    return "-" if change is None else f"{change:+.1%}"


def _elasticity_cell(value: float | None) -> str:
    """An elasticity to two places ("-" when missing; no "-0.00" for a rounding
    residue)."""
    if value is None:
        return "-"
    return f"{0.0 if abs(value) < ELASTICITY_ZERO else value:.2f}"


def _print_serving_search(found: ServingSearch, title: str, fmt: Format,
                          price: float | None, shortfall: str | None,
                          job: dict[str, object]) -> None:
    """The ranked layouts; ``shortfall``: the line saying no layout meets the SLO and
    which comes closest (:func:`ocplan.api.slo_shortfall`); ``job``: what was searched
    (:func:`ocplan.api.serving_job_json`)."""
    from ocplan.reports.summary import SERVING_SEARCH_COLUMNS, formats_text, serving_job_text

    results = [e.as_dict() | {"layout": e.plan.label()}
               | ({} if price is None else {"cost_per_mtok": e.cost_per_mtok(price)})
               for e in found.results]
    if fmt is Format.json:
        _print_json({"objective": found.objective, "job": job, "results": results,
                     "pareto": [e.plan.label() for e in found.pareto()],
                     "slo_shortfall": shortfall} | _priced(price))
        return
    rows = [r for r in results if r["feasible"]]
    # one workload: every layout runs in the same formats
    formats = next((e.formats for e in found.results if e.formats is not None), None)
    if not rows:
        reasons = sorted({r["reason"] or "" for r in results})
        out.print(_styled((title, "bold"), ": ", ("no layout fits", "red"),
                          f": {'; '.join(reasons[:3])}"))
        if formats is not None:
            out.print(_t(f"number formats: {formats_text(formats)}"))
        out.print(_t("job: " + serving_job_text(job)))
        return
    _print_search_grid(f"{title}: best serving layouts ({found.objective})",
                       SERVING_SEARCH_COLUMNS, rows[:10])
    if formats is not None:
        out.print(_t(f"number formats: {formats_text(formats)}"))
    out.print(_t("job: " + serving_job_text(job)))
    note = api.serving_objective_note(found.objective)
    if note:  # the TTFT/TPOT columns are not the ones the SLO is judged at
        out.print(_t(note))
    if shortfall is not None:
        out.print(_styled(("no layout meets the SLO", "red"),
                          shortfall.removeprefix("no layout meets the SLO")))
    front = found.pareto()
    if front:  # one-token answers have no TPOT
        out.print(_t("throughput-TPOT front: " + "; ".join(
            f"{e.plan.label()} ({e.output_tokens_per_s_per_chip:,.0f} output tokens/s per chip "
            f"at {_q(e.tpot_s, 's')})" for e in front)))


def _print_search_grid(title: str, columns: tuple[CompareRow, ...],
                       rows: list[dict[str, Any]]) -> None:
    """Print a search's table: ``rows`` (its answer's) ranked, in the ``columns`` declared
    once for every surface (:data:`~ocplan.reports.summary.SEARCH_COLUMNS`,
    :data:`~ocplan.reports.summary.SERVING_SEARCH_COLUMNS`) that some row has. Where the
    table is wider than the terminal, what every row shares (a column, a layout's
    fields) is printed once above it (:func:`~ocplan.reports.summary.shared_cells`)
    rather than wrapping each layout over a dozen lines; if it still does not fit, a
    line per row (:func:`_print_rows`)."""
    from ocplan.reports.summary import search_table, shared_cells

    headings, cells = search_table(columns, rows, state.currency)
    note = None
    if not _fits(_grid(title, headings, cells)):
        headings, cells, shared = shared_cells(headings, cells)
        if shared:
            note = "in every row: " + "; ".join(f"{h} {v}" for h, v in shared)
    _print_rows(title, headings, cells, note)


def _fits(table: rich_table.Table) -> bool:
    """Whether ``table`` fits the terminal without wrapping or cutting a cell."""
    natural = rich_measure.Measurement.get(out, out.options.update_width(UNBOUNDED_WIDTH),
                                           table).maximum
    return natural <= out.width


def _print_rows(title: str, headings: list[str], cells: list[list[str]],
                note: str | None = None) -> None:
    """Print a ranking: a table where it fits the terminal, else one line per row, its
    rank and name first and then each other column's heading and value (a table of
    long names squeezed into 80 columns cuts every name to an ellipsis); ``note`` (what
    every row shares) goes before the rows."""
    table = _grid(title, headings, cells)
    if _fits(table):
        if note:
            out.print(_t(note))
        out.print(table)
        return
    out.print(_styled((title, "bold")))
    if note:
        out.print(_t(note))
    for row in cells:
        rest = "; ".join(f"{h} {v}" for h, v in zip(headings[2:], row[2:], strict=True)
                         if v not in ("", "-"))
        # a bare number beside the rank ("1. 8:") reads as a second rank: name it
        name = f"{headings[1]} {row[1]}" if row[1].replace(",", "").isdigit() else row[1]
        out.print(_t(f"{row[0]}. {name}: {rest}"))


def _grid(title: str, headings: list[str], cells: list[list[str]]) -> rich_table.Table:
    table = rich_table.Table(title=_t(title))
    for heading in headings:
        table.add_column(heading)
    for row in cells:
        _row(table, *row)
    return table


def _side_by_side_cell(text: str, lead: bool, style: str = "") -> rich_text.Text:
    """One cell of a comparison table (its value and ratio to the baseline,
    :func:`~ocplan.reports.summary.compared_text`): the best of the row in green with a
    star (the star marks it where colour does not show: a pipe, a file, NO_COLOR); else
    in ``style``."""
    return rich_text.Text(text + " *" if lead else text, style="green bold" if lead else style)


def _side_by_side_rows(table: rich_table.Table, rows: tuple[CompareRow, ...],
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


def _gathered(problems: list[Problem], parse: Callable[[str | None], R],
              text: str | None) -> R | None:
    """``parse(text)``, its SpecError's problems added to ``problems`` (None then), so a
    command reports every bad flag at once."""
    try:
        return parse(text)
    except SpecError as exc:
        problems.extend(exc.problems)
        return None


def _print_serving_compare(result: ServingComparison, model: str, fmt: Format,
                           price: str | None, job: dict[str, object]) -> None:
    if fmt is Format.json:
        _print_json(result.as_json() | {"job": job} | _priced(price))
        return
    table = rich_table.Table(title=_t(f"{model}: best serving layout of each system by "
                                      f"{result.objective}; (x) = ratio to {result.baseline}; "
                                      "* (green) = best"))
    table.add_column("", style="bold")
    for i, r in enumerate(result.systems):
        table.add_column(f"{i + 1}. {r.name}")
    from ocplan.reports.summary import SERVING_COMPARE_ROWS

    _side_by_side_rows(table, SERVING_COMPARE_ROWS, result.as_json()["systems"],
                       result.leaders, result.baseline)
    out.print(table)
    # one workload: every system runs in the same formats
    formats = next((r.best.formats for r in result.systems
                    if r.best is not None and r.best.formats is not None), None)
    if formats is not None:
        from ocplan.reports.summary import formats_text

        out.print(_t(f"number formats: {formats_text(formats)}"))
    note = result.note()
    if note:
        out.print(_t(note))
    ranking = result.ranking_note()
    if ranking is not None:
        out.print(_t(ranking), style="yellow" if result.within_reach() else None)


@app.command("search")
@handles_bad_input
@with_search_fixed_options
@with_training_options
def search_cmd(
    model: ModelOpt,
    chip: ChipOpt = None,
    chips: ChipsOpt = None,
    global_batch: GlobalBatchOpt = DEFAULT_GLOBAL_BATCH,
    seq_len: SeqLenOpt = DEFAULT_SEQ_LEN,
    objective: Annotated[str, typer.Option(
        metavar=_one_of(TRAINING_OBJECTIVES),
        help="What the best layout has most (throughput) or least of; the *_with_failures "
             "ones need the system file's storage.")] = "throughput",
    top: Annotated[int, typer.Option(help=f"Layouts to list (at most {MAX_TOP_K}).")] = 5,
    system: SystemFileOpt = None,
    train_tokens: TrainTokensOpt = None,
    price: Annotated[float | None, typer.Option(
        help=f"Price {PRICE_UNIT}, for cost to train (without one, the cost objective "
             "ranks by chip-hours and no cost is printed).")] = None,
    offload: Annotated[bool, typer.Option(help="Also try host activation offload.")] = False,
    chip_counts: Annotated[str | None, typer.Option(
        metavar="<n,n,...>", help="Comma-separated chip counts to compare, each <= --chips.")
    ] = None,
    max_power: Annotated[str | None, typer.Option(
        metavar="<power>", help="Most IT power allowed, with a unit (e.g. '2 MW').")] = None,
    memory_headroom: Annotated[float, typer.Option(
        help="Fraction of HBM to keep free (0 to below 1).")] = DEFAULT_MEMORY_HEADROOM,
    allow_invalid: AllowInvalidOpt = False,
    fmt: FormatOpt = Format.table,
    *,
    options: OptionFlags,
    layout: LayoutFlags,
) -> None:
    """Search the parallel layouts of a training job for the best one."""
    cat = _catalog()
    req = _from_flags(api.SearchRequest, model=model, chip=chip, chips=chips,
                      global_batch=global_batch, seq_len=seq_len, objective=objective,
                      top_k=top, train_tokens=train_tokens, price_per_chip_hour=price,
                      chip_counts=_counts(chip_counts), max_power_W=_power(max_power),
                      memory_headroom=memory_headroom, allow_invalid=allow_invalid,
                      **options, **layout)
    sysm, _, n_chips = api.resolve_job(cat, req, system, FLAGS,
                                       lambda: api.training_workload(cat, req, FLAGS))
    try:
        api.guard(sysm, allow_invalid)
    except Infeasible as exc:
        _refused(exc, sysm.spec.name, fmt)
    with _progress("searching", fmt) as bar:
        task = bar.add_task("search", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = api.run_search(cat, req, system, progress=tick, allow_offload=offload,
                                source=FLAGS)
    if fmt is Format.json:
        _print_json(result.as_json() | api.trust(sysm, allow_invalid)
                    | {"job": api.job_json(req)} | _priced(price))
        if not result.best_ends:  # nothing fits, or no run of it ends: exit 1, as an
            raise typer.Exit(1)   # estimate that cannot run
        return
    _print_trust(sysm, allow_invalid)
    out.print(_styled((model, "bold"), f" on {_hardware(n_chips, sysm)}, "
                      f"objective {objective}: {result.space_size:,} "
                      f"layouts, {result.evaluated:,} evaluated, {result.feasible:,} fit, "
                      f"{result.elapsed_s:.2f} s"))
    from ocplan.reports.summary import SEARCH_COLUMNS, job_text

    out.print(_t("job: " + job_text(api.job_json(req))))
    pruned = ", ".join(f"{k} {v:,}" for k, v in sorted(result.pruned.items()))
    out.print(f"pruned: {pruned}; every layout keeps {result.memory_headroom:.0%} of HBM "
              "free (--memory-headroom)")

    if result.top:
        _print_search_grid(f"top {len(result.top)} (layouts within {TIE_TOLERANCE:.1%} "
                           "of a row's score are its tied variants)",
                           SEARCH_COLUMNS, result.as_json()["top"])
    out.print(_t(result.why))
    if result.best is not None:
        for caveat in result.best.caveats:
            out.print(_t(f"caveat: {caveat}"))
    if not result.best_ends:
        raise typer.Exit(1)


def _hardware(chips: int, system: System) -> str:
    """``CHIPS x ACCELERATOR (SYSTEM)``, the system's name left out when it says the
    same (a system built from --chip is named ``CHIPS x ACCELERATOR``)."""
    head = f"{chips} x {system.accelerator.id}"
    return head if system.spec.name == head else f"{head} ({system.spec.name})"


def _prices(text: str | None) -> tuple[float, ...] | None:
    """``--price``: one price per chip-hour, or a comma-separated price per system."""
    if text is None:
        return None
    try:
        return tuple(float(p) for p in text.split(","))
    except ValueError:
        raise SpecError.one("--price", "price", "expected a number per chip-hour, or one "
                                                "per system separated by commas", text) from None


@app.command("compare")
@handles_bad_input
@with_training_options
def compare_cmd(
    systems: Annotated[list[str], typer.Argument(
        metavar="SYSTEM.yaml|CHIP...", help="System files (or accelerator ids, on their "
                                            "default server) to compare.")],
    model: ModelOpt,
    chips: Annotated[int | None, typer.Option(
        help="Chips of each system to use (default: all of a system file's, else 8).")
    ] = None,
    chip_counts: Annotated[str | None, typer.Option(
        metavar="<n,n,...>", help="Comma-separated chip counts: compare each system at each.")
    ] = None,
    global_batch: GlobalBatchOpt = DEFAULT_GLOBAL_BATCH,
    seq_len: SeqLenOpt = DEFAULT_SEQ_LEN,
    objective: Annotated[str, typer.Option(
        metavar=_one_of(TRAINING_OBJECTIVES), help="The best layout of each system by it.")
    ] = "throughput",
    train_tokens: TrainTokensOpt = None,
    price: Annotated[str | None, typer.Option(
        metavar="<price[,price...]>",
        help=f"Price {PRICE_UNIT}: one for all, or one per system separated by commas.")
    ] = None,
    memory_headroom: Annotated[float, typer.Option(
        help="Fraction of HBM every layout keeps free.")] = DEFAULT_MEMORY_HEADROOM,
    baseline: Annotated[int, typer.Option(
        help="Row (1 = first) the ratios divide by.")] = 1,
    allow_invalid: Annotated[bool, typer.Option(
        "--allow-invalid", help="Estimate systems that fail a compliance check anyway.")
    ] = False,
    max_cost: Annotated[float | None, typer.Option(
        help="Most the run may cost to train (needs --train-tokens and --price): pick the "
             "fastest row within it.")] = None,
    deadline: Annotated[str | None, typer.Option(
        metavar="<time>", help="Longest the run may take, e.g. '90 days' (needs "
                               "--train-tokens): alone, pick the cheapest row that meets "
                               "it (without --price, the least energy).")] = None,
    max_power: Annotated[str | None, typer.Option(
        metavar="<power>", help="Most facility power the run may draw, e.g. '20 MW'.")
    ] = None,
    report_file: Annotated[Path | None, typer.Option(
        "--report", help="Also write an HTML report (table, findings, bars, cost vs time; "
                         "Plotly in a shared file beside it).")] = None,
    fmt: FormatOpt = Format.table,
    *,
    options: OptionFlags,
) -> None:
    """Compare one training job on several systems, each at its best layout; with a
    budget (--max-cost, --deadline, --max-power), pick the row that meets it best."""
    problems: list[Problem] = []
    deadline_s = _duration(deadline, "--deadline", problems)
    power_W = _gathered(problems, _power, max_power)
    counts = _counts(chip_counts)
    rows = len(systems) * (len(counts) if counts else 1)  # one per system and count
    if not 1 <= baseline <= rows:
        raise SpecError.one("--baseline", "baseline", f"expected a row number from 1 to "
                                                      f"{rows}", baseline)
    try:
        req = _from_flags(api.CompareRequest, model=model, chips=chips,
                          chip_counts=counts, global_batch=global_batch,
                          seq_len=seq_len, objective=objective,
                          train_tokens=train_tokens, price_per_chip_hour=_prices(price),
                          memory_headroom=memory_headroom, baseline=baseline - 1,
                          allow_invalid=allow_invalid, max_cost=max_cost,
                          max_time_to_train_s=deadline_s, max_facility_power_W=power_W,
                          **options)
    except SpecError as exc:  # with the budget flags' problems: every bad flag at once
        raise SpecError(problems + list(exc.problems)) from None
    if problems:
        raise SpecError(problems)
    if report_file is not None:
        _check_report_page(report_file)
    result = api.run_compare(_catalog(), req, systems, FLAGS)
    if report_file is not None:
        from ocplan.reports.html import render_compare_report
        from ocplan.results.compare import budget_note

        _write_linked_report(report_file, render_compare_report(
            f"ocplan compare: {model}", result.as_json()
            | {"budget_note": budget_note(result, state.currency)}, None, state.currency),
            announce=fmt is not Format.json, flag="--report")
    # a budget no row meets has no answer: exit 1, as a search with no layout does
    unmet = result.pick is not None and result.pick.name is None
    if fmt is Format.json:
        _print_json(result.as_json() | {"job": api.job_json(req)} | _priced(price))
        if unmet:
            raise typer.Exit(1)
        return
    table = rich_table.Table(title=_t(f"{model}: best layout of each system by {objective}; "
                                      f"(x) = ratio to {result.baseline}; * (green) = best"))
    table.add_column("", style="bold")
    for i, r in enumerate(result.systems):
        table.add_column(f"{i + 1}. {r.name}" + (" (INVALID, allowed)" if r.allowed_invalid
                                                 else ""))
    from ocplan.reports.summary import COMPARE_ROWS

    _side_by_side_rows(table, COMPARE_ROWS, [r.as_json() for r in result.systems],
                       result.leaders, result.baseline)
    out.print(table)
    for i, r in enumerate(result.systems):
        found = [f for f in r.findings if f.severity != "info"]
        if found:
            out.print(_t(f"{i + 1}. check: " + "; ".join(f"{f.severity} {f.rule}: {f.message}"
                                                         for f in found)))
    from ocplan.results.compare import ranking_note  # loaded with the result

    ranking = ranking_note(result)
    if ranking is not None:
        out.print(_t(ranking), style="yellow" if result.within_reach() else None)
    if result.budget is not None and result.pick is not None:
        out.print(_budget_line(result))
    if unmet:
        raise typer.Exit(1)


def _budget_line(result: Comparison) -> rich_text.Text:
    """The budget's sentence (:func:`~ocplan.results.compare.budget_note`), its head
    bold and the pick green (red when no row meets it)."""
    from ocplan.results.compare import budget_note

    note = budget_note(result, state.currency)
    assert note is not None
    head, _, rest = note.partition("): ")
    pick = result.pick
    assert pick is not None
    if pick.name is None:
        return _styled((head + "): ", "bold"), (rest, "red"))
    return _styled((head + "): ", "bold"), (pick.name, "green bold"),
                   rest.removeprefix(pick.name))


#: Platforms that serve the mix a table and a report list when --top is not given.
MATCH_TOP = 10
#: Platforms that cannot serve the mix named in each line under the table (JSON and the
#: report list all of them).
MATCH_REASONS_SHOWN = 5


@app.command("match")
@handles_bad_input
def match_cmd(
    workload: Annotated[Path | None, typer.Option(
        help="Workload mix file: demand per archetype (see --list-archetypes), "
             "constraints, prices.")] = None,
    objective: Annotated[str | None, typer.Option(
        metavar=_one_of(MATCH_OBJECTIVES),
        help="Rank by it (default: the file's, else tco); perf_per_watt ranks by "
             "performance per watt, shown as perf/kW (the share of the mix one server "
             "serves per kW at full load).")] = None,
    top: Annotated[int | None, typer.Option(
        min=1, max=MAX_TOP_K, help="Platforms that serve the mix to list, best first "
                                   f"(default: {MATCH_TOP} in the table and report, every "
                                   "one in JSON); those that cannot are always listed "
                                   "with why.")] = None,
    report_file: Annotated[Path | None, typer.Option(
        "--report", help="Also write an HTML report (ranked table, perf/kW vs perf/cost "
                         "chart; Plotly in a shared file beside it).")] = None,
    list_archetypes: Annotated[bool, typer.Option(
        "--list-archetypes", help="List the archetypes a mix's demand names, each with its "
                                  "unit and what it measures, and exit.")] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Rank the catalog's CPU platforms (compute modules, and every CPU as a generic
    module) for a workload mix: fleet size, power at load, TCO, the binding constraint.

    Generic modules have 1 socket, and 2 where the CPU scales to two; a platform whose
    CPU publishes too little (TDP, memory speed) is listed as not modelled."""
    if list_archetypes:
        _match_archetypes(fmt)
        return
    if workload is None:
        raise SpecError.one("--workload", "workload", "missing; expected a workload mix "
                                                      "file (or --list-archetypes)")
    if report_file is not None:
        _check_report_page(report_file)
    refuse_other_file(workload, "match-workload")
    from ocplan.matching.match import match_notes
    from ocplan.matching.run import run_match

    result = _in_currency(run_match(_catalog(), workload, objective,
                                    objective_source="--objective"), workload)
    shown_top = MATCH_TOP if top is None else top
    if report_file is not None:
        from ocplan.reports.html import render_match_report

        _write_linked_report(report_file, render_match_report(result.as_json(), None,
                                                              shown_top),
                             announce=fmt is not Format.json, flag="--report")
    feasible = [m for m in result.ranked if m.feasible]
    if fmt is Format.json:
        _print_json(result.as_json(top))
        if not feasible:  # the answer is "no": no platform serves the mix
            raise typer.Exit(1)
        return
    headings = ["#", "platform", "servers", "binding", "power at load", "energy cost",
                "TCO", "perf/kW", "perf/cost", "notes"]
    cells = []
    for i, m in enumerate(feasible[:shown_top], 1):
        cells.append([str(i), m.platform, f"{m.servers:,}", m.binding or "-",
                      _q(m.fleet_power_W, "W"), _match_money(m.energy_cost, result.currency),
                      _match_money(m.tco, result.currency),
                      "-" if m.perf_per_kW is None else f"{m.perf_per_kW:.3g}",
                      "-" if m.perf_per_cost is None else f"{m.perf_per_cost:.3g}",
                      match_notes(m.flags, m.findings)])
    if feasible:
        _print_rows(_match_title(result.name, result.objective, len(cells), len(feasible)),
                    headings, cells)
    else:
        out.print(_styled((f"{result.name}: no platform can serve the mix", "red")))
    if result.objective_note is not None:
        out.print(_t(result.objective_note))
    out.print(_t("perf/kW: the mix's share one server serves per kW at full load; perf/cost: "
                 f"per million {result.currency} of price (one unit = the whole demand)"))
    for status, said in (("cannot serve", "cannot serve it"), ("not modelled", "not modelled")):
        refused = [m for m in result.ranked if m.status == status]
        if refused:
            out.print(_t(f"{len(refused)} platform(s) {said}: " + "; ".join(
                f"{m.platform} ({(m.reason or '').removeprefix('not modelled: ')})"
                for m in refused[:MATCH_REASONS_SHOWN])
                + (" ..." if len(refused) > MATCH_REASONS_SHOWN else "")))
    if not feasible:  # the answer is "no": no platform serves the mix
        raise typer.Exit(1)


def _match_title(name: str, objective: str, shown: int, served: int) -> str:
    """The ranking's title, saying what it shows: ``best 10 platforms by tco (of 62 that
    serve the mix)`` or ``best 4 platforms by tco (all that serve the mix)``."""
    which = "all" if shown == served else f"of {served}"
    return f"{name}: best {shown} platforms by {objective} ({which} that serve the mix)"


def _match_archetypes(fmt: Format) -> None:
    """``match --list-archetypes``: each archetype's id, demand unit and what it
    measures (JSON: the registry's fields)."""
    from ocplan.matching.archetypes import ARCHETYPES

    def sizing(slots: bool) -> str:
        return "slots (no headroom)" if slots else "throughput (with headroom)"

    if fmt is Format.json:
        _print_json({"archetypes": [
            {"id": a.id, "unit": a.unit, "benchmark": a.benchmark, "metric": a.metric,
             "summary": a.summary, "sizing": sizing(a.slots)} for a in ARCHETYPES.values()]})
        return
    _print_rows("archetypes of a mix's demand (demand: {id: amount in its unit})",
                ["#", "id", "unit", "sizing", "what it measures"],
                [[str(i), a.id, a.unit, sizing(a.slots), a.summary]
                 for i, a in enumerate(ARCHETYPES.values(), 1)])


def _match_money(amount: float | None, currency: str) -> str:
    return "-" if amount is None else format_money(amount, currency)


def _in_currency(result: MatchResult, workload: Path) -> MatchResult:
    """``result`` labelled in --currency when the mix names none (its prices are then in
    --currency); a SpecError when the two disagree, instead of ignoring the flag."""
    if not state.currency_given or result.currency == state.currency:
        return result
    named = load_yaml(workload).get("currency")
    if named is None:
        return replace(result, currency=state.currency)
    raise SpecError.one("--currency", "currency",
                        f"the workload mix {workload} prices in {named!r} (its 'currency:'); "
                        "give that label or leave --currency out", state.currency)


@app.command()
@handles_bad_input
def validate(file: Annotated[Path, typer.Argument(metavar="FILE.csv")],
             fmt: FormatOpt = Format.table) -> None:
    """Predict published training runs, serving results or CPU benchmarks (the layout is
    recognised from the header) and report the error of each and overall.

    Exit 1 when a row could not be predicted or was infeasible (CPU rows of benchmarks
    the model does not cover are excluded, not failed)."""
    from ocplan.cli.csv_input import refuse_non_csv
    from ocplan.results.validation import MAX_CSV_BYTES

    refuse_non_csv(file, MAX_CSV_BYTES)  # an empty or YAML file: say so, in one line
    if api.is_serving_file(file):
        statuses = _validate_serving(file, fmt)
    elif api.is_cpu_file(file):
        statuses = _validate_cpu(file, fmt)
    else:
        statuses = _validate_training(file, fmt)
    if any(status not in PASSED_STATUSES for status in statuses):
        raise typer.Exit(1)


#: Statuses of validation rows that did not fail: predicted, or (CPU) a benchmark the
#: model does not predict and leaves out of the statistics.
PASSED_STATUSES = ("ok", "excluded")


#: The validate tables' column saying whether a measurement fell in its estimate's
#: likely range (the range the coverage sentence under the table counts).
IN_RANGE_HEADING = "in likely range"


def _in_range(within: bool | None) -> str:
    """A case's cell of :data:`IN_RANGE_HEADING` ("-": no range was stated)."""
    return "-" if within is None else ("yes" if within else "no")


def _validate_training(file: Path, fmt: Format) -> list[str]:
    """Published training runs, each predicted with its own layout; the rows' statuses."""
    cases, summary = api.validate_runs(_catalog(), file)
    statuses = [c.status for c in cases]
    within, judged = api.likely_range_coverage(cases)
    if fmt is Format.json:
        _print_json({"summary": summary.__dict__ | {"within_likely_range": within,
                                                    "judged_for_range": judged},
                     "cases": [c.as_json() for c in cases]})
        return statuses
    table = rich_table.Table(title=_t(f"ocplan validate {file.name}"))
    for col in ("case", "chip", "model", "measured tokens/s per chip", "predicted", "error %",
                IN_RANGE_HEADING, "status"):
        table.add_column(col)
    for c in cases:
        _row(table, c.case_id, c.chip, c.model[:28], f"{c.measured_tokens_per_s_per_chip:,.1f}",
             "-" if c.predicted_tokens_per_s_per_chip is None
             else f"{c.predicted_tokens_per_s_per_chip:,.1f}",
             "-" if c.error_pct is None else f"{c.error_pct:+.1f}",
             _in_range(c.within_likely_range),
             c.status if c.reason is None else f"{c.status}: {c.reason}")
    out.print(table)
    _group_tables(cases, (("chip", "by chip"), ("source", "by source"),
                          ("architecture", "dense vs MoE")))
    out.print(f"n={summary.n} failed={summary.failed} median |error| "
              f"{_pct(summary.median_abs_error_pct)}% p90 {_pct(summary.p90_abs_error_pct)}% "
              f"max {_pct(summary.max_abs_error_pct)}% mean signed "
              f"{_pct(summary.mean_signed_error_pct, '+')}%")
    if judged:
        out.print(coverage_note(within, judged))
    return statuses


def _validate_cpu(file: Path, fmt: Format) -> list[str]:
    """CPU benchmark rows, each predicted from its own specs by a calibration fitted
    without its CPU; the rows' statuses."""
    from ocplan.results.cpu_validation import excluded_by_reason, excluded_phrase

    cases, summary, by_benchmark = api.validate_cpu_runs(file)
    statuses = [c.status for c in cases]
    excluded = sum(c.status == "excluded" for c in cases)
    if fmt is Format.json:
        _print_json({"summary": summary.__dict__ | {"excluded": excluded,
                                                    "excluded_by_reason":
                                                        excluded_by_reason(cases),
                                                    "mode": "leave one CPU out"},
                     "by_benchmark": {k: v.__dict__ for k, v in by_benchmark.items()},
                     "cases": [c.as_json() for c in cases]})
        return statuses
    table = rich_table.Table(title=_t(f"ocplan validate {file.name} (CPU, each CPU left out "
                                      "of the fit)"))
    for col in ("benchmark", "n", "median |error| %", "p90 %", "max %", "mean signed %"):
        table.add_column(col)
    for name, sm in by_benchmark.items():
        _row(table, name, str(sm.n), _pct(sm.median_abs_error_pct), _pct(sm.p90_abs_error_pct),
             _pct(sm.max_abs_error_pct), _pct(sm.mean_signed_error_pct, "+"))
    out.print(table)
    out.print(f"n={summary.n} failed={summary.failed} {excluded_phrase(cases)} "
              f"median |error| {_pct(summary.median_abs_error_pct)}% "
              f"p90 {_pct(summary.p90_abs_error_pct)}% max {_pct(summary.max_abs_error_pct)}%")
    return statuses


def _group_tables(cases: Sequence[Case] | Sequence[ServingCase],
                  groupings: tuple[tuple[str, str], ...]) -> None:
    """One table of errors per (case attribute, title): n, failed, median and mean."""
    for key, title in groupings:
        groups: dict[str, list[Case | ServingCase]] = {}
        for c in cases:
            groups.setdefault(getattr(c, key), []).append(c)
        gt = rich_table.Table(title=f"error {title}")
        for col in (key, "n", "failed", "median |error| %", "mean signed %"):
            gt.add_column(col)
        for name, group in sorted(groups.items()):
            g = api.summarize_runs(group)
            _row(gt, name[:50], str(g.n), str(g.failed), _pct(g.median_abs_error_pct),
                 _pct(g.mean_signed_error_pct, "+"))
        out.print(gt)


def _validate_serving(file: Path, fmt: Format) -> list[str]:
    """Published serving results, each predicted; the rows' statuses."""
    cases, summary = api.validate_serving_runs(_catalog(), file)
    statuses = [c.status for c in cases]
    latency = {name: api.summarize_runs([_LatencyScore(getattr(c, f"{name}_error_pct"))
                                          for c in cases
                                          if getattr(c, f"{name}_error_pct") is not None])
               for name in ("ttft", "tpot")}
    within, judged = api.likely_range_coverage(cases)
    if fmt is Format.json:
        _print_json({"summary": summary.__dict__ | {"within_likely_range": within,
                                                    "judged_for_range": judged},
                     "cases": [c.as_json() for c in cases],
                     "latency": {k: v.__dict__ for k, v in latency.items()}})
        return statuses
    table = rich_table.Table(title=_t(f"ocplan validate {file.name} (serving)"))
    for col in ("case", "chip", "model", "scenario", "metric", "measured", "predicted",
                "error %", IN_RANGE_HEADING, "layout", "status"):
        table.add_column(col)
    for c in cases:
        _row(table, c.case_id, c.chip, c.model[:24], c.scenario, c.metric,
             f"{c.measured:,.1f}", "-" if c.predicted is None else f"{c.predicted:,.1f}",
             "-" if c.error_pct is None else f"{c.error_pct:+.1f}",
             _in_range(c.within_likely_range),
             f"{c.layout} ({c.layout_source})" if c.layout else "-",
             c.status if c.reason is None else f"{c.status}: {c.reason}")
    out.print(table)
    _group_tables(cases, (("chip", "by chip"), ("source", "by source"),
                          ("scenario", "by scenario"), ("architecture", "dense vs MoE")))
    for name, g in latency.items():
        if g.n:
            out.print(f"{name.upper()}: n={g.n} median |error| {_pct(g.median_abs_error_pct)}%")
    out.print(f"n={summary.n} failed={summary.failed} median |error| "
              f"{_pct(summary.median_abs_error_pct)}% p90 {_pct(summary.p90_abs_error_pct)}% "
              f"max {_pct(summary.max_abs_error_pct)}% mean signed "
              f"{_pct(summary.mean_signed_error_pct, '+')}%")
    if judged:
        out.print(coverage_note(within, judged, "results"))
    return statuses


@dataclass(frozen=True)
class _LatencyScore:
    error_pct: float | None
    status: str = "ok"


def _pct(value: float | None, sign: str = "") -> str:
    """A percentage with one decimal, or ``-`` when there is none."""
    return "-" if value is None else f"{value:{sign}.1f}"


def _sweep_figures(summary: TaskSummary) -> dict[str, Any]:
    """A task's best layout with its stored comparison columns (time, cost; at the SLO
    goodput where a serving sweep ranks by it): the comparison's values first."""
    return (summary.best or {}) | (summary.row or {})


def _print_sweep_table(kind: str, summaries: Sequence[TaskSummary]) -> None:
    """A sweep's tasks as a table: model, hardware, chips, status, the kind's columns
    (:data:`~ocplan.reports.summary.SWEEP_COLUMNS_BY_KIND`) and the check errors, with
    the notes saying what the columns mean."""
    from ocplan.reports.summary import SWEEP_COLUMNS_BY_KIND, compare_cell, present

    table = rich_table.Table(title="best layout per task")
    figures = [_sweep_figures(s) for s in summaries]
    # the layout's column holds a failed task's reason
    layout, *rest = SWEEP_COLUMNS_BY_KIND[kind]
    shown = [layout, *present(rest, [f for f, s in zip(figures, summaries, strict=True)
                                     if s.best is not None])]
    for col in ("#", "model", "hardware", "chips", "status", *(c.label for c in shown),
                "check errors"):
        table.add_column(col)
    for i, (s, f) in enumerate(zip(summaries, figures, strict=True), 1):
        errors = str(sum(x["severity"] == "error" for x in (s.row or {}).get("findings", [])))
        if s.best is None:  # the reason stands where the layout would
            why = s.error or (s.row or {}).get("reason") or "no layout fits"
            cells = [why, *("-" for _ in shown[1:])]
        else:
            cells = [compare_cell(c, f.get(c.field), state.currency) for c in shown]
        _row(table, str(i), s.task.model_name, s.task.hardware, str(s.task.chips), s.status,
             *cells, errors)
    out.print(table)
    # what the columns mean where the kind says (a serving sweep ranked by goodput)
    for note in dict.fromkeys(n for s in summaries if (n := (s.row or {}).get("note"))):
        out.print(_t(str(note)))


@app.command("sweep")
@handles_bad_input
def sweep_cmd(
    file: Annotated[Path, typer.Argument(metavar="SWEEP.yaml")],
    backend: Annotated[str, typer.Option(
        metavar=_one_of(SWEEP_BACKENDS),
        help="local (process pool) or ray (remote tasks on a Ray cluster).")] = "local",
    address: Annotated[str | None, typer.Option(
        metavar="<host:port|auto>",
        help="Ray cluster to join (host:port or auto); with --backend ray.")] = None,
    workers: Annotated[int | None, typer.Option(
        min=1, help="Parallel tasks (default: CPUs of this machine or of the cluster).")
    ] = None,
    db: Annotated[str | None, typer.Option(
        "--db", metavar="<url|file>",
        help="Results store: an SQLAlchemy URL, or a file path for SQLite (default "
             "sqlite:///ocplan.db).")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Run a grid of layout searches (training, or serving with kind: serving), skipping
    those already stored; exit 1 if any task failed."""
    from ocplan.store.db import open_store
    from ocplan.sweep.runner import check_options, run_sweep
    from ocplan.sweep.spec import expand_sweep, load_sweep

    check_options(backend, address, workers)
    refuse_other_file(file, "sweep")
    sweep = load_sweep(file)
    cat = _catalog()
    total = len(expand_sweep(sweep, cat))  # the whole grid is checked before the store opens
    with open_store(db) as store, _progress("sweep", fmt) as bar:
        task = bar.add_task("sweep", total=total)

        def tick(done: int, todo: int) -> None:
            bar.update(task, completed=done, total=todo)

        report = run_sweep(sweep, store, backend, address, workers, catalog=cat,
                           progress=tick)
        summaries = report.summaries(store)
        url = store.url
    counts = report.counts()
    if fmt is Format.json:
        _print_json({"sweep": report.name, "kind": sweep.spec.kind, "db": url,
                     "backend": backend} | counts
                    | {"elapsed_s": report.elapsed_s,
                       "results": [s.as_json() for s in summaries]})
    else:
        out.print(_styled((f"sweep {report.name}", "bold"), f" ({file}) into {url}: "
                          f"{counts['tasks']} tasks, {counts['skipped']} already stored, "
                          f"{counts['ran']} run, {counts['failed']} failed "
                          f"({report.elapsed_s:.1f} s, backend {backend})"))
        _print_sweep_table(sweep.spec.kind, summaries)
    if report.failed:
        raise typer.Exit(1)


class ListFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


@app.command("sweeps")
@handles_bad_input
def sweeps_cmd(
    name: Annotated[str | None, typer.Argument(
        metavar="[NAME]", help="A stored sweep to show (none: list every stored sweep).",
        show_default=False)] = None,
    db: Annotated[str | None, typer.Option(
        "--db", metavar="<url|file>",
        help="Results store: an SQLAlchemy URL, or a file path for SQLite (default "
             "sqlite:///ocplan.db).")] = None,
    fmt: Annotated[ListFormat, typer.Option(
        "--format", "-f", help="Output format; csv: one row per task, values in SI units "
                               "under their field names.")] = ListFormat.table,
    delete: Annotated[bool, typer.Option(
        "--delete", help="Forget the sweep NAME's record; its tasks' results stay stored "
                         "(other sweeps may name them, and a rerun finds them).")] = False,
) -> None:
    """List the sweeps in a results store, or show one: each task's best layout as its
    last run stored it (nothing is run)."""
    from ocplan.store.db import open_store
    from ocplan.sweep.stored import forget_sweep, list_sweeps, read_sweep

    if delete and name is None:
        raise SpecError.one(FLAGS, "delete", "forgets one sweep: give its NAME", True)
    if delete:
        assert name is not None
        with open_store(db) as store:
            forget_sweep(store, name)
            url = store.url
        if fmt is ListFormat.json:
            _print_json({"db": url, "deleted": name})
        else:
            out.print(_t(f"forgot sweep {name} in {url} (its tasks' results stay stored)"))
        return
    with open_store(db) as store:
        url = store.url
        if name is None:
            listing = list_sweeps(store)
        else:
            view = read_sweep(store, name)
    if name is None:
        if fmt is ListFormat.json:
            _print_json({"db": url, "sweeps": [s.as_json() for s in listing]})
        elif fmt is ListFormat.csv:
            columns = ["name", "kind", "tasks", "stored", "missing", "code", "updated_at",
                       "error"]
            _print_csv(columns, [[s.as_json()[c] for c in columns] for s in listing])
        else:
            table = rich_table.Table(title=f"sweeps in {url}")
            for col in ("name", "kind", "tasks", "stored", "missing", "last run (UTC)",
                        "code"):
                table.add_column(col)
            for s in listing:  # a damaged record says why where its counts would be
                shown = ((str(s.stored), str(s.tasks - s.stored)) if s.error is None
                         else ("-", f"unreadable: {s.error}"))
                _row(table, s.name, s.kind, str(s.tasks), *shown,
                     s.updated_at.strftime("%Y-%m-%d %H:%M:%S"), s.code)
            out.print(table if listing else _t(f"no sweeps in {url} yet: run one with "
                                               "'ocplan sweep FILE'"))
        return
    if fmt is ListFormat.json:
        _print_json({"db": url} | view.as_json())
    elif fmt is ListFormat.csv:
        from ocplan.reports.summary import SWEEP_COLUMNS_BY_KIND

        fields = [c.field for c in SWEEP_COLUMNS_BY_KIND[view.kind]]
        _print_csv(["model", "hardware", "chip", "chips", "status", *fields, "reason"],
                   [[s.task.model_name, s.task.hardware, s.task.chip, s.task.chips,
                     s.status, *(_sweep_figures(s).get(f) if s.best is not None else None
                                 for f in fields),
                     (s.row or {}).get("reason")] for s in view.summaries])
    else:
        counts = view.counts()
        out.print(_styled((f"sweep {view.name}", "bold"),
                          f" ({view.kind}) in {url}: {counts['tasks']} tasks, "
                          f"{counts['stored']} stored, {counts['missing']} missing; last run "
                          f"{view.updated_at:%Y-%m-%d %H:%M:%S} UTC by code {view.code}"))
        _print_sweep_table(view.kind, view.summaries)


def _print_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Rows as CSV on stdout: numbers as Python writes them (SI units), none as empty."""
    import csv

    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])


@app.command()
@handles_bad_input
def serve(
    host: Annotated[str, typer.Option(metavar="<address>", help="Address to bind.")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    db: Annotated[str | None, typer.Option(
        metavar="<url|file>",
        help="Database of saved scenarios and stored results (the sweeps of 'ocplan sweep "
             "--db'): an SQLAlchemy URL, or a file path for SQLite.")] = None,
    token: Annotated[str | None, typer.Option(
        metavar="<token>",
        help="Required on every request; mandatory when not bound to loopback.")] = None,
    allow_host: Annotated[list[str] | None, typer.Option(
        metavar="<host>",
        help="Another host name the Host header may give (repeatable), e.g. the "
             "machine's name when bound to 0.0.0.0; '*' allows any.")] = None,
    system: Annotated[list[Path] | None, typer.Option(
        metavar="<file>",
        help="System or compute-module file to serve read-only as Redfish under "
             "/redfish/v1 (repeatable; default: each catalog OAM module in its default "
             "server).")] = None,
) -> None:
    """Run the web workbench (http://HOST:PORT/, API docs at /docs, a read-only Redfish
    view of the systems at /redfish/v1).

    Requests must name a known host in their Host header (DNS-rebinding defence):
    127.0.0.1, localhost, [::1], --host and every --allow-host. Prices are in the
    --currency given before 'serve' (default USD); answers with costs name it.
    """
    if host not in ("127.0.0.1", "localhost", "::1") and not token:
        raise SpecError.one("--host", "host", "binding beyond loopback needs --token", host)
    import uvicorn

    from ocplan.web.app import DEFAULT_ALLOWED_HOSTS, create_app

    hosts = (*DEFAULT_ALLOWED_HOSTS, host, *(allow_host or ()))
    problems: list[Problem] = []
    systems: list[System | CpuNode] = []
    for path in system or ():
        try:
            systems.append(api.read_managed(_catalog(), path))
        except SpecError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SpecError(problems)
    app_ = create_app(db, token=token, catalog_dirs=state.catalog_dirs, allowed_hosts=hosts,
                      redfish_systems=systems, currency=state.currency)
    out.print(_t(f"ocplan workbench on {serve_url(host, port)} (API docs at /docs, "
                 "Redfish at /redfish/v1); Ctrl+C stops it"))
    restore_collector()  # it runs for hours: the start-up thresholds are for start-up
    uvicorn.run(app_, host=host, port=port, log_level="warning")


def serve_url(host: str, port: int) -> str:
    """The address a browser opens for ``ocplan serve --host HOST --port PORT`` (IPv6
    literals in brackets; the wildcard 0.0.0.0 shown as this machine's loopback)."""
    shown = "127.0.0.1" if host == "0.0.0.0" else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


@app.command()
@handles_bad_input
@with_layout_options
@with_training_options
def report(
    model: ModelOpt,
    out_file: Annotated[Path, typer.Option("--out", help="File to write (HTML or JSON).")],
    chip: ChipOpt = None,
    chips: ChipsOpt = None,
    global_batch: GlobalBatchOpt = DEFAULT_GLOBAL_BATCH,
    seq_len: SeqLenOpt = DEFAULT_SEQ_LEN,
    system: SystemFileOpt = None,
    run_search: Annotated[bool, typer.Option(
        "--search", help="Search the layouts and report the best one; a layout flag "
                         "given pins that field in every layout searched.")] = False,
    objective: Annotated[str, typer.Option(
        metavar=_one_of(TRAINING_OBJECTIVES), help="With --search: the best layout by it.")
    ] = REPORT_OBJECTIVE,
    top: Annotated[int, typer.Option(help="With --search: rows of the top table.")
                   ] = REPORT_TOP,
    train_tokens: TrainTokensOpt = None,
    price: Annotated[float | None, typer.Option(
        help=f"Price {PRICE_UNIT}, e.g. 2.5.")] = None,
    report_format: Annotated[str | None, typer.Option(
        "--format", metavar=_one_of(REPORT_FORMATS),
        help="html (a page; Plotly in a shared file beside it) or json (default: as --out's "
             "ending names it, .json or .html; else html).")] = None,
    inline_plotly: Annotated[bool, typer.Option(
        "--inline-plotly", help="Put Plotly inside the HTML (one file of about 5 MB) "
                                "instead of a shared plotly file beside it.")] = False,
    allow_invalid: AllowInvalidOpt = False,
    *,
    options: OptionFlags,
    layout: LayoutFlags,
) -> None:
    """Write a report (HTML whose plots work offline, or JSON): the estimate, the
    system's check findings, time, energy and cost to train, the top layouts."""
    from ocplan.reports.html import ReportData, plotly_js_path, render_report

    report_format = _report_format(out_file, report_format)
    _check_target(out_file)
    problems = (_picked_by_search(layout, api.REQUEST_LAYOUT,
                                  SEARCH_FIXED_LAYOUT + SEARCH_PINNABLE_LAYOUT)
                if run_search else
                [Problem(FLAGS, name, "applies with --search (the layout flags give the "
                                      "layout otherwise)", value)
                 for name, value, default in (("objective", objective, REPORT_OBJECTIVE),
                                              ("top", top, REPORT_TOP))
                 if value != default])
    if problems:
        raise SpecError(problems)
    cat = _catalog()
    search_json = None
    no_fit: str | None = None  # why the search found no layout, when it found none
    req = _from_flags(
        api.EstimateRequest, model=model, chip=chip, chips=chips, global_batch=global_batch,
        seq_len=seq_len, train_tokens=train_tokens, price_per_chip_hour=price,
        allow_invalid=allow_invalid, **options, **layout)
    sysm = api.job_system(cat, chip, system, chips, FLAGS)
    try:
        api.guard(sysm, allow_invalid)  # nothing is written for a refused system
    except Infeasible as exc:
        _refused(exc, sysm.spec.name, Format.table)
    if run_search:
        found = api.run_search(cat, _from_flags(
            api.SearchRequest, model=model, chip=chip, chips=chips,
            global_batch=global_batch, seq_len=seq_len, **req.options(), top_k=top,
            objective=objective, train_tokens=req.train_tokens,
            price_per_chip_hour=price, allow_invalid=allow_invalid,
            **{f.name: layout[f.name] for f in SEARCH_FIXED_LAYOUT},
            # a layout flag given (away from its default) pins that field in the search
            **{f.name: layout[f.name] for f in SEARCH_PINNABLE_LAYOUT
               if layout[f.name] != f.default}), system, source=FLAGS)
        search_json = found.as_json()
        if found.best is None:
            no_fit = found.why
        else:
            best = found.best.plan
            req = req.model_copy(update={f.name: getattr(best, f.name)
                                         for f in api.REQUEST_LAYOUT})
    result, sysm, workload = api.run_estimate(cat, req, system, FLAGS)
    data = ReportData(title=f"ocplan report: {model} on {sysm.spec.name}", result=result,
                      job=api.job_json(req),
                      timeline=api.pipeline_timeline(result, workload),
                      topology=api.topology_report(sysm),
                      findings=[f.as_dict() for f in api.check_system(sysm)],
                      search=search_json, to_train=_to_train(result, req, sysm),
                      micro_batches=result.plan.micro_batches(workload),
                      allowed_invalid=bool(api.trust(sysm, allow_invalid)["allowed_invalid"]),
                      cluster=api.outlook(result, workload, sysm, req.train_tokens,
                                          price).as_json(),
                      currency=state.currency,
                      sensitivity=api.run_sensitivity(result, workload, sysm,
                                                      req.sensitivity))
    if report_format == "json":
        _write_page(out_file, jsonio.dumps(data.as_json(), indent=2) + "\n")
    elif inline_plotly:
        _write_page(out_file, render_report(data, plotly_js_path()))
    else:
        _write_linked_report(out_file, render_report(data, None))
    if no_fit is not None:  # the search's reason, not that of the default layout
        out.print(_t(no_fit))
        raise typer.Exit(1)
    if not result.feasible:  # the report says why; the exit code too, as estimate's
        hint = api.infeasible_hint(result.reason, plan=result.plan)
        out.print(_t(f"the layout cannot run: {result.reason}"
                     + (f"; what to change: {hint}" if hint else "")))
        raise typer.Exit(1)


def _to_train(result: Estimate, req: Any, system: System) -> dict[str, float]:
    """Time, energy and (with a price) cost to train the request's tokens."""
    return api.to_train(result, req.train_tokens, req.price_per_chip_hour, system)


def _write_linked_report(out_file: Path, page: str, announce: bool = True,
                         flag: str = "--out") -> None:
    """Write a report page that loads Plotly from the shared file beside it, and that
    file (:data:`~ocplan.reports.html.PLOTLY_FILE`) unless it is already there; a
    problem names ``flag``, the option that gave the file."""
    from ocplan.reports.html import PLOTLY_FILE, plotly_js_path

    _check_target(out_file, flag)
    shared = out_file.with_name(PLOTLY_FILE)
    fresh = _write_shared(shared, plotly_js_path(), flag)
    _write_page(out_file, page, announce=announce, flag=flag)
    if fresh and announce:
        out.print(_t(f"wrote {shared} (Plotly, shared by the reports in that folder)"))


def _write_shared(target: Path, source: Path, flag: str = "--out") -> bool:
    """Copy a shared asset beside a report unless the same file is already there;
    whether it was written."""
    if target.exists() and target.stat().st_size == source.stat().st_size:
        return False
    _write_page(target, source.read_text(encoding="utf-8"), announce=False, flag=flag)
    return True


#: File-name endings that say which report format a file holds.
REPORT_SUFFIXES = {".json": "json", ".html": "html", ".htm": "html"}


def _report_format(out_file: Path, given: str | None) -> str:
    """The report format: ``--format`` when given, else the one ``--out``'s ending
    names (``.json``: json), else html; a SpecError when the two disagree (an HTML page
    in ``report.json``)."""
    named = REPORT_SUFFIXES.get(out_file.suffix.lower())
    if given is not None and given not in REPORT_FORMATS:
        raise SpecError.one("--format", "format", f"expected {' or '.join(REPORT_FORMATS)}",
                            given)
    if given is not None and named is not None and given != named:
        kind = {"json": "a JSON", "html": "an HTML"}[named]
        raise SpecError.one("--out", "out", f"the name ends in {out_file.suffix}, {kind} "
                                            f"file, but --format is {given}; give a "
                                            f".{given} name or drop --format", str(out_file))
    return given or named or "html"


def _check_report_page(path: Path) -> None:
    """The early check of a ``--report`` file, before any work: an HTML page's name (its
    folder is left to the write)."""
    _check_target(path, "--report", folder=False, html_only=True)


def _check_target(path: Path, flag: str = "--out", folder: bool = True,
                  html_only: bool = False) -> None:
    """A SpecError naming ``flag`` unless ``path`` names a file to write: not a folder, a
    name the file system takes and, with ``folder``, in a folder that exists (an early
    check of ``--report`` leaves the folder to the write); with ``html_only`` (an HTML
    page, ``--report``), not a name ending in ``.json``."""
    field = flag.removeprefix("--")
    if html_only and REPORT_SUFFIXES.get(path.suffix.lower()) == "json":
        raise SpecError.one(flag, field, "writes an HTML page; give an .html name (the "
                                         "command's --format json prints the JSON)", str(path))
    try:
        is_dir = path.is_dir()
        folder_ok = not folder or path.parent.is_dir()
    except OSError as exc:  # a name the file system refuses (too long, ...)
        raise SpecError.one(flag, field, f"not a usable file name ({exc.strerror})",
                            str(path)) from None
    if not path.name or is_dir:
        raise SpecError.one(flag, field, "expected the path of a file to write", str(path))
    if path.exists() and not path.is_file():  # a pipe, a device, a socket (links followed)
        raise SpecError.one(flag, field, "is no regular file (a pipe, device or socket); "
                                         "expected the path of a file to write", str(path))
    if not folder_ok:
        raise SpecError.one(flag, field, f"folder {path.parent} does not exist", str(path))


def _write_page(out_file: Path, page: str, announce: bool = True,
                flag: str = "--out") -> None:
    """Write a report atomically (a ``.part`` file renamed), or a SpecError naming
    ``flag``, the option that gave the file, and the file."""
    _check_target(out_file, flag)
    # through a link to the file it names (renaming onto the link would replace it)
    target = out_file.resolve() if out_file.is_symlink() else out_file
    tmp = target.with_name(target.name + ".part")
    try:
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SpecError.one(flag, flag.removeprefix("--"),
                            f"cannot write the report: {exc.strerror or exc}",
                            str(out_file)) from None
    if announce:
        out.print(_t(f"wrote {out_file} ({format_quantity(len(page.encode()), 'B')})"))


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


def _progress(label: str, fmt: Format) -> Progress | _NoBar:
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


def _command_name(info: CommandInfo) -> str:
    """The name a registered command is called by (typer's rule for unnamed ones)."""
    if info.name:
        return info.name
    assert info.callback is not None
    return info.callback.__name__.lower().replace("_", "-")


def _app_for(args: Sequence[str]) -> typer.Typer:
    """The application with only the command being run registered (plus the root
    options and the sub-groups, which keep it a group), when the first word names a
    command.

    Typer builds the click parameters of every registered command before it dispatches,
    about 0.1 s for this CLI's layout-heavy commands; a command's own parsing, help and
    errors do not depend on its siblings. Anything else (no command, ``--help``, a
    group, an unknown word) gets the whole application and its usual messages.
    """
    first = next((a for a in args if not a.startswith("-")), None)
    if first is None or any(a in ("--help", "-h") for a in args[:args.index(first)]):
        return app
    chosen = [c for c in app.registered_commands if _command_name(c) == first]
    if not chosen:
        return app
    narrow = _new_app()
    narrow.registered_callback = app.registered_callback  # --catalog, --currency
    narrow.registered_commands = chosen
    narrow.registered_groups = list(app.registered_groups)
    return narrow


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 check errors, 2 bad input).

    Usage errors (an unknown option, a value that is not a number) are printed as one
    line, like every other bad input, instead of click's usage box.
    """
    try:
        return _run(list(sys.argv[1:] if argv is None else argv))
    finally:
        if argv is None:
            # The process ends with the command (the console script): the interpreter's
            # shutdown collects cycles over every object left, ~0.15-0.2 s for what a
            # command loads; frozen objects are not walked. Calls with argv (tests, other
            # programs) go on, so their objects stay collectable.
            gc.freeze()


def _run(args: list[str]) -> int:
    state.json_errors = _asks_json(args)
    try:
        code = _app_for(args)(args=args, prog_name="ocplan", standalone_mode=False)
    except ClickException as exc:
        bad = _bad_value(exc, args)
        if bad is not None:  # one line naming the flag, the value and what it takes
            line = _t(f"ocplan: {replace(bad, field='').line()}")
            err.print(line)
            if state.json_errors:
                _print_json(_error_document(exc.exit_code, [_problem_json(
                    bad.source, bad.field, bad.value, bad.message, line)]))
            return exc.exit_code
        message = " ".join(exc.format_message().split())
        if message:  # a bare command prints its help and has no message
            line = _t(f"ocplan: {message}")
            err.print(line)
            if state.json_errors:
                _print_json(_error_document(exc.exit_code,
                                            [_usage_problem(exc, args, message, line)]))
        return exc.exit_code
    except typer.Abort:
        err.print("ocplan: aborted")
        if state.json_errors:
            _print_json(_error_document(1, [_problem_json("ocplan", "", None, "",
                                                          "ocplan: aborted")]))
        return 1
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return code if isinstance(code, int) else 0


def _usage_problem(exc: ClickException, args: Sequence[str], message: str, line: str
                   ) -> dict[str, Any]:
    """A usage error (an unknown option, a value that is not a number, a missing
    argument) as a problem of the error document: the flag as its source, the
    parameter as its field and the value given, when click names them."""
    source, field, value = FLAGS, "", None
    if isinstance(exc, NoSuchOption):
        source = exc.option_name
    elif isinstance(exc, BadParameter) and exc.param is not None:
        opts = list(exc.param.opts)
        source = next((o for o in opts if o.startswith("--")), FLAGS)
        field = exc.param.name or ""
        value = _given(args, opts) if source != FLAGS else None
    elif isinstance(exc, BadOptionUsage):
        source = exc.option_name
    return _problem_json(source, field, value, message, line)


#: What an option of each Python type takes, for a value typer could not read as one.
_TAKES: dict[type, str] = {int: "expected a whole number", float: "expected a number"}
#: What an option takes where its type alone says too little: ``--price`` of a command
#: that takes one price (estimate, search, report; infer and compare read their own).
_FLAG_TAKES: dict[str, str] = {
    "--price": f"one price per chip-hour only, a number from 0 to "
               f"{MAX_PRICE_PER_CHIP_HOUR:,g} (e.g. 2.5)",
}


def _bad_value(exc: ClickException, args: Sequence[str]) -> Problem | None:
    """A value typer could not convert (``--chips 1.5``, ``--recompute bogus``) as a
    problem naming the flag, the value given and what the flag takes, instead of the
    converter's own wording ("Input should be a valid integer, unable to parse string
    as an integer"); None for other usage errors."""
    if not isinstance(exc, BadParameter) or exc.param is None:
        return None
    flag = next((o for o in exc.param.opts if o.startswith("--")), None)
    value = _given(args, exc.param.opts)
    if flag is None or value is None:
        return None
    annotation = getattr(getattr(exc.param, "type_descriptor", None), "annotation", None)
    kinds = [a for a in get_args(annotation) if a is not type(None)] or [annotation]
    kind = kinds[0] if len(kinds) == 1 else None
    low, high = getattr(exc.param, "min", None), getattr(exc.param, "max", None)
    if isinstance(kind, type) and issubclass(kind, Enum):
        takes = "expected one of " + ", ".join(repr(str(m.value)) for m in kind)
    elif kind in (int, float) and (low, high) != (None, None) and _reads_as(kind, value):
        # a number out of the option's range: say the range, not the type it already is
        takes = "must be " + " and ".join(
            f"{word} {bound}" for word, bound in (("at least", low), ("at most", high))
            if bound is not None)
    elif flag in _FLAG_TAKES:
        takes = _FLAG_TAKES[flag]
    elif kind in _TAKES:
        takes = _TAKES[kind]
    else:
        text = " ".join(exc.format_message().split())
        takes = text.removeprefix("Value error, ").rstrip(".")
    return Problem(flag, flag[2:].replace("-", "_"), takes, value)


def _reads_as(kind: type, value: str) -> bool:
    """Whether ``value`` is a valid ``kind`` (int or float) as the command line gives it."""
    try:
        kind(value)
    except ValueError:
        return False
    return True


def _given(args: Sequence[str], opts: Sequence[str]) -> str | None:
    """The last value ``args`` give one of the options ``opts`` (``--x v`` or ``--x=v``)."""
    value = None
    for i, token in enumerate(args):
        if token in opts and i + 1 < len(args):
            value = args[i + 1]
        elif "=" in token and token.split("=", 1)[0] in opts:
            value = token.split("=", 1)[1]
    return value


if __name__ == "__main__":
    sys.exit(main())
