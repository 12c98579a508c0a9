"""Score the CPU energy hold-out set and rewrite its report.

Usage::

    .venv/bin/python scripts/cpu_energy_holdout.py [--check]

Predicts every row of ``validation/holdout/cpu_energy_holdout.csv`` (all published
SPECrate2017 energy results, built by ``scripts/build_cpu_energy_holdout.py``): each CPU by
a fit on the committed calibration rows (the development set) without any row of that
CPU. No row of the hold-out set enters any fit (``ocplan validate`` on the file would also
pool its other CPUs' rows). Reports the error per suite and the Spearman rank correlation
of the predicted energy metric with the measured one (issue 12's ranking line): per suite
over all results, over the results the development set does not hold, and per CPU; and the
spread between submitters of the same processor and socket count, which no input of a row
records. Rewrites the part of ``validation/holdout/cpu_energy.md`` between
``<!-- current:start -->`` and ``<!-- current:end -->``; ``--check`` exits 1 instead when
that part is stale. About 5 s on two cores.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from _cli import ScriptParser, parse_argv, script_parser  # scripts/ sibling

from ocplan.cpu.calibration import CpuCalibration
from ocplan.cpu.crossval import energy_ranking
from ocplan.cpu.predict import CpuPrediction
from ocplan.results.cpu_validation import cases_for, observations, predict_rows, read_cpu_cases
from ocplan.results.validation import summarize

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / "validation" / "holdout" / "cpu_energy_holdout.csv"
REPORT = ROOT / "validation" / "holdout" / "cpu_energy.md"
START, END = "<!-- current:start -->", "<!-- current:end -->"
SUITES = ("specrate2017_int_energy_base", "specrate2017_fp_energy_base")


def _suite(bench: str) -> str:
    return "int" if "_int_" in bench else "fp"


def _in_dev(row: dict[str, str]) -> bool:
    return "also development row" in row["measured_from"]


def _run_score(row: dict[str, str]) -> float:
    found = re.search(r"scored ([\d.]+) on the performance metric", row["measured_from"])
    assert found, row["case_id"]
    return float(found.group(1))


def _tester(row: dict[str, str]) -> str:
    found = re.search(r"tested by (.+?)(;|$)", row["measured_from"])
    assert found, row["case_id"]
    return found.group(1).strip()


def _scored(calibration: CpuCalibration | None = None
            ) -> tuple[list[dict[str, str]], dict[str, CpuPrediction]]:
    """The set's rows and their predictions: each CPU by a fit on the calibration rows
    without any row of that CPU, no hold-out row in any fit."""
    rows = read_cpu_cases(CSV)
    preds = predict_rows(rows, calibration, fit_file_rows=False)
    assert all(p.value is not None for p in preds.values()), \
        [p.reason for p in preds.values() if p.value is None]
    return rows, preds


def _ranking(rows: Sequence[dict[str, str]], preds: Mapping[str, CpuPrediction]
             ) -> dict[str, dict[str, float | int | None]]:
    obs = observations(rows)
    in_dev = {r["case_id"] for r in rows if _in_dev(r)}
    every = energy_ranking(obs, preds)
    new = energy_ranking([o for o in obs if o.case_id not in in_dev], preds)
    out: dict[str, dict[str, float | int | None]] = {}
    for bench in SUITES:
        out[_suite(bench)] = {
            "all": every[bench]["spearman"], "n": every[bench]["n"],
            "new": new[bench]["spearman"], "n_new": new[bench]["n"],
            "per_cpu": every[f"{bench} per CPU"]["spearman"],
            "n_cpu": every[f"{bench} per CPU"]["n"]}
    return out


def ranking(calibration: CpuCalibration | None = None
            ) -> dict[str, dict[str, float | int | None]]:
    """Per suite (``int``, ``fp``): Spearman over all results (``all``, ``n``), over the
    results the development set does not hold (``new``, ``n_new``) and per CPU
    (``per_cpu``, ``n_cpu``; :func:`~ocplan.cpu.crossval.energy_ranking`), each CPU fitted
    without its rows and no hold-out row fitted. ``calibration`` gives the intervals
    (default: the committed one)."""
    return _ranking(*_scored(calibration))


def _rho(value: float | int | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def ranking_table(rows: Sequence[dict[str, str]], preds: Mapping[str, CpuPrediction]) -> str:
    cases = cases_for(rows, preds)
    rho = _ranking(rows, preds)
    lines = ["| suite | rows | median abs error % | p90 % | mean signed % | Spearman, all "
             "results | n | Spearman, results not in the development set | n | Spearman "
             "per CPU | n |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for bench in SUITES:
        f = rho[_suite(bench)]
        s = summarize([c for c in cases if c.benchmark == bench])
        lines.append(
            f"| {_suite(bench)} | {f['n']} | {s.median_abs_error_pct:.1f} | "
            f"{s.p90_abs_error_pct:.1f} | {s.mean_signed_error_pct:+.1f} | "
            f"{_rho(f['all'])} | {f['n']} | {_rho(f['new'])} | {f['n_new']} | "
            f"{_rho(f['per_cpu'])} | {f['n_cpu']} |")
    return "\n".join(lines)


def _submitters(rows: Sequence[dict[str, str]]
                ) -> dict[tuple[str, str, str], dict[str, dict[str, str]]]:
    """(suite, cpu, sockets) -> submitter -> its best-energy result, where two or more
    submitters published one."""
    groups: dict[tuple[str, str, str], dict[str, dict[str, str]]] = defaultdict(dict)
    for r in rows:
        key = (_suite(r["benchmark"]), r["cpu"], r["sockets"])
        best = groups[key].get(_tester(r))
        if best is None or float(r["value"]) > float(best["value"]):
            groups[key][_tester(r)] = r
    return {k: v for k, v in groups.items() if len(v) >= 2}


def submitter_spread() -> tuple[float, float]:
    """Smallest and largest ratio of the best to the worst submitter's energy metric for
    the same processor, socket count and suite."""
    ratios = [max(float(r["value"]) for r in t.values()) /
              min(float(r["value"]) for r in t.values())
              for t in _submitters(read_cpu_cases(CSV)).values()]
    return min(ratios), max(ratios)


def spread_table(rows: Sequence[dict[str, str]]) -> str:
    """Same processor, sockets and suite, different submitters: the energy metric and the
    run's score of each submitter's best-energy result."""
    groups = _submitters(rows)
    lines = ["| suite | processor | sockets | submitter: energy metric (run score) | "
             "energy high / low | score high / low |", "|---|---|---|---|---|---|"]
    for (suite, cpu, sockets), testers in sorted(groups.items()):
        ordered = sorted(testers.items(), key=lambda t: -float(t[1]["value"]))
        cells = "; ".join(f"{t}: {float(r['value']):,.0f} ({_run_score(r):,.0f})"
                          for t, r in ordered)
        hi, lo = ordered[0][1], ordered[-1][1]
        lines.append(f"| {suite} | {cpu} | {sockets} | {cells} | "
                     f"{float(hi['value']) / float(lo['value']):.2f} | "
                     f"{_run_score(hi) / _run_score(lo):.2f} |")
    return "\n".join(lines)


def section() -> str:
    rows, preds = _scored()
    return "\n".join([
        START, "## Current score", "",
        f"Written by `scripts/cpu_energy_holdout.py` from `{CSV.name}` ({len(rows)} results); "
        "each CPU predicted by a fit on the development rows without any row of that CPU; "
        "no row of this set enters any fit.", "",
        ranking_table(rows, preds), "",
        "### The same processor from two submitters", "",
        "Each submitter's best energy result; nothing in a row's inputs tells them apart "
        "(the power settings of a run are not columns of the layout).", "",
        spread_table(rows), "", END])


def rewrite(text: str, body: str) -> str:
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return head + body + tail


def parser() -> ScriptParser:
    """The command line: ``--check`` or nothing."""
    p = script_parser(__file__, __doc__,
                      f"Rewrites the current score of {REPORT.relative_to(ROOT)}.")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 when the report's current score is stale "
                        "(default: rewrite it)")
    return p


def main(argv: list[str]) -> int:
    args = parse_argv(parser(), argv)
    if isinstance(args, int):  # --help (0), or a bad argument's one line printed (2)
        return args
    text = REPORT.read_text(encoding="utf-8")
    body = section()
    new = rewrite(text, body)
    if args.check:
        if new != text:
            print(f"{REPORT.relative_to(ROOT)} is stale: run scripts/cpu_energy_holdout.py",
                  file=sys.stderr)
            return 1
        return 0
    REPORT.write_text(new, encoding="utf-8")
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
