"""Operators as data (ocplan.workloads.operators): FLOPs, bytes, shapes and splits."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ocplan.catalog.catalog import BUILTIN_DIR, load_catalog
from ocplan.catalog.schema import ModelArch
from ocplan.errors import SpecError
from ocplan.workloads.operators import (
    PHASES,
    Operator,
    Shard,
    embedding_operators,
    expert_load,
    head_operators,
    is_moe_layer,
    is_windowed_layer,
    keys_per_query,
    kv_cache_bytes,
    kv_cache_bytes_per_token,
    kv_cache_bytes_per_token_per_layer,
    layer_operators,
    layer_totals,
    windowed_layer_count,
)
from ocplan.workloads.shape import ModelShape

CAT = load_catalog(use_env=False)
GEMM_KINDS = ("gemm", "grouped_gemm", "router")
NUMERIC = ("flops", "bytes_read", "bytes_written", "m", "n", "k", "groups", "m_max",
           "seq_q", "seq_kv", "head_dim_qk", "head_dim_v", "window")
S = 4096


def shape(model_id: str) -> ModelShape:
    return ModelShape.from_arch(CAT.model(model_id))


def raw_yaml(model_id: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(
        (Path(BUILTIN_DIR) / "models" / f"{model_id}.yaml").read_text())
    return data


def gemm_flops(ops: tuple[Operator, ...]) -> float:
    return float(sum(op.flops for op in ops if op.kind in GEMM_KINDS))


def by_name(ops: tuple[Operator, ...]) -> dict[str, Operator]:
    names = [op.name for op in ops]
    assert len(names) == len(set(names)), names
    return {op.name: op for op in ops}


def mlp_active_params(m: ModelShape, layer: int) -> int:
    if is_moe_layer(m, layer):
        return (m.moe_top_k + m.moe_shared) * m.expert_params + m.hidden * m.moe_experts
    return m.dense_mlp_params


# ---- the catalog values the tests rely on ---------------------------------------------


def test_catalog_values_used_here_are_in_the_yaml() -> None:
    llama = raw_yaml("llama3-70b")
    assert (llama["n_layers"], llama["n_kv_heads"], llama["hidden"] // llama["n_heads"]) \
        == (80, 8, 128)
    ds = raw_yaml("deepseek-v3")
    assert (ds["n_layers"], ds["mla"]["kv_lora_rank"], ds["mla"]["qk_rope_head_dim"]) \
        == (61, 512, 64)
    mix = raw_yaml("mixtral-8x7b")
    assert (mix["n_layers"], mix["n_kv_heads"], mix["hidden"] // mix["n_heads"]) \
        == (32, 8, 128)
    oss = raw_yaml("gpt-oss-120b")
    assert (oss["n_layers"], oss["n_kv_heads"], oss["head_dim"], oss["sliding_window"],
            oss["full_attention_every"]) == (36, 8, 64, 128, 2)


def test_full_attention_every_needs_a_window() -> None:
    data = CAT.model("gpt-oss-120b").model_dump(exclude={"sliding_window"})
    with pytest.raises(ValidationError, match="needs sliding_window"):
        ModelArch.model_validate(data)
    assert ModelArch.model_validate({**data, "full_attention_every": None}).sliding_window \
        is None


# ---- forward GEMMs: the engine's 2 T (P_attn + P_mlp) ------------------------------------


@pytest.mark.parametrize(("model_id", "layer"), [
    ("gpt3-175b", 0), ("llama3-8b", 0), ("llama3-70b", 79),
    ("mixtral-8x7b", 5), ("gpt-oss-120b", 1), ("qwen3-30b-a3b", 3),
    ("deepseek-v3", 0), ("deepseek-v3", 40),
])
def test_forward_gemm_flops_equal_twice_tokens_times_params(model_id: str, layer: int) -> None:
    m = shape(model_id)
    one = layer_operators(m, "forward", Shard(tp=1, batch=2, seq_len=S), layer=layer)
    expected = 2.0 * 2 * S * (m.attn_params + mlp_active_params(m, layer))
    assert gemm_flops(one) == pytest.approx(expected, rel=1e-12)
    eight = layer_operators(m, "forward", Shard(tp=8, batch=2, seq_len=S, ep=2), layer=layer)
    # KV heads are replicated when tp > k (Qwen3-30B-A3B has 4): only that part exceeds 1/8
    k = m.n_kv_heads
    replicated = 0.0 if m.is_mla else 2.0 * 2 * S * m.hidden * 2 * m.head_dim * (
        k / min(8, k) - k / 8)
    assert replicated == 0.0 or model_id == "qwen3-30b-a3b"
    assert gemm_flops(eight) == pytest.approx(expected / 8 + replicated, rel=1e-12)


def test_moe_layers_are_where_the_shape_counts_them() -> None:
    for model_id in ("deepseek-v3", "mixtral-8x7b", "qwen3-235b-a22b", "llama3-70b"):
        m = shape(model_id)
        assert sum(is_moe_layer(m, i) for i in range(m.n_layers)) == m.n_moe_layers
    ds = shape("deepseek-v3")
    ops = by_name(layer_operators(ds, "forward", Shard(tp=1, batch=1, seq_len=S), layer=2))
    assert "mlp_up" in ops
    assert "router" not in ops
    ops = by_name(layer_operators(ds, "forward", Shard(tp=1, batch=1, seq_len=S), layer=3))
    assert {"router", "dispatch", "experts_up", "combine", "shared_up"} <= set(ops)


def test_gqa_projection_shapes_and_kv_heads_replicated_beyond_tp() -> None:
    m = shape("llama3-8b")  # 32 heads, 8 KV heads of 128
    qkv = by_name(layer_operators(m, "forward", Shard(tp=8, batch=1, seq_len=S)))["qkv"]
    assert (qkv.m, qkv.k, qkv.n) == (S, 4096, (32 / 8 + 2 * 1) * 128)
    qkv16 = by_name(layer_operators(m, "forward", Shard(tp=16, batch=1, seq_len=S)))["qkv"]
    # 16 > 8 KV heads: one KV head per chip (replicated), queries keep splitting
    assert qkv16.n == (32 / 16 + 2 * 1) * 128


# ---- attention -----------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", ["gpt3-175b", "llama3-70b", "deepseek-v3"])
@pytest.mark.parametrize(("tp", "cp"), [(1, 1), (8, 1), (4, 2)])
def test_attention_flops_are_the_causal_half(model_id: str, tp: int, cp: int) -> None:
    m = shape(model_id)
    shard = Shard(tp=tp, cp=cp, batch=2, seq_len=S)
    attn = by_name(layer_operators(m, "forward", shard))["attn"]
    tokens = 2 * S / cp
    assert attn.flops == pytest.approx(tokens * S * m.n_heads * (m.qk_dim + m.v_dim) / tp,
                                       rel=1e-12)
    assert (attn.groups, attn.seq_q, attn.seq_kv) == (m.n_heads / tp, S / cp, S)
    assert (attn.head_dim_qk, attn.head_dim_v, attn.causal) == (m.qk_dim, m.v_dim, True)


def test_windowed_layers_alternate_like_gpt_oss() -> None:
    m = shape("gpt-oss-120b")
    kinds = [is_windowed_layer(m, i) for i in range(m.n_layers)]
    assert kinds == [True, False] * 18  # HF layer_types: sliding, full, sliding, ...
    assert not any(is_windowed_layer(shape("llama3-70b"), i) for i in range(80))


@pytest.mark.parametrize("s", [4096, 8192, 128, 100])
def test_window_attention_is_smaller_by_the_window_fraction(s: int) -> None:
    m, w = shape("gpt-oss-120b"), 128
    shard = Shard(tp=2, batch=3, seq_len=s)
    windowed = by_name(layer_operators(m, "forward", shard, layer=0))["attn"]
    full = by_name(layer_operators(m, "forward", shard, layer=1))["attn"]
    assert full.flops == pytest.approx(3 * s * s * 64 * 128 / 2, rel=1e-12)
    # every query sees min(w, position) keys: s w - w^2 / 2 of the s^2 / 2 causal half
    fraction = (2 * w / s - (w / s) ** 2) if w < s else 1.0
    assert windowed.flops == pytest.approx(full.flops * fraction, rel=1e-12)
    assert (windowed.window, full.window) == (w, 0)


def test_keys_per_query_limits() -> None:
    assert keys_per_query(1000, 1000) == pytest.approx(500)
    assert keys_per_query(1000, 1000, 1000) == pytest.approx(500)  # window = whole context
    assert keys_per_query(1, 5000, 0, causal=False) == 5000
    assert keys_per_query(1, 5000, 128, causal=False) == 128
    # prefill of 100 new tokens after a 900-token cached prefix: 950 keys on average
    assert keys_per_query(100, 1000) == pytest.approx(950)


# ---- backward ------------------------------------------------------------------------------


@pytest.mark.parametrize(("model_id", "layer"), [("llama3-70b", 0), ("deepseek-v3", 10),
                                                 ("gpt-oss-120b", 0)])
def test_backward_is_twice_the_gemms_and_two_and_a_half_attention(model_id: str,
                                                                   layer: int) -> None:
    m = shape(model_id)
    shard = Shard(tp=4, batch=2, seq_len=S, ep=4, capacity_factor=1.25, imbalance=1.3)
    fwd = by_name(layer_operators(m, "forward", shard, layer=layer))
    bwd = by_name(layer_operators(m, "backward", shard, layer=layer))
    for name, op in fwd.items():
        if op.kind in GEMM_KINDS:
            dgrad, wgrad = bwd[f"{name}.dgrad"], bwd[f"{name}.wgrad"]
            assert dgrad.flops == pytest.approx(op.flops, rel=1e-12)
            assert wgrad.flops == pytest.approx(op.flops, rel=1e-12)
            assert (dgrad.m, dgrad.n, dgrad.k) == (op.m, op.k, op.n)
            assert (wgrad.m, wgrad.n, wgrad.k) == (op.k, op.n, op.m)
        else:
            assert f"{name}.bwd" in bwd
    assert bwd["attn.bwd"].flops == pytest.approx(2.5 * fwd["attn"].flops, rel=1e-12)
    gf = sum(op.flops for op in fwd.values() if op.kind in GEMM_KINDS)
    gb = sum(op.flops for op in bwd.values() if op.kind in GEMM_KINDS)
    assert gb == pytest.approx(2 * gf, rel=1e-12)
    assert next(iter(bwd)) == "residual_mlp.bwd"  # reverse order


# ---- KV cache ------------------------------------------------------------------------------


@pytest.mark.parametrize(("model_id", "per_token"), [
    ("llama3-70b", 80 * 2 * 8 * 128 * 2),   # 327,680 B
    ("deepseek-v3", 61 * (512 + 64) * 2),    # 70,272 B: the MLA latent and the RoPE key
    ("mixtral-8x7b", 32 * 2 * 8 * 128 * 2),  # 131,072 B
    ("gpt-oss-120b", 36 * 2 * 8 * 64 * 2),   # 73,728 B before the window caps half of it
])
def test_kv_cache_bytes_match_published_configs(model_id: str, per_token: int) -> None:
    m = shape(model_id)
    assert kv_cache_bytes_per_token(m) == per_token
    assert kv_cache_bytes_per_token_per_layer(m) * m.n_layers == per_token
    assert kv_cache_bytes_per_token(m, kv_bytes=1) == per_token // 2


def test_kv_cache_of_windowed_layers_stops_growing() -> None:
    m = shape("gpt-oss-120b")
    per_layer = kv_cache_bytes_per_token_per_layer(m)
    assert kv_cache_bytes(m, 100) == 36 * 100 * per_layer
    assert kv_cache_bytes(m, 131072) == (18 * 131072 + 18 * 128) * per_layer
    dense = shape("llama3-70b")
    assert kv_cache_bytes(dense, 8192) == 8192 * kv_cache_bytes_per_token(dense)


# ---- MoE: tokens per local expert, capacity, imbalance -----------------------------------


def experts(m: ModelShape, shard: Shard, layer: int = 0) -> Operator:
    return by_name(layer_operators(m, "forward", shard, layer=layer))["experts_up"]


@pytest.mark.parametrize("ep", [1, 2, 8])
@pytest.mark.parametrize("etp", [1, 2])
def test_tokens_per_local_expert(ep: int, etp: int) -> None:
    m = shape("mixtral-8x7b")  # 8 experts, top-2
    tp, batch = 2, 4
    op = experts(m, Shard(tp=tp, batch=batch, seq_len=S, ep=ep, etp=etp))
    routed = batch * S / tp  # tokens this chip routes (sequence-parallel shard)
    assert op.groups == 8 / ep
    assert op.m == pytest.approx(ep * etp * routed * 2 / 8, rel=1e-12)
    assert (op.n, op.k) == (2 * 14336 / etp, 4096)
    # every chip computes its routed copies' share whatever the split
    assert op.flops == pytest.approx(2 * routed * 2 * (2 * 14336) * 4096, rel=1e-12)


def test_imbalance_scales_the_most_loaded_expert_only() -> None:
    m = shape("deepseek-v3")
    even = experts(m, Shard(tp=1, batch=1, seq_len=S, ep=8), layer=5)
    skew = experts(m, Shard(tp=1, batch=1, seq_len=S, ep=8, imbalance=1.5), layer=5)
    mu = 8 * S * 8 / 256
    assert even.m == even.m_max == pytest.approx(mu)
    # the busiest rank: the hottest expert (1.5 mu) and 31 others sharing what the other
    # 255 experts get, the cost model reading m_max + (G - 1) m as its rows
    rank_rows = 1.5 * mu + 31 * (256 * mu - 1.5 * mu) / 255
    assert skew.m_max + 31 * skew.m == pytest.approx(rank_rows)
    assert skew.m_max > even.m_max
    assert (skew.m, skew.flops) == (even.m, even.flops)  # dropless: nothing lost


def test_capacity_factor_caps_and_drops() -> None:
    """Routing under a capacity: the most loaded expert keeps C = cf mu copies and the
    rest are dropped; the experts' input is padded to the capacity, so every expert
    computes (and the dispatch moves) its C slots whatever the router did, as the
    recipes with a capacity factor run (GShard, MaxText's dense path, Megatron-Core's
    pad-to-capacity)."""
    m = shape("deepseek-v3")
    base = Shard(tp=1, batch=1, seq_len=S, ep=8, imbalance=2.0)
    free = expert_load(m, base)
    mu = 8 * S * 8 / 256
    capped = Shard(tp=1, batch=1, seq_len=S, ep=8, imbalance=2.0, capacity_factor=1.25)
    load = expert_load(m, capped)
    assert free.kept_max == pytest.approx(2 * mu)
    assert load.kept_max == pytest.approx(1.25 * mu)
    # linear loads from 2 mu down to 0: (2 mu - 1.25 mu)^2 / (2 * 2 mu) dropped per expert
    assert load.kept_mean == pytest.approx(mu - (0.75 * mu) ** 2 / (4 * mu))
    padded = experts(m, capped, 5)
    assert padded.m == padded.m_max == pytest.approx(1.25 * mu)
    assert padded.flops == pytest.approx(experts(m, base, 5).flops * 1.25, rel=1e-12)
    # balanced routing under capacity 1.0 keeps everything; under 0.5 half, and the
    # experts compute half the rows
    assert expert_load(m, Shard(tp=1, batch=1, seq_len=S, capacity_factor=1.0)) \
        .kept_fraction == pytest.approx(1.0)
    half = Shard(tp=1, batch=1, seq_len=S, capacity_factor=0.5)
    assert expert_load(m, half).kept_fraction == pytest.approx(0.5)
    assert experts(m, half, 5).flops == pytest.approx(
        0.5 * experts(m, Shard(tp=1, batch=1, seq_len=S), 5).flops, rel=1e-12)
    # the dispatch sorts the C slots of each local expert, kept or padding
    d_free = by_name(layer_operators(m, "forward", base, layer=5))["dispatch"]
    d_cap = by_name(layer_operators(m, "forward", capped, layer=5))["dispatch"]
    assert d_cap.bytes_written == pytest.approx(1.25 * d_free.bytes_written, rel=1e-12)


def test_padded_experts_run_as_dense_gemms_and_dropless_as_grouped() -> None:
    """Padded to capacity the experts are one static-shape GEMM each (the dense path and
    its efficiency); dropless they are the grouped kernel's ragged groups (the calibrated
    grouped-GEMM efficiency carries their per-step costs), at the same FLOPs when the
    capacity is the balanced load."""
    m = shape("grok-1")
    dropless = Shard(tp=4, batch=1, seq_len=8192, cp=2, ep=8, etp=4)
    padded = replace(dropless, capacity_factor=1.0)
    for phase in ("forward", "backward"):
        a = {op.name: op for op in layer_operators(m, phase, dropless, layer=0)}
        b = {op.name: op for op in layer_operators(m, phase, padded, layer=0)}
        for name in [n for n in a if n.startswith("experts_") and a[n].kind != "elementwise"]:
            if a[name].kind in GEMM_KINDS:
                assert (a[name].kind, b[name].kind) == ("grouped_gemm", "gemm"), name
                assert b[name].flops == pytest.approx(a[name].flops, rel=1e-12)


def test_decode_reads_only_the_experts_that_get_tokens() -> None:
    m = shape("deepseek-v3")
    small = expert_load(m, Shard(tp=1, batch=1, seq_len=1, kv_len=1000))
    assert small.active_experts == pytest.approx(8)  # one token: its top-8
    big = expert_load(m, Shard(tp=1, batch=4096, seq_len=1, kv_len=1000))
    assert big.active_experts == pytest.approx(256)


# ---- decode ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("model_id", "tp", "split"), [
    ("llama3-70b", 4, 4), ("llama3-70b", 16, 8), ("deepseek-v3", 8, 1),
    ("mixtral-8x7b", 2, 2)])
def test_decode_attention_reads_the_kv_cache(model_id: str, tp: int, split: int) -> None:
    m = shape(model_id)
    layer = 10

    def attn(batch: int, kv: int) -> Operator:
        shard = Shard(tp=tp, batch=batch, seq_len=1, kv_len=kv, sp=False)
        return by_name(layer_operators(m, "decode", shard, layer=layer))["attn"]

    per_key = kv_cache_bytes_per_token_per_layer(m) / split
    a1, a2 = attn(16, 4000), attn(16, 8000)
    assert a2.bytes_read - a1.bytes_read == pytest.approx(16 * 4000 * per_key, rel=1e-12)
    assert a1.bytes_read - 16 * 4000 * per_key < 0.01 * a1.bytes_read  # KV dominates
    assert attn(32, 4000).bytes_read == pytest.approx(2 * a1.bytes_read, rel=1e-12)
    assert a2.flops == pytest.approx(2 * a1.flops, rel=1e-12)
    assert not a1.causal
    ops = by_name(layer_operators(m, "decode", Shard(tp=tp, batch=16, seq_len=1,
                                                       kv_len=4000, sp=False), layer=layer))
    for name in ("o_proj", "qkv", "q_up", "kv_down", "mlp_up", "shared_down", "router"):
        if name in ops:
            assert ops[name].m == (16 / tp if name == "router" else 16)
    assert "kv_up" not in ops if m.is_mla else "qkv" in ops


def test_decode_gemm_flops_are_params_times_batch() -> None:
    m = shape("deepseek-v3")  # absorbed MLA keeps the weight FLOPs of the kv up-projection
    shard = Shard(tp=1, batch=8, seq_len=1, kv_len=2048)
    ops = layer_operators(m, "decode", shard, layer=0)
    assert gemm_flops(ops) == pytest.approx(2 * 8 * (m.attn_params + m.dense_mlp_params),
                                            rel=1e-12)
    heads = by_name(ops)["attn"]
    assert (heads.head_dim_qk, heads.head_dim_v) == (512 + 64, 512)


def test_windowed_decode_reads_only_the_window() -> None:
    m = shape("gpt-oss-120b")
    shard = Shard(tp=1, batch=4, seq_len=1, kv_len=100_000)
    windowed = by_name(layer_operators(m, "decode", shard, layer=0))["attn"]
    full = by_name(layer_operators(m, "decode", shard, layer=1))["attn"]
    per_key = kv_cache_bytes_per_token_per_layer(m)
    assert windowed.bytes_read == pytest.approx(4 * 128 * per_key + 4 * 64 * 64 * 2)
    assert full.bytes_read == pytest.approx(4 * 100_000 * per_key + 4 * 64 * 64 * 2)


# ---- embedding and head ------------------------------------------------------------------


def test_head_and_embedding() -> None:
    m = shape("llama3-8b")
    shard = Shard(tp=4, batch=2, seq_len=S)
    head = by_name(head_operators(m, "forward", shard))
    assert head["lm_head"].flops == 2 * 2 * S * 4096 * 128256 / 4
    assert "loss" in head
    bwd = by_name(head_operators(m, "backward", shard))
    assert bwd["lm_head.dgrad"].flops == bwd["lm_head.wgrad"].flops == head["lm_head"].flops
    decode = by_name(head_operators(m, "decode", Shard(tp=4, batch=2, seq_len=1, kv_len=9)))
    assert decode["lm_head"].m == 2
    assert "loss" not in decode
    prefill = by_name(head_operators(m, "prefill", Shard(tp=4, batch=2, seq_len=S)))
    assert prefill["lm_head"].m == 2  # logits of the last prompt position only
    (embed,) = embedding_operators(m, "forward", shard)
    assert (embed.kind, embed.flops, embed.bytes_written) == ("embedding", 0.0, 2 * S * 4096 * 2)
    (embed_b,) = embedding_operators(m, "backward", shard)
    assert embed_b.name == "embed.wgrad"


def test_layer_totals_sum_flops_and_bytes() -> None:
    ops = layer_operators(shape("llama3-8b"), "forward", Shard(tp=2, batch=1, seq_len=S))
    flops, moved = layer_totals(ops)
    assert flops == pytest.approx(sum(op.flops for op in ops))
    assert moved == pytest.approx(sum(op.bytes_read + op.bytes_written for op in ops))


# ---- vectorization ------------------------------------------------------------------------


@pytest.mark.parametrize(("model_id", "layer", "phase"), [
    ("llama3-70b", 0, "forward"), ("deepseek-v3", 7, "backward"),
    ("gpt-oss-120b", 0, "decode"), ("mixtral-8x7b", 3, "prefill")])
def test_arrays_equal_scalar_calls(model_id: str, layer: int, phase: str) -> None:
    m = shape(model_id)
    tp = np.array([1.0, 2.0, 4.0, 8.0, 8.0])
    batch = np.array([1.0, 2.0, 3.0, 4.0, 64.0])
    ep = np.array([1.0, 2.0, 8.0, 4.0, 1.0])
    decode = phase == "decode"
    seq, kv = (1.0, 5000.0) if decode else (2048.0, None)
    kw: dict[str, Any] = {"seq_len": seq, "kv_len": kv, "capacity_factor": 1.1}
    vec = layer_operators(m, phase, Shard(tp=tp, batch=batch, ep=ep, imbalance=1.4, **kw),
                          layer=layer)  # type: ignore[arg-type]
    for i in range(len(tp)):
        one = layer_operators(m, phase, Shard(tp=float(tp[i]), batch=float(batch[i]),
                                              ep=float(ep[i]), imbalance=1.4, **kw),
                              layer=layer)  # type: ignore[arg-type]
        assert [op.name for op in one] == [op.name for op in vec]
        for a, b in zip(vec, one, strict=True):
            for field in NUMERIC:
                got = np.broadcast_to(getattr(a, field), tp.shape)[i]
                assert got == pytest.approx(getattr(b, field), rel=1e-12), (a.name, field)
                assert isinstance(getattr(b, field), float)


# ---- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"tp": 0}, "tp"), ({"tp": np.array([1.0, np.nan])}, "tp"), ({"batch": -1}, "batch"),
    ({"kv_len": 100}, "kv_len"), ({"imbalance": 0.5}, "imbalance"),
    ({"capacity_factor": 0.0}, "capacity_factor"),
])
def test_bad_shards_are_refused(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"tp": 1, "batch": 1, "seq_len": 200, **kwargs}
    with pytest.raises(SpecError) as err:
        Shard(**args)
    assert err.value.problems[0].field == field


def test_layouts_no_model_allows_are_refused() -> None:
    m = shape("mixtral-8x7b")
    with pytest.raises(SpecError, match="n_heads"):
        layer_operators(m, "forward", Shard(tp=64, batch=1, seq_len=8))
    with pytest.raises(SpecError, match="moe_experts"):
        layer_operators(m, "forward", Shard(tp=1, ep=16, batch=1, seq_len=8))
    with pytest.raises(SpecError, match="layer"):
        layer_operators(m, "forward", Shard(tp=1, batch=1, seq_len=8), layer=32)
    with pytest.raises(SpecError, match="phase"):
        layer_operators(m, "training", Shard(tp=1, batch=1, seq_len=8))  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="cp"):
        layer_operators(m, "decode", Shard(tp=1, cp=2, batch=1, seq_len=1, kv_len=8))


# ---- property: nothing NaN, infinite or negative --------------------------------------------


@st.composite
def shapes(draw: st.DrawFn) -> ModelShape:
    kv = draw(st.sampled_from([1, 2, 4, 8]))
    heads = kv * draw(st.integers(1, 8))
    moe = draw(st.booleans())
    mla = draw(st.booleans())
    experts = draw(st.integers(2, 64)) if moe else 0
    layers = draw(st.integers(1, 8))
    return ModelShape(
        name="random", n_layers=layers, hidden=draw(st.integers(8, 4096)),
        n_heads=heads, n_kv_heads=heads if mla else kv, head_dim=draw(st.integers(8, 256)),
        ffn=draw(st.integers(1, 16384)), mlp_mats=draw(st.sampled_from([2, 3])),
        vocab=draw(st.integers(2, 300_000)), moe_experts=experts,
        moe_top_k=draw(st.integers(1, experts)) if moe else 0,
        moe_ffn=draw(st.integers(1, 4096)) if moe else 0,
        moe_shared=draw(st.integers(0, 2)) if moe else 0,
        moe_first_dense=draw(st.integers(0, layers - 1)) if moe else 0,
        mla_q_rank=draw(st.sampled_from([0, 64, 1536])) if mla else 0,
        mla_kv_rank=draw(st.integers(16, 512)) if mla else 0,
        mla_nope_dim=draw(st.integers(16, 128)) if mla else 0,
        mla_rope_dim=draw(st.integers(8, 64)) if mla else 0,
        mla_v_dim=draw(st.integers(16, 128)) if mla else 0,
        sliding_window=draw(st.sampled_from([0, 1, 128, 4096])),
        full_attention_every=draw(st.integers(0, 4)))


@settings(max_examples=150, deadline=None)
@given(m=shapes(), phase=st.sampled_from(PHASES), data=st.data())
def test_no_nan_inf_or_negative_field(m: ModelShape, phase: str, data: st.DataObject) -> None:
    tp = data.draw(st.sampled_from([t for t in (1, 2, 4, 8, 16) if t <= m.n_heads]))
    seq = 1 if phase == "decode" else data.draw(st.integers(1, 131072))
    shard = Shard(
        tp=tp, batch=data.draw(st.integers(1, 512)), seq_len=seq,
        kv_len=seq + data.draw(st.integers(0, 100_000)),
        cp=1 if phase == "decode" else data.draw(st.sampled_from([1, 2, 4])),
        ep=data.draw(st.sampled_from([e for e in (1, 2, 4, 8) if e <= max(m.moe_experts, 1)])),
        etp=data.draw(st.sampled_from([1, 2])), sp=data.draw(st.booleans()),
        capacity_factor=data.draw(st.one_of(st.none(), st.floats(0.1, 4.0))),
        imbalance=data.draw(st.floats(1.0, 8.0)))
    layer = data.draw(st.integers(0, m.n_layers - 1))
    ops = (*layer_operators(m, phase, shard, layer=layer),  # type: ignore[arg-type]
           *embedding_operators(m, phase, shard),  # type: ignore[arg-type]
           *head_operators(m, phase, shard))  # type: ignore[arg-type]
    for op in ops:
        for field in NUMERIC:
            value = np.asarray(getattr(op, field), dtype=float)
            assert np.all(np.isfinite(value)), (op.name, field, value)
            assert np.all(value >= 0), (op.name, field, value)
    flops, moved = layer_totals(ops)
    assert np.isfinite(flops)
    assert np.isfinite(moved)
    assert moved > 0


def test_eight_bit_training_casts_only_operands_no_producer_quantizes() -> None:
    """fp8 training: an 8-bit GEMM whose operand comes out of a norm or an activation
    (Transformer Engine's quantized norm and activation outputs) has no cast kernel
    (int8 training keeps them all);
    the others are preceded by one (forward: its input, ``G m k`` elements; backward:
    its output gradient, ``G m n``), 4 bytes per element. Serving phases and 16-bit
    training have none."""
    expected = {
        # MoE layer: attention output and the dispatched rows are cast on their own;
        # in backward, the gradients from attention, the residual and the combine
        ("qwen3-30b-a3b", "forward"): {"o_proj.cast", "experts_up.cast"},
        ("qwen3-30b-a3b", "backward"): {"qkv.cast_grad", "o_proj.cast_grad",
                                        "experts_down.cast_grad"},
        ("llama3-8b", "forward"): {"o_proj.cast"},
        ("llama3-8b", "backward"): {"qkv.cast_grad", "o_proj.cast_grad",
                                    "mlp_down.cast_grad"},
        # MLA: the latent projections read norm outputs; shared experts as a dense MLP
        ("deepseek-v3", "forward"): {"o_proj.cast", "experts_up.cast"},
        ("deepseek-v3", "backward"): {"q_down.cast_grad", "q_up.cast_grad",
                                      "kv_down.cast_grad", "kv_up.cast_grad",
                                      "o_proj.cast_grad", "experts_down.cast_grad",
                                      "shared_down.cast_grad"},
    }
    for (model, phase), names in expected.items():
        shape = ModelShape.from_arch(CAT.model(model))
        shard = Shard(tp=1.0, batch=2.0, seq_len=4096.0,
                      ep=8.0 if shape.is_moe else 1.0)
        ops = layer_operators(shape, phase, shard, layer=3, precision="fp8")
        casts = {o.name: o for o in ops if ".cast" in o.name}
        assert set(casts) == names, (model, phase)
        by_name = {o.name: o for o in ops}
        for name, cast in casts.items():
            base = name.removesuffix(".cast_grad").removesuffix(".cast")
            g = by_name[f"{base}.dgrad" if phase == "backward" else base]
            # dgrad's k is the forward n: the cast covers the forward output gradient
            elements = g.groups * g.m * g.k
            # read 16-bit, write fp8 row-wise and column-wise (fp8 wgrad)
            assert cast.bytes == pytest.approx((2.0 + 1.0 + 1.0) * elements)
    # int8 training (AQT) scales each operand by its own maximum: every GEMM keeps a cast
    shape = ModelShape.from_arch(CAT.model("llama3-8b"))
    ops = layer_operators(shape, "forward", Shard(tp=1.0, batch=2.0, seq_len=4096.0),
                          precision="int8")
    assert {o.name for o in ops if ".cast" in o.name} == {
        f"{o.name}.cast" for o in ops if o.kind == "gemm" and o.precision == "int8"}
    assert len([o for o in ops if ".cast" in o.name]) == 4
    shape = ModelShape.from_arch(CAT.model("qwen3-30b-a3b"))
    shard = Shard(tp=1.0, batch=2.0, seq_len=4096.0, ep=8.0)
    for precision, phase in (("bf16", "forward"), ("fp8", "prefill"), ("fp8", "decode")):
        serving = Shard(tp=1.0, batch=2.0, seq_len=1.0 if phase == "decode" else 512.0,
                        kv_len=1024.0 if phase == "decode" else None)
        ops = layer_operators(shape, phase, serving if phase != "forward" else shard,
                              layer=3, precision=precision)
        assert not [o for o in ops if ".cast" in o.name]


def test_int8_training_keeps_the_weight_gradient_in_bf16() -> None:
    """AQT int8 (MaxText ``quantization=int8``): forward and data-gradient GEMMs in int8,
    the weight gradient in bf16 reading the 16-bit tensors, so each cast writes one int8
    copy; Transformer Engine's fp8 runs all three GEMMs in fp8 and casts twice."""
    m = shape("llama3-8b")
    shard = Shard(tp=1.0, batch=2.0, seq_len=4096.0)
    for precision, wgrad_precision, cast_bytes, in_bytes in (
            ("int8", "bf16", 2.0 + 1.0, 2.0), ("fp8", "fp8", 2.0 + 1.0 + 1.0, 1.0)):
        bwd = by_name(layer_operators(m, "backward", shard, precision=precision))
        fwd = by_name(layer_operators(m, "forward", shard, precision=precision))
        for name, op in fwd.items():
            if op.kind != "gemm":
                continue
            assert bwd[f"{name}.dgrad"].precision == precision
            wgrad = bwd[f"{name}.wgrad"]
            assert wgrad.precision == wgrad_precision
            weights = op.k * op.n
            activations = op.m * (op.k + op.n) * in_bytes
            assert wgrad.bytes_read == pytest.approx(activations + 4.0 * weights)
        cast = bwd["o_proj.cast_grad"]
        assert cast.bytes == pytest.approx(cast_bytes * cast.bytes_read / 2.0)


@pytest.mark.parametrize("model_id", ["gpt-oss-120b", "llama4-scout", "llama3-8b"])
def test_windowed_layer_count_is_the_layers_marked_windowed(model_id: str) -> None:
    """The closed form the MFU and KV-cache counts use agrees with the per-layer rule."""
    m = shape(model_id)
    assert windowed_layer_count(m) == sum(is_windowed_layer(m, i) for i in range(m.n_layers))
