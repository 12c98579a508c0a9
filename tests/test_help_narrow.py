"""``--help`` on a narrow terminal prints every option's name whole.

rich's option table never wraps a name: at 80 columns it cut ``estimate``'s to
``--ends-as-laye…`` and ``--native-atten…`` (its help column took the width). A command
whose names do not fit prints click's plain list there instead, each name whole and its
help wrapped beneath; a terminal wide enough keeps rich's table.
"""

from __future__ import annotations

import pytest
import typer.main

from ocplan.cli import main as cli
from test_s8_help import COMMANDS


def help_at(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
            columns: int, *words: str) -> str:
    monkeypatch.setenv("COLUMNS", str(columns))
    assert cli.main([*words, "--help"]) == 0
    return capsys.readouterr().out


def long_names(words: list[str]) -> list[str]:
    """Every long option name (and negation) the command declares."""
    command = cli._app_for([*words, "--help"])

    click_cmd = typer.main.get_command(command)
    for word in words:
        click_cmd = click_cmd.commands[word]  # type: ignore[attr-defined]
    ctx = click_cmd.make_context("ocplan", [], resilient_parsing=True)
    return [o for p in click_cmd.get_params(ctx) for o in (*p.opts, *p.secondary_opts)
            if o.startswith("--")]


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: " ".join(w) or "ocplan")
def test_names_whole_at_80_columns(capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch, words: list[str]) -> None:
    text = help_at(capsys, monkeypatch, 80, *words)
    assert "…" not in text
    # A line runs past the edge only where a name and its placeholder are one long word
    # (``--objective <throughput|time|...>``); help text always wraps.
    assert all(len(line.split()) <= 2 for line in text.splitlines() if len(line) > 80)
    for name in long_names(words):
        assert name in text, name


def test_estimate_plain_when_narrow_rich_when_wide(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    narrow = help_at(capsys, monkeypatch, 80, "estimate")
    assert "╭" not in narrow
    assert "--native-attention / --no-native-attention" in narrow
    wide = help_at(capsys, monkeypatch, 240, "estimate")
    assert "╭" in wide
    assert "…" not in wide
