"""The capacities the matcher uses: the CPU performance model (:func:`ocplan.cpu.predict`)
on a platform's configuration row, except where the catalog holds a published result of
the same CPU at the same socket count (SPECrate2017_int_base): a measured value wins."""

from __future__ import annotations

from ocplan.catalog.catalog import Catalog
from ocplan.catalog.schema import Cpu
from ocplan.cpu.config import config_from_row
from ocplan.cpu.predict import predict
from ocplan.errors import SpecError
from ocplan.matching.match import Capacity, Predictor

__all__ = ["catalog_predictor"]


def catalog_predictor(catalog: Catalog) -> Predictor:
    """A predictor that prefers the catalog's measured SPECrate int results."""

    def capacity(row: dict[str, str], benchmark: str, metric: str | None) -> Capacity | None:
        cpu = catalog.get(Cpu, row["cpu"])
        measured = cpu.specrate2017_int_base
        if (benchmark == "specrate2017_int_base" and measured is not None
                and measured.sockets == int(row["sockets"])):
            return Capacity(measured.value, measured.value, measured.value,
                            f"measured (median of {measured.results} published result(s))")
        try:
            found = predict(config_from_row(row, "platform"), benchmark, metric)
        except SpecError:
            return None
        if found.value is None:
            return None
        flags = tuple(found.flags)
        if found.level not in (None, "family"):
            flags += (f"calibrated at the {found.level} level",)
        return Capacity(found.value, found.low if found.low is not None else found.value,
                        found.high if found.high is not None else found.value, "model",
                        flags)

    return capacity
