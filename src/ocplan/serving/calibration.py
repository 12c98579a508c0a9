"""The few serving-specific numbers, fitted by ``scripts/fit_serving.py``.

GEMM and attention efficiencies come from the training calibration of the chip's family
(:mod:`ocplan.plan.calibration`): the same kernels. What serving adds is framework
behaviour, one value each for every chip (never per case, model or source):

- ``iteration_overhead_s``: host time of one engine iteration not hidden behind the
  device (scheduling, input preparation, graph launch);
- ``seq_overhead_s``: host time per running sequence per iteration (per-sequence
  scheduling, sampling and detokenization grow with the batch);
- ``kernel_s``: fixed cost per kernel inside a captured graph (CUDA/HIP graphs remove the
  host launch, not the device-side gap and prologue);
- ``hbm_efficiency``: achieved / peak HBM bandwidth when a decode step streams the
  weights and the KV cache; ``family_hbm_efficiency`` holds the value of each chip
  family with enough published rows to fit its own (the memory controllers, the HBM
  generation and the decode GEMM kernels differ by vendor: MI300X-class parts reach a
  smaller share of their peak in streaming kernels than Hopper or Blackwell), the others
  take ``hbm_efficiency``;
- ``reserve_fraction``: HBM share not available to the KV cache beside the weights
  (framework workspace, activations of the largest chunk, graphs, communication buffers;
  vLLM's ``gpu_memory_utilization`` defaults to 0.9; the rest of the fitted value stands
  in for batch caps the published results leave unstated). The weights need only fit
  beside the engine's own share, and the cache keeps a floor share of what they leave
  (:mod:`ocplan.serving.memory`);
- ``gemm_4bit_ratio``: efficiency of 4-bit (NVFP4/MXFP4) GEMMs relative to the family's
  8-bit efficiency, each against its own peak (block-scale handling and the activation
  quantization keep 4-bit kernels further from their doubled peak). A precision-level
  value: the same for every family with a 4-bit unit.
- ``grouped_ratio``: efficiency of the serving engines' grouped expert GEMMs relative to
  a dense GEMM of the same tiles, 16- and 8-bit. Inference MoE kernels (vLLM/SGLang
  ``fused_moe``, DeepGEMM, TensorRT-LLM's CUTLASS MoE) gather each expert's rows inside
  one kernel; DeepGEMM's contiguous grouped layout reaches 1,214-1,346 TFLOP/s against
  1,265-1,426 dense at the same shapes (compute_units.md §2.2-2.3). They are not the
  training path whose fitted factor (:mod:`ocplan.plan.calibration`) also carries
  Megatron's permutation and backward. ``None``: the training factor.

Beside the fitted values it records how far held-out results fell from their
predictions (``held_out_range_pct``, per chip family): the range an estimate's measured
throughput would likely fall in, by the rule of the training calibration
(:func:`~ocplan.plan.calibration.held_out_ranges`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from ocplan.plan.calibration import likely_range_note

__all__ = ["SERVING_CALIBRATION_FILE", "RangeBasis", "ServingCalibration",
           "load_serving_calibration", "serving_range_note"]

SERVING_CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


class RangeBasis(NamedTuple):
    """The likely-error range an estimate states and what it rests on."""

    range_pct: tuple[float, float] | None
    """(low, high) signed error, %; None when the calibration has no range."""
    family: str
    """The chip family whose held-out results give it, or ``default`` (every result)."""
    rows: int
    """Published serving results of that family the calibration was fitted on."""


@dataclass(frozen=True)
class ServingCalibration:
    iteration_overhead_s: float = 2.0e-3
    seq_overhead_s: float = 0.0
    kernel_s: float = 2.0e-6
    hbm_efficiency: float = 0.80
    reserve_fraction: float = 0.10
    gemm_4bit_ratio: float = 1.0
    grouped_ratio: float | None = None
    family_hbm_efficiency: tuple[tuple[str, float], ...] = ()
    """(chip family, achieved / peak HBM bandwidth) pairs; families not named take
    ``hbm_efficiency``."""
    rows: int = 0
    """Published serving results the values were fitted on (0: priors)."""
    cv_error_pct: float | None = None
    """Median |error| under leave-one-source-out cross-validation, %."""
    held_out_range_pct: tuple[tuple[str, tuple[float, float]], ...] = ()
    """(chip family, (low, high)) pairs: :data:`~ocplan.plan.calibration.
    RANGE_PERCENTILES` of the signed errors, ``100 (predicted - measured) / measured``,
    of the primary metric of published results predicted by fits without them
    (:func:`~ocplan.plan.calibration.held_out_ranges`: a family's own results left out
    with their source group when it has enough, else every result left out with its
    chip, widened to its own); ``default`` for the families not named. Empty before a
    fit with both cross-validations."""
    family_rows: tuple[tuple[str, int], ...] = ()
    """(chip family, published results of it the values were fitted on) pairs."""

    def __post_init__(self) -> None:
        assert 0.0 <= self.iteration_overhead_s < 1.0, self
        assert 0.0 <= self.kernel_s < 1e-3, self
        assert 0.05 <= self.hbm_efficiency <= 1.0, self
        assert 0.0 <= self.reserve_fraction < 1.0, self
        assert 0.0 <= self.seq_overhead_s < 1e-2, self
        assert 0.05 <= self.gemm_4bit_ratio <= 2.0, self
        assert all(0.05 <= v <= 1.0 for _, v in self.family_hbm_efficiency), self
        assert self.grouped_ratio is None or 0.05 <= self.grouped_ratio <= 1.0, self
        assert all(-100.0 < low <= high for _, (low, high) in self.held_out_range_pct), self
        assert all(n >= 0 for _, n in self.family_rows), self

    def hbm_for(self, family: str | None) -> float:
        """Achieved / peak HBM bandwidth of a decode step on a chip of ``family``."""
        return dict(self.family_hbm_efficiency).get(family or "", self.hbm_efficiency)

    def range_for(self, family: str | None) -> RangeBasis:
        """The likely-error range of an estimate on a chip of ``family``: its own, else
        ``default``'s (None when the calibration has none), with what it rests on."""
        ranges = dict(self.held_out_range_pct)
        used = family if family and family in ranges else "default"
        return RangeBasis(ranges.get(used), used, dict(self.family_rows).get(used, 0))

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["family_hbm_efficiency"] = dict(self.family_hbm_efficiency)
        data["held_out_range_pct"] = {k: list(v) for k, v in self.held_out_range_pct}
        data["family_rows"] = dict(self.family_rows)
        return data

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ServingCalibration:
        values = dict(data)
        family = values.pop("family_hbm_efficiency", {})
        assert isinstance(family, dict), family
        pairs = tuple(sorted((str(k), float(v)) for k, v in family.items()))
        spans = values.pop("held_out_range_pct", {})  # absent in files before the ranges
        assert isinstance(spans, dict), spans
        ranges = tuple(sorted((str(k), (float(v[0]), float(v[1]))) for k, v in spans.items()))
        counts = values.pop("family_rows", {})
        assert isinstance(counts, dict), counts
        rows = tuple(sorted((str(k), int(v)) for k, v in counts.items()))
        return cls(**values, family_hbm_efficiency=pairs,  # type: ignore[arg-type]
                   held_out_range_pct=ranges, family_rows=rows)


def serving_range_note(likely: tuple[float, float], family: str, rows: int) -> str:
    """The output rate a measurement of a serving estimate would likely show, in words
    (:func:`~ocplan.plan.calibration.likely_range_note` of serving results, each left out
    with its source group)."""
    return likely_range_note(likely, family, rows, unit="output tokens/s per chip",
                             what="serving results", group="source group")


@lru_cache(maxsize=4)
def load_serving_calibration(path: Path = SERVING_CALIBRATION_FILE) -> ServingCalibration:
    """The committed serving calibration (priors when the file is absent)."""
    if not path.exists():
        return ServingCalibration()
    return ServingCalibration.from_json(json.loads(path.read_text(encoding="utf-8")))
