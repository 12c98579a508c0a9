"""What ``ocplan validate`` was given when it is not a validation CSV at all.

The readers of the three layouts (training runs, serving results, CPU benchmarks) check a
header for their columns. Given an empty file or a YAML file (a system, a workload mix)
they answered ``header: missing columns: case_id, model, ...``, sixteen names that say
nothing about the mistake. :func:`refuse_non_csv` answers such a file first, in one line
that says what the file is; a CSV with a header row of other columns is left to the
readers, whose list of missing columns is then the useful answer.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ocplan.catalog.loader import parse_yaml, read_text_file
from ocplan.errors import SpecError

__all__ = ["EXPECTED", "MIN_HEADER_COLUMNS", "refuse_non_csv"]

#: What validate reads, for the end of each message.
EXPECTED = ("validate reads a CSV of published training runs, serving results or CPU "
            "benchmarks whose first line names its columns")
#: Fewest columns a header row can have: every layout needs a case id and a measured
#: value at least, so a first line of one field is no header of any of them.
MIN_HEADER_COLUMNS = 2
#: Longest part of a first line quoted in a message (a long line is cut, with "...").
QUOTE_CHARS = 60
#: Top-level keys of a YAML mapping named in a message.
SHOWN_KEYS = 4


def refuse_non_csv(path: Path, max_bytes: int) -> None:
    """Raise a one-line SpecError when ``path`` is not a CSV with a header row: an empty
    file (or only blanks), a YAML mapping or list, a blank first line, or a first line of
    a single field. Return otherwise, also for a header row that names none of the
    expected columns (the readers list what is missing). Files over ``max_bytes``, not
    UTF-8, or not regular files are refused as the readers refuse them."""
    source = str(path)
    text = read_text_file(path, max_bytes, "CSV file")
    if not text.strip():
        raise SpecError.one(source, "", f"empty file; {EXPECTED}")
    first = text.splitlines()[0]
    if _known_columns(first):
        return
    if not first.strip():
        raise SpecError.one(source, "", "not a CSV with a header row: line 1 is blank (the "
                                        f"column names must be the first line); {EXPECTED}")
    what = _yaml_kind(text, source)
    if what is not None:
        raise SpecError.one(source, "", f"not a CSV with a header row: {what}; {EXPECTED}")
    if len(_fields(first)) < MIN_HEADER_COLUMNS:
        raise SpecError.one(source, "", f"not a CSV with a header row: line 1 "
                                        f"({_quoted(first)}) has a single column; {EXPECTED}")


def _fields(line: str) -> list[str]:
    """The fields of one CSV line (none when it is not CSV at all)."""
    try:
        return [f.strip() for f in next(csv.reader([line]), [])]
    except csv.Error:
        return []


def _known_columns(line: str) -> bool:
    """Whether a first line names a column of any validation layout (then it is a header
    row, right or wrong, and the readers answer it)."""
    from ocplan.results.cpu_validation import CPU_REQUIRED
    from ocplan.results.serving_validation import SERVING_REQUIRED
    from ocplan.results.validation import REQUIRED

    return bool(set(_fields(line)) & {*REQUIRED, *SERVING_REQUIRED, *CPU_REQUIRED})


def _yaml_kind(text: str, source: str) -> str | None:
    """``a YAML file (keys ...)`` when ``text`` parses as a YAML mapping or list (a CSV
    parses as one string), else None."""
    try:
        data: Any = parse_yaml(text, source)
    except SpecError:
        return None
    if isinstance(data, dict) and data:
        keys = [str(k) for k in data][:SHOWN_KEYS]
        more = ", ..." if len(data) > SHOWN_KEYS else ""
        return f"a YAML file (top-level keys {', '.join(keys)}{more})"
    if isinstance(data, list) and data:
        return f"a YAML file (a list of {len(data)} item(s))"
    return None


def _quoted(line: str) -> str:
    """A first line for a message, cut to QUOTE_CHARS characters."""
    shown = line if len(line) <= QUOTE_CHARS else line[:QUOTE_CHARS] + "..."
    return repr(shown)
