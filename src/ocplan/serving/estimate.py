"""``estimate_serving(workload, plan, system) -> ServingEstimate``: one serving layout,
explained.

The instance's iteration comes from the operator list (:mod:`ocplan.serving.step`), its
KV capacity from :mod:`ocplan.serving.memory`, its operating point under the load from
:mod:`ocplan.serving.steady`. Disaggregated layouts (``prefill_chips``) size each pool
alone: prefill instances run full token budgets of prompts, decode instances the largest
batch their KV cache holds; the deployment serves the smaller of the two request rates,
and each prompt's KV cache crosses the fabric between the pools before its first token.

A layout that cannot run (indivisible shapes, weights that do not fit, no KV room for a
single request, an SLO no batch meets) is a result with ``feasible=False`` and a reason;
its figures that do not exist (latencies, power, energy, the batch limit) are None. A
Poisson load at or above the capacity runs (``feasible``) but cannot keep up: bound
``queueing``, no TTFT, and the reason says by how much. No figure of a result is ever
infinite or NaN (:meth:`ServingEstimate.as_dict` is valid JSON).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from ocplan.catalog.system import System
from ocplan.collectives.cost import send_recv
from ocplan.costmodel.op_time import native_precision
from ocplan.errors import Infeasible
from ocplan.plan.calibration import Calibration, likely_rate, load_calibration
from ocplan.plan.engine import SystemModel, chip_peaks, system_model
from ocplan.serving.calibration import ServingCalibration, load_serving_calibration
from ocplan.serving.caveats import serving_caveats_for
from ocplan.serving.latency_range import LatencyRange, latency_range, likely_slo_rates
from ocplan.serving.memory import (
    KV_FLOOR_SHARE,
    ServingMemory,
    kv_bytes_per_token_per_chip,
    serving_memory,
)
from ocplan.serving.plan import ServingPlan
from ocplan.serving.steady import (
    OperatingPoint,
    busy_instances,
    held_tokens,
    latency_curve,
    lone_first_token_s,
    operating_point,
    prefill_first_token_s,
    slo_rate,
)
from ocplan.serving.step import StepModel, step_model
from ocplan.topology.power import power_budget
from ocplan.workloads.serving import ServingFormats, ServingWorkload

__all__ = ["BREAKDOWN_LABELS", "IterationBreakdown", "ServingCurve", "ServingEstimate",
           "estimate_on_model", "estimate_serving", "infeasible_estimate", "serving_curve",
           "with_latency_range", "with_likely_slo_rate"]

#: Joules per MJ-scale report unit: energy is reported per million output tokens.
TOKENS_PER_REPORT = 1e6


@dataclass(frozen=True)
class IterationBreakdown:
    """Seconds of one engine iteration at the operating point, by kind of kernel.

    Each device term is the time of its kernels, each kernel taking the longer of its
    math and its HBM traffic: the weight reads are inside ``matrix_s`` and the KV cache
    reads inside ``attention_s``, so a decode iteration bound by HBM bandwidth shows a
    large ``matrix_s`` and a small ``memory_s``. The bound of the estimate compares the
    iteration's summed math against its summed HBM traffic instead (and says both)."""

    matrix_s: float
    """GEMMs, grouped (MoE) GEMMs and the router, their weight reads included."""
    attention_s: float
    """Attention kernels, their KV-cache reads included."""
    memory_s: float
    """Norms, activations, residuals, permutations, embeddings: the kernels with no
    matrix math (not the weight or KV reads)."""
    comm_s: float
    """Tensor/expert/pipeline-parallel communication left on the critical path."""
    host_s: float
    """Host (scheduler, launch) time per iteration."""

    @property
    def total_s(self) -> float:
        return self.matrix_s + self.attention_s + self.memory_s + self.comm_s + self.host_s


#: What each term of :class:`IterationBreakdown` holds, for tables and figures.
BREAKDOWN_LABELS: dict[str, str] = {
    "matrix_s": "GEMMs (incl. weight reads)",
    "attention_s": "attention / recurrent mixer (incl. cache reads)",
    "memory_s": "norms, activations, other elementwise",
    "comm_s": "communication",
    "host_s": "host overhead",
}


#: Figures of :class:`ServingEstimate` that a layout that cannot run does not have: its
#: JSON gives them as null (the dataclass keeps 0.0 rates so that sorting stays total).
ABSENT_WHEN_INFEASIBLE = ("output_tokens_per_s", "output_tokens_per_s_per_chip",
                          "input_tokens_per_s_per_chip", "requests_per_s",
                          "batch_per_instance", "calibration_family", "calibration_runs",
                          "serving_calibration_rows", "serving_cv_error_pct",
                          "held_out_range_pct", "range_family", "range_rows")


