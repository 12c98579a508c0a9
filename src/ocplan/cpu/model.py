"""Physical laws of the CPU performance model, one formula per function.

Every function is pure and vectorised: arguments are numpy arrays (or floats) of equal
shape, results arrays of that shape. Clocks are Hz, power W, bandwidth B/s; ``log_*``
arguments and results are natural logarithms of those SI values. The assembled model
(which law applies to which benchmark, with the fitted parameters) is
:mod:`ocplan.cpu.design`; the derivation and the evidence are in ``docs/cpu-calibration.md``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from ocplan.catalog.schema import DDR_BYTES_PER_TRANSFER

__all__ = [
    "CACHE_REFERENCE_BYTES",
    "CLOCK_SHARPNESS",
    "CPU_FULL_LOAD_POWER_PER_TDP",
    "CPU_IDLE_POWER_PER_TDP",
    "DDR4_EFFICIENCY_VS_DDR5",
    "DRAM_POWER_W_PER_BYTE",
    "LPDDR5X_BYTES_PER_TRANSFER",
    "MIN_CORE_POWER_W",
    "OTHER_POWER_RATIO",
    "SMOOTH_MIN_ORDER",
    "SMT_UPLIFT",
    "UNCORE_POWER_MAX_W",
    "VECTOR_REFERENCE_FLOP_PER_CYCLE",
    "VOLTAGE_FREQUENCY_EXPONENT",
    "Array",
    "cache_traffic_log",
    "channel_bytes_per_transfer",
    "memory_efficiency_log",
    "memory_limited_log",
    "package_power_W",
    "smooth_max_log",
    "smooth_min_log",
    "sustained_clock_log",
    "tdp_clock_log",
    "theoretical_bandwidth_Bps",
    "vector_width_log",
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
#: Throughput gain of two hardware threads per core over one, per model kind, applied to
#: the compute throughput (before the memory-bandwidth limit). Integer and floating-point
#: rate: measured on SPECrate2017 itself, the median over processors of the ratio of the
#: median base score with two threads per core to the median with one, same processor,
#: chip count and enabled cores (spec.org results via github.com/fjacquet/spec-search
#: @9810b16, cpu2017-results.csv.gz; pairs in ``cpu/data/smt_pairs.csv``, made and
#: summarised by :mod:`ocplan.cpu.smt`): int 1.223 over n = 13 pairs (12 Intel, median
#: 1.224; 1 AMD, 1.156), fp 1.009 over n = 246 (173 Intel, 1.015; 73 AMD, 0.997): SMT
#: does not raise SPECrate fp throughput, so 1.0. SPECjbb: 1.3, Intel's figure for
#: Hyper-Threading on server benchmarks ("up to 30 %", D. Marr et al., "Hyper-Threading
#: Technology Architecture and Microarchitecture", Intel Technology Journal 6(1), 2002);
#: the SPECjbb2015 dump of the same repository has 3 such pairs (0.89-1.19), too few to
#: measure it. Speed: 1.0 (one thread).
SMT_UPLIFT: dict[str, float] = {"int_rate": 1.22, "fp_rate": 1.0, "int_speed": 1.0,
                                "jbb_max": 1.3}
#: CPU package power at 100 % load per W of TDP: 1.02 (Boavizta API, CPU consumption
#: profile "model adaptation from TDP", average of TEADS measurements at 0/10/50/100 %
#: load = 0.12/0.32/0.75/1.02 x TDP; github.com/Boavizta/boaviztapi
#: docs/docs/Explanations/components/cpu.md).
CPU_FULL_LOAD_POWER_PER_TDP = 1.02
#: CPU package power at 0 % load per W of TDP: 0.12, the same profile's idle point
#: (Boavizta API, docs/docs/Explanations/components/cpu.md): what a package draws with
#: no core switching (uncore, leakage), the floor of :func:`package_power_W`.
CPU_IDLE_POWER_PER_TDP = 0.12
#: DRAM power, W per byte of capacity: 0.284 W/GB (Boavizta API, RAM consumption profile,
#: docs/docs/Explanations/components/ram.md).
DRAM_POWER_W_PER_BYTE = 0.284e-9
#: Power of the other server components (fans, board, drives, conversion) as a fraction of
#: CPU + DRAM power: 0.33, Boavizta's default ``other_consumption_ratio``
#: (docs/docs/Explanations/devices/server.md).
OTHER_POWER_RATIO = 0.33
#: Sustained share of the theoretical bandwidth a DDR4 channel delivers relative to a DDR5
#: channel at the same transfer rate: 1 / 1.36. DDR5 splits each DIMM into two independent
#: 32-bit subchannels with burst length 16 and doubles the banks (32 in 8 bank groups), so
#: less of the bus idles on bank conflicts, turnarounds and refresh; Micron measures
#: 1.36x the effective bandwidth of DDR4-3200 for DDR5 at the same 3200 MT/s (Micron,
#: "Introducing Micron DDR5 SDRAM: More Than a Generational Update", white paper, 2019,
#: fig. "DDR5 vs DDR4 effective bandwidth"; quoted by Blocks & Files, "DDR5", 2022-04-23).
#: MRDIMM (DDR5 dies behind a multiplexing buffer) and LPDDR5X (16-bit channels, 16-32
#: banks, on package) are counted as DDR5-class: no published ratio separates them.
DDR4_EFFICIENCY_VS_DDR5 = 1.0 / 1.36
#: Data bytes per transfer of one LPDDR5X channel as NVIDIA counts Grace's 16 channels
#: (32 data bits): 16 x 4 B x 8000 MT/s = 512 GB/s, "up to 512 GB/s" of LPDDR5X per Grace
#: CPU (NVIDIA Grace CPU Superchip datasheet, memory section).
LPDDR5X_BYTES_PER_TRANSFER = 4
#: Reference on-chip cache per core of the cache law (:func:`cache_traffic_log`): 5 MB,
#: Zen 4 and Zen 5 (1 MB L2 + 32 MB L3 per 8-core CCD), whose term is then 0.
CACHE_REFERENCE_BYTES = 5e6
#: Reference peak FP64 FLOP per core per cycle of the vector law (:func:`vector_width_log`):
#: 16, two 256-bit FMA pipes (Zen 4).
VECTOR_REFERENCE_FLOP_PER_CYCLE = 16.0


def _arr(x: Any) -> Array:
    return np.asarray(x, dtype=np.float64)


def theoretical_bandwidth_Bps(sockets: Any, channels: Any, dimms_total: Any,
                              transfers_per_s: Any,
                              bytes_per_transfer: Any = DDR_BYTES_PER_TRANSFER) -> Array:
    """Theoretical DRAM bandwidth of a system, B/s.

    ``B = S x n x r x w`` with S sockets, n populated channels per socket, r transfers/s per
    channel and w bytes per transfer (8 B = a 64-bit DDR channel, JESD79-4/5; see
    :func:`channel_bytes_per_transfer`). n = min(D / S, ch) for D DIMMs in the system and ch
    channels per socket (the validation README's formula); D NaN (one per channel, or on
    package): n = ch; ch NaN (not published) but D known: n = D / S, one DIMM per channel,
    the population order of every server memory guide (all channels before a second DIMM
    on any).
    """
    s, ch, d = _arr(sockets), _arr(channels), _arr(dimms_total)
    populated = np.where(np.isnan(d), ch, np.where(np.isnan(ch), d / s, np.minimum(d / s, ch)))
    return s * populated * _arr(transfers_per_s) * _arr(bytes_per_transfer)


def channel_bytes_per_transfer(memory_types: Any) -> Array:
    """Data bytes per transfer of one memory channel as vendors count channels: 8 B for a
    DDR4/DDR5/MRDIMM channel (64 data bits, JESD79-4/5; MRDIMM's rate is the multiplexed
    host-side rate), 4 B for an LPDDR5X channel in NVIDIA's count (Grace: 16 channels x
    4 B x 8000 MT/s = 512 GB/s, the vendor's figure, NVIDIA Grace CPU Superchip datasheet)."""
    return np.array([LPDDR5X_BYTES_PER_TRANSFER if t == "LPDDR5X" else DDR_BYTES_PER_TRANSFER
                     for t in memory_types], dtype=np.float64)


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


