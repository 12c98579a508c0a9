"""Measured matmul ceilings (catalog ``compute.measured_matmul``) against the calibration.

The best dense matmul rate measured on a chip (a shape search with the vendor library)
bounds what any run of it reaches on large GEMMs, so no calibrated large-GEMM
efficiency of its family may exceed the measured rate over the peak at the clock a
dense GEMM sustains (:func:`ocplan.costmodel.chip.measured_gemm_ceiling`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from ocplan.catalog import load_catalog
from ocplan.catalog.schema import Accelerator
from ocplan.costmodel.chip import measured_gemm_ceiling
from ocplan.plan.calibration import (
    ceiling_shares,
    ceiling_violations,
    load_calibration,
)

B200 = (Path(__file__).resolve().parents[1] / "src" / "ocplan" / "catalog" / "data"
        / "accelerators" / "b200.yaml")


def _accelerators() -> list[Accelerator]:
    catalog = load_catalog()
    return [catalog.accelerator(i) for i in catalog.ids("accelerator")]


def _measured() -> list[Accelerator]:
    return [a for a in _accelerators() if a.compute and a.compute.measured_matmul]


def test_the_chips_with_published_matmul_sweeps_carry_them() -> None:
    """compute_units.md §2.1.1-2.1.2: every fitted family has at least one chip with a
    measured ceiling except the TPUs and Ascend (no public sweep of the catalog's SKU)."""
    families = {a.family for a in _measured()}
    assert {"ampere", "hopper", "blackwell", "gaudi", "cdna3", "cdna4"} <= families


@pytest.mark.parametrize("precision", ["bf16", "fp8"])
def test_each_ceiling_is_a_share_of_the_peak_at_the_sustained_clock(precision: str) -> None:
    """A measured rate above the peak at the sustained clock would mean the clock and the
    measurement were taken under different conditions (MI300X's older 781.9 TF BF16 row
    against its 1207 MHz hipBLASLt clock: 1.04); the recorded pairs are consistent."""
    ceilings = {a.id: measured_gemm_ceiling(a, precision) for a in _measured()}
    known = {k: v for k, v in ceilings.items() if v is not None}
    assert len(known) >= 8
    assert all(0.5 < v <= 1.0 for v in known.values()), known


def test_the_sustained_clock_raises_the_ceiling() -> None:
    """MI300X: 708 TF of 1307.4 is 0.54 of the peak, 0.94 of the peak at 1207 MHz."""
    mi300x = load_catalog().accelerator("mi300x")
    ceiling = measured_gemm_ceiling(mi300x, "bf16")
    assert ceiling == pytest.approx(708.0 / (1307.4 * 1207.0 / 2100.0), rel=1e-3)
    assert measured_gemm_ceiling(mi300x, "fp4") is None


def test_the_committed_calibration_stays_below_every_measured_ceiling() -> None:
    assert ceiling_violations(load_calibration(), _accelerators()) == []


def test_shares_name_the_family_each_chip_uses() -> None:
    """MI300X and MI325X (CDNA3, no published run) use the ``default`` values; every
    chip with a measurement appears once per field it has a ceiling for."""
    shares = ceiling_shares(load_calibration(), _accelerators())
    used = {(s.chip, s.field): s.family for s in shares}
    assert used[("mi300x", "gemm")] == "default"
    assert used[("b300", "gemm_8bit")] == "blackwell"
    assert ("h200-sxm-141gb", "gemm") not in used  # no BF16 row in the table
    assert {s.chip for s in shares} == {a.id for a in _measured()}
    assert all(s.share == pytest.approx(s.value / s.ceiling) for s in shares)


def test_a_family_value_above_a_chip_ceiling_is_named() -> None:
    """Blackwell's 16-bit GEMM at 0.80 passes B200's 0.776 and GB200's 0.775 ceilings
    (B300's 0.786 too), and only those."""
    cal = load_calibration()
    high = replace(cal.families["blackwell"], gemm=0.80)
    problems = ceiling_violations(replace(cal, families={**cal.families, "blackwell": high}),
                                  _accelerators())
    named = {line.split("'")[0].split()[-1] for line in problems}
    assert named == {"b200", "b300", "gb200"}, problems
    assert all(line.startswith("blackwell.gemm = 0.800") for line in problems)


def _b200_entry(**measured: str) -> dict[str, Any]:
    """The catalog's B200 file as written (units as text), with ``measured``."""
    entry: dict[str, Any] = yaml.safe_load(B200.read_text(encoding="utf-8"))
    entry["compute"]["measured_matmul"] = measured
    return entry


def test_a_measured_rate_above_the_peak_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"measured_matmul\.bf16 2300 TFLOP/s needs a "
                                              r"peak_flops\.bf16 at least as large"):
        Accelerator.model_validate(_b200_entry(bf16="2300 TFLOP/s"))


def test_a_measured_rate_without_a_peak_is_rejected() -> None:
    entry = _b200_entry(fp8="3000 TFLOP/s")
    del entry["peak_flops"]["fp8"]
    with pytest.raises(ValidationError, match=r"measured_matmul\.fp8 .*\(peak: none\)"):
        Accelerator.model_validate(entry)
