"""MLPerf Inference v6.0 and v6.1 (closed, datacenter) as a never-fitted serving sweep:
every LLM result on a catalog accelerator, predicted with the committed training and
serving calibrations.

Usage::

    .venv/bin/python scripts/mlperf_inference_sweep.py   # writes docs/mlperf-inference-v6.md

It predicts every result (about ten minutes on two cores: two in three results publish no
layout and are searched) and writes each prediction to
``validation/sweeps/mlperf_inference_v6_scored.csv`` beside the report, which is rendered
from those rows alone, so a test can check the report against them and re-predict a
sample of them without predicting all.

Reads ``validation/sweeps/mlperf_inference_v6.csv`` (the serving validation's columns;
``validation/sweeps/README.md`` says how each value was read). Every result is newer than
the development set (MLPerf v4.0-v5.1) and the serving hold-out (v5.1), and none is
fitted: the report is what the model says of results it has never seen, on chips (B300,
GB300, MI350X, MI355X) the serving development set has few or none of. Results of the
same hardware, benchmark and scenario from several submitters show how far the data
scatters by itself.
"""

from __future__ import annotations

import csv
import re
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import numpy as np
from _cli import ScriptParser, bad_input, parse_argv, script_parser  # scripts/ sibling

from ocplan.catalog.catalog import load_catalog
from ocplan.errors import SpecError
from ocplan.results.serving_validation import read_serving_cases, run_serving_validation

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ROOT / "validation" / "sweeps" / "mlperf_inference_v6.csv"
REPORT = ROOT / "docs" / "mlperf-inference-v6.md"
SCORED = ROOT / "validation" / "sweeps" / "mlperf_inference_v6_scored.csv"
#: The submitter and system of a result, from its source's results path (a submitter's
#: name may hold spaces).
RESULT_PATH = re.compile(r"closed/([^/|]+)/results/([^/|]+)/")
#: The round a source names.
ROUND = re.compile(r"\bv(\d+\.\d+)\b")
#: Rows of the worst-results table.
WORST = 12


@dataclass(frozen=True)
class Scored:
    """One result as predicted: what the report is rendered from."""

    case_id: str
    chip: str
    num_chips: int
    model: str
    scenario: str
    submitter: str
    system: str
    round: str
    measured: float
    predicted: float | None
    """Output tokens/s per chip; None when not predicted."""
    error_pct: float | None
    within: bool | None
    """Whether the measured rate fell in the estimate's likely range."""
    layout: str
    layout_source: str
    status: str
    reason: str


def score(sweep: Path = SWEEP, only: Collection[str] | None = None) -> list[Scored]:
    """Every result of ``sweep`` (or the ``only`` ids of it) predicted with the committed
    calibrations."""
    rows = {r["case_id"]: r for r in read_serving_cases(sweep)
            if only is None or r["case_id"] in only}
    out = []
    for c in run_serving_validation(list(rows.values()), load_catalog()):
        r = rows[c.case_id]
        out.append(Scored(c.case_id, c.chip, int(r["num_chips"]), c.model, c.scenario,
                          *_submitter(r["source"]), _round(r["source"]), c.measured,
                          c.predicted, c.error_pct, c.within_likely_range, c.layout,
                          c.layout_source, c.status, c.reason or ""))
    return out


def _optional(text: str, kind: type) -> object:
    """A cell of :func:`write_scored` read back: empty is None."""
    if text == "":
        return None
    if kind is bool:
        return text == "True"
    return kind(text)


def write_scored(scored: Sequence[Scored], out: Path = SCORED) -> None:
    """The predictions as CSV: floats as Python writes them (``repr``), so reading them
    back gives the same values; an absent value is an empty cell."""
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([x.name for x in fields(Scored)])
        for s in scored:
            w.writerow(["" if v is None else repr(v) if isinstance(v, float) else v
                        for v in astuple(s)])


def read_scored(path: Path = SCORED) -> list[Scored]:
    """The predictions :func:`write_scored` wrote."""
    kinds = {"num_chips": int, "measured": float, "predicted": float, "error_pct": float,
             "within": bool}
    with path.open(newline="", encoding="utf-8") as f:
        return [Scored(**{k: (_optional(v, kinds[k]) if k in kinds else v)
                          for k, v in row.items()})  # type: ignore[arg-type]
                for row in csv.DictReader(f)]


def _submitter(source: str) -> tuple[str, str]:
    """(submitter, system) of a result, from its results path; ("?", "?") without one."""
    m = RESULT_PATH.search(source)
    return (m.group(1), m.group(2)) if m else ("?", "?")


def _round(source: str) -> str:
    m = ROUND.search(source)
    return f"v{m.group(1)}" if m else "?"


def _stats(errors: Sequence[float]) -> tuple[float, float, float]:
    """(median |error|, p90 |error|, mean signed), %."""
    a = np.abs(np.asarray(errors, dtype=float))
    return float(np.median(a)), float(np.percentile(a, 90)), float(np.mean(errors))


def _errors(scored: Sequence[Scored]) -> list[float]:
    return [s.error_pct for s in scored if s.error_pct is not None]


def _in_range(scored: Sequence[Scored]) -> str:
    judged = [s.within for s in scored if s.within is not None]
    return f"{sum(judged)} of {len(judged)}"


def _grouped(scored: Sequence[Scored], key: Callable[[Scored], tuple[str, ...]],
             head: str) -> list[str]:
    """A table of the predicted results' errors per ``key``."""
    groups: dict[tuple[str, ...], list[Scored]] = defaultdict(list)
    for s in scored:
        groups[key(s)].append(s)
    lines = [f"| {head} | results | median abs % | mean signed % | within likely range |",
             "|" + "---|" * (head.count("|") + 5)]
    for k in sorted(groups):
        med, _, mean = _stats(_errors(groups[k]))
        lines.append(f"| {' | '.join(k)} | {len(groups[k])} | {med:.1f} | {mean:+.1f} | "
                     f"{_in_range(groups[k])} |")
    return lines


