"""The operator cost model (``ocplan.costmodel``) and the catalog's ``compute`` blocks.

Anchors come from ``shared/reference/compute_units.md``; each is data below with the
section and the primary source it cites.
"""

from __future__ import annotations

import doctest
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocplan.catalog.catalog import Catalog, load_catalog
from ocplan.catalog.schema import Accelerator, Compute
from ocplan.costmodel import attention, chip, gemm, roofline
from ocplan.costmodel.attention import (
    BACKWARD_EFFICIENCY,
    attention_flops,
    decode_attention_time_s,
    flash_attention_time_s,
    query_block_waves,
)
from ocplan.costmodel.chip import (
    ETA_SOFTWARE_16BIT,
    GENERIC,
    ChipCompute,
    chip_compute,
    sustained_clock_fraction,
)
from ocplan.costmodel.gemm import (
    gemm_cost,
    gemm_flops,
    gemm_time_s,
    k_efficiency,
    tile_efficiency,
    tile_m_for,
    wave_efficiency,
)
from ocplan.costmodel.roofline import KERNEL_FLOOR_S, KERNEL_GAP_S, memory_time_s

H100 = ChipCompute(tile_m=128, tile_n=256, slots=132, k0=280.0, stream_k=False)
H100_PEAK_FP8 = 1978.9e12
H100_PEAK_BF16 = 989.4e12
H100_HBM = 3.35e12


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return load_catalog(use_env=False)


# ---- catalog compute blocks ------------------------------------------------------------

#: Chips whose compute block compute_units.md backs (Tables 1.1-1.2).
WITH_COMPUTE = {
    "a100-sxm-40gb", "a100-sxm-80gb", "h100-sxm-80gb", "h100-sxm-96gb", "h200-sxm-141gb",
    "h800-sxm-80gb", "h20", "b200", "gb200", "b300", "gb300", "mi250x", "mi300x", "mi325x",
    "mi350x", "mi355x", "gaudi2", "gaudi2-hl225b", "gaudi3", "tpu-v4", "tpu-v5e", "tpu-v5p",
    "tpu-v6e", "ascend-910b", "gh200-144gb", "tpu-v7x", "trainium2", "trainium3",
}


#: Matrix rates per unit and clock that are not powers of two, with their source.
DOCUMENTED_RATES = {
    49152: "Blackwell Ultra NVFP4: 1.5 x Blackwell's 32768 FP4 FLOP/clk per SM (NVIDIA "
           "technical blog 'Inside NVIDIA Blackwell Ultra'; compute_units.md §1.2)",
}


def _accelerators(cat: Catalog) -> list[Accelerator]:
    out = [e for e in cat.all("accelerator") if isinstance(e, Accelerator)]
    assert out
    return out


def test_compute_blocks_present(cat: Catalog) -> None:
    have = {a.id for a in _accelerators(cat) if a.compute is not None}
    assert have == WITH_COMPUTE


def test_compute_blocks_cited(cat: Catalog) -> None:
    for a in _accelerators(cat):
        if a.compute is not None:
            assert any("compute" in s.covers for s in a.sources), a.id
            assert a.compute.notes, a.id


#: Chips whose softmax (special-function unit) rate is published: NVIDIA's SMs (CUDA
#: Programming Guide throughput table; 2x on Blackwell Ultra).
WITH_EXP_RATE = {"a100-sxm-40gb", "a100-sxm-80gb", "h100-sxm-80gb", "h100-sxm-96gb",
                 "h200-sxm-141gb", "h800-sxm-80gb", "h20", "b200", "gb200", "b300", "gb300",
                 "gh200-144gb"}


def test_exp_rates_where_published_and_cited(cat: Catalog) -> None:
    # Every SM-based chip carries its rate (an NVIDIA entry added without it would lose
    # the softmax term silently), Blackwell Ultra twice Blackwell's, and no other vendor
    # has one invented.
    have = {a.id: a.compute.exp_per_clock for a in _accelerators(cat)
            if a.compute is not None and a.compute.exp_per_clock is not None}
    assert set(have) == WITH_EXP_RATE
    sm_chips = {a.id for a in _accelerators(cat)
                if a.compute is not None and a.compute.unit_name == "sm"}
    assert sm_chips == WITH_EXP_RATE
    assert {have[i] for i in ("b300", "gb300")} == {2 * have["b200"]}
    assert {have[i] for i in WITH_EXP_RATE - {"b300", "gb300"}} == {16}
    for a in _accelerators(cat):
        if a.id in WITH_EXP_RATE:
            assert any("arithmetic-instructions" in (s.url or "") for s in a.sources), a.id


def test_peak_equals_units_x_flop_per_clock_x_clock(cat: Catalog) -> None:
    # Consistency of the block with the recorded peaks: peak = units x FLOP/clk x clock
    # within 10 % for every precision both give (compute_units.md §1.2), and each
    # FLOP/clk is a power of two (every native matrix rate in Table 1.2 is).
    checked = 0
    for a in _accelerators(cat):
        c = a.compute
        if c is None:
            continue
        assert c.flop_per_clock is not None, a.id
        for prec in ("bf16", "fp16", "fp8", "int8", "fp4"):
            fpc = c.flop_per_clock.get(prec)
            if fpc is None:
                continue
            assert fpc & (fpc - 1) == 0 or fpc in DOCUMENTED_RATES, (a.id, prec, fpc)
            peak = a.peak_flops.get(prec)
            if peak is None:
                continue
            implied = c.units * fpc * c.clock
            assert implied == pytest.approx(peak, rel=0.10), (a.id, prec, implied / peak)
            checked += 1
        # The 16-bit rate per unit and clock is a power of two even where not recorded.
        peak16 = a.peak_flops.bf16 or a.peak_flops.fp16
        assert peak16 is not None
        per_clk = peak16 / (c.units * c.clock)
        assert abs(math.log2(per_clk) - round(math.log2(per_clk))) < math.log2(1.10), a.id
    assert checked >= 70


