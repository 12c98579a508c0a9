"""Serving latencies at a published load: every MLPerf Server and Interactive result with a
published layout whose log gives its mean TTFT and TPOT (the development set, the serving
hold-out and the MLPerf Inference v6 sweep), estimated at the result's own arrival rate
and compared with the measured means and 99th percentiles.

Usage::

    .venv/bin/python scripts/serving_latency.py   # writes docs/serving-latency.md

The serving calibration is fitted on throughputs (the highest rate meeting a result's
SLOs); the latencies the model gives at a load were never fitted. Here each result's
measured rate (output tokens/s over the chips, divided by its mean answer length, as
Poisson arrivals) is given to the estimate of its published layout, and the mean TTFT and
TPOT it answers are set against the log's (``means TTFT / TPOT ms`` in the row's
``measured_from``), the p99s against the row's ``ttft_ms`` and ``tpot_ms``. A result
whose rate the model says its layout cannot keep up with is counted as ``overloaded``
(the model's capacity is below the measured rate), with no latency.
"""

from __future__ import annotations

import re
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

from _cli import ScriptParser, bad_input, parse_argv, script_parser  # scripts/ sibling

from ocplan.catalog.catalog import load_catalog
from ocplan.errors import SpecError
from ocplan.plan.calibration import load_calibration
from ocplan.plan.engine import chip_peaks, system_model
from ocplan.results.serving_validation import (
    PreparedServing,
    prepare_serving_row,
    published_plan,
    read_serving_cases,
)
from ocplan.serving.calibration import load_serving_calibration
from ocplan.serving.estimate import estimate_serving, with_latency_range
from ocplan.serving.plan import ServingPlan
from ocplan.serving.step import step_model

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "validation" / "inference_dev.csv"
HOLDOUT = ROOT / "validation" / "holdout" / "inference_holdout.csv"
SWEEP = ROOT / "validation" / "sweeps" / "mlperf_inference_v6.csv"
REPORT = ROOT / "docs" / "serving-latency.md"
#: The means a row's source notes read from its MLPerf log: TTFT, then TPOT, ms.
MEANS = re.compile(r"means ([\d.]+) / ([\d.]+) ms")
#: Scenarios run at an arrival rate (MLPerf Server and Interactive: Poisson).
LOADED = ("server", "interactive")
MS = 1e-3


@dataclass(frozen=True)
class Latency:
    """One result: its measured latencies, ms, and the estimate's at its rate (None
    where the model's layout cannot keep up with it)."""

    case_id: str
    chip: str
    model: str
    scenario: str
    rate_per_s: float
    """Requests/s of the whole deployment, as measured."""
    ttft_mean_ms: float
    tpot_mean_ms: float
    ttft_p99_ms: float | None
    tpot_p99_ms: float | None
    predicted_ttft_mean_ms: float | None
    predicted_tpot_mean_ms: float | None
    predicted_ttft_p99_ms: float | None
    predicted_tpot_p99_ms: float | None
    status: str
    """``ok``, or ``overloaded``: the model serves less than the measured rate."""
    iteration_ms: float | None = None
    """The measured iteration, the mean TPOT (one stage, no speculation; else None)."""
    predicted_iteration_ms: float | None = None
    """The model's iteration at the measured operating point (:func:`operating_point`)."""
    likely_ttft_mean_ms: tuple[float | None, float | None] | None = None
    """The estimate's likely mean TTFT at the rate (:mod:`ocplan.serving.latency_range`:
    the iteration at the fast and the slow end of the family's held-out range; None at
    an end the rate overloads); None without a range."""
    likely_tpot_mean_ms: tuple[float | None, float | None] | None = None
    """As :attr:`likely_ttft_mean_ms`, of the mean TPOT."""

    def within_likely(self, which: str) -> bool | None:
        """Whether the logged mean (``which``: ``ttft`` or ``tpot``) lies in the
        estimate's likely range: at or above its fast end, and at or below its slow end
        unless the slow end overloads (unbounded); outside where even the fast end
        overloads (the layout served a rate the range says it cannot). None without a
        range."""
        span = getattr(self, f"likely_{which}_mean_ms")
        if span is None:
            return None
        low, high = span
        value = getattr(self, f"{which}_mean_ms")
        return low is not None and low <= value and (high is None or value <= high)


def _num(text: str) -> float | None:
    return float(text) if text.strip() else None


