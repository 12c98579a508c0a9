"""FP8 context attention (session 76): a serving job's prefill attention may run its
matmuls on the 8-bit units over an FP8 KV cache, as TensorRT-LLM's FP8 context FMHA
does; validation rows of TensorRT-LLM stacks with an FP8 cache are predicted so."""

from __future__ import annotations

import numpy as np
import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.costmodel.attention import flash_attention_time_s
from ocplan.costmodel.op_time import FP8_ATTENTION_SHARE, attention_peak
from ocplan.errors import SpecError
from ocplan.plan.calibration import load_calibration
from ocplan.plan.engine import chip_peaks, efficiencies, system_model
from ocplan.results.serving_validation import prepare_serving_row
from ocplan.serving.calibration import load_serving_calibration
from ocplan.serving.estimate import estimate_serving
from ocplan.serving.plan import ServingPlan
from ocplan.serving.step import step_model
from ocplan.workloads.operators import Shard, attention_operator
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.shape import ModelShape
from test_serving_row_facts import ROW

CAT = load_catalog()
LLAMA70 = ModelShape.from_arch(CAT.model("llama3-70b"))
FP8 = dict(weight_precision="fp8", activation_precision="fp8", kv_precision="fp8")


def _peaks(chip: str) -> object:
    return chip_peaks(system_model(system_for_chip(CAT, chip, 8)), "bf16")


def test_fp8_attention_runs_at_the_8bit_peak_where_the_chip_has_one() -> None:
    h100, a100 = _peaks("h100-sxm-80gb"), _peaks("a100-sxm-80gb")
    assert attention_peak("bf16", h100) == h100.path_peak  # type: ignore[attr-defined]
    assert attention_peak("fp8", h100) == pytest.approx(
        h100.peak_of("fp8") * FP8_ATTENTION_SHARE)  # type: ignore[attr-defined]
    # no 8-bit unit on an A100: FP8 attention is 16-bit attention there
    assert attention_peak("fp8", a100) == a100.path_peak  # type: ignore[attr-defined]


def test_the_fp8_gain_at_flashattention3s_shape_is_its_measured_one() -> None:
    """FlashAttention-3 on H100 (Shah et al. 2024, Fig. 5 and 6; compute_units.md §2.4),
    d = 256, non-causal, S = 16k, B S = 16k tokens, 8 heads: 1,171 TFLOP/s in FP8
    against 756 in BF16, 1.55x. :data:`FP8_ATTENTION_SHARE` comes from those two rates;
    what this checks is that the model's softmax floor (exponentials at a fixed rate,
    the calibrated overlap) leaves that gain within 10 % rather than eating it: 2x the
    peak alone would be 2.0x."""
    sm = system_model(system_for_chip(CAT, "h100-sxm-80gb", 8))
    eff, peaks = efficiencies(sm, load_calibration()), chip_peaks(sm, "bf16")
    acc = CAT.accelerator("h100-sxm-80gb")

    def seconds(peak: float) -> float:
        return float(flash_attention_time_s(
            1, 8, 8, 16384, 256, False, 0, peak, peaks.hbm_Bps, eff.attention,
            acc.compute, 2, 0.0, softmax_overlap=eff.softmax_overlap))

    gain = seconds(attention_peak("bf16", peaks)) / seconds(attention_peak("fp8", peaks))
    assert gain == pytest.approx(1171 / 756, rel=0.10)
    assert gain < 2.0 * FP8_ATTENTION_SHARE  # the exponentials cost FP8 a share too


def test_only_the_prefill_attention_takes_the_format() -> None:
    shard = Shard(tp=8.0, batch=4.0, seq_len=2048.0, sp=False)
    prefill = attention_operator(LLAMA70, "prefill", shard, attention_precision="fp8")
    decode = attention_operator(LLAMA70, "decode", Shard(tp=8.0, batch=64.0, seq_len=1.0,
                                                         kv_len=4096.0, sp=False),
                                kv_precision="fp8", attention_precision="fp8")
    assert (prefill.precision, decode.precision) == ("fp8", "bf16")
    with pytest.raises(SpecError, match="attention_precision"):
        attention_operator(LLAMA70, "prefill", shard, attention_precision="int8")


def test_fp8_attention_needs_an_fp8_cache() -> None:
    with pytest.raises(SpecError, match=r"attention_precision.*kv_precision fp8"):
        ServingWorkload(LLAMA70, 20000, 2000, attention_precision="fp8")


def _iteration(attention: str, prompt: float) -> object:
    sm = system_model(system_for_chip(CAT, "h200-sxm-141gb", 8))
    wl = ServingWorkload(LLAMA70, prompt, 200, attention_precision=attention, **FP8)
    model = step_model(wl, ServingPlan(tp=8), sm, chip_peaks(sm, "bf16"),
                       load_calibration(), load_serving_calibration())
    # one prompt's prefill beside 32 decoding sequences at 4,000 tokens of context
    return model.iteration(prompt, 1.0, 32.0, 32 * 4000.0)


@pytest.mark.parametrize("prompt", [128.0, 20000.0])
def test_fp8_attention_shortens_the_prefill_attention_and_nothing_else(prompt: float) -> None:
    """The attention term of an iteration falls, by less than half (decode attention
    stays; the FP8 kernel holds a smaller share of a peak twice as high); the GEMM and
    memory terms do not move."""
    bf16, fp8 = _iteration("bf16", prompt), _iteration("fp8", prompt)
    for name in ("matrix_s", "memory_s", "comm_s", "host_s"):
        np.testing.assert_array_equal(getattr(fp8, name), getattr(bf16, name))
    ratio = float(np.ravel(fp8.attention_s)[0] / np.ravel(bf16.attention_s)[0])  # type: ignore[attr-defined]
    assert 0.5 < ratio < 1.0


def test_long_prompts_gain_and_short_ones_barely() -> None:
    system = system_for_chip(CAT, "h200-sxm-141gb", 8)

    def gain(prompt: int) -> float:
        out = []
        for attention in ("bf16", "fp8"):
            wl = ServingWorkload(LLAMA70, prompt, 200, attention_precision=attention, **FP8)
            est = estimate_serving(wl, ServingPlan(tp=8), system)
            out.append(est.output_tokens_per_s)
        return out[1] / out[0] - 1.0

    long, short = gain(20000), gain(128)
    assert long > 0.02
    assert 0.0 <= short < long / 4


def test_tensorrt_rows_with_an_fp8_cache_attend_in_fp8() -> None:
    trt = dict(ROW, chip="h200-sxm-141gb", kv_precision="fp8",
               framework="TensorRT-LLM v1.0, PyTorch backend, trtllm-bench")
    assert prepare_serving_row(trt, CAT).workload.attention_precision == "fp8"
    assert any("attention fp8" in n for n in prepare_serving_row(trt, CAT).notes)
    for other in (dict(trt, framework="vLLM 0.10.0"),    # not assumed of other stacks
                  dict(trt, kv_precision="bf16"),         # a 16-bit cache
                  dict(trt, chip="a100-sxm-80gb")):       # no 8-bit unit
        assert prepare_serving_row(other, CAT).workload.attention_precision == "bf16"
