"""``ocplan infer``: serving one layout, the best layouts of one or several systems, and
the fleet a load needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ocplan.catalog.fields import MAX_TOP_K
from ocplan.cli.app import FLAGS, handles_bad_input, print_json, session_catalog
from ocplan.cli.layout_options import (
    serving_values,
    with_serving_layout_options,
    with_serving_options,
)
from ocplan.cli.options import (
    PRICE_UNIT,
    SENSITIVITY_HELP,
    AllowInvalidOpt,
    ChipOpt,
    ChipsOpt,
    FormatOpt,
    JobFlags,
    LayoutFlags,
    ModelOpt,
    SystemFileOpt,
    exit_refused,
    from_flags,
    gathered,
    parse_duration,
    parse_prices,
    picked_by_search,
    priced,
    print_trust,
)
from ocplan.cli.pages import check_report_page, write_linked_report, write_page
from ocplan.cli.render import (
    add_row,
    change_cell,
    elasticity_cell,
    measure_text,
    out,
    print_search_grid,
    printable,
    quantity,
    side_by_side_rows,
    styled,
    summary_table,
)
from ocplan.cli.state import Format, state
from ocplan.errors import Infeasible, Problem, SpecError
from ocplan.lazy import lazy_module
from ocplan.plan.search_defaults import SENSITIVITY_FACTOR

if TYPE_CHECKING:
    import rich.table as rich_table

    from ocplan import api
    from ocplan.plan.layout import LayoutValue
    from ocplan.results.serving_compare import ServingComparison
    from ocplan.serving.dynamics import RunSummary
    from ocplan.serving.estimate import ServingEstimate
    from ocplan.serving.search import ServingSearch
    from ocplan.serving.sensitivity import ServingSensitivity
else:
    # The API imports every estimator; a command loads it when it first calls it, so
    # that ``ocplan match`` or ``ocplan catalog`` start without the training engine.
    api = lazy_module("ocplan.api")
    rich_table = lazy_module("rich.table")


@handles_bad_input
@with_serving_layout_options
@with_serving_options
def infer_cmd(
    model: ModelOpt,
    chip: ChipOpt = None,
    chips: ChipsOpt = None,
    system: SystemFileOpt = None,
    price: Annotated[str | None, typer.Option(
        metavar="<price[,price...]>",
        help=f"Price {PRICE_UNIT}, e.g. 2.5; with --vs one per system separated by commas "
             "(or one for all).")] = None,
    search: Annotated[bool, typer.Option("--search", help="Search the serving layouts of "
                                                          "the chips instead of estimating "
                                                          "one.")] = False,
    vs: Annotated[list[str] | None, typer.Option(
        "--vs", metavar="<chip|SYSTEM.yaml>",
        help="With --search: also search this chip (or system file) at the same --chips "
             "and compare the best layouts side by side (repeatable).")] = None,
    disaggregate: Annotated[bool, typer.Option(
        "--disaggregate", help="With --search: also try prefill/decode pool splits.")
    ] = False,
    top: Annotated[int | None, typer.Option(
        "--top", help=f"With --search: layouts the table lists (at most {MAX_TOP_K}; "
                      f"default {api.SERVING_SEARCH_TOP}; JSON carries every layout).")
    ] = None,
    target_rate: Annotated[float | None, typer.Option(
        metavar="<requests/s>",
        help="With --vs: a load to plan for; each system's row then says how many "
             "deployments of its best layout serve it within the latency limits (each its "
             "share of the arrivals), and their chips, power and cost.")] = None,
    availability: Annotated[float | None, typer.Option(
        metavar="<fraction>",
        help="With --target-rate: the share of time each fleet must serve the whole "
             "target through failures, e.g. 0.999; the rows then count the spare "
             "deployments that takes (in chips, power and cost too).")] = None,
    repair: Annotated[str | None, typer.Option(
        metavar="<time>",
        help="With --availability: how much longer a hardware failure keeps a deployment "
             "out than detection and restart (the comparison's note says how long those "
             "take), e.g. '3 days' for repair in place. Default 0: swapped at once from a "
             "healthy pool.")] = None,
    report_file: Annotated[Path | None, typer.Option(
        "--report", help="Also write a self-contained HTML report (curve, breakdown, "
                         "topology) to this file.")] = None,
    sensitivity: Annotated[float | None, typer.Option(help=SENSITIVITY_HELP.format(
        what="the deployment", default=f"; default {SENSITIVITY_FACTOR:g}, one layout "
                                       "only (not with --search)"))] = None,
    simulate: Annotated[bool, typer.Option(
        "--simulate", help="Also run the job request by request (discrete-event "
                           "simulation of the scheduler: the --requests given, else "
                           "2,000): TTFT and TPOT percentiles, preemptions, a finite "
                           "run's ramp and drain; one layout only.")] = False,
    allow_invalid: AllowInvalidOpt = False,
    fmt: FormatOpt = Format.table,
    *,
    job: JobFlags,
    layout: LayoutFlags,
) -> None:
    """Estimate serving throughput, latency, memory and cost of one layout, and what each
    hardware resource would buy it (or search; --vs compares the best layouts of several
    systems)."""
    problems: list[Problem] = []
    given = serving_values(job, FLAGS, problems)
    prices = gathered(problems, parse_prices, price)
    repair_s = _check_infer_flags(problems, search=search, vs=vs, report_file=report_file,
                                  prices=prices, price=price, sensitivity=sensitivity,
                                  simulate=simulate, target_rate=target_rate,
                                  availability=availability, repair=repair,
                                  disaggregate=disaggregate)
    if top is not None and (not search or vs):
        problems.append(Problem(FLAGS, "top_k", "lists one search's layouts: give --search "
                                              "(and no --vs) too", top))
    # with --search, a layout flag given pins that field in every layout searched
    pinned = {f.name: layout[f.name] for f in api.SERVING_REQUEST_LAYOUT
              if layout[f.name] != f.default} if search else {}
    if vs:  # a comparison searches each system freely
        problems += picked_by_search(layout, api.SERVING_REQUEST_LAYOUT)
    price_one = None if prices is None else prices[0]
    one = {} if search else layout | ({} if sensitivity is None
                                      else {"sensitivity": sensitivity}) \
        | ({"simulate": True} if simulate else {})
    values = dict(model=model, chip=chip, chips=chips, price_per_chip_hour=price_one,
                  allow_invalid=allow_invalid) | given \
        | ({"top_k": top} if top is not None and search else {})
    try:
        req = from_flags(api.InferSearchRequest if search else api.InferRequest, **values,
                         **one)
        # the workload's own bounds and the chip or system, now and all at once
        api.resolve_job(session_catalog(), req, system, FLAGS,
                        lambda: api.serving_workload(session_catalog(), req, FLAGS))
    except SpecError as exc:
        raise SpecError(problems + list(exc.problems)) from None
    if problems:
        raise SpecError(problems)
    if search and vs:
        _infer_compare(req, model, vs, prices, price, system, disaggregate, target_rate,
                       availability, repair_s, report_file, fmt)
    elif search:
        _infer_search(req, model, system, disaggregate, pinned, price_one, allow_invalid,
                      fmt)
    else:
        assert isinstance(req, api.InferOneJob)
        _infer_one(req, model, system, report_file, price_one, allow_invalid, simulate, fmt)


def _check_infer_flags(problems: list[Problem], *, search: bool, vs: list[str] | None,
                       report_file: Path | None, prices: tuple[float, ...] | None,
                       price: str | None, sensitivity: float | None, simulate: bool,
                       target_rate: float | None, availability: float | None,
                       repair: str | None, disaggregate: bool) -> float | None:
    """Add to ``problems`` each flag given without the mode or the flag it needs (so a
    command reports them all at once); return ``--repair`` in seconds."""
    if vs and not search:
        problems.append(Problem(FLAGS, "vs", "compares the best layouts: give --search too",
                                ",".join(vs)))
    if report_file is not None and search and not vs:
        problems.append(Problem(FLAGS, "report", "writes one layout's report or, with --vs, "
                                                 "the comparison's; not a search's",
                                str(report_file)))
    if prices is not None and len(prices) > 1 and not vs:
        problems.append(Problem(FLAGS, "price", "one price per chip-hour (several only "
                                                "with --vs)", price))
    if sensitivity is not None and search:
        problems.append(Problem(FLAGS, "sensitivity", "applies to one layout's estimate, "
                                                      "not to a search", sensitivity))
    if simulate and search:
        problems.append(Problem(FLAGS, "simulate", "runs one layout's job, not a search's",
                                True))
    if target_rate is not None and not vs:
        problems.append(Problem(FLAGS, "target_rate", "plans a fleet for each compared "
                                                      "system: give --search and --vs too",
                                target_rate))
    repair_s = parse_duration(repair, "--repair", problems)
    problems += api.fleet_problems(target_rate, availability, repair_s, FLAGS)
    if availability is not None and target_rate is None:
        problems.append(Problem(FLAGS, "availability", "sizes the spares of a fleet: give "
                                                       "--target-rate too", availability))
    if repair is not None and availability is None:
        problems.append(Problem(FLAGS, "repair", "sizes the spares of a fleet: give "
                                                 "--availability too", repair))
    if disaggregate and not search:
        problems.append(Problem(FLAGS, "disaggregate", "tries prefill/decode splits in a "
                                                       "search: give --search too", True))
    return repair_s


def _infer_compare(req: api.InferJob, model: str, vs: list[str],
                   prices: tuple[float, ...] | None, price: str | None, system: Path | None,
                   disaggregate: bool, target_rate: float | None,
                   availability: float | None, repair_s: float | None,
                   report_file: Path | None, fmt: Format) -> None:
    """``--search --vs``: the best layout of each system side by side (and the fleet each
    needs for ``--target-rate``), optionally as an HTML report."""
    if report_file is not None:
        check_report_page(report_file)
    compared = api.run_infer_compare(session_catalog(), req, vs, prices, system, FLAGS,
                                     disaggregate, target_rate_per_s=target_rate,
                                     availability=availability, repair_s=repair_s or 0.0)
    if report_file is not None:
        from ocplan.reports.html import render_serving_compare_report

        write_linked_report(report_file, render_serving_compare_report(
            f"ocplan serving comparison: {model}", compared.as_json(), None,
            state.currency), announce=fmt is not Format.json, flag="--report")
    _print_serving_compare(compared, model, fmt, price, api.serving_job_json(req))


def _infer_search(req: api.InferJob, model: str, system: Path | None, disaggregate: bool,
                  pinned: Mapping[str, LayoutValue], price_one: float | None,
                  allow_invalid: bool, fmt: Format) -> None:
    """``--search``: the best serving layouts of one system; exit 1 where none fits or
    none keeps up with the arrival rate."""
    objective = api.serving_objective(req)
    try:
        found, sysm, workload = api.run_infer_search(session_catalog(), req, system, objective,
                                                     FLAGS, disaggregate, pinned)
    except Infeasible as exc:
        exit_refused(exc, model, fmt)
    assert isinstance(req, api.InferSearchJob)
    _print_serving_search(found, f"{model} on {sysm.spec.name}", fmt, price_one,
                          api.slo_shortfall(found, workload), api.serving_job_json(req),
                          req.top_k)
    if fmt is not Format.json:
        print_trust(sysm, allow_invalid)
    runs = [e for e in found.results if e.feasible]
    if not runs:  # nothing fits, as `search` says
        raise typer.Exit(1)
    if all(e.reason for e in runs):  # every layout falls behind the arrival rate
        if fmt is not Format.json:
            best = max(runs, key=lambda e: e.requests_per_s)
            out.print(printable(f"no layout keeps up with {workload.rate_per_s:.3g} req/s: the "
                                f"most any serves is {best.requests_per_s:.3g} req/s "
                                f"({best.plan.label()}); more chips or a lower rate"),
                      style="red")
        raise typer.Exit(1)


def _infer_one(req: api.InferOneJob, model: str, system: Path | None,
               report_file: Path | None, price_one: float | None, allow_invalid: bool,
               simulate: bool, fmt: Format) -> None:
    """One layout: its estimate (with its sensitivity and simulation where asked), as a
    table or JSON and optionally an HTML report; exit 1 where it cannot run or keep up."""
    if report_file is not None:
        check_report_page(report_file)
    view = api.run_infer_view(session_catalog(), req, system, FLAGS)
    result, sysm = view.result, view.system
    if report_file is not None:
        from ocplan.reports.html import plotly_js_path, render_serving_report

        page = render_serving_report(f"ocplan serving report: {model} on {sysm.spec.name}",
                                     result, view.curve, api.topology_report(sysm),
                                     plotly_js_path(), view.sensitivity,
                                     api.serving_job_json(req))
        # JSON output stays one JSON document: the file is the only sign
        write_page(report_file, page, announce=fmt is not Format.json, flag="--report")
    extra: dict[str, float | None] = (
        {} if price_one is None else {"cost_per_mtok": result.cost_per_mtok(price_one)})
    if fmt is Format.json:
        sens = view.sensitivity
        print_json(result.as_dict() | extra | {"model": model, "job": api.serving_job_json(req),
                                               "system": sysm.spec.name,
                                               "hint": api.infeasible_hint(result.reason,
                                                                           serving=True)}
                   | api.trust(sysm, allow_invalid)
                   | {"sensitivity": sens.as_dict() if sens is not None else None}
                   | ({"simulation": view.simulation.as_dict()
                       if view.simulation is not None else None} if simulate else {})
                   | priced(price_one))
    else:
        _print_serving(result, f"{model} on {sysm.spec.name}", extra, sysm.accelerator.family,
                       api.serving_job_json(req))
        if view.sensitivity is not None:
            _print_serving_sensitivity(view.sensitivity)
        if simulate:
            _print_simulation(view.simulation, result.feasible)
        print_trust(sysm, allow_invalid)
    if not result.feasible or result.reason:  # cannot run, or cannot keep up
        raise typer.Exit(1)


def _print_simulation(run: RunSummary | None, feasible: bool) -> None:
    """The simulated run's rows, or why there is none."""
    from ocplan.reports.summary import simulation_rows

    if run is not None:
        out.print(summary_table(simulation_rows(run), "simulated run"))
    elif feasible:
        out.print(printable("no simulation: disaggregated and speculative layouts are not "
                            "simulated (the estimate above models them)"))