@dataclass(frozen=True)
class ServingEstimate:
    """Result of one serving estimate (rates per second, latencies in seconds)."""

    feasible: bool
    reason: str | None
    """Why the layout cannot run; for a feasible one, why it cannot keep up with its
    load (``queueing: ...``), else None."""
    plan: ServingPlan
    chips: int
    output_tokens_per_s: float
    output_tokens_per_s_per_chip: float
    input_tokens_per_s_per_chip: float
    requests_per_s: float
    batch_per_instance: float
    batch_limit: str | None
    """What caps the batch (None when infeasible)."""
    ttft_s: float | None
    """Mean; None when infeasible or when the queue grows without bound."""
    tpot_s: float | None
    """Mean; None when infeasible; of the requests served when queueing."""
    iteration: IterationBreakdown | None
    memory: ServingMemory | None
    bound: str
    """What limits the rate: the iteration's bound with the times it compares, the
    ``queueing`` of an overload, or ``infeasible``."""
    slo_met: bool | None
    slo_rate_per_s: float | None
    """Highest request rate of the deployment meeting the SLOs (None without SLOs)."""
    slo_reason: str | None
    power_W: float | None
    """IT power of the deployment's chips (None when infeasible)."""
    energy_per_mtok_J: float | None
    """None when infeasible or nothing is served."""
    notes: tuple[str, ...] = ()
    calibration_family: str = "default"
    calibration_runs: int = 0
    serving_calibration_rows: int = 0
    serving_cv_error_pct: float | None = None
    prefill_input_tokens_per_s_per_chip: float | None = None
    """Disaggregated: prompt tokens/s per prefill chip at full load."""
    decode_output_tokens_per_s_per_chip: float | None = None
    """Disaggregated: output tokens/s per decode chip at full load."""
    latency_stat: str | None = None
    """Statistic of :attr:`ttft_stat_s` and :attr:`tpot_stat_s`: the workload's
    ``slo_stat`` under a Poisson load; None where only the means are modelled (other
    loads, an overload, infeasible)."""
    ttft_stat_s: float | None = None
    tpot_stat_s: float | None = None
    held_out_range_pct: tuple[float, float] | None = None
    """(low, high) signed error of the throughput, ``100 (predicted - measured) /
    measured``, between which 80 % of the published serving results of the chip's family
    fell when each was predicted by a fit without it
    (:meth:`~ocplan.serving.calibration.ServingCalibration.range_for`); None where the
    serving calibration has none. Of the throughputs only: latencies were not
    cross-validated."""
    range_family: str = "default"
    """Chip family whose held-out results give :attr:`held_out_range_pct`, or
    ``default`` (every result left out with its chip)."""
    range_rows: int = 0
    """Published serving results of :attr:`range_family` in the fit."""
    formats: ServingFormats | None = None
    """The number formats the job runs in (None only where the estimate read no
    workload)."""
    caveats: tuple[str, ...] = ()
    """Known limits of the model that apply to this deployment, with the published
    results that show them (:mod:`ocplan.serving.caveats`); none for one that cannot
    run."""
    latency_range: LatencyRange | None = None
    """The latencies at a Poisson rate with the iteration at either end of the family's
    held-out error range (:func:`with_latency_range`); None until asked for (an estimate
    leaves it out: a search times many layouts and ranks none by it), and for other
    loads."""
    likely_slo_rate_per_s: tuple[float, float] | None = None
    """(low, high) SLO goodput of the deployment a real one would likely sustain, req/s:
    :attr:`slo_rate_per_s` with the iteration at the slow and the fast end of the
    family's held-out range (:func:`with_likely_slo_rate`; a comparison's best layouts
    when it sizes fleets); None until asked for, and without SLOs."""

    @property
    def rate_set_by_arrivals(self) -> bool:
        """A Poisson load the deployment keeps up with: its request rate is the
        arrivals', whatever its iteration takes (the estimate then carries the SLO
        statistic of its latencies, :attr:`latency_stat`, which no other load has)."""
        return self.feasible and self.latency_stat is not None

    @property
    def likely_output_tokens_per_s_per_chip(self) -> tuple[float, float] | None:
        """(low, high) output tokens/s per chip a measurement of this deployment would
        likely show (:func:`~ocplan.plan.calibration.likely_rate` of
        :attr:`held_out_range_pct`); None for a layout that cannot run or a calibration
        without a range."""
        if not self.feasible or self.held_out_range_pct is None:
            return None
        return likely_rate(self.output_tokens_per_s_per_chip, self.held_out_range_pct)

    @property
    def likely_input_tokens_per_s_per_chip(self) -> tuple[float, float] | None:
        """As :attr:`likely_output_tokens_per_s_per_chip`, of the prompt tokens."""
        if not self.feasible or self.held_out_range_pct is None:
            return None
        return likely_rate(self.input_tokens_per_s_per_chip, self.held_out_range_pct)

    def cost_per_mtok(self, price_per_chip_hour: float) -> float | None:
        """Cost of a million output tokens at a price per chip-hour (None when nothing
        is served)."""
        if not self.feasible or self.output_tokens_per_s <= 0:
            return None
        return self.chips * price_per_chip_hour / 3600.0 / self.output_tokens_per_s \
            * TOKENS_PER_REPORT

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (every float finite; missing figures None: a
        layout that cannot run has no rates, batch or calibration)."""
        data = asdict(self)
        if not self.feasible:
            data.update(dict.fromkeys(ABSENT_WHEN_INFEASIBLE))
        data["plan"] = self.plan.as_dict()
        for key in ("likely_output_tokens_per_s_per_chip", "likely_input_tokens_per_s_per_chip"):
            likely = getattr(self, key)  # None for a layout that cannot run
            data[key] = None if likely is None else list(likely)
        if self.iteration is not None:
            data["iteration"]["total_s"] = self.iteration.total_s
        bad = _non_finite(data)
        assert not bad, f"non-finite figures in a serving result: {bad}"
        return data


def with_latency_range(result: ServingEstimate, workload: ServingWorkload, system: System,
                       calibration: Calibration | None = None,
                       serving: ServingCalibration | None = None) -> ServingEstimate:
    """``result`` with its :attr:`~ServingEstimate.latency_range` (unchanged where the
    layout cannot run or the load is not a Poisson rate)."""
    if not result.feasible or result.memory is None:
        return result
    found = latency_range(workload, result.plan, system, result.held_out_range_pct,
                          result.memory.kv_tokens, calibration, serving)
    return result if found is None else replace(result, latency_range=found)


def with_likely_slo_rate(result: ServingEstimate, workload: ServingWorkload, system: System,
                         calibration: Calibration | None = None,
                         serving: ServingCalibration | None = None) -> ServingEstimate:
    """``result`` with its :attr:`~ServingEstimate.likely_slo_rate_per_s` (unchanged where
    the layout cannot run or the job has no SLOs)."""
    if not result.feasible or result.memory is None:
        return result
    found = likely_slo_rates(workload, result.plan, system, result.held_out_range_pct,
                             result.memory.kv_tokens, calibration, serving)
    return result if found is None else replace(result, likely_slo_rate_per_s=found)


def _non_finite(data: object, path: str = "") -> list[str]:
    """Paths of the infinite or NaN floats in nested dicts, lists and tuples."""
    if isinstance(data, float):
        return [] if math.isfinite(data) else [path or "."]
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in _non_finite(v, f"{path}.{k}")]
    if isinstance(data, list | tuple):
        return [p for i, v in enumerate(data) for p in _non_finite(v, f"{path}[{i}]")]
    return []


def infeasible_estimate(plan: ServingPlan, reason: str, memory: ServingMemory | None = None,
                        notes: tuple[str, ...] = ()) -> ServingEstimate:
    """The result of a serving layout that cannot run: no rate, None for the figures
    that do not exist, and the reason."""
    return ServingEstimate(False, reason, plan, plan.chips, 0.0, 0.0, 0.0, 0.0, 0.0, None,
                           None, None, None, memory, "infeasible", None, None, None, None,
                           None, notes)


def precision_notes(wl: ServingWorkload, sm: SystemModel) -> tuple[str, ...]:
    """What the chip cannot run natively, and the rate it runs at instead."""
    runs = native_precision(wl.gemm_precision, sm.peak.get)
    if runs == wl.gemm_precision:
        return ()
    at = runs or "its floating-point path"
    return (f"{sm.chip} has no {wl.gemm_precision} matrix unit: GEMMs run at the {at} rate "
            f"(weights stay {wl.weight_format} in memory)",)


#: What the published serving results say about MLA (DeepSeek-class) decode against this
#: model: NVIDIA's MLPerf Inference v5.1 DeepSeek-R1 runs on 8 x B200 (TensorRT-LLM,
#: attention DP 8, EP 8, NVFP4; mlcommons/inference_results_v5.1, closed/NVIDIA
#: configs and mlperf_log_summary.txt of B200-SXM-180GBx8_TRT) decode about 155
#: sequences per GPU in 66.5 ms steps (Server: 4.96 requests/s, Little's law) where the
#: model gave 33 ms, and their Offline rate was 1.5 x below it (rows INF021-INF022 of
#: the development set). With Blackwell's measured MLA decode kernel rate
#: (:func:`~ocplan.serving.step.decode_attention_cap`) the Offline row is 13.5 % and the
#: Server row 94 % above the measurement; the GB200 vLLM and SGLang decode rows 14-16 %
#: below it.
MLA_DECODE_NOTE = ("MLA decode: published TensorRT-LLM DeepSeek-R1 runs (MLPerf v5.1, "
                   "B200) decode up to 2x slower than this model at the same layout; read "
                   "the decode rate as optimistic")


#: Streaming rate a chip family's decode kernels are known to reach, as a share of peak
#: HBM bandwidth, where the serving fit cannot pin its own value: (share, evidence).
#: Blackwell: Azure's microbenchmarks measured 7.35 TB/s of HBM bandwidth on a GB200 of
#: its 8 TB/s, 92 % (Azure HPC blog, "Unpacking NVIDIA GB200 GPU performance on Azure
#: virtual machines", techcommunity.microsoft.com post 4390442, its HBM bandwidth test;
#: restated as "7.35 TB/s HBM bandwidth utilization (92% efficiency)" in post 4399253,
#: "Azure's ND GB200 v6 delivers record performance for inference"). CUDA's
#: ``bandwidthTest`` device-to-device copy, which reads and writes, moves over 6,000 GB/s
#: on a B200 (TogetherAI's HGX B200, newmind.ai journal 18, April 2025).
#: Every published Blackwell serving result runs at large batches, where the fitted HBM
#: efficiency trades against the 4-bit GEMM ratio, and most of them do not publish their
#: formats (docs/experiments.md, session 59), so the fit leaves Blackwell's below it.
DECODE_HBM_SHARE: dict[str, tuple[float, str]] = {
    "blackwell": (0.92, "a GB200 streams 92 % of peak, Azure's measurement"),
}


def hbm_notes(family: str | None, point: OperatingPoint, scal: ServingCalibration
              ) -> tuple[str, ...]:
    """Where an HBM-bound iteration rests on a fitted decode HBM efficiency below what the
    chip's memory is known to stream (:data:`DECODE_HBM_SHARE`): how pessimistic the
    memory-bound rate may be."""
    known = DECODE_HBM_SHARE.get(family or "")
    fitted = scal.hbm_for(family)
    if (known is None or point.queueing or known[0] <= fitted
            or point.iteration.bound() != "HBM bandwidth"):
        return ()
    share, evidence = known
    return (f"HBM-bound: the {family} family's fitted decode HBM efficiency ({fitted:.2f} "
            f"of peak) is below what its memory streams ({evidence}); its published "
            "large-batch results trade it against the 4-bit GEMM rate, so read this rate as "
            f"up to {share / fitted:.1f}x pessimistic",)


def memory_notes(mem: ServingMemory) -> tuple[str, ...]:
    """Where the weights leave the cache less room than any published result the
    reserve was fitted on (:attr:`~ocplan.serving.memory.ServingMemory.on_floor`)."""
    if not mem.on_floor:
        return ()
    left = mem.kv_bytes + mem.held_back_bytes
    return (f"tight memory: the weights leave {left / 1e9:.1f} GB per chip beyond the "
            "engine's reserve, less than any published result the reserve was fitted "
            f"on; the cache takes {KV_FLOOR_SHARE:.0%} of it ({mem.kv_bytes / 1e9:.1f} GB), "
            "an extrapolation: the layout's memory share (memory_percent, the engine's "
            "setting) sizes it",)


def model_notes(wl: ServingWorkload) -> tuple[str, ...]:
    """Where the request leaves the model's trained context, and what the validation data
    say about this kind of model where the estimate is weak."""
    notes = []
    window, longest = wl.model.max_seq_len, wl.input_len + wl.output_len
    if window and longest > window:
        notes.append(f"prompt + answer ({longest:,.0f} tokens) exceed {wl.model.name}'s "
                     f"context window ({window:,} tokens): estimated all the same")
    if wl.model.is_mla:
        notes.append(MLA_DECODE_NOTE)
    return tuple(notes)


def _check(wl: ServingWorkload, plan: ServingPlan, sm: SystemModel) -> None:
    plan.check(wl.model)
    if plan.instance_chips > sm.domain and not sm.fabric.out_Bps > 0:
        raise Infeasible("network", f"an instance of {plan.instance_chips} chips spans "
                                    f"scale-up domains of {sm.domain} and {sm.server} has "
                                    "no scale-out network")


def _memory(wl: ServingWorkload, plan: ServingPlan, sm: SystemModel,
            serving: ServingCalibration) -> ServingMemory:
    mem = serving_memory(wl, plan, sm.hbm_bytes, serving.reserve_fraction, wl.running_context)
    if not mem.fits:
        # Infeasible prefixes its key ("memory: ")
        raise _MemoryError(mem, f"the weights need {mem.weight_bytes / 1e9:.1f} GB per chip, "
                                f"{sm.chip} has {mem.capacity_bytes / 1e9:.1f} GB of which "
                                f"{mem.reserve_bytes / 1e9:.1f} GB is reserved: "
                                f"{mem.shortfall_bytes / 1e9:.1f} GB short, no room for "
                                "the KV cache")
    return mem


class _MemoryError(Infeasible):
    def __init__(self, memory: ServingMemory, message: str) -> None:
        super().__init__("memory", message)
        self.memory = memory


def _breakdown(point: OperatingPoint) -> IterationBreakdown:
    it = point.iteration
    return IterationBreakdown(float(it.matrix_s[0]), float(it.attention_s[0]),
                              float(it.memory_s[0]), float(it.comm_s[0]), float(it.host_s[0]))


def _bound(point: OperatingPoint) -> str:
    """What limits the rate, with the times it compares (so that a reader can check it
    against the breakdown, whose terms mix math and HBM traffic)."""
    if point.queueing:
        return "queueing"
    it = point.iteration
    base = it.bound()
    device = float(it.matrix_s[0] + it.attention_s[0] + it.memory_s[0])
    comm, host = float(it.comm_s[0]), float(it.host_s[0])
    if base == "communication":
        why = f"communication {_ms(comm)} vs device {_ms(device)}, host {_ms(host)}"
    elif base == "host overhead":
        why = f"host {_ms(host)} vs device {_ms(device)}, communication {_ms(comm)}"
    else:
        why = (f"summed HBM traffic {_ms(float(it.bytes_s[0]))} vs math "
               f"{_ms(float(it.flops_s[0]))} per iteration")
    text = f"{base} ({why})"
    return f"{text}; batch capped by {point.limit}" if point.limit != "load" else text


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms"


def _kv_transfer_s(wl: ServingWorkload, plan: ServingPlan, sm: SystemModel) -> float:
    """One prompt's KV cache from a prefill to a decode instance: every layer's cache of
    ``input_len`` tokens (a draft's layers too), over scale-up when both pools fit one
    domain, else RDMA."""
    per_token = kv_bytes_per_token_per_chip(wl.model, replace(plan, tp=1, pp=1),
                                            wl.kv_precision, wl.input_len,
                                            wl.draft_model_layers, wl.state_format)
    crosses = float(plan.chips > sm.domain)
    return float(send_recv(sm.fabric, wl.input_len * per_token, crosses))


def estimate_serving(workload: ServingWorkload, plan: ServingPlan, system: System,
                     calibration: Calibration | None = None,
                     serving: ServingCalibration | None = None) -> ServingEstimate:
    """Estimate serving ``workload`` with ``plan`` on ``system``.

    Returns an infeasible estimate (with the reason) when the layout cannot serve;
    raises SpecError only for bad input.
    """
    cal = calibration or load_calibration()
    scal = serving or load_serving_calibration()
    return estimate_on_model(workload, plan, system, system_model(system), cal, scal)


def estimate_on_model(workload: ServingWorkload, plan: ServingPlan, system: System,
                      sm: SystemModel, cal: Calibration, scal: ServingCalibration
                      ) -> ServingEstimate:
    """:func:`estimate_serving` on the engine's model ``sm`` of ``system`` (the chip and
    fabric the iterations are timed on; ``system`` gives power and calibration family):
    what a sensitivity re-times with one resource scaled."""
    est = _estimate_on_model(workload, plan, system, sm, cal, scal)
    return replace(est, formats=workload.formats,
                   caveats=serving_caveats_for(workload, plan, system) if est.feasible
                   else ())


def _estimate_on_model(workload: ServingWorkload, plan: ServingPlan, system: System,
                       sm: SystemModel, cal: Calibration, scal: ServingCalibration
                       ) -> ServingEstimate:
    notes = precision_notes(workload, sm) + model_notes(workload)
    try:
        _check(workload, plan, sm)
        if plan.prefill_chips is not None:
            return _disaggregated(workload, plan, system, sm, cal, scal, notes)
        mem = _memory(workload, plan, sm, scal)
    except _MemoryError as exc:
        return infeasible_estimate(plan, str(exc), exc.memory, notes)
    except Infeasible as exc:
        return infeasible_estimate(plan, str(exc), None, notes)
    chip = chip_peaks(sm, "bf16")
    model = step_model(workload, plan, sm, chip, cal, scal)
    point = operating_point(model, mem.kv_tokens)
    if point is None:
        return infeasible_estimate(plan, _no_room(workload, plan, mem), mem, notes)
    return _result(workload, plan, system, point, mem, model, cal, scal, notes)


def _no_room(wl: ServingWorkload, plan: ServingPlan, mem: ServingMemory) -> str:
    need = held_tokens(wl, plan) * mem.kv_bytes_per_token
    return (f"KV capacity: one request of {wl.input_len + wl.output_len:,.0f} tokens needs "
            f"{need / 1e9:.2f} GB of cache per chip, {mem.kv_bytes / 1e9:.2f} GB is "
            "left after the weights")


def _result(wl: ServingWorkload, plan: ServingPlan, system: System, point: OperatingPoint,
            mem: ServingMemory, model: StepModel, cal: Calibration, scal: ServingCalibration,
            notes: tuple[str, ...]) -> ServingEstimate:
    busy = busy_instances(model)
    out = point.output_tokens_per_s * busy
    rate = slo_rate(model, mem.kv_tokens)
    slo_met, slo_reason = None, None
    if rate is not None:
        slo_met = _meets(wl, point)
        slo_reason = _slo_reason(wl, rate, point, model)
    power = power_budget(system).it_W * plan.chips / system.num_chips
    energy = power / out * TOKENS_PER_REPORT if out > 0 else None
    fam = system.accelerator.family
    reason = _overload(wl, point.requests_per_s * busy) if point.queueing else None
    return ServingEstimate(
        True, reason, plan, plan.chips, out, out / plan.chips,
        out * wl.input_len / wl.output_len / plan.chips, point.requests_per_s * busy,
        point.batch, point.limit, point.ttft_s, point.tpot_s if wl.decodes else None,
        _breakdown(point), mem,
        _bound(point), slo_met, None if rate is None else rate[0] * plan.instances,
        slo_reason, power, energy,
        notes + memory_notes(mem) + _load_notes(wl, plan, point, busy)
        + hbm_notes(fam, point, scal),
        cal.used_family(fam), cal.for_family(fam).runs, scal.rows, scal.cv_error_pct,
        latency_stat=point.latency_stat, ttft_stat_s=point.ttft_stat_s,
        tpot_stat_s=point.tpot_stat_s if wl.decodes else None, **_range_fields(scal, fam))


def _range_fields(scal: ServingCalibration, family: str | None) -> dict[str, Any]:
    """The likely-range fields of a feasible estimate on a chip of ``family``."""
    basis = scal.range_for(family)
    return {"held_out_range_pct": basis.range_pct, "range_family": basis.family,
            "range_rows": basis.rows}


def _overload(wl: ServingWorkload, capacity_per_s: float) -> str:
    """Why a Poisson load cannot be served: its rate against the deployment's."""
    assert wl.rate_per_s is not None
    verb = "exceeds" if wl.rate_per_s > capacity_per_s else "reaches"
    # keyed like an Infeasible reason ("queueing: ..."): the API's hints find it
    return (f"queueing: rate {wl.rate_per_s:.3g} req/s {verb} the capacity of "
            f"{capacity_per_s:.3g} req/s: the queue grows without bound (no TTFT)")


