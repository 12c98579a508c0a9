"""``--format json`` keeps stdout one JSON document whatever happens (session 8, item 1).

Bad input (a SpecError, or a usage error click finds before any option is parsed) still
prints its one line per problem on stderr and exits 2, and with JSON asked for it also
prints ``{"error": {"exit_code": 2, "problems": [...]}}`` on stdout, each problem
naming its source, field and value and carrying the stderr line. Commands that exit 1
with a reason (nothing fits, cannot run, check errors) print their JSON result.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from clikit import run

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SMALL = ["--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "8"]


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCPLAN_CATALOG", raising=False)
    monkeypatch.delenv("OCPLAN_CURRENCY", raising=False)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def error_problems(rc: int, out: str, err: str) -> list[dict[str, Any]]:
    """The problems of the error document on stdout of a bad-input run, checked against
    its stderr: exit 2, one problem per stderr line, each carrying that line."""
    assert rc == 2, (rc, out, err)
    doc = json.loads(out, parse_constant=_no_constant)
    assert set(doc) == {"error"}
    assert doc["error"]["exit_code"] == 2
    problems: list[dict[str, Any]] = doc["error"]["problems"]
    lines = err.strip().splitlines()
    assert [p["message"] for p in problems] == lines
    for p in problems:
        assert set(p) == {"source", "field", "value", "allowed", "message"}
        assert p["allowed"]
        assert p["allowed"] in p["message"]
    return problems


def write_mix(tmp_path: Path, **changes: Any) -> Path:
    mix = yaml.safe_load((EXAMPLES / "cloud-mix.yaml").read_text(encoding="utf-8"))
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(mix | changes), encoding="utf-8")
    return path


# ---- bad input: SpecError -------------------------------------------------------------

def test_estimate_unknown_chip_names_flag_field_and_value(
        capsys: pytest.CaptureFixture[str]) -> None:
    (p,) = error_problems(*run(capsys, "estimate", "--model", "llama3-8b", "--chip", "h100",
                               "--format", "json"))
    assert (p["source"], p["field"], p["value"]) == ("--chip", "chip", "h100")
    assert "did you mean 'h100-sxm-80gb'" in p["allowed"]


@pytest.mark.parametrize("form", [["--format", "json"], ["--format=json"], ["-f", "json"],
                                  ["-fjson"]])
def test_every_spelling_of_json_answers_in_json(capsys: pytest.CaptureFixture[str],
                                                form: list[str]) -> None:
    (p,) = error_problems(*run(capsys, "estimate", *SMALL, "--tp", "3", *form))
    assert p["source"] == "--chips"  # 8 chips are not divisible by tp x pp x cp = 3
    assert p["value"] == 8


def test_without_json_stdout_stays_empty(capsys: pytest.CaptureFixture[str]) -> None:
    for fmt in ([], ["--format", "table"], ["--format", "json", "--format", "table"]):
        rc, out, err = run(capsys, "estimate", "--model", "llama3-8b", "--chip", "h100", *fmt)
        assert rc == 2
        assert out == ""
        assert err.count("\n") == 1


def test_infer_reports_every_bad_flag_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    problems = error_problems(*run(capsys, "infer", "--model", "llama3-70b", "--chip", "mi300x",
                                   "--slo-ttft", "2x", "--kv-precision", "fp4",
                                   "--format", "json"))
    assert {"--slo-ttft", "--kv-precision"} <= {p["source"] for p in problems}
    # each problem names the request field its flag sets (--slo-ttft sets slo_ttft_s)
    assert {"slo_ttft_s", "kv_precision"} <= {p["field"] for p in problems}


def test_search_bad_objective_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    (p,) = error_problems(*run(capsys, "search", *SMALL, "--objective", "fastest",
                               "-f", "json"))
    assert (p["source"], p["field"], p["value"]) == ("--objective", "objective", "fastest")


def test_match_bad_mix_in_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write_mix(tmp_path, target_utilization=2.0)
    (p,) = error_problems(*run(capsys, "match", "--workload", path, "--format", "json"))
    assert (p["source"], p["field"], p["value"]) == (str(path), "target_utilization", 2.0)


def test_validate_missing_file_in_json(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    missing = tmp_path / "nothing.csv"
    (p,) = error_problems(*run(capsys, "validate", missing, "--format", "json"))
    assert p["source"] == str(missing)


def test_check_unknown_server_in_json(capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    data = yaml.safe_load((EXAMPLES / "mx1-8oam-air.yaml").read_text(encoding="utf-8"))
    data["server"] = "no-such-server"
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    (p,) = error_problems(*run(capsys, "check", path, "--format", "json"))
    assert (p["source"], p["field"], p["value"]) == (str(path), "server", "no-such-server")


def test_root_option_problem_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad root option is refused before the command runs, still as JSON."""
    (p,) = error_problems(*run(capsys, "--currency", "x" * 40, "catalog", "list",
                               "--format", "json"))
    assert (p["source"], p["field"]) == ("--currency", "currency")


