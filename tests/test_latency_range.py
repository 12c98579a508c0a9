"""The likely latencies at a Poisson rate (ocplan.serving.latency_range): the operating
point solved again with the iteration at either end of the family's held-out range.
The step model's time scale multiplies every term and keeps its own memo; the range
brackets the estimate, widens towards the capacity and overloads past it; other loads,
searches and layouts that cannot run carry none; the CLI shows it and its JSON holds it."""

from __future__ import annotations

import json
from dataclasses import fields, replace

import numpy as np
import pytest

from clikit import run
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import System, system_for_chip
from ocplan.plan.calibration import load_calibration
from ocplan.plan.engine import chip_peaks, system_model
from ocplan.serving.calibration import load_serving_calibration
from ocplan.serving.estimate import (
    ServingEstimate,
    estimate_serving,
    with_latency_range,
    with_likely_slo_rate,
)
from ocplan.serving.latency_range import latency_range, likely_slo_rates
from ocplan.serving.plan import ServingPlan
from ocplan.serving.search import search_serving
from ocplan.serving.step import step_model
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.shape import ModelShape

PLAN = ServingPlan(tp=8, dp=1)
ARGS = ["infer", "--model", "llama3-70b", "--chip", "h100-sxm-80gb", "--chips", "8",
        "--tp", "8", "--input-len", "2000", "--output-len", "500"]


@pytest.fixture(scope="module")
def system() -> System:
    return system_for_chip(load_catalog(), "h100-sxm-80gb", 8)


@pytest.fixture(scope="module")
def model() -> ModelShape:
    return ModelShape.from_arch(load_catalog().model("llama3-70b"))


def _at(model: ModelShape, rate: float | None, load: str = "poisson") -> ServingWorkload:
    return ServingWorkload(model, input_len=2000, output_len=500, load=load,
                           rate_per_s=rate)


def _ranged(wl: ServingWorkload, system: System) -> ServingEstimate:
    return with_latency_range(estimate_serving(wl, PLAN, system), wl, system)


def _capacity(model: ModelShape, system: System) -> float:
    """Requests/s the layout serves at most (a rate far beyond it queues at this)."""
    over = estimate_serving(_at(model, 1e4), PLAN, system)
    assert over.reason is not None
    assert over.reason.startswith("queueing")
    return over.requests_per_s


def test_the_time_scale_multiplies_every_term_and_keeps_its_own_memo(
        model: ModelShape, system: System) -> None:
    sm = system_model(system)
    base = step_model(_at(model, 4.0), PLAN, sm, chip_peaks(sm, "bf16"), load_calibration(),
                      load_serving_calibration())
    counts = (np.array([0.0, 2000.0]), np.array([0.0, 1.0]), np.array([64.0, 64.0]),
              np.array([64 * 1500.0, 64 * 1500.0]))
    slow = replace(base, time_scale=1.3)
    scaled = slow.iteration(*counts)  # the scaled model first: the base must not see it
    plain = base.iteration(*counts)
    for f in fields(plain):
        np.testing.assert_allclose(getattr(scaled, f.name), 1.3 * getattr(plain, f.name),
                                   rtol=1e-12)
    assert float(plain.total_s[1]) > float(plain.total_s[0]) > 0.0
    again = replace(base, time_scale=1.3).iteration(*counts)
    np.testing.assert_allclose(again.total_s, scaled.total_s, rtol=1e-12)


def test_the_range_brackets_the_estimate_and_widens_towards_the_capacity(
        model: ModelShape, system: System) -> None:
    cap = _capacity(model, system)
    widths = []
    for share in (0.3, 0.7):
        est = _ranged(_at(model, share * cap), system)
        lr = est.latency_range
        assert lr is not None
        assert est.ttft_s is not None
        assert est.tpot_s is not None
        assert est.held_out_range_pct is not None
        assert lr.time_scales == pytest.approx(
            tuple(1.0 + e / 100.0 for e in est.held_out_range_pct), rel=1e-12)
        assert lr.time_scales[0] < 1.0 < lr.time_scales[1]
        (t_fast, t_slow), (p_fast, p_slow) = lr.ttft_s, lr.tpot_s
        assert t_fast is not None
        assert t_slow is not None
        assert p_fast is not None
        assert p_slow is not None
        assert t_fast < est.ttft_s < t_slow
        assert p_fast < est.tpot_s < p_slow
        # the statistic of the SLOs' kind, where the estimate models one
        assert lr.latency_stat == est.latency_stat
        widths.append(p_slow / p_fast)
    # the same iteration error moves the latencies more near the capacity
    assert widths[1] > widths[0] > 1.0


