"""Calibration: the handful of fitted efficiencies the engine uses, per chip family.

The values live in ``calibration.json`` beside this module, written by
``scripts/fit_calibration.py`` from ``../shared/validation/training_dev.csv`` (the fit
report is ``docs/calibration.md``). A family groups chips of one micro-architecture
(``hopper`` = H100/H200/H800/H20); which family a chip belongs to is catalog data (the
accelerator's ``family`` field). A chip without a family, or whose family no published
run has fitted, gets the ``default`` values, the run-weighted median of the fitted
families (what a typical chip reaches), and its estimates say so.

Per family:

- ``gemm``: achieved / peak dense matmul rate for large GEMMs in 16-bit;
- ``gemm_8bit``: the same for fp8/int8 GEMMs, relative to the 8-bit peak;
- ``attention``: achieved / 16-bit peak for flash-attention score and value matmuls.

Global (framework behaviour, not hardware):

- ``tp_overlap``, ``ep_overlap``, ``dp_overlap``: fraction of tensor-parallel,
  expert all-to-all and data-parallel communication hidden behind compute;
- ``dp_overlap_xla``: ``dp_overlap`` on the XLA stack (a layout that recomputes the XLA
  way, or any layout of a chip programmed only through XLA,
  :func:`~ocplan.plan.layout_arrays.layout_stacks`): there the compiler, not the framework's
  bucketing and streams, places the gradient reductions and parameter gathers, so how much
  of them hides is that scheduler's behaviour and is fitted apart;
- ``dcn_step_s``: host-side cost of one ring step of a data-parallel collective over a
  host-staged network (TPU slices over the data-center network), per layer
  (:func:`~ocplan.plan.comm_terms.dcn_steps_s`);
- ``kernel_overhead_s``: fixed cost per kernel of the operator list (the gap between
  kernels and each kernel's own fixed time; host launch cost where it is not hidden).
- ``step_overhead_s``: fixed cost per optimizer step of an eagerly run (PyTorch) step:
  the host work and launches paid once per step however long it is (loss and
  gradient-norm reductions with their host synchronisations, the optimizer's
  multi-tensor launches, the next batch's fetch and broadcast, the first launches of
  the next forward). Not on the XLA stack, where the whole step is one compiled
  program (:func:`~ocplan.plan.layout_arrays.layout_stacks`);

- ``grouped_gemm_efficiency``: a grouped (expert) GEMM's efficiency relative to a dense
  GEMM of the same tiles: grouped kernels (Transformer Engine's per-expert GEMMs on
  streams, CUTLASS/hipBLASLt grouped GEMM) schedule ragged groups and run their
  per-group prologues, which tiles and waves alone do not capture;
- ``memory_efficiency``: achieved bandwidth of the memory-bound kernels (norms,
  activations, residuals, permutations) relative to streaming copies; their bytes come
  from the operator list (:mod:`ocplan.workloads.operators`);
- ``softmax_overlap``: share of the shorter of an attention kernel's two pipes (its
  matmuls, its softmax exponentials on the special-function units) hidden behind the
  longer: 0 for FlashAttention-2's loop, which runs them one after the other; near 1 for
  FlashAttention-3/4's ping-pong and warp-specialized schedules
  (:func:`~ocplan.costmodel.op_time.softmax_floor_s`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from ocplan.catalog.schema import Accelerator
from ocplan.costmodel.chip import measured_gemm_ceiling
from ocplan.units import format_number

__all__ = [
    "CALIBRATION_FILE",
    "GEMM_FIELD_PRECISIONS",
    "MIN_RANGE_RUNS",
    "RANGE_PERCENTILES",
    "RANGE_SHARE_PCT",
    "Calibration",
    "CeilingShare",
    "FamilyCalibration",
    "VariantCalibration",
    "calibration_note",
    "ceiling_shares",
    "ceiling_violations",
    "coverage_note",
    "format_likely",
    "held_out_ranges",
    "in_likely_range",
    "likely_range_note",
    "likely_rate",
    "load_calibration",
    "range_from_own_runs",
]

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
#: Percentiles of the held-out signed errors an estimate's likely range spans: the middle
#: 80 % of the published runs predicted by fits that never saw them.
RANGE_PERCENTILES = (10.0, 90.0)
#: Share of those runs the range holds, %.
RANGE_SHARE_PCT = RANGE_PERCENTILES[1] - RANGE_PERCENTILES[0]
#: Fewest runs of a family whose own held-out errors give its range; a family with fewer
#: takes the range of every run predicted with its chip left out (a chip the fit barely
#: knows is closer to one it has not seen than its handful of runs can show), widened to
#: its own runs' where they reach further.
MIN_RANGE_RUNS = 10


@dataclass(frozen=True)
class FamilyCalibration:
    gemm: float = 0.75
    gemm_8bit: float = 0.60
    attention: float = 0.55
    runs: int = 0
    """Published runs of the family's chips the values were fitted on (0: priors)."""
    cv_error_pct: float | None = None
    """Median |error| of those runs predicted by fits that left their publication out
    (leave-one-source-out cross-validation), %; None where not computed."""
    held_out_range_pct: tuple[float, float] | None = None
    """(low, high): :data:`RANGE_PERCENTILES` of the signed errors, ``100 (predicted -
    measured) / measured``, of the published runs an estimate of this family is judged
    by, each predicted by a fit without it: the family's runs left out with their
    publication when it has :data:`MIN_RANGE_RUNS` or more; else every run left out with
    its chip, widened to the family's own runs where they reach further (``default``:
    every run left out with its chip). None where not computed."""

    def __post_init__(self) -> None:
        for name in ("gemm", "gemm_8bit", "attention"):
            value = getattr(self, name)
            assert 0.05 <= value <= 1.0, f"calibration {name} = {value} out of (0.05, 1]"
        assert self.runs >= 0
        if self.held_out_range_pct is not None:
            low, high = self.held_out_range_pct
            assert -100.0 < low <= high, f"held-out range {self.held_out_range_pct}"


