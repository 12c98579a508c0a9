"""Known limits of the serving model: kinds of deployment on which published results the
fit did not use show an error the model cannot yet explain. A serving estimate carries
the caveats that apply to it, so a user reads the doubt beside the rate.

As for training (:mod:`ocplan.plan.caveats`), each caveat is data: the test of whether it
applies (a pure function of the workload, layout and system), the evidence (case ids of
published results with a published layout, and the range of their errors in %,
predicted / measured - 1, under the committed calibrations) and one sentence.
``tests/test_serving_caveats.py`` predicts the evidence again, so a caveat whose bias a
later change removes (or moves outside its stated range) fails the tests and has to be
rewritten or dropped; it also checks that each caveat applies to its evidence and not to
a control result.

The evidence is mostly MLPerf Inference v6.0 and v6.1
(``validation/sweeps/mlperf_inference_v6.csv``, ``M6...``), the never-fitted serving
sweep (docs/mlperf-inference-v6.md): the caveats state what it found, and were written
after it was scored, so that sweep no longer judges them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ocplan.catalog.system import System
from ocplan.serving.plan import ServingPlan
from ocplan.workloads.serving import ServingWorkload

__all__ = ["LATENCY_AT_LOAD", "LIKELY_RANGE_HELD", "LOADED_RESULTS", "LOADED_TPOT_MEDIAN_PCT",
           "LOADED_TPOT_RANGE_PCT", "LOADED_TTFT_MEDIAN_PCT", "OPERATING_POINTS",
           "OPERATING_POINT_ERROR_PCT", "SERVING_CAVEATS",
           "SHORT_WINDOW_TOKENS", "TIGHT_TPOT_S", "ServingCaveat", "serving_caveats_for"]

#: Longest p99 TPOT limit counted as tight, s: MLPerf Inference's Interactive scenarios
#: (Llama 2 70B 40 ms, Llama 3.1 8B 30 ms, gpt-oss-120b and DeepSeek-R1 15 ms), against
#: 80-200 ms in its Server scenarios (mlcommons/inference loadgen/mlperf.conf).
TIGHT_TPOT_S = 0.040

#: Longest sliding window of the MoE models the windowed-MoE caveats cover, tokens:
#: gpt-oss's 128-token windows (OpenAI's gpt-oss model card; catalog gpt-oss-120b,
#: gpt-oss-20b), not Llama 4's 8,192-token attention chunks.
SHORT_WINDOW_TOKENS = 128

Applies = Callable[[ServingWorkload, ServingPlan, System], bool]


@dataclass(frozen=True)
class ServingCaveat:
    """A kind of serving deployment the model is known to predict less well."""

    name: str
    applies: Applies
    """Whether the caveat applies to ``(workload, plan, system)``."""
    evidence: tuple[str, ...]
    """Case ids of published results with a published layout (``INF...``:
    shared/validation/inference_dev.csv; ``HI...``:
    validation/holdout/inference_holdout.csv; ``M6...``:
    validation/sweeps/mlperf_inference_v6.csv) that show the limit."""
    error_range_pct: tuple[float, float]
    """Lowest and highest error of the evidence, % (predicted / measured - 1)."""
    text: str
    """The sentence shown with an estimate."""


def _tight_tpot(wl: ServingWorkload, plan: ServingPlan, system: System) -> bool:
    return wl.slo_tpot_s is not None and wl.slo_tpot_s <= TIGHT_TPOT_S


def _short_window_moe(wl: ServingWorkload) -> bool:
    window = wl.model.sliding_window
    return wl.model.is_moe and 0 < window <= SHORT_WINDOW_TOKENS


def _windowed_moe(wl: ServingWorkload, plan: ServingPlan, system: System) -> bool:
    return _short_window_moe(wl) and system.accelerator.vendor != "AMD" \
        and not _tight_tpot(wl, plan, system)


def _windowed_moe_amd(wl: ServingWorkload, plan: ServingPlan, system: System) -> bool:
    return _short_window_moe(wl) and system.accelerator.vendor == "AMD"


def _mla_blackwell(wl: ServingWorkload, plan: ServingPlan, system: System) -> bool:
    return wl.model.is_mla and system.accelerator.family == "blackwell" \
        and not _tight_tpot(wl, plan, system)


#: MLPerf Inference v6.0/v6.1 gpt-oss-120b Offline and Server results with a published
#: layout on NVIDIA Blackwell (TensorRT-LLM, MXFP4 experts, FP8 KV cache).
WINDOWED_MOE_ROWS = ("M6018", "M6019", "M6026", "M6027", "M6089", "M6090", "M6131",
                     "M6132", "M6151", "M6152", "M6193", "M6194", "M6204", "M6205",
                     "M6208", "M6209", "M6293", "M6294", "M6356", "M6357")
#: The same benchmark on MI355X with AMD's published layout (vLLM on ROCm, MXFP4 weights
#: and activations: AMD, Dell, GIGABYTE, HPE and Oracle in v6.0, Crusoe in v6.1).
WINDOWED_MOE_AMD_ROWS = ("M6007", "M6008", "M6015", "M6016", "M6050", "M6051", "M6078",
                         "M6079", "M6120", "M6121", "M6210", "M6211", "M6291", "M6292")
#: DeepSeek-R1/V3 results with a published layout on Blackwell: MLPerf v6.0 Offline and
#: Server (TensorRT-LLM, NVFP4), the v5.1 GB300 pair of the hold-out set, and the
#: development set's disaggregated SGLang and Dynamo pools.
MLA_BLACKWELL_ROWS = ("M6024", "M6025", "M6044", "M6045", "M6058", "M6059", "M6066",
                      "M6067", "M6068", "M6069", "M6087", "M6088", "M6103", "M6104",
                      "M6149", "M6150", "M6199", "M6200", "M6201", "M6202", "M6206",
                      "M6207", "M6218", "M6219", "HI012", "HI013", "INF115", "INF117",
                      "INF118", "INF119", "INF121", "INF122")
#: Results with a p99 TPOT limit of at most :data:`TIGHT_TPOT_S` and a published layout.
TIGHT_TPOT_ROWS = ("INF038", "HI006", "M6001", "M6004", "M6009", "M6012", "M6017",
                   "M6032", "M6035", "M6052", "M6055", "M6060", "M6063", "M6080", "M6083",
                   "M6086", "M6091", "M6094", "M6100", "M6109", "M6112", "M6115", "M6122",
                   "M6125", "M6128", "M6143", "M6146", "M6203", "M6212", "M6215", "M6226",
                   "M6229")


SERVING_CAVEATS: tuple[ServingCaveat, ...] = (
    ServingCaveat(
        "windowed-moe", _windowed_moe, WINDOWED_MOE_ROWS, (-8.0, 15.0),
        "MoE with short sliding-window layers (gpt-oss: 128-token windows with attention "
        "sinks, many small MXFP4 experts): no result the serving calibration was fitted on "
        "serves one. MLPerf Inference v6.0 and v6.1's gpt-oss-120b Offline and Server "
        "results on Blackwell with a published layout scored -6 to +11 % (median +4 %, "
        "20 results), and those without one -13 to +48 %; on an H200 +89 to +117 % (vLLM, "
        "the experts weight-only); read this rate as up to a tenth optimistic on "
        "Blackwell."),
    ServingCaveat(
        "windowed-moe-amd", _windowed_moe_amd, WINDOWED_MOE_AMD_ROWS, (90.0, 130.0),
        "MoE with short sliding-window layers (gpt-oss) on AMD Instinct: the ROCm stacks "
        "of 2026 serve it far below the rate this model gives the chip, though the same "
        "chips' Llama 2 70B results (MXFP4 too) fall within a few per cent. MLPerf "
        "Inference v6.0 and v6.1's gpt-oss-120b Offline and Server results on MI355X with "
        "AMD's published layout (vLLM, MXFP4 weights and activations) scored +94 to "
        "+128 %, v6.1's MI355X results without a layout +48 to +65 % (MI350X +79 to +95 %, "
        "an FP8 stack +9 to +13 %) and at the 15 ms limit +115 to +202 %; read this rate "
        "as about 2x optimistic."),
    ServingCaveat(
        "mla-blackwell", _mla_blackwell, MLA_BLACKWELL_ROWS, (-40.0, 105.0),
        "MLA (DeepSeek-V3/R1) on Blackwell: its decode rests on kernels that changed "
        "fast. MLPerf Inference v6.0's DeepSeek-R1 Offline results (TensorRT-LLM, 2026) "
        "ran 31-38 % faster than this model predicts, while v5.1's GB300 Server result "
        "ran at half its rate (HI013, +100 %); published results of this kind scored "
        "-38 to +100 % (32 results with a published layout); read this rate as uncertain "
        "by up to 2x either way."),
    ServingCaveat(
        "tight-tpot", _tight_tpot, TIGHT_TPOT_ROWS, (-65.0, 44.0),
        f"A p99 TPOT limit of {TIGHT_TPOT_S * 1e3:.0f} ms or less (MLPerf's Interactive "
        "scenarios): the rate meeting it rests on the modelled tail of a request's TPOT "
        "under load, where the batch it lives through and the prompts admitted beside it "
        "dominate. Published results of this kind scored -63 to +40 % (Llama 2 70B at "
        "40 ms -5 to +40 % on every chip; gpt-oss-120b and DeepSeek-R1 at 15 ms -9 to "
        "-63 %); read this rate as within about half either way."),
)


#: What ``scripts/serving_latency.py`` found (docs/serving-latency.md): the MLPerf Server
#: and Interactive results with a published layout and logged means whose measured rate
#: the model keeps up with, and its mean TPOT's and mean TTFT's errors there, %
#: (median, and the lowest and highest for TPOT). ``tests/test_serving_latency.py``
#: checks them against the report.
LOADED_RESULTS = 81
LOADED_TPOT_MEDIAN_PCT = -26.3
LOADED_TPOT_RANGE_PCT = (-78.8, 147.7)
LOADED_TTFT_MEDIAN_PCT = -49.5
#: The same report's iteration check: results, and the median and 90th percentile of
#: the absolute error of the model's iteration at each result's measured operating
#: point (Little's law on its rate and mean TPOT), %.
OPERATING_POINTS = 99
OPERATING_POINT_ERROR_PCT = (7.1, 36.6)
#: The same report's likely ranges at the rates (:mod:`ocplan.serving.latency_range`):
#: how many of the :data:`OPERATING_POINTS` logged mean TPOTs and mean TTFTs they held.
LIKELY_RANGE_HELD = (76, 70)

#: The sentence of an estimate at a given arrival rate (a Poisson load): its figures
#: are latencies, which no fit has seen.
LATENCY_AT_LOAD = (
    "Latencies at a given arrival rate are not fitted (the serving calibration fits "
    f"throughputs). At the operating points of {OPERATING_POINTS} MLPerf Server and "
    "Interactive results (Little's law on their logged rates and mean TPOTs) the "
    f"model's iteration is within {OPERATING_POINT_ERROR_PCT[0]:.0f} % at the median "
    f"({OPERATING_POINT_ERROR_PCT[1]:.0f} % at the 90th percentile), but those results "
    "run near their layout's capacity, where a small error of the iteration is a large "
    f"one of the latency: at their measured rates ({LOADED_RESULTS} the model keeps up "
    f"with) its mean TPOT was {-LOADED_TPOT_MEDIAN_PCT:.0f} % and its mean TTFT "
    f"{-LOADED_TTFT_MEDIAN_PCT:.0f} % below the logged means at the median, the TPOT "
    f"ranging from {LOADED_TPOT_RANGE_PCT[0]:+.0f} to {LOADED_TPOT_RANGE_PCT[1]:+.0f} % "
    "(docs/serving-latency.md); near capacity, read them as optimistic. The likely range "
    "beside them (the iteration at either end of the family's held-out throughput range) "
    f"held {LIKELY_RANGE_HELD[0]} of those {OPERATING_POINTS} logged mean TPOTs and "
    f"{LIKELY_RANGE_HELD[1]} of their mean TTFTs.")


def serving_caveats_for(workload: ServingWorkload, plan: ServingPlan, system: System
                        ) -> tuple[str, ...]:
    """The sentences of the serving caveats that apply to a deployment, and
    :data:`LATENCY_AT_LOAD` under a Poisson load."""
    known = tuple(c.text for c in SERVING_CAVEATS if c.applies(workload, plan, system))
    return known + ((LATENCY_AT_LOAD,) if workload.load == "poisson" else ())
