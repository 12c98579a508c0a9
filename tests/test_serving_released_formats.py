"""A model's released checkpoint format is its serving default.

DeepSeek-V3 and Kimi K2 ship FP8 weights (and run FP8 GEMMs), gpt-oss ships MXFP4 routed
experts beside 16-bit attention. Before (session 47) every job defaulted to bf16, so
``ocplan infer --model deepseek-v3 --chip h200-sxm-141gb --chips 8 --search`` answered
that no layout fits until ``--weight-precision fp8`` was given."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.schema import ModelArch
from ocplan.cli.main import main
from ocplan.costmodel.op_time import native_precision
from ocplan.errors import SpecError
from ocplan.results.serving_validation import prepare_serving_row
from ocplan.serving.memory import weight_bytes_per_chip
from ocplan.serving.plan import ServingPlan
from ocplan.workloads.operators import GEMM_INPUT_BYTES, Shard, layer_operators
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.shape import ModelShape

CAT = load_catalog()


def _shape(model: str) -> ModelShape:
    return ModelShape.from_arch(CAT.model(model, "test", "model"))


def test_catalog_names_the_released_formats() -> None:
    ds = CAT.model("deepseek-v3", "test", "model").released
    assert ds is not None
    assert (ds.weights, ds.activations, ds.experts_only) == ("fp8", "fp8", False)
    oss = CAT.model("gpt-oss-120b", "test", "model").released
    assert oss is not None
    assert (oss.weights, oss.activations, oss.experts_only) == ("mxfp4", "bf16", True)
    assert CAT.model("llama3-70b", "test", "model").released is None


def test_experts_only_release_needs_experts() -> None:
    data = CAT.model("llama3-8b", "test", "model").model_dump()
    data["released"] = {"weights": "fp4", "experts_only": True}
    with pytest.raises(ValidationError, match="experts_only needs moe"):
        ModelArch.model_validate(data)


@pytest.mark.parametrize(("model", "given", "weights", "experts", "gemm", "released"), [
    # nothing given: the release's formats
    ("deepseek-v3", {}, "fp8", "fp8", "fp8", True),
    ("gpt-oss-120b", {}, "bf16", "mxfp4", "bf16", True),
    ("llama3-8b", {}, "bf16", "bf16", "bf16", False),
    # weights given: every matrix in them, GEMM inputs 16-bit unless given
    ("deepseek-v3", {"weight_precision": "bf16"}, "bf16", "bf16", "bf16", False),
    ("gpt-oss-120b", {"weight_precision": "fp8"}, "fp8", "fp8", "bf16", False),
    ("deepseek-v3", {"weight_precision": "fp4", "activation_precision": "fp4"},
     "fp4", "fp4", "fp4", False),
    # experts alone given: the rest stays the release's (gpt-oss: 16-bit, not released)
    ("deepseek-v3", {"expert_weight_precision": "fp4"}, "fp8", "fp4", "bf16", True),
    ("gpt-oss-120b", {"expert_weight_precision": "fp8"}, "bf16", "fp8", "bf16", False),
    ("llama3-8b", {"weight_precision": "int4"}, "int4", "int4", "bf16", False),
])
def test_formats_resolve_from_the_job_then_the_release(
        model: str, given: dict[str, str], weights: str, experts: str, gemm: str,
        released: bool) -> None:
    wl = ServingWorkload(_shape(model), 1000, 1000, **given)  # type: ignore[arg-type]
    f = wl.formats
    assert (f.weights, f.activations, f.released) == (weights, gemm, released)
    assert f.expert_weights == (experts if wl.model.is_moe else None)
    assert wl.expert_weight_format == experts


def test_expert_format_of_a_dense_model_is_refused() -> None:
    with pytest.raises(SpecError, match="expert_weight_precision = 'fp8': applies only to a "
                                        "mixture-of-experts"):
        ServingWorkload(_shape("llama3-8b"), 1000, 1000, expert_weight_precision="fp8")
    with pytest.raises(SpecError, match="weight_precision = 'fp6': expected one of"):
        ServingWorkload(_shape("llama3-8b"), 1000, 1000, weight_precision="fp6")


def test_expert_weights_are_held_and_read_in_their_own_format() -> None:
    """gpt-oss-120b on one chip: the routed experts in 4 bits, the rest 16-bit; the
    grouped expert GEMMs read 4-bit weights, the attention projections 16-bit ones. As
    released (MXFP4 experts) the weights come to the checkpoint's 65 GB."""
    s = _shape("gpt-oss-120b")
    plan = ServingPlan()
    mixed = weight_bytes_per_chip(s, plan, "bf16", 0, "fp4")
    routed = s.n_moe_layers * s.moe_experts * s.expert_params
    assert mixed == pytest.approx(weight_bytes_per_chip(s, plan, "bf16")
                                  - routed * (GEMM_INPUT_BYTES["bf16"]
                                              - GEMM_INPUT_BYTES["fp4"]), rel=1e-9)
    # the experts hold most of the weights: mixed is far below bf16, above all-fp4
    assert weight_bytes_per_chip(s, plan, "fp4") < mixed < 0.4 * weight_bytes_per_chip(
        s, plan, "bf16")
    released = weight_bytes_per_chip(s, plan, "bf16", 0, "mxfp4")
    assert released == pytest.approx(65.2e9, rel=0.01)
    assert released < mixed  # a scale byte per 32 values, not per 16
    ops = layer_operators(s, "decode", Shard(tp=1.0, batch=64.0, seq_len=1.0, kv_len=1000.0),
                          weight_precision="bf16", expert_weight_precision="fp4")
    grouped = [op for op in ops if op.kind == "grouped_gemm"]
    dense = [op for op in ops if op.kind == "gemm"]
    assert grouped
    assert dense
    assert {op.weight_precision for op in grouped} == {"fp4"}
    assert {op.weight_precision for op in dense} == {"bf16"}


