"""Sweep files: a grid of layout searches, and its expansion into keyed tasks.

A sweep YAML names models, hardware and cluster sizes; every combination is one
:func:`~ocplan.plan.search.search`::

    name: small
    models: [llama3-8b, mixtral-8x7b]
    chips: [h100-sxm-80gb, mi300x]     # each on its default server and fabric
    cluster_sizes: [8, 16]
    global_batch: 256
    seq_len: 4096
    precision: bf16
    objective: throughput
    top_k: 3

A serving sweep says ``kind: serving`` and gives a serving job's fields instead of a
batch and sequence (every field of :class:`~ocplan.workloads.serving.ServingWorkload`, as
``ocplan infer`` takes them, in SI units); every combination is then one serving layout
search (:func:`~ocplan.serving.search.search_serving`)::

    name: serve
    kind: serving
    models: [llama3-70b]
    chips: [h100-sxm-80gb, mi300x]
    cluster_sizes: [8]
    input_len: 2048
    output_len: 256
    slo_tpot_s: 0.05          # ranked by SLO goodput (a latency limit is set)
    price_per_chip_hour: 2.5  # cost per million output tokens in each row

``servers`` (with ``chips``) lists server ids to populate with each chip, which sweeps
boards (a fully connected against a hybrid-cube-mesh UBB, say). Instead of ``chips``,
``systems`` lists system files (paths relative to the sweep file); each cluster size is
then searched on that system, which must have enough chips.

:func:`expand_sweep` checks the whole grid before anything runs (every id, file and
size; all problems reported at once) and gives each task its content key
(:func:`search_inputs` or :func:`serving_search_inputs` hashed by
:func:`~ocplan.store.db.content_key`). A task runs itself (:meth:`SweepTask.run`,
:meth:`ServingSweepTask.run`), so the runner and both backends treat the kinds alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Protocol

from pydantic import Field, create_model, model_validator

from ocplan.catalog.catalog import Catalog
from ocplan.catalog.fields import (
    MAX_TOP_K,
    Availability,
    BatchSize,
    ChipCount,
    Id,
    Price,
    RepairTime,
    SeqLen,
    Spec,
    TargetRate,
    TrainTokens,
)
from ocplan.catalog.loader import load_yaml, parse_yaml, validate_as
from ocplan.catalog.system import System, load_system, system_for_chip
from ocplan.checks.rules import refusal
from ocplan.errors import Problem, SpecError
from ocplan.facility import system_findings
from ocplan.plan.search import Objective, run_inputs_problems, search
from ocplan.results.compare import Contender, measured
from ocplan.results.fleet import deployment_failures
from ocplan.results.serving_compare import ServedInput, compare_serving
from ocplan.serving.search import Objective as ServingObjective
from ocplan.serving.search import default_objective, search_serving
from ocplan.store.db import canonical_json, content_key, to_json
from ocplan.workloads.options import (
    TrainingOptions,
    option_fields,
    serving_option_fields,
    serving_request_fields,
)
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

__all__ = ["SWEEP_KINDS", "TASK_KINDS", "AnySweepSpec", "ServingSweepSpec", "ServingSweepTask",
           "Sweep", "SweepSpec", "SweepTask", "Task", "expand_sweep", "grid_size", "load_sweep",
           "parse_sweep", "search_inputs", "serving_search_inputs", "sweep_from_data"]

_Ids = Annotated[list[Id], Field(min_length=1, max_length=1000)]


class _Grid(Spec):
    """What every sweep names: the models, the hardware (chips or systems) and the
    cluster sizes its tasks are the combinations of, and how many layouts each keeps."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    models: _Ids
    chips: _Ids | None = None
    """Accelerator ids, each on its default server and fabric."""
    servers: _Ids | None = None
    """With ``chips``: server ids (boards) to populate with each chip instead of its
    default server, e.g. the same OAM on a fully connected and a hybrid-cube-mesh UBB."""
    systems: Annotated[list[Annotated[str, Field(min_length=1)]],
                       Field(min_length=1, max_length=1000)] | None = None
    """System files (relative to the sweep file), instead of ``chips``."""
    cluster_sizes: Annotated[list[ChipCount], Field(min_length=1, max_length=1000)]
    top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K, strict=True)] = 5

    @model_validator(mode="after")
    def _one_kind_of_hardware(self) -> _Grid:
        if (self.chips is None) == (self.systems is None):
            raise ValueError("give exactly one of 'chips' (accelerator ids) or 'systems' "
                             "(system files)")
        if self.servers is not None and self.chips is None:
            raise ValueError("'servers' needs 'chips' (the modules to populate them with)")
        return self


