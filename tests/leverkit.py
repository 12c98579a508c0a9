"""What the sensitivity tests compare a lever against: the same change made in the
accelerator's own catalog entry."""

from __future__ import annotations

from ocplan.catalog.schema import Accelerator

#: The precisions of a catalog peak table, each doubled when present.
PEAK_PRECISIONS = ("bf16", "fp16", "fp8", "int8", "fp4")


def doubled(acc: Accelerator, update: str) -> tuple[Accelerator, str]:
    """``acc`` with its matrix peaks (``update="peak"``) or its HBM bandwidth
    (``"hbm"``) doubled, and the name of the lever that scales the same resource."""
    if update == "peak":
        peaks = acc.peak_flops
        twice = peaks.model_copy(update={p: v * 2 for p in PEAK_PRECISIONS
                                         if (v := peaks.get(p)) is not None})
        return acc.model_copy(update={"peak_flops": twice}), "matrix_peak"
    assert update == "hbm", update
    mem = acc.memory.model_copy(update={"hbm_bandwidth": acc.memory.hbm_bandwidth * 2})
    return acc.model_copy(update={"memory": mem}), "hbm_bandwidth"
