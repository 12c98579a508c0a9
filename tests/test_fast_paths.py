"""The fast paths of the estimators give the numbers of the plain computation.

Batched operator costing against the per-operator cost functions, the serving step
model's memos against a cold evaluation, the training engine's single-layout memos and
grouped collectives against layout-by-layout evaluation, and the memos keyed by the
things that change the answer (fabric, calibration), not only by the layout.
"""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import ScaleOutSpec, system_for_chip
from ocplan.costmodel.op_time import COSTERS, profile
from ocplan.plan import comm_terms, engine, layer_cost
from ocplan.plan.calibration import load_calibration
from ocplan.plan.engine import chip_peaks, evaluate, evaluate_one, system_model
from ocplan.plan.plan import LAYOUT, RECOMPUTE_AUTO, Plan
from ocplan.plan.search import _space
from ocplan.serving import steady, step
from ocplan.serving.calibration import load_serving_calibration
from ocplan.serving.estimate import estimate_serving
from ocplan.serving.plan import ServingPlan
from ocplan.serving.step import step_model
from ocplan.workloads.operators import Shard, head_operators, layer_operators
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

CAT = load_catalog()
LLAMA70 = ModelShape.from_arch(CAT.model("llama3-70b"))
DSV3 = ModelShape.from_arch(CAT.model("deepseek-v3"))
MIXTRAL = ModelShape.from_arch(CAT.model("mixtral-8x7b"))


@pytest.mark.parametrize(("shape", "phase", "layer", "precision", "chip"), [
    (LLAMA70, "forward", 0, "bf16", "h100-sxm-80gb"),
    (LLAMA70, "backward", 0, "fp8", "h100-sxm-80gb"),
    (LLAMA70, "backward", 0, "fp8", "a100-sxm-80gb"),     # fp8 falls back to bf16
    (DSV3, "backward", 5, "fp8", "mi300x"),              # grouped GEMMs, MLA
    (DSV3, "decode", 5, "fp4", "b200"),        # 4-bit, absorbed MLA
    (MIXTRAL, "prefill", 0, "bf16", "h200-sxm-141gb"),
])
def test_batched_costing_equals_each_operator_alone(shape: ModelShape, phase: str,
                                                     layer: int, precision: str,
                                                     chip: str) -> None:
    sm = system_model(system_for_chip(CAT, chip, 8))
    peaks = chip_peaks(sm, "bf16")
    shard = Shard(tp=np.array([1.0, 2.0, 8.0]), batch=np.array([1.0, 4.0, 64.0]),
                  seq_len=1.0 if phase == "decode" else 2048.0,
                  kv_len=np.array([10.0, 900.0, 4096.0]) if phase == "decode" else None,
                  ep=np.array([1.0, 8.0, 8.0]) if shape.is_moe else 1.0, sp=False)
    ops = layer_operators(shape, phase, shard, layer=layer, precision=precision)  # type: ignore[arg-type]
    ops += head_operators(shape, phase, shard)  # type: ignore[arg-type]
    got = profile(ops, peaks, 3)
    for i, op in enumerate(ops):
        one = COSTERS[op.kind](op, peaks)
        np.testing.assert_array_equal(got.compute_s[i], np.broadcast_to(one.compute_s, (3,)))
        np.testing.assert_array_equal(got.memory_s[i], np.broadcast_to(one.memory_s, (3,)))
        assert (got.paths[i], got.categories[i]) == (one.path, one.category)


def _serving_model(chip: str = "h200-sxm-141gb") -> step.StepModel:
    sm = system_model(system_for_chip(CAT, chip, 8))
    wl = ServingWorkload(LLAMA70, 1000, 800, weight_precision="fp8",
                         activation_precision="fp8", kv_precision="fp8")
    return step_model(wl, ServingPlan(tp=4, dp=2), sm, chip_peaks(sm, "bf16"),
                      load_calibration(), load_serving_calibration())


