"""Serving on tight memory: the weights need only fit beside the engine's own reserve
(vLLM's default 0.9 of HBM), not beside the fitted one (about 30 %, which also stands in
for batch caps the published results leave unstated). Where the weights leave less than
any published result, the cache keeps a floor share of what they leave and the estimate
says it extrapolates. Before, the fitted reserve refused deployments the engines run:
Qwen3-235B in BF16 at TP 8 on eight 80 GB H100s was 2.5 GB short."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.cli.main import main
from ocplan.serving.calibration import load_serving_calibration
from ocplan.serving.estimate import estimate_serving
from ocplan.serving.memory import (
    ENGINE_RESERVE_FRACTION,
    KV_FLOOR_SHARE,
    kv_room_bytes,
    serving_memory,
)
from ocplan.serving.plan import ServingPlan
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.shape import ModelShape

CAT = load_catalog()
GB = 1e9
FITTED = load_serving_calibration().reserve_fraction

# No subnormal byte counts: a floor share of 5e-324 bytes rounds to 0 (hypothesis found
# it), and no memory holds a fraction of a byte.
bytes_ = st.floats(min_value=-50 * GB, max_value=300 * GB, allow_nan=False,
                   allow_subnormal=False)
held = st.floats(min_value=0.0, max_value=100 * GB, allow_nan=False)


def qwen_bf16() -> ServingWorkload:
    shape = ModelShape.from_arch(CAT.model("qwen3-235b-a22b"))
    return ServingWorkload(shape, 1024, 1024, weight_precision="bf16",
                           activation_precision="bf16")


@given(bytes_, bytes_, held)
def test_the_cache_never_shrinks_as_the_weights_leave_more(f1: float, f2: float,
                                                           r: float) -> None:
    lo, hi = sorted((f1, f2))
    a, b = kv_room_bytes(lo, lo - r), kv_room_bytes(hi, hi - r)
    assert a <= b
    for f, kv in ((lo, a), (hi, b)):
        assert kv >= 0.0
        assert (kv > 0.0) == (f > 0.0)     # whatever fits beside the engine gets a cache
        assert kv <= max(f, 0.0)           # never more than the weights leave
        if f > 0.0:
            assert kv >= f - r             # never less than the fitted line


@given(held)
def test_the_floor_meets_the_fitted_line_where_it_takes_over(r: float) -> None:
    # the two branches cross at F = R / (1 - phi): no step in the cache there
    cross = r / (1.0 - KV_FLOOR_SHARE)
    if cross <= 0.0:
        return
    assert kv_room_bytes(cross, cross - r) == pytest.approx(KV_FLOOR_SHARE * cross)


def test_more_hbm_never_gives_a_smaller_cache_and_the_engine_reserve_decides_the_fit(
        ) -> None:
    wl = qwen_bf16()
    plan = ServingPlan(tp=8)
    prev = -1.0
    weights = None
    bands = set()
    for cap_gb in range(50, 161, 2):
        mem = serving_memory(wl, plan, cap_gb * GB, FITTED, wl.running_context)
        weights = mem.weight_bytes
        assert mem.kv_bytes >= prev
        prev = mem.kv_bytes
        assert mem.fits == (weights < (1.0 - ENGINE_RESERVE_FRACTION) * cap_gb * GB)
        assert mem.kv_bytes + mem.held_back_bytes == pytest.approx(
            max(0.0, mem.capacity_bytes - mem.reserve_bytes - weights), abs=1.0)
        bands.add((mem.fits, mem.on_floor))
    # the sweep crosses all three regimes: refused, on the floor, on the fitted line
    assert bands == {(False, False), (True, True), (True, False)}


def test_a_stated_share_has_no_floor_and_holds_nothing_back() -> None:
    wl = qwen_bf16()
    mem = serving_memory(wl, ServingPlan(tp=8, memory_percent=88), 80 * GB, FITTED,
                         wl.running_context)
    assert mem.held_back_bytes == 0.0
    assert not mem.on_floor
    assert mem.kv_bytes == pytest.approx(0.88 * 80 * GB - mem.weight_bytes)


def test_qwen3_235b_bf16_at_tp8_on_eight_h100s_runs_and_says_it_extrapolates() -> None:
    wl = qwen_bf16()
    h100 = system_for_chip(CAT, "h100-sxm-80gb", 8)
    est = estimate_serving(wl, ServingPlan(tp=8), h100)
    assert est.feasible, est.reason
    assert est.memory is not None
    # the fitted reserve alone would leave nothing: the case the floor is for
    assert est.memory.weight_bytes > (1.0 - FITTED) * est.memory.capacity_bytes
    assert est.memory.on_floor
    assert est.output_tokens_per_s_per_chip > 0
    assert any(n.startswith("tight memory") for n in est.notes)
    # the engine's own setting sizes the cache: at vLLM's 0.9 a larger batch, faster
    stated = estimate_serving(wl, ServingPlan(tp=8, memory_percent=90), h100)
    assert stated.memory is not None
    assert stated.memory.kv_bytes > est.memory.kv_bytes
    assert stated.batch_per_instance > est.batch_per_instance
    assert stated.output_tokens_per_s_per_chip >= est.output_tokens_per_s_per_chip
    assert not any(n.startswith("tight memory") for n in stated.notes)


def test_the_cli_shows_what_the_fitted_reserve_holds_back(
        capsys: pytest.CaptureFixture[str]) -> None:
    args = ["infer", "--model", "gpt-oss-120b", "--chip", "h100-sxm-80gb", "--chips", "1"]
    assert main([*args, "-f", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    mem = data["memory"]
    assert mem["on_floor"] is True
    assert mem["held_back_bytes"] > 0
    assert mem["kv_bytes"] == pytest.approx(KV_FLOOR_SHARE * (mem["kv_bytes"]
                                                              + mem["held_back_bytes"]))
    assert any(n.startswith("tight memory") for n in data["notes"])
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "held back by the fitted reserve" in out
    assert "tight memory" in out