def test_sustained_clock_is_below_peak_clock() -> None:
    with pytest.raises(ValueError, match="sustained_clock"):
        Compute(units=304, unit_name="cu", clock="1.2 GHz", sustained_clock="2.1 GHz",
                tile={"m": 256, "n": 256})
    with pytest.raises(ValueError, match="units_per_tile"):
        Compute(units=149, unit_name="sm", clock="1.8 GHz", tile={"m": 256, "n": 128},
                units_per_tile=2)


def test_chip_compute_resolution(cat: Catalog) -> None:
    b200 = chip_compute(cat.accelerator("b200").compute)
    assert (b200.tile_m, b200.tile_n, b200.slots, b200.k0) == (256, 128, 74, 540.0)
    h20 = chip_compute(cat.accelerator("h20").compute)
    assert h20.k0 == 280.0  # no K0 in its block: the SM default
    assert chip_compute(None) is GENERIC
    assert GENERIC.stream_k
    assert sustained_clock_fraction(cat.accelerator("mi300x").compute) == \
        pytest.approx(1207 / 2100)
    assert sustained_clock_fraction(cat.accelerator("h100-sxm-80gb").compute) == 1.0


# ---- tile and wave quantization --------------------------------------------------------


def test_deepgemm_wave_anchor() -> None:
    # DeepGEMM README (compute_units.md §3.1): M = 256, N = 7168 with 128 x 128 tiles is
    # 2 x 56 = 112 tiles, 112 of 132 SMs busy; BLOCK_N = 112 gives 2 x 64 = 128 tiles.
    assert float(gemm.tile_count(256, 7168, 1, 128, 128)) == 112
    assert float(wave_efficiency(256, 7168, 1, 128, 128, 132)) == pytest.approx(112 / 132)
    assert float(gemm.tile_count(256, 7168, 1, 128, 112)) == 128
    assert float(wave_efficiency(256, 7168, 1, 128, 112, 132)) == pytest.approx(128 / 132)


def test_a100_wave_staircase() -> None:
    # NVIDIA Matrix Multiplication Background guide (compute_units.md §3.1): on A100
    # (108 SMs) crossing a multiple of 108 tiles adds a whole wave: time steps up by a
    # wave while FLOPs grow by one tile. N = 128 x tiles, M = one 128-row tile.
    a100 = ChipCompute(tile_m=128, tile_n=128, slots=108, k0=0.0, stream_k=False)
    k = 8192

    def t(tiles: int) -> float:
        return float(gemm_time_s(128, 128 * tiles, k, 1, 312e12, 1e18, a100, 2, 2, 1.0, 0.0))

    one_wave = t(108)
    assert t(50) < 0.6 * one_wave  # an under-filled wave: the library splits K over idle SMs
    assert t(109) == pytest.approx(2 * one_wave)
    assert t(216) == pytest.approx(2 * one_wave)
    assert t(217) == pytest.approx(3 * one_wave)
    assert float(wave_efficiency(128, 128 * 109, 1, 128, 128, 108)) == pytest.approx(109 / 216)


def test_tile_boundary_drops_efficiency() -> None:
    assert float(tile_efficiency(128, 4096, 128, 256)) == 1.0
    assert float(tile_efficiency(129, 4096, 128, 256)) == pytest.approx(129 / 256)
    assert float(tile_efficiency(4096, 257, 128, 256)) == pytest.approx(257 / 512)
    # and the time per FLOP rises across the boundary
    big: dict[str, Any] = dict(n=4096, k=4096, groups=1, peak_flops=H100_PEAK_BF16, hbm_Bps=1e18,
               chip_compute=H100, bytes_per_element_in=2, bytes_out=2, eta_large=0.8,
               launch_s=0.0)
    per_flop_128 = float(gemm_time_s(m=128, **big)) / 128
    per_flop_129 = float(gemm_time_s(m=129, **big)) / 129
    assert per_flop_129 > 1.1 * per_flop_128
    # 129 rows: three 64-row tiles (192 rows) pad less than two 128-row ones (256)
    assert float(tile_m_for(129, 128)) == 64.0
    assert float(tile_m_for(256, 128)) == 128.0


def test_stream_k_removes_staircase() -> None:
    smooth = ChipCompute(tile_m=128, tile_n=128, slots=108, k0=0.0, stream_k=True)
    steps = ChipCompute(tile_m=128, tile_n=128, slots=108, k0=0.0, stream_k=False)
    tiles = np.arange(100, 330)
    args = (128, 128 * tiles, 8192, 1, 312e12, 1e18)
    t_smooth = gemm_time_s(*args, smooth, 2, 2, 1.0, 0.0)
    t_steps = gemm_time_s(*args, steps, 2, 2, 1.0, 0.0)
    # Stream-K: time exactly proportional to the tiles, no jump at 109 or 217
    assert np.allclose(t_smooth / tiles, t_smooth[0] / tiles[0])
    jumps = np.diff(t_steps) / t_steps[:-1]
    assert jumps.max() > 0.3
    assert np.diff(t_smooth).max() / t_smooth.min() < 0.02
    assert np.all(t_smooth <= t_steps * (1 + 1e-12))


