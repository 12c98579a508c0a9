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
    layer; ``P_edge`` is the larger of the embedding and the LM head with any multi-token
    prediction modules (the end stages hold one each; with p = 1 the one chip holds
    both; the modules' routed experts join ``P_expert``, sharded as the layers' are).
    Where the end stages hold one layer fewer (:func:`~ocplan.plan.plan.end_credit`), the
    larger of ``n`` average layers and ``n - 1`` layers plus the edge."""
    n = d.per_stage
    dense_layers = (n - moe_layers) * shape.mlp_share(False)
    # The last stage's edge is the LM head and any multi-token prediction modules, whose
    # routed experts are sharded as the layers' are; p = 1: one chip holds both edges.
    mtp_expert = shape.mtp_expert_params / (d.ep * d.etp)
    last_dense = float(shape.head_params + shape.mtp_dense_params)
    last_is_edge = (d.pp == 1) | (last_dense / d.tp + mtp_expert
                                  >= shape.embedding_params / d.tp)
    edge = np.where(d.pp > 1, np.where(last_is_edge, last_dense, shape.embedding_params),
                    shape.embedding_params + last_dense)
    edge_expert = np.where(last_is_edge, mtp_expert, 0.0)
    layers_dense = (n * shape.mean_token_mixer_params + dense_layers * shape.dense_mlp_params
                    + moe_layers * shape.moe_dense_params) / d.tp
    layers_expert = moe_layers * shape.moe_experts * shape.expert_params / (d.ep * d.etp)
    # End stages a layer short (end credit): the end stage or a middle one, whichever
    # holds more per chip (a middle stage when one layer outweighs the edge).
    layer = (layers_dense + layers_expert) / np.maximum(n, 1.0)
    end_stage = (d.end_credit == 0) | (edge / d.tp + edge_expert >= layer)
    keep = np.where((d.end_credit > 0) & end_stage, (n - 1.0) / np.maximum(n, 1.0), 1.0)
    dense = layers_dense * keep + np.where(end_stage, edge / d.tp, 0.0)
    expert = layers_expert * keep + np.where(end_stage, edge_expert, 0.0)
    return StageParams(np.asarray(dense, dtype=np.float64), np.asarray(expert, np.float64))
