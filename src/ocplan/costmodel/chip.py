"""What the operator cost model reads from a chip's ``compute`` block.

:func:`chip_compute` turns the catalog's :class:`~ocplan.catalog.schema.Compute` (or its
absence) into the handful of numbers the GEMM and attention laws use: the library's
output tile, how many tiles run at once, the small-K constant and whether the library
removes wave quantization. Values and sources: ``shared/reference/compute_units.md``
§1.1-1.2 (units, clocks), §3.1 (tiles, Stream-K) and §3.2 (K0).
"""

from __future__ import annotations

from dataclasses import dataclass

from ocplan.catalog.schema import Accelerator, Compute

__all__ = [
    "DEFAULT_K0",
    "DEFAULT_K0_BY_UNIT",
    "ETA_SOFTWARE_8BIT",
    "ETA_SOFTWARE_16BIT",
    "GENERIC",
    "GENERIC_TILE",
    "POWER_CLOCK_EXPONENT",
    "ChipCompute",
    "chip_compute",
    "exp_rate",
    "measured_gemm_ceiling",
    "power_capped_clock",
    "sustained_clock_fraction",
]

#: Small-K constant by unit kind when the chip's block gives none (compute_units.md
#: §3.2): NVIDIA SMs take the H100 fit (280; A100 and H20 have no published K sweep),
#: AMD CUs the MI300X fit (230). Gaudi MMEs, TPU MXUs and Ascend cube cores have no
#: published K sweep: 256, inside the 230-540 range of the three fits.
DEFAULT_K0_BY_UNIT: dict[str, int] = {"sm": 280, "cu": 230, "mme": 256, "mxu": 256, "cube": 256}
#: Small-K constant of a chip with no compute block: the same 256.
DEFAULT_K0 = 256
#: Output tile of a chip with no compute block: 128 x 128, the one size every vendor
#: library in compute_units.md §3.1 uses (Hopper and A100 CTA tiles, TPU MXU padding,
#: Ascend tuned tiles are multiples of it).
GENERIC_TILE = 128
#: Software efficiency at the measured clock on AMD hipBLASLt, 16-bit inputs: 654-843 TF
#: at the median clocks of MI300X/MI325X are 93-94 % of units x FLOP/clk x that clock
#: (ROCm blog "Measuring Max-Achievable FLOPs - Part 2"; compute_units.md §2.1.2).
ETA_SOFTWARE_16BIT = 0.93
#: The same for FP8 inputs: 83 % (same source).
ETA_SOFTWARE_8BIT = 0.83


@dataclass(frozen=True)
class ChipCompute:
    """The GEMM-geometry numbers of one chip, resolved from its catalog block.

    Attributes
    ----------
    tile_m, tile_n
        Output tile of the vendor GEMM library (elements).
    slots
        Tiles the chip computes at once: units / units per tile (H100 132; B200 74 with
        2-SM tiles).
    k0
        Small-K constant of ``eta_K = K / (K + K0)`` (elements of K).
    stream_k
        The library splits K across units, so there is no wave staircase.
    units
        Matrix-compute units (SMs, CUs, ...); 0 where unknown.
    exp_per_s
        Softmax exponentials per second of the whole chip at the clock of its peak
        (:func:`exp_rate`); 0 where the chip's rate is not published.
    portable_attention
        Rate of a FlashAttention-2-class kernel relative to the native fused attention
        (the catalog's ``portable_attention``); 1 where they are the same kernel or
        unmeasured.
    """

    tile_m: int
    tile_n: int
    slots: int
    k0: float
    stream_k: bool
    units: int = 0
    exp_per_s: float = 0.0
    portable_attention: float = 1.0


#: What a chip without a compute block gets: 128 x 128 tiles, K0 = 256 and no wave
#: quantization (Stream-K-like), because without a unit count any staircase would be
#: invented; one slot, since without wave quantization the count does not matter.
GENERIC = ChipCompute(tile_m=GENERIC_TILE, tile_n=GENERIC_TILE, slots=1, k0=DEFAULT_K0,
                      stream_k=True)


def chip_compute(compute: Compute | ChipCompute | None) -> ChipCompute:
    """The cost model's view of a chip's ``compute`` block.

    Parameters
    ----------
    compute
        The accelerator's catalog block, an already resolved :class:`ChipCompute`
        (returned unchanged), or ``None`` for :data:`GENERIC`.

    Returns
    -------
    ChipCompute
        Tile, concurrent tiles (``units // units_per_tile``), K0 (the block's, else
        :data:`DEFAULT_K0_BY_UNIT` for its unit kind) and the Stream-K flag.

    Examples
    --------
    >>> from ocplan.catalog.schema import Compute
    >>> c = Compute(units=148, unit_name="sm", clock="1.86 GHz", tile={"m": 256, "n": 256},
    ...             units_per_tile=2, k0=540)
    >>> chip_compute(c).slots
    74
    """
    if compute is None:
        return GENERIC
    if isinstance(compute, ChipCompute):
        return compute
    k0 = compute.k0 if compute.k0 is not None else DEFAULT_K0_BY_UNIT[compute.unit_name]
    return ChipCompute(tile_m=compute.tile.m, tile_n=compute.tile.n,
                       slots=compute.units // compute.units_per_tile, k0=float(k0),
                       stream_k=compute.stream_k, units=compute.units,
                       exp_per_s=exp_rate(compute),
                       portable_attention=compute.portable_attention or 1.0)


