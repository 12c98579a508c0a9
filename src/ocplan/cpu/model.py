"""Physical laws of the CPU performance model, one formula per function.

Every function is pure and vectorised: arguments are numpy arrays (or floats) of equal
shape, results arrays of that shape. Clocks are Hz, power W, bandwidth B/s; ``log_*``
arguments and results are natural logarithms of those SI values. The assembled model
(which law applies to which benchmark, with the fitted parameters) is
:mod:`ocplan.cpu.design`; the derivation and the evidence are in ``docs/cpu-calibration.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ocplan.catalog.schema import DDR_BYTES_PER_TRANSFER

__all__ = [
    "CLOCK_SHARPNESS",
    "CPU_FULL_LOAD_POWER_PER_TDP",
    "DRAM_POWER_W_PER_BYTE",
    "MIN_CORE_POWER_W",
    "OTHER_POWER_RATIO",
    "SMOOTH_MIN_ORDER",
    "SMT_UPLIFT",
    "UNCORE_POWER_MAX_W",
    "VOLTAGE_FREQUENCY_EXPONENT",
    "Array",
    "memory_limited_log",
    "smooth_max_log",
    "smooth_min_log",
    "sustained_clock_log",
    "tdp_clock_log",
    "theoretical_bandwidth_Bps",
    "wall_power_W",
]

Array = npt.NDArray[np.float64]

#: Dynamic CMOS power is P = a C V^2 f and, inside the DVFS range, the voltage a clock
#: needs grows about linearly with it, so P ~ f^3 and the clock a power budget sustains
#: is f ~ P^(1/3) (T. Mudge, "Power: A First-Class Architectural Design Constraint",
#: IEEE Computer 34(4), 2001: dynamic power ~ C V^2 f with the supply voltage scaled
#: with the clock).
VOLTAGE_FREQUENCY_EXPONENT = 1.0 / 3.0
#: Upper bound of the fitted per-socket uncore power (I/O die, mesh, memory controllers):
#: below the lowest TDP of the calibration CPUs (180 W), so every part keeps a core budget.
UNCORE_POWER_MAX_W = 150.0
#: Smallest per-core power budget, W: keeps the logarithm finite for a configuration whose
#: TDP is at or below the uncore power (the clock then falls to the base-clock floor).
MIN_CORE_POWER_W = 0.05
#: Sharpness of the smooth min/max of clocks in log space: the blend departs from the hard
#: min/max by at most ln(2)/30 = 2.3 % where the two clocks are equal, and is
#: differentiable, which the least-squares fit needs.
CLOCK_SHARPNESS = 30.0
#: Order p of the smooth minimum of compute and memory throughput, T = (C^-p + M^-p)^(-1/p)
#: (p = 1: harmonic sum, p -> inf: the roofline's hard minimum). p = 2 was chosen among
#: {1, 2, 4} by the leave-one-CPU-out error of a prototype (docs/cpu-calibration.md).
SMOOTH_MIN_ORDER = 2.0
#: Throughput gain of two hardware threads per core over one, per model kind. Integer rate
#: and SPECjbb: 1.3, Intel's figure for Hyper-Threading on server benchmarks ("up to
#: 30 %", D. Marr et al., "Hyper-Threading Technology Architecture and Microarchitecture",
#: Intel Technology Journal 6(1), 2002); no calibration row runs an SMT-capable x86 CPU
#: with SMT off, so the data cannot refine it. Floating-point rate: 1.0, measured: the
#: published medians mix SMT settings, and the four CPUs whose 1P and 2P example results
#: differ in SMT scale 1.97-2.06x from 1P to 2P, as without SMT. Speed: 1.0 (one thread).
SMT_UPLIFT: dict[str, float] = {"int_rate": 1.3, "fp_rate": 1.0, "int_speed": 1.0,
                                "jbb_max": 1.3}
#: CPU package power at 100 % load per W of TDP: 1.02 (Boavizta API, CPU consumption
#: profile "model adaptation from TDP", average of TEADS measurements at 0/10/50/100 %
#: load = 0.12/0.32/0.75/1.02 x TDP; github.com/Boavizta/boaviztapi
#: docs/docs/Explanations/components/cpu.md).
CPU_FULL_LOAD_POWER_PER_TDP = 1.02
#: DRAM power, W per byte of capacity: 0.284 W/GB (Boavizta API, RAM consumption profile,
#: docs/docs/Explanations/components/ram.md).
DRAM_POWER_W_PER_BYTE = 0.284e-9
#: Power of the other server components (fans, board, drives, conversion) as a fraction of
#: CPU + DRAM power: 0.33, Boavizta's default ``other_consumption_ratio``
#: (docs/docs/Explanations/devices/server.md).
OTHER_POWER_RATIO = 0.33


def _arr(x: Any) -> Array:
    return np.asarray(x, dtype=np.float64)


def theoretical_bandwidth_Bps(sockets: Any, channels: Any, dimms_total: Any,
                              transfers_per_s: Any) -> Array:
    """Theoretical DRAM bandwidth of a system, B/s.

    ``B = S x min(D / S, ch) x r x 8 B`` with S sockets, ch channels per socket, D DIMMs
    in the system (NaN: one per channel or on-package, so ``ch``) and r transfers/s per
    channel (the validation README's formula; 8 B = a 64-bit DDR channel, JESD79-4/5).
    """
    s, ch, d = _arr(sockets), _arr(channels), _arr(dimms_total)
    populated = np.where(np.isnan(d), ch, np.minimum(d / s, ch))
    return s * populated * _arr(transfers_per_s) * DDR_BYTES_PER_TRANSFER


def smooth_min_log(a: Any, b: Any, sharpness: float = CLOCK_SHARPNESS) -> Array:
    """Differentiable minimum of two log values: ``-ln(e^(-k a) + e^(-k b)) / k``."""
    k = sharpness
    return -np.logaddexp(-k * _arr(a), -k * _arr(b)) / k


def smooth_max_log(a: Any, b: Any, sharpness: float = CLOCK_SHARPNESS) -> Array:
    """Differentiable maximum of two log values: ``ln(e^(k a) + e^(k b)) / k``."""
    k = sharpness
    return np.logaddexp(k * _arr(a), k * _arr(b)) / k


def tdp_clock_log(tdp_W: Any, cores: Any, log_coefficient: Any, uncore_W: Any) -> Array:
    """Log of the all-core clock a TDP budget sustains, ln Hz.

    ``f = c x ((TDP - P_u) / N)^(1/3)``: the package budget less the uncore power P_u,
    shared by N cores, each drawing P ~ f^3 (:data:`VOLTAGE_FREQUENCY_EXPONENT`); c (Hz per
    W^(1/3)) and P_u are fitted. A budget at or below P_u is clipped to
    :data:`MIN_CORE_POWER_W` per core.
    """
    per_core = np.maximum((_arr(tdp_W) - _arr(uncore_W)) / _arr(cores), MIN_CORE_POWER_W)
    return _arr(log_coefficient) + VOLTAGE_FREQUENCY_EXPONENT * np.log(per_core)


def sustained_clock_log(log_base: Any, log_cap: Any, log_tdp_clock: Any, tdp_known: Any,
                        log_headroom: Any) -> Array:
    """Log of the sustained all-core clock under a throughput load, ln Hz.

    With a published TDP: ``f = min(f_cap, max(f_base, f_TDP))``, the TDP-limited clock
    (:func:`tdp_clock_log`) never below the base clock (which vendors guarantee at TDP) nor
    above the cap (the published all-core boost, else the maximum boost). Without a TDP:
    ``f = min(f_cap, h x f_base)``, h the fitted typical headroom over base. Min and max
    are the smooth versions (:func:`smooth_min_log`).
    """
    with_tdp = smooth_max_log(log_base, log_tdp_clock)
    without = _arr(log_base) + _arr(log_headroom)
    return smooth_min_log(log_cap, np.where(np.asarray(tdp_known, dtype=bool), with_tdp,
                                            without))


def memory_limited_log(log_compute: Any, log_memory: Any, share: Any,
                       order: float = SMOOTH_MIN_ORDER) -> Array:
    """Log throughput of a benchmark suite under a memory-bandwidth limit.

    ``T = C x (1 + (C / M)^p)^(-phi / p)``: the share phi of the suite's geometric mean that
    is bandwidth-bound runs at the smooth minimum (C^-p + M^-p)^(-1/p) of the compute
    throughput C and the memory throughput M (bandwidth x score per B/s); the rest runs at
    C. phi = 1 is a smooth roofline, phi = 0 no memory limit. NaN memory (bandwidth not
    known) leaves C.
    """
    lc, lm = _arr(log_compute), _arr(log_memory)
    gap = np.where(np.isnan(lm), -np.inf, lc - lm)
    return lc - _arr(share) / order * np.logaddexp(0.0, order * gap)


def wall_power_W(sockets: Any, tdp_W: Any, memory_bytes: Any) -> Array:
    """Server wall power at full CPU load, W.

    ``P = (S x TDP x 1.02 + 0.284 W/GB x memory) x (1 + 0.33)``: package power at 100 %
    load (:data:`CPU_FULL_LOAD_POWER_PER_TDP`), DRAM power by capacity
    (:data:`DRAM_POWER_W_PER_BYTE`) and the other components as a ratio of both
    (:data:`OTHER_POWER_RATIO`), Boavizta's server consumption profile. Unknown memory
    (NaN) counts as zero.
    """
    cpu = _arr(sockets) * _arr(tdp_W) * CPU_FULL_LOAD_POWER_PER_TDP
    dram = np.nan_to_num(_arr(memory_bytes), nan=0.0) * DRAM_POWER_W_PER_BYTE
    return (cpu + dram) * (1.0 + OTHER_POWER_RATIO)
