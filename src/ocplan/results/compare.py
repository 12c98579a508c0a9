"""Compare: one training job on several systems, each at its best layout, side by side.

A buyer's question is rarely "how fast is this layout" but "which of these servers, and
how many, for this job". :func:`compare` answers it by running the same search on every
contender (a system, or a chip count of one) and lining the best layouts up: throughput,
step time, MFU, memory headroom, time, energy and cost to train, IT and facility power,
racks, and the system's compliance findings, with ratios against a baseline.

Trust comes first: every contender's system is checked (:func:`ocplan.facility.system_findings`)
before anything is estimated. A system with an error finding is not estimated unless
``allow_invalid`` is set; its row is infeasible with the rules that failed as the reason,
and an estimate made anyway says so (``allowed_invalid``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ocplan.catalog.system import System
from ocplan.checks.rules import REFUSED, Finding, refusal
from ocplan.errors import SpecError
from ocplan.facility import facility_plan, system_findings
from ocplan.plan.calibration import calibration_note, format_likely, load_calibration
from ocplan.plan.estimate import Estimate
from ocplan.plan.search import run_inputs_problems, search
from ocplan.plan.search_defaults import DEFAULT_MEMORY_HEADROOM
from ocplan.results.cluster import cluster_outlook, job_facility_W
from ocplan.topology.power import power_budget
from ocplan.units import format_duration, format_money, format_quantity
from ocplan.workloads.workload import Workload

__all__ = [
    "RATIO_KEYS",
    "TIE_REL",
    "Budget",
    "BudgetPick",
    "ComparedSystem",
    "Comparison",
    "Contender",
    "Ranged",
    "budget_note",
    "compare",
    "leader",
    "measured",
    "pick_within",
    "ranking_note",
    "reach",
    "reach_note",
    "within_reach",
]

#: Row measures a comparison divides by the baseline's (each is a plain number or None).
RATIO_KEYS: tuple[str, ...] = (
    "tokens_per_s_per_chip", "tokens_per_s", "step_s", "mfu", "time_to_train_s",
    "time_to_train_with_failures_s", "energy_to_train_J", "energy_to_train_with_failures_J",
    "cost_to_train", "cost_to_train_with_failures", "it_power_W", "supply_input_power_W",
    "facility_power_W")
#: Which way is better for each measure the comparison names a leader for.
_LARGER_IS_BETTER: dict[str, bool] = {
    "tokens_per_s_per_chip": True, "tokens_per_s": True, "step_s": False, "mfu": True,
    "memory_headroom_pct": True, "time_to_train_s": False, "energy_to_train_J": False,
    "cost_to_train": False, "it_power_W": False, "supply_input_power_W": False,
    "facility_power_W": False,
    "goodput": True, "time_to_train_with_failures_s": False,
    "energy_to_train_with_failures_J": False, "cost_to_train_with_failures": False,
    "pue": False}


@dataclass(frozen=True)
class Contender:
    """One system of a comparison, at a chip count, with its price per chip-hour."""

    name: str
    system: System
    chips: int
    price_per_chip_hour: float | None = None


@dataclass(frozen=True)
class ComparedSystem:
    """A contender's best layout (or why it has none), in the units the names carry."""

    name: str
    chip: str
    chips: int
    servers: int
    racks: int | None
    """Racks of the servers the chips use; None when the system file gives no rack."""
    feasible: bool
    reason: str | None
    layout: str | None
    tokens_per_s_per_chip: float | None
    tokens_per_s: float | None
    step_s: float | None
    mfu: float | None
    memory_headroom_pct: float | None
    """Share of HBM the best layout leaves free, %."""
    bound: str | None
    time_to_train_s: float | None
    energy_to_train_J: float | None
    cost_to_train: float | None
    it_power_W: float
    """IT power at TDP of the chips' share of the system (servers and switches), before
    the losses of the servers' supplies."""
    supply_input_power_W: float
    """IT power at the supplies' input of the chips' share: ``it_power_W`` with the
    servers' supply losses, what the PUE multiplies (``facility_power_W = pue x
    supply_input_power_W``)."""
    facility_power_W: float
    """Facility power of the chips' share: IT, supply and distribution losses, cooling
    (:func:`ocplan.facility.facility_plan`; its PUE is derived unless the file gives one)."""
    pue: float
    cdus: int
    """Coolant distribution units of the whole system (0 for air cooling)."""
    findings: tuple[Finding, ...]
    allowed_invalid: bool
    """Estimated although the system fails a check (the user asked for it)."""
    calibration: str
    """Where the chip's fitted values come from (family and runs, or derived only)."""
    goodput: float | None = None
    """Expected useful share of the wall time under failures and checkpoints (None
    without tokens to train or without storage in the system file)."""
    time_to_train_with_failures_s: float | None = None
    """Expected wall time to train with failures, checkpoints and restarts, s (None as
    :attr:`goodput`, and where failures come faster than checkpoints: goodput 0)."""
    energy_to_train_with_failures_J: float | None = None
    """Facility energy over that wall time, J."""
    cost_to_train_with_failures: float | None = None
    """Price x chips x that wall time (None without a price)."""
    likely_tokens_per_s_per_chip: tuple[float, float] | None = None
    """(low, high) tokens/s per chip a run of the best layout would likely measure
    (:attr:`~ocplan.plan.estimate.Estimate.likely_tokens_per_s_per_chip`)."""
    calibration_family: str | None = None
    """The calibration family the best estimate used (``default``: an unfitted one)."""
    ratios: dict[str, float | None] = field(default_factory=dict)
    """Each of :data:`RATIO_KEYS` divided by the baseline's (None when either is None)."""

    def as_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k not in ("findings",)}
        data["findings"] = [f.as_dict() for f in self.findings]
        return data


