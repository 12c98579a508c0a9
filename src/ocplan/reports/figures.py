"""Plotly figure specs (plain dicts) for estimates, searches and topologies.

The web workbench and the HTML report draw the same figures from these dicts with
``Plotly.newPlot(div, fig.data, fig.layout)``; no plotting code is duplicated in
JavaScript and nothing here computes a model number.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from ocplan.plan.estimate import Estimate, MemoryBreakdown, TimeBreakdown
from ocplan.plan.plan import Plan
from ocplan.plan.sensitivity import Sensitivity
from ocplan.serving.estimate import BREAKDOWN_LABELS, ServingCurve, ServingEstimate
from ocplan.serving.sensitivity import ServingSensitivity
from ocplan.units import DEFAULT_CURRENCY

__all__ = ["breakdown_figure", "cluster_figure", "compare_bars_figure",
           "compare_pareto_figure", "goodput_figure", "match_figure", "memory_figure",
           "pareto_figure",
           "power_flow_figure", "sensitivity_figure", "serving_sensitivity_figure",
           "sweep_figure", "timeline_figure", "topology_figure"]

Figure = dict[str, Any]

_TIME_COLORS = {
    "compute": "#4c78a8", "recompute": "#9ecae9", "tp_comm": "#f58518", "cp_comm": "#ffbf79",
    "ep_comm": "#e45756", "pp_comm": "#ff9d98", "dp_comm": "#54a24b", "bubble": "#bab0ac",
    "optimizer": "#b279a2",
}
_MEMORY_COLORS = {
    "weights": "#4c78a8", "grads": "#72b7b2", "optimizer": "#b279a2",
    "activations": "#f58518", "logits": "#eeca3b", "reserved": "#bab0ac",
}


def breakdown_figure(result: Estimate) -> Figure:
    """Stacked bar of the step time by term (seconds)."""
    assert result.time is not None
    data = [{"type": "bar", "name": TimeBreakdown.label(k), "x": ["step"], "y": [v],
             "marker": {"color": _TIME_COLORS[k.removesuffix("_s")]},
             "hovertemplate": f"{TimeBreakdown.label(k)}: %{{y:.4g}} s<extra></extra>"}
            for k, v in asdict(result.time).items()]
    return {"data": data, "layout": {"barmode": "stack", "title": {
        "text": f"Step time {result.step_s:.3g} s (bound: {result.bound})"},
        "yaxis": {"title": {"text": "seconds"}}, "height": 380}}


def memory_figure(result: Estimate) -> Figure:
    """Stacked bar of memory per chip against the HBM capacity line."""
    assert result.memory is not None
    mem = asdict(result.memory)
    cap = mem.pop("capacity_bytes") / 1e9
    data: list[dict[str, Any]] = [
        {"type": "bar", "name": MemoryBreakdown.label(k), "x": ["per chip"], "y": [v / 1e9],
         "marker": {"color": _MEMORY_COLORS[k.removesuffix("_bytes")]}}
        for k, v in mem.items()]
    data.append({"type": "scatter", "mode": "lines", "name": "HBM capacity",
                 "x": ["per chip", "per chip"], "y": [cap, cap],
                 "line": {"color": "#d62728", "dash": "dash"}})
    return {"data": data, "layout": {
        "barmode": "stack", "title": {"text": f"Memory {result.memory.total_bytes / 1e9:.1f} of "
                                              f"{cap:.0f} GB"},
        "yaxis": {"title": {"text": "GB"}},
        "shapes": [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": cap, "y1": cap,
                    "line": {"color": "#d62728", "dash": "dash"}}], "height": 380}}


def timeline_figure(events: list[dict[str, Any]], total: int | None = None,
                    runs: tuple[int, int] | None = None) -> Figure:
    """Gantt chart of micro-batches per pipeline stage (forward and backward); when the
    step has more micro-batches than drawn (``total``), the title says so, and a step of
    several runs of the schedule (``runs``: the estimate's
    :attr:`~ocplan.plan.estimate.Estimate.pipeline_runs`) is drawn as its first run."""
    data = []
    for kind, name, color in (("F", "forward", "#4c78a8"), ("B", "backward", "#f58518"),
                              ("W", "weight gradients", "#54a24b")):
        mine = [e for e in events if e["kind"] == kind]
        if not mine and kind == "W":  # only bidirectional schedules split them off
            continue
        data.append({
            "type": "bar", "orientation": "h", "name": name,
            "y": [f"stage {e['stage']}" for e in mine],
            "x": [e["end_s"] - e["start_s"] for e in mine],
            "base": [e["start_s"] for e in mine],
            "text": [str(e["micro_batch"]) if e["micro_batch"] >= 0 else "" for e in mine],
            "textposition": "inside", "marker": {"color": color}})
    shown = len({e["micro_batch"] for e in events if e["micro_batch"] >= 0})
    title = "Pipeline timeline (micro-batches per stage)"
    if runs is not None:
        count, per_run = runs
        drawn = f"the first {shown} of its {per_run}" if per_run > shown else f"its {per_run}"
        title = (f"Pipeline timeline: the first of the step's {count} runs, {drawn} "
                 "micro-batches per stage<br>(each run fills and drains the pipeline)")
    elif total is not None and total > shown:
        title = (f"Pipeline timeline: the first {shown} of {total} micro-batches per stage"
                 "<br>(the rest repeat its steady state)")  # two lines: a narrow plot
    return {"data": data, "layout": {
        "title": {"text": title}, "barmode": "overlay",
        "xaxis": {"title": {"text": "seconds"}},
        "yaxis": {"autorange": "reversed"}, "height": 200 + 30 * max(
            1, len({e["stage"] for e in events}))}}


def pareto_figure(search_json: dict[str, Any]) -> Figure:
    """Step time against memory per chip of the top layouts, with the Pareto front."""
    top = search_json.get("top", [])
    front = search_json.get("pareto", [])
    data = [
        {"type": "scatter", "mode": "markers", "name": "top layouts",
         "x": [t["memory_bytes_per_chip"] / 1e9 for t in top], "y": [t["step_s"] for t in top],
         "text": [Plan.from_mapping(t).label() for t in top]},
        {"type": "scatter", "mode": "lines+markers", "name": "Pareto front",
         "x": [p["memory_bytes_per_chip"] / 1e9 for p in front],
         "y": [p["step_s"] for p in front]},
    ]
    return {"data": data, "layout": {"title": {"text": "Step time vs memory per chip"},
                                     "xaxis": {"title": {"text": "memory per chip (GB)"}},
                                     "yaxis": {"title": {"text": "step time (s)"}},
                                     "height": 400}}


def topology_figure(report: dict[str, Any]) -> Figure:
    """The board graph drawn on a circle (chips) with switches in the middle."""
    nodes = report["board"]["nodes"]
    chips = [n for n in nodes if n["kind"] == "chip"]
    pos: dict[str, tuple[float, float]] = {}
    for i, n in enumerate(chips):
        angle = 2 * math.pi * i / max(1, len(chips))
        pos[n["id"]] = (math.cos(angle), math.sin(angle))
    others = [n for n in nodes if n["kind"] != "chip"]
    for j, n in enumerate(others):
        pos[n["id"]] = (0.3 * (j - (len(others) - 1) / 2), 0.0)
    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    for e in report["board"]["edges"]:
        (x0, y0), (x1, y1) = pos[e["source"]], pos[e["target"]]
        edge_x += [x0, x1, None]
        edge_y += [y0, y1, None]
    data = [
        {"type": "scatter", "mode": "lines", "name": "links", "x": edge_x, "y": edge_y,
         "line": {"color": "#999", "width": 1}, "hoverinfo": "skip"},
        {"type": "scatter", "mode": "markers+text", "name": "modules",
         "x": [pos[n["id"]][0] for n in chips], "y": [pos[n["id"]][1] for n in chips],
         "text": [n["id"] for n in chips], "textposition": "top center",
         "marker": {"size": 16, "color": "#4c78a8"}},
        {"type": "scatter", "mode": "markers+text", "name": "switches",
         "x": [pos[n["id"]][0] for n in others], "y": [pos[n["id"]][1] for n in others],
         "text": [n["id"] for n in others], "marker": {"size": 20, "color": "#f58518",
                                                        "symbol": "square"}},
    ]
    return {"data": data, "layout": {
        "title": {"text": f"Board: {report['board_topology']} "
                          f"({report['chips_per_server']} modules)"},
        "xaxis": {"visible": False}, "yaxis": {"visible": False, "scaleanchor": "x"},
        "showlegend": False, "height": 420}}


def cluster_figure(report: dict[str, Any]) -> Figure:
    """Servers (bottom), leaf switches (middle) and spines (top) with their links."""
    view = report["cluster"]
    rows = {"server": 0.0, "leaf": 1.0, "spine": 2.0}
    by_kind: dict[str, list[str]] = {k: [] for k in rows}
    for n in view["nodes"]:
        by_kind[n["kind"]].append(n["id"])
    pos: dict[str, tuple[float, float]] = {}
    for kind, names in by_kind.items():
        for i, name in enumerate(names):
            pos[name] = ((i + 0.5) / max(1, len(names)), rows[kind])
    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    for e in view["edges"]:
        (x0, y0), (x1, y1) = pos[e["source"]], pos[e["target"]]
        edge_x += [x0, x1, None]
        edge_y += [y0, y1, None]
    colors = {"server": "#4c78a8", "leaf": "#f58518", "spine": "#54a24b"}
    data: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "lines", "name": "links", "x": edge_x, "y": edge_y,
         "line": {"color": "#bbb", "width": 0.5}, "hoverinfo": "skip"}]
    for kind, names in by_kind.items():
        data.append({"type": "scatter", "mode": "markers",
                     "name": {"server": "servers", "leaf": "leaves", "spine": "spines"}[kind],
                     "x": [pos[n][0] for n in names], "y": [pos[n][1] for n in names],
                     "text": names, "hoverinfo": "text",
                     "marker": {"size": 10, "color": colors[kind], "symbol": "square"}})
    title = (f"Cluster: {report['servers']} servers, {report['scale_out_switches']} switches "
             f"({report['scale_out_tiers']} tiers); first {view['servers_shown']} servers drawn")
    return {"data": data, "layout": {
        "title": {"text": title}, "xaxis": {"visible": False},
        "yaxis": {"tickvals": [0, 1, 2], "ticktext": ["servers", "leaves", "spines"]},
        "height": 380}}


def serving_curve_figure(curve: ServingCurve, point_tpot_s: float | None = None,
                         point_tokens_per_s: float | None = None,
                         likely_tpot_s: tuple[float | None, float | None] | None = None
                         ) -> Figure:
    """Output tokens/s per chip against mean TPOT (ms) as the load rises: the
    throughput-latency curve, with the estimate's operating point marked and, with
    ``likely_tpot_s`` (its likely range at the rate:
    :class:`~ocplan.serving.latency_range.LatencyRange`), a bar across the TPOT a real
    deployment would likely show, drawn to the curve's end where the slow end overloads."""
    tpot_ms = [t * 1e3 for t in curve.tpot_s]
    data: list[dict[str, Any]] = [{
        "type": "scatter", "mode": "lines+markers", "name": "Poisson load",
        "x": tpot_ms, "y": list(curve.output_tokens_per_s_per_chip),
        "customdata": [[b, r, f * 1e3] for b, r, f in zip(curve.batch_per_instance,
                                                          curve.rate_per_s, curve.ttft_s,
                                                          strict=True)],
        "hovertemplate": ("TPOT %{x:.3g} ms<br>%{y:,.0f} tok/s/chip<br>batch %{customdata[0]:,.0f}"
                          "<br>%{customdata[1]:.3g} req/s<br>TTFT %{customdata[2]:.3g} ms"
                          "<extra></extra>")}]
    if point_tpot_s is not None and point_tokens_per_s is not None:
        point: dict[str, Any] = {
            "type": "scatter", "mode": "markers", "name": "this estimate",
            "x": [point_tpot_s * 1e3], "y": [point_tokens_per_s],
            "marker": {"size": 12, "symbol": "star", "color": "#d62728"}}
        fast, slow = likely_tpot_s if likely_tpot_s is not None else (None, None)
        if fast is not None:
            # an end the rate overloads has no TPOT: the bar runs to the curve's last point
            high_ms = max(tpot_ms) if slow is None else slow * 1e3
            point["error_x"] = {"type": "data", "symmetric": False,
                                "array": [max(high_ms - point_tpot_s * 1e3, 0.0)],
                                "arrayminus": [max(point_tpot_s * 1e3 - fast * 1e3, 0.0)]}
            point["hovertemplate"] = (
                f"TPOT %{{x:.3g}} ms, likely {fast * 1e3:.3g} to "
                + ("overloaded" if slow is None else f"{slow * 1e3:.3g} ms")
                + "<br>%{y:,.0f} tok/s/chip<extra>this estimate</extra>")
        data.append(point)
    return {"data": data, "layout": {
        "title": {"text": "Throughput against latency"},
        "xaxis": {"title": {"text": "mean time per output token (ms)"}},
        "yaxis": {"title": {"text": "output tokens/s per chip"}}, "height": 380}}


