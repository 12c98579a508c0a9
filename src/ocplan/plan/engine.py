"""The training-step model: one implementation of the physics, over arrays of layouts.

:func:`evaluate` takes a workload, a system model, a calibration and a plan of layout
arrays (one element per candidate layout, :meth:`~ocplan.plan.plan.Plan.columns`) and
returns every term of the step time and memory as a frozen :class:`StepArrays`.
:func:`ocplan.plan.estimate.estimate` is the one-layout case; the search evaluates
millions of layouts through the same function.

The terms are small typed functions, each in the module of its concept:

- :mod:`ocplan.plan.layer_cost`: the slowest stage's layers timed operator by operator
  (:mod:`ocplan.workloads.operators` -> :mod:`ocplan.costmodel.op_time`);
- :mod:`ocplan.plan.compute_terms`: forward, backward, recompute, fp8 casts, offload;
- :mod:`ocplan.plan.comm_terms`: exposed TP, EP, CP, PP and DP communication;
- :mod:`ocplan.plan.params` and :mod:`ocplan.plan.memory_terms`: parameters per chip,
  model states, activations, logits, the optimizer step.

What does not change between calls is computed once: the system model per system, the
unit costs of each layer shape and the stage times per calibration
(:mod:`~ocplan.plan.layer_cost`), a single layout's collective times
(:mod:`~ocplan.plan.comm_terms`) and whole single-layout results (:func:`evaluate_one`,
what :func:`~ocplan.plan.estimate.estimate` uses). Every memo is keyed by all the inputs
its values follow from and bounded in size.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from ocplan.catalog.system import System
from ocplan.collectives.fabric import CommFabric, comm_fabric
from ocplan.costmodel.chip import GENERIC, ChipCompute, chip_compute, sustained_clock_fraction
from ocplan.costmodel.op_time import ChipPeaks, Efficiencies
from ocplan.costmodel.roofline import HBM_EFFICIENCY as ROOFLINE_HBM_EFFICIENCY
from ocplan.costmodel.roofline import f64
from ocplan.errors import Infeasible
from ocplan.memo import ByIdentity
from ocplan.plan.calibration import Calibration, FamilyCalibration
from ocplan.plan.comm_terms import CommTerms, comm_terms
from ocplan.plan.compute_terms import ComputeTerms, compute_terms
from ocplan.plan.layer_cost import (
    StageCompute,
    job_shard,
    layer_kinds,
    select_compute,
    stage_compute,
    with_attention_rate,
)
from ocplan.plan.layout_arrays import DerivedLayout, derive_layout, layout_stacks
from ocplan.plan.memory_terms import RESERVED_BYTES, MemoryTerms, memory_terms, optimizer_time_s
from ocplan.plan.params import stage_params
from ocplan.plan.pipeline_schedules import bidirectional_bubble
from ocplan.plan.plan import Plan
from ocplan.topology.cluster import pcie_Bps
from ocplan.workloads.recipes import RECIPES
from ocplan.workloads.workload import Workload

FloatArray = NDArray[np.float64]

__all__ = [
    "HBM_EFFICIENCY",
    "RESERVED_BYTES",
    "TRAINING_PATH_PRECISIONS",
    "MemoryArrays",
    "StepArrays",
    "SystemModel",
    "check_system",
    "chip_peaks",
    "efficiencies",
    "evaluate",
    "evaluate_memory",
    "evaluate_one",
    "matrix_peaks",
    "system_model",
]

#: Achieved / peak HBM bandwidth of streaming kernels (re-exported for reports).
HBM_EFFICIENCY = ROOFLINE_HBM_EFFICIENCY

#: Matrix-unit precisions that can carry the floating-point parts of a training step
#: (attention scores and values, the LM head, and the GEMMs of a precision the chip has no
#: unit for), in order of preference: the 16-bit formats of mixed-precision training
#: (Micikevicius et al. 2018), then fp8, which FlashAttention-3 and Transformer Engine use
#: for attention too. An integer unit alone (int8) cannot: softmax and gradients are
#: floating-point, so a chip with none of these cannot train (:func:`matrix_peaks`).
TRAINING_PATH_PRECISIONS = ("bf16", "fp16", "fp8")
#: Training precisions whose recipe exists only on a chip with a matrix unit for them
#: (:attr:`~ocplan.workloads.recipes.Recipe.needs_own_unit`: NVFP4, for FP4 tensor cores).
NATIVE_ONLY_PRECISIONS = frozenset(p for p, r in RECIPES.items() if r.needs_own_unit)


@dataclass(frozen=True)
class SystemModel:
    """Numbers of one system that the step model reads."""

    chip: str
    peak: dict[str, float]
    hbm_Bps: float
    hbm_bytes: float
    host_Bps: float
    """Host link (PCIe / C2C) bandwidth per direction, for activation offload."""
    fabric: CommFabric
    domain: int
    server: str = ""
    """Server id (for messages)."""
    family: str | None = None
    """The chip's calibration family (catalog data; None: the default values, the fitted
    families' median)."""
    family_variant: str | None = None
    """The chip's family variant (catalog data; None: the family's values throughout)."""
    compute: ChipCompute = GENERIC
    """Tile, concurrent tiles and K0 of the chip's matrix units (cost model)."""
    clock_fraction: float = 1.0
    """Sustained / peak clock of a dense GEMM (1.0 where not published)."""


