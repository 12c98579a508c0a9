"""The command line the developer scripts of ``scripts/`` share: bad input is reported as the
``ocplan`` CLI reports it, one stderr line and exit code 2, never a traceback.

A script builds its parser with :func:`script_parser` and adds its own arguments, then
``main`` (which stays ``int``-returning, so that tests can call it) starts with::

    args = parse_argv(parser(), argv)
    if isinstance(args, int):  # --help (0), or a bad argument's one line printed (2)
        return args

and returns :func:`bad_input` for a :class:`~ocplan.errors.SpecError` it catches.

Not a script (the leading ``_``): imported as ``_cli``, which works because a script run as
``python scripts/x.py`` has ``scripts/`` on ``sys.path`` (``tests/scriptkit.py`` puts it there
for the tests).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from ocplan.errors import SpecError


class ScriptParser(argparse.ArgumentParser):
    """A bad argument is one stderr line and exit code 2, as the ``ocplan`` CLI reports
    bad input (argparse's own adds the usage on a second line)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def script_parser(file: str, doc: str | None, epilog: str) -> ScriptParser:
    """The parser of the script at ``file`` (its ``__file__``): named after the file, the
    first paragraph of its ``doc`` (its ``__doc__``) as the description and ``epilog``
    (what the script writes) after the options; no arguments yet."""
    return ScriptParser(prog=Path(file).name, description=(doc or "").split("\n\n")[0],
                        epilog=epilog)


#: The training development set the scripts read by default (``shared/`` beside the
#: checkout, as ``make test`` expects it).
TRAINING_DEV_CSV = Path(__file__).resolve().parents[2] / "shared" / "validation" / \
    "training_dev.csv"


def write_training_rows(rows: Sequence[Mapping[str, object]], out: Path) -> int:
    """Write ``rows`` to ``out`` in the training development set's columns (its header,
    read from :data:`TRAINING_DEV_CSV`; a column a row lacks is empty): how a published
    sweep becomes a CSV ``ocplan validate`` reads. Returns the row count."""
    header = TRAINING_DEV_CSV.read_text(encoding="utf-8").splitlines()[0].split(",")
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header, restval="")
        w.writeheader()
        w.writerows(rows)
    return len(rows)


def add_training_dev_csv(parser: argparse.ArgumentParser, what: str) -> None:
    """The optional positional ``CSV`` of a script that reads the training development
    set (``args.csv``), defaulting to :data:`TRAINING_DEV_CSV`; ``what`` says what the
    script takes it for."""
    parser.add_argument("csv", nargs="?", type=Path, metavar="CSV", default=TRAINING_DEV_CSV,
                        help=f"{what} (default: ../shared/validation/training_dev.csv)")


def _exit_code(exc: SystemExit) -> int:
    """The exit code a parser's ``exit`` asked for (``None`` is 0)."""
    return int(exc.code or 0)


def parse_argv(parser: argparse.ArgumentParser, argv: Sequence[str], *,
               intermixed: bool = False) -> argparse.Namespace | int:
    """The arguments of ``argv[1:]`` (``argv[0]`` is the script), or the exit code for
    ``main`` to return where the parser stopped: 0 after ``--help`` printed the usage, 2
    after a bad argument's one line. ``intermixed`` parses with
    :meth:`~argparse.ArgumentParser.parse_intermixed_args`, for a script whose options
    may stand between its optional positionals."""
    try:
        if intermixed:
            return parser.parse_intermixed_args(argv[1:])
        return parser.parse_args(argv[1:])
    except SystemExit as exc:
        return _exit_code(exc)


def bad_argument(parser: argparse.ArgumentParser, message: str) -> int:
    """``message`` reported as the parser reports a bad argument (one stderr line for a
    :class:`ScriptParser`), for a check argparse cannot make itself (two arguments that
    exclude each other); the exit code, 2, for ``main`` to return."""
    try:
        parser.error(message)
    except SystemExit as exc:
        return _exit_code(exc)


def bad_input(file: str, exc: SpecError) -> int:
    """Each problem of ``exc`` as one stderr line, as the ``ocplan`` CLI prints them but
    prefixed with the name of the script at ``file`` (its ``__file__``); exit code 2, for
    ``main`` to return."""
    for problem in exc.problems:
        print(f"{Path(file).name}: {problem.line()}", file=sys.stderr)
    return 2


def unreadable(path: Path, exc: OSError | EOFError | UnicodeDecodeError) -> SpecError:
    """A file that cannot be read (missing, a directory, not gzip, cut short, not UTF-8)
    as the SpecError ``ocplan`` raises for it, naming the file (the one of ``exc`` where it
    names one, else ``path``)."""
    if isinstance(exc, FileNotFoundError):
        why = "file not found"
    elif isinstance(exc, IsADirectoryError):
        why = "is a directory, expected a file"
    else:
        why = f"cannot read file: {getattr(exc, 'strerror', None) or exc}"
    return SpecError.one(str(getattr(exc, "filename", None) or path), "", why)
