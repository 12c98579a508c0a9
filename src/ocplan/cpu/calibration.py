"""The fitted CPU model parameters, with their provenance, as committed in
``calibration.json`` (written by ``scripts/fit_cpu.py``).

The parameters are few and named: per benchmark kind an intercept, memory parameters and
SMT handling (:mod:`ocplan.cpu.model`); shared clock-law and SPECjbb socket-scaling
parameters; per-core throughput effects per ISA, vendor, core design and family, and one
deviation per family and kind. Nothing is per CPU, per row or per source. Derived
constants (SPECjbb critical/max ratio per run category, STREAM fraction of theoretical
bandwidth) are medians over the calibration rows; the SPEC energy metric's suite constants
and activity exponent are fitted on its rows (:mod:`ocplan.cpu.energy`).

``intervals`` holds, per kind, the half-width of the prediction interval in log space:
the 90th percentile of |ln(predicted / measured)| under leave-one-CPU-out (``seen``: the
CPU's family has other calibrated CPUs) and under leave-one-family-out (``unseen``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ocplan.cpu.benchmarks import FIT_KINDS, JBB_CATEGORIES, MEMORY_KINDS
from ocplan.cpu.design import LEVELS, PHYSICS, Layout, Levels, sigmoid
from ocplan.cpu.model import UNCORE_POWER_MAX_W, Array
from ocplan.errors import SpecError

__all__ = ["CPU_CALIBRATION_FILE", "CpuCalibration", "Interval", "load_cpu_calibration"]

CPU_CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
FORMAT = "ocplan-cpu-calibration/1"


@dataclass(frozen=True)
class Interval:
    """Half-widths of a kind's prediction interval, natural-log units (0.1 = x/÷ e^0.1)."""

    seen: float
    unseen: float


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1.0 - 1e-9)
    return math.log(p / (1.0 - p))


