"""Flags a command would drop without a word are refused, each naming itself (a docs
QA pass, session 43): layout flags beside ``--search`` that the search cannot take
(the fields a training search holds fixed, the software stack, are passed on, and a
pinnable axis given pins it: ``tests/test_search_pins.py``), the
search's ``--objective`` and ``--top`` without it, ``--disaggregate`` without it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clikit import run

CHIP = ("--model", "llama3-8b", "--chip", "h100-sxm-80gb")


def lines(err: str) -> list[str]:
    return err.strip().splitlines()


def test_report_refuses_layout_flags_the_search_would_drop(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    rc, _, err = run(capsys, "report", *CHIP, "--search", "--offload", "--shard-group", "2",
                     "--out", out)
    assert rc == 2
    assert [line.split(":")[0] for line in lines(err)] == ["--offload", "--shard-group"]
    assert "the search picks it" in err
    assert not out.exists()  # nothing half-written


def test_report_search_takes_the_stack_flags(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    rc, _, _ = run(capsys, "report", *CHIP, "--chips", "16", "--search",
                   "--grad-reduce-bf16", "--top", "2", "--out", out)
    assert rc == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["search"]["top"]
    assert all(row["grad_reduce_bf16"] for row in report["search"]["top"])


def test_report_refuses_search_flags_without_search(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    rc, _, err = run(capsys, "report", *CHIP, "--objective", "cost", "--top", "3", "--out",
                     tmp_path / "r.json")
    assert rc == 2
    assert [line.split(":")[0] for line in lines(err)] == ["--objective", "--top"]
    assert "applies with --search" in err


def test_infer_refuses_disaggregate_without_search(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "infer", *CHIP, "--disaggregate")
    assert rc == 2
    assert lines(err)[0].startswith("--disaggregate:")
    assert "give --search too" in err


def test_infer_search_pins_the_layout_flags_given(capsys: pytest.CaptureFixture[str]) -> None:
    """``infer --search --tp 8 --max-seqs 64`` searches only layouts with those values (the
    flags had been dropped unsaid); pins that leave no layout are one line, exit 2; a
    comparison (--vs) searches every system freely and refuses them."""
    job = ("infer", "--model", "llama3-70b", "--chip", "h100-sxm-80gb", "--chips", "8",
           "--search")
    rc, out, _ = run(capsys, *job, "--max-seqs", "64", "-f", "json")
    assert rc == 0
    free = json.loads(out)["results"]
    assert len(free) > 1
    rc, out, _ = run(capsys, *job, "--tp", "8", "--max-seqs", "64", "-f", "json")
    assert rc == 0
    pinned = json.loads(out)["results"]
    assert pinned
    assert all(r["layout"].startswith("tp=8,") for r in pinned)
    assert all("max_seqs=64" in r["layout"] for r in pinned + free)
    rc, _, err = run(capsys, *job, "--tp", "3")
    assert rc == 2
    assert "no layout of 8 chips takes tp=3" in err
    rc, _, err = run(capsys, *job, "--tp", "2", "--vs", "mi300x")
    assert rc == 2
    assert lines(err) == ["--tp: tp = 2: the search picks it: leave it out with --search"]


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_a_reader_that_leaves_is_not_a_no(fmt: str) -> None:
    """``ocplan estimate | head -1``: the reader closing the pipe ends the command quietly
    with 141 (128 + SIGPIPE, as a shell reports for ``yes | head -1``), not 1 (rich's
    default, which here means "the answer is no"), and prints no traceback."""
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    try:
        done = subprocess.run(
            [sys.executable, "-m", "ocplan.cli.main", "estimate", *CHIP, "-f", fmt],
            stdout=write, stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    finally:
        os.close(write)
    assert done.returncode == 141, done.stderr
    assert "Traceback" not in done.stderr
    assert "Exception ignored" not in done.stderr
