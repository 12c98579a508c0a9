"""Operator cost model: the time of one GEMM, attention or memory-bound kernel on a chip.

It sits between :mod:`ocplan.workloads` (operators as data) and :mod:`ocplan.plan` (the
step engine): it imports only :mod:`ocplan.catalog` and numpy. Every function is one
formula over numpy arrays (broadcast over layouts), in SI units, with its source in
``shared/reference/compute_units.md`` and ``docs/model.md`` ("Operator cost model").

- :mod:`~ocplan.costmodel.gemm`: GEMM and grouped GEMM from tile, wave and small-K
  quantization and the HBM roofline;
- :mod:`~ocplan.costmodel.attention`: flash attention and decode attention;
- :mod:`~ocplan.costmodel.roofline`: memory-bound kernels;
- :mod:`~ocplan.costmodel.chip`: what the laws read from a chip's ``compute`` block.

The training engine does not use this package yet.
"""

from ocplan.costmodel.attention import (
    attention_flops,
    decode_attention_time_s,
    flash_attention_time_s,
)
from ocplan.costmodel.chip import (
    GENERIC,
    ChipCompute,
    chip_compute,
    measured_gemm_ceiling,
    sustained_clock_fraction,
)
from ocplan.costmodel.gemm import (
    GemmCost,
    gemm_cost,
    gemm_flops,
    gemm_time_s,
    k_efficiency,
    tile_efficiency,
    wave_efficiency,
)
from ocplan.costmodel.roofline import (
    HBM_EFFICIENCY,
    KERNEL_FLOOR_S,
    KERNEL_GAP_S,
    memory_time_s,
)

__all__ = [
    "GENERIC",
    "HBM_EFFICIENCY",
    "KERNEL_FLOOR_S",
    "KERNEL_GAP_S",
    "ChipCompute",
    "GemmCost",
    "attention_flops",
    "chip_compute",
    "decode_attention_time_s",
    "flash_attention_time_s",
    "gemm_cost",
    "gemm_flops",
    "gemm_time_s",
    "k_efficiency",
    "measured_gemm_ceiling",
    "memory_time_s",
    "sustained_clock_fraction",
    "tile_efficiency",
    "wave_efficiency",
]
