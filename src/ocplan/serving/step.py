"""Time of one serving-engine iteration, from the operator list.

One iteration of a continuous-batching engine (vLLM V1, SGLang, TensorRT-LLM) runs
``P`` prompt tokens of ``n_p`` sequences (chunked prefill) and one new token for each of
``B`` decoding sequences whose contexts sum to ``C`` tokens, through every layer of a
pipeline stage. Its time on one chip of an instance:

``t = sum_layers [ sum_ops max(c_i / eta_i, m_i) + k ] + t_head + t_comm + t_host``

- the layer's GEMMs, norms, activations and MoE blocks see all ``M = P + B`` token rows
  at once (:func:`~ocplan.workloads.operators.layer_operators` with ``M`` rows; weights
  are read once per iteration, which is why decode is HBM-bound at small ``B``);
- decode attention reads each sequence's cache (``B`` sequences at mean context
  ``C / B``), prefill attention is causal over each chunk (``n_p`` sequences of
  ``P / n_p`` tokens);
- ``c_i``, ``m_i``: compute and HBM terms of :mod:`ocplan.costmodel.op_time` at the
  family's fitted efficiencies (training calibration: the same GEMM kernels) and the
  serving HBM efficiency; ``k``: the per-kernel cost inside a captured graph;
- ``t_comm``: two all-reduces of the ``M x h`` activations per layer over TP (Megatron
  row-parallel outputs), or the MoE dispatch and combine all-to-all over EP (DP
  attention), not overlapped (serving runs them on the critical path);
- ``t_host``: the fitted per-iteration host overhead.

Every count argument may be a numpy array: one iteration per element. Iterations (and
the device parts they are made of) are remembered per model context and counts
(:data:`_PARTS`): an estimate evaluates a few batch counts, its SLO search and operating
point the same grid, and a search or a sweep of loads comes back to them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from ocplan.collectives.cost import (
    all_gather,
    all_reduce,
    library_all_reduce,
    moe_dispatch,
    reduce_scatter,
    send_recv,
)
from ocplan.collectives.fabric import CommFabric
from ocplan.costmodel.op_time import (
    ChipPeaks,
    Efficiencies,
    PassTime,
    Profile,
    profile,
)
from ocplan.costmodel.roofline import HBM_EFFICIENCY, FloatArray, f64
from ocplan.plan.calibration import Calibration
from ocplan.plan.engine import SystemModel, efficiencies
from ocplan.plan.layer_cost import layer_kinds
from ocplan.serving.calibration import ServingCalibration
from ocplan.serving.plan import ServingPlan
from ocplan.workloads.memory import ACT_BYTES
from ocplan.workloads.operators import (
    GEMM_INPUT_BYTES,
    Num,
    Operator,
    Phase,
    Shard,
    attention_operator,
    embedding_operators,
    head_operators,
    layer_operators,
    mixer_operator,
)
from ocplan.workloads.serving import ServingWorkload

__all__ = ["CUSTOM_ALLREDUCE_MAX_BYTES", "CUSTOM_ALLREDUCE_MAX_BYTES_TP2", "IterationTime",
           "StepModel", "step_model", "tp_all_reduce_s"]

T = TypeVar("T")

#: Operator kinds whose cost follows each sequence's context or state rather than the
#: batch's token rows: the attention part of a step (:meth:`StepModel._attention_part`).
_PER_SEQUENCE_KINDS = frozenset({"attention", "scan"})
#: Bytes per element of the MoE combine (expert outputs return in 16-bit; DeepEP and
#: the vLLM/SGLang all-to-all kernels combine in bf16 even with fp8 dispatch).
COMBINE_BYTES = ACT_BYTES
#: Narrowest dispatch format: DeepEP and the vLLM/SGLang all-to-all kernels send fp8
#: (with scales) at most, even when the expert GEMMs run in fp4.
DISPATCH_MIN_BYTES = 1.0
#: Largest tensor-parallel all-reduce (bytes) the serving engines run with their own
#: latency-optimised one-shot / two-shot kernels; larger ones go to NCCL/RCCL
#: (:func:`~ocplan.collectives.cost.library_all_reduce`). TensorRT-LLM sizes the custom
#: all-reduce workspace at 8 MB for more than two ranks and 16 MB for two
#: (``getMaxRequiredWorkspaceSize``, cpp/tensorrt_llm/common/customAllReduceUtils.h), and
#: its strategy table picks NCCL from 8 MB messages on at TP 8 (hidden 4096 from 1,024
#: tokens, 8192 from 512); vLLM's ``CustomAllreduce`` stops at 8 MiB (``max_size``).
CUSTOM_ALLREDUCE_MAX_BYTES = 8e6
#: The same limit for two ranks (TensorRT-LLM's 16 MB workspace).
CUSTOM_ALLREDUCE_MAX_BYTES_TP2 = 16e6
#: Best achieved / peak 16-bit rate of a compute-bound decode attention kernel: FlashMLA,
#: 660 TFLOP/s on an H800 SXM5 (989 TFLOP/s dense bf16), deepseek-ai/FlashMLA README,
#: "Performance Update (2025.04.22)". Decode attention reads one query row per sequence
#: (MLA: the heads share one latent, ``a`` rows per sequence) against a paged cache, split
#: over the keys and merged: it does not reach the training flash-attention efficiency of
#: long causal tiles. A cap on the family's attention efficiency; GQA decode stays bound by
#: the cache reads.
DECODE_ATTENTION_EFFICIENCY = 660.0 / 989.0
#: The same best achieved / peak rate where a family has its own measurement (a registry:
#: family -> share of the catalog's 16-bit peak of the chip measured). Blackwell: the
#: TensorRT-LLM MLA decode kernel (FlashInfer ``trtllm_batch_decode_with_kv_cache_mla``,
#: 128 heads, 576/512-wide latent, bf16 cache) at most 964 TFLOP/s on one GB200 (batch
#: 64, 1,024 keys; 774-854 TFLOP/s at batch 128, 512-2,048 keys), against the GB200's
#: 2,500 TFLOP/s dense bf16 (this catalog); lpc0220/mini-sglang-deepseek-only,
#: ``deepseek_kernel_benchmarks/results/trtllm_batch_decode_with_kv_cache_mla.csv``
#: (third-party measurement, one GPU). Blackwell doubled the tensor rate per SM over
#: Hopper; the decode kernel did not follow (FlashMLA's own Blackwell decode kernel: "up
#: to 350 TFlops on B200 (which is not really optimized yet)", its README).
DECODE_ATTENTION_EFFICIENCY_BY_FAMILY: dict[str, float] = {"blackwell": 964.0 / 2500.0}
#: Compute units the MoE all-to-all kernels hold while they run under the other
#: micro-batch's compute in a prefill iteration of two-batch overlap: DeepEP's normal
#: kernels (its mode for prefill batches) take ``Buffer.set_num_sms(24)`` in the
#: deepseek-ai/DeepEP README example, the value SGLang and vLLM pass;
#: shared/reference/compute_units.md §3.4 ("subtract reserved SMs from GEMM units when
#: overlap is modelled"). Decode batches use the low-latency kernels, whose receive hook
#: holds no unit, so a decode iteration keeps every unit.
OVERLAP_COMM_UNITS = 24
#: Iterations and device parts (:meth:`StepModel.iteration`, :meth:`StepModel.rows_part`
#: and the others) remembered per model context (workload, plan, chip, efficiencies,
#: serving calibration, ranks and fabric; the fabric by identity, held by the entry so
#: that its ``id`` cannot be reused while cached) and per distinct counts: the fields of
#: :class:`IterationTime`, or ``[matrix_s, attention_s, memory_s, flops_s, bytes_s]`` of
#: a part. Bounded: at most :data:`_PARTS_CONTEXTS` contexts and
#: :data:`_PARTS_ENTRIES` entries in all.
_PARTS: dict[tuple[object, ...], tuple[CommFabric, dict[str, dict[Any, Any]]]] = {}
_PARTS_CONTEXTS = 256
_PARTS_ENTRIES = 200_000
#: Entries held in :data:`_PARTS` (all contexts; a list, so that it can be updated in
#: place): past :data:`_PARTS_ENTRIES` (tens of megabytes) every context is dropped.
_PARTS_HELD = [0]
#: Smallest share of a prompt an iteration's prompt tokens are taken to be (it keeps an
#: iteration with no prompt, ``n_p = 0``, from dividing by zero; its attention share is 0).
_PROMPT_SHARE_MIN = 1e-12
#: The fields of :class:`IterationTime`, in order.
_ITERATION_FIELDS = ("matrix_s", "attention_s", "memory_s", "comm_s", "host_s", "flops_s",
                     "bytes_s")


def _prompt_tokens(P: FloatArray, n_p: FloatArray) -> FloatArray:
    """Tokens of each prompt of an iteration carrying ``P`` prompt tokens of ``n_p``
    prompts: ``P / n_p``, at least 1. A share of one prompt (``n_p < 1``, a chunk) gives
    the whole prompt, whose attention the iteration is charged ``n_p`` of, not all of
    its chunk's at the end of the prompt (:meth:`StepModel.iteration`)."""
    return f64(np.maximum(P / np.maximum(n_p, _PROMPT_SHARE_MIN), 1.0))


