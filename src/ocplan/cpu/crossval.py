"""Grouped cross-validation of the CPU model, the prediction intervals it yields, and
the calibration's provenance.

- Leave-one-CPU-out (LOCO): refit without every row of a CPU, predict its rows.
- Leave-one-family-out (LOFO): the same for every CPU of a family (the unseen-family case).

Interval half-widths (:class:`~ocplan.cpu.calibration.Interval`) are the 90th percentile
of |ln(predicted / measured)| per benchmark kind: LOCO cases whose family stayed in the
fit give ``seen``, LOFO cases ``unseen``. Their coverage is itself cross-validated: a case
counts as covered when it lies inside the width computed from the *other* CPUs' (LOCO)
or the other families' (LOFO) residuals.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from ocplan.cpu.benchmarks import benchmark
from ocplan.cpu.calibration import CpuCalibration, Interval
from ocplan.cpu.fitting import Observation, fit
from ocplan.cpu.predict import CpuPrediction, predict_many

__all__ = ["CalibrationReport", "calibrate", "coverage", "cross_validate", "energy_ranking",
           "intervals", "spearman", "stats", "with_interval"]

#: Quantile of |log residual| that sets an interval half-width.
INTERVAL_QUANTILE = 0.9
#: Fewer residuals than this: the half-width is their maximum, not a quantile.
MIN_QUANTILE_CASES = 5

Group = Literal["cpu", "family"]


def _group_key(group: Group) -> Callable[[Observation], str]:
    if group == "cpu":
        return lambda o: o.config.cpu
    return lambda o: o.config.family


def cross_validate(observations: Sequence[Observation], group: Group = "cpu",
                   only: Sequence[str] | None = None) -> dict[str, CpuPrediction]:
    """Predictions of every observation by a fit without its group (``cpu`` or
    ``family``), by case id; ``only`` restricts the held-out groups."""
    key = _group_key(group)
    out: dict[str, CpuPrediction] = {}
    for held in sorted({key(o) for o in observations}):
        if only is not None and held not in only:
            continue
        test = [o for o in observations if key(o) == held]
        calibration = fit([o for o in observations if key(o) != held])
        preds = predict_many([(o.config, o.benchmark, o.metric) for o in test], calibration)
        out.update({o.case_id: p for o, p in zip(test, preds, strict=True)})
    return out


def _log_error(o: Observation, p: CpuPrediction) -> float | None:
    return None if p.value is None else math.log(p.value / o.value)


def _width(errors: Sequence[float]) -> float | None:
    if not errors:
        return None
    a = np.abs(errors)
    if len(a) < MIN_QUANTILE_CASES:
        return float(a.max())
    return float(np.quantile(a, INTERVAL_QUANTILE))


def _kind(o: Observation) -> str:
    bench = benchmark(o.benchmark)
    assert bench is not None
    return bench.kind


def intervals(observations: Sequence[Observation], loco: Mapping[str, CpuPrediction],
              lofo: Mapping[str, CpuPrediction]) -> dict[str, Interval]:
    """Half-widths per kind from LOCO (seen family) and LOFO residuals; a kind without
    residuals of one sort takes the other, and unseen is never narrower than seen."""
    seen: dict[str, list[float]] = defaultdict(list)
    unseen: dict[str, list[float]] = defaultdict(list)
    for o in observations:
        e = _log_error(o, loco[o.case_id])
        if e is not None and not loco[o.case_id].flags:
            seen[_kind(o)].append(e)
        e = _log_error(o, lofo[o.case_id])
        if e is not None:
            unseen[_kind(o)].append(e)
    out = {}
    for kind in sorted(set(seen) | set(unseen)):
        s, u = _width(seen[kind]), _width(unseen[kind])
        s = s if s is not None else u
        u = u if u is not None else s
        assert s is not None
        assert u is not None
        out[kind] = Interval(seen=s, unseen=max(s, u))
    return out


def coverage(observations: Sequence[Observation], preds: Mapping[str, CpuPrediction],
             lofo: Mapping[str, CpuPrediction], group: Group) -> dict[str, float]:
    """Share of cases inside an interval built without their own group, per kind and
    ``all``: a case whose family was seen in its fold uses the other groups' LOCO
    residuals, an unseen one the other families' LOFO residuals."""
    key = _group_key(group)
    errors = [(o, _log_error(o, preds[o.case_id]), bool(preds[o.case_id].flags))
              for o in observations]
    lofo_errors = [(o, _log_error(o, lofo[o.case_id])) for o in observations]
    hits: dict[str, list[bool]] = defaultdict(list)
    for o, e, unseen in errors:
        if e is None:
            continue
        if unseen:
            pool = [f for p, f in lofo_errors if f is not None and _kind(p) == _kind(o)
                    and p.config.family != o.config.family]
        else:
            pool = [f for p, f, u in errors if f is not None and not u and _kind(p) == _kind(o)
                    and key(p) != key(o)]
        width = _width(pool)
        if width is None:
            continue
        hits[_kind(o)].append(abs(e) <= width)
        hits["all"].append(abs(e) <= width)
    return {k: float(np.mean(v)) for k, v in sorted(hits.items())}


