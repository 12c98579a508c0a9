"""Operators as data: one transformer layer on one chip as a list of typed operators.

:func:`layer_operators` turns a :class:`~ocplan.workloads.shape.ModelShape`, a phase and a
per-chip :class:`Shard` into the operators of ONE layer on ONE chip: GEMMs, grouped
expert GEMMs, attention, norms, residuals, activations, the MoE router and the token
permutations around the expert all-to-all. :func:`embedding_operators` and
:func:`head_operators` give the input embedding and the final norm, LM head and loss.
Each :class:`Operator` carries its shape (``m, n, k``, groups, attention lengths), FLOPs
(a multiply-add is 2), HBM bytes read and written, and the precision it runs at: the
input of a hardware cost model, with no hardware in it. Collectives (TP, CP, EP, DP)
are not operators here: they belong to the communication model.

Symbols: ``h`` hidden, ``a`` query heads, ``k`` KV heads, ``d`` head width (MLA: ``d_n``
no-RoPE, ``d_r`` RoPE, ``d_v`` value widths, ``r_q``/``r_kv`` the q/kv LoRA ranks), ``f``
dense MLP width, ``m`` MLP matrices (2 GeLU, 3 SwiGLU), ``E`` experts, ``K`` top-k,
``f_e`` expert width, ``S`` shared experts, ``V`` vocabulary; shard ``t`` TP, ``c`` CP,
``e`` EP, ``t_e`` expert TP, ``b`` sequences, ``s`` query length per sequence, ``s_kv``
keys per sequence; ``T = b*s/c`` token rows on the chip.

Splits (Megatron-LM, Shoeybi et al. 2019 §3; Korthikanti et al. 2022 §4.2.2):

- column-parallel GEMMs (QKV, MLA up-projections, MLP up) split ``n`` by ``t``;
  row-parallel GEMMs (output projection, MLP down) split ``k`` by ``t``; their rows are
  all ``T`` tokens (gathered from the sequence-parallel shards);
- attention heads split by ``t``; KV heads split by ``min(t, k)``, i.e. replicated when
  ``t > k`` (``k / min(t, k)`` KV heads per chip);
- norms, residuals and the input of MLA's down-projections run on ``T/t`` rows under
  sequence parallelism (Megatron-Core MLA projects the sequence-parallel shard and
  gathers the narrow latent), on ``T`` rows without;
- CP splits the tokens (``T = b*s/c``); attention FLOPs assume load-balanced causal CP
  (Megatron's 2c-chunk zigzag), so each rank does ``1/c`` of the causal work;
- MoE block (Megatron-Core "parallel folding", Liu et al. 2025, arXiv:2504.14960): the
  chip routes ``T/t`` tokens (Megatron-Core refuses MoE with TP > 1 in training without
  sequence parallelism, so the MoE block always runs on the sequence-parallel shard),
  holds ``E/e`` experts, each split ``t_e`` ways on its width, and receives the tokens
  of the ``e*t_e`` ranks of its expert group. Shared experts are TP-split like a dense
  MLP.

All numeric inputs may be numpy arrays (one element per layout); they broadcast, and
every numeric field of every operator is then an array of the broadcast shape. Scalar
inputs give plain floats.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal, cast, get_args

import numpy as np
import numpy.typing as npt

from ocplan.catalog.schema import LAYER_BLOCKS
from ocplan.errors import Problem, SpecError
from ocplan.workloads.memory import ACT_BYTES, MASK_BYTES
from ocplan.workloads.mixers import SCAN_BWD_FACTOR, STATE_BYTES, MixerDims
from ocplan.workloads.recipes import RECIPES
from ocplan.workloads.shape import ModelShape

__all__ = [
    "ATTENTION_FORMATS",
    "ATTN_BWD_FACTOR",
    "GEMM_INPUT_BYTES",
    "KV_BYTES",
    "PHASES",
    "PRODUCER_QUANTIZED",
    "UNFUSED_CORE_OPERATORS",
    "WGRAD_PRECISION",
    "ExpertLoad",
    "Num",
    "OpKind",
    "Operator",
    "Phase",
    "Shard",
    "attention_operator",
    "cast_layouts",
    "embedding_operators",
    "expert_load",
    "has_mlp",
    "head_operators",
    "is_attention_layer",
    "is_mixer_layer",
    "is_moe_layer",
    "is_windowed_layer",
    "keys_per_query",
    "kv_cache_bytes",
    "kv_cache_bytes_per_token",
    "kv_cache_bytes_per_token_per_layer",
    "layer_operators",
    "layer_totals",
    "mixer_operator",
    "mixer_state_bytes",
    "mtp_operators",
    "windowed_layer_count",
]

FloatArray = npt.NDArray[np.float64]
#: A number or an array of numbers, one per layout.
Num = float | FloatArray
BoolLike = bool | npt.NDArray[np.bool_]

OpKind = Literal["gemm", "grouped_gemm", "attention", "scan", "elementwise", "norm",
                 "router", "permute", "embedding", "score"]
Phase = Literal["forward", "backward", "prefill", "decode"]
PHASES: tuple[str, ...] = get_args(Phase)

#: NVFP4 block: 16 E2M1 values share one E4M3 scale byte (NVIDIA, "Introducing NVFP4 for
#: efficient and accurate low-precision inference", developer blog, 2025; the per-tensor
#: fp32 second-level scale is negligible). ``fp4`` in ocplan is NVFP4, as in the published
#: serving data (shared/validation/inference_README.md).
NVFP4_BLOCK = 16
#: OCP MXFP4 block: 32 E2M1 values share one E8M0 scale byte (OCP Microscaling Formats
#: (MX) v1.0 §5.1, Table 1), 4.25 bits a value; the weight format ``mxfp4`` (gpt-oss's
#: released experts), computed on the chip's 4-bit unit like ``fp4``.
MXFP4_BLOCK = 32
#: 4-bit integer weights (AWQ, GPTQ): one fp16 scale and one 4-bit zero point per group of
#: 128 (Lin et al. 2024, AWQ §4 "group size 128"; the GPTQ default).
INT4_GROUP = 128
INT4_GROUP_META_BYTES = 2.5
#: Bytes per element of a GEMM's inputs (activations and weights) by the workload's GEMM
#: precision: 16-bit formats 2, 8-bit formats 1 (Transformer Engine casts both inputs of
#: an fp8 GEMM; its output stays 16-bit, :data:`~ocplan.workloads.memory.ACT_BYTES`; the
#: per-tensor or 128-wide block scales of fp8 are negligible per element); 4-bit formats
#: carry their block scales, which are read with the values.
GEMM_INPUT_BYTES: dict[str, float] = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0,
                                      "fp4": 0.5 + 1.0 / NVFP4_BLOCK,
                                      "mxfp4": 0.5 + 1.0 / MXFP4_BLOCK,
                                      "int4": 0.5 + INT4_GROUP_META_BYTES / INT4_GROUP}
#: Bytes per element of a KV-cache format (serving); block scales of fp8 caches are
#: per-tensor or per-head and negligible per element.
KV_BYTES: dict[str, float] = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0}
#: Formats the prefill attention kernels' matmuls (QK^T and PV) run in: 16-bit, or FP8
#: over an FP8 KV cache (TensorRT-LLM's FP8 context FMHA, FlashAttention-3's FP8 path).
ATTENTION_FORMATS: tuple[str, ...] = ("bf16", "fp8")
#: Precision of the operators that stay in 16-bit whatever the GEMM precision: attention
#: (FlashAttention-2 in bf16), norms, activations, permutations, the router and the LM
#: head (fp8 recipes keep the first and last layers and the router in 16-bit; the engine
#: runs attention and the head on its 16-bit path too).
HIGH_PRECISION = "bf16"
#: FlashAttention-2 backward / forward FLOPs: five matmuls against two (Dao 2023 §3.1.2).
ATTN_BWD_FACTOR = 2.5
#: Bytes per weight-gradient element: Megatron accumulates wgrad into fp32 ``main_grad``
#: buffers (``gradient_accumulation_fusion``), read and written once per micro-batch.
WGRAD_ACCUM_BYTES = 4.0
#: Precision of the weight-gradient GEMM (``dW = X^T dY``) by the training GEMM precision,
#: where it is not that precision (:attr:`~ocplan.workloads.recipes.Recipe.wgrad`: AQT int8
#: leaves it in bf16).
WGRAD_PRECISION: dict[str, str] = {p: r.wgrad for p, r in RECIPES.items() if r.wgrad != p}
#: FLOPs per element of an RMSNorm: square, accumulate, scale by 1/rms, scale by gamma.
#: LayerNorm's extra mean and bias are left out: norms are bound by memory, not FLOPs.
NORM_FLOPS_PER_ELEMENT = 4.0
#: FLOPs per element of a residual add.
RESIDUAL_FLOPS_PER_ELEMENT = 1.0
#: FLOPs per output element of SwiGLU, silu(g) * u: sigmoid (exp, add, divide), multiply
#: by g, multiply by u; a transcendental counts as one.
SWIGLU_FLOPS_PER_ELEMENT = 5.0
#: FLOPs per element of tanh-approximated GeLU, 0.5 x (1 + tanh(c (x + 0.044715 x^3))):
#: cube (2), scale (1), add x (1), scale by c (1), tanh (1), add 1 (1), times x (1), half (1).
GELU_FLOPS_PER_ELEMENT = 9.0
#: FLOPs per element of a rotary embedding: x cos + rotate(x) sin (two multiplies, one add).
ROPE_FLOPS_PER_ELEMENT = 3.0
#: FLOPs per element of a sigmoid output gate, sigmoid(g) * o: exp, add, divide, multiply.
GATE_FLOPS_PER_ELEMENT = 4.0
#: FLOPs per element of a recurrent mixer's gated RMSNorm, norm(y) * silu(z).
GATED_NORM_FLOPS_PER_ELEMENT = NORM_FLOPS_PER_ELEMENT + SWIGLU_FLOPS_PER_ELEMENT
#: FLOPs per score element of Megatron's fused scale-mask-softmax (forward): scale, mask,
#: running max, subtract, exp, sum, divide; a transcendental counts as one.
SOFTMAX_FLOPS_PER_ELEMENT = 7.0
#: FLOPs per element of dropout: draw a random number, compare it with the keep
#: probability, scale the kept value.
DROPOUT_FLOPS_PER_ELEMENT = 3.0
#: FLOPs per element of the MoE combine: scale each expert output by its gate and add.
COMBINE_FLOPS_PER_ELEMENT = 2.0
#: FLOPs per element of an einsum dispatch's masks (:func:`_einsum_dispatch_specs`): the
#: slot's one-hot compare and its gate product (memory-bound either way).
DISPATCH_MASK_FLOPS_PER_ELEMENT = 2.0
#: 16-bit elements written per mask element: the gate-weighted combine mask (16-bit)
#: and the boolean dispatch mask cast from it (1 byte).
DISPATCH_MASK_OUTPUTS = 1.0 + MASK_BYTES / ACT_BYTES
#: FLOPs per logit of a fused cross-entropy: running max, exp, sum, subtract.
CROSS_ENTROPY_FLOPS_PER_LOGIT = 4.0
#: Elementwise backward / forward FLOPs: each gradient costs about what the value did.
ELEMENTWISE_BWD_FACTOR = 2.0
#: Training formats whose operands a producing norm or activation writes already quantized
#: (:func:`_casts`; :attr:`~ocplan.workloads.recipes.Recipe.producer_quantized`): FP8 in
#: Transformer Engine. int8 (AQT) and NVFP4 scale each operand by its tensor's absolute
#: maximum, so their casts are passes of their own.
PRODUCER_QUANTIZED = frozenset(p for p, r in RECIPES.items() if r.producer_quantized)
#: FLOPs per cast element: scale and convert.
CAST_FLOPS_PER_ELEMENT = 2.0

_WHERE = "shard"


# ---- data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operator:
    """One kernel-level operation of one layer on one chip.

    Attributes
    ----------
    name
        Stable name (``"qkv"``, ``"attn"``, ``"experts_up"``, ...); backward GEMMs are
        ``"<name>.dgrad"`` and ``"<name>.wgrad"``, other backward operators
        ``"<name>.bwd"``.
    kind
        What sort of kernel it is (:data:`OpKind`).
    flops
        FLOP of this operator on this chip (a multiply-add is 2).
    bytes_read, bytes_written
        Compulsory HBM traffic, bytes: inputs and weights read once, outputs written once
        (tiling re-reads are the cost model's business).
    precision
        GEMMs: the workload's GEMM precision; the rest ``"bf16"`` (:data:`HIGH_PRECISION`).
    m, n, k
        GEMM ``(m x k) @ (k x n)`` per group; ``m`` is token rows (attention: query rows
        on this chip, all sequences).
    groups
        Grouped GEMM: local experts, each with ``m`` tokens on average; batched GEMM (MLA
        absorbed projections): heads; attention: query heads on this chip.
    m_max
        Grouped GEMM: tokens of the most loaded local expert (sets its time); else ``m``.
    seq_q, seq_kv
        Attention: queries per sequence on this chip, keys per sequence (context).
    head_dim_qk, head_dim_v
        Attention: width of a query/key and of a value vector.
    causal
        Attention: a causal mask (the score matrix is half computed).
    window
        Attention: sliding window in tokens, 0 = the whole context.
    """

    name: str
    kind: OpKind
    flops: Num
    bytes_read: Num
    bytes_written: Num
    precision: str
    m: Num = 0.0
    n: Num = 0.0
    k: Num = 0.0
    groups: Num = 1.0
    m_max: Num = 0.0
    seq_q: Num = 0.0
    seq_kv: Num = 0.0
    head_dim_qk: Num = 0.0
    head_dim_v: Num = 0.0
    causal: bool = True
    window: Num = 0.0
    weight_precision: str = ""
    """GEMMs: format of the weights when it differs from ``precision`` (weight-only
    quantization in serving, e.g. int4 weights into a bf16 GEMM); "" = ``precision``."""
    weight_groups: Num = 0.0
    """Grouped GEMMs: groups whose weights are read (experts receiving tokens); 0 =
    ``groups``."""
    one_by_one: Num = 0.0
    """Grouped GEMMs: 1 where each group runs as a GEMM kernel of its own, one after
    another (:attr:`Shard.grouped_gemm` off), 0 where one kernel runs them all."""
    backward: bool = False
    """Attention: the backward kernel (dQ, dK, dV), which runs its FLOPs at a lower rate
    than the forward (:data:`~ocplan.costmodel.attention.BACKWARD_EFFICIENCY`)."""
    exps: Num = 0.0
    """Attention: softmax exponentials on this chip, one per score element computed, in
    the forward and again in the backward (which recomputes the probabilities;
    FlashAttention-2, Dao 2023, Alg. 2)."""

    @property
    def bytes(self) -> Num:
        """HBM bytes moved: read + written."""
        return _out(np.add(self.bytes_read, self.bytes_written))


@dataclass(frozen=True)
class Shard:
    """What one chip holds of one micro-batch (training) or running batch (serving).

    Attributes
    ----------
    tp
        Tensor-parallel size ``t`` (Megatron column/row parallel, heads split by it).
    batch
        Sequences ``b`` in the micro-batch (training) or the running batch (serving).
    seq_len
        Query tokens per sequence ``s``: the training sequence, the prompt (prefill),
        1 (decode; more for speculative tokens).
    kv_len
        Keys each sequence attends ``s_kv``, tokens: ``seq_len`` in training, the prompt
        plus any cached prefix in prefill, the context (cache plus new tokens) in decode;
        ``None`` = ``seq_len``. The queries are the last ``seq_len`` positions.
    cp
        Context-parallel size ``c``: splits the tokens of each sequence (not in decode).
    ep
        Expert-parallel size ``e``: each chip holds ``E/e`` routed experts.
    etp
        Expert tensor-parallel size ``t_e``: each expert's width split ``t_e`` ways
        (Megatron-Core ``--expert-tensor-parallel-size``; vLLM-style TP of experts is
        ``etp = tp``).
    sp
        Sequence parallelism: norms and residuals run on ``T/t`` rows.
    grouped_gemm
        The local experts' GEMMs run as one grouped kernel; off: one kernel per expert,
        one after another (Megatron-Core ``SequentialMLP``; the ROCm port of the
        ``grouped_gemm`` package, Primus' ``moe_use_legacy_grouped_gemm``).
    ep_dedup
        The token dispatch is a fused communication kernel (DeepEP, HybridEP: Megatron-Core's
        ``flex`` dispatcher) that reads the tokens where they are and lands them on the
        expert's rank, so only the receiving side permutes them into local-expert order
        (and back before the combine kernel sums a token's copies); off: Megatron-Core's
        ``alltoall`` dispatcher, which also permutes every routed copy on the sending side
        before the all-to-all and unpermutes it after.
    capacity_factor
        Expert capacity / mean load (GShard, Switch); token copies beyond it are dropped
        and each expert's input is padded to the capacity, so every expert computes
        ``C`` rows in static shapes (GShard's dispatch tensor, MaxText's dense matmul,
        Megatron-Core ``--moe-pad-expert-input-to-capacity``). ``None`` = dropless.
    imbalance
        Tokens of the most loaded expert / mean tokens per expert, >= 1; 1.0 = force
        balanced. Drops under a capacity factor assume loads falling linearly from the
        most loaded expert (:func:`expert_load`).
    fused_attention
        Each attention core is one fused kernel (FlashAttention-class); off: Megatron-LM's
        unfused core of before FlashAttention, its score matrix written to memory between
        two batched GEMMs (:func:`_unfused_core`; training phases only). One value for
        every layout of a list: it changes which operators the list holds.
    einsum_dispatch
        The MoE layer dispatches and combines with one-hot einsums over a capacity
        dimension rather than permutations (GShard; MaxText's ``dense_matmul``, its
        training path with a capacity factor): :func:`_einsum_dispatch_specs`. One value
        for every layout of a list.
    """

    tp: Num
    batch: Num
    seq_len: Num
    kv_len: Num | None = None
    cp: Num = 1.0
    ep: Num = 1.0
    etp: Num = 1.0
    sp: BoolLike = True
    grouped_gemm: BoolLike = True
    ep_dedup: BoolLike = True
    capacity_factor: float | None = None
    imbalance: Num = 1.0
    fused_attention: bool = True
    einsum_dispatch: bool = False

    def __post_init__(self) -> None:
        problems: list[Problem] = []

        def need(ok: bool, field: str, message: str) -> None:
            if not ok:
                problems.append(Problem(_WHERE, field, message, getattr(self, field)))

        for field in ("tp", "cp", "ep", "etp", "batch", "seq_len", "imbalance"):
            need(_all_ge(getattr(self, field), 1.0), field, "must be finite and >= 1")
        if self.kv_len is not None:
            need(_all_ge(np.subtract(self.kv_len, self.seq_len), 0.0)
                 and _all_ge(self.kv_len, 1.0), "kv_len", "must be finite and >= seq_len")
        if self.capacity_factor is not None:
            cf = self.capacity_factor
            need(bool(np.isfinite(cf)) and cf > 0, "capacity_factor",
                 "must be finite and > 0 (None = dropless)")
        need(not self.einsum_dispatch or self.capacity_factor is not None, "einsum_dispatch",
             "needs a capacity factor (the masks have a capacity dimension)")
        if problems:
            raise SpecError(problems)

    @property
    def keys(self) -> Num:
        """Keys per sequence ``s_kv`` (``kv_len``, or ``seq_len`` when not given)."""
        return self.seq_len if self.kv_len is None else self.kv_len

    @property
    def tokens(self) -> Num:
        """Token rows on this chip, ``T = b*s/c``."""
        return _out(_f(self.batch) * _f(self.seq_len) / _f(self.cp))


@dataclass(frozen=True)
class ExpertLoad:
    """Tokens the routed experts of one chip receive, per expert (all in tokens).

    Attributes
    ----------
    routed_mean
        ``mu = e*t_e*(T/t)*K/E``: token copies routed to one expert, on average.
    kept_mean
        Copies one expert processes on average after capacity drops.
    kept_max
        Copies the most loaded expert processes: ``min(r*mu, C)``.
    kept_fraction
        ``kept_mean / routed_mean``.
    slot_fraction
        Slots each expert computes and the dispatch moves, over ``routed_mean``: the kept
        share dropless; the capacity factor under one, every expert's input being padded
        to its capacity ``C = cf mu`` (kept copies or padding; :attr:`Shard.
        capacity_factor`).
    local_experts
        ``E/e``.
    active_experts
        Local experts expected to receive at least one token (their weights are read).
    """

    routed_mean: Num
    kept_mean: Num
    kept_max: Num
    kept_fraction: Num
    slot_fraction: Num
    local_experts: Num
    active_experts: Num


# ---- helpers --------------------------------------------------------------------------


def _f(x: Num | BoolLike) -> FloatArray:
    if type(x) is np.ndarray and x.dtype == np.float64:
        return cast(FloatArray, x)  # what asarray returns, without the call
    return np.asarray(x, dtype=np.float64)


def _out(x: Num) -> Num:
    """Plain float for a scalar, float64 array otherwise."""
    if type(x) is float:
        return x
    if type(x) is np.ndarray and x.dtype == np.float64 and x.ndim:
        return x
    a = np.asarray(x, dtype=np.float64)
    return float(a) if a.ndim == 0 else a


def _any_above(x: Num, bound: float) -> bool:
    """Whether any element of ``x`` exceeds ``bound`` (a number without numpy)."""
    if isinstance(x, float | int):
        return x > bound
    return bool(np.any(_f(x) > bound))


def _any_other(x: Num, value: float) -> bool:
    """Whether any element of ``x`` differs from ``value``."""
    if isinstance(x, float | int):
        return x != value
    return bool(np.any(_f(x) != value))


def _all_ge(x: Num, low: float) -> bool:
    if isinstance(x, float | int):
        return math.isfinite(x) and x >= low
    a = np.asarray(x, dtype=np.float64)
    # min >= low fails for NaN (comparisons with NaN are false) and max < inf excludes inf
    return bool(a.size == 0 or (a.min() >= low and a.max() < math.inf))


def _t_sp(shard: Shard) -> FloatArray:
    """Sequence-parallel divisor of norm/residual rows: ``t`` with SP, 1 without."""
    return np.where(np.asarray(shard.sp, dtype=bool), _f(shard.tp), 1.0)


def is_moe_layer(shape: ModelShape, layer: int) -> bool:
    """Whether layer ``layer`` (0-based) is MoE (:meth:`ModelShape.is_moe_layer`)."""
    return shape.is_moe_layer(layer)


def is_windowed_layer(shape: ModelShape, layer: int) -> bool:
    """Whether layer ``layer`` (0-based) attends only a sliding window: the model has one
    and the layer is not one of every ``full_attention_every``-th, counted from 1
    (gpt-oss: layers 0, 2, 4, ... windowed; Hugging Face ``GptOssConfig.layer_types``)."""
    every = shape.full_attention_every
    return shape.sliding_window > 0 and not (every > 0 and (layer + 1) % every == 0)


def is_mixer_layer(shape: ModelShape, layer: int) -> bool:
    """Whether layer ``layer`` (0-based) runs a hybrid model's recurrent mixer: the model
    has one and the layer is not in its ``attention_layers``, or the layer is an ``M``
    layer of a layer pattern."""
    if shape.layer_pattern:
        return LAYER_BLOCKS[shape.layer_pattern[layer]] == "mixer"
    return shape.mixer is not None and layer not in shape.attention_layers


def is_attention_layer(shape: ModelShape, layer: int) -> bool:
    """Whether layer ``layer`` (0-based) has softmax attention: every layer that does not
    run a recurrent mixer, or a ``*`` layer of a layer pattern."""
    if shape.layer_pattern:
        return LAYER_BLOCKS[shape.layer_pattern[layer]] == "attention"
    return not is_mixer_layer(shape, layer)


def has_mlp(shape: ModelShape, layer: int) -> bool:
    """Whether layer ``layer`` (0-based) ends in an MLP (dense or MoE): every layer, or
    a ``-`` or ``E`` layer of a layer pattern."""
    return not shape.layer_pattern or LAYER_BLOCKS[shape.layer_pattern[layer]] in ("mlp", "moe")


def windowed_layer_count(shape: ModelShape) -> int:
    """Layers that attend only a sliding window (:func:`is_windowed_layer`): all of them
    with a window and no full layers, all but every ``full_attention_every``-th
    otherwise, none without a window."""
    if shape.sliding_window <= 0:
        return 0
    every = shape.full_attention_every
    return shape.n_layers - (shape.n_layers // every if every > 0 else 0)


def keys_per_query(seq_q: Num, kv_len: Num, window: Num = 0.0,
                   causal: bool = True) -> Num:
    """Average keys one query attends, ``kbar``.

    The ``seq_q`` queries are the last positions of a context of ``kv_len``; position
    ``p`` sees ``min(w, p)`` keys (continuous count, so that a causal square matrix is
    exactly half computed, as the engine counts it). With ``F(x) = x^2/2`` for
    ``x <= w`` and ``w x - w^2/2`` beyond:

    ``kbar = (F(kv_len) - F(kv_len - seq_q)) / seq_q``  (causal; ``w = 0``: no window)

    which is ``s/2`` for training (``seq_q = kv_len = s``), ``w - w^2/(2s)`` with a window
    ``w < s``. Without a causal mask (decode: the new token sees the whole cache),
    ``kbar = min(kv_len, w)``.
    """
    sq, skv, w0 = _f(seq_q), _f(kv_len), _f(window)
    # The window is never shorter than needed: w >= kv_len means the whole context.
    w = np.where(w0 > 0, np.minimum(w0, skv), skv)
    if not causal:
        return _out(w)

    def area(x: FloatArray) -> FloatArray:
        return np.where(x <= w, x * x / 2.0, w * x - w * w / 2.0)

    return _out((area(skv) - area(skv - sq)) / sq)


# ---- KV cache -----------------------------------------------------------------------------


def kv_cache_bytes_per_token_per_layer(shape: ModelShape, kv_bytes: int = 2) -> int:
    """KV-cache bytes one token adds to one layer.

    Standard/GQA/MQA: ``2*k*d*kv_bytes`` (a K and a V vector per KV head). MLA
    (DeepSeek-V2 §2.1, arXiv:2405.04434; V3 §2.1.1): the compressed latent and the
    shared RoPE key, ``(r_kv + d_r)*kv_bytes``, which is what DeepSeek caches.
    """
    if shape.is_mla:
        return (shape.mla_kv_rank + shape.mla_rope_dim) * kv_bytes
    return 2 * shape.n_kv_heads * shape.head_dim * kv_bytes


def kv_cache_bytes_per_token(shape: ModelShape, kv_bytes: int = 2) -> int:
    """KV-cache bytes one token adds over the attention layers (all ``L`` but a hybrid's
    recurrent ones; sliding windows ignored: the rate while the context is shorter than
    the window; :func:`kv_cache_bytes` caps it)."""
    return shape.n_attention_layers * kv_cache_bytes_per_token_per_layer(shape, kv_bytes)


def mixer_state_bytes(shape: ModelShape, tp: float = 1.0,
                      state_precision: str | None = None) -> float:
    """Bytes of one sequence's recurrent state over a hybrid model's mixer layers, on one
    of ``tp`` chips: per layer ``n_v d_k d_v / t`` state values in ``state_precision``
    (default the release's, :attr:`MixerDims.state_format
    <ocplan.workloads.mixers.MixerDims>`; bytes :data:`~ocplan.workloads.mixers.STATE_BYTES`)
    and the convolution's last ``w - 1`` inputs of its ``(2 n_k d_k / min(t, n_k) + n_v
    d_v / t)`` channels at 16 bits. 0 without a mixer: the whole cache grows with the
    context."""
    if shape.mixer is None:
        return 0.0
    split = _mixer_split(shape.mixer, _f(tp))
    return shape.n_mixer_layers * float(_cached_state_bytes(
        shape.mixer, split, _state_bytes(shape.mixer, state_precision)))


def _state_bytes(mx: MixerDims, state_precision: str | None) -> float:
    """Bytes per cached state value: ``state_precision``'s, else the release's format's."""
    return STATE_BYTES[state_precision or mx.state_format]


@dataclass(frozen=True)
class _MixerSplit:
    """What one of ``t`` chips holds of a recurrent mixer: ``nv = n_v / t`` value heads,
    ``nk = n_k / min(t, n_k)`` key groups (replicated beyond ``n_k``, as KV heads are)
    and the ``2 nk d_k + nv d_v`` channels of q, k and v."""

    nv: FloatArray
    nk: FloatArray
    channels: FloatArray


def _mixer_split(mx: MixerDims, tp: FloatArray) -> _MixerSplit:
    nv, nk = mx.heads / tp, mx.key_heads / np.minimum(tp, float(mx.key_heads))
    return _MixerSplit(nv, nk, 2.0 * nk * mx.key_dim + nv * mx.value_dim)


def _cached_state_bytes(mx: MixerDims, split: _MixerSplit, state_bytes: float
                        ) -> FloatArray:
    """One sequence's cached state in one mixer layer on one chip: the ``nv d_k d_v``
    state at ``state_bytes`` each and the convolution's last ``w - 1`` inputs of its
    channels."""
    return split.nv * mx.key_dim * mx.value_dim * state_bytes \
        + (mx.conv - 1) * split.channels * ACT_BYTES


def kv_cache_bytes(shape: ModelShape, context: Num, kv_bytes: int = 2,
                   state_precision: str | None = None) -> Num:
    """Cache bytes of one sequence of ``context`` tokens over all layers: full layers
    hold ``context`` tokens, windowed layers ``min(context, w)`` (a ring buffer), a
    hybrid's recurrent layers their fixed state (:func:`mixer_state_bytes`, in
    ``state_precision``)."""
    per_layer = float(kv_cache_bytes_per_token_per_layer(shape, kv_bytes))
    windowed = windowed_layer_count(shape)
    ctx = _f(context)
    held = (shape.n_attention_layers - windowed) * ctx + windowed * np.minimum(
        ctx, float(shape.sliding_window))
    return _out(per_layer * held + mixer_state_bytes(shape, state_precision=state_precision))


# ---- operator specs (shape only), then forward and backward forms ---------------------


@dataclass(frozen=True)
class _Gemm:
    name: str
    kind: OpKind
    m: FloatArray
    n: FloatArray
    k: FloatArray
    precision: str
    groups: FloatArray | float = 1.0
    weight_groups: FloatArray | float = 1.0
    """Groups whose weights are read (grouped GEMM: experts receiving tokens)."""
    m_max: FloatArray | None = None
    weight_precision: str = ""
    """Format of the weights when not ``precision`` (serving weight-only quantization)."""
    one_by_one: FloatArray | float = 0.0
    """Grouped GEMM: 1 where each group is a kernel of its own (:attr:`Operator.one_by_one`)."""
    input_fused: bool = False
    """Training in 8 bits: the kernel that produces this GEMM's input writes it already
    quantized, so no cast kernel precedes it (:func:`_casts`)."""
    grad_fused: bool = False
    """The same for the gradient of its output in the backward pass."""
    activations: bool = False
    """The second operand is an activation of each group (an unfused attention core's
    keys or values), not a weight: 16-bit, and its gradient is written as an activation
    gradient, not accumulated into fp32 main grads."""
    operand_grad: bool = True
    """The backward computes the second operand's gradient (off: a boolean mask, which
    has none, so only the dgrad runs)."""


@dataclass(frozen=True)
class _Elem:
    name: str
    kind: OpKind
    elements: FloatArray
    """Output elements."""
    inputs: float
    """Elements read per output element."""
    flops_per_element: float
    outputs: float = 1.0
    recomputed: bool = False
    """The backward runs the forward again first (its output was not kept)."""
    bwd_read: float | None = None
    """16-bit elements the backward reads per output element; None: the saved inputs and
    the output gradients (``inputs + outputs``)."""


@dataclass(frozen=True)
class _Permute:
    name: str
    read_rows: FloatArray
    written_rows: FloatArray
    width: float
    flops: FloatArray | float = 0.0


@dataclass(frozen=True)
class _Attn:
    rows: FloatArray
    heads: FloatArray
    keys: FloatArray
    d_qk: float
    d_v: float
    kv_read_bytes: FloatArray
    seq_q: FloatArray
    seq_kv: FloatArray
    causal: bool
    window: float
    precision: str = HIGH_PRECISION
    """The format QK^T and PV run in (serving may run them in FP8)."""


@dataclass(frozen=True)
class _Scan:
    """A recurrent mixer's core (the chunked scan, or one recurrent step in decode)."""

    rows: FloatArray
    heads: FloatArray
    flops: FloatArray
    bytes_read: FloatArray
    bytes_written: FloatArray
    seq_q: FloatArray
    bwd_read: FloatArray
    """What the backward kernels read (the forward's states recomputed)."""
    bwd_written: FloatArray


_Spec = _Gemm | _Elem | _Permute | _Attn | _Scan


def _gemm_forward(g: _Gemm) -> Operator:
    """``2 m n k`` FLOPs per group; reads ``m k`` inputs per group and the ``k n`` weights
    of each group with tokens; writes ``m n`` 16-bit outputs per group."""
    b_in = GEMM_INPUT_BYTES.get(g.precision, ACT_BYTES)
    b_w = GEMM_INPUT_BYTES.get(g.weight_precision or g.precision, ACT_BYTES)
    w = g.weight_groups * g.k * g.n * b_w
    return Operator(
        name=g.name, kind=g.kind, precision=g.precision,
        flops=_out(2.0 * g.groups * g.m * g.n * g.k),
        bytes_read=_out(g.groups * g.m * g.k * b_in + w),
        bytes_written=_out(g.groups * g.m * g.n * ACT_BYTES),
        m=_out(g.m), n=_out(g.n), k=_out(g.k), groups=_out(_f(g.groups)),
        m_max=_out(g.m if g.m_max is None else g.m_max),
        weight_precision=g.weight_precision, weight_groups=_out(_f(g.weight_groups)),
        one_by_one=_out(_f(g.one_by_one)))


def _gemm_backward(g: _Gemm) -> tuple[Operator, Operator]:
    """dgrad ``dX = dY W^T`` (m x n @ n x k) and wgrad ``dW = X^T dY`` (k x m @ m x n),
    each ``2 m n k`` FLOPs per group; wgrad accumulates into fp32 main grads, at the
    precision :data:`WGRAD_PRECISION` gives it (an activation operand's gradient,
    :attr:`_Gemm.activations`, is written once in 16-bit)."""
    b_in = GEMM_INPUT_BYTES.get(g.precision, ACT_BYTES)
    flops = _out(2.0 * g.groups * g.m * g.n * g.k)
    weights = g.weight_groups * g.k * g.n
    m_max = g.m if g.m_max is None else g.m_max
    dgrad = Operator(
        name=f"{g.name}.dgrad", kind=g.kind, precision=g.precision, flops=flops,
        bytes_read=_out(g.groups * g.m * g.n * b_in + weights * b_in),
        bytes_written=_out(g.groups * g.m * g.k * ACT_BYTES),
        m=_out(g.m), n=_out(g.k), k=_out(g.n), groups=_out(_f(g.groups)), m_max=_out(m_max),
        one_by_one=_out(_f(g.one_by_one)))
    w_prec = WGRAD_PRECISION.get(g.precision, g.precision)
    w_in = GEMM_INPUT_BYTES.get(w_prec, ACT_BYTES)
    # an activation operand's gradient is written once, in 16-bit, with nothing to add to
    acc_read, acc_written = (0.0, ACT_BYTES) if g.activations \
        else (WGRAD_ACCUM_BYTES, WGRAD_ACCUM_BYTES)
    wgrad = Operator(
        name=f"{g.name}.wgrad", kind=g.kind, precision=w_prec, flops=flops,
        bytes_read=_out(g.groups * g.m * (g.k + g.n) * w_in + weights * acc_read),
        bytes_written=_out(weights * acc_written),
        m=_out(g.k), n=_out(g.n), k=_out(g.m), groups=_out(_f(g.groups)),
        m_max=_out(g.k), one_by_one=_out(_f(g.one_by_one)))
    return dgrad, wgrad


def _elem_forward(e: _Elem) -> Operator:
    """Reads ``inputs`` and writes ``outputs`` 16-bit values per output element."""
    return Operator(
        name=e.name, kind=e.kind, precision=HIGH_PRECISION,
        flops=_out(e.elements * e.flops_per_element),
        bytes_read=_out(e.elements * e.inputs * ACT_BYTES),
        bytes_written=_out(e.elements * e.outputs * ACT_BYTES))


def _elem_backward(e: _Elem) -> Operator:
    """Reads the saved inputs and the output gradients, writes the input gradients;
    :data:`ELEMENTWISE_BWD_FACTOR` x the forward FLOPs; a recomputed operator also runs
    its forward (its FLOPs and bytes) again."""
    again = 1.0 if e.recomputed else 0.0
    read = e.inputs + e.outputs if e.bwd_read is None else e.bwd_read
    return Operator(
        name=f"{e.name}.bwd", kind=e.kind, precision=HIGH_PRECISION,
        flops=_out((ELEMENTWISE_BWD_FACTOR + again) * e.elements * e.flops_per_element),
        bytes_read=_out(e.elements * (read + again * e.inputs) * ACT_BYTES),
        bytes_written=_out(e.elements * (e.inputs + again * e.outputs) * ACT_BYTES))


def _permute_op(p: _Permute, backward: bool) -> Operator:
    """Row gathers/scatters of ``width`` 16-bit values; backward moves the gradients the
    reverse way (same bytes, same FLOPs)."""
    return Operator(
        name=f"{p.name}.bwd" if backward else p.name, kind="permute",
        precision=HIGH_PRECISION, flops=_out(_f(p.flops)),
        bytes_read=_out(p.read_rows * p.width * ACT_BYTES),
        bytes_written=_out(p.written_rows * p.width * ACT_BYTES))


def _attn_op(at: _Attn, backward: bool) -> Operator:
    """Flash attention: forward ``2 T kbar a_c (d_qk + d_v)`` FLOPs (QK^T and PV), reads
    Q and the K/V it needs, writes O. Backward: :data:`ATTN_BWD_FACTOR` x the FLOPs,
    reads Q, K, V, O and dO, writes dQ, dK, dV (FlashAttention-2, Dao 2023). Either pass
    evaluates ``T kbar a_c`` softmax exponentials (the backward recomputes them)."""
    scores = at.rows * at.keys * at.heads
    flops = 2.0 * scores * (at.d_qk + at.d_v)
    q = at.rows * at.heads * at.d_qk * ACT_BYTES
    o = at.rows * at.heads * at.d_v * ACT_BYTES
    if backward:
        flops, read, written = ATTN_BWD_FACTOR * flops, q + at.kv_read_bytes + 2 * o, \
            q + at.kv_read_bytes
    else:
        read, written = q + at.kv_read_bytes, o
    return Operator(
        name="attn.bwd" if backward else "attn", kind="attention", precision=at.precision,
        flops=_out(flops), bytes_read=_out(read), bytes_written=_out(written),
        m=_out(at.rows), groups=_out(at.heads), seq_q=_out(at.seq_q), seq_kv=_out(at.seq_kv),
        head_dim_qk=at.d_qk, head_dim_v=at.d_v, causal=at.causal, window=at.window,
        backward=backward, exps=_out(scores))


def _scan_op(sc: _Scan, backward: bool) -> Operator:
    """A recurrent mixer's core: the spec's FLOPs and bytes forward; backward
    :data:`~ocplan.workloads.mixers.SCAN_BWD_FACTOR` x the FLOPs and the backward
    kernels' bytes."""
    flops, read, written = (SCAN_BWD_FACTOR * sc.flops, sc.bwd_read, sc.bwd_written) \
        if backward else (sc.flops, sc.bytes_read, sc.bytes_written)
    return Operator(
        name="scan.bwd" if backward else "scan", kind="scan", precision=HIGH_PRECISION,
        flops=_out(flops), bytes_read=_out(read), bytes_written=_out(written),
        m=_out(sc.rows), groups=_out(sc.heads), seq_q=_out(sc.seq_q), backward=backward)


def _forward(spec: _Spec) -> Operator:
    if isinstance(spec, _Gemm):
        return _gemm_forward(spec)
    if isinstance(spec, _Elem):
        return _elem_forward(spec)
    if isinstance(spec, _Permute):
        return _permute_op(spec, backward=False)
    if isinstance(spec, _Scan):
        return _scan_op(spec, backward=False)
    return _attn_op(spec, backward=False)


def _backward(spec: _Spec) -> tuple[Operator, ...]:
    if isinstance(spec, _Gemm):
        dgrad, wgrad = _gemm_backward(spec)
        return (dgrad, wgrad) if spec.operand_grad else (dgrad,)
    if isinstance(spec, _Elem):
        return (_elem_backward(spec),)
    if isinstance(spec, _Permute):
        return (_permute_op(spec, backward=True),)
    if isinstance(spec, _Scan):
        return (_scan_op(spec, backward=True),)
    return (_attn_op(spec, backward=True),)


def cast_layouts(precision: str) -> float:
    """Copies a cast writes of a low-bit operand: row-wise for the GEMM that reads it
    next, and column-wise (transposed) for the weight-gradient GEMM when that GEMM runs
    in the same format (:data:`WGRAD_PRECISION`): Transformer Engine's ``cast_transpose``
    kernels, MXFP8's row- and column-wise block scales and NVFP4's row-wise and
    (Hadamard-transformed) column-wise copies alike write 2; AQT int8, whose weight
    gradient reads the 16-bit tensors, writes 1."""
    return 2.0 if WGRAD_PRECISION.get(precision, precision) == precision else 1.0


def _cast_op(g: _Gemm, backward: bool) -> Operator:
    """Quantization of a low-bit GEMM's activation operand before it: the forward input
    (``G m k`` elements) or, in backward, the output gradient (``G m n``) shared by
    dgrad and wgrad. Reads each 16-bit element once and writes it in
    :func:`cast_layouts` low-bit copies (fp8: 2 + 1 + 1 = 4 bytes per element; NVFP4:
    2 + 2 x 0.5625). Weights are cast once per step (cached across micro-batches) and
    not counted."""
    elements = g.groups * g.m * (g.n if backward else g.k)
    written = GEMM_INPUT_BYTES.get(g.precision, ACT_BYTES) * cast_layouts(g.precision)
    return Operator(
        name=f"{g.name}.cast_grad" if backward else f"{g.name}.cast", kind="elementwise",
        precision=HIGH_PRECISION, flops=_out(CAST_FLOPS_PER_ELEMENT * elements),
        bytes_read=_out(elements * ACT_BYTES),
        bytes_written=_out(elements * written))


def _casts(spec: _Spec, backward: bool) -> tuple[Operator, ...]:
    """The cast kernel before an 8-bit GEMM, unless the operand's producer writes it
    quantized: Transformer Engine's ``LayerNormLinear``/``LayerNormMLP`` run the norm
    with an FP8 output (``with_quantized_norm``; with sequence parallelism the FP8 shard
    is what is gathered) and the activation and its backward with the next GEMM's
    quantizer, and XLA fuses the convert into the producing fusion, in the formats of
    :data:`PRODUCER_QUANTIZED`. Only the operands that come out of attention, the
    expert dispatch, a residual or the combine keep a cast kernel of their own."""
    if not isinstance(spec, _Gemm) \
            or GEMM_INPUT_BYTES.get(spec.precision, ACT_BYTES) >= ACT_BYTES:
        return ()
    fused = spec.grad_fused if backward else spec.input_fused
    if fused and spec.precision in PRODUCER_QUANTIZED:
        return ()
    return (_cast_op(spec, backward),)


def _emit(specs: Sequence[_Spec], phase: Phase) -> tuple[Operator, ...]:
    """Forward phases: the specs in order. Backward: in reverse, GEMMs as dgrad + wgrad.
    Each 8-bit GEMM is preceded by the cast of its activation operand where no producer
    fuses it (:func:`_casts`; training phases only: serving quantizes activations inside
    the GEMM's prologue)."""
    training = phase in ("forward", "backward")
    if phase == "backward":
        return tuple(op for spec in reversed(specs)
                     for op in (*_casts(spec, True), *_backward(spec)))
    return tuple(op for spec in specs
                 for op in ((*_casts(spec, False), _forward(spec)) if training
                            else (_forward(spec),)))


# ---- the layer ------------------------------------------------------------------------------


def _attention_specs(shape: ModelShape, phase: Phase, shard: Shard, windowed: bool,
                     precision: str) -> list[_Spec]:
    """Norm, projections, RoPE, attention, output projection and residual of one layer."""
    h, a = float(shape.hidden), float(shape.n_heads)
    tp, T = _f(shard.tp), _f(shard.tokens)
    rows_sp = T / _t_sp(shard)
    heads = a / tp
    specs: list[_Spec] = [_Elem("norm_attn", "norm", rows_sp * h, 1.0, NORM_FLOPS_PER_ELEMENT)]
    if shape.is_mla:
        proj, rope_width, d_qk, d_v, kv_key_bytes = _mla_projections(
            shape, phase, shard, precision)
        specs += proj
    else:
        d = float(shape.head_dim)
        kv_heads = shape.n_kv_heads / np.minimum(tp, float(shape.n_kv_heads))
        gate = heads if shape.attn_gate else 0.0 * heads
        specs.append(_Gemm("qkv", "gemm", T, (heads + gate + 2 * kv_heads) * d, _f(h),
                           precision, input_fused=True))
        rope_width, d_qk, d_v = (heads + kv_heads) * d, d, d
        kv_key_bytes = kv_heads * 2 * d * ACT_BYTES
    specs.append(_Elem("rope", "elementwise", T * rope_width, 1.0, ROPE_FLOPS_PER_ELEMENT))
    core = _attention_core(shape, phase, shard, windowed, heads, d_qk, d_v, kv_key_bytes)
    specs += [core] if shard.fused_attention else _unfused_core(shape, core)
    o_width = heads * (shape.mla_v_dim if shape.is_mla else shape.head_dim)
    if shape.attn_gate:
        specs.append(_Elem("attn_gate", "elementwise", T * o_width, 2.0,
                           GATE_FLOPS_PER_ELEMENT))
    if shape.is_mla and phase == "decode":
        specs.append(_Gemm("o_absorb", "gemm", _f(shard.batch) + 0 * tp,
                           _f(float(shape.mla_v_dim)), _f(float(shape.mla_kv_rank)),
                           precision, groups=heads, weight_groups=heads))
    specs.append(_Gemm("o_proj", "gemm", T, _f(h), o_width, precision))
    specs.append(_Elem("residual_attn", "elementwise", rows_sp * h, 2.0,
                       RESIDUAL_FLOPS_PER_ELEMENT))
    return specs


def _mla_projections(shape: ModelShape, phase: Phase, shard: Shard, precision: str
                     ) -> tuple[list[_Spec], FloatArray, float, float, FloatArray]:
    """MLA projections (DeepSeek-V3 §2.1.1): q down (``h -> r_q``, on the SP shard, weights
    replicated), q up (``r_q -> a(d_n + d_r)``, column parallel), kv down (``h -> r_kv +
    d_r``, SP shard), kv up (``r_kv -> a(d_n + d_v)``, column parallel).

    Decode absorbs the kv up-projection into the query and the output (DeepSeek-V2
    §2.1.2): ``q_absorb`` maps each head's no-RoPE query to the latent (``d_n -> r_kv``)
    and ``o_absorb`` maps the latent output back (``r_kv -> d_v``), the same FLOPs as
    kv up over the new tokens; attention then runs on the cached latent (one shared
    "KV head" of width ``r_kv + d_r``, values ``r_kv``), read whole by every TP rank.

    Returns the specs, the RoPE width per token, ``d_qk``, ``d_v`` and the K/V bytes per
    cached key on this chip."""
    h = float(shape.hidden)
    rq, rkv = float(shape.mla_q_rank), float(shape.mla_kv_rank)
    dn, dr, dv = float(shape.mla_nope_dim), float(shape.mla_rope_dim), float(shape.mla_v_dim)
    tp, T = _f(shard.tp), _f(shard.tokens)
    rows_sp, heads = T / _t_sp(shard), float(shape.n_heads) / tp
    specs: list[_Spec] = []
    if rq:
        specs.append(_Gemm("q_down", "gemm", rows_sp, _f(rq), _f(h), precision,
                           input_fused=True))
        # q_up and kv_up follow the latent norms (q_a / kv_a layernorm) they fuse
        specs.append(_Gemm("q_up", "gemm", T, heads * (dn + dr), _f(rq), precision,
                           input_fused=True))
    else:
        specs.append(_Gemm("q_proj", "gemm", T, heads * (dn + dr), _f(h), precision,
                           input_fused=True))
    specs.append(_Gemm("kv_down", "gemm", rows_sp, _f(rkv + dr), _f(h), precision,
                       input_fused=True))
    rope_width = heads * dr + dr
    if phase == "decode":
        specs.append(_Gemm("q_absorb", "gemm", T, _f(rkv), _f(dn), precision,
                           groups=heads, weight_groups=heads))
        return specs, rope_width, rkv + dr, rkv, _f((rkv + dr) * ACT_BYTES) + 0 * tp
    specs.append(_Gemm("kv_up", "gemm", T, heads * (dn + dv), _f(rkv), precision,
                       input_fused=True))
    return specs, rope_width, dn + dr, dv, heads * (dn + dr + dv) * ACT_BYTES


def _attention_core(shape: ModelShape, phase: Phase, shard: Shard, windowed: bool,
                    heads: FloatArray, d_qk: float, d_v: float,
                    kv_key_bytes: FloatArray) -> _Attn:
    """The attention operator: ``kbar`` keys per query (:func:`keys_per_query`), K/V read
    once per sequence over the span the chip's queries can see (decode: the cache,
    ``b * min(s_kv, w) * kv_bytes_per_key``)."""
    window = float(shape.sliding_window) if windowed else 0.0
    seq, skv, cp = _f(shard.seq_len), _f(shard.keys), _f(shard.cp)
    causal = phase != "decode"
    keys = _f(keys_per_query(seq, skv, window, causal))
    span = skv if not window else np.minimum(skv, window + (0.0 if not causal else seq / cp))
    return _Attn(rows=_f(shard.tokens), heads=heads, keys=keys, d_qk=d_qk, d_v=d_v,
                 kv_read_bytes=_f(shard.batch) * span * kv_key_bytes,
                 seq_q=seq / cp, seq_kv=skv, causal=causal, window=window)


def _unfused_core(shape: ModelShape, at: _Attn) -> list[_Spec]:
    """Megatron-LM's core attention before FlashAttention (``CoreAttention``, 2019-2022;
    Korthikanti et al. 2022 §4.1 count its stored tensors), per (sequence, head) on the
    chip:

    - ``attn_scores``: a batched GEMM ``Q K^T``, ``(s_q x d_qk) @ (d_qk x s_kv)``, whose
      scores are written to memory; the whole square is computed and the causal mask
      applied after, so no causal saving;
    - ``attn_softmax``: the fused scale-mask-softmax, reading and writing every score
      (kind ``score``: one streaming pass of its own kernel over a matrix far larger than
      any cache, :func:`~ocplan.costmodel.op_time.score_op_cost`);
    - ``attn_dropout`` where the recipe uses dropout: writes the kept values and a
      one-byte mask (its backward reads the gradient and the mask);
    - ``attn_values``: a batched GEMM ``P V``, ``(s_q x s_kv) @ (s_kv x d_v)``.

    Keys and values are each group's second operand (:attr:`_Gemm.activations`)."""
    groups = at.rows / at.seq_q * at.heads
    scores = groups * at.seq_q * at.seq_kv
    specs: list[_Spec] = [
        _Gemm("attn_scores", "gemm", at.seq_q, at.seq_kv, _f(at.d_qk), HIGH_PRECISION,
              groups=groups, weight_groups=groups, activations=True),
        _Elem("attn_softmax", "score", scores, 1.0, SOFTMAX_FLOPS_PER_ELEMENT)]
    if shape.dropout:
        mask = MASK_BYTES / ACT_BYTES
        specs.append(_Elem("attn_dropout", "score", scores, 1.0,
                           DROPOUT_FLOPS_PER_ELEMENT, outputs=1.0 + mask,
                           bwd_read=1.0 + mask))
    specs.append(_Gemm("attn_values", "gemm", at.seq_q, _f(at.d_v), at.seq_kv,
                       HIGH_PRECISION, groups=groups, weight_groups=groups, activations=True))
    return specs


#: The operators of an unfused attention core (:func:`_unfused_core`): what Megatron's
#: selective recompute re-runs when attention is not one fused kernel.
UNFUSED_CORE_OPERATORS = frozenset({"attn_scores", "attn_softmax", "attn_dropout",
                                    "attn_values"})


def _mixer_specs(shape: ModelShape, phase: Phase, shard: Shard, precision: str,
                 state_precision: str | None = None) -> list[_Spec]:
    """Norm, input projection (``h -> 2 n_k d_k + 2 n_v d_v + g n_v``, column parallel:
    value heads split by ``t``, key groups by ``min(t, n_k)``, replicated beyond),
    causal convolution, the recurrent core (:func:`_scan_core`), gated RMSNorm, output
    projection (``n_v d_v -> h``, row parallel) and residual of one hybrid layer
    (:mod:`ocplan.workloads.mixers`); serving phases cache the state in
    ``state_precision`` (default the release's)."""
    mx = shape.mixer
    assert mx is not None, "a mixer layer without a mixer"
    h, T = float(shape.hidden), _f(shard.tokens)
    rows_sp = T / _t_sp(shard)
    split = _mixer_split(mx, _f(shard.tp))
    values = split.nv * mx.value_dim
    width = split.channels + values + mx.law.head_scalars * split.nv
    return [
        _Elem("norm_attn", "norm", rows_sp * h, 1.0, NORM_FLOPS_PER_ELEMENT),
        _Gemm("mixer_in", "gemm", T, width, _f(h), precision, input_fused=True),
        # depthwise causal convolution of w taps and its SiLU (causal_conv1d)
        _Elem("conv", "elementwise", T * split.channels, 1.0,
              2.0 * mx.conv + SWIGLU_FLOPS_PER_ELEMENT, recomputed=mx.law.recompute_conv),
        _scan_core(mx, phase, shard, split, _state_bytes(mx, state_precision)),
        _Elem("mixer_norm", "elementwise", T * values, 2.0, GATED_NORM_FLOPS_PER_ELEMENT),
        _Gemm("mixer_out", "gemm", T, _f(h), values, precision),
        _Elem("residual_attn", "elementwise", rows_sp * h, 2.0, RESIDUAL_FLOPS_PER_ELEMENT),
    ]


def _scan_core(mx: MixerDims, phase: Phase, shard: Shard, split: _MixerSplit,
               state_bytes: float) -> _Scan:
    """The recurrent core on ``T`` token rows of ``b`` sequences, ``n_v / t`` heads.

    Training and prefill run the chunked kernels (:meth:`MixerLaw.parallel_flops`),
    moving what their implementation passes between kernels
    (:meth:`MixerLaw.chunked_bytes`: inputs read more than once, chunk states and the
    intra-chunk matrix written and read back, some in fp32); decode runs one recurrent
    step per token (:meth:`MixerLaw.step_flops`), reading q, k, v and the per-head
    scalars and writing the output. Serving phases also read and write each sequence's
    cached state (``state_bytes`` a value) and convolution inputs
    (:func:`mixer_state_bytes` per layer). Each
    byte count is split into what the kernels write (the output, or the inputs'
    gradients) and read (the rest)."""
    law, nv = mx.law, split.nv
    T, b = _f(shard.tokens), _f(shard.batch)
    per_head = (law.step_flops_per_state * mx.key_dim * mx.value_dim if phase == "decode"
                else law.parallel_flops(mx) / mx.heads)
    inputs = T * (split.channels + law.head_scalars * nv) * ACT_BYTES
    written = T * nv * mx.value_dim * ACT_BYTES
    read = inputs
    if phase != "decode":
        read = T * law.chunked_bytes(mx, nv, split.nk, backward=False) - written
    # only a training forward has a backward (serving phases never emit one)
    bwd_read = T * law.chunked_bytes(mx, nv, split.nk, backward=True) - inputs \
        if phase == "forward" else 0.0 * inputs
    if phase in ("prefill", "decode"):
        cached = b * _cached_state_bytes(mx, split, state_bytes)
        read, written = read + cached, written + cached
    return _Scan(rows=T, heads=nv, flops=T * nv * per_head, bytes_read=read,
                 bytes_written=written, seq_q=_f(shard.seq_len) / _f(shard.cp),
                 bwd_read=bwd_read, bwd_written=inputs)


def _dense_mlp_specs(shape: ModelShape, shard: Shard, precision: str) -> list[_Spec]:
    """Norm, up (``h -> (m-1) f``, column parallel), activation, down (``f -> h``, row
    parallel), residual."""
    h, tp, T = float(shape.hidden), _f(shard.tp), _f(shard.tokens)
    rows_sp, f = T / _t_sp(shard), float(shape.ffn) / tp
    return [
        _Elem("norm_mlp", "norm", rows_sp * h, 1.0, NORM_FLOPS_PER_ELEMENT),
        _Gemm("mlp_up", "gemm", T, (shape.mlp_mats - 1) * f, _f(h), precision,
              input_fused=True, grad_fused=True),
        _activation("act", shape, T * f),
        _Gemm("mlp_down", "gemm", T, _f(h), f, precision, input_fused=True),
        _Elem("residual_mlp", "elementwise", rows_sp * h, 2.0, RESIDUAL_FLOPS_PER_ELEMENT),
    ]


def _activation(name: str, shape: ModelShape, elements: FloatArray) -> _Elem:
    """SwiGLU reads gate and up (2 per output), GeLU its one input."""
    if shape.mlp_mats == 3:
        return _Elem(name, "elementwise", elements, 2.0, SWIGLU_FLOPS_PER_ELEMENT)
    return _Elem(name, "elementwise", elements, 1.0, GELU_FLOPS_PER_ELEMENT)


def expert_load(shape: ModelShape, shard: Shard) -> ExpertLoad:
    """Tokens each local routed expert of one chip processes.

    The chip's expert group (``e*t_e`` ranks, each routing ``T/t`` tokens) sends
    ``mu = e*t_e*(T/t)*K/E`` token copies to each expert on average; the most loaded gets
    ``r*mu`` (``r`` = imbalance). With a capacity factor ``cf`` each expert keeps at most
    ``C = cf*mu``. Loads are assumed to fall linearly from ``r*mu`` over the experts
    (mean ``mu``; for ``r > 2`` the line reaches 0 at a fraction ``2/r`` of them), so the
    copies dropped per expert are ``D = (r*mu - C)^2 / (2*slope)`` while ``C`` lies on the
    line, ``mu - C`` below it; kept ``= mu - D``. Expected experts hit by at least one of
    the group's ``N = e*t_e*T/t`` tokens: ``(E/e)(1 - (1 - K/E)^N)`` (uniform routing).
    """
    E, K = float(shape.moe_experts), float(shape.moe_top_k)
    n_tokens = _f(shard.ep) * _f(shard.etp) * _f(shard.tokens) / _f(shard.tp)
    mu = n_tokens * K / E
    r = _f(shard.imbalance)
    hot = r * mu
    cap = hot if shard.capacity_factor is None else shard.capacity_factor * mu
    # Load of the expert at rank fraction u: r*mu - slope*u, truncated at 0.
    slope = np.where(r <= 2.0, 2.0 * (r - 1.0) * mu, r * r * mu / 2.0)
    lowest = np.maximum(0.0, hot - slope)
    dropped_on_line = (np.maximum(hot - cap, 0.0) ** 2) / (2.0 * np.where(slope > 0, slope, 1.0))
    dropped = np.where(cap >= hot, 0.0, np.where(cap >= lowest, dropped_on_line, mu - cap))
    kept = mu - dropped
    local = E / _f(shard.ep)
    active = local * (1.0 - (1.0 - K / E) ** n_tokens)
    kept_fraction = np.where(mu > 0, kept / np.where(mu > 0, mu, 1.0), 1.0)
    cf = shard.capacity_factor
    return ExpertLoad(
        routed_mean=_out(mu), kept_mean=_out(kept), kept_max=_out(np.minimum(hot, cap)),
        kept_fraction=_out(kept_fraction),
        slot_fraction=_out(kept_fraction if cf is None else np.full_like(kept_fraction, cf)),
        local_experts=_out(local), active_experts=_out(active))


#: The routed experts' GEMM kind by whether their input is padded to capacity. Dropless
#: routing gives each expert a different, data-dependent row count every step: the
#: grouped kernel's ragged groups, the token counts copied to the host to size them
#: (measured at 22-45 % of a Qwen3-30B-A3B layer at 4,096 tokens, ``docs/model.md``
#: session 35) and the wait for the busiest rank, which the calibrated grouped-GEMM
#: efficiency carries. Padded to capacity, every expert computes the same ``C`` rows in
#: static shapes (one batched GEMM over the experts), so that overhead has no cause and
#: the experts run at the dense GEMM's efficiency.
EXPERT_KIND: dict[bool, OpKind] = {False: "grouped_gemm", True: "gemm"}


def _einsum_dispatch_specs(shape: ModelShape, shard: Shard, rows: FloatArray
                           ) -> tuple[list[_Spec], list[_Spec]]:
    """(dispatch, combine) of a MoE layer that routes with one-hot einsums (GShard,
    Lepikhin et al. 2020 §2.2; MaxText ``RoutedMoE.dense_matmul`` with a capacity
    factor, training): per sequence of ``S`` tokens (``s/c`` on the chip) the ``E x C``
    capacity slots, ``E C = S K cf`` (``C = ceil(S K / E) cf``, the ceiling left out):

    - ``dispatch_masks``: the gate-weighted combine mask and the boolean dispatch mask,
      ``S x E C`` each (:data:`DISPATCH_MASK_OUTPUTS`), written;
    - ``dispatch_einsum``: ``BSM,BSEC -> EBCM``, a GEMM ``(h x S) @ (S x E C)`` per
      sequence; its mask operand is boolean, so the backward runs the dgrad only;
    - ``combine_einsum``: ``EBCM,BSEC -> BSM``, ``(S x E C) @ (E C x h)`` per sequence;
      the combine mask carries the gates, so the backward computes both gradients.

    Both einsums are dense (the one-hot zeros are multiplied), ``2 S h S K cf`` FLOPs per
    sequence each: per token ``2 h S K cf``, which grows with the sequence and can pass
    the experts' own (DeepSeek-V3 at 4,096 tokens: 587 MFLOP a token each against 880
    for the capacity-padded expert GEMMs). In 16-bit. ``rows``: the token rows the layer
    routes on the chip (``T/t``)."""
    assert shard.capacity_factor is not None, "an einsum dispatch needs a capacity factor"
    seq = _f(shard.seq_len) / _f(shard.cp)
    slots = seq * shape.moe_top_k * shard.capacity_factor
    groups = rows / seq
    h = _f(float(shape.hidden))
    masks = _Elem("dispatch_masks", "elementwise", groups * seq * slots, 0.0,
                  DISPATCH_MASK_FLOPS_PER_ELEMENT, outputs=DISPATCH_MASK_OUTPUTS)
    # the tokens as the first operand, so the dgrad is their gradient and the mask's
    # (the second operand's) is the one not computed
    dispatch = _Gemm("dispatch_einsum", "gemm", h, slots, seq, HIGH_PRECISION, groups=groups,
                     weight_groups=groups, activations=True, operand_grad=False)
    combine = _Gemm("combine_einsum", "gemm", seq, h, slots, HIGH_PRECISION, groups=groups,
                    weight_groups=groups, activations=True)
    return [masks, dispatch], [combine]


def _moe_specs(shape: ModelShape, shard: Shard, precision: str,
               fused: bool = False) -> list[_Spec]:
    """Norm, router (``h -> E`` on ``T/t`` rows), dispatch, grouped expert GEMMs, combine,
    shared experts (TP-split dense MLP of width ``S f_e``), residual.

    Training permutes (``R`` copies received, ``S`` sent, ``T/t`` token rows): a fused
    dispatch kernel (``shard.ep_dedup``) leaves the receiving side's sort into
    local-expert order, ``R`` rows read and written each way; Megatron-Core's
    ``alltoall`` dispatcher adds the sender's permute of every copy (dispatch ``R + S``
    read and written) and its unpermute with the gate-weighted sum (combine ``R + S``
    read, ``R + T/t`` written).

    ``fused`` (serving): the inference MoE kernels (vLLM ``fused_moe``, TensorRT-LLM,
    SGLang) gather each expert's rows by index inside the grouped GEMM, so there is no
    dispatch permutation; the combine reads each token's ``K`` expert outputs and writes
    one row."""
    h, tp, T = float(shape.hidden), _f(shard.tp), _f(shard.tokens)
    rows_sp, rows_moe = T / _t_sp(shard), T / tp
    load = expert_load(shape, shard)
    active = _f(load.active_experts)
    f_e = float(shape.moe_ffn) / _f(shard.etp)
    sent = rows_moe * shape.moe_top_k * _f(load.slot_fraction)  # copies leaving the chip
    padded = shard.capacity_factor is not None
    received, groups, m, m_max = _expert_rows(shape, load, padded)
    kind: OpKind = EXPERT_KIND[padded]
    einsums = _einsum_dispatch_specs(shape, shard, rows_moe) \
        if shard.einsum_dispatch and not fused else None
    up, down = (shape.mlp_mats - 1) * f_e, f_e
    one_by_one = 1.0 - np.asarray(shard.grouped_gemm, dtype=np.float64)
    plain = 1.0 - np.asarray(shard.ep_dedup, dtype=np.float64)
    specs: list[_Spec] = [
        _Elem("norm_mlp", "norm", rows_sp * h, 1.0, NORM_FLOPS_PER_ELEMENT),
        _Gemm("router", "router", rows_moe, _f(float(shape.moe_experts)), _f(h), HIGH_PRECISION),
        # alltoall: permute before the all-to-all, then sort by local expert after it;
        # a fused dispatch kernel: the receiving side's sort alone; one-hot einsums
        *(einsums[0] if einsums else [] if fused else [
            _Permute("dispatch", received + plain * sent, received + plain * sent, h)]),
        _Gemm("experts_up", kind, m, up, _f(h), precision, groups=groups,
              weight_groups=active, m_max=m_max, one_by_one=one_by_one, grad_fused=True),
        _activation("experts_act", shape, received * f_e),
        _Gemm("experts_down", kind, m, _f(h), down, precision, groups=groups,
              weight_groups=active, m_max=m_max, one_by_one=one_by_one, input_fused=True),
        # unsort; alltoall: then unpermute with the gate-weighted sum of each token's
        # copies (a fused combine kernel sums them itself)
        *(einsums[1] if einsums else [
            _Permute("combine", sent if fused else received + plain * sent,
                     rows_moe if fused else received + plain * rows_moe, h,
                     flops=COMBINE_FLOPS_PER_ELEMENT * sent * h)]),
    ]
    if shape.moe_shared:
        f_s = shape.moe_shared * float(shape.moe_ffn) / tp
        specs += [
            _Gemm("shared_up", "gemm", T, (shape.mlp_mats - 1) * f_s, _f(h), precision,
                  input_fused=True, grad_fused=True),
            _activation("shared_act", shape, T * f_s),
            _Gemm("shared_down", "gemm", T, _f(h), f_s, precision, input_fused=True),
        ]
    specs.append(_Elem("residual_mlp", "elementwise", rows_sp * h, 2.0,
                       RESIDUAL_FLOPS_PER_ELEMENT))
    return specs


def _expert_rows(shape: ModelShape, load: ExpertLoad, padded: bool
                 ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """(routed copies a chip computes, expert groups its grouped GEMM runs, rows per
    group at mean load, rows of the busiest rank's hot group) for the expert GEMMs.

    Dropless: the ragged groups of the grouped-GEMM path. Experts that receive no token
    are skipped by the grouped kernel (small decode batches); in training every local
    expert is hit and the groups are ``E/e`` at mean load. The busiest rank holds the
    most loaded expert and ``G - 1`` others that share what is left of the ``E``
    experts' copies; the cost model reads ``m_max + (G - 1) m`` as that rank's rows, so
    ``m_max`` carries the difference (all ``E`` local: exactly ``E m``).

    ``padded`` to capacity: every local expert computes its ``C`` rows, the same on every
    rank and every step, as one dense GEMM of static shape, and its ``C`` slots, kept
    copies or padding, are what the permutes and the all-to-all move
    (:data:`EXPERT_KIND`)."""
    local = _f(load.local_experts)
    if padded:
        groups = np.maximum(local, 1.0)
        m = _f(load.slot_fraction) * _f(load.routed_mean)
        return groups * m, groups, m, m
    received = local * _f(load.kept_mean)
    groups = np.maximum(_f(load.active_experts), np.minimum(local, 1.0))
    m = received / groups
    E = float(shape.moe_experts)
    hot = _f(load.kept_max)
    others = np.maximum(E * _f(load.kept_mean) - hot, 0.0) / max(E - 1.0, 1.0)
    rank_rows = hot + (local - 1.0) * others
    return received, groups, m, np.maximum(rank_rows - (groups - 1.0) * m, m)


def _check(shape: ModelShape, phase: str, shard: Shard, precision: str,
           layer: int | None = None) -> None:
    """SpecError naming every input no operator list can be built from."""
    problems: list[Problem] = []
    if phase not in PHASES:
        problems.append(Problem("argument", "phase", f"expected one of {', '.join(PHASES)}",
                                phase))
    if precision not in GEMM_INPUT_BYTES:
        problems.append(Problem("argument", "precision",
                                f"expected one of {', '.join(GEMM_INPUT_BYTES)}", precision))
    if layer is not None and not 0 <= layer < shape.n_layers:
        problems.append(Problem("argument", "layer",
                                f"must be from 0 to {shape.n_layers - 1}", layer))
    if _any_above(shard.tp, shape.n_heads):
        problems.append(Problem(_WHERE, "tp", f"must be at most n_heads = {shape.n_heads}",
                                shard.tp))
    if shape.mixer is not None and _any_above(shard.tp, shape.mixer.heads):
        problems.append(Problem(_WHERE, "tp", f"must be at most the mixer's heads = "
                                f"{shape.mixer.heads}", shard.tp))
    if shape.is_moe and _any_above(shard.ep, shape.moe_experts):
        problems.append(Problem(_WHERE, "ep", f"must be at most moe_experts = "
                                f"{shape.moe_experts}", shard.ep))
    if not shard.fused_attention and phase in ("prefill", "decode"):
        problems.append(Problem(_WHERE, "fused_attention", "the unfused attention core is "
                                "modelled for training only; use true in serving",
                                shard.fused_attention))
    if phase == "decode" and _any_other(shard.cp, 1.0):
        problems.append(Problem(_WHERE, "cp", "context parallelism is not modelled in "
                                "decode; use cp = 1", shard.cp))
    if problems:
        raise SpecError(problems)


def layer_operators(shape: ModelShape, phase: Phase, shard: Shard, *, layer: int = 0,
                    precision: str = "bf16", weight_precision: str | None = None,
                    kv_precision: str | None = None,
                    expert_weight_precision: str | None = None,
                    state_precision: str | None = None,
                    attention_precision: str | None = None) -> tuple[Operator, ...]:
    """The operators of transformer layer ``layer`` (0-based) on one chip.

    ``phase``: ``"forward"`` and ``"prefill"`` (the same forward operators; prefill keys
    may include a cached prefix), ``"backward"`` (in reverse order; each GEMM as a
    ``.dgrad`` and a ``.wgrad`` of the forward FLOPs, attention 2.5x, elementwise
    operators 2x), ``"decode"`` (``seq_len`` new tokens per sequence attending a cache of
    ``kv_len``; MLA in its absorbed form). Whether the layer is MoE, windowed or a
    recurrent mixer follows :func:`is_moe_layer`, :func:`is_windowed_layer` and
    :func:`is_mixer_layer`; a layer of a layer pattern holds its one block
    (:func:`is_attention_layer`, :func:`has_mlp`).

    Forward GEMM FLOPs of a layer with ``t = 1`` (and no capacity drops) sum to
    ``2 T (P_attn + P_mlp)``, with ``P_mlp`` the active MLP parameters (router included):
    the engine's per-layer formula (docs/model.md).

    Serving formats: ``weight_precision`` (default ``precision``) sets the bytes of the
    GEMM weights read (weight-only quantization: int4 weights into a bf16 GEMM),
    ``expert_weight_precision`` (default ``weight_precision``) those of the routed
    experts' grouped GEMMs (MXFP4 experts beside 16-bit attention, as gpt-oss ships);
    ``kv_precision`` (default 16-bit) the bytes of the KV cache a decode step reads,
    ``state_precision`` (default the release's) those of a recurrent mixer's cached state
    that prefill and decode read and write; ``attention_precision`` (default 16-bit) the
    format the prefill attention's matmuls run in.

    Raises
    ------
    SpecError
        Unknown phase or precision, layer out of range, ``tp > n_heads``,
        ``ep > moe_experts``, or ``cp > 1`` in decode.
    """
    _check(shape, phase, shard, precision, layer)
    _check_formats(weight_precision, kv_precision, state_precision, attention_precision)
    _check_formats(expert_weight_precision, None)
    fwd_phase: Phase = "forward" if phase == "backward" else phase
    specs: list[_Spec] = []
    if is_mixer_layer(shape, layer):
        specs += _mixer_specs(shape, fwd_phase, shard, precision, state_precision)
    elif is_attention_layer(shape, layer):
        specs += _attention_specs(shape, fwd_phase, shard, is_windowed_layer(shape, layer),
                                  precision)
    if has_mlp(shape, layer):
        specs += _moe_specs(shape, shard, precision, fused=phase in ("prefill", "decode")) \
            if is_moe_layer(shape, layer) else _dense_mlp_specs(shape, shard, precision)
    return _emit(_with_formats(specs, phase, weight_precision, kv_precision,
                               expert_weight_precision, attention_precision), phase)


def attention_operator(shape: ModelShape, phase: Phase, shard: Shard, *, layer: int = 0,
                       precision: str = "bf16", kv_precision: str | None = None,
                       attention_precision: str | None = None) -> Operator:
    """The attention operator of :func:`layer_operators` alone (``phase`` ``"prefill"``
    or ``"decode"``), without building the layer's other operators."""
    _check(shape, phase, shard, precision, layer)
    _check_formats(None, kv_precision, None, attention_precision)
    specs: list[_Spec] = [spec for spec in _attention_specs(
        shape, phase, shard, is_windowed_layer(shape, layer), precision)
        if isinstance(spec, _Attn)]
    (op,) = _emit(_with_formats(specs, phase, None, kv_precision, None,
                                attention_precision), phase)
    return op


def mixer_operator(shape: ModelShape, phase: Phase, shard: Shard, *, layer: int,
                   state_precision: str | None = None) -> Operator:
    """The recurrent core of :func:`layer_operators` alone (``phase`` ``"prefill"`` or
    ``"decode"``) for a hybrid model's mixer layer ``layer``, its state cached in
    ``state_precision`` (default the release's)."""
    _check(shape, phase, shard, HIGH_PRECISION, layer)
    _check_formats(None, None, state_precision)
    assert is_mixer_layer(shape, layer), f"layer {layer} attends"
    mx = shape.mixer
    assert mx is not None
    (op,) = _emit([_scan_core(mx, phase, shard, _mixer_split(mx, _f(shard.tp)),
                              _state_bytes(mx, state_precision))], phase)
    return op


def _check_formats(weight_precision: str | None, kv_precision: str | None,
                   state_precision: str | None = None,
                   attention_precision: str | None = None) -> None:
    problems = []
    if weight_precision is not None and weight_precision not in GEMM_INPUT_BYTES:
        problems.append(Problem("argument", "weight_precision",
                                f"expected one of {', '.join(GEMM_INPUT_BYTES)}",
                                weight_precision))
    if kv_precision is not None and kv_precision not in KV_BYTES:
        problems.append(Problem("argument", "kv_precision",
                                f"expected one of {', '.join(KV_BYTES)}", kv_precision))
    if attention_precision is not None and attention_precision not in ATTENTION_FORMATS:
        problems.append(Problem("argument", "attention_precision",
                                f"expected one of {', '.join(ATTENTION_FORMATS)}",
                                attention_precision))
    if state_precision is not None and state_precision not in STATE_BYTES:
        problems.append(Problem("argument", "state_precision",
                                f"expected one of {', '.join(STATE_BYTES)}", state_precision))
    if problems:
        raise SpecError(problems)


def _with_formats(specs: list[_Spec], phase: Phase, weight_precision: str | None,
                  kv_precision: str | None, expert_weight_precision: str | None = None,
                  attention_precision: str | None = None) -> list[_Spec]:
    """The specs with the serving formats applied: weights of the workload-precision
    GEMMs (not the 16-bit router and head) in ``weight_precision``, the routed experts'
    in ``expert_weight_precision`` where given; the cached K/V a decode step reads in
    ``kv_precision`` (prefill attends its own fresh K/V, counted at 16 bits whatever the
    attention's format: its matmuls bind it); the prefill attention's matmuls in
    ``attention_precision`` where given (a decode step's attention is timed on the 16-bit
    path: it is bound by the cache it reads)."""
    out: list[_Spec] = []
    kv_scale = KV_BYTES[kv_precision] / ACT_BYTES if kv_precision else 1.0
    for spec in specs:
        own = expert_weight_precision if isinstance(spec, _Gemm) \
            and spec.kind == "grouped_gemm" and expert_weight_precision else weight_precision
        if isinstance(spec, _Gemm) and own and spec.kind != "router":
            spec = replace(spec, weight_precision=own)
        elif isinstance(spec, _Attn):
            if phase == "decode" and kv_scale != 1.0:
                spec = replace(spec, kv_read_bytes=spec.kv_read_bytes * kv_scale)
            if phase == "prefill" and attention_precision:
                spec = replace(spec, precision=attention_precision)
        out.append(spec)
    return out


def embedding_operators(shape: ModelShape, phase: Phase, shard: Shard,
                        precision: str = "bf16") -> tuple[Operator, ...]:
    """Input embedding (Megatron vocab-parallel): each TP rank looks up the ``T`` tokens
    in its ``V/t`` rows, reading the ``T h / t`` rows it holds and writing a ``T x h``
    partial sum (the reduction is a collective). Backward (``"embed.wgrad"``): reads the
    ``T x h`` gradient and scatter-adds ``T h / t`` rows into the fp32 main grad. No
    FLOPs counted."""
    _check(shape, phase, shard, precision)
    h, T, tp = float(shape.hidden), _f(shard.tokens), _f(shard.tp)
    if phase == "backward":
        acc = T * h / tp * WGRAD_ACCUM_BYTES
        return (Operator("embed.wgrad", "embedding", 0.0, _out(T * h * ACT_BYTES + acc),
                         _out(acc), HIGH_PRECISION, m=_out(T), n=h),)
    return (Operator("embed", "embedding", 0.0, _out(T * h / tp * ACT_BYTES),
                     _out(T * h * ACT_BYTES), HIGH_PRECISION, m=_out(T), n=h),)


def head_operators(shape: ModelShape, phase: Phase, shard: Shard,
                   precision: str = "bf16") -> tuple[Operator, ...]:
    """Final norm, LM head (``h -> V/t``, column parallel, 16-bit) and, in training, the
    fused vocab-parallel cross-entropy over the ``T x V/t`` logits. Prefill and decode
    compute logits for the last position of each sequence only (``m = b``)."""
    _check(shape, phase, shard, precision)
    h, tp, T = float(shape.hidden), _f(shard.tp), _f(shard.tokens)
    training = phase in ("forward", "backward")
    rows = T if training else _f(shard.batch) + 0.0 * T
    vocab = float(shape.vocab) / tp
    specs: list[_Spec] = [
        _Elem("norm_final", "norm", T / _t_sp(shard) * h, 1.0, NORM_FLOPS_PER_ELEMENT),
        _Gemm("lm_head", "gemm", rows, vocab, _f(h), HIGH_PRECISION),
    ]
    if training:
        specs.append(_Elem("loss", "elementwise", rows * vocab, 1.0,
                           CROSS_ENTROPY_FLOPS_PER_LOGIT, outputs=0.0))
    return _emit(specs, phase)


def mtp_operators(shape: ModelShape, phase: Phase, shard: Shard,
                  precision: str = "bf16") -> tuple[Operator, ...]:
    """The multi-token prediction modules of a training step (``shape.mtp_depth`` of
    them; DeepSeek-V3 technical report §2.2, Eq. 21-23), each named ``mtp<k>.``: the
    embedding of the tokens ``k`` ahead (the model's table), the RMSNorms of that
    embedding and of the previous depth's hidden state, their concatenation projected
    ``2h -> h`` (column parallel, ``2 T h^2 / t`` FLOPs forward), one layer like the
    model's last (:func:`layer_operators`) and the shared output head with its own loss
    (:func:`head_operators`). Empty outside training and for a model without them.

    Their forward FLOPs sum to ``2 T N_mtp / t`` over the module's matmul parameters
    (:attr:`~ocplan.workloads.shape.ModelShape.mtp_matmul_params_per_token`, the output
    head counted again) plus the extra layer's attention."""
    _check(shape, phase, shard, precision)
    if not shape.mtp_depth or phase not in ("forward", "backward"):
        return ()
    h, tp, T = float(shape.hidden), _f(shard.tp), _f(shard.tokens)
    rows = T / _t_sp(shard)
    own = _emit([_Elem("norm_hidden", "norm", rows * h, 1.0, NORM_FLOPS_PER_ELEMENT),
                 _Elem("norm_embed", "norm", rows * h, 1.0, NORM_FLOPS_PER_ELEMENT),
                 _Gemm("proj", "gemm", T, _f(h) / tp, _f(2.0 * h), precision)], phase)
    block = layer_operators(shape, phase, shard, layer=shape.n_layers - 1,
                            precision=precision)
    head = head_operators(shape, phase, shard, precision)
    embed = embedding_operators(shape, phase, shard, precision)
    # the backward runs the module's operators in reverse, as it runs the layers'
    one = (*embed, *own, *block, *head) if phase == "forward" else (*head, *block, *own, *embed)
    return tuple(replace(op, name=f"mtp{k}.{op.name}")
                 for k in range(1, shape.mtp_depth + 1) for op in one)


def layer_totals(ops: Iterable[Operator]) -> tuple[Num, Num]:
    """(FLOP, HBM bytes read + written) summed over ``ops``."""
    flops: Num = 0.0
    moved: Num = 0.0
    for op in ops:
        flops = _out(np.add(flops, op.flops))
        moved = _out(np.add(moved, op.bytes))
    return flops, moved
