"""Predict published serving results and compare: ``ocplan validate`` on a serving CSV.

Reads the canonical layout of ``../shared/validation/inference_dev.csv`` (see its
README). Each row becomes a serving workload, a layout (the published one, or the best
the search finds for the row's chip count, said in the case) and the chip's default
system; the prediction is the row's primary metric (output tokens/s per chip, or input
tokens/s per chip for the prefill role of a disaggregated deployment), plus TTFT and
TPOT where the row publishes them.

Defaults for what a row leaves empty (each stated in the case's ``notes``):

- weight and activation formats: the narrowest floating-point format the chip has a
  matrix unit for among fp4 and fp8 (the README: NVIDIA's Blackwell submissions use
  FP4, Hopper, AMD and Gaudi FP8); activations empty beside stated weights: the
  weights' format (W4A4 NVFP4, W8A8 FP8), except 4-bit weights of a model released in
  MXFP4 (gpt-oss) on an NVIDIA chip with a 4-bit unit: 8-bit activations (W4A8,
  :data:`MX_WEIGHT_ACTIVATIONS`);
- KV cache: fp8 when the GEMMs run in 8 or 4 bits (TensorRT-LLM and vLLM FP8 recipes
  quantize the cache with the same calibration), else bf16;
- disaggregated decode rows without an output length: context = the prompt;
- MoE routing: :data:`~ocplan.results.validation.REAL_ROUTER_IMBALANCE` (real traffic
  through a trained router) unless the notes say the routing was balanced;
- two-batch overlap of the MoE all-to-all where the notes name it;
- request lengths of the MLPerf datasets: lognormal with the spread of the dataset's
  per-sample token counts (:data:`MLPERF_LENGTH_CV`), not one fixed length: the KV cache a
  running sequence holds and the latency tails follow the spread; synthetic rows keep
  fixed lengths.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ocplan.catalog.catalog import Catalog
from ocplan.catalog.schema import Accelerator, ModelArch
from ocplan.catalog.system import System, system_for_chip
from ocplan.errors import OcplanError, Problem, SpecError
from ocplan.plan.calibration import Calibration, in_likely_range
from ocplan.results.validation import (
    MIN_MEASURED,
    REAL_ROUTER_IMBALANCE,
    csv_header,
    read_csv_rows,
    shape_from_row,
    source_group,
)
from ocplan.results.validation import REQUIRED as TRAINING_REQUIRED
from ocplan.serving.calibration import ServingCalibration
from ocplan.serving.estimate import ServingEstimate, estimate_serving
from ocplan.serving.plan import ServingPlan
from ocplan.serving.search import search_serving
from ocplan.serving.trtllm_bench import rule_applies, trtllm_bench_limits
from ocplan.workloads.serving import (
    ACTIVATION_PRECISIONS,
    KV_PRECISIONS,
    WEIGHT_PRECISIONS,
    ServingWorkload,
)
from ocplan.workloads.shape import ModelShape

__all__ = ["SERVING_REQUIRED", "PreparedServing", "ServingCase", "is_serving_csv",
           "predict_serving_row", "prepare_serving_row", "published_plan",
           "read_serving_cases", "run_serving_validation", "serving_row_problems"]

SERVING_REQUIRED = ("case_id", "model", "chip", "num_chips", "scenario", "input_len_mean",
                    "output_len_mean", "primary_metric",
                    "measured_output_tokens_per_s_per_chip",
                    "measured_input_tokens_per_s_per_chip")
#: Columns only the serving layout has (neither the training nor the CPU layout): a
#: header without ``primary_metric`` that has more of these than of :data:`TRAINING_OWN`
#: is a serving file short of columns, told which serving columns it lacks.
SERVING_OWN = frozenset((
    "source_group", "source_date", "model_catalog_id", "attention", "kv_lora_rank",
    "qk_rope_head_dim", "framework", "weight_precision", "activation_precision",
    "kv_precision", "attention_dp", "scenario", "dataset", "input_len_mean",
    "output_len_mean", "batch_or_concurrency", "batch_kind", "primary_metric",
    "measured_output_tokens_per_s_per_chip", "measured_output_tokens_per_s_total",
    "measured_input_tokens_per_s_per_chip", "ttft_ms", "ttft_stat", "tpot_ms", "tpot_stat",
    "slo_ttft_ms", "slo_tpot_ms"))
#: The parallel layout's columns, filled together or not at all.
LAYOUT_COLUMNS = ("tp", "pp", "dp")
#: The training layout's required columns that the serving layout lacks (both have the
#: model shape's and the layout's).
TRAINING_OWN = (frozenset(TRAINING_REQUIRED) - frozenset(SERVING_REQUIRED)
                - frozenset(LAYOUT_COLUMNS) - {"n_layers", "hidden_size", "n_heads", "mlp"})
#: ``scenario`` (the README's closed vocabulary).
SCENARIOS = ("offline", "server", "interactive", "max-load", "fixed-batch", "disagg-prefill",
             "disagg-decode")
#: The role of a disaggregated deployment each disaggregated scenario measures (the
#: other scenarios are aggregated serving).
DISAGG_ROLES = {"disagg-prefill": "prefill", "disagg-decode": "decode"}
#: ``batch_kind`` (the README's vocabulary), what ``batch_or_concurrency`` means.
BATCH_KINDS = ("max_batch_per_instance", "max_num_seqs", "requests_queued", "static_batch",
               "per_chip_batch", "tokens_per_chip_step", "target_qps")
#: ``attention_dp``: DP attention used or not (empty: not known).
ATTENTION_DP = ("yes", "no")
#: Formats each precision column takes (those a serving workload accepts).
PRECISION_COLUMNS = {"weight_precision": WEIGHT_PRECISIONS,
                     "activation_precision": ACTIVATION_PRECISIONS,
                     "kv_precision": KV_PRECISIONS}
#: Serving stacks (lower-case words of the ``framework`` column) whose FP8 KV cache brings
#: FP8 context attention: TensorRT-LLM, and NVIDIA's MLPerf harness built on it. Its
#: PyTorch backend asks the attention op for an FP8 output when an FP8 or NVFP4 model
#: runs over an FP8 cache (``tensorrt_llm/_torch/attention_backend/trtllm.py``), and the
#: op then runs the FP8 context FMHA, as it does for any FP8 cache read by the paged
#: (chunked) context kernel (``mFP8ContextFMHA`` in ``cpp/tensorrt_llm/thop/
#: attentionOp.cpp``); ``trtllm-bench``'s engine builds set ``use_fp8_context_fmha``
#: for FP8 weights or an FP8 cache (NVIDIA/TensorRT-LLM). Other stacks are not assumed
#: to: vLLM's FP8 attention is a FlashAttention-3 path on Hopper only, and the ROCm and
#: SGLang rows do not say which kernel they ran.
FP8_ATTENTION_STACKS = ("tensorrt", "trt-llm", "trtllm")
#: Optional numeric columns read from a row, each a positive number where given (what).
OPTIONAL_NUMBERS = {"batch_or_concurrency": "number (the load setting of batch_kind)",
                    "slo_ttft_ms": "number of milliseconds",
                    "slo_tpot_ms": "number of milliseconds",
                    "tpot_ms": "number of milliseconds"}
#: A plain whole number (the README: integer columns hold plain integers).
WHOLE = re.compile(r"[0-9]+")
#: Column of each primary metric.
METRIC_COLUMN = {"output": "measured_output_tokens_per_s_per_chip",
                 "input": "measured_input_tokens_per_s_per_chip"}
MS = 1e-3
#: GEMM inputs of a model released in MXFP4 (OCP MX 4-bit, gpt-oss), by the vendor of
#: the chip whose stacks serve it, where a result publishes 4-bit weights but no
#: activation format, on a chip with a 4-bit unit. NVIDIA's stacks pair MX 4-bit weights
#: with 8-bit activations, W4A4 being NVFP4's: TensorRT-LLM's MoE backends take MXFP4
#: weights only as W4A8_MXFP4_FP8 or W4A8_MXFP4_MXFP8 on SM100/SM103 (W4A16_MXFP4 on
#: SM90; the quantization table of tensorrt_llm/_torch/modules/fused_moe), vLLM's
#: FlashInfer path on Blackwell as MXFP4 x MXFP8. A vendor absent keeps the weights'
#: format: AMD's MLPerf gpt-oss-120b recipe quantizes weights and activations to MXFP4
#: (Quark; MLPerf Inference v6.0 closed/AMD/documentation/calibration.md), CDNA 4's
#: 4-bit unit being an MX one.
MX_WEIGHT_ACTIVATIONS: dict[str, str] = {"NVIDIA": "fp8"}
#: An engine's per-iteration token budget named in a row's notes (vLLM
#: ``max_num_batched_tokens``, TensorRT-LLM ``max_num_tokens``): the row's published
#: configuration, read as the plan's ``chunk_tokens`` (per scheduler: with attention DP
#: each rank schedules its own batch).
TOKEN_BUDGET = re.compile(r"\bmax_num(?:_batched)?_tokens\s+(\d+)")
#: The request count of a finite benchmark run named in a row's notes (vLLM's throughput
#: benchmark ``--num-prompts``): the run's own size, read as the workload's ``requests``.
NUM_PROMPTS = re.compile(r"\bnum_prompts\s+(\d+)")
#: Words of a row's notes that say the engine overlapped the MoE all-to-all with compute
#: (SGLang two-batch overlap, DeepSeek's two micro-batches).
OVERLAP_WORDS = ("two-batch overlap", "two micro-batches", "overlap scheduling")
#: Coefficient of variation (std / mean) of the output lengths of each MLPerf LLM
#: dataset, from its per-sample token counts: openshift-psap/performance-dashboard
#: @7100702 ``mlperf-data/summaries/<benchmark>.csv`` (columns input_length,
#: output_length; extracted there from the MLCommons dataset files). llama2-70b
#: (OpenOrca, 24,576 samples) mean 218.9, std 172.3; mixtral-8x7b (15,000) 144.8, 112.7;
#: llama3.1-405b (8,313) 684.7, 260.8; llama3.1-8b (CNN/DailyMail, 13,368) 81.6, 36.6;
#: deepseek-r1 (4,388) 4,043, 5,065 (reasoning traces, capped at 32,768). Keyed by the
#: benchmark name the row's ``dataset`` opens with.
MLPERF_LENGTH_CV = {"llama2-70b": 0.787, "mixtral-8x7b": 0.778, "llama3.1-405b": 0.381,
                    "llama3.1-8b": 0.449, "deepseek-r1": 1.253}


def is_serving_csv(header: Iterable[str]) -> bool:
    """Whether a CSV header is the serving layout (it names a primary metric), or nearer
    to it than to the training layout (more of :data:`SERVING_OWN` than of
    :data:`TRAINING_OWN`): a serving file short of columns is then told which serving
    columns it lacks, not every training one."""
    columns = set(header)
    if "primary_metric" in columns:
        return True
    return len(columns & SERVING_OWN) > len(columns & TRAINING_OWN)


@dataclass(frozen=True)
class ServingCase:
    case_id: str
    source: str
    chip: str
    model: str
    scenario: str
    metric: str
    measured: float
    predicted: float | None
    error_pct: float | None
    status: str
    reason: str | None
    layout: str = ""
    """The layout predicted with; ``searched`` cases name the search's best."""
    layout_source: str = "published"
    notes: str = ""
    ttft_error_pct: float | None = None
    tpot_error_pct: float | None = None
    confidence: str = ""
    architecture: str = ""
    likely_range_pct: tuple[float, float] | None = None
    """The estimate's held-out error range (:attr:`~ocplan.serving.estimate.
    ServingEstimate.held_out_range_pct`); None when not predicted or the calibration has
    none."""

    @property
    def within_likely_range(self) -> bool | None:
        """Whether the measured primary metric fell in the estimate's likely range
        (:func:`~ocplan.plan.calibration.in_likely_range`)."""
        return in_likely_range(self.error_pct, self.likely_range_pct)

    def as_json(self) -> dict[str, object]:
        return {"case_id": self.case_id, "metric": self.metric, "measured": self.measured,
                "predicted": self.predicted, "error_pct": self.error_pct,
                "status": self.status, "reason": self.reason, "layout": self.layout,
                "layout_source": self.layout_source, "ttft_error_pct": self.ttft_error_pct,
                "tpot_error_pct": self.tpot_error_pct, "notes": self.notes,
                "within_likely_range": self.within_likely_range}