def test_a_released_fp8_model_is_served_in_fp8_by_default(
        capsys: pytest.CaptureFixture[str]) -> None:
    """DeepSeek-V3 on 8 H200: in its released FP8 a layout fits; asked for bf16 weights,
    none does (1.34 TB of weights over 8 x 141 GB)."""
    args = ["infer", "--model", "deepseek-v3", "--chip", "h200-sxm-141gb", "--chips", "8",
            "--search", "--format", "json"]
    assert main(args) == 0
    found = json.loads(capsys.readouterr().out)
    best = found["results"][0]
    assert best["feasible"]
    assert best["formats"] == {"weights": "fp8", "expert_weights": "fp8",
                               "activations": "fp8", "kv": "bf16", "released": True,
                               "state": None, "attention": "bf16"}
    assert main([*args, "--weight-precision", "bf16"]) == 1
    bf16 = json.loads(capsys.readouterr().out)
    assert not any(r["feasible"] for r in bf16["results"])
    # the table says in which formats nothing fits
    assert main([*args[:-2], "--weight-precision", "bf16"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "no layout fits" in lines[0]
    assert lines[1] == "number formats: weights bf16, GEMM inputs bf16, KV cache bf16"


def test_one_estimate_shows_its_formats(capsys: pytest.CaptureFixture[str]) -> None:
    req = api.InferRequest(model="gpt-oss-20b", chip="h100-sxm-80gb", chips=1)
    e, _, _ = api.run_infer(CAT, req)
    assert e.feasible
    assert e.formats is not None
    assert (e.formats.weights, e.formats.expert_weights) == ("bf16", "mxfp4")
    assert main(["infer", "--model", "gpt-oss-20b", "--chip", "h100-sxm-80gb", "--chips",
                 "1"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines()
               if "number formats" in line)
    assert "weights bf16, experts mxfp4, GEMM inputs bf16, KV cache bf16 (the release's " \
           "where not given)" in row


SWEEP = Path(__file__).resolve().parents[1] / "validation" / "sweeps" \
    / "mlperf_inference_v6.csv"


def _sweep_row(case_id: str) -> dict[str, str]:
    with SWEEP.open(newline="", encoding="utf-8") as f:
        return next(r for r in csv.DictReader(f) if r["case_id"] == case_id)


@pytest.mark.parametrize(("chip", "gemm", "runs_at"), [
    # NVIDIA's stacks run MXFP4 weights as W4A8 (TensorRT-LLM, vLLM's FlashInfer path)
    ("b300", "fp8", "fp8"),
    ("gb200", "fp8", "fp8"),
    # AMD's recipe states MXFP4 activations; its chips' 4-bit unit is an MX one
    ("mi355x", "fp4", "fp4"),
    # no 4-bit unit: the weights run weight-only at the 16-bit rate (W4A16)
    ("h200-sxm-141gb", "fp4", "bf16"),
])
def test_a_result_in_released_mxfp4_without_activations_runs_its_stacks_format(
        chip: str, gemm: str, runs_at: str) -> None:
    """A serving result of gpt-oss that publishes 4-bit weights and no activation format
    (MLPerf Inference v6.0 B300, NVIDIA's own config) is read per the chip's stacks."""
    row = _sweep_row("M6018") | {"chip": chip, "num_chips": "8", "chips_per_node": "8"}
    assert row["weight_precision"] == "fp4"
    assert row["activation_precision"] == ""
    p = prepare_serving_row(row, CAT)
    assert p.workload.gemm_precision == gemm
    acc = CAT.accelerator(chip, "test", "chip")
    assert native_precision(gemm, lambda q: acc.peak_flops.get(q)) == runs_at
    assert any(n.startswith(f"activation format not published: {gemm}") for n in p.notes)


def test_a_4bit_result_of_a_16bit_release_keeps_w4a4() -> None:
    """NVFP4 Llama results (no MX release) keep 4-bit activations on Blackwell."""
    row = _sweep_row("M6018") | {"model": "Llama-2-70B-chat",
                                 "model_catalog_id": "llama2-70b"}
    p = prepare_serving_row(row, CAT)
    assert p.workload.gemm_precision == "fp4"
