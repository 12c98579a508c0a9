"""Serving physics beyond one fixed request: length distributions bounding the KV cache,
the decode-attention rate of MLA, and the HBM efficiency of a chip family.

Each test checks a closed form or a published rate against the model.
"""

from __future__ import annotations

import math

import numpy as np

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.plan.calibration import load_calibration
from ocplan.plan.engine import chip_peaks, system_model
from ocplan.results.serving_validation import MLPERF_LENGTH_CV, _length_distribution
from ocplan.serving.calibration import ServingCalibration, load_serving_calibration
from ocplan.serving.estimate import estimate_serving
from ocplan.serving.plan import ServingPlan
from ocplan.serving.step import (
    DECODE_ATTENTION_EFFICIENCY,
    DECODE_ATTENTION_EFFICIENCY_BY_FAMILY,
    decode_attention_cap,
    step_model,
)
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.shape import ModelShape

CAT = load_catalog()


def shape(model: str) -> ModelShape:
    return ModelShape.from_arch(CAT.model(model))


def test_kv_bound_batch_shrinks_by_the_length_biased_context() -> None:
    """Under continuous batching a running sequence holds ``I + E[O^2] / 2E[O]`` tokens on
    average (long requests stay longer); with lognormal outputs of log-sigma ``s``,
    ``E[O^2] = m^2 e^(s^2)``. When the KV cache caps the batch, the batch falls by the
    ratio of the two contexts."""
    system = system_for_chip(CAT, "h100-sxm-80gb", 1)
    i, o, s = 8000.0, 8000.0, 0.8
    fixed = ServingWorkload(shape("llama3-8b"), i, o)
    spread = ServingWorkload(shape("llama3-8b"), i, o, length_distribution="lognormal",
                             length_spread=s)
    a = estimate_serving(fixed, ServingPlan(), system)
    b = estimate_serving(spread, ServingPlan(), system)
    assert a.batch_limit == b.batch_limit == "KV capacity"
    expected = (i + o * math.exp(s * s) / 2.0) / (i + o / 2.0)
    assert math.isclose(a.batch_per_instance / b.batch_per_instance, expected, rel_tol=1e-9)


def test_mlperf_lengths_match_the_dataset_mean_and_variance() -> None:
    """The lognormal spread given to an MLPerf row reproduces its dataset's coefficient
    of variation: ``E[O^2] / E[O]^2 = 1 + cv^2``."""
    for name, cv in MLPERF_LENGTH_CV.items():
        lengths = _length_distribution(f"MLPerf {name}: some samples")
        wl = ServingWorkload(shape("llama3-8b"), 500.0, 300.0, **lengths)
        assert math.isclose(wl.output_second_moment / 300.0 ** 2, 1.0 + cv * cv, rel_tol=1e-9)
    assert _length_distribution("synthetic random tokens, fixed ISL/OSL") == {}


def test_mla_decode_attention_runs_at_most_at_the_measured_decode_rate() -> None:
    """MLA decode attention does ``2 a (r_kv + d_r + r_kv)`` FLOP per head, key and query
    (scores on the 576-wide latent and RoPE key, values on the 512-wide latent); no
    kernel does it faster than the best measured decode kernel of the chip's family
    (Blackwell: TensorRT-LLM's MLA decode on GB200; others: FlashMLA on H800), so its
    time is at least the FLOPs at that share of the 16-bit peak, and a Blackwell chip's
    attention takes longer than the H800 share would give."""
    wl = ServingWorkload(shape("deepseek-v3"), 1000.0, 1000.0, weight_precision="fp8",
                         activation_precision="fp8", kv_precision="fp8")
    plan = ServingPlan(tp=1, dp=8, ep=8, attention_dp=True)  # all 128 heads per rank
    m = wl.model
    seqs, context = 64.0, 8192.0
    flops = m.n_layers * seqs * context * m.n_heads / plan.tp * 2.0 * (
        m.mla_kv_rank + m.mla_rope_dim + m.mla_kv_rank)
    for chip_id, family in (("b200", "blackwell"), ("h100-sxm-80gb", "hopper")):
        sm = system_model(system_for_chip(CAT, chip_id, 8))
        assert sm.family == family
        chip = chip_peaks(sm, "bf16")
        model = step_model(wl, plan, sm, chip, load_calibration(), load_serving_calibration())
        part = model.decode_attention_part(np.array([seqs]), np.array([context]))
        cap = decode_attention_cap(family)
        assert float(part.time.attention_s[0]) >= flops / (chip.path_peak * cap) * (1 - 1e-9)
        assert model.decode_eff.attention == min(model.eff.attention, cap)
        if family == "blackwell":
            # the fitted (training) attention efficiency lies above both caps, so the
            # measured Blackwell share is what binds
            assert model.eff.attention > DECODE_ATTENTION_EFFICIENCY
            assert float(part.time.attention_s[0]) > flops / (
                chip.path_peak * DECODE_ATTENTION_EFFICIENCY)
    assert decode_attention_cap("hopper") == decode_attention_cap(None) \
        == DECODE_ATTENTION_EFFICIENCY
    assert 0.0 < DECODE_ATTENTION_EFFICIENCY_BY_FAMILY["blackwell"] < DECODE_ATTENTION_EFFICIENCY


def test_family_hbm_efficiency_sets_the_streaming_time_of_its_chips() -> None:
    """A family's own HBM efficiency replaces the global one for its chips only, and a
    batch-1 decode step's HBM term scales as its inverse."""
    base = ServingCalibration(hbm_efficiency=0.8)
    own = ServingCalibration(hbm_efficiency=0.8, family_hbm_efficiency=(("cdna3", 0.6),))
    assert own.hbm_for("cdna3") == 0.6
    assert own.hbm_for("hopper") == own.hbm_for(None) == 0.8
    assert ServingCalibration.from_json(own.to_json()) == own
    wl = ServingWorkload(shape("llama3-8b"), 512.0, 512.0)
    times = []
    for chip, cal in (("mi300x", base), ("mi300x", own), ("h100-sxm-80gb", base),
                      ("h100-sxm-80gb", own)):
        sm = system_model(system_for_chip(CAT, chip, 1))
        model = step_model(wl, ServingPlan(), sm, chip_peaks(sm, "bf16"), load_calibration(),
                           cal)
        times.append(float(model.iteration(0.0, 0.0, 1.0, 512.0).bytes_s[0]))
    assert math.isclose(times[1] / times[0], 0.8 / 0.6, rel_tol=1e-9)
    assert math.isclose(times[3], times[2], rel_tol=1e-12)