def test_a_range_without_width_is_the_estimate(model: ModelShape, system: System) -> None:
    wl = _at(model, 3.0)
    est = estimate_serving(wl, PLAN, system)
    assert est.memory is not None
    assert est.tpot_s is not None
    lr = latency_range(wl, PLAN, system, (0.0, 0.0), est.memory.kv_tokens)
    assert lr is not None
    assert lr.tpot_s == (pytest.approx(est.tpot_s, rel=1e-12),) * 2
    assert lr.ttft_s == (pytest.approx(est.ttft_s, rel=1e-12),) * 2


def test_near_the_capacity_the_slow_end_overloads(model: ModelShape, system: System) -> None:
    cap = _capacity(model, system)
    est = _ranged(_at(model, 0.97 * cap), system)
    lr = est.latency_range
    assert est.reason is None  # the estimate itself keeps up
    assert lr is not None
    assert lr.overloaded_at_slow_end
    assert lr.ttft_s[1] is None
    assert lr.tpot_s[1] is None
    assert lr.ttft_s[0] is not None
    assert est.ttft_s is not None
    assert lr.ttft_s[0] < est.ttft_s
    # beyond the capacity the estimate queues; at the fast end the rate can still be met
    over = _ranged(_at(model, 1.05 * cap), system)
    assert over.reason is not None
    assert over.latency_range is not None
    assert over.latency_range.tpot_s[0] is not None
    assert over.latency_range.tpot_s[1] is None


def test_other_loads_searches_and_layouts_that_cannot_run_carry_none(
        model: ModelShape, system: System) -> None:
    offline = _at(model, None, load="offline")
    assert _ranged(offline, system).latency_range is None
    assert latency_range(offline, PLAN, system, (-10.0, 10.0), 1e6) is None
    poisson = _at(model, 2.0)
    assert latency_range(poisson, PLAN, system, None, 1e6) is None
    # a search ranks many layouts at the rate and times none twice more
    found = search_serving(poisson, system, 8)
    assert found.results
    assert all(r.latency_range is None for r in found.results)
    # a layout whose weights do not fit on its chips
    cramped = with_latency_range(estimate_serving(poisson, ServingPlan(tp=1, dp=1), system),
                                 poisson, system)
    assert not cramped.feasible
    assert cramped.latency_range is None


