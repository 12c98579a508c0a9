"""``ocplan serve`` and ``ocplan report``: the web workbench, and a report of one job.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ocplan import jsonio
from ocplan.cli import restore_collector
from ocplan.cli.app import FLAGS, handles_bad_input, session_catalog
from ocplan.cli.layout_options import with_layout_options, with_training_options
from ocplan.cli.options import (
    TRAINING_OBJECTIVES,
    AllowInvalidOpt,
    ChipOpt,
    ChipsOpt,
    GlobalBatchOpt,
    LayoutFlags,
    ModelOpt,
    OptionFlags,
    PriceOpt,
    SeqLenOpt,
    SystemFileOpt,
    TrainTokensOpt,
    exit_refused,
    from_flags,
    one_of,
    picked_by_search,
)
from ocplan.cli.pages import (
    REPORT_FORMATS,
    check_target,
    resolve_report_format,
    write_linked_report,
    write_page,
)
from ocplan.cli.render import out, printable
from ocplan.cli.state import Format, state
from ocplan.cli.training import train_figures
from ocplan.errors import Infeasible, Problem, SpecError
from ocplan.lazy import lazy_module
from ocplan.plan.plan import SEARCH_FIXED_LAYOUT, SEARCH_PINNABLE_LAYOUT
from ocplan.plan.search_defaults import DEFAULT_GLOBAL_BATCH, DEFAULT_SEQ_LEN

if TYPE_CHECKING:
    from ocplan import api
    from ocplan.catalog.system import System
    from ocplan.redfish.host import CpuNode
else:
    # The API imports every estimator; a command loads it when it first calls it, so
    # that ``ocplan match`` or ``ocplan catalog`` start without the training engine.
    api = lazy_module("ocplan.api")

#: Rows of a report's top-layouts table (``report --search --top``).
REPORT_TOP = 10
#: What ``report --search`` ranks by unless told (a search's own default).
REPORT_OBJECTIVE = "throughput"


@handles_bad_input
def serve(
    host: Annotated[str, typer.Option(metavar="<address>", help="Address to bind.")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    db: Annotated[str | None, typer.Option(
        metavar="<url|file>",
        help="Database of saved scenarios and stored results (the sweeps of 'ocplan sweep "
             "--db'): an SQLAlchemy URL, or a file path for SQLite.")] = None,
    token: Annotated[str | None, typer.Option(
        metavar="<token>",
        help="Required on every request; mandatory when not bound to loopback.")] = None,
    allow_host: Annotated[list[str] | None, typer.Option(
        metavar="<host>",
        help="Another host name the Host header may give (repeatable), e.g. the "
             "machine's name when bound to 0.0.0.0; '*' allows any.")] = None,
    system: Annotated[list[Path] | None, typer.Option(
        metavar="<file>",
        help="System or compute-module file to serve read-only as Redfish under "
             "/redfish/v1 (repeatable; default: each catalog OAM module in its default "
             "server).")] = None,
) -> None:
    """Run the web workbench (http://HOST:PORT/, API docs at /docs, a read-only Redfish
    view of the systems at /redfish/v1).

    Requests must name a known host in their Host header (DNS-rebinding defence):
    127.0.0.1, localhost, [::1], --host and every --allow-host. Prices are in the
    --currency given before 'serve' (default USD); answers with costs name it.
    """
    if host not in ("127.0.0.1", "localhost", "::1") and not token:
        raise SpecError.one("--host", "host", "binding beyond loopback needs --token", host)
    import uvicorn

    from ocplan.web.app import DEFAULT_ALLOWED_HOSTS, create_app

    hosts = (*DEFAULT_ALLOWED_HOSTS, host, *(allow_host or ()))
    problems: list[Problem] = []
    systems: list[System | CpuNode] = []
    for path in system or ():
        try:
            systems.append(api.read_managed(session_catalog(), path))
        except SpecError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SpecError(problems)
    app_ = create_app(db, token=token, catalog_dirs=state.catalog_dirs, allowed_hosts=hosts,
                      redfish_systems=systems, currency=state.currency)
    out.print(printable(f"ocplan workbench on {serve_url(host, port)} (API docs at /docs, "
                        "Redfish at /redfish/v1); Ctrl+C stops it"))
    restore_collector()  # it runs for hours: the start-up thresholds are for start-up
    uvicorn.run(app_, host=host, port=port, log_level="warning")


def serve_url(host: str, port: int) -> str:
    """The address a browser opens for ``ocplan serve --host HOST --port PORT`` (IPv6
    literals in brackets; the wildcard 0.0.0.0 shown as this machine's loopback)."""
    shown = "127.0.0.1" if host == "0.0.0.0" else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


@handles_bad_input
@with_layout_options
@with_training_options
def report(
    model: ModelOpt,
    out_file: Annotated[Path, typer.Option("--out", "-o", help="File to write (HTML or JSON).")],
    chip: ChipOpt = None,
    chips: ChipsOpt = None,
    global_batch: GlobalBatchOpt = DEFAULT_GLOBAL_BATCH,
    seq_len: SeqLenOpt = DEFAULT_SEQ_LEN,
    system: SystemFileOpt = None,
    run_search: Annotated[bool, typer.Option(
        "--search", help="Search the layouts and report the best one; a layout flag "
                         "given pins that field in every layout searched.")] = False,
    objective: Annotated[str, typer.Option(
        metavar=one_of(TRAINING_OBJECTIVES), help="With --search: the best layout by it.")
    ] = REPORT_OBJECTIVE,
    top: Annotated[int, typer.Option(help="With --search: rows of the top table.")
                   ] = REPORT_TOP,
    train_tokens: TrainTokensOpt = None,
    price: PriceOpt = None,
    report_format: Annotated[str | None, typer.Option(
        "--format", metavar=one_of(REPORT_FORMATS),
        help="html (a page; Plotly in a shared file beside it) or json (default: as --out's "
             "ending names it, .json or .html; else html).")] = None,
    inline_plotly: Annotated[bool, typer.Option(
        "--inline-plotly", help="Put Plotly inside the HTML (one file of about 5 MB) "
                                "instead of a shared plotly file beside it.")] = False,
    allow_invalid: AllowInvalidOpt = False,
    *,
    options: OptionFlags,
    layout: LayoutFlags,
) -> None:
    """Write a report (HTML whose plots work offline, or JSON): the estimate, the
    system's check findings, time, energy and cost to train, the top layouts."""
    from ocplan.reports.html import ReportData, plotly_js_path, render_report

    report_format = resolve_report_format(out_file, report_format)
    check_target(out_file)
    problems = (picked_by_search(layout, api.REQUEST_LAYOUT,
                                 SEARCH_FIXED_LAYOUT + SEARCH_PINNABLE_LAYOUT)
                if run_search else
                [Problem(FLAGS, name, "applies with --search (the layout flags give the "
                                      "layout otherwise)", value)
                 for name, value, default in (("objective", objective, REPORT_OBJECTIVE),
                                              ("top", top, REPORT_TOP))
                 if value != default])
    if problems:
        raise SpecError(problems)
    cat = session_catalog()
    search_json = None
    no_fit: str | None = None  # why the search found no layout, when it found none
    req = from_flags(
        api.EstimateRequest, model=model, chip=chip, chips=chips, global_batch=global_batch,
        seq_len=seq_len, train_tokens=train_tokens, price_per_chip_hour=price,
        allow_invalid=allow_invalid, **options, **layout)
    sysm = api.job_system(cat, chip, system, chips, FLAGS)
    try:
        api.guard(sysm, allow_invalid)  # nothing is written for a refused system
    except Infeasible as exc:
        exit_refused(exc, sysm.spec.name, Format.table)
    if run_search:
        found = api.run_search(cat, from_flags(
            api.SearchRequest, model=model, chip=chip, chips=chips,
            global_batch=global_batch, seq_len=seq_len, **req.options(), top_k=top,
            objective=objective, train_tokens=req.train_tokens,
            price_per_chip_hour=price, allow_invalid=allow_invalid,
            **{f.name: layout[f.name] for f in SEARCH_FIXED_LAYOUT},
            # a layout flag given (away from its default) pins that field in the search
            **{f.name: layout[f.name] for f in SEARCH_PINNABLE_LAYOUT
               if layout[f.name] != f.default}), system, source=FLAGS)
        search_json = found.as_json()
        if found.best is None:
            no_fit = found.why
        else:
            best = found.best.plan
            req = req.model_copy(update={f.name: getattr(best, f.name)
                                         for f in api.REQUEST_LAYOUT})
    result, sysm, workload = api.run_estimate(cat, req, system, FLAGS)
    data = ReportData(title=f"ocplan report: {model} on {sysm.spec.name}", result=result,
                      job=api.job_json(req),
                      timeline=api.pipeline_timeline(result, workload),
                      topology=api.topology_report(sysm),
                      findings=[f.as_dict() for f in api.check_system(sysm)],
                      search=search_json, to_train=train_figures(result, req, sysm),
                      micro_batches=result.plan.micro_batches(workload),
                      experts=workload.model.moe_experts,
                      allowed_invalid=bool(api.trust(sysm, allow_invalid)["allowed_invalid"]),
                      cluster=api.outlook(result, workload, sysm, req.train_tokens,
                                          price).as_json(),
                      currency=state.currency,
                      sensitivity=api.run_sensitivity(result, workload, sysm,
                                                      req.sensitivity))
    if report_format == "json":
        write_page(out_file, jsonio.dumps(data.as_json(), indent=2) + "\n")
    elif inline_plotly:
        write_page(out_file, render_report(data, plotly_js_path()))
    else:
        write_linked_report(out_file, render_report(data, None))
    if no_fit is not None:  # the search's reason, not that of the default layout
        out.print(printable(no_fit))
        raise typer.Exit(1)
    if not result.feasible:  # the report says why; the exit code too, as estimate's
        hint = api.infeasible_hint(result.reason, plan=result.plan,
                                   experts=workload.model.moe_experts)
        out.print(printable(f"the layout cannot run: {result.reason}"
                            + (f"; what to change: {hint}" if hint else "")))
        raise typer.Exit(1)