def _pct(pred: float | None, meas: float | None) -> float | None:
    return None if pred is None or not meas else 100.0 * (pred / meas - 1.0)


def rows(paths: Iterable[Path] = (DEV, HOLDOUT, SWEEP)) -> list[dict[str, str]]:
    """The rows of ``paths`` (read and checked as ``ocplan validate`` reads them) run at
    a rate whose source gives mean TTFT and TPOT."""
    return [r for path in paths for r in read_serving_cases(path)
            if r["scenario"] in LOADED and MEANS.search(r["measured_from"])]


def measure(rows: Iterable[dict[str, str]]) -> list[Latency]:
    """Every row with a published layout, estimated at its measured rate."""
    catalog = load_catalog()
    out = []
    for r in rows:
        p = prepare_serving_row(r, catalog)
        plan = published_plan(p)
        if plan is None or p.role != "aggregated":
            continue
        means = MEANS.search(r["measured_from"])
        assert means is not None, r["case_id"]
        rate = float(r["measured_output_tokens_per_s_per_chip"]) * p.chips \
            / p.workload.output_len
        loaded = replace(p.workload, load="poisson", rate_per_s=rate)
        est = with_latency_range(estimate_serving(loaded, plan, p.system), loaded, p.system)
        ok = est.feasible and est.bound != "queueing"

        def ms(value: float | None, ok: bool = ok) -> float | None:
            return None if not ok or value is None else value / MS

        tpot_ms = float(means.group(2))
        iteration = _iteration_at(p, plan, rate, tpot_ms * MS)
        span = est.latency_range

        def ends(pair: tuple[float | None, float | None]) -> tuple[float | None, float | None]:
            return ms(pair[0], True), ms(pair[1], True)

        out.append(Latency(
            r["case_id"], r["chip"], r["model"], r["scenario"], rate,
            float(means.group(1)), tpot_ms, _num(r["ttft_ms"]),
            _num(r["tpot_ms"]), ms(est.ttft_s), ms(est.tpot_s), ms(est.ttft_stat_s),
            ms(est.tpot_stat_s), "ok" if ok else "overloaded",
            None if iteration is None else tpot_ms,
            None if iteration is None else iteration / MS,
            None if span is None else ends(span.ttft_s),
            None if span is None else ends(span.tpot_s)))
    return out


def operating_point(p: PreparedServing, plan: ServingPlan, rate_per_s: float,
                    iteration_s: float) -> tuple[float, float, float]:
    """(prompt tokens, prompts, decoding sequences) of one instance's mean iteration
    where requests arrive at ``rate_per_s`` over the deployment and an iteration takes
    ``iteration_s``, by Little's law: a request decodes for ``O`` iterations, so
    ``lambda O t`` sequences decode at once, and ``lambda t`` prompts of ``I`` tokens
    (less prefix hits) enter each iteration (``lambda`` per instance)."""
    wl = p.workload
    lam = rate_per_s / plan.instances
    prompts = lam * iteration_s
    return prompts * wl.prefill_len, prompts, lam * wl.output_len * iteration_s


def _iteration_at(p: PreparedServing, plan: ServingPlan, rate_per_s: float,
                  tpot_s: float) -> float | None:
    """The model's iteration, s, at the operating point the measured mean TPOT gives
    (:func:`operating_point`); None for several stages or speculation, whose TPOT is
    not one iteration."""
    wl = p.workload
    if plan.pp != 1 or wl.spec_tokens:
        return None
    sm = system_model(p.system)
    model = step_model(wl, plan, sm, chip_peaks(sm, "bf16"), load_calibration(),
                       load_serving_calibration())
    tokens, prompts, seqs = operating_point(p, plan, rate_per_s, tpot_s)
    it = model.iteration(tokens, max(prompts, 1.0), seqs, seqs * wl.running_context)
    return float(it.total_s[0])


class Measure(NamedTuple):
    """One comparison of the report."""

    label: str
    predicted: Callable[[Latency], float | None]
    measured: Callable[[Latency], float | None]
    at_rate: bool
    """Estimated at the measured rate: only where the model keeps up with it."""


MEASURES = (
    Measure("iteration at the measured operating point", lambda x: x.predicted_iteration_ms,
            lambda x: x.iteration_ms, False),
    Measure("TPOT, mean", lambda x: x.predicted_tpot_mean_ms, lambda x: x.tpot_mean_ms, True),
    Measure("TPOT, p99", lambda x: x.predicted_tpot_p99_ms, lambda x: x.tpot_p99_ms, True),
    Measure("TTFT, mean", lambda x: x.predicted_ttft_mean_ms, lambda x: x.ttft_mean_ms, True),
    Measure("TTFT, p99", lambda x: x.predicted_ttft_p99_ms, lambda x: x.ttft_p99_ms, True),
)