# ---- small K ---------------------------------------------------------------------------


@pytest.mark.parametrize(("k0", "k", "measured_ratio"), [
    # openxla/xla matmul_interpolator_data.h K sweeps at M = N = 4096, BF16, rate
    # relative to K = 4096 (compute_units.md §2.1.4 and §3.2).
    (280, 256, 399 / 780), (280, 512, 552 / 780), (280, 1024, 685 / 780),
    (280, 2048, 736 / 780),                                   # H100 (sm_90)
    (540, 256, 515 / 1417), (540, 512, 805 / 1417), (540, 1024, 1076 / 1417),
    (540, 2048, 1278 / 1417),                                 # B200 (sm_100)
    (230, 256, 324 / 583),                                    # MI300X (gfx942)
])
def test_k_efficiency_reproduces_xla_k_sweep(k0: int, k: int, measured_ratio: float) -> None:
    ratio = float(k_efficiency(k, k0) / k_efficiency(4096, k0))
    assert ratio == pytest.approx(measured_ratio, rel=0.05)


def test_k_efficiency_h100_headline() -> None:
    # compute_units.md §3.2: 51 % of the K = 4096 rate at K = 256 and 71 % at K = 512.
    assert float(k_efficiency(256, 280) / k_efficiency(4096, 280)) == pytest.approx(0.51, rel=0.05)
    assert float(k_efficiency(512, 280) / k_efficiency(4096, 280)) == pytest.approx(0.71, rel=0.05)


# ---- grouped and skinny GEMMs ----------------------------------------------------------


@pytest.mark.parametrize(("groups", "tokens"), [(4, 256), (16, 64), (64, 16)])
def test_grouped_gemm_few_tokens_is_slower_per_flop(groups: int, tokens: int) -> None:
    # Same FLOPs (1024 tokens through a 4096 x 7168 projection), split over experts:
    # each expert's weights are streamed once and its rows padded to the tile. DeepGEMM
    # masked layout on H800 (compute_units.md §2.3): 1 x 1024 -> 1233 TF, 4 x 256 -> 932.
    common: dict[str, Any] = dict(n=4096, k=7168, peak_flops=H100_PEAK_FP8, hbm_Bps=H100_HBM,
                  chip_compute=H100, bytes_per_element_in=1, bytes_out=2, eta_large=0.72,
                  launch_s=KERNEL_GAP_S)
    one = gemm_time_s(m=1024, groups=1, **common)
    many = gemm_time_s(m=tokens, groups=groups, **common)
    assert float(gemm_flops(tokens, 4096, 7168, groups)) == float(gemm_flops(1024, 4096, 7168, 1))
    assert float(many) > float(one)


def test_grouped_gemm_pads_each_group() -> None:
    # 8 experts with 129 tokens each pay for 8 x 192 rows (three 64-row tiles each), not
    # ceil(8 x 129 / 64) x 64.
    common: dict[str, Any] = dict(n=4096, k=4096, peak_flops=H100_PEAK_BF16, hbm_Bps=1e18,
                                  chip_compute=H100,
                  bytes_per_element_in=2, bytes_out=2, eta_large=0.8, launch_s=0.0)
    padded = float(gemm_time_s(m=129, groups=8, **common))
    aligned = float(gemm_time_s(m=128, groups=8, **common))
    assert padded == pytest.approx(1.5 * aligned, rel=0.05)


@pytest.mark.parametrize(("n", "k", "measured_tflops"), [
    # DeepGEMM README at commit 55ab91f, H800 FP8, M = 64 (compute_units.md §2.2).
    (2112, 7168, 206), (24576, 1536, 289), (7168, 16384, 336), (4096, 7168, 287),
    (7168, 2048, 295),
])
def test_skinny_gemm_is_hbm_bound(n: int, k: int, measured_tflops: float) -> None:
    cost = gemm_cost(64, n, k, 1, H100_PEAK_FP8, H100_HBM, H100, 1, 2, 0.72, KERNEL_GAP_S)
    assert bool(cost.memory_bound)
    weight_bytes = n * k * 1.0
    assert float(cost.memory_s) == pytest.approx(
        (weight_bytes + 64 * k + 64 * n * 2) / (H100_HBM * roofline.HBM_EFFICIENCY))
    measured_s = 2 * 64 * n * k / (measured_tflops * 1e12)
    assert float(cost.time_s) == pytest.approx(measured_s, rel=0.30)


def test_skinny_gemm_time_scales_with_weight_bytes() -> None:
    common: dict[str, Any] = dict(m=32, groups=1, peak_flops=H100_PEAK_FP8, hbm_Bps=H100_HBM,
                  chip_compute=H100, bytes_per_element_in=1, bytes_out=2, eta_large=0.72,
                  launch_s=0.0)
    t1 = float(gemm_time_s(n=7168, k=8192, **common))
    t2 = float(gemm_time_s(n=2 * 7168, k=8192, **common))
    t4 = float(gemm_time_s(n=7168, k=4 * 8192, **common))
    assert t2 / t1 == pytest.approx(2.0, rel=0.02)
    assert t4 / t1 == pytest.approx(4.0, rel=0.02)


