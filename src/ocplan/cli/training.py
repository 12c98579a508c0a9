"""``ocplan estimate``, ``ocplan search`` and ``ocplan compare``: a training job on one
layout, its best layouts, and the best system for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ocplan.catalog.fields import MAX_TOP_K
from ocplan.cli.app import FLAGS, handles_bad_input, print_json, session_catalog
from ocplan.cli.layout_options import (
    with_layout_options,
    with_search_fixed_options,
    with_training_options,
)
from ocplan.cli.options import (
    PRICE_UNIT,
    SENSITIVITY_HELP,
    TRAINING_OBJECTIVES,
    AllowInvalidOpt,
    ChipOpt,
    ChipsOpt,
    FormatOpt,
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
    gathered,
    one_of,
    parse_counts,
    parse_duration,
    parse_power,
    parse_prices,
    priced,
    print_trust,
)
from ocplan.cli.pages import check_report_page, write_linked_report
from ocplan.cli.render import (
    add_row,
    elasticity_cell,
    out,
    print_search_grid,
    printable,
    progress_bar,
    quantity,
    side_by_side_rows,
    styled,
    summary_table,
)
from ocplan.cli.state import Format, state
from ocplan.errors import Infeasible, Problem, SpecError
from ocplan.lazy import lazy_module
from ocplan.plan.search_defaults import (
    DEFAULT_GLOBAL_BATCH,
    DEFAULT_MEMORY_HEADROOM,
    DEFAULT_SEQ_LEN,
    SENSITIVITY_FACTOR,
    TIE_TOLERANCE,
)

if TYPE_CHECKING:
    import rich.table as rich_table
    import rich.text as rich_text

    from ocplan import api
    from ocplan.catalog.system import System
    from ocplan.plan.estimate import Estimate
    from ocplan.plan.sensitivity import Sensitivity
    from ocplan.results.cluster import ClusterOutlook
    from ocplan.results.compare import Comparison
else:
    # The API imports every estimator; a command loads it when it first calls it, so
    # that ``ocplan match`` or ``ocplan catalog`` start without the training engine.
    api = lazy_module("ocplan.api")
    rich_table = lazy_module("rich.table")
    rich_text = lazy_module("rich.text")


@handles_bad_input
@with_layout_options
@with_training_options
def estimate_cmd(
    model: ModelOpt,
    chip: ChipOpt = None,
    chips: ChipsOpt = None,
    global_batch: GlobalBatchOpt = DEFAULT_GLOBAL_BATCH,
    seq_len: SeqLenOpt = DEFAULT_SEQ_LEN,
    system: SystemFileOpt = None,
    train_tokens: TrainTokensOpt = None,
    price: PriceOpt = None,
    allow_invalid: AllowInvalidOpt = False,
    sensitivity: Annotated[float, typer.Option(help=SENSITIVITY_HELP.format(
        what="the step", default=""))] = SENSITIVITY_FACTOR,
    fmt: FormatOpt = Format.table,
    *,
    options: OptionFlags,
    layout: LayoutFlags,
) -> None:
    """Estimate step time, throughput, MFU and memory of one parallel layout, and what
    each hardware resource would buy it."""
    req = from_flags(
        api.EstimateRequest, model=model, chip=chip, chips=chips,
        global_batch=global_batch,
        seq_len=seq_len, train_tokens=train_tokens, price_per_chip_hour=price,
        allow_invalid=allow_invalid, sensitivity=sensitivity, **options, **layout)
    result, sysm, workload = api.run_estimate(session_catalog(), req, system, FLAGS)
    extra = train_figures(result, req, sysm)
    cluster = api.outlook(result, workload, sysm, req.train_tokens, price)
    sens = api.run_sensitivity(result, workload, sysm, req.sensitivity)
    if fmt is Format.json:
        print_json(result.as_dict() | extra | {"model": model, "system": sysm.spec.name,
                                               "hint": api.infeasible_hint(
                                                    result.reason, plan=result.plan,
                                                    experts=workload.model.moe_experts)}
                   | api.trust(sysm, allow_invalid) | {"cluster": cluster.as_json()}
                   | {"sensitivity": sens.as_dict() if sens is not None else None}
                   | {"job": api.job_json(req)} | priced(price))
    else:
        _print_estimate(result, f"{model} on {sysm.spec.name}", extra,
                        sysm.accelerator.family, api.job_json(req),
                        workload.model.moe_experts)
        if result.feasible:
            _print_cluster(cluster)
        if sens is not None:
            _print_sensitivity(sens)
        print_trust(sysm, allow_invalid)
    if not result.feasible:
        raise typer.Exit(1)


def _print_estimate(result: Estimate, title: str, extra: dict[str, float],
                    chip_family: str | None = None,
                    job: dict[str, object] | None = None, experts: int = 0) -> None:
    from ocplan.reports.summary import estimate_rows

    rows = estimate_rows(result, extra, state.currency, chip_family, job, experts)
    if not result.feasible:
        out.print(styled((title, "bold"), ": ", ("infeasible", "red"), f": {result.reason}"))
        out.print(summary_table(rows))
        return
    out.print(summary_table(rows, title))


def _print_sensitivity(sens: Sensitivity) -> None:
    """What each hardware resource buys the step, and the sentence that sums it up."""
    f = f"x{sens.factor:g}"
    table = rich_table.Table(title=f"what each resource buys: the step with it {f}")
    for column in ("resource", "step", "change", "elasticity"):
        table.add_column(column, justify="left" if column == "resource" else "right")
    add_row(table, "as estimated", quantity(sens.base_step_s, "s"), "", "")
    for e in sens.effects:
        if e.present:
            add_row(table, e.label, quantity(e.step_s, "s"), f"{e.change:+.1%}",
                    elasticity_cell(e.elasticity))
        else:
            add_row(table, e.label, "-", e.absent, "-")
    add_row(table, f"every resource {f}", quantity(sens.together_s, "s"),
            f"{sens.together_change:+.1%}", "")
    out.print(table)
    out.print(printable(sens.summary()))


def _print_cluster(view: ClusterOutlook) -> None:
    """The facility around the system and the job's goodput under failures."""
    from ocplan.reports.summary import cluster_rows

    out.print(summary_table(cluster_rows(view, state.currency),
                            "cluster: facility and failures"))
    for finding in view.facility.findings:
        out.print(printable(f"facility {finding.severity} {finding.rule}: {finding.message}"))


