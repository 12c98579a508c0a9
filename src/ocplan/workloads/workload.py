"""A training job: which model, how long its sequences, how big its batch, what precision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from ocplan.catalog.fields import MAX_GLOBAL_BATCH, MAX_SEQ_LEN
from ocplan.errors import Problem, SpecError
from ocplan.units import is_whole
from ocplan.workloads.operators import keys_per_query, windowed_layer_count
from ocplan.workloads.recipes import TrainingPrecision
from ocplan.workloads.shape import ModelShape

__all__ = ["EINSUM_NEEDS_CAPACITY", "MOE_DISPATCH", "OPTIMIZER_STATES", "PRECISIONS",
           "MoeDispatch", "OptimizerStates", "TrainingPrecision", "Workload"]

#: Training precisions (:data:`~ocplan.workloads.recipes.TrainingPrecision`, each with its
#: :class:`~ocplan.workloads.recipes.Recipe`).
PRECISIONS: tuple[str, ...] = get_args(TrainingPrecision)
#: The Adam optimizer-state recipes (the keys of :data:`OPTIMIZER_STATES`).
OptimizerStates = Literal["fp32", "bf16_moments", "bf16"]
#: Adam optimizer-state bytes per parameter by recipe: ``fp32`` keeps an fp32 master
#: copy, momentum and variance (12; ZeRO paper §3, Megatron, DeepSpeed, FSDP mixed
#: precision); ``bf16_moments`` the fp32 master with momentum and variance in BF16 (8;
#: DeepSeek-V3 technical report §3.3.3, "Low-Precision Optimizer States"; Megatron-LM
#: ``--use-precision-aware-optimizer --exp-avg-dtype bf16 --exp-avg-sq-dtype bf16``);
#: ``bf16`` keeps momentum and
#: variance in the 16-bit weight dtype and no master (4; MaxText with ``weight_dtype:
#: bfloat16``, whose ``mu_dtype`` inherits it).
OPTIMIZER_STATES: dict[str, float] = {"fp32": 12.0, "bf16_moments": 8.0, "bf16": 4.0}
assert set(OPTIMIZER_STATES) == set(get_args(OptimizerStates)), "OptimizerStates out of date"
#: Largest routing imbalance accepted (most loaded expert / mean).
MAX_IMBALANCE = 64.0
#: Capacity factors accepted (expert capacity / balanced load): from dropping nine
#: copies in ten to padding to 64 times the load.
MIN_CAPACITY_FACTOR, MAX_CAPACITY_FACTOR = 0.1, 64.0
#: How the MoE layers route token copies to their experts.
MoeDispatch = Literal["permute", "einsum"]
#: The routings and what each is: ``permute`` sorts each routed copy to its expert's
#: rows and back (Megatron-Core's dispatchers, DeepEP, MegaBlocks, MaxText's
#: ``sparse_matmul``); ``einsum`` multiplies the tokens by one-hot dispatch and combine
#: masks over a capacity dimension (GShard; MaxText's ``dense_matmul``, its training
#: path with a capacity factor), dense GEMMs whose work grows with the sequence.
MOE_DISPATCH: dict[str, str] = {
    "permute": "sort each routed token copy to its expert and back",
    "einsum": "one-hot dispatch and combine einsums over the capacity (GShard, MaxText "
              "dense_matmul); needs a capacity factor"}
assert set(MOE_DISPATCH) == set(get_args(MoeDispatch)), "MoeDispatch out of date"
#: Why the einsum dispatch needs a capacity factor (the workload's and the requests' one
#: rule, :class:`~ocplan.workloads.options.TrainingOptions`).
EINSUM_NEEDS_CAPACITY = ("einsum needs a capacity factor (moe_capacity_factor): its masks "
                         "have one slot per unit of capacity")


@dataclass(frozen=True)
class Workload:
    """One optimizer step of pre-training: ``global_batch`` sequences of ``seq_len``."""

    model: ModelShape
    seq_len: int
    global_batch: int
    precision: str = "bf16"
    optimizer_states: str = "fp32"
    """Adam state recipe, a key of :data:`OPTIMIZER_STATES`."""
    moe_capacity_factor: float | None = None
    """Expert capacity / mean load; token copies beyond it are dropped (GShard). None:
    dropless (Megatron-Core's default, MegaBlocks)."""
    moe_imbalance: float = 1.0
    """Tokens of the most loaded expert / the mean: 1.0 for force-balanced benchmarks;
    real routers with an auxiliary balancing loss run above it."""
    moe_dispatch: MoeDispatch = "permute"
    """How the MoE layers route token copies to experts (:data:`MOE_DISPATCH`)."""

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.model, ModelShape):
            problems.append(Problem("argument", "model", "expected a ModelShape "
                                    "(ModelShape.from_arch(catalog.model(id)))",
                                    type(self.model).__name__))
        if not is_whole(self.seq_len) or not 1 <= self.seq_len <= MAX_SEQ_LEN:
            problems.append(Problem("argument", "seq_len", f"must be a whole number from 1 "
                                    f"to {MAX_SEQ_LEN:,} tokens", self.seq_len))
        if not is_whole(self.global_batch) or not 1 <= self.global_batch <= MAX_GLOBAL_BATCH:
            problems.append(Problem("argument", "global_batch", f"must be a whole number "
                                    f"from 1 to {MAX_GLOBAL_BATCH:,} sequences",
                                    self.global_batch))
        if self.precision not in PRECISIONS:
            problems.append(Problem("argument", "precision", f"expected one of "
                                    f"{', '.join(PRECISIONS)}", self.precision))
        if self.optimizer_states not in OPTIMIZER_STATES:
            problems.append(Problem("argument", "optimizer_states", f"expected one of "
                                    f"{', '.join(OPTIMIZER_STATES)}", self.optimizer_states))
        cf = self.moe_capacity_factor
        if cf is not None and not (isinstance(cf, int | float)
                                   and MIN_CAPACITY_FACTOR <= cf <= MAX_CAPACITY_FACTOR):
            problems.append(Problem("argument", "moe_capacity_factor",
                                    f"must be a number from {MIN_CAPACITY_FACTOR:g} to "
                                    f"{MAX_CAPACITY_FACTOR:g} (or none: dropless)", cf))
        r = self.moe_imbalance
        if not (isinstance(r, int | float) and 1.0 <= r <= MAX_IMBALANCE):
            problems.append(Problem("argument", "moe_imbalance",
                                    f"must be a number from 1 to {MAX_IMBALANCE:g}", r))
        if self.moe_dispatch not in MOE_DISPATCH:
            problems.append(Problem("argument", "moe_dispatch",
                                    f"expected one of {', '.join(MOE_DISPATCH)}",
                                    self.moe_dispatch))
        elif self.moe_dispatch == "einsum" and cf is None:
            problems.append(Problem("argument", "moe_dispatch", EINSUM_NEEDS_CAPACITY,
                                    self.moe_dispatch))
        if problems:
            raise SpecError(problems)

    @property
    def optimizer_state_bytes(self) -> float:
        """Optimizer-state bytes per parameter of the recipe."""
        return OPTIMIZER_STATES[self.optimizer_states]

    @property
    def tokens_per_step(self) -> int:
        return self.seq_len * self.global_batch

    def attention_keys(self, causal: bool) -> float:
        """Keys per query summed over the layers: ``causal=False`` PaLM's full-matrix
        count (every key a layer can see: ``s``, or the window ``w`` of a sliding-window
        layer), ``causal=True`` the average a causal kernel visits
        (:func:`~ocplan.workloads.operators.keys_per_query`: ``s/2``, or ``w - w^2/2s``)."""
        m, s = self.model, float(self.seq_len)
        windowed = windowed_layer_count(m)
        full = float(keys_per_query(s, s, 0.0, causal))
        banded = float(keys_per_query(s, s, float(m.sliding_window), causal)) if windowed else 0.0
        return (m.n_attention_layers - windowed) * full + windowed * banded

    @property
    def model_flops_per_token(self) -> float:
        """Model FLOPs per trained token, PaLM appendix B (Chowdhery et al. 2022):
        ``6*N + 6*a*(d_qk + d_v)*K`` with N the active matmul parameters (LM head
        included, input embedding excluded) and ``K`` the keys per query summed over
        the layers, full matrix (:meth:`attention_keys`): ``L*s`` without sliding
        windows, the PaLM term 12*L*s*a*d for d_qk = d_v = d. The full (not
        causal-halved) score matrix is counted, as PaLM, Megatron-LM and the validation
        set's "6N+attn" route do, so a step dominated by causal attention can show an
        MFU above 1 (:attr:`mfu_ceiling`); a windowed layer counts its window, the keys
        the model can attend, not the sequence. A hybrid model's recurrent layers count
        ``3 x`` the FLOPs of their recurrence per token
        (:meth:`~ocplan.workloads.mixers.MixerLaw.step_flops`), as attention counts
        ``3 x`` its forward: the work the model defines, not its chunked kernel's. Multi-
        token prediction modules add theirs (:meth:`_mtp_flops_per_token`): trained with
        the model, they are its work too."""
        m = self.model
        attn = 6.0 * m.n_heads * (m.qk_dim + m.v_dim) * self.attention_keys(causal=False)
        return (6.0 * m.matmul_params_per_token + attn + self._mixer_flops_per_token(False)
                + self._mtp_flops_per_token(causal=False))

    def _mtp_flops_per_token(self, causal: bool) -> float:
        """Forward + backward FLOPs per token of the multi-token prediction modules
        (:attr:`~ocplan.workloads.shape.ModelShape.mtp_depth`): ``6 N_mtp`` over their
        matmul parameters, the output head counted again, plus one attention layer's
        score matrix each (full or ``causal``-halved, as the model's are counted; Megatron's
        model-FLOPs formula counts them the same way). 0 without modules."""
        m = self.model
        if not m.mtp_depth:
            return 0.0
        keys = float(keys_per_query(float(self.seq_len), float(self.seq_len), 0.0, causal))
        attn = 6.0 * m.n_heads * (m.qk_dim + m.v_dim) * keys * m.mtp_depth
        return 6.0 * m.mtp_matmul_params_per_token + attn

    def _mixer_flops_per_token(self, executed: bool) -> float:
        """Forward + backward FLOPs per token of a hybrid's recurrent cores, ``3 x`` the
        forward over its mixer layers: the recurrence (``executed=False``) or the chunked
        kernel that runs it."""
        mx = self.model.mixer
        if mx is None:
            return 0.0
        law = mx.law
        fwd = law.parallel_flops(mx) if executed else law.step_flops(mx)
        return 3.0 * self.model.n_mixer_layers * fwd

    @property
    def mfu_ceiling(self) -> float:
        """The largest MFU a chip running at its peak can show: model FLOPs
        (:attr:`model_flops_per_token`) over the fewest FLOPs a step must execute per
        token, causal attention (:meth:`attention_keys`) and, with a capacity factor,
        routed-expert GEMMs of the capacity's slots (every expert's input is padded to
        it: fewer copies than routed below 1, padding above). Just above 1 for a dense
        model at short sequence (Llama 3 70B at 4K tokens: 1.04), towards 2 where causal
        attention dominates and beyond where a capacity factor drops most token copies
        (PaLM's formula counts work the kernels skip)."""
        m = self.model
        cf = self.moe_capacity_factor
        routed = 6.0 * m.n_moe_layers * m.moe_top_k * m.expert_params
        dropped = routed * (1.0 - cf) if cf is not None else 0.0
        executed = (6.0 * m.matmul_params_per_token - dropped
                    + 6.0 * m.n_heads * (m.qk_dim + m.v_dim) * self.attention_keys(causal=True)
                    + self._mixer_flops_per_token(True) + self._mtp_flops_per_token(True))
        return self.model_flops_per_token / executed
