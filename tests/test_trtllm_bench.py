"""A ``trtllm-bench`` result is predicted with the engine limits the benchmark sized for
itself (``tensorrt_llm/bench/build/tuning.py``): the batch cap from the cache its
optimistic estimate holds at the target input plus output length, the token budget
from that batch's prompt share, both rounded up in bands."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.results.serving_validation import prepare_serving_row
from ocplan.serving.trtllm_bench import MAX_BATCH, rule_applies, trtllm_bench_limits
from ocplan.workloads.shape import ModelShape

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "validation" / "inference_dev.csv"
CAT = load_catalog()
LLAMA_8B = ModelShape.from_arch(CAT.model("llama3-8b"))
H100_BYTES = CAT.accelerator("h100-sxm-80gb", "test", "chip").memory.hbm_capacity


def test_llama_8b_fp8_on_one_h100_by_hand() -> None:
    """Llama 3.1 8B, FP8 weights and cache, 80 GB: a token's KV is 2 x 32 layers x 8
    heads x 128 x 1 B = 65,536 B; (80e9 - 8.03e9) x 0.95 / (65,536 x 2,000) = 521.7
    requests of 1,000 + 1,000 tokens -> batch 640 (128s between 256 and 1,024), budget
    521.7 x 2 = 1,043 -> the 2,048 floor. At 2,048 + 128: 479.6 requests -> 512, budget
    479.6 x 17 = 8,153 -> 8,192 (512s below 8,192)."""
    assert LLAMA_8B.total_params == pytest.approx(8.03e9, rel=0.005)
    assert trtllm_bench_limits(LLAMA_8B, "fp8", "fp8", H100_BYTES, 1, 1, 1000, 1000) == (640, 2048)
    assert trtllm_bench_limits(LLAMA_8B, "fp8", "fp8", H100_BYTES, 1, 1, 2048, 128) == (512, 8192)


def test_unquantized_formats_count_two_bytes() -> None:
    """bf16 weights and cache (anything but fp8/fp4 counts 2 B): 64,000 - 16,060 MB of
    room at 131,072 B a token holds fewer requests than FP8's (the budget still floors)."""
    bf16 = trtllm_bench_limits(LLAMA_8B, "bf16", "bf16", H100_BYTES, 1, 1, 1000, 1000)
    fp8 = trtllm_bench_limits(LLAMA_8B, "fp8", "fp8", H100_BYTES, 1, 1, 1000, 1000)
    assert bf16[0] < fp8[0]
    # (80e9 - 16.06e9) x 0.95 / (131,072 x 2,000) = 231.7 -> 256 (32s below 256)
    assert bf16 == (256, 2048)


def test_caps_floors_and_pipeline_split() -> None:
    """The batch stops at 4,096 (then split over the pipeline stages), and never goes
    below 64 even when the cache holds a handful of requests."""
    roomy = trtllm_bench_limits(LLAMA_8B, "fp4", "fp8", H100_BYTES, 8, 1, 16, 16)
    assert roomy[0] == MAX_BATCH
    assert roomy[1] == 8192  # 4,096 x (1 + 1) = 8,192 tokens, on a band edge
    split = trtllm_bench_limits(LLAMA_8B, "fp4", "fp8", H100_BYTES, 4, 2, 16, 16)
    assert split[0] == MAX_BATCH // 2
    tight = trtllm_bench_limits(LLAMA_8B, "fp8", "fp8", H100_BYTES, 1, 1, 100_000, 20_000)
    assert tight == (64, 2048)


def test_batch_falls_with_the_sequence_and_rises_with_chips() -> None:
    lengths = [trtllm_bench_limits(LLAMA_8B, "fp8", "fp8", H100_BYTES, 1, 1, n, n)[0]
               for n in (250, 500, 1000, 2000, 4000)]
    assert lengths == sorted(lengths, reverse=True)
    assert lengths[0] > lengths[-1]
    chips = [trtllm_bench_limits(LLAMA_8B, "fp8", "fp8", H100_BYTES, tp, 1, 4000, 4000)[0]
             for tp in (1, 2, 4)]
    assert chips == sorted(chips)
    assert chips[0] < chips[-1]


def _dev_row(case_id: str) -> dict[str, str]:
    with DEV.open(encoding="utf-8", newline="") as f:
        return next(r for r in csv.DictReader(f) if r["case_id"] == case_id)


def test_a_trtllm_bench_row_runs_with_the_benchmarks_limits() -> None:
    """INF076 (Llama 3.1 8B FP8, one H100, 2,048 + 128, trtllm-bench) gets the limits of
    the hand computation above; an MLPerf row (INF003, its own harness) does not."""
    bench = prepare_serving_row(_dev_row("INF076"), CAT)
    assert bench.fixed["max_seqs"] == 512
    assert bench.fixed["chunk_tokens"] == 8192
    assert any("trtllm-bench engine limits: 512 sequences" in n for n in bench.notes)
    mlperf = prepare_serving_row(_dev_row("INF003"), CAT)
    assert "chunk_tokens" not in mlperf.fixed
    assert not any("trtllm-bench" in n for n in mlperf.notes)


def test_mla_and_hybrid_models_keep_the_engine_defaults() -> None:
    """The benchmark sizes MLA caches and recurrent states by rules not reproduced here:
    DeepSeek-V3 and Nemotron 3 Nano are outside the rule, Llama and Qwen3's MoE inside."""
    inside = [ModelShape.from_arch(CAT.model(m)) for m in ("llama3-70b", "qwen3-235b-a22b")]
    outside = [ModelShape.from_arch(CAT.model(m))
               for m in ("deepseek-v3", "nemotron-3-nano-30b-a3b")]
    assert all(rule_applies(s) for s in inside)
    assert not any(rule_applies(s) for s in outside)


def _adp_bench_row(adp: str) -> dict[str, str]:
    """Qwen3-235B (GQA MoE, inside the rule) under ``trtllm-bench`` on 8 B200, published
    as DP attention over 8 ranks of one chip each (or, without it, 8 replicas)."""
    return dict(_dev_row("INF077"), tp="1", pp="1", dp="8", ep="8", attention_dp=adp)


def test_attention_dp_sizes_the_benchmark_over_its_whole_group() -> None:
    """The benchmark's mapping is ``--tp 8`` with attention DP as a mode of it: the
    engine is sized over all 8 chips (their HBM, one KV head a rank), and each DP rank's
    executor holds the caps, so the instance holds 8 of each. Without attention DP the
    8 ranks are one-chip replicas, each sized on its own chip."""
    row = _adp_bench_row("yes")
    shape = ModelShape.from_arch(CAT.model("qwen3-235b-a22b"))
    hbm = CAT.accelerator("b200", "test", "chip").memory.hbm_capacity
    isl, osl = float(row["input_len_mean"]), float(row["output_len_mean"])
    fmt = row["weight_precision"] or "fp4"
    adp = prepare_serving_row(row, CAT)
    kv = "fp8"  # the KV format the row leaves to the default of an fp4 GEMM
    batch, budget = trtllm_bench_limits(shape, fmt, kv, hbm, 8, 1, isl, osl)
    assert adp.fixed["max_seqs"] == 8 * batch
    assert adp.fixed["chunk_tokens"] == 8 * budget
    one = trtllm_bench_limits(shape, fmt, kv, hbm, 1, 1, isl, osl)
    assert one != (batch, budget)  # one chip's sizing differs: the group's is the one read
    replicas = prepare_serving_row(_adp_bench_row("no"), CAT)
    assert replicas.fixed["max_seqs"] == one[0]
    assert replicas.fixed["chunk_tokens"] == one[1]
