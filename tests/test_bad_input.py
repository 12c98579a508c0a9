"""Bad input: one clear line per problem naming file, field, value and what is allowed.

Every case asserts exit code 2, no traceback, nothing on stdout, and that each stderr
line starts with the file (or flag) at fault. System files and user catalog entries are
written to ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from clikit import run
from ocplan.catalog.catalog import BUILTIN_DIR

CATALOG_SERVERS = (Path(__file__).resolve().parents[1] / "src" / "ocplan" / "catalog"
                   / "data" / "servers")
GOOD_SYSTEM = {
    "name": "test system",
    "server": "nf5698g7",
    "accelerator": "mi300x",
    "servers": 2,
    "scale_out": {"fabric": "roce-400g", "nics_per_server": 8},
}


@pytest.fixture(autouse=True)
def _no_env_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCPLAN_CATALOG", raising=False)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_yaml(path: Path, data: Any) -> Path:
    return write(path, yaml.safe_dump(data, sort_keys=False))


def system(tmp_path: Path, name: str = "system.yaml", **changes: Any) -> Path:
    """GOOD_SYSTEM with top-level changes (a value of ``None`` deletes the key)."""
    data = dict(GOOD_SYSTEM)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return write_yaml(tmp_path / name, data)


def accelerator_entry(**changes: Any) -> dict[str, Any]:
    """The built-in MI300X entry as a new user entry ``test-chip``, with nested changes.

    Keys are dotted paths (``"memory.hbm_capacity"``); a value of ``None`` deletes.
    """
    data = yaml.safe_load((BUILTIN_DIR / "accelerators" / "mi300x.yaml").read_text())
    data["id"] = "test-chip"
    data.pop("default_server", None)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = data
        for p in parents:
            node = node[p]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return data


def bad(rc: int, out: str, err: str, source: Path | str) -> list[str]:
    """Common checks of a bad-input run; returns the stderr lines."""
    assert rc == 2, (rc, out, err)
    assert "Traceback" not in out + err
    assert out == "", "nothing may be written to stdout on bad input"
    lines = err.strip().splitlines()
    assert lines, "bad input must say what is wrong"
    for line in lines:
        assert line.startswith(f"{source}:"), line
    return lines


def line_for(lines: list[str], source: Path | str, field: str) -> str:
    """The one line about ``field`` (dotted path) of ``source``."""
    head = f"{source}: {field}"
    found = [ln for ln in lines if ln.startswith(head + " = ") or ln.startswith(head + ": ")]
    assert len(found) == 1, (field, lines)
    return found[0]


# --- whole-file problems --------------------------------------------------------------


def test_malformed_yaml_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "s.yaml", "name: x\nserver: [nf5698g7\nservers: 1\n")
    lines = bad(*run(capsys, "check", path), path)
    assert len(lines) == 1
    assert "malformed YAML at line 3" in lines[0]


def test_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "s.yaml", "")
    (line,) = bad(*run(capsys, "check", path), path)
    assert "empty" in line
    assert "mapping" in line


def test_comment_only_file_is_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "s.yaml", "# nothing here\n")
    (line,) = bad(*run(capsys, "topology", path), path)
    assert "empty" in line


def test_top_level_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "s.yaml", "- name: x\n- server: nf5698g7\n")
    (line,) = bad(*run(capsys, "check", path), path)
    assert "expected a YAML mapping" in line
    assert "list" in line


def test_top_level_scalar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "s.yaml", "just a string\n")
    (line,) = bad(*run(capsys, "check", path), path)
    assert "expected a YAML mapping" in line


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nope.yaml"
    (line,) = bad(*run(capsys, "check", path), path)
    assert "file not found" in line


def test_directory_instead_of_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (line,) = bad(*run(capsys, "topology", tmp_path), tmp_path)
    assert "directory" in line
    assert "YAML file" in line


def test_file_name_too_long(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / ("a" * 300 + ".yaml")
    (line,) = bad(*run(capsys, "check", path), path)
    assert "cannot read" in line or "not found" in line


def test_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    (line,) = bad(*run(capsys, "check", path), path)
    assert "cannot read" in line


def test_duplicate_yaml_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "s.yaml",
                 "name: x\nserver: nf5698g7\naccelerator: mi300x\nservers: 1\nservers: 2\n")
    (line,) = bad(*run(capsys, "check", path), path)
    assert "duplicate key 'servers'" in line
    assert "line 5" in line


def test_unhashable_yaml_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "s.yaml", "? [a, b]\n: 1\nname: x\n")
    (line,) = bad(*run(capsys, "check", path), path)
    assert "malformed YAML at line 1" in line
    assert "key" in line


def test_non_string_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "s.yaml",
                 "name: x\nserver: nf5698g7\naccelerator: mi300x\nservers: 1\n7: 1\n")
    lines = bad(*run(capsys, "check", path), path)
    line = line_for(lines, path, "7")
    assert "string" in line


# --- fields of a system file -----------------------------------------------------------


def test_unknown_field_suggests_the_right_one(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path, accelerator=None, accelerater="mi300x")
    lines = bad(*run(capsys, "check", path), path)
    line = line_for(lines, path, "accelerater")
    assert "= 'mi300x'" in line
    assert "unknown field" in line
    assert "did you mean 'accelerator'" in line


def test_unknown_nested_field_lists_allowed(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path, rack={"servers_per_rack": 2, "power_limit": "40 kW", "hight": 4})
    lines = bad(*run(capsys, "check", path), path)
    line = line_for(lines, path, "rack.hight")
    assert "= 4" in line
    assert "servers_per_rack" in line  # says which fields are allowed
    assert "power_limit" in line


def test_unknown_field_with_odd_characters(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "s.yaml", yaml.safe_dump({**GOOD_SYSTEM, "a[b": 1, "x\ny": 2}))
    lines = bad(*run(capsys, "check", path), path)
    assert len(lines) == 2
    line_for(lines, path, "a[b")
    line_for(lines, path, "'x\\ny'")


def test_missing_required_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path, servers=None)
    (line,) = bad(*run(capsys, "check", path), path)
    assert line.startswith(f"{path}: servers: ")
    assert "required field is missing" in line


def test_missing_nested_required_field(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path, scale_out={"nics_per_server": 8})
    (line,) = bad(*run(capsys, "check", path), path)
    assert line.startswith(f"{path}: scale_out.fabric: ")
    assert "required" in line


@pytest.mark.parametrize(("value", "shown"), [("four", "'four'"), (2.5, "2.5"), (True, "True")])
def test_wrong_type_for_integer(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                value: object, shown: str) -> None:
    path = system(tmp_path, servers=value)
    (line,) = bad(*run(capsys, "check", path), path)
    assert line.startswith(f"{path}: servers = {shown}: ")
    assert "integer" in line
    assert "1" in line.split(": ")[-1]  # names the allowed range


def test_integer_out_of_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path, servers=0)
    (line,) = bad(*run(capsys, "check", path), path)
    assert line.startswith(f"{path}: servers = 0: ")
    assert "at least 1" in line


def test_zero_nics_per_server_is_bad_input(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """QA E: ``nics_per_server: 0`` on a Gaudi system gave the warning "... 37.5 GB/s per
    chip instead of 37.5 GB/s"; 0 NICs is refused, saying what leaving it out does."""
    path = system(tmp_path, server="mx1", accelerator="gaudi", servers=1,
                  scale_out={"fabric": "roce-400g", "nics_per_server": 0})
    (line,) = bad(*run(capsys, "check", path), path)
    assert line == (f"{path}: scale_out.nics_per_server = 0: must be at least 1 (and at "
                    "most 1024); leave nics_per_server out to use the server's NICs or the "
                    "chip's integrated ports")


