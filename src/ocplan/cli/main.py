"""The ``ocplan`` command: a thin client of the Python API.

Exit codes: 0 success (``check``: no errors), 1 ``check`` found errors, 2 bad input
(one line per problem on stderr, no traceback).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from ocplan.catalog.catalog import Catalog, load_catalog
from ocplan.catalog.schema import KINDS, Accelerator, Entry
from ocplan.catalog.system import load_system
from ocplan.checks.rules import run_rules
from ocplan.errors import SpecError
from ocplan.topology.analysis import summarize
from ocplan.topology.power import power_budget
from ocplan.units import format_quantity

__all__ = ["app", "main"]

P = ParamSpec("P")
R = TypeVar("R")


def handles_bad_input(func: Callable[P, R]) -> Callable[P, R]:
    """Turn SpecError into one stderr line per problem and exit code 2 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except SpecError as exc:
            for problem in exc.problems:
                err.print(problem.line(), markup=False, highlight=False)
            raise typer.Exit(2) from None

    return wrapper

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="ocplan: check, measure and plan open-standard (OAM/UBB/OCM) AI systems.")
catalog_app = typer.Typer(no_args_is_help=True, help="Browse the hardware and model catalog.")
app.add_typer(catalog_app, name="catalog")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class Format(StrEnum):
    table = "table"
    json = "json"


class _State:
    catalog_dirs: tuple[str, ...] = ()


state = _State()

CatalogOpt = Annotated[list[Path] | None, typer.Option(
    "--catalog", help="Extra catalog folder (repeatable); also OCPLAN_CATALOG.")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]


@app.callback()
def _root(catalog: CatalogOpt = None) -> None:
    state.catalog_dirs = tuple(str(p) for p in catalog or [])


def _catalog() -> Catalog:
    return load_catalog(state.catalog_dirs)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def _entry_json(entry: Entry) -> dict[str, Any]:
    return entry.model_dump(mode="json", exclude_none=True)


def _q(value: float | None, unit: str) -> str:
    return "-" if value is None else format_quantity(value, unit)


