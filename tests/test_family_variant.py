"""Family variants (catalog ``family_variant``, ``Calibration.variants``): a variant's
fitted factor moves its chips' grouped 8-bit GEMMs and nothing else, the calibration
file carries it, and the fit gives a variant whose runs a fold leaves out its family's
value."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from clikit import run_wide
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.plan.calibration import (
    Calibration,
    VariantCalibration,
    calibration_note,
    load_calibration,
)
from ocplan.plan.engine import efficiencies, system_model
from ocplan.plan.estimate import estimate
from ocplan.plan.plan import Plan
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload
from scriptkit import load_script

ULTRA = "blackwell-ultra"


def _without_variants(cal: Calibration) -> Calibration:
    return replace(cal, variants={})


def _with_factor(cal: Calibration, factor: float) -> Calibration:
    return replace(cal, variants={ULTRA: VariantCalibration(factor, 5)})


def test_the_ultra_parts_declare_the_variant_and_blackwell_does_not() -> None:
    catalog = load_catalog()
    for chip in ("b300", "gb300"):
        acc = catalog.accelerator(chip)
        assert (acc.family, acc.family_variant) == ("blackwell", ULTRA), chip
    for chip in ("b200", "gb200"):
        assert catalog.accelerator(chip).family_variant is None, chip


def test_the_factor_moves_grouped_8bit_gemms_alone() -> None:
    """On a variant chip the factor multiplies the grouped 8-bit efficiency; every other
    efficiency is the family's, and the grouped 4-bit one keeps the family's grouped
    8-bit value (no variant run measured 4 bits). A chip without the variant is
    untouched."""
    cal = load_calibration()
    catalog = load_catalog()
    ultra = system_model(system_for_chip(catalog, "gb300", 72))
    base = efficiencies(ultra, _without_variants(cal))
    moved = efficiencies(ultra, _with_factor(cal, 1.5))
    assert moved.grouped_gemm_8bit == pytest.approx(min(1.0, 1.5 * base.grouped_gemm_8bit))
    assert moved.grouped_gemm_8bit > base.grouped_gemm_8bit
    assert moved.grouped_gemm_4bit == pytest.approx(base.grouped_gemm_8bit)
    for name in ("gemm", "gemm_8bit", "attention", "grouped_gemm", "memory", "launch_s",
                 "softmax_overlap", "clock"):
        assert getattr(moved, name) == getattr(base, name), name
    plain = system_model(system_for_chip(catalog, "gb200", 72))
    assert efficiencies(plain, _with_factor(cal, 1.5)) == efficiencies(
        plain, _without_variants(cal))


def _step(chip: str, model: str, precision: str, cal: Calibration, ep: int) -> float:
    catalog = load_catalog()
    wl = Workload(ModelShape.from_arch(catalog.model(model)), 4096, 512, precision)
    est = estimate(wl, Plan(tp=1, pp=1, dp=8, ep=ep, micro_batch=1),
                   system_for_chip(catalog, chip, 8), cal)
    assert est.feasible, est.reason
    return est.step_s


@pytest.mark.parametrize(("model", "precision", "ep", "moves"), [
    ("qwen3-30b-a3b", "fp8", 8, True),
    ("qwen3-30b-a3b", "bf16", 8, False),
    ("qwen3-30b-a3b", "fp4", 8, False),
    ("llama3-8b", "fp8", 1, False),
])
def test_only_moe_steps_in_fp8_on_the_variant_move(model: str, precision: str, ep: int,
                                                   moves: bool) -> None:
    cal = load_calibration()
    base = _step("b300", model, precision, _without_variants(cal), ep)
    faster = _step("b300", model, precision, _with_factor(cal, 1.5), ep)
    if moves:
        assert faster < base
    else:
        assert faster == base
    # B200, the same family without the variant, never moves
    assert _step("b200", model, precision, _with_factor(cal, 1.5), ep) == _step(
        "b200", model, precision, _without_variants(cal), ep)


def test_the_calibration_file_carries_the_variants() -> None:
    """Through JSON and back the variants are kept; a file written before variants (no
    key) reads as none, and a chip of no variant, or of one the file lacks, gets 1."""
    cal = _with_factor(load_calibration(), 1.25)
    again = Calibration.from_json(json.loads(json.dumps(cal.to_json())))
    assert again.variants == cal.variants
    assert again.grouped_8bit_factor(ULTRA) == 1.25
    older = cal.to_json()
    del older["variants"]
    assert Calibration.from_json(older).variants == {}
    assert again.grouped_8bit_factor(None) == 1.0
    assert again.grouped_8bit_factor("no-such-variant") == 1.0


def test_a_fold_without_the_variants_runs_gives_it_the_familys_value() -> None:
    """The fit's fill: a variant with no run in a fold takes 1 (its family's value), one
    with runs keeps what the solver found; the families' fill is unchanged by it."""
    fc = load_script("fit_calibration")
    saved = dict(fc.FAMILIES), dict(fc.VARIANTS)
    try:
        fc.FAMILIES.clear()
        fc.FAMILIES.update({"ampere": 3, "blackwell": 5})
        fc.VARIANTS.clear()
        fc.VARIANTS.update({ULTRA: 2})
        k = len(fc.FAMILY_FIELDS)
        x = np.full(2 * k + len(fc.PRIOR_GLOBAL) + 1, 0.6)
        x[-1] = 1.7
        kept = fc._fill_unseen(x, {"ampere", "blackwell"}, {ULTRA})
        dropped = fc._fill_unseen(x, {"ampere", "blackwell"}, {None})
        assert kept[-1] == 1.7
        assert dropped[-1] == 1.0
        assert fc._unpack(kept).variants[ULTRA].grouped_gemm_8bit == pytest.approx(1.7)
        assert list(dropped[:-1]) == list(kept[:-1])
    finally:
        fc.FAMILIES.clear()
        fc.FAMILIES.update(saved[0])
        fc.VARIANTS.clear()
        fc.VARIANTS.update(saved[1])


