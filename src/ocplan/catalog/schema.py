"""Schemas of catalog entries: accelerators, CPUs, compute modules, NICs, fabrics, baseboards,
servers, models.

Each entry is one YAML file with a ``kind`` and an ``id``, validated by the model here.
Every entry carries ``sources``: the documents its numbers come from. A source lists
the top-level fields it backs in ``covers`` (``["*"]`` for all), and a catalog test fails
when a numeric field is backed by no source.

Quantities are written with units (``"80 GB"``, ``"450 GB/s"``) and stored as SI floats;
see :mod:`ocplan.units`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from ocplan.catalog.fields import (
    MAX_LAYERS,
    MAX_MTP_DEPTH,
    Bandwidth,
    BitRate,
    Bytes,
    Count,
    Flag,
    FlopRate,
    Frequency,
    Id,
    LayerCount,
    Length,
    Power,
    SeqLen,
    Spec,
    Time,
    Voltage,
)

__all__ = [
    "BLOCK_SYMBOL",
    "DDR_BYTES_PER_TRANSFER",
    "KINDS",
    "LAYER_BLOCKS",
    "STANDARD_FORM_FACTOR",
    "Accelerator",
    "ActivationFormat",
    "Baseboard",
    "CatalogEntry",
    "Compute",
    "ComputeModule",
    "Cpu",
    "Fabric",
    "FlopPerClock",
    "FormFactor",
    "HostInterface",
    "ManagementEndpoint",
    "ModelArch",
    "ModuleLink",
    "ModuleMemory",
    "MoeSpec",
    "Nic",
    "PeakFlops",
    "Precision",
    "ReleasedWeights",
    "Server",
    "Source",
    "StateFormat",
    "Tile",
    "TopologyKind",
    "WeightFormat",
]

Precision = Literal["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4"]
#: Number formats of served weights (fp4: NVFP4, a scale byte per 16 values; mxfp4: OCP
#: MXFP4, one per 32; int4: AWQ/GPTQ-style group-quantized int4): a released checkpoint's
#: and a serving job's.
WeightFormat = Literal["bf16", "fp16", "fp8", "int8", "fp4", "mxfp4", "int4"]
#: Number formats of a served GEMM's activations (int4 activations are not a serving
#: practice).
ActivationFormat = Literal["bf16", "fp16", "fp8", "int8", "fp4"]
#: Number formats a serving engine caches a recurrent mixer's state in (vLLM
#: ``--mamba-ssm-cache-dtype``: the model's 16-bit dtype, or float32 for accuracy).
StateFormat = Literal["bf16", "fp16", "fp32"]
Cooling = Literal["air", "liquid"]
OamVersion = Literal["1.0", "1.1", "1.5", "2.0"]
#: Mechanical and electrical form of an accelerator module: OCP OAM, NVIDIA SXM, a PCIe
#: card (PCI-SIG CEM), a Google TPU board, a vendor's own NPU module, a CPU+GPU superchip.
FormFactor = Literal["oam", "sxm", "pcie", "tpu", "npu-module", "superchip"]
#: The module form factor a baseboard standard fixes: a UBB (OCP OAI Universal Baseboard,
#: and AMD's and Intel Gaudi's UBB-class boards) takes OAM modules (OCP OAM base
#: specification v1.0/1.5 §1: the UBB is the baseboard the OAM spec defines the module
#: for); an HGX board takes SXM modules (NVIDIA HGX platform); an NVL rack's compute trays
#: take superchips (NVIDIA GB200/GB300 NVL72: Grace+Blackwell boards); a TPU pod its own
#: boards; a PCIe board CEM cards. A ``custom`` board names its own
#: (``Baseboard.module_form_factor``).
STANDARD_FORM_FACTOR: dict[str, FormFactor] = {
    "ubb": "oam", "amd-ubb": "oam", "gaudi": "oam", "hgx": "sxm", "nvl": "superchip",
    "tpu": "tpu", "pcie": "pcie",
}
TopologyKind = Literal[
    "fully_connected",
    "hybrid_cube_mesh_6",
    "hybrid_cube_mesh_8",
    "almost_fully_connected",
    "fc_hcm_combined",
    "hypercube_4d",
    "switch",
    "torus",
    "pcie_switch",
]


class Source(Spec):
    """A document that backs some of an entry's numbers."""

    title: Annotated[str, Field(min_length=3, max_length=300)]
    url: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = None
    locator: Annotated[str, Field(max_length=300)] | None = None
    """Table, section, page or figure inside the document."""
    covers: tuple[str, ...] = ("*",)
    """Top-level fields of the entry this source backs; ``"*"`` means all of them."""


class Entry(Spec):
    """Fields every catalog entry has."""

    id: Id
    name: Annotated[str, Field(min_length=2, max_length=120)]
    sources: Annotated[tuple[Source, ...], Field(min_length=1)]
    notes: str | None = None


class PeakFlops(Spec):
    """Dense (no sparsity) peak compute per chip, per data type of the matrix inputs."""

    fp64: FlopRate | None = None
    fp32: FlopRate | None = None
    tf32: FlopRate | None = None
    bf16: FlopRate | None = None
    fp16: FlopRate | None = None
    fp8: FlopRate | None = None
    int8: FlopRate | None = None
    fp4: FlopRate | None = None

    def get(self, precision: str) -> float | None:
        """Peak for ``precision``, or ``None`` when the chip has no such unit."""
        value = getattr(self, precision, None)
        assert value is None or isinstance(value, float)
        return value

#: What a chip's matrix-compute unit is called: NVIDIA streaming multiprocessor, AMD
#: compute unit, Gaudi matrix-multiplication engine, TPU matrix unit, Ascend cube core.
UnitName = Literal["sm", "cu", "mme", "mxu", "cube"]
#: Matrix FLOP per clock of one unit: 1 (a scalar FMA pipe counts 2) to 2**22 (Gaudi's
#: 256x256 MME does 2**18 at FP8; a 1024x1024 systolic array would do 2**21).
FlopsPerClock = Annotated[int, Field(ge=1, le=2**22, strict=True)]
#: One side of a GEMM output tile in elements: the smallest native MMA is 8 wide, the
#: largest library tiles are 256 (Blackwell 2-SM, CDNA, Gaudi) to 512.
TileSide = Annotated[int, Field(ge=8, le=2048, strict=True)]
#: Clock of a matrix unit: 100 MHz to 5 GHz envelopes every accelerator built.
UnitClock = Annotated[Frequency, Field(ge=1e8, le=5e9)]