@catalog_app.command("list")
@handles_bad_input
def catalog_list(
    kind: Annotated[str | None, typer.Option(
        "--kind", "-k", help=f"One of: {', '.join(KINDS)}.")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """List catalog entries."""
    if kind is not None and kind not in KINDS:
        raise SpecError.one("--kind", "kind", f"unknown kind; expected one of "
                                              f"{', '.join(KINDS)}", kind)
    cat = _catalog()
    entries = cat.all(kind)
    if fmt is Format.json:
        _print_json([_entry_json(e) for e in entries])
        return
    table = Table(title=f"ocplan catalog{f' ({kind})' if kind else ''}: {len(entries)} entries")
    table.add_column("kind")
    table.add_column("id", style="bold")
    table.add_column("name")
    table.add_column("key figures")
    for e in entries:
        table.add_row(getattr(e, "kind", ""), e.id, e.name, _key_figures(e))
    out.print(table)


def _key_figures(e: Entry) -> str:
    if isinstance(e, Accelerator):
        bf16 = e.peak_flops.bf16 or e.peak_flops.fp16
        return (f"{_q(bf16, 'FLOP/s')} bf16, {_q(e.memory.hbm_capacity, 'B')} "
                f"@ {_q(e.memory.hbm_bandwidth, 'B/s')}, {_q(e.power.tdp, 'W')}, "
                f"{e.form_factor}{' ' + e.oam_version if e.oam_version else ''}")
    fields = e.model_dump(exclude={"id", "name", "sources", "notes", "kind"})
    shown = [f"{k}={v}" for k, v in fields.items() if isinstance(v, (int, str)) and v != ""]
    return ", ".join(shown[:4])


@catalog_app.command("show")
@handles_bad_input
def catalog_show(entry_id: Annotated[str, typer.Argument(metavar="ID")],
                 fmt: FormatOpt = Format.table) -> None:
    """Show one entry with its sources."""
    entry = _catalog().find(entry_id)
    data = _entry_json(entry)
    if fmt is Format.json:
        _print_json(data)
        return
    table = Table(title=f"{entry.name} ({entry.id})", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in data.items():
        if key in ("sources", "name", "id"):
            continue
        table.add_row(key, _flat(value))
    out.print(table)
    out.print("[bold]Sources[/bold]")
    for src in entry.sources:
        where = f" ({src.locator})" if src.locator else ""
        out.print(f"  - {src.title}{where}; covers {', '.join(src.covers)}")
        if src.url:
            out.print(f"    {src.url}")


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_flat(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_flat(v) for v in value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@app.command()
@handles_bad_input
def check(file: Annotated[Path, typer.Argument(metavar="SYSTEM.yaml")],
          fmt: FormatOpt = Format.table) -> None:
    """Check a system file against the OAM/UBB/OCM specs; exit 1 on errors."""
    system = load_system(file, _catalog())
    findings = run_rules(system)
    errors = sum(f.severity == "error" for f in findings)
    warnings = sum(f.severity == "warning" for f in findings)
    if fmt is Format.json:
        _print_json({"system": system.spec.name, "file": str(file), "errors": errors,
                     "warnings": warnings, "findings": [f.as_dict() for f in findings]})
    else:
        out.print(f"[bold]{system.spec.name}[/bold] ({file}): {system.num_chips} x "
                  f"{system.accelerator.id} in {system.num_servers} x {system.server.id}")
        if not findings:
            out.print("  [green]no findings: the composition meets every rule[/green]")
        colours = {"error": "red", "warning": "yellow", "info": "cyan"}
        for f in findings:
            c = colours[f.severity]
            out.print(f"  [{c}]{f.severity.upper():7}[/{c}] {f.rule}: {f.message} "
                      f"[dim]({f.section})[/dim]")
        out.print(f"  {errors} error(s), {warnings} warning(s)")
    if errors:
        raise typer.Exit(1)


@app.command()
@handles_bad_input
def topology(file: Annotated[Path, typer.Argument(metavar="SYSTEM.yaml")],
             fmt: FormatOpt = Format.table) -> None:
    """Summarize a system's topology: chips, links, bandwidths, bisection, diameter."""
    system = load_system(file, _catalog())
    summary = summarize(system)
    budget = power_budget(system)
    data = summary.as_dict() | {"server_power_W": budget.server_W, "it_power_W": budget.it_W,
                                "facility_power_W": budget.facility_W}
    if fmt is Format.json:
        _print_json(data)
        return
    table = Table(title=f"{summary.name}: topology", show_header=False)
    table.add_column("measure", style="bold")
    table.add_column("value")
    rows = [
        ("chips", f"{summary.chips} ({summary.servers} servers x {summary.chips_per_server})"),
        ("board topology", summary.board_topology),
        ("graph", f"{summary.nodes} nodes, {summary.links} links"),
        ("scale-up per port", _q(summary.scale_up_port_Bps, "B/s")),
        ("scale-up per chip", _q(summary.scale_up_Bps_per_chip, "B/s")),
        ("scale-out per chip", _q(summary.scale_out_Bps_per_chip, "B/s")),
        ("board bisection", _q(summary.board_bisection_Bps, "B/s")),
        ("system bisection", _q(summary.bisection_Bps, "B/s")),
        ("diameter", f"{summary.diameter_hops} hops (chip to chip)"),
        ("scale-out", f"{summary.scale_out_tiers} tier(s), {summary.scale_out_switches} switches"),
        ("power", f"{_q(budget.server_W, 'W')} per server, {_q(budget.it_W, 'W')} IT, "
                  f"{_q(budget.facility_W, 'W')} at PUE {system.spec.facility.pue}"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    out.print(table)
    out.print("[dim]bandwidths are per direction[/dim]")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 check errors, 2 bad input)."""
    try:
        app(args=argv, prog_name="ocplan")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
