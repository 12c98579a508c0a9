"""A sweep/compare/report QA pass (session 44): a report never replaces what is not a
regular file (it had turned a named pipe, a device and a symbolic link into plain
files), and a failure-aware search whose runs make no progress says so (it had printed
a billion years from a placeholder goodput of 1e-9) and exits 1."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from clikit import run

ROOT = Path(__file__).resolve().parents[1]
JOB = ("--model", "llama3-8b", "--chip", "h100-sxm-80gb")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_report_refuses_a_named_pipe(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    pipe = tmp_path / "page.html"
    os.mkfifo(pipe)
    rc, _, err = run(capsys, "report", *JOB, "--out", pipe)
    assert rc == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("--out: out = '")
    assert line.endswith(": is no regular file (a pipe, device or socket); expected the "
                         "path of a file to write")
    assert not pipe.is_file()  # still the pipe


def test_a_report_writes_through_a_link(capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    target = tmp_path / "target.html"
    target.write_text("old", encoding="utf-8")
    link = tmp_path / "link.html"
    link.symlink_to(target)
    rc, _, _ = run(capsys, "report", *JOB, "--out", link)
    assert rc == 0
    assert link.is_symlink()  # the link stays a link
    assert target.read_text(encoding="utf-8").startswith("<!doctype html>")


def slow_storage(tmp_path: Path) -> Path:
    """The example cluster with checkpoint storage of 1 kB/s: 1,024 chips fail faster
    than a checkpoint of Llama 3.1 405B can be written."""
    spec = yaml.safe_load((ROOT / "examples" / "ubb-1024-liquid.yaml").read_text("utf-8"))
    spec["storage"] = {"kind": "parallel-fs", "write_bandwidth": "1 kB/s",
                       "read_bandwidth": "1 kB/s"}
    path = tmp_path / "slow.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def test_a_run_that_makes_no_progress_is_no_answer(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    job = ("search", "--system", slow_storage(tmp_path), "--model", "llama3-405b",
           "--global-batch", "2048", "--seq-len", "8192", "--train-tokens", "15e12",
           "--price", "3", "--objective", "cost_with_failures", "--top", "2")
    rc, out, _ = run(capsys, *job, "-f", "json")
    assert rc == 1
    found = json.loads(out)
    assert found["top"]
    for row in found["top"]:
        assert row["time_to_train_with_failures_s"] is None
        assert row["cost_to_train_with_failures"] is None
        assert row["time_to_train_s"] > 0  # the failure-free figures stay
    steps = [row["step_s"] for row in found["top"]]
    assert steps == sorted(steps)  # unending runs go by their step
    assert "makes no progress" in found["why"]
    rc, out, _ = run(capsys, *job)
    assert rc == 1
    assert "years" not in out