class FlopPerClock(Spec):
    """Dense matrix FLOP per clock of **one** unit, per input precision (1 MAC = 2 FLOP).

    Vendor peak = units x this x clock (``compute_units.md`` §1.2); only the
    precisions the reference gives are written, the rest stay ``None``.
    """

    bf16: FlopsPerClock | None = None
    fp16: FlopsPerClock | None = None
    fp8: FlopsPerClock | None = None
    int8: FlopsPerClock | None = None
    fp4: FlopsPerClock | None = None

    def get(self, precision: str) -> int | None:
        """FLOP per clock per unit for ``precision``, or ``None`` when not recorded."""
        value = getattr(self, precision, None)
        assert value is None or isinstance(value, int)
        return value


class Tile(Spec):
    """Typical output tile (M rows x N columns) of the chip's vendor GEMM library for
    large shapes (``compute_units.md`` §3.1)."""

    m: TileSide
    n: TileSide


class Compute(Spec):
    """The chip's matrix-compute units, from its published architecture.

    The operator cost model (:mod:`ocplan.costmodel`) derives GEMM tile and wave
    quantization and the small-K penalty from this block; the fitted large-GEMM
    efficiency comes from calibration. Values and their primary sources are collected
    in ``shared/reference/compute_units.md`` (§1.1 units, §1.2 clocks and FLOP/clk,
    §3.1 tiles, §3.2 K0).
    """

    units: Annotated[int, Field(ge=1, le=4096, strict=True)]
    """Units enabled on the shipping part (H100 SXM: 132 SMs of 144 on the die)."""
    unit_name: UnitName
    clock: UnitClock
    """Clock the vendor's peak assumes (H100 1830 MHz; derived as peak / (units x
    FLOP/clk) where the vendor publishes none)."""
    sustained_clock: UnitClock | None = None
    """Measured median clock under dense GEMM at the default power limit (MI300X 1207
    MHz at 750 W, BF16); ``None`` when no measurement is published."""
    sustained_clock_power: Power | None = None
    """Module power the sustained clock was measured at, when it is not ``power.tdp``
    (Gaudi 3: the 900 W air card); other power profiles scale from it."""
    flop_per_clock: FlopPerClock | None = None
    """Dense matrix FLOP per clock per unit, per precision."""
    tile: Tile
    units_per_tile: Literal[1, 2] = 1
    """Units that compute one tile together: 2 for Blackwell's 2-SM ``cta_group::2``
    MMA, so 148 SMs run 74 tiles at a time."""
    k0: Annotated[int, Field(ge=0, le=65536, strict=True)] | None = None
    """Small-K constant of ``eta_K = K / (K + K0)``: per-tile prologue and epilogue
    time over time per unit of K (``compute_units.md`` §3.2). ``None``: no fit
    published, the cost model's documented default applies."""
    stream_k: Flag = False
    """The vendor library's default GEMMs split the K loop across units (Stream-K), so
    run time has no wave-quantization staircase."""
    exp_per_clock: Annotated[int, Field(ge=1, le=1024, strict=True)] | None = None
    """Exponentials per clock per unit on the special-function path the softmax of
    attention runs on (NVIDIA ``MUFU.EX2``: 16 per SM from sm_80 to sm_100, 32 on
    Blackwell Ultra). ``None``: not published, and attention has no softmax floor (its
    exp cost stays inside the fitted attention efficiency)."""
    measured_matmul: PeakFlops | None = None
    """Best dense matmul rate measured on the shipping part, per input precision: a
    search over GEMM shapes with the vendor library at the default power limit (the
    ml-engineering "maximum achievable matmul FLOPS" table; AMD's hipBLASLt MAF runs,
    whose clock is the ``sustained_clock``; ``compute_units.md`` §2.1.1-2.1.2). Data, not
    a model input: no fitted large-GEMM efficiency of the chip's family may exceed it
    (:func:`ocplan.costmodel.chip.measured_gemm_ceiling`)."""
    portable_attention: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    """Rate of a portable FlashAttention-2-class kernel (the previous generation's
    warp-level ``mma.sync``, no TMA or warpgroup MMA) relative to the chip's native fused
    attention (cuDNN, FlashAttention-3 on Hopper), forward+backward at head width 128,
    measured. ``None``: the portable kernel is the chip's native one (A100) or no
    measurement is published; a plan's ``native_attention = false`` then changes
    nothing."""
    notes: Annotated[str, Field(max_length=2000)] | None = None
    """Derivations and conflicts behind the numbers above."""

    @model_validator(mode="after")
    def _sustained_not_above_peak_clock(self) -> Compute:
        # Every published sustained GEMM clock is below the clock of the vendor peak
        # (power-limited); one above it means the two fields are swapped.
        if self.sustained_clock is not None and self.sustained_clock > self.clock:
            raise ValueError(f"sustained_clock {self.sustained_clock / 1e6:g} MHz exceeds "
                             f"clock {self.clock / 1e6:g} MHz (the clock the peak assumes)")
        if self.units % self.units_per_tile:
            raise ValueError(f"units = {self.units} is not a multiple of units_per_tile = "
                             f"{self.units_per_tile}")
        return self


class Memory(Spec):
    """Device memory and on-chip SRAM."""

    hbm_capacity: Bytes
    hbm_bandwidth: Bandwidth
    hbm_type: Annotated[str, Field(max_length=20)]
    sram: Bytes | None = None
    """Last-level on-chip memory (L2, Infinity Cache, SRAM)."""


class ScaleUp(Spec):
    """The chip's own scale-up ports (NVLink, xGMI, integrated RoCE, ICI, HCCS ...)."""

    fabric: Annotated[str, Field(min_length=2, max_length=40)]
    ports: Annotated[int, Field(ge=1, le=256, strict=True)]
    lanes_per_port: Annotated[int, Field(ge=1, le=32, strict=True)]
    lane_rate: BitRate
    """Raw SerDes signalling rate of one lane (e.g. ``"112 Gb/s"`` PAM4)."""
    port_bandwidth: Bandwidth
    """Bandwidth of one port, per direction, as the vendor states it."""
    usable_fraction: Annotated[float, Field(strict=True, gt=0, le=1)] = 1.0
    """Share of ``port_bandwidth`` left for payload after link-level CRC/protocol
    overhead, where the vendor states it (MI300X xGMI: 48 of 64 GB/s)."""


