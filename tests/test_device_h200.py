"""The operator cost model against kernels measured on one H200
(validation/device/h200_kernels.csv; scripts/device_report.py).

Nothing in the calibration is fitted to these kernels, so each check below is a test of a
law (GEMM waves and small K, HBM streaming, grouped GEMMs, attention, composition of a
layer) or of a fitted value's plausibility against the hardware."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from ocplan.costmodel.gemm import gemm_cost
from ocplan.costmodel.roofline import HBM_EFFICIENCY, KERNEL_GAP_S
from scriptkit import load_script

dr = load_script("device_report")


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return dr.read_rows()


@pytest.fixture(scope="module")
def dev() -> Any:
    return dr.device()


def _summary(items: list[Any], groups: set[str]) -> Any:
    chosen = [c for c in items if c.group in groups]
    assert chosen, groups
    return dr.summarize("chosen", chosen)


def test_the_file_holds_every_section(rows: list[dict[str, str]]) -> None:
    sections = {r["section"] for r in rows}
    assert sections == {"launch", "copy", "memory", "optimizer", "gemm", "attention",
                        "grouped", "layer", "profile", "fp8linear", "sustained",
                        "profile_sustained", "serve", "serveprofile"}
    assert len(rows) >= 1200


def test_compute_bound_bf16_gemms_follow_the_law(rows: list[dict[str, str]], dev: Any
                                                 ) -> None:
    s = _summary(dr.compare_gemms(rows, dev), {"bf16 layer, compute-bound", "bf16 wgrad",
                                               "bf16 stair_m", "bf16 k_sweep"})
    assert s.n >= 200
    assert s.median_abs_pct <= 6.0, s
    assert s.p90_abs_pct <= 15.0, s
    assert abs(s.median_signed_pct) <= 5.0, s


def test_the_m_staircase_is_flat_as_measured(rows: list[dict[str, str]], dev: Any) -> None:
    """cuBLAS on Hopper hides the wave staircase (stream_k in the catalog); the
    data-parallel wave law would miss the same rows by tens of percent."""
    stair = [r for r in rows if r["kernel"] == "stair_m" and r["dtype"] == "bf16"]
    assert len(stair) >= 60
    assert dev.compute.stream_k
    s = dr.summarize("stair", dr.compare_gemms(stair, dev))
    assert s.p90_abs_pct <= 10.0, s
    waves = replace(dev, sm=replace(dev.sm, compute=replace(dev.compute, stream_k=False)))
    w = dr.summarize("stair, waves", dr.compare_gemms(stair, waves))
    assert w.p90_abs_pct >= 2.5 * s.p90_abs_pct, (w, s)


def test_the_catalog_k0_fits_the_k_sweep(rows: list[dict[str, str]], dev: Any) -> None:
    """Least squares over K0 (and the large-K efficiency) on the BF16 K sweep at
    M = N = 4096 lands within 25 % of the H200's catalog K0."""
    sweep = [r for r in rows if r["kernel"] == "k_sweep" and r["dtype"] == "bf16"]
    k = np.array([float(r["k"]) for r in sweep])
    t = np.array([float(r["time_s"]) for r in sweep])

    def sse(k0: float) -> float:
        c = replace(dev.compute, k0=k0)
        best = np.inf
        for eta in np.arange(0.60, 0.85, 0.005):
            p = gemm_cost(4096, 4096, k, 1, dev.peak16_flops, dev.hbm_Bps, c, 2, 2, eta,
                          dev.cal.kernel_overhead_s).time_s
            best = min(best, float((np.log(p / t) ** 2).sum()))
        return best
    fitted = min(range(40, 600, 10), key=sse)
    assert abs(fitted / dev.compute.k0 - 1.0) <= 0.25, (fitted, dev.compute.k0)


def test_hbm_streaming_reaches_the_assumed_efficiency(rows: list[dict[str, str]],
                                                      dev: Any) -> None:
    """Large streaming kernels move at least HBM_EFFICIENCY of peak: the model's
    memory-bound times are not optimistic."""
    adds = [r for r in rows if r["section"] == "memory" and r["kernel"] == "add"
            and int(r["m"]) * int(r["n"]) >= 16384 * 4096]
    gemv = [r for r in rows if r["kernel"] == "layer:sq16384" and r["dtype"] == "bf16"
            and int(r["m"]) <= 32]
    for r in adds + gemv:
        assert float(r["tbps"]) * 1e12 / dev.hbm_Bps >= HBM_EFFICIENCY, r


