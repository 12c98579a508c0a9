"""Predict published CPU benchmark results and compare: ``ocplan validate`` on a CPU CSV.

Reads the layout of ``shared/validation/cpu_dev.csv`` (``cpu_README.md``): one row per
(system configuration, benchmark, metric) with the CPU's specs and the measured value.
Each modelled row is predicted from its own specs by :mod:`ocplan.cpu`; rows of the
benchmarks the model does not predict (MLPerf, TPC-E), and rows that do not publish an
input their benchmark's law needs (a STREAM row without its memory speed), become
``excluded`` cases with the reason, never silently dropped.

Modes (``mode``):

- ``loco`` (default): each CPU's rows are predicted by a fit without any row of that CPU
  (leave-one-CPU-out), so no row is predicted from a measurement of its own CPU. The fit
  pools the file's other CPUs with the rows the committed calibration was fitted on
  (:data:`CALIBRATION_ROWS_FILE`, the modelled rows of ``cpu_dev.csv``): a file of a few
  CPUs, or of one benchmark only (the SPEC energy rows), is predicted by the same model as
  the development set, not by a fit on its own handful of rows. A calibration row equal to
  a file row (same configuration, benchmark, metric and value) counts once, so the
  development file itself gives the plain leave-one-CPU-out of that file;
- ``lofo``: the same leaving out each whole family (the unseen-family case);
- ``in_sample``: the committed calibration as is (fitted on ``cpu_dev.csv``; for those
  rows this measures the fit, not the model).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from ocplan.cpu.benchmarks import BENCHMARKS, NOT_MODELLED, benchmark
from ocplan.cpu.calibration import CPU_CALIBRATION_FILE, CpuCalibration, load_cpu_calibration
from ocplan.cpu.config import config_from_row, row_problem
from ocplan.cpu.crossval import with_interval
from ocplan.cpu.fitting import Observation, fit
from ocplan.cpu.predict import CpuPrediction, predict_many
from ocplan.errors import Problem, SpecError
from ocplan.results.validation import REQUIRED as TRAINING_REQUIRED
from ocplan.results.validation import (
    Summary,
    csv_header,
    read_csv_rows,
    source_group,
    summarize,
)

__all__ = [
    "CALIBRATION_ROWS_FILE",
    "CPU_REQUIRED",
    "ROW_COLUMNS",
    "CpuCase",
    "calibration_observations",
    "cases_for",
    "excluded_by_reason",
    "excluded_phrase",
    "is_cpu_csv",
    "observations",
    "predict_rows",
    "read_cpu_cases",
    "run_cpu_validation",
    "summaries_by_benchmark",
    "write_calibration_rows",
]

CPU_REQUIRED = ("case_id", "benchmark", "metric", "value", "unit", "cpu", "vendor", "family",
                "isa", "sockets", "cores_per_socket", "base_ghz")
#: The columns the model reads from a row (configuration, benchmark, measured value): what
#: :data:`CALIBRATION_ROWS_FILE` keeps of each calibration row.
ROW_COLUMNS = ("case_id", "benchmark", "metric", "value", "unit", "cpu", "vendor", "family",
               "isa", "sockets", "cores_per_socket", "threads_per_core", "base_ghz",
               "boost_ghz", "boost_kind", "max_boost_ghz", "tdp_w",
               "memory_channels_per_socket", "memory_type", "memory_mts", "memory_gb",
               "dimms_total")
#: The modelled rows the committed calibration was fitted on, written with it by
#: ``scripts/fit_cpu.py`` (its provenance holds the source file's sha256).
CALIBRATION_ROWS_FILE = CPU_CALIBRATION_FILE.parent / "data" / "calibration_rows.csv"
#: Prefix of the calibration rows' case ids inside a pooled fit (a validation file may
#: reuse the development set's ids for other rows).
_POOL_PREFIX = "calibration:"
#: Columns that only the CPU layout has (the training and serving layouts have none).
SIGNATURE = {"benchmark", "cores_per_socket", "base_ghz"}
#: The CPU layout's columns that the training layout lacks, and the converse: a header
#: missing some of :data:`SIGNATURE` is read as the layout it shares more of these with.
CPU_OWN = frozenset(ROW_COLUMNS) - frozenset(TRAINING_REQUIRED)
TRAINING_OWN = frozenset(TRAINING_REQUIRED) - frozenset(ROW_COLUMNS)
#: Start of an ``excluded`` case's reason when its row lacks an input its law needs.
INPUT_NOT_PUBLISHED = "input not published"
#: Why an ``excluded`` case is left out, as the summary counts them (key: words): a
#: benchmark the model does not predict (:data:`~ocplan.cpu.benchmarks.NOT_MODELLED`), or
#: a modelled benchmark's row that lacks an input its law needs (a STREAM row without
#: its memory speed).
EXCLUDED_REASONS = {"not_predicted": "of benchmarks the model does not predict",
                    "input_not_published": "with an input their benchmark needs not published"}

Mode = Literal["loco", "lofo", "in_sample"]


def is_cpu_csv(header: Iterable[str]) -> bool:
    """Whether a CSV header is the CPU validation layout, or nearer to it than to the
    training layout (more of :data:`CPU_OWN` than of :data:`TRAINING_OWN`): a CPU file
    short of columns is then told which CPU columns it lacks, not every training one."""
    columns = set(header)
    if columns >= SIGNATURE:
        return True
    return len(columns & CPU_OWN) > len(columns & TRAINING_OWN)


def read_cpu_cases(path: Path) -> list[dict[str, str]]:
    """Rows of a CPU validation CSV; SpecError naming every bad row (file, line, column,
    value and what is allowed) or repeated case id; one SpecError line for a header
    without the CPU layout's columns (naming the layout and what it lacks) or a file
    with no rows (nothing to predict is not a result)."""
    header = csv_header(path)
    missing = [c for c in CPU_REQUIRED if c not in header]
    if header and missing:
        near = ", ".join(c for c in header if c in CPU_OWN) or "none"
        raise SpecError.one(str(path), "header", f"missing columns of the CPU benchmark "
                                                 f"layout (cpu_dev.csv's, the nearest to the "
                                                 f"columns it has: {near}): "
                                                 f"{', '.join(missing)}")
    rows = read_csv_rows(path, CPU_REQUIRED, _row_problem)  # refuses a file of no rows
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
                "cpu": self.cpu, "measured": self.measured, "unit": self.unit,
                "predicted": self.predicted,
                "low": self.low, "high": self.high, "error_pct": self.error_pct,
                "status": self.status, "reason": self.reason, "bound": self.bound,
                "level": self.level, "flags": list(self.flags), "mode": self.mode}


def observations(rows: Iterable[dict[str, str]], source: str = "csv") -> list[Observation]:
    """The rows of modelled benchmarks as model observations (rows checked by
    :func:`read_cpu_cases`)."""
    return [Observation(row["case_id"], config_from_row(row, source, n), row["benchmark"],
                        row.get("metric") or "", float(row["value"]))
            for n, row in enumerate(rows, start=2) if benchmark(row["benchmark"]) is not None]


def write_calibration_rows(rows: Iterable[dict[str, str]], path: Path) -> int:
    """Write the modelled rows' :data:`ROW_COLUMNS` to ``path`` (CSV); the row count."""
    kept = [{k: (row.get(k) or "").strip() for k in ROW_COLUMNS} for row in rows
            if benchmark(row["benchmark"]) is not None]
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=ROW_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)
    return len(kept)