class HostInterface(Spec):
    """The link to the host CPU."""

    kind: Literal["pcie", "cxl", "nvlink-c2c"]
    gen: Annotated[int, Field(ge=1, le=7, strict=True)] | None = None
    lanes: Annotated[int, Field(ge=1, le=64, strict=True)] = 16
    bandwidth: Bandwidth | None = None
    """Per direction; required for links that are not PCIe/CXL of a known generation."""


class IntegratedNic(Spec):
    """Scale-out ports built into the accelerator (Gaudi's RoCE, TPU's DCN via host)."""

    ports: Annotated[int, Field(ge=1, le=64, strict=True)]
    port_bandwidth: Bandwidth
    protocol: Literal["roce", "ethernet", "infiniband"]


class PowerMode(Spec):
    """A named module power the vendor publishes (an air or liquid SKU rating, say)."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,30}$")]
    power: Power


class AcceleratorPower(Spec):
    """Module power envelope."""

    tdp: Power
    rail: Voltage
    """Main input rail of the module (12 V, 48 V or 54 V class)."""
    air_max_tdp: Power | None = None
    """Highest module power the vendor rates for air cooling, when it differs from ``tdp``."""
    modes: tuple[PowerMode, ...] = ()
    """Published power modes (e.g. Gaudi 3 ``air`` 900 W, ``liquid`` 1200 W); a system
    picks one by name with ``power_mode``. Each is a module power the vendor rates."""

    def mode(self, name: str) -> float | None:
        """The power of the mode called ``name``, W (None when there is none)."""
        return next((m.power for m in self.modes if m.name == name), None)


class Accelerator(Entry):
    """An accelerator module (OAM, SXM, PCIe card, TPU chip, NPU module)."""

    kind: Literal["accelerator"]
    vendor: Annotated[str, Field(min_length=2, max_length=40)]
    form_factor: FormFactor
    oam_version: OamVersion | None = None
    launch_year: Annotated[int, Field(ge=2010, le=2035, strict=True)]
    dies: Annotated[int, Field(ge=1, le=16, strict=True)] = 1
    """Compute dies seen as separate devices (MI250X: 2 GCDs)."""
    peak_flops: PeakFlops
    compute: Compute | None = None
    """Matrix-compute units, clocks and GEMM tiling (optional; see :class:`Compute`)."""
    memory: Memory
    scale_up: ScaleUp | None = None
    """The module's scale-up links; None when they are not published (checks that need
    them warn that they could not check; the engine then moves scale-up traffic over the
    host interface)."""
    host: HostInterface
    integrated_nic: IntegratedNic | None = None
    power: AcceleratorPower
    cooling: Annotated[tuple[Cooling, ...], Field(min_length=1)]
    default_server: Id | None = None
    """Server id that ``ocplan estimate --chip ID`` assumes when no system file is given."""
    family: Id | None = None
    """Calibration family: chips of one micro-architecture share the fitted efficiencies
    (``hopper`` for H100/H200/H800/H20). None, or a family no published run has fitted,
    uses the ``default`` priors, and estimates say so."""
    family_variant: Id | None = None
    """A variant of the family whose published runs differ from the family's in one
    fitted value, the efficiency of grouped (expert) GEMMs with 8-bit inputs
    (``blackwell-ultra``: B300 and GB300, compute capability 10.3, in ``blackwell``); every
    other fitted value is the family's. None, or a variant no published run has fitted:
    the family's values throughout."""

    @model_validator(mode="after")
    def _oam_version_only_for_oam(self) -> Accelerator:
        if self.form_factor == "oam" and self.oam_version is None:
            raise ValueError("an OAM module needs oam_version (one of 1.0, 1.1, 1.5, 2.0)")
        if self.form_factor != "oam" and self.oam_version is not None:
            raise ValueError(f"oam_version is only for form_factor 'oam', not "
                             f"'{self.form_factor}'")
        if self.peak_flops.bf16 is None and self.peak_flops.fp16 is None \
                and self.peak_flops.int8 is None:
            raise ValueError("peak_flops needs at least one of bf16, fp16, int8")
        measured = self.compute.measured_matmul if self.compute else None
        for precision, rate in (measured.model_dump(exclude_none=True).items()
                                if measured else ()):
            peak = self.peak_flops.get(precision)
            # a measured rate above the datasheet peak means a unit or a row mix-up
            if peak is None or rate > peak:
                raise ValueError(f"compute.measured_matmul.{precision} {rate / 1e12:g} "
                                 f"TFLOP/s needs a peak_flops.{precision} at least as large "
                                 f"(peak: {'none' if peak is None else f'{peak / 1e12:g}'})")
        return self


class SpecIntRate(Spec):
    """SPECrate2017_int_base as published on spec.org."""

    value: Annotated[float, Field(strict=True, gt=0, le=100_000)]
    sockets: Literal[1, 2]
    results: Annotated[int, Field(ge=1, strict=True)] = 1
    """Number of published results the value is the median of."""


#: Data bytes one DDR4/DDR5 channel moves per transfer: a 64-bit data path (DDR5 splits it
#: into two 32-bit subchannels; ECC bits excluded), JEDEC JESD79-4 / JESD79-5.
DDR_BYTES_PER_TRANSFER = 8
#: Tolerance of the check memory_bandwidth = channels x MT/s x 8 B: vendors round the
#: product (Kunpeng 920: 187.7 GB/s for 8 x 2933 x 8 B = 187.65 GB/s).
BANDWIDTH_TOLERANCE = 0.01
#: A DDR speed grade in MT/s: DDR4-1600 is the slowest server grade in use, MRDIMM-12800 is
#: past the fastest announced; outside that range the number is a typo.
MtPerS = Annotated[int, Field(ge=800, le=12_800, strict=True)]
LaneCount = Annotated[int, Field(ge=0, le=512, strict=True)]
PcieGen = Annotated[int, Field(ge=1, le=7, strict=True)]


