"""Score the hold-out set with the committed calibration and write it into its README.

Usage::

    .venv/bin/python scripts/holdout_report.py

Predicts every row of ``validation/holdout/training_holdout.csv`` and
``validation/holdout/inference_holdout.csv`` as ``ocplan validate`` does and rewrites the
"Current score" section of ``validation/holdout/README.md`` (between its
``<!-- current:start -->`` and ``<!-- current:end -->`` markers): per set the summary and
every row, worst first. The README's first score (the one taken before anything could
have been tuned on these rows) stays as it was written. The figures are reported, never
fitted: this script reads no calibration other than the committed one and changes none.
``tests/test_holdout_set.py`` fails when the section no longer matches a fresh scoring,
so the README cannot fall behind the calibration.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from ocplan.catalog.catalog import load_catalog
from ocplan.results.serving_validation import read_serving_cases, run_serving_validation
from ocplan.results.validation import Summary, read_cases, run_validation, summarize

ROOT = Path(__file__).resolve().parents[1]
HOLDOUT = ROOT / "validation" / "holdout"
README = HOLDOUT / "README.md"
TRAINING = HOLDOUT / "training_holdout.csv"
SERVING = HOLDOUT / "inference_holdout.csv"
START, END = "<!-- current:start -->", "<!-- current:end -->"


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


def section() -> str:
    """The "Current score" section, markers excluded."""
    catalog = load_catalog()
    t_rows, s_rows = read_cases(TRAINING), read_serving_cases(SERVING)
    train, serve = run_validation(t_rows, catalog), run_serving_validation(s_rows, catalog)
    t_sum, s_sum = summarize(train), summarize(serve)
    t_n = {r["case_id"]: r["num_chips"] for r in t_rows}
    s_n = {r["case_id"]: r["num_chips"] for r in s_rows}
    lines = ["## Current score", "",
             "Written by `scripts/holdout_report.py` with the committed calibration "
             "(`src/ocplan/plan/calibration.json`, `src/ocplan/serving/calibration.json`); "
             "the metrics are those of the first score below. Reported, never fitted: the "
             "changes that moved these figures, and what was looked at, are listed above.",
             "", "### Training", "", summary_line(t_sum), ""]
    lines += _table([(c.case_id, f"{c.chip} x {t_n[c.case_id]}", c.model,
                      c.measured_tokens_per_s_per_chip, c.predicted_tokens_per_s_per_chip,
                      c.error_pct, c.status if c.reason is None else f"{c.status} ({c.reason})")
                     for c in train])
    lines += ["", "### Inference", "", summary_line(s_sum), ""]
    lines += _table([(c.case_id, f"{c.chip} x {s_n[c.case_id]}",
                      f"{c.model}, {c.scenario}", c.measured, c.predicted, c.error_pct,
                      c.status if c.reason is None else f"{c.status} ({c.reason})")
                     for c in serve])
    return "\n".join(lines)


def rewrite(text: str, body: str) -> str:
    """``text`` with the part between the markers replaced by ``body``."""
    assert START in text, "README lost its current-score start marker"
    assert END in text, "README lost its current-score end marker"
    return text[: text.index(START) + len(START)] + "\n" + body + "\n" + text[text.index(END):]


def main(argv: list[str]) -> int:
    body = section()
    README.write_text(rewrite(README.read_text(encoding="utf-8"), body), encoding="utf-8")
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