def _load_notes(wl: ServingWorkload, plan: ServingPlan, point: OperatingPoint, busy: int
                ) -> tuple[str, ...]:
    """What the load asked for that the instance cannot hold at once, or that leaves
    instances idle."""
    if busy < plan.instances:
        run = f"static batch of {wl.batch:,}" if wl.load == "static" \
            else f"run of {wl.requests:,} requests"
        return (f"a {run} keeps {busy:,} of the {plan.instances:,} instances busy; the "
                "others idle (their chips count in the per-chip rates, power and cost)",)
    if wl.load == "static" and wl.batch is not None and point.waves > 1:
        return (f"static batch of {wl.batch:,} sequences capped at {point.batch:,.0f} per "
                f"instance by the {point.limit}: it runs in {point.waves:,} waves, and its "
                "TTFT counts the waves before each sequence's own",)
    if wl.load == "offline" and wl.requests is not None and point.waves > 1:
        return (f"{wl.requests:,} fixed-length requests admitted at once start and finish "
                f"together; the {point.limit} holds {point.batch:,.0f} per instance at "
                f"their final length, so they run in {point.waves:,} waves (the TTFT counts "
                "the waves before each request's own)",)
    if wl.load == "concurrency" and wl.concurrency is not None:
        notes: tuple[str, ...] = ()
        if wl.requests is not None and wl.requests <= wl.concurrency:
            notes = (f"a run of {wl.requests:,} requests, all started at once: prefilled "
                     "as a burst, then decoded (timed to the last completion)",)
        elif wl.requests is not None:
            notes = (f"a run of {wl.requests:,} requests started at once: the first "
                     f"{wl.concurrency:,} arrive together and are prefilled as a burst, the "
                     f"other {wl.requests - wl.concurrency:,} replace finished ones at the "
                     "loop's steady rate (timed to the last completion; their TTFT is the "
                     "endless loop's, a lower bound: replacements of requests that "
                     "finished together arrive together)",)
        c = wl.concurrency / plan.instances
        if c > point.batch:
            notes += (f"concurrency {wl.concurrency:,} is {c:,.0f} requests per instance, "
                      f"the {point.limit} runs {point.batch:,.0f} at once: the rest "
                      "wait for a slot (their wait is in the TTFT)",)
        return notes
    return ()


