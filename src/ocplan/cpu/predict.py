"""Predict a published CPU benchmark from a configuration's specs, with an interval.

:func:`predict` answers one (configuration, benchmark, metric); :func:`predict_many`
answers many with one vectorised model evaluation. A prediction never reads a stored
measurement: only the configuration's specs and the calibration's shared parameters.
Where the calibration has no row of the CPU's family, the prediction falls back on the
nearest calibrated level (core design, vendor, ISA, global), says so in ``flags`` and
takes the wider leave-one-family-out interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ocplan.cpu.benchmarks import FIT_KINDS, NOT_MODELLED, Benchmark, benchmark, jbb_category
from ocplan.cpu.calibration import CpuCalibration, load_cpu_calibration
from ocplan.cpu.config import CpuConfig
from ocplan.cpu.design import LEVELS, build_design, evaluate, system_bandwidth_Bps
from ocplan.cpu.energy import core_activity
from ocplan.cpu.model import package_power_W, wall_power_W
from ocplan.errors import Problem, SpecError

__all__ = ["CpuPrediction", "calibration_level", "predict", "predict_many"]

#: Bytes per second in a GB/s (STREAM's published unit).
GB_PER_S = 1e9
#: Largest natural log whose exponential is a finite float (a memory term this large is
#: "no limit").
MAX_LOG = 700.0
LEVEL_NAMES = {"isa": "ISA", "vendor": "vendor", "core_design": "core design",
               "family": "family"}


@dataclass(frozen=True)
class CpuPrediction:
    """A predicted benchmark value in the benchmark's published unit, or the reason there
    is none (``value`` None).

    ``bound`` names what limits it: ``compute`` (cores x sustained clock), ``memory
    bandwidth`` (the bandwidth term is the smaller), ``single-core clock`` (SPECspeed).
    ``level`` is where its per-core throughput is calibrated (``family``, ``core design``,
    ``vendor``, ``ISA`` or ``global``); ``flags`` say what the calibration lacks.
    """

    benchmark: str
    metric: str
    unit: str
    value: float | None
    low: float | None = None
    high: float | None = None
    bound: str | None = None
    level: str | None = None
    flags: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    reason: str | None = None
    missing_input: bool = False
    """``value`` is None because the configuration lacks an input the benchmark's law
    needs (memory speed for STREAM, TDP for an energy metric), not for want of
    calibration."""
    sustained_clock_Hz: float | None = None
    compute_value: float | None = None
    """Throughput without the memory limit (rate kinds), in the benchmark's unit."""
    memory_value: float | None = None
    """Throughput the memory bandwidth alone allows (rate kinds)."""
    bandwidth_Bps: float | None = None
    wall_power_W: float | None = None
    perf_per_W: float | None = None
    """Energy metrics: the predicted rate score per W of predicted wall power."""
    core_activity: float | None = None
    """Energy metrics: the achieved share of the compute-bound throughput (T / C) that
    sets the package's dynamic power (:func:`~ocplan.cpu.model.package_power_W`)."""


def calibration_level(config: CpuConfig, calibration: CpuCalibration) -> str:
    """The finest level of the configuration the calibration has an effect for."""
    for level in reversed(LEVELS):
        if calibration.levels.value_of(level, config) in calibration.levels.values(level):
            return LEVEL_NAMES[level]
    return "global"


def predict(config: CpuConfig, benchmark_id: str, metric: str | None = None,
            calibration: CpuCalibration | None = None) -> CpuPrediction:
    """Predict ``benchmark_id`` (``cpu_README.md`` vocabulary) for a configuration.

    ``metric`` picks the SPECjbb2015 run category (MultiJVM unless it names Composite).
    SpecError for an unknown benchmark id; a known benchmark the model does not predict
    (MLPerf, TPC-E) returns a prediction without value, with the reason.

    Examples
    --------
    >>> from ocplan.cpu.config import CpuConfig
    >>> cfg = CpuConfig(cpu="x", family="zen4", vendor="AMD", isa="x86-64", sockets=2,
    ...                 cores_per_socket=96, base_clock_Hz=2.4e9, threads_per_core=2,
    ...                 all_core_boost_Hz=3.55e9, max_boost_Hz=3.7e9, tdp_W=360,
    ...                 memory_channels_per_socket=12, memory_transfers_per_s=4.8e9)
    >>> p = predict(cfg, "specrate2017_int_base")
    >>> p.low < p.value < p.high and p.unit == "score"
    True
    """
    return predict_many([(config, benchmark_id, metric)], calibration)[0]


def _kind_row(bench: Benchmark) -> str | None:
    """The fitted kind a benchmark's value is computed from (None: STREAM)."""
    if bench.kind in FIT_KINDS:
        return bench.kind
    return bench.base


