"""HTML reports whose plots work offline: data inlined, Plotly either inlined (one file of
about 5 MB) or in one shared file beside the reports (each page then well under 1 MB)."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocplan.plan.estimate import Estimate
from ocplan.plan.sensitivity import Sensitivity
from ocplan.reports.figures import (
    SERVING_COMPARE_BARS,
    breakdown_figure,
    cluster_figure,
    compare_bars_figure,
    compare_pareto_figure,
    goodput_figure,
    match_figure,
    memory_figure,
    pareto_figure,
    power_flow_figure,
    sensitivity_figure,
    serving_breakdown_figure,
    serving_curve_figure,
    serving_sensitivity_figure,
    timeline_figure,
    topology_figure,
)
from ocplan.reports.summary import (
    COMPARE_ROWS,
    SEARCH_COLUMNS,
    SERVING_COMPARE_ROWS,
    CompareRow,
    compared_text,
    estimate_rows,
    job_text,
    present,
    search_table,
    serving_rows,
)
from ocplan.serving.estimate import ServingCurve, ServingEstimate
from ocplan.serving.sensitivity import ServingSensitivity
from ocplan.units import DEFAULT_CURRENCY, format_money, format_quantity

__all__ = ["PLOTLY_FILE", "ReportData", "plotly_js_path", "render_compare_report",
           "render_match_report", "render_report", "render_serving_report"]

#: The shared Plotly file a report references from beside itself (one per folder).
PLOTLY_FILE = "ocplan-plotly.min.js"


def plotly_js_path() -> Path:
    """plotly.min.js as shipped inside the plotly Python package (no CDN)."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; }}
