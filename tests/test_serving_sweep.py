"""A serving sweep (``kind: serving``): a grid of serving layout searches, each task's
job built from the serving job's declared fields, run by the same runner into a real
SQLite store; each stored row equals what ``ocplan infer --search --vs`` says of that
system, a rerun runs nothing, and bad files get one line per problem."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from clikit import run
from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.errors import SpecError
from ocplan.store.db import open_store
from ocplan.sweep.runner import run_sweep
from ocplan.sweep.spec import (
    ServingSweepSpec,
    ServingSweepTask,
    SweepTask,
    expand_sweep,
    load_sweep,
)
from ocplan.workloads.options import serving_option_fields
from sweepkit import pinned_sweep_env

CAT = load_catalog()
SERVING: dict[str, Any] = {
    "name": "serve", "kind": "serving", "models": ["llama3-8b", "llama3-70b"],
    "chips": ["h100-sxm-80gb", "mi300x"], "cluster_sizes": [8], "input_len": 2048,
    "output_len": 256, "slo_tpot_s": 0.05, "price_per_chip_hour": 2.5, "top_k": 3,
    "target_rate_per_s": 150, "availability": 0.9999, "repair_s": 86400.0}
#: Measures of a serving comparison's row that a sweep's row must repeat exactly.
MEASURES = ("layout", "output_tokens_per_s_per_chip", "ttft_s", "tpot_s",
            "slo_rate_per_s_per_chip", "cost_per_mtok", "energy_per_mtok_J", "power_W",
            "fleet_replicas", "fleet_spares", "fleet_chips", "fleet_cost_per_hour",
            "fleet_cost_per_mtok")


@pytest.fixture(scope="module", autouse=True)
def _clean_env() -> Iterator[None]:
    with pinned_sweep_env("test-serving-sweep"):
        yield


def _file(folder: Path, **changes: Any) -> Path:
    data = {k: v for k, v in (SERVING | changes).items() if v is not None}
    path = folder / "serve.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_the_spec_takes_every_serving_field() -> None:
    for f in serving_option_fields():
        got = ServingSweepSpec.model_fields[f.name]
        assert (got.default, got.description) == (f.default, f.help), f.name


def test_rows_repeat_the_serving_comparison_and_a_rerun_runs_nothing(
        tmp_path: Path) -> None:
    path = _file(tmp_path)
    with open_store(f"sqlite:///{tmp_path / 'r.db'}") as store:
        report = run_sweep(load_sweep(path), store, "local", workers=2)
        assert report.counts() == {"tasks": 4, "skipped": 0, "ran": 4, "failed": 0}, \
            report.failed
        summaries = report.summaries(store)
        again = run_sweep(load_sweep(path), store, "local", workers=2)
        assert again.counts() == {"tasks": 4, "skipped": 4, "ran": 0, "failed": 0}
        assert [s.row for s in again.summaries(store)] == [s.row for s in summaries]
    for s in summaries:
        assert isinstance(s.task, ServingSweepTask)
        assert s.task.objective == "goodput"  # a latency limit is set
        req = api.InferCompareRequest(
            model=s.task.model_name, chip=s.task.hardware, chips=8, input_len=2048,
            output_len=256, slo_tpot_s=0.05, vs=["b200"], prices=[2.5],
            target_rate_per_s=150, availability=0.9999, repair_s=86400.0)
        compared = api.run_infer_compare(CAT, req, req.vs, req.prices, files=False,
                                         target_rate_per_s=req.target_rate_per_s,
                                         availability=req.availability,
                                         repair_s=req.repair_s)
        want = compared.as_json()["systems"][0]
        assert s.row is not None
        assert s.best is not None
        assert {m: s.row[m] for m in MEASURES} == {m: want[m] for m in MEASURES}, s.task.label
        assert s.best["output_tokens_per_s_per_chip"] == want["output_tokens_per_s_per_chip"]
        assert s.row["note"] == compared.note()
        assert s.row["fleet_chips"] >= 8
        assert s.row["fleet_spares"] is not None


def test_keys_follow_the_job_and_the_kind() -> None:
    (plain, *_) = expand_sweep(ServingSweepSpec(**SERVING), CAT)
    (fp8, *_) = expand_sweep(ServingSweepSpec(**SERVING | {"kv_precision": "fp8"}), CAT)
    assert plain.key != fp8.key
    assert fp8.inputs["kv_precision"] == "fp8"
    assert fp8.workload.kv_precision == "fp8"
    assert plain.inputs["kind"] == ServingSweepTask.store_kind != SweepTask.store_kind
    # no latency limit: ranked by throughput, unless told
    (free, *_) = expand_sweep(ServingSweepSpec(**SERVING | {"slo_tpot_s": None}), CAT)
    assert free.objective == "throughput"
    told = ServingSweepSpec(**SERVING | {"objective": "throughput"})
    assert expand_sweep(told, CAT)[0].objective == "throughput"


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"kind": "inference"}, "kind", "expected one of training, serving"),
    ({"input_len": 0}, "input_len", "must be from 1"),
    ({"expert_weight_precision": "fp4"}, "expert_weight_precision",
     "applies only to a mixture-of-experts model"),
    ({"global_batch": 64}, "global_batch", "unknown field (allowed: name, models"),
    ({"load": "poisson"}, "rate_per_s", "is required with load poisson"),
])
def test_a_bad_file_names_its_field(tmp_path: Path, changes: dict[str, Any], field: str,
                                    words: str) -> None:
    path = _file(tmp_path, **changes)
    with pytest.raises(SpecError) as info:
        expand_sweep(load_sweep(path), CAT)
    problems = [p for p in info.value.problems if p.field == field]
    assert problems, info.value.problems
    assert all(p.source == str(path) for p in info.value.problems)
    assert words in problems[0].message


def test_the_command_prints_the_serving_columns(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    path = _file(tmp_path, models=["llama3-8b"], chips=["h100-sxm-80gb"])
    db = f"sqlite:///{tmp_path / 'c.db'}"
    rc, out, err = run(capsys, "sweep", path, "--db", db, "-f", "json")
    assert rc == 0, err
    answer = json.loads(out)
    assert (answer["kind"], answer["tasks"], answer["ran"]) == ("serving", 1, 1)
    (result,) = answer["results"]
    assert result["row"]["cost_per_mtok"] > 0
    rc, out, err = run(capsys, "sweep", path, "--db", db)
    assert rc == 0, err
    flat = " ".join(out.split())
    assert "already stored" in flat
    assert "TPOT" in flat
    assert "step time" not in flat  # a training column
    assert "SLO goodput: the highest request rate" in flat
