"""Running the CLI from a test, in process or as a real process: the exit code and what
it printed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ocplan.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """``ocplan argv...`` in process: (exit code, stdout, stderr)."""
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def one_line(rc: int, out: str, err: str) -> str:
    """The single stderr line of a bad-input answer (exit 2, no traceback)."""
    assert rc == 2, (rc, out, err)
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def run_wide(*argv: object, columns: int = 400) -> str:
    """``ocplan argv...`` as a real process on a ``columns``-wide terminal (400: a table's
    row on one line), without the caller's catalog or currency; its standard output
    (exit 0)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OCPLAN_CATALOG", "OCPLAN_CURRENCY")} | {"COLUMNS": str(columns)}
    done = subprocess.run([sys.executable, "-m", "ocplan.cli.main", *map(str, argv)],
                          capture_output=True, text=True, timeout=120, env=env, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout
