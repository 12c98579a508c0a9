"""The measured effect of simultaneous multithreading (SMT) on SPECrate2017 scores.

SPEC CPU2017 disclosures state the enabled threads per core of each run, so published
results of the same processor at the same chip and enabled-core count, one run with one
thread per core and one with two, measure the SMT uplift of a suite directly: the ratio
of the median score with two threads per core to the median with one (:func:`pair_results`).
The pairs are read from the spec.org results dump the validation rows cite
(github.com/fjacquet/spec-search @9810b16,
``mcp_server/src/spec_search_mcp/data/cpu2017-results.csv.gz``) by
``scripts/fit_cpu.py --smt-pairs DUMP`` and stored in ``cpu/data/smt_pairs.csv``;
:func:`median_uplift` summarises them, and :data:`ocplan.cpu.model.SMT_UPLIFT` holds the
constants the model uses (a test keeps the two in step).

A pair compares medians over different systems, compilers and BIOS settings, so one pair
can be off by the spread of the results; the median over pairs is the measurement.
"""

from __future__ import annotations

import csv
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DATA_FILE", "SUITES", "SmtPair", "SmtResult", "load_smt_pairs", "median_uplift",
           "normalise_processor", "pair_results", "processor_vendor", "write_smt_pairs"]

DATA_FILE = Path(__file__).with_name("data") / "smt_pairs.csv"
#: Model kinds the pairs are measured for (SPECrate2017 int and fp base).
SUITES = ("int_rate", "fp_rate")
COLUMNS = ("suite", "processor", "vendor", "chips", "cores", "results_smt_on",
           "results_smt_off", "median_smt_on", "median_smt_off")
HEADER = """\
# SMT pairs of SPECrate2017 base results: same processor (name compared after case,
# whitespace, (R)/(TM) and 'CPU @ x GHz' normalisation), same chip count and enabled cores,
# runs with 2 vs 1 enabled threads per core; medians of the base results of each side.
# Source: spec.org SPEC CPU2017 results, via github.com/fjacquet/spec-search @9810b16,
# mcp_server/src/spec_search_mcp/data/cpu2017-results.csv.gz (Benchmark CINT2017rate ->
# int_rate, CFP2017rate -> fp_rate; base result > 0). Written by
# scripts/fit_cpu.py --smt-pairs DUMP; read by ocplan.cpu.smt.
"""


@dataclass(frozen=True)
class SmtResult:
    """One published rate result: suite (:data:`SUITES`), processor name as disclosed,
    chips, enabled cores (all chips), enabled threads per core and base score."""

    suite: str
    processor: str
    chips: int
    cores: int
    threads_per_core: int
    score: float


@dataclass(frozen=True)
class SmtPair:
    """The results of one processor configuration with SMT on (2 threads per core) and off
    (1): how many of each and their median scores."""

    suite: str
    processor: str
    vendor: str
    chips: int
    cores: int
    results_smt_on: int
    results_smt_off: int
    median_smt_on: float
    median_smt_off: float

    @property
    def uplift(self) -> float:
        """Median score with two threads per core over the median with one."""
        return self.median_smt_on / self.median_smt_off


def normalise_processor(name: str) -> str:
    """A processor name as compared across disclosures: lower case, without (R)/(TM) marks
    and a trailing ``CPU @ x GHz``, single spaces (``Intel(R) Xeon(R) Gold 6132 CPU @
    2.60GHz`` -> ``intel xeon gold 6132``)."""
    text = name.lower().replace("(r)", "").replace("(tm)", "")
    text = re.sub(r"cpu\s*@\s*[\d.]+\s*ghz", "", text)
    return " ".join(text.split())


def processor_vendor(name: str) -> str:
    """CPU vendor of a normalised processor name: Intel (Xeon, Core), AMD (EPYC, Ryzen),
    else ``other``."""
    if "intel" in name or "xeon" in name:
        return "Intel"
    if "amd" in name or "epyc" in name or "ryzen" in name:
        return "AMD"
    return "other"


def pair_results(results: Iterable[SmtResult]) -> list[SmtPair]:
    """SMT pairs of published results: per (suite, normalised processor, chips, enabled
    cores) with at least one result at each of 1 and 2 threads per core, the count and
    median score of each side. Results with another thread count or a score <= 0 are
    ignored. Sorted by suite, processor, chips, cores."""
    groups: dict[tuple[str, str, int, int], dict[int, list[float]]] = defaultdict(
        lambda: {1: [], 2: []})
    for r in results:
        if r.threads_per_core in (1, 2) and r.score > 0:
            key = (r.suite, normalise_processor(r.processor), r.chips, r.cores)
            groups[key][r.threads_per_core].append(r.score)
    return [SmtPair(suite, proc, processor_vendor(proc), chips, cores, len(by[2]), len(by[1]),
                    statistics.median(by[2]), statistics.median(by[1]))
            for (suite, proc, chips, cores), by in sorted(groups.items())
            if by[1] and by[2]]


def median_uplift(pairs: Sequence[SmtPair], suite: str, vendor: str | None = None
                  ) -> float | None:
    """Median uplift of the pairs of one suite (and vendor, if given); None without pairs."""
    ratios = [p.uplift for p in pairs if p.suite == suite and vendor in (None, p.vendor)]
    return statistics.median(ratios) if ratios else None


def write_smt_pairs(pairs: Sequence[SmtPair], path: Path = DATA_FILE) -> None:
    """Write pairs in the layout :func:`load_smt_pairs` reads, under the provenance header."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(HEADER)
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for p in pairs:
            writer.writerow([p.suite, p.processor, p.vendor, p.chips, p.cores, p.results_smt_on,
                             p.results_smt_off, f"{p.median_smt_on:g}",
                             f"{p.median_smt_off:g}"])


def load_smt_pairs(path: Path = DATA_FILE) -> tuple[SmtPair, ...]:
    """The stored SMT pairs (``cpu/data/smt_pairs.csv``)."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        return tuple(SmtPair(r["suite"], r["processor"], r["vendor"], int(r["chips"]),
                             int(r["cores"]), int(r["results_smt_on"]),
                             int(r["results_smt_off"]), float(r["median_smt_on"]),
                             float(r["median_smt_off"])) for r in rows)
