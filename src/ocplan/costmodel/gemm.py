"""GEMM and grouped-GEMM time from tile, wave and small-K quantization.

The law (``shared/reference/compute_units.md`` §3.7)::

    t = max( FLOPs / (peak x eta_large x eta_tile x eta_wave x eta_K),
             bytes / (BW_hbm x eta_bw) ) + t_launch

- ``eta_tile``: output padded to whole tiles (§3.1; NVIDIA "Matrix Multiplication
  Background User's Guide", Tile Quantization);
- ``eta_wave``: tiles run ``slots`` at a time, the last wave partly idle (§3.1; same
  guide, Wave Quantization; DeepGEMM README's 112-of-132-SMs example);
- ``eta_K = K / (K + K0)``: per-tile prologue and epilogue not amortised at small K
  (§3.2, fitted to the openxla/xla ``matmul_interpolator_data.h`` K sweeps);
- ``eta_large``: the fitted large-GEMM ceiling of the chip family and precision (§2.1.1;
  passed in: calibration owns it); everything else comes from the chip's ``compute``
  block (:mod:`ocplan.costmodel.chip`);
- bytes: A, B and C once each; the weights of every group are streamed once (§3.3-3.4).

Every function takes numpy arrays (or scalars) and broadcasts; none loops over elements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ocplan.catalog.schema import Compute
from ocplan.costmodel.chip import ChipCompute, chip_compute
from ocplan.costmodel.roofline import HBM_EFFICIENCY, FloatArray, f64

__all__ = [
    "RAGGED_PAD_TILES",
    "SMALL_TILE_M",
    "SPLIT_K_CANDIDATES",
    "SPLIT_K_MIN_DEPTH",
    "GemmCost",
    "gemm_cost",
    "gemm_flops",
    "gemm_time_s",
    "k_efficiency",
    "tile_count",
    "tile_efficiency",
    "tile_m_for",
    "wave_efficiency",
]

#: K splits a library may choose for a GEMM whose tiles under-fill one wave (cuBLAS and
#: hipBLASLt split-K heuristics; Stream-K, Osama et al. PPoPP 2023, arXiv 2301.03598).
#: The cost model takes the fastest split whose work units still fit in one wave; 1 (no
#: split) is always allowed, so GEMMs of a wave or more keep the staircase of §3.1.
SPLIT_K_CANDIDATES: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 12, 16)
_SPLITS = np.array(SPLIT_K_CANDIDATES, dtype=np.float64)
#: Expected padding of one group whose rows are spread around their mean (routed experts):
#: half a tile, the mean of a residue uniform over the tile. Each group of a grouped
#: kernel is padded to the tile on its own (compute_units.md §3.4), so a ragged set of
#: groups pays ``m / tm + 1/2`` tiles each where equal groups pay ``ceil(m / tm)``.
#: Measured on H200 (validation/device/h200_kernels.csv, ``torch._grouped_mm``, 8 MoE
#: shapes): multinomially routed tokens at 256, 1024 and 4096 per expert ran a median
#: 31 %, 8.5 % and 2 % slower than balanced ones (the half tile gives 25, 6 and 1.6 %),
#: with the most loaded expert only 1.03-1.25 times the mean.
RAGGED_PAD_TILES = 0.5
#: Shallowest K slice a split may leave: 128, one BLOCK_K of Hopper FP8 tiles (two of
#: BF16; compute_units.md §3.1).
SPLIT_K_MIN_DEPTH = 128



#: Row granularity of the skinny GEMMs a library runs below its large tile: CUTLASS/cuBLAS
#: and hipBLASLt carry M tiles in steps of 16 (mma.sync m16, MFMA 16x16) and TensorRT-LLM
#: and vLLM route the smallest M to GEMV-style kernels, so a GEMM of M rows (a decode
#: batch) smaller than the large tile is padded to a multiple of 16, not to the large
#: tile (compute_units.md §3.1 lists the large tiles).
SMALL_TILE_M = 16


def tile_m_for(m: ArrayLike, tile_m: int) -> FloatArray:
    """M tile a library uses for ``m`` rows: ``16 ceil(m / 16)`` below the large tile;
    from there the large tile or its half, whichever pads less (libraries carry both:
    Hopper wgmma tiles of 64 and 128 rows, MFMA 128 and 64), the large one on a tie.

    >>> [float(x) for x in tile_m_for([1, 40, 100, 129, 200, 4096], 128)]
    [16.0, 48.0, 112.0, 64.0, 128.0, 128.0]
    """
    mm = np.maximum(f64(m), 1.0)
    small = SMALL_TILE_M * np.ceil(mm / SMALL_TILE_M)
    half = max(tile_m // 2, SMALL_TILE_M)
    pad_large = np.ceil(mm / tile_m) * tile_m
    pad_half = np.ceil(mm / half) * half
    large = np.where(pad_half < pad_large, float(half), float(tile_m))
    return f64(np.where(mm < tile_m, np.minimum(small, tile_m), large))


def tile_count(m: ArrayLike, n: ArrayLike, groups: ArrayLike, tile_m: ArrayLike,
               tile_n: ArrayLike) -> FloatArray:
    """Output tiles of a (grouped) GEMM: ``G x ceil(M / tm) x ceil(N / tn)``.

    ``m`` is the rows of one group (tokens per expert for MoE), so each group is padded
    to the tile on its own (compute_units.md §3.4).
    """
    return f64(f64(groups) * np.ceil(f64(m) / f64(tile_m)) * np.ceil(f64(n) / f64(tile_n)))


def tile_efficiency(m: ArrayLike, n: ArrayLike, tile_m: ArrayLike,
                    tile_n: ArrayLike) -> FloatArray:
    """Useful share of the padded output: ``M N / (ceil(M/tm) tm x ceil(N/tn) tn)``.

    Parameters
    ----------
    m, n
        Output rows and columns of one group (elements, >= 0).
    tile_m, tile_n
        Output tile of the library (elements, > 0).

    Returns
    -------
    numpy.ndarray
        In (0, 1]; 1 for an empty output (no work, no waste).

    Source: compute_units.md §3.1; NVIDIA "Matrix Multiplication Background User's
    Guide", Tile Quantization.

    Examples
    --------
    >>> float(tile_efficiency(128, 256, 128, 128)), float(tile_efficiency(129, 256, 128, 128))
    (1.0, 0.50390625)
    """
    mm, nn, tm, tn = f64(m), f64(n), f64(tile_m), f64(tile_n)
    padded = np.ceil(mm / tm) * tm * np.ceil(nn / tn) * tn
    return f64(np.where(padded > 0, mm * nn / np.maximum(padded, 1.0), 1.0))


def wave_efficiency(m: ArrayLike, n: ArrayLike, groups: ArrayLike, tile_m: ArrayLike,
                    tile_n: ArrayLike, units: ArrayLike) -> FloatArray:
    """Busy share of the tile slots: ``tiles / (ceil(tiles / units) x units)``.

    Parameters
    ----------
    m, n
        Output rows and columns of one group (elements).
    groups
        Independent GEMMs of that shape in one kernel (batch, or experts of a grouped
        GEMM), >= 1.
    tile_m, tile_n
        Output tile (elements).
    units
        Tiles the chip runs at once: SMs, CUs, MMEs, MXUs or cube cores, divided by the
        units one tile occupies (Blackwell 2-SM tiles: 148 / 2 = 74).

    Returns
    -------
    numpy.ndarray
        In (0, 1]; 1 for an empty output.

    Assumptions: data-parallel tiling, every tile the same work, no split of K (see
    :func:`gemm_cost` for the split a library makes when one wave under-fills the chip).
    Source: compute_units.md §3.1; NVIDIA guide, Wave Quantization (A100, 108 SMs);
    DeepGEMM README (M = 256, N = 7168, 128 x 128 tiles: 112 tiles on 132 SMs).

    Examples
    --------
    >>> round(float(wave_efficiency(256, 7168, 1, 128, 128, 132)), 4)
    0.8485
    """
    tiles = tile_count(m, n, groups, tile_m, tile_n)
    u = f64(units)
    waves = np.ceil(tiles / u)
    return f64(np.where(waves > 0, tiles / np.maximum(waves * u, 1.0), 1.0))


def k_efficiency(k: ArrayLike, k0: ArrayLike) -> FloatArray:
    """Small-K efficiency ``eta_K = K / (K + K0)``.

    At fixed M and N a GEMM takes ``t0 + K t_k`` (a fixed prologue/epilogue per tile
    plus time per unit of K), so the rate relative to infinite K is ``K / (K + K0)``
    with ``K0 = t0 / t_k``. Fits (compute_units.md §3.2, XLA K sweeps at M = N = 4096,
    BF16): H100 K0 = 280, B200 540, MI300X 230.

    Parameters
    ----------
    k
        Reduction depth (elements, > 0).
    k0
        Small-K constant (elements, >= 0).

    Examples
    --------
    >>> round(float(k_efficiency(256, 280) / k_efficiency(4096, 280)), 3)
    0.51
    """
    kk = f64(k)
    return f64(kk / (kk + f64(k0)))


def gemm_flops(m: ArrayLike, n: ArrayLike, k: ArrayLike, groups: ArrayLike) -> FloatArray:
    """Useful FLOPs of a (grouped) GEMM: ``2 G M N K`` (1 multiply-add = 2 FLOP)."""
    return f64(2.0 * f64(groups) * f64(m) * f64(n) * f64(k))


@dataclass(frozen=True)
class GemmCost:
    """Terms of a (grouped) GEMM's time, arrays broadcast over the inputs.

    Attributes
    ----------
    compute_s
        Padded tiles in waves at ``peak x eta_large x eta_K`` (s), with the fastest
        K split.
    memory_s
        Bytes over ``BW_hbm x eta_bw`` (s).
    launch_s
        Fixed per-kernel cost (s).
    time_s
        ``max(compute_s, memory_s) + launch_s`` (s).
    flops
        Useful FLOPs ``2 G M N K``.
    """

    compute_s: FloatArray
    memory_s: FloatArray
    launch_s: FloatArray
    time_s: FloatArray
    flops: FloatArray

    @property
    def memory_bound(self) -> NDArray[np.bool_]:
        """True where the memory term sets the time."""
        return np.asarray(self.memory_s > self.compute_s)


def gemm_cost(m: ArrayLike, n: ArrayLike, k: ArrayLike, groups: ArrayLike,
              peak_flops: ArrayLike, hbm_Bps: ArrayLike,
              chip: Compute | ChipCompute | None, bytes_per_element_in: ArrayLike,
              bytes_out: ArrayLike, eta_large: ArrayLike, launch_s: ArrayLike,
              eta_bw: ArrayLike = HBM_EFFICIENCY, bytes_per_weight: ArrayLike | None = None,
              weight_groups: ArrayLike | None = None, ragged: ArrayLike = False) -> GemmCost:
    """Time of ``C[G, M, N] = A[G, M, K] @ B[G, K, N]`` on one chip, term by term.

    Parameters
    ----------
    m
        Rows of one group (tokens; tokens per expert for a grouped GEMM), >= 0; may be
        fractional (a mean), it is padded up to the tile.
    n, k
        Output columns and reduction depth (elements, > 0).
    groups
        GEMMs in the kernel: 1 for a dense GEMM, local experts for a grouped GEMM.
    peak_flops
        Dense peak of the chip at the input precision (FLOP/s).
    hbm_Bps
        Peak HBM bandwidth (B/s).
    chip
        The accelerator's ``compute`` block (``None``: :data:`~ocplan.costmodel.chip.GENERIC`,
        128 x 128 tiles, no wave staircase, K0 = 256).
    bytes_per_element_in
        Bytes of one element of A and B (2 for BF16, 1 for FP8).
    bytes_out
        Bytes of one element of C.
    eta_large
        Fitted large-GEMM efficiency of the chip family and precision, in (0, 1].
    launch_s
        Per-kernel cost not already in ``eta_K`` (s): the gap between kernels,
        :data:`~ocplan.costmodel.roofline.KERNEL_GAP_S` in graph mode. The K0 fits of
        compute_units.md §3.2 include the ~5 us kernel floor in their fixed term, so adding
        :data:`~ocplan.costmodel.roofline.KERNEL_FLOOR_S` here would count it twice.
    eta_bw
        Achieved fraction of HBM bandwidth.
    bytes_per_weight
        Bytes of one element of B when it differs from A (weight-only quantization in
        serving); None: ``bytes_per_element_in``.
    weight_groups
        Groups whose B is read (experts that received tokens); None: ``groups``.
    ragged
        The groups' rows spread around ``m`` (routed experts, not force-balanced): each
        group pads ``max(tm ceil(m / tm), m + RAGGED_PAD_TILES x granule)`` rows on
        average, the granule the large tile (:data:`SMALL_TILE_M` below it);
        False: every group has ``m`` rows.

    Returns
    -------
    GemmCost
        ``compute_s``, ``memory_s``, ``launch_s``, ``time_s``, ``flops``.

    The compute term is ``2 K tm tn x waves x slots / s / (peak x eta_large x
    eta_K(K/s))``, which equals ``FLOPs / (peak x eta_large x eta_tile x eta_wave x
    eta_K)`` for s = 1. ``s`` is the library's split-K factor: the fastest of
    :data:`SPLIT_K_CANDIDATES` whose ``s x tiles`` work units fit in one wave and leave
    slices at least :data:`SPLIT_K_MIN_DEPTH` deep (its fp32 partials are neglected:
    where a split pays, M x N is small enough for them to stay in L2). With ``stream_k``
    there is no wave term and no split: each unit's K share ``K min(1, tiles / slots)``
    sets its ``eta_K`` (the fix-up cost is inside ``eta_large``); GEMMs with fewer rows
    than the large tile take the better of the two (small tiles with split-K).
    Bytes: ``G (M K + K N) b_in + G M N b_out``: each group's weights streamed once
    (compute_units.md §3.3-3.4). Sources: compute_units.md §3.1-3.4 and §3.7.
    """
    c = chip_compute(chip)
    mm, nn, kk, g = f64(m), f64(n), f64(k), f64(groups)
    rate = f64(peak_flops) * f64(eta_large)
    tm = tile_m_for(mm, c.tile_m)
    tiles = tile_count(mm, nn, g, tm, c.tile_n)
    # ragged groups: a group spread around m pads RAGGED_PAD_TILES of its row granule on
    # average (the large tile; SMALL_TILE_M rows below it, where the tile is m padded)
    padded = np.ceil(mm / tm) * tm
    granule = np.where(mm < c.tile_m, float(SMALL_TILE_M), tm)
    spread = np.maximum(padded, mm + RAGGED_PAD_TILES * granule) / np.maximum(padded, 1.0)
    tiles = np.where(np.asarray(ragged, dtype=bool), tiles * spread, tiles)
    tile_flops = 2.0 * tm * c.tile_n
    b_w = f64(bytes_per_element_in if bytes_per_weight is None else bytes_per_weight)
    wg = g if weight_groups is None else f64(weight_groups)
    io_bytes = g * (mm * kk * f64(bytes_per_element_in) + mm * nn * f64(bytes_out)) \
        + wg * kk * nn * b_w
    bw = f64(hbm_Bps) * f64(eta_bw)
    # each unit runs tiles x K / slots iterations (its K share when tiles < slots)
    k_unit = kk * np.clip(tiles / c.slots, 1.0 / c.slots, 1.0)
    streamed = tile_flops * kk * tiles / (rate * k_efficiency(k_unit, c.k0))
    if c.stream_k:
        compute = streamed
    else:
        # every split at once: axis 0 runs over SPLIT_K_CANDIDATES
        shape = np.broadcast(tiles, kk, rate, tile_flops).shape
        s = _SPLITS.reshape((-1,) + (1,) * len(shape))
        slice_k = kk / s
        slot_tiles = np.ceil(tiles * s / c.slots) * c.slots
        t_c = tile_flops * slice_k * slot_tiles / (rate * (slice_k / (slice_k + c.k0)))
        allowed = (s == 1) | ((slice_k >= SPLIT_K_MIN_DEPTH) & (tiles * s <= c.slots))
        compute = np.where(allowed, t_c, np.inf).min(axis=0)
        # Skinny GEMMs (M under the large tile: decode batches) are scheduled with small
        # tiles and split/stream-K by the libraries' heuristics (cuBLASLt, hipBLASLt,
        # TensorRT-LLM's split-K GEMV), which fill the units: no wave staircase there.
        compute = np.where(mm < c.tile_m, np.minimum(compute, streamed), compute)
    memory = io_bytes / bw
    busy = np.maximum(compute, memory)
    launch = np.broadcast_to(f64(launch_s), np.shape(busy)).astype(np.float64)
    return GemmCost(compute_s=f64(compute), memory_s=f64(memory), launch_s=launch,
                    time_s=f64(busy + launch), flops=gemm_flops(mm, nn, kk, g))


def gemm_time_s(m: ArrayLike, n: ArrayLike, k: ArrayLike, groups: ArrayLike,
                peak_flops: ArrayLike, hbm_Bps: ArrayLike,
                chip_compute: Compute | ChipCompute | None,
                bytes_per_element_in: ArrayLike, bytes_out: ArrayLike,
                eta_large: ArrayLike, launch_s: ArrayLike,
                eta_bw: ArrayLike = HBM_EFFICIENCY) -> FloatArray:
    """Seconds of a (grouped) GEMM: :func:`gemm_cost`'s ``time_s``.

    ``t = max(FLOPs / (peak eta_large eta_tile eta_wave eta_K), bytes / (BW_hbm eta_bw))
    + t_launch`` (compute_units.md §3.7); parameters as in :func:`gemm_cost`.

    Examples
    --------
    >>> from ocplan.costmodel.chip import ChipCompute
    >>> h100 = ChipCompute(tile_m=128, tile_n=256, slots=132, k0=280.0, stream_k=False)
    >>> t = gemm_time_s(8192, 8192, 8192, 1, 1978.9e12, 3.35e12, h100, 1, 2, 0.698, 1e-6)
    >>> round(2 * 8192**3 / float(t) / 1e12)  # measured 1290.1 (Azure ND H100 v5, FP8)
    1294
    """
    return gemm_cost(m, n, k, groups, peak_flops, hbm_Bps, chip_compute,
                     bytes_per_element_in, bytes_out, eta_large, launch_s, eta_bw).time_s
