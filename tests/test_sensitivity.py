"""What each hardware resource buys a training layout (ocplan.plan.sensitivity)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from clikit import one_line, run
from leverkit import doubled
from ocplan import Plan, Workload, estimate, load_catalog, sensitivity, system_for_chip
from ocplan.catalog.system import System
from ocplan.errors import SpecError
from ocplan.plan.sensitivity import LEVERS, Sensitivity
from ocplan.workloads.shape import ModelShape

CAT = load_catalog()


def _job(model: str, chip: str, chips: int, batch: int = 256, seq: int = 4096,
         precision: str = "bf16") -> tuple[Workload, System]:
    wl = Workload(ModelShape.from_arch(CAT.model(model)), seq, batch, precision)
    return wl, system_for_chip(CAT, chip, chips)


def _effects(s: Sensitivity) -> dict[str, float]:
    return {e.lever: e.change for e in s.effects}


def test_a_compute_bound_layout_leans_on_the_matrix_peak() -> None:
    """Llama 3 8B data-parallel on one H100 server: no collective crosses a NIC, so the
    matrix peak leads, HBM bandwidth (norms, activations, casts) helps less, scale-out
    not at all."""
    wl, system = _job("llama3-8b", "h100-sxm-80gb", 8)
    s = sensitivity(wl, Plan(dp=8), system)
    assert s.feasible
    change = _effects(s)
    assert s.leading is not None
    assert s.leading.lever == "matrix_peak"
    assert -0.5 < change["matrix_peak"] < -0.2
    assert change["matrix_peak"] < change["hbm_bandwidth"] < 0.0
    assert change["scale_out_bandwidth"] == 0.0
    assert change["host_bandwidth"] == 0.0  # nothing offloaded
    assert "matrix-unit peak" in s.summary()


@pytest.mark.parametrize("update", ["peak", "hbm"])
def test_a_lever_is_the_same_change_made_in_the_catalog(update: str) -> None:
    """Doubling the matrix peak (or HBM bandwidth) in the accelerator's own catalog entry
    gives the step the lever reports: the lever scales exactly what the step reads."""
    wl, system = _job("llama3-70b", "h100-sxm-80gb", 64, batch=128, seq=8192,
                      precision="fp8")
    plan = Plan(tp=4, pp=4, dp=4, vpp=5)
    acc2, lever = doubled(system.accelerator, update)
    faster = estimate(wl, plan, replace(system, accelerator=acc2))
    effect = next(e for e in sensitivity(wl, plan, system).effects if e.lever == lever)
    assert effect.step_s == pytest.approx(faster.step_s, rel=1e-12)
    assert effect.step_s < estimate(wl, plan, system).step_s


@pytest.mark.parametrize("factor", [2.0, 0.5])
@pytest.mark.parametrize(("model", "chip", "chips", "plan"), [
    ("llama3-70b", "h100-sxm-80gb", 64, Plan(tp=4, pp=4, dp=4, vpp=5)),
    ("deepseek-v3", "b200", 256, Plan(pp=8, ep=32, dp=32)),
    ("llama3-8b", "mi355x", 16, Plan(dp=16, zero=3)),
    ("gpt3-175b", "a100-sxm-80gb", 512, Plan(tp=8, pp=8, dp=8)),
])
def test_a_faster_resource_never_slows_the_step(factor: float, model: str, chip: str,
                                                chips: int, plan: Plan) -> None:
    """Every elasticity lies in [0, 1] whichever way the factor goes; every resource
    together moves the step at least as much as any one, and by at most the factor
    (the per-kernel and per-message costs do not scale)."""
    wl, system = _job(model, chip, chips, batch=1024)
    s = sensitivity(wl, plan, system, factor)
    assert s.feasible, s.reason
    assert [e.lever for e in s.effects] == [lever.name for lever in LEVERS]
    for e in s.effects:
        assert math.isfinite(e.step_s)
        assert -1e-9 <= e.elasticity <= 1 + 1e-9, e
        assert (e.step_s <= s.base_step_s) if factor > 1 else (e.step_s >= s.base_step_s)
    steps = [e.step_s for e in s.effects]
    if factor > 1:
        assert s.base_step_s / factor <= s.together_s <= min(steps)
    else:
        assert s.base_step_s / factor >= s.together_s >= max(steps)
    assert 0.0 <= s.fixed_share < 0.2


def test_scale_out_matters_only_where_traffic_crosses_nics() -> None:
    """GPT-3 175B on 512 A100s with ZeRO 3 over 32-way data parallelism sends its
    parameter gathers across the NICs; the same model in one HGX server sends nothing
    there."""
    wl, system = _job("gpt3-175b", "a100-sxm-80gb", 512, batch=1536, seq=2048)
    wide = _effects(sensitivity(wl, Plan(tp=8, pp=2, dp=32, zero=3), system))
    assert wide["scale_out_bandwidth"] < -0.01
    wl8, one = _job("llama3-8b", "a100-sxm-80gb", 8)
    alone = sensitivity(wl8, Plan(tp=8), one)
    assert _effects(alone)["scale_out_bandwidth"] == 0.0
    assert all(e.absent is None for e in alone.effects if e.present)


def test_a_resource_the_chip_does_not_publish_is_marked_absent() -> None:
    """MI355X's exponential rate is not in its catalog entry: the lever says so, and its
    step is the base step (not a made-up zero effect)."""
    wl, system = _job("llama3-8b", "mi355x", 8)
    s = sensitivity(wl, Plan(dp=8), system)
    exp = next(e for e in s.effects if e.lever == "exp_rate")
    assert system.accelerator.compute is None or system.accelerator.compute.exp_per_clock is None
    assert not exp.present
    assert exp.absent == "not published for this chip"
    assert exp.step_s == s.base_step_s
    h100 = _job("llama3-8b", "h100-sxm-80gb", 8)
    assert next(e for e in sensitivity(h100[0], Plan(dp=8), h100[1]).effects
                if e.lever == "exp_rate").present


def test_a_layout_that_cannot_run_has_a_reason_and_no_effects() -> None:
    wl, system = _job("llama3-8b", "h100-sxm-80gb", 8)
    s = sensitivity(wl, Plan(tp=3, dp=1), system)
    assert not s.feasible
    assert s.reason
    assert s.effects == ()
    assert s.as_dict()["base_step_s"] is None
    assert s.summary().startswith("no sensitivity")


@pytest.mark.parametrize("factor", [1.0, 0.05, 11.0])
def test_a_factor_out_of_bounds_is_bad_input(factor: float) -> None:
    wl, system = _job("llama3-8b", "h100-sxm-80gb", 8)
    with pytest.raises(SpecError, match="factor"):
        sensitivity(wl, Plan(dp=8), system, factor)


def test_cli_table_json_and_bad_factor(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["estimate", "--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "8"]
    code, out, _ = run(capsys, *args, "--sensitivity", "0.5")
    assert code == 0
    assert "what each resource buys: the step with it x0.5" in out
    assert "every resource x0.5" in out
    code, out, _ = run(capsys, *args, "--format", "json")
    assert code == 0
    whole = json.loads(out)
    data = whole["sensitivity"]
    assert data["factor"] == 2.0
    assert [e["lever"] for e in data["effects"]] == [lever.name for lever in LEVERS]
    assert data["leading"] == "matrix_peak"
    assert data["base_step_s"] == pytest.approx(whole["step_s"])
    line = one_line(*run(capsys, *args, "--sensitivity", "1"))
    assert line == ("--sensitivity: sensitivity = 1.0: a factor of 1 scales nothing; use "
                    "e.g. 2 (twice as fast) or 0.5 (half)")
    code, out, _ = run(capsys, "estimate", "--model", "llama3-405b", "--chip",
                       "h100-sxm-80gb", "--chips", "8", "--format", "json")
    assert code == 1
    assert json.loads(out)["sensitivity"] is None


def test_the_report_carries_the_sensitivity(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    """`ocplan report`: the JSON holds the sensitivity of the estimate it reports, the
    HTML page its sentence and its figure."""
    job = ("--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "8")
    rc, _, err = run(capsys, "report", *job, "--out", tmp_path / "r.json")
    assert rc == 0, err
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert data["sensitivity"]["base_step_s"] == data["estimate"]["step_s"]
    rc, _, err = run(capsys, "report", *job, "--out", tmp_path / "r.html")
    assert rc == 0, err
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert '<div class="fig" id="sensitivity"></div>' in page
    assert data["sensitivity"]["summary"] in page


def test_a_system_without_scale_out_says_so() -> None:
    """Gaudi 2 HL-225B in an HLS-2 server has no scale-out NIC: the scale-out lever is
    absent, with the system's reason, while the chip's own resources still act."""
    wl = Workload(ModelShape.from_arch(CAT.model("llama2-7b")), 4096, 64, "bf16")
    system = system_for_chip(CAT, "gaudi2-hl225b", 8, server_id="gaudi2-hls2")
    s = sensitivity(wl, Plan(tp=8), system)
    by_name = {e.lever: e for e in s.effects}
    assert not by_name["scale_out_bandwidth"].present
    assert by_name["scale_out_bandwidth"].absent == "none on this system"
    assert by_name["scale_up_bandwidth"].change < 0.0  # TP 8 all-reduces on the board
    assert by_name["matrix_peak"].present