class Cpu(Entry):
    """A host CPU; one or more of them make a compute module (:class:`ComputeModule`).

    A value the vendor does not publish is left out (``None``), never guessed: the
    validation set's CPU table marks such values ``?`` and the entry says so in ``notes``.
    """

    kind: Literal["cpu"]
    vendor: Annotated[str, Field(min_length=2, max_length=40)]
    codename: str
    family: Id | None = None
    """Micro-architecture family (``zen4``, ``granite-rapids``, ``neoverse-v2``, ...): CPUs
    of one core design, which share one calibration in the CPU performance model. Every
    built-in entry names one (a catalog test checks); a user's own CPU without it runs on
    the model's uncalibrated fallback."""
    isa: Literal["x86-64", "arm64", "riscv64"]
    launch_year: Annotated[int, Field(ge=2010, le=2035, strict=True)] | None = None
    cores: Annotated[int, Field(ge=1, le=1024, strict=True)]
    threads: Annotated[int, Field(ge=1, le=2048, strict=True)]
    base_clock: Frequency
    all_core_clock: Frequency | None = None
    """All-core boost clock, only where the vendor publishes one (AMD EPYC 9004)."""
    boost_clock: Frequency | None = None
    """Highest single-core boost (max turbo) clock."""
    l3: Bytes | None = None
    max_sockets: Literal[1, 2, 4, 8] | None = None
    """Most sockets one coherent system may hold (Intel ARK "Scalability", AMD 1P/2P)."""
    memory_channels: Annotated[int, Field(ge=1, le=32, strict=True)] | None = None
    memory_type: Annotated[str, Field(max_length=40)] | None = None
    memory_mts: MtPerS | None = None
    """DDR speed the CPU supports with one DIMM per channel (RDIMM), MT/s."""
    memory_mts_2dpc: MtPerS | None = None
    """DDR speed with two DIMMs per channel, where the vendor publishes it, MT/s."""
    memory_mts_mrdimm: MtPerS | None = None
    """MRDIMM (MCR DIMM) speed where supported, MT/s."""
    dimms_per_channel_max: Annotated[int, Field(ge=1, le=3, strict=True)] | None = None
    memory_bandwidth: Bandwidth | None = None
    """Theoretical per socket: channels x MT/s x 8 B (RDIMM at one DIMM per channel), or
    the vendor's figure for on-package memory."""
    pcie_lanes: Annotated[int, Field(ge=1, le=512, strict=True)] | None = None
    """PCIe lanes of one socket (the one-socket count); a multi-socket system loses
    ``socket_link_lanes`` of them per socket to the socket-to-socket links."""
    pcie_gen: PcieGen | None = None
    socket_link_lanes: LaneCount | None = None
    """PCIe lanes per socket that carry the socket-to-socket links in a multi-socket system
    (EPYC xGMI with 4 links: 64; Intel UPI is separate: 0); None when not published."""
    cxl: str | None = None
    cxl_lanes: LaneCount | None = None
    """Lanes per socket that can run CXL, where the vendor states it."""
    tdp: Power | None = None
    socket: str | None = None
    specrate2017_int_base: SpecIntRate | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Cpu:
        if self.threads % self.cores:
            raise ValueError(f"threads = {self.threads} is not a multiple of cores = "
                             f"{self.cores}")
        if self.boost_clock is not None and self.boost_clock < self.base_clock:
            raise ValueError(f"boost_clock {self.boost_clock / 1e9:g} GHz is below base_clock "
                             f"{self.base_clock / 1e9:g} GHz")
        if self.all_core_clock is not None:
            top = self.boost_clock if self.boost_clock is not None else self.all_core_clock
            if not self.base_clock <= self.all_core_clock <= top:
                raise ValueError(f"all_core_clock {self.all_core_clock / 1e9:g} GHz is outside "
                                 "base_clock .. boost_clock")
        if self.memory_mts_2dpc is not None:
            if self.memory_mts is None or self.memory_mts_2dpc > self.memory_mts:
                raise ValueError("memory_mts_2dpc needs memory_mts and may not exceed it")
            if self.dimms_per_channel_max is not None and self.dimms_per_channel_max < 2:
                raise ValueError("memory_mts_2dpc is given but dimms_per_channel_max is 1")
        if (self.socket_link_lanes is not None and self.pcie_lanes is not None
                and self.socket_link_lanes > self.pcie_lanes):
            raise ValueError(f"socket_link_lanes = {self.socket_link_lanes} exceeds "
                             f"pcie_lanes = {self.pcie_lanes}")
        if (self.cxl_lanes is not None and self.pcie_lanes is not None
                and self.cxl_lanes > self.pcie_lanes):
            raise ValueError(f"cxl_lanes = {self.cxl_lanes} exceeds pcie_lanes = "
                             f"{self.pcie_lanes} (CXL runs on the PCIe lanes)")
        self._check_bandwidth()
        return self

    def _check_bandwidth(self) -> None:
        # One formula ties three published numbers together; a typo in any one shows here.
        if None in (self.memory_mts, self.memory_channels, self.memory_bandwidth):
            return
        assert self.memory_mts is not None
        assert self.memory_channels is not None
        assert self.memory_bandwidth is not None
        expected = self.memory_channels * self.memory_mts * 1e6 * DDR_BYTES_PER_TRANSFER
        if abs(self.memory_bandwidth - expected) > BANDWIDTH_TOLERANCE * expected:
            raise ValueError(
                f"memory_bandwidth {self.memory_bandwidth / 1e9:g} GB/s differs by more than "
                f"{BANDWIDTH_TOLERANCE:.0%} from memory_channels x memory_mts x 8 B = "
                f"{expected / 1e9:g} GB/s")


class Nic(Entry):
    """A scale-out network adapter."""

    kind: Literal["nic"]
    vendor: Annotated[str, Field(min_length=2, max_length=40)]
    protocol: Literal["infiniband", "ethernet", "roce", "slingshot"]
    ports: Annotated[int, Field(ge=1, le=8, strict=True)] = 1
    port_bandwidth: Bandwidth
    """Line rate of one port, per direction (``"400 Gb/s"``)."""
    host: HostInterface
    power: Power | None = None


class Switch(Spec):
    """A scale-out switch ASIC/box."""

    name: str
    radix: Annotated[int, Field(ge=4, le=1024, strict=True)]
    """Ports at the fabric's link rate."""
    power: Power | None = None


class Fabric(Entry):
    """A scale-out network technology at one link rate, with its switch and default NIC."""

    kind: Literal["fabric"]
    protocol: Literal["infiniband", "roce", "ethernet", "slingshot", "dcn"]
    link_bandwidth: Bandwidth
    """Line rate of one port, per direction."""
    switch: Switch
    hop_latency: Time
    """One switch traversal plus wire, one way."""
    nic: Id | None = None
    """Default NIC for this fabric."""
    achievable_fraction: Annotated[float, Field(strict=True, gt=0, le=1)]
    """Fraction of line rate a large collective reaches per NIC (measured, see sources)."""


