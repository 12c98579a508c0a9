"""Parameters one chip holds: the dense part (attention, dense MLPs, shared experts,
routers, and the embedding or LM head of an end stage) split by TP, and the routed
experts split by EP and expert-TP (Megatron-Core parallel folding, Liu et al. 2025,
arXiv:2504.14960: expert weights are sharded over ``e t_e`` ranks of the stage)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ocplan.costmodel.roofline import FloatArray
from ocplan.plan.layout_arrays import DerivedLayout
from ocplan.workloads.shape import ModelShape

__all__ = ["StageParams", "stage_params"]


@dataclass(frozen=True)
class StageParams:
    """Parameters per chip on the slowest stage (arrays over layouts)."""

    dense: FloatArray
    expert: FloatArray


def stage_params(shape: ModelShape, d: DerivedLayout, moe_layers: FloatArray) -> StageParams:
    """``P_dense = (n_L P_mix + n_dense P_mlp + n_moe (S P_e + h E) + P_edge) / t`` and
    ``P_expert = n_moe E P_e / (e t_e)`` for a stage of ``n_L`` layers, ``n_moe`` of them
    MoE and ``n_dense`` of the rest with a dense MLP (all, or a layer pattern's share of
    ``-`` layers), ``P_mix`` the attention (or a hybrid's mean attention and recurrent mixer) per
    layer; ``P_edge`` is a stage's edge: the embedding on the first stage, the LM head
    with any multi-token prediction modules on the last (with p = 1 the one chip holds
    both; the modules' routed experts join ``P_expert``, sharded as the layers' are).
    The stage held is the largest per chip of the first stage's layers with its edge, the
    last stage's with its edge, and the fullest stage's ``n`` layers
    (:class:`~ocplan.plan.plan.StageSplit`; an end stage's layers are that share of the
    fullest stage's)."""
    n = d.per_stage
    dense_layers = (n - moe_layers) * shape.mlp_share(False)
    # The last stage's edge is the LM head and any multi-token prediction modules, whose
    # routed experts are sharded as the layers' are; p = 1: one chip holds both edges.
    mtp_expert = shape.mtp_expert_params / (d.ep * d.etp)
    last_dense = float(shape.head_params + shape.mtp_dense_params)
    one = d.pp == 1
    first_edge = shape.embedding_params + np.where(one, last_dense, 0.0)
    last_edge = np.where(one, first_edge, last_dense)
    layers_dense = (n * shape.mean_token_mixer_params + dense_layers * shape.dense_mlp_params
                    + moe_layers * shape.moe_dense_params) / d.tp
    layers_expert = moe_layers * shape.moe_experts * shape.expert_params / (d.ep * d.etp)
    # Per stage: (layers' share of the fullest stage's dense, expert) parameters plus the
    # stage's edge; the largest per chip is the one held.
    per_layer = 1.0 / np.maximum(n, 1.0)
    first = (d.first_layers * per_layer, first_edge / d.tp, 0.0)
    last = (d.last_layers * per_layer, last_edge / d.tp, mtp_expert)
    full = (np.ones_like(n), 0.0, 0.0)

    def held(stage: tuple[FloatArray, FloatArray | float, FloatArray | float]
             ) -> tuple[FloatArray, FloatArray]:
        keep, edge, edge_expert = stage
        return layers_dense * keep + edge, layers_expert * keep + edge_expert

    dense, expert = held(full)
    for stage in (first, last):
        s_dense, s_expert = held(stage)
        larger = s_dense + s_expert > dense + expert
        dense, expert = np.where(larger, s_dense, dense), np.where(larger, s_expert, expert)
    if np.any(d.paired):
        # A bidirectional schedule's rank holds k copies of a rank's layers (DualPipe 2,
        # DualPipeV 1); its first rank holds half of each end stage per copy with both
        # edges (DeepSeek-V3 §3.2.1: the embedding and the head on one rank).
        k = d.param_copies
        ends = 0.5 * k * (d.first_layers + d.last_layers) * per_layer
        pair_dense = layers_dense * ends + (first_edge + last_edge) / d.tp
        pair_expert = layers_expert * ends + mtp_expert
        larger = pair_dense + pair_expert > k * (layers_dense + layers_expert)
        dense = np.where(d.paired, np.where(larger, pair_dense, k * layers_dense), dense)
        expert = np.where(d.paired, np.where(larger, pair_expert, k * layers_expert), expert)
    return StageParams(np.asarray(dense, dtype=np.float64), np.asarray(expert, np.float64))
