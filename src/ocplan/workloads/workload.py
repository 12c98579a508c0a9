"""A training job: which model, how long its sequences, how big its batch, what precision."""

from __future__ import annotations

from dataclasses import dataclass

from ocplan.catalog.fields import MAX_GLOBAL_BATCH, MAX_SEQ_LEN
from ocplan.errors import Problem, SpecError
from ocplan.workloads.shape import ModelShape

__all__ = ["OPTIMIZER_STATES", "PRECISIONS", "Workload"]

#: GEMM input precisions the engine models (the catalog's peak_flops keys).
PRECISIONS = ("bf16", "fp16", "fp8", "int8")
#: Adam optimizer-state bytes per parameter by recipe: ``fp32`` keeps an fp32 master
#: copy, momentum and variance (12; ZeRO paper §3, Megatron, DeepSpeed, FSDP mixed
#: precision); ``bf16`` keeps momentum and variance in the 16-bit weight dtype and no
#: master (4; MaxText with ``weight_dtype: bfloat16``, whose ``mu_dtype`` inherits it).
OPTIMIZER_STATES: dict[str, float] = {"fp32": 12.0, "bf16": 4.0}
#: Largest routing imbalance accepted (most loaded expert / mean).
MAX_IMBALANCE = 64.0


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

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.seq_len <= MAX_SEQ_LEN:
            problems.append(Problem("argument", "seq_len", f"must be between 1 and "
                                    f"{MAX_SEQ_LEN:,} tokens", self.seq_len))
        if not 1 <= self.global_batch <= MAX_GLOBAL_BATCH:
            problems.append(Problem("argument", "global_batch", f"must be between 1 and "
                                    f"{MAX_GLOBAL_BATCH:,} sequences", self.global_batch))
        if self.precision not in PRECISIONS:
            problems.append(Problem("argument", "precision", f"expected one of "
                                    f"{', '.join(PRECISIONS)}", self.precision))
        if self.optimizer_states not in OPTIMIZER_STATES:
            problems.append(Problem("argument", "optimizer_states", f"expected one of "
                                    f"{', '.join(OPTIMIZER_STATES)}", self.optimizer_states))
        cf = self.moe_capacity_factor
        if cf is not None and not (isinstance(cf, int | float) and 0.1 <= cf <= 64.0):
            problems.append(Problem("argument", "moe_capacity_factor",
                                    "must be a number from 0.1 to 64 (or none: dropless)", cf))
        r = self.moe_imbalance
        if not (isinstance(r, int | float) and 1.0 <= r <= MAX_IMBALANCE):
            problems.append(Problem("argument", "moe_imbalance",
                                    f"must be a number from 1 to {MAX_IMBALANCE:g}", r))
        if problems:
            raise SpecError(problems)

    @property
    def optimizer_state_bytes(self) -> float:
        """Optimizer-state bytes per parameter of the recipe."""
        return OPTIMIZER_STATES[self.optimizer_states]

    @property
    def tokens_per_step(self) -> int:
        return self.seq_len * self.global_batch

    @property
    def model_flops_per_token(self) -> float:
        """Model FLOPs per trained token, PaLM appendix B (Chowdhery et al. 2022):
        ``6*N + 6*L*s*a*(d_qk + d_v)`` with N the active matmul parameters (LM head
        included, input embedding excluded); the attention term, 12*L*s*a*d for
        d_qk = d_v = d, counts the full (not causal-halved) score matrix, as the
        validation set's "6N+attn" route does."""
        m = self.model
        attn = 6.0 * m.n_layers * self.seq_len * m.n_heads * (m.qk_dim + m.v_dim)
        return 6.0 * m.matmul_params_per_token + attn
