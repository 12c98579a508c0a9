"""Report files hold the format their name says: ``ocplan report --out x.json`` writes
JSON (it used to write an HTML page into x.json), ``--format`` that contradicts the name
is one line of bad input, and the HTML-only ``--report`` of infer, compare and match
refuses a ``.json`` name before any work; nothing is written when refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clikit import one_line, run

JOB = ("--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "8",
       "--global-batch", "64", "--seq-len", "2048")


@pytest.mark.parametrize(("name", "given", "kind"), [
    ("r.json", None, "json"), ("r.html", None, "html"), ("r.HTM", None, "html"),
    ("r.txt", None, "html"), ("r.txt", "json", "json"), ("r.json", "json", "json")])
def test_the_name_or_the_flag_picks_the_format(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path, name: str, given: str | None,
                                               kind: str) -> None:
    out = tmp_path / name
    fmt = () if given is None else ("--format", given)
    rc, _, err = run(capsys, "report", *JOB, "--out", out, *fmt)
    assert rc == 0, err
    text = out.read_text(encoding="utf-8")
    if kind == "json":
        data = json.loads(text)
        assert data["estimate"]["feasible"] is True
    else:
        assert text.lstrip().lower().startswith("<!doctype html>")


@pytest.mark.parametrize(("name", "given"), [("r.json", "html"), ("r.html", "json")])
def test_a_format_that_contradicts_the_name_is_bad_input(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, given: str) -> None:
    out = tmp_path / name
    line = one_line(*run(capsys, "report", *JOB, "--out", out, "--format", given))
    assert line.startswith("--out: out = '")  # the value itself may be shortened
    kind = "a JSON" if out.suffix == ".json" else "an HTML"
    assert f"the name ends in {out.suffix}, {kind} file" in line
    assert f"--format is {given}" in line
    assert not out.exists()


@pytest.mark.parametrize("command", [
    ("infer", "--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "1"),
    ("compare", "h100-sxm-80gb", "mi300x", "--model", "llama3-8b", "--chips", "8"),
    ("match", "--workload", str(Path(__file__).resolve().parents[1] / "examples"
                                / "cloud-mix.yaml"))])
def test_an_html_report_refuses_a_json_name(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path, command: tuple[str, ...]) -> None:
    target = tmp_path / "page.json"
    line = one_line(*run(capsys, *command, "--report", target))
    assert line.startswith("--report: report = '")
    assert "writes an HTML page; give an .html name" in line
    assert not target.exists()


def test_the_html_summary_sets_the_parts_in(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    """Session 40: the report's summary is the CLI's rows (ocplan.reports.summary); the
    step's and the memory's parts are set in under their row, not flush headings."""
    out = tmp_path / "r.html"
    rc, _, err = run(capsys, "report", *JOB, "--out", out)
    assert rc == 0, err
    text = out.read_text(encoding="utf-8")
    assert '<tr><th>step time</th>' in text
    assert '<tr class="part"><th>compute</th>' in text
    assert '<tr class="part"><th>optimizer state</th>' in text
    assert '<tr><th>memory per chip</th>' in text
    assert "<th>  " not in text  # the indent is the row's class, not spaces in the label


def test_the_report_facility_rows_print_units_and_skip_an_air_loop(tmp_path: Path) -> None:
    """The estimate report printed 'facility power 0.0693 MW' where the CLI prints
    69.3 kW, and 'CDUs 0 x ...; 0 L/min' for an air-cooled system."""
    from clikit import run_wide

    examples = Path(__file__).resolve().parents[1] / "examples"
    page = tmp_path / "r.html"
    run_wide("report", "--system", examples / "mx1-8oam-air.yaml", "--model", "llama3-8b",
             "--tp", 8, "--global-batch", 64, "--train-tokens", "1e11", "--out", page)
    html = page.read_text(encoding="utf-8")
    assert "facility power" in html
    assert " MW<" not in html  # 69 kW, not 0.0693 MW
    assert " kW" in html
    assert "L/min" not in html
    assert ">CDUs<" not in html