@handles_bad_input
@with_search_fixed_options
@with_training_options
def search_cmd(
    model: ModelOpt,
    chip: ChipOpt = None,
    chips: ChipsOpt = None,
    global_batch: GlobalBatchOpt = DEFAULT_GLOBAL_BATCH,
    seq_len: SeqLenOpt = DEFAULT_SEQ_LEN,
    objective: Annotated[str, typer.Option(
        metavar=one_of(TRAINING_OBJECTIVES),
        help="What the best layout has most (throughput) or least of; the *_with_failures "
             "ones need the system file's storage.")] = "throughput",
    top: Annotated[int, typer.Option(help=f"Layouts to list (at most {MAX_TOP_K}).")] = 5,
    system: SystemFileOpt = None,
    train_tokens: TrainTokensOpt = None,
    price: Annotated[float | None, typer.Option(
        help=f"Price {PRICE_UNIT}, for cost to train (without one, the cost objective "
             "ranks by chip-hours and no cost is printed).")] = None,
    offload: Annotated[bool, typer.Option(help="Also try host activation offload.")] = False,
    chip_counts: Annotated[str | None, typer.Option(
        metavar="<n,n,...>", help="Comma-separated chip counts to compare, each <= --chips.")
    ] = None,
    max_power: Annotated[str | None, typer.Option(
        metavar="<power>", help="Most IT power allowed, with a unit (e.g. '2 MW').")] = None,
    memory_headroom: Annotated[float, typer.Option(
        help="Fraction of HBM to keep free (0 to below 1).")] = DEFAULT_MEMORY_HEADROOM,
    allow_invalid: AllowInvalidOpt = False,
    fmt: FormatOpt = Format.table,
    *,
    options: OptionFlags,
    layout: LayoutFlags,
) -> None:
    """Search the parallel layouts of a training job for the best one."""
    cat = session_catalog()
    req = from_flags(api.SearchRequest, model=model, chip=chip, chips=chips,
                     global_batch=global_batch, seq_len=seq_len, objective=objective,
                     top_k=top, train_tokens=train_tokens, price_per_chip_hour=price,
                     chip_counts=parse_counts(chip_counts), max_power_W=parse_power(max_power),
                     memory_headroom=memory_headroom, allow_invalid=allow_invalid,
                     **options, **layout)
    sysm, _, n_chips = api.resolve_job(cat, req, system, FLAGS,
                                       lambda: api.training_workload(cat, req, FLAGS))
    try:
        api.guard(sysm, allow_invalid)
    except Infeasible as exc:
        exit_refused(exc, sysm.spec.name, fmt)
    with progress_bar("searching", fmt) as bar:
        task = bar.add_task("search", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = api.run_search(cat, req, system, progress=tick, allow_offload=offload,
                                source=FLAGS)
    if fmt is Format.json:
        print_json(result.as_json() | api.trust(sysm, allow_invalid)
                   | {"job": api.job_json(req)} | priced(price))
        if not result.best_ends:  # nothing fits, or no run of it ends: exit 1, as an
            raise typer.Exit(1)   # estimate that cannot run
        return
    print_trust(sysm, allow_invalid)
    out.print(styled((model, "bold"), f" on {_hardware(n_chips, sysm)}, "
                     f"objective {objective}: {result.space_size:,} "
                     f"layouts, {result.evaluated:,} evaluated, {result.feasible:,} fit, "
                     f"{result.elapsed_s:.2f} s"))
    from ocplan.reports.summary import SEARCH_COLUMNS, job_text

    out.print(printable("job: " + job_text(api.job_json(req))))
    pruned = ", ".join(f"{k} {v:,}" for k, v in sorted(result.pruned.items()))
    out.print(f"pruned: {pruned}; every layout keeps {result.memory_headroom:.0%} of HBM "
              "free (--memory-headroom)")

    if result.top:
        print_search_grid(f"top {len(result.top)} (layouts within {TIE_TOLERANCE:.1%} "
                          "of a row's score are its tied variants)",
                          SEARCH_COLUMNS, result.as_json()["top"])
    out.print(printable(result.why))
    if result.best is not None:
        for caveat in result.best.caveats:
            out.print(printable(f"caveat: {caveat}"))
    if not result.best_ends:
        raise typer.Exit(1)


def _hardware(chips: int, system: System) -> str:
    """``CHIPS x ACCELERATOR (SYSTEM)``, the system's name left out when it says the
    same (a system built from --chip is named ``CHIPS x ACCELERATOR``)."""
    head = f"{chips} x {system.accelerator.id}"
    return head if system.spec.name == head else f"{head} ({system.spec.name})"


@handles_bad_input
@with_training_options
def compare_cmd(
    systems: Annotated[list[str], typer.Argument(
        metavar="SYSTEM.yaml|CHIP...", help="System files (or accelerator ids, on their "
                                            "default server) to compare.")],
    model: ModelOpt,
    chips: Annotated[int | None, typer.Option(
        help="Chips of each system to use (default: all of a system file's, else 8).")
    ] = None,
    chip_counts: Annotated[str | None, typer.Option(
        metavar="<n,n,...>", help="Comma-separated chip counts: compare each system at each.")
    ] = None,
    global_batch: GlobalBatchOpt = DEFAULT_GLOBAL_BATCH,
    seq_len: SeqLenOpt = DEFAULT_SEQ_LEN,
    objective: Annotated[str, typer.Option(
        metavar=one_of(TRAINING_OBJECTIVES), help="The best layout of each system by it.")
    ] = "throughput",
    train_tokens: TrainTokensOpt = None,
    price: Annotated[str | None, typer.Option(
        metavar="<price[,price...]>",
        help=f"Price {PRICE_UNIT}: one for all, or one per system separated by commas.")
    ] = None,
    memory_headroom: Annotated[float, typer.Option(
        help="Fraction of HBM every layout keeps free.")] = DEFAULT_MEMORY_HEADROOM,
    baseline: Annotated[int, typer.Option(
        help="Row (1 = first) the ratios divide by.")] = 1,
    allow_invalid: Annotated[bool, typer.Option(
        "--allow-invalid", help="Estimate systems that fail a compliance check anyway.")
    ] = False,
    max_cost: Annotated[float | None, typer.Option(
        help="Most the run may cost to train (needs --train-tokens and --price): pick the "
             "fastest row within it.")] = None,
    deadline: Annotated[str | None, typer.Option(
        metavar="<time>", help="Longest the run may take, e.g. '90 days' (needs "
                               "--train-tokens): alone, pick the cheapest row that meets "
                               "it (without --price, the least energy).")] = None,
    max_power: Annotated[str | None, typer.Option(
        metavar="<power>", help="Most facility power the run may draw, e.g. '20 MW'.")
    ] = None,
    report_file: Annotated[Path | None, typer.Option(
        "--report", help="Also write an HTML report (table, findings, bars, cost vs time; "
                         "Plotly in a shared file beside it).")] = None,
    fmt: FormatOpt = Format.table,
    *,
    options: OptionFlags,
) -> None:
    """Compare one training job on several systems, each at its best layout; with a
    budget (--max-cost, --deadline, --max-power), pick the row that meets it best."""
    problems: list[Problem] = []
    deadline_s = parse_duration(deadline, "--deadline", problems)
    power_W = gathered(problems, parse_power, max_power)
    counts = parse_counts(chip_counts)
    rows = len(systems) * (len(counts) if counts else 1)  # one per system and count
    if not 1 <= baseline <= rows:
        raise SpecError.one("--baseline", "baseline", f"expected a row number from 1 to "
                                                      f"{rows}", baseline)
    try:
        req = from_flags(api.CompareRequest, model=model, chips=chips,
                         chip_counts=counts, global_batch=global_batch,
                         seq_len=seq_len, objective=objective,
                         train_tokens=train_tokens, price_per_chip_hour=parse_prices(price),
                         memory_headroom=memory_headroom, baseline=baseline - 1,
                         allow_invalid=allow_invalid, max_cost=max_cost,
                         max_time_to_train_s=deadline_s, max_facility_power_W=power_W,
                         **options)
    except SpecError as exc:  # with the budget flags' problems: every bad flag at once
        raise SpecError(problems + list(exc.problems)) from None
    if problems:
        raise SpecError(problems)
    if report_file is not None:
        check_report_page(report_file)
    result = api.run_compare(session_catalog(), req, systems, FLAGS)
    if report_file is not None:
        from ocplan.reports.html import render_compare_report
        from ocplan.results.compare import budget_note

        write_linked_report(report_file, render_compare_report(
            f"ocplan compare: {model}", result.as_json()
            | {"budget_note": budget_note(result, state.currency)}, None, state.currency),
            announce=fmt is not Format.json, flag="--report")
    # a budget no row meets has no answer: exit 1, as a search with no layout does
    unmet = result.pick is not None and result.pick.name is None
    if fmt is Format.json:
        print_json(result.as_json() | {"job": api.job_json(req)} | priced(price))
        if unmet:
            raise typer.Exit(1)
        return
    _print_comparison(result, f"{model}: best layout of each system by {objective}")
    if unmet:
        raise typer.Exit(1)


def _print_comparison(result: Comparison, title: str) -> None:
    """The comparison as a table, one column per system (ratios to the baseline, the
    best of each row marked), then each system's check findings, the ranking's note and
    the budget's sentence."""
    table = rich_table.Table(title=printable(f"{title}; (x) = ratio to {result.baseline}; "
                                             "* (green) = best"))
    table.add_column("", style="bold")
    for i, r in enumerate(result.systems):
        table.add_column(f"{i + 1}. {r.name}" + (" (INVALID, allowed)" if r.allowed_invalid
                                                 else ""))
    from ocplan.reports.summary import COMPARE_ROWS

    side_by_side_rows(table, COMPARE_ROWS, [r.as_json() for r in result.systems],
                      result.leaders, result.baseline)
    out.print(table)
    for i, r in enumerate(result.systems):
        found = [f for f in r.findings if f.severity != "info"]
        if found:
            out.print(printable(f"{i + 1}. check: " + "; ".join(
                f"{f.severity} {f.rule}: {f.message}" for f in found)))
    from ocplan.results.compare import ranking_note  # loaded with the result

    ranking = ranking_note(result)
    if ranking is not None:
        out.print(printable(ranking), style="yellow" if result.within_reach() else None)
    if result.budget is not None and result.pick is not None:
        out.print(_budget_line(result))


def _budget_line(result: Comparison) -> rich_text.Text:
    """The budget's sentence (:func:`~ocplan.results.compare.budget_note`), its head
    bold and the pick green (red when no row meets it)."""
    from ocplan.results.compare import budget_note

    note = budget_note(result, state.currency)
    assert note is not None
    head, _, rest = note.partition("): ")
    pick = result.pick
    assert pick is not None
    if pick.name is None:
        return styled((head + "): ", "bold"), (rest, "red"))
    return styled((head + "): ", "bold"), (pick.name, "green bold"),
                  rest.removeprefix(pick.name))


def train_figures(result: Estimate, req: Any, system: System) -> dict[str, float]:
    """Time, energy and (with a price) cost to train the request's tokens."""
    return api.to_train(result, req.train_tokens, req.price_per_chip_hour, system)