def memory_efficiency_log(memory_types: Any) -> Array:
    """Log of the sustained-bandwidth efficiency of each row's DRAM generation relative to
    DDR5: ``ln(1 / 1.36)`` for DDR4 (:data:`DDR4_EFFICIENCY_VS_DDR5`), 0 for DDR5,
    MRDIMM, LPDDR5X and unstated types."""
    return np.array([math.log(DDR4_EFFICIENCY_VS_DDR5) if t == "DDR4" else 0.0
                     for t in memory_types], dtype=np.float64)


def cache_traffic_log(cache_per_core_bytes: Any, exponent: Any) -> Array:
    """Log of the factor by which on-chip cache per core scales the work a byte of DRAM
    traffic carries, relative to :data:`CACHE_REFERENCE_BYTES`.

    The miss rate of a cache of capacity C falls as ``m ~ C^(-a)``: the empirical power
    law of cache misses, a near 0.5 for commercial workloads (the "sqrt(2) rule": A.
    Hartstein, V. Srinivasan, T. R. Puzak, P. G. Emma, "Cache miss behavior: is it
    sqrt(2)?", ACM Computing Frontiers 2006, eq. 1). DRAM bytes per unit of work scale with
    the miss rate, so the throughput a bandwidth sustains scales as ``(C / C_ref)^a``; ``a``
    is ``exponent`` (fitted). C is L2 + L3 share per core
    (:attr:`ocplan.cpu.microarch.FamilySpec.cache_per_core_bytes`).
    """
    return _arr(exponent) * np.log(_arr(cache_per_core_bytes) / CACHE_REFERENCE_BYTES)


