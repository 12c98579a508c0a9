"""What one chip of a serving instance holds: weights, KV cache, reserve.

Weights per chip (bytes), for the ``L/p`` layers of a stage:

- attention: ``P_attn / t`` in the weight format (heads split by TP; with DP attention
  ``t`` is the attention TP, usually 1, so each rank holds the whole attention);
- dense MLP layers: ``P_mlp / t``;
- MoE layers: routed experts ``E P_e / (e t_e)`` in the experts' format (gpt-oss ships
  them alone in MXFP4), shared experts ``S P_e / t``, router ``h E`` in 16-bit;
- embedding and LM head in 16-bit, split by TP (vocab parallel) on the first/last stage.

KV cache per token per chip (bytes): GQA ``2 (k / min(t, k)) d b_kv`` per layer (K and V
of the chip's KV heads; replicated when ``t > k``); MLA ``(r_kv + d_r) b_kv`` per layer
(the latent and the RoPE key, read whole by every TP rank: SGLang/vLLM MLA kernels);
windowed layers hold at most ``w`` tokens of a sequence.

Speculative drafts from a model pass (an MTP module, an EAGLE head, a draft model of
``d`` layers' worth: :attr:`~ocplan.workloads.serving.ServingWorkload.draft_layers`)
hold their own weights and KV cache: ``d`` mean layers of the target's shape and their
cache of every token, full attention, on the last stage beside the LM head they share
(vLLM and SGLang keep the draft's cache in the same pool, a page per token of each draft
layer; DeepSeek-V3's MTP module is one layer with its own cache, Liu et al. 2024 §2.2).

Free HBM for the cache = capacity x (1 - reserve) - weights (never negative: what the
weights lack is the shortfall).
"""

from __future__ import annotations

from dataclasses import dataclass

from ocplan.serving.plan import ServingPlan
from ocplan.workloads.memory import ACT_BYTES
from ocplan.workloads.operators import (
    GEMM_INPUT_BYTES,
    KV_BYTES,
    is_attention_layer,
    is_windowed_layer,
    mixer_state_bytes,
)
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.shape import ModelShape

__all__ = ["ServingMemory", "kv_bytes_per_token_per_chip", "serving_memory",
           "weight_bytes_per_chip"]


def weight_bytes_per_chip(shape: ModelShape, plan: ServingPlan, weight_precision: str,
                          draft_layers: int = 0, expert_weight_precision: str | None = None
                          ) -> float:
    """Weight bytes on the most loaded chip of an instance (see the module docstring),
    with ``draft_layers`` mean layers of a draft on the last stage; the routed experts
    in ``expert_weight_precision`` (default ``weight_precision``)."""
    b_w = GEMM_INPUT_BYTES[weight_precision]
    b_e = GEMM_INPUT_BYTES[expert_weight_precision or weight_precision]
    t = float(plan.tp)
    per_stage = shape.n_layers / plan.pp
    dense_share = shape.n_dense_layers / shape.n_layers
    moe_share = shape.n_moe_layers / shape.n_layers
    attn = shape.mean_token_mixer_params / t * b_w
    mlp = shape.dense_mlp_params / t * b_w
    moe = 0.0
    if shape.is_moe:
        # ceil: with ep not dividing the experts the busiest rank holds one more
        routed = -(-shape.moe_experts // plan.ep) * shape.expert_params / plan.etp
        shared = shape.moe_shared * shape.expert_params / t
        moe = routed * b_e + shared * b_w + shape.hidden * shape.moe_experts * ACT_BYTES
    layer = attn + dense_share * mlp + moe_share * moe
    layers = (per_stage + draft_layers) * layer
    vocab = (shape.embedding_params + shape.head_params) / t * ACT_BYTES
    # the first and last stages hold the embedding and the head (one each with pp > 1)
    ends = vocab if plan.pp == 1 else max(shape.embedding_params,
                                          shape.head_params) / t * ACT_BYTES
    return layers + ends


def kv_bytes_per_token_per_chip(shape: ModelShape, plan: ServingPlan, kv_precision: str,
                                context: float, draft_layers: int = 0,
                                state_precision: str | None = None) -> float:
    """KV bytes per cached token on one chip, averaged over a sequence of ``context``
    tokens (windowed layers keep at most their window, a hybrid's recurrent layers their
    fixed state in ``state_precision`` (default the release's),
    :func:`~ocplan.workloads.operators.mixer_state_bytes`, over the
    ``context`` tokens), on the last stage when ``draft_layers`` layers of a draft cache
    it too."""
    b = KV_BYTES[kv_precision]
    if shape.is_mla:
        per_layer = float(shape.mla_kv_rank + shape.mla_rope_dim) * b
    else:
        heads = shape.n_kv_heads / min(plan.tp, shape.n_kv_heads)
        per_layer = 2.0 * heads * shape.head_dim * b
    kept = 0.0
    for i in range(shape.n_layers):
        if not is_attention_layer(shape, i):
            continue
        w = shape.sliding_window if is_windowed_layer(shape, i) else 0
        kept += min(1.0, w / context) if w else 1.0
    # a hybrid's recurrent layers hold a fixed state per sequence, spread over its tokens
    state = mixer_state_bytes(shape, float(plan.tp), state_precision) / max(context, 1.0)
    return (per_layer * kept + state) / plan.pp + per_layer * draft_layers


@dataclass(frozen=True)
class ServingMemory:
    """HBM of one chip, bytes, and what the cache holds per instance."""

    capacity_bytes: float
    reserve_bytes: float
    weight_bytes: float
    kv_bytes: float
    """HBM left for the KV cache on one chip (0 when the weights do not fit)."""
    kv_bytes_per_token: float
    """Per chip, per cached token of a sequence on that chip."""
    kv_tokens: float
    """Tokens the whole instance can cache (0 when the weights do not fit)."""
    shortfall_bytes: float = 0.0
    """HBM the weights lack on one chip, beyond the capacity less the reserve (0 when
    they fit)."""

    @property
    def fits(self) -> bool:
        return self.kv_bytes > 0


def serving_memory(wl: ServingWorkload, plan: ServingPlan, hbm_bytes: float,
                   reserve_fraction: float, context: float) -> ServingMemory:
    """The :class:`ServingMemory` of one chip of an instance of ``plan`` for sequences
    of mean ``context`` tokens."""
    reserve = hbm_bytes * reserve_fraction
    draft = wl.draft_model_layers
    weights = weight_bytes_per_chip(wl.model, plan, wl.weight_format, draft,
                                    wl.expert_weight_format)
    free = hbm_bytes - reserve - weights
    kv = max(0.0, free)
    per_token = kv_bytes_per_token_per_chip(wl.model, plan, wl.kv_precision, context, draft,
                                            wl.state_format)
    ranks = plan.dp if plan.attention_dp else 1
    return ServingMemory(capacity_bytes=hbm_bytes, reserve_bytes=reserve, weight_bytes=weights,
                         kv_bytes=kv, kv_bytes_per_token=per_token,
                         kv_tokens=kv / per_token * ranks, shortfall_bytes=max(0.0, -free))