def stats(observations: Sequence[Observation], preds: Mapping[str, CpuPrediction],
          keep: Callable[[Observation, CpuPrediction], bool] = lambda o, p: True
          ) -> dict[str, dict[str, float]]:
    """n, median and 90th-percentile |error| % per benchmark id."""
    errors: dict[str, list[float]] = defaultdict(list)
    for o in observations:
        p = preds[o.case_id]
        if p.value is not None and keep(o, p):
            errors[o.benchmark].append(100.0 * abs(p.value / o.value - 1.0))
    return {b: {"n": len(v), "median_pct": float(np.median(v)),
                "p90_pct": float(np.percentile(v, 90))} for b, v in sorted(errors.items())}


#: Relative difference under which two values rank as tied: predictions that are equal
#: but for floating-point rounding (a 1P and a 2P system of one CPU, whose predicted score
#: and power both scale with sockets) must not be ordered by their last bits.
RANK_TIE_RELATIVE = 1e-9


def _ranks(x: Sequence[float]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Ranks 1..n, ties (values within :data:`RANK_TIE_RELATIVE` of the previous one in
    sorted order) sharing their mean rank."""
    a = np.asarray(x, dtype=np.float64)
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(len(a))
    start = 0
    for i in range(1, len(a) + 1):
        if i == len(a) or not math.isclose(a[order[i]], a[order[i - 1]],
                                           rel_tol=RANK_TIE_RELATIVE):
            ranks[order[start:i]] = (start + 1 + i) / 2.0
            start = i
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman rank correlation (Pearson correlation of the ranks); None under 3 pairs."""
    if len(x) < 3:
        return None
    rx, ry = _ranks(x), _ranks(y)
    return float(np.corrcoef(rx, ry)[0, 1])


def energy_ranking(observations: Sequence[Observation], preds: Mapping[str, CpuPrediction]
                   ) -> dict[str, dict[str, Any]]:
    """Spearman of predicted performance per watt against the measured SPEC energy metric:
    over the rows of each energy benchmark, pooled, and per CPU (geometric means of a CPU's
    rows of one benchmark, so 1P and 2P systems of a CPU count once). The predicted value
    is the energy metric, K_suite x score / W: within one benchmark it ranks as score per
    watt; pooled, the suite constant K puts integer and floating-point rows on SPEC's
    common scale (:mod:`ocplan.cpu.energy`)."""
    groups: dict[str, list[tuple[float, float]]] = defaultdict(list)
    per_cpu: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(
        lambda: defaultdict(list))
    for o in observations:
        p = preds[o.case_id]
        if _kind(o) == "energy" and p.value is not None:
            groups[o.benchmark].append((p.value, o.value))
            groups["pooled"].append((p.value, o.value))
            per_cpu[o.benchmark][o.config.cpu].append((math.log(p.value),
                                                       math.log(o.value)))
    for bench, cpus in per_cpu.items():
        groups[f"{bench} per CPU"] = [(math.exp(float(np.mean([a for a, _ in v]))),
                                       math.exp(float(np.mean([b for _, b in v]))))
                                      for v in cpus.values()]
    return {g: {"n": len(v), "spearman": spearman([a for a, _ in v], [b for _, b in v])}
            for g, v in sorted(groups.items())}


@dataclass(frozen=True)
class CalibrationReport:
    """The fitted calibration (with intervals and provenance) and every prediction behind
    its figures."""

    calibration: CpuCalibration
    observations: tuple[Observation, ...]
    in_sample: dict[str, CpuPrediction]
    loco: dict[str, CpuPrediction]
    lofo: dict[str, CpuPrediction]


def calibrate(observations: Sequence[Observation], provenance: Mapping[str, Any] | None = None
              ) -> CalibrationReport:
    """Fit on all observations, cross-validate (LOCO, LOFO), and attach intervals and the
    error figures to the calibration's provenance."""
    full = fit(observations)
    loco = cross_validate(observations, "cpu")
    lofo = cross_validate(observations, "family")
    widths = intervals(observations, loco, lofo)
    calibration = replace(full, intervals=widths)
    in_sample = dict(zip([o.case_id for o in observations], predict_many(
        [(o.config, o.benchmark, o.metric) for o in observations], calibration), strict=True))
    loco = {k: with_interval(p, widths, unseen=bool(p.flags)) for k, p in loco.items()}
    lofo = {k: with_interval(p, widths, unseen=True) for k, p in lofo.items()}
    figures = {
        "rows": {b: sum(o.benchmark == b for o in observations)
                 for b in sorted({o.benchmark for o in observations})},
        "cpus": len({o.config.cpu for o in observations}),
        "families": len({o.config.family for o in observations}),
        "in_sample": stats(observations, in_sample),
        "loco": stats(observations, loco),
        "loco_seen_family": stats(observations, loco, lambda o, p: not p.flags),
        "lofo": stats(observations, lofo),
        "coverage_loco": coverage(observations, loco, lofo, "cpu"),
        "coverage_lofo": coverage(observations, lofo, lofo, "family"),
        "energy_spearman_loco": energy_ranking(observations, loco),
        "energy_spearman_in_sample": energy_ranking(observations, in_sample),
    }
    calibration = replace(calibration, provenance={**(provenance or {}), **figures})
    return CalibrationReport(calibration, tuple(observations), in_sample, loco, lofo)


def with_interval(p: CpuPrediction, widths: Mapping[str, Interval], unseen: bool
                  ) -> CpuPrediction:
    """The prediction with the interval of its kind's seen- or unseen-family width."""
    bench = benchmark(p.benchmark)
    if p.value is None or bench is None or bench.kind not in widths:
        return p
    w = widths[bench.kind].unseen if unseen else widths[bench.kind].seen
    return replace(p, low=p.value * math.exp(-w), high=p.value * math.exp(w))
