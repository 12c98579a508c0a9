"""Predict published training runs and compare: the ``ocplan validate`` job.

Reads the canonical layout of ``../shared/validation/training_dev.csv`` (see its
README): model shape, chips, parallel layout and the measured tokens/s per chip. Each
row becomes a (workload, plan, system) triple; the system is the chip's default server
on the fabric the row names. A row that cannot be read or modelled is a case with status
``error`` and its reason, never skipped.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ocplan.catalog.catalog import Catalog
from ocplan.catalog.loader import read_text_file
from ocplan.catalog.schema import Baseboard, Fabric
from ocplan.catalog.system import ScaleOutSpec, System, system_for_chip
from ocplan.errors import OcplanError, Problem, SpecError
from ocplan.plan.calibration import Calibration, in_likely_range
from ocplan.plan.estimate import Estimate, estimate
from ocplan.plan.plan import Plan
from ocplan.plan.recompute import Stack, model_features, searched_modes, whole_layer_mode
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import MoeDispatch, Workload

__all__ = [
    "Case",
    "Scored",
    "Summary",
    "range_coverage",
    "read_cases",
    "read_csv_rows",
    "run_validation",
    "source_group",
    "summarize",
]

#: The column holding the measured throughput.
MEASURED = "measured_tokens_per_s_per_chip"
#: Smallest measured throughput read, tokens/s per chip: a thousandth of a token per
#: second is far below any training run (the slowest rows train hundreds per second),
#: and a positive value much closer to zero would make the relative error overflow.
MIN_MEASURED = 1e-3
REQUIRED = ("case_id", "model", "n_layers", "hidden_size", "n_heads", "mlp", "seq_len", "chip",
            "num_chips", "precision", "tp", "pp", "dp", "cp", "global_batch",
            "measured_tokens_per_s_per_chip")

#: Fabric id for a row's ``scale_out`` (protocol, per-NIC Gb/s).
FABRICS = {("IB", 200): "ib-hdr-200g", ("IB", 400): "ib-ndr-400g", ("IB", 800): "ib-xdr-800g",
           ("ROCE", 100): "roce-100g", ("ROCE", 200): "roce-200g", ("ROCE", 400): "roce-400g",
           ("ROCE", 800): "roce-800g", ("RDMA", 400): "roce-400g"}
#: Vocabulary assumed when a row leaves it empty (GPT-2 BPE padded to 51200 by Megatron).
DEFAULT_VOCAB = 51200


@dataclass(frozen=True)
class Case:
    case_id: str
    source: str
    chip: str
    model: str
    measured_tokens_per_s_per_chip: float
    predicted_tokens_per_s_per_chip: float | None
    error_pct: float | None
    status: str
    reason: str | None
    confidence: str = ""
    architecture: str = ""
    """``"dense"`` or ``"moe"`` (the row names routed experts)."""
    likely_range_pct: tuple[float, float] | None = None
    """The estimate's held-out error range (:attr:`~ocplan.plan.estimate.Estimate.
    held_out_range_pct`); None when not predicted or the calibration has none."""

    @property
    def within_likely_range(self) -> bool | None:
        """Whether the measurement fell in the estimate's likely range
        (:func:`~ocplan.plan.calibration.in_likely_range`)."""
        return in_likely_range(self.error_pct, self.likely_range_pct)

    def as_json(self) -> dict[str, object]:
        """The case as JSON: what the table form prints (chip, model) and groups by
        (source, architecture), the likely range as ``[low, high]`` or null."""
        keys = ("case_id", "chip", "model", "source", "architecture", "confidence",
                "measured_tokens_per_s_per_chip", "predicted_tokens_per_s_per_chip",
                "error_pct", "status", "reason")
        data = asdict(self)
        likely = None if self.likely_range_pct is None else list(self.likely_range_pct)
        return {k: data[k] for k in keys} | {"likely_range_pct": likely,
                                             "within_likely_range": self.within_likely_range}


class RangeJudged(Protocol):
    """A validated row that says whether its measurement fell in its estimate's likely
    range (training :class:`Case`, serving ``ServingCase``)."""

    @property
    def within_likely_range(self) -> bool | None: ...


def range_coverage(cases: Sequence[RangeJudged]) -> tuple[int, int]:
    """(rows measured within their estimate's likely range, rows with a prediction and a
    range): how often the stated range holds on a set of runs or serving results."""
    judged = [c.within_likely_range for c in cases if c.within_likely_range is not None]
    return sum(judged), len(judged)


@dataclass(frozen=True)
class Summary:
    """Error statistics over the predicted cases; ``None`` when no case was predicted."""

    n: int
    failed: int
    median_abs_error_pct: float | None
    p90_abs_error_pct: float | None
    max_abs_error_pct: float | None
    mean_signed_error_pct: float | None


def _int(row: dict[str, str], key: str, default: int | None = None, minimum: int = 0) -> int:
    """A whole-number column, at least ``minimum``; ValueError (a case error) if not."""
    text = (row.get(key) or "").strip()
    if not text:
        if default is None:
            raise ValueError(f"column '{key}' is empty")
        return default
    value = int(text)
    if value < minimum:
        raise ValueError(f"column '{key}' = {value} must be at least {minimum}")
    return value


#: DeepSeek-V2/V3 multi-head latent attention (DeepSeek-V2 paper, arXiv:2405.04434
#: §2.1 and Appendix; DeepSeek-V3 config.json): query/KV LoRA ranks, no-RoPE and RoPE
#: query/key widths, value width. The set's MLA rows keep ``n_kv_heads = n_heads`` and
#: name the ranks in ``measured_from``; these fill what a row's notes leave out.
DEEPSEEK_MLA = {"q": 1536, "kv": 512, "nope": 128, "rope": 64, "v": 128}
#: GPT-OSS alternates full attention with 128-token sliding-window layers (OpenAI,
#: "gpt-oss-120b & gpt-oss-20b Model Card", 2025, §2.1); the set's columns cannot
#: express it (README), its notes say it.
GPT_OSS_WINDOW = 128
#: Most loaded expert / mean under a real router trained with an auxiliary balancing
#: loss: a maximal violation ("MaxVio") of about 0.7 (Wang et al., "Auxiliary-Loss-Free
#: Load Balancing Strategy for Mixture-of-Experts", arXiv:2408.15664, Table 1,
#: loss-controlled baseline). Force-balanced benchmarks route at 1.0.
REAL_ROUTER_IMBALANCE = 1.7


#: A run whose framework is JAX (MaxText, PaxML): its activation recompute is XLA remat.
XLA_REMAT = re.compile(r"maxtext|\bjax\b|\bpaxml\b", re.IGNORECASE)
#: Notes naming the query/key/value projections among a remat policy's kept tensors.
KEEPS_QKV = re.compile(r"qkv_proj|q/k/v", re.IGNORECASE)
#: Notes saying a Primus run used none of Primus-Turbo's kernels ("no Primus-Turbo/DeepEP
#: features"): Primus' baseline MoE configs then set ``moe_use_legacy_grouped_gemm: true``
#: (AMD-AGI/Primus examples/moe_package/configs/MI355X/deepseek_v2-pretrain-baseline.yaml),
#: whose ROCm kernel runs one hipBLASLt GEMM per expert, read as the plan's
#: ``grouped_gemm`` off.
NO_PRIMUS_TURBO = re.compile(r"\b(?:no|without)\b[^;,]{0,40}\bPrimus-Turbo\b", re.IGNORECASE)
#: Sources whose runs attend with a portable FlashAttention-2-class kernel rather than the
#: chip's native fused one, read as the plan's ``native_attention`` off: torchtitan runs
#: PyTorch's ``scaled_dot_product_attention``, whose default on Hopper was the flash
#: backend (FlashAttention-2) from 2.5.1, when cuDNN attention was made opt-in
#: (pytorch/pytorch#138522), until the bundled cuDNN passed 9.15 in 2.11
#: (``check_prefer_cudnn_attention``, pytorch/pytorch#162073); its published benchmarks
#: (2024-12, 2025-06) predate that. MosaicML's llm-foundry benchmark tables ran MPT with
#: ``attn_impl: flash`` (``scripts/train/benchmarking/submit_benchmarks.py``: the default,
#: installed as ``.[gpu-flash2]``, flash-attn 2.4.2 on the ``pytorch:2.1.0_cu121`` image of
#: ``sweep.sh``), FlashAttention-2 on Hopper: the tables were last updated 2024-04-22,
#: before FlashAttention-3 (2024-07). On a chip whose native kernel is FlashAttention-2
#: (A100) the flag changes nothing.
PORTABLE_ATTENTION = re.compile(r"torchtitan|llm-foundry", re.IGNORECASE)
#: FlashAttention's arXiv identifier (Dao et al., "FlashAttention: Fast and
#: Memory-Efficient Exact Attention with IO-Awareness", arXiv:2205.14135, May 2022). A run
#: published in a paper that came out before it ran no fused attention kernel: Megatron-LM's
#: core attention was the unfused one (two batched GEMMs around a fused scale-mask-softmax
#: and dropout, ``CoreAttention``) until its ``--use-flash-attn`` option (2023), and
#: DeepSpeed's Megatron fork ran the same. Read as the plan's ``fused_attention`` off.
FLASH_ATTENTION_ARXIV = (2205, 14135)
#: An arXiv identifier (``arXiv:2104.04473``): year-month and number.
ARXIV_ID = re.compile(r"arXiv:\s*(\d{4})\.(\d{4,5})", re.IGNORECASE)
#: Notes saying a MoE run had no overlapped expert dispatch ("no Primus-Turbo/DeepEP
#: features", "without DeepEP"): the row's published configuration, read as the plan's
#: ``ep_overlap`` and ``ep_dedup`` off (no DeepEP: neither its node-deduplicated
#: dispatch nor an overlap of it). Runs whose notes say nothing keep the defaults (on).
NO_EP_OVERLAP = re.compile(r"\b(?:no|without)\b[^;,]{0,40}\bDeepEP\b|\bDeepEP\b (?:off|disabled)",
                           re.IGNORECASE)
#: Sources whose MoE recipes keep every expert whole (expert tensor-parallel size 1),
#: read as the plan's ``etp`` 1: Megatron-Bridge's performance presets set
#: ``expert_tensor_parallel_size=1`` in the base config of each MoE family
#: (``scripts/performance/configs/{deepseek,qwen}/*_workload_base_configs.py``:
#: ``BASE_DEEPSEEK_V3_CONFIG``, ``BASE_QWEN3_235B_A22B_CONFIG``, ...). Elsewhere an
#: unstated expert TP is Megatron-Core's default (tp) where the run could have used it.
MEGATRON_BRIDGE = re.compile(r"Megatron-Bridge", re.IGNORECASE)
WHOLE_EXPERTS = MEGATRON_BRIDGE
#: Sources whose runs reduce gradients in bf16, read as the plan's ``grad_reduce_bf16``:
#: every Megatron-Bridge performance config sets ``cfg.ddp.grad_reduce_in_fp32 = False``
#: (``scripts/performance/configs/{llama,deepseek,qwen,kimi,gpt_oss,nemotronh}/*.py``,
#: from v0.1.0rc3 to v0.4.0 = 26.04 and in today's ``perf_recipes``), the recipes its
#: performance tables are measured with.
BF16_GRAD_REDUCE = MEGATRON_BRIDGE
#: Recipe facts a row's notes may state in these words, whatever its source (the sweeps
#: built from published recipes write them; :func:`plan_from_row` reads them):
#: ``moe_grouped_gemm false`` (one GEMM kernel per local expert, Megatron-Core's
#: SequentialMLP: the plan's ``grouped_gemm`` off), ``gradients reduced in bf16``
#: (``grad_reduce_bf16``), ``NVTE_FUSED_ATTN=0`` (Transformer Engine's cuDNN fused
#: attention turned off, so it runs the flash-attn package's FlashAttention-2 kernel:
#: ``native_attention`` off), ``ETP n`` (the expert tensor-parallel size), and ``first
#: pipeline stage n layers`` / ``last pipeline stage n layers`` (Megatron-Core
#: ``num_layers_in_first/last_pipeline_stage``).
SEQUENTIAL_EXPERTS = re.compile(r"\bmoe_grouped_gemm:? false\b", re.IGNORECASE)
GRAD_REDUCE_BF16_NOTE = re.compile(r"\bgradients reduced in bf16\b", re.IGNORECASE)
FUSED_ATTENTION_OFF = re.compile(r"\bNVTE_FUSED_ATTN=0\b")
ETP_NOTE = re.compile(r"\bETP (\d+)\b")
STAGE_LAYERS_NOTE = {end: re.compile(rf"\b{end} pipeline stage (\d+) layers?\b",
                                     re.IGNORECASE) for end in ("first", "last")}
#: A run's local batch as its notes state it (``LBS n``: sequences per data-parallel
#: rank in one run of a PyTorch pipeline schedule, NeMo AutoModel's and torchtitan's
#: ``local_batch_size``), read as the plan's ``local_batch``: such a step of ``GA`` runs
#: fills and drains its pipeline ``GA`` times.
LOCAL_BATCH_NOTE = re.compile(r"\bLBS (\d+)\b")
#: The multi-token prediction modules a row's notes say the run trained
#: (``mtp_num_layers n``, Megatron-Core's option).
MTP_NOTE = re.compile(r"\bmtp_num_layers (\d+)\b")
#: The Megatron-Bridge release a row was measured with: the NeMo container its table
#: names ("'26.04.01 NeMo Container'").
MEGATRON_BRIDGE_RELEASE = re.compile(r"\b(\d{2}\.\d{2}(?:\.\d{2})?) NeMo Container")


def megatron_bridge_release(row: dict[str, str]) -> tuple[int, ...] | None:
    """The release of a Megatron-Bridge row as numbers (``(26, 4, 1)``), or None where
    the row is not Megatron-Bridge's or names no release."""
    source = row.get("source") or ""
    if not MEGATRON_BRIDGE.search(source):
        return None
    found = MEGATRON_BRIDGE_RELEASE.search(source)
    return tuple(int(part) for part in found.group(1).split(".")) if found else None


@dataclass(frozen=True)
class DispatchFact:
    """The token dispatcher a Megatron-Bridge performance recipe sets for a model on some
    systems, in a range of releases: ``fused`` for the ``flex`` dispatcher with a DeepEP
    or HybridEP backend (the plan's ``ep_dedup`` on), else Megatron-Core's ``alltoall``
    (``ep_dedup`` off). ``precision`` (the row's column) None: every precision;
    ``first`` / ``last`` None: no bound on the releases."""

    model: re.Pattern[str]
    chips: tuple[str, ...]
    fused: bool
    precision: str | None = None
    first: tuple[int, ...] | None = None
    last: tuple[int, ...] | None = None

    def holds_for(self, row: dict[str, str]) -> bool:
        if not (self.model.search(row.get("model") or "")
                and row.get("chip", "").strip() in self.chips):
            return False
        if self.precision is not None and row.get("precision", "").strip() != self.precision:
            return False
        if self.first is None and self.last is None:
            return True
        release = megatron_bridge_release(row)
        return release is not None and (self.first is None or release >= self.first) \
            and (self.last is None or release <= self.last)


_QWEN3_235B = re.compile(r"qwen3[_ -]?235b", re.IGNORECASE)
_GPT_OSS_120B = re.compile(r"gpt[_ -]?oss[_ -]?120b", re.IGNORECASE)
#: What Megatron-Bridge's performance recipes set as the expert token dispatcher, read at
#: the release tags (v0.3.1 = 26.02.01, v0.4.0 = 26.04, v0.4.2 = 26.04.01, v0.5.0 = 26.06,
#: v0.5.1 = 26.06.01; ``scripts/performance/configs/{qwen,gpt_oss}/``), the first fact
#: that holds for a row deciding; rows no fact covers keep the plan's default (fused).
#:
#: - Qwen3-235B-A22B: ``qwen3_235b_a22b_pretrain_config_{h100,b200}`` set
#:   ``moe_token_dispatcher_type = "alltoall"`` and their presets name no flex backend in
#:   every release read, where the GB200 and GB300 ones run ``flex`` with
#:   ``moe_flex_dispatcher_backend="hybridep"``. B300's ran ``alltoall`` to 26.04
#:   (v0.3.1-v0.4.1) and ``flex`` with HybridEP from 26.04.01 (NVIDIA-NeMo/Megatron-Bridge
#:   #3490, cherry-picked as #3675 into v0.4.2: "Use HybridEP flex dispatcher for Qwen3
#:   235B B300 perf configs"); the release table shows the step, 4,865 tokens/s per GPU in
#:   26.04 against 5,936 in 26.04.01 at one layout.
#: - GPT-OSS 120B (``gpt_oss_workload_base_configs.py``; the published rows, at global
#:   batch 1280, are the ``*_V2`` presets): ``gpt_oss_llm_pretrain.py`` calls
#:   ``apply_flex_dispatcher_backend`` only where the preset names a backend, else the
#:   model recipe's ``alltoall`` stands. B300's V2 preset names EP 8 with ``hybridep``
#:   from v0.4.0 to v0.5.1 (the tables' B300 rows run EP 8 from 26.02.01 on, EP 64 with
#:   the V1 preset's alltoall in 26.02, v0.3.0); B200's and
#:   GB200's named it in v0.4.0 (26.04) alone; GB200's and GB300's MXFP8 presets name it
#:   from v0.5.0 (26.06, GB300 at EP 16). Every other GPT-OSS preset names none.
DISPATCH_FACTS: tuple[DispatchFact, ...] = (
    DispatchFact(_QWEN3_235B, ("h100-sxm-80gb", "b200"), fused=False),
    DispatchFact(_QWEN3_235B, ("b300",), fused=False, last=(26, 4)),
    DispatchFact(_GPT_OSS_120B, ("b300",), fused=True, first=(26, 2, 1)),
    DispatchFact(_GPT_OSS_120B, ("b200", "gb200"), fused=True, first=(26, 4), last=(26, 4)),
    DispatchFact(_GPT_OSS_120B, ("gb200", "gb300"), fused=True, precision="fp8",
                 first=(26, 6)),
    DispatchFact(_GPT_OSS_120B, ("h100-sxm-80gb", "b200", "b300", "gb200", "gb300"),
                 fused=False),
)
#: Megatron-Bridge performance presets that recompute named modules, by model and chip,
#: read as the plan's recompute mode where the row records none: the GPT-OSS 120B
#: presets for GB200, B200 and H100 set ``recompute_modules=["layernorm", "moe_act"]``
#: (``gpt_oss_workload_base_configs.py``, ``*_BF16_V1``, v0.4.0 to v0.4.2), those for
#: GB300 and B300 none.
RECIPE_RECOMPUTE = ((_GPT_OSS_120B, ("h100-sxm-80gb", "b200", "gb200"), "norm_act"),)


#: Narayanan et al.'s SC'21 paper (arXiv:2104.04473), the source of its Table 1 runs.
SC21_ARXIV = (2104, 4473)
#: Micro-batch and layers per virtual pipeline stage (None: no interleaving) of those
#: runs, by (layers, hidden size), as the authors' script that reproduces the table sets
#: them (NVIDIA/Megatron-LM ``examples/sc21/run_table_1.sh``, today
#: ``examples/academic_paper_scripts/sc21/``: ``MBS`` and
#: ``--num-layers-per-virtual-pipeline-stage``); the paper's table states neither, and
#: an unstated micro-batch read as 1 costs the small models a GEMM wave (1.7B: 2048-row
#: GEMMs on 108 SMs).
SC21_TABLE1_SCRIPT: dict[tuple[int, int], tuple[int, int | None]] = {
    (24, 2304): (16, None), (30, 3072): (16, None), (36, 4096): (16, None),
    (40, 6144): (8, None), (48, 8192): (4, None), (60, 10240): (2, 5),
    (80, 12288): (2, 5), (96, 16384): (1, 3), (105, 20480): (1, 1), (128, 25600): (1, None)}


def script_batching(row: dict[str, str], shape: ModelShape, pp: int) -> tuple[int, int]:
    """(micro-batch, virtual stages) of a row of ``pp`` pipeline stages: its columns where
    stated, else the published script's (:data:`SC21_TABLE1_SCRIPT`) for the runs it
    reproduces (its layers a virtual stage only where they split the stages evenly), else
    (1, 1)."""
    script = SC21_TABLE1_SCRIPT.get((shape.n_layers, shape.hidden)) \
        if first_arxiv(row.get("source") or "") == SC21_ARXIV else None
    micro_default, per_chunk = script or (1, None)
    vpp_default = 1
    if per_chunk is not None and pp > 0 and shape.n_layers % (pp * per_chunk) == 0:
        vpp_default = shape.n_layers // (pp * per_chunk)
    return _int(row, "micro_batch", micro_default), _int(row, "vpp", vpp_default)


#: Megatron-Bridge rows that train DeepSeek-V3's multi-token prediction module: the
#: DeepSeek-V3 recipe sets ``mtp_num_layers = 1`` (``recipes/deepseek/deepseek_v3.py``,
#: from v0.1.0rc3 on) and the performance presets' pipeline layouts give it its place
#: (``...tmL``). The tables' model FLOPs per token say so: 1,298 TFLOP/s at 4,992 tokens/s
#: per GPU (GB300, 26.04.01) and 864 at 3,328 (B200) are 260 GFLOP a token, 338 at 1,297
#: (H100, 25.09) 261, where 25.11's rows labelled "w/o MTP" give 250 (1,088 at 4,357).
#: Rows whose model says "w/o MTP" train none.
MTP_TRAINED = re.compile(r"deepseek[_ -]?v3", re.IGNORECASE)
WITHOUT_MTP = re.compile(r"w/o MTP", re.IGNORECASE)
#: DeepSeek-V3's prediction depth (technical report §2.2, config.json
#: ``num_nextn_predict_layers``).
DEEPSEEK_MTP_DEPTH = 1


#: Megatron-Bridge presets that offload activations to the host, by model, chip and
#: recipe (``bf16``; ``fp8`` = FP8 current scaling, the FP8 rows whose notes do not say
#: MXFP8), read as the plan's ``offload`` with ``offload_layers``: Llama 3 70B's FSDP
#: presets set ``cpu_offloading_num_layers`` (``llama3_workload_base_configs.py``, the
#: same at v0.2.0 = 25.11, v0.3.1 and v0.4.2 = 26.04.01; ``set_recompute_overrides``
#: turns on ``cpu_offloading`` of activations, not weights): GB300 30 (BF16) and 20
#: (FP8), GB200 20 and 40, B200 5 (FP8). They run with FSDP, so rows without it are not
#: these presets.
OFFLOAD_LAYERS = ((re.compile(r"llama[_ -]?3[_ -]70b", re.IGNORECASE),
                   {("gb300", "bf16"): 30, ("gb300", "fp8"): 20, ("gb200", "bf16"): 20,
                    ("gb200", "fp8"): 40, ("b200", "fp8"): 5}),)
MXFP8 = re.compile(r"MXFP8")


def offload_layers(row: dict[str, str]) -> int | None:
    """Layers per stage a row's recipe offloads (:data:`OFFLOAD_LAYERS`), else None."""
    if not MEGATRON_BRIDGE.search(row.get("source") or "") \
            or (row.get("zero_stage") or "").strip() != "3":
        return None
    precision = (row.get("precision") or "").strip()
    if precision == "fp8" and MXFP8.search(_notes(row)):
        return None
    chip = (row.get("chip") or "").strip()
    return next((layers[(chip, precision)] for model, layers in OFFLOAD_LAYERS
                 if model.search(row.get("model") or "") and (chip, precision) in layers),
                None)


#: Megatron-Bridge's hand-written pipeline layouts for its two 61-layer MLA models, by
#: the number of model chunks ``pp x vpp``, in Megatron-Core's layout notation (``E``
#: embedding, ``t`` a layer, ``m`` an MTP module, ``L`` the loss, ``|`` between chunks;
#: chunk ``i`` runs on stage ``i mod pp``). DeepSeek-V3:
#: ``set_deepseek_v3_pipeline_model_parallel_layout`` (recipes/deepseek/deepseek_v3.py,
#: the same from v0.2.0 = 25.11 to v0.5.1 = 26.06.01) maps (pp, vpp) (4, 1) to 4 chunks,
#: (8, 1) and (4, 2) to 8, (16, 1), (8, 2) and (4, 4) to 16, each 4 layers but the last
#: (1 layer, the module and the loss); the GB300 and B200 MXFP8 presets name the 16-chunk
#: string at PP2 VP8 and PP8 VP2, the H100 preset a 32-chunk one at PP8 VP4
#: (scripts/performance/configs/deepseek/deepseek_workload_base_configs.py). Kimi-K2
#: (``_get_kimi_k2_pipeline_layout``, recipes/kimi/kimi_k2.py, v0.3.1 to v0.5.1): the
#: same chunks with the loss alone at the end, (2, 8) among the 16-chunk ones, and its
#: H100 preset's 32 chunks at PP16 VP2. The stage split they give is the plan's
#: first and last stage layers (:func:`pipeline_layout_stages`).
LAYOUT_STRING_MODELS = re.compile(r"deepseek[_ -]?v3|kimi[_ -]?k2", re.IGNORECASE)
PIPELINE_LAYOUTS = {4: "Et*16|t*16|t*16|t*13", 8: "Et*8|(t*8|)*6t*5",
                    16: "Et*4|(t*4|)*14t", 32: "Et|(tt|)*30"}


def _expand_layout(text: str, i: int = 0) -> tuple[str, int]:
    """``text`` from ``i`` with its ``x*N`` and ``(...)*N`` repeats written out, up to
    its end or the ``)`` closing a group; and where it stopped."""
    out = []
    while i < len(text) and text[i] != ")":
        if text[i] == "(":
            item, i = _expand_layout(text, i + 1)
            assert text[i] == ")", f"unclosed group in layout {text!r}"
        else:
            item = text[i]
        i += 1
        count = re.match(r"\*(\d+)", text[i:])
        if count:
            item *= int(count.group(1))
            i += count.end()
        out.append(item)
    return "".join(out), i


def pipeline_layout_stages(layout: str, pp: int) -> tuple[int, int]:
    """(first stage's, last stage's) transformer layers of a Megatron-Core pipeline
    layout (``Et*4|(t*4|)*14tmL``) over ``pp`` stages: chunk ``i`` of ``|``-separated
    chunks runs on stage ``i mod pp``, each ``t`` a layer."""
    expanded, end = _expand_layout(layout)
    assert end == len(layout), f"unbalanced layout {layout!r}"
    chunks = expanded.split("|")
    assert len(chunks) % pp == 0, f"layout {layout!r}: {len(chunks)} chunks over pp {pp}"
    per_stage = [sum(c.count("t") for c in chunks[s::pp]) for s in range(pp)]
    return per_stage[0], per_stage[-1]


#: NeMo Automodel's own split (``generate_hf_model_fqn_per_model_part`` and the "loop"
#: ``stage_ids_this_rank`` of nemo_automodel/components/distributed/pipelining): the L
#: layers over the ``pp x vpp`` virtual stages by ``divmod``, the first ``L mod (pp
#: vpp)`` of them one layer more, and rank ``r`` runs virtual stages ``r, r + pp, ...``
#: (:func:`automodel_stage_layers`).
AUTOMODEL = re.compile(r"NeMo/Automodel", re.IGNORECASE)


def automodel_stage_layers(n_layers: int, pp: int, vpp: int) -> tuple[int, int]:
    """(first, last) stage layers of NeMo Automodel's split (:data:`AUTOMODEL`): 61
    layers over PP 4 x VP 8 give virtual stages of 2 layers but the last three of 1, so
    the first rank holds 16 and the last 15."""
    chunks = pp * vpp
    base, extra = divmod(n_layers, chunks)

    def held(rank: int) -> int:
        return sum(base + (v < extra) for v in range(rank, chunks, pp))

    return held(0), held(pp - 1)


def recipe_stage_layers(row: dict[str, str], n_layers: int, pp: int,
                        vpp: int) -> tuple[int, int] | None:
    """(first, last) stage layers of a row whose software splits the layers its own
    uneven way: as its notes state them (:data:`STAGE_LAYERS_NOTE`), NeMo Automodel's
    (:func:`automodel_stage_layers`, where the layers do not fill the virtual stages
    evenly) or a Megatron-Bridge recipe that writes its
    layout (:data:`PIPELINE_LAYOUTS`; a row of another depth, a reduced-layer variant of
    the model, is not that recipe's); else None."""
    stated = [STAGE_LAYERS_NOTE[end].search(_notes(row)) for end in ("first", "last")]
    if pp > 1 and stated[0] and stated[1]:
        return int(stated[0].group(1)), int(stated[1].group(1))
    if pp > 1 and n_layers % (pp * vpp) and AUTOMODEL.search(row.get("source") or ""):
        return automodel_stage_layers(n_layers, pp, vpp)
    layout = PIPELINE_LAYOUTS.get(pp * vpp)
    if (layout is None or pp == 1 or not MEGATRON_BRIDGE.search(row.get("source") or "")
            or not LAYOUT_STRING_MODELS.search(row.get("model") or "")
            or _expand_layout(layout)[0].count("t") != n_layers):
        return None
    return pipeline_layout_stages(layout, pp)


def mtp_depth(row: dict[str, str]) -> int:
    """Multi-token prediction modules a row's run trained: as its notes state
    (:data:`MTP_NOTE`), else :data:`MTP_TRAINED`."""
    stated = MTP_NOTE.search(_notes(row))
    if stated:
        return int(stated.group(1))
    model = row.get("model") or ""
    trained = MEGATRON_BRIDGE.search(row.get("source") or "") and MTP_TRAINED.search(model) \
        and not WITHOUT_MTP.search(model)
    return DEEPSEEK_MTP_DEPTH if trained else 0


def alltoall_dispatch(row: dict[str, str]) -> bool:
    """Whether a row's published recipe dispatches experts with a plain all-to-all: the
    first of :data:`DISPATCH_FACTS` that holds for it says so."""
    if not MEGATRON_BRIDGE.search(row.get("source") or ""):
        return False
    return next((not fact.fused for fact in DISPATCH_FACTS if fact.holds_for(row)), False)


def recipe_recompute(row: dict[str, str]) -> str | None:
    """The recompute mode a row's published recipe sets (:data:`RECIPE_RECOMPUTE`) when
    the row records none, else None."""
    if (row.get("recompute") or "").strip() or not MEGATRON_BRIDGE.search(
            row.get("source") or ""):
        return None
    return next((mode for model, chips, mode in RECIPE_RECOMPUTE
                 if model.search(row.get("model") or "")
                 and row.get("chip", "").strip() in chips), None)


def _notes(row: dict[str, str]) -> str:
    return row.get("measured_from") or ""


def _mla(notes: str) -> dict[str, int]:
    """MLA fields named in a row's notes (DeepSeek's values for those not named), or none
    when the notes do not say MLA."""
    if not re.search(r"\bMLA\b|kv_lora", notes):
        return {}
    kv = re.search(r"kv_lora(?:_rank)?\s+(\d+)", notes)
    q = re.search(r"(?<!k)q_lora(?:_rank)?\s+(\d+)", notes)
    no_q = re.search(r"without q-lora", notes)
    return {"mla_q_rank": 0 if no_q else int(q.group(1)) if q else DEEPSEEK_MLA["q"],
            "mla_kv_rank": int(kv.group(1)) if kv else DEEPSEEK_MLA["kv"],
            "mla_nope_dim": DEEPSEEK_MLA["nope"], "mla_rope_dim": DEEPSEEK_MLA["rope"],
            "mla_v_dim": DEEPSEEK_MLA["v"]}


def _window(row: dict[str, str]) -> dict[str, int]:
    """Alternating sliding-window attention named in the notes (GPT-OSS)."""
    notes = _notes(row)
    m = re.search(r"(\d+)-token sliding-window", notes)
    if m:
        return {"sliding_window": int(m.group(1)), "full_attention_every": 2}
    if "gpt-oss" in row["model"].lower() and "sliding-window" in notes:
        return {"sliding_window": GPT_OSS_WINDOW, "full_attention_every": 2}
    return {}


def moe_routing(row: dict[str, str]) -> tuple[float | None, float]:
    """(capacity factor, routing imbalance) of a MoE row: the capacity factor its notes
    name (else dropless), and :data:`REAL_ROUTER_IMBALANCE` for the rows the README says
    train with the real router (MindSpeed-LLM's Ascend rows, or notes saying "real
    routing"), else 1.0 (force-balanced or synthetic routing)."""
    notes = _notes(row)
    cf = re.search(r"capacity[_ -]factor\s+(\d+(?:\.\d+)?)", notes)
    real = "real rout" in notes or "MindSpeed" in (row.get("source") or "")
    experts = _int(row, "moe_num_experts", 0)
    return (float(cf.group(1)) if cf and experts else None,
            REAL_ROUTER_IMBALANCE if real and experts else 1.0)


#: Notes naming MaxText's dense MoE path (``dense_matmul``, ``sparse_matmul: False``).
DENSE_MATMUL = re.compile(r"\bdense_matmul\b")


def moe_dispatch(row: dict[str, str], capacity_factor: float | None) -> MoeDispatch:
    """How a MoE row routes: ``einsum`` where it has a capacity factor and runs MaxText's
    dense path (its notes say ``dense_matmul``, or a JAX run, :data:`XLA_REMAT`, whose
    capacity factor selects that path in training: ``RoutedMoE`` calls ``dense_matmul``
    unless ``sparse_matmul``, and drops tokens only there), else ``permute``."""
    if capacity_factor is None:
        return "permute"
    einsum = DENSE_MATMUL.search(_notes(row)) or row_stack(row) == "xla"
    return "einsum" if einsum else "permute"


#: Models whose MaxText GPU configuration sets ``weight_dtype: bfloat16`` (AMD-AGI/
#: maxtext-slurm ``configs/deepseek3-671b.gpu.yml`` and ``configs/kimi-k2-1t.gpu.yml``,
#: both "Dtypes: dtype bfloat16, weight_dtype bfloat16"); MaxText's own ``base.yml``
#: default is float32, which the TPU rows keep.
MAXTEXT_BF16_WEIGHTS = re.compile(r"DeepSeek|Kimi", re.IGNORECASE)


def optimizer_states(row: dict[str, str]) -> str:
    """Adam state recipe of a row: ``bf16`` for MaxText runs of the models in
    :data:`MAXTEXT_BF16_WEIGHTS` (moments inherit the weight dtype and there is no fp32
    master; MaxText ``base.yml``), else the fp32 master + moments of mixed precision."""
    model = row["model"]
    return "bf16" if "MaxText" in model and MAXTEXT_BF16_WEIGHTS.search(model) else "fp32"


def shape_from_row(row: dict[str, str]) -> ModelShape:
    """The model shape of a validation row, with the MLA and sliding-window fields its
    notes name and the prediction modules its recipe trains (the columns cannot carry
    them)."""
    hidden, heads = _int(row, "hidden_size", minimum=1), _int(row, "n_heads", minimum=1)
    experts = _int(row, "moe_num_experts", 0)
    extra: dict[str, Any] = {**_mla(_notes(row)), **_window(row),  # ints, by name
                             "mtp_depth": mtp_depth(row)}
    return replace(ModelShape(
        name=row["model"],
        n_layers=_int(row, "n_layers"),
        hidden=hidden,
        n_heads=heads,
        n_kv_heads=_int(row, "n_kv_heads", heads),
        head_dim=_int(row, "head_dim", hidden // heads),
        ffn=_int(row, "ffn_hidden", 0),
        mlp_mats=3 if row["mlp"].strip() == "swiglu" else 2,
        vocab=_int(row, "vocab_size", DEFAULT_VOCAB),
        moe_experts=experts,
        moe_top_k=_int(row, "moe_top_k", 0),
        moe_ffn=_int(row, "moe_expert_ffn", 0),
        moe_shared=_int(row, "moe_shared_experts", 0),
        moe_layer_freq=_int(row, "moe_layer_freq", 1),
        moe_first_dense=_int(row, "moe_first_dense_layers", 0),
        dropout=row["mlp"].strip() == "gelu",
    ), **extra)


def row_stack(row: dict[str, str]) -> Stack:
    """The software stack of a row's run: XLA for a JAX run (:data:`XLA_REMAT`), else
    PyTorch (:mod:`ocplan.plan.recompute`)."""
    return "xla" if XLA_REMAT.search(f"{row.get('source') or ''} "
                                     f"{row.get('measured_from') or ''}") else "torch"


def row_recompute(row: dict[str, str]) -> tuple[str, bool]:
    """(recompute mode, offload) of a row. The file records ``none``, ``selective`` or
    ``full`` (its README: TPU remat policies other than full as selective); a JAX run
    (:data:`XLA_REMAT`) recomputes XLA-style (:mod:`ocplan.plan.recompute`), so its
    ``full`` is ``full_xla``, and a policy recorded as selective that offloads to the
    host keeps its layer inputs there (MaxText ``custom`` policies always keep
    ``decoder_layer_input``) and recomputes the rest: ``qkv_xla`` where the notes name
    the Q/K/V projections among the kept tensors, else ``full_xla``."""
    recompute = (row.get("recompute") or "").strip() or recipe_recompute(row) or "none"
    notes = row.get("measured_from") or ""
    offload = "offload" in notes or offload_layers(row) is not None
    if row_stack(row) != "xla":
        return recompute, offload
    if recompute == "full" or (recompute == "selective" and offload):
        return ("qkv_xla" if KEEPS_QKV.search(notes) else "full_xla"), offload
    return recompute, offload


def plan_from_row(row: dict[str, str], shape: ModelShape) -> Plan:
    tp = _int(row, "tp")
    dp = _int(row, "dp")
    recompute, offload = row_recompute(row)
    notes = row.get("measured_from") or ""
    sp_text = (row.get("sequence_parallel") or "").strip()
    # Unstated SP: Megatron/NeMo recipes turn it on with TP (the README's inference rule).
    sp = sp_text == "yes" or (sp_text == "" and tp > 1)
    zero = _int(row, "zero_stage", 1)
    pp = _int(row, "pp")
    micro, vpp = script_batching(row, shape, pp)
    cp, ep = _int(row, "cp"), _int(row, "ep", 1)
    # Expert TP is not a column: as the notes state it (ETP_NOTE), else 1 for recipes
    # that keep experts whole (WHOLE_EXPERTS), else Megatron-Core's default (tp) where the
    # run could have used it, else 1 (the expert group must divide a stage's ranks).
    whole = shape.is_moe and bool(WHOLE_EXPERTS.search(row.get("source") or ""))
    etp = 1 if whole or (ep * tp > 0 and (tp * dp * cp) % (ep * tp)) else None
    stated_etp = ETP_NOTE.search(notes) if shape.is_moe else None
    if stated_etp:
        etp = int(stated_etp.group(1))
    first, last = recipe_stage_layers(row, shape.n_layers, pp, vpp) or (None, None)
    local = LOCAL_BATCH_NOTE.search(notes)
    return Plan(tp=tp, pp=pp, dp=dp, cp=cp, ep=ep, etp=etp,
                vpp=vpp, micro_batch=micro, zero=zero,
                local_batch=int(local.group(1)) if local and pp > 1 else None,
                ends_as_layers=first is None and ends_in_split(shape.n_layers, pp, vpp,
                                                               shape.mtp_depth),
                first_stage_layers=first, last_stage_layers=last,
                recompute=recompute,  # type: ignore[arg-type]
                sequence_parallel=sp, offload=offload, offload_layers=offload_layers(row),
                ep_overlap=not NO_EP_OVERLAP.search(notes),
                ep_dedup=not (NO_EP_OVERLAP.search(notes) or alltoall_dispatch(row)),
                grouped_gemm=not (NO_PRIMUS_TURBO.search(notes)
                                  or SEQUENTIAL_EXPERTS.search(notes)),
                grad_reduce_bf16=bool(BF16_GRAD_REDUCE.search(row.get("source") or "")
                                      or GRAD_REDUCE_BF16_NOTE.search(notes)),
                native_attention=not (PORTABLE_ATTENTION.search(row.get("source") or "")
                                      or FUSED_ATTENTION_OFF.search(notes)),
                fused_attention=not predates_flash_attention(row.get("source") or ""))


def predates_flash_attention(source: str) -> bool:
    """Whether the paper a row's source cites first (its first arXiv identifier) came
    out before FlashAttention (:data:`FLASH_ATTENTION_ARXIV`): its runs attended with
    an unfused core. A source without an arXiv identifier says nothing either way."""
    first = first_arxiv(source)
    return first is not None and first < FLASH_ATTENTION_ARXIV


def first_arxiv(source: str) -> tuple[int, int] | None:
    """The first arXiv identifier a source cites, as (year-month, number), or None."""
    found = ARXIV_ID.search(source)
    return None if found is None else (int(found.group(1)), int(found.group(2)))


def ends_in_split(n_layers: int, pp: int, vpp: int, mtp: int = 0) -> bool:
    """Whether a run's pipeline split must have counted the embedding and the loss as
    layers: its layers do not fill the ``pp x vpp`` chunks evenly and two more do.
    Megatron-Core splits layers evenly unless told otherwise, and the two published
    ways to do it for such models are these: Megatron-Bridge's Llama 3.1 405B and
    Qwen3-235B-A22B recipes set ``account_for_embedding_in_pipeline_split`` and
    ``account_for_loss_in_pipeline_split`` (126 + 2 = 128 and 94 + 2 = 96 places), and
    Llama 3 (Dubey et al. 2024, §3.3.2) takes one layer off the first and the last stage
    for the same reason. ``mtp`` multi-token prediction modules take a place each
    beside the loss (Megatron-Bridge's DeepSeek-V3 layouts: ``Et*4|(t*4|)*14tmL``, 61 + 3
    places in 16 chunks)."""
    chunks = pp * vpp
    return pp > 1 and n_layers % chunks != 0 and (n_layers + 2 + mtp) % chunks == 0


def _hybrid_group(plan: Plan, domain: int) -> int | None:
    """The sharding group of a row whose notes say ZeRO-3 is hybrid ("sharded within a
    node/slice group"): the data-parallel ranks inside one scale-up domain; None when
    that is all of them (hybrid sharding over one group is plain sharding)."""
    ranks = plan.dp * plan.cp
    group = max(1, min(ranks, domain // plan.tp))
    while ranks % group:
        group -= 1
    return None if group >= ranks else group


def system_from_row(row: dict[str, str], catalog: Catalog) -> System:
    """The chip's default server, enough of them, on the fabric the row names."""
    chip = row["chip"].strip()
    n = _int(row, "num_chips", minimum=1)
    acc = catalog.accelerator(chip, "csv", "chip")
    scale_out = None
    match = re.search(r"(\d+)x(\d+)G-(IB|RoCE|RDMA)", row.get("scale_out") or "")
    fabric_id = FABRICS.get((match[3].upper(), int(match[2]))) if match else None
    if match and acc.default_server and fabric_id in catalog.entries["fabric"]:
        server = catalog.server(acc.default_server)
        per_server = server.accelerators or catalog.get(Baseboard, server.baseboard).slots
        per_node = _int(row, "chips_per_node", per_server, minimum=1)
        fabric = catalog.get(Fabric, fabric_id or "")
        scale_out = ScaleOutSpec(fabric=fabric.id, nic=None if server.nics else fabric.nic,
                                 nics_per_server=int(match[1]) * max(1, per_server // per_node))
    return system_for_chip(catalog, chip, n, "csv", scale_out=scale_out,
                           name=f"{row['case_id']}: {n} x {chip}")


#: Largest validation CSV read: the development sets are under 100 kB; 16 MiB holds
#: tens of thousands of rows and parses in about a second.
MAX_CSV_BYTES = 16 * 2**20


RowCheck = Callable[[str, int, dict[str, str]], Problem | None]


def csv_header(path: Path) -> list[str]:
    """The header of a CSV file; empty when it cannot be read (the readers say why)."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def read_csv_rows(path: Path, required: Sequence[str], check: RowCheck) -> list[dict[str, str]]:
    """Rows of a validation CSV with the ``required`` columns; SpecError when the file or
    its header is wrong, when it has no rows, or naming every row ``check`` (source,
    line, row) refuses."""
    text = read_text_file(path, MAX_CSV_BYTES, "CSV file")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise SpecError.one(str(path), "header", f"missing columns: {', '.join(missing)}")
        rows = list(reader)
    except csv.Error as exc:
        raise SpecError.one(str(path), "", f"cannot read CSV: {exc}") from None
    if not rows:  # nothing to predict is not a result of n = 0
        raise SpecError.one(str(path), "", "no rows: expected at least one row under the "
                                           "header")
    problems = [p for n, row in enumerate(rows, start=2)
                if (p := check(str(path), n, row)) is not None]
    if problems:
        raise SpecError(problems)
    return rows


def read_cases(path: Path) -> list[dict[str, str]]:
    """Rows of a training validation CSV; SpecError when the file, its header or a
    measured value is wrong (every bad measured value is named, with its row and column)."""
    return read_csv_rows(path, REQUIRED, _measured_problem)


def _measured_problem(source: str, line: int, row: dict[str, str]) -> Problem | None:
    """The problem with a row's measured value, if any: it must be a positive, finite
    number (a throughput)."""
    text = (row.get(MEASURED) or "").strip()
    where = f"line {line} ({row.get('case_id') or '?'}).{MEASURED}"
    try:
        value = float(text)
    except ValueError:
        return Problem(source, where, "expected a positive number of tokens/s per chip",
                       text)
    if not math.isfinite(value) or value < MIN_MEASURED:
        return Problem(source, where, f"expected a positive, finite number of tokens/s per "
                                      f"chip (at least {MIN_MEASURED:g})", text)
    return None


@dataclass(frozen=True)
class Prepared:
    """A row turned into model inputs (reused across calibration evaluations)."""

    workload: Workload
    plan: Plan
    system: System
    recompute_stated: bool
    stack: Stack = "torch"
    """The run's software stack: which whole-layer recompute an unstated one means."""


def prepare_row(row: dict[str, str], catalog: Catalog) -> Prepared:
    shape = shape_from_row(row)
    cf, imbalance = moe_routing(row)
    workload = Workload(shape, _int(row, "seq_len"), _int(row, "global_batch"),
                        row["precision"].strip(), optimizer_states=optimizer_states(row),
                        moe_capacity_factor=cf,
                        moe_imbalance=imbalance, moe_dispatch=moe_dispatch(row, cf))
    plan = plan_from_row(row, shape)
    system = system_from_row(row, catalog)
    if "hybrid" in (row.get("measured_from") or ""):
        plan = replace(plan, shard_group=_hybrid_group(plan, system.chips_per_server))
    # A recipe's recompute is where the estimate starts, not a statement of the run: a
    # release whose preset differed (and did not fit with it) still gets the fitting rule.
    return Prepared(workload, plan, system, bool((row.get("recompute") or "").strip()),
                    row_stack(row))


def predict_prepared(p: Prepared, calibration: Calibration | None = None) -> Estimate:
    result = estimate(p.workload, p.plan, p.system, calibration)
    if p.recompute_stated or result.feasible:
        return result
    # Recompute not stated: what a recipe tuned to fit would run, the fastest of the
    # module modes the search tries on this model (Megatron-Core's --recompute-modules:
    # the DeepSeek-V3 recipes' mla_up_proj) and the fewest layers per stage recomputed
    # whole (Megatron's --recompute-num-layers) the way the run's stack does.
    model = p.workload.model
    tried = [estimate(p.workload, replace(p.plan, recompute=m.name), p.system, calibration)
             for m in searched_modes(p.stack, model_features(model))
             if m.modules]
    whole = whole_layer_mode(p.stack).name
    full = estimate(p.workload, replace(p.plan, recompute=whole), p.system, calibration)
    # the layers a whole-layer mode leaves alone keep every activation (a recipe's module
    # mode, where the plan started from one, is not kept beside it)
    kept = result if p.plan.recompute == "none" else estimate(
        p.workload, replace(p.plan, recompute="none"), p.system, calibration)
    if full.feasible and kept.memory is not None and full.memory is not None:
        # Memory is linear in the number of recomputed layers: one interpolation.
        per_stage = p.plan.stage_split(model.n_layers, model.mtp_depth)[1]
        excess = kept.memory.total_bytes - kept.memory.capacity_bytes
        saved_per_layer = (kept.memory.total_bytes - full.memory.total_bytes) / per_stage
        layers = min(per_stage, math.ceil(excess / saved_per_layer))
        full = estimate(p.workload, replace(p.plan, recompute=whole, recompute_layers=layers),
                        p.system, calibration)
    fits = [e for e in (*tried, full) if e.feasible and e.step_s is not None]
    return min(fits, key=lambda e: e.step_s or math.inf) if fits else full


def predict_row(row: dict[str, str], catalog: Catalog,
                calibration: Calibration | None = None) -> tuple[Estimate, Workload]:
    prepared = prepare_row(row, catalog)
    return predict_prepared(prepared, calibration), prepared.workload


def run_validation(rows: Iterable[dict[str, str]], catalog: Catalog,
                   calibration: Calibration | None = None) -> list[Case]:
    cases = []
    for row in rows:
        measured = float(row[MEASURED])  # checked by read_cases
        base: dict[str, Any] = dict(
            case_id=row.get("case_id", "?"),
            source=source_group(row.get("source") or ""),
            chip=row.get("chip", "?"), model=row.get("model", "?"),
            measured_tokens_per_s_per_chip=measured, confidence=row.get("confidence", ""),
            architecture=_architecture(row))
        try:
            est, _ = predict_row(row, catalog, calibration)
        except (OcplanError, ValueError, KeyError) as exc:
            reason = "; ".join(p.line() for p in exc.problems) if isinstance(exc, SpecError) \
                else str(exc)
            cases.append(Case(**base, predicted_tokens_per_s_per_chip=None, error_pct=None,
                              status="error", reason=reason))
            continue
        if not est.feasible:
            cases.append(Case(**base, predicted_tokens_per_s_per_chip=None, error_pct=None,
                              status="infeasible", reason=est.reason))
            continue
        pred = est.tokens_per_s_per_chip
        cases.append(Case(**base, predicted_tokens_per_s_per_chip=pred,
                          error_pct=100.0 * (pred - measured) / measured, status="ok",
                          reason=None, likely_range_pct=est.held_out_range_pct))
    return cases


def source_group(citation: str) -> str:
    """The publication a row's ``source`` cites, for grouping (errors by source,
    leave-one-source-out validation): the repository (``owner/repo``) when the citation
    starts with one, the authors up to "et al.", else its first four words. The table or
    log key after `` | `` and the details after a comma are dropped."""
    text = citation.split(" | ")[0].strip()
    if not text:
        return "?"
    first = text.split()[0]
    if "/" in first:
        return first
    if "et al." in text:
        return text[: text.index("et al.") + len("et al.")]
    return " ".join(text.split(",")[0].split()[:4])


def _architecture(row: dict[str, str]) -> str:
    """``"moe"`` when the row names routed experts, else ``"dense"``."""
    experts = (row.get("moe_num_experts") or "").strip()
    return "moe" if experts not in ("", "0") else "dense"


class Scored(Protocol):
    """A predicted case of any validation set (training runs, serving results)."""

    @property
    def error_pct(self) -> float | None: ...

    @property
    def status(self) -> str: ...


def summarize(cases: Sequence[Scored]) -> Summary:
    errs = np.array([c.error_pct for c in cases if c.error_pct is not None], dtype=float)
    failed = sum(c.status != "ok" for c in cases)
    if errs.size == 0:  # nothing predicted: no error statistic exists
        return Summary(len(cases), failed, None, None, None, None)
    abs_e = np.abs(errs)
    return Summary(len(cases), failed, float(np.median(abs_e)), float(np.percentile(abs_e, 90)),
                   float(abs_e.max()), float(errs.mean()))