def system_model(system: System) -> SystemModel:
    """The numbers of ``system`` the step model reads (remembered per system object:
    hashing a frozen pydantic system walks its whole tree, about half a millisecond)."""
    return _BY_OBJECT(system)


@lru_cache(maxsize=4096)
def _system_model(system: System) -> SystemModel:
    acc = system.accelerator
    peaks = {p: v for p in ("bf16", "fp16", "fp8", "int8", "fp4", "int4")
             if (v := acc.peak_flops.get(p)) is not None}
    return SystemModel(
        chip=acc.id,
        family=acc.family,
        family_variant=acc.family_variant,
        peak=peaks,
        hbm_Bps=acc.memory.hbm_bandwidth,
        hbm_bytes=acc.memory.hbm_capacity,
        host_Bps=acc.host.bandwidth or pcie_Bps(acc.host.gen or 4, acc.host.lanes),
        fabric=comm_fabric(system),
        domain=system.chips_per_server,
        server=system.server.id,
        compute=chip_compute(acc.compute),
        clock_fraction=sustained_clock_fraction(acc.compute, system.module_power,
                                                acc.power.tdp),
    )


#: Models already built, by system object (:mod:`ocplan.memo`).
_BY_OBJECT: ByIdentity[System, SystemModel] = ByIdentity(_system_model)


def _peak_names(sm: SystemModel) -> str:
    return ", ".join(sorted(sm.peak)) or "none"


def matrix_peaks(sm: SystemModel, precision: str) -> tuple[float, float]:
    """(GEMM peak at the workload's precision, peak of the floating-point path), FLOP/s.

    The floating-point path is the first of :data:`TRAINING_PATH_PRECISIONS` the chip has
    (bf16, else fp16, else fp8); attention and the LM head run on it. GEMMs run at the
    chip's peak for ``precision``, or on the floating-point path when the chip has no unit
    for that precision (fp8 asked of an A100 runs its GEMMs in bf16).

    Raises :class:`~ocplan.errors.Infeasible` (reason ``"precision"``) when the chip has
    no floating-point matrix unit at all (an int8-only part such as the MLU290-M5):
    training needs one, whatever precision its GEMMs use; or when ``precision`` is one of
    :data:`NATIVE_ONLY_PRECISIONS` and the chip has no unit for it (fp4 on an H100).
    """
    path = next((sm.peak[p] for p in TRAINING_PATH_PRECISIONS if sm.peak.get(p)), None)
    if path is None:
        units = "/".join(TRAINING_PATH_PRECISIONS)
        raise Infeasible("precision", f"{sm.chip} has no {units} matrix unit (peaks: "
                                      f"{_peak_names(sm)}); training in {precision} is not "
                                      "supported on it")
    if precision in NATIVE_ONLY_PRECISIONS and not sm.peak.get(precision):
        raise Infeasible("precision", f"{sm.chip} has no {precision} matrix unit (peaks: "
                                      f"{_peak_names(sm)}); {precision} training "
                                      f"({RECIPES[precision].name}) needs one; use a "
                                      "precision the chip has")
    gemm = sm.peak.get(precision) or path
    return gemm, path


