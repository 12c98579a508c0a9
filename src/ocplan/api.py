"""The façade the CLI, the web workbench and notebooks share.

Requests are pydantic models (unknown fields are errors) so that a JSON body, a YAML
file and CLI flags all go through the same validation and the same one-line messages:
build one with :func:`validate_as` (``validate_as(EstimateRequest, {...}, "request")``),
which raises a :class:`~ocplan.errors.SpecError` naming every problem; calling a model
directly raises pydantic's own ``ValidationError``.
Nothing here computes: it resolves ids and calls the engine.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NamedTuple, TypeVar, get_args

from pydantic import Field, ValidationInfo, create_model, field_validator

from ocplan.catalog.catalog import Catalog
from ocplan.catalog.fields import (
    MAX_AVAILABILITY,
    MAX_PRICE_PER_CHIP_HOUR,
    MAX_REPAIR_S,
    MAX_TARGET_RATE_PER_S,
    MAX_TOP_K,
    Availability,
    BatchSize,
    ChipCount,
    Flag,
    Id,
    Price,
    RepairTime,
    SeqLen,
    Spec,
    TargetRate,
    TrainTokens,
)
from ocplan.catalog.filekinds import (
    OTHER_FILE_KINDS,
    file_kind,
    kind_of,
    refuse_other_file,
)
from ocplan.catalog.loader import load_yaml, validate_as
from ocplan.catalog.schema import ComputeModule, Cpu
from ocplan.catalog.system import System, SystemSpec, resolve_system, system_for_chip
from ocplan.checks.module_rules import module_findings
from ocplan.checks.rules import Finding, refusal
from ocplan.errors import Infeasible, Problem, SpecError
from ocplan.facility import FacilityPlan, facility_plan, system_findings
from ocplan.lazy import lazy_names
from ocplan.plan.estimate import Estimate, estimate, infeasible_estimate
from ocplan.plan.layout import LayoutField, LayoutValue
from ocplan.plan.pipeline_schedules import WGRAD_SHARE, schedule
from ocplan.plan.plan import (
    PIN_HELP,
    REQUEST_LAYOUT,
    SEARCH_FIXED_LAYOUT,
    SEARCH_GIVEN_LAYOUT,
    SEARCH_PINNABLE_LAYOUT,
    Plan,
)
from ocplan.plan.recompute import RECOMPUTE_MODES, mode
from ocplan.plan.schedule import bidirectional, one_f_one_b
from ocplan.plan.search import Objective, SearchResult, run_inputs_problems, search
from ocplan.plan.search_defaults import (
    DEFAULT_GLOBAL_BATCH,
    DEFAULT_MEMORY_HEADROOM,
    DEFAULT_SEQ_LEN,
    MAX_SENSITIVITY_FACTOR,
    MIN_SENSITIVITY_FACTOR,
    SENSITIVITY_FACTOR,
)
from ocplan.plan.sensitivity import Sensitivity, factor_problem, sensitivity
from ocplan.serving.plan import SERVING_REQUEST_LAYOUT, ServingPlan
from ocplan.topology.analysis import TopologySummary, summarize
from ocplan.topology.power import PowerBudget, power_budget
from ocplan.units import SECONDS_PER_YEAR
from ocplan.workloads.options import (
    TrainingOptions,
    option_fields,
    serving_option_fields,
    serving_request_fields,
)
from ocplan.workloads.serving import (
    ServingWorkload,
)
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

if TYPE_CHECKING:
    from ocplan.matching.run import run_match
    from ocplan.redfish.host import CpuNode
    from ocplan.results.cluster import ClusterOutlook
    from ocplan.results.compare import Budget, Comparison, Contender
    from ocplan.results.serving_compare import ServedInput, ServingComparison
    from ocplan.results.serving_validation import ServingCase
    from ocplan.results.validation import Case, Scored, Summary
    from ocplan.serving.dynamics import RunSummary
    from ocplan.serving.estimate import ServingCurve, ServingEstimate
    from ocplan.serving.search import ServingSearch
    from ocplan.serving.sensitivity import ServingSensitivity

# The serving estimators, the comparison, the cluster outlook and the validation readers
# are imported by the functions that use them: a training search as a whole process
# (issue 9: within 2 s) starts without them.

# Matching CPU platforms needs the CPU model, not the estimators (and the reverse):
# ``run_match`` is imported on first use.
__getattr__ = lazy_names("ocplan.api", {"run_match": "ocplan.matching.run"}, globals())

__all__ = [
    "DEFAULT_CHIPS",
    "REQUEST_LAYOUT",
    "SERVING_REQUEST_LAYOUT",
    "CompareRequest",
    "CompareTarget",
    "ComparedTarget",
    "EstimateRequest",
    "InferOneJob",
    "InferRequest",
    "InferSearchJob",
    "InferSearchRequest",
    "InferView",
    "SearchRequest",
    "SensitivityRequest",
    "check_chip_counts",
    "check_compare",
    "check_module",
    "check_system",
    "compare_systems",
    "facility",
    "field_choices",
    "file_kind",
    "guard",
    "infeasible_hint",
    "is_cpu_file",
    "is_serving_file",
    "job_chips",
    "job_defaults",
    "job_json",
    "job_system",
    "layout_fields",
    "layout_label",
    "likely_range_coverage",
    "outlook",
    "pipeline_timeline",
    "read_managed",
    "read_module",
    "read_system",
    "refuse_other_file",
    "refused_reason",
    "resolve_job",
    "run_compare",
    "run_estimate",
    "run_infer",
    "run_infer_search",
    "run_infer_view",
    "run_match",
    "run_search",
    "run_sensitivity",
    "serving_job_json",
    "serving_layout_fields",
    "serving_objective_note",
    "serving_option_json",
    "serving_workload",
    "slo_shortfall",
    "summarize_runs",
    "system_from_mapping",
    "system_yaml",
    "to_train",
    "topology_figures",
    "topology_report",
    "topology_summary",
    "training_objectives",
    "training_option_fields",
    "training_workload",
    "trust",
    "validate_as",
    "validate_cpu_runs",
    "validate_runs",
    "validate_serving_runs",
]

#: Micro-batches drawn in a pipeline timeline at most (the rest repeat the pattern).
TIMELINE_MAX_MICRO_BATCHES = 32


#: Chips a job runs on when the request gives neither a count nor a system (the chip's
#: default server): one 8-accelerator baseboard (OAM UBB, HGX).
DEFAULT_CHIPS = 8


class JobRequest(TrainingOptions):
    """A training job on chips of a catalog accelerator or of a system, with its options
    (:class:`~ocplan.workloads.options.TrainingOptions`)."""

    model: Id
    chip: Id | None = None
    system: dict[str, Any] | None = None
    """A system mapping (the content of a system YAML file)."""
    chips: ChipCount | None = None
    """Chips the job runs on; default: every chip of the system, else
    :data:`DEFAULT_CHIPS` on the chip's default server."""
    global_batch: BatchSize = DEFAULT_GLOBAL_BATCH
    """Sequences per step (the CLI's default too)."""
    seq_len: SeqLen = DEFAULT_SEQ_LEN
    """Tokens per sequence (the CLI's default too)."""
    train_tokens: TrainTokens | None = None
    """Tokens to train on, for time, energy and cost to train."""
    price_per_chip_hour: Price | None = None
    """Price of one chip for one hour, for cost to train."""
    allow_invalid: Flag = False
    """Estimate even when the system fails a compliance check (the result says so)."""


#: A request model that gains layout fields (:func:`_with_layout_fields`).
R = TypeVar("R", bound=Spec)


def _layout_annotation(f: LayoutField, optional: bool = False) -> object:
    """The pydantic type of a layout field: its declared kind and bounds, strict (no
    ``"2"`` for 2, no 1 for true), so requests, flags and forms share the plan's rules;
    with ``optional``, None too."""
    kind: Any  # a typing form built at run time
    if f.kind == "bool":
        kind = Flag
    elif f.kind == "choice":
        kind = Literal[f.choices]  # the Literal of the declared tuple
    else:
        kind = Annotated[int, Field(ge=f.low, le=f.high, strict=True)]
    return kind | None if optional or f.kind == "optional_int" else kind


