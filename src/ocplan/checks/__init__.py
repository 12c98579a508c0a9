"""Compliance checks of a system against the OAM / UBB / OCM specs and datasheets."""

from ocplan.checks.rules import RULES, Finding, run_rules

__all__ = ["RULES", "Finding", "run_rules"]
