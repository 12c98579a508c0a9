"""The ``ocplan`` application: the typer group and its help formatting, the root options,
and bad input turned into one line per problem (and a JSON error document).
"""

from __future__ import annotations

import functools
import inspect
import math
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from typer._click.core import Command as ClickCommand  # typer vendors click
from typer._click.core import Context, Parameter
from typer._click.formatting import HelpFormatter
from typer.core import TyperArgument, TyperCommand, TyperGroup
from typer.models import CommandFunctionType

from ocplan import jsonio
from ocplan.catalog.catalog import Catalog, load_catalog
from ocplan.cli.render import err, printable, reader_gone
from ocplan.cli.state import Format, state
from ocplan.errors import Problem, SpecError
from ocplan.units import DEFAULT_CURRENCY
from ocplan.workloads.options import serving_option_fields

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
        except BrokenPipeError:  # written past rich (rich's own: reader_gone)
            reader_gone()

    return wrapper


def _bad_input(problems: Sequence[Problem], as_json: bool) -> None:
    """One stderr line per problem; with ``as_json`` also, on stdout, the error document
    naming each problem's source, field, value, what is allowed and its stderr line (a
    pipe into ``jq`` gets JSON whatever happened)."""
    lines = [printable(p.line()) for p in problems]
    for line in lines:
        err.print(line)
    if as_json:
        print_json(error_document(2, [
            problem_json(p.source, p.field, p.value, p.message, line)
            for p, line in zip(problems, lines, strict=True)]))


def error_document(exit_code: int, problems: list[dict[str, Any]]) -> dict[str, Any]:
    return {"error": {"exit_code": exit_code, "problems": problems}}


def problem_json(source: str, field: str, value: object, allowed: str, line: str
                 ) -> dict[str, Any]:
    return {"source": printable(source), "field": printable(field), "value": _json_value(value),
            "allowed": printable(allowed), "message": line}


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
    return printable(value)


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


def asks_json(args: Sequence[str]) -> bool:
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
    """A command's docstring as terminal text: each paragraph on one line, for the
    terminal to wrap at its own width (rich keeps a docstring's line breaks, so at 80
    columns an 88-column source line left one word on a line of its own), and its reST
    literals quoted ('x'), the backquotes being markup for the API docs, not for a
    shell. No command's help is a list, whose line breaks would matter."""
    if text is None:
        return None
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return _LITERAL.sub(r"'\1'", "\n\n".join(" ".join(p.split()) for p in paragraphs))


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


def new_app() -> typer.Typer:
    return _Typer(cls=_Group, no_args_is_help=True, add_completion=False,
                  help="ocplan: check, measure and plan open-standard (OAM/UBB/OCM) AI "
                       "systems.")


app = new_app()
catalog_app = _Typer(cls=_Group, no_args_is_help=True,
                     help="Browse the hardware and model catalog.")
app.add_typer(catalog_app, name="catalog")

CatalogOpt = Annotated[list[Path] | None, typer.Option(
    "--catalog", metavar="<folder>",
    help="Extra catalog folder (repeatable); also OCPLAN_CATALOG.")]


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


def session_catalog() -> Catalog:
    return load_catalog(state.catalog_dirs)


def print_json(data: Any) -> None:
    sys.stdout.write(jsonio.dumps(data, indent=2) + "\n")


#: The source of problems found in flag values; each such line is shown with its flag.
FLAGS = "command line"
#: Request fields whose flag is not the field name with dashes (the serving workload's
#: declare theirs).
FLAG_OF_FIELD = {"top_k": "--top", "price_per_chip_hour": "--price",
                 "max_power_W": "--max-power", "max_time_to_train_s": "--deadline",
                 "max_facility_power_W": "--max-power",
                 "target_rate_per_s": "--target-rate", "repair_s": "--repair"} | {
    f.name: f.flag for f in serving_option_fields() if f.cli is not None}


def _flag(field: str) -> str:
    name = field.split(".")[0].split("[")[0]
    return FLAG_OF_FIELD.get(name, "--" + name.replace("_", "-"))
