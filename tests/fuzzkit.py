"""What the fuzz tests share: a ledger of failures (the first reproducer of each kind,
reported once at the end) and paths into parsed YAML/JSON documents for mutation."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

#: A number and what follows it (a unit), for mutating quantities such as "700 W".
QUANTITY = re.compile(r"^\s*([-+]?[0-9.eE+-]+)\s*(.*)$")


@dataclass
class Failure:
    reproducer: str
    detail: str
    count: int = 1


@dataclass
class Ledger:
    """Cases run and failures found: the first reproducer of each kind of failure.

    ``what`` names the cases in the report ("cases", "requests"); ``prompt`` is put
    before each reproducer ("$ " for a command line)."""

    name: str
    what: str = "cases"
    prompt: str = "$ "
    cases: int = 0
    failures: dict[str, Failure] = field(default_factory=dict)

    def add(self, key: str, reproducer: str, detail: str) -> None:
        if key in self.failures:
            self.failures[key].count += 1
        else:
            self.failures[key] = Failure(reproducer, detail)

    def assert_clean(self) -> None:
        """Fail the test once, listing every kind of failure with its count."""
        if not self.failures:
            return
        parts = [f"{self.name}: {sum(f.count for f in self.failures.values())} of "
                 f"{self.cases} {self.what} broke the contract ({len(self.failures)} kinds):"]
        for key, f in self.failures.items():
            parts.append(f"\n[{key}] x{f.count}\n  {self.prompt}{f.reproducer}\n  "
                         + f.detail.replace("\n", "\n  "))
        pytest.fail("\n".join(parts), pytrace=False)


def value_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths (keys and list indices) to every value below ``node``."""
    found: list[tuple[Any, ...]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else []
    for key, child in items:
        found.append((*prefix, key))
        found.extend(value_paths(child, (*prefix, key)))
    return found


def value_at(doc: Any, path: tuple[Any, ...]) -> Any:
    """The value at ``path`` inside ``doc``."""
    for key in path:
        doc = doc[key]
    return doc
