"""Memory formulas: activations per layer and model states per ZeRO stage.

Activations follow V. Korthikanti et al., "Reducing Activation Recomputation in Large
Transformer Models", MLSys 2023 (arXiv:2205.05198), §4 and Table 2, with 16-bit
activations and 1-byte dropout masks. For a GPT layer (MHA, GeLU MLP of width 4h,
dropout) the bytes of one layer for micro-batch b, sequence s, hidden h, heads a and
tensor-parallel size t are

====================================  ===========================================
no parallelism                        ``s*b*h*(34 + 5*a*s/h)``                  (eq. 1)
tensor parallel                       ``s*b*h*(10 + 24/t + 5*a*s/(h*t))``       (eq. 2)
tensor + sequence parallel            ``s*b*h/t*(34 + 5*a*s/h)``                (eq. 4)
+ selective recompute                 ``s*b*h/t*34`` (``s*b*h*(10 + 24/t)`` w/o SP) (eq. 6)
full recompute                        ``2*s*b*h/t`` (``2*s*b*h`` without SP)
====================================  ===========================================

:func:`korthikanti_layer_bytes` is that table verbatim. :func:`layer_activation_bytes`
generalizes the same accounting term by term to GQA/MLA attention widths, SwiGLU and
MoE MLPs, optional dropout and flash attention, and reduces exactly to the table for a
GPT layer (a unit test checks it).

Model states follow S. Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training
Trillion Parameter Models", SC'20 (arXiv:1910.02054), §3 / Figure 1: mixed-precision
Adam holds 2 bytes of parameters, 2 of gradients and K = 12 of optimizer state (fp32
master weights, momentum and variance) per parameter, and stages 1/2/3 partition the
optimizer states / + gradients / + parameters over the N_d data-parallel ranks.

All functions accept floats or numpy arrays (search evaluates many layouts at once).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ocplan.workloads.shape import ModelShape

__all__ = [
    "ACT_BYTES",
    "GRAD_BYTES",
    "GRAD_REDUCE_BYTES",
    "GRAD_REDUCE_BYTES_BF16",
    "GRAD_REDUCE_BYTES_DEFAULT",
    "MASK_BYTES",
    "OPTIMIZER_BYTES",
    "PARAM_BYTES",
    "grad_reduce_bytes",
    "korthikanti_layer_bytes",
    "layer_activation_bytes",
    "mixer_activation_bytes_per_token",
    "mla_up_bytes",
    "model_state_bytes",
    "norm_act_bytes",
    "qkv_activation_bytes",
]

#: ZeRO paper §3: fp16/bf16 parameters and gradients, K = 12 bytes of Adam state.
PARAM_BYTES = 2.0
GRAD_BYTES = 2.0
OPTIMIZER_BYTES = 12.0
#: Bytes per gradient element the data-parallel reduction moves, by training precision:
#: fp32 unless the run trains in fp16. Megatron-LM forces ``accumulate_allreduce_grads_
#: in_fp32`` for bf16 ("accumulate and all-reduce gradients in fp32 for bfloat16 data
#: type", ``megatron/training/arguments.py``; the grad buffer is then float32,
#: ``param_and_grad_buffer.py``) unless ``--grad-reduce-in-bf16``, Megatron-Bridge's
#: general recipes and NeMo's set ``grad_reduce_in_fp32``, torchtitan's FSDP2 reduces in
#: float32, and MaxText keeps fp32 weights, so fp32 gradients; fp16 training keeps 16-bit
#: gradients under loss scaling (Megatron's default without the flag). 8-bit runs reduce
#: their bf16/fp32 master gradients like bf16 runs. A layout that reduces in bf16
#: (``Plan.grad_reduce_bf16``: Megatron-Bridge's performance recipes) moves
#: :data:`GRAD_REDUCE_BYTES_BF16`.
GRAD_REDUCE_BYTES = {"fp16": 2.0}
GRAD_REDUCE_BYTES_DEFAULT = 4.0
GRAD_REDUCE_BYTES_BF16 = 2.0
#: Korthikanti §4.1: activations stored in 16-bit, dropout masks in one byte.
ACT_BYTES = 2.0
MASK_BYTES = 1.0

Num = Any  # float or numpy array


def korthikanti_layer_bytes(s: Num, b: Num, h: Num, a: Num, t: Num = 1,
                            sp: Num = False, recompute: str = "none") -> Num:
    """Activation bytes of one GPT layer, Korthikanti et al. 2022 Table 2 (verbatim).

    Parameters
    ----------
    s, b, h, a
        Sequence length, micro-batch size, hidden size, attention heads.
    t
        Tensor-parallel size.
    sp
        Sequence parallelism on (``t > 1``).
    recompute
        ``"none"``, ``"selective"`` or ``"full"``.
    """
    sp_ = np.asarray(sp, dtype=bool)
    if recompute == "full":
        return np.where(sp_, 2 * s * b * h / t, 2 * s * b * h)
    if recompute == "selective":
        return np.where(sp_, s * b * h * 34 / t, s * b * h * (10 + 24 / t))
    assert recompute == "none", recompute
    return np.where(sp_, s * b * h / t * (34 + 5 * a * s / h),
                    s * b * h * (10 + 24 / t + 5 * a * s / (h * t)))


def layer_activation_bytes(shape: ModelShape, s: Num, b: Num, t: Num, sp: Num, cp: Num,
                           recompute_full: Num, recompute_selective: Num, flash: Num,
                           moe_layer: bool, ep_tokens_factor: Num = 1.0,
                           gemm_input_bytes: float = ACT_BYTES) -> Num:
    """Activation bytes one chip stores for one layer of one micro-batch.

    The terms of Korthikanti §4.1 per token, in bytes (2-byte values, 1-byte masks):

    - replicated across TP unless SP: two LayerNorm inputs ``2*2h``, QKV input ``2h``,
      MLP input ``2h``, and two dropout masks ``2*h`` (when the recipe uses dropout);
    - sharded by TP: Q ``2*a*d_qk``, K ``2*k*d_qk``, V ``2*k*d_v``, attention output
      ``2*a*d_v``; MLP: first-layer output(s) ``2*(m-1)*f`` and activation output ``2*f``
      (GeLU: 8h + 8h at f = 4h); MoE: the same per routed copy of the token (top-k) and
      per shared expert, plus the dispatched input ``2h`` per copy;
    - attention scores (not with flash attention, and dropped by selective recompute):
      ``5*a*s`` per token (softmax 2, dropout mask 1, dropout output 2), ``2*a*s`` without
      dropout (the softmax output alone);
    - an attention output gate: its ``a*d_v`` gate values;
    - a hybrid model: the attention terms at the attention layers' share of the layers,
      the recurrent mixer's (:func:`mixer_activation_bytes_per_token`) at the rest;
    - a model with a layer pattern (one block per layer): each block's terms (its norm,
      residual input, GEMM input and mask; its attention, mixer or MLP terms) at the share
      of the MoE or the other layers that hold it
      (:meth:`~ocplan.workloads.shape.ModelShape.token_share`, ``mlp_share``).

    ``cp`` context-parallel ranks each hold ``s/cp`` tokens. Full recompute keeps only
    the layer input (``2h``, divided by t with SP). ``recompute_*``, ``sp`` and ``flash``
    may be boolean arrays. ``gemm_input_bytes`` is the width of the tensors saved only as
    GEMM inputs (QKV and MLP inputs, attention output, activation output): 1 in fp8
    training, where Transformer Engine saves the 8-bit cast for the backward GEMM.
    """
    h, a, k = shape.hidden, shape.n_heads, shape.n_kv_heads
    d_qk, d_v = shape.qk_dim, shape.v_dim
    tokens = s * b / cp
    mask = MASK_BYTES if shape.dropout else 0.0
    g = gemm_input_bytes
    tok, mlp_w = shape.token_share(moe_layer), shape.mlp_share(moe_layer)
    replicated = (tok + mlp_w) * (ACT_BYTES * h + g * h + mask * h)
    attn = ACT_BYTES * (a * d_qk + k * d_qk + k * d_v) + g * a * d_v \
        + (ACT_BYTES * a * d_v if shape.attn_gate else 0.0)
    share = tok * shape.attention_fraction
    if moe_layer:
        m, f = shape.mlp_mats, shape.moe_ffn
        per_copy = g * h + ACT_BYTES * (m - 1) * f + g * f
        mlp = (shape.moe_top_k * ep_tokens_factor + shape.moe_shared) * per_copy
    else:
        m, f = shape.mlp_mats, shape.ffn
        mlp = mlp_w * (ACT_BYTES * (m - 1) * f + g * f)
    attn = share * attn + (tok - share) * mixer_activation_bytes_per_token(shape, g)
    per_score = ACT_BYTES + (mask + ACT_BYTES if shape.dropout else 0.0)
    scores = np.where(np.asarray(flash, dtype=bool), 0.0, per_score * a * (s / cp) * share)
    sp_ = np.asarray(sp, dtype=bool)
    stored = np.where(sp_, (replicated + attn + mlp) / t, replicated + (attn + mlp) / t)
    scores_stored = np.where(np.asarray(recompute_selective, dtype=bool), 0.0, scores / t)
    full_input = np.where(sp_, ACT_BYTES * h / t, ACT_BYTES * h)
    per_token = np.where(np.asarray(recompute_full, dtype=bool), full_input,
                         stored + scores_stored)
    return tokens * per_token


def mixer_activation_bytes_per_token(shape: ModelShape,
                                     gemm_input_bytes: float = ACT_BYTES) -> float:
    """Bytes per token (before the TP split) a hybrid model's recurrent-mixer layer saves
    for its backward besides the norm and residual terms it shares with attention: the
    input projection's output (q, k, v, z and the per-head scalars, the convolution's
    input), the convolution's output (the scan's q, k, v), the scan's output (the gated
    norm's input), all 16-bit, and the gated norm's output at ``gemm_input_bytes`` (the
    output projection's input). The chunked kernels recompute their chunk states in
    the backward rather than save them (:data:`~ocplan.workloads.mixers.SCAN_BWD_FACTOR`),
    and a kind whose backward recomputes the convolution (``recompute_conv``: Mamba-2)
    does not keep its output. 0 without a mixer."""
    mx = shape.mixer
    if mx is None:
        return 0.0
    conv_out = 0 if mx.law.recompute_conv else mx.conv_channels
    return ACT_BYTES * (mx.in_proj_width + conv_out + mx.value_width) \
        + gemm_input_bytes * mx.value_width


def grad_reduce_bytes(precision: str, in_bf16: Num = False) -> Num:
    """Bytes per gradient element a data-parallel reduction moves for a run trained in
    ``precision`` (:data:`GRAD_REDUCE_BYTES`), or :data:`GRAD_REDUCE_BYTES_BF16` where
    the layout reduces in bf16 (``in_bf16``, per layout). The stored gradients of the
    memory model stay at :data:`GRAD_BYTES` (the ZeRO paper's convention)."""
    default = GRAD_REDUCE_BYTES.get(precision, GRAD_REDUCE_BYTES_DEFAULT)
    return np.where(in_bf16, min(default, GRAD_REDUCE_BYTES_BF16), default)


def norm_act_bytes(shape: ModelShape, s: Num, b: Num, t: Num, sp: Num, cp: Num,
                   moe_layer: bool, ep_tokens_factor: Num = 1.0,
                   gemm_input_bytes: float = ACT_BYTES) -> Num:
    """Bytes of one layer and micro-batch on one chip that recomputing the layer norms
    and the experts' activation (Megatron-Core ``--recompute-modules layernorm moe_act``)
    does not keep: the two norm outputs, saved as the QKV and MLP inputs (``2 h`` per
    token, replicated across TP unless SP), and in a MoE layer the activation output of
    each routed copy, saved as the down projection's input (``f`` per copy, sharded by
    TP): the matching terms of :func:`layer_activation_bytes` (Korthikanti §4.1), at
    ``gemm_input_bytes`` each. Shared experts and dense MLPs keep theirs (``moe_act``
    covers the routed experts only)."""
    g = gemm_input_bytes
    norms = g * (shape.token_share(moe_layer) + shape.mlp_share(moe_layer)) * shape.hidden
    act = shape.moe_top_k * ep_tokens_factor * g * shape.moe_ffn if moe_layer else 0.0
    per_token = np.where(np.asarray(sp, dtype=bool), norms / t, norms) + act / t
    return s * b / cp * per_token


def mla_up_bytes(shape: ModelShape, s: Num, b: Num, t: Num, cp: Num) -> Num:
    """Bytes of one layer and micro-batch on one chip that recomputing the MLA
    up-projections and RoPE (Megatron-Core ``--recompute-modules mla_up_proj``) does not
    keep: the query, key and value heads (:func:`qkv_activation_bytes`), rebuilt from
    the latents (which the formula of :func:`layer_activation_bytes` does not count, as
    the layer keeps them either way); 0 for a model without multi-head latent
    attention."""
    if not shape.is_mla:
        return 0.0
    return qkv_activation_bytes(shape, s, b, t, cp)


def qkv_activation_bytes(shape: ModelShape, s: Num, b: Num, t: Num, cp: Num) -> Num:
    """Bytes of one layer's query, key and value projections for one micro-batch on one
    chip, ``s b / c * 2 (a d_qk + k d_qk + k d_v) / t``: the Q, K, V term of
    :func:`layer_activation_bytes` (Korthikanti §4.1), what a recompute mode keeping the
    projections saves beyond the layer input (MaxText ``save_qkv_proj``); with a layer
    pattern, at the share of its non-MoE layers that hold a token mixer."""
    h_qkv = shape.n_heads * shape.qk_dim + shape.n_kv_heads * (shape.qk_dim + shape.v_dim)
    return s * b / cp * ACT_BYTES * h_qkv / t * shape.token_share(False)


def model_state_bytes(params: Num, zero_stage: Num, dp: Num,
                      optimizer_bytes: float = OPTIMIZER_BYTES) -> tuple[Num, Num, Num]:
    """(parameter, gradient, optimizer) bytes per chip for ``params`` parameters held by
    a data-parallel group of ``dp`` ranks under ZeRO ``zero_stage`` (ZeRO paper Fig. 1):

    stage 0: ``2P, 2P, 12P``; 1: ``2P, 2P, 12P/N_d``; 2: ``2P, 2P/N_d, 12P/N_d``;
    3: ``2P/N_d, 2P/N_d, 12P/N_d``. ``optimizer_bytes`` replaces K = 12 for recipes
    that keep less state (bf16 moments without an fp32 master: 4).
    """
    z = np.asarray(zero_stage)
    params_b = np.where(z >= 3, PARAM_BYTES * params / dp, PARAM_BYTES * params)
    grads_b = np.where(z >= 2, GRAD_BYTES * params / dp, GRAD_BYTES * params)
    optim_b = np.where(z >= 1, optimizer_bytes * params / dp, optimizer_bytes * params)
    return params_b, grads_b, optim_b