def predict_many(items: Sequence[tuple[CpuConfig, str, str | None]],
                 calibration: CpuCalibration | None = None) -> list[CpuPrediction]:
    """Predictions for (configuration, benchmark id, metric) items, in order."""
    cal = calibration or load_cpu_calibration()
    unknown = [Problem("argument", f"items[{i}].benchmark", "unknown benchmark id; expected "
                       "one of the cpu_README.md vocabulary", b)
               for i, (_, b, _) in enumerate(items)
               if benchmark(b) is None and b not in NOT_MODELLED]
    if unknown:
        raise SpecError(unknown)
    fit_rows = []
    for config, bench_id, metric in items:
        bench = benchmark(bench_id)
        kind = _kind_row(bench) if bench is not None else None
        fit_rows.append((config, kind or "int_rate", jbb_category(metric)))
    design, spec_notes = build_design(fit_rows, cal.levels, cal.max_boost_Hz)
    terms = evaluate(design, cal.layout, cal.vector())
    out = []
    for i, (config, bench_id, metric) in enumerate(items):
        bench = benchmark(bench_id)
        if bench is None:
            out.append(CpuPrediction(bench_id, metric or "", "", None,
                                     reason=NOT_MODELLED[bench_id]))
            continue
        out.append(_one(config, bench, metric or "", cal, spec_notes[i],
                        tuple(float(t[0, i]) for t in (terms.log_clock, terms.log_compute,
                                                       terms.log_memory, terms.log_value))))
    return out


def _one(config: CpuConfig, bench: Benchmark, metric: str, cal: CpuCalibration,
         spec_notes: list[str], logs: tuple[float, ...]) -> CpuPrediction:
    level = calibration_level(config, cal)
    flags: list[str] = []
    notes = list(spec_notes)
    base = _kind_row(bench)
    seen = level == "family" or base is None  # STREAM does not depend on the family
    if not seen:
        flags.append(f"no measurement for family {config.family}")
        notes.append(f"per-core throughput from the {level} level of the calibration")
    if seen and base is not None and base not in cal.family_kinds.get(config.family, ()):
        seen = False
        flags.append(f"no {base} measurement for family {config.family}")
    interval = cal.intervals.get(bench.kind)
    width = None if interval is None else interval.seen if seen else interval.unseen
    bw = float(system_bandwidth_Bps([config])[0])
    empty = CpuPrediction(bench.id, metric, bench.unit, None, level=level, flags=tuple(flags),
                          bandwidth_Bps=bw if math.isfinite(bw) else None)

    def result(value: float | None, reason: str | None = None, **fields: Any) -> CpuPrediction:
        low = high = None
        if value is not None and width is not None:
            low, high = value * math.exp(-width), value * math.exp(width)
        return replace(empty, value=value, low=low, high=high, notes=tuple(notes), reason=reason,
                       **fields)

    if bench.kind == "stream":
        if cal.stream_fraction is None:
            return result(None, "no STREAM rows in the calibration")
        if empty.bandwidth_Bps is None:
            return result(None, "theoretical bandwidth unknown: memory speed or channels "
                                "not published", missing_input=True)
        return result(cal.stream_fraction * empty.bandwidth_Bps / GB_PER_S,
                      bound="memory bandwidth")
    assert base is not None
    if base not in cal.kinds_fitted:
        return result(None, f"no {base} rows in the calibration")
    log_clock, log_compute, log_memory, log_value = logs
    value = math.exp(log_value)
    terms: dict[str, Any] = dict(
        bound=("single-core clock" if base == "int_speed" else
               "memory bandwidth" if math.isfinite(log_memory) and log_memory < log_compute
               else "compute"),
        sustained_clock_Hz=math.exp(log_clock), compute_value=math.exp(log_compute),
        memory_value=math.exp(log_memory) if log_memory < MAX_LOG else None)
    if bench.kind == "jbb_critical":
        category = jbb_category(metric)
        ratio = cal.jbb_critical_ratio.get(category)
        if ratio is None:
            return result(None, f"no SPECjbb2015 {category} critical-jOPS rows in the "
                                "calibration")
        notes.append(f"critical-jOPS = max-jOPS x {ratio:.3f} ({category} median ratio)")
        return result(value * ratio, **terms)
    if bench.kind == "energy":
        scale = cal.energy_scales.get(base)
        if scale is None or cal.activity_exponent is None:
            return result(None, f"no SPEC energy rows of {base} in the calibration")
        if config.tdp_W is None:
            return result(None, "TDP not published: wall power unknown", missing_input=True)
        activity = float(core_activity(log_value, log_compute))
        power = float(wall_power_W(config.sockets, config.tdp_W,
                                   config.memory_bytes or math.nan, activity,
                                   cal.activity_exponent))
        if config.memory_bytes is None:
            notes.append("memory capacity not published: DRAM power not counted")
        notes.append(f"core activity {activity:.2f} (memory stalls): package at "
                     f"{float(package_power_W(1.0, activity, cal.activity_exponent)):.2f} "
                     "x TDP")
        return result(scale * value / power, wall_power_W=power, perf_per_W=value / power,
                      core_activity=activity, **terms)
    return result(value, **terms)