def _slo_reason(wl: ServingWorkload, rate: tuple[float, str], point: OperatingPoint,
                model: StepModel) -> str:
    """Why the SLO goodput is what it is, in one line."""
    value, binding = rate
    if value > 0:
        return (f"highest rate meeting the SLOs is set by the {binding}" if binding != "load"
                else "the SLOs hold up to the largest batch that fits")
    if binding == "TTFT limit":
        return (f"no load meets the TTFT limit of {(wl.slo_ttft_s or 0) * 1e3:.3g} ms: a "
                f"lone request's first token already takes "
                f"{lone_first_token_s(model) * 1e3:.3g} ms")
    fastest = model.iteration(0.0, 0.0, 1.0, max(wl.input_len, 1.0))
    t = float(fastest.total_s[0]) * model.plan.pp / wl.tokens_per_step
    return (f"no load meets the {binding} of {(wl.slo_tpot_s or 0) * 1e3:.3g} ms: a single "
            f"sequence already takes {t * 1e3:.3g} ms per output token")


def _meets(wl: ServingWorkload, point: OperatingPoint) -> bool:
    """Whether the point's latencies hold the SLOs: the workload's statistic where the
    point has it (Poisson), else the means (the only latencies of the other loads)."""
    if point.ttft_s is None:
        return False  # an unbounded queue meets no SLO
    ttft = point.ttft_stat_s if point.ttft_stat_s is not None else point.ttft_s
    tpot = point.tpot_stat_s if point.tpot_stat_s is not None else point.tpot_s
    ok_ttft = wl.slo_ttft_s is None or ttft <= wl.slo_ttft_s
    ok_tpot = wl.slo_tpot_s is None or tpot <= wl.slo_tpot_s
    return ok_ttft and ok_tpot


