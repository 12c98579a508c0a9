"""The assembled CPU model: rows of (configuration, kind) and a parameter vector in, log
predictions out, for one parameter vector or a batch of them (the fit's Jacobian).

Throughput of a row of kind k (``int_rate``, ``fp_rate``, ``jbb_max``)::

    ln C = ln(S N) + ln f_sus + ipc(family, k) + ln SMT_k [threads >= 2] + beta_cat ln S [jbb]
    ln T = memory_limited_log(ln C, ln(B mu_k), phi_k)

and of ``int_speed``: ``ln T = ln f_max + ipc(family, int_speed)``. The per-core
throughput per Hz ``ipc`` is a sum of nested effects, each zero where the calibration has
no data for the level: ``a_k + isa + vendor + core design + family + family x kind``.
Symbols: S sockets, N cores per socket, f_sus the sustained all-core clock
(:func:`~ocplan.cpu.model.sustained_clock_log`), f_max the highest boost clock, B the
theoretical bandwidth, mu_k score per B/s, phi_k the bandwidth-bound share, beta the
SPECjbb socket-scaling exponent of the run category.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ocplan.cpu.benchmarks import FIT_KINDS, JBB_CATEGORIES, MEMORY_KINDS
from ocplan.cpu.config import CpuConfig
from ocplan.cpu.microarch import family_spec
from ocplan.cpu.model import (
    CACHE_REFERENCE_BYTES,
    SMT_UPLIFT,
    UNCORE_POWER_MAX_W,
    VECTOR_REFERENCE_FLOP_PER_CYCLE,
    Array,
    cache_traffic_log,
    channel_bytes_per_transfer,
    memory_efficiency_log,
    memory_limited_log,
    sustained_clock_log,
    tdp_clock_log,
    theoretical_bandwidth_Bps,
    vector_width_log,
)

__all__ = ["LEVELS", "PHYSICS", "Design", "Layout", "Levels", "Terms", "build_design",
           "evaluate", "sigmoid", "system_bandwidth_Bps"]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: The nested levels of the per-core throughput, coarsest first.
LEVELS = ("isa", "vendor", "core_design", "family")
#: Exponents of the micro-architecture laws, in parameter order: the cache law
#: (:func:`~ocplan.cpu.model.cache_traffic_log`) and the vector law
#: (:func:`~ocplan.cpu.model.vector_width_log`) of floating-point rate.
PHYSICS = ("cache_exponent", "vector_exponent_fp")


def sigmoid(z: Any) -> Array:
    """Logistic function, maps a free parameter to (0, 1) (as 0.5 (1 + tanh(z / 2)),
    which cannot overflow)."""
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64))))


@dataclass(frozen=True)
class Levels:
    """The values of each level the parameters have an effect for (sorted ids)."""

    isa: tuple[str, ...] = ()
    vendor: tuple[str, ...] = ()
    core_design: tuple[str, ...] = ()
    family: tuple[str, ...] = ()

    @classmethod
    def of(cls, configs: Sequence[CpuConfig]) -> Levels:
        return cls(isa=tuple(sorted({c.isa for c in configs})),
                   vendor=tuple(sorted({c.vendor for c in configs})),
                   core_design=tuple(sorted({c.core_design for c in configs})),
                   family=tuple(sorted({c.family for c in configs})))

    def values(self, level: str) -> tuple[str, ...]:
        values: tuple[str, ...] = getattr(self, level)
        return values

    def value_of(self, level: str, config: CpuConfig) -> str:
        value: str = getattr(config, level)
        return value


@dataclass(frozen=True)
class Layout:
    """Where each block of parameters sits in the vector."""

    levels: Levels
    slices: dict[str, slice] = field(init=False)
    size: int = field(init=False)

    def __post_init__(self) -> None:
        sizes = {"intercept": len(FIT_KINDS)}
        for level in LEVELS:
            sizes[level] = len(self.levels.values(level))
        sizes["family_kind"] = len(self.levels.family) * len(FIT_KINDS)
        sizes.update(clock=3, log_memory=len(MEMORY_KINDS), memory_share=len(MEMORY_KINDS),
                     socket_exponent=len(JBB_CATEGORIES), physics=len(PHYSICS))
        slices, start = {}, 0
        for name, n in sizes.items():
            slices[name] = slice(start, start + n)
            start += n
        object.__setattr__(self, "slices", slices)
        object.__setattr__(self, "size", start)

    def block(self, theta: Array, name: str) -> Array:
        """The block ``name`` of a (K, P) batch of parameter vectors, shape (K, n)."""
        block: Array = theta[:, self.slices[name]]
        return block


@dataclass(frozen=True)
class Design:
    """Model inputs of N rows as arrays (NaN: not published)."""

    kind: IntArray
    composite: BoolArray
    sockets: Array
    cores: Array
    log_smt: Array
    log_base: Array
    log_cap: Array
    log_max_boost: Array
    tdp_W: Array
    log_bandwidth: Array
    memory_bytes: Array
    level_index: dict[str, IntArray]
    cache_per_core_bytes: Array
    fp64_flop_per_cycle: Array
    log_memory_efficiency: Array

    @property
    def n(self) -> int:
        return len(self.kind)


def build_design(rows: Sequence[tuple[CpuConfig, str, str]], levels: Levels,
                 max_boost_Hz: Mapping[str, float]) -> tuple[Design, list[list[str]]]:
    """Arrays for rows of (configuration, kind, SPECjbb category), and the notes of each
    row about the specs it lacked. A missing maximum boost takes the median of the
    calibration CPUs' published values (``max_boost_Hz``, keyed ``family:<id>``,
    ``vendor:<id>`` and ``global``) of the family, else the vendor, else all of them."""
    notes: list[list[str]] = [[] for _ in rows]
    cap, top = [], []
    for (config, _, _), note in zip(rows, notes, strict=True):
        max_boost = config.max_boost_Hz
        if max_boost is None:
            for key in (f"family:{config.family}", f"vendor:{config.vendor}", "global"):
                if key in max_boost_Hz:
                    max_boost = max_boost_Hz[key]
                    note.append(f"maximum boost not published: {key.split(':')[0]} median "
                                f"{max_boost / 1e9:.2f} GHz used")
                    break
            else:
                max_boost = config.base_clock_Hz
                note.append("maximum boost not published: base clock used")
        top.append(max(max_boost, config.base_clock_Hz))
        cap.append(config.all_core_boost_Hz or top[-1])
        if config.tdp_W is None:
            note.append("TDP not published: sustained clock = base x fitted headroom")
    configs = [r[0] for r in rows]
    nan = math.nan
    bandwidth = system_bandwidth_Bps(configs)
    cache, width = [], []
    for c, note in zip(configs, notes, strict=True):
        if c.memory_transfers_per_s is None or (c.memory_channels_per_socket is None
                                                and c.dimms_total is None):
            note.append("memory speed or channels not published: no bandwidth limit")
        elif c.memory_channels_per_socket is None:
            note.append("memory channels not published: one DIMM per channel assumed")
        spec = family_spec(c.family)
        if spec is None:
            note.append(f"no micro-architecture specs for family {c.family}: cache and "
                        "vector laws at their reference values")
        elif spec.fp64_flop_per_cycle is None:
            note.append(f"vector width of family {c.family} not published: vector law at "
                        "its reference value")
        cache.append(CACHE_REFERENCE_BYTES if spec is None else spec.cache_per_core_bytes)
        width.append(VECTOR_REFERENCE_FLOP_PER_CYCLE if spec is None
                     or spec.fp64_flop_per_cycle is None else spec.fp64_flop_per_cycle)
    index = {level: np.array([_position(levels.values(level), levels.value_of(level, c))
                              for c in configs], dtype=np.int64) for level in LEVELS}
    kinds = [r[1] for r in rows]
    design = Design(
        kind=np.array([FIT_KINDS.index(k) for k in kinds], dtype=np.int64),
        composite=np.array([r[2] == "Composite" for r in rows], dtype=np.bool_),
        sockets=np.array([c.sockets for c in configs], dtype=np.float64),
        cores=np.array([c.cores_per_socket for c in configs], dtype=np.float64),
        log_smt=np.array([math.log(SMT_UPLIFT[k]) if (c.threads_per_core or 1) >= 2 else 0.0
                          for c, k in zip(configs, kinds, strict=True)]),
        log_base=np.log([c.base_clock_Hz for c in configs]),
        log_cap=np.log(cap), log_max_boost=np.log(top),
        tdp_W=np.array([c.tdp_W if c.tdp_W is not None else nan for c in configs]),
        log_bandwidth=np.log(bandwidth),
        memory_bytes=np.array([c.memory_bytes if c.memory_bytes is not None else nan
                               for c in configs]),
        level_index=index, cache_per_core_bytes=np.array(cache, dtype=np.float64),
        fp64_flop_per_cycle=np.array(width, dtype=np.float64),
        log_memory_efficiency=memory_efficiency_log([c.memory_type for c in configs]))
    return design, notes


def system_bandwidth_Bps(configs: Sequence[CpuConfig]) -> Array:
    """Theoretical DRAM bandwidth of each configuration as configured, B/s (NaN where the
    memory speed, or both the channels and the DIMM count, are not published):
    :func:`~ocplan.cpu.model.theoretical_bandwidth_Bps` with the channel width of its
    memory type."""
    nan = math.nan
    return theoretical_bandwidth_Bps(
        [c.sockets for c in configs], [c.memory_channels_per_socket or nan for c in configs],
        [c.dimms_total or nan for c in configs],
        [c.memory_transfers_per_s or nan for c in configs],
        channel_bytes_per_transfer([c.memory_type for c in configs]))


def _position(values: tuple[str, ...], value: str) -> int:
    """Index of ``value`` among a level's values, or ``len(values)`` (the zero padding)
    when the calibration has no effect for it."""
    return values.index(value) if value in values else len(values)


@dataclass(frozen=True)
class Terms:
    """Per-row log terms for a batch of K parameter vectors, each (K, N)."""

    log_clock: Array
    log_compute: Array
    log_memory: Array
    log_value: Array


def _effect(layout: Layout, theta: Array, level: str, index: IntArray) -> Array:
    padded = np.concatenate([layout.block(theta, level), np.zeros((theta.shape[0], 1))],
                            axis=1)
    effect: Array = padded[:, index]
    return effect


def evaluate(design: Design, layout: Layout, theta: Array) -> Terms:
    """The model's log terms for parameter vector(s) ``theta``: shape (P,) or (K, P); the
    terms are always (K, N)."""
    th = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    kind = design.kind
    ipc = layout.block(th, "intercept")[:, kind]
    for level in LEVELS:
        ipc = ipc + _effect(layout, th, level, design.level_index[level])
    nk = len(FIT_KINDS)
    fam = design.level_index["family"]
    family_kind = np.concatenate([layout.block(th, "family_kind"), np.zeros((th.shape[0], nk))],
                                 axis=1)
    ipc = ipc + family_kind[:, fam * nk + kind]
    physics = layout.block(th, "physics")
    fp = kind == FIT_KINDS.index("fp_rate")
    ipc = ipc + vector_width_log(design.fp64_flop_per_cycle, np.where(fp, physics[:, 1:2], 0.0))
    clock = layout.block(th, "clock")
    log_c, uncore, log_h = clock[:, :1], UNCORE_POWER_MAX_W * sigmoid(clock[:, 1:2]), clock[:, 2:3]
    tdp_known = ~np.isnan(design.tdp_W)
    log_tdp = tdp_clock_log(np.where(tdp_known, design.tdp_W, 1e3), design.cores, log_c, uncore)
    log_sus = sustained_clock_log(design.log_base, design.log_cap, log_tdp, tdp_known, log_h)
    speed = kind == FIT_KINDS.index("int_speed")
    jbb = kind == FIT_KINDS.index("jbb_max")
    beta = layout.block(th, "socket_exponent")
    socket_term = np.where(jbb, np.where(design.composite, beta[:, 1:2], beta[:, 0:1]), 0.0) \
        * np.log(design.sockets)
    log_clock = np.where(speed, design.log_max_boost, log_sus)
    log_compute = np.where(speed, design.log_max_boost + ipc,
                           np.log(design.sockets * design.cores) + log_sus + ipc
                           + design.log_smt + socket_term)
    memory_of_kind = np.array([MEMORY_KINDS.index(k) if k in MEMORY_KINDS else 0
                               for k in FIT_KINDS])[kind]
    log_mu = layout.block(th, "log_memory")[:, memory_of_kind]
    share = sigmoid(layout.block(th, "memory_share"))[:, memory_of_kind]
    log_memory = np.where(speed, np.nan, design.log_bandwidth + log_mu
                          + design.log_memory_efficiency
                          + cache_traffic_log(design.cache_per_core_bytes, physics[:, 0:1]))
    log_value = np.where(speed, log_compute, memory_limited_log(log_compute, log_memory, share))
    return Terms(log_clock=np.broadcast_to(log_clock, log_value.shape), log_compute=log_compute,
                 log_memory=log_memory, log_value=log_value)
