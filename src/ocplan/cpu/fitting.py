"""Fit the CPU model on published benchmark rows: robust nonlinear least squares in log
space with shrinkage of the per-level effects.

The objective is ``sum_i rho(ln T_i(theta) - ln y_i) + sum_j (w_j theta_j)^2``: rho is the
soft-L1 loss with scale :data:`ROBUST_SCALE` (quadratic below 5 %, linear above, so one
odd result cannot drag a family); the ridge terms are Gaussian priors, zero-centred, on
the ISA / vendor / core-design / family effects (:data:`SIGMA_LEVEL`) and the per-family
kind deviations (:data:`SIGMA_FAMILY_KIND`), and on ln(headroom) around the calibration
CPUs' published all-core/base ratio (:data:`SIGMA_HEADROOM`). A level without rows gets
exactly zero, so leaving a CPU or family out of the fit is leaving its rows out.

The solver is Levenberg-Marquardt on the normal equations. Only the parameters that enter
nonlinearly (clock law, memory terms, SPECjbb socket exponents) and the kind intercepts
are differenced, in one batch; the level and family x kind columns are the intercepts'
columns masked by which rows carry the effect (they add to the same per-core throughput).
No threaded BLAS call is made (the normal matrix is an einsum, the solve a Cholesky factor
and two substitutions), so a fit takes a fraction of a second on a loaded two-core
machine. The clock law's surface has local minima: :data:`CLOCK_STARTS` are tried and the
lowest cost kept.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ocplan.cpu.benchmarks import FIT_KINDS, JBB_CATEGORIES, MEMORY_KINDS, benchmark, jbb_category
from ocplan.cpu.calibration import CpuCalibration
from ocplan.cpu.config import CpuConfig
from ocplan.cpu.design import (
    LEVELS,
    PHYSICS,
    Design,
    Layout,
    Levels,
    build_design,
    evaluate,
    system_bandwidth_Bps,
)
from ocplan.cpu.energy import fit_energy
from ocplan.cpu.model import UNCORE_POWER_MAX_W, Array

__all__ = ["ROBUST_SCALE", "SIGMA_FAMILY_KIND", "SIGMA_HEADROOM", "SIGMA_LEVEL", "Observation",
           "fit"]

#: Scale of the soft-L1 loss, natural-log units (5 %): about the spread of published
#: medians of one CPU across compilers and systems.
ROBUST_SCALE = 0.05
#: Prior standard deviation of an ISA, vendor, core-design or family effect on the per-core
#: throughput (ln units): micro-architectures differ by tens of percent per clock.
SIGMA_LEVEL = 0.3
#: Prior standard deviation of a family's deviation on one benchmark kind from its effect
#: on all kinds.
SIGMA_FAMILY_KIND = 0.1
#: Prior standard deviation of ln(headroom) around the calibration CPUs' median
#: ln(all-core boost / base).
SIGMA_HEADROOM = 0.2
#: Initial memory-throughput offset above the median measured score per B/s (ln units):
#: starts the fit with the bandwidth limit present but not binding.
START_MEMORY_MARGIN = 0.5
#: Priors (centre, standard deviation) of the micro-architecture law exponents
#: (:data:`~ocplan.cpu.design.PHYSICS`). Cache law: centred on 0.5, the "sqrt(2) rule" of
#: cache misses (Hartstein et al., Computing Frontiers 2006), sd 0.25 (the range they
#: report across workloads, 0.3-0.7, is about +-1 sd). Vector law: centred on 0 (no
#: effect), sd 0.3.
PHYSICS_PRIORS: dict[str, tuple[float, float]] = {
    "cache_exponent": (0.5, 0.25), "vector_exponent_fp": (0.0, 0.3)}
FD_STEP = 1e-6
MAX_ITERATIONS = 300
RELATIVE_TOLERANCE = 1e-10


@dataclass(frozen=True)
class Observation:
    """One published measurement: the configuration, the benchmark id and metric, the
    value in the benchmark's unit."""

    case_id: str
    config: CpuConfig
    benchmark: str
    metric: str
    value: float


