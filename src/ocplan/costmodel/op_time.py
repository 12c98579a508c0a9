"""The time of one operator (:class:`~ocplan.workloads.operators.Operator`) on one chip.

Each operator kind has one cost function, kept in :data:`COSTERS` (a registry, not an
if-chain), giving its compute term at unit efficiency and its memory term:

- ``gemm``, ``grouped_gemm``, ``router``: :func:`~ocplan.costmodel.gemm.gemm_cost` (tile,
  wave and small-K quantization against the HBM roofline) at the operator's precision;
- ``attention``: :func:`attention_op_cost`, the operator's own FLOPs (causal, windowed
  and context-parallel work already counted by the operator list) at the rate of its
  format (:func:`attention_peak`: the 16-bit path, or FP8 in serving);
- ``scan``: :func:`scan_op_cost`, a hybrid model's recurrent core, on the attention law;
- ``elementwise``, ``norm``, ``permute``, ``embedding``: memory-bound,
  :func:`~ocplan.costmodel.roofline.memory_time_s`, at the calibrated memory efficiency;
- ``score``: a pass over an unfused attention core's score matrix (Megatron's fused
  softmax, dropout), :func:`score_op_cost`: memory-bound at the streaming rate.

A :class:`Profile` stacks those terms for a list of operators; :meth:`Profile.time`
applies a calibration (:class:`Efficiencies`): each operator takes
``max(max(c, f) + (1 - omega) min(c, f), memory) + launch``: ``c = compute / eta``,
``f`` a rate limit no efficiency scales (attention's softmax exponentials on the
special-function units) of which the kernel hides the share ``omega`` of the shorter
behind the longer, ``launch`` the gap between kernels plus the kernel's own fixed
cost, and the results are summed into the three categories of :class:`PassTime`
(matrix, attention, memory-bound) the step breakdown reports. Because profiles hold no
calibration, they are computed once per layer shape and reused while a calibration is
fitted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from ocplan.costmodel.attention import (
    ATTN_BLOCK,
    BACKWARD_EFFICIENCY,
    query_block_waves,
    softmax_overlapped_s,
)
from ocplan.costmodel.chip import ChipCompute
from ocplan.costmodel.gemm import gemm_cost
from ocplan.costmodel.roofline import HBM_EFFICIENCY, FloatArray, f64, memory_time_s, sum_rows
from ocplan.workloads.memory import ACT_BYTES
from ocplan.workloads.operators import GEMM_INPUT_BYTES, Num, Operator, OpKind

__all__ = ["CATEGORIES", "COSTERS", "EIGHT_BIT", "FALLBACK", "FP8_ATTENTION_SHARE", "ChipPeaks",
           "Efficiencies", "OpCost", "PassTime", "Profile", "attention_op_cost",
           "attention_peak", "attention_terms", "gemm_op_cost", "imbalance_terms",
           "memory_op_cost", "native_precision", "profile", "scan_op_cost", "score_op_cost",
           "softmax_floor_s"]

#: GEMM input precisions that run on a low-bit matrix path (8-bit fitted on training
#: runs; 4-bit, :data:`FOUR_BIT`, its own efficiency where serving results fit one).
EIGHT_BIT = frozenset({"fp8", "int8", "fp4", "int4"})
#: The next matrix rate a chip without a unit for a format runs it at. 4-bit weights on
#: a chip with no 4-bit unit go through weight-only kernels that widen them to 16 bits in
#: registers (W4A16: vLLM's Marlin path, whose startup warning on such a GPU reads
#: "Weight-only FP4 compression will be used leveraging the Marlin kernel",
#: vllm-project/vllm#31085; its MXFP4 MoE on Hopper is Triton's W4A16 kernel); running
#: them on the 8-bit unit (W4A8) is a choice a deployment states as 8-bit activations.
#: 8-bit formats run on the 16-bit path (an A100 runs FP8 weights in BF16, W8A16).
FALLBACK: dict[str, str] = {"fp4": "bf16", "int4": "bf16", "fp8": "bf16", "int8": "bf16",
                            "fp16": "bf16"}


#: Share of its peak an FP8 flash-attention kernel holds, over the share the 16-bit
#: kernel holds on the same shape: FlashAttention-3 forward, non-causal, d = 256,
#: S = 16k on H100 SXM5 reaches 1,171 TFLOP/s in FP8 (59.2 % of 1,979) and 756 in BF16
#: (76.4 % of 989), Shah et al., arXiv 2407.08608, Fig. 5 and 6 (compute_units.md §2.4):
#: 0.592 / 0.764. The FP8 kernel transposes V in registers (its matmul unit reads FP8
#: operands K-major only) and requantizes P, work the 16-bit kernel does not do; the
#: softmax exponentials, a fixed rate, are the model's floor beside it.
FP8_ATTENTION_SHARE = (1171.0 / 1978.9) / (756.0 / 989.4)


def native_precision(precision: str, peak_of: Callable[[str], float | None]) -> str | None:
    """The format a GEMM in ``precision`` really runs at on a chip: ``precision`` when
    the chip has a unit for it, else the first of :data:`FALLBACK`'s chain it has; None
    when none (the caller runs it on the floating-point path)."""
    p: str | None = precision
    while p is not None and not peak_of(p):
        p = FALLBACK.get(p)
    return p


@dataclass(frozen=True)
class ChipPeaks:
    """What the operator timers read of one chip (no calibration in it).

    Attributes
    ----------
    peak
        Dense matrix peak per GEMM input precision, FLOP/s, as sorted (precision, rate)
        pairs (hashable, so profiles can be cached per chip).
    path_peak
        Peak of the floating-point path attention and the LM head run on, FLOP/s.
    hbm_Bps
        Peak HBM bandwidth, B/s.
    compute
        Tile, concurrent tiles and K0 of the chip's matrix units.
    """

    peak: tuple[tuple[str, float], ...]
    path_peak: float
    hbm_Bps: float
    compute: ChipCompute

    def peak_of(self, precision: str) -> float | None:
        return dict(self.peak).get(precision)


@dataclass(frozen=True)
class Efficiencies:
    """The calibrated numbers the profiles are scaled by.

    ``gemm``/``gemm_8bit``: large-GEMM efficiency with 16-bit and 8-bit inputs;
    ``attention``: flash-attention efficiency of the path peak; ``launch_s``: fixed cost
    per kernel, s; ``memory``: achieved bandwidth of the memory-bound kernels relative to
    streaming (:data:`~ocplan.costmodel.roofline.HBM_EFFICIENCY`): below 1 where
    frameworks run them unfused, in fp32 or as several passes."""

    gemm: float
    gemm_8bit: float
    attention: float
    launch_s: float
    memory: float = 1.0
    grouped_gemm: float = 0.0
    """Grouped (expert) GEMMs with 16-bit inputs; 0: as ``gemm``."""
    grouped_gemm_8bit: float = 0.0
    """Grouped GEMMs with 8-bit inputs; 0: as ``gemm_8bit``."""
    gemm_4bit: float = 0.0
    """GEMMs with 4-bit inputs (NVFP4/MXFP4, int4) relative to the 4-bit peak; 0: as
    ``gemm_8bit``."""
    grouped_gemm_4bit: float = 0.0
    """Grouped GEMMs with 4-bit inputs; 0: as ``grouped_gemm_8bit``."""
    softmax_overlap: float = 1.0
    """Share of the shorter of attention's matmul and exponential times hidden behind the
    longer (:meth:`Profile.time`); 1: the slower pipe alone sets the time."""
    clock: float = 1.0
    """Sustained-clock fraction of the chip (:func:`~ocplan.costmodel.chip.
    sustained_clock_fraction`): the rate limits in ``floor_s`` are at the peak's clock and
    slow with it, as the fitted efficiencies do."""


@dataclass(frozen=True)
class PassTime:
    """Seconds of a list of operators, by category (arrays over layouts)."""

    matrix_s: FloatArray
    """GEMMs, grouped GEMMs and the router."""
    attention_s: FloatArray
    memory_s: FloatArray
    """Memory-bound kernels: norms, activations, residuals, permutations, embeddings."""

    @property
    def total_s(self) -> FloatArray:
        out: FloatArray = self.matrix_s + self.attention_s + self.memory_s
        return out

    def scaled(self, factor: FloatArray | float) -> PassTime:
        return PassTime(self.matrix_s * factor, self.attention_s * factor,
                        self.memory_s * factor)

    def plus(self, other: PassTime) -> PassTime:
        return PassTime(self.matrix_s + other.matrix_s, self.attention_s + other.attention_s,
                        self.memory_s + other.memory_s)


#: Which calibrated efficiency divides an operator's compute term.
Path = Literal["gemm", "gemm_8bit", "gemm_4bit", "grouped_gemm", "grouped_gemm_8bit",
               "grouped_gemm_4bit", "attention", "memory", "stream"]
#: The path an efficiency left at 0 falls back to (a chain: grouped 4-bit -> grouped
#: 8-bit -> 8-bit).
_BASE_PATH = {"grouped_gemm": "gemm", "grouped_gemm_8bit": "gemm_8bit",
              "gemm_4bit": "gemm_8bit", "grouped_gemm_4bit": "grouped_gemm_8bit"}
#: GEMM input precisions of the 4-bit matrix path.
FOUR_BIT = frozenset({"fp4", "int4"})
#: Categories of :class:`PassTime`, in order.
CATEGORIES = ("matrix", "attention", "memory")


@dataclass(frozen=True)
class OpCost:
    """One operator's time terms at unit efficiency (arrays over layouts)."""

    compute_s: FloatArray
    """Compute term at efficiency 1 (0 for memory-bound kernels)."""
    memory_s: FloatArray
    """HBM term at the achieved streaming bandwidth."""
    path: Path
    category: str
    floor_s: FloatArray | float = 0.0
    """Time of a unit the calibration does not scale (softmax exponentials), s."""