def test_graph_launch_gap_matches_the_constant(rows: list[dict[str, str]]) -> None:
    gap = dr.graph_gap_s(rows)
    assert 0.5 <= gap / KERNEL_GAP_S <= 2.0, gap
    eager = next(float(r["time_s"]) for r in rows
                 if r["section"] == "launch" and r["method"] == "eager")
    assert eager >= 3 * gap


def test_few_tokens_per_expert_are_slower_per_flop(rows: list[dict[str, str]], dev: Any
                                                   ) -> None:
    """Measured and predicted alike: a grouped GEMM with 16 tokens per expert runs far
    below the rate of the same experts with 4096 tokens each."""
    grouped = dr.compare_grouped(rows, dev)
    shapes = {c.row["kernel"] for c in grouped}
    assert len(shapes) == 8
    for shape in shapes:
        by_tokens = {int(c.row["m"]): c for c in grouped if c.row["kernel"] == shape}
        few, many = by_tokens[16], by_tokens[4096]

        def rate(c: Any, s: float) -> float:
            return float(c.row["flops"]) / s
        assert rate(few, few.measured_s) < 0.25 * rate(many, many.measured_s), shape
        assert rate(few, few.predicted_s) < 0.25 * rate(many, many.predicted_s), shape


def test_grouped_kernel_runs_at_the_dense_rate(rows: list[dict[str, str]], dev: Any
                                               ) -> None:
    """With 256 or more tokens per expert the grouped kernel itself matches a dense GEMM
    of its tiles, so the fitted grouped_gemm_efficiency is not a kernel property."""
    fam = dev.fam
    dense = _summary(dr.compare_grouped(rows, dev, eta=fam.gemm),
                     {"grouped balanced, compute-bound"})
    assert dense.median_abs_pct <= 8.0, dense
    assert dense.p90_abs_pct <= 15.0, dense
    fitted = _summary(dr.compare_grouped(rows, dev), {"grouped balanced, compute-bound"})
    assert fitted.median_signed_pct >= dense.median_signed_pct + 20.0


def test_routed_groups_pay_their_own_tile_padding(rows: list[dict[str, str]], dev: Any
                                                  ) -> None:
    """Multinomially routed tokens (the most loaded expert only 1.03-1.25 times the mean
    at 256 or more tokens per expert) run 20-60 % slower than balanced ones at 256 tokens:
    each ragged group is padded to the tile on its own. With that padding the routed
    kernels are predicted as well as the balanced ones; without it the tail triples."""
    fam = dev.fam
    group = {"grouped routed, compute-bound"}
    padded = _summary(dr.compare_grouped(rows, dev, eta=fam.gemm, routing="routed"), group)
    flat = _summary(dr.compare_grouped(rows, dev, eta=fam.gemm, routing="routed",
                                       spread=False), group)
    assert padded.median_abs_pct <= 6.0, padded
    assert padded.p90_abs_pct <= 20.0, padded
    assert flat.p90_abs_pct >= 1.8 * padded.p90_abs_pct, (flat, padded)


def test_native_and_portable_attention_land_on_the_fitted_efficiency(
        rows: list[dict[str, str]], dev: Any) -> None:
    """Forward+backward attention as training runs it: cuDNN (the native kernel) at the
    fitted hopper attention efficiency and FlashAttention-2 at the chip's portable rate
    (0.58 of it) each land within 10 % at the median over their shapes (head widths 64,
    128 and 256). The efficiency is fitted on published runs, not on these kernels."""
    for backend in ("cudnn", "flash"):
        items = [c for c in dr.compare_attention(rows, dev, backend)
                 if c.row["pass"] == "fwd+bwd"]
        assert len(items) >= 29, backend
        assert {c.row["head_dim"] for c in items} == {"64", "128", "256"}, backend
        assert abs(float(np.median([c.log_error for c in items]))) <= 0.10, backend