def _summary(ls: Sequence[Latency]) -> list[str]:
    """Per measure: results compared, median |error|, p90 |error|, median signed, %
    (the latencies at the measured rate where the model keeps up with it; the iteration
    at the measured operating point everywhere)."""
    lines = ["| measure | results | median abs % | p90 abs % | median signed % |",
             "|---|---|---|---|---|"]
    for label, pred, meas, at_rate in MEASURES:
        errs = [e for x in ls if (x.status == "ok" or not at_rate)
                and (e := _pct(pred(x), meas(x))) is not None]
        if not errs:
            continue
        a = sorted(abs(e) for e in errs)
        p90 = a[min(len(a) - 1, round(0.9 * (len(a) - 1)))]
        lines.append(f"| {label} | {len(errs)} | {statistics.median(a):.1f} | {p90:.1f} | "
                     f"{statistics.median(errs):+.1f} |")
    return lines


def _by_group(ls: Sequence[Latency]) -> list[str]:
    """Median signed error of the mean TPOT and TTFT per benchmark, scenario and chip."""
    groups: dict[tuple[str, str, str], list[Latency]] = defaultdict(list)
    for x in ls:
        groups[(x.model, x.scenario, x.chip)].append(x)
    lines = ["| benchmark | scenario | chip | results | overloaded | iteration at the "
             "operating point, median signed % | TPOT mean, median signed % | TTFT mean, "
             "median signed % |", "|---|---|---|---|---|---|---|---|"]
    for (model, scenario, chip), xs in sorted(groups.items()):
        its = [e for x in xs
               if (e := _pct(x.predicted_iteration_ms, x.iteration_ms)) is not None]
        tpot = [e for x in xs if (e := _pct(x.predicted_tpot_mean_ms, x.tpot_mean_ms))
                is not None]
        ttft = [e for x in xs if (e := _pct(x.predicted_ttft_mean_ms, x.ttft_mean_ms))
                is not None]
        lines.append(f"| {model} | {scenario} | {chip} | {len(xs)} | "
                     f"{sum(x.status == 'overloaded' for x in xs)} | "
                     + (_signed(statistics.median(its)) if its else "") + " | "
                     + (_signed(statistics.median(tpot)) if tpot else "") + " | "
                     + (_signed(statistics.median(ttft)) if ttft else "") + " |")
    return lines


#: Signed errors from this many % up are printed as a bound (a queue near capacity).
LARGEST_SHOWN_PCT = 1e4


def _signed(pct: float) -> str:
    return f"{pct:+.1f}" if pct < LARGEST_SHOWN_PCT else f"> +{LARGEST_SHOWN_PCT:,.0f}"


#: Latencies from this many ms up are printed as a bound: a rate a hair below the
#: layout's capacity queues for hours in the model.
LONGEST_SHOWN_MS = 1e6


def _cell(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.1f}" if value < LONGEST_SHOWN_MS else f"> {LONGEST_SHOWN_MS:,.0f}"


def _span(span: tuple[float | None, float | None] | None) -> str:
    """A likely range's two ends, ms; "overloaded" at an end the rate overloads."""
    if span is None:
        return ""
    return " to ".join("overloaded" if v is None else _cell(v) for v in span)


def likely_counts(ls: Sequence[Latency], which: str) -> tuple[int, int, int, int, int]:
    """Of the results with a likely range for ``which`` (``ttft`` or ``tpot``): those
    whose logged mean it holds, those below its fast end, above its slow end, those
    whose fast end already overloads, and those whose slow end does (unbounded above)."""
    spans = [(getattr(x, f"{which}_mean_ms"), getattr(x, f"likely_{which}_mean_ms"), x)
             for x in ls]
    spans = [(v, s, x) for v, s, x in spans if s is not None]
    return (sum(bool(x.within_likely(which)) for _, _, x in spans),
            sum(s[0] is not None and v < s[0] for v, s, _ in spans),
            sum(s[1] is not None and v > s[1] for v, s, _ in spans),
            sum(s[0] is None for _, s, _ in spans),
            sum(s[1] is None for _, s, _ in spans))


