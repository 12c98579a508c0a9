"""One-token answers (scoring, classification, a prefill benchmark): the prefill samples
the only token, so there is no decode step, no TPOT and nothing to speculate on.

Before (a QA pass, session 46) such a job reported a TPOT of one decode step, drew a
throughput-TPOT curve and front, and took a TPOT limit that it then judged."""

from __future__ import annotations

import json

import pytest

from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.cli.main import main
from ocplan.errors import SpecError

CAT = load_catalog()
JOB = dict(model="llama3-8b", chip="h100-sxm-80gb", chips=8, tp=1, input_len=1000)


def test_a_one_token_answer_has_no_tpot_and_no_curve() -> None:
    view = api.run_infer_view(CAT, api.InferRequest(**(JOB | {"output_len": 1})))
    e = view.result
    assert e.feasible
    assert e.tpot_s is None
    assert e.tpot_stat_s is None
    assert e.ttft_s is not None
    assert e.ttft_s > 0
    # one output token per request: the output rate is the request rate
    assert e.output_tokens_per_s == pytest.approx(e.requests_per_s, rel=1e-9)
    assert e.input_tokens_per_s_per_chip == pytest.approx(1000 * e.output_tokens_per_s_per_chip,
                                                           rel=1e-9)
    assert view.curve is None
    # two tokens: a decode step, timed, and a curve
    two = api.run_infer_view(CAT, api.InferRequest(**(JOB | {"output_len": 2})))
    assert two.result.tpot_s is not None
    assert two.result.tpot_s > 0
    assert two.curve is not None


@pytest.mark.parametrize(("changes", "field"), [
    ({"slo_tpot_s": 0.05}, "slo_tpot_s"),
    ({"spec_tokens": 2, "spec_acceptance": 0.5}, "spec_tokens"),
])
def test_decode_inputs_need_a_second_token(changes: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError, match=f"{field} = .*needs output_len above 1"):
        api.run_infer(CAT, api.InferRequest(**(JOB | {"output_len": 1} | changes)))
    # the same inputs with a two-token answer are taken
    result, _, _ = api.run_infer(CAT, api.InferRequest(**(JOB | {"output_len": 2} | changes)))
    assert result.feasible


def test_search_of_one_token_answers_has_no_tpot_front(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    args = ["infer", "--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "8",
            "--input-len", "1000", "--output-len", "1", "--search"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "best serving layouts" in text
    assert "throughput-TPOT front" not in text
    assert main([*args, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pareto"] == []
    assert out["results"][0]["tpot_s"] is None
    assert out["results"][0]["ttft_s"] > 0