class SweepSpec(TrainingOptions, _Grid):
    """A grid of training searches: models x hardware (chips or systems) x cluster sizes,
    every search with the same options
    (:class:`~ocplan.workloads.options.TrainingOptions`)."""

    kind: Literal["training"] = "training"
    global_batch: BatchSize
    seq_len: SeqLen
    objective: Objective = "throughput"
    train_tokens: TrainTokens | None = None
    """Tokens to train on: each stored row then has time and energy to train."""
    price_per_chip_hour: Price | None = None
    """With ``train_tokens``: each stored row has the cost to train."""


class _ServingGrid(_Grid):
    """A grid of serving searches (its job's fields are added from their declarations:
    :data:`ServingSweepSpec`)."""

    kind: Literal["serving"]
    objective: ServingObjective | None = None
    """What each search ranks by; default goodput when the job sets a latency limit,
    else throughput (as ``ocplan infer --search``)."""
    price_per_chip_hour: Price | None = None
    """Each stored row then has the cost per million output tokens."""
    target_rate_per_s: TargetRate | None = None
    """A load to plan for, requests/s: each stored row then has the fleet of its best
    layout that serves it (deployments, chips, IT power, cost per hour)."""
    availability: Availability | None = None
    """With ``target_rate_per_s``: the share of time each fleet serves the whole target
    through failures; each stored row then counts its spare deployments."""
    repair_s: RepairTime = 0.0
    """With ``availability``: the extra outage of a hardware failure, s."""

    @model_validator(mode="after")
    def _availability_needs_a_target(self) -> _ServingGrid:
        if self.availability is not None and self.target_rate_per_s is None:
            raise ValueError("'availability' sizes the spares of a fleet: give "
                             "'target_rate_per_s' too")
        return self


if TYPE_CHECKING:
    ServingSweepSpec = _ServingGrid
else:
    ServingSweepSpec = create_model("ServingSweepSpec", __base__=_ServingGrid,
                                    __module__=__name__, **serving_request_fields())
    """A grid of serving layout searches: models x hardware x cluster sizes, every
    search of the same serving job (the fields of
    :class:`~ocplan.workloads.serving.ServingWorkload`)."""

#: The kinds of sweep a file may name (``kind``), each with its spec.
SWEEP_KINDS: dict[str, type[_Grid]] = {"training": SweepSpec, "serving": ServingSweepSpec}
#: A sweep spec of either kind.
AnySweepSpec = SweepSpec | _ServingGrid


@dataclass(frozen=True)
class Sweep:
    """A sweep spec and where it was read from (system paths are relative to it)."""

    spec: AnySweepSpec
    source: str = "sweep"
    base_dir: Path = Path()


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep YAML file, a training sweep unless it says ``kind:
    serving`` (ids and files are checked by :func:`expand_sweep`)."""
    path = Path(path)
    return sweep_from_data(load_yaml(path), str(path), path.parent)


def parse_sweep(text: str, source: str) -> Sweep:
    """A sweep from YAML (or JSON) text, as :func:`load_sweep` reads a file; system
    files it names are relative to the working directory."""
    return sweep_from_data(parse_yaml(text, source), source, Path())


def sweep_from_data(data: Any, source: str, base_dir: Path) -> Sweep:
    """A sweep from parsed YAML data: a training sweep unless it says ``kind: serving``."""
    kind = data.get("kind", "training") if isinstance(data, dict) else "training"
    spec_type = SWEEP_KINDS.get(kind) if isinstance(kind, str) else None
    if spec_type is None:
        raise SpecError.one(source, "kind", "expected one of " + ", ".join(SWEEP_KINDS),
                            kind)
    spec = validate_as(spec_type, data, source)
    assert isinstance(spec, SweepSpec | _ServingGrid)
    return Sweep(spec, source, base_dir)


def grid_size(spec: AnySweepSpec) -> int:
    """How many tasks the grid names at most (models x hardware x cluster sizes), known
    before anything is expanded."""
    hardware = (len(spec.chips) * len(spec.servers or [None]) if spec.chips is not None
                else len(spec.systems or []))
    return len(spec.models) * hardware * len(spec.cluster_sizes)


def _entry_json(entry: Any) -> Any:
    return entry.model_dump(mode="json", exclude={"sources", "notes"})


def _hardware_inputs(system: System) -> dict[str, Any]:
    """The system a task runs on, as key inputs: its spec and a digest of the catalog
    entries it resolves to, so that an edited catalog entry (a user catalog overriding a
    chip, say) gives a new key."""
    hardware = {
        "accelerator": _entry_json(system.accelerator), "server": _entry_json(system.server),
        "baseboard": _entry_json(system.baseboard), "cpu": _entry_json(system.cpu),
        "fabric": _entry_json(system.fabric) if system.fabric else None,
        "nic": _entry_json(system.nic) if system.nic else None,
        "server_nics": [[_entry_json(n), count, attach]
                        for n, count, attach in system.server_nics],
    }
    return {"chip": system.accelerator.id, "system": system.spec.model_dump(mode="json"),
            "hardware_sha256": hashlib.sha256(canonical_json(hardware).encode()).hexdigest()}


def search_inputs(workload: Workload, system: System, chips: int, objective: str,
                  top_k: int, train_tokens: float | None = None,
                  price_per_chip_hour: float | None = None) -> dict[str, Any]:
    """Everything a search's result depends on, as JSON data (hashed into its key): the
    model by id and full shape, the system (:func:`_hardware_inputs`), the job and the
    search's settings."""
    money = {k: v for k, v in (("train_tokens", train_tokens),
                               ("price_per_chip_hour", price_per_chip_hour)) if v is not None}
    return money | {
        "kind": SweepTask.store_kind,
        "model": workload.model.name,
        "model_shape": workload.model.as_json(),
        **_hardware_inputs(system),
        "chips": chips,
        "global_batch": workload.global_batch,
        "seq_len": workload.seq_len,
        **{f.name: getattr(workload, f.name) for f in option_fields()},
        "objective": objective,
        "top_k": top_k,
    }


