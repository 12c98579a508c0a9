"""Power modes and power caps (issue 11): a system picks a published mode or sets a cap,
the checks use that power, and performance follows the sustained clock-power law."""

from __future__ import annotations

from typing import Any

import pytest

from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.checks.rules import run_rules
from ocplan.costmodel.chip import POWER_CLOCK_EXPONENT
from ocplan.errors import SpecError
from ocplan.plan.estimate import estimate
from ocplan.plan.plan import Plan
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

CAT = load_catalog()


def _system(**fields: Any) -> Any:
    return api.system_from_mapping({"name": "t", "servers": 1, **fields}, CAT)


def _errors(system: Any) -> set[str]:
    return {f.rule for f in run_rules(system) if f.severity == "error"}


def test_a_named_mode_sets_the_module_power_and_the_checks_use_it() -> None:
    air = _system(server="gaudi3-hls3", power_mode="air")
    liquid = _system(server="gaudi3-hls3", power_mode="liquid")
    assert (air.module_power, air.power_profile) == (900.0, "air")
    assert (liquid.module_power, liquid.power_profile) == (1200.0, "liquid")
    assert "AIR-COOLING" not in _errors(air)
    # the 1.2 kW liquid mode in the air-cooled HLS-3 chassis is what the air rule refuses
    assert "AIR-COOLING" in _errors(liquid)


def test_an_unknown_mode_names_the_allowed_ones() -> None:
    with pytest.raises(SpecError) as info:
        _system(server="gaudi3-hls3", power_mode="turbo")
    (problem,) = info.value.problems
    assert problem.field == "power_mode"
    assert "air (900 W)" in problem.message
    assert "liquid (1200 W)" in problem.message
    with pytest.raises(SpecError, match="use power_cap"):
        _system(server="dgx-h100", power_mode="turbo")


def _tokens_per_s(system: Any) -> tuple[float, float]:
    wl = Workload(ModelShape.from_arch(CAT.model("llama3-8b")), 4096, 256, "bf16")
    e = estimate(wl, Plan(tp=1, pp=1, dp=8, micro_batch=1, zero=1), system)
    assert e.feasible, e.reason
    return e.tokens_per_s_per_chip, e.power_W


def test_a_power_cap_lowers_throughput_by_the_clock_law_and_power_with_it() -> None:
    full = _system(server="dgx-h100")
    capped = _system(server="dgx-h100", power_cap="500 W")
    assert capped.power_profile == "capped"
    assert capped.module_power == 500.0
    fast, watts = _tokens_per_s(full)
    slow, watts_capped = _tokens_per_s(capped)
    clock = (500 / 700) ** POWER_CLOCK_EXPONENT
    # compute slows by the clock ratio; communication and memory-bound work do not,
    # so the step slows by less than the clock but by more than nothing
    assert clock < slow / fast < 1.0
    assert watts - watts_capped == pytest.approx(8 * (700 - 500))  # the 8 chips used
    # a cap above the module's power changes nothing
    above = _system(server="dgx-h100", power_cap="900 W")
    assert above.module_power == 700.0
    assert above.power_profile == "tdp"
    assert _tokens_per_s(above)[0] == pytest.approx(fast)
