"""Build the CPU energy hold-out set: every published SPECrate2017 energy result.

Usage::

    .venv/bin/python scripts/build_cpu_energy_holdout.py cpu2017-results.csv.gz

Reads the spec.org SPEC CPU2017 results dump that the development rows cite
(github.com/fjacquet/spec-search @9810b16,
``mcp_server/src/spec_search_mcp/data/cpu2017-results.csv.gz``) and writes
``validation/holdout/cpu_energy_holdout.csv`` in the layout of ``cpu_dev.csv``: one row per
published CINT2017rate / CFP2017rate result whose "Energy Base Result" is set (the dump's
placeholder row of the reference machine, value 1, is left out). The system's memory
(DIMMs, capacity, type, speed, "running at" when derated), sockets, cores and threads per
core come from the result; the CPU's vendor specs from :data:`CPUS` (each with its
source). The results the development set also holds are kept and say so in
``measured_from`` (the report scores the set with and without them).

Report only, never fit: ``scripts/cpu_energy_holdout.py`` scores it.
"""

from __future__ import annotations

import csv
import gzip
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from _cli import ScriptParser, bad_input, parse_argv, script_parser, unreadable  # scripts/ sibling

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "validation" / "holdout" / "cpu_energy_holdout.csv"
DEV = ROOT.parent / "shared" / "validation" / "cpu_dev.csv"
DUMP_CITE = ("spec.org results dump, github.com/fjacquet/spec-search@9810b16 "
             "mcp_server/src/spec_search_mcp/data/cpu2017-results.csv.gz")

AMD23 = ("AMD product page as scraped 2023-07-09 in github.com/felixsteinke/cpu-spec-dataset "
         "@4c08d88 dataset/amd-cpus.csv")
ARK = "Intel ARK {} as scraped 2025-02-18 in github.com/JosuaCarl/cpu-spec-dataset @edf12ad " \
      "dataset/intel-cpus.csv"
DEV_TABLE = "CPU table of shared/validation/cpu_README.md"
NOT_SCRAPED = " (figures as the vendor publishes them; not in a scraped dataset, not " \
              "cross-checked here)"
AMD9005 = ("AMD EPYC 9005 product page amd.com/en/products/processors/server/epyc/9005-series/"
           "amd-epyc-{}.html (TDP, channels)" + NOT_SCRAPED + "; base = the SPEC disclosure's "
           "nominal MHz; max boost as the submitters state it in the SPECjbb2015 disclosures "
           "of the same dump repository (datas/jbb2015-results.csv)")
AMD4004 = ("AMD EPYC 4004 product page amd.com/en/products/processors/server/epyc/4004-series/"
           "amd-epyc-{}.html (base, max boost, TDP, channels)" + NOT_SCRAPED)
ARK_6788P = ("Intel ark page of the Xeon 6788P (TDP, channels; the 6787P's figures)"
             + NOT_SCRAPED + "; base = the SPEC disclosure's nominal MHz, max turbo as the "
             "SPECjbb2015 disclosures state it")


@dataclass(frozen=True)
class CpuSpec:
    """Vendor figures of one processor (GHz, W, channels per socket) and their source."""

    cpu: str
    family: str
    vendor: str
    base_ghz: float
    boost_ghz: float
    boost_kind: str
    max_boost_ghz: float
    tdp_w: float
    channels: int
    source: str


