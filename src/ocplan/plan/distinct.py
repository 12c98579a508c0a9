"""Evaluate a pure elementwise function once per distinct input, over arrays of layouts.

A search evaluates hundreds of thousands of layouts whose terms take few distinct
inputs (the layer shape, the group sizes and buffer sizes of a collective). The functions
here find the distinct input columns with one 1-D ``unique`` over a mixed-radix key and
gather the results back, so a term costs what its distinct inputs cost.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

__all__ = ["distinct_apply", "distinct_columns"]

#: A row of whole numbers spanning less than this is its own key digit (no sort).
_DIRECT_RANGE = 1 << 20
#: Inputs this small are evaluated directly (finding the distinct ones costs more).
_SMALL = 64
#: Keys stay below this (int64 with room for one more digit product).
_MAX_KEY = 1 << 62

FloatArray = NDArray[np.float64]


def distinct_columns(stacked: FloatArray) -> tuple[FloatArray, NDArray[np.intp]]:
    """The distinct columns of ``stacked`` (rows = inputs, columns = layouts) and, per
    column, the index of its distinct column. Each row is coded by its own distinct
    values and the codes are combined in a mixed radix, so one 1-D ``unique`` does what
    ``unique(axis=1)`` (a lexicographic sort of whole columns, ten times slower) would."""
    if stacked.shape[1] <= 1:
        return stacked, np.zeros(stacked.shape[1], dtype=np.intp)
    key = np.zeros(stacked.shape[1], dtype=np.int64)
    span = 1
    for row in stacked:
        lo, hi = float(row.min()), float(row.max())
        if hi - lo < _DIRECT_RANGE and np.array_equal(row, np.floor(row)):
            # whole numbers in a short range (group sizes, flags): their own digit
            radix, codes = int(hi - lo) + 1, (row - lo).astype(np.int64)
        else:
            values, inv = np.unique(row, return_inverse=True)
            radix, codes = len(values), inv.ravel().astype(np.int64)
        if span * radix >= _MAX_KEY:  # compact the key so far before it could overflow
            _, key = np.unique(key, return_inverse=True)
            key = key.ravel().astype(np.int64)
            span = int(key.max()) + 1
        key = key * radix + codes
        span *= radix
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return stacked[:, first], inverse.ravel().astype(np.intp)


def distinct_apply(fn: Callable[..., object], *args: object) -> FloatArray:
    """``fn(*args)`` for array arguments that broadcast, computed on their distinct
    combinations only. ``fn`` must be elementwise (each output element a function of the
    same elements of its inputs) and pure. Non-array leading arguments (a fabric) are
    passed through unchanged: give them as the first arguments, before every array."""
    fixed: list[object] = []
    arrays: list[FloatArray | float] = []
    for a in args:
        if arrays or isinstance(a, np.ndarray | float | int):
            arrays.append(a)  # type: ignore[arg-type]
        else:
            fixed.append(a)
    if np.broadcast(*arrays).size <= _SMALL:  # nothing to gain
        out: FloatArray = np.asarray(fn(*fixed, *arrays), dtype=np.float64)
        return out
    parts = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in arrays))
    shape = parts[0].shape
    unique, inverse = distinct_columns(np.stack([p.ravel() for p in parts]))
    values = np.broadcast_to(np.asarray(fn(*fixed, *unique), dtype=np.float64),
                             (unique.shape[1],))
    result: FloatArray = values[inverse].reshape(shape)
    return result
