"""Score the hold-out set with the committed calibration and write it into its README.

Usage::

    .venv/bin/python scripts/holdout_report.py

Predicts every row of ``validation/holdout/training_holdout.csv`` and
``validation/holdout/inference_holdout.csv`` as ``ocplan validate`` does and rewrites the
"Current score" section of ``validation/holdout/README.md`` (between its
``<!-- current:start -->`` and ``<!-- current:end -->`` markers): per set the summary and
every row, worst first; and the hold-out table of the top-level ``README.md`` (between
``<!-- holdout-table:start -->`` and ``<!-- holdout-table:end -->``). The README's first
score (the one taken before anything could have been tuned on these rows) stays as it was
written. The figures are reported, never
fitted: this script reads no calibration other than the committed one and changes none.
``tests/test_holdout_set.py`` fails when either no longer matches a fresh scoring, so
neither README can fall behind the calibration.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from _cli import ScriptParser, parse_argv, script_parser  # scripts/ sibling

from ocplan.catalog.catalog import load_catalog
from ocplan.plan.calibration import coverage_note
from ocplan.results.serving_validation import (
    ServingCase,
    read_serving_cases,
    run_serving_validation,
)
from ocplan.results.validation import (
    Case,
    Summary,
    range_coverage,
    read_cases,
    run_validation,
    summarize,
)

ROOT = Path(__file__).resolve().parents[1]
HOLDOUT = ROOT / "validation" / "holdout"
README = HOLDOUT / "README.md"
TOP_README = ROOT / "README.md"
TRAINING = HOLDOUT / "training_holdout.csv"
SERVING = HOLDOUT / "inference_holdout.csv"
START, END = "<!-- current:start -->", "<!-- current:end -->"
TABLE_START, TABLE_END = "<!-- holdout-table:start -->", "<!-- holdout-table:end -->"


def summary_line(s: Summary) -> str:
    """One sentence of a set's errors, as the first score wrote it."""
    if s.median_abs_error_pct is None:
        return f"n = {s.n}, failed (infeasible or error) = {s.failed}, nothing predicted."
    return (f"n = {s.n}, failed (infeasible or error) = {s.failed}, median |error| = "
            f"{s.median_abs_error_pct:.1f} %, p90 = {s.p90_abs_error_pct:.1f} %, max = "
            f"{s.max_abs_error_pct:.1f} %, mean signed = {s.mean_signed_error_pct:+.1f} %.")


def _table(rows: Sequence[tuple[str, str, str, float, float | None, float | None, str]]
           ) -> list[str]:
    out = ["| case | chip x n, model | measured | predicted | error % | status |",
           "|---|---|---|---|---|---|"]
    ordered = sorted(rows, key=lambda r: -abs(r[5]) if r[5] is not None else float("inf"))
    for cid, chip, model, measured, predicted, err, status in ordered:
        out.append(f"| {cid} | {chip}, {model} | {measured:g} | "
                   f"{'' if predicted is None else f'{predicted:.1f}'} | "
                   f"{'' if err is None else f'{err:+.1f}'} | {status} |")
    return out


@cache
def _scored() -> tuple[list[dict[str, str]], list[dict[str, str]],
                       list[Case], list[ServingCase]]:
    """Both sets' rows and their predictions with the committed calibration."""
    catalog = load_catalog()
    t_rows, s_rows = read_cases(TRAINING), read_serving_cases(SERVING)
    return (t_rows, s_rows, run_validation(t_rows, catalog),
            run_serving_validation(s_rows, catalog))


def _cells(s: Summary) -> str:
    """n, median, p90 and mean signed error as table cells."""
    if s.median_abs_error_pct is None:
        return f"{s.n} | - | - | -"
    return (f"{s.n} | {s.median_abs_error_pct:.1f} | {s.p90_abs_error_pct:.1f} | "
            f"{s.mean_signed_error_pct:+.1f}")


