"""Models whose layers hold one block each (a layer pattern: Nemotron-H, Nemotron 3).

Megatron-LM's hybrid models count a Mamba-2 mixer, an attention block, a dense MLP and a
MoE block as a layer each (``hybrid_override_pattern``: ``M``, ``*``, ``-``, ``E``).
Before (session 49) every layer was a token mixer and an MLP, so such a model could not
be described. The strongest check of the generalisation is an identity: a pattern that
alternates attention and MLP layers *is* the ordinary model of half the layers, so every
figure (parameters, step time and its terms, memory, serving throughput) must come out
the same, dense and MoE, with pipeline stages and tensor parallelism."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import ValidationError

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.schema import ModelArch
from ocplan.catalog.system import system_for_chip
from ocplan.errors import SpecError
from ocplan.estimators import estimate
from ocplan.plan.layer_cost import layer_kinds
from ocplan.plan.plan import Plan
from ocplan.serving.estimate import estimate_serving
from ocplan.serving.plan import ServingPlan
from ocplan.workloads.memory import mixer_activation_bytes_per_token
from ocplan.workloads.operators import Shard, layer_operators
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

CAT = load_catalog()


def _shape(model: str) -> ModelShape:
    return ModelShape.from_arch(CAT.model(model, "test", "model"))


def _split_twin(shape: ModelShape, blocks: str) -> ModelShape:
    """``shape`` written as a layer pattern: each layer's two blocks as two layers."""
    return replace(shape, n_layers=2 * shape.n_layers, layer_pattern=blocks * shape.n_layers)


@pytest.mark.parametrize(("model", "blocks", "plan", "kept"), [
    ("llama3-8b", "*-", Plan(tp=4, pp=2, dp=8, micro_batch=1, sequence_parallel=True), 1.0),
    # full recompute keeps each layer's input: a block's, twice as many
    ("llama3-8b", "*-", Plan(tp=2, pp=1, dp=32, micro_batch=2, recompute="full"), 2.0),
    ("qwen3-30b-a3b", "*E", Plan(tp=2, pp=1, dp=32, ep=8, micro_batch=1,
                                 sequence_parallel=True), 1.0),
])
def test_a_pattern_of_split_layers_is_the_same_model_in_training(
        model: str, blocks: str, plan: Plan, kept: float) -> None:
    shape = _shape(model)
    twin = _split_twin(shape, blocks)
    assert twin.total_params == shape.total_params
    assert twin.active_params == shape.active_params
    system = system_for_chip(CAT, "h100-sxm-80gb", 64)
    ours = estimate(Workload(twin, 4096, 256, "bf16"), plan, system)
    ref = estimate(Workload(shape, 4096, 256, "bf16"), plan, system)
    assert ours.feasible, ours.reason
    assert ref.feasible, ref.reason
    assert ours.time is not None
    assert ref.time is not None
    assert ours.step_s == pytest.approx(ref.step_s, rel=1e-9)
    for term in ("compute_s", "recompute_s", "tp_comm_s", "ep_comm_s", "pp_comm_s",
                 "dp_comm_s", "bubble_s"):
        assert getattr(ours.time, term) == pytest.approx(getattr(ref.time, term), rel=1e-9,
                                                         abs=1e-12), term
    assert ours.memory is not None
    assert ref.memory is not None
    for term in ("weights_bytes", "grads_bytes", "optimizer_bytes"):
        assert getattr(ours.memory, term) == pytest.approx(getattr(ref.memory, term),
                                                           rel=1e-9), term
    assert ours.memory.activations_bytes == pytest.approx(
        kept * ref.memory.activations_bytes, rel=1e-9)


@pytest.mark.parametrize(("model", "blocks"), [("llama3-8b", "*-"), ("qwen3-30b-a3b", "*E")])
def test_a_pattern_of_split_layers_is_the_same_model_in_serving(model: str,
                                                                 blocks: str) -> None:
    shape = _shape(model)
    job = ServingWorkload(shape, 1000, 500)
    system = system_for_chip(CAT, "h100-sxm-80gb", 8)
    ref = estimate_serving(job, ServingPlan(tp=4), system)
    ours = estimate_serving(replace(job, model=_split_twin(shape, blocks)), ServingPlan(tp=4),
                            system)
    assert ref.feasible
    assert ours.feasible
    assert ours.output_tokens_per_s_per_chip == pytest.approx(
        ref.output_tokens_per_s_per_chip, rel=1e-9)
    assert ours.tpot_s == pytest.approx(ref.tpot_s, rel=1e-9)


def test_each_pattern_layer_builds_only_its_block() -> None:
    shape = replace(_shape("llama3-8b"), n_layers=4, layer_pattern="*-*-")
    shard = Shard(tp=2.0, batch=1.0, seq_len=4096.0)
    attn = {op.name for op in layer_operators(shape, "forward", shard, layer=0)}
    mlp = {op.name for op in layer_operators(shape, "forward", shard, layer=1)}
    assert {"qkv", "attn", "o_proj"} <= attn
    assert not attn & {"mlp_up", "mlp_down"}
    assert {"mlp_up", "mlp_down"} <= mlp
    assert not mlp & {"qkv", "attn", "o_proj"}
    assert [(k.attention, k.mlp, k.count) for k in layer_kinds(shape)] == [
        (True, False, 2), (False, True, 2)]


def _arch(**changes: object) -> dict[str, object]:
    base = CAT.model("llama3-8b", "test", "model").model_dump(mode="json")
    base.update(changes)
    return base


