"""A serving job: which model, what requests, under what load and latency limits, in
what number formats.

The request mix is a mean input and output length with a named distribution; the load is
one of :data:`LOADS`; the formats of weights, GEMM activations and the KV cache are
separate (a W4A16 or an NVFP4 deployment is common). Nothing here knows hardware.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Annotated, Any, Literal, get_args, get_type_hints

from annotated_types import BaseMetadata, Ge, Gt, Le, Lt

from ocplan.catalog.fields import MAX_SEQ_LEN
from ocplan.catalog.schema import ActivationFormat, StateFormat, WeightFormat
from ocplan.errors import Problem, SpecError
from ocplan.workloads.operators import ATTENTION_FORMATS
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import MAX_IMBALANCE

__all__ = ["ACTIVATION_PRECISIONS", "ATTENTION_PRECISIONS", "DEFAULT_INPUT_LEN",
           "DEFAULT_OUTPUT_LEN", "KV_PRECISIONS", "LENGTH_CLASS_EDGES", "LENGTH_DISTRIBUTIONS",
           "LOADS", "SLO_STATS", "WEIGHT_PRECISIONS", "ServingFormats", "ServingWorkload"]

#: Prompt and answer tokens of a serving job that names none (CLI flags and API requests
#: alike; the engine's workload always names both): 1,024 prompt tokens, the random-dataset
#: default of the vLLM and SGLang serving benchmarks (``--random-input-len``), and a
#: 256-token answer, between those benchmarks' output defaults (128 and 1,024).
DEFAULT_INPUT_LEN = 1024
DEFAULT_OUTPUT_LEN = 256
#: Quantiles a length distribution is cut at where a model needs its shape, not only
#: its moments (the prompt a request brings to the prompt queue): even in the body,
#: finer in the tail, whose long prompts set a p99 latency.
LENGTH_CLASS_EDGES = (0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 0.95, 0.99, 0.999, 1.0)

Load = Literal["offline", "static", "poisson", "concurrency"]
#: ``offline``: every request queued at once, the engine batches as memory allows
#: (MLPerf Offline, ``trtllm-bench`` at an infinite rate); ``static``: one batch of
#: ``batch`` sequences run to completion together; ``poisson``: arrivals at ``rate_per_s``;
#: ``concurrency``: a closed loop keeping ``concurrency`` requests in flight (endless, or
#: ``requests`` of them started at once).
LOADS: tuple[str, ...] = get_args(Load)
LengthDistribution = Literal["fixed", "uniform", "exponential", "lognormal"]
#: The length distributions :attr:`ServingWorkload.length_spread` shapes.
SPREAD_DISTRIBUTIONS: tuple[str, ...] = ("uniform", "lognormal")
LENGTH_DISTRIBUTIONS: tuple[str, ...] = get_args(LengthDistribution)
SloStat = Literal["mean", "p50", "p90", "p99"]
SLO_STATS: tuple[str, ...] = get_args(SloStat)
#: Weight formats (declared with the catalog's released checkpoints).
WEIGHT_PRECISIONS: tuple[str, ...] = get_args(WeightFormat)
#: GEMM activation formats.
ACTIVATION_PRECISIONS: tuple[str, ...] = get_args(ActivationFormat)
KV_PRECISIONS = ("bf16", "fp16", "fp8", "int8")
#: Formats the prefill attention's matmuls run in (declared with the operators).
ATTENTION_PRECISIONS: tuple[str, ...] = ATTENTION_FORMATS
#: Formats of a hybrid model's cached recurrent state (declared with the catalog's mixer).
STATE_PRECISIONS: tuple[str, ...] = get_args(StateFormat)
#: Most draft tokens per step of speculative decoding / multi-token prediction.
MAX_SPEC_TOKENS = 16
#: Most layers a draft token runs through (a separate draft model of a tenth of a
#: 128-layer target is 13 layers' worth).
MAX_DRAFT_LAYERS = 64
#: Widest length spread: a lognormal sigma of 4 puts the mean at e^8 (about 3,000) times
#: the median; a uniform half-width of 4 x the mean would be negative lengths already.
MAX_LENGTH_SPREAD = 4.0

# The ranges of the numeric fields, declared once on their annotations: the workload
# checks them (``__post_init__``) and the API request publishes them (its JSON schema).
Tokens = Annotated[float, Ge(1), Le(MAX_SEQ_LEN)]
Positive = Annotated[float, Gt(0)]
AtLeastOne = Annotated[int, Ge(1)]
Share = Annotated[float, Ge(0.0), Lt(1.0)]
Spread = Annotated[float, Ge(0.0), Le(MAX_LENGTH_SPREAD)]
SpecTokens = Annotated[int, Ge(0), Le(MAX_SPEC_TOKENS)]
DraftLayers = Annotated[int, Ge(0), Le(MAX_DRAFT_LAYERS)]
Imbalance = Annotated[float, Ge(1.0), Le(MAX_IMBALANCE)]


@dataclass(frozen=True)
class ServingFormats:
    """The number formats a serving job runs in, each resolved from what the job gives
    and the model's released checkpoint (:class:`ServingWorkload`)."""

    weights: str
    expert_weights: str | None
    """The routed experts' weights; None for a dense model."""
    activations: str
    """The GEMM inputs."""
    kv: str
    released: bool
    """Whether a format the job left out is the released checkpoint's."""
    state: str | None = None
    """A hybrid model's cached recurrent state; None without a recurrent mixer."""
    attention: str = "bf16"
    """The prefill attention's matmuls (:attr:`ServingWorkload.attention_precision`)."""


