"""Sweeps end to end, on real components: SQLite files, a process pool, a local Ray
cluster on 127.0.0.1, and the ``ocplan sweep`` command killed with SIGKILL midway.

Every run stores into its own SQLite file; the rows of a clean local run are the
reference the Ray run and the killed-then-resumed run must equal exactly.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.cli.main import main
from ocplan.errors import SpecError
from ocplan.store.db import open_store
from ocplan.sweep.runner import DELAY_ENV, SweepReport, run_sweep
from ocplan.sweep.spec import Sweep, SweepSpec, expand_sweep, load_sweep
from sweepkit import pinned_sweep_env

ROOT = Path(__file__).resolve().parents[1]
#: 2 models x 2 chips x 2 sizes: 8 searches of well under a second each.
SWEEP: dict[str, Any] = {
    "name": "tiny",
    "models": ["llama3-8b", "llama2-7b"],
    "chips": ["h100-sxm-80gb", "mi300x"],
    "cluster_sizes": [8, 16],
    "global_batch": 64,
    "seq_len": 2048,
    "precision": "bf16",
    "objective": "throughput",
    "top_k": 2,
}
N_TASKS = 8

Rows = dict[str, tuple[dict[str, Any], dict[str, Any]]]


@pytest.fixture(scope="module", autouse=True)
def _clean_env() -> Iterator[None]:
    with pinned_sweep_env("test-sweep"):
        yield


def write_sweep(folder: Path, filename: str = "sweep.yaml", **changes: Any) -> Path:
    data = dict(SWEEP)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path = folder / filename
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def db_rows(db: Path) -> Rows:
    """key -> (inputs, result), read with sqlite3 itself."""
    with sqlite3.connect(db) as con:
        return {k: (json.loads(i), json.loads(r))
                for k, i, r in con.execute("SELECT key, inputs, result FROM results")}


def db_count(db: Path) -> tuple[int, int]:
    """(rows, distinct keys); (0, 0) while the table does not exist yet."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            n, distinct = con.execute("SELECT count(*), count(DISTINCT key) "
                                      "FROM results").fetchone()
            return int(n), int(distinct)
    except sqlite3.OperationalError:
        return 0, 0


