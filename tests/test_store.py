"""The results store on a real SQLite file: content keys, idempotent and atomic writes."""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import System, system_for_chip
from ocplan.errors import SpecError
from ocplan.store.db import DEFAULT_URL, Store, canonical_json, content_key, open_store
from ocplan.sweep.spec import search_inputs
from ocplan.version import CODE_VERSION_ENV, __version__, code_version, source_digest
from ocplan.workloads.shape import ModelShape
from ocplan.workloads.workload import Workload

INPUTS: dict[str, Any] = {"kind": "search", "model": "llama3-8b", "chips": 8,
                          "nested": {"b": [1, 2.5, None], "a": True}}
RESULT: dict[str, Any] = {"objective": "throughput", "best": {"tp": 1, "mfu": 0.5},
                          "top": [{"tp": 1}], "pruned": {"memory": 3}}


@pytest.fixture(autouse=True)
def _no_env_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCPLAN_CATALOG", raising=False)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "results.db"


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{db}") as s:
        yield s


def raw_rows(db: Path) -> list[tuple[Any, ...]]:
    """The table as SQLite itself sees it (no SQLAlchemy in between)."""
    with sqlite3.connect(db) as con:
        return con.execute("SELECT key, kind, inputs, result, sweep FROM results "
                           "ORDER BY key").fetchall()


# ---- keys -----------------------------------------------------------------------------

def _job(model: str = "llama3-8b", chip: str = "h100-sxm-80gb", n: int = 8,
         **workload: Any) -> tuple[Workload, System, int]:
    cat = load_catalog()
    shape = ModelShape.from_arch(cat.model(model))
    args: dict[str, Any] = {"seq_len": 4096, "global_batch": 256, "precision": "bf16"}
    args.update(workload)
    return Workload(shape, args["seq_len"], args["global_batch"], args["precision"]), \
        system_for_chip(cat, chip, n), n


def _key(model: str = "llama3-8b", chip: str = "h100-sxm-80gb", n: int = 8,
         objective: str = "throughput", top_k: int = 3, code: str = "test-1",
         **workload: Any) -> str:
    wl, system, chips = _job(model, chip, n, **workload)
    return content_key(search_inputs(wl, system, chips, objective, top_k), code)


def test_key_is_a_stable_sha256_of_the_inputs() -> None:
    k = _key()
    assert len(k) == 64
    assert int(k, 16) >= 0
    assert _key() == k  # the same inputs built again: the same key
    # key order and tuple/list do not matter: the canonical JSON is the same
    a = {"x": 1, "y": (1, 2), "z": {"q": 1.5, "p": None}}
    b = {"z": {"p": None, "q": 1.5}, "y": [1, 2], "x": 1}
    assert content_key(a, "v") == content_key(b, "v")
    assert canonical_json(a) == '{"x":1,"y":[1,2],"z":{"p":null,"q":1.5}}'
    # numpy scalars hash as the Python numbers they equal
    assert content_key({"n": np.int64(8), "f": np.float64(0.5)}, "v") == \
        content_key({"n": 8, "f": 0.5}, "v")


@pytest.mark.parametrize("change", [
    {"model": "llama2-7b"}, {"chip": "mi300x"}, {"n": 16}, {"objective": "cost"},
    {"top_k": 4}, {"seq_len": 8192}, {"global_batch": 512}, {"precision": "fp8"},
    {"code": "test-2"},
])
def test_any_input_or_code_change_changes_the_key(change: dict[str, Any]) -> None:
    assert _key(**change) != _key()


def test_model_shape_and_system_spec_are_in_the_key() -> None:
    wl, system, n = _job()
    base = search_inputs(wl, system, n, "throughput", 3)
    deeper = dataclasses.replace(wl, model=dataclasses.replace(wl.model, n_layers=33))
    assert content_key(search_inputs(deeper, system, n, "throughput", 3), "v") != \
        content_key(base, "v")
    pue = system.spec.model_copy(update={"facility": system.spec.facility.model_copy(
        update={"pue": 1.3})})
    other = dataclasses.replace(system, spec=pue)
    assert content_key(search_inputs(wl, other, n, "throughput", 3), "v") != \
        content_key(base, "v")
    # an edited catalog entry (same ids) changes the hardware digest
    hot = system.accelerator.model_copy(update={"name": "renamed"})
    edited = dataclasses.replace(system, accelerator=hot)
    assert search_inputs(wl, edited, n, "throughput", 3)["hardware_sha256"] != \
        base["hardware_sha256"]


def test_default_code_version_is_the_package_version_plus_a_digest(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CODE_VERSION_ENV, raising=False)
    cv = code_version()
    assert cv == f"{__version__}+{source_digest()}"
    assert len(source_digest()) == 12
    assert content_key(INPUTS) == content_key(INPUTS, cv)
    assert content_key(INPUTS) != content_key(INPUTS, __version__)
    # a pinned code version replaces it, in keys too
    monkeypatch.setenv(CODE_VERSION_ENV, "pinned-1")
    assert code_version() == "pinned-1"
    assert content_key(INPUTS) == content_key(INPUTS, "pinned-1") != content_key(INPUTS, cv)


