"""A static batch larger than one instance holds runs in waves, and its TTFT is the mean
over the batch's sequences: the waves before a sequence's own, then its wave's prefill.
It had been one wave's prefill (31 s for 100,000 sequences in 136 waves of 736)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clikit import run

JOB = ["infer", "--model", "llama3-70b", "--chip", "h100-sxm-80gb", "--chips", "8",
       "--tp", "8", "--load", "static", "--output-len", "256", "-f", "json"]


def _static(capsys: pytest.CaptureFixture[str], batch: int) -> dict[str, Any]:
    rc, out, err = run(capsys, *JOB, "--batch", batch)
    assert rc == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def test_a_batch_in_waves_waits_for_the_waves_before(
        capsys: pytest.CaptureFixture[str]) -> None:
    cap = int(_static(capsys, 1_000_000)["batch_per_instance"])
    one = _static(capsys, cap)
    assert not any("waves" in note for note in one["notes"])
    prefill, tpot = float(one["ttft_s"]), float(one["tpot_s"])
    span = cap * 256 / float(one["output_tokens_per_s"])  # a wave: prefill and decode
    assert span > tpot * 256  # TPOT is the decode alone
    # two equal waves: half the sequences wait one wave first
    two = _static(capsys, 2 * cap)
    assert float(two["ttft_s"]) == pytest.approx(prefill + span / 2, rel=1e-6)
    assert float(two["tpot_s"]) == pytest.approx(tpot, rel=1e-6)
    # four: the sequences wait 0, 1, 2, 3 waves, 1.5 on average
    four = _static(capsys, 4 * cap)
    assert float(four["ttft_s"]) == pytest.approx(prefill + 1.5 * span, rel=1e-6)
    assert any("TTFT counts the waves before" in note for note in four["notes"])
