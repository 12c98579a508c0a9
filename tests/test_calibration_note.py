"""An estimate says what its GEMM/attention calibration rests on, wherever it is shown.

A chip whose family no published run was fitted for (Trainium2's ``trainium``) takes
the fitted families' typical values; the training table said so, while the serving
table and the HTML reports printed the bare word "default".
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ocplan.cli.main import main
from ocplan.plan.calibration import calibration_note, load_calibration

DERIVED = "no published run of it was fitted; a physically derived estimate"


def test_note_names_the_runs_or_says_derived() -> None:
    hopper = load_calibration().families["hopper"]
    text = calibration_note("hopper", hopper.runs, hopper.cv_error_pct, "hopper")
    assert text.startswith(f"hopper (fitted on {hopper.runs} published run(s)")
    assert hopper.runs > 10
    assert DERIVED not in text
    derived = calibration_note("default", 0, None, "trainium")
    assert "typical values of the fitted families (family trainium: " + DERIVED in derived


def _cells(table: str) -> str:
    """A two-column table's text with its borders gone and its wrapped cells joined (the
    console's width is set once per process, so a cell may wrap)."""
    return " ".join(re.sub(r"[│┃┌┐└┘├┤┬┴┼─━]", " ", table).split())


@pytest.mark.parametrize("command", [
    ["estimate", "--model", "llama3-8b", "--chips", "16", "--tp", "8"],
    ["infer", "--model", "llama3-8b", "--chips", "16", "--tp", "8"]])
def test_tables_say_when_a_chip_family_was_never_fitted(
        capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    assert main([*command, "--chip", "trainium2"]) == 0
    out = _cells(capsys.readouterr().out)
    assert "family trainium: " + DERIVED in out
    assert main([*command, "--chip", "h100-sxm-80gb"]) == 0
    out = _cells(capsys.readouterr().out)
    assert "hopper (fitted on" in out
    assert DERIVED not in out


@pytest.mark.parametrize("command", [
    ["report", "--model", "llama3-8b", "--chips", "16", "--tp", "8", "--out"],
    ["infer", "--model", "llama3-8b", "--chips", "16", "--tp", "8", "--report"]])
def test_reports_say_when_a_chip_family_was_never_fitted(
        tmp_path: Path, command: list[str]) -> None:
    page = tmp_path / "r.html"
    assert main([*command, str(page), "--chip", "trainium2"]) == 0
    text = " ".join(page.read_text(encoding="utf-8").split())
    assert DERIVED in text
    assert main([*command, str(page), "--chip", "h100-sxm-80gb"]) == 0
    text = " ".join(page.read_text(encoding="utf-8").split())
    assert "hopper (fitted on" in text
    assert DERIVED not in text


def test_compare_names_the_calibration_of_each_system(
        capsys: pytest.CaptureFixture[str]) -> None:
    """``ocplan compare`` rows use the same note: the fitted family with its runs, or a
    derived estimate for an unfitted one."""
    assert main(["compare", "h100-sxm-80gb", "trainium2", "--model", "llama3-8b",
                 "--chips", "16", "--format", "json"]) == 0
    rows = {r["chip"]: r for r in json.loads(capsys.readouterr().out)["systems"]}
    assert rows["h100-sxm-80gb"]["calibration"].startswith("hopper (fitted on")
    assert "family trainium: " + DERIVED in rows["trainium2"]["calibration"]
