"""NVIDIA Rubin (vr200) and the Vera Rubin NVL72 rack, against the figures NVIDIA publishes.

The chip entry carries NVIDIA's per-GPU numbers with the sparse NVFP4 inference headline
left out; the rack entry must reproduce NVIDIA's Vera Rubin NVL72 totals from them (72
packages, two dies each), pass its own checks, give every GPU NVLink 6's 3.6 TB/s (both
directions together, so 1.8 TB/s per direction) and say that the new ``rubin`` family has
no fitted run.
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
from ocplan.facility import facility_plan
from ocplan.topology.cluster import chip_scale_out_Bps
from ocplan.topology.power import power_budget, psu_capacity_W

TERA = 1e12
PETA = 1e15
GPUS = 72
DERIVED = "no published run of it was fitted; a physically derived estimate"

#: NVIDIA's Vera Rubin NVL72 table (rack column) against the per-GPU entry: (field, the
#: published rack total in SI units, half a unit of the last digit NVIDIA prints).
RACK_PEAKS = [
    ("fp4", 2520 * PETA, 0.5 * PETA),      # NVFP4 training, dense
    ("fp8", 1260 * PETA, 0.5 * PETA),      # FP8/FP6 training, dense
    ("bf16", 288 * PETA, 0.5 * PETA),
    ("fp16", 288 * PETA, 0.5 * PETA),
    ("tf32", 144 * PETA, 0.5 * PETA),
    ("fp32", 9360 * TERA, 5 * TERA),
    ("fp64", 2400 * TERA, 50 * TERA),      # printed to two significant digits
    ("int8", 18 * PETA, 0.5 * PETA),
]


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return load_catalog(use_env=False)


@pytest.fixture(scope="module")
def chip(cat: Catalog) -> Accelerator:
    return cat.accelerator("vr200")


@pytest.fixture(scope="module")
def rack(cat: Catalog) -> Server:
    return cat.get(Server, "vera-rubin-nvl72")


def _system_file(tmp_path: Path, servers: int = 1) -> Path:
    path = tmp_path / f"vr-nvl72-{servers}.yaml"
    path.write_text(yaml.safe_dump({"name": f"vr-nvl72-{servers}", "server": "vera-rubin-nvl72",
                                    "accelerator": "vr200", "servers": servers}), "utf-8")
    return path


def _system(cat: Catalog, chips: int = GPUS) -> System:
    return system_for_chip(cat, "vr200", chips, server_id="vera-rubin-nvl72")


# ---- the chip ----------------------------------------------------------------------------


def test_chip_figures_parse_to_the_published_si_values(chip: Accelerator) -> None:
    peak = chip.peak_flops
    assert peak.fp4 == 35 * PETA               # NVFP4 training row, footnoted dense
    assert peak.fp8 == 17.5 * PETA             # FP8/FP6 training row, footnoted dense
    assert peak.bf16 == peak.fp16 == 4 * PETA
    assert peak.tf32 == 2 * PETA
    assert peak.fp32 == 130 * TERA
    assert peak.fp64 == 33 * TERA              # native; the 200 TF DGEMM is emulated
    assert peak.int8 == 250 * TERA
    assert chip.memory.hbm_capacity == 288e9   # decimal GB
    assert chip.memory.hbm_bandwidth == 22 * TERA
    assert chip.memory.hbm_type == "HBM4"
    assert chip.family == "rubin"
    assert chip.default_server == "vera-rubin-nvl72"
    assert chip.dies == 1                      # two dies, one CUDA device
    assert chip.cooling == ("liquid",)
    assert chip.compute is None                # no clock or per-SM rate published


def test_the_sparse_nvfp4_headline_is_not_the_dense_peak(chip: Accelerator) -> None:
    # NVIDIA's 50 PF NVFP4 inference figure (3.6 EF per rack) is marked sparse and is not a
    # 2:1 pair with the dense training figure; the entry keeps the dense 35 PF.
    headline, rack_headline = 50 * PETA, 3600 * PETA
    assert GPUS * headline == pytest.approx(rack_headline)
    assert chip.peak_flops.fp4 is not None
    assert chip.peak_flops.fp4 < headline
    assert chip.peak_flops.fp4 != headline / 2
    assert GPUS * chip.peak_flops.fp4 < rack_headline
    # FP8 is half of FP4, BF16 is not half of FP8 (Rubin's low-precision gains skip BF16)
    assert chip.peak_flops.fp8 == chip.peak_flops.fp4 / 2
    assert chip.peak_flops.bf16 is not None
    assert chip.peak_flops.fp8 / chip.peak_flops.bf16 == pytest.approx(4.375)


def test_nvlink6_is_the_published_per_gpu_figure_per_direction(chip: Accelerator) -> None:
    up = chip.scale_up
    assert up is not None
    per_direction = up.ports * up.port_bandwidth
    assert per_direction == 1.8 * TERA
    assert 2 * per_direction == 3.6 * TERA     # NVIDIA's both-directions figure
    # one link to each of the 36 NVLink 6 switch chips: 9 switch trays of 4
    assert up.ports == 9 * 4
    # each chip then carries 72 GPUs x 100 GB/s = 7.2 TB/s, a tray 28.8 TB/s (NVIDIA)
    assert 4 * GPUS * 2 * up.port_bandwidth == 28.8 * TERA
    assert up.port_bandwidth == up.lanes_per_port * 200e9 / 8   # 200G-class lanes


# ---- the rack ----------------------------------------------------------------------------


@pytest.mark.parametrize(("precision", "total", "half_unit"), RACK_PEAKS,
                         ids=[row[0] for row in RACK_PEAKS])
def test_rack_peaks_reproduce_nvidias_totals(chip: Accelerator, precision: str, total: float,
                                             half_unit: float) -> None:
    per_gpu = chip.peak_flops.get(precision)
    assert per_gpu is not None
    assert abs(GPUS * per_gpu - total) <= half_unit


def test_rack_memory_and_fabric_totals(chip: Accelerator, rack: Server, cat: Catalog) -> None:
    board = cat.get(Baseboard, rack.baseboard)
    assert rack.accelerators == board.slots == rack.chips_per_rack == GPUS
    assert rack.hosts == 18                     # compute trays of 2 Vera + 4 Rubin
    assert rack.host.sockets == 36
    # 20.7 TB of HBM4 at 1,580 TB/s, 260 TB/s of NVLink (NVIDIA, rounded)
    assert abs(GPUS * chip.memory.hbm_capacity - 20.7e12) <= 0.05e12
    assert abs(GPUS * chip.memory.hbm_bandwidth - 1580 * TERA) <= 5 * TERA
    up = chip.scale_up
    assert up is not None
    assert abs(GPUS * 2 * up.ports * up.port_bandwidth - 260 * TERA) <= 5 * TERA
    assert board.topology == "switch"
    assert board.in_switch_reduction            # NVLink 6 SHARP
    # NVLink-C2C: 1.8 TB/s per superchip (2 GPUs), 65 TB/s per rack
    assert chip.host.kind == "nvlink-c2c"
    assert chip.host.bandwidth is not None
    assert chip.host.bandwidth * 2 * 2 == 1.8 * TERA
    assert abs(GPUS * 2 * chip.host.bandwidth - 65 * TERA) <= 0.5 * TERA
    # scale-out: 144 single-port 800 Gb/s ConnectX-9, 1.6 Tb/s per GPU, 28.8 TB/s per rack
    (slot,) = rack.nics
    nic = cat.get(Nic, slot.nic)
    assert slot.count == 2 * GPUS == 144
    line = slot.count * nic.ports * nic.port_bandwidth
    assert line * 8 == pytest.approx(115.2e12)
    assert 2 * line == pytest.approx(28.8 * TERA)
    # CPUs: 36 Vera of 88 Olympus cores = 3,168 cores, 176 threads each
    vera = cat.get(Cpu, rack.host.cpu)
    assert (vera.cores, vera.threads) == (88, 176)
    assert rack.host.sockets * vera.cores == 3168
    assert vera.memory_bandwidth == 1.2 * TERA
    assert vera.tdp is None                     # not published


def test_rack_power_budget_is_the_reported_maximum(cat: Catalog, rack: Server) -> None:
    budget = power_budget(_system(cat))
    # 72 x 2.3 kW + 144 NICs by the NIC law + 53 kW other = about 227 kW (Max-P, reported)
    assert budget.modules_W == pytest.approx(GPUS * 2300)
    assert budget.cpus_W == 0.0                 # Vera TDP unknown: folded into other_power
    assert budget.server_W == pytest.approx(227e3, rel=0.01)
    psu = rack.power_supplies
    assert psu.count * psu.rating == pytest.approx(4 * 6 * 18.3e3)   # four 6 x 18.3 kW shelves
    assert psu_capacity_W(psu.count, psu.rating, psu.redundancy) > budget.server_W


@pytest.mark.parametrize("servers", [1, 8])
def test_rack_passes_check_without_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                          servers: int) -> None:
    code = main(["check", str(_system_file(tmp_path, servers)), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["errors"] == 0
    assert [f["rule"] for f in report["findings"] if f["severity"] == "error"] == []
    serious = {f["rule"] for f in report["findings"] if f["severity"] != "info"}
    assert not {"HOST-LANES", "SERVER-POWER", "TOPOLOGY-PORTS", "LINK-LANES", "LINK-RATE",
                "SLOT-POWER", "BOARD-SLOTS", "NIC-PCIE"} & serious
    assert not serious                          # no warning either (air side: below)
    rules = {f["rule"] for f in report["findings"]}
    assert "POWER-UNKNOWN" in rules             # Vera publishes no TDP
    assert "POWER-ESTIMATED" in rules           # nor ConnectX-9 a power


def test_the_fanless_rack_leaves_no_heat_to_room_air(cat: Catalog) -> None:
    # NVIDIA: the Rubin generation is 100 % liquid-cooled with no fans, so the whole rack's
    # heat (supplies, switch trays and NICs too) goes to the liquid; the NVL72-class 85 %
    # it had before left about 35 kW to air, over the 35 kW a rack of the room removes.
    plan = facility_plan(_system(cat))
    assert plan.cooling.capture_scope == "server"
    assert plan.server.air_W == pytest.approx(0.0, abs=1e-6)
    assert plan.server.liquid_W == pytest.approx(plan.server.wall_W)
    assert plan.rack.air_W < plan.rack.air_limit_W


def test_topology_gives_every_gpu_nvlink6_per_direction(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, cat: Catalog) -> None:
    assert main(["topology", str(_system_file(tmp_path)), "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["chips"] == summary["chips_per_server"] == GPUS
    assert summary["board_topology"] == "switch"
    assert summary["scale_up_port_Bps"] == 50e9
    assert summary["scale_up_Bps_per_chip"] == 1.8 * TERA     # 3.6 TB/s both ways
    assert summary["scale_out_Bps_per_chip"] == 200e9         # 1.6 Tb/s per GPU
    assert chip_scale_out_Bps(_system(cat)) == 200e9
    assert summary["board_diameter_hops"] == 2
    assert summary["board_bisection_Bps"] == pytest.approx(GPUS / 2 * 1.8 * TERA)


# ---- estimates ---------------------------------------------------------------------------


def _cells(table: str) -> str:
    return " ".join(re.sub(r"[│┃┌┐└┘├┤┬┴┼─━]", " ", table).split())


def test_estimate_says_the_rubin_family_is_unfitted(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    base = ["estimate", "--model", "llama3-405b", "--system", str(_system_file(tmp_path)),
            "--global-batch", "1024", "--seq-len", "8192", "--tp", "8", "--pp", "9"]
    command = [*base, "--precision", "fp8"]
    assert main(command) == 0
    assert "family rubin: " + DERIVED in _cells(capsys.readouterr().out)
    assert main([*command, "--format", "json"]) == 0
    fp8 = json.loads(capsys.readouterr().out)
    assert fp8["feasible"] is True
    assert (fp8["calibration_family"], fp8["calibration_runs"]) == ("default", 0)
    assert fp8["chips"] == GPUS
    # the FP8 peak (17.5 PF) is 4.4x the BF16 one (4 PF): FP8 must step much faster
    assert main([*base, "--precision", "bf16", "--format", "json"]) == 0
    bf16 = json.loads(capsys.readouterr().out)
    assert bf16["feasible"] is True
    assert bf16["step_s"] > 2 * fp8["step_s"]