def test_attention_backward_to_forward_ratio(rows: list[dict[str, str]], dev: Any) -> None:
    """The model's forward+backward / forward time at long sequences is within 12 % of
    the measured ratio of both kernels (cuDNN and FlashAttention-2)."""
    for backend in ("cudnn", "flash"):
        items = [c for c in dr.compare_attention(rows, dev, backend)
                 if int(c.row["seq"]) >= 4096 and c.row["head_dim"] == "128"]
        pairs = {}
        for c in items:
            key = (c.row["batch"], c.row["heads"], c.row["kv_heads"], c.row["seq"],
                   c.row["causal"])
            pairs.setdefault(key, {})[c.row["pass"]] = c
        measured = [p["fwd+bwd"].measured_s / p["fwd"].measured_s for p in pairs.values()]
        predicted = [p["fwd+bwd"].predicted_s / p["fwd"].predicted_s for p in pairs.values()]
        assert len(measured) >= 8
        ratio = float(np.median(predicted)) / float(np.median(measured))
        assert abs(ratio - 1.0) <= 0.12, (backend, np.median(predicted), np.median(measured))


def test_fitted_efficiencies_do_not_beat_the_hardware(rows: list[dict[str, str]],
                                                      dev: Any) -> None:
    """No fitted hopper value is faster than the best the card did on the same work."""
    fam = dev.fam
    gemm = [r for r in rows if r["section"] == "gemm"]
    best16 = dr.best_fraction(gemm, lambda r: r["dtype"] == "bf16", dev.peak16_flops)
    best8 = dr.best_fraction(gemm, lambda r: r["dtype"] == "fp8", dev.peak8_flops)
    assert fam.gemm <= best16 + 0.02
    assert fam.gemm_8bit <= best8 + 0.02
    attn = dr.best_fraction(rows, lambda r: r["section"] == "attention"
                            and r["pass"] == "fwd", dev.peak16_flops)
    assert fam.attention <= attn
    single = {"add", "rms_norm", "layer_norm", "cast_fp32", "cast_fp8"}   # one kernel each
    memory = [r for r in rows if r["section"] == "memory" and r["kernel"] in single]
    assert len(memory) == 15
    slowest = min(float(r["tbps"]) * 1e12 / dev.hbm_Bps for r in memory)
    assert HBM_EFFICIENCY * dev.cal.memory_efficiency <= slowest


def test_whole_dense_layers_compose_within_twelve_percent(rows: list[dict[str, str]],
                                                          dev: Any) -> None:
    """Llama 3.2 1B and 3B, Llama 3 8B and 70B layers, forward and forward+backward, eager
    on one H200 with 4096 or more tokens: the engine's operator list and costs land
    within 12 % of every measured layer (measured -0.3 to +10.8 %; the two runs of the 8B
    and 70B layers differ by up to 7 %, so 10 % would be a coin toss). Below 4096 tokens
    the 1B layer's backward is bound by eager PyTorch's host launches (measured 16 %
    slower than its kernels), which the per-kernel cost does not cover."""
    layers = [c for c in dr.compare_layers(rows, dev) if c.group.startswith("dense")]
    assert len(layers) == 38
    checked = [c for c in layers if float(c.row["m"]) >= 4096]
    assert len(checked) == 34
    for c in checked:
        assert abs(c.log_error) <= 0.12, (c.row["kernel"], c.row["batch"], c.row["seq"],
                                          c.row["pass"], c.log_error)


def test_a_coarse_moe_layer_composes_at_the_dense_grouped_rate(
        rows: list[dict[str, str]], dev: Any) -> None:
    """Mixtral 8x7B at 8192 tokens (2048 tokens per expert), forward and forward+backward:
    within 10 % with grouped GEMMs at the dense efficiency, and over 30 % slow at the
    fitted ``grouped_gemm_efficiency``: that value is not a property of the layer."""
    dense_rate = dr.compare_layers(rows, dev, dr.dense_rate_grouped(dev))
    fitted = dr.compare_layers(rows, dev)
    pairs = [(d, f) for d, f in zip(dense_rate, fitted, strict=True)
             if d.row["kernel"] == "mixtral-8x7b" and d.row["seq"] == "8192"]
    assert len(pairs) == 2
    for d, f in pairs:
        assert abs(d.log_error) <= 0.10, (d.row["pass"], d.log_error)
        assert f.log_error >= 0.30, (f.row["pass"], f.log_error)


