"""``ocplan sweep`` and ``ocplan sweeps``: grids of searches run and stored, and what a
store holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ocplan.catalog.filekinds import refuse_other_file
from ocplan.cli.app import FLAGS, handles_bad_input, print_json, session_catalog
from ocplan.cli.options import FormatOpt, one_of
from ocplan.cli.render import add_row, out, print_csv, printable, progress_bar, styled
from ocplan.cli.state import Format, state
from ocplan.errors import SpecError
from ocplan.lazy import lazy_module

if TYPE_CHECKING:
    import rich.table as rich_table

    from ocplan.sweep.runner import TaskSummary
else:
    rich_table = lazy_module("rich.table")

#: ``ocplan sweep --backend`` values (:data:`ocplan.sweep.runner.BACKENDS`; a test keeps
#: them equal).
SWEEP_BACKENDS = ("local", "ray")
#: The results store of ``sweep`` and ``sweeps``.
StoreOpt = Annotated[str | None, typer.Option(
    "--db", metavar="<url|file>",
    help="Results store: an SQLAlchemy URL, or a file path for SQLite (default "
         "sqlite:///ocplan.db).")]


def _sweep_figures(summary: TaskSummary) -> dict[str, Any]:
    """A task's best layout with its stored comparison columns (time, cost; at the SLO
    goodput where a serving sweep ranks by it): the comparison's values first."""
    return (summary.best or {}) | (summary.row or {})


def _print_sweep_table(kind: str, summaries: Sequence[TaskSummary]) -> None:
    """A sweep's tasks as a table: model, hardware, chips, status, the kind's columns
    (:data:`~ocplan.reports.summary.SWEEP_COLUMNS_BY_KIND`) and the check errors, with
    the notes saying what the columns mean."""
    from ocplan.reports.summary import SWEEP_COLUMNS_BY_KIND, compare_cell, present

    table = rich_table.Table(title="best layout per task")
    figures = [_sweep_figures(s) for s in summaries]
    # the layout's column holds a failed task's reason
    layout, *rest = SWEEP_COLUMNS_BY_KIND[kind]
    shown = [layout, *present(rest, [f for f, s in zip(figures, summaries, strict=True)
                                     if s.best is not None])]
    for col in ("#", "model", "hardware", "chips", "status", *(c.label for c in shown),
                "check errors"):
        table.add_column(col)
    for i, (s, f) in enumerate(zip(summaries, figures, strict=True), 1):
        errors = str(sum(x["severity"] == "error" for x in (s.row or {}).get("findings", [])))
        if s.best is None:  # the reason stands where the layout would
            why = s.error or (s.row or {}).get("reason") or "no layout fits"
            cells = [why, *("-" for _ in shown[1:])]
        else:
            cells = [compare_cell(c, f.get(c.field), state.currency) for c in shown]
        add_row(table, str(i), s.task.model_name, s.task.hardware, str(s.task.chips), s.status,
                *cells, errors)
    out.print(table)
    # what the columns mean where the kind says (a serving sweep ranked by goodput)
    for note in dict.fromkeys(n for s in summaries if (n := (s.row or {}).get("note"))):
        out.print(printable(str(note)))


