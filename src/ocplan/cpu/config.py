"""The CPU specs the performance model reads, as configured in one system under test.

A :class:`CpuConfig` is a small frozen value: the CPU's own specs (family, cores, clocks,
TDP, memory channels) and the tested configuration (sockets, SMT, memory speed and DIMM
count). It is built from a row of the CPU validation layout (:func:`config_from_row`,
``shared/validation/cpu_README.md``) or from a catalog :class:`~ocplan.catalog.schema.Cpu`
entry (:func:`config_from_catalog`). Quantities are SI: Hz, W, transfers/s, bytes.

A spec that is not published stays ``None``; the model says how it filled the gap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ocplan.catalog.schema import Cpu
from ocplan.errors import Problem, SpecError
from ocplan.units import DECIMAL_PREFIXES

__all__ = [
    "CORE_DESIGN",
    "ISAS",
    "MEMORY_TYPES",
    "CpuConfig",
    "config_from_catalog",
    "config_from_row",
    "core_design",
    "memory_type",
    "row_problem",
]

#: Hz per GHz, transfers/s per MT/s, bytes per GB (decimal prefixes, as the layout uses).
GHZ = DECIMAL_PREFIXES["G"]
MTS = DECIMAL_PREFIXES["M"]
GB = DECIMAL_PREFIXES["G"]

ISAS = ("x86-64", "arm64", "riscv64")
#: DRAM generations of the validation layout's ``memory_type`` column.
MEMORY_TYPES = ("DDR4", "DDR5", "MRDIMM", "LPDDR5X")

#: Families that reuse another family's core design, grouped so that a family without
#: measurements can fall back on its design's calibration (flagged as such):
#: Zen 4c is a physically compacted Zen 4 with identical IPC and half the L3 per core
#: (TechPowerUp, "AMD Zen 4c Not an E-core, 35% Smaller than Zen 4, but with Identical
#: IPC", 2023-06-14, techpowerup.com/310057); Zen 5c likewise keeps Zen 5's ISA and IPC
#: (TechPowerUp, 5th Gen EPYC "Turin" engineering-sample report, 2024); Emerald Rapids'
#: Raptor Cove cores are the Golden Cove design of Sapphire Rapids with 5 MB instead of
#: 1.875 MB L3 per core (ComputerBase, "Intel Emerald Rapids: Analyse weist auf viel
#: größeren L3-Cache hin", 2023-05).
CORE_DESIGN: dict[str, str] = {
    "zen4": "zen4", "zen4c": "zen4",
    "zen5": "zen5", "zen5c": "zen5",
    "sapphire-rapids": "golden-cove", "emerald-rapids": "golden-cove",
}

#: Plausible-value envelopes of the layout's columns (typo guards, not design limits).
LIMITS: dict[str, tuple[float, float]] = {
    "sockets": (1, 16), "cores_per_socket": (1, 1024), "threads_per_core": (1, 8),
    "base_ghz": (0.1, 10), "boost_ghz": (0.1, 10), "max_boost_ghz": (0.1, 10),
    "tdp_w": (1, 2000), "memory_channels_per_socket": (1, 32), "memory_mts": (100, 20000),
    "memory_gb": (0.001, 1e6), "dimms_total": (1, 1024), "value": (1e-9, 1e12),
}
INTEGER_COLUMNS = ("sockets", "cores_per_socket", "threads_per_core",
                   "memory_channels_per_socket", "dimms_total")
REQUIRED_COLUMNS = ("cpu", "family", "vendor", "isa", "sockets", "cores_per_socket", "base_ghz")


def memory_type(text: str) -> str | None:
    """The DRAM generation a memory description names (:data:`MEMORY_TYPES`, matched at the
    start: ``DDR5-6000 (6400 on qualified platforms)`` -> ``DDR5``), else None (unstated or
    a type the model does not distinguish)."""
    head = text.strip().upper()
    return next((t for t in MEMORY_TYPES if head.startswith(t)), None)


def core_design(family: str) -> str:
    """The core design a family belongs to (:data:`CORE_DESIGN`), else the family itself."""
    return CORE_DESIGN.get(family, family)


@dataclass(frozen=True)
class CpuConfig:
    """One CPU model as configured in a system: what the performance model reads.

    Attributes
    ----------
    cpu, family, vendor, isa
        Ids: the CPU (a label), its micro-architecture family (``zen4``, ...), vendor and
        instruction set.
    sockets, cores_per_socket
        CPU packages in the system and cores of each.
    base_clock_Hz, all_core_boost_Hz, max_boost_Hz
        Vendor base clock; all-core boost where the vendor publishes one; highest
        single-core boost. ``None`` when not published.
    threads_per_core
        Hardware threads per core enabled (``None``: not stated).
    tdp_W
        Vendor TDP per CPU.
    memory_channels_per_socket, memory_transfers_per_s, dimms_total, memory_bytes
        Memory as configured: channels of the CPU, speed (transfers/s), DIMMs in the
        system (``None``: one per channel or on-package) and total capacity.
    memory_type
        DRAM generation as configured (:data:`MEMORY_TYPES`: ``DDR4``, ``DDR5``,
        ``MRDIMM``, ``LPDDR5X``); ``None``: not stated.
    """

    cpu: str
    family: str
    vendor: str
    isa: str
    sockets: int
    cores_per_socket: int
    base_clock_Hz: float
    threads_per_core: int | None = None
    all_core_boost_Hz: float | None = None
    max_boost_Hz: float | None = None
    tdp_W: float | None = None
    memory_channels_per_socket: int | None = None
    memory_transfers_per_s: float | None = None
    dimms_total: int | None = None
    memory_bytes: float | None = None
    memory_type: str | None = None

    def __post_init__(self) -> None:
        problems = [p for p in (
            _range("sockets", self.sockets, 1, 16),
            _range("cores_per_socket", self.cores_per_socket, 1, 1024),
            _range("base_clock_Hz", self.base_clock_Hz, 0.1 * GHZ, 10 * GHZ),
            _range("threads_per_core", self.threads_per_core, 1, 8),
            _range("all_core_boost_Hz", self.all_core_boost_Hz, 0.1 * GHZ, 10 * GHZ),
            _range("max_boost_Hz", self.max_boost_Hz, 0.1 * GHZ, 10 * GHZ),
            _range("tdp_W", self.tdp_W, 1.0, 2000.0),
            _range("memory_channels_per_socket", self.memory_channels_per_socket, 1, 32),
            _range("memory_transfers_per_s", self.memory_transfers_per_s, 1e8, 2e10),
            _range("dimms_total", self.dimms_total, 1, 1024),
            _range("memory_bytes", self.memory_bytes, 1e6, 1e15),
        ) if p is not None]
        if self.isa not in ISAS:
            problems.append(Problem("CpuConfig", "isa", f"expected one of {', '.join(ISAS)}",
                                    self.isa))
        if self.memory_type is not None and self.memory_type not in MEMORY_TYPES:
            problems.append(Problem("CpuConfig", "memory_type",
                                    f"expected one of {', '.join(MEMORY_TYPES)}",
                                    self.memory_type))
        if not self.family.strip():
            problems.append(Problem("CpuConfig", "family", "expected a family id", self.family))
        if problems:
            raise SpecError(problems)

    @property
    def core_design(self) -> str:
        """The core design of the family (:func:`core_design`)."""
        return core_design(self.family)


def _range(name: str, value: float | None, low: float, high: float) -> Problem | None:
    if value is None:
        return None
    if not math.isfinite(value) or not low <= value <= high:
        return Problem("CpuConfig", name, f"expected a number from {low:g} to {high:g}", value)
    return None


def _cell(row: Mapping[str, str], key: str) -> str:
    return (row.get(key) or "").strip()


def row_problem(source: str, line: int, row: Mapping[str, str],
                value_column: str = "value") -> Problem | None:
    """The first problem with a validation-layout row's model inputs and measured value,
    or ``None``: required ids present, every number finite and inside :data:`LIMITS`
    (whole numbers where the layout says int), ``isa`` and ``boost_kind`` from their
    vocabularies."""
    where = f"line {line} ({_cell(row, 'case_id') or '?'})"
    for key in REQUIRED_COLUMNS:
        if not _cell(row, key):
            return Problem(source, f"{where}.{key}", "required, is empty", "")
    if _cell(row, "isa") not in ISAS:
        return Problem(source, f"{where}.isa", f"expected one of {', '.join(ISAS)}",
                       _cell(row, "isa"))
    if _cell(row, "boost_kind") not in ("", "all_core", "max_turbo"):
        return Problem(source, f"{where}.boost_kind", "expected all_core, max_turbo or empty",
                       _cell(row, "boost_kind"))
    for key, (low, high) in LIMITS.items():
        text = _cell(row, key)
        if not text and key != value_column:
            continue
        whole = key in INTEGER_COLUMNS
        kind = "a whole number" if whole else "a number"
        try:
            number = float(text)
        except ValueError:
            return Problem(source, f"{where}.{key}", f"expected {kind} from {low:g} to {high:g}",
                           text)
        if (not math.isfinite(number) or not low <= number <= high
                or (whole and not number.is_integer())):
            return Problem(source, f"{where}.{key}", f"expected {kind} from {low:g} to {high:g}",
                           text)
    return None


def _number(row: Mapping[str, str], key: str, scale: float = 1.0) -> float | None:
    text = _cell(row, key)
    return float(text) * scale if text else None


def _whole(row: Mapping[str, str], key: str) -> int | None:
    text = _cell(row, key)
    return int(float(text)) if text else None


def config_from_row(row: Mapping[str, str], source: str = "row", line: int = 0) -> CpuConfig:
    """The configuration of a CPU validation-layout row (``cpu_README.md``): clocks GHz ->
    Hz, MT/s -> transfers/s, GB -> bytes; ``boost_ghz`` is the all-core boost only when
    ``boost_kind`` is ``all_core``. SpecError (naming the line and column) on a bad cell."""
    problem = row_problem(source, line, row, value_column="")
    if problem is not None:
        raise SpecError([problem])
    base = _number(row, "base_ghz", GHZ)
    sockets, cores = _whole(row, "sockets"), _whole(row, "cores_per_socket")
    assert base is not None
    assert sockets is not None
    assert cores is not None
    all_core = _number(row, "boost_ghz", GHZ) if _cell(row, "boost_kind") == "all_core" \
        else None
    return CpuConfig(
        cpu=_cell(row, "cpu"), family=_cell(row, "family"), vendor=_cell(row, "vendor"),
        isa=_cell(row, "isa"), sockets=sockets, cores_per_socket=cores, base_clock_Hz=base,
        threads_per_core=_whole(row, "threads_per_core"), all_core_boost_Hz=all_core,
        max_boost_Hz=_number(row, "max_boost_ghz", GHZ), tdp_W=_number(row, "tdp_w"),
        memory_channels_per_socket=_whole(row, "memory_channels_per_socket"),
        memory_transfers_per_s=_number(row, "memory_mts", MTS),
        dimms_total=_whole(row, "dimms_total"), memory_bytes=_number(row, "memory_gb", GB),
        memory_type=memory_type(_cell(row, "memory_type")))


def config_from_catalog(cpu: Cpu, sockets: int = 1, *, family: str | None = None,
                        threads_per_core: int | None = None,
                        memory_transfers_per_s: float | None = None,
                        dimms_total: int | None = None,
                        memory_bytes: float | None = None) -> CpuConfig:
    """A catalog CPU in a system of ``sockets`` packages, SMT on (all of its threads) and
    memory at the CPU's rated speed with one DIMM per channel unless told otherwise.

    The family is the entry's ``family`` (or ``family``); an entry without one gets its id
    as family, which no calibration knows, so predictions are flagged as uncalibrated.
    The memory speed is the entry's ``memory_mts``, else its per-socket
    ``memory_bandwidth`` / (channels x 8 B)."""
    mts = memory_transfers_per_s
    if mts is None and cpu.memory_mts is not None:
        mts = cpu.memory_mts * MTS
    if mts is None and cpu.memory_bandwidth is not None and cpu.memory_channels:
        mts = cpu.memory_bandwidth / (cpu.memory_channels * 8)
    return CpuConfig(
        cpu=cpu.id, family=family or cpu.family or cpu.id, vendor=cpu.vendor, isa=cpu.isa,
        sockets=sockets, cores_per_socket=cpu.cores, base_clock_Hz=cpu.base_clock,
        threads_per_core=threads_per_core or cpu.threads // cpu.cores,
        all_core_boost_Hz=cpu.all_core_clock, max_boost_Hz=cpu.boost_clock, tdp_W=cpu.tdp,
        memory_channels_per_socket=cpu.memory_channels, memory_transfers_per_s=mts,
        dimms_total=dimms_total, memory_bytes=memory_bytes,
        memory_type=memory_type(cpu.memory_type or ""))
