"""What each hardware resource buys a serving deployment (ocplan.serving.sensitivity)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from clikit import one_line, run
from leverkit import doubled
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import System, system_for_chip
from ocplan.errors import SpecError
from ocplan.plan.sensitivity import LEVERS
from ocplan.serving.estimate import estimate_serving
from ocplan.serving.plan import ServingPlan
from ocplan.serving.sensitivity import MEASURES, ServingSensitivity, serving_sensitivity
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.shape import ModelShape

CAT = load_catalog()
#: Throughput elasticities may overshoot [0, 1] by rounding only.
ROUNDING = 1e-9


def _wl(model: str, input_len: float, output_len: float, **kw: object) -> ServingWorkload:
    return ServingWorkload(ModelShape.from_arch(CAT.model(model)), input_len, output_len,
                           **kw)  # type: ignore[arg-type]


def _changes(s: ServingSensitivity, measure: str) -> dict[str, float | None]:
    return {e.lever: e.changes[measure] for e in s.effects}


def test_decode_at_batch_one_leans_on_hbm_bandwidth() -> None:
    """One sequence of Llama 3 8B on one H100 reads every weight per output token: HBM
    bandwidth leads and shortens TPOT, the matrix peak barely moves it; the prompt's
    prefill (TTFT) answers to the peak instead."""
    s = serving_sensitivity(_wl("llama3-8b", 1000, 500, load="static", batch=1),
                            ServingPlan(), system_for_chip(CAT, "h100-sxm-80gb", 1))
    assert s.headline == "output_tokens_per_s_per_chip"
    assert s.leading is not None
    assert s.leading.lever == "hbm_bandwidth"
    assert s.leading.elasticity is not None
    assert s.leading.elasticity > 0.5
    tpot = _changes(s, "tpot_s")
    ttft = _changes(s, "ttft_s")
    assert tpot["hbm_bandwidth"] is not None
    assert tpot["matrix_peak"] is not None
    assert tpot["hbm_bandwidth"] < -0.25 < tpot["matrix_peak"] <= 0.0
    assert ttft["matrix_peak"] is not None
    assert ttft["hbm_bandwidth"] is not None
    assert ttft["matrix_peak"] < ttft["hbm_bandwidth"] <= 0.0
    assert "HBM bandwidth x2 raises output tokens/s per chip" in s.summary()


def test_a_prefill_heavy_deployment_leans_on_the_matrix_peak() -> None:
    """8,000-token prompts and ten output tokens: the matrix peak leads, HBM trails."""
    s = serving_sensitivity(_wl("llama3-70b", 8000, 10), ServingPlan(tp=8),
                            system_for_chip(CAT, "h200-sxm-141gb", 8))
    assert s.leading is not None
    assert s.leading.lever == "matrix_peak"
    up = _changes(s, "output_tokens_per_s_per_chip")
    assert up["matrix_peak"] is not None
    assert up["hbm_bandwidth"] is not None
    assert up["matrix_peak"] > 2 * up["hbm_bandwidth"] > 0.0


@pytest.mark.parametrize("update", ["peak", "hbm"])
def test_a_lever_is_the_same_change_made_in_the_catalog(update: str) -> None:
    """Doubling the peak (or HBM bandwidth) in the accelerator's catalog entry gives every
    figure the lever reports: the lever scales exactly what the serving model reads."""
    wl = _wl("llama3-70b", 2000, 500, load="concurrency", concurrency=64)
    system = system_for_chip(CAT, "h100-sxm-80gb", 8)
    plan = ServingPlan(tp=8)
    acc2, lever = doubled(system.accelerator, update)
    faster = estimate_serving(wl, plan, replace(system, accelerator=acc2))
    effect = next(e for e in serving_sensitivity(wl, plan, system).effects
                  if e.lever == lever)
    for m in MEASURES:
        expected = getattr(faster, m.name)
        assert effect.values[m.name] == (None if expected is None
                                         else pytest.approx(expected, rel=1e-12)), m.name
    assert faster.output_tokens_per_s > estimate_serving(wl, plan, system).output_tokens_per_s


LAYOUTS = [
    ("llama3-8b", "h100-sxm-80gb", 1, ServingPlan(), {"load": "static", "batch": 8}),
    ("llama3-70b", "h200-sxm-141gb", 8, ServingPlan(tp=8), {}),
    ("llama3-70b", "h100-sxm-80gb", 16, ServingPlan(tp=8, pp=2), {}),
    ("mixtral-8x7b", "mi300x", 8, ServingPlan(tp=8), {"load": "concurrency",
                                                     "concurrency": 128}),
]


@pytest.mark.parametrize("factor", [2.0, 0.5])
@pytest.mark.parametrize(("model", "chip", "chips", "plan", "load"), LAYOUTS)
def test_a_faster_resource_never_lowers_the_capacity(factor: float, model: str, chip: str,
                                                     chips: int, plan: ServingPlan,
                                                     load: dict[str, object]) -> None:
    """Under a load that fills the deployment, throughput responds to each resource with
    an elasticity from 0 to 1 (no resource buys more than its own factor), and every
    resource together at least as much as any one and at most the factor."""
    s = serving_sensitivity(_wl(model, 1000, 800, **load), plan,
                            system_for_chip(CAT, chip, chips), factor)
    assert s.feasible
    assert [e.lever for e in s.effects] == [lever.name for lever in LEVERS]
    together = s.together
    assert together is not None
    assert together.elasticity is not None
    for e in s.effects:
        assert e.elasticity is not None
        assert -ROUNDING <= e.elasticity <= together.elasticity + ROUNDING, e.lever
    assert together.elasticity <= 1.0 + ROUNDING
    assert together.elasticity > 0.5


def _h100(chips: int) -> System:
    return system_for_chip(CAT, "h100-sxm-80gb", chips)


def test_scale_out_matters_only_where_the_instance_crosses_servers() -> None:
    """TP 8 x PP 2 over two H100 servers sends activations over the NICs; TP 8 in one
    server sends nothing there."""
    wl = _wl("llama3-70b", 1000, 800)
    across = serving_sensitivity(wl, ServingPlan(tp=8, pp=2), _h100(16))
    inside = serving_sensitivity(wl, ServingPlan(tp=8), _h100(8))
    up = "output_tokens_per_s_per_chip"
    assert (_changes(across, up)["scale_out_bandwidth"] or 0.0) > 0.0
    assert _changes(inside, up)["scale_out_bandwidth"] == 0.0
    assert (_changes(inside, up)["scale_up_bandwidth"] or 0.0) > 0.0  # TP all-reduces


def test_under_a_poisson_rate_the_question_is_latency() -> None:
    """A Poisson rate fixes the throughput (the arrivals'): no resource changes it, the
    headline is TPOT, HBM bandwidth shortens it; with SLOs the headline is the highest
    rate meeting them. Halving every resource at a rate near capacity overloads the
    deployment: that effect says so and has no TTFT."""
    system = system_for_chip(CAT, "h200-sxm-141gb", 8)
    plan = ServingPlan(tp=8)
    wl = _wl("llama3-70b", 1000, 800, load="poisson", rate_per_s=2.0)
    s = serving_sensitivity(wl, plan, system)
    assert s.headline == "tpot_s"
    assert all(c == pytest.approx(0.0, abs=1e-12)
               for c in _changes(s, "output_tokens_per_s_per_chip").values())
    assert (_changes(s, "tpot_s")["hbm_bandwidth"] or 0.0) < -0.1
    assert "makes TPOT" in s.summary()
    assert s.leading is not None
    assert s.leading.elasticity is not None
    slo = serving_sensitivity(replace(wl, slo_tpot_s=0.05), plan, system)
    assert slo.headline == "slo_rate_per_s"
    assert (_changes(slo, "slo_rate_per_s")["matrix_peak"] or 0.0) > 0.0
    capacity = estimate_serving(_wl("llama3-70b", 1000, 800), plan, system).requests_per_s
    near = serving_sensitivity(replace(wl, rate_per_s=0.8 * capacity), plan, system, 0.5)
    assert near.feasible
    assert near.together is not None
    assert near.together.reason is not None
    assert near.together.reason.startswith("queueing")
    assert near.together.values["ttft_s"] is None
    assert near.together.changes["ttft_s"] is None


def test_a_deployment_that_cannot_serve_has_a_reason_and_no_effects() -> None:
    s = serving_sensitivity(_wl("llama3-405b", 1000, 800), ServingPlan(), _h100(1))
    assert not s.feasible
    assert s.reason
    assert s.effects == ()
    assert s.together is None
    assert s.summary().startswith("no sensitivity")
    assert json.loads(json.dumps(s.as_dict()))["effects"] == []


@pytest.mark.parametrize("factor", [1.0, 0.05, 11.0])
def test_a_factor_out_of_bounds_is_bad_input(factor: float) -> None:
    with pytest.raises(SpecError, match="factor"):
        serving_sensitivity(_wl("llama3-8b", 100, 100), ServingPlan(), _h100(1), factor)


INFER = ("infer", "--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "8",
         "--tp", "8")


def test_cli_table_json_and_bad_factor(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, *INFER, "--sensitivity", "0.5")
    assert code == 0, err
    assert "what each resource buys: the deployment with it x0.5" in out
    assert "every resource x0.5" in out
    code, out, _ = run(capsys, *INFER, "--format", "json")
    assert code == 0
    whole = json.loads(out)
    data = whole["sensitivity"]
    assert data["factor"] == 2.0
    assert data["headline"] == "output_tokens_per_s_per_chip"
    assert data["base"]["output_tokens_per_s_per_chip"] == pytest.approx(
        whole["output_tokens_per_s_per_chip"])
    assert [e["lever"] for e in data["effects"]] == [lever.name for lever in LEVERS]
    line = one_line(*run(capsys, *INFER, "--sensitivity", "1"))
    assert "sensitivity" in line
    assert "a factor of 1 scales nothing" in line
    line = one_line(*run(capsys, *INFER[:7], "--search", "--sensitivity", "2"))
    assert line.startswith("--sensitivity")
    assert "not to a search" in line
    code, out, _ = run(capsys, "infer", "--model", "llama3-405b", "--chip", "h100-sxm-80gb",
                       "--chips", "1", "--format", "json")
    assert code == 1
    assert json.loads(out)["sensitivity"] is None


def test_the_serving_report_carries_the_sensitivity(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    page_file = tmp_path / "serve.html"
    code, out, err = run(capsys, *INFER, "--report", page_file, "--format", "json")
    assert code == 0, err
    summary = json.loads(out)["sensitivity"]["summary"]
    page = page_file.read_text(encoding="utf-8")
    assert '<div class="fig" id="sensitivity"></div>' in page
    assert summary in page
