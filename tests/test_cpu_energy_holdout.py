"""The CPU energy hold-out (``validation/holdout/cpu_energy_holdout.csv``): every published
SPECrate2017 energy result, scored with no hold-out row in any fit.

Issue 12's ranking line (predicted performance per watt ranks CPUs like SPEC's measured
energy metric, Spearman >= 0.9) is checked here on all published results as well as on the
development set's seven rows per suite (docs/cpu-calibration.md). The report
``validation/holdout/cpu_energy.md`` must match what the script computes now.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
sys.path.insert(0, str(SCRIPTS))

from cpu_energy_holdout import CSV, ranking, submitter_spread  # noqa: E402

from ocplan.cpu.calibration import load_cpu_calibration  # noqa: E402
from ocplan.results.cpu_validation import read_cpu_cases  # noqa: E402

DEV = ROOT.parent / "shared" / "validation" / "cpu_dev.csv"


@pytest.fixture(scope="module")
def rho() -> dict[str, dict[str, float | int | None]]:
    return ranking()


@pytest.mark.parametrize("suite", ["int", "fp"])
def test_ranking_holds_on_every_published_result(
        rho: dict[str, dict[str, float | int | None]], suite: str) -> None:
    f = rho[suite]
    assert f["n_cpu"] == 19
    for key in ("all", "per_cpu"):
        value = f[key]
        assert isinstance(value, float), (suite, key)
        assert value >= 0.9, (suite, key, value)


def test_calibration_provenance_holds_the_same_figures(
        rho: dict[str, dict[str, float | int | None]]) -> None:
    stored = load_cpu_calibration().provenance["energy_holdout_spearman"]
    for suite, f in rho.items():
        for key, value in f.items():
            assert stored[suite][key] == pytest.approx(value, abs=1e-8), (suite, key)


def test_report_is_current() -> None:
    done = subprocess.run([sys.executable, str(SCRIPTS / "cpu_energy_holdout.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr


def test_submitters_differ_more_than_the_model_can_see() -> None:
    """The spread the report names: the same processor, sockets and suite, two submitters,
    at least 10 % apart in the energy metric; the calibration report quotes the range."""
    low, high = submitter_spread()
    assert 1.1 < low <= high < 1.5
    text = (ROOT / "docs" / "cpu-calibration.md").read_text(encoding="utf-8")
    assert f"{100 * (low - 1):.0f}-{100 * (high - 1):.0f} %" in text


def test_rows_shared_with_the_development_set_agree() -> None:
    if not DEV.exists():
        pytest.skip("../shared/validation/cpu_dev.csv is not beside the checkout")
    dev = {r["source"].split(" | ")[0]: r for r in read_cpu_cases(DEV)}
    with CSV.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    shared = [r for r in rows if "also development row" in r["measured_from"]]
    assert len(shared) == 14
    for r in shared:
        d = dev[r["source"].split(" | ")[0]]
        assert r["measured_from"].endswith(d["case_id"])
        keys = ("benchmark", "cpu", "sockets", "cores_per_socket", "tdp_w", "memory_gb")
        assert {k: r[k] for k in keys} == {k: d[k] for k in keys}, d["case_id"]
        # a development row may be the median of two results; this row is one of them
        low = float(d["value_min"] or d["value"])
        high = float(d["value_max"] or d["value"])
        assert low <= float(r["value"]) <= high, d["case_id"]


def test_readme_quotes_the_current_figures(
        rho: dict[str, dict[str, float | int | None]]) -> None:
    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    i, f = rho["int"], rho["fp"]
    assert (f"Spearman {i['all']:.2f} int and {f['all']:.2f} fp per result, "
            f"{i['per_cpu']:.2f} and {f['per_cpu']:.2f} per CPU") in text
    assert f"{f['new']:.2f} fp over the {f['n_new']} results outside" in text
