"""The engine limits ``trtllm-bench throughput`` gives itself.

TensorRT-LLM's benchmark does not run with the engine's defaults: before a throughput
run it sizes the engine from the model, the parallel mapping and the dataset's target
lengths (``tensorrt_llm/bench/build/tuning.py``, ``calc_engine_setting`` and
``finetune_setting``, TensorRT-LLM 0.17-1.x, github.com/NVIDIA/TensorRT-LLM). It
estimates how many requests of the target input plus output length the KV cache holds
when every request keeps its whole sequence, and caps the engine's batch there (rounded
up, "slightly optimistic"); the token budget is that batch's prompt share. So a
``trtllm-bench`` run's batch is held near ``K / (I + O)`` by the sequence cap, below the
``K / (I + O / 2)`` a refilled cache would carry, and the cache rarely overflows.

This module reproduces that rule, so a published ``trtllm-bench`` result (TensorRT-LLM's
perf-overview tables) is predicted with the limits its engine had, not with a cache the
run never filled. Its estimate of the cache is the tool's own, optimistic one: the whole
HBM less the weights (no activations or runtime buffers), times
:data:`KV_CACHE_FRACTION`.
"""

from __future__ import annotations

import math

from ocplan.workloads.shape import ModelShape

__all__ = ["KV_CACHE_FRACTION", "rule_applies", "trtllm_bench_limits"]

#: ``kv_cache_gpu_mem_fraction`` default of ``calc_engine_setting``.
KV_CACHE_FRACTION = 0.95
#: Bytes per element trtllm-bench assumes by quantization (``BYTES_PER_ELEM``: NVFP4
#: 0.5, FP8 1, anything else 2), for the weights and, separately, the KV cache.
BENCH_BYTES = {"fp4": 0.5, "fp8": 1.0}
UNQUANTIZED_BYTES = 2.0
#: ``finetune_setting``'s caps: the batch (decoder buffers) and the token budget (TRT
#: activation buffers), and the floors of its rounding.
MAX_BATCH = 4096
MAX_TOKENS = 32768
MIN_BATCH = 64
MIN_TOKENS = 2048
#: Batch rounding: multiples of 32 below 256, of 128 below 1,024, else of 256.
BATCH_STEPS = ((256, 32), (1024, 128), (math.inf, 256))
#: Token-budget rounding: multiples of 256 below 4,096, of 512 below 8,192, else 1,024.
TOKEN_STEPS = ((4096, 256), (8192, 512), (math.inf, 1024))


def _round_up(value: float, steps: tuple[tuple[float, int], ...]) -> int:
    """``value`` rounded up to the step of the first band it is below."""
    step = next(s for bound, s in steps if value < bound)
    return int(step * math.ceil(value / step))


def rule_applies(shape: ModelShape) -> bool:
    """Whether :func:`trtllm_bench_limits` is the benchmark's rule for ``shape``: a model
    whose every layer caches keys and values per head. The benchmark sizes an MLA model
    from its configuration's head counts and a hybrid's recurrent state by rules of its
    own (no optimistic rounding), neither reproduced here, so such a run keeps the
    engine's defaults."""
    return not shape.is_mla and shape.n_attention_layers == shape.n_layers


def trtllm_bench_limits(shape: ModelShape, weight_format: str, kv_format: str,
                        hbm_bytes: float, tp: int, pp: int, input_len: float,
                        output_len: float) -> tuple[int, int]:
    """(``max_batch_size``, ``max_num_tokens``) trtllm-bench builds an engine of
    ``tp x pp`` chips of ``hbm_bytes`` each with, for requests of ``input_len`` +
    ``output_len`` tokens.

    ``R = f (n HBM - P b_w) / (2 L max(tp, h_kv) d b_kv (I + O))`` requests fit, ``f`` =
    :data:`KV_CACHE_FRACTION`, ``P`` all parameters, ``L`` attention layers, ``h_kv``
    KV heads of ``d`` channels (a TP shard holds at least one); the batch
    ``B = min(R, 4096) / pp`` rounded up (at least 64) and the budget
    ``min(B (1 + I / O), 32768)`` rounded up (at least 2,048)."""
    assert rule_applies(shape), "an MLA or hybrid model: not the benchmark's rule"
    assert tp >= 1, tp
    assert pp >= 1, pp
    assert input_len > 0, input_len
    assert output_len > 0, output_len
    b_w = BENCH_BYTES.get(weight_format, UNQUANTIZED_BYTES)
    b_kv = BENCH_BYTES.get(kv_format, UNQUANTIZED_BYTES)
    per_token = (2.0 * shape.n_attention_layers * max(tp, shape.n_kv_heads)
                 * shape.head_dim * b_kv)
    free = hbm_bytes * tp * pp - shape.total_params * b_w
    requests = max(free, 0.0) * KV_CACHE_FRACTION / (per_token * (input_len + output_len))
    raw_batch = min(requests, MAX_BATCH) / pp
    raw_tokens = min(raw_batch * (1.0 + input_len / output_len), MAX_TOKENS)
    batch = max(MIN_BATCH, _round_up(raw_batch, BATCH_STEPS))
    tokens = max(MIN_TOKENS, _round_up(raw_tokens, TOKEN_STEPS))
    return batch, tokens
