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
from ocplan.catalog.system import system_for_chip
from ocplan.results.fleet import (
    BASE_OUTAGE_S,
    DeploymentFailures,
    deployment_counts,
    deployment_failures,
    fleet,
    fleet_availability,
    mean_outage_s,
    replica_unavailability,
    replicas_needed,
    spares_needed,
)
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


# ---- spares for an availability goal --------------------------------------------------

@pytest.mark.parametrize(("n", "s", "u"), [(1, 0, 0.01), (15, 1, 2.5e-5), (17, 2, 0.0085),
                                           (400, 9, 0.01), (5000, 40, 0.004),
                                           (100_000, 1200, 0.01)])
def test_the_fleet_availability_is_the_binomial_cdf(n: int, s: int, u: float) -> None:
    from scipy.stats import binom

    # to 1e-9: a thousandth of the gap to 1 of the highest goal taken (six nines)
    assert fleet_availability(n, s, u) == pytest.approx(binom.cdf(s, n, u), rel=1e-9, abs=0)


@pytest.mark.parametrize("u", [1e-6, 2.5e-5, 0.0085, 0.05, 0.3])
@pytest.mark.parametrize("replicas", [1, 15, 100, 1000])
def test_the_spares_are_the_fewest_that_reach_the_goal(u: float, replicas: int) -> None:
    last = 0
    for goal in (0.9, 0.99, 0.999, 0.9999, 0.999999):
        s = spares_needed(replicas, u, goal)
        assert fleet_availability(replicas + s, s, u) >= goal
        if s > 0:  # one fewer misses it
            assert fleet_availability(replicas + s - 1, s - 1, u) < goal
        assert s >= last  # a higher goal never needs fewer
        last = s
    assert spares_needed(replicas, 0.0, 0.999999) == 0  # nothing fails, nothing spare


def test_an_outage_share_and_its_mean_length() -> None:
    day = 86400.0
    assert replica_unavailability(1 / day, day) == pytest.approx(0.5)  # up a day, out a day
    assert replica_unavailability(1 / (99 * day), day) == pytest.approx(0.01)
    f = DeploymentFailures(hardware_per_s=3e-8, software_per_s=1e-8)
    assert mean_outage_s(f, 0.0) == BASE_OUTAGE_S == 630.0  # MegaScale: 10 min + 30 s
    assert mean_outage_s(f, 4 * 3600.0) == pytest.approx(630.0 + 0.75 * 4 * 3600.0)


def test_a_deployment_counts_its_network_only_across_hosts() -> None:
    one = system_for_chip(CAT, "h100-sxm-80gb", 8)
    two = system_for_chip(CAT, "h100-sxm-80gb", 16)
    assert deployment_counts(one, 8).as_tuple() == (8, 1, 0, 0, 0)
    spans = deployment_counts(two, 16)
    assert (spans.accelerators, spans.servers) == (16, 2)
    assert spans.nics > 0
    assert spans.cables >= spans.nics
    single, double = deployment_failures(one, 8), deployment_failures(two, 16)
    # two hosts fail more than twice as often as one: their NICs and links count too
    assert (double.hardware_per_s + double.software_per_s
            > 2 * (single.hardware_per_s + single.software_per_s))


def test_the_comparison_counts_spares_for_an_availability(
        capsys: pytest.CaptureFixture[str]) -> None:
    args = ["infer", "--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "8",
            "--output-len", "256", "--slo-tpot", "50ms", "--search", "--vs", "mi300x",
            "--price", "2.5,2", "--target-rate", "300", "--availability", "0.9999",
            "--repair", "2 days", "-f", "json"]
    rc, out, err = run(capsys, *args)
    assert rc == 0, err
    answer = json.loads(out)
    assert (answer["availability"], answer["repair_s"]) == (0.9999, 2 * 86400.0)
    for row, chip, price in zip(answer["systems"], ("h100-sxm-80gb", "mi300x"), (2.5, 2.0),
                                strict=True):
        f = deployment_failures(system_for_chip(CAT, chip, 8), 8)
        u = replica_unavailability(f.hardware_per_s + f.software_per_s,
                                   mean_outage_s(f, 2 * 86400.0))
        spares = spares_needed(int(row["fleet_replicas"]), u, 0.9999)
        assert spares > 0  # at two days a repair, a fleet of this size needs some
        assert row["fleet_spares"] == spares
        deployed = row["fleet_replicas"] + spares
        assert row["fleet_chips"] == deployed * 8
        assert row["fleet_cost_per_hour"] == pytest.approx(deployed * 8 * price)
        assert row["fleet_power_W"] == pytest.approx(deployed * row["power_W"])
    assert "99.99 % of the time" in answer["note"]
    assert "2.0 days for a hardware failure" in answer["note"]
    assert "out 10.5 min a failure" in answer["note"]
    # without a repair time a healthy pool swaps at once: fewer spares, never more
    rc, out, _ = run(capsys, *args[:-4], "-f", "json")
    swapped = json.loads(out)["systems"]
    assert all(a["fleet_spares"] <= b["fleet_spares"]
               for a, b in zip(swapped, answer["systems"], strict=True))
    rc, out, _ = run(capsys, *args[:-2])
    assert "fleet: spare deployments" in " ".join(out.split())


@pytest.mark.parametrize(("extra", "lines"), [
    (["--availability", "0.999"], ["--availability: availability = 0.999: sizes the spares "
                                   "of a fleet: give --target-rate too"]),
    (["--target-rate", "10", "--availability", "1", "--repair", "3x"],
     ["--repair: repair = '3x': unit 'x' is not time",
      "--availability: availability = 1.0: must be above 0 and at most 0.999999"]),
    (["--target-rate", "10", "--repair", "2h"],
     ["--repair: repair = '2h': sizes the spares of a fleet: give --availability too"]),
])
def test_a_bad_availability_is_a_line_a_problem(capsys: pytest.CaptureFixture[str],
                                                extra: list[str], lines: list[str]) -> None:
    rc, out, err = run(capsys, "infer", "--model", "llama3-8b", "--chip", "h100-sxm-80gb",
                       "--search", "--vs", "mi300x", *extra)
    assert rc == 2, out
    got = err.strip().splitlines()
    assert len(got) == len(lines), got
    for line, want in zip(sorted(got), sorted(lines), strict=True):
        assert line.startswith(want), (line, want)


def test_a_serving_sweep_needs_a_target_for_an_availability() -> None:
    from ocplan.errors import SpecError
    from ocplan.sweep.spec import parse_sweep

    text = ("name: s\nkind: serving\nmodels: [llama3-8b]\nchips: [h100-sxm-80gb]\n"
            "cluster_sizes: [8]\navailability: 0.999\n")
    with pytest.raises(SpecError, match="give 'target_rate_per_s' too"):
        parse_sweep(text, "s.yaml")
    sweep = parse_sweep(text + "target_rate_per_s: 50\nrepair_s: 7200\n", "s.yaml")
    assert (sweep.spec.availability, sweep.spec.repair_s) == (0.999, 7200.0)
