"""Predict published CPU benchmark results and compare: ``ocplan validate`` on a CPU CSV.

Reads the layout of ``shared/validation/cpu_dev.csv`` (``cpu_README.md``): one row per
(system configuration, benchmark, metric) with the CPU's specs and the measured value.
Each modelled row is predicted from its own specs by :mod:`ocplan.cpu`; rows of the
benchmarks the model does not predict (MLPerf, TPC-E), and rows that do not publish an
input their benchmark's law needs (a STREAM row without its memory speed), become
``excluded`` cases with the reason, never silently dropped.

Modes (``mode``):

- ``loco`` (default): each CPU's rows are predicted by a fit on the file's *other* CPUs
  (leave-one-CPU-out), so no row is predicted from a measurement of its own CPU;
- ``lofo``: the same leaving out each whole family (the unseen-family case);
- ``in_sample``: the committed calibration as is (fitted on ``cpu_dev.csv``; for those
  rows this measures the fit, not the model).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ocplan.cpu.benchmarks import BENCHMARKS, NOT_MODELLED, benchmark
from ocplan.cpu.calibration import CpuCalibration, load_cpu_calibration
from ocplan.cpu.config import config_from_row, row_problem
from ocplan.cpu.crossval import cross_validate, with_interval
from ocplan.cpu.fitting import Observation
from ocplan.cpu.predict import CpuPrediction, predict_many
from ocplan.errors import Problem, SpecError
from ocplan.results.validation import Summary, read_csv_rows, source_group, summarize

__all__ = ["CPU_REQUIRED", "CpuCase", "is_cpu_csv", "observations", "read_cpu_cases",
           "run_cpu_validation", "summaries_by_benchmark"]

CPU_REQUIRED = ("case_id", "benchmark", "metric", "value", "unit", "cpu", "vendor", "family",
                "isa", "sockets", "cores_per_socket", "base_ghz")
#: Columns that only the CPU layout has (the training and serving layouts have none).
SIGNATURE = {"benchmark", "cores_per_socket", "base_ghz"}

Mode = Literal["loco", "lofo", "in_sample"]


def is_cpu_csv(header: Iterable[str]) -> bool:
    """Whether a CSV header is the CPU validation layout."""
    return set(header) >= SIGNATURE


def read_cpu_cases(path: Path) -> list[dict[str, str]]:
    """Rows of a CPU validation CSV; SpecError naming every bad row (file, line, column,
    value and what is allowed) or repeated case id."""
    rows = read_csv_rows(path, CPU_REQUIRED, _row_problem)
    first: dict[str, int] = {}
    problems = []
    for line, row in enumerate(rows, start=2):
        case_id = row["case_id"].strip()
        if case_id in first:
            problems.append(Problem(str(path), f"line {line}.case_id",
                                    f"repeats the case id of line {first[case_id]}; "
                                    "expected a unique id", case_id))
        first.setdefault(case_id, line)
    if problems:
        raise SpecError(problems)
    return rows


def _row_problem(source: str, line: int, row: dict[str, str]) -> Problem | None:
    if not (row.get("case_id") or "").strip():
        return Problem(source, f"line {line}.case_id", "required, is empty", "")
    name = (row.get("benchmark") or "").strip()
    if name not in BENCHMARKS and name not in NOT_MODELLED:
        allowed = ", ".join(sorted([*BENCHMARKS, *NOT_MODELLED]))
        return Problem(source, f"line {line} ({row.get('case_id') or '?'}).benchmark",
                       f"expected one of {allowed}", name)
    return row_problem(source, line, row)


@dataclass(frozen=True)
class CpuCase:
    """One row's measured and predicted value (the benchmark's unit) and the comparison."""

    case_id: str
    source: str
    cpu: str
    family: str
    benchmark: str
    metric: str
    unit: str
    measured: float
    predicted: float | None
    error_pct: float | None
    status: str
    """``ok``, ``error`` (a row the model should predict but could not) or ``excluded``
    (a benchmark the model does not predict, or a row that does not publish an input
    the benchmark's law needs, such as a STREAM row without its memory speed: the reason
    says which)."""
    reason: str | None
    low: float | None = None
    high: float | None = None
    bound: str | None = None
    level: str | None = None
    flags: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    mode: str = "loco"
    confidence: str = ""

    @property
    def covered(self) -> bool | None:
        """Whether the measured value lies inside the prediction interval."""
        if self.low is None or self.high is None:
            return None
        return self.low <= self.measured <= self.high

    def as_json(self) -> dict[str, object]:
        return {"case_id": self.case_id, "benchmark": self.benchmark, "metric": self.metric,
                "cpu": self.cpu, "measured": self.measured, "predicted": self.predicted,
                "low": self.low, "high": self.high, "error_pct": self.error_pct,
                "status": self.status, "reason": self.reason, "bound": self.bound,
                "level": self.level, "flags": list(self.flags), "mode": self.mode}


def observations(rows: Iterable[dict[str, str]], source: str = "csv") -> list[Observation]:
    """The rows of modelled benchmarks as model observations (rows checked by
    :func:`read_cpu_cases`)."""
    return [Observation(row["case_id"], config_from_row(row, source, n), row["benchmark"],
                        row.get("metric") or "", float(row["value"]))
            for n, row in enumerate(rows, start=2) if benchmark(row["benchmark"]) is not None]


def _predictions(obs: Sequence[Observation], calibration: CpuCalibration, mode: Mode
                 ) -> dict[str, CpuPrediction]:
    if mode == "in_sample":
        preds = predict_many([(o.config, o.benchmark, o.metric) for o in obs], calibration)
        return {o.case_id: p for o, p in zip(obs, preds, strict=True)}
    folds = cross_validate(obs, "cpu" if mode == "loco" else "family")
    # Intervals: the calibration's cross-validated widths (seen / unseen family).
    return {k: with_interval(p, calibration.intervals, unseen=bool(p.flags) or mode == "lofo")
            for k, p in folds.items()}


def run_cpu_validation(rows: Sequence[dict[str, str]], calibration: CpuCalibration | None = None,
                       mode: Mode = "loco") -> list[CpuCase]:
    """Cases for the rows of a CPU validation file, in file order (see the module doc for
    ``mode``)."""
    cal = calibration or load_cpu_calibration()
    obs = observations(rows)
    preds = _predictions(obs, cal, mode) if obs else {}
    return [_case(row, preds.get(row["case_id"]), mode) for row in rows]


def _case(row: dict[str, str], p: CpuPrediction | None, mode: str) -> CpuCase:
    measured = float(row["value"])
    if p is None:
        status, reason = "excluded", NOT_MODELLED.get(row["benchmark"])
    elif p.value is None and p.missing_input:
        # the row's own specs are the model's only inputs: one it lacks is not a failure
        status, reason = "excluded", f"input not published: {p.reason}"
    elif p.value is None:
        status, reason = "error", p.reason
    else:
        status, reason = "ok", None
    value = None if p is None else p.value
    return CpuCase(
        case_id=row["case_id"], source=source_group(row.get("source") or ""), cpu=row["cpu"],
        family=row["family"], benchmark=row["benchmark"], metric=row.get("metric") or "",
        unit=row.get("unit") or "", measured=measured, predicted=value,
        error_pct=None if value is None else 100.0 * (value - measured) / measured,
        status=status, reason=reason, low=None if p is None else p.low,
        high=None if p is None else p.high, bound=None if p is None else p.bound,
        level=None if p is None else p.level, flags=() if p is None else p.flags,
        notes=() if p is None else p.notes, mode=mode, confidence=row.get("confidence") or "")


def summaries_by_benchmark(cases: Sequence[CpuCase]) -> dict[str, Summary]:
    """Error summary (:func:`~ocplan.results.validation.summarize`) per benchmark id, over
    the cases the model predicts (``excluded`` ones left out)."""
    out = {}
    for name in sorted({c.benchmark for c in cases}):
        group = [c for c in cases if c.benchmark == name and c.status != "excluded"]
        if group:
            out[name] = summarize(group)
    return out


def coverage(cases: Sequence[CpuCase]) -> float | None:
    """Share of predicted cases whose interval holds the measured value."""
    hits = [c.covered for c in cases if c.covered is not None]
    return None if not hits else sum(hits) / len(hits)

