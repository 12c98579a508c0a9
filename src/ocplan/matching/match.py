"""``ocplan match``: which CPU platform serves a workload mix best, how many, at what power
and cost.

For each platform (:mod:`ocplan.matching.platforms`) and each archetype of the mix
(:mod:`ocplan.matching.archetypes`), a server's capacity ``c_i`` comes from the CPU
performance model (or the accelerator-host count from cores and lanes). The fleet is

    N = ceil( sum_i D_i / c_i / u_i )

servers for demands ``D_i``, where ``u_i`` is the target utilization ``u`` for a
throughput archetype and 1 for a slot archetype (the accelerator host: ``c_i``
accelerators a server can hold): slots are a hard count, all of which can be filled, not
a throughput that needs headroom for peaks. The binding archetype is the one that takes
the most servers, ``D_i / c_i / u_i``.
Power at load follows the linear server power
curve ``P(x) = P_idle + (P_max - P_idle) x`` at the fleet's mean load
``x = sum_i D_i / c_i / N`` (Barroso and Hoelzle, "The case for energy-proportional
computing", IEEE Computer 40(12), 2007, Figure 1: server power rises about linearly from
its idle floor with utilization); ``P_max`` is the module's power at TDP and the idle
share is the request's ``idle_fraction``. TCO over the horizon is the servers' price plus
their energy at the facility's PUE and the electricity price.

Per platform the result names performance per kW and per million of price (mix units:
one mix unit is the whole demand, so a server serves ``1 / sum_i D_i / c_i`` of them), the
binding archetype or constraint, the compliance findings of the module, and where every
capacity came from (model, measured, derived; flagged when the CPU's family has no
fitted data). A platform whose CPU does not publish what it needs (TDP, memory speed) is
listed as not modelled, with what is missing, never left out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

from pydantic import Field

from ocplan.catalog.fields import Bytes, Power, Spec
from ocplan.matching.archetypes import (
    ARCHETYPES,
    CORES_PER_ACCELERATOR,
    LANES_PER_ACCELERATOR,
)
from ocplan.matching.platforms import Platform, Unmodelled, either
from ocplan.units import DECIMAL_PREFIXES, DEFAULT_CURRENCY, format_quantity

__all__ = ["DEFAULT_PRICE", "ENERGY_COST", "PRICED_OBJECTIVES", "Capacity", "MatchRequest",
           "MatchResult", "Matched", "Predictor", "Query", "match", "match_notes",
           "ranking_objective"]

HOURS_PER_YEAR = 8766.0  # 365.25 days
#: Watts per kilowatt: energy is priced per kWh and efficiency is stated per kW.
W_PER_KW = DECIMAL_PREFIXES["k"]
#: Perf per cost is per million of the currency (a server's price is thousands).
PRICE_PER_MILLION = DECIMAL_PREFIXES["M"]
#: The ``prices`` key of the price of every platform not priced by its own or its CPU's id.
DEFAULT_PRICE = "default"
#: Lowest target utilization a request may set: below 1 % a fleet is sized for a hundred
#: times its demand, which is no plan (and ever smaller values only grow the count).
MIN_UTILIZATION = 0.01


@dataclass(frozen=True)
class Capacity:
    """A server's capacity for one archetype, in its unit, with where it came from."""

    value: float
    low: float
    high: float
    source: str
    """``model`` (predicted), ``measured ...`` (published results of this configuration)
    or ``derived`` (counted from cores and lanes)."""
    flags: tuple[str, ...] = ()


#: One question to the performance model: (configuration row, benchmark, metric).
Query = tuple[dict[str, str], str, str | None]
#: Queries -> their capacities in order, None where the model cannot predict that benchmark
#: for that configuration. Batched because the CPU model evaluates a design matrix: one
#: call for the whole catalog costs what one row costs.
Predictor = Callable[[Sequence[Query]], list[Capacity | None]]

#: What a platform's row of a match is (:attr:`Matched.status`).
Status = Literal["serves", "cannot serve", "not modelled"]
ArchetypeId = Literal["cloud-throughput", "latency-services", "jvm-services", "analytics",
                      "big-data", "accelerator-host"]