def _print_serving(result: ServingEstimate, title: str, extra: dict[str, float | None],
                   chip_family: str | None, job: dict[str, object]) -> None:
    from ocplan.reports.summary import serving_rows

    rows = serving_rows(result, extra.get("cost_per_mtok"), state.currency, chip_family, job)
    if not result.feasible:
        out.print(styled((title, "bold"), ": ", ("infeasible", "red"), f": {result.reason}"))
        for label, text in rows:
            out.print(printable(f"{label}: {text}"))
        return
    out.print(summary_table(rows, title))


def _print_serving_sensitivity(sens: ServingSensitivity) -> None:
    """What each hardware resource buys the deployment: every figure's change, the
    headline's elasticity, and the sentence that sums it up."""
    from ocplan.serving.sensitivity import MEASURES  # loaded with the result

    shown = [m for m in MEASURES if sens.base[m.name] is not None]
    table = rich_table.Table(title=f"what each resource buys: the deployment with it "
                                   f"x{sens.factor:g}")
    table.add_column("resource")
    for m in shown:
        table.add_column(m.label + (" (headline)" if m.name == sens.headline else ""),
                         justify="right")
    table.add_column("elasticity", justify="right")
    add_row(table, "as estimated", *(measure_text(sens.base[m.name], m.unit) for m in shown), "")
    for e in sens.rows:
        if not e.present:
            add_row(table, e.label, e.absent or "", *(["-"] * (len(shown) - 1)), "-")
            continue
        add_row(table, e.label, *(change_cell(e.changes[m.name]) for m in shown),
                elasticity_cell(e.elasticity))
    out.print(table)
    out.print(printable(sens.summary()))
    for e in sens.rows:
        if e.reason is not None:
            out.print(printable(f"with {e.label} x{sens.factor:g}: {e.reason}"))


