"""QA of ``ocplan match``: every platform listed, slot sizing, per-kW names, the unpriced
ranking's columns and note, check warnings in the report, ``--top`` in JSON, 1-socket
generic modules, ``--list-archetypes`` and the reasons' wording."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from clikit import one_line, run, run_wide
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.schema import ComputeModule, Cpu
from ocplan.checks.finding import Finding
from ocplan.matching import ARCHETYPES, MatchRequest, catalog_platforms, match
from ocplan.matching.archetypes import CORES_PER_ACCELERATOR, LANES_PER_ACCELERATOR
from ocplan.matching.match import Capacity, Query
from ocplan.units import format_quantity

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cloud-mix.yaml"
ARM: dict[str, Any] = {"name": "arm", "demand": {"cloud-throughput": 20000},
                       "constraints": {"isa": ["arm64"]}, "prices": {"default": 25000}}
#: A small mix without prices: every fleet is a server or two, under 1 kW at load.
UNPRICED: dict[str, Any] = {"name": "unpriced", "demand": {"cloud-throughput": 100},
                            "electricity_per_kwh": 0.12}


def _json(capsys: pytest.CaptureFixture[str], tmp_path: Path, mix: dict[str, Any],
          *extra: str) -> dict[str, Any]:
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(mix), encoding="utf-8")
    rc, out, err = run(capsys, "match", "--workload", path, "-f", "json", *extra)
    assert rc == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def _report(capsys: pytest.CaptureFixture[str], tmp_path: Path, mix: dict[str, Any],
            *extra: str) -> str:
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(mix), encoding="utf-8")
    page = tmp_path / "match.html"
    rc, _, err = run(capsys, "match", "--workload", path, "--report", page, *extra)
    assert rc == 0, err
    return page.read_text(encoding="utf-8")


def _html_rows(page: str) -> list[list[str]]:
    """The cells of the report's first (ranked) table, header row first."""
    table = page[page.index("<table>"):page.index("</table>")]
    return [re.findall(r"<t[hd]>(.*?)</t[hd]>", row) for row in table.split("<tr>")[1:]]


def _figure(page: str) -> dict[str, Any]:
    data = page[page.index("const FIGURES = ") + len("const FIGURES = "):]
    figures: dict[str, dict[str, Any]] = json.loads(data[:data.index(";\n")])
    return figures["match"]


# ---- 1. every catalog platform is listed ---------------------------------------------------

