"""Fleet sizing for a target load (:mod:`ocplan.results.fleet`): replicas of one serving
deployment that together serve a request rate within what each sustains, and the
comparison rows, CLI flag, web request and sweep rows that carry it."""

from __future__ import annotations

import json
import math

import pytest

from clikit import one_line, run
from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.results.fleet import fleet, replicas_needed
from ocplan.results.serving_compare import ServedSystem
from ocplan.serving.estimate import ServingEstimate

CAT = load_catalog()
#: Llama 3 8B on one H100 under a TPOT limit: ranked by SLO goodput.
JOB = {"model": "llama3-8b", "chip": "h100-sxm-80gb", "chips": 8, "output_len": 256,
       "slo_tpot_s": 0.05}


def test_replicas_round_up_but_not_past_an_exact_multiple() -> None:
    assert replicas_needed(100.0, 25.0) == 4
    assert replicas_needed(100.0, 100.0 / 3) == 3  # an exact multiple through floats
    assert replicas_needed(100.1, 25.0) == 5
    assert replicas_needed(0.01, 25.0) == 1


def _best() -> tuple[api.InferRequest, ServingEstimate]:
    req = api.InferRequest(**JOB | {"tp": 1})
    result, _, _ = api.run_infer(CAT, req)
    assert result.feasible
    return req, result


def test_a_fleet_costs_its_chip_hours_over_the_tokens_asked_for() -> None:
    _, e = _best()
    per_replica = e.slo_rate_per_s
    assert per_replica is not None
    assert per_replica > 0
    target = 2.5 * per_replica
    f = fleet(e, target, per_replica, 2.0)
    assert (f.replicas, f.chips) == (3, 3 * e.chips)
    assert f.power_W == pytest.approx(3 * e.power_W)
    assert f.cost_per_hour == pytest.approx(3 * e.chips * 2.0)
    tokens_per_hour = target * (e.output_tokens_per_s / e.requests_per_s) * 3600.0
    assert f.cost_per_mtok == pytest.approx(f.cost_per_hour / tokens_per_hour * 1e6)
    # a fleet that runs each replica at its SLO goodput costs what one deployment does
    # per token at that rate; rounding up only adds to it
    row = ServedSystem("h100", "8 x h100", "h100-sxm-80gb", 8, e, None, 2.0, "goodput",
                       2.0 * per_replica)
    at_goodput = row.measure("cost_per_mtok")
    assert at_goodput is not None
    assert row.measure("fleet_cost_per_mtok") == pytest.approx(at_goodput)
    assert f.cost_per_mtok > at_goodput
    assert fleet(e, target, per_replica, None).cost_per_hour is None


def test_no_fleet_without_a_target_or_a_rate_within_the_limits() -> None:
    _, e = _best()
    assert ServedSystem("a", "a", "h100-sxm-80gb", 8, e, None, 2.0, "goodput").fleet() is None
    # a throughput ranking sizes by the rate one deployment serves (offline: the most)
    row = ServedSystem("a", "a", "h100-sxm-80gb", 8, e, None, None, "throughput", 1000.0)
    planned = row.fleet()
    assert planned is not None
    assert planned.replicas == math.ceil(1000.0 / e.requests_per_s)
    assert row.measure("fleet_cost_per_hour") is None  # no price
    # under a Poisson load each deployment is planned at that load's rate, not its most
    req = api.InferRequest(**JOB | {"tp": 1, "load": "poisson", "rate_per_s": 5.0,
                                    "slo_tpot_s": None})
    paced, _, _ = api.run_infer(CAT, req)
    assert paced.requests_per_s == pytest.approx(5.0)
    row = ServedSystem("a", "a", "h100-sxm-80gb", 8, paced, None, None, "throughput", 100.0)
    assert row.measure("fleet_replicas") == 20


def test_the_comparison_sizes_each_systems_fleet(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["infer", "--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "8",
            "--output-len", "256", "--slo-tpot", "50ms", "--search", "--vs", "mi300x",
            "--price", "2.5,2", "--target-rate", "300", "-f", "json"]
    rc, out, err = run(capsys, *args)
    assert rc == 0, err
    answer = json.loads(out)
    assert answer["target_rate_per_s"] == 300
    assert "300 requests/s" in answer["note"]
    for row, price in zip(answer["systems"], (2.5, 2.0), strict=True):
        per_deployment = row["slo_rate_per_s_per_chip"] * row["chips"]
        replicas = math.ceil(300 / per_deployment)
        assert row["fleet_replicas"] == replicas
        assert row["fleet_chips"] == replicas * row["chips"]
        assert row["fleet_cost_per_hour"] == pytest.approx(replicas * row["chips"] * price)
    fewer = min(answer["systems"], key=lambda r: r["fleet_chips"])["name"]
    assert answer["leaders"]["fleet_chips"] == fewer
    # the table carries the rows and the sentence that says what they are
    rc, out, _ = run(capsys, *args[:-2])
    flat = " ".join(out.split())
    assert "fleet: chips" in flat
    assert "together serve 300 requests/s" in flat


@pytest.mark.parametrize(("extra", "words"), [
    (["--target-rate", "100"], "give --search and --vs too"),
    (["--search", "--vs", "mi300x", "--target-rate", "0"], "must be above 0"),
])
def test_a_bad_target_is_one_line(capsys: pytest.CaptureFixture[str], extra: list[str],
                                  words: str) -> None:
    line = one_line(*run(capsys, "infer", "--model", "llama3-8b", "--chip", "h100-sxm-80gb",
                         *extra))
    assert line.startswith("--target-rate: ")
    assert words in line