def test_iteration_memo_equals_a_cold_evaluation_and_each_element_alone() -> None:
    m = _serving_model()
    counts = (np.array([0.0, 1000.0, 8192.0, 300.0]), np.array([0.0, 1.0, 8.0, 0.3]),
              np.array([64.0, 0.0, 256.0, 17.0]), np.array([64e3, 0.0, 3e5, 17e3]))
    step._forget()
    cold = m.iteration(*counts, prefill_keys=2000.0)
    warm = m.iteration(*counts, prefill_keys=2000.0)
    direct = m._iteration(*counts, np.maximum(2000.0, np.maximum(
        counts[0] / np.maximum(counts[1], 1.0), 1.0)))
    for f in fields(cold):
        np.testing.assert_array_equal(getattr(cold, f.name), getattr(warm, f.name))
        np.testing.assert_array_equal(getattr(cold, f.name), getattr(direct, f.name))
    step._forget()
    for i in range(4):  # one at a time, memo cold each time
        step._forget()
        one = m.iteration(*(c[i] for c in counts), prefill_keys=2000.0)
        for f in fields(one):
            assert getattr(one, f.name)[0] == getattr(cold, f.name)[i]


@pytest.mark.parametrize(("shape", "phase", "layer", "chip"), [
    (DSV3, "decode", 5, "b200"),         # MoE: a dozen memory-bound operators
    (MIXTRAL, "prefill", 0, "h200-sxm-141gb"),
])
def test_a_layout_alone_sums_to_the_same_bits_as_in_a_batch(shape: ModelShape, phase: str,
                                                             layer: int, chip: str) -> None:
    """numpy sums one column pairwise and several row by row; a layout's seconds must not
    depend on the layouts costed beside it, or an estimate and a search (or a memo filled
    by either) disagree in the last bit, and a ceiling or a bisection downstream with
    them (docs/experiments.md, session 76)."""
    sm = system_model(system_for_chip(CAT, chip, 8))
    peaks, eff = chip_peaks(sm, "bf16"), engine.efficiencies(sm, load_calibration())
    batch = np.array([3.0, 37.0, 250.0, 1.0, 96.0])

    def times(b: np.ndarray) -> tuple[np.ndarray, ...]:
        shard = Shard(tp=2.0, batch=b, seq_len=1.0 if phase == "decode" else 700.0,
                      kv_len=1500.0 if phase == "decode" else None,
                      ep=8.0 if shape.is_moe else 1.0, sp=False)
        ops = layer_operators(shape, phase, shard, layer=layer, precision="fp8")  # type: ignore[arg-type]
        prof = profile(ops, peaks, b.size)
        t = prof.time(eff)
        return (t.matrix_s, t.attention_s, t.memory_s, *prof.work(eff),
                prof.named_s(prof.op_s(eff), frozenset(op.name for op in ops)))

    together = times(batch)
    for i, b in enumerate(batch):
        for got, alone in zip(together, times(np.array([b])), strict=True):
            assert np.broadcast_to(got, batch.shape)[i] == np.ravel(alone)[0]


def test_the_chunk_count_law_of_one_point_is_its_column_in_a_batch() -> None:
    """The Poisson law of the prompt chunks an iteration carries (rows 0 to ``k``, ``k``
    the largest cap of the batch) is the same alone as beside other points, to the bit:
    rows past a point's own cap are exact zeros, which a row-by-row sum passes over and
    a pairwise one does not."""
    units, cap = np.array([0.3, 2.5, 6.0, 11.0, 0.9]), np.array([12.0, 12.0, 12.0, 16.0, 3.0])
    weights, exact = steady._chunk_count_law(units, cap)
    for i in range(units.size):
        alone, exact_alone = steady._chunk_count_law(units[i:i + 1], cap[i:i + 1])
        rows = alone.shape[0]
        np.testing.assert_array_equal(weights[:rows, i], alone[:, 0])
        assert not weights[rows:, i].any()
        assert exact[i] == exact_alone[0]


