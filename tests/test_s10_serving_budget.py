"""An engine's token budget holds per scheduler: with attention DP every rank carries its
own (issue 10: the step model and the batch limits follow the engine's real scheduling)."""

from __future__ import annotations

import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.serving.estimate import estimate_serving
from ocplan.serving.plan import DEFAULT_CHUNK_TOKENS, ServingPlan
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
    shared = estimate_serving(wl, plan.__class__(**{**plan.as_dict(),
                                                    "chunk_tokens": DEFAULT_CHUNK_TOKENS}),
                              system_for_chip(CAT, "gb200", 96))
    assert shared.batch_per_instance <= DEFAULT_CHUNK_TOKENS
    assert est.decode_output_tokens_per_s_per_chip is not None
    assert shared.decode_output_tokens_per_s_per_chip is not None
    assert est.decode_output_tokens_per_s_per_chip > shared.decode_output_tokens_per_s_per_chip
