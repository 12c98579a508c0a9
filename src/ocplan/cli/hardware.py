"""``ocplan catalog``, ``ocplan check`` and ``ocplan topology``: the catalog, compliance
findings and the topology of a system.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ocplan.catalog.display import human_fields
from ocplan.catalog.filekinds import managed_kind
from ocplan.catalog.schema import KINDS, Accelerator, Entry
from ocplan.cli.app import handles_bad_input, print_json, session_catalog
from ocplan.cli.options import FormatOpt, one_of
from ocplan.cli.render import add_row, out, printable, quantity, styled, summary_table
from ocplan.cli.state import Format
from ocplan.errors import Infeasible, SpecError
from ocplan.lazy import lazy_module

if TYPE_CHECKING:
    import rich.table as rich_table

    from ocplan import api
    from ocplan.topology.analysis import TopologySummary
else:
    # The API imports every estimator; a command loads it when it first calls it, so
    # that ``ocplan match`` or ``ocplan catalog`` start without the training engine.
    api = lazy_module("ocplan.api")
    rich_table = lazy_module("rich.table")


def _hops(n: int) -> str:
    """A hop count in words: "1 hop", "6 hops", "disconnected" for -1."""
    return "disconnected" if n < 0 else f"{n} hop" + ("" if n == 1 else "s")


def _entry_json(entry: Entry) -> dict[str, Any]:
    return entry.model_dump(mode="json", exclude_none=True)


@handles_bad_input
def catalog_list(
    kind: Annotated[str | None, typer.Option(
        "--kind", "-k", metavar=one_of(KINDS), help="Entries of this kind only.")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """List catalog entries."""
    if kind is not None and kind not in KINDS:
        raise SpecError.one("--kind", "kind", f"unknown kind; expected one of "
                                              f"{', '.join(KINDS)}", kind)
    cat = session_catalog()
    entries = cat.all(kind)
    if fmt is Format.json:
        print_json([_entry_json(e) for e in entries])
        return
    title = f"ocplan catalog{f' ({kind})' if kind else ''}: {len(entries)} entries"
    table = rich_table.Table(title=title)
    table.add_column("kind")
    table.add_column("id", style="bold")
    table.add_column("name")
    table.add_column("key figures")
    for e in entries:
        add_row(table, getattr(e, "kind", ""), e.id, e.name, _key_figures(e))
    out.print(table)


def _key_figures(e: Entry) -> str:
    if isinstance(e, Accelerator):
        bf16 = e.peak_flops.bf16 or e.peak_flops.fp16
        return (f"{quantity(bf16, 'FLOP/s')} bf16, {quantity(e.memory.hbm_capacity, 'B')} "
                f"@ {quantity(e.memory.hbm_bandwidth, 'B/s')}, {quantity(e.power.tdp, 'W')}, "
                f"{e.form_factor}{' ' + e.oam_version if e.oam_version else ''}")
    fields = e.model_dump(exclude={"id", "name", "sources", "notes", "kind"})
    shown = [f"{k}={v}" for k, v in fields.items() if isinstance(v, (int, str)) and v != ""]
    return ", ".join(shown[:4])


@handles_bad_input
def catalog_show(entry_id: Annotated[str, typer.Argument(metavar="ID")],
                 fmt: FormatOpt = Format.table) -> None:
    """Show one entry with its sources."""
    entry = session_catalog().find(entry_id)
    data = _entry_json(entry)
    if fmt is Format.json:
        print_json(data)
        return
    fields = human_fields(entry, skip=("sources", "name", "id"))
    out.print(summary_table(list(fields.items()), f"{entry.name} ({entry.id})"))
    out.print(styled(("Sources", "bold")))
    for src in entry.sources:
        where = f" ({src.locator})" if src.locator else ""
        out.print(printable(f"  - {src.title}{where}; covers {', '.join(src.covers)}"))
        if src.url:
            out.print(printable(f"    {src.url}"))


@handles_bad_input
def check(file: Annotated[Path, typer.Argument(metavar="SYSTEM.yaml")],
          fmt: FormatOpt = Format.table) -> None:
    """Check a system file, or a compute-module file (``kind: compute-module``), against
    the OAM/UBB/OCM specs; exit 1 on errors."""
    # The kind first, as ``serve --system`` decides it: another kind is one line, not
    # every key of the file as an unknown system field.
    kind = managed_kind(file, "ocplan check")
    catalog = session_catalog()
    if kind == "compute-module":
        module = api.read_module(catalog, file)
        findings = api.check_module(module, catalog)
        name = module.name
        memory = module.memory
        summary = f"{module.sockets} x {module.cpu}, " + (
            "soldered memory" if memory.module_type == "soldered" else
            f"{memory.dimms_per_channel} {memory.module_type} DIMM(s) per channel")
    else:
        system = api.read_system(catalog, file)
        findings = api.check_system(system)
        name = system.spec.name
        summary = (f"{system.num_chips} x {system.accelerator.id} in {system.num_servers} x "
                   f"{system.server.id}")
    errors = sum(f.severity == "error" for f in findings)
    warnings = sum(f.severity == "warning" for f in findings)
    if fmt is Format.json:
        print_json({"system": name, "file": str(file), "errors": errors,
                    "warnings": warnings, "findings": [f.as_dict() for f in findings]})
    else:
        out.print(styled((name, "bold"), f" ({file}): {summary}"))
        if not findings:
            out.print(styled(("  no findings: the composition meets every rule", "green")))
        colours = {"error": "red", "warning": "yellow", "info": "cyan"}
        for f in findings:
            out.print(styled("  ", (f"{f.severity.upper():7}", colours[f.severity]),
                             f" {f.rule}: {f.message} ", (f"({f.section})", "dim")))
        out.print(f"  {errors} error(s), {warnings} warning(s)")
    if errors:
        raise typer.Exit(1)


@handles_bad_input
def topology(file: Annotated[Path, typer.Argument(metavar="SYSTEM.yaml")],
             fmt: FormatOpt = Format.table) -> None:
    """Summarize a system's topology: chips, links, bandwidths, bisection, diameter."""
    system = api.read_system(session_catalog(), file)
    try:
        summary, budget = api.topology_summary(system)
    except Infeasible as exc:  # too large to summarize: one line, as for bad input
        raise SpecError.one(str(file), "", exc.detail) from None
    data = api.topology_figures(summary, budget, system)
    if fmt is Format.json:
        print_json(data)
        return
    rows = [
        ("chips", f"{summary.chips} ({summary.servers} servers x {summary.chips_per_server})"),
        ("board topology", _board_topology(summary)),
        ("graph", f"{summary.nodes} nodes, {summary.links} links ({summary.method})"),
        ("scale-up per port", quantity(summary.scale_up_port_Bps, "B/s")),
        ("scale-up per chip", quantity(summary.scale_up_Bps_per_chip, "B/s")),
        ("scale-out per chip", quantity(summary.scale_out_Bps_per_chip, "B/s")),
        ("board bisection", quantity(summary.board_bisection_Bps, "B/s")),
        ("system bisection", quantity(summary.bisection_Bps, "B/s")),
        ("diameter", f"{_hops(summary.diameter_hops)} (chip to chip)"),
        ("scale-up diameter", f"{_hops(summary.board_diameter_hops)} (chip to chip within a "
                              "server, scale-up links only)"),
        ("scale-out", f"{summary.scale_out_tiers} tier(s), {summary.scale_out_switches} switches"),
        ("power", f"{quantity(budget.server_W, 'W')} per server; IT (servers and switches) "
                  f"{quantity(budget.it_W, 'W')} at TDP, "
                  f"{quantity(data['supply_input_power_W'], 'W')} at the supplies' input; "
                  f"{quantity(data['facility_power_W'], 'W')} facility at PUE {data['pue']:.2f}"),
    ]
    out.print(summary_table(rows, f"{summary.name}: topology"))
    out.print(styled(("bandwidths are per direction", "dim")))


def _board_topology(summary: TopologySummary) -> str:
    """The board's topology kind; a torus with its shape and, where its dimensions run at
    different rates, each dimension's link rate."""
    dims, rates = summary.torus_dims, summary.torus_link_Bps
    if dims is None or rates is None:
        return summary.board_topology
    text = f"{summary.board_topology} {'x'.join(str(d) for d in dims)}"
    if len(set(rates)) > 1:
        text += " (links " + ", ".join(quantity(r, "B/s") for r in rates) + " per dimension)"
    return text
