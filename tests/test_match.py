"""ocplan match (issue 12): rank the catalog's CPU platforms for a workload mix."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ocplan.cli.main import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cloud-mix.yaml"
MIX: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
FIELDS = {"platform", "cpu", "family", "isa", "sockets", "feasible", "reason", "capacities",
          "servers", "binding", "power_per_server_W", "fleet_power_W", "racks", "capex",
          "energy_cost", "tco", "perf_per_kW", "perf_per_cost", "flags", "findings"}


def _match(capsys: pytest.CaptureFixture[str], tmp_path: Path, mix: dict[str, Any],
           *extra: str) -> dict[str, Any]:
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(mix), encoding="utf-8")
    assert main(["match", "--workload", str(path), "--format", "json", *extra]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_example_ranks_platforms_with_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["match", "--workload", str(EXAMPLE), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["platforms"]
    assert len(rows) >= 30  # every compute module and every CPU with published specs
    feasible = [r for r in rows if r["feasible"]]
    assert feasible
    for r in rows:
        assert set(r) >= FIELDS
    tcos = [r["tco"] for r in feasible]
    assert tcos == sorted(tcos)  # ranked by TCO, the file's objective
    best = feasible[0]
    # the fleet follows N = ceil(sum D_i / c_i / u_i) from the capacities it reports
    # (u_i = 1 for the accelerator-host slots, the target utilization for the rest)
    def taken(k: str) -> float:
        u = 1.0 if k == "accelerator-host" else MIX["target_utilization"]
        return float(MIX["demand"][k] / best["capacities"][k]["value"] / u)

    assert best["servers"] == math.ceil(sum(taken(k) for k in MIX["demand"]) - 1e-9)
    assert best["binding"] == max(MIX["demand"], key=taken)
    # TCO = servers x price + energy at load over the horizon
    assert best["tco"] == pytest.approx(best["capex"] + best["energy_cost"])
    hours = 8766 * MIX["horizon_years"]
    assert best["energy_cost"] == pytest.approx(best["fleet_power_W"] * MIX["pue"] / 1e3
                                                * hours * MIX["electricity_per_kwh"])
    # the power curve: between idle and full load of the module
    per_server = best["power_per_server_W"]
    assert best["fleet_power_W"] == pytest.approx(per_server * best["servers"])
    # racks from the rack power at full load
    assert best["racks"] >= math.ceil(best["servers"] * per_server / 20e3)


def test_a_price_change_moves_the_ranking(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    before = [r for r in _match(capsys, tmp_path, MIX)["platforms"] if r["feasible"]]
    first, second = before[0], before[1]
    # make the winner dearer by more than the gap: it must fall below the runner-up
    gap = second["tco"] - first["tco"]
    dearer = MIX | {"prices": MIX["prices"] | {
        first["platform"]: first["price_per_server"] + 2 * gap / first["servers"] + 1}}
    after = [r for r in _match(capsys, tmp_path, dearer)["platforms"] if r["feasible"]]
    order = [r["platform"] for r in after]
    assert order.index(first["platform"]) > order.index(second["platform"])
    # and a cheaper last platform can only move up
    last = before[-1]["platform"]
    cheaper = MIX | {"prices": MIX["prices"] | {last: 1.0}}
    moved = [r["platform"] for r in _match(capsys, tmp_path, cheaper)["platforms"]
             if r["feasible"]]
    assert moved.index(last) < len(before) - 1


def test_constraints_exclude_platforms_with_the_reason(capsys: pytest.CaptureFixture[str],
                                                       tmp_path: Path) -> None:
    arm = MIX | {"constraints": MIX["constraints"] | {"isa": ["arm64"]}}
    rows = _match(capsys, tmp_path, arm)["platforms"]
    assert {r["isa"] for r in rows if r["feasible"]} == {"arm64"}
    x86 = [r for r in rows if r["isa"] == "x86-64"]
    assert x86
    assert all(not r["feasible"] and "isa" in r["reason"] for r in x86)


def test_objectives_rank_by_their_measure(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    rows = [r for r in _match(capsys, tmp_path, MIX, "--objective", "perf_per_watt")
            ["platforms"] if r["feasible"]]
    per_watt = [r["perf_per_kW"] for r in rows]
    assert per_watt == sorted(per_watt, reverse=True)
    rows = [r for r in _match(capsys, tmp_path, MIX, "--objective", "servers")
            ["platforms"] if r["feasible"]]
    servers = [r["servers"] for r in rows]
    assert servers == sorted(servers)


NO_PRICES: dict[str, Any] = {"name": "x", "demand": {"cloud-throughput": 100}}


def test_without_prices_tco_falls_back_to_perf_per_kw(capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path) -> None:
    """QA D: a mix without prices was listed in catalog order as "best by tco" (every
    TCO '-'; the best perf/kW platform not even in the top 10): it is ranked by perf per
    kW, and the JSON and one line say so."""
    data = _match(capsys, tmp_path, NO_PRICES)
    assert (data["objective"], data["objective_asked"]) == ("perf_per_watt", "tco")
    assert data["objective_note"] == "no prices given: ranked by perf per kW instead of tco"
    rows = [r for r in data["platforms"] if r["feasible"]]
    per_kw = [r["perf_per_kW"] for r in rows]
    assert per_kw == sorted(per_kw, reverse=True)
    assert len(set(per_kw[:10])) > 1  # not a tie that any order passes
    path = tmp_path / "mix.yaml"
    assert main(["match", "--workload", str(path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "best 10 platforms by perf_per_watt" in out
    assert "no prices given: ranked by perf per kW instead of tco" in out


def test_without_prices_an_electricity_price_ranks_by_energy_cost(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = _match(capsys, tmp_path, NO_PRICES | {"electricity_per_kwh": 0.2},
                  "--objective", "perf_per_cost")
    assert (data["objective"], data["objective_asked"]) == ("energy_cost", "perf_per_cost")
    assert data["objective_note"].startswith("no prices given: ranked by energy cost (")
    energy = [r["energy_cost"] for r in data["platforms"] if r["feasible"]]
    assert energy == sorted(energy)
    assert energy[0] < energy[-1]


def test_priced_or_unpriced_objectives_are_kept(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    """A mix with prices keeps TCO; an objective that needs no price keeps its own."""
    data = _match(capsys, tmp_path, MIX)
    assert (data["objective"], data["objective_note"]) == ("tco", None)
    data = _match(capsys, tmp_path, NO_PRICES, "--objective", "servers")
    assert (data["objective"], data["objective_note"]) == ("servers", None)


def test_accelerator_hosts_are_counted_from_cores_and_lanes(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rows = _match(capsys, tmp_path, {"name": "hosts", "demand": {"accelerator-host": 64},
                                     "prices": {"default": 1}})["platforms"]
    for r in rows:
        if r["feasible"]:
            cap = r["capacities"]["accelerator-host"]
            assert cap["source"] == "derived"
            assert cap["value"] >= 1
            assert r["servers"] == math.ceil(64 / cap["value"] - 1e-9)  # slots: no headroom


def test_bad_mix_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(MIX | {"demand": {"crypto-mining": 5}}), encoding="utf-8")
    assert main(["match", "--workload", str(path)]) == 2
    err = capsys.readouterr().err
    assert "demand" in err
    assert "crypto-mining" in err
    assert "cloud-throughput" in err


@pytest.mark.parametrize(("change", "field"), [({"demand": {}}, "demand"),
                                               ({"target_utilization": 1e-300},
                                                "target_utilization")])
def test_an_empty_demand_or_a_vanishing_utilization_is_bad_input(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, change: dict[str, Any],
        field: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(MIX | change), encoding="utf-8")
    assert main(["match", "--workload", str(path), "--format", "json"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{path}: {field}")
    # --format json: the same problem as the error document on stdout
    (problem,) = json.loads(captured.out)["error"]["problems"]
    assert (problem["source"], problem["field"], problem["message"]) == (str(path), field,
                                                                         lines[0])


def test_the_ranking_on_a_narrow_terminal_keeps_every_name_whole() -> None:
    """At 80 columns the table cut every platform id to an ellipsis ("gener…"); a ranking
    too wide for the terminal prints a line per platform instead, its whole id first."""
    from clikit import run_wide

    mix = Path(__file__).resolve().parents[1] / "examples" / "cloud-mix.yaml"
    ranked = [m for m in json.loads(run_wide("match", "--workload", mix, "--format", "json"))
              ["platforms"] if m["feasible"]]
    wide = run_wide("match", "--workload", mix)
    assert "\u2503 platform" in wide  # it fits 400 columns: the table
    narrow = run_wide("match", "--workload", mix, columns=80)
    assert "\u2026" not in narrow
    lines = [ln for ln in narrow.splitlines() if re.match(r"[0-9]+\. ", ln)]
    assert len(lines) == min(10, len(ranked))
    for i, (line, m) in enumerate(zip(lines, ranked, strict=False), 1):
        assert line.startswith(f"{i}. {m['platform']}: servers {m['servers']:,}"), line


def test_a_mix_no_platform_can_serve_is_a_no(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    """A mix no platform can serve (a 1 W rack) had printed an empty ranking "by
    energy_cost", said its prices were missing and exited 0: it says no platform can
    serve it, keeps the asked objective and exits 1, as every "no" answer does."""
    from clikit import run

    text = (Path(__file__).resolve().parents[1] / "examples" / "cloud-mix.yaml").read_text(
        encoding="utf-8").replace("rack_power: 20 kW", "rack_power: 1 W")
    assert "rack_power: 1 W" in text
    mix = tmp_path / "mix.yaml"
    mix.write_text(text, encoding="utf-8")
    rc, out, _ = run(capsys, "match", "--workload", mix)
    assert rc == 1
    assert "no platform can serve the mix" in out
    assert "instead of" not in out
    rc, out, _ = run(capsys, "match", "--workload", mix, "-f", "json")
    assert rc == 1
    data = json.loads(out)
    assert data["objective"] == data["objective_asked"]
    assert data["objective_note"] is None
    assert data["platforms"]
    assert not any(m["feasible"] for m in data["platforms"])