def _with_layout_fields(base: type[R], name: str,
                        layout: tuple[LayoutField, ...] = REQUEST_LAYOUT,
                        pins: tuple[LayoutField, ...] = ()) -> type[R]:
    """``base`` with one field per layout field of ``layout`` (default every requested
    one, :data:`REQUEST_LAYOUT`), with the declared bounds, default and help, and one per
    field of ``pins`` that defaults to None (a search picks it unless given)."""
    fields: dict[str, Any] = {
        f.name: (_layout_annotation(f), Field(f.default, description=f.help))
        for f in layout} | {
        f.name: (_layout_annotation(f, optional=True), Field(None, description=f.help
                                                             + PIN_HELP))
        for f in pins}
    model: type[R] = create_model(name, __base__=base, __module__=__name__, **fields)
    return model



if TYPE_CHECKING:
    _LayoutRequest = JobRequest
else:
    _LayoutRequest = _with_layout_fields(JobRequest, "_LayoutRequest")


class SensitivityRequest(Spec):
    """The sensitivity factor of a request for one layout (training or serving)."""

    sensitivity: Annotated[float, Field(strict=True, ge=MIN_SENSITIVITY_FACTOR,
                                        le=MAX_SENSITIVITY_FACTOR)] = SENSITIVITY_FACTOR
    """Factor each hardware resource is scaled by to show what it buys the layout
    (:func:`ocplan.plan.sensitivity.sensitivity`,
    :func:`ocplan.serving.sensitivity.serving_sensitivity`): 2 asks "what if it were
    twice as fast", 0.5 "half as fast"; not 1."""

    @field_validator("sensitivity")
    @classmethod
    def _sensitivity_moves(cls, value: float) -> float:
        problem = factor_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class EstimateRequest(_LayoutRequest, SensitivityRequest):
    """A training job and one layout: a field per requested layout field
    (:data:`REQUEST_LAYOUT`, generated from the plan's declarations; read them with
    :meth:`layout`)."""

    @field_validator("recompute_layers")
    @classmethod
    def _recompute_layers_need_full(cls, value: int | None,
                                    info: ValidationInfo) -> int | None:
        recompute = info.data.get("recompute")
        whole = [m.name for m in RECOMPUTE_MODES if m.whole_layers]
        if value is not None and recompute not in whole:
            raise ValueError(f"counts layers recomputed whole, so it needs recompute = "
                             f"{' or '.join(map(repr, whole))}, not {recompute!r}")
        return value

    @field_validator("offload_layers")
    @classmethod
    def _offload_layers_need_offload(cls, value: int | None,
                                     info: ValidationInfo) -> int | None:
        if value is not None and not info.data.get("offload"):
            raise ValueError("counts layers whose activations are offloaded, so it needs "
                             "offload = true")
        return value

    @field_validator("first_stage_layers", "last_stage_layers")
    @classmethod
    def _stage_layers_replace_ends(cls, value: int | None,
                                   info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("ends_as_layers"):
            raise ValueError("sets the pipeline split itself, so it needs ends_as_layers = "
                             "false")
        return value

    def layout(self) -> dict[str, LayoutValue]:
        """The request's layout fields by name."""
        values: dict[str, LayoutValue] = {f.name: getattr(self, f.name)
                                          for f in REQUEST_LAYOUT}
        return values


class _SearchJob(JobRequest):
    """A training job whose layout is searched (the fields the search holds fixed are
    added from their declarations: :data:`SearchRequest`)."""

    objective: Objective = "throughput"
    top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K, strict=True)] = 5
    chip_counts: Annotated[tuple[ChipCount, ...], Field(min_length=1, max_length=64)] | None \
        = None
    """Chip counts to compare (each at most ``chips``); default just ``chips``."""
    max_power_W: Annotated[float, Field(strict=True, ge=1, le=1e10)] | None = None
    """Most IT power allowed, W (1e10 W is ten times the largest data-centre campus)."""
    memory_headroom: Annotated[float, Field(strict=True, ge=0, lt=1)] = DEFAULT_MEMORY_HEADROOM

    def fixed(self) -> dict[str, LayoutValue]:
        """The values the search is given, by name: every field the search holds fixed
        and each pinnable axis the request gives (not None)."""
        given = {f.name: getattr(self, f.name) for f in SEARCH_PINNABLE_LAYOUT}
        return {f.name: getattr(self, f.name) for f in SEARCH_FIXED_LAYOUT} | {
            name: value for name, value in given.items() if value is not None}


if TYPE_CHECKING:
    SearchRequest = _SearchJob
else:
    SearchRequest = _with_layout_fields(_SearchJob, "SearchRequest", SEARCH_FIXED_LAYOUT,
                                        SEARCH_PINNABLE_LAYOUT)
    """A training job whose layout is searched, with the fields the search holds fixed
    (:data:`~ocplan.plan.plan.SEARCH_FIXED_LAYOUT`: what the software stack does) and
    the axes it may be given (:data:`~ocplan.plan.plan.SEARCH_PINNABLE_LAYOUT`)."""


class CompareTarget(Spec):
    """One system of a comparison: a system mapping (a system file's content) or a chip
    id (its default server), with an optional display name."""

    name: Annotated[str, Field(min_length=1, max_length=120)] | None = None
    chip: Id | None = None
    system: dict[str, Any] | None = None


#: Systems one comparison holds at most (each runs a full layout search).
MAX_COMPARED = 12
#: Largest cost limit a comparison takes (a trillion in any currency: beyond any run).
MAX_BUDGET_COST = 1e12
#: Longest deadline a comparison takes, s (a century).
MAX_BUDGET_TIME_S = 100 * SECONDS_PER_YEAR


class CompareRequest(TrainingOptions):
    """One training job, with its options, on several systems, each at its best layout."""

    model: Id
    systems: Annotated[tuple[CompareTarget, ...], Field(max_length=MAX_COMPARED)] = ()
    """Systems given as mappings or chip ids (the CLI gives files instead)."""
    chips: ChipCount | None = None
    """Chips of each system to use; default: all of a system file's, else 8."""
    chip_counts: Annotated[tuple[ChipCount, ...], Field(min_length=1, max_length=8)] | None \
        = None
    """Compare each system at each of these chip counts (each at most its chips)."""
    global_batch: BatchSize = DEFAULT_GLOBAL_BATCH
    seq_len: SeqLen = DEFAULT_SEQ_LEN
    objective: Objective = "throughput"
    train_tokens: TrainTokens | None = None
    price_per_chip_hour: Annotated[tuple[Price, ...], Field(min_length=1,
                                                            max_length=MAX_COMPARED)] | None \
        = None
    """One price for every system, or one per system (in order)."""
    memory_headroom: Annotated[float, Field(strict=True, ge=0, lt=1)] = DEFAULT_MEMORY_HEADROOM
    baseline: Annotated[int, Field(ge=0, lt=MAX_COMPARED * 8, strict=True)] = 0
    """Index (in the compared rows) of the row the ratios divide by."""
    allow_invalid: Flag = False
    """Estimate systems that fail a compliance check anyway."""
    max_cost: Annotated[float, Field(strict=True, gt=0, le=MAX_BUDGET_COST)] | None = None
    """Most the run may cost to train, in the prices' currency (needs ``train_tokens`` and
    prices): the comparison picks the fastest row within it."""
    max_time_to_train_s: Annotated[float, Field(strict=True, gt=0, le=MAX_BUDGET_TIME_S)
                                   ] | None = None
    """Longest the run may take, s (needs ``train_tokens``): alone, the comparison picks
    the cheapest row that meets it (without prices, the one using the least energy)."""
    max_facility_power_W: Annotated[float, Field(strict=True, gt=0, le=1e10)] | None = None
    """Most facility power the run may draw, W."""

    def budget(self) -> Budget:
        from ocplan.results.compare import Budget

        return Budget(self.max_cost, self.max_time_to_train_s, self.max_facility_power_W)


class ComparedTarget(NamedTuple):
    """A system of a comparison, by the name its rows carry."""

    name: str
    system: System
    chip: str | None = None
    """The chip id whose default system this is (None for a system file or mapping): at
    each of a request's chip counts the comparison builds that chip's own system of that
    many chips, so a count's power and servers are its own, not a larger system's share."""
    where: str = "request"
    """Where the chip id was given (for the SpecError of a count it cannot build)."""


