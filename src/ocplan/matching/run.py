"""``run_match``: a workload-mix file or mapping in, the ranked platforms of a catalog out
(the API entry point of ``ocplan match``; :func:`ocplan.api.run_match` is this function).

It lives here rather than in :mod:`ocplan.api` so that matching CPU platforms does not
import the accelerator estimators: ``ocplan match`` over the whole catalog is meant to
answer within a second as a whole process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, get_args

from ocplan.catalog.catalog import Catalog, suggest
from ocplan.catalog.loader import load_yaml, validate_as
from ocplan.errors import Problem, SpecError
from ocplan.matching.match import DEFAULT_PRICE, MatchRequest, MatchResult, match
from ocplan.matching.platforms import Platform, Unmodelled, catalog_platforms, unmodelled_platforms
from ocplan.matching.predictor import catalog_predictor

__all__ = ["run_match"]


def run_match(catalog: Catalog, workload: Path | Mapping[str, Any],
              objective: str | None = None, source: str = "request",
              objective_source: str = "objective") -> MatchResult:
    """Rank every CPU platform of the catalog for a workload mix (a file or a mapping;
    see :mod:`ocplan.matching`); ``objective`` overrides the mix's, and a bad one is a
    problem of ``objective_source`` (the flag or field that gave it), not of the mix."""
    if isinstance(workload, Path):
        data, source = load_yaml(workload), str(workload)
    else:
        data = dict(workload)
    problems: list[Problem] = []
    if objective is not None:
        allowed = get_args(MatchRequest.model_fields["objective"].annotation)
        if objective in allowed:
            data = {**data, "objective": objective}
        else:
            problems.append(Problem(objective_source, "objective", "expected one of "
                                    + ", ".join(map(repr, allowed)), objective))
    try:
        req = validate_as(MatchRequest, data, source)
    except SpecError as exc:
        raise SpecError(problems + list(exc.problems)) from None
    if problems:
        raise SpecError(problems)
    platforms = catalog_platforms(catalog)
    unmodelled = unmodelled_platforms(catalog)
    _check_price_keys(req, [*platforms, *unmodelled], source)
    return match(req, platforms, catalog_predictor(catalog), unmodelled)


def _check_price_keys(req: MatchRequest, platforms: Sequence[Platform | Unmodelled],
                      source: str) -> None:
    """Every key of ``prices`` names a platform, a CPU or ``default``: a mistyped id would
    silently price that platform at the default and move it in the ranking (a platform
    that is not modelled may be priced too: its price is shown, nothing is ranked by it)."""
    known = {p.id for p in platforms} | {p.cpu.id for p in platforms} | {DEFAULT_PRICE}
    problems = [Problem(source, f"prices.{key}", "names no platform or CPU of the catalog"
                        f"{suggest(key, known)}", key)
                for key in req.prices if key not in known]
    if problems:
        raise SpecError(problems)