@dataclass(frozen=True)
class Budget:
    """Limits a buyer sets on the whole run: what it may cost to train (in the prices'
    currency), how long it may take (s; with failures where the system names its
    checkpoint storage) and the facility power it may draw (W). None: no limit."""

    max_cost: float | None = None
    max_time_to_train_s: float | None = None
    max_facility_power_W: float | None = None

    @property
    def given(self) -> bool:
        return any(v is not None for v in (self.max_cost, self.max_time_to_train_s,
                                           self.max_facility_power_W))

    def broken(self, row: ComparedSystem, with_failures: bool = False) -> tuple[str, ...]:
        """The limits ``row`` breaks (``"cost"``, ``"time"``, ``"power"``), its time and
        cost to train taken with failures or failure-free (:func:`failures_counted`); an
        infeasible row breaks ``"feasible"``."""
        if not row.feasible:
            return ("feasible",)
        out: list[str] = []
        cost, time_s = _cost(row, with_failures), _wall_s(row, with_failures)
        if self.max_cost is not None and (cost is None or cost > self.max_cost):
            out.append("cost")
        if self.max_time_to_train_s is not None and (
                time_s is None or time_s > self.max_time_to_train_s):
            out.append("time")
        if self.max_facility_power_W is not None and \
                row.facility_power_W > self.max_facility_power_W:
            out.append("power")
        return tuple(out)


@dataclass(frozen=True)
class BudgetPick:
    """The row a budget picks, the rule it picked by and what every other row breaks."""

    name: str | None
    """The picked row; None when no feasible row meets every limit."""
    by: str
    """``"fastest"`` (a cost or power limit: the quickest run it affords),
    ``"cheapest"`` (a deadline alone: the lowest cost that meets it) or
    ``"least energy"`` (a deadline without prices)."""
    broken: dict[str, tuple[str, ...]]
    """Row name -> the limits it breaks, for the rows that break any."""
    with_failures: bool = False
    """Whether the rows were judged on their time, cost and energy to train with
    failures (:func:`failures_counted`), else failure-free."""

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "by": self.by, "broken": self.broken,
                "with_failures": self.with_failures}


def failures_counted(rows: Sequence[ComparedSystem]) -> bool:
    """Whether a budget judges ``rows`` with failures: only when every feasible row with a
    time to train has its failures counted (its system names checkpoint storage).
    Otherwise all are judged failure-free, so a system whose file leaves storage out
    cannot beat the same hardware with storage by having its failures ignored."""
    timed = [r for r in rows if r.feasible and r.time_to_train_s is not None]
    return bool(timed) and all(r.goodput is not None for r in timed)


