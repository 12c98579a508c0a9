"""Serving caveats (ocplan.serving.caveats): each one's evidence, predicted again, still
shows the error its sentence states; the evidence is every published-layout result the
caveat applies to (none left out); the figures the sentence quotes are its evidence's
(and, for results without a layout, the committed MLPerf v6 predictions'); each caveat
spares a control result; and estimates carry them to the JSON output, the CLI table and
the workbench's route."""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from ocplan.catalog import load_catalog
from ocplan.cli.main import app
from ocplan.results.serving_validation import (
    METRIC_COLUMN,
    PreparedServing,
    predict_serving_row,
    prepare_serving_row,
    published_plan,
)
from ocplan.serving.caveats import (
    LATENCY_AT_LOAD,
    SERVING_CAVEATS,
    TIGHT_TPOT_S,
    ServingCaveat,
)
from ocplan.serving.estimate import ServingEstimate
from ocplan.web.app import create_app

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "validation" / "inference_dev.csv"
HOLDOUT = ROOT / "validation" / "holdout" / "inference_holdout.csv"
SWEEP = ROOT / "validation" / "sweeps" / "mlperf_inference_v6.csv"
SCORED = ROOT / "validation" / "sweeps" / "mlperf_inference_v6_scored.csv"

pytestmark = pytest.mark.skipif(not DEV.exists(), reason="needs ../shared/validation")