def test_an_estimate_names_the_variant_it_used() -> None:
    """An estimate on a variant chip carries the variant's name, factor and runs (JSON
    too), and its calibration note says what the variant changes; a chip without a
    fitted variant carries none and its note does not mention one."""
    catalog = load_catalog()
    cal = _with_factor(load_calibration(), 1.5)
    wl = Workload(ModelShape.from_arch(catalog.model("qwen3-30b-a3b")), 4096, 512, "fp8")
    plan = Plan(tp=1, pp=1, dp=8, ep=8, micro_batch=1)
    ultra = estimate(wl, plan, system_for_chip(catalog, "b300", 8), cal)
    assert ultra.calibration_variant == (ULTRA, 1.5, 5)
    assert json.loads(json.dumps(ultra.as_dict()))["calibration_variant"] == [ULTRA, 1.5, 5]
    note = calibration_note(ultra.calibration_family, ultra.calibration_runs,
                            ultra.calibration_cv_error_pct, "blackwell",
                            ultra.calibration_variant)
    assert f"its {ULTRA} variant's grouped 8-bit (MoE expert) GEMMs at 1.50x the " \
           "family's, fitted on 5 run(s)" in note
    plain = estimate(wl, plan, system_for_chip(catalog, "b200", 8), cal)
    assert plain.calibration_variant is None
    assert "variant" not in calibration_note(plain.calibration_family, plain.calibration_runs,
                                             plain.calibration_cv_error_pct, "blackwell",
                                             plain.calibration_variant)
    # the committed calibration fitted the variant: the CLI's table names it
    committed = estimate(wl, plan, system_for_chip(catalog, "gb300", 8))
    assert committed.calibration_variant is not None
    assert committed.calibration_variant[0] == ULTRA
    table = run_wide("estimate", "--model", "qwen3-30b-a3b", "--chip", "gb300", "--chips",
                     "8", "--ep", "8", "--global-batch", "512", "--precision", "fp8")
    assert f"its {ULTRA} variant's grouped 8-bit" in table
