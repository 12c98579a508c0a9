"""Sweeps read back from the store (``ocplan sweeps``, :mod:`ocplan.sweep.stored`), on
real SQLite files and a real process pool.

A stored sweep must show exactly what its run computed: the same best layout and
comparison columns, task by task, in grid order, even where another sweep stored a
task first; a task with no stored result shows as missing; a name that is not
recorded, or a hand-damaged record, is one clear line (exit 2).
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from clikit import one_line, run, run_wide
from ocplan.catalog.catalog import load_catalog
from ocplan.errors import SpecError
from ocplan.reports.figures import sweep_figure
from ocplan.reports.summary import SWEEP_COLUMNS_BY_KIND
from ocplan.store.db import open_store
from ocplan.sweep.runner import run_sweep
from ocplan.sweep.spec import grid_size, load_sweep, parse_sweep
from ocplan.sweep.stored import list_sweeps, read_sweep
from sweepkit import pinned_sweep_env

#: 1 model x 1 chip x 2 sizes: two searches of well under a second each.
SWEEP: dict[str, Any] = {
    "name": "pair", "models": ["llama3-8b"], "chips": ["h100-sxm-80gb"],
    "cluster_sizes": [8, 16], "global_batch": 64, "seq_len": 2048, "top_k": 2}


@pytest.fixture(scope="module", autouse=True)
def _clean_env() -> Iterator[None]:
    with pinned_sweep_env("test-stored-sweeps"):
        yield


def write(folder: Path, filename: str = "sweep.yaml", **changes: Any) -> Path:
    path = folder / filename
    path.write_text(yaml.safe_dump(SWEEP | changes, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """A store holding sweep ``pair`` (2 tasks) and sweep ``wider`` (3 tasks, two of
    them ``pair``'s, which ``pair`` stored first), with what each run reported."""
    folder = tmp_path_factory.mktemp("stored-sweeps")
    db = folder / "results.db"
    cat = load_catalog()
    reported = []
    with open_store(str(db)) as store:
        for path in (write(folder), write(folder, "wider.yaml", name="wider",
                                          cluster_sizes=[8, 16, 32])):
            report = run_sweep(load_sweep(path), store, workers=2, catalog=cat)
            assert not report.failed, report.failed
            reported.append({"name": report.name, "ran": len(report.ran),
                             "results": [s.as_json() for s in report.summaries(store)]})
    return db, reported


def test_a_stored_sweep_shows_what_its_run_computed(
        stored: tuple[Path, list[dict[str, Any]]]) -> None:
    db, reported = stored
    assert [r["ran"] for r in reported] == [2, 1], "wider's first two tasks were stored"
    with open_store(str(db)) as store:
        for run in reported:
            view = read_sweep(store, run["name"])
            shown = view.as_json()["results"]
            assert [s["chips"] for s in shown] == [r["chips"] for r in run["results"]]
            for s, r in zip(shown, run["results"], strict=True):
                assert s["status"] == "stored"
                assert (s["key"], s["best"], s["row"]) == (r["key"], r["best"], r["row"])
                assert s["best"]["tokens_per_s_per_chip"] > 0
        # wider shows the tasks pair stored first (the results table credits pair)
        assert read_sweep(store, "wider").counts() == {"tasks": 3, "stored": 3, "missing": 0}
        listing = {s.name: s.as_json() for s in list_sweeps(store)}
    assert {n: (s["kind"], s["tasks"], s["stored"]) for n, s in listing.items()} == {
        "pair": ("training", 2, 2), "wider": ("training", 3, 3)}
    assert list(listing) == ["wider", "pair"], "the most recently run first"


def test_the_command_shows_it_as_json_table_and_csv(
        stored: tuple[Path, list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]) -> None:
    db, reported = stored
    rc, out, err = run(capsys, "sweeps", "wider", "--db", db, "-f", "json")
    assert rc == 0, err
    data = json.loads(out)
    assert (data["sweep"], data["kind"], data["tasks"], data["stored"]) == ("wider", "training",
                                                                            3, 3)
    assert [r["best"] for r in data["results"]] == [r["best"] for r in reported[1]["results"]]
    assert data["spec"]["cluster_sizes"] == [8, 16, 32]

    table = run_wide("sweeps", "wider", "--db", db)
    assert "sweep wider (training)" in table
    assert "3 stored, 0 missing" in table
    for r in data["results"]:
        assert r["best"]["layout"] in table

    rc, out, err = run(capsys, "sweeps", "wider", "--db", db, "-f", "csv")
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    fields = [c.field for c in SWEEP_COLUMNS_BY_KIND["training"]]
    assert list(rows[0]) == ["model", "hardware", "chip", "chips", "status", *fields, "reason"]
    for row, r in zip(rows, data["results"], strict=True):
        assert int(row["chips"]) == r["chips"]
        assert float(row["tokens_per_s_per_chip"]) == r["best"]["tokens_per_s_per_chip"]
        assert float(row["step_s"]) == r["best"]["step_s"]
        assert row["layout"] == r["best"]["layout"]

    rc, out, err = run(capsys, "sweeps", "--db", db, "-f", "json")
    assert [s["name"] for s in json.loads(out)["sweeps"]] == ["wider", "pair"]
    listed = run_wide("sweeps", "--db", db)
    assert "wider" in listed
    assert "pair" in listed


def test_a_task_without_a_result_shows_as_missing(tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    with open_store(str(db)) as store:
        run_sweep(load_sweep(write(tmp_path)), store, workers=2, catalog=load_catalog())
        first = read_sweep(store, "pair").summaries[0].task.key
    with sqlite3.connect(db) as conn:  # as if the task had failed
        conn.execute("DELETE FROM results WHERE key = ?", (first,))
    with open_store(str(db)) as store:
        view = read_sweep(store, "pair")
        assert [s.status for s in view.summaries] == ["missing", "stored"]
        assert view.summaries[0].best is None
        assert [s.as_json()["missing"] for s in list_sweeps(store)] == [1]
    table = run_wide("sweeps", "pair", "--db", db)
    assert "no result stored" in table
    assert "1 missing" in table


def test_a_rerun_of_the_name_replaces_its_record(tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    cat = load_catalog()
    with open_store(str(db)) as store:
        run_sweep(load_sweep(write(tmp_path)), store, workers=2, catalog=cat)
        run_sweep(load_sweep(write(tmp_path, cluster_sizes=[16])), store, workers=1,
                  catalog=cat)
        view = read_sweep(store, "pair")
        assert [s.task.chips for s in view.summaries] == [16]
        assert view.spec["cluster_sizes"] == [16]
        assert len(store.sweeps()) == 1


def test_an_unknown_or_damaged_sweep_is_one_line(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "results.db"
    with open_store(str(db)) as store:
        with pytest.raises(SpecError, match="none is recorded yet"):
            read_sweep(store, "pair")
        run_sweep(load_sweep(write(tmp_path, cluster_sizes=[8])), store, workers=1,
                  catalog=load_catalog())
    rc, out, err = run(capsys, "sweeps", "nope", "--db", db)
    assert one_line(rc, out, err) == (
        f"sqlite:///{db}: sweep = 'nope': no sweep of this name; recorded: pair")
    assert out == ""
    rc, out, _ = run(capsys, "sweeps", "nope", "--db", db, "-f", "json")
    assert rc == 2
    assert "recorded: pair" in json.dumps(json.loads(out))

    with sqlite3.connect(db) as conn:  # a hand-edited record
        conn.execute("UPDATE sweeps SET tasks = ? WHERE name = 'pair'",
                     (json.dumps([{"key": 5}]),))
    line = one_line(*run(capsys, "sweeps", "pair", "--db", db))
    assert "sweeps = 'pair': task 1 is not a task record" in line
    # the list still lists it, saying why it cannot be shown
    with open_store(str(db)) as store:
        (listed,) = list_sweeps(store)
    assert listed.error is not None
    assert "task 1 is not a task record" in listed.error
    assert "unreadable: task 1 is not a task record" in run_wide("sweeps", "--db", db)


def test_a_forgotten_sweep_leaves_its_results(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "results.db"
    with open_store(str(db)) as store:
        run_sweep(load_sweep(write(tmp_path)), store, workers=2, catalog=load_catalog())
        results = store.count()
    assert results == 2
    line = one_line(*run(capsys, "sweeps", "--delete", "--db", db))
    assert line == "--delete: delete = True: forgets one sweep: give its NAME"
    rc, out, err = run(capsys, "sweeps", "pair", "--delete", "--db", db, "-f", "json")
    assert rc == 0, err
    assert json.loads(out) == {"db": f"sqlite:///{db}", "deleted": "pair"}
    with open_store(str(db)) as store:
        assert store.sweeps() == []
        assert store.count() == results  # a rerun finds every result stored
        again = run_sweep(load_sweep(write(tmp_path)), store, workers=1,
                          catalog=load_catalog())
        assert again.counts()["skipped"] == 2
    assert "recorded: pair" in one_line(*run(capsys, "sweeps", "nope", "--delete",
                                             "--db", db))


def test_the_grid_size_and_a_sweep_from_text(tmp_path: Path) -> None:
    """grid_size counts models x chips x servers x sizes before anything expands; a
    sweep read from text equals the same file read from disk."""
    path = write(tmp_path, models=["llama3-8b", "llama2-7b"], chips=["h100-sxm-80gb", "mi300x"],
                 servers=["dgx-h100", "hgx-h100"], cluster_sizes=[8, 16, 32])
    from_text = parse_sweep(path.read_text(encoding="utf-8"), "typed.yaml")
    assert from_text.spec == load_sweep(path).spec
    assert grid_size(from_text.spec) == 2 * 2 * 2 * 3
    with pytest.raises(SpecError, match=r"typed\.yaml: kind = 'batch'"):
        parse_sweep("kind: batch\n", "typed.yaml")


def _view(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"sweep": "s", "key_figure": "tokens_per_s_per_chip", "results": results}


def _task(model: str, hardware: str, chips: int, rate: float | None) -> dict[str, Any]:
    best = None if rate is None else {"tokens_per_s_per_chip": rate, "layout": "tp=1"}
    return {"model": model, "hardware": hardware, "chips": chips, "best": best}


def test_the_figure_draws_scaling_lines_or_bars() -> None:
    lines = sweep_figure(_view([_task("a", "x", 64, 2.0), _task("a", "x", 8, 1.0),
                                _task("b", "x", 8, None), _task("b", "x", 64, 3.0)]), "rate")
    assert [(t["name"], t["x"], t["y"]) for t in lines["data"]] == [
        ("a on x", [8, 64], [1.0, 2.0]), ("b on x", [64], [3.0])]
    assert lines["layout"]["xaxis"]["type"] == "log"  # 8x or more apart
    assert "annotations" not in lines["layout"]

    bars = sweep_figure(_view([_task("a", "x", 8, 1.0), _task("a", "y", 8, 2.0),
                               _task("b", "y", 8, 4.0)]), "rate")
    assert [(t["type"], t["x"], t["y"]) for t in bars["data"]] == [
        ("bar", ["x", "y"], [1.0, 2.0]), ("bar", ["y"], [4.0])]
    assert bars["layout"]["xaxis"]["title"]["text"] == "hardware (8 chips)"

    empty = sweep_figure(_view([_task("a", "x", 8, None), _task("a", "x", 16, None)]), "rate")
    assert empty["data"] == []
    assert "No points" in empty["layout"]["annotations"][0]["text"]


def test_a_stored_serving_sweep_shows_its_serving_columns(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = ("name: serve\nkind: serving\nmodels: [llama3-8b]\nchips: [h100-sxm-80gb]\n"
            "cluster_sizes: [8]\noutput_len: 128\nslo_tpot_s: 0.05\ntop_k: 1\n")
    db = tmp_path / "results.db"
    with open_store(str(db)) as store:
        report = run_sweep(parse_sweep(text, "serve.yaml"), store, workers=1,
                           catalog=load_catalog())
        (ran,) = report.summaries(store)
        view = read_sweep(store, "serve")
    assert view.kind == "serving"
    assert view.key_figure == "output_tokens_per_s_per_chip"
    (shown,) = view.summaries
    assert (shown.best, shown.row) == (ran.best, ran.row)
    assert shown.best is not None
    assert shown.best["output_tokens_per_s_per_chip"] > 0
    rc, out, err = run(capsys, "sweeps", "serve", "--db", db, "-f", "csv")
    assert rc == 0, err
    (row,) = csv.DictReader(io.StringIO(out))
    assert float(row["output_tokens_per_s_per_chip"]) == shown.best[
        "output_tokens_per_s_per_chip"]
    assert float(row["slo_rate_per_s_per_chip"]) == shown.row["slo_rate_per_s_per_chip"]
