"""A serving job: which model, what requests, under what load and latency limits, in
what number formats.

The request mix is a mean input and output length with a named distribution; the load is
one of :data:`LOADS`; the formats of weights, GEMM activations and the KV cache are
separate (a W4A16 or an NVFP4 deployment is common). Nothing here knows hardware.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal, get_args

from ocplan.catalog.fields import MAX_SEQ_LEN
from ocplan.errors import Problem, SpecError
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import MAX_IMBALANCE

__all__ = ["ACTIVATION_PRECISIONS", "DEFAULT_INPUT_LEN", "DEFAULT_OUTPUT_LEN", "KV_PRECISIONS",
           "LENGTH_CLASS_EDGES", "LENGTH_DISTRIBUTIONS", "LOADS", "SLO_STATS", "WEIGHT_PRECISIONS",
           "ServingWorkload"]

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
#: ``concurrency``: a closed loop keeping ``concurrency`` requests in flight.
LOADS: tuple[str, ...] = get_args(Load)
LengthDistribution = Literal["fixed", "uniform", "exponential", "lognormal"]
LENGTH_DISTRIBUTIONS: tuple[str, ...] = get_args(LengthDistribution)
SloStat = Literal["mean", "p50", "p90", "p99"]
SLO_STATS: tuple[str, ...] = get_args(SloStat)
#: Weight formats (int4/fp4 as MXFP4/NVFP4 or AWQ/GPTQ-style group-quantized int4).
WEIGHT_PRECISIONS = ("bf16", "fp16", "fp8", "int8", "fp4", "int4")
#: GEMM activation formats (int4 activations are not a serving practice).
ACTIVATION_PRECISIONS = ("bf16", "fp16", "fp8", "int8", "fp4")
KV_PRECISIONS = ("bf16", "fp16", "fp8", "int8")
#: Most draft tokens per step of speculative decoding / multi-token prediction.
MAX_SPEC_TOKENS = 16


@dataclass(frozen=True)
class ServingWorkload:
    """Requests to serve with one model.

    Lengths are tokens (means; ``length_distribution`` names their spread); rates are
    requests/s; latency limits are seconds with their statistic ``slo_stat``.
    """

    model: ModelShape
    input_len: float
    output_len: float
    load: Load = "offline"
    rate_per_s: float | None = None
    concurrency: int | None = None
    batch: int | None = None
    """``static`` load: sequences in the batch."""
    requests: int | None = None
    """Requests of a finite offline run, timed to its last completion; None: an endless
    stream (steady state)."""
    length_distribution: LengthDistribution = "fixed"
    length_spread: float = 0.0
    """Uniform: half-width / mean; lognormal: sigma of the log."""
    slo_ttft_s: float | None = None
    slo_tpot_s: float | None = None
    slo_stat: SloStat = "p99"
    weight_precision: str = "bf16"
    activation_precision: str = "bf16"
    kv_precision: str = "bf16"
    prefix_hit: float = 0.0
    """Share of prompt tokens found in the prefix cache (not recomputed)."""
    spec_tokens: int = 0
    """Draft tokens proposed per decode step (speculative decoding, MTP); 0 = none."""
    spec_acceptance: float = 0.0
    """Probability each draft token is accepted (independent, Leviathan et al. 2023)."""
    moe_imbalance: float = 1.0
    """Tokens of the most loaded expert / the mean in one step."""

    def __post_init__(self) -> None:
        problems: list[Problem] = []

        def need(ok: bool, field: str, allowed: str) -> None:
            if not ok:
                problems.append(Problem("argument", field, allowed, getattr(self, field)))

        for f in ("input_len", "output_len"):
            v = getattr(self, f)
            need(isinstance(v, int | float) and 1 <= v <= MAX_SEQ_LEN, f,
                 f"must be a number of tokens from 1 to {MAX_SEQ_LEN:,}")
        need(self.load in LOADS, "load", "expected one of " + ", ".join(LOADS))
        need(self.load != "poisson" or (self.rate_per_s is not None and self.rate_per_s > 0),
             "rate_per_s", "must be > 0 requests/s with load poisson")
        need(self.load != "concurrency" or (self.concurrency or 0) >= 1, "concurrency",
             "must be a whole number >= 1 with load concurrency")
        need(self.load != "static" or (self.batch or 0) >= 1, "batch",
             "must be a whole number >= 1 with load static")
        # a load parameter of another load would be silently ignored: refuse it
        for f, load in (("rate_per_s", "poisson"), ("concurrency", "concurrency"),
                        ("batch", "static"), ("requests", "offline")):
            need(getattr(self, f) is None or self.load == load, f,
                 f"applies only with load {load} (the load is {self.load}): leave it out "
                 f"or set load {load}")
        need(self.requests is None or self.requests >= 1, "requests", "must be >= 1")
        need(self.length_distribution in LENGTH_DISTRIBUTIONS, "length_distribution",
             "expected one of " + ", ".join(LENGTH_DISTRIBUTIONS))
        need(0.0 <= self.length_spread <= 4.0, "length_spread", "must be from 0 to 4")
        for f in ("slo_ttft_s", "slo_tpot_s"):
            v = getattr(self, f)
            need(v is None or v > 0, f, "must be > 0 seconds (or none)")
        need(self.slo_stat in SLO_STATS, "slo_stat", "expected one of " + ", ".join(SLO_STATS))
        need(self.weight_precision in WEIGHT_PRECISIONS, "weight_precision",
             "expected one of " + ", ".join(WEIGHT_PRECISIONS))
        need(self.activation_precision in ACTIVATION_PRECISIONS, "activation_precision",
             "expected one of " + ", ".join(ACTIVATION_PRECISIONS))
        need(self.kv_precision in KV_PRECISIONS, "kv_precision",
             "expected one of " + ", ".join(KV_PRECISIONS))
        need(0.0 <= self.prefix_hit < 1.0, "prefix_hit", "must be from 0 to below 1")
        need(0 <= self.spec_tokens <= MAX_SPEC_TOKENS, "spec_tokens",
             f"must be a whole number from 0 to {MAX_SPEC_TOKENS}")
        need(0.0 <= self.spec_acceptance < 1.0, "spec_acceptance", "must be from 0 to below 1")
        # drafts never accepted only cost verification rows; an acceptance without drafts
        # would be ignored
        need(self.spec_tokens == 0 or self.spec_acceptance > 0.0, "spec_acceptance",
             f"must be above 0 with spec_tokens {self.spec_tokens} (draft tokens that are "
             "never accepted only add work): give the measured acceptance rate")
        need(self.spec_acceptance == 0.0 or self.spec_tokens >= 1, "spec_tokens",
             f"must be >= 1 with spec_acceptance {self.spec_acceptance} (an acceptance "
             "rate needs draft tokens to accept)")
        need(1.0 <= self.moe_imbalance <= MAX_IMBALANCE, "moe_imbalance",
             f"must be a number from 1 to {MAX_IMBALANCE:g}")
        if problems:
            raise SpecError(problems)

    @property
    def gemm_precision(self) -> str:
        """The format the GEMMs compute in: the activations' (weights in a narrower
        format are converted in the kernel; a 16-bit activation means a 16-bit GEMM)."""
        return self.activation_precision

    @property
    def tokens_per_step(self) -> float:
        """Output tokens a sequence gains per decode step: ``(1 - a^(k+1)) / (1 - a)``
        with ``k`` draft tokens accepted independently with probability ``a`` (Leviathan
        et al. 2023, eq. 1); 1 without speculation."""
        a, k = self.spec_acceptance, self.spec_tokens
        return 1.0 if k == 0 else (1.0 - a ** (k + 1)) / (1.0 - a)

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
