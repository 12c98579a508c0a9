"""``ocplan validate``: published training runs, serving results or CPU benchmarks
predicted, with the error of each and overall.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ocplan.cli.app import handles_bad_input, print_json, session_catalog
from ocplan.cli.options import FormatOpt
from ocplan.cli.render import add_row, out, pct, printable
from ocplan.cli.state import Format
from ocplan.lazy import lazy_module
from ocplan.plan.calibration import coverage_note

if TYPE_CHECKING:
    import rich.table as rich_table

    from ocplan import api
    from ocplan.results.serving_validation import ServingCase
    from ocplan.results.validation import Case
else:
    # The API imports every estimator; a command loads it when it first calls it, so
    # that ``ocplan match`` or ``ocplan catalog`` start without the training engine.
    api = lazy_module("ocplan.api")
    rich_table = lazy_module("rich.table")


@handles_bad_input
def validate(file: Annotated[Path, typer.Argument(metavar="FILE.csv")],
             fmt: FormatOpt = Format.table) -> None:
    """Predict published training runs, serving results or CPU benchmarks (the layout is
    recognised from the header) and report the error of each and overall.

    Exit 1 when a row could not be predicted or was infeasible (CPU rows of benchmarks
    the model does not cover are excluded, not failed)."""
    from ocplan.cli.csv_input import refuse_non_csv
    from ocplan.results.validation import MAX_CSV_BYTES

    refuse_non_csv(file, MAX_CSV_BYTES)  # an empty or YAML file: say so, in one line
    if api.is_serving_file(file):
        statuses = _validate_serving(file, fmt)
    elif api.is_cpu_file(file):
        statuses = _validate_cpu(file, fmt)
    else:
        statuses = _validate_training(file, fmt)
    if any(status not in PASSED_STATUSES for status in statuses):
        raise typer.Exit(1)


#: Statuses of validation rows that did not fail: predicted, or (CPU) a benchmark the
#: model does not predict and leaves out of the statistics.
PASSED_STATUSES = ("ok", "excluded")


#: The validate tables' column saying whether a measurement fell in its estimate's
#: likely range (the range the coverage sentence under the table counts).
IN_RANGE_HEADING = "in likely range"


def _in_range(within: bool | None) -> str:
    """A case's cell of :data:`IN_RANGE_HEADING` ("-": no range was stated)."""
    return "-" if within is None else ("yes" if within else "no")


def _validate_training(file: Path, fmt: Format) -> list[str]:
    """Published training runs, each predicted with its own layout; the rows' statuses."""
    cases, summary = api.validate_runs(session_catalog(), file)
    statuses = [c.status for c in cases]
    within, judged = api.likely_range_coverage(cases)
    if fmt is Format.json:
        print_json({"summary": summary.__dict__ | {"within_likely_range": within,
                                                   "judged_for_range": judged},
                    "cases": [c.as_json() for c in cases]})
        return statuses
    table = rich_table.Table(title=printable(f"ocplan validate {file.name}"))
    for col in ("case", "chip", "model", "measured tokens/s per chip", "predicted", "error %",
                IN_RANGE_HEADING, "status"):
        table.add_column(col)
    for c in cases:
        add_row(table, c.case_id, c.chip, c.model[:28], f"{c.measured_tokens_per_s_per_chip:,.1f}",
                "-" if c.predicted_tokens_per_s_per_chip is None
                else f"{c.predicted_tokens_per_s_per_chip:,.1f}",
                "-" if c.error_pct is None else f"{c.error_pct:+.1f}",
                _in_range(c.within_likely_range),
                c.status if c.reason is None else f"{c.status}: {c.reason}")
    out.print(table)
    _group_tables(cases, (("chip", "by chip"), ("source", "by source"),
                          ("architecture", "dense vs MoE")))
    out.print(f"n={summary.n} failed={summary.failed} median |error| "
              f"{pct(summary.median_abs_error_pct)}% p90 {pct(summary.p90_abs_error_pct)}% "
              f"max {pct(summary.max_abs_error_pct)}% mean signed "
              f"{pct(summary.mean_signed_error_pct, '+')}%")
    if judged:
        out.print(coverage_note(within, judged))
    return statuses


