"""A serving layout: how one model is split across chips to serve requests.

Declared field by field with :func:`~ocplan.plan.layout.layout_field`, the same
vocabulary as the training :class:`~ocplan.plan.plan.Plan`: the API request, the CLI
flags, the label and the search axes are derived from these declarations.

Meanings (vLLM / SGLang / TensorRT-LLM): one *instance* is ``tp x pp`` chips, or with
``attention_dp`` ``dp`` ranks of ``tp`` chips whose attention runs data-parallel while
their MoE layers run expert-parallel over ``ep`` of them; otherwise ``dp`` counts
independent replicas. ``ep`` is carved out of the ``tp x dp`` ranks of a stage.
Disaggregation (``prefill_chips``): that many of the chips run prompts only and hand the
KV cache to the rest, which only decode (DistServe, Zhong et al. OSDI 2024; Splitwise).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Literal

from ocplan.catalog.fields import MAX_CHIPS, MAX_GLOBAL_BATCH
from ocplan.errors import Infeasible, Problem, SpecError
from ocplan.plan.layout import (
    LayoutField,
    layout_field,
    layout_fields,
    layout_label,
    layout_problems,
)
from ocplan.workloads.shape import ModelShape

__all__ = ["ADMISSIONS", "DEFAULT_CHUNK_TOKENS", "SERVING_LAYOUT", "SERVING_LAYOUT_FIELDS",
           "Admission", "ServingPlan"]

#: Token budget per engine iteration by default: vLLM V1's ``max_num_batched_tokens``
#: for online serving on data-centre GPUs (8,192) and TensorRT-LLM's default
#: ``max_num_tokens`` (8,192).
DEFAULT_CHUNK_TOKENS = 8192
#: KV-cache admission policies (:attr:`ServingPlan.admission`).
Admission = Literal["refill", "reserve"]
ADMISSIONS: tuple[Admission, ...] = ("refill", "reserve")


@dataclass(frozen=True)
class ServingPlan:
    """Parallel sizes and scheduler limits of a serving deployment."""

    tp: int = layout_field(
        1, help="Tensor-parallel size of one model instance.", short="tp", low=1,
        high=MAX_CHIPS, always_label=True)
    pp: int = layout_field(
        1, help="Pipeline stages of one model instance.", short="pp", low=1, high=MAX_CHIPS,
        always_label=True)
    dp: int = layout_field(
        1, help="Replicas (or attention data-parallel ranks); a request gives the chips "
                "instead: dp = chips / (tp x pp).",
        short="dp", low=1, high=MAX_CHIPS, search="derived", requested=False,
        always_label=True)
    ep: int = layout_field(
        1, help="Expert-parallel size of the MoE layers, carved out of tp x dp.",
        short="ep", low=1, high=MAX_CHIPS, always_label=True)
    attention_dp: bool = layout_field(
        False, help="Attention data-parallel over the dp ranks, MoE expert-parallel over "
                    "them (DP attention).",
        short="adp", matters_with="dp")
    overlap: bool = layout_field(
        False, help="Two-batch overlap: split each iteration into two micro-batches so one's "
                    "MoE all-to-all and TP collectives run under the other's compute "
                    "(DeepSeek's inference system, SGLang --enable-two-batch-overlap).",
        short="tbo")
    max_seqs: int | None = layout_field(
        None, help="Sequences in flight per instance at most (vLLM max_num_seqs); default "
                   "as many as the KV cache holds.",
        short="max_seqs", low=1, high=MAX_GLOBAL_BATCH, search="fixed")
    chunk_tokens: int | None = layout_field(
        None, help="Token budget of one instance's iteration (chunked prefill, vLLM "
                   "max_num_batched_tokens); default 8,192 per scheduler (per "
                   "attention-DP rank).",
        short="chunk", low=1, high=1 << 20, search="fixed")
    memory_percent: int | None = layout_field(
        None, help="Percent of each chip's HBM the weights and KV cache may fill; the rest "
                   "is the engine's (workspace, activations, graphs). vLLM's "
                   "--gpu-memory-utilization 0.9 leaves about 85-88 after its activations; "
                   "default the reserve fitted to published results.",
        short="mem", low=1, high=100, search="fixed")
    admission: Admission = layout_field(
        "refill", help="How the engine admits a request to the KV cache: refill (as "
                       "vLLM, SGLang and TensorRT-LLM's MAX_UTILIZATION: when the cache "
                       "holds its prompt; the batch refills the cache as sequences grow "
                       "and finish) or reserve (TensorRT-LLM's default "
                       "GUARANTEED_NO_EVICT: only when the cache holds its prompt and "
                       "its whole output, so nothing is ever preempted).",
        short="admit", choices=ADMISSIONS, search="fixed")
    prefill_chips: int | None = layout_field(
        None, help="Disaggregated serving: chips of the prefill pool (the rest decode); "
                   "default aggregated.",
        short="prefill_chips", low=1, high=MAX_CHIPS)

    def __post_init__(self) -> None:
        problems = [Problem("argument", name, message, getattr(self, name))
                    for name, message in layout_problems(self, SERVING_LAYOUT_FIELDS)]
        if problems:
            raise SpecError(problems)

    @property
    def chips(self) -> int:
        return self.tp * self.pp * self.dp

    @property
    def instance_chips(self) -> int:
        """Chips of one model instance."""
        return self.tp * self.pp * (self.dp if self.attention_dp else 1)

    @property
    def token_budget(self) -> int:
        """Tokens one iteration of an instance carries at most: ``chunk_tokens``, else
        :data:`DEFAULT_CHUNK_TOKENS` per scheduler. With attention DP every rank runs its
        own scheduler and budget (TensorRT-LLM ``max_num_tokens`` per rank; SGLang DP
        ranks; vLLM data-parallel engines), so an instance of ``dp`` ranks carries ``dp``
        budgets, as its sequence cap holds ``dp`` caps."""
        if self.chunk_tokens is not None:
            return self.chunk_tokens
        return DEFAULT_CHUNK_TOKENS * (self.dp if self.attention_dp else 1)

    def reserve_fraction(self, fitted: float) -> float:
        """Share of a chip's HBM kept from the weights and KV cache: what
        :attr:`memory_percent` leaves, else ``fitted`` (the serving calibration's)."""
        return fitted if self.memory_percent is None else 1.0 - self.memory_percent / 100.0

    @property
    def instances(self) -> int:
        return self.chips // self.instance_chips

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def label(self) -> str:
        """The layout in one line (``tp=8, pp=1, dp=1, ep=1``, options when set)."""
        return layout_label(self, SERVING_LAYOUT_FIELDS)

    def check(self, model: ModelShape) -> None:
        """Raise :class:`Infeasible` when the layout cannot hold ``model``."""
        kv_split = (model.n_kv_heads % self.tp == 0 if self.tp <= model.n_kv_heads
                    else self.tp % model.n_kv_heads == 0)
        if model.n_heads % self.tp or not kv_split:
            raise Infeasible("divisibility", f"{model.n_heads} heads ({model.n_kv_heads} kv) "
                                             f"do not split over tp = {self.tp}")
        if model.mixer is not None and not model.mixer.splits(self.tp):
            raise Infeasible("divisibility", f"the recurrent mixer's {model.mixer.heads} heads "
                                             f"({model.mixer.key_heads} groups) do not split "
                                             f"over tp = {self.tp}")
        if model.n_layers < self.pp:
            raise Infeasible("divisibility", f"{model.n_layers} layers cannot fill "
                                             f"pp = {self.pp} stages")
        if self.attention_dp and not model.is_moe:
            raise Infeasible("divisibility", "attention_dp needs a mixture-of-experts model")
        if self.prefill_chips is not None:
            self._check_pools()
            for pool in self.pools():
                pool.check(model)
            return
        if model.is_moe:
            group = self.tp * (self.dp if self.attention_dp else 1)
            # ep need not divide the experts: with redundant experts (DeepSeek EPLB,
            # SGLang --ep-num-redundant-experts) each rank holds ceil(E / ep)
            if self.ep > model.moe_experts:
                raise Infeasible("divisibility", f"ep = {self.ep} exceeds the "
                                                 f"{model.moe_experts} experts")
            if group % self.ep:
                raise Infeasible("divisibility", f"ep = {self.ep} does not divide the "
                                                 f"{group} ranks of an instance stage")
        elif self.ep != 1:
            raise Infeasible("divisibility", "ep > 1 needs a mixture-of-experts model")

    def _check_pools(self) -> None:
        assert self.prefill_chips is not None
        stage = self.tp * self.pp
        decode = self.chips - self.prefill_chips
        if decode < 1 or self.prefill_chips % stage or decode % stage:
            raise Infeasible("divisibility", f"prefill_chips = {self.prefill_chips} and the "
                                             f"{max(decode, 0)} decode chips must both be "
                                             f"whole multiples of tp x pp = {stage}")

    def pools(self) -> tuple[ServingPlan, ServingPlan]:
        """(prefill pool, decode pool) of a disaggregated layout, each a layout of its
        own chips with this one's sizes (with DP attention each pool is one instance)."""
        assert self.prefill_chips is not None
        stage = self.tp * self.pp
        return (replace(self, dp=self.prefill_chips // stage, prefill_chips=None),
                replace(self, dp=(self.chips - self.prefill_chips) // stage,
                        prefill_chips=None))

    @property
    def etp(self) -> int:
        """Tensor-parallel size inside one expert group: the instance stage's ranks over
        ``ep`` (vLLM/SGLang split each expert over the ranks left over by EP)."""
        return self.tp * (self.dp if self.attention_dp else 1) // self.ep


SERVING_LAYOUT_FIELDS: tuple[LayoutField, ...] = layout_fields(ServingPlan)
SERVING_LAYOUT: dict[str, LayoutField] = {f.name: f for f in SERVING_LAYOUT_FIELDS}
#: The serving layout fields a request gives (``dp`` follows from the chips).
SERVING_REQUEST_LAYOUT: tuple[LayoutField, ...] = tuple(
    f for f in SERVING_LAYOUT_FIELDS if f.requested)