def _eta(eff: Efficiencies, path: str) -> float:
    """The efficiency of ``path``, following :data:`_BASE_PATH` past zeros."""
    value: float = getattr(eff, path)
    while not value and path in _BASE_PATH:
        path = _BASE_PATH[path]
        value = getattr(eff, path)
    return value


@dataclass(frozen=True)
class Profile:
    """The costs of a list of operators, stacked: ``compute_s``, ``memory_s`` and
    ``floor_s`` of shape (operators, layouts). :meth:`time` applies a calibration:
    ``t = sum_i max(overlap(c_i / eta_path(i), f_i), m_i) + launch`` per category, where
    ``overlap(a, b) = max(a, b) + (1 - omega) min(a, b)`` (``omega`` the calibrated
    ``softmax_overlap``)."""

    compute_s: FloatArray
    memory_s: FloatArray
    paths: tuple[Path, ...]
    categories: tuple[str, ...]
    floor_s: FloatArray | None = None
    """Rate limits no calibration scales (:attr:`OpCost.floor_s`); None: none."""
    names: tuple[str, ...] = ()
    """The operators' names (:attr:`~ocplan.workloads.operators.Operator.name`)."""

    def _compute(self, w: _Weights, eff: Efficiencies) -> FloatArray:
        c: FloatArray = self.compute_s / w.etas
        if self.floor_s is None:
            return c
        return softmax_overlapped_s(c, self.floor_s / eff.clock, eff.softmax_overlap)

    def work(self, eff: Efficiencies) -> tuple[FloatArray, FloatArray]:
        """(sum of the compute terms at the calibrated efficiencies, sum of the HBM
        terms), s: which of the two a list of operators is bound by."""
        w = _weights(self.paths, self.categories, eff)
        return sum_rows(self._compute(w, eff)), sum_rows(self.memory_s)

    def op_s(self, eff: Efficiencies) -> FloatArray:
        """Seconds of each operator (operators x layouts), launch included."""
        w = _weights(self.paths, self.categories, eff)
        out: FloatArray = np.maximum(self._compute(w, eff), self.memory_s / w.bw) + eff.launch_s
        return out

    def time(self, eff: Efficiencies, op_s: FloatArray | None = None) -> PassTime:
        """The operators' seconds by category; ``op_s``: their :meth:`op_s` under
        ``eff``, when the caller has them already."""
        w = _weights(self.paths, self.categories, eff)
        t = self.op_s(eff) if op_s is None else op_s
        return PassTime(*(sum_rows(t[rows]) for rows in w.rows))

    def named_s(self, op_s: FloatArray, names: frozenset[str]) -> FloatArray:
        """Seconds of the operators called one of ``names``, from their :meth:`op_s`
        (0 where the list has none)."""
        rows = [i for i, name in enumerate(self.names) if name in names]
        return sum_rows(op_s[rows])