#: Every processor with a published SPECrate2017 energy result, by the dump's name.
CPUS: dict[str, CpuSpec] = {
    "AMD EPYC 7702": CpuSpec("epyc-7702", "zen2", "AMD", 2.0, 3.35, "max_turbo", 3.35, 200, 8,
                             AMD23),
    "AMD EPYC 7702P": CpuSpec("epyc-7702p", "zen2", "AMD", 2.0, 3.35, "max_turbo", 3.35, 200,
                              8, AMD23),
    "AMD EPYC 7713": CpuSpec("epyc-7713", "zen3", "AMD", 2.0, 3.675, "max_turbo", 3.675, 225,
                             8, AMD23),
    "AMD EPYC 7713P": CpuSpec("epyc-7713p", "zen3", "AMD", 2.0, 3.675, "max_turbo", 3.675,
                              225, 8, AMD23),
    "AMD EPYC 7773X": CpuSpec("epyc-7773x", "zen3", "AMD", 2.2, 3.5, "max_turbo", 3.5, 280, 8,
                              AMD23),
    "AMD EPYC 9654": CpuSpec("epyc-9654", "zen4", "AMD", 2.4, 3.55, "all_core", 3.7, 360, 12,
                             DEV_TABLE),
    "AMD EPYC 9754": CpuSpec("epyc-9754", "zen4c", "AMD", 2.25, 3.1, "all_core", 3.1, 360, 12,
                             DEV_TABLE),
    "AMD EPYC 9965": CpuSpec("epyc-9965", "zen5c", "AMD", 2.25, 3.7, "max_turbo", 3.7, 500,
                             12, DEV_TABLE),
    "AMD EPYC 9655": CpuSpec("epyc-9655", "zen5", "AMD", 2.6, 4.5, "max_turbo", 4.5, 400, 12,
                             AMD9005.format("9655")),
    "AMD EPYC 9845": CpuSpec("epyc-9845", "zen5c", "AMD", 2.1, 3.7, "max_turbo", 3.7, 390, 12,
                             AMD9005.format("9845")),
    "AMD EPYC 4344P": CpuSpec("epyc-4344p", "zen4", "AMD", 3.8, 5.3, "max_turbo", 5.3, 65, 2,
                              AMD4004.format("4344p")),
    "AMD EPYC 4464P": CpuSpec("epyc-4464p", "zen4", "AMD", 3.7, 5.4, "max_turbo", 5.4, 65, 2,
                              AMD4004.format("4464p")),
    "Intel Xeon 6780E": CpuSpec("xeon-6780e", "sierra-forest", "Intel", 2.2, 3.0, "max_turbo",
                                3.0, 330, 8, ARK.format(240362)),
    "Intel Xeon 6787P": CpuSpec("xeon-6787p", "granite-rapids", "Intel", 2.0, 3.8, "max_turbo",
                                3.8, 350, 8, DEV_TABLE),
    "Intel Xeon 6788P": CpuSpec("xeon-6788p", "granite-rapids", "Intel", 2.0, 3.8, "max_turbo",
                                3.8, 350, 8, ARK_6788P),
    "Intel Xeon E-2288G": CpuSpec("xeon-e-2288g", "coffee-lake", "Intel", 3.7, 5.0,
                                  "max_turbo", 5.0, 95, 2, ARK.format(193743)),
    "Intel Xeon E-2388G": CpuSpec("xeon-e-2388g", "rocket-lake", "Intel", 3.2, 5.1,
                                  "max_turbo", 5.1, 95, 2, ARK.format(214805)),
    "Intel Xeon Platinum 8376HL": CpuSpec("xeon-platinum-8376hl", "cooper-lake", "Intel", 2.6,
                                          4.3, "max_turbo", 4.3, 205, 6, ARK.format(205683)),
    "Intel Xeon Platinum 8380": CpuSpec("xeon-platinum-8380", "ice-lake-sp", "Intel", 2.3, 3.4,
                                        "max_turbo", 3.4, 270, 8, DEV_TABLE),
    "Intel Xeon Platinum 8480+": CpuSpec("xeon-platinum-8480p", "sapphire-rapids", "Intel",
                                         2.0, 3.8, "max_turbo", 3.8, 350, 8, DEV_TABLE),
    "Intel Xeon Platinum 8490H": CpuSpec("xeon-platinum-8490h", "sapphire-rapids", "Intel",
                                         1.9, 3.5, "max_turbo", 3.5, 350, 8,
                                         ARK.format(231747)),
}
SUITES = {"CINT2017rate": "int", "CFP2017rate": "fp"}
COLUMNS = ("case_id", "source", "benchmark", "metric", "value", "unit", "value_min",
           "value_max", "n_results_aggregated", "cpu", "vendor", "family", "isa", "sockets",
           "cores_per_socket", "threads_per_core", "base_ghz", "boost_ghz", "boost_kind",
           "max_boost_ghz", "tdp_w", "memory_channels_per_socket", "memory_type",
           "memory_mts", "memory_gb", "dimms_total", "system", "toolchain", "measured_from",
           "confidence")