def _validate_cpu(file: Path, fmt: Format) -> list[str]:
    """CPU benchmark rows, each predicted from its own specs by a calibration fitted
    without its CPU; the rows' statuses."""
    from ocplan.results.cpu_validation import excluded_by_reason, excluded_phrase

    cases, summary, by_benchmark = api.validate_cpu_runs(file)
    statuses = [c.status for c in cases]
    excluded = sum(c.status == "excluded" for c in cases)
    if fmt is Format.json:
        print_json({"summary": summary.__dict__ | {"excluded": excluded,
                                                   "excluded_by_reason":
                                                   excluded_by_reason(cases),
                                                   "mode": "leave one CPU out"},
                    "by_benchmark": {k: v.__dict__ for k, v in by_benchmark.items()},
                    "cases": [c.as_json() for c in cases]})
        return statuses
    table = rich_table.Table(title=printable(f"ocplan validate {file.name} (CPU, each CPU left out "
                                             "of the fit)"))
    for col in ("benchmark", "n", "median |error| %", "p90 %", "max %", "mean signed %"):
        table.add_column(col)
    for name, sm in by_benchmark.items():
        add_row(table, name, str(sm.n), pct(sm.median_abs_error_pct), pct(sm.p90_abs_error_pct),
                pct(sm.max_abs_error_pct), pct(sm.mean_signed_error_pct, "+"))
    out.print(table)
    out.print(f"n={summary.n} failed={summary.failed} {excluded_phrase(cases)} "
              f"median |error| {pct(summary.median_abs_error_pct)}% "
              f"p90 {pct(summary.p90_abs_error_pct)}% max {pct(summary.max_abs_error_pct)}%")
    return statuses


def _group_tables(cases: Sequence[Case] | Sequence[ServingCase],
                  groupings: tuple[tuple[str, str], ...]) -> None:
    """One table of errors per (case attribute, title): n, failed, median and mean."""
    for key, title in groupings:
        groups: dict[str, list[Case | ServingCase]] = {}
        for c in cases:
            groups.setdefault(getattr(c, key), []).append(c)
        gt = rich_table.Table(title=f"error {title}")
        for col in (key, "n", "failed", "median |error| %", "mean signed %"):
            gt.add_column(col)
        for name, group in sorted(groups.items()):
            g = api.summarize_runs(group)
            add_row(gt, name[:50], str(g.n), str(g.failed), pct(g.median_abs_error_pct),
                    pct(g.mean_signed_error_pct, "+"))
        out.print(gt)


def _validate_serving(file: Path, fmt: Format) -> list[str]:
    """Published serving results, each predicted; the rows' statuses."""
    cases, summary = api.validate_serving_runs(session_catalog(), file)
    statuses = [c.status for c in cases]
    latency = {name: api.summarize_runs([_LatencyScore(getattr(c, f"{name}_error_pct"))
                                         for c in cases
                                         if getattr(c, f"{name}_error_pct") is not None])
               for name in ("ttft", "tpot")}
    within, judged = api.likely_range_coverage(cases)
    if fmt is Format.json:
        print_json({"summary": summary.__dict__ | {"within_likely_range": within,
                                                   "judged_for_range": judged},
                    "cases": [c.as_json() for c in cases],
                    "latency": {k: v.__dict__ for k, v in latency.items()}})
        return statuses
    table = rich_table.Table(title=printable(f"ocplan validate {file.name} (serving)"))
    for col in ("case", "chip", "model", "scenario", "metric", "measured", "predicted",
                "error %", IN_RANGE_HEADING, "layout", "status"):
        table.add_column(col)
    for c in cases:
        add_row(table, c.case_id, c.chip, c.model[:24], c.scenario, c.metric,
                f"{c.measured:,.1f}", "-" if c.predicted is None else f"{c.predicted:,.1f}",
                "-" if c.error_pct is None else f"{c.error_pct:+.1f}",
                _in_range(c.within_likely_range),
                f"{c.layout} ({c.layout_source})" if c.layout else "-",
                c.status if c.reason is None else f"{c.status}: {c.reason}")
    out.print(table)
    _group_tables(cases, (("chip", "by chip"), ("source", "by source"),
                          ("scenario", "by scenario"), ("architecture", "dense vs MoE")))
    for name, g in latency.items():
        if g.n:
            out.print(f"{name.upper()}: n={g.n} median |error| {pct(g.median_abs_error_pct)}%")
    out.print(f"n={summary.n} failed={summary.failed} median |error| "
              f"{pct(summary.median_abs_error_pct)}% p90 {pct(summary.p90_abs_error_pct)}% "
              f"max {pct(summary.max_abs_error_pct)}% mean signed "
              f"{pct(summary.mean_signed_error_pct, '+')}%")
    if judged:
        out.print(coverage_note(within, judged, "results"))
    return statuses


@dataclass(frozen=True)
class _LatencyScore:
    error_pct: float | None
    status: str = "ok"