th {{ white-space: nowrap; }}
tr.part th {{ padding-left: 1.8em; font-weight: normal; color: #555; }}
.fig {{ margin: 1em 0; }}
</style>
{plotly}
</head><body>
<h1>{title}</h1>
{summary}
{figures}
<script>
const FIGURES = {data};
for (const [id, fig] of Object.entries(FIGURES)) {{
  Plotly.newPlot(id, fig.data, fig.layout, {{displayModeBar: false, staticPlot: false}});
}}
</script>
</body></html>
"""


def _table(rows: list[tuple[str, str]]) -> str:
    """Summary rows as a two-column table; a label indented by two spaces (a part of the
    row above it, :mod:`ocplan.reports.summary`) is set in from its heading."""
    body = "".join(("<tr class=\"part\">" if k.startswith("  ") else "<tr>")
                   + f"<th>{html.escape(k.strip())}</th><td>{html.escape(v)}</td></tr>"
                   for k, v in rows)
    return f"<table>{body}</table>"


def _grid(title: str, header: list[str], rows: list[list[str]]) -> str:
    """A titled table with a header row."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<h2>{html.escape(title)}</h2><table><tr>{head}</tr>{body}</table>"


def _plotly_tag(plotly_js: Path | None) -> str:
    """Plotly inlined from ``plotly_js``, or (None) the shared :data:`PLOTLY_FILE`."""
    if plotly_js is None:
        return f'<script src="{PLOTLY_FILE}"></script>'
    return f"<script>{plotly_js.read_text(encoding='utf-8')}</script>"


@dataclass(frozen=True)
class ReportData:
    """Everything a training report shows."""

    title: str
    result: Estimate
    timeline: list[dict[str, Any]]
    topology: dict[str, Any]
    findings: list[dict[str, str]] = field(default_factory=list)
    """The system's compliance findings (rule, severity, message, where)."""
    search: dict[str, Any] | None = None
    to_train: dict[str, float] = field(default_factory=dict)
    """``time_to_train_s``, ``energy_to_train_J``, ``cost_to_train`` when asked for."""
    micro_batches: int | None = None
    """Micro-batches of a step (the timeline draws at most the first 32)."""
    allowed_invalid: bool = False
    """The system fails a check and was estimated because the user asked for it."""
    cluster: dict[str, Any] | None = None
    """Facility and goodput (:meth:`~ocplan.results.cluster.ClusterOutlook.as_json`)."""
    currency: str = DEFAULT_CURRENCY
    """Label of the prices' currency, printed with costs."""
    sensitivity: Sensitivity | None = None
    """What each hardware resource buys the step (None: the layout cannot run)."""
    job: dict[str, object] | None = None
    """The job the report answers (:func:`ocplan.api.job_json`: model, batch, sequence,
    options)."""
    experts: int = 0
    """The model's routed experts (0 for a dense model): what a memory hint may name."""

    def as_json(self) -> dict[str, Any]:
        return {"title": self.title, "currency": self.currency, "job": self.job,
                "estimate": self.result.as_dict(),
                "sensitivity": None if self.sensitivity is None else self.sensitivity.as_dict(),
                "allowed_invalid": self.allowed_invalid, "cluster": self.cluster,
                "to_train": self.to_train, "findings": self.findings, "search": self.search,
                "topology": {k: v for k, v in self.topology.items() if k != "cluster"}}


def _summary_rows(d: ReportData) -> list[tuple[str, str]]:
    result = d.result
    if d.search is not None and d.search.get("best") is None:
        # the search found no layout: the estimate is of the flags' layout, which the
        # user did not ask for; the search's row says why nothing fits
        return [*((("job", job_text(d.job)),) if d.job is not None else ()),
                ("layout", "none fits (see 'search')")]
    # the rows the CLI table and the workbench show (ocplan.reports.summary)
    rows = estimate_rows(result, d.to_train, d.currency, job=d.job, experts=d.experts)
    # the report's own rows go after the layout's (the job's, when given, comes first)
    at = 2 if d.job is not None else 1
    if d.allowed_invalid:
        rows.insert(at, ("INVALID SYSTEM", "estimated anyway (--allow-invalid): the check "
                                          "findings below are not accounted for"))
    if not result.feasible:
        return [*rows[:at], ("infeasible", result.reason or ""), *rows[at:]]
    if d.sensitivity is not None:
        rows.append(("what resources buy", d.sensitivity.summary()))
    errors = sum(f.get("severity") == "error" for f in d.findings)
    rows.append(("check findings", f"{len(d.findings)} ({errors} errors)"))
    return rows


def _top_table(search: dict[str, Any], currency: str) -> str:
    """The search's top layouts, in the columns declared once for every surface
    (:data:`~ocplan.reports.summary.SEARCH_COLUMNS`) that some row has."""
    header, rows = search_table(SEARCH_COLUMNS, search["top"], currency)
    return _grid(f"Top layouts ({search['objective']})", header, rows)


def render_report(d: ReportData, plotly_js: Path | None) -> str:
    """The report page as one string; Plotly inlined from ``plotly_js``, or referenced
    from the shared :data:`PLOTLY_FILE` beside the page when None."""
    figures: dict[str, Any] = {}
    result = d.result
    if result.feasible:
        figures["breakdown"] = breakdown_figure(result)
        figures["memory"] = memory_figure(result)
        if d.timeline:
            figures["timeline"] = timeline_figure(d.timeline, d.micro_batches,
                                                  result.pipeline_runs)
        if d.sensitivity is not None:
            figures["sensitivity"] = sensitivity_figure(d.sensitivity)
    figures["topology"] = topology_figure(d.topology)
    if d.topology.get("cluster", {}).get("nodes"):
        figures["cluster"] = cluster_figure(d.topology)
    rows = _summary_rows(d)
    extra = ""
    if d.search is not None:
        figures["pareto"] = pareto_figure(d.search)
        rows.append(("search", d.search.get("why", "")))
        if d.search.get("top"):
            extra += _top_table(d.search, d.currency)
    if d.cluster is not None and result.feasible:
        extra += _cluster_section(d.cluster)
        figures["power_flow"] = power_flow_figure(d.cluster["facility"]["power_flow"])
        if d.cluster["goodput"] is not None:
            figures["goodput"] = goodput_figure(d.cluster["goodput"]["fractions"])
    extra += _grid("Check findings", ["rule", "severity", "message", "where"],
                   [[f.get("rule", ""), f.get("severity", ""), f.get("message", ""),
                     f.get("section", "")] for f in d.findings]) if d.findings else \
        "<h2>Check findings</h2><p>none</p>"
    return _page(d.title, rows, figures, plotly_js, extra)


def _cluster_section(cluster: dict[str, Any]) -> str:
    """The facility and goodput of a report, as a titled table."""
    f = cluster["facility"]
    least = "at least " if "racks_per_server" in f and f["racks_per_server"] is None else ""
    rows = [("racks", f"{least}{f['racks']:,} in {f['rows']:,} rows, "
                      f"{f['floor_area_m2']:,.0f} m2; "
                      f"{format_quantity(f['rack_W'], 'W')} per "
                      f"{'server' if least else 'rack'}"),
            ("heat to liquid / air", f"{format_quantity(f['liquid_W'], 'W')} / "
                                     f"{format_quantity(f['air_W'], 'W')}")]
    if f["cdus"]:  # an air-cooled system has no coolant loop to describe
        rows.append(("CDUs", f"{f['cdus']} x {f['cdu']}; {f['coolant_flow_L_per_min']:,.0f} "
                             f"L/min of {f['coolant']} at dT {f['coolant_delta_T_K']:.1f} K; "
                             f"water class {f['water_class']}"))
    rows += [("rack busbar", f"{f['busbar_current_A']:,.0f} A on {f['busbar']}"),
             ("PUE", f"{f['pue']:.2f} (derived {f['pue_derived']:.2f})"),
             ("facility power", format_quantity(f["facility_W"], "W"))]
    g = cluster["goodput"]
    if g is None:
        rows.append(("goodput", cluster.get("goodput_reason") or "-"))
    else:
        rows.append(("goodput", f"{g['goodput']:.1%} ({g['expected_failures']:,.1f} failures "
                                "expected)"))
        if g["wall_s"] is not None:
            rows.append(("time to train with failures", f"{g['wall_s'] / 86400:,.2f} days"))
    return "<h2>Cluster: facility and failures</h2>" + _table(rows)


def _page(title: str, rows: list[tuple[str, str]], figures: dict[str, Any],
          plotly_js: Path | None, extra: str = "") -> str:
    divs = "\n".join(f'<div class="fig" id="{name}"></div>' for name in figures)
    return _PAGE.format(title=html.escape(title), plotly=_plotly_tag(plotly_js),
                        summary=_table(rows) + extra, figures=divs,
                        data=json.dumps(figures).replace("</", "<\\/"))


def render_serving_report(title: str, result: ServingEstimate, curve: ServingCurve | None,
                          topology: dict[str, Any], plotly_js: Path,
                          sensitivity: ServingSensitivity | None = None,
                          job: Mapping[str, object] | None = None) -> str:
    """The serving section as a report page: the job (``job``:
    :func:`ocplan.api.serving_job_json`), the estimate, its throughput-latency curve, the
    iteration breakdown, what each hardware resource buys it and the system's topology."""
    figures: dict[str, Any] = {}
    # the rows the CLI table and the workbench show (ocplan.reports.summary); a report
    # carries no price, so no cost row
    rows = serving_rows(result, None, DEFAULT_CURRENCY, job=job)
    if result.feasible:
        if result.iteration is not None:
            figures["iteration"] = serving_breakdown_figure(result)
        if sensitivity is not None and sensitivity.feasible:
            rows.append(("what resources buy", sensitivity.summary()))
            figures["sensitivity"] = serving_sensitivity_figure(sensitivity)
    else:
        rows.insert(1, ("infeasible", result.reason or ""))
    if curve is not None:
        figures["curve"] = serving_curve_figure(
            curve, result.tpot_s if result.feasible else None,
            result.output_tokens_per_s_per_chip if result.feasible else None,
            None if result.latency_range is None else result.latency_range.tpot_s)
    figures["topology"] = topology_figure(topology)
    return _page(title, rows, figures, plotly_js)


def _side_by_side(systems: list[dict[str, Any]], rows: tuple[CompareRow, ...],
                  leaders: dict[str, str], baseline: str, currency: str) -> str:
    """The body of a comparison table: a row of ``rows`` (:data:`~ocplan.reports.summary.
    COMPARE_ROWS`, :data:`~ocplan.reports.summary.SERVING_COMPARE_ROWS`) per measure some
    system has, a cell per system as every surface prints it, with its ratio to the
    ``baseline`` row and the leader of the measure in bold."""
    body = ""
    for row in present(rows, systems):
        key = row.field
        cells = ""
        for r in systems:
            text = html.escape(compared_text(row, r, baseline, currency))
            if leaders.get(key) == r["name"]:
                text = f"<b>{text}</b>"
            cells += f"<td>{text}</td>"
        body += f"<tr><th>{html.escape(row.label)}</th>{cells}</tr>"
    return body


def render_compare_report(title: str, comparison: dict[str, Any],
                          plotly_js: Path | None, currency: str = DEFAULT_CURRENCY) -> str:
    """A comparison (:meth:`~ocplan.results.compare.Comparison.as_json`) as a report page:
    the measures side by side with ratios to the baseline and the best of each bolded,
    every system's check findings, bars and the cost-vs-time chart."""
    systems = comparison["systems"]
    leaders = comparison.get("leaders", {})
    head = "".join(f"<th>{html.escape(r['name'])}"
                   + (" (INVALID, allowed)" if r.get("allowed_invalid") else "") + "</th>"
                   for r in systems)
    body = _side_by_side(systems, COMPARE_ROWS, leaders, comparison["baseline"], currency)
    table = (f"<p>Best layout of each system by {html.escape(comparison['objective'])}; "
             f"ratios against {html.escape(comparison['baseline'])}; the best of each row "
             f"in bold.</p><table><tr><th></th>{head}</tr>{body}</table>")
    ranking = comparison.get("ranking_note")
    if ranking:
        table += f'<p class="ranking">{html.escape(ranking)}</p>'
    note = comparison.get("budget_note")
    if note:
        table += f'<p class="budget"><b>{html.escape(note)}</b></p>'

    findings = [[r["name"], f["rule"], f["severity"], f["message"]]
                for r in systems for f in r["findings"] if f["severity"] != "info"]
    extra = _grid("Check findings", ["system", "rule", "severity", "message"], findings) \
        if findings else "<h2>Check findings</h2><p>none</p>"
    figures = {"compare_bars": compare_bars_figure(comparison, currency=currency)}
    if any(r.get("time_to_train_s") is not None for r in systems):
        figures["compare_pareto"] = compare_pareto_figure(comparison, currency)
    divs = "\n".join(f'<div class="fig" id="{name}"></div>' for name in figures)
    return _PAGE.format(title=html.escape(title), plotly=_plotly_tag(plotly_js),
                        summary=table + extra, figures=divs,
                        data=json.dumps(figures).replace("</", "<\\/"))


def render_serving_compare_report(title: str, comparison: dict[str, Any],
                                  plotly_js: Path | None,
                                  currency: str = DEFAULT_CURRENCY) -> str:
    """A serving comparison (:meth:`~ocplan.results.serving_compare.ServingComparison.
    as_json`) as a report page: each system's best serving layout side by side with
    ratios to the baseline and the best of each bolded, and bars of the main measures."""
    systems = comparison["systems"]
    leaders = comparison.get("leaders", {})
    head = "".join(f"<th>{html.escape(r['name'])}</th>" for r in systems)
    body = _side_by_side(systems, SERVING_COMPARE_ROWS, leaders, comparison["baseline"],
                         currency)
    note = comparison.get("note")
    table = (f"<p>Best serving layout of each system by "
             f"{html.escape(comparison['objective'])}; ratios against "
             f"{html.escape(comparison['baseline'])}; the best of each row in bold.</p>"
             f"<table><tr><th></th>{head}</tr>{body}</table>"
             + (f'<p class="note">{html.escape(note)}</p>' if note else ""))
    ranking = comparison.get("ranking_note")
    if ranking:
        table += f'<p class="ranking">{html.escape(ranking)}</p>'

    figures = {"serving_compare_bars": compare_bars_figure(comparison,
                                                           SERVING_COMPARE_BARS, currency)}
    divs = "\n".join(f'<div class="fig" id="{name}"></div>' for name in figures)
    return _PAGE.format(title=html.escape(title), plotly=_plotly_tag(plotly_js),
                        summary=table, figures=divs,
                        data=json.dumps(figures).replace("</", "<\\/"))


def render_match_report(match: dict[str, Any], plotly_js: Path | None, top: int = 15) -> str:
    """A CPU platform match (:meth:`~ocplan.matching.MatchResult.as_json`) as a report
    page: the best ``top`` platforms with fleet, power, energy cost, TCO and efficiency
    (and the line saying why they are ranked by another objective than the one asked),
    the notes of each (capacity flags, module check warnings), why the others cannot
    serve the mix or are not modelled, and the perf/kW against perf/cost chart (or why
    it has no points)."""
    from ocplan.matching.match import match_notes

    cur = match["currency"]
    served = [r for r in match["platforms"] if r["feasible"]]
    rows = [[str(i), r["platform"], r["isa"], str(r["sockets"]), f"{r['servers']:,}",
             r["binding"] or "-", format_quantity(r["fleet_power_W"], "W"),
             _match_money(r["energy_cost"], cur), _match_money(r["tco"], cur),
             f"{r['perf_per_kW']:.3g}",
             "-" if r["perf_per_cost"] is None else f"{r['perf_per_cost']:.3g}",
             match_notes(r["flags"], r["findings"])]
            for i, r in enumerate(served[:top], 1)]
    total = len(served) + match.get("left_out", 0)
    which = "all" if len(rows) == total else f"of {total}"
    table = _grid(f"Best {len(rows)} platforms by {match['objective']} ({which} that serve "
                  "the mix)",
                  ["#", "platform", "ISA", "sockets", "servers", "binding", "power at load",
                   "energy cost", "TCO", "perf/kW", "perf/cost", "notes"], rows)
    if match.get("objective_note"):
        table += f"<p>{html.escape(match['objective_note'])}</p>"
    table += ("<p>perf/kW: the share of the whole mix one server serves per kW at full "
              f"load; perf/cost: per million {html.escape(cur)} of its price.</p>")
    refused = [[r["platform"], r["reason"] or ""] for r in match["platforms"]
               if not r["feasible"]]
    if refused:
        table += _grid("Platforms that cannot serve the mix or are not modelled",
                       ["platform", "why"], refused)
    figures = {"match": match_figure(match)}
    divs = "\n".join(f'<div class="fig" id="{name}"></div>' for name in figures)
    return _PAGE.format(title=html.escape(f"ocplan match: {match['name']}"),
                        plotly=_plotly_tag(plotly_js), summary=table, figures=divs,
                        data=json.dumps(figures).replace("</", "<\\/"))


def _match_money(amount: float | None, currency: str) -> str:
    return "-" if amount is None else format_money(amount, currency)
