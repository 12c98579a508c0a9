"""Bad input reports every problem at once: an unknown chip and an unknown model are two
lines of one error, on every command and through the Python API (found by the session 9
QA pass: ``estimate`` named only the chip, ``infer`` only the model)."""

from __future__ import annotations

import json

import pytest

from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.cli.main import main
from ocplan.errors import SpecError


@pytest.fixture(autouse=True)
def _no_env_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCPLAN_CATALOG", raising=False)


@pytest.mark.parametrize("command", ["estimate", "search", "infer"])
def test_unknown_chip_and_model_are_both_reported(
        command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--model", "no-such-model", "--chip", "no-such-chip",
                 "--chips", "8", "--format", "json"]) == 2
    captured = capsys.readouterr()
    problems = json.loads(captured.out)["error"]["problems"]
    assert {(p["field"], p["value"]) for p in problems} == {
        ("chip", "no-such-chip"), ("model", "no-such-model")}
    assert len(captured.err.strip().splitlines()) == 2


def test_the_api_raises_both_problems_in_one_error() -> None:
    req = api.EstimateRequest(model="no-such-model", chip="no-such-chip", chips=8)
    with pytest.raises(SpecError) as caught:
        api.run_estimate(load_catalog(), req)
    assert sorted(p.field for p in caught.value.problems) == ["chip", "model"]