def test_mapping_expected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path, scale_out="roce-400g")
    (line,) = bad(*run(capsys, "check", path), path)
    assert line.startswith(f"{path}: scale_out = 'roce-400g': ")
    assert "mapping" in line
    assert "fabric" in line


def test_list_expected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path, server="tpu-v4-pod", accelerator="tpu-v4", scale_out=None,
                  slice_dims="4x4x4")
    (line,) = bad(*run(capsys, "check", path), path)
    assert line.startswith(f"{path}: slice_dims = '4x4x4': ")
    assert "list" in line


def test_invalid_enum_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path, cooling="water")
    (line,) = bad(*run(capsys, "check", path), path)
    assert line.startswith(f"{path}: cooling = 'water': ")
    assert "'air'" in line
    assert "'liquid'" in line


def test_invalid_id_pattern(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path, server="NF5698G7")
    (line,) = bad(*run(capsys, "check", path), path)
    assert line.startswith(f"{path}: server = 'NF5698G7': ")
    assert "lower-case" in line or "pattern" in line


def test_unknown_server_id_suggests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path, server="nf5698g8")
    (line,) = bad(*run(capsys, "check", path), path)
    assert line.startswith(f"{path}: server = 'nf5698g8': unknown server id")
    assert "did you mean 'nf5698g7'" in line
    assert "catalog list --kind server" in line