def serving_breakdown_figure(result: ServingEstimate) -> Figure:
    """Stacked bar of one engine iteration by term (seconds)."""
    assert result.iteration is not None
    terms = {BREAKDOWN_LABELS.get(k, k.removesuffix("_s")): v
             for k, v in asdict(result.iteration).items()}
    data = [{"type": "bar", "name": name, "x": ["iteration"], "y": [v],
             "hovertemplate": f"{name}: %{{y:.4g}} s<extra></extra>"}
            for name, v in terms.items()]
    return {"data": data, "layout": {"barmode": "stack", "title": {
        # the bound names its evidence at length; the summary beside the figure says it
        "text": f"One engine iteration: {result.iteration.total_s * 1e3:.3g} ms"},
        "yaxis": {"title": {"text": "seconds"}}, "height": 380}}


#: Measures drawn as bars in a comparison: (field, axis title, scale to the shown unit).
COMPARE_BARS: tuple[tuple[str, str, float], ...] = (
    ("tokens_per_s_per_chip", "tokens/s per chip", 1.0),
    ("mfu", "MFU (%)", 100.0),
    ("time_to_train_s", "time to train (days)", 1 / 86400),
    ("cost_to_train", "cost to train", 1.0),
    ("facility_power_W", "facility power (MW)", 1e-6),
)


