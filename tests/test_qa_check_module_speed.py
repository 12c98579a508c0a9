"""DIMMs rated faster than the CPU runs them are a finding, not "no findings" (QA: a
2S EPYC 9654 module with DDR5-8800 RDIMMs passed ``ocplan check`` silently while ``match``
capped its bandwidth at the CPU's 4,800 MT/s): an info MODULE-MEM-SPEED naming the speed
they run at and the CPU catalog field it comes from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from clikit import run
from ocplan.catalog.catalog import BUILTIN_DIR, load_catalog
from ocplan.catalog.schema import ComputeModule
from ocplan.checks.module_rules import module_findings, module_memory

MODULE = BUILTIN_DIR / "modules" / "ocm-epyc-9654-2s-flw.yaml"


@pytest.fixture(autouse=True)
def _no_env_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCPLAN_CATALOG", raising=False)


def _module(**memory: object) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(MODULE.read_text(encoding="utf-8"))
    data["memory"].update(memory)
    return data


def test_check_names_the_cpu_speed_the_dimms_run_at(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fast.yaml"
    path.write_text(yaml.safe_dump(_module(rated_mts=8800)), encoding="utf-8")
    rc, out, _ = run(capsys, "check", path, "--format", "json")
    assert rc == 0  # valid: faster DIMMs run down-clocked
    (finding,) = json.loads(out)["findings"]
    assert (finding["rule"], finding["severity"]) == ("MODULE-MEM-SPEED", "info")
    assert "DIMMs rated 8,800 MT/s run at the CPU's 4,800 MT/s" in finding["message"]
    assert "epyc-9654 memory_mts" in finding["message"]  # the catalog field it comes from


def test_the_finding_states_the_bandwidth_match_uses() -> None:
    catalog = load_catalog()
    module = ComputeModule.model_validate(_module(rated_mts=8800))
    bw = module_memory(module, catalog)
    assert (bw.effective_mts, bw.limited_by) == (4800, "cpu-1dpc")
    (finding,) = module_findings(module, catalog)
    assert "922 GB/s" in finding.message  # 2 x 12 x 4800e6 x 8 B = 921.6 GB/s


def test_mrdimms_cite_the_mrdimm_speed() -> None:
    catalog = load_catalog()
    data = yaml.safe_load((BUILTIN_DIR / "modules" / "ocm-xeon-6980p-2s-flw.yaml").read_text(
        encoding="utf-8"))
    data["memory"]["rated_mts"] = 12800
    findings = module_findings(ComputeModule.model_validate(data), catalog)
    assert [(f.rule, f.severity) for f in findings] == [("MODULE-MEM-SPEED", "info")]
    assert "xeon-6980p memory_mts_mrdimm" in findings[0].message


def test_dimms_at_or_below_the_cpu_speed_stay_silent() -> None:
    catalog = load_catalog()
    for rated in (4800, 4400):
        module = ComputeModule.model_validate(_module(rated_mts=rated))
        assert module_findings(module, catalog) == []