@dataclass(frozen=True)
class _Weights:
    """What :meth:`Profile.time` applies to a list of operators under one calibration:
    the efficiency dividing each compute term and each HBM term (columns), and the
    operators of each of :data:`CATEGORIES`."""

    etas: FloatArray
    bw: FloatArray
    rows: tuple[NDArray[np.intp], ...]


@lru_cache(maxsize=4096)
def _weights(paths: tuple[Path, ...], categories: tuple[str, ...],
             eff: Efficiencies) -> _Weights:
    """:class:`_Weights` of an operator list (paths and categories) under ``eff``: built
    once per list and calibration, not on every :meth:`Profile.time`."""
    # a streaming pass has no compute term and no calibrated efficiency
    etas = f64([1.0 if p == "stream" else _eta(eff, p) for p in paths])[:, None]
    bw = np.array([eff.memory if p == "memory" else 1.0 for p in paths])[:, None]
    rows = tuple(np.nonzero(np.array([c == cat for c in categories], dtype=bool))[0]
                 for cat in CATEGORIES)
    for a in (etas, bw, *rows):
        a.flags.writeable = False  # shared by every caller of the cache
    return _Weights(etas, bw, rows)


def gemm_op_cost(op: Operator, chip: ChipPeaks) -> OpCost:
    """A (grouped) GEMM at its precision: :func:`~ocplan.costmodel.gemm.gemm_cost` at
    unit efficiency (the split-K choice does not depend on it). A chip without a unit for
    the precision runs it on its floating-point path (fp8 on an A100 runs in bf16, with
    16-bit inputs).

    Grouped GEMMs under load imbalance: the chip's kernel covers all its local experts
    in one launch, so its time follows the chip's total tiles: more rows on the chip
    holding the most loaded expert, and each ragged group padded to the tile on its own
    (:func:`imbalance_terms`).

    Experts one by one (``op.one_by_one``: Megatron-Core's ``SequentialMLP``, or the ROCm
    port of the ``grouped_gemm`` package): ``G`` kernels of one expert's shape, each
    filling the chip with its own tiles and choosing its own K split, in turn:
    ``G x t(m, n, k, 1)``. The ROCm port spreads its calls over 4 streams, but each call
    first queries the hipBLASLt heuristic and allocates its workspace (``hipMalloc``)
    on the host, so the device sees one expert at a time (assumed; the gaps between the
    kernels are not counted)."""
    runs_at = native_precision(op.precision, chip.peak_of)
    precision = runs_at or "bf16"
    peak = chip.peak_of(runs_at) if runs_at else chip.path_peak
    assert peak, precision
    groups, m = f64(op.groups), f64(op.m)
    factor, ragged = imbalance_terms(m, f64(op.m_max), groups)
    # activations are converted to the format the unit runs; weights stored in a format
    # of their own (serving) are streamed as stored and converted in the kernel
    b_in = GEMM_INPUT_BYTES.get(precision, ACT_BYTES)
    b_w = GEMM_INPUT_BYTES.get(op.weight_precision, b_in)
    kernel, turns, wg_kernel = kernel_groups(groups, _weight_groups(op), op.one_by_one)
    cost = gemm_cost(m, op.n, op.k, kernel, peak, chip.hbm_Bps, chip.compute, b_in,
                     ACT_BYTES, 1.0, 0.0, bytes_per_weight=b_w, weight_groups=wg_kernel,
                     ragged=ragged)
    compute_s, memory_s = cost.compute_s * turns, cost.memory_s * turns
    bits = "_4bit" if precision in FOUR_BIT else "_8bit" if precision in EIGHT_BIT else ""
    path: Path = f"gemm{bits}"  # type: ignore[assignment]
    if op.kind == "grouped_gemm":
        path = f"grouped_gemm{bits}"  # type: ignore[assignment]
    return OpCost(compute_s * factor, memory_s * factor, path, "matrix")


