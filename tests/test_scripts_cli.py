"""The developer scripts' command lines (``scripts/*.py``): ``--help`` prints the usage and
changes nothing; an input path that does not exist is one stderr line naming it, exit code
2, no traceback and nothing written (the rule of the ``ocplan`` CLI for bad input)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Every script of ``scripts/`` (a new one is covered without editing this file); helper
#: modules start with ``_`` and ``scripts/device/`` runs on a lent accelerator only.
SCRIPTS = sorted(p.name for p in (ROOT / "scripts").glob("*.py") if not p.name.startswith("_"))

#: The command lines that hand each script an input path that does not exist
#: (``{missing}``; ``{out}`` is an output folder under the test's temporary folder); an
#: empty list for a script that takes no input path. A new script must be listed here.
MISSING_INPUT: dict[str, list[list[str]]] = {
    "build_cpu_energy_holdout.py": [["{missing}.csv.gz"]],
    "cpu_energy_holdout.py": [],
    "device_report.py": [["{missing}.csv"]],
    "fit_calibration.py": [["{missing}.csv", "--out", "{out}"],
                           ["--out", "{out}", "{missing}.csv", "source,chip,5"]],
    "fit_cpu.py": [["{missing}.csv"], ["--smt-pairs", "{missing}.csv.gz"]],
    "fit_serving.py": [["{missing}.csv", "--out", "{out}"],
                       ["--out", "{out}", "{missing}.csv", "source,chip"]],
    "dgxc_sweep.py": [["--build", "{missing}"]],
    "foundry_sweep.py": [["--build", "{missing}.md"]],
    "holdout_report.py": [],
    "hybrid_spotcheck.py": [],
    "mlperf_inference_sweep.py": [],
    "release_spread.py": [["{missing}.csv"]],
    "serving_latency.py": [],
    "serving_vs_simulation.py": [],
    "slice_scaling.py": [["{missing}.csv"]],
    "tail_bound.py": [["{missing}.csv"]],
}

MISSING_CASES = [(name, args) for name, cases in MISSING_INPUT.items() for args in cases]


def _watched() -> list[Path]:
    """The files a script may write: the docs, the validation reports and sets, both
    READMEs and the calibrations and data files of the package."""
    files = [*(ROOT / "docs").rglob("*"), *(ROOT / "validation").rglob("*"),
             ROOT / "README.md"]
    package = ROOT / "src" / "ocplan"
    files += [*package.rglob("*.json"), *package.rglob("*.csv")]
    return sorted(f for f in files if f.is_file() and "__pycache__" not in f.parts)


def _snapshot() -> dict[Path, tuple[int, str]]:
    """Each watched file's modification time and content hash (a rewrite with the same
    content still moves the time)."""
    return {f: (f.stat().st_mtime_ns, hashlib.sha256(f.read_bytes()).hexdigest())
            for f in _watched()}


def _run(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), *args],
                          capture_output=True, text=True, cwd=ROOT, check=False, timeout=120)


def test_every_script_is_listed() -> None:
    """A new script states whether it reads an input path (and gets its case below)."""
    assert SCRIPTS, "no script found"
    assert sorted(MISSING_INPUT) == SCRIPTS


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_prints_usage_and_writes_nothing(name: str) -> None:
    before = _snapshot()
    done = _run(name, "--help")
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
    assert "Traceback" not in done.stderr
    assert _snapshot() == before


@pytest.mark.parametrize(("name", "args"), MISSING_CASES,
                         ids=[f"{n}-{i}" for n, cases in MISSING_INPUT.items()
                              for i in range(len(cases))])
def test_missing_input_is_one_line_and_exit_2(name: str, args: list[str],
                                              tmp_path: Path) -> None:
    missing = tmp_path / "no-such-input"
    out = tmp_path / "out"
    argv = [a.format(missing=missing, out=out) for a in args]
    path = next(a for a in argv if a.startswith(str(missing)))
    before = _snapshot()
    done = _run(name, *argv)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"{name}: {path}: "), lines[0]
    assert lines[0].removeprefix(f"{name}: {path}: ").strip()
    assert not out.exists()
    assert _snapshot() == before


def test_device_benchmark_prints_its_usage_without_pytorch() -> None:
    """``scripts/device/kernel_microbench.py --help`` printed a ModuleNotFoundError on a
    machine without PyTorch; the usage prints (exit 0) and a run says in one line what
    it needs (exit 2). Only meaningful where this Python has no PyTorch."""
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        pytest.skip("PyTorch is installed here: the script runs for real")
    script = ROOT / "scripts" / "device" / "kernel_microbench.py"
    helped = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                            text=True, timeout=60, check=False)
    assert helped.returncode == 0, helped.stderr
    assert "--out DIR" in helped.stdout
    assert "Traceback" not in helped.stderr
    ran = subprocess.run([sys.executable, str(script), "--out", "/nonexistent/x"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 2
    assert ran.stderr.strip().splitlines()[-1].startswith("kernel_microbench.py: needs PyTorch")
    assert "Traceback" not in ran.stderr
