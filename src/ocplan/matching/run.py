"""``run_match``: a workload-mix file or mapping in, the ranked platforms of a catalog out
(the API entry point of ``ocplan match``; :func:`ocplan.api.run_match` is this function).

It lives here rather than in :mod:`ocplan.api` so that matching CPU platforms does not
import the accelerator estimators: ``ocplan match`` over the whole catalog is meant to
answer within a second as a whole process.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ocplan.catalog.catalog import Catalog
from ocplan.catalog.loader import load_yaml, validate_as
from ocplan.matching.match import MatchRequest, MatchResult, match
from ocplan.matching.platforms import catalog_platforms
from ocplan.matching.predictor import catalog_predictor

__all__ = ["run_match"]


def run_match(catalog: Catalog, workload: Path | Mapping[str, Any],
              objective: str | None = None, source: str = "request") -> MatchResult:
    """Rank every CPU platform of the catalog for a workload mix (a file or a mapping;
    see :mod:`ocplan.matching`)."""
    if isinstance(workload, Path):
        data, source = load_yaml(workload), str(workload)
    else:
        data = dict(workload)
    if objective is not None:
        data = {**data, "objective": objective}
    req = validate_as(MatchRequest, data, source)
    return match(req, catalog_platforms(catalog), catalog_predictor(catalog))
