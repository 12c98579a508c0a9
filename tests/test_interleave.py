"""Interleaved pipelines with chunks of unequal size: the bubble is paced by the largest
chunk, and the search keeps only the smallest interleave depth of each chunk size."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.plan.layout_arrays import derive_layout
from ocplan.plan.plan import Plan
from ocplan.plan.space import training_space
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

GPT3 = Workload(ModelShape.from_arch(load_catalog().model("gpt3-175b")), 2048, 1536)


def _bubble(pp: int, vpp: int) -> float:
    sizes = {"tp": 8, "pp": pp, "dp": 512 // (8 * pp), "vpp": vpp, "micro_batch": 1}
    lay = Plan.columns(**{k: np.asarray([v]) for k, v in sizes.items()})
    return float(derive_layout(GPT3, lay).bubble_fraction[0])


@pytest.mark.parametrize(("pp", "vpp"), [(4, 1), (4, 2), (4, 8), (4, 12), (8, 3), (8, 12)])
def test_equal_chunks_give_narayanans_bubble(pp: int, vpp: int) -> None:
    # 96 layers: 24 per stage at pp 4, 12 at pp 8; these depths divide them.
    assert _bubble(pp, vpp) == pytest.approx((pp - 1) / vpp, rel=1e-12)


def test_unequal_chunks_cost_the_bubble_of_their_largest() -> None:
    # 24 layers in 11 chunks: the largest holds 3 layers, as with 8 chunks.
    assert _bubble(4, 11) == pytest.approx(_bubble(4, 8), rel=1e-12)
    assert _bubble(4, 11) > (4 - 1) / 11
    assert _bubble(4, 13) == pytest.approx(_bubble(4, 12), rel=1e-12)  # chunks of 2


def test_the_search_keeps_the_smallest_depth_of_each_chunk_size() -> None:
    space = training_space(chips=512, n_layers=96, n_heads=96, n_kv_heads=96, seq_len=2048,
                           global_batch=1536, domain=8)
    cols, pruned = space.candidates()
    assert pruned["dominated"] > 0
    seen = set(zip(cols["pp"].tolist(), cols["vpp"].tolist(), strict=True))
    for pp, vpp in seen:
        per_stage = math.ceil(96 / pp)
        chunk = math.ceil(per_stage / vpp)
        assert vpp == math.ceil(per_stage / chunk), (pp, vpp)
    # Every chunk size of a 24-layer stage is still reachable, by its smallest depth.
    assert {v for p, v in seen if p == 4} == {math.ceil(24 / c) for c in range(1, 25)}