def decode_attention_cap(family: str | None) -> float:
    """Best measured share of the 16-bit peak a decode attention kernel reaches on chips
    of ``family``: :data:`DECODE_ATTENTION_EFFICIENCY_BY_FAMILY` where the family has a
    measurement, :data:`DECODE_ATTENTION_EFFICIENCY` (FlashMLA on H800) otherwise."""
    return DECODE_ATTENTION_EFFICIENCY_BY_FAMILY.get(family or "", DECODE_ATTENTION_EFFICIENCY)


@dataclass(frozen=True)
class IterationTime:
    """Seconds of one iteration by term (arrays over the iterations asked)."""

    matrix_s: FloatArray
    attention_s: FloatArray
    memory_s: FloatArray
    comm_s: FloatArray
    host_s: FloatArray
    flops_s: FloatArray
    """Sum of the operators' compute terms (at their efficiencies)."""
    bytes_s: FloatArray
    """Sum of the operators' HBM terms; against ``flops_s`` it says whether the
    iteration is compute- or bandwidth-bound."""

    @property
    def total_s(self) -> FloatArray:
        out: FloatArray = (self.matrix_s + self.attention_s + self.memory_s + self.comm_s
                           + self.host_s)
        return out

    def bound(self, i: int = 0) -> str:
        """The term that dominates iteration ``i``."""
        device = float(np.ravel(self.matrix_s + self.attention_s + self.memory_s)[i])
        comm, host = float(np.ravel(self.comm_s)[i]), float(np.ravel(self.host_s)[i])
        if comm >= max(device, host):
            return "communication"
        if host >= device:
            return "host overhead"
        flops, hbm = float(np.ravel(self.flops_s)[i]), float(np.ravel(self.bytes_s)[i])
        return "compute" if flops >= hbm else "HBM bandwidth"


