"""The cluster around an estimate (issue 13 surfaces): facility and goodput in estimate,
compare, report, with the reasons when goodput cannot be given."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import load_system
from ocplan.cli.main import main
from ocplan.facility import facility_plan
from ocplan.plan.estimate import estimate
from ocplan.plan.plan import Plan
from ocplan.reliability import cluster_failure_rate, counts_for_chips, default_table
from ocplan.results.cluster import cluster_outlook
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
LIQUID = EXAMPLES / "ubb-1024-liquid.yaml"
CAT = load_catalog()
JOB = ["--model", "gpt3-175b", "--chips", "1024", "--global-batch", "1536", "--seq-len",
       "2048", "--precision", "fp8", "--tp", "8", "--pp", "8", "--vpp", "6",
       "--micro-batch", "1", "--zero", "1"]


def test_estimate_json_carries_the_facility_and_goodput(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "--system", str(LIQUID), *JOB, "--train-tokens", "300e9",
                 "--price", "2", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    f, g = out["cluster"]["facility"], out["cluster"]["goodput"]
    assert f["racks"] == 32
    assert f["cdus"] >= 1
    # the first law: the loop's flow carries the liquid heat at its temperature rise
    assert f["liquid_W"] > 0
    assert f["coolant_flow_L_per_min"] > 0
    # the Sankey's leaves add up to the facility's power (derived PUE)
    sinks = {b for _, b, _ in f["power_flow"]} - {a for a, _, _ in f["power_flow"]}
    leaves = sum(w for _, b, w in f["power_flow"] if b in sinks)
    assert leaves == pytest.approx(f["it_W"] * f["pue_derived"], rel=1e-6)
    # goodput: below 1, and the wall time with failures is the ideal time over it
    assert 0.9 < g["goodput"] < 1.0
    assert g["wall_s"] == pytest.approx(out["time_to_train_s"] / g["goodput"], rel=1e-6)
    assert g["wall_p10_s"] <= g["wall_s"] <= g["wall_p90_s"]
    assert g["cost"] > out["cost_to_train"]
    # one facility power for every energy figure: to train, and with failures
    assert out["energy_to_train_J"] == pytest.approx(out["cluster"]["job_facility_W"]
                                                     * out["time_to_train_s"])


def test_goodput_needs_tokens_and_storage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "--system", str(LIQUID), *JOB, "--format", "json"]) == 0
    cluster = json.loads(capsys.readouterr().out)["cluster"]
    assert cluster["goodput"] is None
    assert "tokens" in cluster["goodput_reason"]
    assert main(["estimate", "--chip", "mi300x", "--chips", "8", "--model", "llama3-8b",
                 "--tp", "8", "--train-tokens", "1e11", "--format", "json"]) == 0
    cluster = json.loads(capsys.readouterr().out)["cluster"]
    assert cluster["goodput"] is None
    assert "storage" in cluster["goodput_reason"]
    assert cluster["facility"]["cdus"] == 0  # an air-cooled server has no liquid loop


def test_job_counts_scale_with_the_chips_used() -> None:
    system = load_system(LIQUID, CAT)
    full, half = counts_for_chips(system, 1024), counts_for_chips(system, 512)
    assert (full.accelerators, full.servers) == (1024, 128)
    assert (half.accelerators, half.servers) == (512, 64)
    table = default_table()
    # failures scale with the components: half the job fails half as often
    assert cluster_failure_rate(half, table).mtbf_s == pytest.approx(
        2 * cluster_failure_rate(full, table).mtbf_s)


def test_more_chips_more_failures_lower_goodput() -> None:
    system = load_system(LIQUID, CAT)
    wl = Workload(ModelShape.from_arch(CAT.model("gpt3-175b")), 2048, 1536, "fp8")
    small = estimate(wl, Plan(tp=8, pp=8, vpp=6, dp=2, micro_batch=1, zero=1), system)
    large = estimate(wl, Plan(tp=8, pp=8, vpp=6, dp=16, micro_batch=1, zero=1), system)
    g_small = cluster_outlook(small, wl, system, 300e9).goodput
    g_large = cluster_outlook(large, wl, system, 300e9).goodput
    assert g_small is not None
    assert g_large is not None
    # 8x the components fail 8x as often; the run is shorter, but by less than 8x
    assert g_large.failure_rate.unplanned_per_s == pytest.approx(
        8 * g_small.failure_rate.unplanned_per_s)
    assert g_large.goodput < g_small.goodput
    assert not math.isnan(g_large.wall_s or math.nan)


def test_compare_rows_carry_pue_cdus_and_goodput(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(LIQUID), "--model", "llama3-8b", "--global-batch", "256",
                 "--seq-len", "4096", "--chips", "64", "--train-tokens", "1e12",
                 "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)["systems"][0]
    system = load_system(LIQUID, CAT)
    plan = facility_plan(system)
    assert row["pue"] == pytest.approx(plan.pue)
    assert row["cdus"] == plan.cooling.cdus
    assert row["facility_power_W"] == pytest.approx(plan.facility_W * 64 / 1024)
    assert 0 < row["goodput"] < 1
    assert row["time_to_train_with_failures_s"] > row["time_to_train_s"]


def test_search_can_rank_by_time_with_failures(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 13: the search optimises the expected time to train including failures: a
    chip count's layouts all pay its failure overhead, so the ranking across counts
    follows ideal time / goodput(count)."""
    from ocplan.plan.search import failure_goodput, search

    system = load_system(LIQUID, CAT)
    wl = Workload(ModelShape.from_arch(CAT.model("gpt3-175b")), 2048, 1536, "fp8")
    plain = search(wl, system, 1024, objective="time", top_k=3, chip_counts=[256, 1024],
                   train_tokens=300e9)
    aware = search(wl, system, 1024, objective="time_with_failures", top_k=3,
                   chip_counts=[256, 1024], train_tokens=300e9)
    assert plain.best is not None
    assert aware.best is not None
    g256, g1024 = failure_goodput(wl, system, 256), failure_goodput(wl, system, 1024)
    assert 0 < g1024 < g256 < 1  # four times the components fail four times as often
    for result in (plain, aware):
        for e in result.top:
            assert e.feasible
    # each ranked layout's score is its ideal time over its count's goodput
    scores = [300e9 / e.tokens_per_s / (g256 if e.chips == 256 else g1024)
              for e in aware.top]
    assert scores == sorted(scores)
    # each row shows what it is ranked by: time (and cost) with failures beside the
    # ideal, from the same goodput; a failure-blind objective's rows have neither
    rows = aware.as_json()["top"]
    for e, row in zip(aware.top, rows, strict=True):
        g = g256 if e.chips == 256 else g1024
        assert row["time_to_train_with_failures_s"] == pytest.approx(
            row["time_to_train_s"] / g, rel=1e-12)
    assert [r["time_to_train_with_failures_s"] for r in rows] == pytest.approx(scores)
    assert all("time_to_train_with_failures_s" not in r for r in plain.as_json()["top"])
    priced = search(wl, system, 1024, objective="cost_with_failures", top_k=2,
                    chip_counts=[256, 1024], train_tokens=300e9, price_per_chip_hour=2.0)
    for row in priced.as_json()["top"]:
        assert row["cost_to_train_with_failures"] > row["cost_to_train"] > 0
    # and the CLI's table has the column
    assert main(["search", "--system", str(LIQUID), "--model", "llama3-70b", "--chips",
                 "512", "--global-batch", "1024", "--seq-len", "4096", "--objective",
                 "time_with_failures", "--train-tokens", "1T", "--top", "2"]) == 0
    assert "time to train with failures" in capsys.readouterr().out
    # without storage the objective is refused, naming what is missing
    assert main(["search", "--model", "llama3-8b", "--chip", "mi300x",
                 "--objective", "time_with_failures"]) == 2
    assert "storage" in capsys.readouterr().err