#: Bounds of a variant's factor on its family's grouped 8-bit GEMM efficiency: a fifth to
#: five times the family's (the fit's own bounds are narrower).
VARIANT_FACTOR_BOUNDS = (0.2, 5.0)


@dataclass(frozen=True)
class VariantCalibration:
    """The value a family variant (catalog ``family_variant``) is fitted apart from its
    family: ``grouped_gemm_8bit``, the factor on the family's grouped (expert) GEMM
    efficiency with 8-bit inputs (1: the family's)."""

    grouped_gemm_8bit: float = 1.0
    runs: int = 0
    """Published runs of the variant's chips the value was fitted on (0: the prior, 1)."""

    def __post_init__(self) -> None:
        low, high = VARIANT_FACTOR_BOUNDS
        assert low <= self.grouped_gemm_8bit <= high, \
            f"variant grouped_gemm_8bit = {self.grouped_gemm_8bit} out of [{low}, {high}]"
        assert self.runs >= 0


@dataclass(frozen=True)
class Calibration:
    families: dict[str, FamilyCalibration] = field(
        default_factory=lambda: {"default": FamilyCalibration()})
    """Fitted families by name, and ``default`` (the priors)."""
    variants: dict[str, VariantCalibration] = field(default_factory=dict)
    """Fitted family variants by name (a variant not here uses its family's values)."""
    tp_overlap: float = 0.3
    ep_overlap: float = 0.3
    dp_overlap: float = 0.8
    dp_overlap_xla: float = 0.8
    dcn_step_s: float = 0.0
    kernel_overhead_s: float = 4e-6
    step_overhead_s: float = 0.0
    memory_efficiency: float = 1.0
    grouped_gemm_efficiency: float = 1.0
    softmax_overlap: float = 1.0

    def used_family(self, family: str | None) -> str:
        """The family whose values a chip of ``family`` uses: itself when fitted, else
        ``default``."""
        return family if family is not None and family in self.families else "default"

    def for_family(self, family: str | None) -> FamilyCalibration:
        return self.families[self.used_family(family)]

    def grouped_8bit_factor(self, variant: str | None) -> float:
        """The factor a chip of family variant ``variant`` puts on its family's grouped
        8-bit GEMM efficiency: the variant's fitted value, else 1."""
        found = self.variants.get(variant) if variant is not None else None
        return found.grouped_gemm_8bit if found is not None else 1.0

    def with_values(self, **changes: float) -> Calibration:
        return replace(self, **changes)  # type: ignore[arg-type]

    def to_json(self) -> dict[str, object]:
        return {
            "families": {k: asdict(v) for k, v in sorted(self.families.items())},
            "variants": {k: asdict(v) for k, v in sorted(self.variants.items())},
            "tp_overlap": self.tp_overlap,
            "ep_overlap": self.ep_overlap,
            "dp_overlap": self.dp_overlap,
            "dp_overlap_xla": self.dp_overlap_xla,
            "dcn_step_s": self.dcn_step_s,
            "kernel_overhead_s": self.kernel_overhead_s,
            "step_overhead_s": self.step_overhead_s,
            "memory_efficiency": self.memory_efficiency,
            "grouped_gemm_efficiency": self.grouped_gemm_efficiency,
            "softmax_overlap": self.softmax_overlap,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Calibration:
        families_raw = data["families"]
        assert isinstance(families_raw, dict)
        families = {k: _family_from_json(v) for k, v in families_raw.items()}
        # (older files have no cv_error_pct or held-out range: the defaults apply)
        assert "default" in families
        variants_raw = data.get("variants", {})  # (older files have none)
        assert isinstance(variants_raw, dict)
        return cls(
            families=families,
            variants={k: VariantCalibration(**v) for k, v in variants_raw.items()},
            tp_overlap=float(data["tp_overlap"]),  # type: ignore[arg-type]
            ep_overlap=float(data["ep_overlap"]),  # type: ignore[arg-type]
            dp_overlap=float(data["dp_overlap"]),  # type: ignore[arg-type]
            # (older files have one overlap for every stack)
            dp_overlap_xla=float(data.get("dp_overlap_xla",
                                          data["dp_overlap"])),  # type: ignore[arg-type]
            dcn_step_s=float(data.get("dcn_step_s", 0.0)),  # type: ignore[arg-type]
            kernel_overhead_s=float(data["kernel_overhead_s"]),  # type: ignore[arg-type]
            # (older files have no per-step cost)
            step_overhead_s=float(data.get("step_overhead_s", 0.0)),  # type: ignore[arg-type]
            memory_efficiency=float(data.get("memory_efficiency", 1.0)),  # type: ignore[arg-type]
            grouped_gemm_efficiency=float(
                data.get("grouped_gemm_efficiency", 1.0)),  # type: ignore[arg-type]
            softmax_overlap=float(data.get("softmax_overlap", 1.0)),  # type: ignore[arg-type]
        )


def _family_from_json(data: dict[str, object]) -> FamilyCalibration:
    """A family's values as ``to_json`` gives them (the range a list once through JSON)."""
    fields = dict(data)
    span = fields.get("held_out_range_pct")
    if span is not None:
        assert isinstance(span, list | tuple), span
        assert len(span) == 2, span
        fields["held_out_range_pct"] = (float(span[0]), float(span[1]))
    return FamilyCalibration(**fields)  # type: ignore[arg-type]


#: The precisions whose measured matmul rate bounds each calibrated GEMM field, first
#: found first used: ``gemm`` is the 16-bit efficiency, ``gemm_8bit`` the 8-bit one.
GEMM_FIELD_PRECISIONS: dict[str, tuple[str, ...]] = {"gemm": ("bf16", "fp16"),
                                                     "gemm_8bit": ("fp8", "int8")}


@dataclass(frozen=True)
class CeilingShare:
    """A large-GEMM efficiency a chip gets from ``calibration`` against its measured
    ceiling (:func:`~ocplan.costmodel.chip.measured_gemm_ceiling`)."""

    chip: str
    family: str
    """The family whose values the chip uses (its own, or ``default``)."""
    field: str
    """``gemm`` (16-bit) or ``gemm_8bit``."""
    value: float
    ceiling: float

    @property
    def share(self) -> float:
        return self.value / self.ceiling


def ceiling_shares(calibration: Calibration,
                   accelerators: Sequence[Accelerator]) -> list[CeilingShare]:
    """Each large-GEMM efficiency ``calibration`` gives a chip with a measured matmul
    rate (``compute.measured_matmul``), against that chip's ceiling, in catalog order."""
    shares = []
    for chip in accelerators:
        used = calibration.used_family(chip.family)
        values = calibration.families[used]
        for name, precisions in GEMM_FIELD_PRECISIONS.items():
            ceiling = next((c for p in precisions
                            if (c := measured_gemm_ceiling(chip, p)) is not None), None)
            if ceiling is not None:
                shares.append(CeilingShare(chip.id, used, name,
                                           float(getattr(values, name)), ceiling))
    return shares


def ceiling_violations(calibration: Calibration,
                       accelerators: Sequence[Accelerator]) -> list[str]:
    """One line for each large-GEMM efficiency ``calibration`` gives a chip (its family's,
    or ``default``'s) above the chip's measured ceiling (:func:`ceiling_shares`): a value
    no run of that chip can reach, which a fit must not produce. Empty when every value
    is physical."""
    return [f"{s.family}.{s.field} = {s.value:.3f} exceeds {s.chip}'s measured matmul "
            f"ceiling {s.ceiling:.3f} (compute.measured_matmul)"
            for s in ceiling_shares(calibration, accelerators) if s.share > 1.0]


@lru_cache(maxsize=4)
def load_calibration(path: Path = CALIBRATION_FILE) -> Calibration:
    """The committed calibration (defaults when the file is absent)."""
    if not path.exists():
        return Calibration()
    return Calibration.from_json(json.loads(path.read_text(encoding="utf-8")))


def calibration_note(used: str, runs: int, cv_error_pct: float | None = None,
                     chip_family: str | None = None,
                     variant: tuple[str, float, int] | None = None) -> str:
    """What an estimate's GEMM/attention calibration rests on, in words: the family
    ``used`` with its published runs (and held-out error), or, where the chip's family has
    no fitted run (``used`` is ``"default"``), that the values are the fitted families'
    typical ones and the estimate a physically derived one; with the chip's family
    ``variant`` (name, factor, runs: :attr:`Calibration.variants`), what it changes."""
    extra = "" if variant is None else (
        f"; its {variant[0]} variant's grouped 8-bit (MoE expert) GEMMs at "
        f"{variant[1]:.2f}x the family's, fitted on {variant[2]} run(s)")
    if used != "default":
        held = f"; held-out median error {cv_error_pct:.1f} %" \
            if cv_error_pct is not None else ""
        return f"{used} (fitted on {runs} published run(s){held}{extra})"
    declared = f"family {chip_family}" if chip_family else "this chip's family"
    return (f"typical values of the fitted families ({declared}: no published run of it "
            f"was fitted; a physically derived estimate, treat with care{extra})")


def range_from_own_runs(family: str, runs: int) -> bool:
    """Whether a family's likely-error range comes from its own runs (left out with
    their publication): a fitted family with :data:`MIN_RANGE_RUNS` runs or more; else
    every run left out with its chip."""
    return family != "default" and runs >= MIN_RANGE_RUNS


def _span(errors: Sequence[float]) -> tuple[float, float]:
    """:data:`RANGE_PERCENTILES` of ``errors`` (linear interpolation between order
    statistics, as numpy's default), rounded to 0.1 %."""
    ordered = sorted(errors)
    assert ordered, "a range needs at least one error"

    def at(pct: float) -> float:
        pos = pct / 100.0 * (len(ordered) - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, len(ordered) - 1)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)

    return round(at(RANGE_PERCENTILES[0]), 1), round(at(RANGE_PERCENTILES[1]), 1)