def test_every_catalog_platform_is_listed_ranked_or_not_modelled(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An arm64 mix listed 38 of 53 platforms: those whose CPU publishes no TDP or memory
    speed vanished. Every module and every CPU is now a row, the unmodelled ones with
    the missing value named."""
    catalog = load_catalog()
    rows = _json(capsys, tmp_path, ARM)["platforms"]
    by_id = {r["platform"]: r for r in rows}
    modules = {m.id for m in catalog.all("compute-module") if isinstance(m, ComputeModule)}
    assert modules <= set(by_id)
    cpus = {c.id for c in catalog.all("cpu") if isinstance(c, Cpu)}
    assert {r["cpu"] for r in rows} == cpus
    assert by_id["generic-graviton4-2s"]["reason"] == "not modelled: no published TDP"
    assert by_id["generic-graviton4-2s"]["status"] == "not modelled"
    assert by_id["grace-superchip-module"]["reason"] == \
        "not modelled: no published memory speed"
    assert by_id["generic-nvidia-vera-2s"]["reason"] == \
        "not modelled: no published memory channel count, memory speed or TDP"
    # an x86 CPU without a TDP is excluded by the ISA first: that is why it cannot serve
    assert by_id["generic-xeon-6517p-1s"]["reason"] == "isa x86-64 is not one of arm64"
    assert all(r["reason"] for r in rows if not r["feasible"])


def test_the_table_names_the_platforms_not_modelled(tmp_path: Path) -> None:
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(ARM), encoding="utf-8")
    out = " ".join(run_wide("match", "--workload", path).split())
    assert re.search(r"\d+ platform\(s\) not modelled: \S+ \(no published ", out)


# ---- 2. accelerator-host slots are not divided by the headroom ----------------------------

def _constant(capacity: float) -> Any:
    """A predictor that gives every throughput query ``capacity``."""
    def predict(queries: Sequence[Query]) -> list[Capacity | None]:
        return [Capacity(capacity, capacity, capacity, "model") for _ in queries]
    return predict


def _with_slots(slots: int) -> Any:
    """A catalog platform whose accelerator-host capacity is ``slots``."""
    for p in catalog_platforms(load_catalog()):
        if min(p.cores / CORES_PER_ACCELERATOR, p.lanes / LANES_PER_ACCELERATOR) // 1 == slots \
                and not any(
                f.severity == "error" for f in p.findings):
            return p
    raise AssertionError(f"no platform hosts {slots} accelerators")


def test_accelerator_slots_are_a_hard_count() -> None:
    """64 accelerators at 8 per host were 12 servers (ceil(8 / 0.7)): slots are filled,
    not used at a utilization, so 8 hosts serve them."""
    p = _with_slots(8)
    req = MatchRequest.model_validate({"name": "hosts", "demand": {"accelerator-host": 64}})
    (row,) = match(req, [p], _constant(1.0)).ranked
    assert row.capacities["accelerator-host"].value == 8
    assert row.servers == 8
    assert row.binding == "accelerator-host"


def test_throughput_keeps_its_headroom_and_binds_by_servers_taken() -> None:
    """With 64 accelerators (8 servers of slots) and a throughput share of 7 servers at
    full use (10 at 70 %), the fleet is 8 + 10 = 18 and the throughput binds: it takes
    more servers, though its raw share (7) is below the slots' (8)."""
    p = _with_slots(8)
    req = MatchRequest.model_validate({"name": "mixed", "demand": {
        "accelerator-host": 64, "cloud-throughput": 700}, "target_utilization": 0.7})
    (row,) = match(req, [p], _constant(100.0)).ranked
    assert row.servers == 18
    assert row.binding == "cloud-throughput"
    assert row.load == pytest.approx((8 + 7) / 18)


def test_the_cli_sizes_hosts_without_headroom(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    rows = _json(capsys, tmp_path, {"name": "hosts", "demand": {"accelerator-host": 64},
                                    "prices": {"default": 1}})["platforms"]
    served = [r for r in rows if r["feasible"]]
    assert served
    for r in served:
        assert r["servers"] == math.ceil(64 / r["capacities"]["accelerator-host"]["value"])


def test_a_host_counted_from_unpublished_socket_links_says_so(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A 2-socket module whose socket links' lanes no source gives exports every lane in
    the count, an upper bound: its row carries the flag (the Altra Max 2S had ranked
    first for hosting on 256 unverified lanes); a 2S EPYC, whose xGMI lanes are
    published, and any 1S module do not."""
    from ocplan.matching.match import LANES_UNVERIFIED

    rows = {r["platform"]: r for r in _json(
        capsys, tmp_path, {"name": "hosts", "demand": {"accelerator-host": 64},
                           "prices": {"default": 1}})["platforms"]}
    altra = rows["generic-ampere-altra-max-m128-30-2s"]
    assert LANES_UNVERIFIED in altra["capacities"]["accelerator-host"]["flags"]
    assert LANES_UNVERIFIED in altra["flags"]
    for unflagged in ("generic-epyc-9654-2s", "generic-ampere-altra-max-m128-30-1s"):
        assert LANES_UNVERIFIED not in rows[unflagged]["flags"], unflagged


# ---- 3. per kW is named per kW ---------------------------------------------------------------

def test_perf_per_kw_is_named_and_valued_per_kw(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    data = _json(capsys, tmp_path, UNPRICED, "--objective", "perf_per_watt")
    served = [r for r in data["platforms"] if r["feasible"]]
    assert data["objective"] == "perf_per_watt"  # the objective's name is kept
    for r in served:
        assert "perf_per_watt" not in r
        # one server serves capacity / demand of the mix; at full load it draws
        # P_max = P(load) / (idle + (1 - idle) load), idle share 0.3 by default
        mix = r["capacities"]["cloud-throughput"]["value"] / 100
        p_max = r["power_per_server_W"] / (0.3 + 0.7 * r["load"])
        assert r["perf_per_kW"] == pytest.approx(mix / (p_max / 1e3))
    per_kw = [r["perf_per_kW"] for r in served]
    assert per_kw == sorted(per_kw, reverse=True)


def test_the_objective_help_says_per_watt_is_shown_per_kw(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    rc, out, _ = run(capsys, "match", "--help")
    assert rc == 0
    text = " ".join(re.sub(r"[│]", " ", out).split())
    assert "perf_per_watt ranks by performance per watt, shown as perf/kW" in text


def test_the_web_answer_and_chart_use_perf_per_kw() -> None:
    from ocplan.web.match_routes import _match

    found = json.loads(_match(load_catalog(), yaml.safe_load(EXAMPLE.read_text("utf-8"))))
    by_id = {p["platform"]: p for p in found["platforms"]}
    points = [(name, y) for trace in found["figures"]["pareto"]["data"]
              for name, y in zip(trace["text"], trace["y"], strict=True)]
    assert points
    for name, y in points:
        assert y == by_id[name]["perf_per_kW"]
    js = (ROOT / "src" / "ocplan" / "web" / "static" / "match.js").read_text("utf-8")
    assert 'perf_per_kW: ["perf per kW"' in js
    assert "perf_per_watt" not in js


# ---- 4. the ranking without prices --------------------------------------------------------

def test_an_unpriced_ranking_shows_the_energy_cost_it_is_ranked_by(tmp_path: Path) -> None:
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(UNPRICED), encoding="utf-8")
    out = run_wide("match", "--workload", path, "--top", "3")
    header = next(ln for ln in out.splitlines() if "platform" in ln and "TCO" in ln)
    heads = [c.strip() for c in re.split(r"[\u2503\u2502]", header)]
    assert "energy cost" in heads
    assert "by energy_cost" in out


def test_the_unpriced_report_has_energy_cost_note_watts_and_an_explained_chart(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = _json(capsys, tmp_path, UNPRICED)
    served = [r for r in data["platforms"] if r["feasible"]]
    page = _report(capsys, tmp_path, UNPRICED, "--top", "5")
    head, *rows = _html_rows(page)
    assert "energy cost" in head
    assert "no prices given: ranked by energy cost" in page
    power = head.index("power at load")
    assert len(rows) == 5
    for row, r in zip(rows, served, strict=False):
        assert row[1] == r["platform"]
        assert row[power] == format_quantity(r["fleet_power_W"], "W")
    assert any(r["fleet_power_W"] < 1e3 for r in served[:5])  # the case that read "0.7 kW"
    assert not re.search(r"<td>0\.\d+ kW</td>", page)
    figure = _figure(page)
    assert figure["data"] == []
    (note,) = figure["layout"]["annotations"]
    assert "has a price" in note["text"]


# ---- 5. the report keeps the module's check warnings ---------------------------------------

def test_the_report_notes_a_modules_check_warnings(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    module = "ocm-xeon-6787p-2s-2dpc"
    mix = yaml.safe_load(EXAMPLE.read_text("utf-8"))
    mix["prices"] = {"default": 1e6, module: 1}
    page = _report(capsys, tmp_path, mix)
    _, *rows = _html_rows(page)
    (row,) = [r for r in rows if r[1] == module]
    assert "MODULE-SOCKETS" in row[-1]  # the notes (the report's last column)


# ---- 6. --top in JSON, and a title that says what it shows ---------------------------------

def test_top_limits_the_ranked_platforms_in_json(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    everything = _json(capsys, tmp_path, UNPRICED)
    data = _json(capsys, tmp_path, UNPRICED, "--top", "2")
    served = [r for r in data["platforms"] if r["feasible"]]
    assert [r["platform"] for r in served] == \
        [r["platform"] for r in everything["platforms"][:2]]
    assert data["served"] == everything["served"] > 2
    assert data["left_out"] == data["served"] - 2
    refused = [r for r in data["platforms"] if not r["feasible"]]
    assert len(refused) == data["cannot_serve"] + data["not_modelled"] > 0
    assert all(r["reason"] for r in refused)


def test_the_title_says_how_many_serve_the_mix(tmp_path: Path) -> None:
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(ARM), encoding="utf-8")
    served = sum(r["feasible"] for r in json.loads(
        run_wide("match", "--workload", path, "-f", "json"))["platforms"])
    assert served < 10
    out = run_wide("match", "--workload", path)
    assert f"arm: best {served} platforms by tco (all that serve the mix)" in out
    assert "best 10" not in out


# ---- 7. one socket ------------------------------------------------------------------------

def test_one_socket_mixes_get_one_socket_generic_modules(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """sockets: [1] dropped every 2-socket-capable CPU ("2 sockets, not (1,)"): each CPU
    is also a 1-socket generic module (any count up to its max_sockets is a system)."""
    mix = {"name": "1s", "demand": {"cloud-throughput": 2000},
           "constraints": {"sockets": [1]}, "prices": {"default": 10000}}
    rows = _json(capsys, tmp_path, mix)["platforms"]
    by_id = {r["platform"]: r for r in rows}
    assert by_id["generic-epyc-9965-1s"]["feasible"]
    assert by_id["generic-xeon-6980p-1s"]["feasible"]
    assert by_id["generic-epyc-9965-2s"]["reason"] == "2 sockets, the mix allows 1"
    assert not any("(1,)" in (r["reason"] or "") for r in rows)
    served = [r for r in rows if r["feasible"]]
    assert len(served) > 20
    assert {r["sockets"] for r in served} == {1}


def test_a_cpu_that_scales_to_one_socket_has_no_two_socket_module() -> None:
    catalog = load_catalog()
    ids = {p.id for p in catalog_platforms(catalog)}
    for cpu in catalog.all("cpu"):
        assert isinstance(cpu, Cpu)
        if cpu.max_sockets == 1 and cpu.tdp is not None and cpu.memory_mts is not None:
            assert f"generic-{cpu.id}-2s" not in ids
            assert f"generic-{cpu.id}-1s" in ids


# ---- 8. --list-archetypes ---------------------------------------------------------------------

def test_list_archetypes_names_each_id_unit_and_measure(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    rc, out, _ = run(capsys, "match", "--list-archetypes")
    assert rc == 0
    for a in ARCHETYPES.values():
        line = next(ln for ln in out.splitlines() if re.search(rf" {a.id}[ :]", ln))
        assert a.unit in line
        assert a.summary[:40] in line
    rc, out, _ = run(capsys, "match", "--list-archetypes", "-f", "json")
    assert rc == 0
    listed = json.loads(out)["archetypes"]
    assert [(a["id"], a["unit"]) for a in listed] == \
        [(a.id, a.unit) for a in ARCHETYPES.values()]
    assert "ocplan match --list-archetypes" in EXAMPLE.read_text("utf-8")


def test_match_without_a_workload_says_so_in_one_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line(*run(capsys, "match"))
    assert line.startswith("--workload: workload: missing")
    assert "--list-archetypes" in line


# ---- 9. reasons name their rule and limit; one name for perf/cost ----------------------------

def test_a_failed_module_check_is_named_in_the_reason() -> None:
    p = _with_slots(8)
    failed = replace(p, findings=(Finding("MODULE-POWER", "error",
                                          f"{p.id}: 900 W exceeds the 800 W budget",
                                          "OCM-5", p.id),))
    req = MatchRequest.model_validate({"name": "x", "demand": {"cloud-throughput": 10}})
    (row,) = match(req, [failed], _constant(100.0)).ranked
    assert row.reason == "the module fails check MODULE-POWER (900 W exceeds the 800 W budget)"


def test_the_rack_reason_states_the_rack_power(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    mix = {"name": "rack", "demand": {"cloud-throughput": 100},
           "constraints": {"rack_power": "100 W"}, "prices": {"default": 1}}
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(mix), encoding="utf-8")
    rc, out, _ = run(capsys, "match", "--workload", path, "-f", "json")
    assert rc == 1  # no platform fits a 100 W rack
    reasons = [r["reason"] for r in json.loads(out)["platforms"]
               if not r["feasible"] and not r["reason"].startswith("not modelled")]
    assert reasons
    for reason in reasons:
        assert re.fullmatch(r"one server \(\S+ k?W at full load\) exceeds the rack power "
                            r"\(100 W\)", reason), reason


def test_the_report_says_perf_per_cost_as_the_table_does(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    page = _report(capsys, tmp_path, yaml.safe_load(EXAMPLE.read_text("utf-8")))
    head = _html_rows(page)[0]
    assert "perf/cost" in head
    assert "perf/price" not in page
