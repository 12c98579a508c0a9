"""A layout that cannot run has no step time, rate, utilisation, power or calibration:
its JSON says null, not 0 (README: "a statistic that does not exist is null"); a layout
that runs keeps every figure a number."""

from __future__ import annotations

import json

import pytest

from ocplan.cli.main import main
from ocplan.plan.estimate import ABSENT_WHEN_INFEASIBLE
from ocplan.serving.estimate import ABSENT_WHEN_INFEASIBLE as SERVING_ABSENT


@pytest.fixture(autouse=True)
def _no_env_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCPLAN_CATALOG", raising=False)


def _json(capsys: pytest.CaptureFixture[str], args: list[str], code: int) -> dict[str, object]:
    assert main([*args, "--format", "json"]) == code
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data, dict)
    return data


def test_training_layout_that_cannot_run_has_null_figures(
        capsys: pytest.CaptureFixture[str]) -> None:
    # GPT-3 175B on one 80 GB chip: about 3 TB per chip of weights and states
    d = _json(capsys, ["estimate", "--model", "gpt3-175b", "--chip", "a100-sxm-80gb",
                       "--chips", "1"], 1)
    assert d["feasible"] is False
    assert all(d[k] is None for k in ABSENT_WHEN_INFEASIBLE)
    assert d["memory"] is not None   # what did not fit is still there


def test_training_layout_that_runs_keeps_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    d = _json(capsys, ["estimate", "--model", "llama3-8b", "--chip", "h100-sxm-80gb",
                       "--chips", "8"], 0)
    assert d["feasible"] is True
    ranges = ("held_out_range_pct", "likely_tokens_per_s_per_chip")
    assert all(isinstance(d[k], int | float) for k in ABSENT_WHEN_INFEASIBLE
               if k not in ("calibration_family", "calibration_cv_error_pct", *ranges))
    # the likely range: two numbers, low to high
    assert all(len(d[k]) == 2 and d[k][0] <= d[k][1] for k in ranges)
    assert d["calibration_family"] == "hopper"
    assert d["step_s"] > 0


def test_serving_layout_that_cannot_run_has_null_figures(
        capsys: pytest.CaptureFixture[str]) -> None:
    # Llama 3.1 405B weights on one 80 GB chip
    d = _json(capsys, ["infer", "--model", "llama3-405b", "--chip", "h100-sxm-80gb",
                       "--chips", "1"], 1)
    assert d["feasible"] is False
    assert all(d[k] is None for k in SERVING_ABSENT)
    served = _json(capsys, ["infer", "--model", "llama3-8b", "--chip", "h100-sxm-80gb",
                            "--chips", "1"], 0)
    assert served["output_tokens_per_s_per_chip"] > 0
    assert served["calibration_family"] == "hopper"


def test_an_mla_serving_estimate_says_where_the_data_disagree(
        capsys: pytest.CaptureFixture[str]) -> None:
    """DeepSeek-class (MLA) decode carries the validation data's warning; GQA does not."""
    from ocplan.serving.estimate import MLA_DECODE_NOTE

    mla = _json(capsys, ["infer", "--model", "deepseek-v3", "--chip", "b200", "--chips", "8",
                         "--ep", "8", "--attention-dp", "--weight-precision", "fp4",
                         "--activation-precision", "fp4", "--kv-precision", "fp8"], 0)
    assert MLA_DECODE_NOTE in mla["notes"]
    gqa = _json(capsys, ["infer", "--model", "llama3-8b", "--chip", "b200", "--chips", "1"], 0)
    assert MLA_DECODE_NOTE not in gqa["notes"]


def test_a_request_past_the_context_window_is_noted(capsys: pytest.CaptureFixture[str]) -> None:
    """Llama 3 70B was trained on 8,192-token sequences (catalog max_seq_len): a 100K-token
    prompt is estimated, with a note saying so; a 1K prompt gets no such note."""
    args = ["infer", "--model", "llama3-70b", "--chip", "h200-sxm-141gb", "--chips", "8",
            "--tp", "8", "--output-len", "256"]
    long = _json(capsys, [*args, "--input-len", "100000"], 0)
    assert any("context window (8,192 tokens)" in n for n in long["notes"])
    short = _json(capsys, [*args, "--input-len", "1024"], 0)
    assert not any("context window" in n for n in short["notes"])