def memory(text: str) -> tuple[int, int, str, int]:
    """(GB, DIMMs, type, MT/s) of a result's memory field, e.g. ``768 GB (24 x 32 GB 2Rx8
    PC5-6400B-R, running at 6000)``: the speed it ran at when the field says so."""
    total = re.match(r"([\d.]+)\s*(TB|GB)", text)
    dimms = re.search(r"\((\d+)\s*x", text)
    speed = re.search(r"PC([45])-(\d+)", text)
    assert total, text
    assert dimms, text
    assert speed, text
    gb = float(total.group(1)) * (1024 if total.group(2) == "TB" else 1)
    running = re.search(r"running at (\d+)", text)
    mts = int(running.group(1)) if running else int(speed.group(2))
    return int(gb), int(dimms.group(1)), f"DDR{speed.group(1)}", mts


def dev_urls() -> dict[str, str]:
    """Result URL -> case id of the development rows (empty without ../shared)."""
    if not DEV.exists():
        return {}
    with DEV.open(encoding="utf-8") as f:
        return {r["source"].split(" | ")[0]: r["case_id"] for r in csv.DictReader(f)}


def rows(dump: Path) -> list[dict[str, str]]:
    with gzip.open(dump, "rt", encoding="utf-8", errors="replace") as f:
        table = list(csv.reader(f))
    head = [h.strip() for h in table[0]]
    results = [{k: v.strip() for k, v in zip(head, r, strict=False)} for r in table[1:]]
    in_dev = dev_urls()
    out = []
    for r in results:
        suite = SUITES.get(r["Benchmark"])
        if suite is None or float(r["Energy Base Result"] or 0) <= 1:
            continue
        spec = CPUS[r["Processor"]]
        chips = int(r["# Chips"])
        gb, dimms, kind, mts = memory(r["Memory"])
        link = re.search(r'HREF="([^"]+\.html)"', r["Disclosure"])
        assert link, r["Disclosure"]
        url = "https://www.spec.org" + link.group(1)
        also = f"; also development row {in_dev[url]}" if url in in_dev else ""
        out.append({
            "source": f"{url} | {DUMP_CITE}: {r['Benchmark']}, Processor='{r['Processor']}', "
                      f"#Chips={chips}, column 'Energy Base Result'; CPU specs: {spec.source}",
            "benchmark": f"specrate2017_{suite}_energy_base",
            "metric": f"SPECrate2017_{suite}_energy_base", "value": r["Energy Base Result"],
            "unit": "energy_ratio", "value_min": "", "value_max": "",
            "n_results_aggregated": "1", "cpu": spec.cpu, "vendor": spec.vendor,
            "family": spec.family, "isa": "x86-64", "sockets": str(chips),
            "cores_per_socket": str(int(r["# Cores"]) // chips),
            "threads_per_core": r["# Enabled Threads Per Core"], "base_ghz": f"{spec.base_ghz:g}",
            "boost_ghz": f"{spec.boost_ghz:g}", "boost_kind": spec.boost_kind,
            "max_boost_ghz": f"{spec.max_boost_ghz:g}", "tdp_w": f"{spec.tdp_w:g}",
            "memory_channels_per_socket": str(spec.channels), "memory_type": kind,
            "memory_mts": str(mts), "memory_gb": str(gb), "dimms_total": str(dimms),
            "system": f"{r['Hardware Vendor']} / {r['System']}", "toolchain": r["Compiler"],
            "measured_from": f"single_published: 'Energy Base Result' of this result; the run "
                             f"scored {r['Base Result']} on the performance metric; tested by "
                             f"{r['Tested By']}{also}",
            "confidence": "medium"})
    out.sort(key=lambda x: (x["benchmark"], x["cpu"], int(x["sockets"]), x["source"]))
    for n, row in enumerate(out, start=1):
        row["case_id"] = f"E{n:03d}"
    return out


def parser() -> ScriptParser:
    """The command line: the results dump."""
    p = script_parser(__file__, __doc__, f"Writes {OUT.relative_to(ROOT)}.")
    p.add_argument("dump", type=Path, metavar="DUMP",
                   help="the spec.org SPEC CPU2017 results dump, cpu2017-results.csv.gz "
                        "(required)")
    return p


def main(argv: list[str]) -> int:
    args = parse_argv(parser(), argv)
    if isinstance(args, int):  # --help (0), or a bad argument's one line printed (2)
        return args
    try:
        built = rows(args.dump)
    except (OSError, EOFError) as exc:  # one line, as the ocplan CLI prints it
        return bad_input(__file__, unreadable(args.dump, exc))
    with OUT.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(built)
    print(f"wrote {len(built)} rows to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