def held_out_ranges(held: Mapping[str, Mapping[int, float]],
                    family_of: Sequence[str | None],
                    families: Sequence[str]) -> dict[str, tuple[float, float]]:
    """The likely-error range of each family and of ``default`` from the held-out signed
    errors, % (row index -> error, NaN for a row not predicted), of the ``source``
    scheme (each row left out with its publication, or its source group) and the
    ``chip`` scheme (left out with its chip): :data:`RANGE_PERCENTILES` of a family's
    own rows under ``source`` when it has :data:`MIN_RANGE_RUNS` or more; for a family
    with fewer, those of every row under ``chip``, widened to its own rows' where they
    reach further (a handful of rows cannot narrow the range, but can show it is
    wider); ``default``, every row under ``chip``. Empty unless both schemes ran. Used
    by the training and the serving fits alike."""
    if "source" not in held or "chip" not in held:
        return {}
    pooled = _span([e for e in held["chip"].values() if not math.isnan(e)])
    out = {"default": pooled}
    for fam in families:
        own = [e for i, e in held["source"].items()
               if family_of[i] == fam and not math.isnan(e)]
        if range_from_own_runs(fam, len(own)):
            out[fam] = _span(own)
        elif own:
            mine = _span(own)
            out[fam] = (min(pooled[0], mine[0]), max(pooled[1], mine[1]))
        else:
            out[fam] = pooled
    return out