# ---- attention and memory-bound kernels ------------------------------------------------


def test_decode_attention_linear_in_kv_length() -> None:
    lengths = np.array([1024, 2048, 4096, 8192, 16384, 32768])
    t = decode_attention_time_s(64, 64, 8, lengths, 128, 0, H100_PEAK_BF16, H100_HBM, 0.5,
                                2, KERNEL_FLOOR_S)
    slopes = np.diff(t) / np.diff(lengths)
    assert np.allclose(slopes, slopes[0], rtol=1e-6)
    kv_bytes = 64 * 8192 * 8 * 2 * 128 * 2
    assert float(t[3]) == pytest.approx(
        KERNEL_FLOOR_S + (kv_bytes + 64 * 64 * 256 * 2) / (H100_HBM * roofline.HBM_EFFICIENCY))
    # a sliding window caps the keys read
    w = decode_attention_time_s(64, 64, 8, lengths, 128, 4096, H100_PEAK_BF16, H100_HBM, 0.5,
                                2, KERNEL_FLOOR_S)
    assert np.all(w[2:] == w[2])


def test_flash_attention_flops_and_tiles() -> None:
    # 4 B H S^2 d non-causal, halved for causal (compute_units.md §2.4)
    assert float(attention_flops(2, 16, 8192, 128, False)) == 4 * 2 * 16 * 8192**2 * 128
    assert float(attention_flops(2, 16, 8192, 128, True)) == 2 * 2 * 16 * 8192**2 * 128
    # a window of S behaves as no window; a window of S/4 does about a quarter... less
    assert float(attention_flops(1, 1, 8192, 128, True, 8192)) == \
        float(attention_flops(1, 1, 8192, 128, True))
    assert float(attention_flops(1, 1, 8192, 128, True, 2048)) < \
        0.5 * float(attention_flops(1, 1, 8192, 128, True))
    # tile quantization on the sequence: 129 tokens cost two blocks of 128
    t = [float(flash_attention_time_s(64, 16, 16, s, 128, False, 0, H100_PEAK_BF16, 1e18,
                                      0.65, None, 2, 0.0)) for s in (128, 129, 256)]
    assert t[1] == pytest.approx(t[2])
    assert t[1] > 3.9 * t[0]


def test_flash_attention_long_sequence_matches_eta() -> None:
    # At S = 16k the padded work is within 1 % of the useful FLOPs, so the achieved rate is
    # peak x eta_attn: FA3 d = 128 non-causal 648 TF on H100 (compute_units.md §2.4).
    b, h, s, d = 1, 16, 16384, 128
    t = float(flash_attention_time_s(b, h, h, s, d, False, 0, H100_PEAK_BF16, H100_HBM,
                                     648 / 989.4, None, 2, 0.0))
    assert float(attention_flops(b, h, s, d, False)) / t / 1e12 == pytest.approx(648, rel=0.01)
    tb = float(flash_attention_time_s(b, h, h, s, d, False, 0, H100_PEAK_BF16, H100_HBM,
                                      648 / 989.4, None, 2, 0.0, backward=True))
    # the backward does 2.5x the FLOPs at BACKWARD_EFFICIENCY of the forward's rate
    assert tb == pytest.approx(2.5 / BACKWARD_EFFICIENCY * t)
    assert 2.8 < tb / t < 2.95


def test_attention_waves_do_not_follow_the_gemm_library() -> None:
    """A chip whose GEMM library splits K (stream_k) still runs attention's query blocks
    a wave at a time: the 133rd block on 132 units takes a second wave."""
    c = ChipCompute(tile_m=128, tile_n=256, slots=132, k0=110.0, stream_k=True)
    assert float(query_block_waves(132, c)) == 1.0
    assert float(query_block_waves(133, c)) == pytest.approx(133 / 264)
    assert float(query_block_waves(133, GENERIC)) == 1.0      # no unit count: no waves
    t = [float(flash_attention_time_s(b, 1, 1, 128, 128, False, 0, 989e12, 1e18, 0.5, c,
                                      2, 0.0)) for b in (132, 133)]
    assert t[1] == pytest.approx(2.0 * t[0])


def test_the_backward_attention_operator_runs_slower_per_flop(cat: Catalog) -> None:
    from ocplan.costmodel.op_time import ChipPeaks, attention_op_cost
    from ocplan.workloads.operators import Shard, layer_operators
    from ocplan.workloads.shape import ModelShape
    shape = ModelShape.from_arch(cat.model("llama3-8b"))
    shard = Shard(tp=1, batch=2, seq_len=4096.0)
    fwd, = (op for op in layer_operators(shape, "forward", shard) if op.kind == "attention")
    bwd, = (op for op in layer_operators(shape, "backward", shard) if op.kind == "attention")
    assert (fwd.backward, bwd.backward) == (False, True)
    peaks = ChipPeaks(peak=(("bf16", 989e12),), path_peak=989e12, hbm_Bps=4.8e12,
                      compute=chip_compute(cat.accelerator("h200-sxm-141gb").compute))
    per_flop = [float(attention_op_cost(op, peaks).compute_s) / float(op.flops)
                for op in (fwd, bwd)]
    assert per_flop[1] / per_flop[0] == pytest.approx(1.0 / BACKWARD_EFFICIENCY)


