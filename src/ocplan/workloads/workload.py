"""A training job: which model, how long its sequences, how big its batch, what precision."""

from __future__ import annotations

from dataclasses import dataclass

from ocplan.catalog.fields import MAX_GLOBAL_BATCH, MAX_SEQ_LEN
from ocplan.errors import Problem, SpecError
from ocplan.workloads.shape import ModelShape

__all__ = ["PRECISIONS", "Workload"]

#: GEMM input precisions the engine models (the catalog's peak_flops keys).
PRECISIONS = ("bf16", "fp16", "fp8", "int8")


@dataclass(frozen=True)
class Workload:
    """One optimizer step of pre-training: ``global_batch`` sequences of ``seq_len``."""

    model: ModelShape
    seq_len: int
    global_batch: int
    precision: str = "bf16"

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
        if problems:
            raise SpecError(problems)

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