def _num(row: Mapping[str, str], key: str) -> float | None:
    """An optional number cell (checked by :func:`serving_row_problems`); None if empty."""
    text = (row.get(key) or "").strip()
    return float(text) if text else None


def _int(row: Mapping[str, str], key: str) -> int | None:
    """An optional whole-number cell (checked by :func:`serving_row_problems`); None if
    empty."""
    text = (row.get(key) or "").strip()
    return int(text) if text else None


def read_serving_cases(path: Path) -> list[dict[str, str]]:
    """Rows of a serving validation CSV; SpecError naming every bad cell of every row
    (file, line and case id, column, value and what is allowed:
    :func:`serving_row_problems`), one line for a header without the serving layout's
    columns (naming those it lacks) or a file with no rows."""
    header = csv_header(path)
    missing = [c for c in SERVING_REQUIRED if c not in header]
    if header and missing:
        near = "" if "primary_metric" in header else (
            ", the nearest to the columns it has: "
            + ", ".join(c for c in header if c in SERVING_OWN))
        raise SpecError.one(str(path), "header", f"missing columns of the serving results "
                                                 f"layout (inference_dev.csv's{near}): "
                                                 f"{', '.join(missing)}")
    problems: list[Problem] = []

    def check(source: str, line: int, row: dict[str, str]) -> None:
        where = f"line {line} ({(row.get('case_id') or '').strip() or '?'})"
        measured = _measured_problem(source, where, row)
        if measured is not None:
            problems.append(measured)
        problems.extend(serving_row_problems(source, where, row))

    rows = read_csv_rows(path, SERVING_REQUIRED, check)  # refuses a file of no rows
    if problems:
        raise SpecError(problems)
    return rows