def serving_search_inputs(workload: ServingWorkload, system: System, chips: int,
                          objective: str, top_k: int,
                          price_per_chip_hour: float | None = None,
                          target_rate_per_s: float | None = None,
                          availability: float | None = None,
                          repair_s: float = 0.0) -> dict[str, Any]:
    """Everything a serving search's result depends on, as JSON data (hashed into its
    key): as :func:`search_inputs`, with the serving job's fields (a fleet's target,
    availability and repair time only when given, so other keys keep their value)."""
    survive = {} if availability is None else {"availability": availability,
                                               "repair_s": repair_s}
    money = survive | {k: v for k, v in (("price_per_chip_hour", price_per_chip_hour),
                                         ("target_rate_per_s", target_rate_per_s))
                       if v is not None}
    return money | {
        "kind": ServingSweepTask.store_kind,
        "model": workload.model.name,
        "model_shape": workload.model.as_json(),
        **_hardware_inputs(system),
        "chips": chips,
        **{f.name: getattr(workload, f.name) for f in serving_option_fields()},
        "objective": objective,
        "top_k": top_k,
    }


class Task(Protocol):
    """One search of a grid, with everything a worker needs (picklable): what the runner
    and both backends know of a task of any kind."""

    store_kind: ClassVar[str]
    """The kind its result is stored as (``search``, ``serving-search``)."""
    key_figure: ClassVar[str]
    """The rate every stored best layout of the kind has (read back as a number)."""

    @property
    def key(self) -> str: ...
    @property
    def inputs(self) -> dict[str, Any]: ...
    @property
    def system(self) -> System: ...
    @property
    def chips(self) -> int: ...
    @property
    def hardware(self) -> str: ...
    @property
    def model_name(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def chip(self) -> str: ...

    def run(self) -> dict[str, Any]:
        """The search's result as JSON data with ``best`` (the best layout, None when
        none fits) and ``row`` (it in the columns of the kind's comparison)."""
        ...


class _Named:
    """What a task of either kind says of itself: its model, chip and label
    (``llama3-8b on 8 x h100-sxm-80gb``), from the fields its dataclass declares."""

    workload: Workload | ServingWorkload
    system: System
    chips: int
    hardware: str

    @property
    def model_name(self) -> str:
        return self.workload.model.name

    @property
    def label(self) -> str:
        return f"{self.model_name} on {self.chips} x {self.hardware}"

    @property
    def chip(self) -> str:
        """The accelerator's catalog id."""
        return self.system.accelerator.id


@dataclass(frozen=True)
class SweepTask(_Named):
    """One training search of the grid, with everything a worker needs (all picklable)."""

    store_kind: ClassVar[str] = "search"
    key_figure: ClassVar[str] = "tokens_per_s_per_chip"

    key: str
    inputs: dict[str, Any]
    workload: Workload
    system: System
    chips: int
    objective: str
    top_k: int
    hardware: str
    """The chip id, or the system file, as the sweep names it."""
    train_tokens: float | None = None
    price_per_chip_hour: float | None = None

    def run(self) -> dict[str, Any]:
        """The search's result (:meth:`~ocplan.plan.search.SearchResult.as_json`, its
        wall time kept apart in ``elapsed_s``), plus ``row``: the best layout in the
        columns of ``ocplan compare`` (time, energy and cost to train, power, racks, the
        system's check findings)."""
        found = search(self.workload, self.system, self.chips, objective=self.objective,
                       top_k=self.top_k, train_tokens=self.train_tokens,
                       price_per_chip_hour=self.price_per_chip_hour)
        findings = tuple(system_findings(self.system))
        row = measured(Contender(self.label, self.system, self.chips,
                                 self.price_per_chip_hour),
                       self.workload, findings, found.best, found.why, self.train_tokens,
                       allowed_invalid=refusal(findings) is not None)
        result: dict[str, Any] = to_json(found.as_json() | {"row": row.as_json()})
        return result


@dataclass(frozen=True)
class ServingSweepTask(_Named):
    """One serving layout search of the grid (all picklable)."""

    store_kind: ClassVar[str] = "serving-search"
    key_figure: ClassVar[str] = "output_tokens_per_s_per_chip"

    key: str
    inputs: dict[str, Any]
    workload: ServingWorkload
    system: System
    chips: int
    objective: str
    top_k: int
    hardware: str
    price_per_chip_hour: float | None = None
    target_rate_per_s: float | None = None
    availability: float | None = None
    repair_s: float = 0.0

    def run(self) -> dict[str, Any]:
        """The search's ``top_k`` layouts (as ``ocplan infer --search`` lists them), its
        ``best`` feasible one, and ``row``: that one in the columns of a serving
        comparison (``ocplan infer --search --vs``: rates, latencies, SLO goodput, cost
        and energy per million output tokens, power) with the system's check findings and
        the comparison's note (what a goodput ranking's columns mean)."""
        found = search_serving(self.workload, self.system, self.chips,
                               objective=self.objective)
        compared = compare_serving(self.objective, [ServedInput(
            self.label, self.system.spec.name, self.system.accelerator.id, self.chips, found,
            self.price_per_chip_hour, failures=None if self.availability is None
            else deployment_failures(self.system, self.chips))],
            target_rate_per_s=self.target_rate_per_s, availability=self.availability,
            repair_s=self.repair_s)
        (row,) = compared.systems
        findings = [f.as_dict() for f in system_findings(self.system)]
        best = next((e for e in found.results if e.feasible), None)
        result: dict[str, Any] = to_json({
            "objective": found.objective,
            "top": [e.as_dict() | {"layout": e.plan.label()}
                    for e in found.results[:self.top_k]],
            "best": None if best is None else best.as_dict() | {"layout": best.plan.label()},
            # the row without its estimate again: that is the task's best
            "row": {k: v for k, v in row.as_json().items() if k != "best"}
            | {"findings": findings, "note": compared.note()}})
        return result


#: The task of each kind of sweep (a sweep file's ``kind``): what it stores, under which
#: store kind, and its key figure.
TASK_KINDS: dict[str, type[SweepTask] | type[ServingSweepTask]] = {
    "training": SweepTask, "serving": ServingSweepTask}
assert TASK_KINDS.keys() == SWEEP_KINDS.keys(), "each kind of sweep has its task"


def _hardware(sweep: Sweep, catalog: Catalog, problems: list[Problem]
              ) -> list[tuple[str, list[System]]]:
    """Each hardware the grid names (a chip on each server, or a system file) with its
    system at each cluster size; every bad id, file and size added to ``problems``."""
    spec, source = sweep.spec, sweep.source
    hardware: list[tuple[str, list[System]]] = []
    boards: list[tuple[int, str | None]] = list(enumerate(spec.servers or [None]))
    for i, chip in enumerate(spec.chips or []):
        for j, server in boards:
            name = chip if server is None else f"{chip} in {server}"
            try:
                hardware.append((name, [system_for_chip(catalog, chip, n, source, server,
                                                        f"servers[{j}]")
                                        for n in spec.cluster_sizes]))
            except SpecError as exc:
                problems.extend(Problem(p.source, f"chips[{i}]" if p.field == "chip"
                                        else p.field, p.message, p.value)
                                for p in exc.problems)
    for i, file in enumerate(spec.systems or []):
        path = Path(file) if Path(file).is_absolute() else sweep.base_dir / file
        try:
            system = load_system(path, catalog)
        except SpecError as exc:
            problems.append(Problem(source, f"systems[{i}]", "this system file has problems "
                                                             "(listed below)", file))
            problems.extend(exc.problems)
            continue
        for j, n in enumerate(spec.cluster_sizes):
            if n > system.num_chips:
                problems.append(Problem(source, f"cluster_sizes[{j}]",
                                        f"system file '{file}' has only {system.num_chips} "
                                        "chips", n))
        hardware.append((file, [system] * len(spec.cluster_sizes)))
    return hardware


def _shapes(sweep: Sweep, catalog: Catalog, problems: list[Problem]) -> list[ModelShape]:
    shapes: list[ModelShape] = []
    for i, model_id in enumerate(sweep.spec.models):
        try:
            shapes.append(ModelShape.from_arch(catalog.model(model_id, sweep.source,
                                                             f"models[{i}]")))
        except SpecError as exc:
            problems.extend(exc.problems)
    return shapes


def _duplicates(spec: AnySweepSpec, source: str) -> list[Problem]:
    dupes = [(field, v) for field, values in (("models", spec.models),
                                              ("chips", spec.chips or []),
                                              ("servers", spec.servers or []),
                                              ("systems", spec.systems or []),
                                              ("cluster_sizes", spec.cluster_sizes))
             for k, v in enumerate(values) if v in values[:k]]
    return [Problem(source, field, "listed twice", v) for field, v in dupes]


def expand_sweep(sweep: Sweep | AnySweepSpec, catalog: Catalog,
                 code: str | None = None) -> Sequence[Task]:
    """The grid's tasks in file order (models, then hardware, then sizes), one per
    distinct key.

    Raises
    ------
    SpecError
        Listing every unknown model or chip id, bad system file, cluster size a system
        cannot hold, and bad serving job, naming the sweep file and field.
    """
    if not isinstance(sweep, Sweep):
        sweep = Sweep(sweep)
    spec, source = sweep.spec, sweep.source
    problems: list[Problem] = []
    shapes = _shapes(sweep, catalog, problems)
    hardware = _hardware(sweep, catalog, problems)
    problems.extend(_duplicates(spec, source))
    if isinstance(spec, SweepSpec):
        problems.extend(run_inputs_problems(
            spec.objective, spec.train_tokens, spec.price_per_chip_hour,
            [(name, systems[0]) for name, systems in hardware], source))
    else:
        workloads = [_serving_workload(spec, shape, source, problems) for shape in shapes]
    if problems:
        raise SpecError(problems)
    found: dict[str, Task] = {}
    for i, shape in enumerate(shapes):
        for name, systems in hardware:
            for n, system in zip(spec.cluster_sizes, systems, strict=True):
                task: Task
                if isinstance(spec, SweepSpec):
                    task = _training_task(spec, shape, system, n, name, code)
                else:
                    workload = workloads[i]
                    assert workload is not None, "a bad serving job was refused above"
                    task = _serving_task(spec, workload, system, n, name, code)
                found.setdefault(task.key, task)
    return list(found.values())


def _training_task(spec: SweepSpec, shape: ModelShape, system: System, chips: int,
                   hardware: str, code: str | None) -> SweepTask:
    workload = spec.workload(shape, spec.seq_len, spec.global_batch)
    inputs = search_inputs(workload, system, chips, spec.objective, spec.top_k,
                           spec.train_tokens, spec.price_per_chip_hour)
    return SweepTask(content_key(inputs, code), inputs, workload, system, chips,
                     spec.objective, spec.top_k, hardware, spec.train_tokens,
                     spec.price_per_chip_hour)


def _serving_workload(spec: _ServingGrid, shape: ModelShape, source: str,
                      problems: list[Problem]) -> ServingWorkload | None:
    """The sweep's serving job on one model, or None with its problems (a bound, a
    format the model has no use for) added to ``problems`` naming the sweep file."""
    values = {f.name: getattr(spec, f.name) for f in serving_option_fields()}
    try:
        return ServingWorkload(shape, **values)
    except SpecError as exc:
        problems.extend(Problem(source, p.field, f"{p.message} (model {shape.name})",
                                p.value) for p in exc.problems)
        return None


def _serving_task(spec: _ServingGrid, workload: ServingWorkload, system: System,
                  chips: int, hardware: str, code: str | None) -> ServingSweepTask:
    objective = spec.objective or default_objective(workload.slo_ttft_s, workload.slo_tpot_s)
    inputs = serving_search_inputs(workload, system, chips, objective, spec.top_k,
                                   spec.price_per_chip_hour, spec.target_rate_per_s,
                                   spec.availability, spec.repair_s)
    return ServingSweepTask(content_key(inputs, code), inputs, workload, system, chips,
                            objective, spec.top_k, hardware, spec.price_per_chip_hour,
                            spec.target_rate_per_s, spec.availability, spec.repair_s)
