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

``servers`` (with ``chips``) lists server ids to populate with each chip, which sweeps
boards (a fully connected against a hybrid-cube-mesh UBB, say). Instead of ``chips``,
``systems`` lists system files (paths relative to the sweep file); each cluster size is
then searched on that system, which must have enough chips.

:func:`expand_sweep` checks the whole grid before anything runs (every id, file and
size; all problems reported at once) and gives each task its content key
(:func:`search_inputs` hashed by :func:`~ocplan.store.db.content_key`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, model_validator

from ocplan.catalog.catalog import Catalog
from ocplan.catalog.fields import (
    MAX_TOP_K,
    BatchSize,
    ChipCount,
    Id,
    Price,
    SeqLen,
    TrainTokens,
)
from ocplan.catalog.loader import load_yaml, validate_as
from ocplan.catalog.system import System, load_system, system_for_chip
from ocplan.errors import Problem, SpecError
from ocplan.plan.search import Objective, run_inputs_problems
from ocplan.store.db import canonical_json, content_key
from ocplan.workloads.options import TrainingOptions, option_fields
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

__all__ = ["Sweep", "SweepSpec", "SweepTask", "expand_sweep", "load_sweep", "search_inputs"]

_Ids = Annotated[list[Id], Field(min_length=1, max_length=1000)]


class SweepSpec(TrainingOptions):
    """A grid of searches: models x hardware (chips or systems) x cluster sizes, every
    search with the same options (:class:`~ocplan.workloads.options.TrainingOptions`)."""

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
    global_batch: BatchSize
    seq_len: SeqLen
    objective: Objective = "throughput"
    top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K, strict=True)] = 5
    train_tokens: TrainTokens | None = None
    """Tokens to train on: each stored row then has time and energy to train."""
    price_per_chip_hour: Price | None = None
    """With ``train_tokens``: each stored row has the cost to train."""

    @model_validator(mode="after")
    def _one_kind_of_hardware(self) -> SweepSpec:
        if (self.chips is None) == (self.systems is None):
            raise ValueError("give exactly one of 'chips' (accelerator ids) or 'systems' "
                             "(system files)")
        if self.servers is not None and self.chips is None:
            raise ValueError("'servers' needs 'chips' (the modules to populate them with)")
        return self


@dataclass(frozen=True)
class Sweep:
    """A sweep spec and where it was read from (system paths are relative to it)."""

    spec: SweepSpec
    source: str = "sweep"
    base_dir: Path = Path()


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep YAML file (ids and files are checked by
    :func:`expand_sweep`)."""
    path = Path(path)
    spec = validate_as(SweepSpec, load_yaml(path), str(path))
    return Sweep(spec, str(path), path.parent)


def _entry_json(entry: Any) -> Any:
    return entry.model_dump(mode="json", exclude={"sources", "notes"})


def search_inputs(workload: Workload, system: System, chips: int, objective: str,
                  top_k: int, train_tokens: float | None = None,
                  price_per_chip_hour: float | None = None) -> dict[str, Any]:
    """Everything a search's result depends on, as JSON data (hashed into its key).

    The model is given by id and full shape; the system by its spec and a digest of
    the catalog entries it resolves to, so that an edited catalog entry (a user
    catalog overriding a chip, say) gives a new key.
    """
    hardware = {
        "accelerator": _entry_json(system.accelerator), "server": _entry_json(system.server),
        "baseboard": _entry_json(system.baseboard), "cpu": _entry_json(system.cpu),
        "fabric": _entry_json(system.fabric) if system.fabric else None,
        "nic": _entry_json(system.nic) if system.nic else None,
        "server_nics": [[_entry_json(n), count, attach]
                        for n, count, attach in system.server_nics],
    }
    money = {k: v for k, v in (("train_tokens", train_tokens),
                               ("price_per_chip_hour", price_per_chip_hour)) if v is not None}
    return money | {
        "kind": "search",
        "model": workload.model.name,
        "model_shape": workload.model.as_json(),
        "chip": system.accelerator.id,
        "system": system.spec.model_dump(mode="json"),
        "hardware_sha256": hashlib.sha256(canonical_json(hardware).encode()).hexdigest(),
        "chips": chips,
        "global_batch": workload.global_batch,
        "seq_len": workload.seq_len,
        **{f.name: getattr(workload, f.name) for f in option_fields()},
        "objective": objective,
        "top_k": top_k,
    }


@dataclass(frozen=True)
class SweepTask:
    """One search of the grid, with everything a worker needs (all picklable)."""

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

    @property
    def label(self) -> str:
        return f"{self.workload.model.name} on {self.chips} x {self.hardware}"


def expand_sweep(sweep: Sweep | SweepSpec, catalog: Catalog,
                 code: str | None = None) -> list[SweepTask]:
    """The grid's tasks in file order (models, then hardware, then sizes), one per
    distinct key.

    Raises
    ------
    SpecError
        Listing every unknown model or chip id, bad system file, and cluster size a
        system cannot hold, naming the sweep file and field.
    """
    if isinstance(sweep, SweepSpec):
        sweep = Sweep(sweep)
    spec, source = sweep.spec, sweep.source
    problems: list[Problem] = []
    shapes: list[ModelShape] = []
    for i, model_id in enumerate(spec.models):
        try:
            shapes.append(ModelShape.from_arch(catalog.model(model_id, source,
                                                             f"models[{i}]")))
        except SpecError as exc:
            problems.extend(exc.problems)
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
    dupes = [(field, v) for field, values in (("models", spec.models),
                                              ("chips", spec.chips or []),
                                              ("servers", spec.servers or []),
                                              ("systems", spec.systems or []),
                                              ("cluster_sizes", spec.cluster_sizes))
             for k, v in enumerate(values) if v in values[:k]]
    problems.extend(Problem(source, field, "listed twice", v) for field, v in dupes)
    problems.extend(run_inputs_problems(
        spec.objective, spec.train_tokens, spec.price_per_chip_hour,
        [(name, systems[0]) for name, systems in hardware], source))
    if problems:
        raise SpecError(problems)
    tasks: dict[str, SweepTask] = {}
    for shape in shapes:
        workload = spec.workload(shape, spec.seq_len, spec.global_batch)
        for name, systems in hardware:
            for n, system in zip(spec.cluster_sizes, systems, strict=True):
                inputs = search_inputs(workload, system, n, spec.objective, spec.top_k,
                                       spec.train_tokens, spec.price_per_chip_hour)
                key = content_key(inputs, code)
                if key not in tasks:
                    tasks[key] = SweepTask(key, inputs, workload, system, n, spec.objective,
                                           spec.top_k, name, spec.train_tokens,
                                           spec.price_per_chip_hour)
    return list(tasks.values())