def _print_serving_search(found: ServingSearch, title: str, fmt: Format,
                          price: float | None, shortfall: str | None,
                          job: dict[str, object], top: int) -> None:
    """The ranked layouts (the ``top`` best in a table, every one in JSON);
    ``shortfall``: the line saying no layout meets the SLO and which comes closest
    (:func:`ocplan.api.slo_shortfall`); ``job``: what was searched
    (:func:`ocplan.api.serving_job_json`)."""
    from ocplan.reports.summary import SERVING_SEARCH_COLUMNS, formats_text, serving_job_text

    results = [e.as_dict() | {"layout": e.plan.label()}
               | ({} if price is None else {"cost_per_mtok": e.cost_per_mtok(price)})
               for e in found.results]
    if fmt is Format.json:
        print_json({"objective": found.objective, "job": job, "results": results,
                    "pareto": [e.plan.label() for e in found.pareto()],
                    "slo_shortfall": shortfall} | priced(price))
        return
    rows = [r for r in results if r["feasible"]]
    # one workload: every layout runs in the same formats
    formats = next((e.formats for e in found.results if e.formats is not None), None)
    if not rows:
        reasons = sorted({r["reason"] or "" for r in results})
        out.print(styled((title, "bold"), ": ", ("no layout fits", "red"),
                         f": {'; '.join(reasons[:3])}"))
        if formats is not None:
            out.print(printable(f"number formats: {formats_text(formats)}"))
        out.print(printable("job: " + serving_job_text(job)))
        return
    print_search_grid(f"{title}: best serving layouts ({found.objective})",
                      SERVING_SEARCH_COLUMNS, rows[:top])
    if formats is not None:
        out.print(printable(f"number formats: {formats_text(formats)}"))
    out.print(printable("job: " + serving_job_text(job)))
    note = api.serving_objective_note(found.objective)
    if note:  # the TTFT/TPOT columns are not the ones the SLO is judged at
        out.print(printable(note))
    if shortfall is not None:
        out.print(styled(("no layout meets the SLO", "red"),
                         shortfall.removeprefix("no layout meets the SLO")))
    front = found.pareto()
    if front:  # one-token answers have no TPOT
        out.print(printable("throughput-TPOT front: " + "; ".join(
            f"{e.plan.label()} ({e.output_tokens_per_s_per_chip:,.0f} output tokens/s per chip "
            f"at {quantity(e.tpot_s, 's')})" for e in front)))


def _print_serving_compare(result: ServingComparison, model: str, fmt: Format,
                           price: str | None, job: dict[str, object]) -> None:
    if fmt is Format.json:
        print_json(result.as_json() | {"job": job} | priced(price))
        return
    table = rich_table.Table(title=printable(
        f"{model}: best serving layout of each system by {result.objective}; (x) = ratio to "
        f"{result.baseline}; * (green) = best"))
    table.add_column("", style="bold")
    for i, r in enumerate(result.systems):
        table.add_column(f"{i + 1}. {r.name}")
    from ocplan.reports.summary import SERVING_COMPARE_ROWS

    side_by_side_rows(table, SERVING_COMPARE_ROWS, result.as_json()["systems"],
                      result.leaders, result.baseline)
    out.print(table)
    # one workload: every system runs in the same formats
    formats = next((r.best.formats for r in result.systems
                    if r.best is not None and r.best.formats is not None), None)
    if formats is not None:
        from ocplan.reports.summary import formats_text

        out.print(printable(f"number formats: {formats_text(formats)}"))
    note = result.note()
    if note:
        out.print(printable(note))
    ranking = result.ranking_note()
    if ranking is not None:
        out.print(printable(ranking), style="yellow" if result.within_reach() else None)