def _disaggregated(wl: ServingWorkload, plan: ServingPlan, system: System, sm: SystemModel,
                   cal: Calibration, scal: ServingCalibration,
                   notes: tuple[str, ...]) -> ServingEstimate:
    """Prefill and decode pools sized apart (see the module docstring)."""
    pre_plan, dec_plan = plan.pools()
    chip = chip_peaks(sm, "bf16")
    try:
        _memory(wl, pre_plan, sm, scal)
        dec_mem = _memory(wl, dec_plan, sm, scal)
    except _MemoryError as exc:
        return infeasible_estimate(plan, str(exc), exc.memory, notes)
    pre_model = step_model(wl, pre_plan, sm, chip, cal, scal)
    chunk = float(pre_plan.token_budget)
    t_pre = float(pre_model.iteration(chunk, chunk / wl.prefill_len, 0.0, 0.0,
                                      prefill_keys=wl.input_len).total_s[0])
    prompt_rate = pre_plan.instances * chunk / wl.prefill_len / t_pre      # requests/s
    # The decode pool sees what the prefill pool delivers: a Poisson stream beyond the
    # prefill pool's capacity reaches it at that capacity, so its batch and TPOT are
    # those of the delivered rate (Little's law), not of the offered one.
    delivered = wl if wl.rate_per_s is None else replace(
        wl, rate_per_s=min(wl.rate_per_s, prompt_rate))
    dec_model = replace(step_model(delivered, dec_plan, sm, chip, cal, scal),
                        decode_only=True)
    point = operating_point(dec_model, dec_mem.kv_tokens)
    if point is None:
        return infeasible_estimate(plan, _no_room(wl, dec_plan, dec_mem), dec_mem, notes)
    busy = busy_instances(dec_model)
    decode_rate = point.requests_per_s * busy
    rate = min(prompt_rate, decode_rate)
    out = rate * wl.output_len
    transfer = _kv_transfer_s(wl, plan, sm)
    stat: str | None = None
    tail: float | None = None
    if wl.rate_per_s is not None and wl.rate_per_s < prompt_rate:
        first, tail = prefill_first_token_s(pre_model, wl.rate_per_s / pre_plan.instances,
                                            ("mean", wl.slo_stat))
        stat, tail = wl.slo_stat, tail + transfer
    else:
        first = t_pre * max(1.0, wl.prefill_len / chunk)
    ttft: float | None = first + transfer
    power = power_budget(system).it_W * plan.chips / system.num_chips
    fam = system.accelerator.family
    bound = "prefill pool" if prompt_rate < decode_rate else f"decode pool: {_bound(point)}"
    reason = None
    # a Poisson rate at or above either pool's capacity: that pool's queue grows without
    # bound (the decode pool's point is then its capacity, so the served rate is the
    # deployment's capacity)
    if wl.rate_per_s is not None and (point.queueing or wl.rate_per_s >= prompt_rate
                                      or not math.isfinite(first)):
        reason, ttft, bound = _overload(wl, rate), None, "queueing"
        stat = tail = None
    return ServingEstimate(
        True, reason, plan, plan.chips, out, out / plan.chips,
        rate * wl.input_len / plan.chips, rate, point.batch, point.limit, ttft,
        point.tpot_s if wl.decodes else None, _breakdown(point), dec_mem, bound, None, None,
        None, power,
        power / out * TOKENS_PER_REPORT if out > 0 else None,
        notes + memory_notes(dec_mem) + _load_notes(wl, dec_plan, point, busy)
        + (hbm_notes(fam, point, scal) if decode_rate <= prompt_rate else ()),
        cal.used_family(fam), cal.for_family(fam).runs, scal.rows, scal.cv_error_pct,
        prefill_input_tokens_per_s_per_chip=prompt_rate * wl.input_len / pre_plan.chips,
        decode_output_tokens_per_s_per_chip=decode_rate * wl.output_len / dec_plan.chips,
        latency_stat=stat, ttft_stat_s=tail,
        tpot_stat_s=point.tpot_stat_s if stat is not None and wl.decodes else None,
        **_range_fields(scal, fam))


