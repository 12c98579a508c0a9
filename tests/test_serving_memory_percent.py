"""The HBM share a serving engine may fill is a layout field (vLLM's
``--gpu-memory-utilization``, SGLang's ``--mem-fraction-static``): given, it replaces the
reserve fitted to published results, which keeps about 30 % of every chip back. The
fitted reserve once turned gpt-oss-120b on one 80 GB H100 (OpenAI's own single-GPU claim;
65.2 GB of weights here) away as not fitting; now the weights need only fit beside the
engine's own reserve, and the cache then keeps a floor share of what they leave, saying so
(the given share sizes it exactly)."""

from __future__ import annotations

import json

import pytest

from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.cli.main import main
from ocplan.serving.calibration import load_serving_calibration
from ocplan.serving.memory import ENGINE_RESERVE_FRACTION, KV_FLOOR_SHARE
from ocplan.serving.plan import ServingPlan

CAT = load_catalog()
JOB = dict(model="gpt-oss-120b", chip="h100-sxm-80gb", chips=1)
#: 72.7 GB of weights: beyond an 80 GB H100 less the engine's 10 %, within 95 % of it
TIGHT = dict(model="llama3-70b", chip="h100-sxm-80gb", chips=1, weight_precision="fp8")


def test_the_given_share_sets_the_reserve() -> None:
    fitted = load_serving_calibration().reserve_fraction
    assert ServingPlan().reserve_fraction(fitted) == fitted
    assert ServingPlan(memory_percent=90).reserve_fraction(fitted) == pytest.approx(0.10)
    full, _, _ = api.run_infer(CAT, api.InferRequest(**JOB, memory_percent=95))
    assert full.feasible
    assert full.memory is not None
    assert full.memory.reserve_bytes == pytest.approx(0.05 * full.memory.capacity_bytes)
    # what the reserve gives up goes to the cache, the weights stay
    assert full.memory.kv_bytes == pytest.approx(
        full.memory.capacity_bytes * 0.95 - full.memory.weight_bytes)
    assert not full.memory.on_floor
    assert not any(n.startswith("tight memory") for n in full.notes)
    # a larger cache holds a larger batch
    less, _, _ = api.run_infer(CAT, api.InferRequest(**JOB, memory_percent=90))
    assert less.feasible
    assert less.batch_per_instance < full.batch_per_instance


def test_weights_beside_the_engine_reserve_run_on_a_floor_cache_and_say_so() -> None:
    default, _, _ = api.run_infer(CAT, api.InferRequest(**JOB))
    assert default.feasible, default.reason
    mem = default.memory
    assert mem is not None
    assert mem.reserve_bytes == pytest.approx(ENGINE_RESERVE_FRACTION * mem.capacity_bytes)
    left = mem.capacity_bytes - mem.reserve_bytes - mem.weight_bytes
    assert mem.on_floor
    assert mem.kv_bytes == pytest.approx(KV_FLOOR_SHARE * left)
    assert mem.held_back_bytes == pytest.approx(left - mem.kv_bytes)
    assert any(n.startswith("tight memory") for n in default.notes)
    # the share given gives the cache all of what it leaves: a larger batch
    given, _, _ = api.run_infer(CAT, api.InferRequest(**JOB, memory_percent=90))
    assert given.memory is not None
    assert given.memory.kv_bytes == pytest.approx(left)
    assert given.batch_per_instance > default.batch_per_instance


def test_weights_beyond_the_engine_reserve_are_refused_unless_a_share_admits_them() -> None:
    default, _, _ = api.run_infer(CAT, api.InferRequest(**TIGHT))
    assert not default.feasible
    assert default.reason is not None
    assert default.reason.startswith("memory")
    assert "--memory-percent" in (api.infeasible_hint(default.reason, serving=True) or "")
    given, _, _ = api.run_infer(CAT, api.InferRequest(**TIGHT, memory_percent=95))
    assert given.feasible, given.reason


def test_a_search_holds_the_share_it_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["infer", "--model", "gpt-oss-120b", "--chip", "h100-sxm-80gb", "--chips", "2",
            "--search", "--format", "json"]
    assert main([*args, "--memory-percent", "92"]) == 0
    found = json.loads(capsys.readouterr().out)
    runs = [r for r in found["results"] if r["feasible"]]
    assert runs
    assert {r["plan"]["memory_percent"] for r in runs} == {92}
    # one-chip instances fit (beside the engine reserve, and at the share given)
    assert any(r["plan"]["tp"] * r["plan"]["pp"] == 1 for r in runs)


@pytest.mark.parametrize("value", ["0", "101"])
def test_a_share_out_of_range_is_refused(value: str, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    assert main(["infer", "--model", "llama3-8b", "--chip", "h100-sxm-80gb", "--chips", "1",
                 "--memory-percent", value]) == 2
    err = capsys.readouterr().err
    assert "memory_percent" in err
    assert value in err
    assert "Traceback" not in err
