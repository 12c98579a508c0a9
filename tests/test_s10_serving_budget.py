"""An engine's token budget holds per scheduler: with attention DP every rank carries its
own (issue 10: the step model and the batch limits follow the engine's real scheduling)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from clikit import run
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.errors import SpecError
from ocplan.plan.calibration import load_calibration
from ocplan.plan.engine import chip_peaks, efficiencies, system_model
from ocplan.results.serving_validation import prepare_serving_row
from ocplan.serving.calibration import load_serving_calibration
from ocplan.serving.estimate import estimate_serving
from ocplan.serving.plan import DEFAULT_CHUNK_TOKENS, ServingPlan
from ocplan.serving.step import OVERLAP_COMM_UNITS, StepModel, step_model
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.shape import ModelShape

CAT = load_catalog()


@pytest.mark.parametrize(("plan", "budget"), [
    (ServingPlan(tp=1, dp=8, ep=8, attention_dp=True), 8 * DEFAULT_CHUNK_TOKENS),
    (ServingPlan(tp=1, dp=48, ep=48, attention_dp=True), 48 * DEFAULT_CHUNK_TOKENS),
    (ServingPlan(tp=8, dp=4), DEFAULT_CHUNK_TOKENS),
    (ServingPlan(tp=1, dp=8, ep=8, attention_dp=True, chunk_tokens=4096), 4096),
])
def test_the_default_budget_is_one_per_scheduler(plan: ServingPlan, budget: int) -> None:
    assert plan.token_budget == budget


def test_a_wide_ep_decode_pool_is_not_capped_by_one_ranks_budget() -> None:
    """A disaggregated decode pool of 48 attention-DP ranks (SGLang wide EP on GB200)
    runs far more than 8,192 sequences: each rank schedules its own batch, so what caps
    the batch is the KV cache or the sequence caps, not a single 8,192-token budget."""
    wl = ServingWorkload(ModelShape.from_arch(CAT.model("deepseek-v3")), 2000, 1000,
                         weight_precision="fp4", activation_precision="fp4",
                         kv_precision="fp8")
    plan = ServingPlan(tp=1, dp=96, ep=48, attention_dp=True, prefill_chips=48)
    est = estimate_serving(wl, plan, system_for_chip(CAT, "gb200", 96))
    assert est.feasible
    assert est.batch_limit != "token budget"
    assert est.batch_per_instance > 2 * DEFAULT_CHUNK_TOKENS
    # one shared 8,192-token budget gives a smaller batch and a slower decode pool
    shared = estimate_serving(wl, replace(plan, chunk_tokens=DEFAULT_CHUNK_TOKENS),
                              system_for_chip(CAT, "gb200", 96))
    assert shared.batch_per_instance <= DEFAULT_CHUNK_TOKENS
    assert est.decode_output_tokens_per_s_per_chip is not None
    assert shared.decode_output_tokens_per_s_per_chip is not None
    assert est.decode_output_tokens_per_s_per_chip > shared.decode_output_tokens_per_s_per_chip


def _deepseek_step(overlap: bool) -> StepModel:
    wl = ServingWorkload(ModelShape.from_arch(CAT.model("deepseek-v3")), 4096, 1000,
                         weight_precision="fp8", activation_precision="fp8")
    plan = ServingPlan(tp=1, dp=32, ep=32, attention_dp=True, overlap=overlap)
    sm = system_model(system_for_chip(CAT, "h800-sxm-80gb", 32))
    return step_model(wl, plan, sm, chip_peaks(sm, "bf16"), load_calibration(),
                      load_serving_calibration())


def test_overlapped_prefill_computes_on_the_units_the_all_to_all_leaves() -> None:
    """Two-batch overlap hides the all-to-all, but in a prefill iteration its kernels
    hold 24 of the H800's 132 SMs (DeepEP normal mode), so the matrix and attention work
    runs 132/108 times longer; a decode iteration (low-latency kernels) keeps every SM."""
    plain, over = _deepseek_step(False), _deepseek_step(True)
    factor = 132 / (132 - OVERLAP_COMM_UNITS)
    assert over.overlap_slowdown == pytest.approx(factor)
    assert plain.overlap_slowdown == 1.0
    pre = dict(prefill_tokens=32 * 16384.0, prefill_seqs=128.0, decode_seqs=0.0,
               decode_context=0.0)
    a, b = plain.iteration(**pre), over.iteration(**pre)
    assert float(b.matrix_s[0]) == pytest.approx(factor * float(a.matrix_s[0]))
    assert float(b.attention_s[0]) == pytest.approx(factor * float(a.attention_s[0]))
    assert float(b.memory_s[0]) == pytest.approx(float(a.memory_s[0]))
    assert float(b.comm_s[0]) < float(a.comm_s[0])      # what overlap is for
    dec = dict(prefill_tokens=0.0, prefill_seqs=0.0, decode_seqs=32 * 64.0,
               decode_context=32 * 64 * 3000.0)
    c, d = plain.iteration(**dec), over.iteration(**dec)
    assert float(d.matrix_s[0]) == pytest.approx(float(c.matrix_s[0]))
    assert float(d.attention_s[0]) == pytest.approx(float(c.attention_s[0]))


def test_a_finite_offline_run_never_holds_more_sequences_than_requests() -> None:
    """3,000 queued requests over two instances: at most 1,500 in flight per instance,
    however much the KV cache and the caps would hold."""
    shape = ModelShape.from_arch(CAT.model("llama3-8b"))
    system = system_for_chip(CAT, "h200-sxm-141gb", 2)
    plan = ServingPlan(tp=1, dp=2, max_seqs=8192, chunk_tokens=65536)
    endless = estimate_serving(ServingWorkload(shape, 128, 128), plan, system)
    finite = estimate_serving(ServingWorkload(shape, 128, 128, requests=3000), plan, system)
    assert endless.batch_per_instance > 1500
    assert finite.batch_per_instance == pytest.approx(1500)
    assert finite.batch_limit == "request count"


def test_the_serving_grouped_ratio_sets_the_expert_gemm_efficiency() -> None:
    """The inference MoE kernels' grouped / dense ratio comes from the serving
    calibration when it names one (else the training factor), and the 4-bit grouped
    path is the 8-bit grouped one times the 4-bit ratio."""
    wl = ServingWorkload(ModelShape.from_arch(CAT.model("mixtral-8x7b")), 512, 512)
    sm = system_model(system_for_chip(CAT, "b200", 1))
    cal, base = load_calibration(), load_serving_calibration()
    dense = efficiencies(sm, cal)
    scal = replace(base, grouped_ratio=0.9, gemm_4bit_ratio=0.5)
    eff = step_model(wl, ServingPlan(), sm, chip_peaks(sm, "bf16"), cal, scal).eff
    assert eff.grouped_gemm_8bit == pytest.approx(min(1.0, dense.gemm_8bit * 0.9))
    assert eff.grouped_gemm_4bit == pytest.approx(min(1.0, dense.gemm_8bit * 0.9 * 0.5))
    training = replace(base, grouped_ratio=None)
    eff = step_model(wl, ServingPlan(), sm, chip_peaks(sm, "bf16"), cal, training).eff
    assert eff.grouped_gemm_8bit == pytest.approx(dense.grouped_gemm_8bit)


def _llama8b(**kw: object) -> ServingWorkload:
    return ServingWorkload(ModelShape.from_arch(CAT.model("llama3-8b")), **kw)  # type: ignore[arg-type]


def test_an_offline_run_admitted_at_once_is_one_synchronized_batch() -> None:
    """200 fixed-length requests under a 1,024-sequence cap, all held by the cache,
    start together and finish together: the run is a static batch of 200, not a
    refilled steady state."""
    system = system_for_chip(CAT, "h200-sxm-141gb", 1)
    plan = ServingPlan(max_seqs=1024)
    run = estimate_serving(_llama8b(input_len=128, output_len=2048, requests=200), plan,
                           system)
    batch = estimate_serving(_llama8b(input_len=128, output_len=2048, load="static",
                                      batch=200), plan, system)
    steady = estimate_serving(_llama8b(input_len=128, output_len=2048), plan, system)
    assert run.batch_limit == "request count"
    assert run.output_tokens_per_s == pytest.approx(batch.output_tokens_per_s, rel=1e-9)
    assert run.output_tokens_per_s != pytest.approx(steady.output_tokens_per_s, rel=1e-3)


def test_a_synchronized_wave_must_hold_its_sequences_at_their_final_length() -> None:
    """Sequences that grow together need the cache at ``I + O`` each by their last
    step (vLLM preempts, TensorRT-LLM reserves): more requests than that run in waves,
    while a refilled steady state holds ``I + O/2`` per sequence on average."""
    system = system_for_chip(CAT, "h200-sxm-141gb", 1)
    plan = ServingPlan(max_seqs=8192, chunk_tokens=65536)
    est = estimate_serving(_llama8b(input_len=1000, output_len=8000, requests=400), plan,
                           system)
    assert est.memory is not None
    assert est.batch_limit == "KV capacity"
    # whole sequences of I + O = 9,000 tokens each
    assert est.batch_per_instance == math.floor(est.memory.kv_tokens / 9000)
    spread = estimate_serving(_llama8b(input_len=1000, output_len=8000, requests=400,
                                       length_distribution="lognormal", length_spread=0.5),
                              plan, system)
    assert spread.batch_per_instance > est.batch_per_instance   # refilled, not in step


def test_a_published_prompt_count_becomes_the_run_size() -> None:
    """vLLM's throughput benchmark runs ``--num-prompts`` requests: a row's notes that
    name it give the workload its request count."""
    row = {"case_id": "X2", "model": "Llama-3.1-70B-Instruct", "model_catalog_id": "llama3-70b",
           "chip": "mi300x", "num_chips": "8", "weight_precision": "fp8",
           "activation_precision": "fp8", "kv_precision": "fp8", "tp": "8", "pp": "1",
           "dp": "1", "scenario": "max-load", "input_len_mean": "500",
           "output_len_mean": "2000", "batch_or_concurrency": "2000",
           "batch_kind": "max_num_seqs", "primary_metric": "output",
           "measured_output_tokens_per_s_per_chip": "1000",
           "measured_from": "batch: num_prompts 2000; fixed ISL/OSL"}
    assert prepare_serving_row(row, CAT).workload.requests == 2000
    row["measured_from"] = "batch: infinite request rate"
    assert prepare_serving_row(row, CAT).workload.requests is None


def test_the_committed_serving_calibration_carries_its_cross_validated_error() -> None:
    """Issue 10: leave-one-source-out median <= 15 %. scripts/fit_serving.py writes the
    figure beside the values it fitted; a refit that loses it fails here."""
    cal = load_serving_calibration()
    assert cal.rows == 74
    assert cal.cv_error_pct is not None
    assert 0.0 < cal.cv_error_pct <= 15.0


def test_infer_runs_a_finite_run_of_requests(capsys: pytest.CaptureFixture[str]) -> None:
    """``ocplan infer --requests N``: a finite offline run. 1,500 requests of 128/4096
    on 8 MI300X at TP8 all start at once and finish together; the cache holds fewer at
    their final length, so they run in two waves, slower than a refilled stream, and
    the output says so."""
    argv = ["infer", "--model", "llama3-70b", "--chip", "mi300x", "--chips", "8", "--tp", "8",
            "--input-len", "128", "--output-len", "4096", "--max-seqs", "1500",
            "--weight-precision", "fp8", "--activation-precision", "fp8",
            "--kv-precision", "fp8", "--format", "json"]
    rc, out, _ = run(capsys, *argv, "--requests", "1500")
    assert rc == 0
    finite = json.loads(out)
    rc, out, _ = run(capsys, *argv)
    assert rc == 0
    stream = json.loads(out)
    assert finite["batch_limit"] == "KV capacity"
    assert finite["batch_per_instance"] < 1500 <= stream["batch_per_instance"]
    assert finite["output_tokens_per_s"] < stream["output_tokens_per_s"]
    assert any("2 waves" in note for note in finite["notes"])


def test_a_request_count_outside_an_offline_run_is_refused() -> None:
    """A finite run's size means nothing to a Poisson stream or a static batch, which
    would silently ignore it: the workload refuses it and names the field."""
    with pytest.raises(SpecError) as err:
        _llama8b(input_len=128, output_len=128, load="poisson", rate_per_s=2.0, requests=100)
    assert [p.field for p in err.value.problems] == ["requests"]
    assert _llama8b(input_len=128, output_len=128, requests=100).requests == 100
