"""Hybrid models: recurrent token mixers (Gated DeltaNet, Mamba-2) beside attention.

Before (session 48) a model had attention in every layer, so Qwen3-Next (Gated DeltaNet
in 36 of 48 layers) or Granite 4.0-H (Mamba-2 in 36 of 40) could not be described: a
catalog entry would count 48 layers of KV cache, attention FLOPs that grow with the
context, and the wrong parameters. These tests check the counts against the models'
published module shapes and that the physics the mixer changes shows in training and
serving: a fixed state per sequence instead of a cache that grows with the context."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from pydantic import ValidationError

from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.schema import ModelArch
from ocplan.catalog.system import system_for_chip
from ocplan.cli.main import main
from ocplan.collectives import cost
from ocplan.costmodel.op_time import profile
from ocplan.errors import SpecError
from ocplan.estimators import estimate
from ocplan.plan.calibration import load_calibration
from ocplan.plan.engine import chip_peaks, efficiencies, system_model
from ocplan.plan.layer_cost import layer_kinds
from ocplan.plan.space import SearchSpace, training_space
from ocplan.serving.memory import kv_bytes_per_token_per_chip
from ocplan.serving.plan import ServingPlan
from ocplan.store.db import canonical_json
from ocplan.sweep.spec import search_inputs
from ocplan.workloads.memory import layer_activation_bytes, mixer_activation_bytes_per_token
from ocplan.workloads.mixers import MIXERS, STATE_BYTES, MixerDims
from ocplan.workloads.operators import (
    Shard,
    is_mixer_layer,
    kv_cache_bytes,
    layer_operators,
    mixer_operator,
    mixer_state_bytes,
)
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

CAT = load_catalog()


def _shape(model: str) -> ModelShape:
    return ModelShape.from_arch(CAT.model(model, "test", "model"))


def _attending_twin(shape: ModelShape) -> ModelShape:
    """The same model with attention in every layer."""
    return replace(shape, mixer=None, attention_layers=())


def test_qwen3_next_layers_and_mixer_params_match_its_modules() -> None:
    s = _shape("qwen3-next-80b-a3b")
    assert (s.n_attention_layers, s.n_mixer_layers) == (12, 36)
    assert [i for i in range(48) if not is_mixer_layer(s, i)] == list(range(3, 48, 4))
    # Qwen3NextGatedDeltaNet's weights: in_proj_qkvz (2048 -> 2*16*128 + 2*32*128),
    # in_proj_ba (2048 -> 2*32), depthwise conv1d over q, k, v (8192 channels x 4 taps),
    # out_proj (32*128 -> 2048)
    modules = 2048 * 12288 + 2048 * 64 + 8192 * 4 + 4096 * 2048
    assert s.mixer_params == modules
    # gated attention: q_proj emits queries and gates (2 x 16 x 256), k/v 2 x 256, o_proj
    assert s.attn_params == 2048 * 8192 + 2 * 2048 * 512 + 4096 * 2048
    # the whole count within 1 % of the model card's 80B (norms, A_log, dt_bias left out)
    assert s.total_params == pytest.approx(80e9, rel=0.01)


def test_granite_mamba2_params_match_mamba_ssm_projection() -> None:
    arch = CAT.model("granite-4.0-h-small", "test", "model")
    mx = arch.linear_mixer
    assert mx is not None
    assert mx.kind == "mamba2"
    s = ModelShape.from_arch(arch)
    d_inner = mx.heads * mx.value_dim
    # mamba_ssm Mamba2: d_in_proj = 2 d_inner + 2 ngroups d_state + nheads; conv over
    # d_inner + 2 ngroups d_state channels; out_proj d_inner -> d_model
    d_in_proj = 2 * d_inner + 2 * mx.key_heads * mx.key_dim + mx.heads
    conv_dim = d_inner + 2 * mx.key_heads * mx.key_dim
    assert s.mixer_params == arch.hidden * d_in_proj + conv_dim * mx.conv_kernel \
        + d_inner * arch.hidden
    assert s.n_attention_layers == len(mx.attention_layers)
    assert arch.published_params is not None
    assert s.total_params == pytest.approx(arch.published_params, rel=0.03)


def test_the_schema_refuses_what_no_formula_reads() -> None:
    data = CAT.model("qwen3-next-80b-a3b", "test", "model").model_dump()
    bad = json.loads(json.dumps(data))
    bad["linear_mixer"]["attention_layers"] = [3, 48]
    with pytest.raises(ValidationError, match=r"\[48\] are beyond the 48 layers"):
        ModelArch.model_validate(bad)
    bad = json.loads(json.dumps(data))
    bad["linear_mixer"]["key_heads"] = 5
    with pytest.raises(ValidationError, match="not a multiple of key_heads"):
        ModelArch.model_validate(bad)
    bad = json.loads(json.dumps(data))
    bad["linear_mixer"]["attention_layers"] = [7, 3]
    with pytest.raises(ValidationError, match="increasing"):
        ModelArch.model_validate(bad)
    bad = json.loads(json.dumps(data))
    bad["sliding_window"] = 4096
    with pytest.raises(ValidationError, match="not modelled"):
        ModelArch.model_validate(bad)


def test_a_mixer_layer_has_no_attention_and_its_gemms_are_its_params() -> None:
    s = _shape("qwen3-next-80b-a3b")
    shard = Shard(tp=1, batch=2, seq_len=4096)
    ops = layer_operators(s, "forward", shard, layer=0)
    kinds = {op.kind for op in ops}
    assert "attention" not in kinds
    assert "scan" in kinds
    mixer_gemms = sum(op.flops for op in ops if op.name in ("mixer_in", "mixer_out"))
    tokens = 2 * 4096
    assert mixer_gemms == pytest.approx(2 * tokens * (s.mixer_params
                                                      - s.mixer.conv_channels * s.mixer.conv))
    attn_ops = layer_operators(s, "forward", shard, layer=3)
    assert "attention" in {op.kind for op in attn_ops}
    assert "scan" not in {op.kind for op in attn_ops}
    # TP splits the value heads: each of 4 chips runs a quarter of the scan
    quarter = layer_operators(s, "forward", replace(shard, tp=4.0), layer=0)
    scan1 = next(op for op in ops if op.kind == "scan")
    scan4 = next(op for op in quarter if op.kind == "scan")
    assert scan4.flops == pytest.approx(scan1.flops / 4)


def test_chunked_scan_flops_follow_the_published_algorithms() -> None:
    gdn = _shape("qwen3-next-80b-a3b").mixer
    assert gdn is not None
    c, dk, dv = MIXERS["gated-deltanet"].chunk, 128, 128
    per_head = 2 * c * (3 * dk + 2 * dv) + 6 * dk * dv + 2 * c * c / 3
    assert MIXERS["gated-deltanet"].parallel_flops(gdn) == pytest.approx(32 * per_head)
    # the chunked kernel does more than the recurrence it stands for (intra-chunk work)
    assert MIXERS["gated-deltanet"].parallel_flops(gdn) > \
        MIXERS["gated-deltanet"].step_flops(gdn)
    ssd = _shape("granite-4.0-h-small").mixer
    assert ssd is not None
    q = MIXERS["mamba2"].chunk
    expect = 2 * q * ssd.key_dim * ssd.key_heads \
        + ssd.heads * (2 * q * ssd.value_dim + 4 * ssd.key_dim * ssd.value_dim)
    assert MIXERS["mamba2"].parallel_flops(ssd) == pytest.approx(expect)


def test_the_state_is_fixed_per_sequence_and_the_cache_grows_only_in_attention() -> None:
    s = _shape("qwen3-next-80b-a3b")
    mx = s.mixer
    assert mx is not None
    state = 36 * (32 * 128 * 128 * STATE_BYTES["bf16"] + 3 * 8192 * 2)
    assert mixer_state_bytes(s) == pytest.approx(state)
    grow = float(kv_cache_bytes(s, 20_000)) - float(kv_cache_bytes(s, 10_000))
    assert grow == pytest.approx(10_000 * 12 * 2 * 2 * 256 * 2)  # 12 layers of K and V
    twin = _attending_twin(s)
    # at 32K tokens the hybrid holds about a quarter of its all-attention twin's cache
    ratio = float(kv_cache_bytes(s, 32_768)) / float(kv_cache_bytes(twin, 32_768))
    assert 0.25 < ratio < 0.30
    # per chip in serving: the per-token rate falls with the context as the state spreads
    plan = ServingPlan(tp=4)
    short = kv_bytes_per_token_per_chip(s, plan, "bf16", 1_000)
    long = kv_bytes_per_token_per_chip(s, plan, "bf16", 100_000)
    assert short > long
    assert short * 1_000 - long * 100_000 == pytest.approx(
        -99_000 * 12 * 2 * 1 * 256 * 2)  # KV heads 2 over tp 4: one per chip


def test_decode_step_reads_the_state_whatever_the_context() -> None:
    s = _shape("qwen3-next-80b-a3b")
    short = mixer_operator(s, "decode", Shard(tp=1, batch=8, seq_len=1, kv_len=100), layer=0)
    long = mixer_operator(s, "decode", Shard(tp=1, batch=8, seq_len=1, kv_len=100_000),
                          layer=0)
    assert short.bytes == long.bytes
    assert short.flops == long.flops
    # read and written once: each sequence's state, at least
    assert short.bytes >= 2 * 8 * 32 * 128 * 128 * STATE_BYTES["bf16"]
    assert float(np.asarray(short.bytes)) < 2.2 * 8 * 32 * 128 * 128 * STATE_BYTES["bf16"]


def test_layer_kinds_split_mixer_and_attention_layers() -> None:
    kinds = layer_kinds(_shape("qwen3-next-80b-a3b"))
    assert sorted((k.mixer, k.count) for k in kinds) == [(False, 12), (True, 36)]


def test_model_flops_count_the_recurrence_not_the_context() -> None:
    s = _shape("qwen3-next-80b-a3b")
    wl = Workload(model=s, seq_len=4096, global_batch=64)
    mx = s.mixer
    assert mx is not None
    attn = 6 * 16 * (256 + 256) * 12 * 4096
    rec = 3 * 36 * MIXERS["gated-deltanet"].step_flops(mx)
    assert wl.model_flops_per_token == pytest.approx(6 * s.matmul_params_per_token
                                                     + attn + rec)
    long = Workload(model=s, seq_len=65_536, global_batch=4)
    twin_short = Workload(model=_attending_twin(s), seq_len=4096, global_batch=64)
    twin_long = Workload(model=_attending_twin(s), seq_len=65_536, global_batch=4)
    # the hybrid's per-token work grows with the context 4x slower than its twin's
    hybrid_growth = long.model_flops_per_token - wl.model_flops_per_token
    twin_growth = twin_long.model_flops_per_token - twin_short.model_flops_per_token
    assert hybrid_growth == pytest.approx(twin_growth / 4)


def test_training_estimate_hybrid_beats_its_twin_at_long_context() -> None:
    req = dict(model="qwen3-next-80b-a3b", chip="h100-sxm-80gb", chips=64, tp=2, ep=8,
               zero=3, recompute="full", micro_batch=1, global_batch=64, seq_len=32_768,
               cp=4)
    est, system, wl = api.run_estimate(CAT, api.EstimateRequest(**req))
    assert est.feasible, est.reason
    assert 0.05 < est.mfu < 0.6
    twin_shape = _attending_twin(wl.model)
    twin = estimate(replace(wl, model=twin_shape), est.plan, system)
    assert twin.feasible
    # 36 layers of causal attention over 32K tokens cost more than 36 chunked scans: a
    # mixer layer, forward and backward, under 0.7 of its attending twin's, and the two
    # estimates differ by exactly those 36 layers in each of the 8 micro-batches
    assert est.time is not None
    assert twin.time is not None
    sm = system_model(system)
    chip, eff = chip_peaks(sm, wl.precision), efficiencies(sm, load_calibration())
    shard = Shard(tp=2, batch=1, seq_len=32_768, cp=4, ep=8, etp=2)

    def layer_s(shape: ModelShape) -> float:
        ops = [op for phase in ("forward", "backward")
               for op in layer_operators(shape, phase, shard, layer=0,
                                         precision=wl.precision)]
        return float(profile(ops, chip, 1).op_s(eff).sum())

    mixer_s, attending_s = layer_s(wl.model), layer_s(twin_shape)
    assert mixer_s < 0.7 * attending_s
    assert twin.time.compute_s - est.time.compute_s == pytest.approx(
        8 * 36 * (attending_s - mixer_s), rel=1e-9)
    assert est.time.compute_s < twin.time.compute_s
    assert est.step_s < twin.step_s
    # the K/V ring hides behind 32K-token attention in both; the hybrid's 36 mixer layers
    # each turn their projection's output to head-sharded and back with all-to-alls over
    # the 4 CP ranks (2 TP apart), forward and backward, 8 micro-batches a step
    assert twin.time.cp_comm_s == 0.0
    fab = system_model(system).fabric
    mx = wl.model.mixer
    assert mx is not None
    tokens = 32_768 / 4
    one = cost.all_to_all(fab, tokens * mx.in_proj_width * 2 / 2, 4, 2) \
        + cost.all_to_all(fab, tokens * mx.value_width * 2 / 2, 4, 2)
    assert est.time.cp_comm_s == pytest.approx(8 * 2 * 36 * float(one), rel=1e-9)


def test_serving_hybrid_holds_more_sequences_at_long_context() -> None:
    job = dict(model="qwen3-next-80b-a3b", chip="h200-sxm-141gb", chips=4, tp=4,
               input_len=30_000, output_len=2_000, memory_percent=90)
    est, _, _ = api.run_infer(CAT, api.InferRequest(**job))
    assert est.feasible, est.reason
    per_seq = est.memory.kv_bytes_per_token * (30_000 + 1_000)
    assert per_seq < 0.35 * 12 * 4 * 1 * 256 * 2 * 31_000 * 48 / 12  # far below 48 layers
    assert est.batch_per_instance > 100


def test_cli_infer_json_names_the_hybrid_model(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["infer", "--model", "granite-4.0-h-small", "--chip", "h100-sxm-80gb",
                 "--chips", "1", "--memory-percent", "90", "-f", "json"])
    out = capsys.readouterr().out
    assert code == 0, out
    data = json.loads(out)
    assert data["feasible"] is True
    assert data["output_tokens_per_s_per_chip"] > 0


def test_only_attention_layers_keep_score_matrices() -> None:
    s = _shape("qwen3-next-80b-a3b")
    twin = _attending_twin(s)

    def scores(shape: ModelShape) -> float:
        args = (shape, 8192, 1, 1, True, 1, False, False)
        unfused = layer_activation_bytes(*args, False, True)  # flash off, MoE layer
        return float(unfused - layer_activation_bytes(*args, True, True))
    # unfused attention keeps its softmax output, 2 a s bytes per token (no dropout in
    # this recipe: Korthikanti's 5 a s counts a dropout mask and output too), in 12 of 48
    # layers, not in all
    assert not twin.dropout
    assert scores(twin) == pytest.approx(8192 * 2 * 16 * 8192)
    assert scores(s) == pytest.approx(scores(twin) * 12 / 48)
    # the mixer layers' saved tensors: in_proj, conv and scan outputs, gated-norm output
    mx = s.mixer
    assert mx is not None
    assert mixer_activation_bytes_per_token(s) == 2 * (12352 + 8192 + 4096) + 2 * 4096


@pytest.mark.parametrize("model", ["qwen3-next-80b-a3b", "deepseek-v3"])
def test_a_sweep_records_the_shape_as_json(model: str) -> None:
    """A stored search's inputs name the model's whole shape as JSON data: the mixer and
    its attention layers, and the release's formats (a sweep over DeepSeek-V3 raised
    'not JSON data: ReleasedWeights' before)."""
    s = _shape(model)
    wl = Workload(model=s, seq_len=4096, global_batch=64)
    system = system_for_chip(CAT, "h100-sxm-80gb", 8)
    inputs = search_inputs(wl, system, 8, "throughput", 3)
    back = json.loads(canonical_json(inputs))
    assert back["model_shape"] == inputs["model_shape"]
    shape = back["model_shape"]
    if s.mixer is not None:
        assert shape["attention_layers"] == list(range(3, 48, 4))
        assert shape["mixer"]["kind"] == "gated-deltanet"
    else:
        assert shape["released"]["weights"] == "fp8"


# ---- the format of the cached recurrent state -------------------------------------------

NANO = "nemotron-3-nano-30b-a3b"
#: Nemotron 3 Nano on two B200 as Vultr's vLLM cookbook served it (FP8, TP 2, 2048 / 512).
NANO_JOB: dict[str, object] = dict(
    model=NANO, chip="b200", chips=2, tp=2, weight_precision="fp8",
    activation_precision="fp8", input_len=2048, output_len=512, load="concurrency",
    concurrency=512)


def test_the_state_format_sets_the_state_bytes_and_nothing_else() -> None:
    """fp32 doubles the ``n_v d_k d_v`` state values of every mixer layer and leaves the
    convolution's cached inputs and the attention layers' KV as they were."""
    s = _shape(NANO)
    mx = s.mixer
    assert mx is not None
    values = s.n_mixer_layers * mx.heads * mx.key_dim * mx.value_dim / 2  # on 2 chips
    fp32 = mixer_state_bytes(s, 2.0, "fp32")
    bf16 = mixer_state_bytes(s, 2.0, "bf16")
    assert fp32 - bf16 == pytest.approx(values * (4 - 2))
    assert mixer_state_bytes(s, 2.0, "fp16") == bf16
    grow = float(kv_cache_bytes(s, 9_000, state_precision="fp32")) - float(
        kv_cache_bytes(s, 1_000, state_precision="fp32"))
    assert grow == pytest.approx(float(kv_cache_bytes(s, 9_000, state_precision="bf16"))
                                 - float(kv_cache_bytes(s, 1_000, state_precision="bf16")))
    # a decode step reads and writes each sequence's state: b (fp32 - bf16) more bytes
    shard = Shard(tp=2, batch=64, seq_len=1, kv_len=2_000)
    wide = mixer_operator(s, "decode", shard, layer=0, state_precision="fp32")
    narrow = mixer_operator(s, "decode", shard, layer=0, state_precision="bf16")
    per_layer = (fp32 - bf16) / s.n_mixer_layers
    assert wide.bytes - narrow.bytes == pytest.approx(64 * 2 * per_layer)
    assert wide.flops == narrow.flops


def test_the_release_names_the_state_format_and_a_job_may_name_another() -> None:
    """Nemotron's config asks for a float32 state (vLLM's NemotronH hook reads it), Qwen3-
    Next's leaves the model dtype: a job without ``state_precision`` serves the release's,
    the same as naming it; a 16-bit state holds more sequences and serves faster."""
    assert CAT.model(NANO).linear_mixer.state_format == "fp32"  # type: ignore[union-attr]
    assert CAT.model("qwen3-next-80b-a3b").linear_mixer.state_format == "bf16"  # type: ignore[union-attr]
    released, _, _ = api.run_infer(CAT, api.InferRequest(**NANO_JOB))
    named, _, _ = api.run_infer(CAT, api.InferRequest(**NANO_JOB, state_precision="fp32"))
    narrow, _, _ = api.run_infer(CAT, api.InferRequest(**NANO_JOB, state_precision="bf16"))
    assert released.formats is not None
    assert released.formats.state == "fp32"
    assert narrow.formats is not None
    assert narrow.formats.state == "bf16"
    assert released.output_tokens_per_s == named.output_tokens_per_s
    assert narrow.output_tokens_per_s > 1.05 * released.output_tokens_per_s
    assert narrow.memory.kv_tokens > released.memory.kv_tokens
    assert narrow.tpot_s < released.tpot_s
    dense, _, _ = api.run_infer(CAT, api.InferRequest(
        model="llama3-8b", chip="h100-sxm-80gb", chips=1, input_len=1000, output_len=100))
    assert dense.formats is not None
    assert dense.formats.state is None


def test_a_state_format_without_a_mixer_or_unknown_is_refused(
        capsys: pytest.CaptureFixture[str]) -> None:
    s = _shape(NANO)
    assert s.mixer is not None
    with pytest.raises(SpecError, match="state format of bf16, fp16, fp32"):
        replace(s, mixer=replace(s.mixer, state_format="fp64"))
    with pytest.raises(SpecError) as dense:
        api.run_infer(CAT, api.InferRequest(model="llama3-8b", chip="h100-sxm-80gb",
                                            chips=1, input_len=1000, output_len=100,
                                            state_precision="fp32"))
    assert [p.field for p in dense.value.problems] == ["state_precision"]
    assert "recurrent mixer" in dense.value.problems[0].message
    code = main(["infer", "--model", NANO, "--chip", "b200", "--chips", "2", "--tp", "2",
                 "--state-precision", "fp64", "-f", "json"])
    out = capsys.readouterr()
    assert code == 2
    problems = json.loads(out.out)["error"]["problems"]
    assert [p["field"] for p in problems] == ["state_precision"]
    assert "bf16, fp16, fp32" in problems[0]["allowed"]


def test_cli_infer_names_the_state_format(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["infer", "--model", NANO, "--chip", "b200", "--chips", "2", "--tp", "2",
                 "--state-precision", "bf16", "--input-len", "2048", "--output-len", "512",
                 "-f", "json"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert json.loads(out)["formats"]["state"] == "bf16"
    assert main(["infer", "--model", NANO, "--chip", "b200", "--chips", "2", "--tp",
                 "2"]) == 0
    assert "recurrent state fp32" in capsys.readouterr().out


# ---- how a recurrent mixer's heads split -------------------------------------------------

def test_mixer_heads_split_as_megatron_and_vllm_allow() -> None:
    """Value heads split over tp x cp; key groups over tp like KV heads (replicated when
    tp is a multiple); each rank's groups over cp, or cp a multiple of them."""
    mx = MixerDims("mamba2", heads=48, key_heads=6, key_dim=128, value_dim=64, conv=4)
    assert mx.splits(3)
    assert mx.splits(6)
    assert mx.splits(12)                                       # groups replicated x2
    assert not mx.splits(4)                                    # 6 groups over 4
    assert not mx.splits(5)                                    # 48 heads over 5
    assert mx.splits(3, 2)                                     # 2 groups per rank, cp 2
    assert not mx.splits(2, 2)                                 # 3 groups per rank, cp 2
    assert mx.splits(6, 4)                                     # 1 group repeated over 4
    assert not mx.splits(6, 16)                                # 48 heads over 96 ranks
    tp, cp = np.array([3, 4, 2, 6]), np.array([2, 1, 2, 4])
    assert mx.splits(tp, cp).tolist() == [True, False, False, True]