def test_the_cli_table_and_json_show_it(capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # each row of the table on one line
    rc, out, _ = run(capsys, *ARGS, "--load", "poisson", "--rate", "3", "--format", "json")
    assert rc == 0
    data = json.loads(out)
    lr = data["latency_range"]
    assert len(lr["time_scales"]) == 2
    assert lr["time_scales"][0] < 1.0 < lr["time_scales"][1]
    assert lr["tpot_s"][0] < data["tpot_s"] < lr["tpot_s"][1]
    rc, out, _ = run(capsys, *ARGS, "--load", "poisson", "--rate", "3")
    assert rc == 0
    (row,) = [line for line in out.splitlines()
              if "likely TTFT / TPOT at this rate, mean" in line]
    assert row.count("ms to ") == 2  # TTFT and TPOT, each from its fast to its slow end
    rc, out, _ = run(capsys, *ARGS, "--format", "json")  # offline: no rate, no range
    assert rc == 0
    assert json.loads(out)["latency_range"] is None


def test_the_rows_say_where_the_range_comes_from(model: ModelShape, system: System) -> None:
    from ocplan.reports.summary import serving_rows

    wl = _at(model, 0.5 * _capacity(model, system))
    est = _ranged(wl, system)
    lr = est.latency_range
    assert lr is not None
    rows = dict(serving_rows(est, None, "USD", "hopper"))
    text = rows["likely TTFT / TPOT at this rate, mean"]
    assert text.endswith(f"(iterations {lr.time_scales[0]:.2f}x to {lr.time_scales[1]:.2f}x "
                         f"the model's, as 80 % of the {est.range_family} family's "
                         f"{est.range_rows} serving results fell held out)")
    assert est.range_rows > 0
    assert f"likely TTFT / TPOT at this rate, {est.latency_stat}" in rows
    # an end the rate overloads reads as unbounded
    near = _ranged(_at(model, 0.97 * _capacity(model, system)), system)
    near_rows = dict(serving_rows(near, None, "USD", "hopper"))
    assert "to unbounded (overloaded) / " in near_rows["likely TTFT / TPOT at this rate, mean"]


def test_the_likely_slo_goodput_brackets_the_estimates(model: ModelShape,
                                                      system: System) -> None:
    wl = replace(_at(model, None, load="offline"), slo_ttft_s=2.0, slo_tpot_s=0.05)
    est = with_likely_slo_rate(estimate_serving(wl, PLAN, system), wl, system)
    assert est.slo_rate_per_s is not None
    assert est.likely_slo_rate_per_s is not None
    low, high = est.likely_slo_rate_per_s
    assert 0.0 < low < est.slo_rate_per_s < high
    # a job without latency limits has no SLO goodput, likely or not
    free = _at(model, None, load="offline")
    assert with_likely_slo_rate(estimate_serving(free, PLAN, system), free,
                                system).likely_slo_rate_per_s is None
    assert est.memory is not None
    assert likely_slo_rates(wl, PLAN, system, None, est.memory.kv_tokens) is None


def test_a_fleet_counts_its_likely_deployments() -> None:
    from ocplan.results.fleet import fleet

    est = ServingEstimate(True, None, PLAN, 8, 1000.0, 125.0, 500.0, 2.0, 64.0, "load",
                          None, None, None, None, "compute", None, None, None, 1e4, None)
    planned = fleet(est, 50.0, 6.0, None, None, (5.0, 10.0))
    assert planned.replicas == 9
    assert planned.likely_replicas == (5, 10)
    assert fleet(est, 50.0, 6.0, None, None, (0.0, 10.0)).likely_replicas == (5, None)
    assert fleet(est, 50.0, 6.0, None).likely_replicas is None


@pytest.mark.parametrize("objective", ["goodput", "throughput"])
def test_a_comparison_sizes_a_likely_fleet(objective: str) -> None:
    from ocplan import api

    body = {"model": "llama3-70b", "chip": "h100-sxm-80gb", "chips": 8, "input_len": 2000,
            "output_len": 500}
    if objective == "goodput":
        body |= {"slo_ttft_s": 2.0, "slo_tpot_s": 0.05}
    req = api.InferRequest.model_validate(body)
    cat = load_catalog()
    result = api.run_infer_compare(cat, req, ["h200-sxm-141gb"], target_rate_per_s=50.0)
    assert result.objective == objective
    for row in result.as_json()["systems"]:
        fewest, most = row["fleet_likely_replicas"]
        assert most is not None
        assert fewest < row["fleet_replicas"] < most
    alone = api.run_infer_compare(cat, req, ["h200-sxm-141gb"])
    assert all(r["fleet_likely_replicas"] is None for r in alone.as_json()["systems"])
    assert "Likely deployments" not in (alone.note() or "")
    assert "Likely deployments" in (result.note() or "")


def test_the_curve_marks_the_likely_tpot_at_the_rate(model: ModelShape, system: System) -> None:
    from ocplan.reports.figures import serving_curve_figure
    from ocplan.serving.estimate import serving_curve

    cap = _capacity(model, system)
    for share, overloads in ((0.3, False), (0.97, True)):
        wl = _at(model, share * cap)
        est = _ranged(wl, system)
        curve = serving_curve(wl, PLAN, system)
        assert curve is not None
        assert est.latency_range is not None
        assert est.tpot_s is not None
        fast, slow = est.latency_range.tpot_s
        assert fast is not None
        assert (slow is None) is overloads
        fig = serving_curve_figure(curve, est.tpot_s, est.output_tokens_per_s_per_chip,
                                   est.latency_range.tpot_s)
        bar = fig["data"][-1]["error_x"]
        high = max(curve.tpot_s) if slow is None else slow
        assert bar["arrayminus"][0] == pytest.approx((est.tpot_s - fast) * 1e3, rel=1e-9)
        assert bar["array"][0] == pytest.approx((high - est.tpot_s) * 1e3, rel=1e-9)
        assert ("to overloaded" in fig["data"][-1]["hovertemplate"]) is overloads
        plain = serving_curve_figure(curve, est.tpot_s, est.output_tokens_per_s_per_chip)
        assert "error_x" not in plain["data"][-1]


def test_a_rate_the_arrivals_set_has_no_likely_fleet_by_throughput() -> None:
    """Ranked by throughput under a Poisson load a deployment keeps up with, one serves
    the arrivals' rate whatever its iteration takes: no likely count; offline, its
    capacity, which is as uncertain as its throughput."""
    from ocplan import api

    base = {"model": "llama3-70b", "chip": "h100-sxm-80gb", "chips": 8, "input_len": 2000,
            "output_len": 500}
    cat = load_catalog()
    loaded = api.InferRequest.model_validate(base | {"load": "poisson", "rate_per_s": 1.0})
    rows = api.run_infer_compare(cat, loaded, ["h200-sxm-141gb"],
                                 target_rate_per_s=20.0).as_json()["systems"]
    assert all(r["best"]["latency_stat"] is not None for r in rows)  # they keep up
    assert all(r["fleet_replicas"] == 20 for r in rows)  # one request/s each
    assert all(r["fleet_likely_replicas"] is None for r in rows)
    offline = api.InferRequest.model_validate(base)
    rows = api.run_infer_compare(cat, offline, ["h200-sxm-141gb"],
                                 target_rate_per_s=20.0).as_json()["systems"]
    assert all(r["fleet_likely_replicas"] is not None for r in rows)
