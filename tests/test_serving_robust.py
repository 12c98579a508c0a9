"""Serving results a new user can break: overloads, layouts that do not fit, load flags
the load ignores, batches larger than the cache, and a bound a reader can check.

Each test states what a correct result must say (a queue above its capacity grows
without bound, a shortfall is capacity less weights, Little's law for a closed loop) and
checks the estimator against it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import fields, replace
from typing import Any

import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import System, system_for_chip
from ocplan.errors import SpecError
from ocplan.serving.calibration import load_serving_calibration
from ocplan.serving.estimate import (
    BREAKDOWN_LABELS,
    IterationBreakdown,
    ServingEstimate,
    estimate_serving,
)
from ocplan.serving.memory import ENGINE_RESERVE_FRACTION
from ocplan.serving.plan import ServingPlan
from ocplan.serving.search import search_serving
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.shape import ModelShape

CAT = load_catalog()


def shape(model: str) -> ModelShape:
    return ModelShape.from_arch(CAT.model(model))


def system(chip: str = "mi300x", chips: int = 8) -> System:
    return system_for_chip(CAT, chip, chips)


def workload(model: str = "llama3-70b", **kw: Any) -> ServingWorkload:
    values: dict[str, object] = dict(input_len=1024, output_len=256,
                                     weight_precision="fp8", activation_precision="fp8")
    values.update(kw)
    return ServingWorkload(shape(model), **values)  # type: ignore[arg-type]


def capacity_per_s(wl: ServingWorkload, plan: ServingPlan, sys_: System) -> float:
    """Requests/s of the same deployment with every request queued (offline)."""
    offline = replace(wl, load="offline", rate_per_s=None)
    return estimate_serving(offline, plan, sys_).requests_per_s


def json_text(est: ServingEstimate) -> str:
    # allow_nan=False: what the CLI and the web answer with; inf or NaN raise
    return json.dumps(est.as_dict(), allow_nan=False)


# ---- 1. an overloaded Poisson rate ----------------------------------------------------


def test_a_rate_above_the_capacity_is_a_queue_without_bound_not_a_crash() -> None:
    plan, sys_ = ServingPlan(tp=8), system()
    cap = capacity_per_s(workload(), plan, sys_)
    est = estimate_serving(workload(load="poisson", rate_per_s=1.5 * cap), plan, sys_)
    assert est.feasible
    assert est.bound == "queueing"
    assert est.ttft_s is None
    # it serves what it can: the capacity, not the asked rate
    assert est.requests_per_s == pytest.approx(cap, rel=1e-6)
    assert est.reason is not None
    assert "without bound" in est.reason
    rates = [float(x) for x in re.findall(r"([\d.]+) req/s", est.reason)]
    # printed with 3 significant digits: up to 0.5 % rounding (18.158 reads 18.2)
    assert rates == pytest.approx([1.5 * cap, cap], rel=5e-3)
    data = json.loads(json_text(est))
    assert data["ttft_s"] is None
    assert data["bound"] == "queueing"


def test_a_rate_below_the_capacity_queues_finitely() -> None:
    plan, sys_ = ServingPlan(tp=8), system()
    cap = capacity_per_s(workload(), plan, sys_)
    est = estimate_serving(workload(load="poisson", rate_per_s=0.8 * cap), plan, sys_)
    assert est.bound != "queueing"
    assert est.reason is None
    assert est.ttft_s is not None
    assert math.isfinite(est.ttft_s)
    assert est.requests_per_s == pytest.approx(0.8 * cap, rel=1e-6)


def test_an_overloaded_rate_fails_its_slo_and_the_search_goes_on() -> None:
    wl = workload(load="poisson", rate_per_s=1e4, slo_ttft_s=2.0, slo_tpot_s=0.1)
    est = estimate_serving(wl, ServingPlan(tp=8), system())
    assert est.bound == "queueing"
    assert est.slo_met is False
    found = search_serving(wl, system(), 8, objective="goodput")
    assert found.results
    for e in found.results:
        json_text(e)
        if e.feasible:
            assert e.bound == "queueing"
            assert e.slo_met is False


def test_a_disaggregated_deployment_above_its_capacity_queues_too() -> None:
    wl = workload(load="poisson", rate_per_s=1e4)
    est = estimate_serving(wl, ServingPlan(tp=4, dp=4, prefill_chips=4),
                           system("h200-sxm-141gb", 16))
    assert est.feasible
    assert est.bound == "queueing"
    assert est.ttft_s is None
    assert est.reason is not None
    assert "without bound" in est.reason
    json_text(est)


# ---- 2. a layout whose weights do not fit ---------------------------------------------


def test_weights_that_do_not_fit_state_the_shortfall_once_and_no_figures() -> None:
    wl = workload("llama3-405b", weight_precision="bf16", activation_precision="bf16")
    est = estimate_serving(wl, ServingPlan(tp=8), system("h100-sxm-80gb"))
    assert not est.feasible
    assert est.reason is not None
    assert est.reason.count("memory") == 1
    mem = est.memory
    assert mem is not None
    assert mem.kv_bytes == 0.0
    assert mem.kv_tokens == 0.0
    # the shortfall is what the weights need beyond the capacity less the reserve
    short = mem.weight_bytes + mem.reserve_bytes - mem.capacity_bytes
    assert short > 0
    assert mem.shortfall_bytes == pytest.approx(short, rel=1e-12)
    assert f"{short / 1e9:.1f} GB short" in est.reason
    for name in ("ttft_s", "tpot_s", "power_W", "energy_per_mtok_J", "batch_limit"):
        assert getattr(est, name) is None, name
    assert est.cost_per_mtok(2.0) is None
    data = json.loads(json_text(est))
    assert all(v >= 0 for v in data["memory"].values())


def test_weights_that_fit_leave_no_shortfall() -> None:
    est = estimate_serving(workload(), ServingPlan(tp=8), system())
    assert est.memory is not None
    assert est.memory.shortfall_bytes == 0.0
    mem = est.memory
    # the fitted reserve holds back its share beyond the engine's own where the weights
    # leave plenty; the cache is the rest
    fitted = load_serving_calibration().reserve_fraction
    assert not mem.on_floor
    assert mem.held_back_bytes == pytest.approx(
        (fitted - ENGINE_RESERVE_FRACTION) * mem.capacity_bytes)
    assert mem.kv_bytes == pytest.approx(mem.capacity_bytes - mem.reserve_bytes
                                         - mem.held_back_bytes - mem.weight_bytes)


@pytest.mark.parametrize("kw", [
    dict(),
    dict(load="static", batch=100_000),
    dict(load="concurrency", concurrency=100_000),
    dict(load="poisson", rate_per_s=1e6, slo_tpot_s=1e-4),
    dict(slo_ttft_s=1e-6, slo_tpot_s=1e-6),
    dict(input_len=2_000_000, output_len=1),
])
def test_no_serving_result_carries_inf_or_nan(kw: dict[str, Any]) -> None:
    est = estimate_serving(workload(**kw), ServingPlan(tp=8), system())
    json_text(est)
    price = est.cost_per_mtok(2.0)
    assert price is None or math.isfinite(price)


# ---- 3. flags the load would ignore ----------------------------------------------------


@pytest.mark.parametrize(("kw", "field"), [
    (dict(rate_per_s=3.0), "rate_per_s"),
    (dict(load="concurrency", concurrency=4, rate_per_s=3.0), "rate_per_s"),
    (dict(concurrency=4), "concurrency"),
    (dict(load="poisson", rate_per_s=1.0, concurrency=4), "concurrency"),
    (dict(batch=8), "batch"),
    (dict(load="concurrency", concurrency=2, batch=8), "batch"),
    (dict(spec_tokens=3), "spec_acceptance"),
    (dict(spec_acceptance=0.6), "spec_tokens"),
])
def test_a_flag_the_load_would_ignore_is_refused_by_name(kw: dict[str, Any],
                                                        field: str) -> None:
    with pytest.raises(SpecError) as info:
        workload(**kw)
    assert [p.field for p in info.value.problems] == [field]
    assert info.value.problems[0].message


@pytest.mark.parametrize("kw", [
    dict(load="poisson", rate_per_s=2.0),
    dict(load="concurrency", concurrency=4),
    dict(load="static", batch=8),
    dict(spec_tokens=3, spec_acceptance=0.6),
])
def test_flags_of_their_own_load_stay_valid(kw: dict[str, Any]) -> None:
    workload(**kw)


# ---- 4. a static batch larger than the cache holds -------------------------------------


def test_a_static_batch_beyond_the_limit_says_it_was_capped_and_runs_in_waves() -> None:
    est = estimate_serving(workload(load="static", batch=100_000), ServingPlan(tp=8),
                           system())
    capped = est.batch_per_instance
    assert capped < 100_000
    note = " ".join(est.notes)
    assert "100,000" in note
    assert f"{capped:,.0f}" in note
    assert est.batch_limit is not None
    assert est.batch_limit in note
    assert f"{math.ceil(100_000 / capped):,} waves" in note


def test_a_static_batch_that_fits_has_no_cap_note() -> None:
    est = estimate_serving(workload(load="static", batch=16), ServingPlan(tp=8), system())
    assert est.batch_per_instance == 16
    assert not any("capped" in n for n in est.notes)


def test_a_closed_loop_beyond_the_batch_waits_by_littles_law() -> None:
    plan, sys_ = ServingPlan(tp=8), system()
    full = estimate_serving(workload(load="concurrency", concurrency=100_000), plan, sys_)
    more = estimate_serving(workload(load="concurrency", concurrency=200_000), plan, sys_)
    assert full.batch_per_instance == more.batch_per_instance
    assert full.ttft_s is not None
    assert more.ttft_s is not None
    # 100,000 more requests in the loop wait 100,000 / X longer for a slot
    assert more.ttft_s - full.ttft_s == pytest.approx(100_000 / full.requests_per_s,
                                                      rel=1e-9)
    assert any("wait for a slot" in n for n in full.notes)


# ---- 5. a bound a reader can check against the breakdown -------------------------------


def _bound_times(bound: str) -> tuple[float, float]:
    m = re.search(r"HBM traffic ([\d.]+) ms vs math ([\d.]+) ms", bound)
    assert m is not None, bound
    return float(m.group(1)), float(m.group(2))


@pytest.mark.parametrize(("concurrency", "kind"), [(1, "HBM bandwidth"),
                                                   (100_000, "compute")])
def test_the_bound_names_the_times_it_compares(concurrency: int, kind: str) -> None:
    wl = workload("llama3-70b", load="concurrency", concurrency=concurrency,
                  input_len=64, output_len=64)
    est = estimate_serving(wl, ServingPlan(), system("h200-sxm-141gb", 1))
    assert est.bound.startswith(kind)
    hbm, math_ = _bound_times(est.bound)
    assert (hbm > math_) == (kind == "HBM bandwidth")
    # neither sum exceeds the device time (each kernel takes the longer of the two)
    it = est.iteration
    assert it is not None
    device_ms = (it.matrix_s + it.attention_s + it.memory_s) * 1e3
    assert max(hbm, math_) <= device_ms * 1.01


def test_every_breakdown_term_has_a_label() -> None:
    assert set(BREAKDOWN_LABELS) == {f.name for f in fields(IterationBreakdown)}
    assert "weight" in BREAKDOWN_LABELS["matrix_s"]
