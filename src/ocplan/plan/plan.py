"""A parallel layout: how one training step is split across chips."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from ocplan.catalog.fields import MAX_CHIPS, MAX_GLOBAL_BATCH
from ocplan.errors import Infeasible, Problem, SpecError
from ocplan.workloads.workload import Workload

__all__ = ["RECOMPUTE", "Plan"]

Recompute = Literal["none", "selective", "full"]
RECOMPUTE: tuple[str, ...] = ("none", "selective", "full")


@dataclass(frozen=True)
class Plan:
    """Parallel sizes and memory options (Megatron-LM meanings).

    ``dp`` counts every data-parallel rank (ZeRO/FSDP-sharded ones included), so
    ``chips = tp * pp * dp * cp``; expert parallelism ``ep`` is carved out of the
    ``dp * cp`` ranks, as in Megatron-Core. ``micro_batch`` is sequences per
    data-parallel rank per micro-step; ``vpp`` the interleaved chunks per stage.
    """

    tp: int = 1
    pp: int = 1
    dp: int = 1
    cp: int = 1
    ep: int = 1
    vpp: int = 1
    micro_batch: int = 1
    zero: int = 1
    recompute: Recompute = "none"
    sequence_parallel: bool = True
    """Megatron sequence parallelism (only meaningful with tp > 1)."""
    offload: bool = False
    """Keep saved activations in host memory (MaxText/JAX offload remat policies)."""
    recompute_layers: int | None = None
    """With ``recompute="full"``: layers per stage recomputed (None = all of them)."""
    tp_overlap: bool = True
    """Overlap tensor-parallel communication with compute (the calibrated share)."""
    dp_overlap: bool = True
    """Overlap data-parallel gradient/parameter communication with compute."""
    shard_group: int | None = None
    """Hybrid sharding (HSDP): ZeRO shards within groups of this many data-parallel ranks
    (dp x cp) and replicates across groups; None shards over all of them."""

    def recompute_fraction(self, n_layers: int) -> float:
        """Fraction of a stage's layers recomputed in full."""
        if self.recompute != "full":
            return 0.0
        if self.recompute_layers is None:
            return 1.0
        per_stage = -(-n_layers // self.pp)
        return min(1.0, self.recompute_layers / per_stage)

    def __post_init__(self) -> None:
        problems = []
        for name in ("tp", "pp", "dp", "cp", "ep", "vpp", "micro_batch"):
            value = getattr(self, name)
            limit = MAX_GLOBAL_BATCH if name == "micro_batch" else MAX_CHIPS
            if isinstance(value, bool) or not isinstance(value, int) or not \
                    1 <= value <= limit:
                problems.append(Problem("argument", name, f"must be a whole number from 1 to "
                                                          f"{limit:,}", value))
        if self.zero not in (0, 1, 2, 3):
            problems.append(Problem("argument", "zero", "must be 0, 1, 2 or 3", self.zero))
        if self.shard_group is not None and (
                isinstance(self.shard_group, bool) or not isinstance(self.shard_group, int)
                or self.shard_group < 1):
            problems.append(Problem("argument", "shard_group", "must be a whole number >= 1",
                                    self.shard_group))
        if self.recompute_layers is not None and (
                isinstance(self.recompute_layers, bool)
                or not isinstance(self.recompute_layers, int) or self.recompute_layers < 0):
            problems.append(Problem("argument", "recompute_layers", "must be a whole number "
                                    ">= 0", self.recompute_layers))
        if self.recompute not in RECOMPUTE:
            problems.append(Problem("argument", "recompute",
                                    f"expected one of {', '.join(RECOMPUTE)}", self.recompute))
        if problems:
            raise SpecError(problems)

    @property
    def chips(self) -> int:
        return self.tp * self.pp * self.dp * self.cp

    @property
    def sp(self) -> bool:
        return self.sequence_parallel and self.tp > 1

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def micro_batches(self, workload: Workload) -> int:
        """Micro-batches per step per pipeline: ``global_batch / (dp * micro_batch)``."""
        return workload.global_batch // (self.dp * self.micro_batch)

    def check(self, workload: Workload) -> None:
        """Raise :class:`Infeasible` when the layout cannot run this workload."""
        m = workload.model
        if workload.global_batch % (self.dp * self.micro_batch):
            raise Infeasible("batch", f"global batch {workload.global_batch} is not a multiple "
                                      f"of dp x micro_batch = {self.dp * self.micro_batch}")
        if m.n_layers < self.pp * self.vpp:
            # Uneven stages are allowed (Megatron's first/last-stage layer counts); the
            # slowest stage then holds ceil(layers / pp) layers.
            raise Infeasible("divisibility", f"{m.n_layers} layers cannot fill "
                                             f"pp x vpp = {self.pp * self.vpp} chunks")
        kv_split = (m.n_kv_heads % self.tp == 0 if self.tp <= m.n_kv_heads
                    else self.tp % m.n_kv_heads == 0)  # tp > kv heads replicates K/V
        if m.n_heads % self.tp or not kv_split:
            raise Infeasible("divisibility", f"{m.n_heads} heads ({m.n_kv_heads} kv) do not "
                                             f"split over tp = {self.tp}")
        if workload.seq_len % (2 * self.cp) and self.cp > 1:
            raise Infeasible("divisibility", f"sequence {workload.seq_len} does not split into "
                                             f"2 x cp = {2 * self.cp} load-balanced chunks")
        if m.is_moe:
            if m.moe_experts % self.ep:
                raise Infeasible("divisibility", f"{m.moe_experts} experts do not split over "
                                                 f"ep = {self.ep}")
            if (self.dp * self.cp * self.tp) % self.ep:
                raise Infeasible("divisibility", f"ep = {self.ep} does not divide the "
                                                 f"tp x dp x cp = {self.dp * self.cp * self.tp}"
                                                 " ranks of a stage")
        elif self.ep != 1:
            raise Infeasible("divisibility", "ep > 1 needs a mixture-of-experts model")
        if self.shard_group is not None and (self.dp * self.cp) % self.shard_group:
            raise Infeasible("divisibility", f"shard group {self.shard_group} does not divide "
                                             f"dp x cp = {self.dp * self.cp}")
        if self.vpp > 1 and self.pp == 1:
            raise Infeasible("divisibility", "vpp > 1 needs pp > 1")
