"""MLPerf Inference v6.0 and v6.1 as a never-fitted serving sweep
(scripts/mlperf_inference_sweep.py, validation/sweeps/mlperf_inference_v6.csv,
docs/mlperf-inference-v6.md): the CSV is in the serving validation's layout, its results
are all of rounds newer than the development set and the hold-out and none is one of
theirs, and the committed report is what the committed model gives."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from types import ModuleType

import pytest

from scriptkit import load_script

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "validation" / "inference_dev.csv"
HOLDOUT = ROOT / "validation" / "holdout" / "inference_holdout.csv"

pytestmark = pytest.mark.skipif(not DEV.exists(), reason="needs ../shared/validation")


@pytest.fixture(scope="module")
def ms() -> ModuleType:
    return load_script("mlperf_inference_sweep")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_the_sweep_is_in_the_serving_layout_and_new(ms: ModuleType) -> None:
    """The header is the development set's; every row is a v6.0 or v6.1 closed result
    read from that round's results repository, with its results path (submitter and
    system), a unique id, a positive rate whose per-chip value is the total over the
    chips, and a layout that multiplies to the chips where one is given; no development or
    hold-out row comes from those repositories."""
    rows = _rows(ms.SWEEP)
    with DEV.open(newline="", encoding="utf-8") as f:
        assert next(csv.reader(f)) == list(rows[0])
    assert len({r["case_id"] for r in rows}) == len(rows)
    for r in rows:
        assert re.search(r"\bv6\.[01]\b", r["source"]), r["case_id"]
        assert ms.RESULT_PATH.search(r["source"]), r["case_id"]
        assert r["primary_metric"] == "output", r["case_id"]
        per_chip = float(r["measured_output_tokens_per_s_per_chip"])
        assert per_chip > 0, r["case_id"]
        if r["measured_output_tokens_per_s_total"]:
            total = float(r["measured_output_tokens_per_s_total"])
            assert math.isclose(per_chip, total / int(r["num_chips"]), rel_tol=1e-3), \
                r["case_id"]
        if r["tp"]:
            assert int(r["tp"]) * int(r["pp"]) * int(r["dp"]) == int(r["num_chips"]), \
                r["case_id"]
    # the rounds' own repositories: the sweep reads only them, the two sets none of them
    v6 = re.compile(r"inference_results_v6\.[01]\b")
    assert all(v6.search(r["source"]) for r in rows)
    assert not any(v6.search(r["source"]) for p in (DEV, HOLDOUT) for r in _rows(p))


def test_the_report_is_rendered_from_the_committed_predictions(ms: ModuleType) -> None:
    """docs/mlperf-inference-v6.md is the rendering of the committed predictions
    (validation/sweeps/mlperf_inference_v6_scored.csv), which hold one row per result of
    the sweep with its measured rate."""
    scored = ms.read_scored()
    rows = _rows(ms.SWEEP)
    assert [s.case_id for s in scored] == [r["case_id"] for r in rows]
    for s, r in zip(scored, rows, strict=True):
        assert s.measured == float(r["measured_output_tokens_per_s_per_chip"]), s.case_id
        assert (s.chip, s.num_chips) == (r["chip"], int(r["num_chips"])), s.case_id
    assert ms.REPORT.read_text(encoding="utf-8") == ms.render(scored)


def test_the_readme_quotes_the_report(ms: ModuleType) -> None:
    """The README's table of never-fitted sets gives the report's count, median and p90
    (it was left at an older sweep's figures once: nothing checked it)."""
    summary = re.search(r"Predicted: (\d+) of \d+\. Median \|error\| ([\d.]+) %, p90 ([\d.]+) %",
                        ms.REPORT.read_text(encoding="utf-8"))
    assert summary is not None
    n, median, p90 = summary.groups()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"| {n} | {median} | {p90} | `docs/mlperf-inference-v6.md` |" in readme


#: Every n-th result is predicted again by the test (all of them take about ten minutes).
SAMPLE_EVERY = 40


def test_a_sample_predicts_as_committed(ms: ModuleType) -> None:
    """Every 40th result predicted now gives the committed prediction, its layout and
    its likely-range verdict: a change that moves serving predictions must rerun
    ``.venv/bin/python scripts/mlperf_inference_sweep.py``."""
    committed = {s.case_id: s for s in ms.read_scored()}
    ids = list(committed)[::SAMPLE_EVERY]
    assert len(ids) >= 10
    for s in ms.score(only=set(ids)):
        c = committed[s.case_id]
        assert (s.layout, s.layout_source, s.within) == (c.layout, c.layout_source,
                                                         c.within), s.case_id
        assert s.predicted == pytest.approx(c.predicted, rel=1e-9), s.case_id


def test_the_submitter_and_round_are_read_from_the_source(ms: ModuleType) -> None:
    source = ("MLPerf Inference v6.1 (mlcommons/inference_results_v6.1 @abc1234) | "
              "closed/Cisco/results/Cisco_UCS_B300x16/llama2-70b-99.9/Server/performance/"
              "run_1/mlperf_log_summary.txt")
    assert ms._submitter(source) == ("Cisco", "Cisco_UCS_B300x16")
    assert ms._round(source) == "v6.1"
    assert ms._submitter("a vendor's page") == ("?", "?")
    # a submitter's name may hold a space (one v6.1 submitter is a person)
    assert ms._submitter("entry 330 (closed/Jane Doe/results/H200/llama3.1-8b/Offline)") \
        == ("Jane Doe", "H200")