def test_serving_memo_keeps_fabrics_apart() -> None:
    """The same chips on two scale-out fabrics, an instance whose pipeline stages talk
    across servers: each estimate is what it is alone, whatever was estimated before in
    the process (the memo is keyed by the fabric, not only by the chip and the plan)."""
    fast = system_for_chip(CAT, "h100-sxm-80gb", 16,
                           scale_out=ScaleOutSpec(fabric="ib-ndr-400g", nics_per_server=8))
    slow = system_for_chip(CAT, "h100-sxm-80gb", 16,
                           scale_out=ScaleOutSpec(fabric="roce-100g", nics_per_server=1))
    wl = ServingWorkload(LLAMA70, 1000, 800)
    plan = ServingPlan(tp=8, pp=2)
    step._forget()
    alone = estimate_serving(wl, plan, slow)
    step._forget()
    other = estimate_serving(wl, plan, fast)
    after = estimate_serving(wl, plan, slow)
    assert after == alone
    assert other.iteration is not None
    assert alone.iteration is not None
    assert alone.iteration.comm_s > other.iteration.comm_s


def test_serving_memo_does_not_outlive_a_different_load() -> None:
    """Rates share the iterations but not the operating point."""
    s8 = system_for_chip(CAT, "h200-sxm-141gb", 8)
    plan = ServingPlan(tp=8)
    slow = ServingWorkload(LLAMA70, 1000, 800, load="poisson", rate_per_s=1.0)
    fast = replace(slow, rate_per_s=4.0)
    step._forget()
    fast_alone = estimate_serving(fast, plan, s8)
    step._forget()
    slow_first = estimate_serving(slow, plan, s8)
    assert estimate_serving(fast, plan, s8) == fast_alone
    assert slow_first.requests_per_s < fast_alone.requests_per_s


def test_shared_batch_grid_is_read_only() -> None:
    m = _serving_model()
    from ocplan.serving.steady import _grid
    g = _grid(m, 100.0, "token budget")
    with pytest.raises(ValueError, match="read-only"):
        g.rate[0] = 0.0
    assert _grid(m, 100.0, "token budget") is g


GPT3 = Workload(ModelShape.from_arch(CAT.model("gpt3-175b")), 2048, 1536, "bf16")
SYS = system_for_chip(CAT, "h100-sxm-80gb", 1024)


def test_evaluate_one_equals_evaluate_and_follows_the_calibration() -> None:
    sm, cal = system_model(SYS), load_calibration()
    plan = Plan(tp=8, pp=8, dp=16, vpp=6, zero=1, recompute="selective")
    engine._ONE.clear()
    first = evaluate_one(GPT3, sm, cal, plan)
    again = evaluate_one(GPT3, sm, cal, plan)
    plain = {k: float(v) for k, v in evaluate(GPT3, sm, cal, plan.encoded()).items()}
    assert first == again == plain
    again["step_s"] = 0.0  # a caller's copy: the memo is not changed
    assert evaluate_one(GPT3, sm, cal, plan)["step_s"] == plain["step_s"]
    slower = replace(cal, tp_overlap=0.0)
    assert evaluate_one(GPT3, sm, slower, plan)["tp_comm_s"] > plain["tp_comm_s"]


def test_array_engine_equals_layout_by_layout() -> None:
    """A search chunk (grouped collectives, remembered stage times) against each of its
    layouts alone (the single-layout memos emptied first)."""
    wl = Workload(MIXTRAL, 4096, 512, "bf16")
    system = system_for_chip(CAT, "h100-sxm-80gb", 256)
    cols, _ = _space(wl, system, 256, False).candidates()
    rng = np.random.default_rng(3)
    pick = rng.choice(len(cols["tp"]), size=300, replace=False)
    sub = {k: np.asarray(v)[pick] for k, v in cols.items()}
    # the search evaluates its "auto" recompute rows as none first (search.py)
    none = LAYOUT["recompute"].code("none")
    sub["recompute"] = np.where(sub["recompute"] == RECOMPUTE_AUTO, none, sub["recompute"])
    sm, cal = system_model(system), load_calibration()
    arrays = evaluate(wl, sm, cal, Plan.columns(**sub))
    engine._ONE.clear()
    layer_cost._COMPOSED.clear()
    comm_terms._SCALAR.clear()
    for i in range(0, 300, 7):
        one = evaluate(wl, sm, cal, Plan.columns(**{k: v[i] for k, v in sub.items()}))
        for name, value in one.items():
            assert float(value) == pytest.approx(float(arrays[name][i]), rel=1e-12, abs=0.0), \
                (name, i)