class MatchConstraints(Spec):
    isa: tuple[Literal["x86-64", "arm64", "riscv64"], ...] | None = None
    sockets: tuple[Annotated[int, Field(ge=1, le=8, strict=True)], ...] | None = None
    min_memory_per_core: Bytes | None = None
    min_lanes: Annotated[int, Field(ge=0, le=4096, strict=True)] | None = None
    rack_power: Power | None = None
    """Power one rack may draw at load: sets servers per rack and racks."""


class MatchRequest(Spec):
    """A workload mix, the constraints a platform must meet, and the prices."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    demand: Annotated[dict[ArchetypeId, Annotated[float, Field(strict=False, gt=0, le=1e15)]],
                      Field(min_length=1)]
    constraints: MatchConstraints = MatchConstraints()
    prices: dict[Annotated[str, Field(min_length=1, max_length=120)],
                 Annotated[float, Field(strict=False, ge=0, le=1e9)]] = Field(
        default_factory=dict)
    """Price per server (platform id, or ``default``), in the request's currency."""
    currency: Annotated[str, Field(min_length=1, max_length=8)] = DEFAULT_CURRENCY
    electricity_per_kwh: Annotated[float, Field(strict=False, ge=0, le=10)] = 0.10
    pue: Annotated[float, Field(strict=False, ge=1, le=3)] = 1.3
    horizon_years: Annotated[float, Field(strict=False, gt=0, le=20)] = 4.0
    target_utilization: Annotated[float, Field(strict=False, ge=MIN_UTILIZATION, le=1)] = 0.7
    """Share of a server's capacity the fleet is sized to use (headroom for peaks)."""
    idle_fraction: Annotated[float, Field(strict=False, ge=0, lt=1)] = 0.3
    """Server power when idle as a share of its full-load power (the power curve's floor)."""
    objective: Literal["tco", "perf_per_watt", "perf_per_cost", "servers"] = "tco"


@dataclass(frozen=True)
class Matched:
    """One platform's answer to the mix (or why it cannot serve it)."""

    platform: str
    kind: str
    cpu: str
    family: str
    isa: str
    sockets: int
    feasible: bool
    reason: str | None
    capacities: dict[str, Capacity]
    servers: int | None
    binding: str | None
    """The archetype whose demand takes the largest share, or the constraint that did."""
    load: float | None
    power_per_server_W: float | None
    fleet_power_W: float | None
    racks: int | None
    price_per_server: float | None
    capex: float | None
    energy_cost: float | None
    tco: float | None
    perf_per_kW: float | None
    """Mix units per kW of server power at full load (one mix unit = the whole demand);
    the objective ``perf_per_watt`` ranks by it (the same order as per watt)."""
    perf_per_cost: float | None
    """Mix units per million of price."""
    flags: tuple[str, ...]
    findings: tuple[dict[str, str], ...]
    status: Status = "serves"
    """``serves`` (ranked), ``cannot serve`` (a constraint, a failed check or a missing
    prediction; :attr:`reason` says which) or ``not modelled`` (its CPU does not publish
    what the model needs, and nothing is guessed; :attr:`reason` names what)."""

    def as_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["capacities"] = {k: c.__dict__ | {"flags": list(c.flags)}
                              for k, c in self.capacities.items()}
        data["flags"] = list(self.flags)
        data["findings"] = list(self.findings)
        return data


@dataclass(frozen=True)
class MatchResult:
    name: str
    objective: str
    """What the platforms are ranked by: the request's objective, or the fallback when it
    cannot be computed (:func:`ranking_objective`)."""
    currency: str
    ranked: tuple[Matched, ...]
    """Feasible platforms best first, then the others with their reasons."""
    objective_asked: str = ""
    """The request's objective ('' : the same as :attr:`objective`)."""
    objective_note: str | None = None
    """Why the ranking is by another objective than the one asked (None when it is not)."""

    def as_json(self, top: int | None = None) -> dict[str, Any]:
        """The result as JSON: the best ``top`` platforms that serve the mix (every one
        when None), then every platform that cannot, with its reason. ``served`` counts
        all that serve it, ``left_out`` those beyond ``top``, ``not_modelled`` those
        whose CPU publishes too little to model."""
        served = [m for m in self.ranked if m.feasible]
        shown = served if top is None else served[:top]
        rest = [m for m in self.ranked if not m.feasible]
        return {"name": self.name, "objective": self.objective,
                "objective_asked": self.objective_asked or self.objective,
                "objective_note": self.objective_note, "currency": self.currency,
                "served": len(served), "left_out": len(served) - len(shown),
                "cannot_serve": sum(m.status == "cannot serve" for m in rest),
                "not_modelled": sum(m.status == "not modelled" for m in rest),
                "platforms": [m.as_json() for m in shown + rest]}


