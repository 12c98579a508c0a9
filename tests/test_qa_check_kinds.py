"""``ocplan check`` and ``ocplan serve --system`` decide a file's kind the same way
(:func:`ocplan.catalog.filekinds.managed_kind_of`): a misspelt ``kind``, a catalog entry
or another command's file is one line naming what it is, exit 2, not one unknown-field
line per key (QA: 17 lines for ``kind: compute-modul``, 30 for a catalog CPU entry, and
``serve --system`` flooded on a workload mix that ``check`` named in one line)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from clikit import one_line, run
from ocplan.catalog.catalog import BUILTIN_DIR, load_catalog
from ocplan.errors import SpecError
from ocplan.redfish.module import read_managed

ROOT = Path(__file__).resolve().parents[1]
MODULE = BUILTIN_DIR / "modules" / "ocm-epyc-9654-2s-flw.yaml"
CPU_ENTRY = BUILTIN_DIR / "cpus" / "epyc-9654.yaml"
MIX = ROOT / "examples" / "cloud-mix.yaml"


@pytest.fixture(autouse=True)
def _no_env_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCPLAN_CATALOG", raising=False)


def _with_kind(tmp_path: Path, kind: object) -> Path:
    data = yaml.safe_load(MODULE.read_text(encoding="utf-8"))
    data["kind"] = kind
    path = tmp_path / "X.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


COMMANDS = (("check",), ("serve", "--system"))


@pytest.mark.parametrize("command", COMMANDS)
def test_a_misspelt_kind_is_one_line_with_the_nearest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]) -> None:
    path = _with_kind(tmp_path, "compute-modul")
    line = one_line(*run(capsys, *command, path))
    assert line == (f"{path}: kind = 'compute-modul': expected 'compute-module' or a system "
                    "file (no kind); did you mean 'compute-module'?")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_catalog_entry_is_one_line_pointing_at_catalog(
        capsys: pytest.CaptureFixture[str], command: tuple[str, ...]) -> None:
    line = one_line(*run(capsys, *command, CPU_ENTRY))
    assert line.startswith(f"{CPU_ENTRY}: kind = 'cpu': is a catalog entry")
    assert "--catalog" in line
    assert f"not to 'ocplan {' '.join(command)}'" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_a_workload_mix_is_one_line_naming_match(
        capsys: pytest.CaptureFixture[str], command: tuple[str, ...]) -> None:
    line = one_line(*run(capsys, *command, MIX))
    assert "this is a workload mix" in line
    assert f"'ocplan match --workload {MIX}'" in line


@pytest.mark.parametrize("kind", [5, None, "system"])
def test_any_other_kind_value_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          kind: object) -> None:
    line = one_line(*run(capsys, "check", _with_kind(tmp_path, kind)))
    assert "expected 'compute-module' or a system file (no kind)" in line


def test_both_commands_share_one_decision(tmp_path: Path) -> None:
    """The Redfish reader refuses what ``check`` refuses, with the same words but the
    command's name."""
    from ocplan.catalog.filekinds import managed_kind_of  # new with the shared decision

    data = yaml.safe_load(CPU_ENTRY.read_text(encoding="utf-8"))
    with pytest.raises(SpecError) as check:
        managed_kind_of(data, "f.yaml", "ocplan check")
    with pytest.raises(SpecError) as serve:
        read_managed(CPU_ENTRY, load_catalog())
    assert len(check.value.problems) == len(serve.value.problems) == 1
    assert str(check.value).replace("f.yaml", str(CPU_ENTRY)).replace(
        "ocplan check", "ocplan serve --system") == str(serve.value)


def test_systems_and_modules_still_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "check", MODULE)[0] == 0
    assert run(capsys, "check", ROOT / "examples" / "mx1-8oam-air.yaml")[0] == 0
