"""The façade the CLI, the web workbench and notebooks share.

Requests are pydantic models (unknown fields are errors) so that a JSON body, a YAML
file and CLI flags all go through the same validation and the same one-line messages.
Nothing here computes: it resolves ids and calls the engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from ocplan.catalog.catalog import Catalog
from ocplan.catalog.fields import (
    MAX_LAYERS,
    MAX_TOP_K,
    BatchSize,
    ChipCount,
    Flag,
    Id,
    Price,
    SeqLen,
    Spec,
    TrainTokens,
)
from ocplan.catalog.loader import validate_as
from ocplan.catalog.system import System, SystemSpec, load_system, resolve_system, system_for_chip
from ocplan.checks.rules import Finding, run_rules
from ocplan.errors import SpecError
from ocplan.plan.estimate import Estimate, estimate
from ocplan.plan.plan import Plan
from ocplan.plan.schedule import one_f_one_b
from ocplan.plan.search import SearchResult, search
from ocplan.topology.analysis import summarize
from ocplan.topology.power import power_budget
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

__all__ = [
    "EstimateRequest",
    "SearchRequest",
    "check_system",
    "job_system",
    "pipeline_timeline",
    "run_estimate",
    "run_search",
    "system_from_mapping",
    "topology_report",
]

#: Micro-batches drawn in a pipeline timeline at most (the rest repeat the pattern).
TIMELINE_MAX_MICRO_BATCHES = 32


class JobRequest(Spec):
    """A training job on chips of a catalog accelerator or of a system."""

    model: Id
    chip: Id | None = None
    system: dict[str, Any] | None = None
    """A system mapping (the content of a system YAML file)."""
    chips: ChipCount
    global_batch: BatchSize
    seq_len: SeqLen
    precision: Literal["bf16", "fp16", "fp8", "int8"] = "bf16"
    train_tokens: TrainTokens | None = None
    """Tokens to train on, for time, energy and cost to train."""
    price_per_chip_hour: Price | None = None
    """Price of one chip for one hour, for cost to train."""


class EstimateRequest(JobRequest):
    tp: ChipCount = 1
    pp: ChipCount = 1
    cp: ChipCount = 1
    ep: ChipCount = 1
    vpp: ChipCount = 1
    micro_batch: BatchSize = 1
    zero: Annotated[int, Field(ge=0, le=3, strict=True)] = 1
    recompute: Literal["none", "selective", "full"] = "none"
    recompute_layers: Annotated[int, Field(ge=0, le=MAX_LAYERS, strict=True)] | None = None
    """With ``recompute="full"``: layers per stage to recompute (default all)."""
    sequence_parallel: Flag = True
    shard_group: ChipCount | None = None
    """Hybrid sharding: ZeRO shards within groups of this many data-parallel ranks."""

    @field_validator("recompute_layers")
    @classmethod
    def _recompute_layers_need_full(cls, value: int | None,
                                    info: ValidationInfo) -> int | None:
        recompute = info.data.get("recompute")
        if value is not None and recompute != "full":
            raise ValueError(f"counts fully recomputed layers, so it needs recompute = "
                             f"'full', not {recompute!r}")
        return value


class SearchRequest(JobRequest):
    objective: Literal["throughput", "time", "cost", "energy"] = "throughput"
    top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K, strict=True)] = 5
    chip_counts: Annotated[tuple[ChipCount, ...], Field(min_length=1, max_length=64)] | None \
        = None
    """Chip counts to compare (each at most ``chips``); default just ``chips``."""
    max_power_W: Annotated[float, Field(strict=True, ge=1, le=1e10)] | None = None
    """Most IT power allowed, W (1e10 W is ten times the largest data-centre campus)."""
    memory_headroom: Annotated[float, Field(strict=True, ge=0, lt=1)] = 0.0


def system_from_mapping(data: Any, catalog: Catalog, source: str = "system") -> System:
    """Validate and resolve a system given as a mapping (a parsed YAML or JSON body)."""
    spec = validate_as(SystemSpec, data, source)
    return resolve_system(spec, catalog, source)


def job_system(catalog: Catalog, chip: str | None, system: Path | dict[str, Any] | None,
               chips: int, source: str = "request") -> System:
    """The system a job runs on: a system file or mapping, or a chip's default server.
    ``source`` names the input in error lines (``"--chip"`` from the CLI)."""
    if isinstance(system, Path):
        resolved = load_system(system, catalog)
    elif system is not None:
        resolved = system_from_mapping(system, catalog)
    elif chip is not None:
        resolved = system_for_chip(catalog, chip, chips, source)
    else:
        raise SpecError.one(source, "chip", "give a chip id or a system")
    if chips > resolved.num_chips:
        raise SpecError.one(source, "chips", f"the system has {resolved.num_chips} chips",
                            chips)
    return resolved


def _workload(catalog: Catalog, req: JobRequest, source: str = "request") -> Workload:
    arch = catalog.model(req.model, source, "model")
    return Workload(ModelShape.from_arch(arch), req.seq_len, req.global_batch, req.precision)


def run_estimate(catalog: Catalog, req: EstimateRequest, system_file: Path | None = None,
                 source: str = "request") -> tuple[Estimate, System, Workload]:
    """Estimate the layout of an EstimateRequest."""
    system = job_system(catalog, req.chip, system_file or req.system, req.chips, source)
    if req.chips % (req.tp * req.pp * req.cp):
        raise SpecError.one(source, "chips", f"not divisible by tp x pp x cp = "
                                                f"{req.tp * req.pp * req.cp}", req.chips)
    plan = Plan(tp=req.tp, pp=req.pp, dp=req.chips // (req.tp * req.pp * req.cp), cp=req.cp,
                ep=req.ep, vpp=req.vpp, micro_batch=req.micro_batch, zero=req.zero,
                recompute=req.recompute, recompute_layers=req.recompute_layers,
                sequence_parallel=req.sequence_parallel, shard_group=req.shard_group)
    workload = _workload(catalog, req, source)
    return estimate(workload, plan, system), system, workload


def run_search(catalog: Catalog, req: SearchRequest, system_file: Path | None = None,
               progress: Any = None, allow_offload: bool = False,
               source: str = "request") -> SearchResult:
    """Search the layouts of a SearchRequest."""
    system = job_system(catalog, req.chip, system_file or req.system, req.chips, source)
    return search(_workload(catalog, req, source), system, req.chips, objective=req.objective,
                  top_k=req.top_k, train_tokens=req.train_tokens,
                  # Without a price, cost ranks by chip-hours (a price of 1).
                  price_per_chip_hour=1.0 if req.price_per_chip_hour is None
                  else req.price_per_chip_hour, progress=progress,
                  allow_offload=allow_offload, chip_counts=req.chip_counts,
                  max_power_W=req.max_power_W, memory_headroom=req.memory_headroom)


def pipeline_timeline(result: Estimate, workload: Workload) -> list[dict[str, Any]]:
    """Gantt events (stage, micro-batch, chunk, F/B, start, end) of the estimate's
    pipeline: one micro-batch's compute (and recompute) split 1:2 between forward and
    backward (the GEMM ratio), at most TIMELINE_MAX_MICRO_BATCHES micro-batches."""
    if not result.feasible or result.time is None:
        return []
    p = result.plan
    m = p.micro_batches(workload)
    shown = min(m, TIMELINE_MAX_MICRO_BATCHES)
    if p.vpp > 1:
        shown = max(p.pp, shown - shown % p.pp)
    per_mb = (result.time.compute_s + result.time.recompute_s) / m
    events, _ = one_f_one_b(p.pp, shown, per_mb / 3, 2 * per_mb / 3, p.vpp)
    return [dict(stage=e.stage, micro_batch=e.micro_batch, chunk=e.chunk, kind=e.kind,
                 start_s=e.start_s, end_s=e.end_s) for e in events]


def check_system(system: System) -> list[Finding]:
    return run_rules(system)


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
    return summary.as_dict() | {"server_power_W": budget.server_W, "it_power_W": budget.it_W,
                                "facility_power_W": budget.facility_W,
                                "board": {"nodes": nodes, "edges": edges},
                                "cluster": _cluster_view(system)}


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