class HostUplink(Spec):
    """PCIe switches between the baseboard and the host (UBB host interface board)."""

    pcie_gen: Annotated[int, Field(ge=1, le=7, strict=True)]
    lanes: Annotated[int, Field(ge=1, le=1024, strict=True)]
    """Lanes from the board's switches up to the host CPUs."""
    switch_lanes: Annotated[int, Field(ge=0, le=16384, strict=True)] = 0
    """Total lanes of the board's PCIe switches (0: modules wire straight to the CPUs); a
    board that spans several servers (a Trn2 UltraServer) counts every server's."""


class Baseboard(Entry):
    """A board (or rack domain) that joins accelerator modules by a scale-up topology."""

    kind: Literal["baseboard"]
    standard: Literal["ubb", "hgx", "nvl", "tpu", "gaudi", "amd-ubb", "pcie", "custom"]
    spec_version: str | None = None
    slots: Count
    topology: TopologyKind
    links_per_pair: Annotated[int, Field(ge=1, le=16, strict=True)] = 1
    """Parallel ports on each module-to-module edge (Gaudi: 3)."""
    torus_dims: tuple[Count, ...] | None = None
    torus_link_bandwidth: tuple[Bandwidth, ...] | None = None
    """Per-direction bandwidth of one link along each torus dimension, in ``torus_dims``
    order, for tori whose dimensions are wired differently (a Trn2 UltraServer joins its
    four 4x4 servers by slower links than those inside a server); each is capped at the
    module's port bandwidth on this board. ``None``: every link runs at the port bandwidth."""
    max_lanes_per_link: Annotated[int, Field(ge=1, le=32, strict=True)] = 16
    max_lane_rate: BitRate
    """Highest SerDes rate the board's channels and connectors carry per lane."""
    host_uplink: HostUplink | None = None
    expansion_ports: Annotated[int, Field(ge=0, le=64, strict=True)] = 0
    slot_power_max: Power
    """Highest module power a slot delivers."""
    rail: Voltage
    """Module supply rail."""
    in_switch_reduction: Flag = False
    """The switch plane reduces in the network (NVLink SHARP on third-gen NVSwitch+)."""
    module_form_factor: FormFactor | None = None
    """Form factor of the modules the slots take, for a ``custom`` board (a standard
    board's is fixed by its standard, :data:`STANDARD_FORM_FACTOR`); None on a custom
    board: not published, and the FORM-FACTOR check says it could not check."""

    @property
    def slot_form_factor(self) -> FormFactor | None:
        """The form factor of the modules this board's slots take (None: not known)."""
        return self.module_form_factor or STANDARD_FORM_FACTOR.get(self.standard)

    @model_validator(mode="after")
    def _form_factor_agrees_with_standard(self) -> Baseboard:
        fixed = STANDARD_FORM_FACTOR.get(self.standard)
        if fixed is not None and self.module_form_factor not in (None, fixed):
            raise ValueError(f"module_form_factor '{self.module_form_factor}' contradicts "
                             f"standard '{self.standard}', whose slots take '{fixed}' "
                             "modules; leave module_form_factor out")
        return self

    @model_validator(mode="after")
    def _torus_needs_dims(self) -> Baseboard:
        if self.topology == "torus":
            if not self.torus_dims:
                raise ValueError("topology 'torus' needs torus_dims, e.g. [4, 4, 4]")
            product = 1
            for d in self.torus_dims:
                product *= d
            if product != self.slots:
                raise ValueError(f"torus_dims multiply to {product}, not slots = {self.slots}")
            rates = self.torus_link_bandwidth
            if rates is not None and len(rates) != len(self.torus_dims):
                raise ValueError(f"torus_link_bandwidth has {len(rates)} values; torus_dims "
                                 f"has {len(self.torus_dims)} dimensions (one rate each)")
        else:
            for name in ("torus_dims", "torus_link_bandwidth"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} is only for topology 'torus', not "
                                     f"'{self.topology}'")
        return self


class HostModule(Spec):
    """Host CPUs: sockets on a motherboard, or OCM compute modules."""

    cpu: Id
    sockets: Annotated[int, Field(ge=1, le=8192, strict=True)]
    """Sockets of the whole server (all its host nodes together)."""
    form: Literal["socket", "ocm"] = "socket"
    socket_link_lanes: LaneCount | None = None
    """PCIe lanes per socket the server's motherboard gives to socket-to-socket links, when
    it differs from the CPU's default (EPYC boards wired with three xGMI links: 48, not
    64); counted only where a host node has more than one socket."""


class NicSlot(Spec):
    nic: Id
    count: Annotated[int, Field(ge=0, le=8192, strict=True)]
    attach: Literal["cpu", "pcie-switch", "accelerator"] = "pcie-switch"
    """Where the NICs hang: straight on CPU lanes, behind the board's PCIe switches, or on
    the accelerators' own SerDes (AMD Helios: each MI455X drives its three NICs), which
    takes no host lanes."""


class PowerSupplies(Spec):
    count: Annotated[int, Field(ge=1, le=4096, strict=True)]
    rating: Power
    """Output of one supply."""
    redundancy: Literal["N", "N+1", "N+2", "N+N"]