def compare_systems(catalog: Catalog, req: CompareRequest,
                    files: Sequence[Path | str] = (), source: str = "request"
                    ) -> list[ComparedTarget]:
    """The named systems of a comparison: ``files`` (each a system file path, or a chip
    id when no such file exists) then ``req.systems``. Every problem at once."""
    problems: list[Problem] = []
    out: list[ComparedTarget] = []
    chips = req.chips or (max(req.chip_counts) if req.chip_counts else DEFAULT_CHIPS)
    for item in files:
        try:
            path = Path(item)
            if path.suffix in (".yaml", ".yml", ".json") or path.exists():
                sysm = read_system(catalog, path)
                out.append(ComparedTarget(sysm.spec.name, sysm))
            else:
                sysm = system_for_chip(catalog, str(item), chips, source, name=None)
                out.append(ComparedTarget(str(item), sysm, str(item), source))
        except SpecError as exc:
            problems.extend(exc.problems)
    for i, target in enumerate(req.systems):
        where = f"{source}.systems[{i}]"
        try:
            if (target.chip is None) == (target.system is None):
                raise SpecError.one(where, "system", "give exactly one of chip or system")
            if target.system is not None:
                sysm = system_from_mapping(target.system, catalog, where)
                out.append(ComparedTarget(target.name or sysm.spec.name, sysm))
            else:
                assert target.chip is not None
                sysm = system_for_chip(catalog, target.chip, chips, where)
                out.append(ComparedTarget(target.name or target.chip, sysm, target.chip,
                                          where))
        except SpecError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SpecError(problems)
    if not out:
        raise SpecError.one(source, "systems", "give at least one system file or chip id")
    return out


def check_chip_counts(counts: Sequence[int] | None, system: System,
                      source: str = "request") -> None:
    """A SpecError naming every chip count of a search beyond the system's chips, so a
    request fails when it is read (the workbench answers 422 before it queues a job)."""
    problems = [Problem(source, "chip_counts", f"must be between 1 and the system's "
                                               f"{system.num_chips} chips", n)
                for n in counts or () if n > system.num_chips]
    if problems:
        raise SpecError(problems)


def check_search(catalog: Catalog, req: SearchRequest, system: System,
                 source: str = "request") -> None:
    """Every problem of a search request's chip counts and given fields (a pinned value
    no searched space holds), raised when it is read (what :func:`run_search` would
    find once its job runs)."""
    from ocplan.plan.search import check_given

    check_chip_counts(req.chip_counts, system, source)
    if problems := run_inputs_problems(req.objective, req.train_tokens,
                                       req.price_per_chip_hour,
                                       [(system.spec.name, system)], source):
        raise SpecError(problems)
    check_given(training_workload(catalog, req, source), system,
                req.chip_counts or [req.chips or system.num_chips], req.fixed(),
                source=source)


def check_compare(catalog: Catalog, req: CompareRequest,
                  systems: Sequence[ComparedTarget], source: str = "request") -> None:
    """Every problem of a comparison's budget, chips and prices, raised when it is read
    (what :func:`run_compare` would find once its job runs)."""
    _check_budget(req, systems, source)
    _contenders(catalog, req, systems, source)


def _contenders(catalog: Catalog, req: CompareRequest, systems: Sequence[ComparedTarget],
                source: str) -> list[Contender]:
    from ocplan.results.compare import Contender

    prices = req.price_per_chip_hour
    if prices is not None and len(prices) not in (1, len(systems)):
        raise SpecError.one(source, "price", f"give one price or one per system "
                                             f"({len(systems)})", ",".join(map(str, prices)))
    counts_given = req.chip_counts
    out: list[Contender] = []
    problems: list[Problem] = [
        Problem(source, "chip_counts", "listed twice", n)
        for k, n in enumerate(counts_given or ()) if n in (counts_given or ())[:k]]
    for i, (name, sysm, chip, where) in enumerate(systems):
        price = None if prices is None else prices[0 if len(prices) == 1 else i]
        counts = counts_given or (req.chips or sysm.num_chips,)
        for n in counts:
            if chip is not None and counts_given and n != sysm.num_chips:
                sysm_n = system_for_chip(catalog, chip, n, where, name=None)
            elif n > sysm.num_chips:
                field = "chip_counts" if counts_given else "chips"
                problems.append(Problem(source, field, f"{name} has {sysm.num_chips} "
                                                       "chips", n))
                continue
            else:
                sysm_n = sysm
            label = name if len(counts) == 1 else f"{name} @ {n} chips"
            out.append(Contender(label, sysm_n, n, price))
    if problems:
        raise SpecError(problems)
    names = [c.name for c in out]
    seen: dict[str, int] = {}
    for i, c in enumerate(out):  # the same system twice: number the repeats
        if names.count(c.name) > 1:
            seen[c.name] = seen.get(c.name, 0) + 1
            out[i] = replace(c, name=f"{c.name} ({seen[c.name]})")
    if req.baseline >= len(out):
        raise SpecError.one(source, "baseline", f"expected a row index below {len(out)}",
                            req.baseline)
    return out


def run_compare(catalog: Catalog, req: CompareRequest, files: Sequence[Path | str] = (),
                source: str = "request",
                progress: Callable[[int, int], None] | None = None) -> Comparison:
    """Each system's best layout of the request's job, side by side (see
    :func:`ocplan.results.compare.compare`)."""
    from ocplan.results.compare import compare

    systems = compare_systems(catalog, req, files, source)
    _check_budget(req, systems, source)
    contenders = _contenders(catalog, req, systems, source)
    return compare(training_workload(catalog, req, source), contenders, objective=req.objective,
                   train_tokens=req.train_tokens, memory_headroom=req.memory_headroom,
                   baseline=req.baseline, allow_invalid=req.allow_invalid,
                   budget=req.budget(), progress=progress)


def _check_budget(req: CompareRequest, systems: Sequence[ComparedTarget],
                  source: str) -> None:
    """A cost or time limit is judged on the time and cost to train: it needs the tokens
    to train, and a cost limit the prices; the prices and the objective need what
    :func:`~ocplan.plan.search.run_inputs_problems` names. Every problem at once."""
    problems = run_inputs_problems(req.objective, req.train_tokens, req.price_per_chip_hour,
                                   [(t.name, t.system) for t in systems], source)
    for field, value in (("max_cost", req.max_cost),
                         ("max_time_to_train_s", req.max_time_to_train_s)):
        if value is not None and req.train_tokens is None:
            problems.append(Problem(source, field, "needs train_tokens (the run it limits)",
                                    value))
    if req.max_cost is not None and req.price_per_chip_hour is None:
        problems.append(Problem(source, "max_cost", "needs a price per chip-hour",
                                req.max_cost))
    if problems:
        raise SpecError(problems)


# ---- serving ------------------------------------------------------------------------

#: Fields of :class:`~ocplan.workloads.serving.ServingWorkload` a request gives (all but
#: the model, which a request names by id); their bounds are the workload's own checks.
SERVING_WORKLOAD_FIELDS: tuple[str, ...] = tuple(f.name for f in serving_option_fields())


class InferJob(Spec):
    """A serving job on chips of a catalog accelerator or of a system."""

    model: Id
    chip: Id | None = None
    system: dict[str, Any] | None = None
    """A system mapping (the content of a system YAML file)."""
    chips: ChipCount | None = None
    """Chips the job runs on; default: every chip of the system, else
    :data:`DEFAULT_CHIPS` on the chip's default server."""
    price_per_chip_hour: Price | None = None
    """Price of one chip for one hour, for cost per million tokens."""
    allow_invalid: Flag = False
    """Estimate even when the system fails a compliance check (the result says so)."""


class InferOneJob(InferJob, SensitivityRequest):
    """A serving job with one layout (the layout fields are added from their
    declarations: :data:`InferRequest`)."""

    simulate: bool = False
    """Also run the job request by request through the discrete-event simulation
    (:func:`ocplan.serving.dynamics.simulate_serving`: the workload's requests, else
    2,000): latency percentiles, preemptions, the ramp and drain of a finite run."""


#: Serving layouts the table of a serving search lists unless told (``top_k``).
SERVING_SEARCH_TOP = 10


class InferSearchJob(InferJob):
    """A serving job whose layouts are searched (the workload fields are added from
    their declarations: :data:`InferSearchRequest`)."""

    top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K, strict=True)] = SERVING_SEARCH_TOP
    """Layouts a table lists, best first; a JSON answer carries every layout."""


class InferCompareJob(InferJob):
    """A serving job on its chip (or system) and on other chips, each at its best serving
    layout, side by side."""

    vs: Annotated[tuple[Id, ...], Field(min_length=1, max_length=MAX_COMPARED - 1)]
    """The other chips (catalog ids, each on its default server)."""
    prices: Annotated[tuple[Price, ...], Field(min_length=1, max_length=MAX_COMPARED)] \
        | None = None
    """Price per chip-hour: one for every system, or one per system (the request's first,
    then ``vs`` in order); replaces ``price_per_chip_hour``."""
    target_rate_per_s: TargetRate | None = None
    """A load to plan for, requests/s: each system's row then says how many deployments
    of its best layout serve it within the latency limits, and their chips, power and
    cost (:mod:`ocplan.results.fleet`)."""
    availability: Availability | None = None
    """With ``target_rate_per_s``: the share of time each fleet must serve the whole
    target through failures; each row then counts the spare deployments that takes
    (:func:`ocplan.results.fleet.spares_needed`)."""
    repair_s: RepairTime = 0.0
    """With ``availability``: how much longer a hardware failure keeps a deployment out
    than detection and restart, s (0: swapped at once from a healthy pool)."""