def serving_row_problems(source: str, where: str, row: Mapping[str, str]) -> list[Problem]:
    """Every cell of a serving row the predictor reads that holds what it cannot read:
    ``num_chips`` (a whole number, at least 1), the prompt length and, on
    aggregated-serving rows, the output length (positive numbers), the vocabularies
    (``scenario``, ``batch_kind``, ``attention_dp``, the precisions), the layout (``tp``,
    ``pp``, ``dp`` whole numbers given together or not at all; ``ep``) and the optional
    numbers. ``where`` names the row in each problem's field (``line 2 (INF001)``); empty
    when the row is fine. The measured value is checked by the file's reader."""
    problems = []

    def cell(key: str) -> str:
        return (row.get(key) or "").strip()

    def add(key: str, message: str) -> None:
        problems.append(Problem(source, f"{where}.{key}", message, cell(key)))

    if not WHOLE.fullmatch(cell("num_chips")) or int(cell("num_chips")) < 1:
        add("num_chips", "expected a whole number of chips, at least 1 (always filled)")
    scenario = cell("scenario")
    if scenario not in SCENARIOS:
        add("scenario", f"expected one of {', '.join(SCENARIOS)}")
    if not _positive(cell("input_len_mean")):
        add("input_len_mean", "expected a positive number of tokens (the mean prompt "
                              "length, always filled)")
    osl = cell("output_len_mean")
    if osl and not _positive(osl):
        add("output_len_mean", "expected a positive number of tokens (the mean generated "
                               "length)")
    elif not osl and scenario in SCENARIOS and scenario not in DISAGG_ROLES:
        add("output_len_mean", f"expected a positive number of tokens (the mean generated "
                               f"length): required where scenario = {scenario} "
                               f"(aggregated serving), empty only on "
                               f"{' and '.join(DISAGG_ROLES)} rows")
    vocabularies = {"batch_kind": BATCH_KINDS, "attention_dp": ATTENTION_DP,
                    **PRECISION_COLUMNS}
    for key, allowed in vocabularies.items():
        if cell(key) and cell(key) not in allowed:
            add(key, f"expected one of {', '.join(allowed)}, or empty (not published)")
    for key in (*LAYOUT_COLUMNS, "ep"):
        if cell(key) and (not WHOLE.fullmatch(cell(key)) or int(cell(key)) < 1):
            add(key, "expected a whole number, at least 1, or empty (not published)")
    given = [k for k in LAYOUT_COLUMNS if cell(k)]
    if given and len(given) < len(LAYOUT_COLUMNS):
        empty = [k for k in LAYOUT_COLUMNS if k not in given]
        stated = ", ".join(f"{k} = {cell(k)}" for k in given)
        problems.append(Problem(
            source, f"{where}.{', '.join(empty)}",
            f"empty beside {stated}: tp, pp and dp are filled together (the published "
            f"layout) or all left empty (the best layout for num_chips is searched); fill "
            f"{' and '.join(empty)}"))
    for key, what in OPTIONAL_NUMBERS.items():
        if cell(key) and not _positive(cell(key)):
            add(key, f"expected a positive {what}, or empty (not published)")
    return problems


