"""Collective algorithms as alpha-beta cost formulas (Thakur, Rabenseifner & Gropp,
"Optimization of Collective Communication Operations in MPICH", IJHPCA 2005; Chan et al.,
"Collective communication: theory, practice, and experience", 2007).

Each function gives the time of one collective of ``nbytes`` (the per-rank buffer: the
full vector for all-reduce, the gathered output for all-gather / reduce-scatter input,
the per-rank send total for all-to-all) over ``n`` ranks, from

- ``bw``: per-rank bandwidth per direction the algorithm can drive (B/s), already
  multiplied by the protocol efficiency;
- ``alpha``: latency of one step (s).

Bus-bandwidth convention (nccl-tests PERFORMANCE.md): for all-reduce
``busbw = 2*(n-1)/n * nbytes / time``; for all-gather, reduce-scatter and all-to-all
``busbw = (n-1)/n * nbytes / time``. A ring or direct algorithm reaches busbw = bw.

All functions accept numpy arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "direct_all_to_all",
    "halving_doubling_all_reduce",
    "nvls_all_reduce",
    "ring_all_gather",
    "ring_all_reduce",
    "tree_all_reduce",
]

Num = Any


def ring_all_reduce(nbytes: Num, n: Num, bw: Num, alpha: Num) -> Num:
    """Ring (or direct, on a full mesh) all-reduce: reduce-scatter then all-gather.

    ``2*(n-1)`` steps, each moving ``nbytes/n``:  t = 2(n-1)*alpha + 2(n-1)/n * S / bw.
    """
    n = np.maximum(n, 1)
    return np.where(n > 1, 2 * (n - 1) * alpha + 2 * (n - 1) / n * nbytes / bw, 0.0)


def ring_all_gather(nbytes: Num, n: Num, bw: Num, alpha: Num) -> Num:
    """Ring all-gather (or reduce-scatter) of an ``nbytes`` output:
    t = (n-1)*alpha + (n-1)/n * S / bw."""
    n = np.maximum(n, 1)
    return np.where(n > 1, (n - 1) * alpha + (n - 1) / n * nbytes / bw, 0.0)


def tree_all_reduce(nbytes: Num, n: Num, bw: Num, alpha: Num) -> Num:
    """Double binary tree all-reduce (NCCL's tree; Sanders, Speck & Träff 2009).

    Two trees each carry half the data, pipelined: the bandwidth term matches a ring,
    t = 2*log2(n)*alpha + 2(n-1)/n * S / bw, so it wins only on latency at scale.
    """
    n = np.maximum(n, 1)
    return np.where(n > 1, 2 * np.log2(n) * alpha + 2 * (n - 1) / n * nbytes / bw, 0.0)


def halving_doubling_all_reduce(nbytes: Num, n: Num, bw: Num, alpha: Num) -> Num:
    """Rabenseifner's recursive halving reduce-scatter + doubling all-gather:
    t = 2*log2(n)*alpha + 2(n-1)/n * S / bw (for powers of two)."""
    n = np.maximum(n, 1)
    return np.where(n > 1, 2 * np.ceil(np.log2(n)) * alpha + 2 * (n - 1) / n * nbytes / bw,
                    0.0)


def nvls_all_reduce(nbytes: Num, n: Num, bw: Num, alpha: Num) -> Num:
    """All-reduce with in-switch reduction (NVLink SHARP): each rank sends its vector
    to the switch and receives the reduced result once, t = 2*alpha + S / bw, where
    ``bw`` is the switch-limited per-rank rate."""
    n = np.maximum(n, 1)
    return np.where(n > 1, 2 * alpha + nbytes / bw, 0.0)


def direct_all_to_all(nbytes: Num, n: Num, bw: Num, alpha: Num) -> Num:
    """All-to-all where each rank sends ``nbytes/n`` to each of the others at once:
    t = alpha + (n-1)/n * S / bw (pairwise exchange, bandwidth-bound)."""
    n = np.maximum(n, 1)
    return np.where(n > 1, alpha + (n - 1) / n * nbytes / bw, 0.0)