def test_unknown_accelerator_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path, accelerator="mi300z")
    (line,) = bad(*run(capsys, "topology", path), path)
    assert line.startswith(f"{path}: accelerator = 'mi300z': unknown accelerator id")
    assert "'mi300x'" in line


def test_unknown_fabric_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path, scale_out={"fabric": "roce-401g"})
    (line,) = bad(*run(capsys, "check", path), path)
    assert line.startswith(f"{path}: scale_out.fabric = 'roce-401g': unknown fabric id")
    assert "'roce-400g'" in line


def test_unknown_nic_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path, scale_out={"fabric": "roce-400g", "nic": "connectx-9"})
    (line,) = bad(*run(capsys, "check", path), path)
    assert line.startswith(f"{path}: scale_out.nic = 'connectx-9': unknown nic id")


def test_server_without_accelerator(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path, accelerator=None)
    (line,) = bad(*run(capsys, "check", path), path)
    assert line.startswith(f"{path}: accelerator: ")
    assert "name the accelerator" in line


def test_bare_number_where_unit_required(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path, rack={"servers_per_rack": 2, "power_limit": 80})
    (line,) = bad(*run(capsys, "check", path), path)
    assert line.startswith(f"{path}: rack.power_limit = 80: ")
    assert "missing unit" in line
    assert "700 W" in line


def test_wrong_unit_dimension(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path, rack={"servers_per_rack": 2, "power_limit": "80 GB/s"})
    (line,) = bad(*run(capsys, "check", path), path)
    assert line.startswith(f"{path}: rack.power_limit = '80 GB/s': ")
    assert "not power" in line


def test_negative_quantity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path, rack={"servers_per_rack": 2, "power_limit": "-700 W"})
    (line,) = bad(*run(capsys, "check", path), path)
    assert line.startswith(f"{path}: rack.power_limit = '-700 W': ")
    assert "at least 1 mW" in line


def test_absurd_quantity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path, rack={"servers_per_rack": 2, "power_limit": "80 PW"})
    (line,) = bad(*run(capsys, "check", path), path)
    assert line.startswith(f"{path}: rack.power_limit = '80 PW': ")
    assert "at most 10 MW" in line


def test_infinite_quantity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path, rack={"servers_per_rack": 2, "power_limit": "1e999 W"})
    (line,) = bad(*run(capsys, "check", path), path)
    assert line.startswith(f"{path}: rack.power_limit = '1e999 W': ")
    assert "finite" in line


def test_nan_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "s.yaml", yaml.safe_dump(GOOD_SYSTEM) + "facility: {pue: .nan}\n")
    (line,) = bad(*run(capsys, "check", path), path)
    assert line.startswith(f"{path}: facility.pue = nan: ")
    assert "1" in line
    assert "3" in line


def test_value_is_echoed_verbatim(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path, servers=":smile: [bold]x[/bold]")
    (line,) = bad(*run(capsys, "check", path), path)
    assert line.startswith(f"{path}: servers = ':smile: [bold]x[/bold]': expected an integer")


def test_control_characters_stay_escaped(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path, rack={"servers_per_rack": 2, "power_limit": "80 k\x07W"})
    (line,) = bad(*run(capsys, "check", path), path)
    assert "\x07" not in line
    assert line.startswith(f"{path}: rack.power_limit = '80 k\\x07W': unit 'k\\x07W' is not "
                           "power")


def test_slice_dims_on_non_torus_board(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path, slice_dims=[2, 4])
    (line,) = bad(*run(capsys, "topology", path), path)
    assert line.startswith(f"{path}: slice_dims = [2, 4]: ")
    assert "only for torus boards" in line


def test_all_problems_in_one_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "s.yaml", "\n".join([
        "name: many problems",
        "server: nf5698g7",
        "accelerator: mi300x",
        "servers: 0",
        "cooling: water",
        "colour: blue",
        "rack: {servers_per_rack: 4, power_limit: 80}",
        "scale_out: {fabric: roce-400g, nics_per_server: -1}",
        "facility: {pue: 9}",
    ]) + "\n")
    lines = bad(*run(capsys, "check", path), path)
    assert len(lines) == 6, lines
    assert "at least 1" in line_for(lines, path, "servers")
    assert "'air'" in line_for(lines, path, "cooling")
    assert "unknown field" in line_for(lines, path, "colour")
    assert "missing unit" in line_for(lines, path, "rack.power_limit")
    assert "at least 1" in line_for(lines, path, "scale_out.nics_per_server")
    assert "at most 3" in line_for(lines, path, "facility.pue")


