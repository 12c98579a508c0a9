"""Third QA pass over the CLI: error lines that named the wrong flag or range, and
wording that said less (or more) than it meant.

Each test failed before its fix: ``infer --report`` into a missing folder blamed
``--out``; ``match --objective foo`` blamed the workload file; ``match --top 0`` said
"expected a whole number"; ``estimate --price 2,3`` said only "expected a number".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clikit import one_line, run, run_wide

ROOT = Path(__file__).resolve().parents[1]
MIX = ROOT / "examples" / "cloud-mix.yaml"
SMALL = ["--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "8"]


@pytest.fixture(autouse=True)
def _plain_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCPLAN_CATALOG", raising=False)
    monkeypatch.delenv("OCPLAN_CURRENCY", raising=False)
    monkeypatch.setenv("COLUMNS", "240")  # one line per table row


# ---- F. error lines name the flag at fault and what it allows ---------------------------

def test_infer_report_into_a_missing_folder_names_report(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "missing" / "x.html"
    line = one_line(*run(capsys, "infer", "--model", "llama3-8b", "--chip", "h100-sxm-80gb",
                         "--chips", "1", "--report", target))
    assert line.startswith("--report: report = '")  # the value, shortened when long
    assert line.endswith(f": folder {target.parent} does not exist")
    assert not target.parent.exists()


def test_match_bad_objective_names_the_flag_and_the_objectives(
        capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line(*run(capsys, "match", "--workload", MIX, "--objective", "foo"))
    assert line == ("--objective: objective = 'foo': expected one of 'tco', "
                    "'perf_per_watt', 'perf_per_cost', 'servers'")


def test_match_bad_objective_and_bad_file_are_said_together(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "mix.yaml"
    path.write_text("name: x\ndemand: {}\n", encoding="utf-8")
    rc, out, _ = run(capsys, "match", "--workload", path, "--objective", "foo",
                     "--format", "json")
    assert rc == 2
    problems = json.loads(out)["error"]["problems"]
    assert [(p["source"], p["field"]) for p in problems] == [("--objective", "objective"),
                                                             (str(path), "demand")]


@pytest.mark.parametrize("top", ["0", "101"])
def test_match_top_out_of_range_says_the_range(capsys: pytest.CaptureFixture[str],
                                               top: str) -> None:
    # the shared listing limit, MAX_TOP_K (100), since session 43 (it had been 1,000)
    line = one_line(*run(capsys, "match", "--workload", MIX, "--top", top))
    assert line.endswith(f"--top = '{top}': must be at least 1 and at most 100")


def test_match_top_not_a_number_still_says_whole_number(
        capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line(*run(capsys, "match", "--workload", MIX, "--top", "1.5"))
    assert line.endswith("--top = '1.5': expected a whole number")


@pytest.mark.parametrize("command", ["estimate", "search"])
@pytest.mark.parametrize("price", ["2,3", "abc"])
def test_one_price_commands_say_one_price(capsys: pytest.CaptureFixture[str], command: str,
                                          price: str) -> None:
    line = one_line(*run(capsys, command, *SMALL, "--price", price))
    assert line.endswith(f"--price = '{price}': one price per chip-hour only, a number from "
                         "0 to 10,000 (e.g. 2.5)")


# ---- G. a prefill pool that leaves no decode chips is bad input -------------------------

def test_prefill_chips_as_many_as_the_chips_is_bad_input(
        capsys: pytest.CaptureFixture[str]) -> None:
    """It exited 1 as a layout that does not fit, with the remedy "heads by tp"."""
    line = one_line(*run(capsys, "infer", "--model", "llama3-8b", "--chip", "h100-sxm-80gb",
                         "--chips", "1", "--prefill-chips", "1"))
    assert line == ("--prefill-chips: prefill_chips = 1: must be less than the chips the job "
                    "runs on (1), to leave chips for decode")


def test_prefill_chips_below_the_chips_still_runs(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "infer", "--model", "llama3-8b", "--chip", "h100-sxm-80gb",
                     "--chips", "4", "--prefill-chips", "2", "-f", "json")
    assert rc == 0
    assert json.loads(out)["plan"]["prefill_chips"] == 2


# ---- H3. a row where every system shows the same value has no best ----------------------

def test_compare_stars_no_value_when_every_system_shows_the_same() -> None:
    """Two 8-chip systems in the same default facility have one PUE: the table starred
    the first ("PUE 1.60 *") as best; the throughput row keeps its star."""
    out = run_wide("compare", "h100-sxm-80gb", "mi300x", "--model", "llama3-8b", "--chips",
                   "8")
    rows = {cells[1]: cells[2:-1] for cells in ([c.strip() for c in line.split("\u2502")]
                                                for line in out.splitlines())
            if len(cells) > 2}
    pue = rows["PUE"]
    assert len(pue) == 2
    assert pue[0] == pue[1]
    assert not any(cell.endswith("*") for cell in pue)
    assert sum(cell.endswith("*") for cell in rows["tokens/s per chip"]) == 1