def ocplan_cmd(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``ocplan ARGS`` as a separate process in its own session (so that it and its
    worker processes can be killed as one group)."""
    return subprocess.Popen([sys.executable, "-m", "ocplan.cli.main", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ | (env or {}), start_new_session=True)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, SweepReport]:
    """A clean local run of the tiny sweep: (sweep file, its SQLite file, report)."""
    folder = tmp_path_factory.mktemp("clean")
    sweep_file = write_sweep(folder)
    db = folder / "clean.db"
    with open_store(f"sqlite:///{db}") as store:
        report = run_sweep(load_sweep(sweep_file), store, "local", workers=2)
    return sweep_file, db, report


# ---- (a) local backend, resumable ------------------------------------------------------

def test_local_sweep_stores_one_row_per_task_and_a_rerun_runs_nothing(
        clean: tuple[Path, Path, SweepReport]) -> None:
    sweep_file, db, report = clean
    assert report.counts() == {"tasks": N_TASKS, "skipped": 0, "ran": N_TASKS, "failed": 0}
    rows = db_rows(db)
    assert set(rows) == {t.key for t in report.tasks}
    assert db_count(db) == (N_TASKS, N_TASKS)
    for task in report.tasks:
        inputs, result = rows[task.key]
        assert inputs == task.inputs
        assert (inputs["model"], inputs["chip"], inputs["chips"]) == \
            (task.workload.model.name, task.hardware, task.chips)
        assert "elapsed_s" not in result
        assert result["objective"] == "throughput"
        assert len(result["top"]) <= 2
    # the grid is models x chips x sizes, in file order
    assert [(t.workload.model.name, t.hardware, t.chips) for t in report.tasks] == [
        (m, c, n) for m in SWEEP["models"] for c in SWEEP["chips"]
        for n in SWEEP["cluster_sizes"]]
    with open_store(f"sqlite:///{db}") as store:
        again = run_sweep(load_sweep(sweep_file), store, "local", workers=2)
        assert again.counts() == {"tasks": N_TASKS, "skipped": N_TASKS, "ran": 0, "failed": 0}
        assert all(s.status == "stored" for s in again.summaries(store))
        assert [r.sweep for r in store.rows()] == ["tiny"] * N_TASKS
        timed = [r.elapsed_s for r in store.rows()]
        assert all(t is not None and t > 0 for t in timed)
        assert {r.code for r in store.rows()} == {"test-sweep"}
    assert db_rows(db) == rows
    assert db_count(db) == (N_TASKS, N_TASKS)


def test_a_grown_sweep_runs_only_the_new_tasks(clean: tuple[Path, Path, SweepReport],
                                               tmp_path: Path) -> None:
    _, db, _ = clean
    copy = tmp_path / "copy.db"
    shutil.copyfile(db, copy)
    grown = write_sweep(tmp_path, cluster_sizes=[8, 16, 32], models=["llama3-8b"])
    with open_store(f"sqlite:///{copy}") as store:
        report = run_sweep(load_sweep(grown), store, "local", workers=2)
    # llama3-8b on 2 chips x {8, 16} were stored; x 32 is new
    assert report.counts() == {"tasks": 6, "skipped": 4, "ran": 2, "failed": 0}
    assert db_count(copy) == (N_TASKS + 2, N_TASKS + 2)


@pytest.mark.parametrize(("stored", "why"), [
    ("{not json", "its stored JSON does not parse"),
    ("[]", "its stored result is not a JSON object"),
    ('{"best": {"tokens_per_s_per_chip": "abc"}}', "its stored tokens_per_s_per_chip is not"),
])
def test_a_damaged_stored_row_is_named_not_a_traceback(
        clean: tuple[Path, Path, SweepReport], tmp_path: Path,
        capsys: pytest.CaptureFixture[str], stored: str, why: str) -> None:
    """A row edited or damaged in the store (a QA pass wrote three kinds) had crashed
    ``ocplan sweep`` with a traceback: one line names the store, the row and what to do."""
    sweep_file, db, report = clean
    copy = tmp_path / "damaged.db"
    shutil.copyfile(db, copy)
    key = report.tasks[0].key
    with contextlib.closing(sqlite3.connect(copy)) as con:
        con.execute("UPDATE results SET result = ? WHERE key = ?", (stored, key))
        con.commit()
    rc = main(["sweep", str(sweep_file), "--db", f"sqlite:///{copy}"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert f"sqlite:///{copy}" in lines[0]
    assert key[:20] in lines[0]
    assert why in lines[0]
    # deleting the row, as the line says, runs its task again
    with contextlib.closing(sqlite3.connect(copy)) as con:
        con.execute("DELETE FROM results WHERE key = ?", (key,))
        con.commit()
    with open_store(f"sqlite:///{copy}") as store:
        again = run_sweep(load_sweep(sweep_file), store, "local", workers=1)
        assert again.ran == frozenset({key})
        assert len(again.summaries(store)) == N_TASKS


# ---- (b) the Ray backend on a real local cluster ----------------------------------------

def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _session_pids(sid: int) -> list[int]:
    """Processes of session ``sid`` (the cluster this test started, nothing else)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A real single-node Ray cluster on 127.0.0.1 (2 CPUs, 100 MB object store)."""
    with _ray_head(2) as address:
        yield address


@contextlib.contextmanager
def _ray_head(cpus: int) -> Iterator[str]:
    """A single-node Ray cluster of ``cpus`` CPUs on 127.0.0.1, its address.

    Started with ``ray start --head --block`` in a session of its own and stopped by
    SIGTERM to that process (it then drains and stops its daemons), with SIGKILL to
    any process left in that session after. ``ray stop`` is not used: it would stop
    every Ray cluster on the machine, not only this one.
    """
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'ocplan[ray]')")
    ray_exe = Path(sys.executable).with_name("ray")
    exe = str(ray_exe) if ray_exe.exists() else shutil.which("ray")
    if exe is None:
        pytest.skip("Ray is importable but its 'ray' command is not on PATH")
    # a short temp dir: Ray's socket paths must stay under 107 characters
    temp = Path(tempfile.mkdtemp(prefix="ocray"))
    port, client, dash, agent, metrics, env_agent = _free_ports(6)
    log_path = temp / "ray-start.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [exe, "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1",
         f"--num-cpus={cpus}", "--include-dashboard=false", f"--temp-dir={temp}",
         "--object-store-memory=100000000", "--disable-usage-stats",
         f"--ray-client-server-port={client}", f"--dashboard-port={dash}",
         f"--dashboard-agent-listen-port={agent}", f"--metrics-export-port={metrics}",
         f"--runtime-env-agent-port={env_agent}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env=os.environ | {"RAY_USAGE_STATS_ENABLED": "0"})
    try:
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in log_path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the Ray head did not start:\n" + log_path.read_text()[-3000:])
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=60)
        for pid in _session_pids(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.wait(timeout=10)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def test_ray_backend_stores_the_same_rows_as_local(
        clean: tuple[Path, Path, SweepReport], ray_cluster: str, tmp_path: Path) -> None:
    import ray

    sweep_file, clean_db, _ = clean
    db = tmp_path / "ray.db"
    with open_store(f"sqlite:///{db}") as store:
        report = run_sweep(load_sweep(sweep_file), store, "ray", address=ray_cluster)
        assert report.counts() == {"tasks": N_TASKS, "skipped": 0, "ran": N_TASKS,
                                   "failed": 0}, report.failed
        assert not ray.is_initialized()  # the driver left the cluster when done
        # resumable on Ray too: nothing new to run (and no need to join the cluster)
        again = run_sweep(load_sweep(sweep_file), store, "ray", address=ray_cluster)
        assert again.counts()["ran"] == 0
    ray_rows, local_rows = db_rows(db), db_rows(clean_db)
    assert set(ray_rows) == set(local_rows)
    for key, (inputs, result) in local_rows.items():
        assert ray_rows[key][0] == inputs
        assert ray_rows[key][1] == result, f"{inputs['model']} on {inputs['chips']} x " \
                                           f"{inputs['chip']} differs between backends"
    # byte for byte, as stored
    with sqlite3.connect(db) as a, sqlite3.connect(clean_db) as b:
        query = "SELECT key, kind, inputs, result, code FROM results ORDER BY key"
        assert a.execute(query).fetchall() == b.execute(query).fetchall()


def test_ray_backend_gives_up_on_a_cluster_that_runs_nothing(tmp_path: Path) -> None:
    """A real cluster with no CPU takes the tasks and never runs them (Ray waits for ever
    for a CPU, as it does for workers that never register): the sweep ends with one line
    naming the address, stores nothing, and leaves the cluster."""
    import ray

    sweep_file = write_sweep(tmp_path, cluster_sizes=[8], models=["llama3-8b"],
                             chips=["mi300x"])
    with _ray_head(0) as address, open_store(f"sqlite:///{tmp_path / 'x.db'}") as store:
        t0 = time.monotonic()
        with pytest.raises(SpecError) as info:
            run_sweep(load_sweep(sweep_file), store, "ray", address=address,
                      ray_stall_s=3.0)
        assert time.monotonic() - t0 < 60
        assert store.count() == 0
        assert not ray.is_initialized()
    (problem,) = info.value.problems
    assert (problem.source, problem.field, problem.value) == ("--address", "address", address)
    assert "finished no task in 3 s" in problem.message


def test_ray_backend_reports_an_unreachable_cluster(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'ocplan[ray]')")
    (port,) = _free_ports(1)  # nothing listens there
    sweep_file = write_sweep(tmp_path, cluster_sizes=[8], models=["llama3-8b"],
                             chips=["mi300x"])
    with open_store(f"sqlite:///{tmp_path / 'x.db'}") as store:
        with pytest.raises(SpecError) as info:
            run_sweep(load_sweep(sweep_file), store, "ray", address=f"127.0.0.1:{port}")
        assert store.count() == 0
    (problem,) = info.value.problems
    assert (problem.source, problem.field) == ("--address", "address")
    assert "no Ray cluster answers there" in problem.message


# ---- (c) SIGKILL midway, then resume -----------------------------------------------------

def test_a_killed_sweep_resumes_to_the_clean_result(
        clean: tuple[Path, Path, SweepReport], tmp_path: Path) -> None:
    sweep_file, clean_db, _ = clean
    db = tmp_path / "killed.db"
    url = f"sqlite:///{db}"
    # each task sleeps 0.5 s first, so 8 tasks on 2 workers take ~2 s after start-up
    proc = ocplan_cmd("sweep", str(sweep_file), "--db", url, "--workers", "2",
                      env={DELAY_ENV: "0.5"})
    try:
        deadline = time.monotonic() + 120
        while True:
            n, _ = db_count(db)
            if n >= 1:
                break
            assert proc.poll() is None, f"the sweep ended before any row was seen: " \
                                        f"{proc.communicate()}"
            assert time.monotonic() < deadline, "no row stored in 120 s"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    n_killed, distinct = db_count(db)
    assert 1 <= n_killed < N_TASKS, n_killed
    assert distinct == n_killed
    partial = db_rows(db)

    resumed = ocplan_cmd("sweep", str(sweep_file), "--db", url, "--format", "json")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    summary = json.loads(out)
    assert {k: summary[k] for k in ("tasks", "skipped", "ran", "failed")} == \
        {"tasks": N_TASKS, "skipped": n_killed, "ran": N_TASKS - n_killed, "failed": 0}
    assert sorted(r["status"] for r in summary["results"]) == \
        sorted(["stored"] * n_killed + ["new"] * (N_TASKS - n_killed))

    assert db_count(db) == (N_TASKS, N_TASKS)  # every task exactly once
    rows = db_rows(db)
    assert rows == db_rows(clean_db)
    assert all(rows[k] == v for k, v in partial.items())  # stored rows were kept as they were


# ---- the command's output and bad input ---------------------------------------------------

def test_sweep_command_table_and_json(clean: tuple[Path, Path, SweepReport], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    sweep_file, clean_db, report = clean
    db = tmp_path / "cli.db"
    shutil.copyfile(clean_db, db)
    assert main(["sweep", str(sweep_file), "--db", f"sqlite:///{db}"]) == 0
    text = capsys.readouterr().out
    assert f"{N_TASKS} tasks, {N_TASKS} already stored, 0 run, 0 failed" in text
    assert "best layout per task" in text
    # the best layout's figures under the comparison's labels (ocplan.reports.summary)
    for label in ("best layout", "tokens/s per chip", "step time", "MFU"):
        assert label in text
    assert "tok/s/chip" not in text
    assert main(["sweep", str(sweep_file), "--db", f"sqlite:///{db}", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["sweep"] == "tiny"
    assert [r["key"] for r in data["results"]] == [t.key for t in report.tasks]
    rows = db_rows(clean_db)
    for r in data["results"]:
        assert r["best"] == rows[r["key"]][1]["best"]
        # the one layout label, as the table prints it (the start of each best's cell)
        label = api.layout_label(r["best"])
        assert r["best"]["layout"] == label
        assert label.split(", ")[0] in text


def test_a_task_nothing_fits_says_why_in_the_table(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """NVFP4 on a chip with and one without a 4-bit unit: the sweep succeeds, the H100
    task has no layout, and its table row gives the reason the JSON row gives (not a bare
    "no layout fits")."""
    sweep_file = tmp_path / "fp4.yaml"
    sweep_file.write_text(yaml.safe_dump({
        "name": "fp4", "models": ["llama3-8b"], "chips": ["gb200", "h100-sxm-80gb"],
        "cluster_sizes": [8], "global_batch": 64, "seq_len": 2048, "precision": "fp4",
        "top_k": 1}), "utf-8")
    db = f"sqlite:///{tmp_path / 'fp4.db'}"
    assert main(["sweep", str(sweep_file), "--db", db, "--workers", "1"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert main(["sweep", str(sweep_file), "--db", db, "--format", "json"]) == 0
    results = {r["chip"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert results["gb200"]["best"] is not None
    assert results["h100-sxm-80gb"]["best"] is None
    reason = results["h100-sxm-80gb"]["row"]["reason"]
    assert reason.startswith("No layout fits: precision: h100-sxm-80gb has no fp4 matrix unit")
    assert "No layout fits: precision: h100-sxm-80gb has no fp4" in text


@pytest.mark.parametrize(("changes", "field", "value"), [
    ({"models": ["llama3-8b", "no-such-model"]}, "models[1]", "no-such-model"),
    ({"chips": ["h100-sxm-80gb", "h100-sxm"]}, "chips[1]", "h100-sxm"),
    ({"systems": ["x.yaml"]}, "", None),  # both chips and systems
    ({"precision": "fp6"}, "precision", "fp6"),
    ({"objective": "speed"}, "objective", "speed"),
    ({"cluster_sizes": []}, "cluster_sizes", None),
    ({"cluster_sizes": [8, 8]}, "cluster_sizes", 8),
    ({"top_k": 0}, "top_k", 0),
    ({"colour": "blue"}, "colour", "blue"),
    ({"name": None}, "name", None),
])
def test_bad_sweep_files_exit_2_and_write_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, Any],
        field: str, value: Any) -> None:
    sweep_file = write_sweep(tmp_path, **changes)
    db = tmp_path / "never.db"
    rc = main(["sweep", str(sweep_file), "--db", f"sqlite:///{db}"])
    cap = capsys.readouterr()
    assert rc == 2
    assert cap.out == ""
    lines = cap.err.strip().splitlines()
    assert lines
    assert all(line.startswith(str(sweep_file)) for line in lines), lines
    assert any(f": {field}" in line for line in lines) if field else True
    if value is not None:
        assert any(repr(value) in line or str(value) in line for line in lines), lines
    assert not db.exists()


def test_bad_options_exit_2(clean: tuple[Path, Path, SweepReport], tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    sweep_file = clean[0]
    db = tmp_path / "never.db"
    for args, flag in ((["--backend", "spark"], "--backend"),
                       (["--address", "127.0.0.1:1"], "--address"),
                       (["--db", "nope://"], "--db")):
        rc = main(["sweep", str(sweep_file), "--db", f"sqlite:///{db}", *args])
        cap = capsys.readouterr()
        assert rc == 2, args
        assert cap.err.startswith(flag), cap.err
    assert not db.exists()
    missing = tmp_path / "missing.yaml"
    assert main(["sweep", str(missing)]) == 2
    assert capsys.readouterr().err.startswith(f"{missing}: file not found")


def test_a_plain_file_path_is_an_sqlite_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """``--db results.db`` (no URL scheme) is an SQLite file at that path, the same store
    as ``sqlite:///results.db``: a rerun through the URL finds every task stored; a
    mistyped URL keeps its own one-line error."""
    monkeypatch.chdir(tmp_path)
    sweep_file = tmp_path / "one.yaml"
    sweep_file.write_text(yaml.safe_dump({
        "name": "one", "models": ["llama3-8b"], "chips": ["h100-sxm-80gb"],
        "cluster_sizes": [8], "global_batch": 64, "seq_len": 2048, "top_k": 1}), "utf-8")
    assert main(["sweep", str(sweep_file), "--db", "results.db", "--workers", "1"]) == 0
    assert (tmp_path / "results.db").is_file()
    capsys.readouterr()
    assert main(["sweep", str(sweep_file), "--db", "sqlite:///results.db",
                 "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped"] == 1
    assert main(["sweep", str(sweep_file), "--db", "postgres:/typo"]) == 2
    assert capsys.readouterr().err.startswith("--db: db = 'postgres:/typo': not a usable")
    assert not (tmp_path / "postgres:").exists()


def test_system_file_sweeps(tmp_path: Path) -> None:
    system = ROOT / "examples" / "ubb-1024-liquid.yaml"
    catalog = load_catalog()
    spec = SweepSpec.model_validate(SWEEP | {"chips": None, "systems": [str(system)]})
    tasks = expand_sweep(spec, catalog)
    assert [(t.hardware, t.chips) for t in tasks] == [(str(system), n) for _ in SWEEP["models"]
                                                      for n in SWEEP["cluster_sizes"]]
    assert all(t.inputs["chip"] == "mi355x" for t in tasks)
    # relative to the sweep file; a size larger than the system is reported, with the file
    local = tmp_path / "sys.yaml"
    shutil.copyfile(system, local)
    sweep_file = write_sweep(tmp_path, chips=None, systems=["sys.yaml"],
                             cluster_sizes=[8, 100_000])
    with pytest.raises(SpecError) as info:
        expand_sweep(load_sweep(sweep_file), catalog)
    (problem,) = info.value.problems
    assert (problem.source, problem.field, problem.value) == \
        (str(sweep_file), "cluster_sizes[1]", 100_000)
    bad = write_sweep(tmp_path, "bad.yaml", chips=None, systems=["nowhere.yaml"])
    with pytest.raises(SpecError) as info:
        expand_sweep(load_sweep(bad), catalog)
    assert info.value.problems[0].field == "systems[0]"
    assert any("file not found" in p.message for p in info.value.problems)
    # the same grid from a Sweep gives the same keys as from its spec
    assert [t.key for t in expand_sweep(Sweep(spec), catalog)] == [t.key for t in tasks]


def test_servers_axis_populates_each_board() -> None:
    from ocplan.catalog.catalog import load_catalog
    from ocplan.errors import SpecError
    from ocplan.sweep.spec import SweepSpec, expand_sweep

    cat = load_catalog()
    spec = SweepSpec(name="boards", models=["llama3-8b"], chips=["mi300x"],
                     servers=["supermicro-as-8125gs-tnmr2", "nf5698g7"], cluster_sizes=[16],
                     global_batch=128, seq_len=4096, top_k=1)
    tasks = expand_sweep(spec, cat, code="test")
    assert [t.system.server.id for t in tasks] == ["supermicro-as-8125gs-tnmr2", "nf5698g7"]
    assert {t.system.baseboard.id for t in tasks} == {"amd-mi300x-ubb", "ubb-1.5-fc8"}
    assert all(t.system.accelerator.id == "mi300x" for t in tasks)
    assert len({t.key for t in tasks}) == 2
    bad = spec.model_copy(update={"servers": ["nf5698g8"]})
    with pytest.raises(SpecError) as info:
        expand_sweep(bad, cat, code="test")
    line = info.value.problems[0].line()
    assert "servers[0]" in line
    assert "nf5698g7" in line   # the suggestion


def test_a_system_file_sweep_stores_the_compare_columns(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    """Issue 11: sweeps accept system files and store the columns of ``ocplan compare``
    (time, energy and cost to train, power, findings), equal to what compare gives."""
    valid = ROOT / "examples" / "mx1-8oam-air.yaml"
    invalid = ROOT / "examples" / "nf5698g7-mi300x.yaml"
    sweep_file = write_sweep(tmp_path, chips=None, systems=[str(valid), str(invalid)],
                             models=["llama3-8b"], cluster_sizes=[8], top_k=1,
                             train_tokens=1e11, price_per_chip_hour=2.0)
    db = tmp_path / "money.db"
    assert main(["sweep", str(sweep_file), "--db", f"sqlite:///{db}", "--workers", "1",
                 "--format", "json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    rows = {r["hardware"]: r["row"] for r in results}
    assert set(rows) == {str(valid), str(invalid)}
    assert main(["compare", str(valid), "--model", "llama3-8b", "--global-batch", "64",
                 "--seq-len", "2048", "--train-tokens", "1e11", "--price", "2",
                 "--format", "json"]) == 0
    ref = json.loads(capsys.readouterr().out)["systems"][0]
    got = rows[str(valid)]
    for key in ("tokens_per_s_per_chip", "time_to_train_s", "energy_to_train_J",
                "cost_to_train", "it_power_W", "facility_power_W", "memory_headroom_pct"):
        assert got[key] == pytest.approx(ref[key]), key
    assert got["allowed_invalid"] is False
    # the invalid system is searched (a sweep maps the space) but says so in its row
    assert rows[str(invalid)]["allowed_invalid"] is True
    assert any(f["severity"] == "error" for f in rows[str(invalid)]["findings"])
    stored = db_rows(db)
    assert all("row" in result for _, result in stored.values())
    assert all(inputs["train_tokens"] == 1e11 for inputs, _ in stored.values())


def test_a_sweep_states_its_optimizer_states(tmp_path: Path) -> None:
    """A sweep's Adam state recipe reaches every task's workload and its stored inputs,
    so fp32 and BF16-moment sweeps of one grid are different results; an unknown recipe
    is refused naming the file, the field and the recipes."""
    cat = load_catalog()
    base = SweepSpec(name="states", models=["llama3-8b"], chips=["h100-sxm-80gb"],
                     cluster_sizes=[8], global_batch=64, seq_len=4096, top_k=1)
    fp32 = expand_sweep(base, cat, code="test")
    moments = expand_sweep(base.model_copy(update={"optimizer_states": "bf16_moments"}),
                           cat, code="test")
    assert [t.workload.optimizer_states for t in fp32] == ["fp32"]
    assert [t.workload.optimizer_states for t in moments] == ["bf16_moments"]
    assert [t.inputs["optimizer_states"] for t in moments] == ["bf16_moments"]
    assert {t.key for t in fp32}.isdisjoint({t.key for t in moments})
    with pytest.raises(SpecError) as info:
        load_sweep(write_sweep(tmp_path, optimizer_states="fp8"))
    line = info.value.problems[0].line()
    assert "sweep.yaml" in line
    assert "optimizer_states" in line
    assert "bf16_moments" in line


#: A serving sweep: 2 models x 2 chips at 8 chips, under a TPOT limit (ranked by goodput).
SERVING_SWEEP: dict[str, Any] = {
    "name": "serve-tiny", "kind": "serving", "models": ["llama3-8b", "qwen3-30b-a3b"],
    "chips": ["h100-sxm-80gb", "mi300x"], "cluster_sizes": [8], "input_len": 2048,
    "output_len": 256, "slo_tpot_s": 0.05, "price_per_chip_hour": 2.5, "top_k": 2}


def test_a_serving_sweep_stores_the_same_rows_on_ray_as_locally(
        ray_cluster: str, tmp_path: Path) -> None:
    """The serving tasks run through the same backends: Ray's rows equal a local run's,
    stored under their own kind."""
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(SERVING_SWEEP), encoding="utf-8")
    dbs = {backend: tmp_path / f"{backend}.db" for backend in ("local", "ray")}
    for backend, db in dbs.items():
        with open_store(f"sqlite:///{db}") as store:
            report = run_sweep(load_sweep(path), store, backend, workers=2,
                               address=ray_cluster if backend == "ray" else None)
            assert report.counts() == {"tasks": 4, "skipped": 0, "ran": 4, "failed": 0}, \
                report.failed
    local, on_ray = db_rows(dbs["local"]), db_rows(dbs["ray"])
    assert local == on_ray
    assert {inputs["kind"] for inputs, _ in local.values()} == {"serving-search"}
    with sqlite3.connect(dbs["ray"]) as con:
        assert {k for (k,) in con.execute("SELECT kind FROM results")} == {"serving-search"}
