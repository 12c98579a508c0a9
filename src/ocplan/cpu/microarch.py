"""Published micro-architecture specs of each CPU family the performance model reads:
on-chip cache per core and peak FP64 vector throughput per core and cycle.

These are facts of the core design, the same for every SKU of a family, so a validation
row (which names its family) gets them without any per-CPU data. Where a SKU deviates
from its family's figure (a part with fewer cores per L3 complex, a smaller system-level
cache), the family figure is used and the difference is left to the error.

- ``l2_per_core``: private L2 per core.
- ``l3_reference`` over ``reference_cores``: the shared last-level cache (L3, or the Arm
  system-level cache) per core of the family's full-core-count part ``reference_cpu``,
  as the vendor writes it ("504 MB": ocplan reads MB as 10^6 B, as the catalog does).
- ``fp64_flop_per_cycle``: peak FP64 FLOP per core per cycle of the vector FMA pipes
  (pipes x 64-bit lanes x 2 for the fused multiply-add); None where not published.

Every figure carries its source (title, url, locator) as the catalog entries do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from ocplan.catalog.fields import Bytes, Id, Spec
from ocplan.catalog.schema import Source

__all__ = ["FAMILY_SPECS", "FamilySpec", "family_spec"]


class FamilySpec(Spec):
    """Cache and vector specs of one micro-architecture family (see the module doc)."""

    family: Id
    l2_per_core: Bytes
    l3_reference: Bytes
    reference_cores: Annotated[int, Field(ge=1, le=1024, strict=True)]
    reference_cpu: Id
    """Catalog id of the part whose L3 and cores give the L3 share per core."""
    fp64_flop_per_cycle: Annotated[int, Field(ge=2, le=256, strict=True)] | None = None
    note: Annotated[str, Field(max_length=200)] | None = None
    sources: Annotated[tuple[Source, ...], Field(min_length=1)]

    @property
    def l3_per_core(self) -> float:
        """Shared last-level cache per core of the reference part, bytes."""
        return self.l3_reference / self.reference_cores

    @property
    def cache_per_core_bytes(self) -> float:
        """L2 + L3 share per core, bytes: the capacity one core's working set can use
        before it reaches DRAM (L3 non-inclusive or a victim cache on every family here,
        so the two add)."""
        return self.l2_per_core + self.l3_per_core


def _src(title: str, url: str, locator: str, covers: tuple[str, ...] = ("*",)) -> dict[str, Any]:
    return {"title": title, "url": url, "locator": locator, "covers": covers}


_INTEL_OPT = _src(
    "Intel 64 and IA-32 Architectures Optimization Reference Manual, Vol. 1",
    "https://www.intel.com/content/www/us/en/content-details/671488/"
    "intel-64-and-ia-32-architectures-optimization-reference-manual-volume-1.html",
    "Ice Lake / Sapphire Rapids / Granite Rapids server cores: two 512-bit FMA units "
    "(ports 0+1 fused and port 5) on Xeon Platinum and Xeon 6 P-core parts",
    ("fp64_flop_per_cycle",))
_AMD_ZEN4 = _src(
    "AMD, Software Optimization Guide for the AMD Zen 4 Microarchitecture (pub. 57647)",
    "https://www.amd.com/content/dam/amd/en/documents/processor-tech-docs/"
    "software-optimization-guides/57647.zip",
    "floating-point unit: two 256-bit FMA pipes, 512-bit AVX-512 "
    "operations issued as two 256-bit halves; 1 MB L2 per core, 32 MB L3 per CCX of 8",
    ("fp64_flop_per_cycle", "l2_per_core"))
_AMD_ZEN5 = _src(
    "AMD, Software Optimization Guide for the AMD Zen 5 Microarchitecture (pub. 58455)",
    "https://www.amd.com/content/dam/amd/en/documents/processor-tech-docs/"
    "software-optimization-guides/58455.zip",
    "floating-point unit: native 512-bit data path with two FMA pipes on EPYC 9005 "
    "(Zen 5 and Zen 5c); 1 MB L2 per core",
    ("fp64_flop_per_cycle", "l2_per_core"))


def _ark(sku: str, url: str) -> dict[str, Any]:
    return _src(f"Intel ARK, {sku}", url, "Cache (L3) and Total Cores",
                ("l3_reference", "reference_cores"))


def _amd(sku: str) -> dict[str, Any]:
    return _src(f"AMD product page, {sku}",
                "https://www.amd.com/en/products/processors/server/epyc.html",
                "L3 cache and # of CPU cores (as in the ocplan catalog entry)",
                ("l3_reference", "reference_cores"))


_RAW: tuple[dict[str, Any], ...] = (
    {"family": "granite-rapids", "l2_per_core": "2 MB", "l3_reference": "504 MB",
     "reference_cores": 128, "reference_cpu": "xeon-6980p",
     "fp64_flop_per_cycle": 32,
     "sources": (_INTEL_OPT, _ark("Xeon 6980P", "https://www.intel.com/content/www/us/en/"
                                 "products/sku/240777/specifications.html"),
                 _src("Intel Xeon 6 processors with P-cores product brief",
                      "https://www.intel.com/content/www/us/en/products/docs/processors/"
                      "xeon/xeon-6-p-cores-product-brief.html", "2 MB L2 per core",
                      ("l2_per_core",)))},
    {"family": "emerald-rapids", "l2_per_core": "2 MB", "l3_reference": "320 MB",
     "reference_cores": 64, "reference_cpu": "xeon-platinum-8592p",
     "fp64_flop_per_cycle": 32,
     "sources": (_INTEL_OPT, _ark("Xeon Platinum 8592+", "https://www.intel.com/content/www/"
                                 "us/en/products/sku/237261/specifications.html"),
                 _src("ComputerBase, Intel Emerald Rapids: Analyse weist auf viel größeren "
                      "L3-Cache hin", "https://www.computerbase.de/news/prozessoren/"
                      "intel-emerald-rapids-l3-cache.84236/", "2 MB L2 per Raptor Cove core",
                      ("l2_per_core",)))},
    {"family": "sapphire-rapids", "l2_per_core": "2 MB", "l3_reference": "105 MB",
     "reference_cores": 56, "reference_cpu": "xeon-platinum-8480p",
     "fp64_flop_per_cycle": 32,
     "sources": (_INTEL_OPT, _ark("Xeon Platinum 8480+", "https://www.intel.com/content/www/"
                                 "us/en/products/sku/231746/specifications.html"),
                 _src("WikiChip, Sapphire Rapids - Microarchitectures - Intel",
                      "https://en.wikichip.org/wiki/intel/microarchitectures/sapphire_rapids",
                      "memory hierarchy: 2 MiB L2 per core, 1.875 MiB L3 per core",
                      ("l2_per_core",)))},
    {"family": "ice-lake-sp", "l2_per_core": "1.25 MB", "l3_reference": "60 MB",
     "reference_cores": 40, "reference_cpu": "xeon-platinum-8380",
     "fp64_flop_per_cycle": 32,
     "sources": (_INTEL_OPT, _ark("Xeon Platinum 8380", "https://www.intel.com/content/www/"
                                 "us/en/products/sku/212287/specifications.html"),
                 _src("WikiChip, Ice Lake (server) - Microarchitectures - Intel",
                      "https://en.wikichip.org/wiki/intel/microarchitectures/ice_lake_(server)",
                      "memory hierarchy: 1.25 MiB L2 per core, 1.5 MiB L3 per core",
                      ("l2_per_core",)))},
    {"family": "zen5", "l2_per_core": "1 MB", "l3_reference": "512 MB",
     "reference_cores": 128, "reference_cpu": "epyc-9755",
     "fp64_flop_per_cycle": 32, "note": "32 MB L3 per 8-core CCD",
     "sources": (_AMD_ZEN5, _amd("EPYC 9755"))},
    {"family": "zen5c", "l2_per_core": "1 MB", "l3_reference": "384 MB",
     "reference_cores": 192, "reference_cpu": "epyc-9965",
     "fp64_flop_per_cycle": 32, "note": "32 MB L3 per 16-core CCD",
     "sources": (_AMD_ZEN5, _amd("EPYC 9965"))},
    {"family": "zen4", "l2_per_core": "1 MB", "l3_reference": "384 MB",
     "reference_cores": 96, "reference_cpu": "epyc-9654",
     "fp64_flop_per_cycle": 16, "note": "32 MB L3 per 8-core CCD",
     "sources": (_AMD_ZEN4, _amd("EPYC 9654"))},
    {"family": "zen4c", "l2_per_core": "1 MB", "l3_reference": "256 MB",
     "reference_cores": 128, "reference_cpu": "epyc-9754",
     "fp64_flop_per_cycle": 16, "note": "16 MB L3 per 8-core CCX",
     "sources": (_AMD_ZEN4, _amd("EPYC 9754"))},
    {"family": "zen2", "l2_per_core": "512 KB", "l3_reference": "256 MB",
     "reference_cores": 64, "reference_cpu": "epyc-7742",
     "fp64_flop_per_cycle": 16,
     "sources": (_src("AMD, Software Optimization Guide for AMD Family 17h Models 30h and "
                      "Greater Processors (pub. 56305)",
                      "https://www.amd.com/content/dam/amd/en/documents/archived-tech-docs/"
                      "software-optimization-guides/56305.zip",
                      "floating-point unit: two 256-bit FMA pipes; 512 KB L2 per core",
                      ("fp64_flop_per_cycle", "l2_per_core")), _amd("EPYC 7742"))},
    {"family": "neoverse-n1", "l2_per_core": "1 MB", "l3_reference": "32 MB",
     "reference_cores": 80, "reference_cpu": "ampere-altra-q80-33",
     "fp64_flop_per_cycle": 8, "note": "system-level cache; Altra Max: 16 MB for 128 cores",
     "sources": (_src("Arm Neoverse N1 Software Optimization Guide",
                      "https://developer.arm.com/documentation/pjdoc466751330-9707/latest/",
                      "section 3: two 128-bit ASIMD/FP pipes (V0, V1), each with FMA",
                      ("fp64_flop_per_cycle",)),
                 _src("Ampere Altra family product brief",
                      "https://amperecomputing.com/briefs/ampere-altra-family-product-brief",
                      "1 MB L2 per core, 32 MB system-level cache (Altra)",
                      ("l2_per_core", "l3_reference", "reference_cores")))},
    {"family": "ampereone", "l2_per_core": "2 MB", "l3_reference": "64 MB",
     "reference_cores": 192, "reference_cpu": "ampereone-a192-32x",
     "fp64_flop_per_cycle": 8, "note": "system-level cache",
     "sources": (_src("AmpereOne family product brief",
                      "https://amperecomputing.com/briefs/ampereone-family-product-brief",
                      "2 MB L2 per core, 64 MB system-level cache, two 128-bit vector units "
                      "per core", ("*",)),)},
    {"family": "taishan-v110", "l2_per_core": "512 KB", "l3_reference": "64 MB",
     "reference_cores": 64, "reference_cpu": "kunpeng-920-7260",
     "fp64_flop_per_cycle": 8,
     "sources": (_src("WikiChip, TaiShan v110 - Microarchitectures - HiSilicon",
                      "https://en.wikichip.org/wiki/hisilicon/microarchitectures/taishan_v110",
                      "memory hierarchy: 512 KiB L2 per core, 1 MiB L3 per core; ASIMD: "
                      "two 128-bit vector instructions per cycle", ("*",)),)},
    {"family": "zhufengxin", "l2_per_core": "1 MB", "l3_reference": "128 MB",
     "reference_cores": 128, "reference_cpu": "zxic-zhufengxin-8167",

     "sources": (_src("SPEC CPU2017 result disclosures of the ZXIC ZhuFengXin 8167 (spec.org "
                      "results dump, github.com/fjacquet/spec-search @9810b16)",
                      "https://github.com/fjacquet/spec-search",
                      "Cache L2 / L3 lines: 1 MB I+D on chip per core, 128 MB I+D on chip "
                      "per chip; vector units not disclosed", ("*",)),)},
    {"family": "neoverse-v2", "l2_per_core": "1 MB", "l3_reference": "117 MB",
     "reference_cores": 72, "reference_cpu": "nvidia-grace",
     "fp64_flop_per_cycle": 16,
     "sources": (_src("Arm Neoverse V2 Software Optimization Guide",
                      "https://developer.arm.com/documentation/109898/latest/",
                      "four 128-bit SVE2/ASIMD pipes (V0-V3), each with FMA",
                      ("fp64_flop_per_cycle",)),
                 _src("NVIDIA Grace CPU Superchip Architecture In-Depth",
                      "https://developer.nvidia.com/blog/"
                      "nvidia-grace-cpu-superchip-architecture-in-depth/",
                      "1 MB L2 per core, 117 MB L3 per Grace CPU of 72 cores",
                      ("l2_per_core", "l3_reference", "reference_cores")))},
)

#: The families' specs by family id.
FAMILY_SPECS: Mapping[str, FamilySpec] = {
    spec.family: spec for spec in (FamilySpec.model_validate(raw) for raw in _RAW)}


def family_spec(family: str) -> FamilySpec | None:
    """The published specs of a family, or None for a family not in the table."""
    return FAMILY_SPECS.get(family)
