"""CPU catalog against the CPU validation set, and the compute-module rules.

The validation set (``shared/validation/cpu_dev.csv``) carries each CPU's vendor figures
from its own sources; the catalog entries were written from those sources, so any
difference is a transcription error on one side. The module rules are checked on
modules built to break exactly one rule each, with closed-form bandwidth, lane and power
figures computed here by hand.
"""

from __future__ import annotations

import copy
import csv
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from ocplan.catalog import catalog as catalog_module
from ocplan.catalog.catalog import Catalog, load_catalog
from ocplan.catalog.schema import ComputeModule, Cpu, Entry
from ocplan.checks.module_rules import (
    module_findings,
    module_lanes,
    module_memory,
    module_memory_bandwidth_Bps,
    module_power,
)
from ocplan.errors import SpecError

CPU_CSV = Path("/work/shared/validation/cpu_dev.csv")
needs_csv = pytest.mark.skipif(not CPU_CSV.exists(), reason="validation set not present")
GHZ = 1e9


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("OCPLAN_CATALOG", raising=False)
    yield
    catalog_module._cached.cache_clear()


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return load_catalog(use_env=False)


def _csv_by_cpu() -> dict[str, list[dict[str, str]]]:
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    if CPU_CSV.exists():
        with CPU_CSV.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                rows[row["cpu"]].append(row)
    return rows


CSV_ROWS = _csv_by_cpu()


def _cpu(cat: Catalog, cpu_id: str) -> Cpu:
    return cat.get(Cpu, cpu_id)


# ---- the catalog matches the validation set --------------------------------------------


@needs_csv
def test_every_validation_cpu_is_in_the_catalog(cat: Catalog) -> None:
    assert len(CSV_ROWS) == 34
    assert sorted(set(CSV_ROWS) - set(cat.ids("cpu"))) == []


def _one(rows: list[dict[str, str]], column: str) -> str:
    values = {r[column] for r in rows}
    assert len(values) == 1, f"{column} differs between rows: {values}"
    return values.pop()


def _same(value: float | None, text: str, scale: float = 1.0) -> bool:
    """The catalog value equals the CSV cell; an empty cell (not published) must be absent."""
    if text == "":
        return value is None
    return value is not None and abs(value / scale - float(text)) < 1e-9 * float(text)


@needs_csv
@pytest.mark.parametrize("cpu_id", sorted(CSV_ROWS))
def test_cpu_figures_equal_the_validation_set(cpu_id: str, cat: Catalog) -> None:
    cpu, rows = _cpu(cat, cpu_id), CSV_ROWS[cpu_id]
    assert cpu.vendor == _one(rows, "vendor")
    assert cpu.family == _one(rows, "family")
    assert cpu.isa == _one(rows, "isa")
    assert cpu.cores == int(_one(rows, "cores_per_socket"))
    # Rate runs use every hardware thread; the most threads per core any row ran is the CPU's.
    tested = [int(r["threads_per_core"]) for r in rows if r["threads_per_core"]]
    if tested:
        assert cpu.threads // cpu.cores == max(tested)
    assert _same(cpu.base_clock, _one(rows, "base_ghz"), GHZ)
    assert _same(cpu.boost_clock, _one(rows, "max_boost_ghz"), GHZ)
    assert _same(cpu.tdp, _one(rows, "tdp_w"))
    channels = _one(rows, "memory_channels_per_socket")
    assert _same(None if cpu.memory_channels is None else float(cpu.memory_channels), channels)
    kind = _one(rows, "boost_kind")
    all_core = _one(rows, "boost_ghz") if kind == "all_core" else ""
    assert _same(cpu.all_core_clock, all_core, GHZ)


@needs_csv
def test_tested_memory_speeds_are_within_what_the_cpu_supports(cat: Catalog) -> None:
    # The set's own rule: memory as tested never runs faster than the CPU allows (DDR5
    # above 6400 is MRDIMM; the README's one clamped row used the CPU's limit).
    for cpu_id, rows in CSV_ROWS.items():
        cpu = _cpu(cat, cpu_id)
        for r in rows:
            if not r["memory_mts"] or r["memory_type"] == "LPDDR5X":
                continue
            limit = cpu.memory_mts_mrdimm if r["memory_type"] == "MRDIMM" else cpu.memory_mts
            if limit is None:
                continue  # not published (ZXIC); nothing to compare with
            # Turin runs DDR5-6400 on qualified platforms, above the 6000 of the AMD page.
            slack = 400 if cpu.family in ("zen5", "zen5c") else 0
            assert int(r["memory_mts"]) <= limit + slack, (cpu_id, r["case_id"])


