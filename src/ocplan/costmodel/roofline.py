"""Memory-bound operators: time = bytes / (HBM bandwidth x eta_bw) + launch.

Elementwise kernels, norms, residual adds, casts, the MoE permute and unpermute, and the
weight-streaming side of skinny GEMMs move every byte through HBM once and do too little
arithmetic per byte to be compute-bound, so their time is the roofline's memory side
(Williams, Waterman and Patterson, "Roofline", CACM 2009) plus a fixed per-kernel cost.
Sources: ``shared/reference/compute_units.md`` §2.5 (achieved HBM bandwidth) and §2.7
(launch overhead and the small-kernel floor).
"""

from __future__ import annotations

from typing import cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "HBM_EFFICIENCY",
    "KERNEL_FLOOR_MI300X_S",
    "KERNEL_FLOOR_S",
    "KERNEL_GAP_S",
    "FloatArray",
    "memory_time_s",
    "sum_rows",
]

FloatArray = NDArray[np.float64]


def f64(x: object) -> FloatArray:
    """``x`` (a number, a bool or an array of them) as a float64 array."""
    if type(x) is np.ndarray and x.dtype == np.float64:
        return cast(FloatArray, x)  # what asarray returns, without the call
    out: FloatArray = np.asarray(x, dtype=np.float64)
    return out


def sum_rows(a: FloatArray) -> FloatArray:
    """The sum over the first axis of ``a`` (operators x layouts), added in row order
    whatever the number of layouts.

    numpy sums a single column pairwise and several columns row by row, so ``a.sum(0)``
    of one layout can differ in the last bit from the same layout's column in a batch.
    An estimate and a search of the same layout, and the memos either fills, must agree,
    and so must the discrete choices downstream (a ceiling, a hull, a bisection), so the
    order is fixed: ``cumsum`` adds row by row for every shape.
    """
    if a.shape[0] == 0:
        return f64(np.zeros(a.shape[1:]))
    return f64(np.cumsum(a, axis=0)[-1])


#: Achieved / peak HBM bandwidth of a memory-bound kernel: DeepGEMM's M = 64 FP8 GEMMs
#: stream weights at 2.67 of 3.35 TB/s on H800 (80 %) and MI300X STREAM reaches 80 % of
#: 5.3 TB/s (compute_units.md §2.5, §3.3; NVIDIA STREAM copy kernels reach 86-95 %, so
#: 0.8 is the figure for real kernels, not for copy benchmarks).
HBM_EFFICIENCY = 0.80
#: Device-side floor of one kernel on NVIDIA: a 256^3 BF16 GEMM takes 2 x 256^3 / 7 TF
#: = 4.8 us on H100 and on B200 in the XLA cost tables, which is all fixed cost
#: (compute_units.md §2.1.4, §2.7; openxla/xla matmul_interpolator_data.h). Host launch
#: overhead in eager mode (5-100 us) is not included: graphs and compilers hide it.
KERNEL_FLOOR_S = 4.8e-6
#: Gap between consecutive kernels replayed from a CUDA/HIP graph or a compiled program:
#: 0.5-4 us per node (compute_units.md §2.7), 1 us taken. This is the launch term for
#: GEMMs, whose fixed per-kernel time is already inside eta_K (the K0 fits of §3.2 come
#: from kernel times whose t0 = 11-13 us includes the floor above).
KERNEL_GAP_S = 1.0e-6
#: The same floor on MI300X: 6.7 us for a 256^3 GEMM (compute_units.md §2.7, XLA table).
KERNEL_FLOOR_MI300X_S = 6.7e-6


def memory_time_s(nbytes: ArrayLike, hbm_Bps: ArrayLike, launch_s: ArrayLike = KERNEL_FLOOR_S,
                  eta_bw: ArrayLike = HBM_EFFICIENCY) -> FloatArray:
    """Time of a memory-bound operator.

    ``t = bytes / (BW_hbm x eta_bw) + t_launch``

    Parameters
    ----------
    nbytes
        Bytes read plus bytes written by the kernel (B), >= 0.
    hbm_Bps
        Peak HBM bandwidth of the chip (B/s), > 0.
    launch_s
        Fixed device-side cost of the kernel (s); :data:`KERNEL_FLOOR_S` by default.
    eta_bw
        Achieved fraction of peak bandwidth, in (0, 1]; :data:`HBM_EFFICIENCY`.

    Returns
    -------
    numpy.ndarray
        Seconds, broadcast over the inputs (a 0-d array for scalar inputs).

    Assumptions: every byte crosses HBM once (no reuse from L2 or SRAM); the kernel is
    long enough to reach streaming bandwidth. Source: compute_units.md §2.5 and §2.7.

    Examples
    --------
    >>> float(memory_time_s(2.68e9, 3.35e12, launch_s=0.0))
    0.001
    """
    b = np.asarray(nbytes, dtype=np.float64)
    bw = np.asarray(hbm_Bps, dtype=np.float64) * np.asarray(eta_bw, dtype=np.float64)
    out: FloatArray = np.asarray(b / bw + np.asarray(launch_s, dtype=np.float64))
    return out