class Server(Entry):
    """A server (or rack-scale domain such as NVL72) built on one baseboard."""

    kind: Literal["server"]
    vendor: Annotated[str, Field(min_length=2, max_length=40)]
    baseboard: Id
    accelerator: Id | None = None
    """Module the server ships with; a system file may populate an OAM server with another."""
    accelerators: Count | None = None
    """Populated modules (default: every baseboard slot)."""
    hosts: Annotated[int, Field(ge=1, le=4096, strict=True)] = 1
    """Host nodes (compute trays) in the server; NVL72 racks and TPU slices have many."""
    host: HostModule
    nics: tuple[NicSlot, ...] = ()
    nic_switch_uplink_lanes: Annotated[int, Field(ge=1, le=4096, strict=True)] | None = None
    """Host lanes taken, in all sockets, by PCIe switches that serve only the NICs and sit
    off the baseboard (an Aurora node hangs four NICs on one such switch per CPU): the
    host pays these uplinks, not the lanes of the ``pcie-switch`` NICs behind them. None:
    the NICs behind switches sit behind the baseboard's (or, without one, on the CPUs)."""
    default_fabric: Id | None = None
    power_supplies: PowerSupplies
    other_power: Power
    """Fans, drives, BMC, switches and conversion losses: all but modules, CPUs, NICs."""
    cooling: Cooling
    air_module_power_max: Power | None = None
    """Highest module power the air-cooled chassis removes per slot."""
    height: Length | None = None
    height_u: Annotated[float, Field(strict=True, gt=0, le=60)] | None = None
    chips_per_rack: Annotated[int, Field(ge=1, le=4096, strict=True)] | Literal[
        "unpublished"] | None = None
    """Chips one rack holds when the server is larger than a rack (a TPU pod catalogued as
    one system): the server fills ``ceil(chips / chips_per_rack)`` racks, each full rack a
    ``chips_per_rack / chips`` share of its power and heat. ``unpublished``: it spans
    racks of a size no source gives, so per-rack limits are not judged. None: the server
    fits in one rack."""
    capture: Id | None = None
    """Liquid heat capture of the server as shipped: an entry of
    ``ocplan/facility/data/capture.yaml`` (a rack-scale system's published liquid/air
    split). None: the facility's default cold-plate ratio. A system file's
    ``facility.capture_ratio`` overrides it."""
    busbar: Id | None = None
    """Busbar of the rack the server ships in, an entry of
    ``ocplan/facility/data/busbars.yaml``: a rack-scale system (NVL72) brings its own rack,
    power shelves and busbar. None: the facility's. A system file's
    ``facility.power_delivery.busbar`` overrides it."""


#: Form-factor labels of a compute module. The OCM (Open Compute Module) specification has
#: no public technical text, so modules borrow the OCP DC-MHS host processor module (HPM)
#: labels: M-FLW full width, M-DNO density-optimised partial width, M-SDNO its scalable
#: variant (opencompute.org/wiki/Server/DC-MHS); "superchip" for CPU boards soldered with
#: their memory (NVIDIA Grace), "custom" for anything else.
ModuleFormFactor = Literal["ocm", "dc-mhs-m-flw", "dc-mhs-m-dno", "dc-mhs-m-sdno",
                           "superchip", "custom"]
#: How memory attaches: a DIMM type, or soldered on the package or board (no slots).
MemoryModuleType = Literal["rdimm", "mrdimm", "lrdimm", "3ds-rdimm", "soldered"]


class ModuleMemory(Spec):
    """Memory population of **each** socket of a compute module."""

    slots_per_channel: Annotated[int, Field(ge=0, le=3, strict=True)]
    """DIMM slots the board gives each channel (DC-MHS M-PnP ``SlotsPerChannel``); 0 for
    soldered memory."""
    dimms_per_channel: Annotated[int, Field(ge=0, le=3, strict=True)]
    """DIMMs populated on each populated channel (0 for soldered memory)."""
    channels: Annotated[int, Field(ge=1, le=32, strict=True)] | None = None
    """Populated channels per socket; None: every channel of the CPU."""
    module_type: MemoryModuleType
    capacity: Bytes
    """Per DIMM; for soldered memory, per socket."""
    rated_mts: MtPerS | None = None
    """Speed grade of the DIMMs, MT/s (the CPU's limit at the population may be lower)."""
    dimm_power: Power | None = None
    """Power of one DIMM under load, a sourced planning figure (see the module's sources)."""

    @model_validator(mode="after")
    def _dimms_or_soldered(self) -> ModuleMemory:
        soldered = self.module_type == "soldered"
        if soldered and (self.slots_per_channel or self.dimms_per_channel):
            raise ValueError("soldered memory has no slots: slots_per_channel and "
                             "dimms_per_channel must be 0")
        if not soldered:
            if self.dimms_per_channel == 0:
                raise ValueError(f"{self.module_type} memory needs dimms_per_channel >= 1")
            if self.rated_mts is None or self.dimm_power is None:
                raise ValueError(f"{self.module_type} memory needs rated_mts and dimm_power")
        return self


class ModuleLink(Spec):
    """High-speed lanes a compute module exports on its connectors (all sockets together)."""

    kind: Literal["pcie", "cxl"]
    gen: PcieGen
    """PCIe generation of the lanes (CXL 1.1/2.0 run on PCIe 5 lanes)."""
    lanes: Annotated[int, Field(ge=1, le=1024, strict=True)]
    connector: Annotated[str, Field(max_length=80)] | None = None
    """Where they leave the module (DC-MHS M-XIO / SFF-TA-1016, MCIO, riser, ...)."""


class ManagementEndpoint(Spec):
    """A management controller the module exposes to the platform."""

    kind: Literal["dc-scm", "onboard-bmc", "satmc"]
    """DC-SCM: the BMC on an OCP secure control module card, attached over DC-SCI;
    onboard-bmc: a BMC soldered on the module; satmc: a satellite controller that needs a
    host BMC elsewhere."""
    count: Annotated[int, Field(ge=0, le=8, strict=True)] = 1
    interface: Annotated[str, Field(max_length=60)] | None = None
    """Link to the platform (``DC-SCI``, ``LTPI``, ``I3C``, ...)."""


class ComputeModule(Entry):
    """A CPU compute module in the spirit of OCM and OCP DC-MHS: CPU sockets with their
    memory, the lanes they export, a power input and a management endpoint.

    The OCM text is not public: the form-factor labels and rules are borrowed from DC-MHS
    and DC-SCM and say so (``checks/module_rules.py``). A module composed here rather than
    sold as a product has ``illustrative: true`` and says so in ``notes``.
    """

    kind: Literal["compute-module"]
    vendor: Annotated[str, Field(min_length=2, max_length=40)]
    form_factor: ModuleFormFactor
    illustrative: Flag = False
    cpu: Id
    sockets: Annotated[int, Field(ge=1, le=8, strict=True)]
    socket_link_lanes: LaneCount | None = None
    """Lanes per socket the module gives to socket-to-socket links, when it differs from the
    CPU's default (EPYC with three xGMI links: 48 instead of 64)."""
    memory: ModuleMemory
    io: tuple[ModuleLink, ...] = ()
    management: tuple[ManagementEndpoint, ...] = ()
    power_budget: Power
    """Most power the module's input (connector and regulators) delivers."""
    other_power: Power
    """Power reserved in the budget for everything but CPUs and DIMMs: voltage-regulator
    loss, management controller, fans or pumps on the module."""
    rail: Voltage | None = None
    """Input rail (12 V, 48 V or 54 V class)."""


