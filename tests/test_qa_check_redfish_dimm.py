"""Redfish gives a DIMM's capacity in binary units as JEDEC labels it (QA: a "64 GB" RDIMM
came back as CapacityMiB 61035, and 24 of them as TotalSystemMemoryGiB 1430.51): the
catalog reads "64 GB" with the SI prefix (64e9 B), the DIMM holds 64 GiB (JEDEC
JESD100B.01), so CapacityMiB is 65536 and the 2S EPYC 9654 module's total 1536 GiB."""

from __future__ import annotations

from pathlib import Path

import yaml

from ocplan.catalog.catalog import BUILTIN_DIR, load_catalog
from ocplan.redfish.host import CpuNode
from ocplan.redfish.module import read_managed
from ocplan.redfish.tree import cpu_node_tree

MODULES = BUILTIN_DIR / "modules"
SYSTEM = "/redfish/v1/Systems/ocm-epyc-9654-2s-flw"


def _get(path: Path, uri: str) -> dict[str, object]:
    """The resource at ``uri`` of the Redfish tree ``ocplan serve --system path`` serves
    (named after the file, as the service names it)."""
    node = read_managed(path, load_catalog())
    assert isinstance(node, CpuNode)
    body: dict[str, object] = cpu_node_tree(node, path.stem)[uri]
    return body


def test_a_64_gb_rdimm_is_64_gib() -> None:
    path = MODULES / "ocm-epyc-9654-2s-flw.yaml"
    assert _get(path, f"{SYSTEM}/Memory/CPU0_DIMM0")["CapacityMiB"] == 64 * 1024
    summary = _get(path, SYSTEM)["MemorySummary"]
    assert summary == {"TotalSystemMemoryGiB": 24 * 64}


def test_a_capacity_written_in_binary_units_is_kept(tmp_path: Path) -> None:
    data = yaml.safe_load((MODULES / "ocm-epyc-9654-2s-flw.yaml").read_text(encoding="utf-8"))
    data["memory"]["capacity"] = "64 GiB"
    path = tmp_path / "ocm-epyc-9654-2s-flw.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert _get(path, f"{SYSTEM}/Memory/CPU0_DIMM0")["CapacityMiB"] == 64 * 1024


def test_soldered_memory_follows_the_same_convention() -> None:
    body = _get(MODULES / "grace-superchip-module.yaml",
                "/redfish/v1/Systems/grace-superchip-module/Memory/CPU0_DRAM")
    assert body["CapacityMiB"] == 480 * 1024


def test_dram_bytes() -> None:
    from ocplan.redfish.odata import dram_bytes  # new with the fix

    assert dram_bytes(64e9) == 64 * 2**30
    assert dram_bytes(96e9) == 96 * 2**30
    assert dram_bytes(64 * 2**30) == 64 * 2**30
    assert dram_bytes(65536 * 2**20) == 64 * 2**30