def _wall_s(row: ComparedSystem, with_failures: bool) -> float | None:
    return row.time_to_train_with_failures_s if with_failures else row.time_to_train_s


def _cost(row: ComparedSystem, with_failures: bool) -> float | None:
    return row.cost_to_train_with_failures if with_failures else row.cost_to_train


def _energy_J(row: ComparedSystem, with_failures: bool) -> float | None:
    return row.energy_to_train_with_failures_J if with_failures else row.energy_to_train_J


def pick_within(rows: Sequence[ComparedSystem], budget: Budget) -> BudgetPick:
    """The best row that meets every limit of ``budget``: with a cost (or only a power)
    limit the fastest, since the money is spent either way and time is what it buys;
    with a deadline alone the cheapest, or the least energy when no row has a cost.
    Times, costs and energies are all with failures or all failure-free
    (:func:`failures_counted`); a run that never ends (failures faster than checkpoints)
    breaks any time or cost limit."""
    assert budget.given, "a pick needs a limit"
    fails = failures_counted(rows)
    broken = {r.name: b for r in rows if (b := budget.broken(r, fails))}
    ok = [r for r in rows if r.name not in broken]
    best: ComparedSystem | None
    if budget.max_cost is not None or budget.max_time_to_train_s is None:
        by, measure = "fastest", _wall_s
    elif any(r.cost_to_train is not None for r in rows):
        by, measure = "cheapest", _cost
    else:
        by, measure = "least energy", _energy_J
    scored = [(v, r.name, r) for r in ok if (v := measure(r, fails)) is not None]
    best = min(scored, key=lambda t: (t[0], t[1]))[2] if scored else None
    return BudgetPick(None if best is None else best.name, by, broken, fails)


def budget_note(result: Comparison, currency: str) -> str | None:
    """The budget of ``result`` and the row it picks (or what every row breaks), as one
    sentence for people, costs labelled ``currency``; None without a budget. The CLI,
    the HTML report and the workbench all print this one."""
    budget, pick = result.budget, result.pick
    if budget is None or pick is None:
        return None
    limits = [f"cost <= {format_money(budget.max_cost, currency)}"
              if budget.max_cost is not None else "",
              f"time <= {format_duration(budget.max_time_to_train_s)}"
              if budget.max_time_to_train_s is not None else "",
              f"facility power <= {format_quantity(budget.max_facility_power_W, 'W')}"
              if budget.max_facility_power_W is not None else ""]
    head = "budget (" + ", ".join(x for x in limits if x) + "): "
    if pick.name is None:
        reasons = {r.name: r.reason for r in result.systems}
        over = "; ".join(_unmet(name, b, reasons.get(name)) for name, b in pick.broken.items())
        return head + f"no row meets it ({over})" + _basis_note(result.systems, pick)
    row = next(r for r in result.systems if r.name == pick.name)
    wall, cost = _wall_s(row, pick.with_failures), _cost(row, pick.with_failures)
    failures = " with failures" if pick.with_failures else ""
    facts = [f"{format_duration(wall)} to train{failures}" if wall is not None else "",
             format_money(cost, currency) if cost is not None else "",
             f"{format_quantity(row.facility_power_W, 'W')} facility"]
    within = len(result.systems) - len(pick.broken)
    return (head + f"{pick.name}, the {pick.by} of the {within} row(s) within it: "
            + ", ".join(x for x in facts if x) + _basis_note(result.systems, pick))


def _basis_note(rows: Sequence[ComparedSystem], pick: BudgetPick) -> str:
    """Why a budget judged failure-free although some rows count their failures: the
    rows whose systems name no checkpoint storage."""
    if pick.with_failures or not any(r.goodput is not None for r in rows):
        return ""
    bare = [r.name for r in rows if r.feasible and r.goodput is None
            and r.time_to_train_s is not None]
    return (f" (judged failure-free, as {', '.join(bare)} name(s) no checkpoint storage "
            "to count failures with)")


def _unmet(name: str, broken: tuple[str, ...], reason: str | None) -> str:
    """How a row misses a budget: the limits it breaks, or, with no estimate, why it has
    none: a system refused for its checks (its own reason), else no layout that fits."""
    if broken != ("feasible",):
        return f"{name} breaks {', '.join(broken)}"
    if reason is not None and reason.startswith(REFUSED):
        return f"{name} has no estimate: {reason}"
    return f"{name} has no layout that fits"