def _soft_l1(r: Array) -> Array:
    """Residuals whose squares sum to the soft-L1 loss: 2c^2(sqrt(1 + (r/c)^2) - 1)."""
    c = ROBUST_SCALE
    out: Array = np.sign(r) * np.sqrt(2.0 * c * c * (np.sqrt(1.0 + (r / c) ** 2) - 1.0))
    return out


def _solve_spd(a: Array, b: Array) -> Array:
    """x with a x = b for symmetric positive definite a (Cholesky, two substitutions)."""
    low = np.linalg.cholesky(a)
    n = len(b)
    y = np.zeros(n)
    for i in range(n):
        y[i] = (b[i] - low[i, :i] @ y[:i]) / low[i, i]
    x = np.zeros(n)
    for i in range(n - 1, -1, -1):
        x[i] = (y[i] - low[i + 1:, i] @ x[i + 1:]) / low[i, i]
    return x


def least_squares(residuals: Callable[[Array], Array], jacobian: Callable[[Array, Array], Array],
                  x0: Array) -> tuple[Array, float]:
    """Levenberg-Marquardt minimum of ``|r(x)|^2`` and the cost there; ``residuals`` maps a
    (K, P) batch of parameter vectors to (K, R) residuals, ``jacobian(x, r(x))`` gives the
    (R, P) Jacobian at x."""
    x = x0.copy()
    r = residuals(x[None, :])[0]
    cost = float(r @ r)
    damping = 1e-3
    for _ in range(MAX_ITERATIONS):
        jac = jacobian(x, r)
        normal = np.einsum("rp,rq->pq", jac, jac)
        grad = np.einsum("rp,r->p", jac, r)
        scale = np.diag(normal) + 1e-9
        improved = False
        while damping < 1e12:
            step = _solve_spd(normal + damping * np.diag(scale), -grad)
            r_new = residuals((x + step)[None, :])[0]
            cost_new = float(r_new @ r_new)
            if cost_new < cost:
                improved = True
                break
            damping *= 4.0
        if not improved:
            break
        done = cost - cost_new <= RELATIVE_TOLERANCE * cost
        x, r, cost = x + step, r_new, cost_new
        damping = max(damping / 3.0, 1e-12)
        if done:
            break
    return x, cost


