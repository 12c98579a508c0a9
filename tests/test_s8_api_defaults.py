"""The API's request defaults are the CLI's (session 8, item 3).

``ocplan estimate``/``search``/``compare``/``report`` default the global batch and the
sequence length; the API request models used to require them. Both now read one
declaration (:mod:`ocplan.plan.search_defaults`), so a POST /api/estimate without them
answers what the CLI answers without the flags.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer.main

from ocplan import api
from ocplan.catalog.fields import Spec
from ocplan.cli.main import app, main
from ocplan.web.app import create_app

JOB_DEFAULTS = ("global_batch", "seq_len")
#: CLI command -> the request model its flags are validated with.
REQUEST_OF: dict[str, type[Spec]] = {
    "estimate": api.EstimateRequest, "search": api.SearchRequest,
    "compare": api.CompareRequest, "report": api.EstimateRequest}


def cli_default(command: str, name: str) -> Any:
    """The default click gives option ``name`` of ``command`` (as ``--help`` shows it)."""
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    cmd = group.commands[command]
    (param,) = [p for p in cmd.params if p.name == name]
    return param.default


@pytest.mark.parametrize("command", sorted(REQUEST_OF))
@pytest.mark.parametrize("name", JOB_DEFAULTS)
def test_request_default_is_the_cli_default(command: str, name: str) -> None:
    field = REQUEST_OF[command].model_fields[name]
    assert not field.is_required()
    assert field.default == cli_default(command, name)


def test_a_request_without_them_validates_to_the_defaults() -> None:
    req = api.EstimateRequest.model_validate({"model": "llama3-8b", "chip": "mi300x",
                                              "chips": 8})
    assert (req.global_batch, req.seq_len) == (cli_default("estimate", "global_batch"),
                                               cli_default("estimate", "seq_len"))


def test_post_estimate_without_them_answers_as_the_cli(
        serve: Callable[[Any], str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    base = serve(create_app(f"sqlite:///{tmp_path / 'scenarios.db'}"))
    job: dict[str, Any] = {"model": "llama3-8b", "chip": "h100-sxm-80gb", "chips": 8}
    with httpx.Client(base_url=base, timeout=60) as client:
        resp = client.post("/api/estimate", json=job)
    assert resp.status_code == 200, resp.text
    web = resp.json()
    assert main(["estimate", "--model", job["model"], "--chip", job["chip"], "--chips", "8",
                 "--format", "json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert web["feasible"]
    assert cli["feasible"]
    assert web["step_s"] == pytest.approx(cli["step_s"], rel=1e-12)
    assert web["tokens_per_s"] == pytest.approx(cli["tokens_per_s"], rel=1e-12)
    # and the defaults are the job's: tokens per step = global batch x sequence length
    tokens_per_step = cli_default("estimate", "global_batch") * cli_default("estimate",
                                                                           "seq_len")
    assert web["tokens_per_s"] * web["step_s"] == pytest.approx(tokens_per_step, rel=1e-9)
