"""The CLI builds only the command being run (``ocplan.cli.main._app_for``): the narrowed
application must behave exactly like the whole one, root options included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocplan.cli import main as cli
from ocplan.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
MIX = str(ROOT / "examples" / "cloud-mix.yaml")


def _names(app: object) -> list[str]:
    return [c.name for c in app.registered_commands]  # type: ignore[attr-defined]


def test_a_named_command_is_built_alone_with_the_root_options_and_groups() -> None:
    narrow = cli._app_for(["match", "--workload", MIX])
    assert narrow is not cli.app
    assert _names(narrow) == ["match"]
    assert narrow.registered_callback is cli.app.registered_callback
    assert narrow.registered_groups == cli.app.registered_groups


@pytest.mark.parametrize("args", [[], ["--help"], ["--help", "match"], ["catalog", "list"],
                                  ["no-such-command"], ["--currency", "EUR", "match"]])
def test_anything_but_a_leading_command_gets_the_whole_application(args: list[str]) -> None:
    assert cli._app_for(args) is cli.app


def test_every_command_is_found_by_its_name() -> None:
    for name in _names(cli.app):
        assert _names(cli._app_for([name])) == [name]


def test_help_of_a_command_is_the_same_narrowed_or_whole(
        capsys: pytest.CaptureFixture[str]) -> None:
    args = ["match", "--help"]
    narrowed = main(args)
    text = capsys.readouterr().out
    whole = cli.app(args=args, prog_name="ocplan", standalone_mode=False)
    assert narrowed == 0
    assert whole in (0, None)
    assert "--workload" in text
    assert capsys.readouterr().out == text


def test_root_options_still_apply_to_a_narrowed_command(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCPLAN_CURRENCY", "x" * 40)  # too long: the root callback refuses it
    assert main(["match", "--workload", MIX, "--format", "json"]) == 2
    captured = capsys.readouterr()
    assert "currency" in captured.err
    (problem,) = json.loads(captured.out)["error"]["problems"]  # --format json: JSON
    assert problem["source"] == "--currency"
    monkeypatch.delenv("OCPLAN_CURRENCY")
    assert main(["match", "--workload", MIX, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["platforms"]


def test_an_unknown_option_of_a_narrowed_command_is_one_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["match", "--no-such-flag"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ocplan:")
    assert "--no-such-flag" in err
    assert "\n" not in err


def test_only_the_console_script_freezes_its_objects_at_the_end(
        capsys: pytest.CaptureFixture[str]) -> None:
    import gc
    import subprocess
    import sys

    before = gc.get_freeze_count()
    assert main(["match", "--workload", MIX, "--format", "json"]) == 0
    capsys.readouterr()
    assert gc.get_freeze_count() == before  # a caller's objects stay collectable
    code = ("import gc, sys\n"
            "sys.argv = ['ocplan', 'match', '--workload', sys.argv[1], '--format', 'json']\n"
            "from ocplan.cli.main import main\n"
            "rc = main()\n"
            "sys.stderr.write(f'{rc} {gc.get_freeze_count() > 0}')\n")
    done = subprocess.run([sys.executable, "-c", code, MIX], capture_output=True, text=True,
                          check=True)
    assert done.stderr.strip().endswith("0 True")
    assert json.loads(done.stdout)["platforms"]


def test_tables_written_to_a_pipe_are_wide_enough_for_whole_ids() -> None:
    import os
    import subprocess
    import sys

    from ocplan.catalog.catalog import load_catalog
    from ocplan.cli.render import PIPE_WIDTH

    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run([sys.executable, "-m", "ocplan.cli.main", "catalog", "list",
                           "--kind", "accelerator"], capture_output=True, text=True,
                          check=True, env=env)
    widths = [len(line) for line in done.stdout.splitlines()]
    assert 80 < max(widths) <= PIPE_WIDTH
    for accel_id in load_catalog().ids("accelerator"):
        assert accel_id in done.stdout  # not cut to "h100-sxm…"


def test_start_up_raises_the_collector_thresholds_and_they_can_be_restored() -> None:
    import gc

    import ocplan.cli as cli_package

    assert cli_package.INTERPRETER_THRESHOLDS[0] < cli_package.GC_YOUNG_THRESHOLD
    saved = gc.get_threshold()
    try:
        cli_package.restore_collector()
        assert gc.get_threshold() == cli_package.INTERPRETER_THRESHOLDS
    finally:
        gc.set_threshold(*saved)


def test_each_run_in_process_measures_its_own_width(capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """rich fixes a console's width when the console is made: a second command run in the
    same process, in another environment, prints at its own width, not the first one's."""
    from ocplan.cli.render import PIPE_WIDTH

    def widest(columns: str | None) -> int:
        if columns is None:
            monkeypatch.delenv("COLUMNS", raising=False)
        else:
            monkeypatch.setenv("COLUMNS", columns)
        assert cli.main(["catalog", "list", "--kind", "accelerator"]) == 0
        return max(len(line) for line in capsys.readouterr().out.splitlines())

    assert widest("60") <= 60
    assert 80 < widest(None) <= PIPE_WIDTH  # captured stdout is not a terminal
    assert widest("70") <= 70