# Model dimensions: each bound is far beyond any published model (widest hidden size
# 25,600 for GPT-4-class estimates, 20,480 for PaLM-2-class; most heads 128; most routed
# experts 384 for Kimi K2; largest vocabularies about 260,000 for Gemma) so that a typo
# is caught before it sizes arrays of billions of elements.
#: Widths (hidden, FFN, head): at most 2**18.
Width = Annotated[int, Field(ge=1, le=2**18, strict=True)]
#: Attention heads: at most 4,096.
HeadCount = Annotated[int, Field(ge=1, le=4096, strict=True)]
#: Routed experts (and top-k): at most 16,384.
ExpertCount = Annotated[int, Field(ge=1, le=16384, strict=True)]
#: Vocabulary entries: at most 2**22.
VocabSize = Annotated[int, Field(ge=1, le=2**22, strict=True)]


class MoeSpec(Spec):
    """Mixture-of-experts layers."""

    num_experts: ExpertCount
    top_k: ExpertCount
    expert_ffn: Width
    shared_experts: Annotated[int, Field(ge=0, le=64, strict=True)] = 0
    layer_freq: Count = 1
    """Every k-th layer (after the leading dense ones) is MoE."""
    first_dense_layers: Annotated[int, Field(ge=0, le=MAX_LAYERS, strict=True)] = 0

    @model_validator(mode="after")
    def _top_k_le_experts(self) -> MoeSpec:
        if self.top_k > self.num_experts:
            raise ValueError(f"top_k = {self.top_k} exceeds num_experts = {self.num_experts}")
        return self


class MlaSpec(Spec):
    """Multi-head latent attention (DeepSeek-V2/V3) projection ranks."""

    q_lora_rank: Width | None = None
    """Rank of the query compression; absent: queries are projected directly from the
    hidden state (DeepSeek-V2-Lite, ``q_lora_rank: null`` in its config)."""
    kv_lora_rank: Width
    qk_nope_head_dim: Width
    qk_rope_head_dim: Width
    v_head_dim: Width


#: Linear-time token mixers of hybrid models' non-attention layers; each has its cost law
#: in :data:`ocplan.workloads.mixers.MIXERS`.
MixerKind = Literal["gated-deltanet", "mamba2"]

#: The symbols of a model's ``layer_pattern`` and the one block each such layer holds
#: (Megatron-LM ``hybrid_override_pattern``, megatron/core/ssm/mamba_hybrid_layer_allocation.py:
#: Nemotron-H counts every block as a layer, each with its own norm and residual).
LAYER_BLOCKS: dict[str, str] = {"M": "mixer", "*": "attention", "-": "mlp", "E": "moe"}
#: Each block's symbol in a ``layer_pattern`` (the inverse of :data:`LAYER_BLOCKS`).
BLOCK_SYMBOL: dict[str, str] = {block: symbol for symbol, block in LAYER_BLOCKS.items()}


class LinearMixerSpec(Spec):
    """The recurrent token mixer of a hybrid model's layers that do not attend: a state of
    ``key_dim x value_dim`` per head, updated once per token, instead of a KV cache.

    Gated DeltaNet (Yang, Kautz and Hatamizadeh, arXiv:2412.06464; Qwen3-Next) and Mamba-2
    (Dao and Gu, arXiv:2405.21060; Granite 4.0-H, Nemotron-H) share one shape: queries and
    keys of ``key_dim`` in ``key_heads`` groups (Mamba-2: C and B, ``n_groups`` of width
    ``d_state``), values of ``value_dim`` in ``heads`` heads (Mamba-2: x, ``d_head``), a
    gate of the values' width (z), a short causal convolution over q, k and v, and an
    output projection."""

    kind: MixerKind
    heads: HeadCount
    """Value heads (GDN ``linear_num_value_heads``; Mamba-2 ``n_heads``)."""
    key_heads: HeadCount
    """Query/key groups (GDN ``linear_num_key_heads``; Mamba-2 ``n_groups``)."""
    key_dim: Width
    """Width of a key (GDN ``linear_key_head_dim``; Mamba-2 ``d_state``)."""
    value_dim: Width
    """Width of a value head (GDN ``linear_value_head_dim``; Mamba-2 ``d_head``)."""
    conv_kernel: Annotated[int, Field(ge=1, le=64, strict=True)] = 4
    """Taps of the causal convolution (GDN ``linear_conv_kernel_dim``; Mamba-2 ``d_conv``)."""
    attention_layers: tuple[Annotated[int, Field(ge=0, lt=MAX_LAYERS, strict=True)], ...] = ()
    """0-based layers that keep softmax attention; every other layer runs this mixer
    (Qwen3-Next: every fourth, 3, 7, ..., 47). Empty with a model's ``layer_pattern``,
    which places the attention layers itself."""
    state_format: StateFormat = "bf16"
    """Format the release has a serving engine cache the state in: its config's
    ``mamba_ssm_cache_dtype`` (Nemotron: float32, which vLLM's NemotronH hook also
    defaults to), else the model's 16-bit dtype (vLLM ``auto``)."""

    @model_validator(mode="after")
    def _groups_and_layers(self) -> LinearMixerSpec:
        if self.heads % self.key_heads:
            raise ValueError(f"heads = {self.heads} is not a multiple of key_heads = "
                             f"{self.key_heads}")
        if list(self.attention_layers) != sorted(set(self.attention_layers)):
            raise ValueError("attention_layers must be increasing, without repeats")
        return self


class ReleasedWeights(Spec):
    """The number formats of a model's released checkpoint, which a serving job takes
    unless it names its own (most open checkpoints are 16-bit and give none)."""

    weights: WeightFormat
    """Format of the quantized matrix weights (DeepSeek-V3: FP8 in 128 x 128 blocks;
    gpt-oss: MXFP4)."""
    activations: ActivationFormat = "bf16"
    """Format the checkpoint's own inference quantizes the GEMM inputs to (DeepSeek-V3:
    FP8, scaled per 1 x 128 tile at run time); bf16 for weight-only formats."""
    experts_only: Flag = False
    """Only the routed experts' matrices are in :attr:`weights`; attention, the router,
    shared experts, dense layers, embeddings and head stay 16-bit (gpt-oss)."""