@dataclass(frozen=True)
class Comparison:
    """The rows of a comparison, its baseline and the leader of each measure."""

    baseline: str
    objective: str
    train_tokens: float | None
    memory_headroom: float
    systems: tuple[ComparedSystem, ...]
    leaders: dict[str, str]
    """Name of the best feasible row for each measure (larger or smaller, as it should)."""
    elapsed_s: float
    budget: Budget | None = None
    pick: BudgetPick | None = None
    """The row the budget picks (None without a budget)."""

    def as_json(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "objective": self.objective,
                "train_tokens": self.train_tokens, "memory_headroom": self.memory_headroom,
                "systems": [s.as_json() for s in self.systems], "leaders": self.leaders,
                "elapsed_s": self.elapsed_s,
                "budget": None if self.budget is None else dict(self.budget.__dict__),
                "pick": None if self.pick is None else self.pick.as_json(),
                "ranking_note": ranking_note(self)}

    def within_reach(self) -> tuple[str, ...]:
        """Rows whose likely throughput range reaches the throughput leader's
        (:func:`within_reach`); empty without a leader or ranges."""
        found = self._reach()
        return () if found is None else tuple(r.name for r in found[1])

    def _reach(self) -> tuple[Ranged, tuple[Ranged, ...]] | None:
        """The throughput leader and the rows within its reach; None without a leader, or
        when every other row shares its fitted family (their errors move together, so
        the model's error says nothing of the lead)."""
        lead = self.throughput_leader()
        if lead is None:
            return None
        return reach(_ranged(lead), [_ranged(r) for r in self.systems if r.feasible])

    def throughput_leader(self) -> ComparedSystem | None:
        """The feasible row with the most tokens/s per chip (None with fewer than two)."""
        name = self.leaders.get("tokens_per_s_per_chip")
        return next((r for r in self.systems if r.name == name), None)


@dataclass(frozen=True)
class Ranged:
    """A compared row's rate as a buyer should read it: the range a run would likely
    measure, and the calibration family whose held-out errors give that range."""

    name: str
    likely: tuple[float, float] | None
    family: str | None
    """``default`` (or None): no fitted family of its own."""


def _ranged(row: ComparedSystem) -> Ranged:
    return Ranged(row.name, row.likely_tokens_per_s_per_chip, row.calibration_family)


def within_reach(lead: Ranged, rows: Sequence[Ranged]) -> tuple[Ranged, ...]:
    """The rows (other than ``lead``) whose likely range reaches the low end of the
    leader's: a run on them could measure at least what a run on the leader would at the
    bottom of its range. Rows of the leader's own fitted family are not counted: their
    errors come from the same fitted values and move together (the unfitted ``default``
    is no family). Empty when the leader has no range."""
    if lead.likely is None:
        return ()
    floor = lead.likely[0]
    return tuple(r for r in _rivals(lead, rows) if r.likely is not None and r.likely[1] >= floor)


def reach(lead: Ranged, rows: Sequence[Ranged]) -> tuple[Ranged, tuple[Ranged, ...]] | None:
    """The leader and the rows within its reach (:func:`within_reach`), what
    :func:`reach_note` takes; None when every other row shares the leader's fitted
    family (their errors move together, so the model's error says nothing of the
    lead)."""
    return (lead, within_reach(lead, rows)) if _rivals(lead, rows) else None


def _rivals(lead: Ranged, rows: Sequence[Ranged]) -> tuple[Ranged, ...]:
    """The rows other than ``lead`` whose errors do not move with the leader's: all but
    those of the leader's own fitted family (the unfitted ``default`` is no family)."""
    same = lead.family not in (None, "default")
    return tuple(r for r in rows
                 if r.name != lead.name and not (same and r.family == lead.family))