#: The key under which a :class:`ServingWorkload` field's metadata holds its
#: :class:`Declared` (read by :func:`ocplan.workloads.options.serving_option_fields`).
DECLARED = "declared"


@dataclass(frozen=True)
class Declared:
    """What a client needs beside a serving field's type and bounds: its label and help,
    the choices of a text field, and the unit, flag and empty meaning where they differ
    from the obvious."""

    label: str
    help: str
    choices: tuple[str, ...] = ()
    unit: str | None = None
    """The unit the field's value is in (``requests/s``; ``s``); where it is the SI unit
    of a dimension ocplan reads (:data:`ocplan.units.DIMENSIONS`), a client may take
    the value in another unit of it (``--slo-ttft 450ms``)."""
    flag: str | None = None
    """The command-line name where it is not the field's (``rate`` for ``rate_per_s``)."""
    empty: str | None = None
    """What leaving an optional field out means (``as released``, ``no limit``)."""
    request_default: float | None = None
    """A request's value for a field the engine requires but a request may leave out."""


def _about(**about: Any) -> dict[str, Declared]:
    """A serving field's metadata: its :class:`Declared`."""
    return {DECLARED: Declared(**about)}


@dataclass(frozen=True)
class ServingWorkload:
    """Requests to serve with one model.

    Lengths are tokens (means; ``length_distribution`` names their spread); rates are
    requests/s; latency limits are seconds with their statistic ``slo_stat``.
    """

    model: ModelShape
    input_len: Tokens = field(metadata=_about(
        label="Input tokens", help="Prompt tokens per request (mean).",
        request_default=DEFAULT_INPUT_LEN))
    output_len: Tokens = field(metadata=_about(
        label="Output tokens", help="Generated tokens per request (mean).",
        request_default=DEFAULT_OUTPUT_LEN))
    load: Load = field(default="offline", metadata=_about(
        label="Load",
        help="offline (all queued at once), static (one batch run to completion), poisson "
             "(arrivals at the rate) or concurrency (a closed loop of that many requests in "
             "flight)."))
    rate_per_s: Positive | None = field(default=None, metadata=_about(
        label="Rate", unit="requests/s", flag="rate", empty="for poisson",
        help="Requests/s arriving with load poisson."))
    concurrency: AtLeastOne | None = field(default=None, metadata=_about(
        label="Concurrency", empty="for concurrency",
        help="Requests in flight with load concurrency."))
    batch: AtLeastOne | None = field(default=None, metadata=_about(
        label="Static batch", empty="for static",
        help="Sequences in the batch with load static."))
    requests: AtLeastOne | None = field(default=None, metadata=_about(
        label="Requests of a finite run", empty="endless",
        help="Requests of a finite run, timed to its last completion: load offline (vllm "
             "bench throughput --num-prompts, trtllm-bench's dataset size) or load "
             "concurrency started at once (vllm bench serve --num-prompts with "
             "--max-concurrency: the first requests arrive together); empty: an endless "
             "stream or loop (steady state)."))
    length_distribution: LengthDistribution = field(default="fixed", metadata=_about(
        label="Length distribution",
        help="How input and output lengths spread around their means (the spread of "
             "uniform and lognormal is the length spread)."))
    length_spread: Spread = field(default=0.0, metadata=_about(
        label="Length spread",
        help="Uniform: half-width over the mean; lognormal: sigma of the log."))
    slo_ttft_s: Positive | None = field(default=None, metadata=_about(
        label="TTFT limit", unit="s", flag="slo-ttft", empty="no limit",
        help="Time-to-first-token limit (e.g. 2s or 450ms)."))
    slo_tpot_s: Positive | None = field(default=None, metadata=_about(
        label="TPOT limit", unit="s", flag="slo-tpot", empty="no limit",
        help="Time-per-output-token limit (e.g. 40ms)."))
    slo_stat: SloStat = field(default="p99", metadata=_about(
        label="Latency statistic",
        help="Statistic the latency limits hold for."))
    weight_precision: str | None = field(default=None, metadata=_about(
        label="Weights", choices=WEIGHT_PRECISIONS, empty="as released",
        help="Format of the matrix weights; empty: the format the model's checkpoint is "
             "released in (its catalog entry's `released`), 16-bit where it gives none or "
             "quantizes only the experts."))
    expert_weight_precision: str | None = field(default=None, metadata=_about(
        label="Expert weights", choices=WEIGHT_PRECISIONS, empty="as weights",
        help="Format of the routed experts' weights (mixture-of-experts models: NVFP4 "
             "experts beside FP8 attention); empty: the weights' format when given, else "
             "the release's."))
    activation_precision: str | None = field(default=None, metadata=_about(
        label="Activations", choices=ACTIVATION_PRECISIONS, empty="as released",
        help="Format of the GEMM inputs; empty: the release's while its weights are "
             "served, else bf16."))
    kv_precision: str = field(default="bf16", metadata=_about(
        label="KV cache", choices=KV_PRECISIONS, help="Format of the KV cache."))
    attention_precision: str = field(default="bf16", metadata=_about(
        label="Attention", choices=ATTENTION_PRECISIONS,
        help="Format the prefill (context) attention's matmuls run in: fp8 needs an FP8 "
             "KV cache and runs QK^T and PV on the 8-bit units (TensorRT-LLM's FP8 "
             "context FMHA, on with an FP8 cache; FlashAttention-3 FP8 in vLLM and "
             "SGLang); bf16: the 16-bit path. A chip without 8-bit units runs it at 16 "
             "bits; decode attention, bound by the cache it reads, is timed at 16 bits."))
    state_precision: str | None = field(default=None, metadata=_about(
        label="Recurrent state", choices=STATE_PRECISIONS, empty="as released",
        help="Format a hybrid model's recurrent state is cached in (Mamba-2, Gated "
             "DeltaNet; vLLM --mamba-ssm-cache-dtype); empty: the release's (its catalog "
             "entry's linear_mixer.state_format)."))
    prefix_hit: Share = field(default=0.0, metadata=_about(
        label="Prefix-cache hits",
        help="Share of prompt tokens found in the prefix cache, a fraction from 0 to "
             "below 1 (0.3 = 30%); those are not recomputed."))
    spec_tokens: SpecTokens = field(default=0, metadata=_about(
        label="Draft tokens",
        help="Draft tokens proposed per decode step (speculative decoding, multi-token "
             "prediction); 0: none."))
    spec_acceptance: Share = field(default=0.0, metadata=_about(
        label="Draft acceptance",
        help="Probability each draft token is accepted, a fraction from 0 to below 1 "
             "(above 0 with draft tokens; independent draws, Leviathan et al. 2023)."))
    draft_layers: DraftLayers = field(default=1, metadata=_about(
        label="Draft layers",
        help="Layers of the model's own shape each draft token runs through before the LM "
             "head: 1 for multi-token prediction (DeepSeek-V3's MTP module is one "
             "transformer layer sharing the head) and one-layer draft heads (EAGLE), 0 for "
             "drafts that cost no model pass (n-gram, prompt lookup), a separate draft "
             "model's parameters over one layer's, rounded."))
    moe_imbalance: Imbalance = field(default=1.0, metadata=_about(
        label="MoE imbalance",
        help="Mixture-of-experts models: tokens of the most loaded expert over the mean in "
             "one step (1: balanced)."))

    def __post_init__(self) -> None:
        problems: list[Problem] = []

        def need(ok: bool, field: str, allowed: str) -> None:
            if not ok:
                problems.append(Problem("argument", field, allowed, getattr(self, field)))

        for f, bounds in FIELD_BOUNDS.items():
            v = getattr(self, f)
            need(v is None or (isinstance(v, int | float) and not isinstance(v, bool)
                               and all(_holds(b, v) for b in bounds)),
                 f, "must be " + bounds_words(bounds))
        need(self.load in LOADS, "load", "expected one of " + ", ".join(LOADS))
        need(self.load != "poisson" or self.rate_per_s is not None, "rate_per_s",
             "is required with load poisson (requests/s)")
        need(self.load != "concurrency" or self.concurrency is not None, "concurrency",
             "is required with load concurrency (requests in flight)")
        need(self.load != "static" or self.batch is not None, "batch",
             "is required with load static (sequences in the batch)")
        # a load parameter of another load would be silently ignored: refuse it
        for f, loads in (("rate_per_s", ("poisson",)), ("concurrency", ("concurrency",)),
                         ("batch", ("static",)), ("requests", ("offline", "concurrency"))):
            need(getattr(self, f) is None or self.load in loads, f,
                 f"applies only with load {' or '.join(loads)} (the load is {self.load}): "
                 f"leave it out or set load {loads[0]}")
        need(self.length_distribution in LENGTH_DISTRIBUTIONS, "length_distribution",
             "expected one of " + ", ".join(LENGTH_DISTRIBUTIONS))
        need(self.slo_stat in SLO_STATS, "slo_stat", "expected one of " + ", ".join(SLO_STATS))
        for f, allowed in (("weight_precision", WEIGHT_PRECISIONS),
                           ("expert_weight_precision", WEIGHT_PRECISIONS),
                           ("activation_precision", ACTIVATION_PRECISIONS)):
            need(getattr(self, f) in (None, *allowed), f, "expected one of "
                 + ", ".join(allowed) + " (or none: the model's released format)")
        need(self.expert_weight_precision is None or self.model.is_moe,
             "expert_weight_precision", "applies only to a mixture-of-experts model (this "
             "one is dense): give weight_precision")
        need(self.kv_precision in KV_PRECISIONS, "kv_precision",
             "expected one of " + ", ".join(KV_PRECISIONS))
        need(self.attention_precision in ATTENTION_PRECISIONS, "attention_precision",
             "expected one of " + ", ".join(ATTENTION_PRECISIONS))
        # the FP8 attention kernels take their K and V from an FP8 cache
        need(self.attention_precision != "fp8" or self.kv_precision == "fp8",
             "attention_precision", f"fp8 needs kv_precision fp8 (the FP8 attention "
             f"kernels read K and V from an FP8 cache; it is {self.kv_precision})")
        need(self.state_precision in (None, *STATE_PRECISIONS), "state_precision",
             "expected one of " + ", ".join(STATE_PRECISIONS)
             + " (or none: the model's released format)")
        need(self.state_precision is None or self.model.mixer is not None, "state_precision",
             "applies only to a hybrid model with a recurrent mixer (this one caches "
             "keys and values only): leave it out")
        # drafts never accepted only cost verification rows; an acceptance without drafts
        # would be ignored
        need(self.spec_tokens == 0 or self.spec_acceptance > 0.0, "spec_acceptance",
             f"must be above 0 with spec_tokens {self.spec_tokens} (draft tokens that are "
             "never accepted only add work): give the measured acceptance rate")
        need(self.spec_acceptance == 0.0 or self.spec_tokens >= 1, "spec_tokens",
             f"must be >= 1 with spec_acceptance {self.spec_acceptance} (an acceptance "
             "rate needs draft tokens to accept)")
        need(self.draft_layers == 1 or self.spec_tokens >= 1, "draft_layers",
             "applies only with spec_tokens >= 1 (it prices the draft tokens)")
        # a one-token answer comes from the prefill: no decode step to time or speculate
        need(self.decodes or self.slo_tpot_s is None, "slo_tpot_s",
             "needs output_len above 1 (a one-token answer has no time per output token; "
             "its latency is the TTFT)")
        need(self.decodes or self.spec_tokens == 0, "spec_tokens",
             "needs output_len above 1 (a one-token answer has no decode step to draft for)")
        # a spread or an imbalance the model would not use: refuse it, as a load's
        spread = self.length_distribution in SPREAD_DISTRIBUTIONS
        need(self.length_spread == 0.0 or spread, "length_spread",
             f"applies only with length_distribution {' or '.join(SPREAD_DISTRIBUTIONS)} "
             f"(fixed lengths have none, exponential ones their own; the distribution is "
             f"{self.length_distribution})")
        need(self.moe_imbalance == 1.0 or self.model.moe_experts > 0, "moe_imbalance",
             "applies only to a mixture-of-experts model (this one is dense): leave it "
             "out or 1")
        if problems:
            raise SpecError(problems)

    @property
    def weight_format(self) -> str:
        """Format of the matrix weights other than the routed experts':
        :attr:`weight_precision`, else the release's unless it quantizes only experts,
        else bf16."""
        if self.weight_precision is not None:
            return self.weight_precision
        release = self.model.released
        return "bf16" if release is None or release.experts_only else release.weights

    @property
    def expert_weight_format(self) -> str:
        """Format of the routed experts' weights: :attr:`expert_weight_precision`, else
        :attr:`weight_precision`, else the release's, else bf16."""
        given = self.expert_weight_precision or self.weight_precision
        if given is not None:
            return given
        return "bf16" if self.model.released is None else self.model.released.weights

    @property
    def state_format(self) -> str | None:
        """Format of the cached recurrent state: :attr:`state_precision`, else the
        release's (:attr:`MixerDims.state_format
        <ocplan.workloads.mixers.MixerDims>`); None without a recurrent mixer."""
        mixer = self.model.mixer
        return None if mixer is None else self.state_precision or mixer.state_format

    @property
    def gemm_precision(self) -> str:
        """The format the GEMMs compute in: the activations' (weights in a narrower
        format are converted in the kernel; a 16-bit activation means a 16-bit GEMM);
        not given, the release's while its weights are served, else bf16."""
        if self.activation_precision is not None:
            return self.activation_precision
        release = self.model.released
        as_released = self.weight_precision is None and self.expert_weight_precision is None
        return release.activations if release is not None and as_released else "bf16"

    @property
    def released_formats(self) -> bool:
        """Whether a format comes from the model's released checkpoint: one the job
        leaves out where the release names it."""
        release = self.model.released
        if release is None:
            return False
        as_released = self.weight_precision is None and self.expert_weight_precision is None
        return as_released or (self.weight_precision is None and not release.experts_only)

    @property
    def formats(self) -> ServingFormats:
        """Every format the job runs in, resolved."""
        return ServingFormats(self.weight_format,
                              self.expert_weight_format if self.model.is_moe else None,
                              self.gemm_precision, self.kv_precision, self.released_formats,
                              self.state_format, self.attention_precision)

    @property
    def tokens_per_step(self) -> float:
        """Output tokens a sequence gains per decode step: ``(1 - a^(k+1)) / (1 - a)``
        with ``k`` draft tokens accepted independently with probability ``a`` (Leviathan
        et al. 2023, eq. 1); 1 without speculation."""
        a, k = self.spec_acceptance, self.spec_tokens
        return 1.0 if k == 0 else (1.0 - a ** (k + 1)) / (1.0 - a)

    @property
    def finite_sequences(self) -> int | None:
        """Sequences of a run that ends, shared out over the instances: a static batch,
        a counted offline run; None for a stream (Poisson, an endless offline run) or a
        closed loop, which every instance serves alike."""
        if self.load == "static":
            return self.batch or 1
        return self.requests if self.load == "offline" else None

    @property
    def decodes(self) -> bool:
        """Whether an answer has tokens after the first: the prefill samples the first
        token, so a one-token answer (scoring, classification, a prefill benchmark) has
        no decode step and no TPOT."""
        return self.output_len > 1.0

    @property
    def draft_model_layers(self) -> int:
        """Layers of draft model the instance holds beside the target's:
        :attr:`draft_layers` when it speculates, else none (the field's default of 1
        prices a draft head only when there are draft tokens)."""
        return self.draft_layers if self.spec_tokens >= 1 else 0

    @property
    def verified_per_step(self) -> int:
        """Tokens a decoding sequence runs through the model per step: its ``k`` draft
        tokens and the one after them, scored in one pass whatever is accepted
        (Leviathan et al. 2023, §2.3); 1 without speculation. The step's GEMM rows, LM
        head rows and token budget count these, not the :attr:`tokens_per_step` kept."""
        return self.spec_tokens + 1

    @property
    def length_moment_factor(self) -> float:
        """``E[X^2] / E[X]^2`` of a length under the named distribution (``1 + cv^2``):
        fixed 1; uniform on ``m(1 +- s)`` ``1 + s^2/3``; exponential 2; lognormal with
        log-sigma ``s`` ``e^(s^2)``."""
        s = self.length_spread
        return {"fixed": 1.0, "uniform": 1.0 + s * s / 3.0, "exponential": 2.0,
                "lognormal": math.exp(s * s)}[self.length_distribution]

    @property
    def output_second_moment(self) -> float:
        """``E[O^2]`` of the output lengths, tokens^2 (:attr:`length_moment_factor`)."""
        return self.output_len * self.output_len * self.length_moment_factor

    def length_classes(self, edges: tuple[float, ...] = LENGTH_CLASS_EDGES
                       ) -> tuple[tuple[float, float], ...]:
        """The length distribution cut at the quantiles ``edges`` into classes: each
        class's mean length relative to the mean and its probability (one class for
        fixed lengths). A class's mean is the distribution's conditional mean between its
        quantiles ``a`` and ``b``: lognormal ``(Phi(z_b - s) - Phi(z_a - s)) / (b - a)``
        (``z`` the standard normal quantiles), exponential ``((1 + x_a) (1 - a) -
        (1 + x_b) (1 - b)) / (b - a)`` with ``x = -ln(1 - F)``, uniform the bin's
        middle."""
        if self.length_moment_factor == 1.0:
            return ((1.0, 1.0),)
        s = self.length_spread
        normal = NormalDist()
        out = []
        for a, b in itertools.pairwise(edges):
            if self.length_distribution == "lognormal":
                za = normal.inv_cdf(a) if a > 0 else -math.inf
                zb = normal.inv_cdf(b) if b < 1 else math.inf
                mean = (normal.cdf(zb - s) - normal.cdf(za - s)) / (b - a)
            elif self.length_distribution == "exponential":
                xa = -math.log1p(-a)
                tail = 0.0 if b >= 1 else (1.0 - math.log1p(-b)) * (1.0 - b)
                mean = ((1.0 + xa) * (1.0 - a) - tail) / (b - a)
            else:
                mean = 1.0 + s * (a + b - 1.0)
            out.append((mean, b - a))
        return tuple(out)

    @property
    def running_context(self) -> float:
        """Mean context of a sequence in the running batch, tokens: a request of ``O``
        output tokens spends ``O`` iterations there holding ``I + j`` tokens at its
        ``j``-th, so the batch's mean is ``I + E[O^2] / (2 E[O])`` (length-biased: long
        requests stay longer); ``I + O/2`` for fixed lengths."""
        return self.input_len + self.output_second_moment / (2.0 * self.output_len)

    @property
    def prefill_len(self) -> float:
        """Prompt tokens computed per request: the input less the prefix-cache hits."""
        return max(1.0, self.input_len * (1.0 - self.prefix_hit))


