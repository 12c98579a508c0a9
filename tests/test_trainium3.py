"""AWS Trainium3 and its two Trn3 UltraServers, against the figures AWS publishes.

The chip entry carries AWS's per-chip numbers; the two UltraServer entries (Gen1: 4
servers of 16, Gen2: 36 servers of 4, each one NeuronSwitch domain) must reproduce the
UltraServer totals of AWS's Trn3 specification table from them, pass their own checks,
and give every chip the scale-up bandwidth the entry derives (AWS's 2,048 GB/s per
device, both directions together: 128 PCIe 6.0 lanes at 64 Gb/s).
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
from ocplan.facility.plan import system_findings
from ocplan.topology.cluster import chip_scale_out_Bps

TERA = 1e12
GIB = 2**30
MIB = 2**20
DERIVED = "no published run of it was fitted; a physically derived estimate"

#: (server id, chips, servers inside, AWS table: MXFP8 TFLOPS, FP16/BF16/TF32 TFLOPS,
#: FP32 TFLOPS, device memory GiB, memory bandwidth TB/s, EFA Gb/s, host vCPUs)
ULTRASERVERS = [
    ("trn3-gen1-ultraserver", 64, 4, 161_088, 42_944, 11_712, 9_216, 313.6, 12_800, 768),
    ("trn3-gen2-ultraserver", 144, 36, 362_448, 96_624, 26_352, 20_736, 705.6, 28_800, 2_304),
]


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return load_catalog(use_env=False)


@pytest.fixture(scope="module")
def chip(cat: Catalog) -> Accelerator:
    return cat.accelerator("trainium3")


def _system(cat: Catalog, server: str, chips: int) -> System:
    return system_for_chip(cat, "trainium3", chips, server_id=server)


def _system_file(tmp_path: Path, server: str) -> Path:
    path = tmp_path / f"{server}.yaml"
    path.write_text(yaml.safe_dump({"name": server, "server": server,
                                    "accelerator": "trainium3", "servers": 1}), "utf-8")
    return path


# ---- the chip ----------------------------------------------------------------------------


def test_chip_figures_parse_to_the_published_si_values(chip: Accelerator) -> None:
    peak = chip.peak_flops
    assert (peak.fp32, peak.tf32, peak.bf16, peak.fp16) == (
        183 * TERA, 671 * TERA, 671 * TERA, 671 * TERA)
    # MXFP8 and MXFP4 run at one rate; no FP64 or INT8 unit is published
    assert peak.fp8 == peak.fp4 == 2517 * TERA
    assert peak.fp64 is None
    assert peak.int8 is None
    assert chip.memory.hbm_capacity == 144 * GIB
    assert chip.memory.hbm_bandwidth == 4.9 * TERA
    assert chip.memory.sram == 8 * 32 * MIB        # 8 NeuronCore-v4 x 32 MiB SBUF
    assert chip.family == "trainium"
    assert chip.default_server == "trn3-gen2-ultraserver"
    assert chip.power.tdp == 1000.0                # an estimate; see the entry's notes
    assert set(chip.cooling) == {"air", "liquid"}


def test_neuronlink_v4_bandwidth_is_the_ultraserver_figure(chip: Accelerator) -> None:
    up = chip.scale_up
    assert up is not None
    # PCIe 6.0 lanes: 64 Gb/s each way; an x8 port carries 64 GB/s per direction
    assert up.lane_rate == 64e9                    # bit/s, stored as given
    assert up.port_bandwidth == up.lanes_per_port * up.lane_rate / 8 == 64e9
    per_direction = up.ports * up.port_bandwidth
    assert per_direction == 1.024 * TERA
    # AWS's Trn3 UltraServer table: 2,048 per device, both directions (128 lanes)
    assert 2 * per_direction == 2048e9
    assert up.ports * up.lanes_per_port == 128
    # the chip-level 2.56 TB/s is all 160 lanes (16 spare ones included), not recorded
    assert 160 * up.lane_rate / 8 * 2 == 2.56 * TERA
    assert 2 * per_direction < 2.56 * TERA


def test_compute_block_reproduces_the_mx_peak(chip: Accelerator) -> None:
    compute = chip.compute
    assert compute is not None
    assert compute.flop_per_clock is not None
    assert (compute.units, compute.clock) == (8, 2.4e9)
    # 128 x 128 processing elements, one BF16 multiply-add or four MX pairs per cycle
    assert compute.flop_per_clock.bf16 == 128 * 128 * 2
    assert compute.flop_per_clock.fp8 == compute.flop_per_clock.fp4 == 4 * 128 * 128 * 2
    mx = compute.units * compute.flop_per_clock.fp8 * compute.clock
    assert mx == pytest.approx(2517 * TERA, rel=1e-3)
    # the BF16 chip figure implies a faster clock than the published 2.4 GHz (notes)
    bf16 = compute.units * compute.flop_per_clock.bf16 * compute.clock
    assert 0.90 < bf16 / (671 * TERA) < 0.95


# ---- the two UltraServers ----------------------------------------------------------------


@pytest.mark.parametrize(("server", "chips", "inside", "mx", "bf16", "fp32", "hbm_gib",
                          "hbm_tbps", "efa_gbps", "vcpus"), ULTRASERVERS)
def test_ultraserver_totals_match_the_aws_table(
        cat: Catalog, chip: Accelerator, server: str, chips: int, inside: int, mx: int,
        bf16: int, fp32: int, hbm_gib: int, hbm_tbps: float, efa_gbps: int,
        vcpus: int) -> None:
    entry = cat.get(Server, server)
    board = cat.get(Baseboard, entry.baseboard)
    assert entry.accelerator == "trainium3"
    assert entry.accelerators == board.slots == chips
    assert board.topology == "switch"
    assert entry.hosts == inside               # AWS's servers inside the UltraServer
    peak = chip.peak_flops
    assert peak.fp8 is not None
    assert peak.bf16 is not None
    assert peak.fp32 is not None
    assert chips * peak.fp8 == pytest.approx(mx * TERA)
    assert chips * peak.bf16 == pytest.approx(bf16 * TERA)
    assert chips * peak.fp32 == pytest.approx(fp32 * TERA)
    assert chips * chip.memory.hbm_capacity == hbm_gib * GIB
    assert chips * chip.memory.hbm_bandwidth == pytest.approx(hbm_tbps * TERA)
    # EFA: the NIC modules of one UltraServer add up to AWS's total
    (slot,) = entry.nics
    nic = cat.get(Nic, slot.nic)
    assert slot.count * nic.ports * nic.port_bandwidth * 8 == pytest.approx(efa_gbps * 1e9)
    assert chip_scale_out_Bps(_system(cat, server, chips)) == pytest.approx(25e9)
    # host vCPUs: two SMT Xeon sockets per Gen1 head tray; Gen2 exposes 64 per Graviton4
    cpu = cat.get(Cpu, entry.host.cpu)
    per_socket = cpu.threads if server.startswith("trn3-gen1") else 64
    assert entry.host.sockets * per_socket == vcpus


@pytest.mark.parametrize(("server", "chips"), [(s[0], s[1]) for s in ULTRASERVERS])
def test_ultraserver_passes_check_without_errors(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, server: str, chips: int) -> None:
    code = main(["check", str(_system_file(tmp_path, server)), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["errors"] == 0
    assert [f["rule"] for f in report["findings"] if f["severity"] == "error"] == []
    # the host lanes and the supplies hold; the scale-up ports and lane rate fit the board
    rules = {f["rule"] for f in report["findings"]}
    assert not {"HOST-LANES", "SERVER-POWER", "TOPOLOGY-PORTS", "LINK-LANES",
                "LINK-RATE", "SLOT-POWER"} & {f["rule"] for f in report["findings"]
                                              if f["severity"] != "info"}
    assert "POWER-ESTIMATED" in rules      # the EFA module's power is the NIC law's
    system = _system(load_catalog(use_env=False), server, chips)
    assert system.num_chips == chips
    assert system.num_servers == 1


def test_gen2_host_cpu_power_is_reported_unknown(cat: Catalog) -> None:
    # Graviton4 publishes no TDP: the budget says so instead of inventing one
    system = _system(cat, "trn3-gen2-ultraserver", 144)
    unknown = [f for f in system_findings(system) if f.rule == "POWER-UNKNOWN"]
    assert len(unknown) == 1
    assert "graviton4" in unknown[0].message
    assert cat.get(Cpu, "graviton4").tdp is None


@pytest.mark.parametrize(("server", "chips"), [(s[0], s[1]) for s in ULTRASERVERS])
def test_topology_gives_every_chip_the_derived_scale_up_bandwidth(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, server: str, chips: int) -> None:
    assert main(["topology", str(_system_file(tmp_path, server)), "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["chips"] == summary["chips_per_server"] == chips
    assert summary["board_topology"] == "switch"
    assert summary["scale_up_port_Bps"] == 64e9
    assert summary["scale_up_Bps_per_chip"] == 1.024 * TERA
    assert summary["scale_out_Bps_per_chip"] == 25e9
    # one switch plane: every chip one switch away, half the chips on each side
    assert summary["board_diameter_hops"] == 2
    assert summary["board_bisection_Bps"] == pytest.approx(chips / 2 * 1.024 * TERA)


# ---- estimates ---------------------------------------------------------------------------


def _cells(table: str) -> str:
    return " ".join(re.sub(r"[│┃┌┐└┘├┤┬┴┼─━]", " ", table).split())


def test_estimate_says_the_trainium_family_is_unfitted(
        capsys: pytest.CaptureFixture[str]) -> None:
    command = ["estimate", "--model", "llama3-70b", "--chip", "trainium3", "--chips", "64",
               "--global-batch", "256", "--seq-len", "4096", "--tp", "8"]
    assert main(command) == 0
    assert "family trainium: " + DERIVED in _cells(capsys.readouterr().out)
    assert main([*command, "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["feasible"] is True
    assert (result["calibration_family"], result["calibration_runs"]) == ("default", 0)
    # 64 chips on the default (144-chip Gen2) UltraServer: one scale-up domain
    assert result["chips"] == 64
