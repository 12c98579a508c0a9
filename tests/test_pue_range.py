"""The PUE-range finding compares like with like: a PUE a system file gives is an annual
figure and is judged against the published annual averages; the derived one is a
design-day peak (code-minimum chiller, fan-power limit), which sits above those averages
by construction, so a default run does not flag itself. Only a derived peak below the
best annual average (an input that is off) is flagged."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ocplan.catalog.catalog import Catalog, load_catalog
from ocplan.catalog.system import System, system_for_chip
from ocplan.facility import facility_data, facility_plan
from ocplan.facility.findings import plan_findings

RULE = "FACILITY-PUE-RANGE"


@pytest.fixture(autouse=True)
def _no_env_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCPLAN_CATALOG", raising=False)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _with_pue(system: System, pue: float) -> System:
    facility = system.spec.facility.model_copy(update={"pue": pue})
    return replace(system, spec=system.spec.model_copy(update={"facility": facility}))


def test_default_air_system_does_not_flag_its_own_design_point(catalog: Catalog) -> None:
    system = system_for_chip(catalog, "h100-sxm-80gb", 64)
    plan = facility_plan(system)
    high = facility_data().pue_ranges["air"].high
    assert plan.pue_given is None
    assert plan.pue_derived > high  # the design day sits above the annual averages
    assert RULE not in {f.rule for f in plan.findings}
    assert any("above the published annual averages" in n and "design day" in n
               for n in plan.notes)


@pytest.mark.parametrize(("pue", "flagged"), [(1.7, True), (1.3, False), (1.05, True)])
def test_given_pue_is_judged_against_annual_averages(catalog: Catalog, pue: float,
                                                     flagged: bool) -> None:
    system = _with_pue(system_for_chip(catalog, "h100-sxm-80gb", 64), pue)
    plan = facility_plan(system)
    assert plan.pue_given == pue
    found = [f for f in plan.findings if f.rule == RULE]
    assert bool(found) is flagged
    if flagged:
        assert f"PUE {pue:g} given in the system file" in found[0].message
        assert "1.1-1.58" in found[0].message
    # a given figure replaces the derived one, so no note compares the derived one
    assert not any("above the published annual" in n for n in plan.notes)


def test_derived_peak_below_best_annual_average_is_flagged(catalog: Catalog) -> None:
    system = system_for_chip(catalog, "h100-sxm-80gb", 64)
    plan = facility_plan(system)
    data = facility_data()
    air = data.pue_ranges["air"]
    # a range whose best annual average lies above this design day's peak
    raised = replace(data, pue_ranges={**data.pue_ranges,
                                       "air": air.model_copy(
                                           update={"low": plan.pue_derived + 0.1,
                                                   "high": plan.pue_derived + 0.5})})
    found = [f for f in plan_findings(system, raised, plan.rack, plan.cooling,
                                      plan.breakdown) if f.rule == RULE]
    assert len(found) == 1
    assert f"design-day PUE {plan.pue_derived:.3f} is below" in found[0].message
    # the same plan judged against the real range raises nothing
    assert not [f for f in plan_findings(system, data, plan.rack, plan.cooling,
                                         plan.breakdown) if f.rule == RULE]