def test_ragged_groups_pad_half_a_granule() -> None:
    """Routed experts spread their rows around the mean, so each group pads half a tile
    on average: +25 % tiles at 256 rows on 128-row tiles, +6 % at 1024; small groups
    (decode) pad half of the 16-row granule, nothing when m already pads more."""
    c = ChipCompute(tile_m=128, tile_n=256, slots=132, k0=110.0, stream_k=True)

    def ratio(m: float) -> float:
        def t(ragged: bool) -> float:
            return float(gemm_cost(m, 4096, 7168, 8, 989e12, 1e18, c, 2, 2, 0.7, 0.0,
                                   ragged=ragged).compute_s)
        return t(True) / t(False)
    assert ratio(256) == pytest.approx(1.25)
    assert ratio(1024) == pytest.approx(8.5 / 8)
    assert ratio(100) == pytest.approx(1.0)          # 112 padded rows >= 100 + 8
    assert ratio(16) == pytest.approx(24 / 16, rel=0.01)   # 16 rows + half of 16
    assert gemm.RAGGED_PAD_TILES == 0.5


def test_memory_time() -> None:
    assert float(memory_time_s(2.68e9, 3.35e12, 0.0)) == pytest.approx(1e-3)
    assert float(memory_time_s(0.0, 3.35e12)) == KERNEL_FLOOR_S


# ---- large-GEMM anchors ----------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """Measured TFLOP/s of one chip and precision over square-ish shapes."""

    chip: str
    precision: str
    bytes_in: float
    points: dict[tuple[int, int, int], float]
    source: str


def _cube(*sizes: int) -> list[tuple[int, int, int]]:
    return [(s, s, s) for s in sizes]


AZURE = "Azure/AI-benchmarking-guide Azure_Results (cuBLASLt / hipBLASLt), compute_units.md §2.1.3"
SERIES = [
    Series("a100-sxm-80gb", "fp16", 2, dict(zip(
        [*_cube(4096, 8192, 16384), (6144, 12288, 12288)], [228.0, 253.7, 256.5, 250.8],
        strict=True)), AZURE + ", ND_A100_v4_results.md"),
    Series("h100-sxm-80gb", "fp8", 1, dict(zip(
        [*_cube(4096, 8192, 16384, 32768), (6144, 12288, 12288)],
        [1216.9, 1290.1, 1377.3, 1382.2, 1351.4], strict=True)), AZURE + ", ND_H100_v5"),
    Series("h200-sxm-141gb", "fp8", 1, dict(zip(
        [*_cube(4096, 8192, 16384, 32768), (6144, 12288, 12288)],
        [1249.1, 1300.6, 1366.3, 1349.5, 1318.0], strict=True)), AZURE + ", ND_H200_v5"),
    Series("gb200", "fp8", 1, dict(zip(
        [*_cube(4096, 8192, 16384, 32768), (6144, 12288, 12288)],
        [2834.6, 2876.6, 2906.9, 2825.6, 2895.6], strict=True)), AZURE + ", ND_GB200_v6"),
    Series("gb200", "fp4", 0.5, dict(zip(
        _cube(4096, 8192, 16384, 32768), [5177.3, 7535.6, 7627.6, 7487.2], strict=True)),
        AZURE + ", ND_GB200_v6"),
    Series("mi300x", "fp8", 1, dict(zip(
        [*_cube(4096, 8192, 16384, 32768), (6144, 12288, 12288)],
        [955.2, 1159.2, 1015.1, 1029.1, 1159.5], strict=True)),
        AZURE + ", samuel-bohman fork ND_MI300X_v5"),
    Series("h100-sxm-80gb", "bf16", 2, {(4096, 4096, 4096): 780.0, (2048, 4096, 4096): 752.0},
           "openxla/xla matmul_interpolator_data.h, compute_units.md §2.1.4"),
    Series("b200", "bf16", 2, {(4096, 4096, 4096): 1417.0, (2048, 4096, 4096): 1343.0},
           "openxla/xla matmul_interpolator_data.h, compute_units.md §2.1.4"),
    Series("h20", "bf16", 2, dict(zip(_cube(10240, 4096), [142.25, 133.4], strict=True)),
           "zzc0721/torch-performance-test-data issue #77, compute_units.md §2.1.5"),
    Series("tpu-v5e", "bf16", 2, dict(zip(_cube(8192, 4096), [182.0, 166.0], strict=True)),
           "jax-ml/jax docs/pallas/tpu/matmul.ipynb, compute_units.md §2.1.5"),
]
#: Measured drops the law has no term for: MI300X FP8 falls from 1159 TF at 8192^3 to
#: 1015-1029 TF at 16384^3 and up (sustained-load clock or Infinity Cache effects).
#: GB200 FP4 at 4096^3 reaches 5177 TF, the law says 6700: K0 was fitted on BF16, and at
#: FP4 a K step takes a quarter of the time, so the fixed per-tile cost weighs more.
KNOWN_MISSES = {("mi300x", "fp8", (16384, 16384, 16384)), ("mi300x", "fp8", (32768,) * 3),
                ("gb200", "fp4", (4096, 4096, 4096)),
                # 256 tiles on 304 CUs, one under-filled wave: 955 TF measured, 1107 by the
                # law; the Stream-K fix-up cost folded into eta_large is largest there.
                ("mi300x", "fp8", (4096, 4096, 4096))}


