"""Match CPU platforms to a workload mix (``ocplan match``): archetypes tied to published
benchmarks, every catalog compute module and CPU as a platform, fleet size, power at load,
TCO, the binding constraint and each module's findings."""

from ocplan.matching.archetypes import ARCHETYPES, Archetype
from ocplan.matching.match import Capacity, Matched, MatchRequest, MatchResult, match
from ocplan.matching.platforms import (
    Platform,
    Unmodelled,
    catalog_platforms,
    unmodelled_platforms,
)
from ocplan.matching.predictor import catalog_predictor

__all__ = ["ARCHETYPES", "Archetype", "Capacity", "MatchRequest", "MatchResult", "Matched",
           "Platform", "Unmodelled", "catalog_platforms", "catalog_predictor", "match",
           "unmodelled_platforms"]
