"""A job without a chip count runs on every chip of its system, else on
:data:`ocplan.api.DEFAULT_CHIPS` of its chip, in the API, the web workbench and the CLI
alike (session 39: only the CLI defaulted the count; a composed system estimated in the
workbench with its Chips box blank was refused with "chips: required field is missing").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.cli.main import main
from ocplan.errors import SpecError
from ocplan.web.app import create_app

ROOT = Path(__file__).resolve().parents[1]
#: 1,024 MI355X OAMs: a system whose chip count is not the default's.
CLUSTER = ROOT / "examples" / "ubb-1024-liquid.yaml"
#: Two 8-OAM servers' worth of layout: divides the cluster, not a divisor of the default.
LAYOUT = {"tp": 8, "pp": 2}


def cluster_mapping() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(CLUSTER.read_text(encoding="utf-8"))
    return data


def test_the_example_cluster_is_not_the_default_size() -> None:
    assert api.read_system(load_catalog(), CLUSTER).num_chips == 1024 != api.DEFAULT_CHIPS


def test_an_estimate_without_chips_runs_every_chip_of_its_system() -> None:
    cat = load_catalog()
    for system_file, mapping in ((CLUSTER, None), (None, cluster_mapping())):
        req = api.EstimateRequest.model_validate(
            {"model": "llama3-70b", "system": mapping, "global_batch": 1024, **LAYOUT})
        result, system, _ = api.run_estimate(cat, req, system_file)
        assert result.feasible, result.reason
        assert result.chips == system.num_chips == 1024
        assert result.plan.dp == 1024 // (LAYOUT["tp"] * LAYOUT["pp"])


def test_a_chip_without_a_count_runs_the_default_count() -> None:
    req = api.EstimateRequest.model_validate({"model": "llama3-8b", "chip": "gb200"})
    result, _, _ = api.run_estimate(load_catalog(), req)
    assert result.chips == api.DEFAULT_CHIPS


def test_a_count_larger_than_the_system_is_still_refused() -> None:
    req = api.EstimateRequest.model_validate(
        {"model": "llama3-8b", "system": cluster_mapping(), "chips": 2048})
    with pytest.raises(SpecError) as caught:
        api.run_estimate(load_catalog(), req)
    (problem,) = caught.value.problems
    assert problem.field == "chips"
    assert "1024 chips" in problem.line()


def test_search_and_serving_count_the_systems_chips() -> None:
    cat = load_catalog()
    found = api.run_search(cat, api.SearchRequest.model_validate(
        {"model": "llama3-70b", "system": cluster_mapping(), "global_batch": 1024,
         "top_k": 1}))
    assert found.best is not None
    assert found.best.chips == 1024
    served, _, _ = api.run_infer(cat, api.InferRequest.model_validate(
        {"model": "llama3-70b", "system": cluster_mapping(), "tp": 8}))
    assert served.chips == 1024
    assert served.plan.dp == 1024 // 8


def test_a_serving_comparison_runs_every_system_at_the_first_systems_count() -> None:
    req = api.InferSearchRequest.model_validate({"model": "llama3-8b"})
    compared = api.run_infer_compare(load_catalog(), req, ["h100-sxm-80gb"], None, CLUSTER)
    rows = compared.as_json()["systems"]
    assert [r["chips"] for r in rows] == [1024, 1024]


def test_the_workbench_estimates_a_composed_system_with_the_chips_box_blank(
        serve: Callable[[Any], str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    base = serve(create_app(f"sqlite:///{tmp_path / 'scenarios.db'}"))
    job = {"model": "llama3-70b", "system": cluster_mapping(), "global_batch": 1024,
           **LAYOUT}
    with httpx.Client(base_url=base, timeout=60) as client:
        resp = client.post("/api/estimate", json=job)
    assert resp.status_code == 200, resp.text
    web = resp.json()
    assert web["chips"] == 1024
    # the CLI answers the same job from the same file, also without --chips
    assert main(["estimate", "--model", "llama3-70b", "--system", str(CLUSTER),
                 "--global-batch", "1024", "--tp", "8", "--pp", "2", "-f", "json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert cli["chips"] == 1024
    assert web["step_s"] == pytest.approx(cli["step_s"], rel=1e-12)


@pytest.mark.parametrize("command", ["estimate", "search", "infer", "report"])
def test_the_cli_help_states_the_apis_default(command: str, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "240")  # one line per option
    assert main([command, "--help"]) == 0
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if "│    --chips " in ln]
    assert f"else {api.DEFAULT_CHIPS})" in line
