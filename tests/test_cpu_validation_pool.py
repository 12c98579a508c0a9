"""``ocplan validate`` on a CPU file that is not the development set.

Before session 31 each held-out CPU was fitted on the *file's* other CPUs alone, so a file
of a few CPUs, or of the SPEC energy rows only, had no data to fit on (every energy row
failed with "no int_rate rows in the calibration"). The held-out fit now pools the file
with the rows the committed calibration was fitted on (``cpu/data/calibration_rows.csv``),
counting a row both hold once. These tests check that the pooling changes nothing for the
development file, predicts a part of it exactly as the whole, never lets a CPU's own rows
into its fit, and that the committed rows are the development set's.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest

from ocplan.cli.main import main
from ocplan.cpu.calibration import load_cpu_calibration
from ocplan.results.cpu_validation import (
    CALIBRATION_ROWS_FILE,
    ROW_COLUMNS,
    calibration_observations,
    read_cpu_cases,
    run_cpu_validation,
)

DEV = Path(__file__).resolve().parents[2] / "shared" / "validation" / "cpu_dev.csv"
ENERGY = ("specrate2017_int_energy_base", "specrate2017_fp_energy_base")


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return read_cpu_cases(CALIBRATION_ROWS_FILE)


@pytest.fixture(scope="module")
def whole(rows: list[dict[str, str]]) -> dict[str, float | None]:
    """Leave-one-CPU-out predictions of the whole calibration file, by case id."""
    return {c.case_id: c.predicted for c in run_cpu_validation(rows)}


def write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=ROW_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_a_part_of_the_development_set_is_predicted_as_within_the_whole(
        rows: list[dict[str, str]], whole: dict[str, float | None]) -> None:
    energy = [r for r in rows if r["benchmark"] in ENERGY]
    assert len(energy) == 14
    cases = run_cpu_validation(energy)
    assert all(c.status == "ok" for c in cases)
    for c in cases:
        assert c.predicted == pytest.approx(whole[c.case_id], rel=1e-9), c.case_id


def test_the_file_alone_cannot_fit_its_energy_rows(rows: list[dict[str, str]]) -> None:
    """The failure the pooling removes: a fit on the file's own other CPUs."""
    energy = [r for r in rows if r["benchmark"] in ENERGY]
    cases = run_cpu_validation(energy, pool=())
    assert {c.status for c in cases} == {"error"}
    assert all("no int_rate rows" in (c.reason or "") or "no fp_rate rows" in (c.reason or "")
               for c in cases)


def test_a_cpu_never_sees_its_own_rows(rows: list[dict[str, str]],
                                       whole: dict[str, float | None]) -> None:
    """A row of the file under a new id and a changed value is predicted exactly as the
    development row it copies: the CPU's rows (file and calibration ones) are out of its
    fit, whatever their values."""
    source = next(r for r in rows if r["cpu"] == "epyc-9654"
                  and r["benchmark"] == "specrate2017_int_base")
    copy = {**source, "case_id": "Z1", "value": str(3.0 * float(source["value"]))}
    (case,) = run_cpu_validation([copy])
    assert case.predicted == pytest.approx(whole[source["case_id"]], rel=1e-9)
    assert case.error_pct == pytest.approx(
        100.0 * ((whole[source["case_id"]] or 0.0) / float(copy["value"]) - 1.0))


def test_fit_on_the_pool_alone_ignores_the_other_rows_of_the_file(
        rows: list[dict[str, str]]) -> None:
    """``fit_file_rows=False`` (a hold-out score): a file row of another CPU with an absurd
    value must not move a prediction; with the file pooled it does (a little: the fit's
    robust loss)."""
    target = next(r for r in rows if r["cpu"] == "xeon-6787p"
                  and r["benchmark"] == "specrate2017_int_base")
    other = next(r for r in rows if r["cpu"] == "xeon-6980p"
                 and r["benchmark"] == "specrate2017_int_base")
    absurd = {**other, "case_id": "Z2", "value": str(10.0 * float(other["value"]))}
    alone = run_cpu_validation([target], fit_file_rows=False)[0].predicted
    ignored = run_cpu_validation([target, absurd], fit_file_rows=False)[0].predicted
    pooled = run_cpu_validation([target, absurd])[0].predicted
    assert ignored == pytest.approx(alone, rel=1e-12)
    # the soft-L1 loss bounds one outlier's pull, but it pulls upwards
    assert alone is not None
    assert pooled is not None
    assert pooled > 1.003 * alone


def test_cli_validates_an_energy_only_file(tmp_path: Path, rows: list[dict[str, str]],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "energy.csv", [r for r in rows if r["benchmark"] in ENERGY])
    assert main(["validate", str(path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["n"] == 14
    assert data["summary"]["failed"] == 0
    assert all(c["predicted"] > 0 for c in data["cases"])


def test_committed_rows_are_the_calibrations() -> None:
    """The pooled rows are the ones the calibration was fitted on: same count per
    benchmark as its provenance, and (with ../shared) the development file's rows."""
    cal = load_cpu_calibration()
    obs = calibration_observations()
    counts: dict[str, int] = {}
    for o in obs:
        counts[o.benchmark] = counts.get(o.benchmark, 0) + 1
    assert counts == cal.provenance["rows"]
    if not DEV.exists():
        pytest.skip("../shared/validation/cpu_dev.csv is not beside the checkout")
    assert hashlib.sha256(DEV.read_bytes()).hexdigest() == cal.provenance["data"]["sha256"]
    dev = {r["case_id"]: r for r in read_cpu_cases(DEV)}
    for r in read_cpu_cases(CALIBRATION_ROWS_FILE):
        assert {k: (dev[r["case_id"]].get(k) or "").strip() for k in ROW_COLUMNS} == r