def _positive(text: str) -> bool:
    """Whether a cell is a positive, finite number."""
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and value > 0


def _measured_problem(source: str, where: str, row: Mapping[str, str]) -> Problem | None:
    metric = (row.get("primary_metric") or "").strip()
    if metric not in METRIC_COLUMN:
        return Problem(source, f"{where}.primary_metric", "expected output or input", metric)
    column = METRIC_COLUMN[metric]
    text = (row.get(column) or "").strip()
    try:
        value = float(text)
    except ValueError:
        return Problem(source, f"{where}.{column}", "expected a positive number of tokens/s "
                                                    "per chip", text)
    if not math.isfinite(value) or value < MIN_MEASURED:
        return Problem(source, f"{where}.{column}", "expected a positive, finite number of "
                                                    f"tokens/s per chip (at least "
                                                    f"{MIN_MEASURED:g})", text)
    return None


def _arch(row: dict[str, str], catalog: Catalog) -> ModelArch | None:
    """The catalog model a row names (None: a model given by its shape alone)."""
    model_id = (row.get("model_catalog_id") or "").strip()
    return catalog.model(model_id, "csv", "model_catalog_id") if model_id else None


def _shape(row: dict[str, str], arch: ModelArch | None) -> ModelShape:
    if arch is not None:
        return ModelShape.from_arch(arch)
    return shape_from_row({**row, "mlp": row.get("mlp") or "swiglu"})


