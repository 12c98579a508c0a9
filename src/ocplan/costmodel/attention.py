"""Attention time: flash attention (training, prefill) and decode attention.

Flash attention (Dao et al. 2022; FlashAttention-2, arXiv 2307.08691; FlashAttention-3,
arXiv 2407.08608) walks ``BLOCK x BLOCK`` tiles of the score matrix, so:

- compute: the block pairs it visits x ``2 BLOCK^2 (d_qk + d_v)`` FLOPs, at
  ``peak_16 x eta_attn`` (``eta_attn`` fitted per family; FA3 reaches about 65 % on H100
  at d = 128, compute_units.md §2.4), times the wave efficiency of the query blocks;
  causal masks skip the blocks above the diagonal but compute the diagonal ones whole,
  and a sliding window skips the blocks left of it;
- memory: Q, K, V read and O written once (backward: twice as much);
- softmax: one exponential per visited score element (forward, and again in the
  backward, which recomputes the probabilities) on the special-function units, where the
  chip's rate is published; the kernel hides a share ``omega`` of the shorter of the two
  pipes behind the longer (FlashAttention-2: none; FA3/FA4 schedules: most);
- plus one kernel's fixed cost.

Decode attention reads the whole KV cache for one query token per sequence: it is
HBM-bound on KV bytes, so its time grows linearly with the KV length.
FLOP convention (all sources in compute_units.md §2.4): forward ``4 B H S_q S_k d``
halved for causal, backward 2.5x forward.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ocplan.catalog.schema import Compute
from ocplan.costmodel.chip import ChipCompute, chip_compute
from ocplan.costmodel.roofline import HBM_EFFICIENCY, FloatArray, f64

__all__ = [
    "ATTN_BLOCK",
    "BACKWARD_BYTES_FACTOR",
    "BACKWARD_EFFICIENCY",
    "BACKWARD_FLOPS_FACTOR",
    "attention_flops",
    "decode_attention_time_s",
    "flash_attention_time_s",
    "keys_per_query",
    "query_block_waves",
    "softmax_overlapped_s",
]

#: Query and key block of flash-attention kernels: 128 (FA2 and FA3 forward at
#: d = 128 on Ampere/Hopper; aiter and FA4 use 128-row query tiles as well).
ATTN_BLOCK = 128
#: Backward FLOPs over forward: five matmuls to the forward's two (FlashAttention-2
#: §3.1.2; the convention of every source in compute_units.md §2.4).
BACKWARD_FLOPS_FACTOR = 2.5
#: Rate of the backward kernel per FLOP relative to the forward's: it runs five matmuls
#: with two more accumulators in flight and writes dK/dV (and dQ by atomics or a second
#: pass), so it holds a lower share of the peak. Measured forward+backward over forward
#: times at S >= 4096, d = 128 on one H200 give 0.84 for cuDNN and 0.90 for
#: FlashAttention-2 (validation/device/h200_kernels.csv); aiter's backward runs at 0.95
#: (MI300X) and 0.85 (MI355X) of its causal forward rate (compute_units.md §2.4). The
#: median of the four, 0.87.
BACKWARD_EFFICIENCY = 0.87
#: Backward bytes over forward: it reads Q, K, V, O, dO and writes dQ, dK, dV, twice
#: the forward's Q, K, V read and O write.
BACKWARD_BYTES_FACTOR = 2.0



def softmax_overlapped_s(matmul_s: ArrayLike, softmax_s: ArrayLike,
                         overlap: float) -> FloatArray:
    """Time of an attention kernel's two compute pipes, its matmuls and its softmax
    exponentials: ``max(a, b) + (1 - omega) min(a, b)``, the kernel hiding the share
    ``omega`` of the shorter behind the longer (FlashAttention-2 runs them one after the
    other, omega = 0; FlashAttention-3's ping-pong and FlashAttention-4 overlap them,
    omega near 1)."""
    a, b = f64(matmul_s), f64(softmax_s)
    return f64(np.maximum(a, b) + (1.0 - overlap) * np.minimum(a, b))


def keys_per_query(seq: ArrayLike, causal: ArrayLike, window: ArrayLike) -> FloatArray:
    """Mean keys one query attends to in self-attention over ``seq`` tokens.

    Non-causal: ``w`` (``w = min(window, S)``, ``w = S`` without a window). Causal:
    the mean over positions of ``min(i, w)``, ``w - w^2 / (2 S)`` in the continuum,
    which is ``S / 2`` without a window (the halving of the FLOP convention).

    Parameters
    ----------
    seq
        Tokens per sequence (> 0).
    causal
        Boolean (array).
    window
        Sliding-window width in tokens; 0 means no window.
    """
    s, win = f64(seq), f64(window)
    w = np.where(win > 0, np.minimum(win, s), s)
    return f64(np.where(np.asarray(causal, dtype=bool), w - w * w / (2.0 * s), w))


def attention_flops(batch: ArrayLike, heads: ArrayLike, seq: ArrayLike, head_dim: ArrayLike,
                    causal: ArrayLike, window: ArrayLike = 0,
                    head_dim_v: ArrayLike | None = None) -> FloatArray:
    """Useful forward FLOPs of self-attention: ``2 B H S keys (d_qk + d_v)``.

    Two matmuls (``Q K^T`` and ``P V``) of ``2 d`` FLOPs per query-key pair each; with
    ``d_qk = d_v = d`` and no mask this is the ``4 B H S^2 d`` of compute_units.md §2.4.
    """
    dv = head_dim if head_dim_v is None else head_dim_v
    return f64(2.0 * f64(batch) * f64(heads) * f64(seq) * keys_per_query(seq, causal, window)
              * (f64(head_dim) + f64(dv)))


def _block_pairs(seq: FloatArray, causal: ArrayLike, window: FloatArray) -> FloatArray:
    """Score-matrix blocks a flash kernel visits per (batch, head).

    ``n = ceil(S / BLOCK)`` query blocks. Causal: each query block ``j`` visits
    ``min(j + 1, c)`` key blocks, ``c = ceil(w / BLOCK) + 1`` (the window straddles one
    extra block), i.e. ``n (n + 1) / 2`` without a window. Non-causal: ``n x min(n,
    ceil(w / BLOCK) + [w < S])``.
    """
    n = np.ceil(seq / ATTN_BLOCK)
    w = np.where(window > 0, np.minimum(window, seq), seq)
    c = np.ceil(w / ATTN_BLOCK) + 1.0
    causal_pairs = np.where(n <= c, n * (n + 1.0) / 2.0, c * (c + 1.0) / 2.0 + (n - c) * c)
    full_pairs = n * np.minimum(n, np.ceil(w / ATTN_BLOCK) + (w < seq))
    return f64(np.where(np.asarray(causal, dtype=bool), causal_pairs, full_pairs))


def query_block_waves(blocks: ArrayLike, chip: ChipCompute) -> FloatArray:
    """Busy share of the units running ``blocks`` query blocks ``slots`` at a time:
    ``blocks / (ceil(blocks / slots) x slots)``; 1 on a chip without a unit count.

    Flash kernels parallelize over batch, heads and query blocks and split no block
    (FlashAttention-2, Dao 2023 §3.2; FA3's persistent scheduler hands out whole blocks),
    so a GEMM library's stream-K (:attr:`ChipCompute.stream_k`) does not remove this
    staircase.

    >>> from ocplan.costmodel.chip import ChipCompute
    >>> c = ChipCompute(tile_m=128, tile_n=256, slots=132, k0=110.0, stream_k=True)
    >>> round(float(query_block_waves(256, c)), 3)
    0.97
    """
    b = f64(blocks)
    if chip.slots <= 1:
        return np.ones_like(b)
    return f64(np.where(b > 0, b / np.maximum(np.ceil(b / chip.slots) * chip.slots, 1.0),
                        1.0))


def flash_attention_time_s(batch: ArrayLike, heads: ArrayLike, kv_heads: ArrayLike,
                           seq: ArrayLike, head_dim: ArrayLike, causal: ArrayLike,
                           window: ArrayLike, peak16_flops: ArrayLike, hbm_Bps: ArrayLike,
                           eta_attn: ArrayLike, chip: Compute | ChipCompute | None,
                           bytes_per_element: ArrayLike, launch_s: ArrayLike, *,
                           head_dim_v: ArrayLike | None = None, backward: bool = False,
                           eta_bw: ArrayLike = HBM_EFFICIENCY,
                           softmax_overlap: float = 1.0) -> FloatArray:
    """Seconds of one flash-attention kernel (self-attention, training or prefill).

    ``t = max(overlap(pairs 2 BLOCK^2 (d_qk + d_v) B H x f_pass / (peak_16 eta_attn
    eta_wave), pairs BLOCK^2 B H / R_exp), bytes f_bytes / (BW_hbm eta_bw)) + t_launch``,
    ``overlap(a, b) = max(a, b) + (1 - omega) min(a, b)``

    Parameters
    ----------
    batch, heads, kv_heads
        Sequences, query heads and KV heads on this chip (after TP).
    seq
        Tokens per sequence on this chip (after CP).
    head_dim
        Query/key width ``d_qk``; ``head_dim_v`` the value width (default the same;
        MLA: 192 and 128).
    causal, window
        Causal mask (bool) and sliding-window width (tokens, 0 = none).
    peak16_flops
        16-bit dense peak (FLOP/s): attention runs in BF16/FP16 even in FP8 training.
    hbm_Bps
        Peak HBM bandwidth (B/s).
    eta_attn
        Fitted attention efficiency of the family at long sequences, in (0, 1].
    chip
        The ``compute`` block: its unit count sets the wave efficiency of the
        ``B H ceil(S / BLOCK)`` query blocks (:func:`query_block_waves`; none without a
        block), its exponential rate ``R_exp`` the softmax floor (none where not
        published).
    bytes_per_element
        Bytes of one element of Q, K, V, O.
    launch_s
        Fixed per-kernel cost (s), the minimum time of a tiny attention call.
    backward
        Backward pass: FLOPs x :data:`BACKWARD_FLOPS_FACTOR` at
        :data:`BACKWARD_EFFICIENCY` of the forward's rate, bytes x
        :data:`BACKWARD_BYTES_FACTOR`.
    softmax_overlap
        ``omega``: share of the shorter of the matmul and exponential times hidden
        behind the longer (1: the slower pipe alone, FA3/FA4; 0: their sum, FA2).

    Assumptions: query blocks are balanced over units (FA3's persistent scheduler);
    the softmax's other vector work and the short-sequence ramp of compute_units.md §2.4
    are inside ``eta_attn``. Source: compute_units.md §2.4; FlashAttention-2/3 papers.
    """
    c = chip_compute(chip)
    s, win = f64(seq), f64(window)
    dq = f64(head_dim)
    dv = dq if head_dim_v is None else f64(head_dim_v)
    bh = f64(batch) * f64(heads)
    pairs = _block_pairs(s, causal, win)
    padded_flops = bh * pairs * 2.0 * ATTN_BLOCK * ATTN_BLOCK * (dq + dv)
    f_pass = BACKWARD_FLOPS_FACTOR / BACKWARD_EFFICIENCY if backward else 1.0
    eta_wave = query_block_waves(bh * np.ceil(s / ATTN_BLOCK), c)
    compute = padded_flops * f_pass / (f64(peak16_flops) * f64(eta_attn) * eta_wave)
    nbytes = f64(batch) * s * (f64(heads) + f64(kv_heads)) * (dq + dv) * f64(bytes_per_element)
    f_bytes = BACKWARD_BYTES_FACTOR if backward else 1.0
    memory = nbytes * f_bytes / (f64(hbm_Bps) * f64(eta_bw))
    softmax = bh * pairs * ATTN_BLOCK * ATTN_BLOCK / c.exp_per_s if c.exp_per_s else 0.0
    both = softmax_overlapped_s(compute, softmax, softmax_overlap)
    return f64(np.maximum(both, memory) + f64(launch_s))


def decode_attention_time_s(batch: ArrayLike, heads: ArrayLike, kv_heads: ArrayLike,
                            kv_len: ArrayLike, head_dim: ArrayLike, window: ArrayLike,
                            peak16_flops: ArrayLike, hbm_Bps: ArrayLike, eta_attn: ArrayLike,
                            bytes_per_element: ArrayLike, launch_s: ArrayLike, *,
                            head_dim_v: ArrayLike | None = None,
                            eta_bw: ArrayLike = HBM_EFFICIENCY) -> FloatArray:
    """Seconds of one decode-attention step (one new query token per sequence).

    ``t = max(2 B H L (d_qk + d_v) / (peak_16 eta_attn),
    B (L H_kv + H) (d_qk + d_v) b / (BW_hbm eta_bw)) + t_launch``,
    ``L = min(kv_len, window)``.

    Parameters
    ----------
    batch
        Sequences decoded together on this chip.
    heads, kv_heads
        Query and KV heads on this chip (MLA absorbed: ``kv_heads = 1`` and
        ``head_dim = kv_lora_rank + rope dim``).
    kv_len
        Cached tokens per sequence.
    head_dim, head_dim_v
        Key and value widths (``head_dim_v`` defaults to ``head_dim``).
    window
        Sliding-window width (tokens, 0 = none): only the last ``window`` keys are read.
    peak16_flops, hbm_Bps, eta_attn, bytes_per_element, launch_s, eta_bw
        As in :func:`flash_attention_time_s`.

    Assumptions: the KV cache is read once per step from HBM (no reuse across query
    heads beyond GQA sharing); the query and output are negligible but counted.
    Source: compute_units.md §3.3 (weight/KV-bandwidth-bound regime at M = 1).
    """
    length, win = f64(kv_len), f64(window)
    keys = np.where(win > 0, np.minimum(win, length), length)
    dq = f64(head_dim)
    dv = dq if head_dim_v is None else f64(head_dim_v)
    b, h = f64(batch), f64(heads)
    compute = 2.0 * b * h * keys * (dq + dv) / (f64(peak16_flops) * f64(eta_attn))
    nbytes = b * (keys * f64(kv_heads) + h) * (dq + dv) * f64(bytes_per_element)
    memory = nbytes / (f64(hbm_Bps) * f64(eta_bw))
    return f64(np.maximum(compute, memory) + f64(launch_s))