#: Measures drawn as bars in a serving comparison: (field, axis title, scale).
SERVING_COMPARE_BARS: tuple[tuple[str, str, float], ...] = (
    ("output_tokens_per_s_per_chip", "output tokens/s per chip", 1.0),
    ("tpot_s", "TPOT (ms)", 1e3),
    ("cost_per_mtok", "cost per million output tokens", 1.0),
    ("energy_per_mtok_J", "energy per million output tokens (kWh)", 1 / 3.6e6),
)


#: Measures of the comparison figures that are amounts of money: their axis names the
#: currency the prices were given in.
COST_FIELDS = frozenset({"cost_to_train", "cost_per_mtok"})


def _axis_title(key: str, title: str, currency: str) -> str:
    return f"{title} ({currency})" if key in COST_FIELDS else title


def compare_bars_figure(comparison: dict[str, Any],
                        bars: tuple[tuple[str, str, float], ...] = COMPARE_BARS,
                        currency: str = DEFAULT_CURRENCY) -> Figure:
    """One bar panel per measure of ``bars`` (:data:`COMPARE_BARS`, or
    :data:`SERVING_COMPARE_BARS` for a serving comparison) a comparison has, a bar per
    system (infeasible systems have none); costs in ``currency``."""
    rows = [r for r in comparison["systems"] if r["feasible"]]
    shown = [(k, t, f) for k, t, f in bars if any(r.get(k) is not None for r in rows)]
    data: list[dict[str, Any]] = []
    layout: dict[str, Any] = {"title": {"text": "Systems side by side"}, "showlegend": False,
                              "height": 260 * max(1, len(shown)),
                              "grid": {"rows": max(1, len(shown)), "columns": 1,
                                       "pattern": "independent"}}
    for i, (key, title, scale) in enumerate(shown, start=1):
        axis = "" if i == 1 else str(i)
        data.append({"type": "bar", "name": title, "xaxis": f"x{axis}", "yaxis": f"y{axis}",
                     "x": [r["name"] for r in rows],
                     "y": [None if r.get(key) is None else r[key] * scale for r in rows]})
        layout[f"yaxis{axis}"] = {"title": {"text": _axis_title(key, title, currency)}}
    return {"data": data, "layout": layout}