def test_all_unknown_ids_in_one_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path, accelerator="mi300z", scale_out={"fabric": "roce-401g",
                                                             "nic": "cx7"})
    lines = bad(*run(capsys, "check", path), path)
    assert len(lines) == 3
    line_for(lines, path, "accelerator")
    line_for(lines, path, "scale_out.fabric")
    line_for(lines, path, "scale_out.nic")


# --- user catalog entries ----------------------------------------------------------------


def catalog_run(capsys: pytest.CaptureFixture[str], folder: Path,
                *argv: str) -> tuple[int, str, str]:
    return run(capsys, "--catalog", str(folder), *(argv or ("catalog", "list")))


@pytest.mark.parametrize(
    ("field", "value", "shown", "expect"),
    [
        ("memory.hbm_capacity", 80, "80", "missing unit"),
        ("memory.hbm_capacity", "80 GB/s", "'80 GB/s'", "is not size"),
        ("memory.hbm_capacity", "80 PB", "'80 PB'", "at most 1 PB"),
        ("memory.hbm_capacity", "0 GB", "'0 GB'", "at least 1 B"),
        ("power.tdp", "-700 W", "'-700 W'", "at least 1 mW"),
        ("scale_up.lane_rate", "900 Tb/s", "'900 Tb/s'", "at most 10 Tb/s"),
        ("scale_up.port_bandwidth", "9000 Tb/s", "'9000 Tb/s'", "at most 1 PB/s"),
        ("scale_up.ports", "7", "'7'", "integer"),
        ("launch_year", 1999, "1999", "at least 2010"),
        ("form_factor", "sodimm", "'sodimm'", "'oam'"),
        ("host.kind", "usb", "'usb'", "'pcie'"),
    ],
)
def test_catalog_entry_bad_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 field: str, value: object, shown: str, expect: str) -> None:
    path = write_yaml(tmp_path / "cat" / "chip.yaml", accelerator_entry(**{field: value}))
    lines = bad(*catalog_run(capsys, tmp_path / "cat"), path)
    line = line_for(lines, path, field)
    assert line.startswith(f"{path}: {field} = {shown}: "), line
    assert expect in line


def test_catalog_entry_unknown_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_yaml(tmp_path / "cat" / "chip.yaml",
                      accelerator_entry(**{"memory.hbm_capacty": "80 GB"}))
    lines = bad(*catalog_run(capsys, tmp_path / "cat"), path)
    line = line_for(lines, path, "memory.hbm_capacty")
    assert "did you mean 'hbm_capacity'" in line


