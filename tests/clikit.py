"""Running the CLI in process from a test: the exit code and what it printed."""

from __future__ import annotations

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
