"""Speculative decoding pays for its drafts: each draft token runs ``draft_layers``
layers of the model's shape and the LM head before the target verifies them all.

Before, drafts were free and only the verification rows were counted, so a draft model
of any size gave the same speed-up (a QA pass, session 44)."""

from __future__ import annotations

import pytest

from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.cli.main import main
from ocplan.errors import SpecError
from ocplan.workloads.shape import ModelShape

CAT = load_catalog()
JOB = dict(model="llama3-70b", chip="h100-sxm-80gb", chips=8, tp=8, load="static",
           batch=4, spec_tokens=3, spec_acceptance=0.7)


def _tpot(**changes: object) -> float:
    req = api.InferRequest(**(JOB | changes))
    result, _, _ = api.run_infer(CAT, req)
    assert result.feasible
    assert result.tpot_s is not None
    return result.tpot_s


def test_drafts_cost_time_in_proportion_to_their_layers() -> None:
    t = [_tpot(draft_layers=d) for d in (0, 1, 2, 3)]
    assert t[0] < t[1] < t[2] < t[3]
    # each added layer costs the same (a layer per draft token, k tokens); the first
    # also brings the LM head of each draft token
    per_layer = t[2] - t[1]
    assert t[3] - t[2] == pytest.approx(per_layer, rel=1e-6)
    assert t[1] - t[0] > per_layer
    # at 4 sequences a step is bound by reading the weights: 3 draft passes of one
    # layer read 3/80 of the layers' weights, so cost a few percent of the step, not
    # nothing and not a whole pass
    assert 0.01 < per_layer / t[0] < 0.06


def test_free_drafts_cost_nothing_beyond_verification() -> None:
    """n-gram drafts (draft_layers 0): the step is the verification pass alone, the
    same as a step without speculation but with k + 1 rows per sequence."""
    free = _tpot(draft_layers=0)
    plain = _tpot(spec_tokens=0, spec_acceptance=0.0)
    tokens_per_step = (1 - 0.7 ** 4) / (1 - 0.7)
    # verification reads the same weights for 4x the rows: a memory-bound step costs
    # about the same, so speculation divides the time per token by about what it keeps
    assert free < plain
    assert plain / free == pytest.approx(tokens_per_step, rel=0.15)


def test_draft_layers_needs_drafts() -> None:
    req = api.InferRequest(**(JOB | {"spec_tokens": 0, "spec_acceptance": 0.0,
                                     "draft_layers": 2}))
    with pytest.raises(SpecError, match="draft_layers = 2: applies only with spec_tokens"):
        api.run_infer(CAT, req)


def test_cli_takes_draft_layers(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    base = ["infer", "--model", "llama3-70b", "--chip", "h100-sxm-80gb", "--chips", "8",
            "--tp", "8", "--load", "static", "--batch", "4", "--spec-tokens", "3",
            "--spec-acceptance", "0.7", "--format", "json"]
    tpots = []
    for d in ("0", "4"):
        assert main([*base, "--draft-layers", d]) == 0
        tpots.append(json.loads(capsys.readouterr().out)["tpot_s"])
    assert tpots[1] > tpots[0]


def _memory(**changes: object) -> tuple[float, float, float]:
    """Weights per chip, KV bytes per token per chip and cached tokens of the job."""
    req = api.InferRequest(**(JOB | changes))
    result, _, _ = api.run_infer(CAT, req)
    mem = result.memory
    assert mem is not None
    return mem.weight_bytes, mem.kv_bytes_per_token, mem.kv_tokens


def test_drafts_hold_their_weights_and_cache() -> None:
    """A draft of d layers holds d of the target's layers (weights split by TP like the
    target's) and caches every token in each of them (a QA pass, session 46: they
    were left out of memory)."""
    shape = ModelShape.from_arch(CAT.model("llama3-70b"))
    tp = JOB["chips"]
    assert isinstance(tp, int)
    layer_bytes = (shape.attn_params + shape.dense_mlp_params) / tp * 2  # bf16
    kv_layer = 2 * (shape.n_kv_heads / tp) * shape.head_dim * 2  # K and V, bf16
    w0, kv0, tokens0 = _memory(draft_layers=0)
    w1, kv1, tokens1 = _memory(draft_layers=1)
    w4, kv4, tokens4 = _memory(draft_layers=4)
    assert w1 - w0 == pytest.approx(layer_bytes, rel=1e-9)
    assert w4 - w0 == pytest.approx(4 * layer_bytes, rel=1e-9)
    assert kv1 - kv0 == pytest.approx(kv_layer, rel=1e-9)
    assert kv4 - kv0 == pytest.approx(4 * kv_layer, rel=1e-9)
    assert kv0 == pytest.approx(shape.n_layers * kv_layer, rel=1e-9)
    # fewer tokens fit: less room and more bytes a token
    assert tokens4 < tokens1 < tokens0
    # n-gram drafts, like no speculation, hold nothing
    assert _memory(spec_tokens=0, spec_acceptance=0.0) == (w0, kv0, tokens0)