@dataclass(frozen=True)
class StepModel:
    """Everything of one instance's iteration that does not depend on the batch."""

    workload: ServingWorkload
    plan: ServingPlan
    chip: ChipPeaks
    eff: Efficiencies
    fabric: CommFabric
    serving: ServingCalibration
    ranks: int
    """Ranks whose sequences differ (attention data parallelism: dp; else 1)."""
    decode_only: bool = False
    """A decode instance of a disaggregated deployment: prompts arrive with their KV
    cache, so its iterations run no prefill."""
    family: str | None = None
    """The chip's calibration family (its serving HBM efficiency)."""
    time_scale: float = 1.0
    """Factor on every term of an iteration: 1 for the model as fitted; a what-if of a
    chip whose iterations run that much slower or faster than the model says
    (:mod:`ocplan.serving.latency_range`: the latencies at a rate were the real
    iteration at either end of the family's held-out error range)."""

    def iteration(self, prefill_tokens: ArrayLike, prefill_seqs: ArrayLike,
                  decode_seqs: ArrayLike, decode_context: ArrayLike,
                  prefill_keys: ArrayLike | None = None) -> IterationTime:
        """One iteration of the instance (see the module docstring); the counts are
        for the whole instance and are split over its ``ranks``. ``prefill_keys``: keys
        each prefill sequence's queries see at the end of its prompt (its cached prefix
        included); default the prompt itself. Fewer prompt tokens than one prompt
        (``n_p < 1``: a chunk of a prompt longer than the budget) are charged ``n_p`` of
        the whole prompt's attention: over the chunks of a prompt its attention sums to
        the whole prompt's, whichever chunk an iteration carries (the simulator charges
        it so too, :class:`~ocplan.serving.dynamics.ExactStepTime`)."""
        P, n_p, B, C = (f64(np.atleast_1d(x)) for x in np.broadcast_arrays(
            prefill_tokens, prefill_seqs, decode_seqs, decode_context))
        chunk = _prompt_tokens(P, n_p)
        keys = chunk if prefill_keys is None else np.maximum(f64(prefill_keys), chunk)
        arrays = np.broadcast_arrays(P, n_p, B, C, keys)
        shape = arrays[0].shape
        counts = [f64(x).ravel() for x in arrays]
        # Each iteration is a function of its own counts alone: the distinct ones not
        # seen before in this context are computed (in one pass), the rest looked up.
        memo = self._parts.setdefault("iteration", {})
        labels = list(zip(*(c.tolist() for c in counts), strict=True))
        found = [memo.get(k) for k in labels]
        missing = [i for i, row in enumerate(found) if row is None]
        if missing:
            fresh = self._iteration(*(c[missing] for c in counts))
            _held(len(missing))
            table = np.stack([np.broadcast_to(getattr(fresh, name), (len(missing),))
                              for name in _ITERATION_FIELDS], axis=1)
            for i, row in zip(missing, table.tolist(), strict=True):
                found[i] = memo[labels[i]] = row
        cols = np.array(found, dtype=np.float64).reshape(len(found), len(_ITERATION_FIELDS))
        return IterationTime(*(cols[:, j].reshape(shape).copy()
                               for j in range(len(_ITERATION_FIELDS))))

    def _iteration(self, P: FloatArray, n_p: FloatArray, B: FloatArray, C: FloatArray,
                   keys: FloatArray) -> IterationTime:
        """:meth:`iteration` of 1-D count arrays, ``keys`` resolved."""
        wl = self.workload
        r = float(self.ranks)
        q_dec = float(wl.verified_per_step)
        rows = (P + B * q_dec) / r
        chunk = _prompt_tokens(P, n_p)
        # fewer prefill sequences than one per rank: a share of a whole prompt's attention
        pre_share = f64((P > 0) * np.minimum(n_p / r, 1.0))
        part = self.rows_part(rows).plus(
            self.decode_attention_part(np.maximum(B / r, 1.0),
                                       np.maximum(C / np.maximum(B, 1.0), q_dec)),
            (B > 0).astype(np.float64)).plus(
            self.prefill_attention_part(np.maximum(n_p / r, 1.0), chunk, keys), pre_share).plus(
            self.head_part(np.maximum((B * q_dec + n_p) / r, 1.0)), 1.0)
        comm = self.comm_s(rows)
        if wl.spec_tokens:
            drafting = (B > 0).astype(np.float64)
            seqs = np.maximum(B / r, 1.0)
            part = part.plus(self.draft_part(seqs, np.maximum(C / np.maximum(B, 1.0), 1.0)),
                             drafting)
            # each draft layer's collectives, at the same 1/p charge as its device time
            comm = comm + drafting * wl.spec_tokens * wl.draft_layers \
                * self.comm_s(seqs) / wl.model.n_layers
        if self.overlap_slowdown > 1.0:
            slow = f64(np.where(P > 0, self.overlap_slowdown, 1.0))
            t = part.time
            part = Part(PassTime(t.matrix_s * slow, t.attention_s * slow, t.memory_s),
                        part.flops_s * slow, part.bytes_s)
        return self.finish(part, rows, B + n_p, comm)

    @cached_property
    def overlap_slowdown(self) -> float:
        """Factor on the matrix and attention time of a prefill iteration under two-batch
        overlap: the chip's units over those left to compute while the all-to-all
        kernels hold :data:`OVERLAP_COMM_UNITS` (memory-bound kernels keep their HBM
        rate on the rest). 1 without overlap, and for a chip whose unit count is
        unknown (0) or too small for the kernels to hold a share."""
        units = self.chip.compute.units
        if not self.plan.overlap or units <= 2 * OVERLAP_COMM_UNITS:
            return 1.0
        return units / (units - OVERLAP_COMM_UNITS)

    def finish(self, part: Part, rows: FloatArray, seqs: FloatArray,
               comm: FloatArray | None = None) -> IterationTime:
        """The iteration from its device part: communication (``comm``, default
        :meth:`comm_s` of ``rows``, less what two-batch overlap hides) and host time
        added."""
        comm = self.comm_s(rows) if comm is None else comm
        t = part.time
        if self.plan.overlap:
            # two micro-batches: one's all-to-all runs under the other's compute
            comm = np.maximum(comm - t.total_s, 0.0)
        host = self.serving.iteration_overhead_s \
            + self.serving.seq_overhead_s * seqs / float(self.ranks)
        k = self.time_scale
        return IterationTime(t.matrix_s * k, t.attention_s * k, t.memory_s * k, f64(comm) * k,
                             f64(np.broadcast_to(host, np.shape(comm))) * k,
                             part.flops_s * k, part.bytes_s * k)

    def _fmt(self) -> dict[str, str]:
        wl = self.workload
        return dict(precision=wl.gemm_precision, weight_precision=wl.weight_format,
                    expert_weight_precision=wl.expert_weight_format,
                    kv_precision=wl.kv_precision,
                    attention_precision=wl.attention_precision)

    def _split(self) -> _Split:
        pl = self.plan
        return _Split(tp=float(pl.tp), ep=float(pl.ep), etp=float(pl.etp),
                      imbalance=self.workload.moe_imbalance)

    def rows_part(self, rows: FloatArray) -> Part:
        """A stage's GEMMs, norms, activations and MoE blocks on ``rows`` token rows per
        rank (every layer kind at its share of the stage's layers)."""
        return self._memoized("rows", self._rows_part, rows)

    def _rows_part(self, rows: FloatArray) -> Part:
        shape = self.workload.model
        dense = self._split().shard(np.maximum(rows, 1.0), 1.0, 1.0)
        out = Part.zeros(rows.size)
        for kind in layer_kinds(shape):
            ops = [op for op in layer_operators(shape, "decode", dense, layer=kind.index,
                                                **self._fmt())
                   if op.kind not in _PER_SEQUENCE_KINDS]
            out = out.plus(self._part(ops, rows.size), self._share(kind.count))
        return out

    def decode_attention_part(self, seqs: FloatArray, context: FloatArray) -> Part:
        """A stage's decode attention: ``seqs`` sequences per rank at mean ``context``."""
        return self._memoized("decode", self._decode_attention_part, seqs, context)

    def _decode_attention_part(self, seqs: FloatArray, context: FloatArray) -> Part:
        q = float(self.workload.spec_tokens + 1)
        dec = self._split().shard(seqs, q, context)
        return self._attention_part("decode", dec, int(np.broadcast(seqs, context).size),
                                    self.decode_eff)

    def draft_part(self, seqs: FloatArray, context: FloatArray) -> Part:
        """The drafts of one decode step, ``seqs`` sequences per rank at mean ``context``:
        ``k`` draft tokens one after the other, each through ``draft_layers`` layers of
        the model's shape (a layer: the mean of the stage's, one row per sequence, and
        its attention to the context) and the LM head, on the last stage and charged at
        ``1/p`` per stage as the head is (their collectives: :meth:`_iteration`); their
        weights and cache are in :mod:`ocplan.serving.memory`. Leviathan et al. 2023
        (walltime analysis) cost a draft pass as a share ``c`` of a target pass; here
        ``c`` follows from the layers it runs."""
        return self._memoized("draft", self._draft_part, seqs, context)

    def _draft_part(self, seqs: FloatArray, context: FloatArray) -> Part:
        wl = self.workload
        layer = 1.0 / wl.model.n_layers  # a stage's parts hold n_layers / p layers
        attention = self._attention_part("decode", self._split().shard(seqs, 1.0, context),
                                         int(np.broadcast(seqs, context).size),
                                         self.decode_eff)
        one = self.rows_part(seqs).plus(attention, 1.0)
        passes = float(wl.spec_tokens if wl.draft_layers else 0)  # n-gram drafts: no head
        return Part.zeros(seqs.size).plus(one, wl.spec_tokens * wl.draft_layers * layer) \
            .plus(self.head_part(seqs), passes)

    @cached_property
    def decode_eff(self) -> Efficiencies:
        """The efficiencies of decode attention: the family's attention efficiency capped
        at :func:`decode_attention_cap`."""
        return replace(self.eff, attention=min(self.eff.attention,
                                               decode_attention_cap(self.family)))

    def _attention_part(self, phase: Phase, shard: Shard, n: int,
                        eff: Efficiencies | None = None) -> Part:
        """The attention operator (a hybrid's mixer layers: their recurrent core) of every
        layer kind at its share of the stage (layer kinds differing only in MoE share
        one)."""
        wl = self.workload
        out = Part.zeros(n)
        counts: dict[tuple[bool, bool], int] = {}
        first: dict[tuple[bool, bool], int] = {}
        for kind in layer_kinds(wl.model):
            if not (kind.mixer or kind.attention):
                continue  # an MLP-only layer of a layer pattern
            key = (kind.mixer, kind.windowed)
            counts[key] = counts.get(key, 0) + kind.count
            first.setdefault(key, kind.index)
        for (mixer, windowed), count in counts.items():
            layer = first[mixer, windowed]
            op = mixer_operator(wl.model, phase, shard, layer=layer,
                                state_precision=wl.state_format) if mixer else \
                attention_operator(wl.model, phase, shard, layer=layer,
                                   precision=wl.gemm_precision, kv_precision=wl.kv_precision,
                                   attention_precision=wl.attention_precision)
            out = out.plus(self._part([op], n, eff), self._share(count))
        return out

    def prefill_attention_part(self, seqs: FloatArray, chunk: FloatArray,
                               keys: FloatArray) -> Part:
        """A stage's causal prefill attention: ``seqs`` chunks per rank of ``chunk``
        queries seeing ``keys`` keys."""
        return self._memoized("prefill", self._prefill_attention_part, seqs, chunk, keys)

    def _prefill_attention_part(self, seqs: FloatArray, chunk: FloatArray,
                                keys: FloatArray) -> Part:
        pre = self._split().shard(seqs, chunk, keys)
        n = int(np.broadcast(seqs, chunk, keys).size)
        return self._attention_part("prefill", pre, n)

    def head_part(self, logits: FloatArray) -> Part:
        """Embedding, final norm and LM head (``logits`` rows per rank), on the last
        stage: charged at ``1/p`` per stage."""
        return self._memoized("head", self._head_part, logits)

    def _head_part(self, logits: FloatArray) -> Part:
        shape = self.workload.model
        tp = float(self.plan.tp)
        ops = list(embedding_operators(shape, "decode", self._split().shard(logits, 1.0, 1.0)))
        ops += head_operators(shape, "decode", Shard(tp=tp, batch=logits, seq_len=1.0,
                                                     sp=False))
        return Part.zeros(logits.size).plus(self._part(ops, logits.size), 1.0 / self.plan.pp)

    @cached_property
    def _parts(self) -> dict[str, dict[Any, Any]]:
        """This model's memo of iterations and device parts by their counts (see
        :data:`_PARTS`)."""
        wl = self.workload
        # What an iteration reads of the workload (keep in step with the methods above):
        # the model, the formats, the speculation and the expert imbalance; not the
        # load, the lengths or the SLOs, so a sweep of rates or SLOs shares the memo.
        reads = (wl.model, wl.gemm_precision, wl.weight_format, wl.expert_weight_format,
                 wl.kv_precision, wl.attention_precision, wl.state_format, wl.spec_tokens,
                 wl.spec_acceptance, wl.draft_layers, wl.moe_imbalance)
        key = (reads, self.plan, self.chip, self.eff, self.serving, self.family, self.ranks,
               self.time_scale, id(self.fabric))
        hit = _PARTS.get(key)
        if hit is not None and hit[0] is self.fabric:
            return hit[1]
        if len(_PARTS) >= _PARTS_CONTEXTS:
            _forget()
        memo: dict[str, dict[Any, Any]] = {}
        _PARTS[key] = (self.fabric, memo)
        return memo

    def remember(self, key: Hashable, make: Callable[[], T]) -> T:
        """``make()``, a value that follows from this model (and ``key``) alone,
        remembered in the model's context: the operating point and the SLO search of an
        estimate build the same batch grid, and a search or a what-if comes back to it.
        The whole workload and ``decode_only`` are part of the key (the context is
        shared by workloads that differ only in their load and by both kinds of
        instance); the value must not be modified by the caller."""
        memo = self._parts.setdefault("derived", {})
        full = (key, self.decode_only, self.workload)
        value: T | None = memo.get(full)
        if value is None:
            value = memo[full] = make()
            _held(_GRID_ENTRIES)
        return value

    def _memoized(self, name: str, compute: Callable[..., Part], *counts: ArrayLike) -> Part:
        """``compute(*counts)`` (a device part, elementwise in its counts), each distinct
        combination of counts computed once per model context and remembered: an
        estimate evaluates its iteration at a few batches, a search or a calibration fit
        comes back to the same ones, and the operator lists behind a part cost far more
        than a lookup."""
        arrays = np.broadcast_arrays(*(f64(np.ravel(c)) for c in counts))
        memo = self._parts.setdefault(name, {})
        keys = list(zip(*(a.tolist() for a in arrays), strict=True))
        rows: list[list[float] | None] = [memo.get(k) for k in keys]
        missing = [i for i, r in enumerate(rows) if r is None]
        if missing:
            fresh = compute(*(a[missing] for a in arrays))
            _held(len(missing))
            t = fresh.time
            table = np.stack([np.broadcast_to(x, (len(missing),)) for x in (
                t.matrix_s, t.attention_s, t.memory_s, fresh.flops_s, fresh.bytes_s)],
                axis=1).tolist()
            for i, row in zip(missing, table, strict=True):
                rows[i] = memo[keys[i]] = row
        cols = np.array(rows, dtype=np.float64).reshape(len(keys), 5).T.copy()
        return Part(PassTime(cols[0], cols[1], cols[2]), cols[3], cols[4])

    def _share(self, count: int) -> float:
        """Layers of a kind in one stage: its count over the stages."""
        return count / self.plan.pp

    @property
    def hbm_efficiency(self) -> float:
        """Achieved / peak HBM bandwidth of the streaming kernels on this chip."""
        return self.serving.hbm_for(self.family)

    def _part(self, ops: list[Operator], n: int, eff: Efficiencies | None = None) -> Part:
        prof = profile(ops, self.chip, n)
        # streaming kernels (weights, KV cache) at the serving HBM efficiency
        scaled = Profile(prof.compute_s, prof.memory_s * (HBM_EFFICIENCY
                                                          / self.hbm_efficiency),
                         prof.paths, prof.categories, prof.floor_s)
        eff = self.eff if eff is None else eff
        return Part(scaled.time(eff), *scaled.work(eff))

    def comm_s(self, rows: FloatArray) -> FloatArray:
        """Per stage: TP all-reduces of the ``rows x h`` activations after attention and
        after the MLP (2 per layer; 1 per layer of a layer pattern; :func:`tp_all_reduce_s`),
        the MoE all-to-all
        (dispatch in the GEMM format, combine in 16-bit) over EP under DP attention, and
        the activations sent to the next stage.

        Without DP attention every rank of the expert group already holds all the
        instance's token rows (the group is carved out of the TP ranks, whose attention
        all-reduce leaves each with the full activations), so nothing is dispatched: each
        rank runs its local experts on the rows routed to them and the partial outputs
        are summed by the MLP's all-reduce (vLLM ``--enable-expert-parallel`` at one DP
        rank, SGLang ``--ep-size`` without an all-to-all backend, TensorRT-LLM without
        attention DP).

        With DP attention and experts split over ``t_e > 1`` ranks (``etp``), each MoE
        layer also gathers the ``t_e`` ranks' tokens before the expert GEMMs and
        reduce-scatters their partial outputs after (SGLang/vLLM DP attention with
        expert TP): an all-gather plus a reduce-scatter of ``t_e rows x h`` 16-bit values,
        the volume of one all-reduce of that size."""
        pl, shape = self.plan, self.workload.model
        h = float(shape.hidden)
        per_stage = shape.n_layers / pl.pp
        out = f64(np.zeros_like(rows))
        if pl.tp > 1:
            out = out + shape.blocks_per_layer * per_stage * tp_all_reduce_s(
                self.fabric, rows * h * ACT_BYTES, pl.tp)
        if shape.is_moe and pl.ep > 1 and pl.attention_dp:
            moe_share = shape.n_moe_layers / shape.n_layers * per_stage
            # dispatch in the GEMM format (8-bit at most: DeepEP's fp8 dispatch), combine
            # in 16-bit
            b_disp = max(GEMM_INPUT_BYTES.get(self.workload.gemm_precision, ACT_BYTES),
                         DISPATCH_MIN_BYTES)
            k = shape.moe_top_k
            t = moe_dispatch(self.fabric, rows, h * b_disp, k, pl.ep) \
                + moe_dispatch(self.fabric, rows, h * COMBINE_BYTES, k, pl.ep)
            out = out + moe_share * f64(t)
        if shape.is_moe and pl.attention_dp and pl.etp > 1:
            moe_share = shape.n_moe_layers / shape.n_layers * per_stage
            group = rows * pl.etp * h * ACT_BYTES
            out = out + moe_share * f64(all_gather(self.fabric, group, pl.etp)
                                        + reduce_scatter(self.fabric, group, pl.etp))
        if pl.pp > 1:
            out = out + f64(send_recv(self.fabric, rows * h * ACT_BYTES,
                                      float(pl.tp * pl.pp > self.fabric.domain)))
        return out