def _formats(row: dict[str, str], acc: Accelerator, released: str | None
             ) -> tuple[str, str, str, list[str]]:
    """(weight, activation, KV) formats with the module docstring's defaults;
    ``released`` is the format of the model's released checkpoint (None: 16-bit). The
    attention's is :func:`_attention_format` of these."""
    notes = []
    w = (row.get("weight_precision") or "").strip()
    a = (row.get("activation_precision") or "").strip()
    kv = (row.get("kv_precision") or "").strip()
    if not w and not a:
        w = a = next((p for p in ("fp4", "fp8") if acc.peak_flops.get(p)), "bf16")
        notes.append(f"formats not published: {w} (narrowest float unit of {acc.id})")
    elif not a and w == "fp4" and released == "mxfp4" and acc.peak_flops.get("fp4") \
            and acc.vendor in MX_WEIGHT_ACTIVATIONS:
        a = MX_WEIGHT_ACTIVATIONS[acc.vendor]
        notes.append(f"activation format not published: {a} ({acc.vendor}'s stacks run "
                     f"MXFP4 weights as W4A8)")
    elif not a:
        a = w if w in ("fp4", "fp8", "bf16", "fp16", "int8") else "bf16"
        notes.append(f"activation format not published: {a}")
    elif not w:
        w = a
    if not kv:
        kv = "fp8" if a in ("fp8", "fp4") else "bf16"
        notes.append(f"KV format not published: {kv}")
    return w, a, kv, notes


def _attention_format(row: dict[str, str], acc: Accelerator, kv: str) -> str:
    """``fp8`` for a row of an :data:`FP8_ATTENTION_STACKS` stack over an FP8 cache on a
    chip with 8-bit units, else ``bf16``."""
    stack = (row.get("framework") or "").lower()
    fp8 = kv == "fp8" and bool(acc.peak_flops.get("fp8")) \
        and any(name in stack for name in FP8_ATTENTION_STACKS)
    return "fp8" if fp8 else "bf16"


@dataclass(frozen=True)
class PreparedServing:
    workload: ServingWorkload
    system: System
    chips: int
    fixed: dict[str, object]
    """Layout fields the row publishes (all of tp/pp/dp, or none)."""
    role: str
    """``aggregated``, ``prefill`` or ``decode``."""
    metric: str
    notes: tuple[str, ...]


