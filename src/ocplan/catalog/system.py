"""System files: a cluster composed from catalog ids, and its resolution into entries.

A system YAML names a server, how many of them, the scale-out fabric and rack limits::

    name: 1,024-OAM liquid-cooled cluster
    server: nf5698g7
    accelerator: mi300x          # populate the OAM server with this module
    servers: 128
    cooling: liquid
    scale_out: {fabric: roce-400g, nics_per_server: 8, topology: rail-optimized-fat-tree}
    rack: {servers_per_rack: 4, power_limit: 60 kW}

:func:`load_system` validates the file and resolves every id against the catalog,
reporting all problems at once. The result, :class:`System`, holds the entries
themselves, so later stages never look ids up again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from ocplan.catalog.catalog import Catalog
from ocplan.catalog.fields import MAX_CHIPS, ChipCount, Count, Id, Power, Spec, Voltage
from ocplan.catalog.loader import load_yaml, validate_as
from ocplan.catalog.schema import Accelerator, Baseboard, Cpu, Fabric, Nic, Server
from ocplan.catalog.storage import StorageSpec
from ocplan.errors import Problem, SpecError
from ocplan.units import is_whole

__all__ = ["System", "SystemSpec", "load_system", "resolve_system", "system_for_chip"]

ScaleOutTopology = Literal["rail-optimized-fat-tree", "fat-tree", "none"]


#: Fewest scale-out NICs a system file may give a server: 0 would be no scale-out path
#: at all, while leaving the field out means the server's own NICs (or a chip's
#: integrated ports), so 0 is refused rather than read as either.
MIN_NICS_PER_SERVER = 1
#: Most scale-out NICs per server a system file may give (a rack-scale server's trays).
MAX_NICS_PER_SERVER = 1024


class ScaleOutSpec(Spec):
    fabric: Id
    nic: Id | None = None
    """NIC model; default: the server's NIC, else the fabric's default NIC."""
    nics_per_server: Annotated[int, Field(ge=MIN_NICS_PER_SERVER, le=MAX_NICS_PER_SERVER,
                                          strict=True)] | None = None
    """Scale-out NICs per server; None: the server's own NICs, or the chip's integrated
    scale-out ports (Gaudi)."""
    topology: ScaleOutTopology = "rail-optimized-fat-tree"
    oversubscription: Annotated[float, Field(strict=True, ge=1, le=64)] = 1.0
    """Leaf downlink to uplink bandwidth ratio (1 = non-blocking)."""

    @field_validator("nics_per_server", mode="before")
    @classmethod
    def _some_nics(cls, value: object) -> object:
        """Too few NICs says what leaving the field out does instead (0 NICs per server
        read as 'no NICs' gave a nonsense INTEGRATED-NIC warning)."""
        if isinstance(value, int) and not isinstance(value, bool) \
                and value < MIN_NICS_PER_SERVER:
            raise ValueError(f"must be at least {MIN_NICS_PER_SERVER} (and at most "
                             f"{MAX_NICS_PER_SERVER}); leave nics_per_server out to use "
                             "the server's NICs or the chip's integrated ports")
        return value


class RackSpec(Spec):
    servers_per_rack: Annotated[int, Field(ge=1, le=256, strict=True)]
    power_limit: Power


WaterClass = Literal["W17", "W27", "W32", "W40", "W45", "W+"]
"""ASHRAE TC 9.9 facility-water classes, named by their highest supply temperature in degC
(2021 renaming of W1-W5; limits and sources in ``ocplan/facility/data/water_classes.yaml``)."""
#: A temperature in degrees Celsius: 0 to 90 degC spans every facility-water class.
Celsius = Annotated[float, Field(strict=True, ge=0, le=90)]
#: A temperature difference or approach in kelvin.
Kelvin = Annotated[float, Field(strict=True, gt=0, le=40)]


class PowerDeliverySpec(Spec):
    """How power reaches the servers: rack busbar, supply efficiency class, UPS.

    The ids name entries of ``ocplan/facility/data/`` (``busbars.yaml``,
    ``psu_curves.yaml``, ``power_chain.yaml``); :func:`ocplan.facility.facility_plan`
    reports an unknown id with the allowed ones.
    """

    busbar: Id = "orv3-hpr"
    """Rack busbar: ``orv3-standard`` (48 V, 375 A), ``orv3-600a``, ``orv3-hpr`` (92 kW),
    ``orv3-hpr-v2`` or ``hvdc-800v``."""
    voltage: Voltage | None = None
    """Busbar voltage; default the busbar's nominal (48 V for ORv3; 54 V for OAM/UBB
    style racks is a valid override)."""
    psu_curve: Id = "80plus-titanium"
    """Efficiency class of the server supplies (80 PLUS curve, 230 V internal redundant)."""
    ups: Id = "double-conversion"
    """UPS and distribution chain between grid and IT."""


class FacilitySpec(Spec):
    """The facility that powers and cools the cluster.

    Every field is optional. ``pue`` keeps its meaning for existing files: written, it
    overrides the PUE that :func:`ocplan.facility.facility_plan` derives from the cooling
    design; left out, the plan derives it (the nameplate ``power_budget`` still applies
    the 1.2 default until it reads the derived value). Defaults of the other fields are
    sourced in ``ocplan/facility/data/``.
    """

    pue: Annotated[float, Field(strict=True, ge=1.0, le=3.0)] = 1.2
    """Power usage effectiveness: facility power / IT power (given: overrides the derived)."""
    water_class: WaterClass = "W32"
    supply_temperature_C: Celsius | None = None
    """Facility-water supply temperature to the CDUs; default the class's upper limit."""
    coolant: Literal["water", "pg25"] = "pg25"
    """Secondary (rack) loop coolant: water or 25 % propylene glycol."""
    coolant_delta_T_K: Kelvin | None = None
    """Return minus supply temperature of the rack loop; default the one that the OCP
    design flow of 1.5 L/min per kW implies for the coolant (about 10 K for PG25)."""
    cdu: Id = "vertiv-coolchip-cdu-2300"
    """CDU model (``ocplan/facility/data/cdus.yaml``); in-rack or in-row by the model."""
    cdu_capacity: Power | None = None
    """Rated CDU capacity, overriding the model's."""
    cdu_approach_K: Kelvin | None = None
    """Rack-loop supply minus facility supply; default the model's rated approach."""
    cdu_redundancy: Literal["N", "N+1"] = "N+1"
    capture_ratio: Annotated[float, Field(strict=True, ge=0, le=1)] | None = None
    """Share of cold-plated parts' heat (accelerators, CPUs) that leaves in the liquid;
    default the published cold-plate ratio."""
    air_limit_per_rack: Power | None = None
    """Heat the room's air side removes per rack; default 35 kW (published limit of
    standard air-cooled designs)."""
    heat_rejection: Literal["chiller", "dry-cooler", "cooling-tower"] = "dry-cooler"
    """Plant that rejects the liquid loop's heat (air-side heat always goes through
    CRAHs and a chiller)."""
    power_delivery: PowerDeliverySpec = PowerDeliverySpec()
    racks_per_row: Annotated[int, Field(ge=1, le=200, strict=True)] = 10
    """Rack positions per row (a layout choice), in-row CDUs included."""
    floor_area_per_rack: Annotated[float, Field(strict=True, gt=0, le=50)] | None = None
    """White-space floor per rack position, m^2; default an ORv3 frame plus half of a
    cold and a hot aisle."""

    @property
    def pue_given(self) -> float | None:
        """The PUE written in the file (or set by the caller), else ``None``."""
        return self.pue if "pue" in self.model_fields_set else None

    @model_validator(mode="after")
    def _w_plus_needs_supply(self) -> FacilitySpec:
        if self.water_class == "W+" and self.supply_temperature_C is None:
            raise ValueError("water_class 'W+' has no upper limit; give "
                             "supply_temperature_C (above 45 degC)")
        return self


