"""The serving request's prompt and answer lengths default as the CLI's do (session 9 QA
pass: POST /api/infer required them while ``ocplan infer`` defaulted them). One
declaration, :data:`ocplan.workloads.serving.DEFAULT_INPUT_LEN` and ``..._OUTPUT_LEN``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ocplan import api
from ocplan.cli.main import main
from ocplan.web.app import create_app
from test_s8_api_defaults import cli_default


@pytest.mark.parametrize("request_model", [api.InferRequest, api.InferSearchRequest])
@pytest.mark.parametrize("name", ["input_len", "output_len"])
def test_request_default_is_the_cli_default(request_model: type[api.InferJob],
                                            name: str) -> None:
    field = request_model.model_fields[name]
    assert not field.is_required()
    assert field.default == cli_default("infer", name)


def test_post_infer_without_lengths_answers_as_the_cli(
        serve: Callable[[Any], str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    base = serve(create_app(f"sqlite:///{tmp_path / 'scenarios.db'}"))
    job: dict[str, Any] = {"model": "llama3-8b", "chip": "h100-sxm-80gb", "chips": 1}
    with httpx.Client(base_url=base, timeout=60) as client:
        resp = client.post("/api/infer", json=job)
    assert resp.status_code == 200, resp.text
    web = resp.json()
    web = web.get("estimate", web)
    assert main(["infer", "--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "1",
                 "--format", "json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert web["output_tokens_per_s_per_chip"] == pytest.approx(
        cli["output_tokens_per_s_per_chip"], rel=1e-9)
    # output/input token rates are in the ratio of the default lengths
    assert cli["input_tokens_per_s_per_chip"] / cli["output_tokens_per_s_per_chip"] == \
        pytest.approx(cli_default("infer", "input_len") / cli_default("infer", "output_len"),
                      rel=1e-6)