def calibration_observations(path: Path = CALIBRATION_ROWS_FILE) -> list[Observation]:
    """The committed calibration's rows as observations, case ids prefixed
    ``calibration:``; SpecError when the file is missing or malformed."""
    rows = read_cpu_cases(path)
    return [replace(o, case_id=_POOL_PREFIX + o.case_id)
            for o in observations(rows, str(path))]


def _identity(o: Observation) -> tuple[object, ...]:
    """What makes two rows the same measurement (the case id aside)."""
    return (o.config, o.benchmark, o.metric, o.value)


def _pooled(obs: Sequence[Observation], pool: Sequence[Observation]) -> list[Observation]:
    """The file's observations and the calibration rows that repeat none of them."""
    seen = {_identity(o) for o in obs}
    return [*obs, *(o for o in pool if _identity(o) not in seen)]


def _held_out(test: Sequence[Observation], train: Sequence[Observation], mode: Mode
              ) -> dict[str, CpuPrediction]:
    """Predictions of ``test`` by fits on ``train`` without each held-out group (the CPU
    for ``loco``, the family for ``lofo``), by case id."""
    def key(o: Observation) -> str:
        return o.config.cpu if mode == "loco" else o.config.family

    out: dict[str, CpuPrediction] = {}
    for held in sorted({key(o) for o in test}):
        calibration = fit([o for o in train if key(o) != held])
        group = [o for o in test if key(o) == held]
        preds = predict_many([(o.config, o.benchmark, o.metric) for o in group], calibration)
        out.update({o.case_id: p for o, p in zip(group, preds, strict=True)})
    return out


