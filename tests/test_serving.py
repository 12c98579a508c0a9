"""The serving estimator: step model, KV cache, steady state, SLOs, disaggregation.

Each test checks a property a physical argument fixes (roofline crossover, published KV
sizes, Little's law) against the model, not a number copied from it.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import System, system_for_chip
from ocplan.errors import SpecError
from ocplan.plan.calibration import load_calibration
from ocplan.plan.engine import chip_peaks, efficiencies, system_model
from ocplan.serving.calibration import load_serving_calibration
from ocplan.serving.estimate import ServingEstimate, estimate_serving
from ocplan.serving.memory import kv_bytes_per_token_per_chip, weight_bytes_per_chip
from ocplan.serving.plan import ServingPlan
from ocplan.serving.step import step_model
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.shape import ModelShape

CAT = load_catalog()
#: One chip of every calibration family with a default server.
FAMILY_CHIPS = ("a100-sxm-80gb", "h100-sxm-80gb", "b200", "mi300x", "mi355x", "gaudi3",
                "tpu-v5p", "ascend-910b")


def shape(model: str) -> ModelShape:
    return ModelShape.from_arch(CAT.model(model))


def workload(model: str = "llama3-8b", **kw: object) -> ServingWorkload:
    values: dict[str, object] = dict(input_len=512, output_len=512)
    values.update(kw)
    return ServingWorkload(shape(model), **values)  # type: ignore[arg-type]


def model_for(chip: str, wl: ServingWorkload, plan: ServingPlan):  # type: ignore[no-untyped-def]
    sm = system_model(system_for_chip(CAT, chip, plan.chips))
    return step_model(wl, plan, sm, chip_peaks(sm, "bf16"), load_calibration(),
                      load_serving_calibration()), sm


@pytest.mark.parametrize("chip", FAMILY_CHIPS)
def test_decode_is_hbm_bound_at_batch_1_and_compute_bound_at_large_batch(chip: str) -> None:
    wl = workload()
    step, _sm = model_for(chip, wl, ServingPlan())
    small = step.iteration(0.0, 0.0, 1.0, 16.0)
    large = step.iteration(0.0, 0.0, 16384.0, 16.0 * 16384)
    # on the device: streaming the weights dominates at batch 1 (the host's per-iteration
    # overhead may still exceed both for a small model), the matrix work at 16,384
    assert float(small.bytes_s[0]) > 3 * float(small.flops_s[0])
    assert small.bound() in ("HBM bandwidth", "host overhead")
    assert large.bound() == "compute"


@pytest.mark.parametrize("chip", FAMILY_CHIPS)
def test_decode_crossover_sits_where_the_roofline_puts_it(chip: str) -> None:
    """A 16-bit decode step streams 2 bytes per weight and does 2 FLOP per weight per
    sequence, so compute overtakes HBM at B* = (peak x eta) / (BW x eta_bw) sequences;
    small-K and the KV cache move it by less than 40 %; the GEMM's M padded up to a whole
    tile at most doubles the compute term, so the crossing comes at most 2x early (just
    past a tile boundary below B*)."""
    wl = workload()
    step, sm = model_for(chip, wl, ServingPlan())
    batch = np.geomspace(1, 65536, 400)
    it = step.iteration(np.zeros_like(batch), np.zeros_like(batch), batch, 16.0 * batch)
    crossing = float(batch[np.argmax(it.flops_s >= it.bytes_s)])
    eff = efficiencies(sm, load_calibration())
    peak = sm.peak.get("bf16") or sm.peak["fp16"]
    roof = peak * eff.gemm / (sm.hbm_Bps * load_serving_calibration().hbm_for(sm.family))
    assert 0.5 * roof <= crossing <= 1.4 * roof, (crossing, roof)


#: KV-cache bytes per token (bf16, one chip) from each model's config.json: layers x
#: 2 (K and V) x KV heads x head_dim x 2 bytes; MLA: layers x (kv_lora_rank 512 +
#: qk_rope_head_dim 64) x 2 bytes (DeepSeek-V2 §2.1.2).
PUBLISHED_KV = {
    "llama3-8b": 32 * 2 * 8 * 128 * 2,
    "llama3-70b": 80 * 2 * 8 * 128 * 2,
    "llama3-405b": 126 * 2 * 8 * 128 * 2,
    "mixtral-8x7b": 32 * 2 * 8 * 128 * 2,
    "qwen3-235b-a22b": 94 * 2 * 4 * 128 * 2,
    "deepseek-v3": 61 * (512 + 64) * 2,
}


@pytest.mark.parametrize("model", sorted(PUBLISHED_KV))
def test_kv_bytes_per_token_match_published_configs(model: str) -> None:
    got = kv_bytes_per_token_per_chip(shape(model), ServingPlan(), "bf16", 1000.0)
    assert got == PUBLISHED_KV[model]
    fp8 = kv_bytes_per_token_per_chip(shape(model), ServingPlan(), "fp8", 1000.0)
    assert fp8 == PUBLISHED_KV[model] / 2


def test_kv_heads_split_by_tp_until_replicated() -> None:
    s = shape("llama3-70b")  # 8 KV heads
    one = kv_bytes_per_token_per_chip(s, ServingPlan(), "bf16", 100.0)
    assert kv_bytes_per_token_per_chip(s, ServingPlan(tp=8), "bf16", 100.0) == one / 8
    # beyond 8 ranks each KV head is replicated: no further split
    assert kv_bytes_per_token_per_chip(s, ServingPlan(tp=16), "bf16", 100.0) == one / 8
    mla = shape("deepseek-v3")
    assert kv_bytes_per_token_per_chip(mla, ServingPlan(tp=8), "bf16", 100.0) == \
        kv_bytes_per_token_per_chip(mla, ServingPlan(), "bf16", 100.0)


def test_weight_bytes_follow_the_format_and_the_split() -> None:
    s = shape("llama3-70b")
    bf16 = weight_bytes_per_chip(s, ServingPlan(), "bf16")
    assert bf16 == pytest.approx(2 * s.total_params, rel=1e-9)
    fp4 = weight_bytes_per_chip(s, ServingPlan(), "fp4")
    vocab = 2 * (s.embedding_params + s.head_params)
    # NVFP4: 4 bits per value plus one 8-bit scale per 16 values = 4.5 bits per weight
    assert fp4 == pytest.approx((bf16 - vocab) / 2 * 4.5 / 8 + vocab, rel=1e-9)
    assert weight_bytes_per_chip(s, ServingPlan(tp=4), "bf16") == pytest.approx(bf16 / 4)


def tpot(est: ServingEstimate) -> float:
    """TPOT of a feasible estimate (None only when infeasible)."""
    assert est.tpot_s is not None
    return est.tpot_s


def h200(chips: int = 8) -> System:
    return system_for_chip(CAT, "h200-sxm-141gb", chips)


def test_offline_throughput_obeys_littles_law_and_the_batch_limit() -> None:
    wl = workload("llama3-70b", weight_precision="fp8", activation_precision="fp8",
                  kv_precision="fp8", input_len=1000, output_len=1000)
    est = estimate_serving(wl, ServingPlan(tp=8), h200())
    assert est.feasible
    it = est.iteration
    assert it is not None
    # B sequences each gain one token per iteration
    assert est.output_tokens_per_s == pytest.approx(est.batch_per_instance / it.total_s,
                                                    rel=1e-6)
    # requests/s x output length = output tokens/s
    assert est.requests_per_s * wl.output_len == pytest.approx(est.output_tokens_per_s)
    mem = est.memory
    assert mem is not None
    ctx = wl.input_len + wl.output_len / 2
    assert est.batch_per_instance <= mem.kv_tokens / ctx + 1e-6


def test_more_bandwidth_and_more_peak_are_never_slower() -> None:
    wl = workload("llama3-70b", input_len=2000, output_len=200)
    plan = ServingPlan(tp=8)
    step, _sm = model_for("h100-sxm-80gb", wl, plan)
    faster_hbm = replace(step, chip=replace(step.chip, hbm_Bps=step.chip.hbm_Bps * 1.5))
    faster_peak = replace(step, chip=replace(
        step.chip, peak=tuple((k, v * 1.5) for k, v in step.chip.peak),
        path_peak=step.chip.path_peak * 1.5))
    batch = np.geomspace(1, 4096, 25)
    args = (batch * 2.0, batch / 100, batch, batch * 1100)
    base = step.iteration(*args).total_s
    assert np.all(faster_hbm.iteration(*args).total_s <= base + 1e-15)
    assert np.all(faster_peak.iteration(*args).total_s <= base + 1e-15)


def test_balanced_routing_is_never_slower_than_imbalanced() -> None:
    # vLLM's default reserve (gpu_memory_utilization 0.9), whatever the fitted one: the
    # fp8 weights must fit for the comparison to mean anything
    scal = replace(load_serving_calibration(), reserve_fraction=0.10)
    for imbalance in (1.3, 2.0, 4.0):
        plan = ServingPlan(tp=1, dp=8, ep=8, attention_dp=True)
        fair = workload("deepseek-v3", weight_precision="fp8", activation_precision="fp8")
        skew = replace(fair, moe_imbalance=imbalance)
        a = estimate_serving(fair, plan, h200(), serving=scal)
        b = estimate_serving(skew, plan, h200(), serving=scal)
        assert a.feasible
        assert b.feasible
        assert a.iteration is not None
        assert b.iteration is not None
        step_a, _ = model_for("h200-sxm-141gb", fair, plan)
        step_b, _ = model_for("h200-sxm-141gb", skew, plan)
        batch = np.geomspace(8, 8192, 12)
        ta = step_a.iteration(0 * batch, 0 * batch, batch, 1000 * batch).total_s
        tb = step_b.iteration(0 * batch, 0 * batch, batch, 1000 * batch).total_s
        assert np.all(ta <= tb + 1e-15)


def test_an_slo_no_load_meets_is_a_result_with_its_reason() -> None:
    wl = workload("llama3-70b", load="poisson", rate_per_s=1.0, slo_tpot_s=1e-6,
                  slo_ttft_s=10.0)
    est = estimate_serving(wl, ServingPlan(tp=8), h200())
    assert est.feasible
    assert est.slo_met is False
    assert est.slo_rate_per_s == 0.0
    assert est.slo_reason is not None
    assert "TPOT" in est.slo_reason


def test_a_looser_slo_admits_a_higher_rate() -> None:
    rates = []
    for tpot in (0.02, 0.04, 0.08, 0.16):
        wl = workload("llama3-70b", load="poisson", rate_per_s=1.0, slo_tpot_s=tpot,
                      slo_ttft_s=5.0, weight_precision="fp8", activation_precision="fp8")
        est = estimate_serving(wl, ServingPlan(tp=8), h200())
        assert est.slo_rate_per_s is not None
        rates.append(est.slo_rate_per_s)
    assert rates == sorted(rates)
    assert rates[-1] > rates[0]


def test_weights_that_do_not_fit_are_infeasible_with_the_reason() -> None:
    wl = workload("llama3-405b")
    est = estimate_serving(wl, ServingPlan(tp=1, dp=8), h200())
    assert not est.feasible
    assert est.reason is not None
    assert est.reason.startswith("memory")
    assert est.memory is not None
    assert est.memory.weight_bytes > 141e9


def test_a_chip_without_fp4_runs_fp4_weights_weight_only_and_says_so() -> None:
    """4-bit weights on a chip with no 4-bit unit run as W4A16 (weight-only kernels,
    op_time.FALLBACK): the same estimate as stating 16-bit activations, and slower than
    a W4A8 deployment that states 8-bit ones."""
    wl = workload("llama3-70b", weight_precision="fp4", activation_precision="fp4",
                  kv_precision="fp8")
    est = estimate_serving(wl, ServingPlan(tp=8), h200())
    assert est.feasible
    assert any("no fp4 matrix unit" in n and "bf16 rate" in n for n in est.notes)
    w4a16 = estimate_serving(replace(wl, activation_precision="bf16"), ServingPlan(tp=8),
                             h200())
    assert est.output_tokens_per_s == pytest.approx(w4a16.output_tokens_per_s, rel=1e-12)
    assert est.memory is not None
    assert w4a16.memory is not None
    assert est.memory.weight_bytes == w4a16.memory.weight_bytes
    w4a8 = estimate_serving(replace(wl, activation_precision="fp8"), ServingPlan(tp=8),
                            h200())
    assert est.iteration is not None
    assert w4a8.iteration is not None
    assert w4a8.iteration.matrix_s < 0.75 * est.iteration.matrix_s
    b200 = estimate_serving(wl, ServingPlan(tp=8), system_for_chip(CAT, "b200", 8))
    # nothing but the HBM-bound decode note (tests/test_serving_hbm_note.py) of its family
    assert [n for n in b200.notes if not n.startswith("HBM-bound")] == []


def test_disaggregated_decode_carries_no_prefill_interference() -> None:
    """Decode instances of a disaggregated deployment run no prompt chunks, so at the
    same batch their TPOT is never above that of the aggregated instances."""
    wl = workload("llama3-70b", input_len=4000, output_len=500, weight_precision="fp8",
                  activation_precision="fp8", kv_precision="fp8")
    agg = estimate_serving(wl, ServingPlan(tp=4, dp=4), h200(16))
    for prefill in (4, 8, 12):
        dis = estimate_serving(wl, ServingPlan(tp=4, dp=4, prefill_chips=prefill), h200(16))
        assert dis.feasible
        assert agg.feasible
        step, _ = model_for("h200-sxm-141gb", wl, ServingPlan(tp=4, dp=1))
        b = agg.batch_per_instance
        mixed = step.iteration(b * wl.input_len / wl.output_len, b / wl.output_len, b,
                               b * 4250).total_s[0]
        pure = replace(step, decode_only=True).iteration(0.0, 0.0, b, b * 4250).total_s[0]
        assert pure <= mixed
        assert dis.prefill_input_tokens_per_s_per_chip is not None
        assert dis.decode_output_tokens_per_s_per_chip is not None


def test_static_batch_tpot_is_the_decode_alone() -> None:
    """A static batch's TPOT is the time per output token after the first (vLLM's and
    MLPerf's definition): its decode steps, not its prefill; the prefill is the rest of
    the wave, and the mean TTFT falls within it."""
    wl = workload("llama3-70b", load="static", batch=32, input_len=4096, output_len=2048,
                  weight_precision="fp8", activation_precision="fp8")
    est = estimate_serving(wl, ServingPlan(tp=8), system_for_chip(CAT, "mi300x", 8))
    assert est.feasible
    assert est.tpot_s is not None
    assert est.ttft_s is not None
    total = 32 * 2048 / est.output_tokens_per_s
    assert est.iteration is not None
    assert est.tpot_s == pytest.approx(est.iteration.total_s, rel=1e-9)
    prefill = total - est.tpot_s * 2048
    assert 0.0 < est.ttft_s < prefill


def test_bad_serving_input_names_every_field() -> None:
    with pytest.raises(SpecError) as exc:
        ServingWorkload(shape("llama3-8b"), input_len=0, output_len=10, load="poisson",
                        kv_precision="fp4", prefix_hit=1.5)
    fields = {p.field for p in exc.value.problems}
    assert {"input_len", "rate_per_s", "kv_precision", "prefix_hit"} <= fields
    # each range in words from the one declaration the API schema also publishes
    allowed = {p.field: p.message for p in exc.value.problems}
    assert allowed["input_len"] == "must be from 1 to 16,777,216"
    assert allowed["prefix_hit"] == "must be from 0 to below 1"
    assert "required with load poisson" in allowed["rate_per_s"]


@pytest.mark.parametrize(("field", "value", "words"), [
    ("rate_per_s", 0.0, "must be > 0"), ("spec_tokens", 17, "must be from 0 to 16"),
    ("moe_imbalance", 0.5, "must be from 1 to 64"), ("slo_tpot_s", -1.0, "must be > 0"),
    ("length_spread", 4.5, "must be from 0 to 4"), ("requests", 0, "must be >= 1"),
])
def test_declared_bounds_are_checked(field: str, value: float, words: str) -> None:
    load = {"rate_per_s": "poisson", "requests": "offline"}.get(field, "offline")
    # drafts need an acceptance rate, an imbalance experts, a spread a distribution
    # with one, or that is a second problem
    other: dict[str, object] = {"spec_tokens": {"spec_acceptance": 0.5},
                                "length_spread": {"length_distribution": "lognormal"}
                                }.get(field, {})
    model = "mixtral-8x7b" if field == "moe_imbalance" else "llama3-8b"
    with pytest.raises(SpecError) as exc:
        ServingWorkload(shape(model), input_len=100, output_len=10, load=load,
                        **{field: value}, **other)
    assert [(p.field, p.message) for p in exc.value.problems] == [(field, words)]


def test_speculative_decoding_gains_tokens_per_step() -> None:
    plain = workload()
    spec = replace(plain, spec_tokens=3, spec_acceptance=0.7)
    assert spec.tokens_per_step == pytest.approx(1 + 0.7 + 0.49 + 0.343)
    a = estimate_serving(plain, ServingPlan(), system_for_chip(CAT, "h100-sxm-80gb", 1))
    b = estimate_serving(spec, ServingPlan(), system_for_chip(CAT, "h100-sxm-80gb", 1))
    assert a.tpot_s is not None
    assert b.tpot_s is not None
    assert b.tpot_s < a.tpot_s
    assert math.isfinite(b.output_tokens_per_s)


@pytest.mark.parametrize("rate", [3.0, 6.0])
def test_steady_state_agrees_with_the_simulation_under_poisson_load(rate: float) -> None:
    """Below saturation the analytical Poisson point (Little's law on the mixed
    iteration) and a 4,000-request simulation of the same instance agree on throughput,
    mean batch and mean TPOT within 5 %, and on mean TTFT within 15 %; the p99 TTFT
    within 35 % (the analytical tail is an exponential-quantile heuristic)."""
    from ocplan.serving.dynamics import simulate_serving

    wl = workload("llama3-70b", input_len=1000, output_len=300, load="poisson",
                  rate_per_s=rate, weight_precision="fp8", activation_precision="fp8",
                  kv_precision="fp8", slo_stat="mean")
    plan = ServingPlan(tp=8)
    est = estimate_serving(wl, plan, h200())
    sim = simulate_serving(wl, plan, h200(), requests=4000, seed=1)
    assert sim is not None
    r = sim.result
    assert sim.output_tokens_per_s == pytest.approx(est.output_tokens_per_s, rel=0.05)
    assert r.mean_batch == pytest.approx(est.batch_per_instance, rel=0.05)
    assert r.stat("tpot", "mean") == pytest.approx(est.tpot_s, rel=0.05)
    assert r.stat("ttft", "mean") == pytest.approx(est.ttft_s, rel=0.15)
    p99 = estimate_serving(replace(wl, slo_stat="p99"), plan, h200())
    assert p99.ttft_s == est.ttft_s  # the means do not depend on the statistic asked for
    assert p99.latency_stat == "p99"
    assert r.stat("ttft", "p99") == pytest.approx(p99.ttft_stat_s, rel=0.35)
    assert r.stat("tpot", "p99") == pytest.approx(p99.tpot_stat_s, rel=0.10)


def test_offline_steady_state_agrees_with_a_long_simulation() -> None:
    from ocplan.serving.dynamics import simulate_serving

    wl = workload("llama3-70b", input_len=1000, output_len=300, weight_precision="fp8",
                  activation_precision="fp8", kv_precision="fp8",
                  length_distribution="exponential")
    plan = ServingPlan(tp=8, max_seqs=256)
    est = estimate_serving(wl, plan, h200())
    sim = simulate_serving(wl, plan, h200(), requests=20000, seed=2)
    assert sim is not None
    assert sim.output_tokens_per_s == pytest.approx(est.output_tokens_per_s, rel=0.08)


def test_spread_output_lengths_lengthen_the_running_context() -> None:
    fixed = workload("llama3-70b", input_len=1000, output_len=400)
    assert fixed.running_context == 1200
    expo = replace(fixed, length_distribution="exponential")
    assert expo.running_context == pytest.approx(1400)  # I + E[O^2] / 2E[O] = I + m
    wide = replace(fixed, length_distribution="lognormal", length_spread=1.0)
    assert wide.running_context == pytest.approx(1000 + 200 * math.e)
    a = estimate_serving(fixed, ServingPlan(tp=8), h200())
    b = estimate_serving(expo, ServingPlan(tp=8), h200())
    assert b.batch_per_instance <= a.batch_per_instance


def test_search_with_disaggregation_and_its_pareto_front() -> None:
    from ocplan.serving.search import search_serving

    wl = workload("llama3-70b", input_len=4000, output_len=300, weight_precision="fp8",
                  activation_precision="fp8", kv_precision="fp8")
    found = search_serving(wl, h200(), 8, disaggregate=True)
    feasible = [e for e in found.results if e.feasible]
    assert any(e.plan.prefill_chips is not None for e in feasible)
    scores = [e.output_tokens_per_s_per_chip for e in feasible]
    assert scores == sorted(scores, reverse=True)
    front = found.pareto()
    tpots = [tpot(e) for e in front]
    assert tpots == sorted(tpots)
    assert [e.output_tokens_per_s_per_chip for e in front] == sorted(
        e.output_tokens_per_s_per_chip for e in front)
    for e in feasible:  # every layout is on the front or beaten on both axes by one on it
        assert e in front or any(tpot(f) <= tpot(e) and f.output_tokens_per_s_per_chip
                                 >= e.output_tokens_per_s_per_chip for f in front)
    # prefill pools free the decode instances from prompt chunks: the lowest TPOT of the
    # search is a disaggregated one for this prompt-heavy job
    assert front[0].plan.prefill_chips is not None


@pytest.mark.parametrize(("model", "chip", "tp", "isl", "osl", "rate"), [
    ("llama2-70b", "mi300x", 1, 222, 294, 8.0),
    ("llama3-70b", "h200-sxm-141gb", 8, 1000, 300, 12.0),
    ("llama3-8b", "h100-sxm-80gb", 1, 870, 128, 25.0),
])
def test_tpot_tails_match_the_simulation(model: str, chip: str, tp: int, isl: int, osl: int,
                                         rate: float) -> None:
    """The analytical p90 and p99 TPOT (mean plus z standard deviations of a request's
    mean iteration) against a 4,000-request simulation at the same Poisson load: p90
    within 5 %, p99 within 10 % (the normal approximation thins the far tail).

    The TP-8 case was a strict expected failure from session 58 to 73 (p90 +6.5 %):
    every iteration carrying a 1,000-token prompt crosses the engines' 8 MB custom
    all-reduce workspace and pays NCCL's mid-size rate, about 7 ms, and the prompt
    deviation, linear in prompt tokens, spreads that step over every prompt unit. That
    is still so; since session 74 the batch's deviation is the one a request averages
    over its life (``steady._life_averaged``), smaller, and the case passes (p90 +4.6 %,
    p99 -2.0 %; the other two p90 +1.9 and +4.6 %, with the size-biased batch of session
    75). The statistic is the estimate's own at the rate (until session 75 the test read
    the grid's at the estimate's batch, which since session 74 is the rate times a
    request's answer, a little past the grid's batch at that rate)."""
    from ocplan.serving.dynamics import simulate_serving

    wl = workload(model, input_len=isl, output_len=osl, load="poisson", rate_per_s=rate,
                  weight_precision="fp8", activation_precision="fp8", kv_precision="fp8")
    plan = ServingPlan(tp=tp)
    system = system_for_chip(CAT, chip, tp)
    est = estimate_serving(wl, plan, system)
    sim = simulate_serving(wl, plan, system, requests=4000, seed=3)
    assert sim is not None
    for stat, tol in (("p90", 0.05), ("p99", 0.10)):
        tail = estimate_serving(replace(wl, slo_stat=stat), plan, system).tpot_stat_s
        assert tail is not None
        assert tail == pytest.approx(sim.result.stat("tpot", stat), rel=tol)  # type: ignore[arg-type]
        assert tail > tpot(est)


@pytest.mark.parametrize(("limits", "binding"), [
    ({"slo_tpot_s": 0.030}, "TPOT limit"),
    ({"slo_ttft_s": 0.400}, "TTFT limit"),
])
def test_slo_met_agrees_with_the_highest_rate_meeting_it(limits: dict[str, float],
                                                         binding: str) -> None:
    """A Poisson estimate reports its latencies at the workload's statistic beside the
    means, and judges the SLOs on that statistic, as the SLO search does: just below
    the highest rate meeting the limits they hold, just above they do not (on the
    means they would still hold there: the tail is what binds)."""
    base = workload("llama3-70b", input_len=2000, output_len=300, load="poisson",
                    rate_per_s=1.0, weight_precision="fp8", activation_precision="fp8",
                    kv_precision="fp8", slo_stat="p99", **limits)
    plan = ServingPlan(tp=8)
    top = estimate_serving(base, plan, h200())
    assert top.slo_rate_per_s is not None
    assert top.slo_reason is not None
    assert binding in top.slo_reason
    limit = next(iter(limits.values()))
    field = "tpot" if "tpot" in binding.lower() else "ttft"
    for factor, meets in ((0.97, True), (1.03, False)):
        est = estimate_serving(replace(base, rate_per_s=factor * top.slo_rate_per_s), plan,
                               h200())
        assert est.latency_stat == "p99"
        stat, mean = getattr(est, f"{field}_stat_s"), getattr(est, f"{field}_s")
        assert stat is not None
        assert mean is not None
        assert mean < stat
        assert est.slo_met is meets, (factor, stat, limit)
        assert (stat <= limit) is meets
        assert mean < limit  # the mean alone would pass: the statistic decides