class ModelArch(Entry):
    """A transformer language model's shape."""

    kind: Literal["model"]
    family: Annotated[str, Field(min_length=2, max_length=40)]
    n_layers: LayerCount
    hidden: Width
    n_heads: HeadCount
    n_kv_heads: HeadCount
    head_dim: Width | None = None
    """Width of one head; default hidden / n_heads."""
    ffn_hidden: Width | None = None
    """Dense MLP width (gated width for swiglu); may be absent when every layer is MoE."""
    mlp: Literal["gelu", "swiglu"]
    vocab: VocabSize
    max_seq_len: SeqLen
    tied_embeddings: Flag = False
    moe: MoeSpec | None = None
    mla: MlaSpec | None = None
    sliding_window: SeqLen | None = None
    """Tokens a windowed (banded) attention layer looks back over, its own included (gpt-oss:
    128); absent when every layer attends the whole context."""
    full_attention_every: Annotated[int, Field(ge=0, le=MAX_LAYERS, strict=True)] | None = None
    """With ``sliding_window``: layer ``i`` (0-based) attends the whole context when
    ``(i + 1) % k == 0`` and only the window otherwise (gpt-oss: 2, Hugging Face
    ``layer_types`` alternating sliding and full from layer 0); 0 or absent: every layer
    is windowed."""
    linear_mixer: LinearMixerSpec | None = None
    """Hybrid models: the recurrent mixer of every layer not in its ``attention_layers``
    (the attention fields above describe those layers)."""
    layer_pattern: Annotated[str, Field(min_length=1, max_length=MAX_LAYERS,
                                        pattern=f"^[{re.escape(''.join(LAYER_BLOCKS))}]+$")
                             ] | None = None
    """Models whose layers each hold one block (Nemotron-H): one symbol per layer, ``M``
    the recurrent mixer, ``*`` attention, ``-`` the dense MLP, ``E`` the MoE block
    (Megatron-LM ``hybrid_override_pattern``); absent: every layer is a token mixer and
    an MLP."""
    attention_output_gate: Flag = False
    """The attention output is scaled by a sigmoid gate of the layer input, projected with
    the queries (Qwen3-Next ``attn_output_gate``: the query projection is twice as wide)."""
    mtp_depth: Annotated[int, Field(ge=0, le=MAX_MTP_DEPTH, strict=True)] = 0
    """Multi-token prediction modules the model was trained with (DeepSeek-V3 §2.2,
    config.json ``num_nextn_predict_layers``): each a projection, one layer like the last
    and the shared output head. Not counted in ``published_params`` (DeepSeek-V3's 671B
    leaves its MTP module out)."""
    published_params: Annotated[float, Field(strict=True, gt=0, le=1e14)] | None = None
    """Total parameter count as the source states it (checked against our count)."""
    released: ReleasedWeights | None = None
    """Formats of the released checkpoint; absent: 16-bit weights (bf16), as most open
    checkpoints and every unreleased model."""

    @model_validator(mode="after")
    def _shape_is_consistent(self) -> ModelArch:
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads = {self.n_heads} is not a multiple of "
                             f"n_kv_heads = {self.n_kv_heads}")
        if self.head_dim is None and self.hidden % self.n_heads:
            raise ValueError(f"hidden = {self.hidden} is not divisible by n_heads = "
                             f"{self.n_heads}; give head_dim")
        dense_layers_exist = self.moe is None or self.moe.first_dense_layers > 0 \
            or self.moe.layer_freq > 1
        if self.layer_pattern is not None:  # the pattern says (checked in _pattern_fits)
            dense_layers_exist = False
        if dense_layers_exist and self.ffn_hidden is None:
            raise ValueError("ffn_hidden is required when the model has dense MLP layers")
        if self.released is not None and self.released.experts_only and self.moe is None:
            raise ValueError("released.experts_only needs moe: a dense model has no routed "
                             "experts to quantize")
        if self.full_attention_every is not None and self.sliding_window is None:
            raise ValueError("full_attention_every needs sliding_window: without a window "
                             "every layer attends the whole context")
        if self.mtp_depth and self.linear_mixer is not None:
            raise ValueError("mtp_depth is modelled for attention models only: leave it 0 "
                             "with linear_mixer")
        if self.linear_mixer is not None:
            if self.sliding_window is not None:
                raise ValueError("linear_mixer with sliding_window is not modelled: give "
                                 "one or the other")
            late = [i for i in self.linear_mixer.attention_layers if i >= self.n_layers]
            if late:
                raise ValueError(f"linear_mixer.attention_layers {late} are beyond the "
                                 f"{self.n_layers} layers (0-based)")
        return self

    @model_validator(mode="after")
    def _pattern_fits(self) -> ModelArch:
        pattern = self.layer_pattern
        if pattern is None:
            return self
        if len(pattern) != self.n_layers:
            raise ValueError(f"layer_pattern has {len(pattern)} layers, n_layers = "
                             f"{self.n_layers}")
        symbol = BLOCK_SYMBOL
        if (symbol["mixer"] in pattern) != (self.linear_mixer is not None):
            raise ValueError("layer_pattern has M (mixer) layers exactly when linear_mixer "
                             "is given")
        if self.linear_mixer is not None and self.linear_mixer.attention_layers:
            raise ValueError("linear_mixer.attention_layers must be empty with a "
                             "layer_pattern: its * layers are the attention layers")
        if (symbol["moe"] in pattern) != (self.moe is not None):
            raise ValueError("layer_pattern has E (MoE) layers exactly when moe is given")
        if self.moe is not None and (self.moe.first_dense_layers or self.moe.layer_freq != 1):
            raise ValueError("moe.first_dense_layers and moe.layer_freq must keep their "
                             "defaults (0, 1) with a layer_pattern, which places the MoE "
                             "layers itself")
        if symbol["mlp"] in pattern and self.ffn_hidden is None:
            raise ValueError("ffn_hidden is required: layer_pattern has - (MLP) layers")
        if not set(pattern) & {symbol["mixer"], symbol["attention"]}:
            raise ValueError("layer_pattern needs a token mixer: at least one M or * layer")
        if self.mtp_depth:
            raise ValueError("mtp_depth is not modelled with a layer_pattern: leave it 0")
        return self

    @property
    def head_size(self) -> int:
        return self.head_dim if self.head_dim is not None else self.hidden // self.n_heads


CatalogEntry = Annotated[
    Accelerator | Cpu | Nic | Fabric | Baseboard | Server | ModelArch | ComputeModule,
    Field(discriminator="kind"),
]

KINDS: dict[str, type[Entry]] = {
    "accelerator": Accelerator,
    "cpu": Cpu,
    "nic": Nic,
    "fabric": Fabric,
    "baseboard": Baseboard,
    "server": Server,
    "model": ModelArch,
    "compute-module": ComputeModule,
}
