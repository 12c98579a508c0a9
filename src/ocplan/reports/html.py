"""HTML reports whose plots work offline: data inlined, Plotly either inlined (one file of
about 5 MB) or in one shared file beside the reports (each page then well under 1 MB)."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocplan.plan.estimate import Estimate
from ocplan.reports.figures import (
    breakdown_figure,
    cluster_figure,
    memory_figure,
    pareto_figure,
    serving_breakdown_figure,
    serving_curve_figure,
    timeline_figure,
    topology_figure,
)
from ocplan.serving.estimate import ServingCurve, ServingEstimate

__all__ = ["PLOTLY_FILE", "ReportData", "render_report", "render_serving_report"]

#: The shared Plotly file a report references from beside itself (one per folder).
PLOTLY_FILE = "ocplan-plotly.min.js"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; }}
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
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
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

    def as_json(self) -> dict[str, Any]:
        return {"title": self.title, "estimate": self.result.as_dict(),
                "to_train": self.to_train, "findings": self.findings, "search": self.search,
                "topology": {k: v for k, v in self.topology.items() if k != "cluster"}}


def _summary_rows(d: ReportData) -> list[tuple[str, str]]:
    result = d.result
    rows: list[tuple[str, str]] = [("layout", result.plan.label())]
    if not result.feasible:
        return [*rows, ("infeasible", result.reason or "")]
    rows += [("step time", f"{result.step_s:.4g} s"),
             ("tokens/s per chip", f"{result.tokens_per_s_per_chip:,.1f}"),
             ("MFU", f"{result.mfu:.1%}"), ("bound", result.bound),
             ("calibration", result.calibration_family)]
    if "time_to_train_s" in d.to_train:
        rows.append(("time to train", f"{d.to_train['time_to_train_s'] / 86400:,.2f} days"))
        rows.append(("energy to train",
                     f"{d.to_train['energy_to_train_J'] / 3.6e9:,.1f} MWh (facility)"))
    if "cost_to_train" in d.to_train:
        rows.append(("cost to train", f"{d.to_train['cost_to_train']:,.0f}"))
    errors = sum(f.get("severity") == "error" for f in d.findings)
    rows.append(("check findings", f"{len(d.findings)} ({errors} errors)"))
    return rows


def _top_table(search: dict[str, Any]) -> str:
    header = ["#", "chips", "layout", "tok/s/chip", "MFU", "step s", "memory GB", "tied"]
    with_time = any("time_to_train_s" in r for r in search["top"])
    with_cost = any("cost_to_train" in r for r in search["top"])
    header += (["days to train"] if with_time else []) + (["cost"] if with_cost else [])
    rows = []
    for i, r in enumerate(search["top"], 1):
        row = [str(i), str(r["chips"]), r["layout"], f"{r['tokens_per_s_per_chip']:,.1f}",
               f"{r['mfu']:.1%}", f"{r['step_s']:.4g}",
               f"{r['memory_bytes_per_chip'] / 1e9:.1f}", str(r.get("tied", 0))]
        if with_time:
            row.append(f"{r['time_to_train_s'] / 86400:,.2f}")
        if with_cost:
            row.append(f"{r['cost_to_train']:,.0f}")
        rows.append(row)
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
            figures["timeline"] = timeline_figure(d.timeline, d.micro_batches)
    figures["topology"] = topology_figure(d.topology)
    if d.topology.get("cluster", {}).get("nodes"):
        figures["cluster"] = cluster_figure(d.topology)
    rows = _summary_rows(d)
    extra = ""
    if d.search is not None:
        figures["pareto"] = pareto_figure(d.search)
        rows.append(("search", d.search.get("why", "")))
        if d.search.get("top"):
            extra += _top_table(d.search)
    extra += _grid("Check findings", ["rule", "severity", "message", "where"],
                   [[f.get("rule", ""), f.get("severity", ""), f.get("message", ""),
                     f.get("section", "")] for f in d.findings]) if d.findings else \
        "<h2>Check findings</h2><p>none</p>"
    return _page(d.title, rows, figures, plotly_js, extra)


def _page(title: str, rows: list[tuple[str, str]], figures: dict[str, Any],
          plotly_js: Path | None, extra: str = "") -> str:
    divs = "\n".join(f'<div class="fig" id="{name}"></div>' for name in figures)
    return _PAGE.format(title=html.escape(title), plotly=_plotly_tag(plotly_js),
                        summary=_table(rows) + extra, figures=divs,
                        data=json.dumps(figures).replace("</", "<\\/"))


def render_serving_report(title: str, result: ServingEstimate, curve: ServingCurve | None,
                          topology: dict[str, Any], plotly_js: Path) -> str:
    """The serving section as a report page: the estimate, its throughput-latency curve,
    the iteration breakdown and the system's topology."""
    figures: dict[str, Any] = {}
    rows: list[tuple[str, str]] = [("layout", result.plan.label())]
    if result.feasible:
        rows += [("output tokens/s per chip", f"{result.output_tokens_per_s_per_chip:,.1f}"),
                 ("requests/s", f"{result.requests_per_s:,.3g}"),
                 ("TTFT", f"{result.ttft_s * 1e3:.4g} ms"),
                 ("TPOT", f"{result.tpot_s * 1e3:.4g} ms"),
                 ("batch per instance", f"{result.batch_per_instance:,.0f} "
                                        f"({result.batch_limit})"),
                 ("bound", result.bound),
                 ("energy per 1M output tokens", f"{result.energy_per_mtok_J / 3.6e6:.3g} kWh"),
                 ("calibration", result.calibration_family)]
        if result.slo_reason is not None:
            rows.append(("SLO", result.slo_reason))
        rows += [("note", n) for n in result.notes]
        if result.iteration is not None:
            figures["iteration"] = serving_breakdown_figure(result)
    else:
        rows.append(("infeasible", result.reason or ""))
    if curve is not None:
        figures["curve"] = serving_curve_figure(
            curve, result.tpot_s if result.feasible else None,
            result.output_tokens_per_s_per_chip if result.feasible else None)
    figures["topology"] = topology_figure(topology)
    return _page(title, rows, figures, plotly_js)