def prepare_serving_row(row: dict[str, str], catalog: Catalog) -> PreparedServing:
    """The model inputs of a serving row; SpecError (source ``csv``) naming every cell
    :func:`serving_row_problems` refuses, before anything is defaulted."""
    problems = serving_row_problems("csv", (row.get("case_id") or "").strip() or "?", row)
    if problems:
        raise SpecError(problems)
    arch = _arch(row, catalog)
    shape = _shape(row, arch)
    chip = row["chip"].strip()
    acc = catalog.accelerator(chip, "csv", "chip")
    chips = int(row["num_chips"])
    released = None if arch is None or arch.released is None else arch.released.weights
    w, a, kv, notes = _formats(row, acc, released)
    attention = _attention_format(row, acc, kv)
    if attention != "bf16":
        notes.append(f"attention {attention} (the stack's context FMHA over an FP8 cache)")
    scenario = row["scenario"].strip()
    isl = float(row["input_len_mean"])
    osl = _num(row, "output_len_mean")
    role = DISAGG_ROLES.get(scenario, "aggregated")
    if osl is None:  # a disaggregated role only (required on the other rows)
        osl = 1.0
        if role == "decode":
            notes.append("output length not published: context = the prompt")
    load: dict[str, Any] = {"load": "offline"}
    kind = (row.get("batch_kind") or "").strip()
    amount = _num(row, "batch_or_concurrency")
    if scenario == "fixed-batch" and amount:
        load = {"load": "static", "batch": int(amount)}
    elif kind == "requests_queued" and amount:
        load["requests"] = int(amount)
    elif (prompts := NUM_PROMPTS.search(row.get("measured_from") or "")) is not None:
        load["requests"] = int(prompts.group(1))
    slo: dict[str, Any] = {}
    if scenario in ("server", "interactive"):
        ttft, tpot = _num(row, "slo_ttft_ms"), _num(row, "slo_tpot_ms")
        slo = {"slo_ttft_s": ttft * MS if ttft else None,
               "slo_tpot_s": tpot * MS if tpot else None, "slo_stat": "p99"}
    text = ((row.get("measured_from") or "") + " " + (row.get("framework") or "")).lower()
    imbalance = 1.0
    if shape.is_moe and "balanced" not in text:
        imbalance = REAL_ROUTER_IMBALANCE
        notes.append(f"routing imbalance {imbalance:g} (real router)")
    lengths = _length_distribution(row.get("dataset") or "")
    if lengths:
        notes.append(f"lengths lognormal, spread {lengths['length_spread']:.2f} "
                     "(the dataset's)")
    wl = ServingWorkload(shape, isl, osl, weight_precision=w, activation_precision=a,
                         kv_precision=kv, attention_precision=attention,
                         moe_imbalance=imbalance, **load, **slo, **lengths)
    fixed = _layout(row, shape, kind, amount)
    if _schedulers_unknown(fixed, shape) and (
            (amount and kind == "max_batch_per_instance")
            or TOKEN_BUDGET.search(row.get("measured_from") or "")):
        notes.append("engine caps (sequences, token budget) not applied: they hold per "
                     "scheduler, and no published layout says how many the instance runs")
    tp, pp = fixed.get("tp"), fixed.get("pp")
    if ("trtllm-bench" in text and isinstance(tp, int) and isinstance(pp, int)
            and rule_applies(shape)):
        # the run's engine was sized by the benchmark itself (see the module), over its
        # mapping's whole tensor-parallel group: with attention DP that is the instance's
        # tp x dp ranks, and each rank's own executor then holds the caps (TensorRT-LLM
        # divides neither by the DP ranks: _torch/pyexecutor/_util.py sizes the
        # scheduler from max_batch_size x pp per rank)
        ranks = _schedulers(fixed.get("attention_dp"), fixed.get("dp"))
        batch, budget = trtllm_bench_limits(shape, w, kv, acc.memory.hbm_capacity,
                                            tp * ranks, pp, isl, osl)
        fixed.setdefault("max_seqs", batch * pp * ranks)
        fixed.setdefault("chunk_tokens", budget * ranks)
        notes.append(f"trtllm-bench engine limits: {batch * pp * ranks} sequences, "
                     f"{budget * ranks} tokens an iteration")
    if "trtllm-serve" in text and "max_util" not in text:
        # TensorRT-LLM's LLM API default, GUARANTEED_NO_EVICT, which trtllm-serve keeps
        fixed.setdefault("admission", "reserve")
        notes.append("admission reserve (trtllm-serve's default GUARANTEED_NO_EVICT)")
    if shape.is_moe and any(k in text for k in OVERLAP_WORDS):
        fixed["overlap"] = True
    system = system_for_chip(catalog, chip, chips * (2 if role != "aggregated" else 1), "csv",
                             name=f"{row['case_id']}: {chips} x {chip}")
    metric = (row.get("primary_metric") or "output").strip()
    return PreparedServing(wl, system, chips, fixed, role, metric, tuple(notes))


