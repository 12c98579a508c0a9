"""A faster resource never makes a serving deployment worse (hypothesis).

Random deployments (model, chip, layout of the search's candidates, prompt and answer
lengths, load, latency limits) are estimated again with each hardware resource doubled
and halved (:func:`~ocplan.serving.sensitivity.serving_sensitivity`): the throughput
and the highest rate within the SLOs never fall with a doubled resource and never rise
with a halved one; the latencies move the other way.

Tolerance: 3 % of the figure. A p99 latency is the quantile of a discrete law (its
arrival instants on a midpoint rule); where the limit sits on the step at which a wait
first reaches the 99th percentile, a faster chip's step can land a hair earlier (a 2 %
lower SLO rate for twice the HBM bandwidth, Llama 3 8B with 16,000-token prompts). Before
the prompt backlog and the balanced-routing fix such changes reached 8 and 12 %
(``tests/test_serving_backlog.py``, ``tests/test_balanced_groups.py``).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocplan.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.serving.search import serving_candidates
from ocplan.serving.sensitivity import MEASURES, serving_sensitivity
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.shape import ModelShape

CAT = load_catalog()
MODELS = ("llama3-8b", "llama3-70b", "mixtral-8x7b", "qwen3-30b-a3b", "gpt-oss-120b")
CHIPS = ("h100-sxm-80gb", "h200-sxm-141gb", "mi300x", "b200", "gaudi3")
TOLERANCE = 0.03


@st.composite
def deployments(draw: st.DrawFn) -> tuple[ServingWorkload, object, object]:
    shape = ModelShape.from_arch(CAT.model(draw(st.sampled_from(MODELS))))
    chips = draw(st.sampled_from((1, 2, 4, 8)))
    system = system_for_chip(CAT, draw(st.sampled_from(CHIPS)), 8)
    plan = draw(st.sampled_from(serving_candidates(shape, chips, 8)))
    load = draw(st.sampled_from(("offline", "poisson", "concurrency")))
    extra: dict[str, object] = {}
    if load == "poisson":
        extra["rate_per_s"] = draw(st.sampled_from((0.5, 2.0, 8.0, 30.0)))
    if load == "concurrency":
        extra["concurrency"] = draw(st.sampled_from((1, 8, 64, 512)))
    if draw(st.booleans()):
        extra["slo_tpot_s"] = draw(st.sampled_from((0.02, 0.05, 0.1)))
    if draw(st.booleans()):
        extra["slo_ttft_s"] = draw(st.sampled_from((0.5, 2.0)))
    wl = ServingWorkload(shape, draw(st.sampled_from((128, 1000, 4000, 16000))),
                         draw(st.sampled_from((64, 500, 2000))), load=load,  # type: ignore[arg-type]
                         **extra)  # type: ignore[arg-type]
    return wl, plan, system


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(d=deployments())
def test_a_faster_resource_never_makes_a_deployment_worse(
        d: tuple[ServingWorkload, object, object]) -> None:
    wl, plan, system = d
    for factor in (2.0, 0.5):
        sens = serving_sensitivity(wl, plan, system, factor)  # type: ignore[arg-type]
        if not sens.feasible:
            continue
        for effect in sens.rows:
            for m in MEASURES:
                base, value = sens.base[m.name], effect.values[m.name]
                if base is None or value is None:
                    continue
                better = value > base if m.higher_is_better else value < base
                worse = value < base if m.higher_is_better else value > base
                moved = abs(value - base) / max(abs(base), 1e-30)
                assert not ((worse if factor > 1 else better) and moved > TOLERANCE), (
                    effect.lever, m.name, base, value, factor)
