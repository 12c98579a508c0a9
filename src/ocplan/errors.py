"""The three kinds of failure in ocplan, never mixed.

::

    OcplanError
    ├── SpecError      bad input: a spec file, a CLI flag or an API argument is wrong.
    │                  Carries every Problem found (file, field, value, what is allowed),
    │                  so a user fixes them all in one go. The CLI prints one line per
    │                  problem and exits with code 2.
    └── Infeasible     a valid design that cannot work (does not fit in memory, a group
                       larger than its domain, layers not divisible by stages). Estimates
                       and searches turn it into a result with a reason; it is never
                       swallowed silently.

Our own bugs are ``assert`` statements and surface as ``AssertionError``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Infeasible", "OcplanError", "Problem", "SpecError"]


class OcplanError(Exception):
    """Base of every error ocplan raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input.

    Attributes
    ----------
    source
        Where the input came from: a file path, ``"--flag"`` or ``"argument"``.
    field
        Dotted path of the field inside it (``"memory.hbm_capacity"``), or ``""`` when
        the problem is with the whole input (missing file, malformed YAML).
    message
        What is wrong and what is allowed, in one sentence.
    value
        The offending value as written, or ``None`` when there is none.
    """

    source: str
    field: str
    message: str
    value: object = None

    def line(self) -> str:
        """The one-line form printed by the CLI: ``file: field = value: message``."""
        where = self.source
        if self.field:
            where += f": {self.field}"
        if self.value is not None:
            shown = repr(self.value) if isinstance(self.value, str) else str(self.value)
            if len(shown) > 60:
                shown = shown[:57] + "..."
            where += f" = {shown}"
        return f"{where}: {self.message}"


class SpecError(OcplanError):
    """Bad input: one or more :class:`Problem` found while reading a spec or flag."""

    def __init__(self, problems: list[Problem]) -> None:
        assert problems, "SpecError needs at least one problem"
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(p.line() for p in self.problems))

    def __reduce__(self) -> tuple[type[SpecError], tuple[list[Problem]]]:
        # Rebuilt from its problems: worker processes send these back to the server.
        return (type(self), (list(self.problems),))

    @classmethod
    def one(cls, source: str, field: str, message: str, value: object = None) -> SpecError:
        """Build a SpecError holding a single problem."""
        return cls([Problem(source, field, message, value)])


class Infeasible(OcplanError):
    """A valid design that cannot run; ``reason`` is a short machine-countable key.

    Parameters
    ----------
    reason
        A stable key for counting rejections (``"memory"``, ``"divisibility"``, ...).
    detail
        A sentence for humans naming the numbers involved.
    """

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")

    def __reduce__(self) -> tuple[type[Infeasible], tuple[str, str]]:
        # Rebuilt from both fields (the default would pass the message alone).
        return (type(self), (self.reason, self.detail))