def likely_rate(rate: float, range_pct: tuple[float, float]) -> tuple[float, float]:
    """(low, high) a measurement of an estimated ``rate`` would likely show: the rate
    divided by ``1 + e/100`` at each end of a held-out signed-error range ``range_pct``
    (an over-prediction of +20 % means the run measures ``1/1.2`` of the estimate)."""
    low, high = range_pct
    return rate / (1.0 + high / 100.0), rate / (1.0 + low / 100.0)


def in_likely_range(error_pct: float | None,
                    range_pct: tuple[float, float] | None) -> bool | None:
    """Whether a measurement fell in its estimate's likely range: the signed error,
    ``100 (predicted - measured) / measured``, lies between the range's ends (the measured
    rate between the estimate divided by ``1 + high`` and by ``1 + low``); None without a
    prediction or a range."""
    if error_pct is None or range_pct is None:
        return None
    low, high = range_pct
    return low <= error_pct <= high


def format_likely(likely: tuple[float, float]) -> str:
    """A likely range of rates for people: ``low to high``, each end to
    :data:`~ocplan.units.NUMBER_DIGITS` significant digits as the workbench prints it."""
    return f"{format_number(likely[0])} to {format_number(likely[1])}"


def coverage_note(within: int, judged: int, what: str = "runs") -> str:
    """How often the likely ranges held on a set of runs (or serving results: ``what``),
    in words: ``within`` of the ``judged`` ones (those with a prediction and a range)
    measured inside theirs."""
    return (f"{within} of {judged} {what} measured within their estimate's likely range "
            f"({100.0 * within / judged:.0f} %; each range is where {RANGE_SHARE_PCT:g} % "
            f"of the development {what} fell when predicted without them)")


def likely_range_note(likely: tuple[float, float], used: str, runs: int,
                      unit: str = "tokens/s per chip", what: str = "runs",
                      group: str = "publication") -> str:
    """The range a measurement of an estimate would likely fall in, in words: its ends in
    ``unit`` and which held-out ``what`` (runs, serving results) they come from
    (:func:`held_out_ranges`): the family ``used`` with its ``runs`` rows, each left out
    with its ``group``, or all rows left out with their chip."""
    share = f"{RANGE_SHARE_PCT:g} %"
    if range_from_own_runs(used, runs):
        basis = (f"where {share} of the {used} family's {runs} published {what} fell, each "
                 f"predicted by a fit without its {group}")
    else:
        basis = (f"where {share} of all published {what} fell, each predicted by a fit "
                 "without its chip" + ("" if used == "default" or not runs else
                                       f"; widened to the {used} family's {runs} {what}"))
    return f"{format_likely(likely)} {unit} ({basis})"