# ---- every number has a source, nothing unknown is filled in ---------------------------


def _has_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if isinstance(value, dict):
        return any(_has_number(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_number(v) for v in value)
    return False


def _uncovered(entry: Entry) -> list[str]:
    covered = {f for src in entry.sources for f in src.covers}
    written = entry.model_dump(exclude={"sources"}, exclude_unset=True)
    return sorted(k for k, v in written.items()
                  if _has_number(v) and k not in covered and "*" not in covered)


@pytest.mark.parametrize("kind", ["cpu", "compute-module"])
def test_every_number_is_covered_by_a_named_source(kind: str, cat: Catalog) -> None:
    entries = cat.all(kind)
    assert entries
    assert {e.id: _uncovered(e) for e in entries if _uncovered(e)} == {}
    fields_of = {e.id: set(type(e).model_fields) for e in entries}
    typos = {e.id: sorted({c for s in e.sources for c in s.covers} - fields_of[e.id] - {"*"})
             for e in entries}
    assert {k: v for k, v in typos.items() if v} == {}
    # A catch-all source would hide which document backs which number.
    assert [e.id for e in entries if any("*" in s.covers for s in e.sources)] == []


def test_every_catalog_cpu_names_its_family_and_memory_speed(cat: Catalog) -> None:
    cpus = [e for e in cat.all("cpu") if isinstance(e, Cpu)]
    assert len(cpus) >= 42
    assert [c.id for c in cpus if c.family is None] == []
    # A DDR CPU with a published channel count and bandwidth states its speed, and the three
    # agree (the schema's check); LPDDR/unknown parts say why in notes instead.
    for c in cpus:
        if c.memory_type and c.memory_type.startswith("DDR") and c.memory_channels:
            assert c.memory_mts is not None, c.id
        if c.memory_mts is None:
            assert c.notes, c.id


def test_two_dimm_per_channel_speeds_form_one_table_per_family(cat: Catalog) -> None:
    # The derate is a property of the memory controller, so every CPU of a family that
    # publishes it must publish the same 1DPC -> 2DPC pair.
    pairs: dict[str, set[tuple[int | None, int]]] = defaultdict(set)
    for c in cat.all("cpu"):
        assert isinstance(c, Cpu)
        if c.memory_mts_2dpc is not None:
            assert c.family is not None
            pairs[c.family].add((c.memory_mts, c.memory_mts_2dpc))
    assert dict(pairs) == {
        "ice-lake-sp": {(3200, 3200)},  # no drop at 2DPC (WWT)
        "sapphire-rapids": {(4800, 4400)},  # ARK
        "granite-rapids": {(6400, 5200)},  # Xeon 6700P/6500P platform (cnews.cz)
    }


def _cpu_data(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": "cpu", "id": "t-cpu", "name": "Test CPU", "vendor": "Test", "codename": "T",
        "family": "zen4", "isa": "x86-64", "cores": 64, "threads": 128, "base_clock": "2 GHz",
        "memory_channels": 12, "memory_type": "DDR5-4800", "memory_mts": 4800,
        "memory_bandwidth": "460.8 GB/s", "pcie_lanes": 128, "pcie_gen": 5,
        "sources": [{"title": "ocplan test fixture", "covers": ["*"]}],
    }
    data.update(extra)
    return data


def test_memory_bandwidth_must_match_channels_times_speed() -> None:
    Cpu.model_validate(_cpu_data())  # 12 x 4800 MT/s x 8 B = 460.8 GB/s
    Cpu.model_validate(_cpu_data(memory_bandwidth="463 GB/s"))  # within 1 %
    with pytest.raises(ValidationError, match="memory_bandwidth"):
        Cpu.model_validate(_cpu_data(memory_bandwidth="470 GB/s"))  # 2 % off
    with pytest.raises(ValidationError, match="memory_mts_2dpc"):
        Cpu.model_validate(_cpu_data(memory_mts_2dpc=5200))  # faster than 1DPC
    with pytest.raises(ValidationError, match="threads"):
        Cpu.model_validate(_cpu_data(threads=100))
    with pytest.raises(ValidationError, match="all_core_clock"):
        Cpu.model_validate(_cpu_data(all_core_clock="1.9 GHz", boost_clock="3 GHz"))


def _write(folder: Path, name: str, entry: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(entry), encoding="utf-8")
    return path


@pytest.mark.parametrize(("kind", "field", "value", "allowed"), [
    ("cpu", "max_sockets", 3, "1, 2, 4 or 8"),
    ("cpu", "memory_mts", 48000, "at most 12,800"),
    ("compute-module", "memory.module_type", "sodimm", "'rdimm'"),
    ("compute-module", "sockets", 0, "at least 1"),
])
def test_bad_yaml_names_file_field_value_and_allowed(tmp_path: Path, kind: str, field: str,
                                                     value: object, allowed: str) -> None:
    entry = _cpu_data() if kind == "cpu" else _module_data()
    entry["id"] = "t-bad"
    target: dict[str, Any] = entry
    *parents, leaf = field.split(".")
    for part in parents:
        target = target[part]
    target[leaf] = value
    path = _write(tmp_path / "cat", "t-bad.yaml", entry)
    with pytest.raises(SpecError) as info:
        load_catalog([tmp_path / "cat"], use_env=False)
    [problem] = [p for p in info.value.problems if p.source == str(path)]
    assert problem.field == field
    assert problem.value == value
    assert allowed in problem.message


def test_module_naming_an_unknown_cpu_is_a_spec_error(tmp_path: Path) -> None:
    entry = _module_data(cpu="epyc-965")
    path = _write(tmp_path / "cat", "t-mod.yaml", entry)
    with pytest.raises(SpecError) as info:
        load_catalog([tmp_path / "cat"], use_env=False)
    [problem] = info.value.problems
    assert (problem.source, problem.field, problem.value) == (str(path), "cpu", "epyc-965")
    assert "epyc-9654" in problem.message  # the "did you mean" suggestion


# ---- compute modules ---------------------------------------------------------------------


def _module_data(**extra: Any) -> dict[str, Any]:
    """A 2S EPYC 9654 module that passes every rule: 128 lanes exported of 2 x (128 - 64),
    demand 2 x 360 + 24 x 12 + 150 = 1158 W within 1158 W."""
    data: dict[str, Any] = {
        "kind": "compute-module", "id": "t-mod", "name": "Test module", "vendor": "Test",
        "form_factor": "dc-mhs-m-flw", "illustrative": True, "cpu": "epyc-9654", "sockets": 2,
        "memory": {"slots_per_channel": 2, "dimms_per_channel": 1, "module_type": "rdimm",
                   "capacity": "64 GB", "rated_mts": 4800, "dimm_power": "12 W"},
        "io": [{"kind": "pcie", "gen": 5, "lanes": 96}, {"kind": "cxl", "gen": 5, "lanes": 32}],
        "management": [{"kind": "dc-scm", "count": 1, "interface": "DC-SCI"}],
        "power_budget": "1158 W", "other_power": "150 W",
        "sources": [{"title": "ocplan test fixture", "covers": ["*"]}],
    }
    data.update(extra)
    return data


def _module(**changes: Any) -> ComputeModule:
    data = _module_data()
    for dotted, value in changes.items():
        target = data
        *parents, leaf = dotted.split("__")
        for part in parents:
            target = target[part]
        target[leaf] = copy.deepcopy(value)
    return ComputeModule.model_validate(data)


def _rules(module: ComputeModule, cat: Catalog, severity: str = "error") -> list[str]:
    return [f.rule for f in module_findings(module, cat) if f.severity == severity]


def test_catalog_modules_pass_and_cover_every_isa_family(cat: Catalog) -> None:
    modules = [m for m in cat.all("compute-module") if isinstance(m, ComputeModule)]
    assert len(modules) >= 6
    vendors = {_cpu(cat, m.cpu).vendor for m in modules}
    assert {"AMD", "Intel", "Ampere", "NVIDIA", "Huawei/HiSilicon"} <= vendors
    for m in modules:
        assert _rules(m, cat) == [], m.id
        assert m.illustrative, m.id
        assert "Illustrative" in (m.notes or ""), m.id
    complete = [m for m in modules if m.cpu != "xeon-6787p"]  # 6787P: scalability unknown
    assert {m.id: _rules(m, cat, "warning") for m in complete if _rules(m, cat, "warning")} == {}


def test_the_fixture_module_passes_every_rule(cat: Catalog) -> None:
    assert module_findings(_module(), cat) == []


@pytest.mark.parametrize(("changes", "rule"), [
    ({"cpu": "epyc-9654p"}, "MODULE-SOCKETS"),  # a 1P-only SKU in two sockets
    # (more DIMMs draw more power: the budget is raised so that only the memory rule fires)
    ({"memory__channels": 13, "power_budget": "2 kW"}, "MODULE-MEM-CHANNELS"),
    ({"memory__dimms_per_channel": 2, "memory__slots_per_channel": 1, "power_budget": "2 kW"},
     "MODULE-MEM-SLOTS"),
    ({"memory__slots_per_channel": 3, "memory__dimms_per_channel": 3, "power_budget": "2 kW"},
     "MODULE-MEM-SLOTS"),
    ({"memory__module_type": "mrdimm"}, "MODULE-MEM-TYPE"),
    ({"io": [{"kind": "pcie", "gen": 5, "lanes": 129}]}, "MODULE-LANES"),
    ({"io": [{"kind": "pcie", "gen": 6, "lanes": 16}]}, "MODULE-LANES-GEN"),
    ({"io": [{"kind": "cxl", "gen": 5, "lanes": 129}], "socket_link_lanes": 0}, "MODULE-CXL"),
    ({"cpu": "epyc-7742", "io": [{"kind": "cxl", "gen": 4, "lanes": 16}],
      "memory__rated_mts": 3200}, "MODULE-CXL"),
    ({"power_budget": "1157 W"}, "MODULE-POWER"),
    ({"management": []}, "MODULE-MGMT"),
    ({"management": [{"kind": "dc-scm"}, {"kind": "onboard-bmc"}]}, "MODULE-MGMT"),
])
def test_each_rule_fires_on_a_module_built_to_break_it(changes: dict[str, Any], rule: str,
                                                       cat: Catalog) -> None:
    assert _rules(_module(**changes), cat) == [rule]


@pytest.mark.parametrize(("changes", "rule"), [
    ({"cpu": "xeon-6787p", "memory__rated_mts": 6400, "socket_link_lanes": None,
      "io": [{"kind": "pcie", "gen": 5, "lanes": 176}]}, "MODULE-SOCKETS"),
    ({"memory__dimms_per_channel": 2, "power_budget": "2 kW"},
     "MODULE-MEM-SPEED"),  # Genoa: 2DPC speed unpublished
    ({"cpu": "kunpeng-920-7260", "memory__rated_mts": 2933, "io": [], "power_budget": "800 W"},
     "MODULE-LANES"),  # lanes Kunpeng gives to socket links are unpublished
    ({"cpu": "ampereone-a192-32x", "sockets": 1, "memory__rated_mts": 5200,
      "io": [{"kind": "pcie", "gen": 5, "lanes": 128}]}, "MODULE-POWER"),  # no published TDP
])
def test_unpublished_limits_warn_instead_of_guessing(changes: dict[str, Any], rule: str,
                                                     cat: Catalog) -> None:
    module = _module(**changes)
    assert _rules(module, cat) == []
    assert rule in _rules(module, cat, "warning")


def test_power_boundary_and_breakdown(cat: Catalog) -> None:
    power = module_power(_module(), cat)
    assert (power.cpu_W, power.dimm_W, power.other_W) == (720.0, 288.0, 150.0)
    assert power.demand_W == power.budget_W == 1158.0
    assert power.dominant == "cpu"
    assert _rules(_module(power_budget="1158 W"), cat) == []  # equal to demand passes


def test_lanes_lost_to_socket_links(cat: Catalog) -> None:
    assert module_lanes(_module(), cat).available == 2 * (128 - 64)
    three_links = _module(socket_link_lanes=48, io=[{"kind": "pcie", "gen": 5, "lanes": 160}])
    assert module_lanes(three_links, cat).available == 160
    assert _rules(three_links, cat) == []
    one_socket = _module(sockets=1, io=[{"kind": "pcie", "gen": 5, "lanes": 128}])
    assert module_lanes(one_socket, cat).available == 128  # no links in one socket
    intel = _module(cpu="xeon-platinum-8480p", memory__rated_mts=4800,
                    io=[{"kind": "pcie", "gen": 5, "lanes": 160}])
    assert module_lanes(intel, cat).available == 2 * 80  # UPI takes no PCIe lanes


def test_memory_bandwidth_closed_forms(cat: Catalog) -> None:
    byte = 8  # a 64-bit DDR channel moves 8 B per transfer
    assert module_memory_bandwidth_Bps(_module(), cat) == 2 * 12 * 4800e6 * byte
    # Sapphire Rapids: 4400 MT/s at two DIMMs per channel (ARK), an info finding.
    spr = _module(cpu="xeon-platinum-8480p", memory__dimms_per_channel=2,
                  io=[{"kind": "pcie", "gen": 5, "lanes": 160}])
    bw = module_memory(spr, cat)
    assert (bw.effective_mts, bw.limited_by, bw.upper_bound) == (4400, "cpu-2dpc", False)
    assert bw.bandwidth_Bps == 2 * 8 * 4400e6 * byte
    assert _rules(spr, cat, "info") == ["MODULE-MEM-SPEED"]
    one_dpc = _module(cpu="xeon-platinum-8480p", io=[{"kind": "pcie", "gen": 5, "lanes": 160}])
    assert module_memory_bandwidth_Bps(one_dpc, cat) / bw.bandwidth_Bps == pytest.approx(
        4800 / 4400)
    # Slower DIMMs set the speed; fewer channels scale it down linearly.
    slow = module_memory(_module(memory__rated_mts=4400, memory__channels=8), cat)
    assert (slow.effective_mts, slow.limited_by) == (4400, "dimm-rating")
    assert slow.bandwidth_Bps == 2 * 8 * 4400e6 * byte
    # Genoa's 2DPC speed is not published: the 1DPC speed is used and flagged.
    genoa_2dpc = module_memory(_module(memory__dimms_per_channel=2), cat)
    assert genoa_2dpc.upper_bound
    assert genoa_2dpc.effective_mts == 4800
    # MRDIMM-8800 on Granite Rapids-AP; soldered LPDDR5X uses NVIDIA's per-die figure.
    gnr = _module(cpu="xeon-6980p", memory__module_type="mrdimm", memory__rated_mts=8800,
                  io=[{"kind": "pcie", "gen": 5, "lanes": 192}])
    assert module_memory_bandwidth_Bps(gnr, cat) == 2 * 12 * 8800e6 * byte
    grace = cat.get(ComputeModule, "grace-superchip-module")
    assert module_memory_bandwidth_Bps(grace, cat) == 2 * 512e9


def test_catalog_module_bandwidths(cat: Catalog) -> None:
    expected = {  # sockets x channels x MT/s x 8 B, by hand from each file and its CPU
        "ocm-epyc-9654-2s-flw": 2 * 12 * 4800, "ocm-epyc-9755-1s-dno": 12 * 6000,
        "ocm-xeon-6980p-2s-flw": 2 * 12 * 8800, "ocm-xeon-6787p-2s-2dpc": 2 * 8 * 5200,
        "ocm-xeon-8480p-2s-2dpc": 2 * 8 * 4400, "ocm-altra-max-m128-1s": 8 * 3200,
        "ocm-kunpeng-920-1s": 8 * 2933,
    }
    for module_id, mts in expected.items():
        module = cat.get(ComputeModule, module_id)
        assert module_memory_bandwidth_Bps(module, cat) == pytest.approx(mts * 1e6 * 8)


def test_unknown_cpu_in_a_module_is_a_spec_error(cat: Catalog) -> None:
    with pytest.raises(SpecError) as info:
        module_findings(_module(cpu="epyc-965"), cat)
    assert info.value.problems[0].field == "cpu"