def tp_all_reduce_s(fabric: CommFabric, nbytes: FloatArray, tp: int) -> FloatArray:
    """One tensor-parallel all-reduce of ``nbytes`` per rank as a serving engine runs it:
    its custom kernel (:func:`~ocplan.collectives.cost.all_reduce`, latency-bound) up to
    :data:`CUSTOM_ALLREDUCE_MAX_BYTES` (:data:`CUSTOM_ALLREDUCE_MAX_BYTES_TP2` on two
    ranks), NCCL/RCCL above (:func:`~ocplan.collectives.cost.library_all_reduce`). Gaudi's
    engines all-reduce through HCCL, whose curve is not published; taken the same way."""
    limit = CUSTOM_ALLREDUCE_MAX_BYTES_TP2 if tp <= 2 else CUSTOM_ALLREDUCE_MAX_BYTES
    nbytes = f64(nbytes)
    return f64(np.where(nbytes > limit, library_all_reduce(fabric, nbytes, tp),
                        all_reduce(fabric, nbytes, tp)))


#: What a remembered derived value (a batch grid of about a hundred points) counts for
#: in :data:`_PARTS_HELD`.
_GRID_ENTRIES = 100


def _held(entries: int) -> None:
    """Count ``entries`` new memo entries; drop every context past the bound."""
    _PARTS_HELD[0] += entries
    if _PARTS_HELD[0] > _PARTS_ENTRIES:
        _forget()


