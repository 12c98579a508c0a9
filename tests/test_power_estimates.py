"""NIC and switch power: published figures, the ratio law for the rest, its findings."""

from __future__ import annotations

import dataclasses
import math
import statistics
from pathlib import Path

import pytest
import yaml

from ocplan import units
from ocplan.catalog.catalog import BUILTIN_DIR, Catalog, load_catalog
from ocplan.catalog.schema import Fabric, Nic, Source
from ocplan.catalog.system import System, load_system
from ocplan.checks.rules import run_rules
from ocplan.topology import power as power_module
from ocplan.topology.cluster import scale_out_shape
from ocplan.topology.power import power_budget
from ocplan.topology.power_estimates import (
    PowerSample,
    builtin_nic_law,
    builtin_switch_law,
    estimate_nic,
    estimate_switch,
    fit_ratio_law,
    leave_one_out,
    nic_capacity_Bps,
    nic_samples,
    switch_capacity_Bps,
    switch_samples,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

#: Leave-one-out tolerance: an estimate within a factor of two of the published figure.
LOO_FACTOR = 2.0


@pytest.fixture(scope="module")
def builtin() -> Catalog:
    return load_catalog(use_env=False)


def _nics(catalog: Catalog) -> list[Nic]:
    return [e for e in catalog.all("nic") if isinstance(e, Nic)]


def _fabrics(catalog: Catalog) -> list[Fabric]:
    return [e for e in catalog.all("fabric") if isinstance(e, Fabric)]


def _cluster(catalog: Catalog) -> System:
    return load_system(EXAMPLES / "ubb-1024-liquid.yaml", catalog)


# ---- every part counts more than 0 W ---------------------------------------------------


def test_every_nic_has_a_figure_or_a_positive_estimate(builtin: Catalog) -> None:
    for nic in _nics(builtin):
        if nic.power is None:
            estimate = estimate_nic(nic)
            assert estimate is not None, nic.id
            assert estimate.power_W > 0, nic.id
        else:
            assert nic.power > 0, nic.id


def test_every_switch_has_a_figure_or_a_positive_estimate(builtin: Catalog) -> None:
    for fabric in _fabrics(builtin):
        if fabric.switch.power is None:
            estimate = estimate_switch(fabric)
            assert estimate is not None, fabric.id
            assert estimate.power_W > 0, fabric.id
        else:
            assert fabric.switch.power > 0, fabric.id


# ---- the law -------------------------------------------------------------------------


def test_ratio_law_is_the_median_ratio() -> None:
    # ratios 1, 2 and 10 W per B/s: the median (2) ignores the outlier
    samples = [PowerSample("a", 10.0, 10.0), PowerSample("b", 40.0, 20.0),
               PowerSample("c", 300.0, 30.0)]
    law = fit_ratio_law("nic", samples)
    assert law is not None
    assert law.W_per_Bps == pytest.approx(2.0)
    assert law.power_W(5.0) == pytest.approx(10.0)
    assert law.basis == ("a", "b", "c")
    assert fit_ratio_law("switch", []) is None


def test_nic_law_matches_the_sourced_yaml_figures(builtin: Catalog) -> None:
    # Recompute the constant from the raw YAML (not through nic_samples): median of
    # power / (ports x port rate) over the NIC files that give a power.
    ratios = []
    for path in sorted((BUILTIN_DIR / "nics").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if "power" in data:
            bandwidth = data.get("ports", 1) * units.parse_quantity(data["port_bandwidth"],
                                                                    units.BANDWIDTH)
            ratios.append(units.parse_quantity(data["power"], units.POWER) / bandwidth)
    law = builtin_nic_law()
    assert law is not None
    assert len(ratios) >= 2
    assert law.W_per_Bps == pytest.approx(statistics.median(ratios))


def test_switch_law_counts_one_box_once(builtin: Catalog) -> None:
    # roce-400g and roce-800g describe one 51.2 Tb/s box at one power: one observation
    fabrics = {f.id: f for f in _fabrics(builtin)}
    a, b = fabrics["roce-400g"], fabrics["roce-800g"]
    assert a.switch.power == b.switch.power
    assert switch_capacity_Bps(a) == switch_capacity_Bps(b)
    samples = switch_samples(fabrics.values())
    assert len({s.entry_id for s in samples} & {"roce-400g", "roce-800g"}) == 1
    pairs = [(s.power_W, s.capacity_Bps) for s in samples]
    assert len(pairs) == len(set(pairs))


def test_unsourced_power_is_not_a_sample(builtin: Catalog) -> None:
    nic = next(n for n in _nics(builtin) if n.id == "connectx-7-400g")
    unsourced = nic.model_copy(update={"sources": (Source(title="ports only",
                                                          covers=("ports",)),)})
    assert [s.entry_id for s in nic_samples([nic])] == ["connectx-7-400g"]
    assert nic_samples([unsourced]) == ()


def test_estimate_is_proportional_to_bandwidth(builtin: Catalog) -> None:
    nics = {n.id: n for n in _nics(builtin)}
    e800, e400 = estimate_nic(nics["connectx-8-800g"]), estimate_nic(nics["amd-pollara-400"])
    assert e800 is not None
    assert e400 is not None
    assert nic_capacity_Bps(nics["connectx-8-800g"]) == 2 * nic_capacity_Bps(
        nics["amd-pollara-400"])
    assert e800.power_W == pytest.approx(2 * e400.power_W)


@pytest.mark.parametrize("kind", ["nic", "switch"])
def test_leave_one_out_within_a_factor_of_two(builtin: Catalog, kind: str) -> None:
    """Each sourced entry, predicted by the law fitted on the others of its class.

    Errors (estimate / published - 1) with the catalog as of this test:
    NICs: connectx-7-200g 12.5 W vs 16.7 W (-25 %), connectx-7-400g 33.4 W vs 25 W (+34 %);
    switches: ib-ndr-400g (QM9700) 470 W vs 747 W (-37 %), roce-400g (SN5600, also
    roce-800g) 1494 W vs 940 W (+59 %). Power is not proportional to bandwidth (fixed costs
    weigh more in smaller parts), so the tolerance is a factor of two either way.
    """
    samples = (nic_samples(_nics(builtin)) if kind == "nic"
               else switch_samples(_fabrics(builtin)))
    cases = leave_one_out("nic" if kind == "nic" else "switch", samples)
    assert len(cases) == len(samples) >= 2
    for case in cases:
        assert abs(math.log(case.estimated_W / case.published_W)) <= math.log(LOO_FACTOR), case


def test_leave_one_out_of_a_single_sample_has_no_case() -> None:
    assert leave_one_out("nic", [PowerSample("only", 25.0, 5e10)]) == ()


# ---- the budget and the finding --------------------------------------------------------


def test_1024_cluster_counts_switches_and_estimated_nics(builtin: Catalog) -> None:
    system = _cluster(builtin)
    budget = power_budget(system)
    shape = scale_out_shape(system)
    fabric, nic = system.fabric, system.server_nics[0][0]
    assert shape is not None
    assert fabric is not None
    assert fabric.switch.power is not None
    assert nic.power is None
    nic_estimate = estimate_nic(nic)
    assert nic_estimate is not None
    assert budget.switches_W > 0
    assert budget.switches_W == pytest.approx(shape.switches * fabric.switch.power)
    assert budget.nics_W == pytest.approx(system.nics_per_server * nic_estimate.power_W)
    assert budget.server_W == pytest.approx(
        budget.modules_W + budget.cpus_W + budget.nics_W + budget.other_W)
    assert budget.it_W == pytest.approx(budget.server_W * system.num_servers + budget.switches_W)
    assert [e.part for e in budget.estimated] == [f"nic {nic.id}"]
    assert budget.unknown == ()


def test_estimated_switch_counts_in_the_budget(builtin: Catalog) -> None:
    system = _cluster(builtin)
    fabric = system.fabric
    assert fabric is not None
    unpublished = fabric.model_copy(update={
        "switch": fabric.switch.model_copy(update={"power": None})})
    estimate = estimate_switch(unpublished)
    shape = scale_out_shape(system)
    assert estimate is not None
    assert shape is not None
    budget = power_budget(dataclasses.replace(system, fabric=unpublished))
    assert budget.switches_W == pytest.approx(shape.switches * estimate.power_W)
    assert f"switch {fabric.switch.name}" in [e.part for e in budget.estimated]


def test_finding_names_the_part_and_says_estimated(builtin: Catalog) -> None:
    system = _cluster(builtin)
    found = [f for f in run_rules(system) if f.rule == "POWER-ESTIMATED"]
    assert [f.severity for f in found] == ["info"]
    nic = system.server_nics[0][0]
    estimate = estimate_nic(nic)
    assert estimate is not None
    assert found[0].subject == f"nic {nic.id}"
    assert nic.id in found[0].message
    assert "estimated" in found[0].message
    assert units.format_quantity(estimate.power_W, "W") in found[0].message
    assert "per Gb/s" in found[0].message
    assert not [f for f in run_rules(system) if f.rule == "POWER-UNKNOWN"]


def test_part_without_figure_or_law_stays_unknown(builtin: Catalog,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # a CPU without TDP has no law; a NIC whose law is missing falls back to 0 W
    system = _cluster(builtin)
    no_tdp = dataclasses.replace(system, cpu=system.cpu.model_copy(update={"tdp": None}))
    monkeypatch.setattr(power_module, "estimate_nic", lambda nic: None)
    budget = power_budget(no_tdp)
    nic = system.server_nics[0][0]
    assert set(budget.unknown) == {f"cpu {system.cpu.id}", f"nic {nic.id}"}
    assert budget.cpus_W == 0
    assert budget.nics_W == 0
    rules = {f.rule for f in run_rules(no_tdp)}
    assert "POWER-UNKNOWN" in rules
    assert "POWER-ESTIMATED" not in rules


def test_builtin_switch_law_names_its_basis(builtin: Catalog) -> None:
    law = builtin_switch_law()
    assert law is not None
    sourced = {f.id for f in _fabrics(builtin) if f.switch.power is not None}
    assert set(law.basis) <= sourced
    assert "per Tb/s" in law.describe()
    assert all(i in law.describe() for i in law.basis)


def test_a_systems_budget_is_remembered_per_object_not_per_equal_content() -> None:
    """Every estimate asks for its system's power budget; it is worked out once per
    system object (the fat tree's switch count was most of a repeated estimate), and a
    changed copy of the system gets its own."""
    from dataclasses import replace

    from ocplan.catalog.catalog import load_catalog
    from ocplan.catalog.system import system_for_chip
    from ocplan.topology.power import power_budget

    system = system_for_chip(load_catalog(), "h100-sxm-80gb", 512)
    first = power_budget(system)
    assert power_budget(system) is first
    facility = system.spec.facility.model_copy(update={"pue": 1.5})
    other = replace(system, spec=system.spec.model_copy(update={"facility": facility}))
    assert power_budget(other) is not first
    assert power_budget(other).facility_W == pytest.approx(first.it_W * 1.5)
    assert power_budget(other).it_W == pytest.approx(first.it_W)
