"""CPU performance model: published server-CPU benchmarks predicted from the CPU's specs.

A :class:`CpuConfig` (sockets, cores, clocks, TDP, memory as configured) goes in;
:func:`predict` returns a :class:`CpuPrediction` for SPECrate2017 int/fp, SPECspeed2017
int, SPECjbb2015 max/critical-jOPS, the SPEC CPU energy metric or STREAM triad, with an
interval from cross-validation and the bound that dominated. The physics is in
:mod:`ocplan.cpu.model`, the assembled model in :mod:`ocplan.cpu.design`, the fit in
:mod:`ocplan.cpu.fitting`, :mod:`ocplan.cpu.energy` (SPEC energy metric) and
:mod:`ocplan.cpu.crossval`; ``docs/cpu-calibration.md``
reports the evidence.
"""

from ocplan.cpu.calibration import CpuCalibration, load_cpu_calibration
from ocplan.cpu.config import CpuConfig, config_from_catalog, config_from_row
from ocplan.cpu.predict import CpuPrediction, predict, predict_many

__all__ = [
    "CpuCalibration",
    "CpuConfig",
    "CpuPrediction",
    "config_from_catalog",
    "config_from_row",
    "load_cpu_calibration",
    "predict",
    "predict_many",
]