def test_a_control_character_stays_escaped_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    (p,) = error_problems(*run(capsys, "estimate", "--model", "llama3-8b", "--chip",
                               "h\x1b[31m", "--format", "json"))
    assert p["value"] == "h\\x1b[31m"  # as the stderr line shows it


# ---- bad input: usage errors ----------------------------------------------------------

def test_unknown_option_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    (p,) = error_problems(*run(capsys, "estimate", *SMALL, "--bogus", "--format", "json"))
    assert p["source"] == "--bogus"
    assert p["message"].startswith("ocplan: No such option")


def test_an_unknown_command_lists_its_group(capsys: pytest.CaptureFixture[str]) -> None:
    """``ocplan catalog models`` names the commands ``ocplan catalog`` has (one line, exit
    2, the same line in the JSON document); a typo of a top-level command keeps click's
    suggestion and lists the top level's commands."""
    (p,) = error_problems(*run(capsys, "catalog", "models", "--format", "json"))
    assert p["message"] == ("ocplan: No such command 'models'. 'ocplan catalog' has: list, "
                            "show.")
    rc, _, err = run(capsys, "estmate")
    assert rc == 2
    line = err.strip()
    assert "\n" not in line
    assert line.startswith("ocplan: No such command 'estmate'. Did you mean 'estimate'?")
    listed = line.split("'ocplan' has: ")[1].rstrip(".").split(", ")
    assert {"estimate", "infer", "search", "catalog", "validate"} <= set(listed)
    rc, _, err = run(capsys, "estimate", *SMALL, "--bogus")
    assert rc == 2
    assert "has:" not in err  # an unknown option is not an unknown command


def test_not_a_number_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    (p,) = error_problems(*run(capsys, "search", "--model", "llama3-8b", "--chip",
                               "h100-sxm-80gb", "--chips", "eight", "--format", "json"))
    assert (p["source"], p["field"], p["value"]) == ("--chips", "chips", "eight")


def test_missing_argument_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    (p,) = error_problems(*run(capsys, "validate", "--format", "json"))
    assert p["field"] == "file"


def test_report_format_is_the_files_not_stdouts(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    """``report --format json`` writes a JSON file; its bad input prints nothing on stdout."""
    rc, out, err = run(capsys, "report", "--model", "llama3-8b", "--chip", "h100",
                       "--out", tmp_path / "r.json", "--format", "json")
    assert rc == 2
    assert out == ""
    assert "--chip" in err


def test_as_a_real_process_the_pipe_gets_json() -> None:
    proc = subprocess.run([sys.executable, "-m", "ocplan.cli.main", "estimate", "--model",
                           "nosuch", "--chip", "h100", "--format", "json"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    problems = json.loads(proc.stdout)["error"]["problems"]
    assert [p["message"] for p in problems] == proc.stderr.strip().splitlines()


# ---- exit 1 with a reason: the JSON result ----------------------------------------------

def test_search_with_nothing_fitting_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "search", "--model", "gpt3-175b", "--chip", "h100-sxm-80gb",
                     "--chips", "1", "--format", "json")
    assert rc == 1
    data = json.loads(out, parse_constant=_no_constant)
    assert data["best"] is None
    assert data["feasible"] == 0


def test_estimate_that_cannot_run_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "estimate", "--model", "gpt3-175b", "--chip", "h100-sxm-80gb",
                     "--chips", "1", "--format", "json")
    assert rc == 1
    data = json.loads(out, parse_constant=_no_constant)
    assert data["feasible"] is False
    assert "memory" in data["reason"]


def test_infer_that_cannot_run_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "infer", "--model", "llama3-70b", "--chip", "h100-sxm-80gb",
                     "--chips", "1", "--format", "json")
    assert rc == 1
    assert json.loads(out, parse_constant=_no_constant)["feasible"] is False


def test_check_with_errors_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "check", EXAMPLES / "nf5698g7-mi300x.yaml", "--format", "json")
    assert rc == 1
    data = json.loads(out, parse_constant=_no_constant)
    assert data["errors"] == sum(f["severity"] == "error" for f in data["findings"]) > 0


def test_refused_search_on_an_invalid_system_prints_json(
        capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "search", "--model", "llama3-8b", "--system",
                     EXAMPLES / "nf5698g7-mi300x.yaml", "--format", "json")
    assert rc == 1
    data = json.loads(out, parse_constant=_no_constant)
    assert data["feasible"] is False
    assert data["reason"]