@dataclass(frozen=True)
class ServingCurve:
    """The deployment's throughput-latency curve (per chip; latencies in seconds)."""

    batch_per_instance: tuple[float, ...]
    rate_per_s: tuple[float, ...]
    output_tokens_per_s_per_chip: tuple[float, ...]
    tpot_s: tuple[float, ...]
    ttft_s: tuple[float, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def serving_curve(workload: ServingWorkload, plan: ServingPlan, system: System,
                  calibration: Calibration | None = None,
                  serving: ServingCalibration | None = None) -> ServingCurve | None:
    """Throughput per chip against TPOT and TTFT as the load rises, for an aggregated
    layout (None when it cannot serve: :func:`estimate_serving` says why, and for
    one-token answers, which have no TPOT)."""
    cal = calibration or load_calibration()
    scal = serving or load_serving_calibration()
    sm = system_model(system)
    try:
        _check(workload, plan, sm)
        mem = _memory(workload, plan, sm, scal)
    except Infeasible:
        return None
    if plan.prefill_chips is not None or not workload.decodes:
        return None
    model = step_model(workload, plan, sm, chip_peaks(sm, "bf16"), cal, scal)
    curve = latency_curve(model, mem.kv_tokens)
    if curve is None:
        return None
    scale = plan.instances / plan.chips
    return ServingCurve(tuple(curve.batch.tolist()),
                        tuple((curve.rate_per_s * plan.instances).tolist()),
                        tuple((curve.output_tokens_per_s * scale).tolist()),
                        tuple(curve.tpot_s.tolist()), tuple(curve.ttft_s.tolist()))
