"""The SPEC CPU2017 energy metric: what it measures, and the fit of the power model's
global parameters.

SPEC defines each benchmark's energy ratio as ``copies x (E_ref / E_SUT)``, the energy of
the reference machine over the energy the system under test used, next to the rate ratio
``copies x (t_ref / t_SUT)`` (SPEC CPU2017 Result File Fields, "Energy Ratio" and "Ratio";
``Docs/result-fields.html`` of the CPU2017 distribution); the suite metric is their
geometric mean, like the rate score. With ``E = P_avg t`` per benchmark::

    energy_ratio_i = rate_ratio_i x P_ref_i / P_SUT_i
    SPECrate2017_<suite>_energy = score x G(P_ref) / G(P_SUT)

G the geometric mean over the suite's benchmarks. So the metric is the rate score per
watt of the system's wall power times a constant of the suite, ``K = G(P_ref)`` (the
reference machine's power, which differs between the integer and the floating-point
suite). The model predicts it as ``K_suite x T / P``: T the predicted rate score, P the
predicted wall power at the suite's core activity (:func:`~ocplan.cpu.model.wall_power_W`).

Fitted here, on the energy rows only and after the performance model: the exponent
``gamma`` of the activity law (one global number) and ``K`` per suite (two numbers, the
suite constants of the definition). Nothing per CPU or per vendor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ocplan.cpu.benchmarks import benchmark
from ocplan.cpu.config import CpuConfig
from ocplan.cpu.design import Layout, Levels, build_design, evaluate
from ocplan.cpu.model import Array, wall_power_W

__all__ = ["ACTIVITY_EXPONENT_GRID", "EnergyFit", "core_activity", "fit_energy"]

#: Candidate exponents of the activity law, searched exhaustively (the cost is one
#: dimensional and cheap): 0 (power independent of activity, the previous model) to 4 in
#: steps of 0.05. Deterministic, and the bounds keep a fold with few rows from running off.
ACTIVITY_EXPONENT_GRID = tuple(round(0.05 * i, 2) for i in range(81))


@dataclass(frozen=True)
class EnergyFit:
    """The energy metric's global parameters: ``scales`` K per base kind (``int_rate``,
    ``fp_rate``; energy ratio per score/W) and the activity exponent gamma."""

    scales: Mapping[str, float]
    activity_exponent: float


def core_activity(log_value: Any, log_compute: Any) -> Array:
    """Core activity ``a = T / C`` of rate rows: the achieved share of the compute-bound
    throughput (1 = compute bound), from the model's log terms; clipped to (0, 1]."""
    out: Array = np.exp(np.minimum(np.asarray(log_value) - np.asarray(log_compute), 0.0))
    return out


def fit_energy(rows: Sequence[tuple[CpuConfig, str, float]], levels: Levels, theta: Array,
               max_boost_Hz: Mapping[str, float]) -> EnergyFit | None:
    """Least-squares fit of the energy parameters on (configuration, benchmark id,
    measured energy metric) rows, given the fitted performance model (``levels``,
    ``theta``, ``max_boost_Hz``).

    For each gamma of :data:`ACTIVITY_EXPONENT_GRID`, ``ln K_suite`` is the mean of
    ``ln(E P / T)`` over the suite's rows (the least-squares optimum); the gamma with the
    smallest sum of squared log residuals wins (the smallest on a tie). Rows without a
    TDP are skipped (no power); None without any row.
    """
    usable = [(c, benchmark(b), e) for c, b, e in rows if c.tdp_W is not None]
    kept = [(c, b.base, e) for c, b, e in usable if b is not None and b.base is not None]
    if not kept:
        return None
    design, _ = build_design([(c, base, "MultiJVM") for c, base, _ in kept], levels,
                             max_boost_Hz)
    terms = evaluate(design, Layout(levels), theta)
    score = np.exp(terms.log_value[0])
    activity = core_activity(terms.log_value[0], terms.log_compute[0])
    measured = np.array([e for _, _, e in kept])
    bases = np.array([str(base) for _, base, _ in kept])
    suites = sorted(set(bases))
    best: tuple[float, float, dict[str, float]] | None = None
    for gamma in ACTIVITY_EXPONENT_GRID:
        power = wall_power_W(design.sockets, design.tdp_W, design.memory_bytes, activity,
                             gamma)
        logs = np.log(measured * power / score)
        scales = {str(s): float(np.mean(logs[bases == s])) for s in suites}
        residual = logs - np.array([scales[b] for b in bases])
        cost = float(residual @ residual)
        if best is None or cost < best[0] - 1e-12:
            best = (cost, gamma, scales)
    assert best is not None
    return EnergyFit(scales={s: math.exp(v) for s, v in best[2].items()},
                     activity_exponent=best[1])
