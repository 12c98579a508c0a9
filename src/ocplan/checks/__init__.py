"""Compliance checks of a system against the OAM / UBB / OCM specs and datasheets.

Names resolve on first use (PEP 562): the module rules of CPU platforms must not import
the accelerator rules' topology builders (networkx).
"""

from typing import TYPE_CHECKING

from ocplan.lazy import lazy_names

if TYPE_CHECKING:
    from ocplan.checks.rules import RULES, Finding, run_rules

_PUBLIC: dict[str, str] = {
    "RULES": "ocplan.checks.rules",
    "Finding": "ocplan.checks.rules",
    "run_rules": "ocplan.checks.rules",
}


__getattr__ = lazy_names("ocplan.checks", _PUBLIC, globals())


__all__ = ["RULES", "Finding", "run_rules"]