def test_profiled_moe_gemms_run_at_the_dense_rate(rows: list[dict[str, str]], dev: Any
                                                  ) -> None:
    """The GEMM kernels (attention projections, router, grouped experts) of the profiled
    Qwen3-30B-A3B and Mixtral layers sum within 10 % of the engine's matrix time with
    grouped GEMMs at the dense rate; at the fitted grouped efficiency over 35 % more."""
    profiled = {p.model: p for p in dr.profiled_layers(rows)}
    assert set(profiled) == {"llama3-8b", "llama3.2-1b", "qwen3-30b-a3b", "mixtral-8x7b"}
    for model in ("qwen3-30b-a3b", "mixtral-8x7b"):
        p = profiled[model]
        at_dense = dr.layer_time(dev, model, p.batch, p.seq, True, dr.dense_rate_grouped(dev))
        fitted = dr.layer_time(dev, model, p.batch, p.seq, True)
        assert abs(np.log(float(at_dense.matrix_s[0]) / p.matrix_s)) <= 0.10, model
        assert np.log(float(fitted.matrix_s[0]) / p.matrix_s) >= 0.35, model


def test_mixed_layers_hold_higher_clocks_than_a_gemm_stream(rows: list[dict[str, str]]
                                                            ) -> None:
    """Every sustained layer held a median SM clock at least 10 % above the pure GEMM
    stream's at the same 700 W cap (docs/model.md relies on it)."""
    sustained = [r for r in rows if r["section"] == "sustained"]
    assert len(sustained) == 4
    stream = dr.stream_clock_mhz()
    assert 1300 <= stream <= 1500
    for r in sustained:
        assert dr.clock_mhz(r["note"]) >= 1.10 * stream, r["kernel"]


def test_whole_model_decode_gemms_stream_weights_at_the_assumed_efficiency(
        rows: list[dict[str, str]], dev: Any) -> None:
    """A batch-1 decode step of the whole Llama 3.1 8B (every layer its own weights,
    graph-replayed, profiled): cuBLAS's M = 1 GEMMs stream the 15 GB of weights at
    ``HBM_EFFICIENCY`` of peak (measured 0.79), the rate the cost model gives a
    memory-bound GEMM before any fitted value."""
    rates = dr.decode_rates(rows)
    assert abs(rates.gemm_stream_Bps / dev.hbm_Bps - HBM_EFFICIENCY) <= 0.05, rates


def test_long_prefills_compose_within_fifteen_percent(rows: list[dict[str, str]],
                                                      dev: Any) -> None:
    """Whole-model prefills of 2048 and 8192 tokens with cuDNN attention (the native
    kernel the step model's attention efficiency stands for): the serving step model's
    device time lands within 15 % (measured -14 and -10 %: the model is faster, as its
    GEMMs run at the fitted 0.70 of a peak the card's 700 W cap does not hold)."""
    model = dr.serve_model(dev)
    long = [c for c in dr.compare_serving(rows, model)
            if c.group == "prefill, cudnn attention" and int(c.row["seq"]) >= 2048]
    assert len(long) == 2
    for c in long:
        assert -0.15 <= c.log_error <= 0.0, (c.row["seq"], c.log_error)


def test_plain_pytorch_decode_is_slower_than_the_serving_model(rows: list[dict[str, str]],
                                                              dev: Any) -> None:
    """Every graph-replayed decode step of plain PyTorch (unfused RoPE and norms,
    FlashAttention-2's non-split kernel over a contiguous cache at batch 8 and more) is
    slower than the serving step model's device time, which prices an engine's fused
    kernels, but by less than twice: the model's device terms are of the right size even
    where an engine's kernels are not used."""
    model = dr.serve_model(dev)
    decode = [c for c in dr.compare_serving(rows, model) if c.group == "decode"]
    assert len(decode) == 10
    for c in decode:
        assert -math.log(2.0) < c.log_error < 0.0, (c.row["batch"], c.row["seq"], c.log_error)


def test_report_is_current(rows: list[dict[str, str]], dev: Any) -> None:
    """docs/device-h200.md is what the script writes now: rerun
    ``scripts/device_report.py`` after a calibration or cost-model change."""
    assert dr.REPORT.read_text() == dr.report(rows, dev)