def _spread(scored: Sequence[Scored]) -> list[str]:
    """Results of one chip count, benchmark and scenario from two or more submissions:
    the largest measured rate over the smallest, against the predictions' (each result
    is predicted from its own formats and layout, or the search's best)."""
    groups: dict[tuple[str, int, str, str], list[Scored]] = defaultdict(list)
    for s in scored:
        groups[(s.chip, s.num_chips, s.model, s.scenario)].append(s)
    lines = ["| chip x chips | benchmark | scenario | results | submitters | measured, "
             "largest over smallest | predicted, largest over smallest |",
             "|---|---|---|---|---|---|---|"]
    spreads = []
    for (chip, n, model, scenario), ss in sorted(groups.items()):
        if len(ss) < 2:
            continue
        measured = [s.measured for s in ss]
        predicted = [s.predicted for s in ss if s.predicted is not None]
        spread = 100.0 * (max(measured) / min(measured) - 1.0)
        spreads.append(spread)
        pred = (f"{100.0 * (max(predicted) / min(predicted) - 1.0):.1f} %"
                if len(predicted) == len(ss) else "")
        lines.append(f"| {chip} x {n} | {model} | {scenario} | {len(ss)} | "
                     f"{len({s.submitter for s in ss})} | {spread:.1f} % | {pred} |")
    if not spreads:
        return ["No configuration was published by more than one submission."]
    return [f"{len(spreads)} groups; the largest measured rate of a group is "
            f"{statistics.median(spreads):.1f} % above its smallest at the median group, "
            f"{max(spreads):.1f} % at most.", "", *lines]


def _row(s: Scored) -> str:
    return (f"| {s.case_id} | {s.submitter}, {s.system} | {s.chip} x {s.num_chips} | "
            f"{s.model} | {s.scenario} | {s.measured:,.1f} | "
            + (f"{s.predicted:,.1f} | {s.error_pct:+.1f} | " if s.predicted is not None
               and s.error_pct is not None else f"{s.status}: {s.reason} | | ")
            + f"{s.layout} ({s.layout_source}) |")


def render(scored: Sequence[Scored]) -> str:
    """The report of ``scored``: the error overall, by chip, by benchmark and scenario
    and by round, the scatter among submissions of one configuration, the worst results
    and every result."""
    done = [s for s in scored if s.error_pct is not None]
    med, p90, mean = _stats(_errors(done))
    lines = [
        "# MLPerf Inference v6.0 and v6.1 as a never-fitted serving sweep",
        "",
        f"Written by `scripts/mlperf_inference_sweep.py` from "
        f"`validation/sweeps/mlperf_inference_v6.csv` ({len(scored)} closed-division "
        "datacenter LLM results on catalog accelerators; `validation/sweeps/README.md` says "
        "how each was read), each predicted with the committed training and serving "
        "calibrations (the predictions: `validation/sweeps/mlperf_inference_v6_scored.csv`). "
        "Never fitted: every result is newer than the development set (MLPerf v4.0-v5.1) "
        "and the serving hold-out (v5.1). Error: 100 (predicted - measured) / measured of "
        "the output tokens/s per chip; a result without a published layout is predicted "
        "at the search's best layout for its chips (`searched`).",
        "",
        f"Predicted: {len(done)} of {len(scored)}. Median |error| {med:.1f} %, p90 "
        f"{p90:.1f} %, mean signed {mean:+.1f} %; {_in_range(done)} measured within their "
        "estimate's likely range.",
        "",
        "## By chip",
        "",
        *_grouped(done, lambda s: (s.chip,), "chip"),
        "",
        "## By benchmark and scenario",
        "",
        *_grouped(done, lambda s: (s.model, s.scenario), "benchmark | scenario"),
        "",
        "## By round, and by where the layout came from",
        "",
        *_grouped(done, lambda s: (s.round, s.layout_source), "round | layout"),
        "",
        "## One configuration, several submissions",
        "",
        *_spread(done),
        "",
        f"## The {min(WORST, len(done))} largest errors",
        "",
        "| case | submitter, system | chip x chips | benchmark | scenario | measured | "
        "predicted | error % | layout |",
        "|---|---|---|---|---|---|---|---|---|",
        *[_row(s) for s in sorted(done, key=lambda s: -abs(s.error_pct or 0.0))[:WORST]],
        "",
        "## Every result",
        "",
        "| case | submitter, system | chip x chips | benchmark | scenario | measured | "
        "predicted | error % | layout |",
        "|---|---|---|---|---|---|---|---|---|",
        *[_row(s) for s in scored],
        "",
    ]
    return "\n".join(lines)


def report(sweep: Path = SWEEP) -> str:
    """The report of every result of ``sweep`` predicted now."""
    return render(score(sweep))


def parser() -> ScriptParser:
    return script_parser(__file__, __doc__, "writes docs/mlperf-inference-v6.md and "
                         "validation/sweeps/mlperf_inference_v6_scored.csv")


def main(argv: list[str]) -> int:
    args = parse_argv(parser(), argv)
    if isinstance(args, int):  # --help (0), or a bad argument's one line printed (2)
        return args
    try:
        scored = score()
    except SpecError as exc:
        return bad_input(__file__, exc)
    write_scored(scored)
    REPORT.write_text(render(scored), encoding="utf-8")
    print(f"wrote {REPORT.relative_to(ROOT)} and {SCORED.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