#: Relative excess of the most loaded expert's rows over the mean below which the groups
#: count as balanced: ``m_max`` and ``m`` of balanced routing are the same number by two
#: roundings, and a last-bit difference had made the padding of ragged groups come and
#: go with the batch (gpt-oss-120b's prompt iteration on two H100s alternating between
#: 0.106 and 0.120 s as the batch moved by 0.02 of a sequence).
RAGGED_REL = 1e-9


def imbalance_terms(m: FloatArray, m_max: FloatArray, groups: FloatArray
                    ) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Load imbalance of a grouped GEMM: (row factor, ragged).

    Row factor: the chip holding the most loaded expert carries ``m_max + (G - 1) m``
    rows instead of ``G m`` (its other experts at the mean), and that chip sets the pace
    of the all-to-all that follows. Ragged: ``m_max > m``, the groups' rows spread
    around the mean, so each is padded to the tile on its own
    (:data:`~ocplan.costmodel.gemm.RAGGED_PAD_TILES`)."""
    rank_rows = (m_max + (groups - 1.0) * m) / np.maximum(groups * m, 1e-30)
    factor = f64(np.where(m > 0, np.maximum(rank_rows, 1.0), 1.0))
    # balanced routing gives m_max = m up to rounding, which must not read as ragged
    return factor, np.asarray((m_max > m * (1.0 + RAGGED_REL)) & (m > 0))


def _weight_groups(op: Operator) -> Num:
    """Groups whose weights a GEMM reads: every group unless the operator says which
    (:attr:`~ocplan.workloads.operators.Operator.weight_groups`, 0 = all)."""
    return op.weight_groups if np.any(f64(op.weight_groups) > 0) else op.groups


def kernel_groups(groups: Num, weight_groups: Num, one_by_one: Num
                  ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Groups per kernel, kernels in turn and weight groups per kernel of a grouped GEMM:
    ``(G, 1, G_w)`` for one grouped kernel, ``(1, G, G_w / G)`` where ``one_by_one``
    runs each group as a kernel of its own (:func:`gemm_op_cost`)."""
    g, wg, alone = f64(groups), f64(weight_groups), f64(one_by_one) > 0
    return (f64(np.where(alone, 1.0, g)), f64(np.where(alone, g, 1.0)),
            f64(np.where(alone, wg / np.maximum(g, 1.0), wg)))