def _serving_request(name: str, layout: bool,
                     base: type[InferJob] = InferJob) -> type[InferJob]:
    fields = serving_request_fields()
    if layout:
        fields |= {f.name: (_layout_annotation(f), Field(f.default, description=f.help))
                   for f in SERVING_REQUEST_LAYOUT}
    model: type[InferJob] = create_model(name, __base__=base, __module__=__name__, **fields)
    return model


if TYPE_CHECKING:
    InferRequest = InferOneJob
    InferSearchRequest = InferSearchJob
    InferCompareRequest = InferCompareJob
else:
    InferCompareRequest = _serving_request("InferCompareRequest", layout=False,
                                           base=InferCompareJob)
    """A serving job compared across chips (:func:`run_infer_compare`)."""
    InferRequest = _serving_request("InferRequest", layout=True, base=InferOneJob)
    """A serving job and one layout (workload and layout fields generated from their
    declarations)."""
    InferSearchRequest = _serving_request("InferSearchRequest", layout=False,
                                          base=InferSearchJob)
    """A serving job whose layout is searched."""


def serving_job_json(req: InferJob) -> dict[str, object]:
    """What a serving answer was computed for, as JSON data: the model and every field of
    the job (:func:`~ocplan.workloads.options.serving_option_fields`), as given or
    defaulted, so that a saved estimate, search or comparison names its job."""
    return {"model": req.model} | {name: getattr(req, name) for name in SERVING_WORKLOAD_FIELDS}


def serving_workload(catalog: Catalog, req: InferJob, source: str = "request"
                     ) -> ServingWorkload:
    """The request's serving workload; bad values are SpecErrors naming ``source``."""
    arch = catalog.model(req.model, source, "model")
    values = {name: getattr(req, name) for name in SERVING_WORKLOAD_FIELDS}
    try:
        return ServingWorkload(ModelShape.from_arch(arch), **values)
    except SpecError as exc:
        raise SpecError([replace(p, source=source) for p in exc.problems]) from None


