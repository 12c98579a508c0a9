"""``--help`` on a narrow terminal prints every option's name whole.

rich's option table never wraps a name: at 80 columns it cut ``estimate``'s to
``--ends-as-laye…`` and ``--native-atten…`` (its help column took the width). A command
whose names do not fit prints click's plain list there instead, each name whole and its
help wrapped beneath; a terminal wide enough keeps rich's table.
"""

from __future__ import annotations

import itertools

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


def description(text: str) -> list[list[str]]:
    """The paragraphs of a help page's description (between its usage line and its
    first option heading or box), each as its lines stripped of the frame."""
    lines = [line.strip(" │") for line in text.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("Usage:")) + 1
    paragraphs: list[list[str]] = [[]]
    for line in lines[start:]:
        if line.startswith(("╭", "Options:", "Arguments:", "Commands:")):
            break
        if line:
            paragraphs[-1].append(line)
        elif paragraphs[-1]:
            paragraphs.append([])
    return [p for p in paragraphs if p]


@pytest.mark.parametrize("columns", [70, 80])
@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: " ".join(w) or "ocplan")
def test_description_fills_its_lines(capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch, words: list[str],
                                     columns: int) -> None:
    """Each description line but a paragraph's last is filled to within its next word of
    the edge: rich kept the docstring's 88-column line breaks, so at 80 columns
    'validate' printed 'benchmarks' on a line of its own."""
    text = help_at(capsys, monkeypatch, columns, *words)
    paragraphs = description(text)
    assert paragraphs, text
    for para in paragraphs:
        for line, following in itertools.pairwise(para):
            room = columns - len(line) - 4  # the frame's and the indent's columns
            assert room < len(following.split()[0]) + 1, (line, following)