def _likely_lines(ls: Sequence[Latency]) -> list[str]:
    """How often the estimate's likely latency range at the rate held the logged mean."""
    judged = sum(x.likely_tpot_mean_ms is not None for x in ls)
    lines = ["| mean | results | held | below the fast end | above the slow end | fast end "
             "overloaded | slow end overloaded |", "|---|---|---|---|---|---|---|"]
    for which, label in (("tpot", "TPOT"), ("ttft", "TTFT")):
        held, below, above, fast_over, slow_over = likely_counts(ls, which)
        lines.append(f"| {label} | {judged} | {held} | {below} | {above} | {fast_over} | "
                     f"{slow_over} |")
    return lines


def _row(x: Latency) -> str:
    return (f"| {x.case_id} | {x.chip} | {x.model} | {x.scenario} | {x.rate_per_s:,.2f} | "
            f"{_cell(x.tpot_mean_ms)} | {_cell(x.predicted_tpot_mean_ms)} | "
            f"{_span(x.likely_tpot_mean_ms)} | "
            f"{_cell(x.tpot_p99_ms)} | {_cell(x.predicted_tpot_p99_ms)} | "
            f"{_cell(x.ttft_mean_ms)} | {_cell(x.predicted_ttft_mean_ms)} | "
            f"{_cell(x.ttft_p99_ms)} | {_cell(x.predicted_ttft_p99_ms)} | {x.status} |")


def render(ls: Sequence[Latency]) -> str:
    """The report: the error of each latency overall, by benchmark, scenario and chip,
    and every result."""
    ok = [x for x in ls if x.status == "ok"]
    over = len(ls) - len(ok)
    return "\n".join([
        "# Serving latencies at a published load",
        "",
        "Written by `scripts/serving_latency.py`. Every MLPerf Server and Interactive "
        "result with a published layout whose log gives its mean TTFT and TPOT "
        "(`../shared/validation/inference_dev.csv`, "
        "`validation/holdout/inference_holdout.csv`, "
        "`validation/sweeps/mlperf_inference_v6.csv`), estimated at its own measured "
        "rate (Poisson arrivals) with its published layout. The serving calibration is "
        "fitted on throughputs; these latencies never were. Error: 100 (predicted - "
        "measured) / measured.",
        "",
        f"{len(ls)} results; the model keeps up with the measured rate on {len(ok)} "
        f"and not on {over} (its capacity for the layout is below the rate: no latency).",
        "",
        *_summary(ls),
        "",
        "The first line is the well-conditioned check: the model's iteration at the "
        "operating point the measured rate and mean TPOT give by Little's law "
        "(`lambda O t` sequences decoding, `lambda t` prompts entering each iteration of "
        "`t` = the mean TPOT; one stage, no speculation). The latencies at the measured "
        "rate are not: MLPerf results run close to their layout's capacity, where the "
        "batch a rate holds, `lambda O t(B)`, turns a small error of the iteration's "
        "slope into a large one of the batch and so of the latency.",
        "",
        "## The likely range at the rate",
        "",
        "What an estimate at a Poisson rate shows beside its latencies "
        "(`ocplan.serving.latency_range`): the operating point solved again with every "
        "iteration term at either end of the chip family's held-out throughput error "
        "range (where 80 % of its published serving results fell, each predicted by a fit "
        "without its source group). An end where the rate reaches the layout's capacity "
        "is overloaded: past a slow end so, the range is unbounded above; a result whose "
        "fast end already overloads is outside it (it was served).",
        "",
        *_likely_lines(ls),
        "",
        "## By benchmark, scenario and chip",
        "",
        *_by_group(ls),
        "",
        "## Every result",
        "",
        "| case | chip | benchmark | scenario | requests/s | TPOT mean, measured ms | "
        "predicted | likely | TPOT p99, measured | predicted | TTFT mean, measured ms | "
        "predicted | TTFT p99, measured | predicted | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *[_row(x) for x in ls],
        "",
    ])


def parser() -> ScriptParser:
    return script_parser(__file__, __doc__, "writes docs/serving-latency.md")


def main(argv: list[str]) -> int:
    args = parse_argv(parser(), argv)
    if isinstance(args, int):  # --help (0), or a bad argument's one line printed (2)
        return args
    try:
        text = render(measure(rows()))
    except SpecError as exc:
        return bad_input(__file__, exc)
    REPORT.write_text(text, encoding="utf-8")
    print(f"wrote {REPORT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