#: Flag of an accelerator-host capacity counted from an upper bound of the lanes (a
#: multi-socket module whose socket links' lanes are unpublished).
LANES_UNVERIFIED = "lanes unverified (socket links unpublished: an upper bound)"


def _derived(archetype: str) -> bool:
    """Whether an archetype's capacity is counted from the platform, not predicted."""
    return archetype == "accelerator-host"


def _capacity(p: Platform, archetype: str, found: Capacity | None) -> Capacity | None:
    """A server's capacity for an archetype from the model's answer to its query (None
    for derived archetypes)."""
    if _derived(archetype):
        by_cores = p.cores / CORES_PER_ACCELERATOR
        by_lanes = p.lanes / LANES_PER_ACCELERATOR
        value = math.floor(min(by_cores, by_lanes))
        flags: tuple[str, ...] = ("lanes" if by_lanes < by_cores else "cores",)
        if p.lanes_upper_bound:  # a buyer must not pick a winner on an unchecked count
            flags += (LANES_UNVERIFIED,)
        return Capacity(float(value), float(value), float(value), "derived", flags)
    if found is None:
        return None
    if archetype == "latency-services":  # capacity = cores x single-copy speed
        k = float(p.cores)
        return Capacity(found.value * k, found.low * k, found.high * k, found.source,
                        found.flags)
    return found


def _design_problem(isa: str, sockets: int, c: MatchConstraints) -> str | None:
    """The constraint an ISA and socket count break (known without any model)."""
    if c.isa is not None and isa not in c.isa:
        return f"isa {isa} is not one of {', '.join(c.isa)}"
    if c.sockets is not None and sockets not in c.sockets:
        return f"{sockets} sockets, the mix allows {either(sorted(c.sockets))}"
    return None


def _constraint_problem(p: Platform, c: MatchConstraints) -> str | None:
    design = _design_problem(p.cpu.isa, p.module.sockets, c)
    if design is not None:
        return design
    if c.min_memory_per_core is not None and p.memory_bytes / p.cores < c.min_memory_per_core:
        return (f"memory per core {p.memory_bytes / p.cores / 1e9:.1f} GB < "
                f"{c.min_memory_per_core / 1e9:.1f} GB")
    if c.min_lanes is not None and p.lanes < c.min_lanes:
        return f"{p.lanes} lanes exported < {c.min_lanes}"
    if c.rack_power is not None and p.power_max_W > c.rack_power:
        return (f"one server ({format_quantity(p.power_max_W, 'W')} at full load) exceeds "
                f"the rack power ({format_quantity(c.rack_power, 'W')})")
    return None


def _failed_checks(findings: Sequence[Mapping[str, str]]) -> str | None:
    """``the module fails check MODULE-SOCKETS (2 sockets but ...)``: the rules a module
    fails and what each says (None when it fails none)."""
    errors = [f for f in findings if f["severity"] == "error"]
    if not errors:
        return None
    said = "; ".join(f"{f['rule']} ({_without_subject(f)})" for f in errors)
    return f"the module fails check{'s' if len(errors) > 1 else ''} {said}"


def _without_subject(finding: Mapping[str, str]) -> str:
    """A finding's message without the ``<module id>: `` it opens with (the row names
    the module already)."""
    message, subject = finding["message"], finding.get("subject") or ""
    return message.removeprefix(f"{subject}: ") if subject else message