def softmax_floor_s(exps: Num, chip: ChipPeaks) -> FloatArray:
    """Seconds the chip's special-function units need for ``exps`` softmax
    exponentials: ``E / R_exp`` (:func:`~ocplan.costmodel.chip.exp_rate`); 0 where the
    rate is not published.

    How much of it shows depends on the kernel (:class:`Profile`, ``softmax_overlap``):
    FlashAttention-2 runs the exponentials between its matmuls, so the two add;
    FlashAttention-3's ping-pong schedule (Shah et al. 2024 §3.1) and FlashAttention-4 on
    Blackwell overlap them, so the slower pipe sets the time. Fully overlapped, the
    exponentials bind at d = 64 on Blackwell (one per ``2 (d_qk + d_v) = 256`` FLOPs:
    4.9e12/s against 2.5e15 FLOP/s on a GB200 caps the kernel at 50 % of peak, 47 % at its
    sustained clock; FA4 measures 43-50 %, compute_units.md §2.4) but not at d = 128 (FA4:
    62-75 %); Blackwell Ultra's doubled rate lifts the cap. The rate is at the peak's
    clock; :class:`Profile` slows it with the sustained clock.
    """
    rate = chip.compute.exp_per_s
    return f64(f64(exps) / rate) if rate > 0 else f64(np.zeros_like(f64(exps)))


def attention_peak(precision: str, chip: ChipPeaks) -> float:
    """The rate an attention kernel's matmuls in ``precision`` run at, FLOP/s: the 8-bit
    peak times :data:`FP8_ATTENTION_SHARE` where the format is 8-bit and the chip has
    the unit, else the floating-point path's peak (a chip without 8-bit units runs FP8
    attention at 16 bits)."""
    runs_at = native_precision(precision, chip.peak_of)
    peak = chip.peak_of(runs_at) if runs_at in EIGHT_BIT else None
    return peak * FP8_ATTENTION_SHARE if peak else chip.path_peak