def compare_pareto_figure(comparison: dict[str, Any],
                          currency: str = DEFAULT_CURRENCY) -> Figure:
    """Cost (in ``currency``) against time to train, one point per feasible system
    (lower-left is better); without a price, chip-hours stand for cost."""
    rows = [r for r in comparison["systems"]
            if r["feasible"] and r.get("time_to_train_s") is not None]
    priced = all(r.get("cost_to_train") is not None for r in rows)
    y = [r["cost_to_train"] if priced else r["chips"] * r["time_to_train_s"] / 3600
         for r in rows]
    data = [{"type": "scatter", "mode": "markers+text", "name": "systems",
             "x": [r["time_to_train_s"] / 86400 for r in rows], "y": y,
             "text": [r["name"] for r in rows], "textposition": "top center",
             "marker": {"size": 12}}]
    return {"data": data, "layout": {
        "title": {"text": "Cost vs time to train"},
        "xaxis": {"title": {"text": "time to train (days)"}},
        "yaxis": {"title": {"text": _axis_title("cost_to_train", "cost to train", currency)
                            if priced else "chip-hours"}},
        "height": 420}}


def power_flow_figure(power_flow: list[list[Any]] | list[tuple[str, str, float]]) -> Figure:
    """Where the facility's power goes: a Sankey of (from, to, W) edges, in kW."""
    names: list[str] = []
    index: dict[str, int] = {}
    for a, b, _ in power_flow:
        for n in (a, b):
            if n not in index:
                index[n] = len(names)
                names.append(n)
    return {"data": [{"type": "sankey", "orientation": "h",
                      "node": {"label": names, "pad": 12},
                      "link": {"source": [index[a] for a, _, _ in power_flow],
                               "target": [index[b] for _, b, _ in power_flow],
                               "value": [w / 1e3 for _, _, w in power_flow]}}],
            "layout": {"title": {"text": "Where the power goes (kW)"}, "height": 420}}


