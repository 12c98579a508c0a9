"""Compliance rules: each takes a resolved System and returns its findings.

A rule id names what it checks (``OAM-RAIL-POWER``); the severity is ``error`` (the
composition violates a spec or cannot work), ``warning`` (it works with a penalty) or
``info``. ``section`` cites the spec or datasheet the limit comes from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from ocplan.catalog.schema import FormFactor
from ocplan.catalog.system import System
from ocplan.checks.finding import Finding, Severity
from ocplan.checks.limits import (
    AIR_GUIDANCE_W,
    MIN_POWER_CAP_FRACTION,
    MIN_POWER_CAP_SOURCE,
    rail_limit,
)
from ocplan.topology.builders import ports_needed
from ocplan.topology.cluster import PCIE_LANE_Bps, chip_scale_out_Bps, nic_Bps, scale_out_shape
from ocplan.topology.power import power_budget, psu_capacity_W
from ocplan.units import format_quantity

__all__ = ["REFUSED", "RULES", "Finding", "Rule", "Severity", "refusal", "run_rules"]

Rule = Callable[[System], list[Finding]]


def _w(value: float) -> str:
    return format_quantity(value, "W")


#: How a finding names each module form factor: (with its article, plural, whose form).
FORM_FACTOR_NAMES: dict[FormFactor, tuple[str, str, str]] = {
    "oam": ("an OAM module", "OAM modules", "OCP OAM"),
    "sxm": ("an SXM module", "SXM modules", "NVIDIA's form factor"),
    "pcie": ("a PCIe card", "PCIe cards", "PCI-SIG CEM"),
    "tpu": ("a TPU board", "TPU boards", "Google's own form"),
    "npu-module": ("a vendor-specific module", "vendor-specific modules",
                   "the board vendor's own form"),
    "superchip": ("a superchip", "superchips", "NVIDIA's CPU+GPU board"),
}

#: Where the FORM-FACTOR rule's fact comes from.
FORM_FACTOR_SECTION = ("OCP OAM base specification v1.0/v1.5 §1-2 (the module, its "
                       "mezzanine connectors and outline) and OCP OAI UBB design "
                       "specification v1.0/v1.5 (the baseboard built for OAM modules)")


def form_factor(system: System) -> list[Finding]:
    """A module of another form factor than the baseboard's slots take (an SXM module on
    an OAM UBB) cannot be seated: the OAM base specification fixes the module's outline,
    mezzanine connectors and power pins, and the UBB specification builds its slots for
    exactly those; SXM, TPU and vendor modules use connectors of their own. Power and
    link rules would otherwise judge a module that does not fit (and pass it when its
    numbers happen to fit)."""
    acc, board, server = system.accelerator, system.baseboard, system.server
    takes = board.slot_form_factor
    if takes is None:
        return [Finding("FORM-FACTOR", "warning",
                        f"{board.id} publishes no module_form_factor; whether "
                        f"{acc.id} ({acc.form_factor}) fits its slots is not checked",
                        "catalog", board.id)]
    if acc.form_factor == takes:
        return []
    name, _, whose = FORM_FACTOR_NAMES[acc.form_factor]
    if acc.form_factor == "oam":
        whose = f"OCP OAM {acc.oam_version}"
    elif acc.form_factor == "npu-module":
        whose = f"{acc.vendor}'s own form"
    _, slot_name, slot_whose = FORM_FACTOR_NAMES[takes]
    if takes == "oam" and board.spec_version:
        slot_whose = f"OCP OAM {board.spec_version}"
    return [Finding("FORM-FACTOR", "error",
                    f"{acc.id} is {name} ({whose}); the {server.id} baseboard's slots "
                    f"({board.id}) take {slot_name} ({slot_whose})",
                    FORM_FACTOR_SECTION, acc.id)]


def oam_rail_power(system: System) -> list[Finding]:
    """Module TDP over the limit of its main power rail for its OAM version."""
    acc = system.accelerator
    if acc.form_factor != "oam" or acc.oam_version is None:
        return []
    limit = rail_limit(acc.oam_version, acc.power.rail)
    if limit is None:
        return [Finding("OAM-RAIL-POWER", "error",
                        f"{acc.id}: a {acc.power.rail:g} V main rail is outside every rail "
                        f"window of OAM {acc.oam_version}",
                        f"OAM v{acc.oam_version} power rails", acc.id)]
    if acc.power.tdp > limit.max_tdp_W:
        return [Finding("OAM-RAIL-POWER", "error",
                        f"{acc.id}: TDP {_w(acc.power.tdp)} exceeds the {limit.rail} rail limit "
                        f"of {_w(limit.max_tdp_W)} for OAM {acc.oam_version}",
                        limit.section, acc.id)]
    return []


def chassis_cooling(system: System) -> list[Finding]:
    """A liquid-cooled system needs a liquid-cooled chassis and modules rated for it:
    vendors sell air and liquid variants as different products (cold plates, manifolds
    and quick disconnects are not added to an air chassis in the field)."""
    if system.cooling != "liquid":
        return []
    findings = []
    server, acc = system.server, system.accelerator
    if server.cooling != "liquid":
        findings.append(Finding("CHASSIS-COOLING", "error",
                                f"{server.id} is an air-cooled chassis; a liquid-cooled system "
                                "needs a liquid-cooled server (a different product)",
                                f"{server.name} datasheet", server.id))
    if "liquid" not in acc.cooling:
        findings.append(Finding("CHASSIS-COOLING", "error",
                                f"{acc.id} is offered for {', '.join(acc.cooling)} cooling "
                                "only; the system is liquid-cooled", f"{acc.name} datasheet",
                                acc.id))
    return findings


def integrated_nic(system: System) -> list[Finding]:
    """Server NICs given for a chip with integrated scale-out ports (Gaudi) take their
    place as the scale-out path: say so, with both bandwidths, rather than silently."""
    inic = system.accelerator.integrated_nic
    scale_out = system.spec.scale_out
    if inic is None or scale_out is None or scale_out.nics_per_server is None:
        return []
    own = inic.ports * inic.port_bandwidth
    given = chip_scale_out_Bps(system)
    return [Finding(
        "INTEGRATED-NIC", "warning",
        f"scale_out.nics_per_server = {scale_out.nics_per_server} replaces the "
        f"{inic.ports} integrated ports of {system.accelerator.id} as the scale-out path: "
        f"{format_quantity(given, 'B/s')} per chip instead of {format_quantity(own, 'B/s')};"
        " leave nics_per_server out to use the integrated ports",
        f"{system.accelerator.name} datasheet", system.accelerator.id)]


def air_cooling(system: System) -> list[Finding]:
    """Module TDP over the air-cooling limit in an air-cooled chassis."""
    if system.cooling != "air":
        return []
    acc = system.accelerator
    findings = []
    if "air" not in acc.cooling:
        findings.append(Finding("AIR-COOLING", "error",
                                f"{acc.id} is offered for {', '.join(acc.cooling)} cooling only; "
                                f"the system is air-cooled", f"{acc.name} datasheet", acc.id))
    candidates = [
        (system.server.air_module_power_max, f"{system.server.name} air-cooled slot rating"),
        (acc.power.air_max_tdp, f"{acc.name} air-cooled rating"),
    ]
    # The OAM guidance is the fallback the limits table names it: a chassis or module
    # rating, where the catalog gives one, is the measured fact and wins over it.
    if acc.oam_version in AIR_GUIDANCE_W and all(v is None for v, _ in candidates):
        candidates.append((AIR_GUIDANCE_W[acc.oam_version],
                           f"OAM v{acc.oam_version} cooling guidance"))
    if system.server.cooling == "liquid":
        findings.append(Finding("AIR-COOLING", "error",
                                f"{system.server.id} is a liquid-cooled chassis; it has no "
                                "air-cooled configuration", f"{system.server.name} datasheet",
                                system.server.id))
    limits = [(v, src) for v, src in candidates if v is not None]
    if not limits and not findings:  # an error above already says air cannot cool it
        findings.append(Finding(
            "AIR-COOLING", "warning",
            f"{acc.id}: no air-cooling rating is known for a {_w(system.module_power)} module in "
            f"{system.server.id}; verify the chassis can remove it", "catalog",
            system.server.id))
    if limits:
        limit, src = min(limits, key=lambda item: item[0])
        if system.module_power > limit:
            findings.append(Finding(
                "AIR-COOLING", "error",
                f"{acc.id}: {_w(system.module_power)} exceeds the air-cooling limit of "
                f"{_w(limit)} per module; use liquid cooling or a lower power profile",
                src, system.server.id))
    return findings


def power_cap(system: System) -> list[Finding]:
    """An operator's ``power_cap`` that does nothing or that no module accepts: a cap at
    or above the power the module runs at without it (its TDP, or the air rating or
    power mode the system names) changes nothing, which a planner who set it expects it
    to; a cap below :data:`~ocplan.checks.limits.MIN_POWER_CAP_FRACTION` of the TDP is
    below the lowest limit a vendor's management interface is known to accept (NVIDIA:
    200 W of a 1000 W B200). Both are warnings: the estimate still runs, at the module
    power the system file implies."""
    cap = system.spec.power_cap
    if cap is None:
        return []
    acc = system.accelerator
    tdp = acc.power.tdp
    uncapped = replace(system, spec=system.spec.model_copy(update={"power_cap": None}))
    runs_at = uncapped.module_power
    if cap >= runs_at:
        profile = "" if runs_at == tdp else f"; it runs at {_w(runs_at)} in this system"
        return [Finding("POWER-CAP", "warning",
                        f"{acc.id}: power_cap {_w(cap)} has no effect (TDP {_w(tdp)}"
                        f"{profile})", "system power_cap", system.spec.name)]
    floor = MIN_POWER_CAP_FRACTION * tdp
    if cap < floor:
        return [Finding("POWER-CAP", "warning",
                        f"{acc.id}: power_cap {_w(cap)} is below {_w(floor)}, "
                        f"{MIN_POWER_CAP_FRACTION:.0%} of its {_w(tdp)} TDP, the lowest "
                        "share a vendor's power limit is known to accept; the estimate "
                        "runs the module at a power it could not be held to",
                        MIN_POWER_CAP_SOURCE, acc.id)]
    return []


def slot_power(system: System) -> list[Finding]:
    """Module TDP over what a baseboard slot delivers."""
    acc, board = system.accelerator, system.baseboard
    if system.module_power > board.slot_power_max:
        return [Finding("SLOT-POWER", "error",
                        f"{acc.id}: {_w(system.module_power)} exceeds the "
                        f"{_w(board.slot_power_max)} a {board.id} slot delivers",
                        f"{board.name} slot power", board.id)]
    return []


def board_slots(system: System) -> list[Finding]:
    """More modules than baseboard slots."""
    board = system.baseboard
    n = system.chips_per_server
    if n > board.slots:
        return [Finding("BOARD-SLOTS", "error",
                        f"{n} modules per server but baseboard {board.id} has {board.slots} slots",
                        f"{board.name}", board.id)]
    return []


def topology_ports(system: System) -> list[Finding]:
    """A topology that needs more scale-up ports than the module has."""
    acc, board = system.accelerator, system.baseboard
    have = acc.scale_up.ports if acc.scale_up else 0
    need = ports_needed(board.topology, min(system.chips_per_server, board.slots),
                        board.links_per_pair, system.torus_dims, have)
    if need > have and acc.scale_up is None:
        # An unpublished port count is not zero ports (BR100's BLink, Max 1550's Xe Link
        # and Enflame's GCU-LARE exist, their port counts are not public): say it was not
        # checked, as HOST-LANES does for a CPU without a published lane count.
        return [Finding("TOPOLOGY-PORTS", "warning",
                        f"{acc.id} publishes no scale-up ports; {board.topology} on {board.id} "
                        f"(needs {need} per module) not checked",
                        "OAM v1.5 §9.2 (intra-board topologies)", acc.id)]
    if need > have:
        return [Finding("TOPOLOGY-PORTS", "error",
                        f"{board.topology} on {board.id} needs {need} scale-up ports per module; "
                        f"{acc.id} has {have}",
                        "OAM v1.5 §9.2 (intra-board topologies)", acc.id)]
    return []


def link_rate(system: System) -> list[Finding]:
    """Links whose lane count or SerDes rate the module or the board cannot carry."""
    acc, board = system.accelerator, system.baseboard
    up = acc.scale_up
    if up is None or board.topology in ("pcie_switch",):
        return []
    findings = []
    if up.lanes_per_port > board.max_lanes_per_link:
        findings.append(Finding(
            "LINK-LANES", "error",
            f"{acc.id} ports are x{up.lanes_per_port}; {board.id} routes at most "
            f"x{board.max_lanes_per_link} per link", "OAM v1.5 §2.3 (x16 ports, x8 halves)",
            board.id))
    if up.lane_rate > board.max_lane_rate * 1.001:
        findings.append(Finding(
            "LINK-RATE", "error",
            f"{acc.id} SerDes signal at {format_quantity(up.lane_rate, 'b/s')} per lane; "
            f"{board.id} channels carry at most {format_quantity(board.max_lane_rate, 'b/s')}",
            "OAM connector class (Mirror Mezz 56G / Mirror Mezz Pro 112G)", board.id))
    return findings


def _socket_link_lanes(system: System) -> int:
    """PCIe lanes per socket taken by socket-to-socket links: none in a one-socket host
    node; else the server's wiring where it states one, the CPU's default otherwise (0
    when neither is published: Intel's UPI has lanes of its own)."""
    host = system.server.host
    if host.sockets // system.server.hosts <= 1:
        return 0
    if host.socket_link_lanes is not None:
        return host.socket_link_lanes
    return system.cpu.socket_link_lanes or 0


def host_lanes(system: System) -> list[Finding]:
    """Host PCIe/CXL lanes oversubscribed by the accelerators and NICs hung on them."""
    acc, board, cpu = system.accelerator, system.baseboard, system.cpu
    sockets = system.server.host.sockets
    if cpu.pcie_lanes is None:  # a catalog CPU whose vendor publishes no lane count
        return [Finding("HOST-LANES", "warning", f"{cpu.id}: PCIe lane count not published; "
                        "host lanes not checked", "catalog", system.server.id)]
    link = _socket_link_lanes(system)
    cpu_lanes = sockets * (cpu.pcie_lanes - link)
    accel_lanes = system.chips_per_server * (acc.host.lanes if acc.host.kind != "nvlink-c2c"
                                             else 0)
    nic_cpu = sum(n.host.lanes * c for n, c, a in system.server_nics if a == "cpu")
    nic_sw = sum(n.host.lanes * c for n, c, a in system.server_nics if a == "pcie-switch")
    uplink = board.host_uplink
    findings: list[Finding] = []
    section = f"{cpu.name}: {cpu.pcie_lanes} PCIe Gen{cpu.pcie_gen} lanes per socket"
    if uplink is not None and uplink.switch_lanes > 0:
        downstream = uplink.switch_lanes - uplink.lanes
        behind = accel_lanes + nic_sw
        if behind > downstream:
            findings.append(Finding(
                "HOST-LANES", "error",
                f"{behind} device lanes behind {board.id}'s PCIe switches, which have "
                f"{downstream} downstream lanes", f"{board.name} host interface", board.id))
        cpu_demand = uplink.lanes + nic_cpu
        if behind > 2 * uplink.lanes:
            # Information, not a warning: reference designs (HGX, the AMD UBB platforms)
            # share 4:1 on purpose, since module-to-NIC traffic (GPUDirect RDMA) stays
            # behind the switches; only host-memory traffic shares the uplinks.
            findings.append(Finding(
                "HOST-LANES", "info",
                f"host path shared {behind / uplink.lanes:.1f}:1 ({behind} device lanes "
                f"over {uplink.lanes} uplink lanes): module-to-NIC traffic stays behind the "
                "switches; host-memory traffic (data loading, checkpoints, offload) shares "
                "the uplinks", f"{board.name} host interface", board.id))
    else:
        nic_uplink = system.server.nic_switch_uplink_lanes
        cpu_demand = accel_lanes + nic_cpu + (nic_sw if nic_uplink is None else nic_uplink)
        if nic_uplink is not None and nic_sw > 2 * nic_uplink:
            findings.append(Finding(
                "HOST-LANES", "info",
                f"NIC path shared {nic_sw / nic_uplink:.1f}:1 ({nic_sw} NIC lanes over "
                f"{nic_uplink} switch uplink lanes)", f"{system.server.name} NIC switches",
                system.server.id))
    if cpu_demand > cpu_lanes:
        findings.append(Finding(
            "HOST-LANES", "error",
            f"{cpu_demand} lanes hung on {sockets} x {cpu.id} which offer {cpu_lanes}"
            + (f" ({link} lanes per socket carry the socket links)" if link else ""),
            section, system.server.id))
    return findings


def nic_host_bandwidth(system: System) -> list[Finding]:
    """A NIC whose PCIe link is slower than its line rate."""
    findings = []
    for nic, count, _ in system.server_nics:
        if count == 0 or nic.host.gen is None:
            continue
        pcie = PCIE_LANE_Bps[nic.host.gen] * nic.host.lanes
        line = nic.ports * nic.port_bandwidth
        if pcie < line:
            findings.append(Finding(
                "NIC-PCIE", "warning",
                f"{nic.id}: PCIe Gen{nic.host.gen} x{nic.host.lanes} carries "
                f"{format_quantity(pcie, 'B/s')} per direction, below its "
                f"{format_quantity(line, 'B/s')} line rate", "PCI-SIG rates", nic.id))
    return findings


def server_power(system: System) -> list[Finding]:
    """Server nameplate power over what its supplies deliver with redundancy held back."""
    budget = power_budget(system)
    psu = system.server.power_supplies
    capacity = psu_capacity_W(psu.count, psu.rating, psu.redundancy)
    findings = []
    if budget.server_W > capacity:
        findings.append(Finding(
            "SERVER-POWER", "error",
            f"server draws {_w(budget.server_W)} at TDP; {psu.count} x {_w(psu.rating)} supplies "
            f"({psu.redundancy}) deliver {_w(capacity)}",
            f"{system.server.name} power supplies", system.server.id))
    if budget.unknown:
        findings.append(Finding("POWER-UNKNOWN", "info",
                                "no power figure for " + ", ".join(budget.unknown) +
                                " (counted as 0 W)", "catalog", system.server.id))
    for est in budget.estimated:
        findings.append(Finding("POWER-ESTIMATED", "info",
                                f"{est.part}: no published power; estimated {_w(est.power_W)} "
                                f"each by the law {est.law.describe()}",
                                "ocplan.topology.power_estimates", est.part))
    return findings


def rack_power(system: System) -> list[Finding]:
    """Rack power over the rack limit."""
    rack = system.spec.rack
    if rack is None:
        return []
    share = system.rack_share
    if share is None:
        # racks of unpublished size: FACILITY-RACK-UNPUBLISHED says no limit is judged
        return []
    budget = power_budget(system)
    servers = min(rack.servers_per_rack, system.num_servers)
    per_rack = (share if share < 1 else servers) * budget.server_W
    if per_rack > rack.power_limit:
        who = f"{servers} server{'s' * (servers > 1)} per rack draw" if share == 1 else \
            f"a rack of {system.server.chips_per_rack} chips draws"
        return [Finding("RACK-POWER", "error",
                        f"{who} {_w(per_rack)}; the rack limit is {_w(rack.power_limit)}",
                        "system rack limit", system.spec.name)]
    return []


def scale_out_fabric(system: System) -> list[Finding]:
    """Scale-out fabric shape: switch tiers and NIC speed against the fabric's links."""
    fabric = system.fabric
    endpoints, _ = nic_Bps(system)
    spec = system.spec.scale_out
    # topology "none": no scale-out network, as cluster_graph and summarize read it.
    no_network = spec is not None and spec.topology == "none"
    if fabric is None or no_network or system.num_servers == 1 or endpoints == 0:
        if system.num_servers > 1 and (fabric is None or no_network or endpoints == 0):
            return [Finding("SCALE-OUT", "error",
                            f"{system.num_servers} servers but no scale-out "
                            f"{'fabric' if fabric is None or no_network else 'NICs'} to join them",
                            "system scale_out", system.spec.name)]
        return []
    shape = scale_out_shape(system)
    assert shape is not None
    findings = []
    if shape.tiers > 2:
        findings.append(Finding(
            "SCALE-OUT-TIERS", "warning",
            f"{shape.endpoints} endpoints exceed a two-tier fat tree of radix-{shape.radix} "
            f"switches; a third tier adds latency and switches",
            f"{fabric.switch.name} radix {fabric.switch.radix}", fabric.id))
    nic = system.nic
    if nic is not None and nic.port_bandwidth > fabric.link_bandwidth * 1.001:
        findings.append(Finding(
            "NIC-RATE", "warning",
            f"{nic.id} ports run at {format_quantity(nic.port_bandwidth * 8, 'b/s')} but "
            f"{fabric.id} links at {format_quantity(fabric.link_bandwidth * 8, 'b/s')}: "
            "NICs train down", f"{fabric.name}", fabric.id))
    return findings


RULES: tuple[Rule, ...] = (
    form_factor,
    oam_rail_power,
    chassis_cooling,
    integrated_nic,
    air_cooling,
    power_cap,
    slot_power,
    board_slots,
    topology_ports,
    link_rate,
    host_lanes,
    nic_host_bandwidth,
    server_power,
    rack_power,
    scale_out_fabric,
)


def run_rules(system: System) -> list[Finding]:
    """Every rule's findings, errors first."""
    order = {"error": 0, "warning": 1, "info": 2}
    findings = [f for rule in RULES for f in rule(system)]
    return sorted(findings, key=lambda f: (order[f.severity], f.rule))


#: How every refusal (:func:`refusal`) starts, so a reader of a result can tell a
#: system refused for its checks from a layout that does not fit.
REFUSED = "invalid: the system fails "


def refusal(findings: Sequence[Finding]) -> str | None:
    """Why a system with error findings is not estimated (None when it has none): the
    reason every estimate, search, comparison and report gives unless the user allows an
    invalid system explicitly."""
    errors = [f for f in findings if f.severity == "error"]
    if not errors:
        return None
    rules = sorted({f.rule for f in errors})
    # a rule may give several errors (AIR-COOLING: the chassis and the module): the
    # count of checks is of the rules named, the errors are counted beside it
    failed = f"{len(rules)} check{'s' * (len(rules) > 1)}"
    if len(errors) > len(rules):
        failed += f" with {len(errors)} errors"
    return (f"{REFUSED}{failed} ({', '.join(rules)}: "
            f"{errors[0].message}); see ocplan check")
