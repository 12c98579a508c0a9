"""``ocplan check`` of a compute-module file: the module rules run (not the accelerator
system's), an over-populated module fails with exit 1, bad input exits 2 in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from ocplan.catalog.catalog import BUILTIN_DIR

MODULE = BUILTIN_DIR / "modules" / "ocm-epyc-9755-1s-dno.yaml"


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ocplan.cli.main", "check", str(path),
                           "--format", "json"], capture_output=True, text=True, timeout=60)


def _variant(tmp_path: Path, **changes: object) -> Path:
    data = yaml.safe_load(MODULE.read_text())
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path = tmp_path / "module.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_valid_module_passes_with_the_module_rules(tmp_path: Path) -> None:
    proc = _check(MODULE)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["errors"] == 0
    assert report["system"].startswith("OCM-style 1S AMD EPYC 9755")


def test_more_dimms_than_slots_and_an_overdrawn_budget_fail(tmp_path: Path) -> None:
    path = _variant(tmp_path, memory__dimms_per_channel=2, power_budget="500 W")
    proc = _check(path)
    assert proc.returncode == 1, proc.stdout
    report = json.loads(proc.stdout)
    rules = {f["rule"] for f in report["findings"] if f["severity"] == "error"}
    assert "MODULE-MEM-SLOTS" in rules
    assert any(r.startswith("MODULE-POWER") for r in rules), rules
    assert report["errors"] == len([f for f in report["findings"] if f["severity"] == "error"])


def test_an_unknown_cpu_is_bad_input_in_one_line(tmp_path: Path) -> None:
    path = _variant(tmp_path, cpu="epyc-99999")
    proc = _check(path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    # --format json: stdout is the error document, its problem the stderr line
    (problem,) = json.loads(proc.stdout)["error"]["problems"]
    assert (problem["field"], problem["value"], problem["message"]) == (
        "cpu", "epyc-99999", lines[0])
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith(f"{path}: cpu = 'epyc-99999'"), lines[0]