class SystemSpec(Spec):
    """A cluster of identical servers joined by a scale-out fabric."""

    name: Annotated[str, Field(min_length=1, max_length=120)]
    server: Id
    accelerator: Id | None = None
    accelerators_per_server: ChipCount | None = None
    """Modules installed per server; at most the board's slots."""
    servers: ChipCount
    cooling: Literal["air", "liquid"] | None = None
    slice_dims: Annotated[tuple[Count, ...], Field(min_length=1, max_length=4)] | None = None
    """For torus pods: the slice's torus shape (its product is the chips per server)."""
    scale_out: ScaleOutSpec | None = None
    rack: RackSpec | None = None
    power_mode: Annotated[str, Field(min_length=1, max_length=31)] | None = None
    """A published power mode of the accelerator (its ``power.modes``); default: the air
    rating in an air-cooled system, else ``tdp``."""
    power_cap: Power | None = None
    """A lower module power limit set by the operator (a power cap, e.g. H100 at 500 W);
    the sustained clock follows it (:func:`ocplan.costmodel.chip.power_capped_clock`)."""
    storage: StorageSpec | None = None
    facility: FacilitySpec = FacilitySpec()


@dataclass(frozen=True)
class System:
    """A system with every id resolved to its catalog entry."""

    spec: SystemSpec
    source: str
    server: Server
    baseboard: Baseboard
    accelerator: Accelerator
    cpu: Cpu
    fabric: Fabric | None
    nic: Nic | None
    server_nics: tuple[tuple[Nic, int, str], ...]
    """(NIC, count, attach) as installed in each server (compute NICs)."""

    @property
    def chips_per_server(self) -> int:
        if self.spec.slice_dims:
            product = 1
            for d in self.spec.slice_dims:
                product *= d
            return product
        return (self.spec.accelerators_per_server or self.server.accelerators
                or self.baseboard.slots)

    @property
    def racks_per_server(self) -> int | None:
        """Racks one server fills: 1 when it fits in a rack, ``ceil(chips /
        chips_per_rack)`` for a multi-rack server (a TPU pod catalogued as one system), None
        when it spans racks of unpublished size (``Server.chips_per_rack``)."""
        per_rack = self.server.chips_per_rack
        if per_rack == "unpublished":
            return None
        if per_rack is None:
            return 1
        return -(-self.chips_per_server // per_rack)

    @property
    def rack_share(self) -> float | None:
        """Share of one server a full rack holds: 1 when the server fits in a rack,
        ``chips_per_rack / chips`` when it fills several, None when their size is
        unpublished."""
        racks = self.racks_per_server
        if racks is None:
            return None
        if racks == 1:
            return 1.0
        per_rack = self.server.chips_per_rack
        assert isinstance(per_rack, int), "racks_per_server > 1 only from a chip count"
        return per_rack / self.chips_per_server

    @property
    def num_servers(self) -> int:
        return self.spec.servers

    @property
    def num_chips(self) -> int:
        return self.chips_per_server * self.num_servers

    @property
    def cooling(self) -> str:
        return self.spec.cooling or self.server.cooling

    @property
    def module_power(self) -> float:
        """Power of one module in this system, W: the power mode the system names
        (``power_mode``), else the accelerator's profile for the system's cooling
        (air-cooled systems run a module at its air rating, ``power.air_max_tdp``, e.g.
        Gaudi 3 900 W against 1.2 kW liquid, when the vendor gives one below ``tdp``),
        else ``tdp``; at most the operator's ``power_cap``."""
        power = self.accelerator.power
        if self.spec.power_mode is not None:
            mode = power.mode(self.spec.power_mode)
            assert mode is not None, "resolve_system checks the mode's name"
            watts = mode
        elif self.cooling == "air" and power.air_max_tdp is not None:
            watts = min(power.tdp, power.air_max_tdp)
        else:
            watts = power.tdp
        cap = self.spec.power_cap
        return watts if cap is None else min(watts, cap)

    @property
    def power_profile(self) -> str:
        """The power mode in use: the named mode, ``capped`` under a power cap, ``air``
        for the air rating below ``tdp``, else ``tdp``."""
        cap = self.spec.power_cap
        if cap is not None and self.module_power == cap and cap < self.accelerator.power.tdp:
            return "capped"
        if self.spec.power_mode is not None:
            return self.spec.power_mode
        return "air" if self.module_power < self.accelerator.power.tdp else "tdp"

    @property
    def nics_per_server(self) -> int:
        if self.spec.scale_out and self.spec.scale_out.nics_per_server is not None:
            return self.spec.scale_out.nics_per_server
        return sum(count for _, count, _ in self.server_nics)

    @property
    def torus_dims(self) -> tuple[int, ...] | None:
        if self.baseboard.topology != "torus":
            return None
        return self.spec.slice_dims or self.baseboard.torus_dims


def _lookup(catalog: Catalog, kind: type[Any], entry_id: str, source: str, field: str,
            problems: list[Problem]) -> Any:
    try:
        return catalog.get(kind, entry_id, source, field)
    except SpecError as exc:
        problems.extend(exc.problems)
        return None


def resolve_system(spec: SystemSpec, catalog: Catalog, source: str) -> System:
    """Resolve every id of ``spec``; raise SpecError listing all unknown ids."""
    problems: list[Problem] = []
    server: Server | None = _lookup(catalog, Server, spec.server, source, "server", problems)
    accel_id = spec.accelerator or (server.accelerator if server else None)
    accelerator: Accelerator | None = None
    if accel_id is not None:
        accelerator = _lookup(catalog, Accelerator, accel_id, source, "accelerator", problems)
    elif server is not None:
        problems.append(Problem(source, "accelerator", f"server '{server.id}' ships without "
                                "modules; name the accelerator to populate it with"))
    fabric: Fabric | None = None
    nic: Nic | None = None
    if spec.scale_out is not None:
        fabric = _lookup(catalog, Fabric, spec.scale_out.fabric, source, "scale_out.fabric",
                         problems)
        if spec.scale_out.nic is not None:
            nic = _lookup(catalog, Nic, spec.scale_out.nic, source, "scale_out.nic", problems)
    elif server is not None and server.default_fabric:
        fabric = catalog.get(Fabric, server.default_fabric)
    if problems or server is None or accelerator is None:
        raise SpecError(problems)
    baseboard = catalog.get(Baseboard, server.baseboard)
    cpu = catalog.get(Cpu, server.host.cpu)
    server_nics = tuple((catalog.get(Nic, slot.nic), slot.count, slot.attach)
                        for slot in server.nics)
    if nic is not None and spec.scale_out is not None:
        # The system names its own scale-out NIC: it replaces the server's NICs.
        count = spec.scale_out.nics_per_server
        if count is None:
            count = sum(c for _, c, _ in server_nics)
        attach = server_nics[0][2] if server_nics else "pcie-switch"
        server_nics = ((nic, count, attach),) if count else ()
    if nic is None and server_nics:
        nic = server_nics[0][0]
    if nic is None and fabric is not None and fabric.nic:
        nic = catalog.get(Nic, fabric.nic)
    modes = accelerator.power.modes
    if spec.power_mode is not None and accelerator.power.mode(spec.power_mode) is None:
        allowed = ", ".join(f"{m.name} ({m.power:g} W)" for m in modes) or \
            "none: this accelerator has no published power modes; use power_cap"
        raise SpecError.one(source, "power_mode", f"not a power mode of {accelerator.id} "
                                                  f"(allowed: {allowed})", spec.power_mode)
    if spec.slice_dims is not None and baseboard.topology != "torus":
        raise SpecError.one(source, "slice_dims", f"only for torus boards; server "
                                                  f"'{server.id}' has a '{baseboard.topology}' "
                                                  "board", list(spec.slice_dims))
    rates = baseboard.torus_link_bandwidth
    if spec.slice_dims is not None and rates is not None and len(spec.slice_dims) != len(rates):
        raise SpecError.one(source, "slice_dims", f"board '{baseboard.id}' wires its "
                                                  f"{len(rates)} torus dimensions at different "
                                                  f"rates; give {len(rates)} slice dimensions",
                            list(spec.slice_dims))
    system = System(spec, source, server, baseboard, accelerator, cpu, fabric, nic, server_nics)
    _check_size(system, source)
    _check_rack(system, source)
    return system


def _check_rack(system: System, source: str) -> None:
    """A server that fills several racks cannot share one: its rack block may only say
    one server per rack (the rack's power limit still applies to each of its racks)."""
    rack = system.spec.rack
    racks = system.racks_per_server
    if rack is None or rack.servers_per_rack == 1 or racks == 1:
        return
    size = "racks of unpublished size" if racks is None else \
        f"{racks} racks of {system.server.chips_per_rack} chips"
    raise SpecError.one(source, "rack.servers_per_rack",
                        f"server '{system.server.id}' fills {size}; allowed: 1",
                        rack.servers_per_rack)


def _check_size(system: System, source: str) -> None:
    """Refuse a system of more than ``MAX_CHIPS`` chips in all. (More modules than the
    board has slots is a design error the compliance rules report, not bad input.)"""
    if system.num_chips > MAX_CHIPS:
        raise SpecError.one(source, "servers", f"{system.num_chips:,} chips in all; ocplan "
                                               f"plans systems of at most {MAX_CHIPS:,} chips",
                            system.spec.servers)


def load_system(path: str | Path, catalog: Catalog) -> System:
    """Read, validate and resolve a system YAML file."""
    path = Path(path)
    data = load_yaml(path)
    spec = validate_as(SystemSpec, data, str(path))
    return resolve_system(spec, catalog, str(path))


#: The host a chip without a ``default_server`` goes into, by form factor: the OCP OAI
#: reference system (MX1: UBB 1.0, 8 OAM, fully connected) takes any OAM module; its
#: checks then say what the module exceeds (power, cooling, ports).
GENERIC_SERVERS: dict[str, str] = {"oam": "mx1"}


def system_for_chip(catalog: Catalog, chip: str, num_chips: int,
                    source: str = "--chip", server_id: str | None = None,
                    server_field: str = "server", scale_out: ScaleOutSpec | None = None,
                    name: str | None = None) -> System:
    """The system a chip id alone implies: its default server (or ``server_id``, e.g. an
    OAM server to populate with it), enough of them for ``num_chips``, on the server's
    default fabric (or ``scale_out``)."""
    if not (is_whole(num_chips) and 1 <= num_chips <= MAX_CHIPS):
        raise SpecError.one(source, "chips", f"must be a whole number from 1 to "
                                             f"{MAX_CHIPS:,}", num_chips)
    accelerator = catalog.accelerator(chip, source, "chip")
    if server_id is None and accelerator.default_server is None:
        generic = GENERIC_SERVERS.get(accelerator.form_factor)
        if generic is None:
            raise SpecError.one(source, "chip", f"this {accelerator.form_factor} accelerator "
                                                "has no default_server in the catalog and "
                                                "there is no generic host for its form "
                                                "factor; give --system FILE", chip)
        server_id = generic
        name = name or (f"{num_chips} x {chip} in {generic}, the generic "
                        f"{accelerator.form_factor.upper()} host ({chip} names no "
                        "default_server)")
    server = catalog.server(server_id or accelerator.default_server or "", source,
                            server_field)
    baseboard = catalog.get(Baseboard, server.baseboard)
    per_server = server.accelerators or baseboard.slots
    slice_dims: tuple[int, ...] | None = None
    servers = max(1, -(-num_chips // per_server))
    if baseboard.topology == "torus" and num_chips <= per_server:
        # A TPU slice smaller than the pod: the smallest torus shape that holds it.
        slice_dims = _slice_shape(num_chips, baseboard)
        servers = 1
    spec = SystemSpec(
        name=name or f"{num_chips} x {chip}", server=server.id, accelerator=chip,
        servers=servers, slice_dims=slice_dims, scale_out=scale_out,
        accelerators_per_server=None if slice_dims else min(per_server, num_chips),
    )
    return resolve_system(spec, catalog, source)


def _slice_shape(n: int, board: Baseboard) -> tuple[int, ...]:
    """Torus dims of an n-chip slice of ``board``: on a board whose dimensions are wired
    at different rates, the fastest dimensions filled first (a 16-chip slice of a Trn2
    UltraServer is one server's 4x4, not a shape across servers); otherwise near-cubic
    (powers of two split evenly)."""
    board_dims = board.torus_dims or (1,)
    rates = board.torus_link_bandwidth
    if rates is not None:
        dims = [1] * len(board_dims)
        remaining = n
        for i in sorted(range(len(board_dims)), key=lambda i: -rates[i]):
            factor = max(f for f in range(1, board_dims[i] + 1)
                         if remaining % f == 0)
            dims[i], remaining = factor, remaining // factor
        if remaining == 1:
            return tuple(dims)
    return _near_cubic(n, len(board_dims))


def _near_cubic(n: int, ndims: int) -> tuple[int, ...]:
    """Near-cubic torus dims whose product is n (powers of two split evenly)."""
    dims = [1] * ndims
    remaining = n
    i = 0
    while remaining > 1:
        factor = 2 if remaining % 2 == 0 else remaining
        dims[i % ndims] *= factor
        remaining //= factor
        i += 1
    return tuple(sorted(dims, reverse=True))
