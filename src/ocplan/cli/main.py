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

import gc
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import typer
from typer._click.exceptions import (
    BadOptionUsage,
    BadParameter,
    ClickException,
    NoSuchOption,
    UsageError,
)
from typer.core import TyperArgument

from ocplan.catalog.fields import MAX_PRICE_PER_CHIP_HOUR
from ocplan.cli import hardware, matching, reporting, serving, sweeping, training, validating
from ocplan.cli.app import (
    FLAGS,
    app,
    asks_json,
    catalog_app,
    error_document,
    new_app,
    print_json,
    problem_json,
)
from ocplan.cli.render import err, printable, reset_consoles
from ocplan.cli.state import state
from ocplan.errors import Problem
from ocplan.units import or_listed

if TYPE_CHECKING:
    pass

__all__ = ["app", "main"]

#: The commands in the order ``ocplan --help`` lists them, each on its group:
#: (group, name, function). Each command lives in a module of its own family.
COMMANDS: tuple[tuple[typer.Typer, str, Callable[..., None]], ...] = (
    (catalog_app, "list", hardware.catalog_list),
    (catalog_app, "show", hardware.catalog_show),
    (app, "check", hardware.check),
    (app, "topology", hardware.topology),
    (app, "estimate", training.estimate_cmd),
    (app, "infer", serving.infer_cmd),
    (app, "search", training.search_cmd),
    (app, "compare", training.compare_cmd),
    (app, "match", matching.match_cmd),
    (app, "validate", validating.validate),
    (app, "sweep", sweeping.sweep_cmd),
    (app, "sweeps", sweeping.sweeps_cmd),
    (app, "serve", reporting.serve),
    (app, "report", reporting.report),
)


def _register() -> None:
    """Register :data:`COMMANDS` on their groups (typer keeps the order given)."""
    for group, name, command in COMMANDS:
        group.command(name)(command)


_register()


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
    chosen = [c for c in app.registered_commands if c.name == first]  # COMMANDS names each
    if not chosen:
        return app
    narrow = new_app()
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
    reset_consoles()
    state.json_errors = asks_json(args)
    try:
        code = _app_for(args)(args=args, prog_name="ocplan", standalone_mode=False)
    except ClickException as exc:
        bad = _bad_value(exc, args)
        if bad is not None:  # one line naming the flag, the value and what it takes
            line = printable(f"ocplan: {replace(bad, field='').line()}")
            err.print(line)
            if state.json_errors:
                print_json(error_document(exc.exit_code, [problem_json(
                    bad.source, bad.field, bad.value, bad.message, line)]))
            return exc.exit_code
        message = " ".join(exc.format_message().split()) + _commands_of(exc) \
            + _file_flags_of(exc)
        if message:  # a bare command prints its help and has no message
            line = printable(f"ocplan: {message}")
            err.print(line)
            if state.json_errors:
                print_json(error_document(exc.exit_code,
                                          [_usage_problem(exc, args, message, line)]))
        return exc.exit_code
    except typer.Abort:
        err.print("ocplan: aborted")
        if state.json_errors:
            print_json(error_document(1, [problem_json("ocplan", "", None, "",
                                                       "ocplan: aborted")]))
        return 1
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return code if isinstance(code, int) else 0


def _commands_of(exc: ClickException) -> str:
    """For an unknown command, the commands its group has (`` 'ocplan catalog' has: list,
    show.``; click adds "Did you mean" where one is close); else nothing."""
    ctx = getattr(exc, "ctx", None)
    if not (isinstance(exc, UsageError) and ctx is not None
            and exc.format_message().startswith("No such command")):
        return ""
    list_commands = getattr(ctx.command, "list_commands", None)
    if list_commands is None:
        return ""
    return f" '{ctx.command_path}' has: {', '.join(list_commands(ctx))}."


def _file_flags_of(exc: ClickException) -> str:
    """For an argument given by position to a command that takes none (``ocplan match
    mix.yaml``), the flags it takes files with (``; 'ocplan match' takes files with
    --workload or --report``); else nothing."""
    ctx = getattr(exc, "ctx", None)
    if not (isinstance(exc, UsageError) and ctx is not None and ctx.command is not None
            and exc.format_message().startswith("Got unexpected extra argument")):
        return ""
    params = ctx.command.params
    if any(isinstance(p, TyperArgument) for p in params):
        return ""  # it takes some by position: the count was wrong, not the form
    flags = [next((o for o in p.opts if o.startswith("--")), p.opts[0]) for p in params
             if getattr(getattr(p, "type_descriptor", None), "annotation", None) is Path]
    if not flags:
        return ""
    return f"; '{ctx.command_path}' takes files with {or_listed(flags)}"


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
    return problem_json(source, field, value, message, line)


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