def attention_terms(flops: Num, nbytes: Num, rows: Num, seq_q: Num, heads: Num,
                    backward: Num, exps: Num, chip: ChipPeaks, peak: Num | None = None
                    ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(compute, memory, softmax floor) seconds of flash-attention kernels, broadcast over
    their arrays: ``F / (P_attn eta_wave eta_pass)``, ``B / (BW_hbm eta_bw)`` and
    :func:`softmax_floor_s`. ``P_attn``: ``peak`` (:func:`attention_peak` of each
    kernel's format), default the floating-point path's; ``eta_wave``: the
    ``b a ceil(s_q / BLOCK)`` query blocks (``rows / s_q`` sequences times ``heads``) run
    ``slots`` at a time (:func:`~ocplan.costmodel.attention.query_block_waves`);
    ``eta_pass``: :data:`~ocplan.costmodel.attention.BACKWARD_EFFICIENCY` where
    ``backward`` is set, else 1."""
    seq = np.maximum(f64(seq_q), 1.0)
    blocks = f64(rows) / seq * f64(heads) * np.ceil(seq / ATTN_BLOCK)
    eta_pass = np.where(f64(backward) > 0.0, BACKWARD_EFFICIENCY, 1.0)
    rate = chip.path_peak if peak is None else f64(peak)
    compute = f64(flops) / (rate * query_block_waves(blocks, chip.compute) * eta_pass)
    memory = f64(nbytes) / (chip.hbm_Bps * HBM_EFFICIENCY)
    return f64(compute), f64(memory), f64(softmax_floor_s(exps, chip))


def attention_op_cost(op: Operator, chip: ChipPeaks) -> OpCost:
    """Flash attention from the operator's FLOPs and bytes:

    ``t = max(overlap(F / (P_attn eta_attn eta_wave eta_pass), E / R_exp),
    B / (BW_hbm eta_bw)) + t_launch``, ``overlap`` as in :class:`Profile` (``E`` the
    softmax exponentials, :func:`softmax_floor_s`; ``P_attn`` the rate of the
    operator's format, :func:`attention_peak`; the terms: :func:`attention_terms`).

    ``F`` counts the causal, windowed and context-parallel share of the score matrix the
    chip computes (:func:`~ocplan.workloads.operators.keys_per_query`), so no mask logic
    is repeated here."""
    compute, memory, floor = attention_terms(op.flops, op.bytes, op.m, op.seq_q, op.groups,
                                             float(op.backward), op.exps, chip,
                                             attention_peak(op.precision, chip))
    return OpCost(compute, memory, "attention", "attention", floor)


def scan_op_cost(op: Operator, chip: ChipPeaks) -> OpCost:
    """A recurrent mixer's core (chunked scan or decode step) on the attention law
    (:func:`attention_terms`, no softmax): like flash attention it is one fused kernel
    of small 16-bit matmuls over tiles of a sequence (chunks of 64-256 tokens for each
    head), so its rate is taken to be attention's, waves of ``sequences x heads x
    chunks`` included, and it is calibrated with attention (no published run of a
    hybrid model fits it; an assumption, docs/model.md). Decode steps are bound by the
    state they read and write."""
    compute, memory, _ = attention_terms(op.flops, op.bytes, op.m, op.seq_q, op.groups,
                                         float(op.backward), 0.0, chip)
    return OpCost(compute, memory, "attention", "attention")


def memory_op_cost(op: Operator, chip: ChipPeaks) -> OpCost:
    """A memory-bound kernel: its bytes at the achieved HBM bandwidth
    (:func:`~ocplan.costmodel.roofline.memory_time_s` without the launch)."""
    return OpCost(f64(0.0), memory_time_s(op.bytes, chip.hbm_Bps, 0.0), "memory", "memory")


def score_op_cost(op: Operator, chip: ChipPeaks) -> OpCost:
    """A pass over an unfused attention core's score matrix (Megatron's fused
    scale-mask-softmax, the attention dropout and their backward kernels): its bytes at
    the streaming bandwidth (:data:`~ocplan.costmodel.roofline.HBM_EFFICIENCY`), not
    scaled by the calibrated ``memory_efficiency``. Each is one kernel that reads and
    writes a tensor of ``b a s^2 / t`` values once, far larger than any cache, as a
    copy does (a residual add of 256 MiB moves 0.91 of the H200's peak,
    docs/device-h200.md); the calibrated efficiency stands for the passes a layer's
    per-token elementwise work makes that its operator list does not name, which do
    not grow with the score matrix."""
    return OpCost(f64(0.0), memory_time_s(op.bytes, chip.hbm_Bps, 0.0), "stream", "memory")


Coster = Callable[[Operator, ChipPeaks], OpCost]
#: The cost function of each operator kind.
COSTERS: dict[OpKind, Coster] = {
    "gemm": gemm_op_cost,
    "grouped_gemm": gemm_op_cost,
    "router": gemm_op_cost,
    "attention": attention_op_cost,
    "scan": scan_op_cost,
    "elementwise": memory_op_cost,
    "norm": memory_op_cost,
    "permute": memory_op_cost,
    "embedding": memory_op_cost,
    "score": score_op_cost,
}


def _rows(values: Sequence[float | FloatArray], n: int) -> FloatArray:
    """``values`` (numbers or arrays broadcasting to ``(n,)``) as the rows of a
    ``(len(values), n)`` array."""
    out = np.empty((len(values), n))
    for i, v in enumerate(values):
        out[i] = v
    return out


def _gemm_costs(ops: list[Operator], chip: ChipPeaks, n: int
                ) -> tuple[FloatArray, FloatArray, list[Path]]:
    """:func:`gemm_op_cost` of several GEMMs in one :func:`~ocplan.costmodel.gemm.gemm_cost`
    call over a ``(GEMMs, layouts)`` array: the same elementwise formulas, each GEMM's
    precision-dependent numbers (peak, input and weight bytes) as a column."""
    peaks, b_ins, b_ws = [], [], []
    paths: list[Path] = []
    groups_l: list[float | FloatArray] = []
    wg_l: list[float | FloatArray] = []
    for op in ops:
        runs_at = native_precision(op.precision, chip.peak_of)
        precision = runs_at or "bf16"
        peak = chip.peak_of(runs_at) if runs_at else chip.path_peak
        assert peak, precision
        b_in = GEMM_INPUT_BYTES.get(precision, ACT_BYTES)
        peaks.append(peak)
        b_ins.append(b_in)
        b_ws.append(GEMM_INPUT_BYTES.get(op.weight_precision, b_in))
        bits = "_4bit" if precision in FOUR_BIT else "_8bit" if precision in EIGHT_BIT else ""
        path = f"grouped_gemm{bits}" if op.kind == "grouped_gemm" else f"gemm{bits}"
        paths.append(path)  # type: ignore[arg-type]
        groups_l.append(op.groups)
        wg_l.append(_weight_groups(op))
    groups, m = _rows(groups_l, n), _rows([op.m for op in ops], n)
    factor, ragged = imbalance_terms(m, _rows([op.m_max for op in ops], n), groups)
    kernel, turns, wg_kernel = kernel_groups(groups, _rows(wg_l, n),
                                             _rows([op.one_by_one for op in ops], n))
    cost = gemm_cost(m, _rows([op.n for op in ops], n), _rows([op.k for op in ops], n),
                     kernel, f64(peaks)[:, None], chip.hbm_Bps, chip.compute,
                     f64(b_ins)[:, None], ACT_BYTES, 1.0, 0.0,
                     bytes_per_weight=f64(b_ws)[:, None], weight_groups=wg_kernel,
                     ragged=ragged)
    return (f64(cost.compute_s * factor * turns), f64(cost.memory_s * factor * turns),
            paths)


def _attention_costs(ops: list[Operator], chip: ChipPeaks, n: int
                     ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """:func:`attention_op_cost` of several attention operators at once."""
    def col(values: Sequence[float | FloatArray]) -> FloatArray:
        return _rows(values, n)
    return attention_terms(col([op.flops for op in ops]), col([op.bytes for op in ops]),
                           col([op.m for op in ops]), col([op.seq_q for op in ops]),
                           col([op.groups for op in ops]),
                           col([float(op.backward) for op in ops]),
                           col([op.exps for op in ops]), chip,
                           col([attention_peak(op.precision, chip) for op in ops]))


def _memory_costs(ops: list[Operator], chip: ChipPeaks, n: int
                  ) -> tuple[FloatArray, FloatArray]:
    """:func:`memory_op_cost` of several memory-bound operators at once."""
    memory = memory_time_s(_rows([op.bytes for op in ops], n), chip.hbm_Bps, 0.0)
    return f64(np.zeros_like(memory)), memory


#: Operator kinds costed together by one batched coster (the per-operator
#: :data:`COSTERS` vectorized over a stack of operators; the same formulas).
_GEMM_KINDS = frozenset({"gemm", "grouped_gemm", "router"})
_MEMORY_KINDS = frozenset({"elementwise", "norm", "permute", "embedding", "score"})
#: The memory-bound costers the batched path reproduces, with the path each gives.
_MEMORY_PATHS: dict[Coster, Path] = {memory_op_cost: "memory", score_op_cost: "stream"}


def profile(ops: Iterable[Operator], chip: ChipPeaks, n: int) -> Profile:
    """:class:`Profile` of ``ops`` over ``n`` layouts.

    Operators of a kind are costed together (one GEMM law evaluation for all the GEMMs,
    one for the attention operators, one for the memory-bound kernels), elementwise
    equal to costing each alone with :data:`COSTERS`."""
    ops = list(ops)
    compute = np.empty((len(ops), n))
    memory = np.empty((len(ops), n))
    floor = np.zeros((len(ops), n))
    paths: list[Path] = [None] * len(ops)  # type: ignore[list-item]
    categories: list[str] = [""] * len(ops)
    groups: dict[str, list[int]] = {"gemm": [], "attention": [], "memory": [], "other": []}
    for i, op in enumerate(ops):
        kind = op.kind
        if kind in _GEMM_KINDS and COSTERS[kind] is gemm_op_cost:
            groups["gemm"].append(i)
        elif kind == "attention" and COSTERS[kind] is attention_op_cost:
            groups["attention"].append(i)
        elif kind in _MEMORY_KINDS and COSTERS[kind] in _MEMORY_PATHS:
            groups["memory"].append(i)
        else:
            groups["other"].append(i)
    if groups["gemm"]:
        idx = groups["gemm"]
        c, m, gemm_paths = _gemm_costs([ops[i] for i in idx], chip, n)
        compute[idx], memory[idx] = c, m
        for i, path in zip(idx, gemm_paths, strict=True):
            paths[i], categories[i] = path, "matrix"
    if groups["attention"]:
        idx = groups["attention"]
        compute[idx], memory[idx], floor[idx] = _attention_costs([ops[i] for i in idx],
                                                                 chip, n)
        for i in idx:
            paths[i], categories[i] = "attention", "attention"
    if groups["memory"]:
        idx = groups["memory"]
        compute[idx], memory[idx] = _memory_costs([ops[i] for i in idx], chip, n)
        for i in idx:
            paths[i], categories[i] = _MEMORY_PATHS[COSTERS[ops[i].kind]], "memory"
    for i in groups["other"]:
        cost = COSTERS[ops[i].kind](ops[i], chip)
        compute[i], memory[i], floor[i] = cost.compute_s, cost.memory_s, cost.floor_s
        paths[i], categories[i] = cost.path, cost.category
    # a floor wherever the chip publishes a rate and the list holds attention (or a
    # registered coster that may set one): decided by the operator kinds, not the
    # values, so every layout of a layer shape agrees and cached columns stack as they are
    has_floor = chip.compute.exp_per_s > 0 and bool(groups["attention"] or groups["other"])
    return Profile(compute_s=compute, memory_s=memory, floor_s=floor if has_floor else None,
                   paths=tuple(paths), categories=tuple(categories),
                   names=tuple(op.name for op in ops))