def reach_note(lead: Ranged, close: Sequence[Ranged], measure: str) -> str | None:
    """Whether the leader's lead on ``measure`` is wider than the model's error, in one
    sentence for people (``close``: :func:`within_reach`); None when the leader has no
    range. The CLI, the HTML reports and the workbench all print this one."""
    if lead.likely is None:
        return None
    if not close:
        return (f"{lead.name} leads on {measure} beyond the likely range of every row of "
                "another chip family (ranges from published results each predicted "
                "without it)")
    reached = "; ".join(f"{r.name} {format_likely(r.likely)}" for r in close if r.likely)
    return (f"{lead.name} leads on {measure}, but within the model's error: its likely "
            f"range ({format_likely(lead.likely)}) is reached by {reached} (ranges from published "
            "results each predicted without it); measure before choosing on throughput "
            "alone")


def ranking_note(result: Comparison) -> str | None:
    """:func:`reach_note` of a training comparison's throughput leader; None without a
    leader or ranges."""
    found = result._reach()
    return None if found is None else reach_note(*found, "tokens/s per chip")


def _calibration(e: Estimate | None, system: System) -> str:
    """What the system's best estimate rests on (:func:`~ocplan.plan.calibration.
    calibration_note`); with no layout that fits, what an estimate of its chip would."""
    if e is None:
        family = system.accelerator.family
        cal = load_calibration()
        fitted = cal.for_family(family)
        return calibration_note(cal.used_family(family), fitted.runs, fitted.cv_error_pct,
                                family)
    return calibration_note(e.calibration_family, e.calibration_runs,
                            e.calibration_cv_error_pct, system.accelerator.family,
                            e.calibration_variant)


def _racks(system: System, servers: int) -> int | None:
    rack, span = system.spec.rack, system.racks_per_server
    if rack is None or span is None:
        return None
    return span * math.ceil(servers / rack.servers_per_rack)


def _row(c: Contender, workload: Workload, objective: str, train_tokens: float | None,
         memory_headroom: float, allow_invalid: bool) -> ComparedSystem:
    findings = tuple(system_findings(c.system))
    refused = refusal(findings)
    if refused is not None and not allow_invalid:
        return measured(c, workload, findings, None, refused, train_tokens,
                        allowed_invalid=False)
    found = search(workload, c.system, c.chips, objective=objective, top_k=1,
                   train_tokens=train_tokens,
                   price_per_chip_hour=c.price_per_chip_hour, memory_headroom=memory_headroom)
    return measured(c, workload, findings, found.best, found.why,
                    train_tokens, allowed_invalid=refused is not None)


def measured(c: Contender, workload: Workload, findings: tuple[Finding, ...],
             best: Estimate | None, reason: str, train_tokens: float | None,
             allowed_invalid: bool) -> ComparedSystem:
    """A contender's row from its best layout (``reason`` says why when there is none):
    the comparison's columns, also stored by sweeps."""
    system = c.system
    servers = math.ceil(c.chips / system.chips_per_server)
    it_w = power_budget(system).it_W * c.chips / system.num_chips
    facility = facility_plan(system)
    facility_w = job_facility_W(system, c.chips)
    base: dict[str, Any] = dict(
        name=c.name, chip=system.accelerator.id, chips=c.chips, servers=servers,
        racks=_racks(system, servers), it_power_W=it_w,
        supply_input_power_W=facility.it_W * c.chips / system.num_chips,
        facility_power_W=facility_w,
        pue=facility.pue, cdus=facility.cooling.cdus,
        findings=findings)
    if best is None:
        return _empty(base, reason, allowed_invalid, system)
    assert best.memory is not None
    tokens = train_tokens
    outlook = cluster_outlook(best, workload, system, tokens, c.price_per_chip_hour)
    g = outlook.goodput
    return ComparedSystem(
        **base, feasible=True, reason=None, layout=best.plan.label(),
        tokens_per_s_per_chip=best.tokens_per_s_per_chip, tokens_per_s=best.tokens_per_s,
        step_s=best.step_s, mfu=best.mfu,
        memory_headroom_pct=100.0 * (1.0 - best.memory.total_bytes
                                     / best.memory.capacity_bytes),
        bound=best.bound, time_to_train_s=None if tokens is None
        else best.time_to_train_s(tokens),
        energy_to_train_J=None if tokens is None
        else facility_w * best.time_to_train_s(tokens),
        cost_to_train=None if tokens is None or c.price_per_chip_hour is None
        else best.cost(tokens, c.price_per_chip_hour),
        allowed_invalid=allowed_invalid, calibration=_calibration(best, system),
        goodput=None if g is None else g.goodput,
        time_to_train_with_failures_s=None if g is None else g.wall_s,
        energy_to_train_with_failures_J=None if g is None else g.energy_J,
        cost_to_train_with_failures=None if g is None else g.cost,
        likely_tokens_per_s_per_chip=best.likely_tokens_per_s_per_chip,
        calibration_family=best.calibration_family)


