"""One finding of a compliance check: which rule, how severe, what and where."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Finding", "Severity"]

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    message: str
    section: str
    subject: str

    def as_dict(self) -> dict[str, str]:
        return dict(self.__dict__)
