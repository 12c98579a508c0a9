"""Recurrent token mixers of hybrid models: parameters, state and FLOPs of one layer.

A hybrid model (Qwen3-Next, Granite 4.0-H, Nemotron-H, Kimi Linear) replaces softmax
attention in most layers by a linear-time mixer that keeps a fixed state per sequence
instead of a KV cache. Both kinds here have one shape (catalog
:class:`~ocplan.catalog.schema.LinearMixerSpec`): ``n_k`` query/key groups of width
``d_k``, ``n_v`` value heads of width ``d_v``, a state of ``d_k x d_v`` per value head, an
output gate ``z`` of the values' width, a causal convolution of ``w`` taps over q, k and
v, and per-head scalars (gates, step sizes) from the same input projection:

- input projection ``h -> 2 n_k d_k + 2 n_v d_v + g n_v`` (q, k, v, z and ``g`` scalars
  per head), convolution ``(2 n_k d_k + n_v d_v) w``, output projection ``n_v d_v -> h``.

Each kind is a :class:`MixerLaw` in :data:`MIXERS` (a registry keyed by the catalog's
:data:`~ocplan.catalog.schema.MixerKind`): what differs is the scalars per head, the
chunk length of the parallel (training and prefill) kernel and its FLOPs, and the
FLOPs of one recurrent step.

Symbols as above, ``C`` the chunk length. Norms, biases, ``A_log``, ``D`` and ``dt_bias``
(``n_v`` or ``d_v`` values per layer) are left out of the parameter count, as the
attention count leaves out its norms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import get_args

import numpy as np
from numpy.typing import NDArray

from ocplan.catalog.schema import MixerKind, StateFormat

__all__ = ["MIXERS", "SCAN_BWD_FACTOR", "STATE_BYTES", "KernelTraffic", "MixerDims",
           "MixerLaw"]

#: Bytes per element of the recurrent state a serving engine caches, by its format
#: (:data:`~ocplan.catalog.schema.StateFormat`; vLLM ``--mamba-ssm-cache-dtype``:
#: ``auto`` is the model's 16-bit dtype); a KV-cache format does not apply to it.
STATE_BYTES: dict[str, float] = {"bf16": 2.0, "fp16": 2.0, "fp32": 4.0}
assert set(STATE_BYTES) == set(get_args(StateFormat)), "a state format without its bytes"
#: Backward / forward FLOPs of a chunked scan kernel: the gradients of each of the
#: forward's matmuls (two each) plus the chunk states recomputed rather than saved
#: (flash-linear-attention's ``chunk_gated_delta_rule`` and mamba_ssm's
#: ``mamba_chunk_scan_combined`` keep only their inputs); the same 2.5 as
#: FlashAttention-2's five matmuls against two.
SCAN_BWD_FACTOR = 2.5

#: A count per chip: a number or an array over layouts.
Num = float | NDArray[np.float64]


@dataclass(frozen=True)
class MixerDims:
    """One recurrent mixer's widths (counts): ``heads`` ``n_v``, ``key_heads`` ``n_k``,
    ``key_dim`` ``d_k``, ``value_dim`` ``d_v``, ``conv`` ``w``; ``state_format``: the
    format the release has a serving engine cache the state in (a job may name another,
    :attr:`~ocplan.workloads.serving.ServingWorkload.state_precision`)."""

    kind: str
    heads: int
    key_heads: int
    key_dim: int
    value_dim: int
    conv: int
    state_format: str = "bf16"

    @property
    def law(self) -> MixerLaw:
        return MIXERS[self.kind]

    @property
    def qk_width(self) -> int:
        """``n_k d_k``: the queries' (and the keys') width."""
        return self.key_heads * self.key_dim

    @property
    def value_width(self) -> int:
        """``n_v d_v``: the values', the gate's and the output's width."""
        return self.heads * self.value_dim

    @property
    def in_proj_width(self) -> int:
        """``2 n_k d_k + 2 n_v d_v + g n_v``."""
        return 2 * self.qk_width + 2 * self.value_width + self.law.head_scalars * self.heads

    @property
    def conv_channels(self) -> int:
        """``2 n_k d_k + n_v d_v``: q, k and v go through the convolution."""
        return 2 * self.qk_width + self.value_width

    def splits(self, tp: Num, cp: Num = 1.0) -> np.ndarray:
        """Whether ``tp`` x ``cp`` ranks can share this mixer's heads (elementwise over
        arrays of layouts): the value heads split evenly over ``tp cp``; the key groups
        split over ``tp`` as KV heads do (or are replicated when ``tp`` is a multiple of
        them); each rank's ``g`` groups then split over ``cp``, or ``cp`` is a multiple
        of ``g`` and the groups are repeated (the two cases Megatron-Core's
        ``MambaContextParallel`` and ``GDNContextParallel`` accept)."""
        tp_a, cp_a = np.asarray(tp, dtype=np.int64), np.asarray(cp, dtype=np.int64)
        nk = self.key_heads
        heads = self.heads % (tp_a * cp_a) == 0
        groups = np.where(tp_a <= nk, nk % tp_a == 0, tp_a % nk == 0)
        local = np.maximum(nk // tp_a, 1)
        context = np.where(local < cp_a, cp_a % local == 0, local % cp_a == 0)
        ok: np.ndarray = heads & groups & context
        return ok

    def params(self, hidden: int) -> int:
        """Input projection, convolution taps and output projection of one layer."""
        return (hidden * self.in_proj_width + self.conv_channels * self.conv
                + self.value_width * hidden)

    @property
    def state_elements(self) -> int:
        """``n_v d_k d_v``: the recurrent state of one sequence in one layer."""
        return self.heads * self.key_dim * self.value_dim

    @property
    def conv_state_elements(self) -> int:
        """``(w - 1)(2 n_k d_k + n_v d_v)``: the inputs the convolution still needs."""
        return (self.conv - 1) * self.conv_channels


@dataclass(frozen=True)
class KernelTraffic:
    """HBM bytes a chunked-scan implementation moves, per element of the four tensors its
    kernels pass to each other: each kernel's reads and writes of that tensor summed, at
    the dtype it is kept in. Per token on one chip the tensors hold ``r d_k`` key
    elements (Mamba-2's B and C, GDN's q, k and w: ``r`` key rows,
    :meth:`MixerLaw.key_rows`), ``n_v d_v`` value elements (x or v, the output, their
    gradients), ``r C`` intra-chunk elements (the ``C x C`` matrix per key row) and
    ``n_v d_k d_v / C`` state elements (one state per chunk)."""

    keys: float
    values: float
    chunk: float
    state: float


@dataclass(frozen=True)
class MixerLaw:
    """What one mixer kind computes beyond the shared shape."""

    head_scalars: int
    """Scalars per value head the input projection produces (GDN: beta and the decay
    gate alpha; Mamba-2: the step dt)."""
    chunk: int
    """Chunk length ``C`` of the parallel kernel that training and prefill run."""
    step_flops_per_state: float
    """FLOPs per state element of one recurrent step (a decoded token)."""
    chunk_flops: Callable[[MixerDims, int], float]
    """Forward FLOPs per token of the chunked kernel, all heads, for ``C``."""
    expand_keys: bool
    """Whether the kernels repeat the key groups to the value heads (GDN) rather than
    read them per group (Mamba-2's B and C)."""
    forward_traffic: KernelTraffic
    """Bytes the forward kernels move (training and prefill)."""
    backward_traffic: KernelTraffic
    """Bytes the backward kernels move, the forward's chunk states recomputed."""
    recompute_conv: bool
    """Whether the backward recomputes the causal convolution's output rather than keep
    it (mamba_ssm's ``mamba_split_conv1d_scan_combined``, the path Megatron-LM trains
    Mamba-2 layers with)."""

    def step_flops(self, d: MixerDims) -> float:
        """FLOPs of one recurrent step per token, all heads: ``c_step n_v d_k d_v``."""
        return self.step_flops_per_state * d.state_elements

    def parallel_flops(self, d: MixerDims) -> float:
        """Forward FLOPs per token of the chunked kernel (:attr:`chunk_flops`)."""
        return self.chunk_flops(d, self.chunk)

    def key_rows(self, value_heads: Num, key_groups: Num) -> Num:
        """Rows of keys per token the kernels read: the value heads with
        :attr:`expand_keys`, the key groups otherwise (per chip: the split's counts)."""
        return value_heads if self.expand_keys else key_groups

    def chunked_bytes(self, d: MixerDims, value_heads: Num, key_groups: Num,
                      backward: bool) -> Num:
        """HBM bytes per token of the chunked kernels on one chip holding ``value_heads``
        heads and ``key_groups`` key groups: :class:`KernelTraffic` times the elements
        per token of each tensor."""
        tr = self.backward_traffic if backward else self.forward_traffic
        r = self.key_rows(value_heads, key_groups)
        return (tr.keys * r * d.key_dim + tr.values * value_heads * d.value_dim
                + tr.chunk * r * self.chunk
                + tr.state * value_heads * d.key_dim * d.value_dim / self.chunk)


def _deltanet_chunk_flops(d: MixerDims, c: int) -> float:
    """Chunked gated delta rule per token (Yang et al. 2024, arXiv:2412.06464 §3.3, with
    the WY form of Yang et al. 2024, arXiv:2406.06484 §3.2), per value head: per chunk
    ``K K^T`` (``2 C^2 d_k``), the triangular solve (``2 C^3 / 3``), ``W = T K``
    (``2 C^2 d_k``) and ``U = T V`` (``2 C^2 d_v``), ``U - W S`` (``2 C d_k d_v``),
    ``Q K^T`` (``2 C^2 d_k``) times it (``2 C^2 d_v``), ``Q S`` and the state update
    (``2 C d_k d_v`` each); per token ``2 C (3 d_k + 2 d_v) + 6 d_k d_v + 2 C^2 / 3``.
    Queries and keys are repeated to the value heads (grouped value attention)."""
    dk, dv = float(d.key_dim), float(d.value_dim)
    per_head = 2.0 * c * (3.0 * dk + 2.0 * dv) + 6.0 * dk * dv + 2.0 * c * c / 3.0
    return d.heads * per_head


def _ssd_chunk_flops(d: MixerDims, c: int) -> float:
    """Mamba-2's state-space dual per token (Dao and Gu 2024, arXiv:2405.21060 §6): per
    group the chunk's ``C B^T`` (``2 C d_k``), per head its masked product with ``x``
    (``2 C d_v``), the chunk states ``B^T x`` and the outputs from the states
    (``2 d_k d_v`` each); per token ``2 C d_k n_k + n_v (2 C d_v + 4 d_k d_v)``."""
    dk, dv = float(d.key_dim), float(d.value_dim)
    return 2.0 * c * dk * d.key_heads + d.heads * (2.0 * c * dv + 4.0 * dk * dv)


#: flash-linear-attention ``chunk_gated_delta_rule`` (fla/ops/gated_delta_rule/chunk.py),
#: 16-bit tensors but the fp32 ``K K^T`` block. Forward: ``chunk_scaled_dot_kkt`` (reads
#: k, writes A in fp32), ``solve_tril`` (A in fp32, out 16-bit), ``recompute_w_u`` (k,
#: v, A in; w, u out), ``chunk_gated_delta_rule_fwd_h`` (k, w, u in; states h and v_new
#: out), ``chunk_fwd_o`` (q, k, v_new, h in; o out): keys 14, values 12, chunk 12, state
#: 4 bytes per element. Backward: w, u and h recomputed as above, ``chunk_bwd_dv_local``,
#: ``chunk_gated_delta_rule_bwd_dhu`` (dh out), ``chunk_bwd_dqkwg`` (h and dh in; dq, dk,
#: dw out), ``prepare_wy_repr_bwd``: keys 34, values 30, chunk 4, state 8.
GDN_TRAFFIC = (KernelTraffic(keys=14.0, values=12.0, chunk=12.0, state=4.0),
               KernelTraffic(keys=34.0, values=30.0, chunk=4.0, state=8.0))
#: mamba_ssm ``mamba_chunk_scan_combined`` (mamba_ssm/ops/triton/ssd_combined.py), no z
#: (Megatron-LM gates in its own norm). Forward: ``_chunk_state_fwd`` (B, x in; chunk
#: states out in fp32), ``_state_passing_fwd`` (fp32 in, 16-bit out), ``_bmm_chunk_fwd``
#: (C, B in; ``C B^T`` out in fp32), ``_chunk_scan_fwd`` (``C B^T``, x, C, states in; out):
#: keys 8, values 6, chunk 8, state 12. Backward: ``C B^T`` and the states recomputed
#: (state passing in fp32), ``_chunk_scan_bwd_dstates`` (dout, C in; dstates out in
#: fp32), ``_state_passing_bwd`` (states, dstates in fp32; both out 16-bit),
#: ``_chunk_scan_chunk_state_bwd_dx`` (x, dout twice, ``C B^T``, B, dstates in; dx out),
#: ``_chunk_scan_bwd_dC``, ``_chunk_state_bwd_db``, ``_chunk_scan_bwd_dcb`` (dCB out in
#: fp32), ``_bmm_chunk_bwd`` and the two ``ddAcs`` kernels: keys 32, values 26, chunk
#: 24, state 36.
SSD_TRAFFIC = (KernelTraffic(keys=8.0, values=6.0, chunk=8.0, state=12.0),
               KernelTraffic(keys=32.0, values=26.0, chunk=24.0, state=36.0))

#: Each catalog mixer kind's law. Gated DeltaNet: chunk 64 (flash-linear-attention's
#: ``chunk_gated_delta_rule``, ``BT = 64``); a step reads ``S^T k`` (2), subtracts the
#: rank-one delta update (2), decays (1) and reads the query (2): 7 per state element.
#: Mamba-2: chunk 256 (mamba_ssm ``Mamba2(chunk_size=256)``); a step decays (1), adds
#: ``dt x B^T`` (2) and reads ``C`` (2): 5.
MIXERS: dict[str, MixerLaw] = {
    "gated-deltanet": MixerLaw(head_scalars=2, chunk=64, step_flops_per_state=7.0,
                               chunk_flops=_deltanet_chunk_flops, expand_keys=True,
                               forward_traffic=GDN_TRAFFIC[0],
                               backward_traffic=GDN_TRAFFIC[1], recompute_conv=False),
    "mamba2": MixerLaw(head_scalars=1, chunk=256, step_flops_per_state=5.0,
                       chunk_flops=_ssd_chunk_flops, expand_keys=False,
                       forward_traffic=SSD_TRAFFIC[0], backward_traffic=SSD_TRAFFIC[1],
                       recompute_conv=True),
}
assert set(MIXERS) == set(get_args(MixerKind)), "a catalog mixer kind without its law"
