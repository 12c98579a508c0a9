"""``ocplan match``: the catalog's CPU platforms ranked for a workload mix.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ocplan.catalog.fields import MAX_TOP_K
from ocplan.catalog.filekinds import refuse_other_file
from ocplan.catalog.loader import load_yaml
from ocplan.cli.app import handles_bad_input, print_json, session_catalog
from ocplan.cli.options import FormatOpt, one_of
from ocplan.cli.pages import check_report_page, write_linked_report
from ocplan.cli.render import out, print_rows, printable, quantity, styled
from ocplan.cli.state import Format, state
from ocplan.errors import SpecError
from ocplan.units import format_money

if TYPE_CHECKING:
    from ocplan.matching.match import MatchResult

#: The objectives of ``ocplan match`` (``MatchRequest.objective``; a test keeps them equal).
MATCH_OBJECTIVES = ("tco", "perf_per_watt", "perf_per_cost", "servers")


#: Platforms that serve the mix a table and a report list when --top is not given.
MATCH_TOP = 10
#: Platforms that cannot serve the mix named in each line under the table (JSON and the
#: report list all of them).
MATCH_REASONS_SHOWN = 5


@handles_bad_input
def match_cmd(
    workload: Annotated[Path | None, typer.Option(
        help="Workload mix file: demand per archetype (see --list-archetypes), "
             "constraints, prices.")] = None,
    objective: Annotated[str | None, typer.Option(
        metavar=one_of(MATCH_OBJECTIVES),
        help="Rank by it (default: the file's, else tco); perf_per_watt ranks by "
             "performance per watt, shown as perf/kW (the share of the mix one server "
             "serves per kW at full load).")] = None,
    top: Annotated[int | None, typer.Option(
        min=1, max=MAX_TOP_K, help="Platforms that serve the mix to list, best first "
                                   f"(default: {MATCH_TOP} in the table and report, every "
                                   "one in JSON); those that cannot are always listed "
                                   "with why.")] = None,
    report_file: Annotated[Path | None, typer.Option(
        "--report", help="Also write an HTML report (ranked table, perf/kW vs perf/cost "
                         "chart; Plotly in a shared file beside it).")] = None,
    list_archetypes: Annotated[bool, typer.Option(
        "--list-archetypes", help="List the archetypes a mix's demand names, each with its "
                                  "unit and what it measures, and exit.")] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Rank the catalog's CPU platforms (compute modules, and every CPU as a generic
    module) for a workload mix: fleet size, power at load, TCO, the binding constraint.

    Generic modules have 1 socket, and 2 where the CPU scales to two; a platform whose
    CPU publishes too little (TDP, memory speed) is listed as not modelled."""
    if list_archetypes:
        _match_archetypes(fmt)
        return
    if workload is None:
        raise SpecError.one("--workload", "workload", "missing; expected a workload mix "
                                                      "file (or --list-archetypes)")
    if report_file is not None:
        check_report_page(report_file)
    refuse_other_file(workload, "match-workload")
    from ocplan.matching.match import match_notes
    from ocplan.matching.run import run_match

    result = _in_currency(run_match(session_catalog(), workload, objective,
                                    objective_source="--objective"), workload)
    shown_top = MATCH_TOP if top is None else top
    if report_file is not None:
        from ocplan.reports.html import render_match_report

        write_linked_report(report_file, render_match_report(result.as_json(), None,
                                                             shown_top),
                            announce=fmt is not Format.json, flag="--report")
    feasible = [m for m in result.ranked if m.feasible]
    if fmt is Format.json:
        print_json(result.as_json(top))
        if not feasible:  # the answer is "no": no platform serves the mix
            raise typer.Exit(1)
        return
    headings = ["#", "platform", "servers", "binding", "power at load", "energy cost",
                "TCO", "perf/kW", "perf/cost", "notes"]
    cells = []
    for i, m in enumerate(feasible[:shown_top], 1):
        cells.append([str(i), m.platform, f"{m.servers:,}", m.binding or "-",
                      quantity(m.fleet_power_W, "W"), _match_money(m.energy_cost, result.currency),
                      _match_money(m.tco, result.currency),
                      "-" if m.perf_per_kW is None else f"{m.perf_per_kW:.3g}",
                      "-" if m.perf_per_cost is None else f"{m.perf_per_cost:.3g}",
                      match_notes(m.flags, m.findings)])
    if feasible:
        print_rows(_match_title(result.name, result.objective, len(cells), len(feasible)),
                   headings, cells)
    else:
        out.print(styled((f"{result.name}: no platform can serve the mix", "red")))
    if result.objective_note is not None:
        out.print(printable(result.objective_note))
    out.print(printable("perf/kW: the mix's share one server serves per kW at full load; "
                        f"perf/cost: per million {result.currency} of price (one unit = the "
                        "whole demand)"))
    for status, said in (("cannot serve", "cannot serve it"), ("not modelled", "not modelled")):
        refused = [m for m in result.ranked if m.status == status]
        if refused:
            out.print(printable(f"{len(refused)} platform(s) {said}: " + "; ".join(
                f"{m.platform} ({(m.reason or '').removeprefix('not modelled: ')})"
                for m in refused[:MATCH_REASONS_SHOWN])
                + (" ..." if len(refused) > MATCH_REASONS_SHOWN else "")))
    if not feasible:  # the answer is "no": no platform serves the mix
        raise typer.Exit(1)


def _match_title(name: str, objective: str, shown: int, served: int) -> str:
    """The ranking's title, saying what it shows: ``best 10 platforms by tco (of 62 that
    serve the mix)`` or ``best 4 platforms by tco (all that serve the mix)``."""
    which = "all" if shown == served else f"of {served}"
    return f"{name}: best {shown} platforms by {objective} ({which} that serve the mix)"


def _match_archetypes(fmt: Format) -> None:
    """``match --list-archetypes``: each archetype's id, demand unit and what it
    measures (JSON: the registry's fields)."""
    from ocplan.matching.archetypes import ARCHETYPES

    def sizing(slots: bool) -> str:
        return "slots (no headroom)" if slots else "throughput (with headroom)"

    if fmt is Format.json:
        print_json({"archetypes": [
            {"id": a.id, "unit": a.unit, "benchmark": a.benchmark, "metric": a.metric,
             "summary": a.summary, "sizing": sizing(a.slots)} for a in ARCHETYPES.values()]})
        return
    print_rows("archetypes of a mix's demand (demand: {id: amount in its unit})",
               ["#", "id", "unit", "sizing", "what it measures"],
               [[str(i), a.id, a.unit, sizing(a.slots), a.summary]
                for i, a in enumerate(ARCHETYPES.values(), 1)])


def _match_money(amount: float | None, currency: str) -> str:
    return "-" if amount is None else format_money(amount, currency)


def _in_currency(result: MatchResult, workload: Path) -> MatchResult:
    """``result`` labelled in --currency when the mix names none (its prices are then in
    --currency); a SpecError when the two disagree, instead of ignoring the flag."""
    if not state.currency_given or result.currency == state.currency:
        return result
    named = load_yaml(workload).get("currency")
    if named is None:
        return replace(result, currency=state.currency)
    raise SpecError.one("--currency", "currency",
                        f"the workload mix {workload} prices in {named!r} (its 'currency:'); "
                        "give that label or leave --currency out", state.currency)