def test_the_catalog_checks_a_pattern_against_the_model() -> None:
    good = ModelArch.model_validate(_arch(n_layers=4, layer_pattern="*-*-"))
    assert ModelShape.from_arch(good).n_attention_layers == 2
    bad = [
        (dict(n_layers=5, layer_pattern="*-*-"), "layer_pattern has 4 layers"),
        (dict(n_layers=4, layer_pattern="*x*-"), "string_pattern_mismatch"),
        (dict(n_layers=4, layer_pattern="M-*-"), "linear_mixer"),
        (dict(n_layers=4, layer_pattern="E-*-"), "moe"),
        (dict(n_layers=2, layer_pattern="--"), "token mixer"),
        (dict(n_layers=4, layer_pattern="*-*-", ffn_hidden=None), "ffn_hidden"),
    ]
    for changes, words in bad:
        with pytest.raises(ValidationError, match=words):
            ModelArch.model_validate(_arch(**changes))


def test_a_shape_refuses_a_pattern_that_does_not_fit() -> None:
    shape = _shape("llama3-8b")
    with pytest.raises(SpecError, match="layer_pattern"):
        replace(shape, layer_pattern="*-*")
    with pytest.raises(SpecError, match="moe_experts"):
        replace(shape, n_layers=2, layer_pattern="*E")


def test_nemotron_entries_count_their_layers_and_parameters() -> None:
    for model, counts, published in (
            ("nemotron-h-8b", (24, 4, 24, 0), 8e9), ("nemotron-h-56b", (54, 10, 54, 0), 56e9),
            ("nemotron-nano-9b-v2", (27, 4, 25, 0), 9e9),
            ("nemotron-3-nano-30b-a3b", (23, 6, 0, 23), 31.6e9)):
        s = _shape(model)
        assert (s.n_mixer_layers, s.n_attention_layers, s.n_dense_layers,
                s.n_moe_layers) == counts
        assert s.total_params == pytest.approx(published, rel=0.02), model
    # Nemotron 3 Nano: 3.2B active without the input embedding (its report's figure)
    nano = _shape("nemotron-3-nano-30b-a3b")
    assert nano.active_params - nano.embedding_params == pytest.approx(3.2e9, rel=0.02)


def test_mamba2_chunked_scan_moves_what_its_kernels_pass() -> None:
    """Nemotron-H-56B at TP 8 on 8,192 tokens: the SSD kernels' traffic, counted by hand
    from mamba_ssm's kernel sequence (docs/model.md): B and C (1 group of 256 per chip)
    8 bytes, x and the output (32 heads of 64) 6, ``C B^T`` (256 per group) 8, and the
    fp32-then-16-bit chunk states 12 bytes per element; the backward far more."""
    shape = _shape("nemotron-h-56b")
    shard = Shard(tp=8.0, batch=1.0, seq_len=8192.0, sp=True)
    ops = {op.name: op for op in layer_operators(shape, "forward", shard, layer=0)}
    back = {op.name: op for op in layer_operators(shape, "backward", shard, layer=0)}
    T, G, N, H, P, C = 8192, 1, 256, 32, 64, 256
    by_hand = T * (8 * G * N + 6 * H * P + 8 * G * C + 12 * H * P * N / C)
    assert float(ops["scan"].bytes) == pytest.approx(by_hand, rel=1e-9)
    assert float(back["scan.bwd"].bytes) > 3 * by_hand
    # the combined kernel recomputes the convolution's output in the backward
    conv, conv_bwd = float(ops["conv"].bytes), float(back["conv.bwd"].bytes)
    qwen = _shape("qwen3-next-80b-a3b")
    gdn = {op.name: op for op in layer_operators(qwen, "forward", shard, layer=0)}
    gdn_bwd = {op.name: op for op in layer_operators(qwen, "backward", shard, layer=0)}
    assert conv_bwd / conv == pytest.approx(float(gdn_bwd["conv.bwd"].bytes)
                                            / float(gdn["conv"].bytes) + 1.0, rel=1e-9)
    # and so does not keep that output for the backward (GDN keeps it)
    mx, gx = shape.mixer, qwen.mixer
    assert mx is not None
    assert gx is not None
    assert mixer_activation_bytes_per_token(shape) == 2 * (mx.in_proj_width
                                                           + 2 * mx.value_width)
    assert mixer_activation_bytes_per_token(qwen) == 2 * (
        gx.in_proj_width + gx.conv_channels + 2 * gx.value_width)


def test_nemotron_h_56b_matches_its_published_h100_run() -> None:
    """Out of sample (fitted on nothing): NVIDIA dgxc-benchmarking v25.05 Nemotron-H 56B,
    32 H100, FP8 current scaling, TP 8 with SP, GBS 96, 8,192 tokens: 1,626 tokens/s per
    GPU (15.119 s a step). The recipe runs its TP collectives without overlap
    (Megatron-Bridge's nemotronh_56b_pretrain_config: comm overlap disabled with FP8
    current scaling)."""
    from ocplan import api
    est, _, _ = api.run_estimate(CAT, api.EstimateRequest(
        model="nemotron-h-56b", chip="h100-sxm-80gb", chips=32, tp=8, micro_batch=1,
        global_batch=96, seq_len=8192, precision="fp8", sequence_parallel=True,
        tp_overlap=False))
    assert est.feasible, est.reason
    assert est.tokens_per_s_per_chip == pytest.approx(1626.0, rel=0.10)