def goodput_figure(fractions: dict[str, float]) -> Figure:
    """Shares of the expected wall time: useful compute and each loss, one stacked bar."""
    data = [{"type": "bar", "orientation": "h", "name": k.replace("_", " "), "y": ["run"],
             "x": [100 * v]} for k, v in fractions.items()]
    return {"data": data, "layout": {"title": {"text": "Goodput: where the wall time goes"},
                                     "barmode": "stack", "height": 220,
                                     "xaxis": {"title": {"text": "% of wall time"}}}}


def _lever_bars(rows: list[tuple[str, float]], title: str, x_title: str) -> Figure:
    """Horizontal bars of a sensitivity: one (label, % change) per row, the first row
    drawn at the top."""
    rows = rows[::-1]  # plotly draws the first category at the bottom
    return {"data": [{"type": "bar", "orientation": "h", "y": [r[0] for r in rows],
                      "x": [r[1] for r in rows], "marker": {"color": "#4c78a8"},
                      "hovertemplate": "%{y}: %{x:+.1f} %<extra></extra>"}],
            "layout": {"title": {"text": title}, "xaxis": {"title": {"text": x_title}},
                       "yaxis": {"automargin": True}, "height": 340}}


def sensitivity_figure(sens: Sensitivity) -> Figure:
    """The step's change (%) with each hardware resource scaled, the resources the
    system lacks left out, every resource together last."""
    f = f"x{sens.factor:g}"
    rows = [(e.label, 100 * e.change) for e in sens.effects if e.present]
    rows.append((f"every resource {f}", 100 * sens.together_change))
    return _lever_bars(rows, f"What each resource buys: the step with it {f}",
                       "% change of the step time")


