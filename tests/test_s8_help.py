"""``--help`` placeholders read as what an option takes (session 8, item 5).

On/off flags (``--search``, ``--ep-overlap/--no-ep-overlap``, ``--help``) take no value
and show none (typer printed ``<bool>``); options that take one of a few words show them
(``<bf16|fp16|fp8|int8>``), read from the declarations the values are checked against.
"""

from __future__ import annotations

import re
from typing import get_args

import pytest
import typer.main

from ocplan import api
from ocplan.catalog.schema import KINDS
from ocplan.cli import main as cli
from ocplan.matching.match import MatchRequest
from ocplan.plan.search import Objective
from ocplan.sweep.runner import BACKENDS
from ocplan.workloads.serving import LOADS, SLO_STATS

COMMANDS = [["estimate"], ["search"], ["infer"], ["report"], ["compare"], ["match"],
            ["validate"], ["check"], ["topology"], ["sweep"], ["serve"], ["catalog", "list"],
            ["catalog", "show"], []]


def help_text(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
              *words: str) -> str:
    monkeypatch.setenv("COLUMNS", "240")  # one line per option
    assert cli.main([*words, "--help"]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: " ".join(w) or "ocplan")
def test_no_bool_placeholder(capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch, words: list[str]) -> None:
    text = help_text(capsys, monkeypatch, *words)
    assert "--help" in text
    assert "<bool>" not in text
    options = [ln for ln in text.splitlines() if re.match(r"^\W*(\*\s+)?--", ln)]
    assert options
    for line in options:  # every option that takes text says what text
        assert "<str>" not in line, line
        assert "<list[str]>" not in line, line
    assert "list[" not in text  # nor an argument: typer's annotation column


def test_repeated_argument_shows_its_metavar(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    text = help_text(capsys, monkeypatch, "compare")
    (line,) = [ln for ln in text.splitlines() if "SYSTEM.yaml|CHIP..." in ln
               and "Usage" not in ln]
    assert "System files" in line  # the help sits beside it, with no type between
    assert "<" not in line.split("System files")[0], line


def test_flags_show_no_placeholder(capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    text = help_text(capsys, monkeypatch, "estimate")
    for flag in ("--allow-invalid", "--ep-overlap", "--sequence-parallel", "--help"):
        (line,) = [ln for ln in text.splitlines() if re.search(rf"\s{flag}\s", ln)]
        assert "<" not in line, line  # their help texts hold no "<" either


def _option_metavar(command: str, name: str) -> str | None:
    group = typer.main.get_command(cli.app)
    assert isinstance(group, typer.core.TyperGroup)
    (param,) = [p for p in group.commands[command].params if p.name == name]
    return param.metavar


def _choices(metavar: str | None) -> tuple[str, ...]:
    assert metavar is not None
    assert metavar.startswith("<")
    assert metavar.endswith(">")
    return tuple(metavar[1:-1].split("|"))


@pytest.mark.parametrize("command", ["estimate", "search", "compare", "report"])
def test_training_choices_are_the_requests(command: str) -> None:
    precision = api.EstimateRequest.model_fields["precision"].annotation
    assert _choices(_option_metavar(command, "precision")) == get_args(precision)
    if command != "estimate":
        assert _choices(_option_metavar(command, "objective")) == get_args(Objective)


def test_other_choices_are_their_declarations() -> None:
    assert _choices(_option_metavar("infer", "load")) == LOADS
    assert _choices(_option_metavar("infer", "slo_stat")) == SLO_STATS
    match_objective = MatchRequest.model_fields["objective"].annotation
    assert _choices(_option_metavar("match", "objective")) == get_args(match_objective)
    assert _choices(_option_metavar("sweep", "backend")) == BACKENDS
    group = typer.main.get_command(cli.app)
    assert isinstance(group, typer.core.TyperGroup)
    catalog = group.commands["catalog"]
    assert isinstance(catalog, typer.core.TyperGroup)
    (kind,) = [p for p in catalog.commands["list"].params if p.name == "kind"]
    assert _choices(kind.metavar) == tuple(KINDS)


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: " ".join(w) or "ocplan")
def test_help_is_terminal_text(capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch, words: list[str]) -> None:
    """Docstrings are written for the API docs; ``--help`` shows no reST literal marks."""
    assert "``" not in help_text(capsys, monkeypatch, *words)


def test_command_list_gives_each_command_one_sentence(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """rich keeps a docstring's line breaks in the command list; each command's summary
    is its first paragraph on one line (at 240 columns, one table row)."""
    text = help_text(capsys, monkeypatch)
    rows = {m.group(1): m.group(2).strip()
            for m in re.finditer(r"^│ (\w+)\s+(.*?)│$", text, re.MULTILINE)}
    assert rows["check"].endswith("against the OAM/UBB/OCM specs; exit 1 on errors.")
    assert "'kind: compute-module'" in rows["check"]
    assert rows["validate"].endswith("report the error of each and overall.")
    continuation = [ln for ln in text.splitlines() if re.match(r"^│ {6,}\S", ln)]
    assert not continuation, continuation