def predict_rows(rows: Sequence[dict[str, str]], calibration: CpuCalibration | None = None,
                 mode: Mode = "loco", pool: Sequence[Observation] | None = None,
                 fit_file_rows: bool = True) -> dict[str, CpuPrediction]:
    """Predictions of the modelled rows of a CPU validation file, by case id (see the
    module doc for ``mode``). ``pool``: the rows a held-out fit adds to the file's other
    CPUs (default :func:`calibration_observations`; empty for a fit on the file alone).
    ``fit_file_rows=False`` fits on the pool alone, so no row of the file informs any
    prediction (a hold-out set's score)."""
    cal = calibration or load_cpu_calibration()
    obs = observations(rows)
    if not obs:
        return {}
    if mode == "in_sample":
        preds = predict_many([(o.config, o.benchmark, o.metric) for o in obs], cal)
        return {o.case_id: p for o, p in zip(obs, preds, strict=True)}
    if pool is None:
        pool = calibration_observations()
    folds = _held_out(obs, _pooled(obs, pool) if fit_file_rows else pool, mode)
    # Intervals: the calibration's cross-validated widths (seen / unseen family).
    return {k: with_interval(p, cal.intervals, unseen=bool(p.flags) or mode == "lofo")
            for k, p in folds.items()}


def cases_for(rows: Sequence[dict[str, str]], preds: Mapping[str, CpuPrediction],
              mode: Mode = "loco") -> list[CpuCase]:
    """The rows' cases, in file order, from their predictions (:func:`predict_rows`)."""
    return [_case(row, preds.get(row["case_id"]), mode) for row in rows]


def run_cpu_validation(rows: Sequence[dict[str, str]], calibration: CpuCalibration | None = None,
                       mode: Mode = "loco", pool: Sequence[Observation] | None = None,
                       fit_file_rows: bool = True) -> list[CpuCase]:
    """Cases for the rows of a CPU validation file, in file order: :func:`predict_rows`
    (same arguments), compared with the measured values."""
    return cases_for(rows, predict_rows(rows, calibration, mode, pool, fit_file_rows), mode)


def _case(row: dict[str, str], p: CpuPrediction | None, mode: str) -> CpuCase:
    measured = float(row["value"])
    if p is None:
        status, reason = "excluded", NOT_MODELLED.get(row["benchmark"])
    elif p.value is None and p.missing_input:
        # the row's own specs are the model's only inputs: one it lacks is not a failure
        status, reason = "excluded", f"{INPUT_NOT_PUBLISHED}: {p.reason}"
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


def excluded_by_reason(cases: Iterable[CpuCase]) -> dict[str, int]:
    """The ``excluded`` cases counted by why (the keys of :data:`EXCLUDED_REASONS`), the
    reasons with none left out."""
    out: dict[str, int] = {}
    for c in cases:
        if c.status == "excluded":
            # only rows of modelled benchmarks are predicted, so only they can lack an input
            why = "not_predicted" if benchmark(c.benchmark) is None else "input_not_published"
            out[why] = out.get(why, 0) + 1
    return {why: out[why] for why in EXCLUDED_REASONS if why in out}


def excluded_phrase(cases: Iterable[CpuCase]) -> str:
    """The summary's count of excluded cases, by reason (:data:`EXCLUDED_REASONS`):
    ``excluded=22 (19 of benchmarks the model does not predict, 3 with an input their
    benchmark needs not published)``. One count with one reason had read as if every
    excluded row were of a benchmark the model does not predict."""
    counts = excluded_by_reason(cases)
    total = sum(counts.values())
    if not total:
        return "excluded=0"
    return f"excluded={total} (" + ", ".join(
        f"{n} {EXCLUDED_REASONS[why]}" for why, n in counts.items()) + ")"


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