def _median(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if len(values) else None


def _unique_configs(observations: Sequence[Observation]) -> list[CpuConfig]:
    seen: dict[str, CpuConfig] = {}
    for o in observations:
        seen.setdefault(o.config.cpu, o.config)
    return list(seen.values())


def _max_boost_medians(observations: Sequence[Observation]) -> dict[str, float]:
    """Median published maximum boost per family, per vendor and over all CPUs of the rows
    (specs only, one value per CPU)."""
    groups: dict[str, list[float]] = defaultdict(list)
    for c in _unique_configs(observations):
        if c.max_boost_Hz is not None:
            for key in (f"family:{c.family}", f"vendor:{c.vendor}", "global"):
                groups[key].append(c.max_boost_Hz)
    return {k: float(np.median(v)) for k, v in sorted(groups.items())}


def _headroom_prior(observations: Sequence[Observation]) -> float:
    """Median ln(all-core boost / base) of the CPUs whose all-core boost is published."""
    ratios = [math.log(c.all_core_boost_Hz / c.base_clock_Hz)
              for c in _unique_configs(observations) if c.all_core_boost_Hz is not None]
    return _median(ratios) or 0.0


def _start(layout: Layout, design: Design, y: Array, log_headroom: float, uncore_W: float,
           coefficient: float) -> Array:
    """Starting vector: effects zero, clock law at its starting point, intercepts and memory
    offsets from medians of the data."""
    kinds, log_bw = design.kind, design.log_bandwidth
    x = np.zeros(layout.size)
    sl = layout.slices
    x[sl["clock"]] = [math.log(coefficient), math.log(uncore_W / (UNCORE_POWER_MAX_W - uncore_W)),
                      log_headroom]
    x[sl["physics"]] = [PHYSICS_PRIORS[name][0] for name in PHYSICS]
    x[sl["log_memory"]] = 50.0  # no bandwidth limit while the intercepts are estimated
    terms = evaluate(design, layout, x)
    gap = y - terms.log_compute[0]
    for k in range(len(FIT_KINDS)):
        sel = kinds == k
        x[sl["intercept"].start + k] = float(np.median(gap[sel])) if sel.any() else 0.0
    for m, kind in enumerate(MEMORY_KINDS):
        sel = (kinds == FIT_KINDS.index(kind)) & np.isfinite(log_bw)
        x[sl["log_memory"].start + m] = (float(np.median(y[sel] - log_bw[sel]))
                                         + START_MEMORY_MARGIN) if sel.any() else 0.0
    return x


#: Parameter blocks that enter the model nonlinearly (or as the intercepts that carry the
#: derivative of each row with respect to its per-core throughput): their Jacobian columns
#: are finite differences; the level and family x kind columns follow from the intercepts'.
DIFFERENCED_BLOCKS = ("intercept", "clock", "log_memory", "memory_share", "socket_exponent",
                      "physics")
#: Starting points of the clock law tried by :func:`fit` (uncore W, Hz per W^(1/3)): the
#: (coefficient, uncore power) surface has several local minima; the lowest cost wins.
CLOCK_STARTS = ((60.0, 2.2e9), (100.0, 2.8e9), (130.0, 1.8e9))


def _indicators(design: Design, layout: Layout) -> dict[str, Array]:
    """0/1 matrices (rows x block size) of which effect each row carries."""
    out = {}
    n = design.n
    for level in LEVELS:
        m = np.zeros((n, layout.slices[level].stop - layout.slices[level].start))
        idx = design.level_index[level]
        has = idx < m.shape[1]
        m[np.arange(n)[has], idx[has]] = 1.0
        out[level] = m
    nk = len(FIT_KINDS)
    m = np.zeros((n, layout.slices["family_kind"].stop - layout.slices["family_kind"].start))
    fam = design.level_index["family"]
    has = fam < len(layout.levels.family)
    m[np.arange(n)[has], (fam * nk + design.kind)[has]] = 1.0
    out["family_kind"] = m
    return out


def _fit_core(observations: Sequence[Observation], max_boost: dict[str, float],
              log_headroom: float) -> tuple[Levels, Array]:
    rows = [o for o in observations if _kind(o) in FIT_KINDS]
    levels = Levels.of([o.config for o in rows])
    layout = Layout(levels)
    design, _ = build_design([(o.config, _kind(o), jbb_category(o.metric)) for o in rows],
                             levels, max_boost)
    y = np.log([o.value for o in rows])
    weights = np.zeros(layout.size)
    centres = np.zeros(layout.size)
    for level in LEVELS:
        weights[layout.slices[level]] = ROBUST_SCALE / SIGMA_LEVEL
    weights[layout.slices["family_kind"]] = ROBUST_SCALE / SIGMA_FAMILY_KIND
    h_index = layout.slices["clock"].start + 2
    weights[h_index], centres[h_index] = ROBUST_SCALE / SIGMA_HEADROOM, log_headroom
    for i, name in enumerate(PHYSICS):
        centre, sigma = PHYSICS_PRIORS[name]
        weights[layout.slices["physics"].start + i] = ROBUST_SCALE / sigma
        centres[layout.slices["physics"].start + i] = centre
    ridge = np.flatnonzero(weights)
    prior_jac = np.zeros((len(ridge), layout.size))
    prior_jac[np.arange(len(ridge)), ridge] = weights[ridge]
    differenced = np.concatenate([np.arange(layout.slices[b].start, layout.slices[b].stop)
                                  for b in DIFFERENCED_BLOCKS])
    indicators = _indicators(design, layout)
    intercept_col = layout.slices["intercept"].start + design.kind

    def data(batch: Array) -> Array:
        return _soft_l1(evaluate(design, layout, batch).log_value - y)

    def residuals(batch: Array) -> Array:
        prior = (batch[:, ridge] - centres[ridge]) * weights[ridge]
        return np.concatenate([data(batch), prior], axis=1)

    def jacobian(x: Array, r: Array) -> Array:
        batch = np.repeat(x[None, :], len(differenced), axis=0)
        batch[np.arange(len(differenced)), differenced] += FD_STEP
        jac_data = np.zeros((design.n, layout.size))
        jac_data[:, differenced] = (data(batch) - r[:design.n]).T / FD_STEP
        per_ipc = jac_data[np.arange(design.n), intercept_col]
        for block, m in indicators.items():
            jac_data[:, layout.slices[block]] = per_ipc[:, None] * m
        return np.concatenate([jac_data, prior_jac])

    best: tuple[Array, float] | None = None
    for uncore, coefficient in CLOCK_STARTS:
        x0 = _start(layout, design, y, log_headroom, uncore, coefficient)
        x, cost = least_squares(residuals, jacobian, x0)
        if best is None or cost < best[1]:
            best = (x, cost)
    assert best is not None
    return levels, best[0]


def _kind(o: Observation) -> str:
    bench = benchmark(o.benchmark)
    assert bench is not None, f"unmodelled benchmark {o.benchmark} among the observations"
    return bench.kind


def _critical_ratios(observations: Sequence[Observation]) -> dict[str, float]:
    """Median critical/max-jOPS ratio per run category over pairs of the same CPU, sockets
    and category."""
    max_jops = {(o.config.cpu, o.config.sockets, jbb_category(o.metric)): o.value
                for o in observations if _kind(o) == "jbb_max"}
    logs: dict[str, list[float]] = defaultdict(list)
    for o in observations:
        key = (o.config.cpu, o.config.sockets, jbb_category(o.metric))
        if _kind(o) == "jbb_critical" and key in max_jops:
            logs[key[2]].append(math.log(o.value / max_jops[key]))
    return {c: math.exp(float(np.median(logs[c]))) for c in JBB_CATEGORIES if logs[c]}


def _stream_fraction(observations: Sequence[Observation]) -> float | None:
    logs = []
    for o in observations:
        if _kind(o) != "stream":
            continue
        bw = float(system_bandwidth_Bps([o.config])[0])
        if math.isfinite(bw):
            logs.append(math.log(o.value * 1e9 / bw))
    median = _median(logs)
    return None if median is None else math.exp(median)


def fit(observations: Sequence[Observation]) -> CpuCalibration:
    """Fit every parameter on ``observations`` (modelled benchmarks only); no intervals
    (see :func:`ocplan.cpu.crossval.calibrate`)."""
    max_boost = _max_boost_medians(observations)
    log_headroom = _headroom_prior(observations)
    levels, theta = _fit_core(observations, max_boost, log_headroom)
    energy = fit_energy([(o.config, o.benchmark, o.value) for o in observations
                         if _kind(o) == "energy"], levels, theta, max_boost)
    kinds_fitted = tuple(k for k in FIT_KINDS if any(_kind(o) == k for o in observations))
    family_kinds: dict[str, set[str]] = defaultdict(set)
    for o in observations:
        if _kind(o) in FIT_KINDS:
            family_kinds[o.config.family].add(_kind(o))
    return CpuCalibration(
        levels=levels, theta=tuple(float(t) for t in theta), kinds_fitted=kinds_fitted,
        family_kinds={f: tuple(sorted(k)) for f, k in sorted(family_kinds.items())},
        max_boost_Hz=max_boost, log_headroom_prior=log_headroom,
        jbb_critical_ratio=_critical_ratios(observations),
        stream_fraction=_stream_fraction(observations),
        energy_scales=dict(energy.scales) if energy else {},
        activity_exponent=energy.activity_exponent if energy else None)