def match_notes(flags: Sequence[str], findings: Sequence[Mapping[str, str]],
                most_flags: int = 2) -> str:
    """A platform's notes for a table: its first ``most_flags`` capacity flags, then the
    check rules its module warns about or fails (``check warnings: MODULE-SOCKETS``)."""
    notes = list(flags[:most_flags])
    for severity, label in (("error", "check errors"), ("warning", "check warnings")):
        rules = sorted({f["rule"] for f in findings if f["severity"] == severity})
        if rules:
            notes.append(f"{label}: {', '.join(rules)}")
    return "; ".join(notes)


def _one(p: Platform, req: MatchRequest, answers: Mapping[str, Capacity | None]) -> Matched:
    findings = tuple(f.as_dict() for f in p.findings if f.severity != "info")
    base: dict[str, Any] = dict(platform=p.id, kind=p.kind, cpu=p.cpu.id,
                                family=p.cpu.family or "", isa=p.cpu.isa,
                                sockets=p.module.sockets, findings=findings)
    price = req.prices.get(p.id, req.prices.get(p.cpu.id, req.prices.get(DEFAULT_PRICE)))
    capacities: dict[str, Capacity] = {}
    missing: list[str] = []
    for archetype in req.demand:
        cap = _capacity(p, archetype, answers.get(archetype))
        if cap is None or cap.value <= 0:
            missing.append(archetype)
        else:
            capacities[archetype] = cap
    flags = tuple(sorted({f for c in capacities.values() for f in c.flags
                          if f not in ("cores", "lanes")}))
    problem = _constraint_problem(p, req.constraints) or _failed_checks(findings)
    if missing:
        problem = problem or (f"no prediction for {', '.join(missing)} on this CPU")
    if problem is not None:
        return _infeasible(base, problem, capacities, price, flags)
    shares = {k: req.demand[k] / capacities[k].value for k in req.demand}
    total = sum(shares.values())
    # Servers each archetype takes: a throughput's share with the headroom, a slot
    # count's share as it is (every slot can be filled).
    taken = {k: v if ARCHETYPES[k].slots else v / req.target_utilization
             for k, v in shares.items()}
    servers = max(1, math.ceil(sum(taken.values()) - 1e-9))
    load = total / servers
    binding = max(taken, key=lambda k: taken[k])
    p_server = p.power_max_W * (req.idle_fraction + (1 - req.idle_fraction) * load)
    fleet_W = p_server * servers
    racks = None
    if req.constraints.rack_power is not None:
        per_rack = max(1, int(req.constraints.rack_power // p.power_max_W))
        racks = math.ceil(servers / per_rack)
    energy = (fleet_W * req.pue / W_PER_KW * HOURS_PER_YEAR * req.horizon_years
              * req.electricity_per_kwh)
    capex = None if price is None else price * servers
    mix_per_server = 1.0 / total
    return Matched(
        **base, feasible=True, reason=None, capacities=capacities, servers=servers,
        binding=binding, load=load, power_per_server_W=p_server, fleet_power_W=fleet_W,
        racks=racks, price_per_server=price, capex=capex, energy_cost=energy,
        tco=None if capex is None else capex + energy,
        perf_per_kW=mix_per_server / (p.power_max_W / W_PER_KW),
        perf_per_cost=None if not price else mix_per_server / price * PRICE_PER_MILLION,
        flags=flags)


def _infeasible(base: dict[str, Any], reason: str, capacities: dict[str, Capacity],
                price: float | None, flags: tuple[str, ...]) -> Matched:
    return Matched(**base, feasible=False, reason=reason, capacities=capacities,
                   servers=None, binding=None, load=None, power_per_server_W=None,
                   fleet_power_W=None, racks=None, price_per_server=price, capex=None,
                   energy_cost=None, tco=None, perf_per_kW=None, perf_per_cost=None,
                   flags=flags, status="cannot serve")


def _not_modelled(u: Unmodelled, req: MatchRequest) -> Matched:
    """The row of a platform the model cannot size, nothing computed: not modelled and
    why, unless the mix's ISA or sockets exclude it anyway (then that is its reason)."""
    price = req.prices.get(u.id, req.prices.get(u.cpu.id, req.prices.get(DEFAULT_PRICE)))
    base: dict[str, Any] = dict(platform=u.id, kind=u.kind, cpu=u.cpu.id,
                                family=u.cpu.family or "", isa=u.cpu.isa, sockets=u.sockets,
                                findings=())
    excluded = _design_problem(u.cpu.isa, u.sockets, req.constraints)
    if excluded is not None:
        return _infeasible(base, excluded, {}, price, ())
    return replace(_infeasible(base, u.reason, {}, price, ()), status="not modelled")


#: Objectives that need a price per server: without one for any platform that can serve
#: the mix they rank nothing (every TCO and perf/cost is unknown).
PRICED_OBJECTIVES = ("tco", "perf_per_cost")
#: The objective a ranking falls back to without server prices when the mix gives an
#: electricity price: the fleet's energy cost over the horizon (its power at load, the
#: PUE and that price: the part of TCO that needs no server price).
ENERGY_COST = "energy_cost"


def ranking_objective(req: MatchRequest, feasible: Sequence[Matched]) -> tuple[str, str | None]:
    """The objective the platforms that can serve the mix are ranked by, and the line
    that says why when it is not the request's: a priced objective (TCO, perf/cost) with
    no price for any of them would list them in catalog order under its name; the best
    objective that can be computed ranks them instead: energy cost when the mix gives an
    electricity price (``electricity_per_kwh``, above 0), else perf per kW (the default
    electricity price is no one's bill, and ranks a fleet by its size more than by its
    efficiency)."""
    if (req.objective not in PRICED_OBJECTIVES or not feasible
            or any(m.price_per_server for m in feasible)):
        return req.objective, None  # nothing to rank (none can serve the mix) or priced
    electricity = "electricity_per_kwh" in req.model_fields_set and req.electricity_per_kwh > 0
    used = ENERGY_COST if electricity else "perf_per_watt"
    why = "no prices given" if not req.prices else \
        "no price for any platform that can serve the mix"
    what = (f"energy cost ({req.horizon_years:g} years of power at load, PUE "
            f"{req.pue:g}, {req.electricity_per_kwh:g} {req.currency}/kWh)"
            if used == ENERGY_COST else "perf per kW")
    return used, f"{why}: ranked by {what} instead of {req.objective}"


def _key(objective: str) -> Callable[[Matched], tuple[float, ...]]:
    inf = math.inf

    def key(m: Matched) -> tuple[float, ...]:
        if objective == "tco":
            return (m.tco if m.tco is not None else inf, m.servers or inf)
        if objective == ENERGY_COST:
            return (m.energy_cost if m.energy_cost is not None else inf, m.servers or inf)
        if objective == "perf_per_watt":  # per kW ranks as per W does
            return (-(m.perf_per_kW or 0.0),)
        if objective == "perf_per_cost":
            return (-(m.perf_per_cost or 0.0),)
        return (float(m.servers or inf), m.fleet_power_W or inf)
    return key


def match(req: MatchRequest, platforms: Sequence[Platform], predict: Predictor,
          unmodelled: Sequence[Unmodelled] = ()) -> MatchResult:
    """Every platform's fleet for the request's mix, best first by its objective, then
    the platforms that cannot serve it and the ``unmodelled`` ones, each with its
    reason."""
    asked = [(i, archetype) for i in range(len(platforms)) for archetype in req.demand
             if not _derived(archetype)]
    found = predict([(platforms[i].row, ARCHETYPES[a].benchmark, ARCHETYPES[a].metric)
                     for i, a in asked])
    assert len(found) == len(asked), "a predictor answers every query"
    answers: list[dict[str, Capacity | None]] = [{} for _ in platforms]
    for (i, archetype), cap in zip(asked, found, strict=True):
        answers[i][archetype] = cap
    rows = [_one(p, req, answers[i]) for i, p in enumerate(platforms)]
    served = [m for m in rows if m.feasible]
    objective, note = ranking_objective(req, served)
    feasible = sorted(served, key=_key(objective))
    rows += [_not_modelled(u, req) for u in unmodelled]
    rest = sorted((m for m in rows if not m.feasible),
                  key=lambda m: (m.status == "not modelled", m.platform))
    return MatchResult(req.name, objective, req.currency, tuple(feasible + rest),
                       req.objective, note)