def exp_rate(compute: Compute) -> float:
    """Exponentials per second the chip's special-function units evaluate at the clock
    of its matrix peak: ``units x exp_per_clock x f_peak``; 0 when ``exp_per_clock`` is
    not published. The units run at the SM clock, so a step scales this rate by the
    sustained-clock fraction as it does the matrix rates (:class:`Efficiencies`'
    ``clock``).

    H100 SXM: 132 SMs x 16 x 1.83 GHz = 3.9e12/s, the "3.9 TFLOPS of special functions"
    FlashAttention-3 sets against 989 TFLOPS of matmul (Shah et al. 2024, arXiv
    2407.08608, §3.1).

    >>> from ocplan.catalog.schema import Compute
    >>> c = Compute(units=132, unit_name="sm", clock="1830 MHz", tile={"m": 128, "n": 256},
    ...             exp_per_clock=16)
    >>> round(exp_rate(c) / 1e12, 2)
    3.86
    """
    if compute.exp_per_clock is None:
        return 0.0
    return float(compute.units * compute.exp_per_clock * compute.clock)


#: Exponent of the sustained clock's power law ``f = f_ref (P / P_ref)^alpha`` near the
#: design point: MI300X 1207 MHz at 750 W against MI325X 1447 MHz at 1000 W (+33 %
#: power, +20 % clock) gives 0.6 (compute_units.md §3.6, AMD "Measuring Max-Achievable
#: FLOPs - Part 2"). Far below the design point the exponent nears 1 (GB300 at 500 W).
POWER_CLOCK_EXPONENT = 0.6


def power_capped_clock(clock_ref: float, power: float, power_ref: float,
                       alpha: float = POWER_CLOCK_EXPONENT) -> float:
    """Sustained clock at module power ``power`` from one measured at ``power_ref``:
    ``f = f_ref (P / P_ref)^alpha`` (Hz; compute_units.md §3.6).

    >>> round(power_capped_clock(1207e6, 1000.0, 750.0) / 1e6)
    1434
    """
    return float(clock_ref * (power / power_ref) ** alpha)


def sustained_clock_fraction(compute: Compute | None, power: float | None = None,
                             tdp: float | None = None) -> float:
    """``f_sustained / f_peak``: the share of the peak's clock a dense GEMM sustains.

    1.0 when no sustained clock is recorded (on NVIDIA the clock drop is folded into the
    fitted efficiency; compute_units.md §3.7), except below ``tdp`` (a power mode or cap),
    where the clock follows :func:`power_capped_clock` from the fitted point at ``tdp``.
    On AMD, compute_units.md §2.1.2 gives
    ``achieved = peak x f_sustained / f_peak x eta_software``, with eta_software
    :data:`ETA_SOFTWARE_16BIT` or :data:`ETA_SOFTWARE_8BIT`: MI300X BF16 at 750 W is
    1207 / 2100 = 0.575.

    ``power``: the module's power in the system (its power profile, W); when it differs
    from the power the sustained clock was measured at (``sustained_clock_power``, else
    ``tdp``) the clock follows :func:`power_capped_clock`, at most the peak's clock.
    """
    if compute is None or compute.sustained_clock is None:
        if power is not None and tdp is not None and power < tdp:
            # no measured clock: the fitted efficiency holds at tdp, and a lower power
            # mode or cap lowers the clock by the same law
            return power_capped_clock(1.0, power, tdp)
        return 1.0
    clock = compute.sustained_clock
    reference = compute.sustained_clock_power or tdp
    if power is not None and reference is not None and power != reference:
        # another power profile of the module: the clock follows the power law, up to
        # the clock the peak assumes
        clock = min(compute.clock, power_capped_clock(clock, power, reference))
    return clock / compute.clock


def measured_gemm_ceiling(accelerator: Accelerator, precision: str) -> float | None:
    """Highest large-GEMM efficiency the chip's measurements allow at ``precision``:
    ``R_meas / (P_peak x f_sustained / f_peak)``, the best measured dense matmul rate
    (``compute.measured_matmul``, FLOP/s) over the peak at the clock a dense GEMM sustains
    (:func:`sustained_clock_fraction`), the quantity the calibrated ``gemm`` (16-bit) and
    ``gemm_8bit`` efficiencies stand for at large shapes. ``None`` without a measurement.

    A shape search finds the library's best tile fit, so a run's mixed shapes, framework
    and power draw stay below it (the fitted Ampere and Hopper values sit at 0.78-0.88 of
    theirs; compute_units.md §2.1.1); a fitted value above it is unphysical.
    """
    compute = accelerator.compute
    measured = compute.measured_matmul.get(precision) \
        if compute and compute.measured_matmul else None
    peak = accelerator.peak_flops.get(precision)
    if measured is None or not peak:
        return None
    return measured / (peak * sustained_clock_fraction(compute))
