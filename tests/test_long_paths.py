"""A path the file system refuses (a name longer than NAME_MAX) is bad input like any
other: one line naming the flag and the value, exit 2, no traceback, JSON stays JSON.
Found by the CLI fuzzer: ``ocplan report --out <300 characters>.html`` raised OSError
from ``Path.is_dir``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocplan.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
#: Longer than the 255 bytes a Linux file name may have (NAME_MAX).
LONG = "n" * 300


@pytest.fixture(autouse=True)
def _no_env_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCPLAN_CATALOG", raising=False)


@pytest.mark.parametrize(("args", "flag"), [
    (["report", "--model", "llama3-8b", "--out", "{tmp}/" + LONG + ".html"], "--out"),
    (["match", "--workload", str(ROOT / "examples" / "cloud-mix.yaml"),
      "--report", "{tmp}/" + LONG + ".html"], "--report"),
    (["--catalog", "{tmp}/" + LONG, "catalog", "list"], LONG[:20]),
])
def test_a_too_long_name_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           args: list[str], flag: str) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1
    assert flag in err
    assert "not a usable" in err
    assert list(tmp_path.iterdir()) == []          # nothing half-written


def test_the_json_error_document_names_the_flag(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    report = str(tmp_path / (LONG + ".html"))
    assert main(["match", "--workload", str(ROOT / "examples" / "cloud-mix.yaml"),
                 "--report", report, "--format", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    (problem,) = doc["error"]["problems"]
    assert problem["source"] == "--report"
    assert problem["value"] == report