def _length_distribution(dataset: str) -> dict[str, Any]:
    """Lognormal lengths with the MLPerf dataset's spread (``sigma^2 = ln(1 + cv^2)``
    matches its mean and variance); none for other datasets."""
    words = dataset.split()
    if len(words) < 2 or words[0] != "MLPerf":
        return {}
    cv = MLPERF_LENGTH_CV.get(words[1].rstrip(":"))
    if cv is None:
        return {}
    return {"length_distribution": "lognormal", "length_spread": math.sqrt(math.log1p(cv * cv))}


def _schedulers(attention_dp: object, dp: object) -> int:
    """Schedulers one instance runs, each with its own engine caps: one per rank under
    attention DP (every rank runs its own executor), else one."""
    return dp if attention_dp and isinstance(dp, int) and dp > 0 else 1


def _schedulers_unknown(fixed: Mapping[str, object], shape: ModelShape) -> bool:
    """Whether a row's per-scheduler engine cap cannot be turned into its instance's:
    a MoE model whose layout is not published and whose attention DP is not stated, so
    the searched layout may run one scheduler per rank (attention DP) or one for the
    instance. Pinned as one instance's cap, the cap of one rank (its sequences or its
    token budget) would throttle every attention-DP layout the search tries (NVIDIA's
    MLPerf v6.0 DeepSeek-R1 configs on GB200 and GB300 NVL72 give 512 and 1,536
    sequences, per rank)."""
    return shape.is_moe and "tp" not in fixed and "attention_dp" not in fixed


def _layout(row: dict[str, str], shape: ModelShape, kind: str, amount: float | None
            ) -> dict[str, object]:
    notes = row.get("measured_from") or ""
    fixed: dict[str, object] = {}
    tp, pp, dp = _int(row, "tp"), _int(row, "pp"), _int(row, "dp")
    if tp is not None and pp is not None and dp is not None:
        fixed.update(tp=tp, pp=pp, dp=dp)
    ep = _int(row, "ep")
    if ep is not None:
        fixed["ep"] = ep
    adp = (row.get("attention_dp") or "").strip()
    if adp in ("yes", "no") and shape.is_moe:
        fixed["attention_dp"] = adp == "yes"
    ranks = _schedulers(fixed.get("attention_dp"), dp)
    inst = (tp or 1) * (pp or 1) * ranks
    # a cap per scheduler that cannot be placed is left out (the row's notes say so)
    per_scheduler = not _schedulers_unknown(fixed, shape)
    if amount and kind == "max_batch_per_instance":
        # an engine cap holds per scheduler, and with attention DP every rank runs its
        # own scheduler and KV cache (TensorRT-LLM attention DP; NVIDIA's MLPerf v5.1
        # DeepSeek-R1 configs capture CUDA graphs for 128-512 sequences under a
        # gpu_batch_size of 512, mlcommons/inference_results_v5.1
        # closed/NVIDIA/configs/B200-SXM-180GBx8/Offline/deepseek-r1.py)
        if per_scheduler:
            fixed["max_seqs"] = int(amount * ranks)
    elif amount and kind == "max_num_seqs":
        fixed["max_seqs"] = int(amount)
    elif amount and kind == "per_chip_batch":
        fixed["max_seqs"] = int(amount * inst)
    elif amount and kind == "tokens_per_chip_step":
        fixed["chunk_tokens"] = int(amount * inst)
    budget = TOKEN_BUDGET.search(notes)
    if budget and "chunk_tokens" not in fixed and per_scheduler:
        fixed["chunk_tokens"] = int(budget.group(1)) * ranks
    return fixed


def _objective(p: PreparedServing) -> str:
    return "goodput" if p.workload.slo_ttft_s or p.workload.slo_tpot_s else "throughput"