def serving_sensitivity_figure(sens: ServingSensitivity) -> Figure:
    """The headline figure's change (%) with each hardware resource scaled, the
    resources the system lacks left out, every resource together last."""
    label = sens.measure.label
    rows = [(e.label, 100 * change) for e in sens.rows
            if e.present and (change := e.changes[sens.headline]) is not None]
    return _lever_bars(rows, f"What each resource buys: {label} with it x{sens.factor:g}",
                       f"% change of {label}")


def match_figure(match: dict[str, Any]) -> Figure:
    """Performance per kW against performance per million of price, one point per
    platform that can serve the mix and has a price (upper right is better), coloured by
    ISA. Without such a platform the chart has no points and says why in its middle."""
    served = [r for r in match["platforms"] if r["feasible"]]
    rows = [r for r in served if r.get("perf_per_cost")]
    data = []
    for isa in sorted({r["isa"] for r in rows}):
        pick = [r for r in rows if r["isa"] == isa]
        data.append({"type": "scatter", "mode": "markers", "name": isa,
                     "x": [r["perf_per_cost"] for r in pick],
                     "y": [r["perf_per_kW"] for r in pick],
                     "text": [r["platform"] for r in pick], "marker": {"size": 10}})
    layout: dict[str, Any] = {
        "title": {"text": "Performance per kW vs per million of price"},
        "xaxis": {"title": {"text": f"mix per million {match['currency']} (perf/cost)"}},
        "yaxis": {"title": {"text": "mix per kW at full load (perf/kW)"}}, "height": 460}
    if not rows:
        why = ("no platform can serve the mix" if not served else
               "no platform that serves the mix has a price (the mix's prices), so its "
               "perf per million of price is unknown")
        layout["annotations"] = [{"text": f"No points: {why}", "showarrow": False,
                                  "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}]
    return {"data": data, "layout": layout}


def sweep_figure(view: dict[str, Any], title: str) -> Figure:
    """A stored sweep's key figure (``view["key_figure"]``, called ``title``) per task:
    against cluster size, a line per model and hardware, where the sweep has several
    sizes (how each scales); else grouped bars, the hardware along the axis and a bar per
    model. Tasks with no best layout (none fits, failed, missing) have no point; without
    any point the chart says why in its middle."""
    key = view["key_figure"]
    done = [r for r in view["results"] if r.get("best") and r["best"].get(key) is not None]
    sizes = sorted({r["chips"] for r in view["results"]})
    data: list[dict[str, Any]] = []
    if len(sizes) > 1:
        for model, hardware in dict.fromkeys((r["model"], r["hardware"]) for r in done):
            pick = sorted((r for r in done if (r["model"], r["hardware"]) == (model, hardware)),
                          key=lambda r: r["chips"])
            data.append({"type": "scatter", "mode": "lines+markers",
                         "name": f"{model} on {hardware}",
                         "x": [r["chips"] for r in pick], "y": [r["best"][key] for r in pick],
                         "hovertext": [r["best"].get("layout", "") for r in pick]})
        # a grid of powers of two reads best on a log axis; a handful of sizes on a linear one
        log = sizes[-1] >= 8 * sizes[0]
        xaxis: dict[str, Any] = {"title": {"text": "chips"},
                                 "type": "log" if log else "linear"}
        if log:
            xaxis |= {"tickvals": sizes, "ticktext": [f"{s:,}" for s in sizes]}
    else:
        for model in dict.fromkeys(r["model"] for r in done):
            pick = [r for r in done if r["model"] == model]
            data.append({"type": "bar", "name": model, "x": [r["hardware"] for r in pick],
                         "y": [r["best"][key] for r in pick],
                         "hovertext": [r["best"].get("layout", "") for r in pick]})
        xaxis = {"title": {"text": f"hardware ({sizes[0]:,} chips)" if sizes else "hardware"}}
    layout: dict[str, Any] = {
        "title": {"text": f"Sweep {view['sweep']}: {title}"}, "xaxis": xaxis,
        "yaxis": {"title": {"text": title}, "rangemode": "tozero"}, "height": 440,
        "barmode": "group", "hovermode": "closest"}
    if not done:
        layout["annotations"] = [{"text": "No points: no task of this sweep has a stored "
                                          "layout that fits", "showarrow": False,
                                  "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}]
    return {"data": data, "layout": layout}