def _empty(base: dict[str, Any], reason: str, allowed_invalid: bool, system: System
           ) -> ComparedSystem:
    return ComparedSystem(
        **base, feasible=False, reason=reason, layout=None, tokens_per_s_per_chip=None,
        tokens_per_s=None, step_s=None, mfu=None, memory_headroom_pct=None, bound=None,
        time_to_train_s=None, energy_to_train_J=None, cost_to_train=None,
        allowed_invalid=allowed_invalid, calibration=_calibration(None, system))


def _ratios(row: ComparedSystem, base: ComparedSystem) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key in RATIO_KEYS:
        a, b = getattr(row, key), getattr(base, key)
        out[key] = a / b if a is not None and b not in (None, 0) else None
    return out


#: Values within this share of each other are the same figure (one quantity reached by
#: two sums differs in its last bits: the PUE of two systems of one facility).
TIE_REL = 1e-9


def leader(scored: Sequence[tuple[float, str]], larger: bool) -> str | None:
    """The name of the best of two or more (value, name) pairs, larger or smaller being
    better; None when there are fewer or every value is the same (:data:`TIE_REL`): a
    row where all systems tie has no best to mark."""
    if len(scored) < 2:
        return None
    values = [v for v, _ in scored]
    if max(values) - min(values) <= TIE_REL * max(abs(v) for v in values):
        return None
    return (max(scored) if larger else min(scored))[1]


def _leaders(rows: Sequence[ComparedSystem]) -> dict[str, str]:
    leaders: dict[str, str] = {}
    for key, larger in _LARGER_IS_BETTER.items():
        scored = [(getattr(r, key), r.name) for r in rows
                  if r.feasible and getattr(r, key) is not None]
        if (name := leader(scored, larger)) is not None:
            leaders[key] = name
    return leaders


def compare(workload: Workload, contenders: Sequence[Contender], *,
            objective: str = "throughput", train_tokens: float | None = None,
            memory_headroom: float = DEFAULT_MEMORY_HEADROOM, baseline: int = 0,
            allow_invalid: bool = False, budget: Budget | None = None,
            progress: Callable[[int, int], None] | None = None) -> Comparison:
    """Each contender's best layout of ``workload`` (by ``objective``), side by side, and
    with a ``budget`` the row it picks (:func:`pick_within`).

    Parameters
    ----------
    contenders
        The systems and chip counts to compare (names must be distinct).
    baseline
        Index of the contender the ratios divide by.
    allow_invalid
        Estimate systems that fail a compliance check anyway (their rows say so).
    progress
        Called with (contenders done, contenders) after each one.
    """
    assert contenders, "compare needs at least one contender"
    assert 0 <= baseline < len(contenders)
    assert len({c.name for c in contenders}) == len(contenders), "contender names repeat"
    prices = [c.price_per_chip_hour for c in contenders if c.price_per_chip_hour is not None]
    if problems := run_inputs_problems(objective, train_tokens, prices or None,
                                       [(c.name, c.system) for c in contenders], "compare"):
        raise SpecError(problems)
    start = time.perf_counter()
    rows: list[ComparedSystem] = []
    for c in contenders:
        rows.append(_row(c, workload, objective, train_tokens, memory_headroom,
                         allow_invalid))
        if progress is not None:
            progress(len(rows), len(contenders))
    base = rows[baseline]
    rows = [replace(r, ratios=_ratios(r, base)) for r in rows]
    given = budget if budget is not None and budget.given else None
    return Comparison(base.name, objective, train_tokens, memory_headroom, tuple(rows),
                      _leaders(rows), time.perf_counter() - start, given,
                      None if given is None else pick_within(rows, given))