def _rate_tflops(a: Accelerator, precision: str, shape: tuple[int, int, int],
                 bytes_in: float, eta_large: float) -> float:
    m, n, k = shape
    peak = a.peak_flops.get(precision)
    assert peak is not None
    t = gemm_time_s(m, n, k, 1, peak, a.memory.hbm_bandwidth, a.compute, bytes_in, 2,
                    eta_large, 0.0)
    return 2.0 * m * n * k / float(t) / 1e12


@pytest.mark.parametrize("series", SERIES, ids=lambda s: f"{s.chip}-{s.precision}")
def test_large_gemm_anchors(cat: Catalog, series: Series) -> None:
    # eta_large is the series' documented ceiling (its best measured rate) divided by the
    # law's shape factor at that shape, i.e. one fitted number per chip and precision as
    # calibration will fit it; every other large shape is then predicted by the law.
    # Benchmarks launch kernels back to back, so launch_s = 0.
    a = cat.accelerator(series.chip)
    assert a.compute is not None
    best = max(series.points, key=lambda s: series.points[s])
    eta = series.points[best] / _rate_tflops(a, series.precision, best, series.bytes_in, 1.0)
    assert 0.3 < eta <= 1.05
    for shape, measured in series.points.items():
        if (series.chip, series.precision, shape) in KNOWN_MISSES:
            continue
        predicted = _rate_tflops(a, series.precision, shape, series.bytes_in, eta)
        assert predicted == pytest.approx(measured, rel=0.10), (shape, predicted, measured)


def test_mi300x_maf_with_sustained_clock(cat: Catalog) -> None:
    # ROCm blog "Measuring Max-Achievable FLOPs - Part 2" (compute_units.md §2.1.2):
    # M = 4096, N = 4864, K = 32896 is one wave of 256 x 256 tiles on 304 CUs; MI300X BF16
    # 708 TF at a median 1207 MHz, MI325X 843 TF at 1447 MHz. eta_large from the
    # catalog's sustained clock and the documented software efficiency.
    for chip_id, measured in (("mi300x", 708.0), ("mi325x", 843.0)):
        a = cat.accelerator(chip_id)
        assert a.compute is not None
        assert float(wave_efficiency(4096, 4864, 1, 256, 256, a.compute.units)) == 1.0
        eta = sustained_clock_fraction(a.compute) * ETA_SOFTWARE_16BIT
        assert _rate_tflops(a, "bf16", (4096, 4864, 32896), 2, eta) == \
            pytest.approx(measured, rel=0.05)


# ---- vectorization and sanity ----------------------------------------------------------


def test_arrays_equal_scalar_calls(cat: Catalog) -> None:
    rng = np.random.default_rng(7)
    m = rng.integers(1, 20000, 200)
    n = rng.integers(1, 20000, 200)
    k = rng.integers(1, 20000, 200)
    g = rng.integers(1, 64, 200)
    a = cat.accelerator("b200")
    vec = gemm_time_s(m, n, k, g, 4.5e15, 8e12, a.compute, 1, 2, 0.7, KERNEL_GAP_S)
    assert vec.shape == (200,)
    for i in range(200):
        one = gemm_time_s(int(m[i]), int(n[i]), int(k[i]), int(g[i]), 4.5e15, 8e12, a.compute,
                          1, 2, 0.7, KERNEL_GAP_S)
        assert float(one) == vec[i]
    s = rng.integers(1, 40000, 50)
    causal = rng.integers(0, 2, 50).astype(bool)
    win = rng.choice([0, 128, 4096], 50)
    fa = flash_attention_time_s(2, 32, 8, s, 128, causal, win, 2.25e15, 8e12, 0.5, a.compute,
                                2, KERNEL_FLOOR_S)
    for i in range(50):
        one = flash_attention_time_s(2, 32, 8, int(s[i]), 128, bool(causal[i]), int(win[i]),
                                     2.25e15, 8e12, 0.5, a.compute, 2, KERNEL_FLOOR_S)
        assert float(one) == fa[i]


def test_efficiencies_match_compute_term() -> None:
    # Without a split, compute_s == FLOPs / (peak eta_large eta_tile eta_wave eta_K).
    m, n, k = 3000, 5000, 6000
    cost = gemm_cost(m, n, k, 1, H100_PEAK_BF16, 1e18, H100, 2, 2, 0.8, 0.0)
    tm = float(tile_m_for(m, 128))  # 64: 3,008 rows pad less than 3,072
    eta = (0.8 * tile_efficiency(m, n, tm, 256) * wave_efficiency(m, n, 1, tm, 256, 132)
           * k_efficiency(k, 280))
    assert float(cost.compute_s) == pytest.approx(float(gemm_flops(m, n, k, 1))
                                                  / (H100_PEAK_BF16 * float(eta)))


CHIPS: list[Compute | ChipCompute | None] = [
    H100, None, ChipCompute(256, 128, 74, 540.0, False), ChipCompute(256, 256, 304, 230.0, True),
    ChipCompute(256, 128, 74, 540.0, False, units=148, exp_per_s=4.4e12),  # softmax floor
]
dims = st.integers(min_value=1, max_value=1 << 17)