def search_space_for(s: ModelShape, chips: int, seq_len: int) -> SearchSpace:
    return training_space(chips=chips, n_layers=s.n_layers, n_heads=s.n_heads,
                          n_kv_heads=s.n_kv_heads, seq_len=seq_len, global_batch=64,
                          domain=8, experts=s.moe_experts, mixer=s.mixer)


def test_a_layout_the_mixer_cannot_split_is_infeasible_and_never_searched() -> None:
    """Qwen3-Next's 16 attention heads split over tp 8, its 32 GDN heads not over tp 8 x
    cp 8: the estimate says so, and the search space holds no such layout while it holds
    tp 8 with cp 4."""
    est, _, _ = api.run_estimate(CAT, api.EstimateRequest(
        model="qwen3-next-80b-a3b", chip="h100-sxm-80gb", chips=64, tp=8, cp=8,
        global_batch=64, seq_len=65_536, micro_batch=1))
    assert not est.feasible
    assert "recurrent mixer's 32 heads (16 groups)" in (est.reason or "")
    s = _shape("qwen3-next-80b-a3b")
    space = search_space_for(s, chips=64, seq_len=65_536)
    layouts, _ = space.candidates()
    pairs = set(zip(layouts["tp"].tolist(), layouts["cp"].tolist(), strict=True))
    assert (8, 4) in pairs
    assert (8, 8) not in pairs
    assert (4, 8) in pairs  # 32 heads over 32 ranks, 4 groups per tp rank over cp 8: x2
    assert s.mixer is not None
    tp, cp = layouts["tp"], layouts["cp"]
    assert bool(np.all(s.mixer.splits(tp, cp)))
