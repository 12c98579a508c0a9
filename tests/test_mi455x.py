"""AMD Instinct MI455X and the Helios rack, against the figures AMD publishes.

The chip entry carries AMD's per-GPU numbers (40 PF FP4 and 20 PF FP8 dense, 432 GB of
HBM4 at 19.6 TB/s, 3.6 TB/s of scale-up counted both ways, 300 GB/s of scale-out). The
Helios server entry must reproduce AMD's rack totals from them (2.9 EF FP4, 1.4 EF FP8,
31 TB, 1.4 PB/s, 260 TB/s scale-up, 43 TB/s scale-out), pass its own checks, and give
every chip the per-direction scale-up bandwidth the entry records. The chip's CDNA 5
family has no fitted run, and its estimates must say so.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from ocplan.catalog.catalog import Catalog, load_catalog
from ocplan.catalog.schema import Accelerator, Baseboard, Cpu, Nic, Server
from ocplan.catalog.system import System, system_for_chip
from ocplan.cli.main import main
from ocplan.plan.calibration import load_calibration
from ocplan.topology.cluster import chip_scale_out_Bps

TERA = 1e12
PETA = 1e15
EXA = 1e18
SERVER = "amd-helios-mi455x"
DERIVED = "no published run of it was fitted; a physically derived estimate"


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return load_catalog(use_env=False)


@pytest.fixture(scope="module")
def chip(cat: Catalog) -> Accelerator:
    return cat.accelerator("mi455x")


@pytest.fixture(scope="module")
def helios(cat: Catalog) -> Server:
    return cat.get(Server, SERVER)


def _system_file(tmp_path: Path, servers: int) -> Path:
    path = tmp_path / f"helios-{servers}.yaml"
    path.write_text(yaml.safe_dump({"name": f"helios-{servers}", "server": SERVER,
                                    "servers": servers}), "utf-8")
    return path


# ---- the chip ----------------------------------------------------------------------------


def test_chip_figures_parse_to_the_published_si_values(chip: Accelerator) -> None:
    peak = chip.peak_flops
    assert peak.fp4 == 40 * PETA          # AMD: 40 PFLOPS FP4, recorded as dense
    assert peak.fp8 == 20 * PETA          # AMD: 20 PFLOPS FP8
    # BF16 is not published: the entry infers FP8 / 2 (the CDNA 3 / CDNA 4 ratio)
    assert peak.bf16 == peak.fp8 / 2
    # nothing else is filled in without a source
    assert (peak.fp64, peak.fp32, peak.tf32, peak.fp16, peak.int8) == (None,) * 5
    assert chip.memory.hbm_capacity == 432e9       # decimal GB
    assert chip.memory.hbm_bandwidth == 19.6 * TERA
    assert chip.memory.hbm_type == "HBM4"
    assert chip.memory.sram is None                # not published
    assert chip.compute is None                    # CU count and clock not published
    assert chip.family == "cdna5"
    assert chip.default_server == SERVER
    assert chip.power.tdp == 2000.0                # an estimate; see the entry's notes
    assert chip.cooling == ("liquid",)
    assert chip.form_factor != "oam"
    assert chip.oam_version is None


def test_scale_up_is_amds_figure_per_direction(chip: Accelerator) -> None:
    up = chip.scale_up
    assert up is not None
    per_direction = up.ports * up.port_bandwidth
    assert per_direction == pytest.approx(1.8 * TERA)
    # AMD's 3.6 TB/s per GPU counts both directions
    assert 2 * per_direction == pytest.approx(3.6 * TERA)
    # an 800G port: four 200G-class lanes, the stated rate below the raw signalling
    assert up.lanes_per_port * 200e9 / 8 == up.port_bandwidth
    assert up.port_bandwidth <= up.lanes_per_port * up.lane_rate / 8


def test_cdna5_has_no_fitted_calibration() -> None:
    # a new micro-architecture: if a run is ever fitted, the estimate test below must change
    assert "cdna5" not in load_calibration().families


# ---- the Helios rack ---------------------------------------------------------------------


def test_helios_reproduces_amds_rack_totals(cat: Catalog, chip: Accelerator,
                                            helios: Server) -> None:
    board = cat.get(Baseboard, helios.baseboard)
    n = helios.accelerators
    assert n == board.slots == helios.chips_per_rack == 72
    assert board.topology == "switch"
    assert helios.hosts == 18
    assert n // helios.hosts == 4              # four GPUs per compute tray
    peak = chip.peak_flops
    assert peak.fp4 is not None
    assert peak.fp8 is not None
    # AMD rounds its rack figures to one decimal (EF, TB, PB/s) or to 10 TB/s
    assert abs(n * peak.fp4 - 2.9 * EXA) <= 0.05 * EXA
    assert abs(n * peak.fp8 - 1.4 * EXA) <= 0.05 * EXA
    assert abs(n * chip.memory.hbm_capacity - 31 * TERA) <= 0.5 * TERA
    assert abs(n * chip.memory.hbm_bandwidth - 1.4 * PETA) <= 0.05 * PETA
    up = chip.scale_up
    assert up is not None
    assert abs(n * 2 * up.ports * up.port_bandwidth - 260 * TERA) <= 5 * TERA
    # scale-out: three 800G Vulcano NICs per GPU; 43 TB/s counts both directions
    (slot,) = helios.nics
    nic = cat.get(Nic, slot.nic)
    assert slot.count == 3 * n
    out = slot.count * nic.ports * nic.port_bandwidth
    assert out == pytest.approx(21.6 * TERA)
    assert abs(2 * out - 43 * TERA) <= 0.5 * TERA


def test_helios_scale_out_per_gpu_is_300_gb_s(cat: Catalog) -> None:
    system: System = system_for_chip(cat, "mi455x", 72)
    assert system.server.id == SERVER
    assert system.num_servers == 1
    assert chip_scale_out_Bps(system) == pytest.approx(300e9)


def test_helios_host_is_a_one_socket_stand_in_per_tray(cat: Catalog, helios: Server) -> None:
    # Venice publishes no base clock, lanes or channels: an existing EPYC stands in
    assert helios.host.sockets == helios.hosts == 18
    cpu = cat.get(Cpu, helios.host.cpu)
    assert cpu.vendor == "AMD"
    assert cpu.isa == "x86-64"
    assert helios.notes is not None
    assert "stand" in helios.notes


@pytest.mark.parametrize("servers", [1, 4])
def test_helios_passes_check_without_errors(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, servers: int) -> None:
    code = main(["check", str(_system_file(tmp_path, servers)), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["errors"] == 0
    assert [f["rule"] for f in report["findings"] if f["severity"] == "error"] == []
    # power, ports, lane rates and host lanes hold at the entries' figures
    flagged = {f["rule"] for f in report["findings"] if f["severity"] != "info"}
    assert not {"HOST-LANES", "SERVER-POWER", "TOPOLOGY-PORTS", "LINK-LANES", "LINK-RATE",
                "SLOT-POWER", "NIC-PCIE", "NIC-RATE"} & flagged
    # the NICs hang on the GPUs' SerDes (attach accelerator): no host-lane finding at all,
    # and their power is estimated
    messages = {f["rule"]: f["message"] for f in report["findings"]}
    assert "HOST-LANES" not in messages
    assert "amd-vulcano-800" in messages["POWER-ESTIMATED"]


def test_nics_on_the_cpus_would_overrun_the_host_lanes(cat: Catalog) -> None:
    # The same rack with its 216 x16 NICs on CPU lanes: 72 x 16 + 216 x 16 = 4608 lanes
    # against 18 x 128 = 2304; attach accelerator is what keeps the check quiet.
    from ocplan.checks.rules import host_lanes

    system = system_for_chip(cat, "mi455x", 72)
    assert host_lanes(system) == []
    on_cpu = tuple((nic, count, "cpu") for nic, count, _ in system.server_nics)
    moved = System(system.spec, system.source, system.server, system.baseboard,
                   system.accelerator, system.cpu, system.fabric, system.nic, on_cpu)
    errors = [f.message for f in host_lanes(moved) if f.severity == "error"]
    assert errors == ["4608 lanes hung on 18 x epyc-9965 which offer 2304"]


@pytest.mark.parametrize("servers", [1, 4])
def test_topology_gives_every_chip_amds_scale_up_bandwidth(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, servers: int) -> None:
    assert main(["topology", str(_system_file(tmp_path, servers)), "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["chips"] == 72 * servers
    assert summary["chips_per_server"] == 72
    assert summary["board_topology"] == "switch"
    assert summary["scale_up_port_Bps"] == pytest.approx(100e9)
    assert summary["scale_up_Bps_per_chip"] == pytest.approx(1.8 * TERA)
    assert summary["scale_out_Bps_per_chip"] == pytest.approx(300e9)
    # one switch plane: every chip one switch away, half the chips on each side
    assert summary["board_diameter_hops"] == 2
    assert summary["board_bisection_Bps"] == pytest.approx(36 * 1.8 * TERA)


# ---- estimates ---------------------------------------------------------------------------


def _cells(table: str) -> str:
    return " ".join(re.sub(r"[│┃┌┐└┘├┤┬┴┼─━]", " ", table).split())


def test_estimate_says_the_cdna5_family_is_unfitted(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    command = ["estimate", "--model", "llama3-405b", "--system",
               str(_system_file(tmp_path, 4)), "--global-batch", "1024", "--seq-len", "8192",
               "--precision", "fp8", "--tp", "8", "--pp", "9"]
    assert main(command) == 0
    assert "family cdna5: " + DERIVED in _cells(capsys.readouterr().out)
    assert main([*command, "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["feasible"] is True
    assert (result["calibration_family"], result["calibration_runs"]) == ("default", 0)
    assert result["chips"] == 288


def test_estimate_by_chip_uses_the_helios_rack(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "--model", "llama3-70b", "--chip", "mi455x", "--chips", "72",
                 "--global-batch", "288", "--seq-len", "4096", "--tp", "8",
                 "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["feasible"] is True
    assert result["chips"] == 72
    assert result["calibration_family"] == "default"