def vector_width_log(fp64_flop_per_cycle: Any, exponent: Any) -> Array:
    """Log of the factor by which the peak vector FP throughput per core and cycle scales
    the per-core floating-point throughput, relative to
    :data:`VECTOR_REFERENCE_FLOP_PER_CYCLE`: ``b ln(F / F_ref)``.

    Amdahl's law over the suite: only the vectorised, compute-bound part of the floating
    point benchmarks speeds up with wider or more FMA pipes, so the geometric-mean score
    grows as a power b < 1 of the peak width (b fitted, ``exponent``).
    """
    return _arr(exponent) * np.log(_arr(fp64_flop_per_cycle) / VECTOR_REFERENCE_FLOP_PER_CYCLE)


def package_power_W(tdp_W: Any, activity: Any, exponent: Any) -> Array:
    """Package power of one CPU running a throughput benchmark, W.

    ``P = TDP x (p0 + (p1 - p0) x a^gamma)``: p0 = 0.12 and p1 = 1.02 per W of TDP, the
    idle and full-load points of Boavizta's TDP-based CPU profile
    (:data:`CPU_IDLE_POWER_PER_TDP`, :data:`CPU_FULL_LOAD_POWER_PER_TDP`), and ``a`` the
    core activity: the achieved share ``T / C`` of the compute-bound throughput
    (:func:`memory_limited_log`). Dynamic power is ``alpha C V^2 f`` (Mudge 2001): a
    core stalled on DRAM switches less, so a memory-bound suite draws less than TDP and a
    compute-bound one (a = 1) the full-load power. ``gamma`` (``exponent``) is one global
    fitted number; a is clipped to [0, 1].
    """
    a = np.clip(_arr(activity), 0.0, 1.0)
    idle, full = CPU_IDLE_POWER_PER_TDP, CPU_FULL_LOAD_POWER_PER_TDP
    return _arr(tdp_W) * (idle + (full - idle) * a ** _arr(exponent))


def wall_power_W(sockets: Any, tdp_W: Any, memory_bytes: Any, activity: Any = 1.0,
                 exponent: Any = 1.0) -> Array:
    """Server wall power under a throughput benchmark, W.

    ``P = (S x P_pkg + 0.284 W/GB x memory) x (1 + 0.33)``: S packages at the benchmark's
    core activity (:func:`package_power_W`; activity 1, the default, is full load: 1.02 x
    TDP), DRAM power by capacity (:data:`DRAM_POWER_W_PER_BYTE`) and the other components
    as a ratio of both (:data:`OTHER_POWER_RATIO`), Boavizta's server consumption profile.
    Unknown memory (NaN) counts as zero.
    """
    cpu = _arr(sockets) * package_power_W(tdp_W, activity, exponent)
    dram = np.nan_to_num(_arr(memory_bytes), nan=0.0) * DRAM_POWER_W_PER_BYTE
    return (cpu + dram) * (1.0 + OTHER_POWER_RATIO)