def run_infer(catalog: Catalog, req: InferJob, system_file: Path | None = None,
              source: str = "request") -> tuple[ServingEstimate, System, ServingWorkload]:
    """Estimate serving with the request's layout (``dp`` from the chips)."""
    from ocplan.serving.estimate import estimate_serving, with_latency_range
    from ocplan.serving.estimate import infeasible_estimate as infeasible_serving

    system, workload, chips = resolve_job(catalog, req, system_file, source,
                                          lambda: serving_workload(catalog, req, source))
    values = {f.name: getattr(req, f.name) for f in SERVING_REQUEST_LAYOUT}
    plan = ServingPlan(**values)
    stage = plan.tp * plan.pp
    problems: list[Problem] = []
    if chips % stage:
        problems.append(Problem(source, "chips", f"not divisible by tp x pp = {stage}",
                                chips))
    if plan.prefill_chips is not None and plan.prefill_chips >= chips:
        # bad input, not a layout that does not fit: no split leaves a decode pool
        problems.append(Problem(source, "prefill_chips", f"must be less than the chips the "
                                f"job runs on ({chips:,}), to leave chips for decode",
                                plan.prefill_chips))
    if problems:
        raise SpecError(problems)
    plan = replace(plan, dp=chips // stage)
    refused = refused_reason(system, req.allow_invalid)
    if refused is not None:
        return replace(infeasible_serving(plan, refused), formats=workload.formats), system, \
            workload
    return with_latency_range(estimate_serving(workload, plan, system), workload, system), \
        system, workload


@dataclass(frozen=True)
class InferView:
    """What one serving layout shows: its estimate, its throughput-latency curve (None
    when it has none: :func:`~ocplan.serving.estimate.serving_curve`), what each
    hardware resource buys it (None when it cannot serve) and the system."""

    result: ServingEstimate
    curve: ServingCurve | None
    sensitivity: ServingSensitivity | None
    system: System
    simulation: RunSummary | None = None
    """The simulated run when the request asks for it (None: not asked, the layout
    cannot serve, or it is one the simulation does not run, disaggregated or
    speculative)."""


def run_infer_view(catalog: Catalog, req: InferOneJob, system_file: Path | None = None,
                   source: str = "request") -> InferView:
    """The request's estimate, its layout's throughput-latency curve and its sensitivity
    at the request's factor."""
    from ocplan.serving.dynamics import simulate_serving
    from ocplan.serving.estimate import serving_curve
    from ocplan.serving.sensitivity import serving_sensitivity

    result, system, workload = run_infer(catalog, req, system_file, source)
    sens = serving_sensitivity(workload, result.plan, system, req.sensitivity) \
        if result.feasible else None
    simulated = None
    if req.simulate and result.feasible:
        _check_simulation_size(workload, result, source)
        run = simulate_serving(workload, result.plan, system)
        simulated = run.summary() if run is not None else None
    return InferView(result, serving_curve(workload, result.plan, system), sens, system,
                     simulated)


#: Most iterations a requested simulation may run: about 10 s at the simulator's 1-3 us
#: an iteration on the 2-core development machine (bench/), the answer a request waits
#: for; longer runs are refused with their size.
MAX_SIMULATED_ITERATIONS = 4_000_000


def _check_simulation_size(workload: ServingWorkload, result: ServingEstimate,
                           source: str) -> None:
    """SpecError on ``simulate`` when the run would take more than
    :data:`MAX_SIMULATED_ITERATIONS`: each of an instance's ``n`` requests holds a slot
    for ``O / g`` iterations beside ``B - 1`` others, so ``n O / (g B)`` of them."""
    from ocplan.serving.dynamics import instance_requests

    per_instance, _ = instance_requests(workload, result.plan)
    batch = max(result.batch_per_instance, 1.0)
    iterations = per_instance * workload.output_len / workload.tokens_per_step / batch
    if iterations > MAX_SIMULATED_ITERATIONS:
        raise SpecError.one(source, "simulate", f"a run of {per_instance:,.0f} requests per "
                            f"instance at a batch of {batch:,.0f} is about "
                            f"{iterations:,.0f} iterations, more than the "
                            f"{MAX_SIMULATED_ITERATIONS:,} a request may simulate: give "
                            "fewer requests", True)


def serving_layout_fields() -> list[dict[str, object]]:
    """The serving layout fields a request takes, as JSON (the web form's inputs)."""
    return [f.as_json() for f in SERVING_REQUEST_LAYOUT]


def run_infer_search(catalog: Catalog, req: InferJob, system_file: Path | None = None,
                     objective: str = "throughput", source: str = "request",
                     disaggregate: bool = False,
                     fixed: Mapping[str, LayoutValue] | None = None
                     ) -> tuple[ServingSearch, System, ServingWorkload]:
    """Every serving layout of the request's chips, best first (with prefill/decode
    splits when ``disaggregate``), each with the fields of ``fixed`` as given
    (:data:`~ocplan.serving.search.FIXABLE`: ``tp`` 8, the engine's ``max_seqs``)."""
    from ocplan.serving.search import fixed_problems, search_serving

    problems = fixed_problems(fixed or {}, source)
    if problems:
        raise SpecError(problems)
    system, workload, chips = resolve_job(catalog, req, system_file, source,
                                          lambda: serving_workload(catalog, req, source))
    guard(system, req.allow_invalid)
    found = search_serving(workload, system, chips, fixed=fixed, objective=objective,
                           disaggregate=disaggregate)
    return found, system, workload


def serving_objective(req: InferJob) -> str:
    """What a serving search ranks by
    (:func:`~ocplan.serving.search.default_objective`: goodput when the job sets a
    latency limit, else throughput)."""
    from ocplan.serving.search import default_objective

    fields = req.model_dump()
    return default_objective(fields.get("slo_ttft_s"), fields.get("slo_tpot_s"))


def serving_objective_note(objective: str) -> str | None:
    """The sentence a serving table ranked by ``objective`` prints under it (goodput: its
    latency columns are at saturation, not at the SLO rate); None when it needs none."""
    from ocplan.serving.search import objective_note

    return objective_note(objective)


def slo_shortfall(found: ServingSearch, workload: ServingWorkload) -> str | None:
    """The line a serving search under latency limits adds when no layout that runs
    meets them (its SLO goodput is 0 everywhere): the layout closest to meeting them, by
    the smallest largest ratio of latency to limit over the limits set, and how far each
    of its latencies is from its limit, so the user sees which limit to relax. None when
    the workload sets no limit, some layout meets them, or none runs at all (the search
    then says no layout fits)."""
    from ocplan.serving.search import meets_slo, slo_misses
    from ocplan.units import format_quantity

    if workload.slo_ttft_s is None and workload.slo_tpot_s is None:
        return None
    runs = [(e, slo_misses(e, workload)) for e in found.results if e.feasible]
    if not runs or any(meets_slo(e, workload) for e, _ in runs):
        return None
    closest, misses = min(runs, key=lambda run: run[1][0][0])
    limits = " and ".join(f"{workload.slo_stat} {name} <= {format_quantity(limit, 's')}"
                          for _, name, _, limit in misses)
    stat = closest.latency_stat or "mean"  # the statistic it has (means under other loads)
    parts = [f"{name} unbounded (its queue grows)" if got is None else
             f"{stat} {name} {format_quantity(got, 's')}, {ratio:.2f}x its limit"
             for ratio, name, got, _ in misses]
    return (f"no layout meets the SLO ({limits}); the closest is {closest.plan.label()}: "
            + "; ".join(parts))


def fleet_problems(target_rate_per_s: float | None, availability: float | None,
                   repair_s: float | None, source: str) -> list[Problem]:
    """What is out of bounds among a fleet's target rate, availability goal and repair
    time (each checked by its request type too; the CLI's flags and the per-system copies
    of a comparison are checked here)."""
    problems = []
    if target_rate_per_s is not None and not 0 < target_rate_per_s <= MAX_TARGET_RATE_PER_S:
        problems.append(Problem(source, "target_rate_per_s", f"must be above 0 and at most "
                                f"{MAX_TARGET_RATE_PER_S:,.0f} requests/s", target_rate_per_s))
    if availability is not None and not 0 < availability <= MAX_AVAILABILITY:
        problems.append(Problem(source, "availability", f"must be above 0 and at most "
                                f"{MAX_AVAILABILITY} (six nines)", availability))
    if repair_s is not None and not 0 <= repair_s <= MAX_REPAIR_S:
        problems.append(Problem(source, "repair_s", f"must be at least 0 and at most "
                                f"{MAX_REPAIR_S:,.0f} s (a year)", repair_s))
    return problems


def run_infer_compare(catalog: Catalog, req: InferJob, others: Sequence[str],
                      prices: Sequence[float] | None = None,
                      system_file: Path | None = None, source: str = "request",
                      disaggregate: bool = False, files: bool = True,
                      target_rate_per_s: float | None = None,
                      availability: float | None = None,
                      repair_s: float = 0.0) -> ServingComparison:
    """The request's serving job on its chip (or system file or mapping) and on each of
    ``others`` (chip ids; with ``files``, system files where such a file exists: never
    for a web request), each at its best serving layout by :func:`serving_objective`,
    side by side; ``prices`` per chip-hour: one for all or one per system, in order
    (default: the request's own price for all); ``target_rate_per_s``: a load to size
    each system's fleet for; ``availability`` and ``repair_s``: what its spares must
    survive (:func:`~ocplan.results.serving_compare.compare_serving`). Every problem at
    once."""
    from ocplan.results.fleet import deployment_failures
    from ocplan.results.serving_compare import ServedInput, compare_serving
    from ocplan.serving.search import search_serving

    objective = serving_objective(req)
    if prices is None and req.price_per_chip_hour is not None:
        prices = (req.price_per_chip_hour,)
    targets: list[tuple[str | None, Path | None]] = [(req.chip, system_file)]
    for item in others:
        path = Path(item)
        is_file = files and (path.suffix in (".yaml", ".yml", ".json") or path.exists())
        targets.append((None, path) if is_file else (item, None))
    if prices is not None and len(prices) not in (1, len(targets)):
        raise SpecError.one(source, "price", f"give one price or one per system "
                                             f"({len(targets)})", ",".join(map(str, prices)))
    # the per-system copies below are not validated again: their prices are checked here
    problems: list[Problem] = [
        Problem(source, "price", f"must be at least 0 and at most "
                                 f"{MAX_PRICE_PER_CHIP_HOUR:,.0f} per chip-hour", p)
        for p in prices or () if not 0 <= p <= MAX_PRICE_PER_CHIP_HOUR]
    problems += fleet_problems(target_rate_per_s, availability, repair_s, source)
    if availability is not None and target_rate_per_s is None:
        problems.append(Problem(source, "availability", "sizes the spares of a fleet: give "
                                "target_rate_per_s too", availability))
    resolved = []
    chips = req.chips  # the first system's count, once known, for every system
    for i, (chip, file) in enumerate(targets):
        price = None if prices is None else prices[0 if len(prices) == 1 else i]
        # the others run on their own default servers, not the request's system
        update = {"chip": chip, "price_per_chip_hour": price, "chips": chips} | (
            {"system": None} if i > 0 else {})
        one = req.model_copy(update=update)
        try:
            system, workload, counted = resolve_job(
                catalog, one, file, source,
                functools.partial(serving_workload, catalog, one, source))
        except SpecError as exc:
            # an unknown id among the others is the --vs value's, not the request's chip
            problems.extend(exc.problems if i == 0 else
                            [replace(p, field="vs") if p.field in ("chip", "system") else p
                             for p in exc.problems])
            continue
        chips = counted
        resolved.append((chip, system, workload, price))
    if problems:
        raise SpecError(problems)
    assert chips is not None
    searched: list[ServedInput] = []
    seen: dict[str, int] = {}
    for chip, system, workload, price in resolved:
        name = chip if chip is not None else system.spec.name
        seen[name] = seen.get(name, 0) + 1
        label = name if seen[name] == 1 else f"{name} ({seen[name]})"
        refused = refused_reason(system, req.allow_invalid)
        found = None if refused is not None else search_serving(
            workload, system, chips, objective=objective, disaggregate=disaggregate)
        if found is not None and target_rate_per_s is not None:
            found = _with_likely_best(found, workload, system)
        searched.append(ServedInput(label, system.spec.name, system.accelerator.id,
                                    chips, found, price, refused,
                                    None if availability is None
                                    else deployment_failures(system, chips)))
    return compare_serving(objective, searched, target_rate_per_s=target_rate_per_s,
                           availability=availability, repair_s=repair_s)


def _with_likely_best(found: ServingSearch, workload: ServingWorkload, system: System
                      ) -> ServingSearch:
    """``found`` with its best feasible layout's likely SLO goodput
    (:func:`~ocplan.serving.estimate.with_likely_slo_rate`), what its likely fleet is
    sized by; the other layouts as they are."""
    from ocplan.serving.estimate import with_likely_slo_rate

    i = next((i for i, e in enumerate(found.results) if e.feasible), None)
    if i is None:
        return found
    results = list(found.results)
    results[i] = with_likely_slo_rate(results[i], workload, system)
    return replace(found, results=tuple(results))


def system_from_mapping(data: Any, catalog: Catalog, source: str = "system") -> System:
    """Validate and resolve a system given as a mapping (a parsed YAML or JSON body)."""
    spec = validate_as(SystemSpec, data, source)
    return resolve_system(spec, catalog, source)


def system_yaml(mapping: Mapping[str, Any]) -> str:
    """A system mapping as the text of a system YAML file (keys in the file's order)."""
    import yaml

    header = "# ocplan system file (exported from the workbench); check it: ocplan check FILE\n"
    return header + yaml.safe_dump(dict(mapping), sort_keys=False, allow_unicode=True)


def job_system(catalog: Catalog, chip: str | None, system: Path | dict[str, Any] | None,
               chips: int | None, source: str = "request") -> System:
    """The system a job runs on: a system file or mapping, or a chip's default server
    for ``chips`` chips (:data:`DEFAULT_CHIPS` when None); a chip given with a system
    must be the system's. ``source`` names the input in error lines (``"--chip"`` from
    the CLI)."""
    if isinstance(system, Path):
        resolved = read_system(catalog, system)
    elif system is not None:
        resolved = system_from_mapping(system, catalog)
    elif chip is not None:
        resolved = system_for_chip(catalog, chip, chips or DEFAULT_CHIPS, source)
    else:
        raise SpecError.one(source, "chip", "give a chip id or a system")
    if chip is not None and system is not None and chip != resolved.accelerator.id:
        raise SpecError.one(source, "chip", f"the system runs {resolved.accelerator.id}; "
                                            "give a chip or a system, not both", chip)
    if chips is not None and chips > resolved.num_chips:
        raise SpecError.one(source, "chips", f"the system has {resolved.num_chips} chips",
                            chips)
    return resolved


def job_chips(chips: int | None, system: Path | dict[str, Any] | None,
              resolved: System) -> int:
    """The chips a job runs on: ``chips`` when given, else every chip of its system
    file or mapping, else :data:`DEFAULT_CHIPS` (a chip's default server may hold more:
    a GB200 NVL72 rack is built whole)."""
    if chips is not None:
        return chips
    return resolved.num_chips if system is not None else DEFAULT_CHIPS


#: The workload type a request builds (training or serving).
W = TypeVar("W")


def resolve_job(catalog: Catalog, req: JobRequest | InferJob, system_file: Path | None,
                source: str, workload_of: Callable[[], W]) -> tuple[System, W, int]:
    """The request's system, workload and chips (:func:`job_chips`), with every problem
    of the system and the workload raised at once (an unknown chip and an unknown model
    are two lines of one SpecError, not the first)."""
    problems: list[Problem] = []
    system: System | None = None
    workload: W | None = None
    given = system_file or req.system
    try:
        system = job_system(catalog, req.chip, given, req.chips, source)
    except SpecError as exc:
        problems.extend(exc.problems)
    try:
        workload = workload_of()
    except SpecError as exc:
        problems.extend(exc.problems)
    if problems:
        raise SpecError(problems)
    assert system is not None
    assert workload is not None
    return system, workload, job_chips(req.chips, given, system)


def job_json(req: JobRequest | CompareRequest) -> dict[str, object]:
    """What a training answer was computed for, as JSON data: the model, the batch, the
    sequence and every option (:func:`~ocplan.workloads.options.option_fields`), so that
    a saved estimate, search or comparison names its job."""
    return {"model": req.model, "global_batch": req.global_batch, "seq_len": req.seq_len,
            **req.options()}


def training_workload(catalog: Catalog, req: JobRequest | CompareRequest,
                      source: str = "request") -> Workload:
    """The training workload of a request (its model from the catalog)."""
    arch = catalog.model(req.model, source, "model")
    return req.workload(ModelShape.from_arch(arch), req.seq_len, req.global_batch)


def run_estimate(catalog: Catalog, req: EstimateRequest, system_file: Path | None = None,
                 source: str = "request") -> tuple[Estimate, System, Workload]:
    """Estimate the layout of an EstimateRequest."""
    system, workload, chips = resolve_job(catalog, req, system_file, source,
                                          lambda: training_workload(catalog, req, source))
    if problems := run_inputs_problems("throughput", req.train_tokens,
                                       req.price_per_chip_hour, (), source):
        raise SpecError(problems)
    plan = Plan.from_mapping(req.layout())  # dp = 1 until the chips give it
    per_replica = plan.tp * plan.pp * plan.cp
    if chips % per_replica:
        raise SpecError.one(source, "chips", f"not divisible by tp x pp x cp = "
                                                f"{per_replica}", chips)
    plan = replace(plan, dp=chips // per_replica)
    refused = refused_reason(system, req.allow_invalid)
    if refused is not None:
        return infeasible_estimate(plan, refused), system, workload
    return estimate(workload, plan, system), system, workload


def run_sensitivity(result: Estimate, workload: Workload, system: System,
                    factor: float = SENSITIVITY_FACTOR) -> Sensitivity | None:
    """What each hardware resource buys the step of an estimated layout
    (:func:`ocplan.plan.sensitivity.sensitivity`); None for a layout that cannot run."""
    if not result.feasible:
        return None
    return sensitivity(workload, result.plan, system, factor)


def run_search(catalog: Catalog, req: SearchRequest, system_file: Path | None = None,
               progress: Any = None, allow_offload: bool = False,
               source: str = "request") -> SearchResult:
    """Search the layouts of a SearchRequest (Infeasible "invalid" for a system that
    fails a check, unless the request allows it)."""
    system, workload, chips = resolve_job(catalog, req, system_file, source,
                                          lambda: training_workload(catalog, req, source))
    guard(system, req.allow_invalid)
    return search(workload, system, chips, objective=req.objective,
                  top_k=req.top_k, train_tokens=req.train_tokens,
                  price_per_chip_hour=req.price_per_chip_hour, progress=progress,
                  allow_offload=allow_offload, chip_counts=req.chip_counts,
                  max_power_W=req.max_power_W, memory_headroom=req.memory_headroom,
                  fixed=req.fixed(), source=source)


#: The remedies of a training layout that does not fit in memory, each with whether it
#: is still open to a plan of a model with so many routed experts: one the plan has taken
#: already (zero 3, full recompute, a micro-batch of 1, offload, every expert on its own
#: chip) is left out of its hint, and a dense model is not told to raise ep.
MEMORY_REMEDIES: tuple[tuple[str, Callable[[Plan, int], bool]], ...] = (
    ("raise tp or pp (more chips per replica)", lambda p, e: True),
    ("raise ep (a mixture-of-experts model's experts over more chips)", lambda p, e: e > p.ep),
    ("zero 3", lambda p, e: p.zero < 3),
    ("recompute full", lambda p, e: not mode(p.recompute).whole_layers
     or p.recompute_layers is not None),
    ("a smaller micro-batch", lambda p, e: p.micro_batch > 1),
    ("offload", lambda p, e: not p.offload),
    ("more chips (ocplan search finds the layouts that fit)", lambda p, e: True),
)

#: What to change, by the key of an infeasible result's reason (training layouts).
INFEASIBLE_HINTS: dict[str, str] = {
    "memory": "shard more: " + ", ".join(r for r, _ in MEMORY_REMEDIES),
    "divisibility": "pick sizes that divide the model and the batch: heads by tp, layers "
                    "by pp x vpp, experts by ep (ep x etp by tp x dp x cp; etp 1 keeps each "
                    "expert whole), the global batch by dp x micro-batch",
    "network": "keep every parallel group inside one scale-up domain, or give the system "
               "a scale-out fabric (scale_out in the system file)",
    "precision": "train in a precision the chip's matrix units cover, or on a chip that has "
                 "a floating-point unit and one for this precision (the reason lists this "
                 "chip's)",
    "batch": "make the global batch a multiple of dp x micro-batch, and a pipeline's "
             "local batch a multiple of the micro-batch that divides a data-parallel "
             "rank's share of the global batch (global batch / dp)",
    "schedule": "give the pipeline schedule what it runs on: vpp 1 and at least 2 x pp "
                "micro-batches (a smaller micro-batch or a larger global batch), for "
                "DualPipe an even pp and an even number of micro-batches, for DualPipeV "
                "two layers a pipeline rank; or pp_schedule 1f1b",
    "recompute": "state a recompute mode that names parts the model has (mla_up: "
                 "multi-head latent attention models only), and recompute_layers no more "
                 "than the layers a stage holds",
    "invalid": "fix what ocplan check reports (a power profile or cooling the modules "
               "allow, enough supplies), or estimate anyway with --allow-invalid "
               "(allow_invalid in a request); the output then says so",
}
#: What to change, by the key of an infeasible serving result's reason (the keys the
#: training table shares keep their meaning; the remedies are the serving layout's).
SERVING_INFEASIBLE_HINTS: dict[str, str] = INFEASIBLE_HINTS | {
    "memory": "shard the weights over more chips: raise tp or pp (or ep for a "
              "mixture-of-experts model), store weights or the KV cache in fewer bits "
              "(--weight-precision, --kv-precision), let the engine fill more of the "
              "HBM (--memory-percent), or give more chips (ocplan infer --search finds "
              "the layouts that fit)",
    "divisibility": "pick sizes that divide the model: heads by tp, layers by pp, "
                    "experts by ep, and the chips by tp x pp",
    "queueing": "lower the arrival rate, or serve it with more replicas (chips)",
}


def facility(system: System) -> FacilityPlan:
    """The facility of a system: racks, cooling, power delivery and the PUE (derived
    unless the system file gives one) that every facility power and energy uses."""
    return facility_plan(system)


def outlook(result: Estimate, workload: Workload, system: System,
            train_tokens: float | None = None,
            price_per_chip_hour: float | None = None) -> ClusterOutlook:
    """The facility of the system (racks, cooling, power delivery, derived PUE) and the
    job's goodput under failures (see :func:`ocplan.results.cluster.cluster_outlook`)."""
    from ocplan.results.cluster import cluster_outlook

    return cluster_outlook(result, workload, system, train_tokens, price_per_chip_hour)


def refused_reason(system: System, allow_invalid: bool) -> str | None:
    """Why estimates on ``system`` are refused: it fails a compliance check and the user
    did not allow that (None otherwise)."""
    return None if allow_invalid else refusal(system_findings(system))


def guard(system: System, allow_invalid: bool) -> None:
    """Raise Infeasible ("invalid") when estimates on ``system`` are refused."""
    reason = refused_reason(system, allow_invalid)
    if reason is not None:
        raise Infeasible("invalid", reason.removeprefix("invalid: "))


def trust(system: System, allow_invalid: bool) -> dict[str, Any]:
    """What every output says about the system it ran on: its findings (errors and
    warnings) and whether it was estimated although invalid."""
    findings = system_findings(system)
    return {"findings": [f.as_dict() for f in findings if f.severity != "info"],
            "allowed_invalid": allow_invalid and refusal(findings) is not None}


def to_train(result: Estimate, train_tokens: float | None, price_per_chip_hour: float | None,
             system: System) -> dict[str, float]:
    """Time, facility energy and (with a price) cost to train ``train_tokens`` at the
    estimate's throughput; empty without tokens or for a layout that cannot run. Energy
    is the job's facility power (:func:`ocplan.results.cluster.job_facility_W`, the same
    as every comparison and goodput figure) over the time."""
    from ocplan.results.cluster import job_facility_W

    if train_tokens is None or not result.feasible:
        return {}
    time_s = result.time_to_train_s(train_tokens)
    out = {"time_to_train_s": time_s,
           "energy_to_train_J": job_facility_W(system, result.chips) * time_s}
    if price_per_chip_hour is not None:
        out["cost_to_train"] = result.cost(train_tokens, price_per_chip_hour)
    return out


def infeasible_hint(reason: str | None, serving: bool = False,
                    plan: Plan | None = None, experts: int = 0) -> str | None:
    """What to change to make an infeasible layout run (a serving layout's with
    ``serving``), from its reason's key (``None`` for a feasible result or an unknown
    key); with the training ``plan`` (of a model with ``experts`` routed experts, 0 for a
    dense one), a memory hint names only the remedies open to it
    (:data:`MEMORY_REMEDIES`)."""
    if not reason:
        return None
    key = reason.split(":", 1)[0].strip()
    if key == "memory" and plan is not None and not serving:
        return "shard more: " + ", ".join(r for r, open_to in MEMORY_REMEDIES
                                          if open_to(plan, experts))
    hints = SERVING_INFEASIBLE_HINTS if serving else INFEASIBLE_HINTS
    return hints.get(key)


def pipeline_timeline(result: Estimate, workload: Workload) -> list[dict[str, Any]]:
    """Gantt events (stage, micro-batch, chunk, F/B/W, start, end) of the estimate's
    pipeline schedule: one micro-batch's compute (and recompute) split 1:2 between
    forward and backward (the GEMM ratio), at most TIMELINE_MAX_MICRO_BATCHES
    micro-batches (a bidirectional schedule at least the 2 pp it needs; its weight
    gradients split off at WGRAD_SHARE of a backward, :mod:`ocplan.plan.schedule`)."""
    if not result.feasible or result.time is None:
        return []
    p = result.plan
    m = p.micro_batches(workload)
    per_mb = (result.time.compute_s + result.time.recompute_s) / m
    # a step of several runs repeats the first (Plan.local_batch)
    shown = min(p.micro_batches_per_run(workload), TIMELINE_MAX_MICRO_BATCHES)
    s = schedule(p.pp_schedule)
    if p.pp > 1 and s.bidirectional:
        shown = max(shown, s.min_micro_batches_per_stage * p.pp)
        shown -= shown % 2 if s.even_micro_batches else 0
        t_f, t_b = s.stage_share * per_mb / 3, s.stage_share * 2 * per_mb / 3
        # a V's stages are half a rank's (stage_share 1/2); DualPipe's are whole ones
        events, _ = bidirectional(p.pp, shown, t_f, t_b, WGRAD_SHARE * t_b,
                                  v_shape=s.stage_share < 1.0)
    else:
        if p.vpp > 1:
            shown = max(p.pp, shown - shown % p.pp)
        events, _ = one_f_one_b(p.pp, shown, per_mb / 3, 2 * per_mb / 3, p.vpp)
    return [dict(stage=e.stage, micro_batch=e.micro_batch, chunk=e.chunk, kind=e.kind,
                 start_s=e.start_s, end_s=e.end_s) for e in events]


def read_system(catalog: Catalog, path: Path) -> System:
    """The system of a system file, its ids resolved in ``catalog``; a SpecError naming
    the command to run when the file is another command's input (one line, instead of
    one unknown-field line per key)."""
    data = load_yaml(path)
    other = OTHER_FILE_KINDS.get(kind_of(data))
    if other is not None:
        _, what, command = other
        raise SpecError.one(str(path), "", f"this is {what}, not a system file; run it with "
                                           f"'{command} {path}'")
    return system_from_mapping(data, catalog, str(path))


def read_module(catalog: Catalog, path: Path) -> ComputeModule:
    """The compute module of a module file (catalog kind ``compute-module``), its CPU id
    resolved in ``catalog`` (a SpecError naming the file otherwise)."""
    module = validate_as(ComputeModule, load_yaml(path), str(path))
    catalog.get(Cpu, module.cpu, source=str(path), field_name="cpu")
    return module


def check_module(module: ComputeModule, catalog: Catalog) -> list[Finding]:
    """The compliance findings of a compute module (:mod:`ocplan.checks.module_rules`:
    memory population, 2DPC speed, lanes, power budget, management), errors first."""
    return module_findings(module, catalog)


def read_managed(catalog: Catalog, path: Path) -> System | CpuNode:
    """What a file served as Redfish describes: a system, or a compute module
    (``kind: compute-module``) as its management node (:mod:`ocplan.redfish.module`)."""
    from ocplan.redfish.module import read_managed as read

    return read(path, catalog)


def check_system(system: System) -> list[Finding]:
    """The compliance findings of a system: every rule of :mod:`ocplan.checks.rules` and
    the facility's (racks, cooling, power delivery), errors first."""
    return system_findings(system)


def topology_summary(system: System) -> tuple[TopologySummary, PowerBudget]:
    """The topology summary and power budget of a system, without the drawable graphs
    of :func:`topology_report`. Raises Infeasible ("size") for a system beyond the
    summary's bound."""
    return summarize(system), power_budget(system)


def topology_figures(summary: TopologySummary, budget: PowerBudget,
                     system: System) -> dict[str, Any]:
    """The topology summary with the system's power, as every surface gives it (the CLI's
    ``topology -f json``, the workbench's ``/api/topology``): IT power at TDP, at the
    supplies' input (with switches), the facility's (PUE x the latter) and the PUE."""
    plan = facility_plan(system)
    return summary.as_dict() | {"server_power_W": budget.server_W, "it_power_W": budget.it_W,
                                "supply_input_power_W": plan.it_W,
                                "facility_power_W": plan.facility_W, "pue": plan.pue}


def validate_runs(catalog: Catalog, path: Path) -> tuple[list[Case], Summary]:
    """Predict the published runs of a validation CSV: each case, and the errors over
    all of them."""
    from ocplan.results.validation import read_cases, run_validation
    from ocplan.results.validation import summarize as summarize_cases

    cases = run_validation(read_cases(path), catalog)
    return cases, summarize_cases(cases)


def summarize_runs(cases: Sequence[Scored]) -> Summary:
    """The errors over some validation cases (a group of them: a chip, a source)."""
    from ocplan.results.validation import summarize as summarize_cases

    return summarize_cases(cases)


def likely_range_coverage(cases: Sequence[Case] | Sequence[ServingCase]) -> tuple[int, int]:
    """(rows measured within their estimate's likely range, rows judged): how often the
    range an estimate states held on these training runs or serving results."""
    from ocplan.results.validation import range_coverage

    return range_coverage(cases)


def is_serving_file(path: Path) -> bool:
    """Whether a validation CSV is in the serving layout (its header names a primary
    metric); unreadable files are left to the readers, which say why."""
    from ocplan.results.serving_validation import is_serving_csv
    from ocplan.results.validation import csv_header

    return is_serving_csv(csv_header(path))


def is_cpu_file(path: Path) -> bool:
    """Whether a validation CSV is in the CPU benchmark layout (``cpu_dev.csv``)."""
    from ocplan.results.cpu_validation import is_cpu_csv
    from ocplan.results.validation import csv_header

    return is_cpu_csv(csv_header(path))


def validate_cpu_runs(path: Path) -> tuple[list[Any], Summary, dict[str, Summary]]:
    """Predict every row of a CPU benchmark CSV from the specs in the row, each CPU's rows
    by a calibration fitted without that CPU (leave one CPU out): the cases, the summary
    over the predicted rows (benchmarks the model does not predict are ``excluded``) and
    one summary per benchmark."""
    from ocplan.results.cpu_validation import (
        read_cpu_cases,
        run_cpu_validation,
        summaries_by_benchmark,
    )
    from ocplan.results.validation import summarize as summarize_cases

    cases = run_cpu_validation(read_cpu_cases(path))
    scored = [c for c in cases if c.status != "excluded"]
    return cases, summarize_cases(scored), summaries_by_benchmark(cases)


def validate_serving_runs(catalog: Catalog, path: Path) -> tuple[list[ServingCase], Summary]:
    """Predict the published serving results of a serving validation CSV."""
    from ocplan.results.serving_validation import read_serving_cases, run_serving_validation
    from ocplan.results.validation import summarize as summarize_cases

    cases = run_serving_validation(read_serving_cases(path), catalog)
    return cases, summarize_cases(cases)


def field_choices() -> dict[str, list[str]]:
    """The values each choice field of a job takes, from their declarations: the
    training options' (:func:`~ocplan.workloads.options.option_fields`: ``precision``,
    ``optimizer_states``, ``moe_dispatch``) and the serving job's
    (:func:`~ocplan.workloads.options.serving_option_fields`: ``load``, ``slo_stat``,
    the weight, activation, KV and recurrent-state formats, ...)."""
    return {f.name: list(f.choices) for f in (*option_fields(), *serving_option_fields())
            if f.kind == "choice"}


def training_objectives() -> list[str]:
    """What a training search or comparison may rank by (:data:`~ocplan.plan.search.
    Objective`), as the requests' ``objective`` takes it."""
    return list(get_args(Objective))


#: Requests whose numeric defaults :func:`job_defaults` reports.
_DEFAULTED_REQUESTS: tuple[type[Spec], ...] = (JobRequest, _SearchJob, CompareRequest)


def job_defaults() -> dict[str, int | float]:
    """What a training request takes when a number is left out, from the requests'
    declarations: ``global_batch``, ``seq_len``, ``top_k``, ``memory_headroom``, ...
    (the layout fields' defaults are the layout declarations', :func:`layout_fields`;
    ``baseline``, an index into the answer, is not a quantity a form asks for)."""
    layout = {f.name for f in REQUEST_LAYOUT}
    found: dict[str, int | float] = {}
    for request in _DEFAULTED_REQUESTS:
        for name, info in request.model_fields.items():
            value = info.default
            if (name in layout or name == "baseline" or isinstance(value, bool)
                    or not isinstance(value, int | float)):
                continue
            assert found.get(name, value) == value, f"{name}: two defaults"
            found[name] = value
    return found


def training_option_fields() -> list[dict[str, object]]:
    """The options a training request takes (precision, optimizer states, MoE routing), as
    JSON data (the web forms are built from them)."""
    return [f.as_json() for f in option_fields()]


def serving_option_json() -> list[dict[str, object]]:
    """The fields of a serving job, as JSON data (the web's serving form is built from
    them): :func:`~ocplan.workloads.options.serving_option_fields`."""
    return [f.as_json() for f in serving_option_fields()]


def layout_fields() -> list[dict[str, object]]:
    """The layout fields a request takes, as JSON data (the web form is built from them)."""
    return [f.as_json() for f in REQUEST_LAYOUT]


def search_layout_fields() -> list[dict[str, object]]:
    """The layout fields a search request takes, as JSON data (the web's search form):
    each field's declaration and ``searched``, whether leaving it out searches it (a
    pinnable axis) rather than keeping its default (the software stack's)."""
    pins = {f.name for f in SEARCH_PINNABLE_LAYOUT}
    return [f.as_json() | {"searched": f.name in pins} for f in SEARCH_GIVEN_LAYOUT]


def layout_label(values: Mapping[str, object]) -> str:
    """The label (:meth:`~ocplan.plan.plan.Plan.label`) of the layout fields in
    ``values``, e.g. a stored search row."""
    return Plan.from_mapping(values).label()


def topology_report(system: System) -> dict[str, Any]:
    """Topology summary, power and a drawable board graph.

    Never builds the whole cluster graph: the summary switches to its analytic method for
    large systems, the power budget is O(1) in the servers and the cluster view draws a
    bounded number of servers and switches. Raises Infeasible ("size") for a system
    beyond the summary's bound (MAX_SUMMARY_CHIPS).
    """
    from ocplan.topology.cluster import board_graph

    summary = summarize(system)
    budget = power_budget(system)
    board = board_graph(system)
    nodes = [{"id": str(n), "kind": d.get("kind", "chip")} for n, d in board.nodes(data=True)]
    edges = [{"source": str(a), "target": str(b), "links": d["links"],
              "bandwidth_Bps": d["bandwidth_Bps"]} for a, b, d in board.edges(data=True)]
    return topology_figures(summary, budget, system) | {
        "board": {"nodes": nodes, "edges": edges}, "cluster": _cluster_view(system)}


#: Servers drawn in the cluster view at most (the fabric pattern repeats beyond).
CLUSTER_VIEW_MAX_SERVERS = 32
#: Leaf switches, and spine switches, drawn in the cluster view at most (each tier): a
#: 64 x 64 leaf-spine mesh is the most a browser figure shows legibly, and every tree of
#: up to 4,096 8-NIC servers on radix-128 switches (32 leaves, 16 spines) is drawn whole.
CLUSTER_VIEW_MAX_SWITCHES = 64


def _cluster_view(system: System) -> dict[str, Any]:
    """Servers, leaf and spine switches and the links between them (server level).

    The first CLUSTER_VIEW_MAX_SERVERS servers with the leaves their NICs plug into,
    then (when there are spines) the other leaves and the spines, up to
    CLUSTER_VIEW_MAX_SWITCHES per tier; link bandwidths summed per pair, per direction.
    Wired from the fat tree's shape as :func:`~ocplan.topology.cluster.cluster_graph`
    wires it, without building the cluster graph (O(servers shown x NICs + switches)).
    """
    from ocplan.topology.cluster import (
        leaf_of_nic,
        leaves_per_rail_used,
        nic_Bps,
        rail_optimized,
        scale_out_shape,
    )

    shape = scale_out_shape(system)
    if shape is None or system.num_servers == 1:
        return {"nodes": [], "edges": [], "servers_shown": 0}
    assert system.fabric is not None
    shown = min(system.num_servers, CLUSTER_VIEW_MAX_SERVERS)
    nics, nic_bw = nic_Bps(system)
    rail_opt = rail_optimized(system)
    links: list[tuple[int, tuple[int, int]]] = [
        (s, leaf_of_nic(s, k, nics, shape, rail_opt)) for s in range(shown) for k in range(nics)]
    leaves = sorted({leaf for _, leaf in links})[:CLUSTER_VIEW_MAX_SWITCHES]
    spines = min(shape.spines, CLUSTER_VIEW_MAX_SWITCHES)
    if spines:
        rails, per_rail = leaves_per_rail_used(system, shape)
        drawn = set(leaves)
        for rail in range(rails):
            for j in range(per_rail):
                if len(leaves) >= CLUSTER_VIEW_MAX_SWITCHES:
                    break
                if (rail, j) not in drawn:
                    leaves.append((rail, j))
    drawn = set(leaves)
    edges: dict[tuple[str, str], float] = {}

    def add(a: str, b: str, bandwidth: float) -> None:
        key = (min(a, b), max(a, b))
        edges[key] = edges.get(key, 0.0) + bandwidth

    for s, leaf in links:
        if leaf in drawn:
            add(f"server {s}", f"leaf {leaf[0]}.{leaf[1]}", nic_bw)
    per_spine = shape.up_per_leaf / shape.spines * system.fabric.link_bandwidth if spines else 0.0
    for rail, j in leaves:
        for spine in range(spines):
            add(f"leaf {rail}.{j}", f"spine {spine}", per_spine)
    used = {n for pair in edges for n in pair}
    kinds = {name: name.split(" ")[0] for name in used}
    return {"nodes": [{"id": n, "kind": kinds[n]} for n in sorted(used)],
            "edges": [{"source": a, "target": b, "bandwidth_Bps": bw}
                      for (a, b), bw in sorted(edges.items())],
            "servers_shown": shown}
