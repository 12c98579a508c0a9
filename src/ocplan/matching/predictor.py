"""The capacities the matcher uses: the CPU performance model (:func:`ocplan.cpu.predict`)
on a platform's configuration row, except where the catalog holds a published result of
the same CPU at the same socket count (SPECrate2017_int_base): a measured value wins."""

from __future__ import annotations

from collections.abc import Sequence

from ocplan.catalog.catalog import Catalog
from ocplan.catalog.schema import Cpu
from ocplan.cpu.config import CpuConfig, config_from_row
from ocplan.cpu.predict import CpuPrediction, predict_many
from ocplan.errors import SpecError
from ocplan.matching.match import Capacity, Predictor, Query

__all__ = ["catalog_predictor"]


def _measured(catalog: Catalog, query: Query) -> Capacity | None:
    """The catalog's published SPECrate int median of this CPU at this socket count."""
    row, benchmark, _ = query
    measured = catalog.get(Cpu, row["cpu"]).specrate2017_int_base
    if (benchmark == "specrate2017_int_base" and measured is not None
            and measured.sockets == int(row["sockets"])):
        return Capacity(measured.value, measured.value, measured.value,
                        f"measured (median of {measured.results} published result(s))")
    return None


def _modelled(found: CpuPrediction) -> Capacity | None:
    if found.value is None:
        return None
    flags = tuple(found.flags)
    if found.level not in (None, "family"):
        flags += (f"calibrated at the {found.level} level",)
    return Capacity(found.value, found.low if found.low is not None else found.value,
                    found.high if found.high is not None else found.value, "model", flags)


def catalog_predictor(catalog: Catalog) -> Predictor:
    """A predictor that prefers the catalog's measured SPECrate int results and asks the
    CPU model for the rest in one batch."""

    def capacities(queries: Sequence[Query]) -> list[Capacity | None]:
        out: list[Capacity | None] = [_measured(catalog, q) for q in queries]
        asked: list[tuple[int, CpuConfig, str, str | None]] = []
        for i, (row, benchmark, metric) in enumerate(queries):
            if out[i] is not None:
                continue
            try:
                asked.append((i, config_from_row(row, "platform"), benchmark, metric))
            except SpecError:  # a row the model cannot read has no prediction
                continue
        if not asked:
            return out
        found = predict_many([(config, b, m) for _, config, b, m in asked])
        for (i, *_), prediction in zip(asked, found, strict=True):
            out[i] = _modelled(prediction)
        return out

    return capacities