def published_plan(p: PreparedServing) -> ServingPlan | None:
    """The row's own layout (a disaggregated role with an equal other pool), or None
    when the row publishes none."""
    if p.role == "aggregated":
        return ServingPlan(**p.fixed) if "tp" in p.fixed else None  # type: ignore[arg-type]
    fixed = dict(p.fixed)
    dp = fixed.get("dp", 1)
    assert isinstance(dp, int)
    fixed["dp"] = dp * 2          # the other pool: as large
    return ServingPlan(**fixed, prefill_chips=p.chips)  # type: ignore[arg-type]


def predict_serving_row(p: PreparedServing, calibration: Calibration | None = None,
                        serving: ServingCalibration | None = None,
                        plan: ServingPlan | None = None
                        ) -> tuple[float | None, ServingEstimate, str]:
    """(predicted primary metric, the estimate, layout source) of a prepared row;
    ``plan`` replaces the search for a row without a published layout."""
    own = published_plan(p)
    source = "published" if own is not None else "searched"
    if own is None and plan is None:
        est = search_serving(p.workload, p.system, p.chips, p.fixed, _objective(p),
                             calibration, serving).best
    else:
        chosen = own or plan
        assert chosen is not None
        est = estimate_serving(p.workload, chosen, p.system, calibration, serving)
    return _metric(p, est), est, source


def _metric(p: PreparedServing, est: ServingEstimate) -> float | None:
    """The row's primary metric from the estimate (None when infeasible)."""
    if not est.feasible:
        return None
    if p.role == "prefill":
        return est.prefill_input_tokens_per_s_per_chip
    if p.role == "decode":
        return est.decode_output_tokens_per_s_per_chip
    if _objective(p) == "goodput" and est.slo_rate_per_s is not None:
        return est.slo_rate_per_s * p.workload.output_len / est.chips
    return est.output_tokens_per_s_per_chip

def _pct(pred: float | None, meas: float | None) -> float | None:
    if pred is None or meas is None or meas <= 0 or not math.isfinite(pred):
        return None
    return 100.0 * (pred - meas) / meas


def run_serving_validation(rows: Iterable[dict[str, str]], catalog: Catalog,
                           calibration: Calibration | None = None,
                           serving: ServingCalibration | None = None) -> list[ServingCase]:
    cases = []
    for row in rows:
        metric = (row.get("primary_metric") or "output").strip()
        measured = float(row[METRIC_COLUMN[metric]])
        experts = (row.get("moe_num_experts") or "").strip()
        base: dict[str, Any] = dict(
            case_id=row.get("case_id", "?"), source=source_group(row.get("source") or ""),
            chip=row.get("chip", "?"), model=row.get("model", "?"),
            scenario=row.get("scenario", "?"), metric=metric, measured=measured,
            confidence=row.get("confidence", ""),
            architecture="moe" if experts not in ("", "0") else "dense")
        try:
            prepared = prepare_serving_row(row, catalog)
            value, est, layout_source = predict_serving_row(prepared, calibration, serving)
        except (OcplanError, ValueError, KeyError) as exc:
            reason = "; ".join(p.line() for p in exc.problems) if isinstance(exc, SpecError) \
                else str(exc)
            cases.append(ServingCase(**base, predicted=None, error_pct=None, status="error",
                                     reason=reason))
            continue
        notes = "; ".join(prepared.notes + est.notes)
        if value is None:
            cases.append(ServingCase(**base, predicted=None, error_pct=None,
                                     status="infeasible", reason=est.reason,
                                     layout=est.plan.label(), layout_source=layout_source,
                                     notes=notes))
            continue
        tpot = _num(row, "tpot_ms")
        # A fixed-batch row's "TPOT" is its batch's end-to-end latency over the output
        # length (vLLM's benchmark_latency), its prefill included: compared with the
        # estimate's batch latency per output token, not with its TPOT (the decode alone).
        batch_latency_s = (prepared.workload.batch or 1) * prepared.workload.output_len \
            / est.output_tokens_per_s if est.output_tokens_per_s > 0 else None
        tpot_err = (_pct(batch_latency_s / prepared.workload.output_len / MS, tpot)
                    if row.get("scenario") == "fixed-batch" and batch_latency_s is not None
                    else None)
        cases.append(replace(ServingCase(**base, predicted=value,
                                         error_pct=_pct(value, measured), status="ok",
                                         reason=None, layout=est.plan.label(),
                                         layout_source=layout_source, notes=notes),
                             tpot_error_pct=tpot_err, likely_range_pct=est.held_out_range_pct))
    return cases
