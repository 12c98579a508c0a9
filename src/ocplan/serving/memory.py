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

Where the cache goes. The engine keeps ``r_e`` of the HBM for itself
(:data:`ENGINE_RESERVE_FRACTION`, its workspace, activations and graphs), so the weights
must fit in ``F_0 = C (1 - r_e)``; ``F = F_0 - W`` is left for the cache. The fitted
``reserve_fraction`` ``r`` is larger (about 0.3): it also stands in for the batch caps the
published results leave unstated, a cache ``R = C (r - r_e)`` smaller than ``F``.
:func:`kv_room_bytes` takes ``max(F - R, phi F)``: the fitted line wherever published
results were fitted, and never less than the share ``phi`` (:data:`KV_FLOOR_SHARE`) of
``F``, so a deployment the engine runs (weights within ``F_0``) is never refused for
memory the fit only stood in for. A layout's ``memory_percent`` states the engine's
setting: then the cache is all of ``C m - W``.

What the weights lack of ``F_0`` (or of ``C m``) is the shortfall.
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

__all__ = [
    "ENGINE_RESERVE_FRACTION",
    "KV_FLOOR_SHARE",
    "ServingMemory",
    "kv_bytes_per_token_per_chip",
    "kv_room_bytes",
    "serving_memory",
    "weight_bytes_per_chip",
]

#: Share of a chip's HBM a serving engine keeps from the weights and the KV cache by
#: default: vLLM's ``--gpu-memory-utilization`` (``CacheConfig.gpu_memory_utilization``)
#: defaults to 0.9, the share weights, activations and cache may fill together;
#: TensorRT-LLM's ``KvCacheConfig.free_gpu_memory_fraction`` gives the cache 0.9 of what
#: the weights leave. The weights of a deployment these engines run fit in the rest.
ENGINE_RESERVE_FRACTION = 0.10
#: Least share of what the weights leave of the engine's HBM that the cache keeps under
#: the fitted reserve. The published results reach down to about a quarter (Llama 3.1
#: 405B and Llama 4 Maverick, FP8 at TP 8 on H100s, weights 63-64 % of HBM: the fitted
#: line leaves their cache 0.245-0.28 of it); below that share the fit has no data, so
#: the cache keeps it rather than vanish. Set at 0.2 so that no published result sits on it:
#: an estimate that does says it extrapolates (:attr:`ServingMemory.on_floor`).
KV_FLOOR_SHARE = 0.2


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
    held_back_bytes: float = 0.0
    """HBM left after the weights and the engine's reserve that the fitted reserve keeps
    from the cache (it stands in for unstated batch caps; 0 under ``memory_percent``)."""
    on_floor: bool = False
    """The cache is the floor share :data:`KV_FLOOR_SHARE` of what the weights leave:
    tighter than any published result the reserve was fitted on."""

    @property
    def fits(self) -> bool:
        return self.kv_bytes > 0


def kv_room_bytes(free_bytes: float, fitted_bytes: float) -> float:
    """KV-cache bytes of one chip, ``max(F - R, phi F)`` (0 at ``F <= 0``), where ``F`` =
    ``free_bytes`` is what the weights leave of the engine's share, ``F - R`` =
    ``fitted_bytes`` what they leave of the fitted one (``C (1 - r) - W``) and ``phi`` =
    :data:`KV_FLOOR_SHARE` (module docstring). Increasing in ``F``; ``F`` when the two
    shares are one."""
    assert fitted_bytes <= free_bytes, (fitted_bytes, free_bytes)
    if free_bytes <= 0.0:
        return 0.0
    return max(fitted_bytes, KV_FLOOR_SHARE * free_bytes)


def serving_memory(wl: ServingWorkload, plan: ServingPlan, hbm_bytes: float,
                   reserve_fraction: float, context: float) -> ServingMemory:
    """The :class:`ServingMemory` of one chip of an instance of ``plan`` for sequences
    of mean ``context`` tokens, under the fitted ``reserve_fraction`` (the plan's
    ``memory_percent``, when it states one, instead: all it leaves is the cache's)."""
    fitted = plan.reserve_fraction(reserve_fraction)
    engine = fitted if plan.memory_percent is not None else min(ENGINE_RESERVE_FRACTION,
                                                                fitted)
    reserve = hbm_bytes * engine
    draft = wl.draft_model_layers
    weights = weight_bytes_per_chip(wl.model, plan, wl.weight_format, draft,
                                    wl.expert_weight_format)
    free = hbm_bytes - reserve - weights
    # the fitted line as before the engine's share was told apart (bit for bit)
    line = hbm_bytes - hbm_bytes * fitted - weights
    kv = kv_room_bytes(free, line)
    per_token = kv_bytes_per_token_per_chip(wl.model, plan, wl.kv_precision, context, draft,
                                            wl.state_format)
    ranks = plan.dp if plan.attention_dp else 1
    return ServingMemory(capacity_bytes=hbm_bytes, reserve_bytes=reserve, weight_bytes=weights,
                         kv_bytes=kv, kv_bytes_per_token=per_token,
                         kv_tokens=kv / per_token * ranks, shortfall_bytes=max(0.0, -free),
                         held_back_bytes=max(0.0, free) - kv,
                         on_floor=free > 0.0 and kv > line)
