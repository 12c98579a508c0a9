"""A parallel layout: how one training step is split across chips.

Every layout field is declared here once, with :func:`~ocplan.plan.layout.layout_field`;
validation, encoding into search columns, the API request, the CLI flags, the web form
and the label are all derived from the declarations (:data:`LAYOUT_FIELDS`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from ocplan.catalog.fields import MAX_CHIPS, MAX_GLOBAL_BATCH, MAX_LAYERS
from ocplan.costmodel.roofline import FloatArray
from ocplan.errors import Infeasible, Problem, SpecError
from ocplan.plan.layout import (
    LayoutField,
    LayoutValue,
    layout_changes,
    layout_field,
    layout_fields,
    layout_label,
    layout_problems,
)
from ocplan.plan.pipeline_schedules import PIPELINE_SCHEDULES, PpSchedule, schedule, unmet
from ocplan.plan.recompute import (
    FEATURE_NAMES,
    RECOMPUTE_MODES,
    Recompute,
    mode,
    model_features,
)
from ocplan.workloads.workload import Workload

__all__ = ["LAYOUT", "LAYOUT_FIELDS", "PIN_HELP", "PP_SCHEDULES", "RECOMPUTE", "RECOMPUTE_AUTO",
           "SEARCH_FIXED_LAYOUT",
           "SEARCH_GIVEN_LAYOUT", "SEARCH_PINNABLE_LAYOUT",
           "LayoutField", "Plan", "StageSplit", "end_credit", "split_places", "stage_layers",
           "stage_split"]

#: The recompute choices, from their declarations (:mod:`ocplan.plan.recompute`).
RECOMPUTE: tuple[str, ...] = tuple(m.name for m in RECOMPUTE_MODES)
#: The pipeline schedules, from their declarations (:mod:`ocplan.plan.pipeline_schedules`).
PP_SCHEDULES: tuple[str, ...] = tuple(s.name for s in PIPELINE_SCHEDULES)


@dataclass(frozen=True)
class Plan:
    """Parallel sizes and memory options (Megatron-LM meanings).

    ``dp`` counts every data-parallel rank (ZeRO/FSDP-sharded ones included), so
    ``chips = tp * pp * dp * cp``; expert parallelism ``ep`` is carved out of the
    ``tp * dp * cp`` ranks of a stage, as in Megatron-Core. ``micro_batch`` is sequences
    per data-parallel rank per micro-step; ``vpp`` the interleaved chunks per stage.

    Each attribute is a declared layout field (:class:`~ocplan.plan.layout.LayoutField`
    in its metadata); :meth:`columns` builds the same class holding numpy arrays of
    encoded values instead, one element per layout, which is what the engine reads.
    """

    tp: int = layout_field(
        1, help="Tensor-parallel size: each layer's matrices split over this many chips.",
        short="tp", low=1, high=MAX_CHIPS, always_label=True)
    pp: int = layout_field(
        1, help="Pipeline-parallel size: stages the layers are split into.",
        short="pp", low=1, high=MAX_CHIPS, always_label=True)
    dp: int = layout_field(
        1, help="Data-parallel size (ZeRO-sharded ranks included); a request gives the "
                "chips instead: dp = chips / (tp x pp x cp).",
        short="dp", low=1, high=MAX_CHIPS, search="derived", requested=False,
        always_label=True)
    cp: int = layout_field(
        1, help="Context-parallel size: each sequence split over this many chips.",
        short="cp", low=1, high=MAX_CHIPS, always_label=True)
    ep: int = layout_field(
        1, help="Expert-parallel size (mixture of experts), carved out of tp x dp x cp.",
        short="ep", low=1, high=MAX_CHIPS, always_label=True)
    etp: int | None = layout_field(
        None, help="Expert tensor-parallel size: each expert's matrices split over this "
                   "many chips; default tp (Megatron-Core --expert-tensor-parallel-size).",
        short="etp", low=1, high=MAX_CHIPS)
    vpp: int = layout_field(
        1, help="Interleaved pipeline chunks per stage (virtual pipeline size).",
        short="vpp", low=1, high=MAX_CHIPS, always_label=True)
    pp_schedule: PpSchedule = layout_field(
        "1f1b", help="Pipeline schedule: " + "; ".join(
            f"{s.name}: {s.help}" for s in PIPELINE_SCHEDULES) + ".",
        # what the stack implements (Megatron-LM runs 1F1B; DualPipe is DeepSeek's own,
        # DualPipeV torch.distributed.pipelining's), so a search holds it as given
        short="schedule", choices=PP_SCHEDULES, search="fixed", matters_with="pp")
    ends_as_layers: bool = layout_field(
        False, help="Count the embedding and the loss (with the LM head) as one layer each "
                    "in the pipeline split, so the first and last stages hold a layer fewer "
                    "(Megatron-Core --account-for-embedding/loss-in-pipeline-split).",
        short="ends", matters_with="pp")
    first_stage_layers: int | None = layout_field(
        None, help="Transformer layers on the first pipeline stage (its chunks together), "
                   "the embedding's stage (Megatron-Core --decoder-first-pipeline-num-layers, "
                   "or a --pipeline-model-parallel-layout's first-stage chunks); default: "
                   "the even split (or the ends counted).",
        short="first_layers", low=1, high=MAX_LAYERS, search="derived", matters_with="pp")
    last_stage_layers: int | None = layout_field(
        None, help="Transformer layers on the last pipeline stage (its chunks together), "
                   "the LM head's, loss's and MTP modules' stage (Megatron-Core "
                   "--decoder-last-pipeline-num-layers, or a pipeline layout's last-stage "
                   "chunks); the stages not given split the rest evenly.",
        short="last_layers", low=1, high=MAX_LAYERS, search="derived", matters_with="pp")
    micro_batch: int = layout_field(
        1, help="Sequences per data-parallel rank per micro-step.",
        short="mb", low=1, high=MAX_GLOBAL_BATCH, always_label=True)
    local_batch: int | None = layout_field(
        None, help="Sequences per data-parallel rank in one run of the pipeline schedule "
                   "(PyTorch pipelining's local batch: torchtitan, NeMo AutoModel); a step "
                   "of more runs the schedule once per local batch (gradient accumulation), "
                   "each run with its own fill and drain, the gradients reduced once a "
                   "step; default: the step's whole batch in one run (Megatron-LM).",
        # what the stack and its recipe set (a pipeline of more micro-batches per run is
        # never slower), so a search holds it as given
        short="lbs", low=1, high=MAX_GLOBAL_BATCH, search="fixed", matters_with="pp")
    zero: int = layout_field(
        1, help="ZeRO stage: 0 none, 1 optimizer states, 2 and gradients, 3 and weights "
                "sharded over the data-parallel ranks (3 under a pipeline on the "
                "PyTorch stack: gathered once per step and held, as its pipeline "
                "schedules run FSDP, so stage 1's memory).",
        short="zero", low=0, high=3, always_label=True)
    recompute: Recompute = layout_field(
        "none", help="Activation recompute: " + "; ".join(
            f"{m.name}: {m.help}" for m in RECOMPUTE_MODES) + ".",
        short="recompute", choices=RECOMPUTE, search_codes=("auto",), always_label=True)
    sequence_parallel: bool = layout_field(
        True, help="Megatron sequence parallelism (only meaningful with tp > 1).",
        short="sp", matters_with="tp")
    offload: bool = layout_field(
        False, help="Keep the saved activations (what the recompute mode keeps) in host "
                    "memory (MaxText/JAX offload remat policies; Megatron-Core "
                    "--cpu-offloading, with offload_layers).",
        # the search's own switch (allow_offload, ``search --offload``) opens this axis
        short="offload", pinnable=False)
    offload_layers: int | None = layout_field(
        None, help="With offload: layers per stage whose saved activations go to host "
                   "memory, the others kept in HBM (Megatron-Core "
                   "--cpu-offloading-num-layers); default all.",
        short="offload_layers", low=1, high=MAX_LAYERS, search="fixed")
    recompute_layers: int | None = layout_field(
        None, help="With a whole-layer recompute (full, full_xla, qkv_xla): layers per "
                   "stage recomputed (default all).",
        short="rc_layers", low=1, high=MAX_LAYERS, search="derived")
    tp_overlap: bool = layout_field(
        True, help="Overlap tensor-parallel communication with compute (the calibrated "
                   "share).",
        short="tp_overlap", matters_with="tp")
    ep_overlap: bool = layout_field(
        True, help="Overlap the mixture-of-experts token dispatch and combine with compute "
                   "(Megatron-Core --overlap-moe-expert-parallel-comm, DualPipe-style): a "
                   "micro-batch's forward all-to-alls behind another's backward and its "
                   "backward ones behind the other's forward, the calibrated share; off: "
                   "exposed in full, as in a recipe that runs them in line (costly when "
                   "the expert group spans the scale-out network).",
        short="ep_overlap", matters_with="ep")
    ep_dedup: bool = layout_field(
        True, help="Fused, node-deduplicated expert dispatch (DeepEP, HybridEP: a token "
                   "crosses the scale-out network once per remote scale-up domain holding "
                   "one of its experts and fans out there, and only the receiving side "
                   "permutes it); off: an all-to-all of every routed copy, permuted before "
                   "and after (Megatron-Core's alltoall dispatcher).",
        short="ep_dedup", matters_with="ep", search="fixed")
    grouped_gemm: bool = layout_field(
        True, help="Run a chip's local experts as one grouped GEMM kernel (Megatron-Core "
                   "--moe-grouped-gemm); off: one GEMM kernel per expert, one after "
                   "another (SequentialMLP, the ROCm port of the legacy grouped_gemm "
                   "package), each filling the chip with its own tiles only.",
        short="grouped_gemm", search="fixed")
    dp_overlap: bool = layout_field(
        True, help="Overlap data-parallel gradient/parameter communication with compute.",
        short="dp_overlap")
    grad_reduce_bf16: bool = layout_field(
        False, help="Reduce gradients over the data-parallel ranks in bf16 (Megatron-LM "
                    "--grad-reduce-in-bf16; Megatron-Bridge's performance recipes, "
                    "grad_reduce_in_fp32 false); off: in fp32, Megatron-LM's default for "
                    "bf16 and 8-bit training (fp16 runs reduce in fp16 either way).",
        short="grad_bf16", search="fixed")
    native_attention: bool = layout_field(
        True, help="Run attention with the chip's native fused kernel (cuDNN or "
                   "FlashAttention-3 on Hopper); off: a portable FlashAttention-2-class "
                   "kernel (PyTorch SDPA's flash backend, the flash-attn 2 package) at the "
                   "chip's measured portable rate (catalog compute.portable_attention).",
        short="native_attn", search="fixed")
    fused_attention: bool = layout_field(
        True, help="Run each attention core as one fused kernel (FlashAttention-class: the "
                   "score matrix stays on chip); off: the unfused core of Megatron-LM before "
                   "FlashAttention (runs of 2022 and earlier): a batched GEMM writes the "
                   "b x a x s x s scores to memory, a fused scale-mask-softmax and the "
                   "attention dropout pass over them, a second batched GEMM reads them, and "
                   "the backward keeps them unless recompute is selective.",
        short="fused_attn", search="fixed")
    shard_group: int | None = layout_field(
        None, help="Hybrid sharding (HSDP): ZeRO shards within groups of this many "
                   "data-parallel ranks (dp x cp) and replicates across groups; default "
                   "all of them.",
        # its axis holds options (off, one scale-up domain) resolved per layout, not sizes
        short="hsdp", low=1, high=MAX_CHIPS, pinnable=False)

    def __post_init__(self) -> None:
        """Check every field against its declaration; all problems in one SpecError."""
        problems = [Problem("argument", name, message, getattr(self, name))
                    for name, message in layout_problems(self, LAYOUT_FIELDS)]
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

    @property
    def expert_tp(self) -> int:
        """The expert tensor-parallel size in effect: ``etp``, or ``tp`` when unset
        (Megatron-Core's default for ``--expert-tensor-parallel-size``)."""
        return self.tp if self.etp is None else self.etp

    def changes_from(self, other: Plan) -> list[str]:
        """This plan's label parts where it differs from ``other`` (``tp=1, cp=4``),
        without flags it leaves idle: how a search names what its runner-up changes."""
        return layout_changes(other, self, LAYOUT_FIELDS)

    def label(self) -> str:
        """The layout in one line, the same in CLI tables, reports, sweeps and the web:
        the parallel sizes always, other fields when not at their default and not
        idle (sequence parallelism at tp = 1)
        (``tp=8, pp=8, dp=16, cp=1, ep=1, vpp=6, mb=1, zero=1, recompute=none``)."""
        return layout_label(self, LAYOUT_FIELDS)

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> Plan:
        """The plan of the layout fields in ``values`` (other keys are ignored, missing
        fields take their defaults): a stored search row, a request's fields."""
        return cls._of({f.name: values[f.name] for f in LAYOUT_FIELDS if f.name in values})

    @classmethod
    def _of(cls, values: Mapping[str, object]) -> Plan:
        # The values' types are checked by __post_init__ against the declarations.
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def columns(cls, **arrays: object) -> Plan:
        """A plan whose fields are numpy arrays of *encoded* values, one element per layout:
        what :func:`ocplan.plan.engine.evaluate` reads. Not validated (the search builds
        the arrays from validated axes). Encoding (:meth:`LayoutField.encode`): numbers
        and flags as they are, a choice as its index in its declared choices, an
        optional number with 0 for None. Fields not given take their encoded defaults."""
        unknown = set(arrays) - set(LAYOUT)
        assert not unknown, f"unknown layout fields {sorted(unknown)}"
        plan = object.__new__(cls)
        for f in LAYOUT_FIELDS:
            value = arrays[f.name] if f.name in arrays else f.encode(f.default)
            object.__setattr__(plan, f.name, np.asarray(value))
        return plan

    def encoded(self) -> Plan:
        """This plan as :meth:`columns` (0-d arrays of encoded values)."""
        return Plan.columns(**{f.name: f.encode(getattr(self, f.name)) for f in LAYOUT_FIELDS})

    def as_columns(self) -> dict[str, np.ndarray]:
        """The arrays of a :meth:`columns` plan by field name (for :meth:`decode_row`)."""
        return {f.name: np.asarray(getattr(self, f.name)) for f in LAYOUT_FIELDS}

    @classmethod
    def decode_row(cls, columns: Mapping[str, np.ndarray], i: int) -> Plan:
        """Layout ``i`` of encoded ``columns`` (named as the fields; 0-d arrays apply to
        every row; fields not given take their defaults) as a validated plan: the
        inverse of :meth:`columns`."""
        unknown = set(columns) - set(LAYOUT)
        assert not unknown, f"unknown layout fields {sorted(unknown)}"
        values: dict[str, LayoutValue] = {}
        for f in LAYOUT_FIELDS:
            if f.name in columns:
                column = np.asarray(columns[f.name])
                values[f.name] = f.decode(int(column if column.ndim == 0 else column[i]))
        return cls._of(values)

    def stage_split(self, n_layers: int, mtp: int = 0) -> tuple[int, int, int]:
        """This plan's (first, fullest, last) stages' layers of ``n_layers`` layers (and
        ``mtp`` prediction modules): :func:`stage_split` as whole numbers."""
        return _stage_counts(n_layers, self.pp, self.ends_as_layers, mtp,
                             self.first_stage_layers or 0, self.last_stage_layers or 0)

    def _check_split(self, n_layers: int) -> None:
        """Raise :class:`Infeasible` when the first- and last-stage layer counts do not
        split ``n_layers``: no pipeline to split, the ends counted besides (two splits
        of one pipeline), more layers than the model has, or a stage left with none."""
        given = {f: v for f, v in (("first_stage_layers", self.first_stage_layers),
                                   ("last_stage_layers", self.last_stage_layers))
                 if v is not None}
        if not given:
            return
        named = " and ".join(f"{f} {v}" for f, v in given.items())
        if self.pp == 1:
            raise Infeasible("divisibility", f"{named} needs pp > 1")
        if self.ends_as_layers:
            raise Infeasible("divisibility", f"{named} and ends_as_layers both set the "
                                             "pipeline split; give one")
        rest = n_layers - sum(given.values())
        shared = self.pp - len(given)
        if rest < 0:
            raise Infeasible("divisibility", f"{named} {'are' if len(given) > 1 else 'is'} "
                                             f"more than the model's {n_layers} layers")
        if shared == 0 and rest != 0:
            raise Infeasible("divisibility", f"{named} hold {n_layers - rest} layers, not "
                                             f"the model's {n_layers} (pp = {self.pp}: no "
                                             "other stage)")
        if rest < shared:
            verb = "leave" if len(given) > 1 else "leaves"
            raise Infeasible("divisibility", f"{named} {verb} {rest} of the {n_layers} "
                                             f"layers for the other {shared} stages, fewer "
                                             "than one each")

    def _check_local_batch(self, workload: Workload) -> None:
        """Raise :class:`Infeasible` when a pipeline's local batch is no whole number of
        micro-batches or does not split a rank's batch of the step into whole runs."""
        lbs = self.local_batch
        if lbs is None or self.pp == 1:
            return
        if lbs % self.micro_batch:
            raise Infeasible("batch", f"local_batch {lbs} is not a multiple of micro_batch "
                                      f"{self.micro_batch}")
        per_rank = workload.global_batch // self.dp
        if per_rank % lbs:
            raise Infeasible("batch", f"local_batch {lbs} does not split a data-parallel "
                                      f"rank's {per_rank} sequences of the step (global "
                                      f"batch {workload.global_batch} / dp {self.dp}) into "
                                      "whole runs")

    def _check_schedule(self, workload: Workload) -> None:
        """Raise :class:`Infeasible` naming each condition of the pipeline schedule this
        split misses (:func:`~ocplan.plan.pipeline_schedules.unmet`)."""
        s = schedule(self.pp_schedule)
        m, n_layers = self.micro_batches_per_run(workload), workload.model.n_layers
        places = split_places(n_layers, self.pp, self.ends_as_layers,
                              workload.model.mtp_depth)
        said = {"vpp": f"vpp = {self.vpp} (it chunks the stages itself: vpp 1)",
                "even_pp": f"pp = {self.pp} (an even pp)",
                "micro_batches": f"{m} micro-batches (at least "
                                 f"{s.min_micro_batches_per_stage * self.pp})",
                "even_micro_batches": f"{m} micro-batches (an even number)",
                "stages": f"{n_layers} layers in its {round(self.pp / s.stage_share)} "
                          "stages"}
        wrong = [said[name] for name, miss in unmet(s, self.pp, self.vpp, m, places).items()
                 if miss]
        if wrong:
            raise Infeasible("schedule", f"pp_schedule {s.name} cannot run "
                                         + ", ".join(wrong))

    def micro_batches(self, workload: Workload) -> int:
        """Micro-batches per step per pipeline: ``global_batch / (dp * micro_batch)``."""
        return workload.global_batch // (self.dp * self.micro_batch)

    def micro_batches_per_run(self, workload: Workload) -> int:
        """Micro-batches in one run of the pipeline schedule: ``local_batch /
        micro_batch`` where a local batch splits the step into runs (with a pipeline),
        else the step's (:meth:`micro_batches`)."""
        if self.local_batch is None or self.pp == 1:
            return self.micro_batches(workload)
        return self.local_batch // self.micro_batch

    def pipeline_runs(self, workload: Workload) -> int:
        """Runs of the pipeline schedule a step: ``global_batch / (dp * local_batch)``
        where a local batch splits the step (with a pipeline), else 1; at least 1 for a
        layout that cannot run (reports still draw one)."""
        if self.local_batch is None or self.pp == 1:
            return 1
        return max(1, workload.global_batch // (self.dp * self.local_batch))

    def check(self, workload: Workload) -> None:
        """Raise :class:`Infeasible` when the layout cannot run this workload."""
        m = workload.model
        if workload.global_batch % (self.dp * self.micro_batch):
            raise Infeasible("batch", f"global batch {workload.global_batch} is not a multiple "
                                      f"of dp x micro_batch = {self.dp * self.micro_batch}")
        self._check_local_batch(workload)
        slots = int(split_places(m.n_layers, self.pp, self.ends_as_layers, m.mtp_depth))
        if slots < self.pp * self.vpp:
            # Uneven stages are allowed (Megatron's first/last-stage layer counts); the
            # fullest stage's layers are stage_split's.
            what = f"{m.n_layers} layers" + (" with the embedding and the loss"
                                            if slots > m.n_layers else "") + (
                " and the MTP modules" if slots > m.n_layers + 2 else "")
            # the published way out for such models (Llama 3.1 405B at pp 16, vpp 8)
            ends = int(split_places(m.n_layers, self.pp, True, m.mtp_depth))
            fix = (f"; with the embedding and the loss counted as layers (ends_as_layers) "
                   f"the {ends} places would"
                   if not self.ends_as_layers and ends >= self.pp * self.vpp else "")
            raise Infeasible("divisibility", f"{what} cannot fill "
                                             f"pp x vpp = {self.pp * self.vpp} chunks{fix}")
        kv_split = (m.n_kv_heads % self.tp == 0 if self.tp <= m.n_kv_heads
                    else self.tp % m.n_kv_heads == 0)  # tp > kv heads replicates K/V
        if m.n_heads % self.tp or not kv_split:
            raise Infeasible("divisibility", f"{m.n_heads} heads ({m.n_kv_heads} kv) do not "
                                             f"split over tp = {self.tp}")
        if m.mixer is not None and not m.mixer.splits(self.tp, self.cp):
            raise Infeasible("divisibility", f"the recurrent mixer's {m.mixer.heads} heads "
                                             f"({m.mixer.key_heads} groups) do not split over "
                                             f"tp = {self.tp} x cp = {self.cp}")
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
            if (self.dp * self.cp * self.tp) % (self.ep * self.expert_tp):
                unset = " (etp defaults to tp; etp 1 splits no expert)" \
                    if self.etp is None else ""
                raise Infeasible("divisibility", f"ep x etp = {self.ep * self.expert_tp} "
                                                 "does not divide the tp x dp x cp = "
                                                 f"{self.dp * self.cp * self.tp} ranks of a "
                                                 f"stage{unset}")
        elif self.ep != 1:
            raise Infeasible("divisibility", "ep > 1 needs a mixture-of-experts model")
        if self.shard_group is not None and (self.dp * self.cp) % self.shard_group:
            raise Infeasible("divisibility", f"shard group {self.shard_group} does not divide "
                                             f"dp x cp = {self.dp * self.cp}")
        if self.vpp > 1 and self.pp == 1:
            raise Infeasible("divisibility", "vpp > 1 needs pp > 1")
        self._check_schedule(workload)
        needs = mode(self.recompute).requires
        if needs is not None and needs not in model_features(m):
            raise Infeasible("recompute", f"{self.recompute} needs {FEATURE_NAMES[needs]}, "
                                          f"which {m.name} has not")
        self._check_split(m.n_layers)
        held = self.stage_split(m.n_layers, m.mtp_depth)[1]
        if self.recompute_layers is not None and self.recompute_layers > held:
            # more layers than a stage holds is a typo, not "all of them": say so
            raise Infeasible("recompute", f"recompute_layers {self.recompute_layers} is more "
                                          f"than the {held} layers a stage holds")
        if self.offload_layers is not None and self.offload_layers > held:
            raise Infeasible("offload", f"offload_layers {self.offload_layers} is more than "
                                        f"the {held} layers a stage holds")


def split_places(n_layers: int, pp: ArrayLike, ends: ArrayLike, mtp: int = 0) -> FloatArray:
    """Places the pipeline split fills: the ``L`` layers, and with ``ends`` (and
    ``p > 1``) the embedding, the loss and each of the ``mtp`` multi-token prediction
    modules, one place each (:func:`stage_layers`; Megatron-Core's pipeline layouts give
    an MTP module a place of its own on the last stage, DeepSeek-V3's ``...tmL``)."""
    e = np.asarray(ends, dtype=bool) & (np.asarray(pp) > 1)
    out: FloatArray = np.asarray(n_layers + (2.0 + mtp) * e, dtype=np.float64)
    return out


def stage_layers(n_layers: int, pp: ArrayLike, ends: ArrayLike, mtp: int = 0) -> FloatArray:
    """Transformer layers on the fullest pipeline stage (numbers or arrays).

    ``ceil(L / p)``; with ``ends`` (and ``p > 1``) the embedding and the loss take one
    layer's place each, ``S = L + 2`` places split into ``ceil(S / p)`` per stage, and the
    two end stages hold one transformer layer fewer than that (Megatron-Core
    ``--account-for-embedding-in-pipeline-split`` and ``...-loss-in-...``; Llama 3, Dubey
    et al. 2024 §3.3.2: the first chunk holds only the embedding, the last only the output
    projection and the loss). With ``p = 2`` both stages are end stages; with ``p > 2``
    the fullest is a middle stage of ``ceil(S / p)`` layers (:func:`end_credit`). The
    ``mtp`` multi-token prediction modules add a place each (``S = L + 2 + D``), which
    the last stage's modules fill."""
    p = np.asarray(pp, dtype=np.float64)
    full = np.ceil(split_places(n_layers, p, ends, mtp) / p)
    out: FloatArray = np.where(np.asarray(ends, dtype=bool) & (p == 2), full - 1.0, full)
    return out


def end_credit(pp: ArrayLike, ends: ArrayLike) -> FloatArray:
    """1 where the end stages hold one transformer layer fewer than the fullest stage's
    :func:`stage_layers` (``ends`` with ``p > 2``): the embedding, LM head and loss then
    cost the slowest stage only what they exceed one layer by; else 0."""
    p = np.asarray(pp, dtype=np.float64)
    out: FloatArray = (np.asarray(ends, dtype=bool) & (p > 2)).astype(np.float64)
    return out


class StageSplit(NamedTuple):
    """Transformer layers per pipeline stage (numbers or arrays): the first stage's (it
    holds the embedding and the most micro-batches in flight), the fullest stage's and
    the last stage's (it holds the LM head, the loss and any multi-token prediction
    modules)."""

    first: FloatArray
    fullest: FloatArray
    last: FloatArray


def stage_split(n_layers: int, pp: ArrayLike, ends: ArrayLike, mtp: int = 0,
                first: ArrayLike = 0, last: ArrayLike = 0) -> StageSplit:
    """:class:`StageSplit` of ``L = n_layers`` over ``p`` stages.

    Given first- or last-stage counts ``f``, ``l`` (0: not given; ``p > 1``), the ``k``
    stages not given share the rest evenly, ``s = ceil((L - f - l) / k)`` each, and the
    fullest holds ``max(f, l, s)`` (Megatron-Core's ``--decoder-first/last-pipeline-num-
    layers``; a hand-written ``--pipeline-model-parallel-layout`` counted per stage, as
    Megatron-Bridge's DeepSeek-V3 ``Et*4|(t*4|)*14tmL``: 16 chunks, at p = 8 the first
    stage 8 layers, the last 5 and the modules). Else the split of :func:`stage_layers`:
    with the ends counted (``S = L + 2 + D`` places, ``ceil(S / p)`` a stage) the first
    stage holds ``ceil(S / p) - 1`` layers and the last ``ceil(S / p) - 1 - D``; without,
    every stage ``ceil(L / p)``."""
    p = np.asarray(pp, dtype=np.float64)
    f = np.asarray(first, dtype=np.float64)
    lst = np.asarray(last, dtype=np.float64)
    e = np.asarray(ends, dtype=bool) & (p > 1)
    places = np.ceil(split_places(n_layers, p, ends, mtp) / p)
    rule = stage_layers(n_layers, p, ends, mtp)
    rule_first = np.where(e, places - 1.0, rule)
    rule_last = np.where(e, places - 1.0 - mtp, rule)
    given = (p > 1) & ((f > 0) | (lst > 0))
    shared = np.maximum(p - (f > 0) - (lst > 0), 0.0)
    share = np.where(shared > 0, np.ceil((n_layers - f - lst) / np.maximum(shared, 1.0)), 0.0)
    f_eff = np.where(f > 0, f, share)
    l_eff = np.where(lst > 0, lst, share)
    return StageSplit(np.where(given, f_eff, rule_first),
                      np.where(given, np.maximum(np.maximum(f_eff, l_eff), share), rule),
                      np.where(given, l_eff, rule_last))


@functools.lru_cache(maxsize=4096)
def _stage_counts(n_layers: int, pp: int, ends: bool, mtp: int, first: int,
                  last: int) -> tuple[int, int, int]:
    """:func:`stage_split` of one layout as whole numbers, remembered: a plan's checks
    ask it on every estimate, and the numpy rule costs more than the rest of the check."""
    split = stage_split(n_layers, pp, ends, mtp, first, last)
    return int(split.first), int(split.fullest), int(split.last)


#: Every layout field, in declaration order: what requests, flags, forms, labels and the
#: search are generated from.
LAYOUT_FIELDS: tuple[LayoutField, ...] = layout_fields(Plan)
#: The layout fields by name.
LAYOUT: dict[str, LayoutField] = {f.name: f for f in LAYOUT_FIELDS}
#: The layout fields a request gives (``dp`` follows from the chips).
REQUEST_LAYOUT: tuple[LayoutField, ...] = tuple(f for f in LAYOUT_FIELDS if f.requested)
#: The layout fields a search holds fixed (what the software stack does, not a choice
#: among layouts: the expert dispatch, grouped GEMMs, the attention kernel, the gradient
#: reduction's format); a search request may set them, else they keep their defaults.
SEARCH_FIXED_LAYOUT: tuple[LayoutField, ...] = tuple(
    f for f in REQUEST_LAYOUT if f.search == "fixed")
#: The layout fields whose axis a search may be given a value of (``tp``, ``recompute``,
#: ...): given one, every layout it searches takes that value.
SEARCH_PINNABLE_LAYOUT: tuple[LayoutField, ...] = tuple(
    f for f in REQUEST_LAYOUT if f.search == "axis" and f.pinnable)
#: What a pinnable field's help adds where a search takes it (request field, CLI flag).
PIN_HELP = " Given: every layout searched takes it; default: searched."
#: Every field a search may be given: the stack's (held in every layout) and the
#: pinnable axes (searched at the given value alone).
SEARCH_GIVEN_LAYOUT = SEARCH_FIXED_LAYOUT + SEARCH_PINNABLE_LAYOUT
assert all(f.matters_with in LAYOUT for f in LAYOUT_FIELDS if f.matters_with), "unknown field"
#: The search-only recompute code "auto" (after the choices): the fewest layers per
#: stage recomputed in full that make the layout fit (Megatron --recompute-num-layers);
#: the search turns it into ``recompute="full"`` with ``recompute_layers`` before any
#: plan is built.
RECOMPUTE_AUTO = LAYOUT["recompute"].code("auto")