def test_catalog_entry_wrong_cooling_item(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = write_yaml(tmp_path / "cat" / "chip.yaml", accelerator_entry(cooling=["water"]))
    (line,) = bad(*catalog_run(capsys, tmp_path / "cat"), path)
    assert line.startswith(f"{path}: cooling[0] = 'water': ")
    assert "'air'" in line


def test_catalog_entry_empty_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_yaml(tmp_path / "cat" / "chip.yaml", accelerator_entry(sources=[]))
    (line,) = bad(*catalog_run(capsys, tmp_path / "cat"), path)
    assert line.startswith(f"{path}: sources")
    assert "at least 1" in line


def test_catalog_entry_missing_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_yaml(tmp_path / "cat" / "chip.yaml", accelerator_entry(kind=None))
    (line,) = bad(*catalog_run(capsys, tmp_path / "cat"), path)
    assert line.startswith(f"{path}: kind: ")
    assert "missing" in line
    assert "accelerator" in line


def test_catalog_entry_unknown_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_yaml(tmp_path / "cat" / "chip.yaml", accelerator_entry(kind="gpu"))
    (line,) = bad(*catalog_run(capsys, tmp_path / "cat"), path)
    assert line.startswith(f"{path}: kind = 'gpu': ")
    assert "'accelerator'" in line


def test_catalog_entry_model_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_yaml(tmp_path / "cat" / "chip.yaml", accelerator_entry(oam_version=None))
    (line,) = bad(*catalog_run(capsys, tmp_path / "cat"), path)
    assert "oam_version" in line
    assert "1.5" in line


def test_catalog_dangling_reference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_yaml(tmp_path / "cat" / "chip.yaml",
                      accelerator_entry(default_server="nf5698g8"))
    (line,) = bad(*catalog_run(capsys, tmp_path / "cat"), path)
    assert line.startswith(f"{path}: default_server = 'nf5698g8': unknown server id")
    assert "'nf5698g7'" in line


def test_duplicate_id_across_user_folders(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    first = write_yaml(tmp_path / "a" / "chip.yaml", accelerator_entry())
    second = write_yaml(tmp_path / "b" / "chip.yaml", accelerator_entry())
    rc, out, err = run(capsys, "--catalog", tmp_path / "a", "--catalog", tmp_path / "b",
                       "catalog", "list")
    (line,) = bad(rc, out, err, second)
    assert line.startswith(f"{second}: id = 'test-chip': duplicate")
    assert str(first) in line


def test_duplicate_of_builtin_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_yaml(tmp_path / "cat" / "chip.yaml", accelerator_entry(id="mi300x"))
    (line,) = bad(*catalog_run(capsys, tmp_path / "cat"), path)
    assert "duplicate" in line
    assert str(BUILTIN_DIR / "accelerators" / "mi300x.yaml") in line


def test_catalog_folder_not_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "missing"
    (line,) = bad(*catalog_run(capsys, folder), folder.resolve())
    assert "catalog folder not found" in line


def test_every_bad_catalog_file_reported(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    one = write_yaml(tmp_path / "cat" / "one.yaml", accelerator_entry(id="chip-one", sources=[]))
    two = write(tmp_path / "cat" / "two.yaml", "kind: [\n")
    rc, out, err = catalog_run(capsys, tmp_path / "cat")
    assert rc == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 2
    assert any(ln.startswith(f"{one}: sources") for ln in lines)
    assert any(ln.startswith(f"{two}: malformed YAML") for ln in lines)


# --- command-line arguments ----------------------------------------------------------------


def test_unknown_kind_flag(capsys: pytest.CaptureFixture[str]) -> None:
    (line,) = bad(*run(capsys, "catalog", "list", "--kind", "gpu"), "--kind")
    assert line.startswith("--kind: kind = 'gpu': ")
    assert "accelerator" in line
    assert "server" in line


def test_unknown_id_in_catalog_show(capsys: pytest.CaptureFixture[str]) -> None:
    (line,) = bad(*run(capsys, "catalog", "show", "mi300z"), "argument")
    assert "= 'mi300z'" in line
    assert "did you mean 'mi300x'" in line


def test_bad_format_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = system(tmp_path)
    rc, out, err = run(capsys, "check", path, "--format", "xml")
    assert rc == 2
    assert "Traceback" not in out + err
    assert "xml" in err
    assert "table" in err


# --- as a real process: nothing but the problem lines reaches stderr ---------------------------


def _process(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OCPLAN_CATALOG"}
    return subprocess.run([sys.executable, "-m", "ocplan.cli.main", *map(str, argv)],
                          capture_output=True, text=True, timeout=120, env=env, check=False)


def test_process_malformed_yaml(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "? [a, b]\n: 1\nname: x\n")
    proc = _process("check", path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"{path}: malformed YAML at line 1, column 3: a mapping key must be a plain value, "
        "not a list"]


def test_process_several_problems(tmp_path: Path) -> None:
    path = system(tmp_path, servers=0, cooling="water")
    proc = _process("topology", path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        f"{path}: servers = 0: must be at least 1 and at most 1,048,576",
        f"{path}: cooling = 'water': not allowed; expected one of 'air' or 'liquid'",
    ]


def test_process_unknown_server(tmp_path: Path) -> None:
    path = system(tmp_path, server="nf5698g8")
    proc = _process("check", path, "--format", "json")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    # --format json: stdout is one JSON document naming the same problem
    (problem,) = json.loads(proc.stdout)["error"]["problems"]
    assert (problem["field"], problem["value"], problem["message"]) == ("server", "nf5698g8",
                                                                        line)
    assert line.startswith(f"{path}: server = 'nf5698g8': unknown server id; did you mean")


@pytest.mark.parametrize(("value", "shown", "first"), [
    ("lots", "'lots'", "valid integer"), (0, "0", "greater than or equal to 1")])
def test_a_union_field_fails_on_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         value: object, shown: str, first: str) -> None:
    """``chips_per_rack`` is an integer or 'unpublished': a bad value fails both forms,
    and the user reads one line naming the field (no pydantic branch tag) with both."""
    server = yaml.safe_load((CATALOG_SERVERS / "tpu-v5e-pod.yaml").read_text("utf-8"))
    server.update(id="tpu-v5e-pod-custom", chips_per_rack=value)
    path = write_yaml(tmp_path / "cat" / "pod.yaml", server)
    (line,) = bad(*catalog_run(capsys, tmp_path / "cat"), path)
    assert line.startswith(f"{path}: chips_per_rack = {shown}: "), line
    assert first in line
    assert "or one of 'unpublished'" in line