def _forget() -> None:
    """Drop every remembered iteration, part and derived value."""
    _PARTS.clear()
    _PARTS_HELD[0] = 0


@dataclass(frozen=True)
class _Split:
    """The parallel sizes every shard of an iteration shares (no sequence parallelism:
    serving engines keep the full rows on every TP rank)."""

    tp: float
    ep: float
    etp: float
    imbalance: float

    def shard(self, batch: Num, seq_len: Num, kv_len: Num) -> Shard:
        return Shard(tp=self.tp, batch=batch, seq_len=seq_len, kv_len=kv_len, ep=self.ep,
                     etp=self.etp, sp=False, imbalance=self.imbalance)


@dataclass(frozen=True)
class Part:
    """Device time of some operators by category, with their summed compute and HBM
    terms (arrays over iterations)."""

    time: PassTime
    flops_s: FloatArray
    bytes_s: FloatArray

    @staticmethod
    def zeros(n: int) -> Part:
        z = f64(np.zeros(n))
        return Part(PassTime(z, z, z), z, z)

    def plus(self, other: Part, factor: FloatArray | float) -> Part:
        return Part(self.time.plus(other.time.scaled(factor)),
                    self.flops_s + other.flops_s * factor, self.bytes_s + other.bytes_s * factor)


def step_model(workload: ServingWorkload, plan: ServingPlan, sm: SystemModel, chip: ChipPeaks,
               cal: Calibration, serving: ServingCalibration) -> StepModel:
    """The :class:`StepModel` of one instance of ``plan`` on the system ``sm``."""
    base = efficiencies(sm, cal)
    ratio = serving.gemm_4bit_ratio
    grouped, grouped_8bit = base.grouped_gemm, base.grouped_gemm_8bit
    if serving.grouped_ratio is not None:
        grouped = min(1.0, base.gemm * serving.grouped_ratio)
        grouped_8bit = min(1.0, base.gemm_8bit * serving.grouped_ratio)
    eff = Efficiencies(gemm=base.gemm, gemm_8bit=base.gemm_8bit, attention=base.attention,
                       launch_s=serving.kernel_s, memory=1.0,
                       grouped_gemm=grouped, grouped_gemm_8bit=grouped_8bit,
                       gemm_4bit=min(1.0, base.gemm_8bit * ratio),
                       grouped_gemm_4bit=min(1.0, grouped_8bit * ratio),
                       softmax_overlap=base.softmax_overlap, clock=base.clock)
    return StepModel(workload=workload, plan=plan, chip=chip, eff=eff, fabric=sm.fabric,
                     serving=serving, ranks=plan.dp if plan.attention_dp else 1,
                     family=sm.family)

