"""A self-contained HTML report: Plotly inlined, data inlined, no network needed."""

from __future__ import annotations

import html
import json
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

__all__ = ["render_report", "render_serving_report"]

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1100px; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; }}
.fig {{ margin: 1em 0; }}
</style>
<script>{plotly}</script>
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


def render_report(title: str, result: Estimate, timeline: list[dict[str, Any]],
                  topology: dict[str, Any], search_json: dict[str, Any] | None,
                  plotly_js: Path) -> str:
    """The report page as one string (write it to a file)."""
    figures: dict[str, Any] = {}
    rows: list[tuple[str, str]] = []
    rows.append(("layout", result.plan.label()))
    if result.feasible:
        rows += [("step time", f"{result.step_s:.4g} s"),
                 ("tokens/s per chip", f"{result.tokens_per_s_per_chip:,.1f}"),
                 ("MFU", f"{result.mfu:.1%}"), ("bound", result.bound),
                 ("calibration", result.calibration_family)]
        figures["breakdown"] = breakdown_figure(result)
        figures["memory"] = memory_figure(result)
        if timeline:
            figures["timeline"] = timeline_figure(timeline)
    else:
        rows.append(("infeasible", result.reason or ""))
    figures["topology"] = topology_figure(topology)
    if topology.get("cluster", {}).get("nodes"):
        figures["cluster"] = cluster_figure(topology)
    if search_json is not None:
        figures["pareto"] = pareto_figure(search_json)
        rows.append(("search", search_json.get("why", "")))
    return _page(title, rows, figures, plotly_js)


def _page(title: str, rows: list[tuple[str, str]], figures: dict[str, Any],
          plotly_js: Path) -> str:
    divs = "\n".join(f'<div class="fig" id="{name}"></div>' for name in figures)
    return _PAGE.format(title=html.escape(title), plotly=plotly_js.read_text(encoding="utf-8"),
                        summary=_table(rows), figures=divs,
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