@settings(max_examples=300, deadline=None)
@given(m=st.floats(min_value=0.0, max_value=1e5), n=dims, k=dims,
       groups=st.integers(min_value=1, max_value=512), which=st.integers(0, len(CHIPS) - 1),
       peak=st.floats(min_value=1e13, max_value=1e16),
       hbm=st.floats(min_value=1e11, max_value=1e13),
       more=st.floats(min_value=1.0, max_value=10.0), eta=st.floats(min_value=0.05, max_value=1.0),
       bytes_in=st.sampled_from([0.5, 1.0, 2.0, 4.0]))
def test_gemm_monotone_and_finite(m: float, n: int, k: int, groups: int, which: int,
                                  peak: float, hbm: float, more: float, eta: float,
                                  bytes_in: float) -> None:
    c = CHIPS[which]
    t = gemm_cost(m, n, k, groups, peak, hbm, c, bytes_in, 2, eta, KERNEL_GAP_S)
    for term in (t.compute_s, t.memory_s, t.time_s):
        assert np.isfinite(term).all()
        assert (term >= 0).all()
    assert float(t.time_s) >= KERNEL_GAP_S
    faster_peak = gemm_time_s(m, n, k, groups, peak * more, hbm, c, bytes_in, 2, eta,
                              KERNEL_GAP_S)
    faster_hbm = gemm_time_s(m, n, k, groups, peak, hbm * more, c, bytes_in, 2, eta,
                             KERNEL_GAP_S)
    assert float(faster_peak) <= float(t.time_s) * (1 + 1e-12)
    assert float(faster_hbm) <= float(t.time_s) * (1 + 1e-12)


@settings(max_examples=200, deadline=None)
@given(b=st.integers(1, 256), h=st.integers(1, 128), ratio=st.sampled_from([1, 2, 4, 8]),
       s=st.integers(1, 1 << 20), d=st.sampled_from([64, 96, 128, 192, 256]),
       causal=st.booleans(), window=st.sampled_from([0, 1, 128, 4096, 1 << 17]),
       which=st.integers(0, len(CHIPS) - 1), more=st.floats(min_value=1.0, max_value=10.0),
       backward=st.booleans())