def _bounds_of(hint: object) -> tuple[BaseMetadata, ...]:
    """The ``Ge``/``Gt``/``Le``/``Lt`` bounds of a field's annotation (inside an
    optional's union too)."""
    for arg in (hint, *getattr(hint, "__args__", ())):
        found = tuple(m for m in getattr(arg, "__metadata__", ())
                      if isinstance(m, Ge | Gt | Le | Lt))
        if found:
            return found
    return ()


#: Each bounded numeric field of :class:`ServingWorkload` and its bounds, read once from
#: the annotations that declare them.
FIELD_BOUNDS: dict[str, tuple[BaseMetadata, ...]] = {
    name: bounds for name, hint in get_type_hints(ServingWorkload, include_extras=True).items()
    if (bounds := _bounds_of(hint))}


def bound_limit(bound: BaseMetadata) -> float:
    """The number a ``Ge``/``Gt``/``Le``/``Lt`` bound holds (its one attribute, named
    after it: ``Ge(1).ge``)."""
    value = getattr(bound, type(bound).__name__.lower())
    assert isinstance(value, int | float), bound
    return value


def _holds(bound: BaseMetadata, value: float) -> bool:
    limit = bound_limit(bound)
    if isinstance(bound, Ge):
        return value >= limit
    if isinstance(bound, Gt):
        return value > limit
    if isinstance(bound, Le):
        return value <= limit
    assert isinstance(bound, Lt), bound
    return value < limit


def bounds_words(bounds: tuple[BaseMetadata, ...]) -> str:
    """A field's range in words: ``from 1 to 16,777,216``, ``> 0``, ``from 0 to below 1``."""
    low = next((b for b in bounds if isinstance(b, Ge | Gt)), None)
    high = next((b for b in bounds if isinstance(b, Le | Lt)), None)

    def num(b: BaseMetadata) -> str:
        value = bound_limit(b)
        return f"{value:,}" if isinstance(value, int) else f"{value:g}"

    if low is not None and high is not None and isinstance(low, Ge):
        return f"from {num(low)} to {'below ' if isinstance(high, Lt) else ''}{num(high)}"
    parts = [f"{'>=' if isinstance(low, Ge) else '>'} {num(low)}" if low else "",
             f"{'<=' if isinstance(high, Le) else '<'} {num(high)}" if high else ""]
    return " and ".join(p for p in parts if p)
