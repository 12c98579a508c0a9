"""Workload archetypes: the kinds of CPU work a platform is matched to, each tied to the
published benchmark that stands for it (the benchmarks of ``cpu_dev.csv``).

A demand is counted in its archetype's unit: SPECrate2017_int_base units for cloud
throughput (a fleet of ``N`` servers that each score ``s`` serves ``N x s``), jOPS for JVM
services, GB/s of sustained memory bandwidth for memory-bound analytics, and accelerators
for the host side of an accelerator server (a count of slots, sized without the
utilization headroom of the throughput archetypes). The registry is data: adding an archetype is
adding an entry here, and the request, the CLI and the web form read it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ARCHETYPES", "CORES_PER_ACCELERATOR", "Archetype"]

#: Host cores per accelerator of an accelerator server: NVIDIA DGX H100, 2 x Xeon Platinum
#: 8480C (112 cores) for 8 H100 (NVIDIA DGX H100 user guide, "Hardware overview"; the
#: catalog's dgx-h100 entry), the reference host ratio for data loading and pre-processing.
CORES_PER_ACCELERATOR = 112 / 8
#: PCIe lanes a host gives each accelerator's x16 link (through switches or directly).
LANES_PER_ACCELERATOR = 16


@dataclass(frozen=True)
class Archetype:
    """A kind of CPU work and the benchmark that measures a platform's capacity for it."""

    id: str
    benchmark: str
    """Benchmark id of ``cpu_dev.csv`` whose value is a server's capacity (``""`` for the
    accelerator host, whose capacity is counted from cores and lanes)."""
    metric: str | None
    unit: str
    summary: str
    slots: bool = False
    """The demand is a count of hard slots (accelerators a host holds), not a throughput:
    every slot of a server can be filled, so the fleet is not sized with the utilization
    headroom that throughput demands get."""


ARCHETYPES: dict[str, Archetype] = {a.id: a for a in (
    Archetype("cloud-throughput", "specrate2017_int_base", "SPECrate2017_int_base",
              "SPECrate2017_int_base", "many independent integer jobs: web, microservices, "
              "build farms, virtual machines"),
    Archetype("latency-services", "specspeed2017_int_base", "SPECspeed2017_int_base",
              "SPECspeed2017_int_base x cores",
              "request-serving work bound by one thread's speed; capacity = cores x the "
              "single-copy score"),
    Archetype("jvm-services", "specjbb2015_max_jops", "SPECjbb2015-MultiJVM max-jOPS",
              "jOPS", "Java business services (SPECjbb2015 MultiJVM max-jOPS)"),
    Archetype("analytics", "specrate2017_fp_base", "SPECrate2017_fp_base",
              "SPECrate2017_fp_base", "floating-point analytics, simulation and data "
              "science throughput"),
    Archetype("big-data", "stream_triad", "Triad (best rate)", "GB/s",
              "memory-bandwidth-bound scans, joins and shuffles (STREAM triad)"),
    Archetype("accelerator-host", "", None, "accelerators",
              f"the host side of accelerator servers: {CORES_PER_ACCELERATOR:g} cores "
              f"and {LANES_PER_ACCELERATOR} PCIe lanes per accelerator (DGX H100 ratio)",
              slots=True),
)}