def test_attention_monotone_and_finite(b: int, h: int, ratio: int, s: int, d: int,
                                       causal: bool, window: int, which: int, more: float,
                                       backward: bool) -> None:
    kv = max(1, h // ratio)
    c = CHIPS[which]
    base = (b, h, kv, s, d, causal, window)
    t = flash_attention_time_s(*base, 989e12, 3.35e12, 0.5, c, 2, KERNEL_FLOOR_S,
                               backward=backward)
    fp = flash_attention_time_s(*base, 989e12 * more, 3.35e12, 0.5, c, 2, KERNEL_FLOOR_S,
                                backward=backward)
    fh = flash_attention_time_s(*base, 989e12, 3.35e12 * more, 0.5, c, 2, KERNEL_FLOOR_S,
                                backward=backward)
    assert np.isfinite(t)
    assert float(t) >= KERNEL_FLOOR_S
    assert float(fp) <= float(t) * (1 + 1e-12)
    assert float(fh) <= float(t) * (1 + 1e-12)
    # padded work is never below the useful FLOPs
    assert attention_flops(b, h, s, d, causal, window) <= \
        (float(t) - KERNEL_FLOOR_S) * 989e12 * 0.5 / (2.5 if backward else 1.0) * (1 + 1e-9)
    dec = decode_attention_time_s(b, h, kv, s, d, window, 989e12, 3.35e12, 0.5, 2, 0.0)
    dec_fast = decode_attention_time_s(b, h, kv, s, d, window, 989e12 * more, 3.35e12 * more,
                                       0.5, 2, 0.0)
    assert np.isfinite(dec)
    assert float(dec) > 0
    assert float(dec_fast) <= float(dec) * (1 + 1e-12)


def test_doctests() -> None:
    for module in (gemm, attention, chip, roofline):
        result = doctest.testmod(module)
        assert result.failed == 0, module.__name__


# ---- softmax exponentials on the special-function units --------------------------------


def test_exp_rate_matches_flashattention3_figure(cat: Catalog) -> None:
    # FlashAttention-3 (arXiv 2407.08608) §3.1: an H100 SXM5 has 3.9 TFLOPS of special
    # functions against 989 TFLOPS of FP16 matmul.
    assert chip.exp_rate(cat.accelerator("h100-sxm-80gb").compute) == \
        pytest.approx(3.9e12, rel=0.02)
    # Blackwell Ultra doubles Blackwell's rate per SM, on the same 148 SMs.
    b200, b300 = (cat.accelerator(i).compute for i in ("b200", "b300"))
    assert b200 is not None
    assert b300 is not None
    assert chip.exp_rate(b300) / chip.exp_rate(b200) == pytest.approx(2 * b300.clock
                                                                      / b200.clock)
    # A chip whose rate is not published has no floor.
    assert chip_compute(cat.accelerator("mi300x").compute).exp_per_s == 0.0


def _fa4_efficiency(block: Compute | None, d: int, peak: float, eta: float) -> float:
    """Useful FLOP/s over peak of a non-causal forward at S = 16k (the FA4 sweep's end)."""
    b, h, s = 1, 16, 16384
    t = flash_attention_time_s(b, h, h, s, d, False, 0, peak, 1e18, eta, block, 2, 0.0)
    return float(attention_flops(b, h, s, d, False)) / (float(t) * peak)


def test_softmax_floor_caps_d64_attention_where_fa4_measures_it(cat: Catalog) -> None:
    # compute_units.md §2.4 (Dao-AILab/flash-attention PR #2605, a 2.5 PF-class Blackwell):
    # FA4's forward reaches 62-75 % of peak at d = 128 but only 43-50 % at d = 64.
    gb200, gb300 = cat.accelerator("gb200"), cat.accelerator("gb300")
    peak = gb200.peak_flops.bf16
    assert peak is not None
    # even a perfect matmul pipe cannot run d = 64 faster than the exponentials allow
    # (at the clock of the peak; 47 % at the GB200's sustained clock) ...
    assert 0.43 <= _fa4_efficiency(gb200.compute, 64, peak, 1.0) <= 0.505
    # ... while at d = 128 the matmul efficiency is what shows
    assert _fa4_efficiency(gb200.compute, 128, peak, 0.75) == pytest.approx(0.75, rel=0.01)
    # Blackwell Ultra's doubled rate lifts the d = 64 cap above FA4's d = 128 level
    assert _fa4_efficiency(gb300.compute, 64, peak, 0.75) == pytest.approx(0.75, rel=0.01)
    # without a published rate the law is the matmul one alone
    assert _fa4_efficiency(None, 64, peak, 0.9) == pytest.approx(0.9, rel=1e-6)


def test_operator_profile_takes_the_softmax_floor(cat: Catalog) -> None:
    # The engine's path: one d = 64 attention operator (GPT-OSS's head width) costed on a
    # B200 and a B300, whose matmul peaks and HBM are equal; only the exp rate differs.
    from ocplan.costmodel.op_time import ChipPeaks, Efficiencies, profile
    from ocplan.workloads.operators import Operator

    rows, keys, heads, d = 4 * 4096.0, 2048.0, 64.0, 64.0
    scores = rows * keys * heads
    op = Operator(name="attn", kind="attention", flops=2 * scores * (d + d), bytes_read=1e6,
                  bytes_written=1e6, precision="bf16", m=rows, groups=heads, seq_q=4096.0,
                  seq_kv=4096.0, head_dim_qk=d, head_dim_v=d, exps=scores)
    eff = Efficiencies(gemm=0.7, gemm_8bit=0.7, attention=0.9, launch_s=0.0)
    times = {}
    for i in ("b200", "b300"):
        a = cat.accelerator(i)
        assert a.peak_flops.bf16 is not None
        peaks = ChipPeaks(peak=(("bf16", a.peak_flops.bf16),), path_peak=a.peak_flops.bf16,
                          hbm_Bps=a.memory.hbm_bandwidth, compute=chip_compute(a.compute))
        times[i] = float(profile([op], peaks, 1).time(eff).attention_s[0])
    b200 = chip_compute(cat.accelerator("b200").compute)
    exp_s = scores / b200.exp_per_s
    assert times["b200"] == pytest.approx(exp_s, rel=1e-9)  # exp-bound
    assert times["b300"] < 0.75 * times["b200"]
    # A kernel that runs the exponentials between its matmuls (FlashAttention-2's loop,
    # softmax_overlap 0) pays both; half overlapped, half of the shorter.
    a = cat.accelerator("b200")
    assert a.peak_flops.bf16 is not None
    chip_b200 = ChipPeaks(peak=(("bf16", a.peak_flops.bf16),), path_peak=a.peak_flops.bf16,
                          hbm_Bps=a.memory.hbm_bandwidth, compute=b200)
    prof = profile([op], chip_b200, 1)
    mm_s = float(prof.compute_s[0, 0]) / eff.attention  # matmul pipe, waves included
    assert mm_s < exp_s
    for omega, expected in ((0.0, exp_s + mm_s), (0.5, exp_s + 0.5 * mm_s)):
        t = prof.time(replace(eff, softmax_overlap=omega))
        assert float(t.attention_s[0]) == pytest.approx(expected, rel=1e-9)
    # the special-function units run at the SM clock: a power cap that holds 80 % of it
    # slows the exponentials as it slows the matmuls
    capped = prof.time(replace(eff, clock=0.8))
    assert float(capped.attention_s[0]) == pytest.approx(exp_s / 0.8, rel=1e-9)


@pytest.mark.parametrize("chip", ["a100-sxm-80gb", "a100-sxm-40gb"])
def test_a100_k0_is_the_h200_measurement_scaled_by_flop_per_byte(cat: Catalog,
                                                                 chip: str) -> None:
    """No K sweep is published for the A100: its K0 (``t0 / t_k``, the tile's fixed
    memory-bound prologue and epilogue over its MMA time per unit of K) is the H200's
    measured one scaled by the ratio of 16-bit peak to HBM bandwidth."""
    def flop_per_byte(acc: str) -> float:
        a = cat.accelerator(acc)
        assert a.peak_flops.bf16 is not None
        return a.peak_flops.bf16 / a.memory.hbm_bandwidth
    h200 = chip_compute(cat.accelerator("h200-sxm-141gb").compute).k0
    a100 = chip_compute(cat.accelerator(chip).compute).k0
    assert a100 == pytest.approx(h200 * flop_per_byte(chip) / flop_per_byte("h200-sxm-141gb"),
                                 abs=1.0)
