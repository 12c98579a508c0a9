"""Known limits of the step model: kinds of layout on which published runs the fit did not
use show an error the model cannot yet explain, or that lie outside the runs it was
fitted on. An estimate carries the caveats that apply to it, so a user reads the doubt
beside the number rather than in a report.

Each caveat is data: the test of whether it applies (a pure function of the workload,
plan, system and the predicted step), the evidence (validation case ids, with the range
of their errors in %, predicted / measured - 1, under the committed calibration) and one
sentence. ``tests/test_caveats.py`` re-scores the evidence, so a caveat whose bias a
later change removes (or moves outside its stated range) fails the tests and has to be
rewritten or dropped; it also checks that each caveat applies to its evidence and not to
a control run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ocplan.catalog.system import System
from ocplan.collectives.fabric import placement
from ocplan.plan.plan import Plan
from ocplan.workloads.workload import Workload

__all__ = ["CAVEATS", "EP_INLINE_RELEASE_ROWS", "NVFP4_RELEASE_ROWS",
           "PORTABLE_LONG_CONTEXT_ROWS", "PORTABLE_LONG_CONTEXT_TOKENS",
           "SHORTEST_FITTED_STEP_S", "SHORT_STEP_ROWS", "ULTRA_MOE_FP8_ROWS", "Caveat",
           "caveats_for"]

#: Shortest measured step among the development runs the calibration is fitted on
#: (R019, GPT 1.7B on 48 H100: 0.45 s; shared/validation/training_dev.csv). Below it,
#: the cost paid once per step (optimizer launches, gradient-norm and loss reductions,
#: host work: the calibration's ``step_overhead_s``) weighs more than in any fitted run,
#: which is where its value came from.
SHORTEST_FITTED_STEP_S = 0.45
#: Every development and hold-out run whose predicted step is under
#: :data:`SHORTEST_FITTED_STEP_S` (``tests/test_caveats.py`` checks that no other is): the
#: evidence of the ``short-step`` caveat.
SHORT_STEP_ROWS = ("R019", "HT002", "HT005", "HT006", "HT025", "HT031", "HT055", "HT056",
                   "HT058", "HT059", "HT060", "HT061", "HT063", "HT064", "HT082", "HT083",
                   "HT085", "HT087", "HT090", "HT092", "HT093", "HT094")

#: Accelerators of NVIDIA's Blackwell Ultra generation (catalog ids).
BLACKWELL_ULTRA = frozenset({"b300", "gb300"})

Applies = Callable[[Workload, Plan, System, float], bool]


@dataclass(frozen=True)
class Caveat:
    """A kind of layout the model is known to predict less well, with its evidence."""

    name: str
    applies: Applies
    """Whether the caveat applies to ``(workload, plan, system, step_s)``."""
    evidence: tuple[str, ...]
    """Validation case ids (``R...``: shared/validation/training_dev.csv; ``HT...``:
    validation/holdout/training_holdout.csv; ``LF...``:
    validation/sweeps/llm_foundry_mpt.csv; ``<release>:<system>:<model>:<recipe>:
    <layout>``: a row of validation/releases/megatron_bridge_releases.csv, as
    ``scripts/release_spread.py`` names it) that show the limit."""
    error_range_pct: tuple[float, float]
    """Lowest and highest error of the evidence, % (predicted / measured - 1)."""
    text: str
    """The sentence shown with an estimate."""


def _tpu_multislice(workload: Workload, plan: Plan, system: System, step_s: float) -> bool:
    return system.accelerator.family == "tpu" and plan.chips > system.chips_per_server


def _short_step(workload: Workload, plan: Plan, system: System, step_s: float) -> bool:
    return 0.0 < step_s < SHORTEST_FITTED_STEP_S


#: Training precisions of the Blackwell Ultra gap: MoE runs in 8 bits (MXFP8) scored a
#: median -18 % on B300 and GB300 under the family's values, where the same recipes
#: scored about 0 % on B200 and GB200; the Ultra parts' MoE runs in BF16 (-4 to +18 %),
#: dense runs in FP8 (median -6 %) and NVFP4 (-10 to +17 %) showed no such gap (session
#: 71, docs/experiments.md). The calibration's ``blackwell-ultra`` variant now carries
#: most of it; what remains is the caveat's.
ULTRA_GAP_PRECISIONS = frozenset({"fp8"})
#: Every development and hold-out run the ``blackwell-ultra`` caveat covers
#: (``tests/test_caveats.py`` checks that no other is): MoE in FP8 on B300 and GB300 with
#: a step the fitted runs reach (the ``short-step`` caveat speaks for shorter ones).
ULTRA_MOE_FP8_ROWS = ("R064", "R068", "R231", "R233", "R235", "HT071", "HT072", "HT078",
                      "HT079", "HT080", "HT081", "HT086", "HT088", "HT089")


def _blackwell_ultra(workload: Workload, plan: Plan, system: System, step_s: float) -> bool:
    return system.accelerator.id in BLACKWELL_ULTRA and workload.model.is_moe \
        and workload.precision in ULTRA_GAP_PRECISIONS and step_s >= SHORTEST_FITTED_STEP_S


def _ep_over_scale_out(workload: Workload, plan: Plan, system: System, step_s: float
                       ) -> bool:
    """An overlapped expert group whose members (``etp`` ranks apart, as the engine places
    them) span more than one scale-up domain."""
    if not (workload.model.is_moe and plan.ep > 1 and plan.ep_overlap):
        return False
    _, domains = placement(plan.ep, plan.etp or plan.tp, system.chips_per_server)
    return bool(domains > 1)


#: Megatron-Bridge 26.02 rows whose recipe (v0.3.0 ``gpt_oss_workload_base_configs.py``:
#: no ``moe_a2a_overlap``, off by default) runs a scale-out expert all-to-all in line.
EP_INLINE_RELEASE_ROWS = (
    "26.02:DGX-B200:GPT OSS 120B:BF16:1280/4/4096/1/1/1/1/64",
    "26.02:DGX-B300:GPT OSS 120B:BF16:1280/4/4096/1/1/1/1/64",
)


#: Tokens a sequence from which a portable attention kernel's published runs on Hopper
#: fall clearly short of the model: llm-foundry's MPT runs (flash-attn 2.4.2) scored +5 to
#: +14 % at 2-8K tokens and +11 to +37 % from 16K (validation/sweeps/, docs/
#: llm-foundry-sweep.md).
PORTABLE_LONG_CONTEXT_TOKENS = 16384


def _portable_long_context(workload: Workload, plan: Plan, system: System, step_s: float
                           ) -> bool:
    """A portable attention kernel on a chip where it is slower than the native one (a
    measured ``portable_attention`` rate), at long sequences."""
    compute = system.accelerator.compute
    return not plan.native_attention and compute is not None \
        and compute.portable_attention is not None \
        and workload.seq_len >= PORTABLE_LONG_CONTEXT_TOKENS


#: llm-foundry's H100 runs at 16K tokens a sequence and more (MPT-760M to 13B).
PORTABLE_LONG_CONTEXT_ROWS = ("LF027", "LF028", "LF035", "LF036", "LF041", "LF042", "LF043",
                              "LF051", "LF052", "LF053", "LF062", "LF063")


def _fp4_training(workload: Workload, plan: Plan, system: System, step_s: float) -> bool:
    return workload.precision == "fp4"


#: Megatron-Bridge's NVFP4 pre-training rows the step model predicts (Llama 3 70B and
#: Llama 3.1 405B on GB200 and GB300): no development run trains in 4 bits, so none was
#: fitted.
NVFP4_RELEASE_ROWS = (
    "26.06:DGX-GB300:LLAMA3.1_405B:NVFP4:1536/1/8192/4/8/1/4/1",
    "26.06:DGX-GB200:LLAMA3.1_405B:NVFP4:1536/1/8192/4/16/1/8/1",
    "26.04.01:DGX-GB300:LLAMA3_70B:NVFP4:256/1/8192/1/4/1/5/1",
    "26.04.01:DGX-GB200:LLAMA3_70B:NVFP4:256/1/8192/2/4/1/5/1",
    "26.04.01:DGX-GB300:LLAMA3.1_405B:NVFP4:1536/1/8192/4/8/1/4/1",
    "26.04.01:DGX-GB200:LLAMA3.1_405B:NVFP4:1536/1/8192/4/16/1/8/1",
    "26.04:DGX-GB300:LLAMA3_70B:NVFP4:256/1/8192/1/4/1/5/1",
    "26.04:DGX-GB200:LLAMA3_70B:NVFP4:256/1/8192/2/4/1/5/1",
    "26.04:DGX-GB300:LLAMA3.1_405B:NVFP4:1536/1/8192/4/8/1/4/1",
    "26.04:DGX-GB200:LLAMA3.1_405B:NVFP4:1536/1/8192/4/16/1/8/1",
    "26.02.01:DGX-GB200:LLAMA3_70B:NVFP4:256/1/8192/2/4/1/5/1",
    "26.02.01:DGX-GB300:LLAMA3.1_405B:NVFP4:1536/1/8192/4/8/1/4/1",
    "26.02.01:DGX-GB200:LLAMA3.1_405B:NVFP4:1536/1/8192/4/16/1/4/1",
    "26.02:DGX-GB300:LLAMA3_70B:NVFP4:256/1/8192/1/4/1/5/1",
    "26.02:DGX-GB200:LLAMA3_70B:NVFP4:256/1/8192/2/4/1/5/1",
    "26.02:DGX-GB300:LLAMA3.1_405B:NVFP4:1536/1/8192/4/8/1/4/1",
    "26.02:DGX-GB200:LLAMA3.1_405B:NVFP4:1536/1/8192/4/16/1/8/1",
)


CAVEATS: tuple[Caveat, ...] = (
    Caveat(
        "tpu-multislice", _tpu_multislice, ("R098", "R122", "R123", "HT016"), (-5.0, 32.0),
        "Data parallelism across TPU slices over the datacenter network: the model counts "
        "a fitted host-side cost per layer and slice for the cross-slice reductions "
        "(MaxText's v5e table loses 0, 2, 5, 9 and 17 % of its per-chip rate at 2, 4, 8, 16 "
        "and 32 slices; the model 1, 2, 4, 8 and 15 %), but the published runs of this "
        "kind scored -4 to +30 % (two-slice v6e runs R122 +21 % and HT016 +30 %, R098 +11 %, "
        "R123 -4 %; the same 128B layout on one slice, R097: +8 %), and two v5p-4096 "
        "slices lose 6 % where the model sees 1 %; read this rate as optimistic."),
    Caveat(
        "short-step", _short_step, SHORT_STEP_ROWS, (-20.0, 100.0),
        f"Predicted step under {SHORTEST_FITTED_STEP_S:.2f} s, the shortest step of the runs "
        "the calibration was fitted on: the cost paid once per step (optimizer and "
        "gradient-norm launches, host work) is one fitted constant that no fitted run "
        "resolves at this scale, and the fitted share of gradient reduction hidden behind "
        "the backward pass is all of it but the last bucket. Published runs of this kind "
        "(22, all but one held out) scored -17 to +98 %, median +4 %; the shortest, "
        "MLPerf's strong-scaling points of 0.07-0.09 s on 512 and 1,024 GB200 and GB300 "
        "(Llama 3.1 8B, GPT-OSS 20B), +45 to +98 %: read such a rate as up to twice "
        "optimistic."),
    Caveat(
        "blackwell-ultra", _blackwell_ultra, ULTRA_MOE_FP8_ROWS, (-30.0, 3.0),
        "Blackwell Ultra (B300, GB300) training a mixture-of-experts model in FP8: the "
        "calibration gives these chips' grouped 8-bit GEMMs a factor of their own, 1.73x "
        "Blackwell's, fitted on the 8 Megatron-Bridge runs of B300 and GB300 (one "
        "publication; no chip-level term separates the generations, B300's measured 8-bit "
        "matmul rate being B200's). The 14 published runs of this kind (MXFP8, 5 fitted "
        "and 9 held out) then score -29 to +2 %, median -8 %, MLPerf Training v6.0's "
        "DeepSeek-V3 runs on 256 to 8,192 GB300 (held out) 15-29 % faster than predicted: "
        "read this rate as likely low."),
    Caveat(
        "fp4-training", _fp4_training, NVFP4_RELEASE_ROWS, (-20.0, 20.0),
        "NVFP4 training: no fitted run trains in 4 bits; the 4-bit GEMMs run at the chip "
        "family's fitted 8-bit efficiency of the 4-bit peak, and the tensor-parallel "
        "collectives are not overlapped (the recipe cannot). Megatron-Bridge's NVFP4 rows "
        "(Llama 3 70B and 3.1 405B on GB200 and GB300, releases 26.02-26.06), which the fit "
        "never saw, scored -19 to +9 % (median abs 9 %, mean -7 %); the GB200 405B rows (TP4, "
        "PP16) gained 1.48x over MXFP8 where the model gives 1.20x; read this rate as "
        "within about a fifth either way."),
    Caveat(
        "portable-attention-long-context", _portable_long_context,
        PORTABLE_LONG_CONTEXT_ROWS, (10.0, 41.0),
        "Portable attention kernel (FlashAttention-2) on Hopper at 16K tokens a sequence or "
        "more: the model runs it at the rate PyTorch's flash backend measured on an H200 "
        "(about 320 TFLOP/s forward and backward at 8-32K tokens), but llm-foundry's MPT "
        "runs on H100 with flash-attn 2.4.2 (2023) measured below this estimate at these "
        "lengths, scoring +12 to +40 % (12 runs of 760M to 13B parameters, 16-64K tokens); "
        "with a kernel of that era read this rate as up to 40 % optimistic."),
    Caveat(
        "ep-over-scale-out", _ep_over_scale_out,
        ("R067", "R069", "R241", "R242", "R243", "R247", *EP_INLINE_RELEASE_ROWS),
        (-20.0, 115.0),
        "Expert all-to-all across the scale-out network, taken as overlapped: the model "
        "hides the calibrated share of it behind compute, as Megatron-Core's 1F1B overlap "
        "does, and development runs of this kind scored -16 to +8 % (R067, R069, "
        "R241-R243, R247). A stack that runs it in line pays all of it: Megatron-Bridge "
        "26.02's GPT-OSS 120B at EP64 over eight DGX B200 or B300 nodes (alltoall "
        "dispatcher, no overlap) measured 0.5-0.6 of the predicted rate (+70 %, +92 %; "
        "+1 % and +31 % with ep_overlap and ep_dedup off). Set ep_overlap off unless your "
        "stack overlaps the dispatch, and ep_dedup off unless it deduplicates it per node "
        "(DeepEP, HybridEP)."),
)


def caveats_for(workload: Workload, plan: Plan, system: System, step_s: float
                ) -> tuple[str, ...]:
    """The sentences of the caveats that apply to a layout predicted at ``step_s``."""
    return tuple(c.text for c in CAVEATS if c.applies(workload, plan, system, step_s))