@handles_bad_input
def sweep_cmd(
    file: Annotated[Path, typer.Argument(metavar="SWEEP.yaml")],
    backend: Annotated[str, typer.Option(
        metavar=one_of(SWEEP_BACKENDS),
        help="local (process pool) or ray (remote tasks on a Ray cluster).")] = "local",
    address: Annotated[str | None, typer.Option(
        metavar="<host:port|auto>",
        help="Ray cluster to join (host:port or auto); with --backend ray.")] = None,
    workers: Annotated[int | None, typer.Option(
        min=1, help="Parallel tasks (default: CPUs of this machine or of the cluster).")
    ] = None,
    db: StoreOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Run a grid of layout searches (training, or serving with kind: serving), skipping
    those already stored; exit 1 if any task failed."""
    from ocplan.store.db import open_store
    from ocplan.sweep.runner import check_options, run_sweep
    from ocplan.sweep.spec import expand_sweep, load_sweep

    check_options(backend, address, workers)
    refuse_other_file(file, "sweep")
    sweep = load_sweep(file)
    cat = session_catalog()
    total = len(expand_sweep(sweep, cat))  # the whole grid is checked before the store opens
    with open_store(db) as store, progress_bar("sweep", fmt) as bar:
        task = bar.add_task("sweep", total=total)

        def tick(done: int, todo: int) -> None:
            bar.update(task, completed=done, total=todo)

        report = run_sweep(sweep, store, backend, address, workers, catalog=cat,
                           progress=tick)
        summaries = report.summaries(store)
        url = store.url
    counts = report.counts()
    if fmt is Format.json:
        print_json({"sweep": report.name, "kind": sweep.spec.kind, "db": url,
                    "backend": backend} | counts
                   | {"elapsed_s": report.elapsed_s,
                       "results": [s.as_json() for s in summaries]})
    else:
        out.print(styled((f"sweep {report.name}", "bold"), f" ({file}) into {url}: "
                         f"{counts['tasks']} tasks, {counts['skipped']} already stored, "
                         f"{counts['ran']} run, {counts['failed']} failed "
                         f"({report.elapsed_s:.1f} s, backend {backend})"))
        _print_sweep_table(sweep.spec.kind, summaries)
    if report.failed:
        raise typer.Exit(1)


class ListFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


@handles_bad_input
def sweeps_cmd(
    name: Annotated[str | None, typer.Argument(
        metavar="[NAME]", help="A stored sweep to show (none: list every stored sweep).",
        show_default=False)] = None,
    db: StoreOpt = None,
    fmt: Annotated[ListFormat, typer.Option(
        "--format", "-f", help="Output format; csv: one row per task, values in SI units "
                               "under their field names.")] = ListFormat.table,
    delete: Annotated[bool, typer.Option(
        "--delete", help="Forget the sweep NAME's record; its tasks' results stay stored "
                         "(other sweeps may name them, and a rerun finds them).")] = False,
) -> None:
    """List the sweeps in a results store, or show one: each task's best layout as its
    last run stored it (nothing is run)."""
    from ocplan.store.db import open_store
    from ocplan.sweep.stored import forget_sweep, list_sweeps, read_sweep

    if delete and name is None:
        raise SpecError.one(FLAGS, "delete", "forgets one sweep: give its NAME", True)
    if delete:
        assert name is not None
        with open_store(db) as store:
            forget_sweep(store, name)
            url = store.url
        if fmt is ListFormat.json:
            print_json({"db": url, "deleted": name})
        else:
            out.print(printable(f"forgot sweep {name} in {url} (its tasks' results stay stored)"))
        return
    with open_store(db) as store:
        url = store.url
        if name is None:
            listing = list_sweeps(store)
        else:
            view = read_sweep(store, name)
    if name is None:
        if fmt is ListFormat.json:
            print_json({"db": url, "sweeps": [s.as_json() for s in listing]})
        elif fmt is ListFormat.csv:
            columns = ["name", "kind", "tasks", "stored", "missing", "code", "updated_at",
                       "error"]
            print_csv(columns, [[s.as_json()[c] for c in columns] for s in listing])
        else:
            table = rich_table.Table(title=f"sweeps in {url}")
            for col in ("name", "kind", "tasks", "stored", "missing", "last run (UTC)",
                        "code"):
                table.add_column(col)
            for s in listing:  # a damaged record says why where its counts would be
                shown = ((str(s.stored), str(s.tasks - s.stored)) if s.error is None
                         else ("-", f"unreadable: {s.error}"))
                add_row(table, s.name, s.kind, str(s.tasks), *shown,
                        s.updated_at.strftime("%Y-%m-%d %H:%M:%S"), s.code)
            out.print(table if listing else printable(f"no sweeps in {url} yet: run one with "
                                                      "'ocplan sweep FILE'"))
        return
    if fmt is ListFormat.json:
        print_json({"db": url} | view.as_json())
    elif fmt is ListFormat.csv:
        from ocplan.reports.summary import SWEEP_COLUMNS_BY_KIND

        fields = [c.field for c in SWEEP_COLUMNS_BY_KIND[view.kind]]
        print_csv(["model", "hardware", "chip", "chips", "status", *fields, "reason"],
                  [[s.task.model_name, s.task.hardware, s.task.chip, s.task.chips,
                    s.status, *(_sweep_figures(s).get(f) if s.best is not None else None
                                for f in fields),
                    (s.row or {}).get("reason")] for s in view.summaries])
    else:
        counts = view.counts()
        out.print(styled((f"sweep {view.name}", "bold"),
                         f" ({view.kind}) in {url}: {counts['tasks']} tasks, "
                         f"{counts['stored']} stored, {counts['missing']} missing; last run "
                         f"{view.updated_at:%Y-%m-%d %H:%M:%S} UTC by code {view.code}"))
        _print_sweep_table(view.kind, view.summaries)