@dataclass(frozen=True)
class CpuCalibration:
    """Fitted parameters (``theta`` in the order of :class:`~ocplan.cpu.design.Layout`),
    derived constants, interval widths and provenance."""

    levels: Levels
    theta: tuple[float, ...]
    kinds_fitted: tuple[str, ...]
    family_kinds: Mapping[str, tuple[str, ...]]
    """The benchmark kinds each family has calibration rows of."""
    max_boost_Hz: Mapping[str, float]
    """Median published maximum boost of the calibration CPUs per ``family:<id>``,
    ``vendor:<id>`` and ``global``: fills a configuration's unpublished value."""
    log_headroom_prior: float
    """Centre of the prior on ln(headroom): median ln(all-core boost / base) of the
    calibration CPUs whose vendor publishes an all-core boost."""
    jbb_critical_ratio: Mapping[str, float] = field(default_factory=dict)
    stream_fraction: float | None = None
    energy_scales: Mapping[str, float] = field(default_factory=dict)
    """Energy ratio per (rate score / wall W) per base kind (``int_rate``, ``fp_rate``):
    energy = scale x score / power (:mod:`ocplan.cpu.energy`)."""
    activity_exponent: float | None = None
    """Exponent gamma of the package power's activity law
    (:func:`~ocplan.cpu.model.package_power_W`); None without energy rows."""
    intervals: Mapping[str, Interval] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert len(self.theta) == Layout(self.levels).size, "theta does not fit the levels"

    @property
    def layout(self) -> Layout:
        return Layout(self.levels)

    def vector(self) -> Array:
        return np.array(self.theta, dtype=np.float64)

    def value(self, block: str, index: int = 0) -> float:
        """One parameter of a block, as stored (free) in ``theta``."""
        return self.theta[self.layout.slices[block]][index]

    def to_json(self) -> dict[str, Any]:
        """Named, human-readable parameters (SI units) and everything else."""
        th, sl = self.theta, self.layout.slices
        nk = len(FIT_KINDS)
        params: dict[str, Any] = {
            "intercept": dict(zip(FIT_KINDS, th[sl["intercept"]], strict=True))}
        for level in LEVELS:
            params[level] = dict(zip(self.levels.values(level), th[sl[level]], strict=True))
        fk = th[sl["family_kind"]]
        params["family_kind"] = {f: dict(zip(FIT_KINDS, fk[i * nk:(i + 1) * nk], strict=True))
                                 for i, f in enumerate(self.levels.family)}
        log_c, z_u, log_h = th[sl["clock"]]
        params["clock"] = {"log_coefficient_Hz_per_W_cbrt": log_c,
                           "uncore_W": float(UNCORE_POWER_MAX_W * sigmoid(z_u)),
                           "headroom": math.exp(log_h)}
        shares = sigmoid(np.array(th[sl["memory_share"]]))
        params["memory"] = {k: {"log_score_per_Bps": m, "bandwidth_share": float(s)}
                            for k, m, s in zip(MEMORY_KINDS, th[sl["log_memory"]], shares,
                                               strict=True)}
        params["socket_exponent"] = dict(zip(JBB_CATEGORIES, th[sl["socket_exponent"]],
                                             strict=True))
        params["physics"] = dict(zip(PHYSICS, th[sl["physics"]], strict=True))
        return {
            "format": FORMAT, "parameters": params, "kinds_fitted": list(self.kinds_fitted),
            "family_kinds": {f: list(k) for f, k in self.family_kinds.items()},
            "max_boost_Hz": dict(self.max_boost_Hz),
            "log_headroom_prior": self.log_headroom_prior,
            "jbb_critical_ratio": dict(self.jbb_critical_ratio),
            "stream_fraction": self.stream_fraction,
            "energy_scales": dict(self.energy_scales),
            "activity_exponent": self.activity_exponent,
            "intervals": {k: {"seen": v.seen, "unseen": v.unseen}
                          for k, v in self.intervals.items()},
            "provenance": dict(self.provenance)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CpuCalibration:
        if data.get("format") != FORMAT:
            raise ValueError(f"not a CPU calibration ({FORMAT}): format = {data.get('format')}")
        p = data["parameters"]
        levels = Levels(**{level: tuple(p[level]) for level in LEVELS})
        theta: list[float] = [p["intercept"][k] for k in FIT_KINDS]
        for level in LEVELS:
            theta += [p[level][v] for v in levels.values(level)]
        for f in levels.family:
            theta += [p["family_kind"][f][k] for k in FIT_KINDS]
        clock = p["clock"]
        theta += [clock["log_coefficient_Hz_per_W_cbrt"],
                  _logit(clock["uncore_W"] / UNCORE_POWER_MAX_W), math.log(clock["headroom"])]
        theta += [p["memory"][k]["log_score_per_Bps"] for k in MEMORY_KINDS]
        theta += [_logit(p["memory"][k]["bandwidth_share"]) for k in MEMORY_KINDS]
        theta += [p["socket_exponent"][c] for c in JBB_CATEGORIES]
        theta += [p.get("physics", {}).get(k, 0.0) for k in PHYSICS]
        return cls(
            levels=levels, theta=tuple(float(t) for t in theta),
            kinds_fitted=tuple(data["kinds_fitted"]),
            family_kinds={f: tuple(k) for f, k in data["family_kinds"].items()},
            max_boost_Hz=dict(data["max_boost_Hz"]),
            log_headroom_prior=float(data["log_headroom_prior"]),
            jbb_critical_ratio=dict(data["jbb_critical_ratio"]),
            stream_fraction=data.get("stream_fraction"),
            energy_scales=dict(data.get("energy_scales", {})),
            activity_exponent=data.get("activity_exponent"),
            intervals={k: Interval(v["seen"], v["unseen"])
                       for k, v in data.get("intervals", {}).items()},
            provenance=dict(data.get("provenance", {})))


@lru_cache(maxsize=4)
def load_cpu_calibration(path: Path = CPU_CALIBRATION_FILE) -> CpuCalibration:
    """The committed CPU calibration; SpecError when the file is missing or unreadable."""
    try:
        return CpuCalibration.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SpecError.one(str(path), "", f"cannot read the CPU calibration ({exc}); "
                                           "run scripts/fit_cpu.py") from None