def coverage_line(cases: Sequence[Case] | Sequence[ServingCase], label: str = "Training",
                  what: str = "runs") -> str:
    """How often the estimates' likely ranges held on a set of runs (or serving results:
    ``what``), in a sentence."""
    within, judged = range_coverage(cases)
    if not judged:
        return f"{label}: no estimate stated a likely range."
    return f"{label}: {coverage_note(within, judged, what)}."


def readme_table() -> str:
    """The hold-out table of the top-level README, markers excluded: each set, and the
    training rows in 8- and 16-bit precisions (without the NVFP4 and MXFP4 rows)."""
    t_rows, _, train, serve = _scored()
    fp4 = {r["case_id"] for r in t_rows if r["precision"].strip() == "fp4"}
    before = [c for c in train if c.case_id not in fp4]
    return "\n".join([
        "| hold-out errors in % | n | median abs | p90 abs | mean signed |",
        "|---|---|---|---|---|",
        "| training (`ocplan validate validation/holdout/training_holdout.csv`) | "
        f"{_cells(summarize(train))} |",
        f"| training, the {len(before)} rows in 8 and 16 bits (no NVFP4 or MXFP4) | "
        f"{_cells(summarize(before))} |",
        "| serving (`ocplan validate validation/holdout/inference_holdout.csv`) | "
        f"{_cells(summarize(serve))} |", "", coverage_line(train), "",
        coverage_line(serve, "Serving", "results")])


def section() -> str:
    """The "Current score" section, markers excluded."""
    t_rows, s_rows, train, serve = _scored()
    t_sum, s_sum = summarize(train), summarize(serve)
    t_n = {r["case_id"]: r["num_chips"] for r in t_rows}
    s_n = {r["case_id"]: r["num_chips"] for r in s_rows}
    lines = ["## Current score", "",
             "Written by `scripts/holdout_report.py` with the committed calibration "
             "(`src/ocplan/plan/calibration.json`, `src/ocplan/serving/calibration.json`); "
             "the metrics are those of the first score below. Reported, never fitted: the "
             "changes that moved these figures, and what was looked at, are listed above.",
             "", "### Training", "", summary_line(t_sum), "", coverage_line(train), ""]
    lines += _table([(c.case_id, f"{c.chip} x {t_n[c.case_id]}", c.model,
                      c.measured_tokens_per_s_per_chip, c.predicted_tokens_per_s_per_chip,
                      c.error_pct, c.status if c.reason is None else f"{c.status} ({c.reason})")
                     for c in train])
    lines += ["", "### Inference", "", summary_line(s_sum), "",
              coverage_line(serve, "Serving", "results"), ""]
    lines += _table([(c.case_id, f"{c.chip} x {s_n[c.case_id]}",
                      f"{c.model}, {c.scenario}", c.measured, c.predicted, c.error_pct,
                      c.status if c.reason is None else f"{c.status} ({c.reason})")
                     for c in serve])
    return "\n".join(lines)


def rewrite(text: str, body: str, start: str = START, end: str = END) -> str:
    """``text`` with the part between the markers replaced by ``body``."""
    assert start in text, f"README lost its marker {start}"
    assert end in text, f"README lost its marker {end}"
    return text[: text.index(start) + len(start)] + "\n" + body + "\n" + text[text.index(end):]


def parser() -> ScriptParser:
    """The command line: no arguments (``--help`` only)."""
    return script_parser(__file__, __doc__,
                         f"Rewrites {README.relative_to(ROOT)} and the hold-out table of "
                         f"{TOP_README.relative_to(ROOT)}.")


def main(argv: list[str]) -> int:
    stop = parse_argv(parser(), argv)
    if isinstance(stop, int):  # --help (0), or a bad argument's one line printed (2)
        return stop
    body, table = section(), readme_table()
    README.write_text(rewrite(README.read_text(encoding="utf-8"), body), encoding="utf-8")
    TOP_README.write_text(rewrite(TOP_README.read_text(encoding="utf-8"), table,
                                  TABLE_START, TABLE_END), encoding="utf-8")
    print(body)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
