"""Benchmark vocabulary of the CPU model: which published measures it predicts, and how.

The ids and units are those of ``shared/validation/cpu_README.md``. Each benchmark maps to
one *kind* of model term:

- ``int_rate``, ``fp_rate``: SPECrate2017 throughput (all cores, memory-bandwidth limit);
- ``int_speed``: SPECspeed2017_int (single-thread bound: the highest one-core clock);
- ``jbb_max``: SPECjbb2015 max-jOPS (rate-like throughput, per run category);
- derived from those: ``jbb_critical`` (max-jOPS x the category's critical/max ratio),
  the SPEC energy metrics (rate score per predicted wall power) and STREAM triad (a
  fraction of the theoretical bandwidth).

MLPerf CPU inference and TPC-E are not modelled (see :data:`NOT_MODELLED`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BENCHMARKS",
    "FIT_KINDS",
    "JBB_CATEGORIES",
    "MEMORY_KINDS",
    "NOT_MODELLED",
    "Benchmark",
    "benchmark",
    "jbb_category",
]

#: Kinds fitted jointly by the nonlinear least squares (index order is the parameter order).
FIT_KINDS = ("int_rate", "fp_rate", "int_speed", "jbb_max")
#: Kinds with a memory-bandwidth limit, in the order of their memory parameters.
MEMORY_KINDS = ("int_rate", "fp_rate", "jbb_max")
#: SPECjbb2015 run categories: several JVMs on one host vs one JVM (never compared).
JBB_CATEGORIES = ("MultiJVM", "Composite")


@dataclass(frozen=True)
class Benchmark:
    """One benchmark id: its unit, the model kind it is predicted by, and for derived
    measures the fitted kind they build on (``base``)."""

    id: str
    unit: str
    kind: str
    base: str | None = None


BENCHMARKS: dict[str, Benchmark] = {b.id: b for b in (
    Benchmark("specrate2017_int_base", "score", "int_rate"),
    Benchmark("specrate2017_fp_base", "score", "fp_rate"),
    Benchmark("specspeed2017_int_base", "score", "int_speed"),
    Benchmark("specjbb2015_max_jops", "jOPS", "jbb_max"),
    Benchmark("specjbb2015_critical_jops", "jOPS", "jbb_critical", base="jbb_max"),
    Benchmark("specrate2017_int_energy_base", "energy_ratio", "energy", base="int_rate"),
    Benchmark("specrate2017_fp_energy_base", "energy_ratio", "energy", base="fp_rate"),
    Benchmark("stream_triad", "GB/s", "stream"),
)}

#: Benchmarks of the vocabulary the model does not predict, with the reason.
NOT_MODELLED: dict[str, str] = {
    "specspeed2017_fp_base": "no published rows to calibrate SPECspeed2017_fp on",
    "mlperf_inference_cpu": (
        "not modelled: the rows are two Intel systems running different networks, so a "
        "prediction needs a per-network constant fitted on the other system's row, which is "
        "a per-case fit, not a physical model"),
    "tpc_e": ("not modelled: TPC-E is bound by storage and the database, not by the CPU "
              "specs the model reads; the rows compare only within TPC-E"),
}


def benchmark(benchmark_id: str) -> Benchmark | None:
    """The modelled benchmark of an id, or ``None`` (not modelled, or unknown)."""
    return BENCHMARKS.get(benchmark_id)


def jbb_category(metric: str | None) -> str:
    """The SPECjbb2015 run category a metric names (``SPECjbb2015-Composite max-jOPS`` ->
    ``Composite``); MultiJVM when the metric does not say."""
    return "Composite" if metric and "composite" in metric.lower() else "MultiJVM"
