"""JSON at the boundary: bounded parsing of untrusted bodies and strict printing.

Python's :mod:`json` reads whatever it is given: nesting deep enough to exhaust the
recursion limit (``RecursionError``), integers of more than 4,300 digits (``ValueError``)
and the non-standard constants ``NaN`` and ``Infinity``. It also writes ``NaN`` and
``Infinity``, which are not JSON. Every JSON that enters ocplan from outside goes through
:func:`parse_json`, which turns each of those into one :class:`~ocplan.errors.SpecError`
line, and every JSON ocplan prints goes through :func:`dumps`, which refuses non-finite
numbers (a non-finite result is our bug, so it must fail loudly, not print invalid JSON).
"""

from __future__ import annotations

import json
from typing import Any

from ocplan.errors import SpecError

__all__ = ["MAX_JSON_DEPTH", "dumps", "lone_surrogate", "nesting_depth", "parse_json"]

#: Deepest nesting of arrays and objects accepted from outside. The deepest document
#: ocplan itself produces (an estimate with its figures) nests 7 levels; 32 leaves room
#: for any hand-written request while keeping every later walk of the value shallow.
MAX_JSON_DEPTH = 32


def nesting_depth(value: object, limit: int | None = None) -> int:
    """Levels of lists/tuples and dicts in ``value`` (a scalar is 0, ``[]`` is 1).

    Iterative, so a pathologically deep value cannot exhaust the stack; with ``limit``
    the walk stops as soon as it is exceeded and returns ``limit + 1``.
    """
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, (list, tuple)):
            children = list(item)
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if limit is not None and deepest > limit:
            return limit + 1
        stack.extend((child, depth) for child in children)
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(data: bytes | str, source: str, *, max_bytes: int,
               max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse untrusted JSON text; every way it can be wrong is a :class:`SpecError`.

    Parameters
    ----------
    data
        The raw text (UTF-8 bytes or str). Empty text is ``null``.
    source
        Where it came from, for the error line (``"request"``, a file path).
    max_bytes
        Largest accepted size of ``data``.
    max_depth
        Deepest accepted nesting of arrays and objects.
    """
    if len(data) > max_bytes:
        raise SpecError.one(source, "", f"JSON text of {len(data):,} bytes is over the limit "
                                        f"of {max_bytes:,} bytes")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:  # JSON is UTF-8 (RFC 8259 §8.1)
            raise SpecError.one(source, "", f"not JSON: not UTF-8 text ({exc.reason} at "
                                            f"byte {exc.start})") from None
    if not data.strip():
        return None
    try:
        value = json.loads(data, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise SpecError.one(source, "", f"not JSON: {exc.msg} at line {exc.lineno}, "
                                        f"column {exc.colno}") from None
    except RecursionError:
        raise SpecError.one(source, "", f"not accepted: nested deeper than {max_depth} "
                                        "levels") from None
    except ValueError as exc:  # over-long integers, NaN/Infinity
        raise SpecError.one(source, "", f"not accepted: {exc}") from None
    if nesting_depth(value, max_depth) > max_depth:
        raise SpecError.one(source, "", f"not accepted: nested deeper than {max_depth} "
                                        "levels")
    bad = lone_surrogate(value)
    if bad is not None:
        # repr escapes the surrogate (and any line break): the line stays one line of text
        raise SpecError.one(source, "", f"not accepted: the string {bad[:40]!r} holds a lone "
                                        "UTF-16 surrogate, which is not Unicode text")
    return value


def lone_surrogate(value: object) -> str | None:
    """The first string (key or value) in ``value`` that is not Unicode text, or None.

    JSON can escape half of a UTF-16 surrogate pair (``"\\ud800"``); Python reads it
    into a string that no UTF-8 encoder can write back, so such a value, stored or
    echoed, would break every answer that contains it. I-JSON (RFC 7493 §2.1) refuses
    them. Iterative, like :func:`nesting_depth`.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return None


def dumps(value: object, indent: int | None = None) -> str:
    """Standard JSON text of ``value``; raises ``ValueError`` on NaN or infinity, which
    ocplan never produces on purpose."""
    return json.dumps(value, indent=indent, allow_nan=False, ensure_ascii=False)
