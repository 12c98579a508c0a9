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

import math
import re
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from ocplan.cpu.crossval import spearman
from ocplan.results.cpu_validation import CpuCase, read_cpu_cases, run_cpu_validation
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


def _rho(cases: Sequence[CpuCase]) -> str:
    rho = _rho_value(cases)
    return "-" if rho is None else f"{rho:.2f}"


def _per_cpu(cases: Sequence[CpuCase]) -> list[CpuCase]:
    """One pseudo-case per CPU: geometric means of its results (1P, 2P, submitters)."""
    groups: dict[str, list[CpuCase]] = defaultdict(list)
    for c in cases:
        if c.predicted is not None:
            groups[c.cpu].append(c)
    out = []
    for cpu, group in sorted(groups.items()):
        pred = math.exp(sum(math.log(c.predicted or 1.0) for c in group) / len(group))
        meas = math.exp(sum(math.log(c.measured) for c in group) / len(group))
        out.append(CpuCase(case_id=cpu, source="", cpu=cpu, family=group[0].family,
                           benchmark=group[0].benchmark, metric="", unit="", measured=meas,
                           predicted=pred, error_pct=100.0 * (pred / meas - 1.0),
                           status="ok", reason=None))
    return out


def _rho_value(cases: Sequence[CpuCase]) -> float | None:
    ok = [c for c in cases if c.predicted is not None]
    return spearman([c.predicted for c in ok if c.predicted is not None],
                    [c.measured for c in ok])


def ranking() -> dict[str, dict[str, float | int | None]]:
    """Per suite (``int``, ``fp``): Spearman over all results (``all``, ``n``), over the
    results the development set does not hold (``new``, ``n_new``) and per CPU
    (``per_cpu``, ``n_cpu``), each CPU fitted without its rows and no hold-out row fitted."""
    rows = read_cpu_cases(CSV)
    by_id = {r["case_id"]: r for r in rows}
    cases = run_cpu_validation(rows, fit_file_rows=False)
    out: dict[str, dict[str, float | int | None]] = {}
    for bench in SUITES:
        group = [c for c in cases if c.benchmark == bench]
        new = [c for c in group if not _in_dev(by_id[c.case_id])]
        cpus = _per_cpu(group)
        out[_suite(bench)] = {"all": _rho_value(group), "n": len(group), "new": _rho_value(new),
                              "n_new": len(new), "per_cpu": _rho_value(cpus),
                              "n_cpu": len(cpus)}
    return out


def ranking_table(rows: Sequence[dict[str, str]], cases: Sequence[CpuCase]) -> str:
    by_id = {r["case_id"]: r for r in rows}
    lines = ["| suite | rows | median abs error % | p90 % | mean signed % | Spearman, all "
             "results | n | Spearman, results not in the development set | n | Spearman "
             "per CPU | n |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for bench in SUITES:
        group = [c for c in cases if c.benchmark == bench]
        new = [c for c in group if not _in_dev(by_id[c.case_id])]
        cpus = _per_cpu(group)
        s = summarize(group)
        lines.append(
            f"| {_suite(bench)} | {len(group)} | {s.median_abs_error_pct:.1f} | "
            f"{s.p90_abs_error_pct:.1f} | {s.mean_signed_error_pct:+.1f} | {_rho(group)} | "
            f"{len(group)} | {_rho(new)} | {len(new)} | {_rho(cpus)} | {len(cpus)} |")
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
    rows = read_cpu_cases(CSV)
    cases = run_cpu_validation(rows, fit_file_rows=False)
    assert all(c.status == "ok" for c in cases), [c.reason for c in cases if c.status != "ok"]
    return "\n".join([
        START, "## Current score", "",
        f"Written by `scripts/cpu_energy_holdout.py` from `{CSV.name}` ({len(rows)} results); "
        "each CPU predicted by a fit on the development rows without any row of that CPU; "
        "no row of this set enters any fit.", "",
        ranking_table(rows, cases), "",
        "### The same processor from two submitters", "",
        "Each submitter's best energy result; nothing in a row's inputs tells them apart "
        "(the power settings of a run are not columns of the layout).", "",
        spread_table(rows), "", END])


def rewrite(text: str, body: str) -> str:
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return head + body + tail


def main(argv: list[str]) -> int:
    text = REPORT.read_text(encoding="utf-8")
    new = rewrite(text, section())
    if "--check" in argv:
        if new != text:
            print(f"{REPORT.relative_to(ROOT)} is stale: run scripts/cpu_energy_holdout.py",
                  file=sys.stderr)
            return 1
        return 0
    REPORT.write_text(new, encoding="utf-8")
    print(section())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