# ---- rows -----------------------------------------------------------------------------

def test_put_get_and_rows_round_trip(store: Store, db: Path) -> None:
    key = content_key(INPUTS, "v1")
    assert store.get(key) is None
    assert store.put(key, kind="search", inputs=INPUTS, result=RESULT, elapsed_s=0.25,
                     code="v1", sweep="s1") is True
    got = store.get(key)
    assert got is not None
    assert (got.key, got.kind, got.inputs, got.result, got.elapsed_s, got.code, got.sweep) == \
        (key, "search", INPUTS, RESULT, 0.25, "v1", "s1")
    other = content_key({"other": 1}, "v1")
    store.put(other, kind="search", inputs={"other": 1}, result={"r": math.inf}, code="v1")
    assert [r.key for r in store.rows()] == sorted([key, other])
    assert [r.key for r in store.rows(sweep="s1")] == [key]
    assert store.rows(sweep="nope") == []
    assert store.get(other) is not None
    assert store.get(other).result == {"r": "Infinity"}  # type: ignore[union-attr]
    # what SQLite holds is the canonical JSON text
    rows = raw_rows(db)
    assert len(rows) == 2
    by_key = {r[0]: r for r in rows}
    assert json.loads(by_key[key][2]) == INPUTS
    assert json.loads(by_key[key][3]) == RESULT
    # a fresh connection (a new process would do the same) sees the same rows
    with open_store(f"sqlite:///{db}") as again:
        assert again.rows() == store.rows()
        assert again.stored_keys([key, "0" * 64]) == {key}
        assert set(again.get_many([key, other, "f" * 64])) == {key, other}


def test_put_is_idempotent(store: Store, db: Path) -> None:
    key = content_key(INPUTS, "v1")
    assert store.put(key, kind="search", inputs=INPUTS, result=RESULT, code="v1")
    first = store.get(key)
    # a second put of the same key (even with another payload) is ignored
    assert not store.put(key, kind="search", inputs=INPUTS, result={"different": 1},
                         code="v1", sweep="later")
    assert store.get(key) == first
    assert store.count() == 1
    assert len(raw_rows(db)) == 1


def test_a_failed_write_in_a_transaction_leaves_no_row(store: Store, db: Path) -> None:
    k1, k2 = content_key({"i": 1}, "v"), content_key({"i": 2}, "v")

    def put_then_fail() -> None:
        with store.transaction() as tx:
            assert tx.put(k1, kind="search", inputs={"i": 1}, result=RESULT, code="v")
            assert store.get(k1) is None  # not visible before the commit
            raise RuntimeError("boom")

    def put_then_bad_put() -> None:
        with store.transaction() as tx:
            tx.put(k1, kind="search", inputs={"i": 1}, result=RESULT, code="v")
            tx.put(k2, kind="search", inputs={"i": 2}, result={"bad": object()}, code="v")

    with pytest.raises(RuntimeError, match="boom"):
        put_then_fail()
    # a result that is not JSON data fails the second put: the first is rolled back too
    with pytest.raises(TypeError):
        put_then_bad_put()
    assert store.get(k1) is None
    assert store.get(k2) is None
    assert raw_rows(db) == []
    # and a single put of a bad result writes nothing
    with pytest.raises(TypeError):
        store.put(k2, kind="search", inputs={"i": 2}, result={"bad": {1, 2}}, code="v")
    with pytest.raises(ValueError, match="64 lower-case hex"):
        store.put("not-a-key", kind="search", inputs={}, result={}, code="v")
    assert store.count() == 0
    # a committed transaction stores all its rows
    with store.transaction() as tx:
        tx.put(k1, kind="search", inputs={"i": 1}, result=RESULT, code="v")
        tx.put(k2, kind="search", inputs={"i": 2}, result=RESULT, code="v")
    assert {r[0] for r in raw_rows(db)} == {k1, k2}


def test_default_url_and_bad_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert DEFAULT_URL == "sqlite:///ocplan.db"
    monkeypatch.chdir(tmp_path)
    with open_store(None) as s:
        assert s.url == DEFAULT_URL
        assert s.count() == 0
    assert (tmp_path / "ocplan.db").is_file()
    for url in ("nope://x", "", "nope:x", f"sqlite:///{tmp_path}/missing/dir/x.db",
                f"{tmp_path}/missing/dir/x.db"):
        with pytest.raises(SpecError) as info:
            open_store(url)
        (problem,) = info.value.problems
        assert (problem.source, problem.field, problem.value) == ("--db", "db", url)