def check_system(wl: Workload, sm: SystemModel, chips: int) -> None:
    """Raise :class:`~ocplan.errors.Infeasible` when no layout of ``chips`` chips can run
    ``wl`` on the system, whatever the split:

    - ``"precision"``: the chip has no floating-point matrix unit (:func:`matrix_peaks`);
    - ``"network"``: the chips span more than one scale-up domain but the system has no
      scale-out bandwidth (no server NICs and no integrated NIC ports, e.g. the
      China-market Gaudi 2 HL-225B, whose 21 remaining ports are all scale-up, in the
      HLS-Gaudi2 server, whose scale-out is the cards' own ports). Every layout of a job
      joins all its chips (tp x pp x dp x cp = chips, each group within the product), so
      with more chips than one domain some group must cross domains.

    A layout that passes runs every group it has on links of positive bandwidth, so every
    term :func:`evaluate` returns for it is finite.
    """
    matrix_peaks(sm, wl.precision)
    if chips > sm.domain and not sm.fabric.out_Bps > 0:
        domains = -(-chips // sm.domain)
        where = f" in {sm.server}" if sm.server else ""
        raise Infeasible("network", f"{sm.chip}{where} has no scale-out bandwidth (no server "
                                    f"NICs, no integrated NIC ports): {chips} chips span "
                                    f"{domains} scale-up domains of {sm.domain} and nothing "
                                    "joins them; use at most "
                                    f"{sm.domain} chips or a system with a scale-out NIC")


def chip_peaks(sm: SystemModel, precision: str) -> ChipPeaks:
    """The operator cost model's view of the chip: its peaks, the floating-point path
    for ``precision`` (:func:`matrix_peaks`), HBM bandwidth and matrix-unit geometry."""
    _, path = matrix_peaks(sm, precision)
    return ChipPeaks(peak=tuple(sorted(sm.peak.items())), path_peak=path, hbm_Bps=sm.hbm_Bps,
                     compute=sm.compute)


def efficiencies(sm: SystemModel, cal: Calibration) -> Efficiencies:
    """The family's fitted efficiencies times the chip's sustained-clock fraction (a
    fitted value is the software efficiency at the clock a dense GEMM holds;
    compute_units.md §2.1.2), and the calibrated per-kernel cost. A family variant's
    factor (:meth:`~ocplan.plan.calibration.Calibration.grouped_8bit_factor`) moves the
    grouped 8-bit GEMMs alone: the 4-bit ones keep the family's value, which no variant
    run measured."""
    fam: FamilyCalibration = cal.for_family(sm.family)
    clock = sm.clock_fraction
    grouped_8bit = min(1.0, fam.gemm_8bit * clock * cal.grouped_gemm_efficiency)
    factor = cal.grouped_8bit_factor(sm.family_variant)
    return Efficiencies(gemm=min(1.0, fam.gemm * clock),
                        gemm_8bit=min(1.0, fam.gemm_8bit * clock),
                        attention=min(1.0, fam.attention * clock),
                        launch_s=cal.kernel_overhead_s, memory=cal.memory_efficiency,
                        softmax_overlap=cal.softmax_overlap, clock=clock,
                        grouped_gemm=min(1.0, fam.gemm * clock * cal.grouped_gemm_efficiency),
                        grouped_gemm_8bit=min(1.0, grouped_8bit * factor),
                        grouped_gemm_4bit=grouped_8bit)


def _stage_compute(wl: Workload, sm: SystemModel, cal: Calibration,
                   d: DerivedLayout) -> StageCompute:
    """The slowest stage's layers for the layouts ``d`` (:mod:`ocplan.plan.layer_cost`),
    attention at the chip's portable-kernel rate where a layout runs a fused core but no
    native kernel (an unfused core runs no attention kernel at all)."""
    def timed(fused: bool) -> StageCompute:
        return stage_compute(wl.model, wl.precision, chip_peaks(sm, wl.precision),
                             efficiencies(sm, cal), job_shard(wl, fused),
                             shard=d.shard_columns(), per_stage=d.per_stage)
    fused = d.fused_attention
    if np.all(fused) or not np.any(fused):
        sc = timed(bool(np.all(fused)))
    else:
        sc = select_compute(fused, timed(True), timed(False))
    portable = ~d.native_attention & fused
    if not np.any(portable) or sm.compute.portable_attention == 1.0:
        return sc
    return with_attention_rate(sc, f64(np.where(portable, sm.compute.portable_attention,
                                                1.0)))


def evaluate(wl: Workload, sm: SystemModel, cal: Calibration, lay: Plan) -> StepArrays:
    """Every term of step time (s) and memory (bytes per chip) for the layouts ``lay``
    (a :meth:`~ocplan.plan.plan.Plan.columns` plan: numpy arrays of encoded values, one
    element per layout; one plan via :meth:`~ocplan.plan.plan.Plan.encoded`).

    ``step = (m + r (p - 1)/v) (t_mb + c_mb) + c_pp + c_dp + t_opt``: ``m`` micro-batches,
    the 1F1B bubble (a bidirectional schedule's instead,
    :func:`~ocplan.plan.pipeline_schedules.bidirectional_bubble`) once per each of the
    ``r`` runs of the schedule (:attr:`~ocplan.plan.layout_arrays.DerivedLayout.runs`),
    compute ``t_mb``
    (:mod:`~ocplan.plan.compute_terms`) and exposed
    TP/EP/CP communication ``c_mb`` per micro-batch, pipeline and data-parallel
    communication per step (:mod:`~ocplan.plan.comm_terms`), and the optimizer with the
    fixed host cost of an eager step (``step_overhead_s``, not on the XLA stack).

    Assumes :func:`check_system` passes for the chips of the layouts: it raises
    :class:`~ocplan.errors.Infeasible` itself for a chip without a floating-point matrix
    unit, and a group that would have to cross scale-up domains on a system without
    scale-out bandwidth takes infinite time (:mod:`ocplan.collectives.cost`).
    """
    d = derive_layout(wl, lay)
    sc = _stage_compute(wl, sm, cal, d)
    c = compute_terms(wl, sc, d, sm.host_Bps)
    params = stage_params(wl.model, d, sc.moe_layers)
    xla = layout_stacks(d, sm.family)
    comm = comm_terms(wl, sm.fabric, cal, d, sc, c, params, xla)
    mem = memory_terms(wl, d, params, sc.moe_layers, xla)
    per_mb = c.microbatch_s + comm.per_microbatch_s
    fraction = d.bubble_fraction
    if np.any(d.paired):  # most searches hold 1F1B: skip the law's arrays there
        fraction = np.where(d.paired, bidirectional_bubble(d.pp, d.stage_share, d.per_stage,
                                                           c.forward_s, c.backward_s,
                                                           c.recompute_s), fraction)
    bubble = d.runs * fraction * per_mb
    opt = optimizer_time_s(wl, mem.owned_params, sm.hbm_Bps) \
        + np.where(xla, 0.0, cal.step_overhead_s)
    step = d.micro * per_mb + bubble + comm.pp_s + comm.dp_s + opt
    return _step_arrays(wl, sm, d, c, comm, mem, step, bubble, opt)


#: Results of single layouts (:func:`evaluate_one`) by workload, system model (by
#: identity: the entry holds the model, so its ``id`` cannot be reused while cached),
#: the calibration numbers the step reads (efficiencies and overlaps) and plan.
_ONE: dict[tuple[object, ...], tuple[SystemModel, dict[str, float]]] = {}
_ONE_MAX = 4096


def evaluate_one(wl: Workload, sm: SystemModel, cal: Calibration, plan: Plan) -> dict[str, float]:
    """:func:`evaluate` of one layout (a validated :class:`~ocplan.plan.plan.Plan`), every
    term as a float, remembered: a step is a pure function of the workload, the system,
    the plan and the few calibration numbers it reads, so asking again (a what-if that
    changes a price, a report, a fit that moves other families' values) costs a
    lookup."""
    key = (wl, id(sm), efficiencies(sm, cal), cal.tp_overlap, cal.ep_overlap,
           cal.dp_overlap, cal.dp_overlap_xla, cal.dcn_step_s, cal.step_overhead_s, plan)
    hit = _ONE.get(key)
    if hit is not None and hit[0] is sm:
        return dict(hit[1])
    r = evaluate(wl, sm, cal, plan.encoded())
    f = {k: float(v) for k, v in r.items()}
    if len(_ONE) >= _ONE_MAX:
        _ONE.clear()
    _ONE[key] = (sm, f)
    return dict(f)


@dataclass(frozen=True)
class MemoryArrays:
    """Bytes per chip of every layout (arrays over layouts), without the step time."""

    memory_bytes: FloatArray
    capacity_bytes: FloatArray


def evaluate_memory(wl: Workload, sm: SystemModel, cal: Calibration,
                    lay: Plan) -> MemoryArrays:
    """The memory terms of :func:`evaluate` alone (equal to its ``memory_bytes``), at a
    fraction of its cost: what the search needs to drop layouts that cannot fit before
    timing them. The calibration is read only to order a stage's layer kinds (which
    kinds the slowest stage holds)."""
    d = derive_layout(wl, lay)
    kinds = {k.moe for k in layer_kinds(wl.model)}
    if len(kinds) == 1:  # every layer dense, or every layer MoE: no timing needed
        moe_layers = d.per_stage * float(kinds.pop())
    else:
        moe_layers = _stage_compute(wl, sm, cal, d).moe_layers
    mem = memory_terms(wl, d, stage_params(wl.model, d, moe_layers), moe_layers,
                       layout_stacks(d, sm.family))
    total = mem.total
    return MemoryArrays(total, np.full_like(total, sm.hbm_bytes))


@dataclass(frozen=True)
class StepArrays:
    """Every term of one training step per layout (arrays over layouts): times in s,
    memory in bytes per chip. ``compute_s`` + ``recompute_s`` + the communication terms
    + ``bubble_s`` + ``optimizer_s`` = ``step_s``."""

    step_s: FloatArray
    tokens_per_s_per_chip: FloatArray
    mfu: FloatArray
    hfu: FloatArray
    compute_s: FloatArray
    recompute_s: FloatArray
    tp_comm_s: FloatArray
    cp_comm_s: FloatArray
    ep_comm_s: FloatArray
    pp_comm_s: FloatArray
    dp_comm_s: FloatArray
    bubble_s: FloatArray
    optimizer_s: FloatArray
    weights_bytes: FloatArray
    grads_bytes: FloatArray
    optimizer_bytes: FloatArray
    activations_bytes: FloatArray
    logits_bytes: FloatArray
    reserved_bytes: FloatArray
    memory_bytes: FloatArray
    capacity_bytes: FloatArray
    micro_batches: FloatArray
    gemm_time_share: FloatArray
    attn_time_share: FloatArray
    elementwise_time_share: FloatArray

    def __getitem__(self, name: str) -> FloatArray:
        value: FloatArray = getattr(self, name)
        return value

    def items(self) -> list[tuple[str, FloatArray]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]


def _step_arrays(wl: Workload, sm: SystemModel, d: DerivedLayout, c: ComputeTerms,
                 comm: CommTerms, mem: MemoryTerms, step: FloatArray, bubble: FloatArray,
                 opt: FloatArray) -> StepArrays:
    """Totals: tokens per second per chip, MFU (PaLM model FLOPs over the fastest matrix
    peak the step uses, so attention-heavy steps stay <= 1 on chips whose GEMM peak is
    the slower one), HFU (MFU scaled by the recomputed share of compute)."""
    gemm_peak, path_peak = matrix_peaks(sm, wl.precision)
    tps = wl.global_batch * wl.seq_len / step / d.chips
    mfu = tps * wl.model_flops_per_token / max(gemm_peak, path_peak)
    fb = c.forward_s + c.backward_s
    hfu = mfu * (fb + c.recompute_s) / fb
    m = d.micro
    full = np.ones_like(step)
    return StepArrays(
        step_s=step, tokens_per_s_per_chip=tps, mfu=mfu, hfu=hfu,
        compute_s=m * (fb + c.offload_s), recompute_s=m * c.recompute_s,
        tp_comm_s=m * comm.tp_s, cp_comm_s=m * comm.cp_s, ep_comm_s=m * comm.ep_s,
        pp_comm_s=comm.pp_s, dp_comm_s=comm.dp_s, bubble_s=bubble, optimizer_s=opt,
        weights_bytes=mem.weights, grads_bytes=mem.grads, optimizer_bytes=mem.optimizer,
        activations_bytes=mem.activations, logits_bytes=mem.logits,
        reserved_bytes=full * RESERVED_BYTES, memory_bytes=mem.total,
        capacity_bytes=full * sm.hbm_bytes, micro_batches=m,
        gemm_time_share=m * c.matrix_s / step, attn_time_share=m * c.attention_s / step,
        elementwise_time_share=m * c.memory_s / step)