#: A result of the same kind as each caveat's evidence that the caveat must not cover:
#: gpt-oss-120b on B300 at the Interactive 15 ms limit, and on B300 for the AMD caveat;
#: Llama 2 70B Offline on B300 (not MLA); Server (80 ms) on B300.
CONTROLS = {"windowed-moe": "M6017", "windowed-moe-amd": "M6018",
            "mla-blackwell": "M6061", "tight-tpot": "M6019"}


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return {r["case_id"]: r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def rows() -> dict[str, dict[str, str]]:
    return _rows(DEV) | _rows(HOLDOUT) | _rows(SWEEP)


@pytest.fixture(scope="module")
def published(rows: dict[str, dict[str, str]]) -> dict[str, PreparedServing]:
    """Every result of the three files that publishes its layout, prepared."""
    catalog = load_catalog()
    out = {}
    for cid, row in rows.items():
        p = prepare_serving_row(row, catalog)
        if published_plan(p) is not None:
            out[cid] = p
    return out


@pytest.fixture(scope="module")
def scored(rows: dict[str, dict[str, str]], published: dict[str, PreparedServing]
           ) -> dict[str, tuple[ServingEstimate, float]]:
    """Every evidence and control result: its estimate and its error, %."""
    wanted = {c for cav in SERVING_CAVEATS for c in cav.evidence} | set(CONTROLS.values())
    out = {}
    for cid in sorted(wanted):
        p = published[cid]
        value, est, source = predict_serving_row(p)
        assert source == "published", cid
        assert value is not None, cid
        measured = float(rows[cid][METRIC_COLUMN[p.metric]])
        out[cid] = (est, 100.0 * (value / measured - 1.0))
    return out


def _caveat(name: str) -> ServingCaveat:
    return next(c for c in SERVING_CAVEATS if c.name == name)


def _applies(c: ServingCaveat, p: PreparedServing) -> bool:
    plan = published_plan(p)
    assert plan is not None
    return c.applies(p.workload, plan, p.system)


def test_every_caveat_has_a_control() -> None:
    assert set(CONTROLS) == {c.name for c in SERVING_CAVEATS}


@pytest.mark.parametrize("caveat", SERVING_CAVEATS, ids=lambda c: c.name)
def test_evidence_still_shows_the_stated_error(
        caveat: ServingCaveat, published: dict[str, PreparedServing],
        scored: dict[str, tuple[ServingEstimate, float]]) -> None:
    low, high = caveat.error_range_pct
    for cid in caveat.evidence:
        est, err = scored[cid]
        assert est.feasible, cid
        assert low <= err <= high, f"{caveat.name}: {cid} now scores {err:+.1f} %, outside " \
                                   f"[{low}, {high}]: rewrite or drop the caveat"
        assert _applies(caveat, published[cid]), f"{caveat.name} misses its evidence {cid}"
        assert caveat.text in est.caveats


@pytest.mark.parametrize("caveat", SERVING_CAVEATS, ids=lambda c: c.name)
def test_evidence_is_every_published_result_the_caveat_covers(
        caveat: ServingCaveat, published: dict[str, PreparedServing]) -> None:
    """No result of its kind was left out of a caveat's evidence (and so of its range)."""
    covered = {cid for cid, p in published.items() if _applies(caveat, p)}
    assert covered == set(caveat.evidence)


@pytest.mark.parametrize("caveat", SERVING_CAVEATS, ids=lambda c: c.name)
def test_the_sentence_quotes_its_evidence(
        caveat: ServingCaveat, scored: dict[str, tuple[ServingEstimate, float]]) -> None:
    errs = [scored[cid][1] for cid in caveat.evidence]
    assert f"scored {min(errs):+.0f} to {max(errs):+.0f} %" in caveat.text
    low, high = caveat.error_range_pct
    # the stated range is the evidence's, rounded outwards by at most 5 points
    assert min(errs) - 5.0 <= low <= min(errs)
    assert max(errs) <= high <= max(errs) + 5.0


@pytest.mark.parametrize("caveat", SERVING_CAVEATS, ids=lambda c: c.name)
def test_caveat_spares_its_control(
        caveat: ServingCaveat, published: dict[str, PreparedServing],
        scored: dict[str, tuple[ServingEstimate, float]]) -> None:
    cid = CONTROLS[caveat.name]
    est, _ = scored[cid]
    assert est.feasible
    assert not _applies(caveat, published[cid])
    assert caveat.text not in est.caveats


def _committed(pick: Callable[[dict[str, str], dict[str, str]], bool],
               rows: dict[str, dict[str, str]]) -> list[float]:
    """Committed MLPerf v6 errors (scripts/mlperf_inference_sweep.py, whose test
    re-predicts a sample) of the results ``pick(scored row, sweep row)`` selects."""
    with SCORED.open(newline="", encoding="utf-8") as f:
        return [float(r["error_pct"]) for r in csv.DictReader(f)
                if r["status"] == "ok" and pick(r, rows[r["case_id"]])]


def test_windowed_moe_sentences_quote_the_results_without_a_layout(
        rows: dict[str, dict[str, str]],
        scored: dict[str, tuple[ServingEstimate, float]]) -> None:
    """The gpt-oss sentences' other figures: the Blackwell evidence's median and count,
    and the searched results they quote (Blackwell Offline and Server; MI355X in MXFP4
    and in FP8, MI350X), from the committed sweep."""
    nvidia, amd = _caveat("windowed-moe"), _caveat("windowed-moe-amd")
    errs = [scored[cid][1] for cid in nvidia.evidence]
    assert f"(median {statistics.median(errs):+.0f} %, {len(errs)} results)" in nvidia.text
    blackwell = {"b200", "b300", "gb200", "gb300"}

    def searched(chips: set[str], weights: str | None = None, tight: bool = False
                 ) -> Callable[[dict[str, str], dict[str, str]], bool]:
        def pick(s: dict[str, str], r: dict[str, str]) -> bool:
            slo = float(r["slo_tpot_ms"]) if r["slo_tpot_ms"] else None
            return r["model"] == "gpt-oss-120b" and s["layout_source"] == "searched" \
                and r["chip"] in chips \
                and (weights is None or r["weight_precision"] == weights) \
                and (slo is not None and slo <= TIGHT_TPOT_S * 1e3) == tight
        return pick

    bw = _committed(searched(blackwell), rows)
    assert f"those without one {min(bw):+.0f} to {max(bw):+.0f} %" in nvidia.text
    hopper = _committed(searched({"h200-sxm-141gb"}), rows)
    assert f"an H200 {min(hopper):+.0f} to {max(hopper):+.0f} %" in nvidia.text
    fp4 = _committed(searched({"mi355x"}, "fp4"), rows)
    assert f"without a layout {min(fp4):+.0f} to {max(fp4):+.0f} %" in amd.text
    mi350 = _committed(searched({"mi350x"}, "fp4"), rows)
    assert f"MI350X {min(mi350):+.0f} to {max(mi350):+.0f} %" in amd.text
    fp8 = _committed(searched({"mi355x"}, "fp8"), rows)
    assert f"an FP8 stack {min(fp8):+.0f} to {max(fp8):+.0f} %" in amd.text
    tight = _committed(searched({"mi355x"}, tight=True), rows)
    assert f"at the 15 ms limit {min(tight):+.0f} to {max(tight):+.0f} %" in amd.text


def test_tight_tpot_sentence_names_its_groups(
        rows: dict[str, dict[str, str]],
        scored: dict[str, tuple[ServingEstimate, float]]) -> None:
    """The Llama 2 70B range at 40 ms and the gpt-oss and DeepSeek-R1 range at 15 ms."""
    cav = _caveat("tight-tpot")
    llama = [scored[c][1] for c in cav.evidence if rows[c]["model"] == "Llama-2-70B-chat"]
    fast = [scored[c][1] for c in cav.evidence
            if rows[c]["model"] in ("gpt-oss-120b", "DeepSeek-R1")]
    assert all(float(rows[c]["slo_tpot_ms"]) == 15.0 for c in cav.evidence
               if rows[c]["model"] in ("gpt-oss-120b", "DeepSeek-R1"))
    assert f"40 ms {min(llama):+.0f} to {max(llama):+.0f} %" in cav.text
    assert f"15 ms {max(fast):+.0f} to {min(fast):+.0f} %" in cav.text


def test_mla_sentence_quotes_v6_offline_and_hi013(
        rows: dict[str, dict[str, str]],
        scored: dict[str, tuple[ServingEstimate, float]]) -> None:
    cav = _caveat("mla-blackwell")
    offline = [scored[c][1] for c in cav.evidence
               if c.startswith("M6") and rows[c]["scenario"] == "offline"]
    assert f"ran {-max(offline):.0f}-{-min(offline):.0f} % faster" in cav.text
    assert f"(HI013, {scored['HI013'][1]:+.0f} %)" in cav.text
    assert f"({len(cav.evidence)} results with a published layout)" in cav.text


_GPT_OSS = ["infer", "--model", "gpt-oss-120b", "--chips", "8", "--tp", "1",
            "--input-len", "5000", "--output-len", "1300"]


def test_infer_json_and_table_carry_the_caveat() -> None:
    runner = CliRunner()
    res = runner.invoke(app, [*_GPT_OSS, "--chip", "b200", "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["caveats"] == [_caveat("windowed-moe").text]
    table = runner.invoke(app, [*_GPT_OSS, "--chip", "b200"])
    assert table.exit_code == 0, table.output
    assert "caveat" in table.output
    assert "short sliding-window" in " ".join(table.output.split())
    amd = runner.invoke(app, [*_GPT_OSS, "--chip", "mi355x", "--format", "json"])
    assert amd.exit_code == 0, amd.output
    assert json.loads(amd.output)["caveats"] == [_caveat("windowed-moe-amd").text]
    dense = runner.invoke(app, ["infer", "--model", "llama3-70b", "--chip", "b200",
                                "--chips", "8", "--tp", "8",
                                "--format", "json"])
    assert dense.exit_code == 0, dense.output
    assert json.loads(dense.output)["caveats"] == []


def test_an_infeasible_deployment_carries_no_caveat() -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["infer", "--model", "deepseek-v3", "--chip", "b200",
                              "--chips", "1", "--tp", "1",
                              "--format", "json"])
    data = json.loads(res.output)
    assert data["feasible"] is False
    assert data["caveats"] == []


def test_web_infer_answers_the_caveats_of_a_tight_tpot_job(
        serve: Callable[[Any], str], tmp_path: Path) -> None:
    """The real HTTP route: a 30 ms p99 TPOT limit carries the tight-TPOT caveat, a
    200 ms one does not."""
    base = serve(create_app(f"sqlite:///{tmp_path / 'serving_caveats.db'}"))
    job: dict[str, Any] = {"model": "llama3-70b", "chip": "h200-sxm-141gb", "chips": 8,
                           "tp": 8, "load": "poisson", "rate_per_s": 1.0,
                           "slo_stat": "p99"}
    with httpx.Client(base_url=base, timeout=120) as client:
        tight = client.post("/api/infer", json=job | {"slo_tpot_s": 0.030})
        loose = client.post("/api/infer", json=job | {"slo_tpot_s": 0.200})
    assert tight.status_code == 200, tight.text
    assert loose.status_code == 200, loose.text
    text = _caveat("tight-tpot").text
    assert text in tight.json()["caveats"]
    assert ["caveat", text] in tight.json()["summary"]
    # both run at a given rate: their latencies carry the at-load sentence
    assert loose.json()["caveats"] == [LATENCY_AT_LOAD]
    assert tight.json()["caveats"] == [text, LATENCY_AT_LOAD]
