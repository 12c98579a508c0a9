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
- ``reserve_fraction``: HBM share not available to weights and KV cache (framework
  workspace, activations of the largest chunk, graphs, communication buffers; vLLM's
  ``gpu_memory_utilization`` defaults to 0.9);
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
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["SERVING_CALIBRATION_FILE", "ServingCalibration", "load_serving_calibration"]

SERVING_CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


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

    def __post_init__(self) -> None:
        assert 0.0 <= self.iteration_overhead_s < 1.0, self
        assert 0.0 <= self.kernel_s < 1e-3, self
        assert 0.05 <= self.hbm_efficiency <= 1.0, self
        assert 0.0 <= self.reserve_fraction < 1.0, self
        assert 0.0 <= self.seq_overhead_s < 1e-2, self
        assert 0.05 <= self.gemm_4bit_ratio <= 2.0, self
        assert all(0.05 <= v <= 1.0 for _, v in self.family_hbm_efficiency), self
        assert self.grouped_ratio is None or 0.05 <= self.grouped_ratio <= 1.0, self

    def hbm_for(self, family: str | None) -> float:
        """Achieved / peak HBM bandwidth of a decode step on a chip of ``family``."""
        return dict(self.family_hbm_efficiency).get(family or "", self.hbm_efficiency)

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["family_hbm_efficiency"] = dict(self.family_hbm_efficiency)
        return data

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ServingCalibration:
        values = dict(data)
        family = values.pop("family_hbm_efficiency", {})
        assert isinstance(family, dict), family
        pairs = tuple(sorted((str(k), float(v)) for k, v in family.items()))
        return cls(**values, family_hbm_efficiency=pairs)  # type: ignore[arg-type]


@lru_cache(maxsize=4)
def load_serving_calibration(path: Path = SERVING_CALIBRATION_FILE) -> ServingCalibration:
    """The committed serving calibration (priors when the file is absent)."""
    if not path.exists():
        return ServingCalibration()
    return ServingCalibration.from_json(json.loads(path.read_text(encoding="utf-8")))
