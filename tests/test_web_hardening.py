"""The workbench under hostile or unlucky input (issue 8, web part), on real servers.

* A body nested deeper than MAX_JSON_DEPTH is refused (400) before anything is stored,
  the store refuses such values itself, and rows in the database that cannot be read
  back (written by other means) do not break the scenario list.
* Computations run in worker processes: /api/health answers while a slow one runs, a
  full queue answers 503, a computation over the time limit answers 504 and its worker
  process is killed; the search jobs' queue is bounded too.
* Every malformed body is a 400 with one line, and the keep-alive connection it came on
  serves the next request.
* Host, Origin, Sec-Fetch-Site and Content-Type rules refuse cross-site requests; every
  answer carries the security headers and the page's Content-Security-Policy.
* An unexpected exception is a JSON 500, and the connection survives it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from ocplan.errors import SpecError
from ocplan.jsonio import MAX_JSON_DEPTH
from ocplan.store.scenarios import open_scenarios
from ocplan.web import workers
from ocplan.web.app import MAX_BODY_BYTES, create_app
from ocplan.web.guard import DOCS_CSP, PAGE_CSP, Guard, normalize_host
from ocplan.web.jobs import JobRunner, JobsBusy

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "src" / "ocplan" / "web" / "static"
EXAMPLE: dict[str, Any] = yaml.safe_load(
    (ROOT / "examples" / "ubb-1024-liquid.yaml").read_text(encoding="utf-8"))
SMALL_SEARCH: dict[str, Any] = {"model": "llama3-8b", "chip": "mi355x", "chips": 64,
                                "global_batch": 256, "seq_len": 4096, "top_k": 3}
#: About 2 s of search on two cores: still running when the next one is submitted.
LONG_SEARCH: dict[str, Any] = {"model": "gpt3-175b", "system": EXAMPLE, "chips": 1024,
                               "global_batch": 1536, "seq_len": 2048, "precision": "fp8"}
JSON = {"content-type": "application/json"}
SECURITY = {"x-content-type-options": "nosniff", "x-frame-options": "DENY",
            "referrer-policy": "no-referrer", "cross-origin-opener-policy": "same-origin",
            "cross-origin-resource-policy": "same-origin"}
#: The issue's longest freeze of /api/health was 10.7 s; an event loop that is not held
#: answers in a few ms, so 100 ms separates the two with room for a loaded machine.
HEALTH_S = 0.1
#: A computation over the 1 s limit of the slow server must be answered well within this.
ANSWERED_S = 5.0


def lines_of(resp: httpx.Response, status: int, *needles: str) -> list[str]:
    """Assert a JSON error answer ``{"detail": [one-line messages]}`` naming each needle."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    lines = resp.json()["detail"]
    assert isinstance(lines, list)
    assert lines
    assert all(isinstance(line, str) and line and "\n" not in line for line in lines)
    for needle in needles:
        assert any(needle in line for line in lines), (needle, lines)
    return lines


def nested(levels: int) -> Any:
    """A JSON value nested ``levels`` deep (``[[...]]``)."""
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def spin_task(body: object, catalog_dirs: tuple[str, ...]) -> workers.Answer:
    """A computation that never ends (CPU-bound); it writes its process id first.
    Module-level, so the worker process imports it by name."""
    assert isinstance(body, dict)
    Path(body["pid_file"]).write_text(str(os.getpid()), encoding="utf-8")
    while True:
        pass


def pid_task(body: object, catalog_dirs: tuple[str, ...]) -> workers.Answer:
    """A quick computation answering its process id."""
    return workers.Answer(body=json.dumps({"pid": os.getpid()}))


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie waiting to be reaped does not).

    A process that ends between the open and the read of its status file makes the
    read fail with ESRCH (ProcessLookupError) rather than ENOENT; both mean gone.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return re.search(r"^State:\s+Z", status, re.MULTILINE) is None


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hardening") / "scenarios.db"


@pytest.fixture(scope="module")
def base(serve: Any, db: Path) -> str:
    """A server with the default limits, and a route that fails as a bug would."""
    app = create_app(f"sqlite:///{db}")

    @app.get("/api/test-bug")
    def bug() -> None:
        raise RuntimeError("a bug")

    return str(serve(app))


@pytest.fixture
def client(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def slow(serve: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any]:
    """A server with one computation worker, no queue and a 1 s limit; one search job
    worker and no job queue. Returns its URL and the app."""
    path = tmp_path_factory.mktemp("slow") / "scenarios.db"
    app = create_app(f"sqlite:///{path}", job_workers=1, job_queue=0, pool_workers=1,
                     pool_queue=0, request_timeout_s=1)
    return str(serve(app)), app


# ---- 1. depth: refused before storing; bad rows never break the list -------------------

def test_deep_result_is_refused_and_the_list_survives(client: httpx.Client) -> None:
    # the issue's ~600-byte body: a result nested 300 levels deep
    body = {"name": "d", "kind": "estimate", "request": {}, "result": {"a": nested(300)}}
    text = json.dumps(body)
    assert len(text) < 700
    lines = lines_of(client.post("/api/scenarios", content=text, headers=JSON), 400,
                     f"nested deeper than {MAX_JSON_DEPTH} levels")
    assert len(lines) == 1
    listed = client.get("/api/scenarios")
    assert listed.status_code == 200, listed.text
    assert "d" not in [s["name"] for s in listed.json()]
    # at the limit it is stored and listed: the body is one level above its result
    deepest = {"name": "deepest", "kind": "estimate", "request": {},
               "result": {"a": nested(MAX_JSON_DEPTH - 2)}}
    saved = client.post("/api/scenarios", json=deepest)
    assert saved.status_code == 201, saved.text
    listed = client.get("/api/scenarios")
    assert listed.status_code == 200, listed.text
    assert saved.json() in listed.json()
    over = deepest | {"result": {"a": nested(MAX_JSON_DEPTH - 1)}}
    lines_of(client.post("/api/scenarios", json=over), 400, "nested deeper")


def test_store_refuses_what_it_could_not_serve_back(tmp_path: Path) -> None:
    store = open_scenarios(f"sqlite:///{tmp_path / 's.db'}")
    with pytest.raises(SpecError, match=f"result: nested deeper than {MAX_JSON_DEPTH}"):
        store.save("deep", "estimate", {}, {"a": nested(MAX_JSON_DEPTH + 1)})
    with pytest.raises(SpecError, match="request: not JSON data"):
        store.save("nan", "estimate", {"x": float("nan")}, {})
    with pytest.raises(SpecError, match="result: not JSON data"):
        store.save("surrogate", "estimate", {}, {"s": "\ud800"})
    with pytest.raises(SpecError, match="name: not JSON data"):
        store.save("\udcff", "estimate", {}, {})
    # a kind the workbench cannot open or load again, named with the ones it can
    with pytest.raises(SpecError, match="kind = 'poem': unknown kind; expected one of "
                                        "estimate, search, system, compare, infer, "
                                        "infer-compare"):
        store.save("poem", "poem", {}, {})
    assert store.all() == []
    ok = store.save("ok", "estimate", {"a": nested(MAX_JSON_DEPTH - 1)}, {})
    assert store.all() == [ok]
    assert store.get(ok.id) == ok


def test_bad_rows_in_the_database_do_not_break_the_list(client: httpx.Client,
                                                        db: Path) -> None:
    good = client.post("/api/scenarios", json={
        "name": "good", "kind": "system", "request": EXAMPLE, "result": {"chips": 1024}})
    assert good.status_code == 201, good.text
    bad_rows = {  # name: (request text, result text, created_at text)
        "bad json": ("{}", '{"a":', "2026-01-01 00:00:00.000000"),
        "too deep": ("{}", '{"a":' + "[" * 300 + "]" * 300 + "}", "2026-01-01 00:00:01"),
        "nan": ('{"x": NaN}', "{}", "2026-01-01 00:00:02"),
        "not an object": ("[1, 2]", "{}", "2026-01-01 00:00:03"),
        "bad time": ("{}", "{}", "yesterday"),
        "surrogate": ("{}", '{"s": "\\ud800"}', "2026-01-01 00:00:04"),
    }
    with sqlite3.connect(db) as con:
        for i, (name, (request, result, created)) in enumerate(bad_rows.items()):
            con.execute("INSERT INTO scenarios (id, name, kind, request, result, created_at) "
                        "VALUES (?, ?, 'estimate', ?, ?, ?)",
                        (f"bad-{i}", name, request, result, created))
    resp = client.get("/api/scenarios")
    assert resp.status_code == 200, resp.text
    listed = {s["name"]: s for s in resp.json()}
    assert listed["good"] == good.json()
    assert "error" not in listed["good"]
    expected = {"bad json": "result: not JSON", "too deep": "result: not accepted: nested",
                "nan": "request: not accepted: NaN", "not an object": "request: not a JSON",
                "bad time": "created_at: not a date",
                "surrogate": "result: not accepted: the string"}
    for name, needle in expected.items():
        row = listed[name]
        assert needle in row["error"], row
        assert set(row) == {"id", "name", "kind", "request", "result", "created_at", "error"}
        one = client.get(f"/api/scenarios/{row['id']}")
        assert one.status_code == 200, one.text
        assert one.json() == row
    assert listed["bad json"]["request"] == {}
    assert listed["bad json"]["result"] is None
    # a bad row can be deleted like any other
    assert client.delete(f"/api/scenarios/{listed['nan']['id']}", headers=JSON).json() == {
        "deleted": listed["nan"]["id"]}
    assert "nan" not in [s["name"] for s in client.get("/api/scenarios").json()]


# ---- 2. computations off the event loop, bounded queues, time limit ------------------

def test_health_answers_while_a_slow_request_runs(slow: tuple[str, Any], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    base, app = slow
    pool: workers.WorkerPool = app.state.pool
    answers: dict[str, tuple[httpx.Response, float]] = {}

    def post(name: str, path: str, body: Any) -> None:
        with httpx.Client(base_url=base, timeout=30) as c:
            start = time.monotonic()
            resp = c.post(path, json=body)
            answers[name] = (resp, time.monotonic() - start)

    def wait_in_flight(thread: threading.Thread) -> None:
        deadline = time.monotonic() + ANSWERED_S
        while pool.in_flight == 0 and thread.is_alive():
            assert time.monotonic() < deadline
            time.sleep(0.005)

    def health_while_in_flight() -> list[float]:
        took = []
        with httpx.Client(base_url=base, timeout=30) as c:
            while pool.in_flight and len(took) < 5:
                start = time.monotonic()
                assert c.get("/api/health").json() == {"status": "ok"}
                took.append(time.monotonic() - start)
        return took

    # the request (a topology of 4,096 servers took about 50 s on two cores):
    # the limit of 1 s answers 504, unless the topology code refuses (422) or
    # summarizes (200) so large a cluster, as it now does; either way promptly
    real = threading.Thread(target=post, args=("real", "/api/topology",
                                               EXAMPLE | {"servers": 4096}))
    real.start()
    wait_in_flight(real)
    took_real = health_while_in_flight()
    real.join(timeout=10)
    resp, elapsed = answers["real"]
    assert resp.status_code in (200, 422, 504), resp.text
    assert elapsed < ANSWERED_S

    # a computation that never ends, by the same route: 504 naming the limit, and its
    # worker process killed. First a quick one, until the worker is up and has imported
    # this module (a new worker's start and that import count against the limit).
    monkeypatch.setattr(workers, "topology_task", pid_task)
    deadline = time.monotonic() + 20
    with httpx.Client(base_url=base, timeout=30) as c:
        while (resp := c.post("/api/topology", json={})).status_code == 504:
            assert time.monotonic() < deadline, resp.text
        assert resp.status_code == 200, resp.text
    monkeypatch.setattr(workers, "topology_task", spin_task)
    pid_file = tmp_path / "pid"
    spin = threading.Thread(target=post, args=("spin", "/api/topology",
                                               {"pid_file": str(pid_file)}))
    spin.start()
    wait_in_flight(spin)
    # the only worker is busy and there is no queue: one more computation is a 503
    with httpx.Client(base_url=base, timeout=30) as c:
        lines_of(c.post("/api/check", json=EXAMPLE), 503, "server busy")
    took_spin = health_while_in_flight()
    spin.join(timeout=10)
    resp, elapsed = answers["spin"]
    lines_of(resp, 504, "longer than the limit of 1 s")
    assert elapsed < ANSWERED_S
    took = took_real + took_spin
    assert len(took_spin) == 5, took_spin
    assert statistics.median(took) < HEALTH_S, took
    assert max(took) < 5 * HEALTH_S, took
    pid = int(pid_file.read_text(encoding="utf-8"))
    deadline = time.monotonic() + ANSWERED_S
    while alive(pid):
        assert time.monotonic() < deadline, f"worker {pid} still runs"
        time.sleep(0.02)
    # a new worker takes its place (its start counts against the 1 s limit: retry)
    monkeypatch.undo()
    deadline = time.monotonic() + 20
    with httpx.Client(base_url=base, timeout=30) as c:
        while (resp := c.post("/api/check", json=EXAMPLE)).status_code == 504:
            assert time.monotonic() < deadline, resp.text
        assert resp.json()["chips"] == 1024


@pytest.mark.parametrize("changes", [{"servers": 1_000_000},
                                     {"servers": 1, "accelerators_per_server": 1_000_000}])
def test_million_server_topology_is_answered_and_health_stays_fast(
        base: str, changes: dict[str, int]) -> None:
    """Issue 8 acceptance: with a 1,000,000-server topology request in flight (and a
    million-module board), /api/health answers within 100 ms and the request is refused
    or answered within 5 s."""
    answers: list[tuple[httpx.Response, float]] = []

    def post() -> None:
        with httpx.Client(base_url=base, timeout=30) as c:
            start = time.monotonic()
            answers.append((c.post("/api/topology", json=EXAMPLE | changes),
                            time.monotonic() - start))

    thread = threading.Thread(target=post)
    thread.start()
    took = []
    with httpx.Client(base_url=base, timeout=30) as c:
        while thread.is_alive() or len(took) < 3:
            start = time.monotonic()
            assert c.get("/api/health").json() == {"status": "ok"}
            took.append(time.monotonic() - start)
    thread.join()
    (resp, elapsed), = answers
    assert elapsed < ANSWERED_S
    lines_of(resp, 422, "1,048,576" if changes.get("servers") == 1_000_000 else "graphs")
    assert statistics.median(took) < HEALTH_S, took


def test_search_job_queue_is_bounded(slow: tuple[str, Any]) -> None:
    base, _ = slow
    with httpx.Client(base_url=base, timeout=30) as c:
        running = c.post("/api/search", json=LONG_SEARCH)
        assert running.status_code == 202, running.text
        # one job worker, no job queue: the next search is refused until it ends
        lines_of(c.post("/api/search", json=SMALL_SEARCH), 503, "server busy")
        job = running.json()["id"]
        assert c.delete(f"/api/jobs/{job}", headers=JSON).status_code == 200
        deadline = time.monotonic() + 30
        while c.get(f"/api/jobs/{job}").json()["status"] not in ("cancelled", "done"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        again = c.post("/api/search", json=SMALL_SEARCH)
        assert again.status_code == 202, again.text
        c.delete(f"/api/jobs/{again.json()['id']}", headers=JSON)


def test_job_runner_frees_a_place_when_a_queued_job_is_cancelled() -> None:
    runner = JobRunner(workers=1, queue=1)
    release = threading.Event()
    try:
        first = runner.submit(lambda _progress: {"ok": release.wait(10)}, lambda _e: None)
        queued = runner.submit(lambda _progress: {}, lambda _e: None)
        with pytest.raises(JobsBusy, match="at most 2"):
            runner.submit(lambda _progress: {}, lambda _e: None)
        assert runner.cancel(queued.id) is queued
        assert queued.status == "cancelled"
        third = runner.submit(lambda _progress: {}, lambda _e: None)
        release.set()
        deadline = time.monotonic() + 10
        while third.status != "done" or first.status != "done":
            assert time.monotonic() < deadline, (first, third)
            time.sleep(0.01)
    finally:
        release.set()
        runner.shutdown()


# ---- 3. malformed bodies: 400, and the connection lives on -----------------------------

MALFORMED = {
    "2000 [": b"[" * 2000,
    '30000 {"a":': b'{"a":' * 30000,
    "a 5000-digit integer": b'{"servers": 1' + b"0" * 5000 + b"}",
    "33 levels": json.dumps(nested(MAX_JSON_DEPTH + 1)).encode(),
    "NaN": b'{"servers": NaN}',
    "Infinity": b"[Infinity]",
    "not UTF-8": b'{"name": "\xff"}',
    "a lone surrogate": b'{"name": "ok", "request": {"x": "\\ud800"}}',
    "truncated": b'{"model": "gpt3-175b",',
}


def test_malformed_bodies_are_400_on_a_kept_alive_connection(client: httpx.Client) -> None:
    def local_port(resp: httpx.Response) -> int:
        port: int = resp.extensions["network_stream"].get_extra_info("client_addr")[1]
        return port

    first = client.get("/api/health")
    port = local_port(first)
    for what, body in MALFORMED.items():
        assert len(body) < MAX_BODY_BYTES, what
        for path in ("/api/check", "/api/topology", "/api/estimate", "/api/search",
                     "/api/scenarios"):
            resp = client.post(path, content=body, headers=JSON)
            assert len(lines_of(resp, 400)) == 1, (what, path)
            # the same connection serves the next request
            health = client.get("/api/health")
            assert health.json() == {"status": "ok"}
            assert local_port(resp) == local_port(health) == port, (what, path)
    # a body that is JSON but not a valid request is still a 422
    lines_of(client.post("/api/check", json={"servers": 10}), 422, "server")


# ---- 4. hosts, origins, content types, security headers --------------------------------

def test_host_header_must_be_allowed(client: httpx.Client, base: str) -> None:
    port = base.rsplit(":", 1)[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}"):
        assert client.get("/api/health", headers={"host": host}).status_code == 200, host
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example",
                 "testserver", "127.0.0.1:notaport", "[::2]:80"):
        lines_of(client.get("/api/health", headers={"host": host}), 400, "host not allowed")
        lines_of(client.post("/api/scenarios", headers={"host": host}, json={
            "name": "x", "kind": "system", "request": {}, "result": {}}), 400,
            "host not allowed")


def test_allowed_hosts_argument() -> None:
    assert normalize_host("::1") == "[::1]"
    assert normalize_host("LocalHost:8000") == "localhost"
    assert normalize_host("[::1]:80") == "[::1]"

    async def ok(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def status(guard: Guard, host: str) -> int:
        transport = httpx.ASGITransport(app=guard)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
            return (await c.get("/", headers={"host": host})).status_code

    named = Guard(ok, token=None, max_body_bytes=10, allowed_hosts=("Example.org", "::1"))
    anyhost = Guard(ok, token=None, max_body_bytes=10, allowed_hosts=("*",))
    assert asyncio.run(status(named, "example.org:8443")) == 200
    assert asyncio.run(status(named, "[::1]")) == 200
    assert asyncio.run(status(named, "127.0.0.1")) == 400
    assert asyncio.run(status(anyhost, "anything.example:1")) == 200


def test_cross_site_requests_are_refused(client: httpx.Client, base: str) -> None:
    scenario = {"name": "csrf", "kind": "system", "request": {}, "result": {}}
    text = json.dumps(scenario)
    # what a page of another site can send without a CORS preflight
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                  None):
        headers = {"origin": "http://evil.example"} if ctype is None else {
            "content-type": ctype}
        resp = client.post("/api/scenarios", content=text, headers=headers)
        assert resp.status_code in (403, 415), resp.text
        lines_of(client.post("/api/search", content=json.dumps(SMALL_SEARCH),
                             headers={"content-type": ctype or "text/plain"}), 415,
                 "Content-Type: application/json")
    lines_of(client.post("/api/scenarios", content=text,
                         headers={"content-type": "text/plain"}), 415, "got text/plain")
    # JSON, but from another origin or site
    for headers in ({"origin": "http://evil.example"}, {"origin": "null"},
                    {"origin": f"http://localhost:{base.rsplit(':', 1)[1]}"},
                    {"sec-fetch-site": "cross-site"}, {"sec-fetch-site": "same-site"}):
        lines_of(client.post("/api/scenarios", json=scenario, headers=headers), 403,
                 "cross-origin request refused")
        lines_of(client.post("/api/search", json=SMALL_SEARCH, headers=headers), 403)
    # a DELETE is refused the same way
    lines_of(client.delete("/api/scenarios/nope"), 415)
    lines_of(client.delete("/api/scenarios/nope",
                           headers=JSON | {"sec-fetch-site": "cross-site"}), 403)
    assert "csrf" not in [s["name"] for s in client.get("/api/scenarios").json()]
    # this origin's own page: accepted
    same = {"origin": base, "sec-fetch-site": "same-origin",
            "content-type": "application/json; charset=utf-8"}
    saved = client.post("/api/scenarios", content=text, headers=same)
    assert saved.status_code == 201, saved.text
    assert client.delete(f"/api/scenarios/{saved.json()['id']}",
                         headers=same).status_code == 200


def test_security_headers_on_every_answer(client: httpx.Client) -> None:
    answers = {
        "/": client.get("/"),
        "/static/app.js": client.get("/static/app.js"),
        "/static/boot.js": client.get("/static/boot.js"),
        "/api/health": client.get("/api/health"),
        "404": client.get("/api/scenarios/nope"),
        "400 host": client.get("/api/health", headers={"host": "evil.example"}),
        "415": client.post("/api/check", content=b"{}"),
        "413": client.post("/api/check", content=b"x" * (MAX_BODY_BYTES + 1), headers=JSON),
        "422": client.post("/api/check", json={}),
        "500": client.get("/api/test-bug"),
    }
    for what, resp in answers.items():
        for name, value in SECURITY.items():
            assert resp.headers.get(name) == value, (what, name)
        assert resp.headers["content-security-policy"] == PAGE_CSP, what
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-security-policy"] == DOCS_CSP
    # the page's policy: this server's scripts only, nothing inline, no eval
    policy = dict(d.strip().split(" ", 1) for d in PAGE_CSP.split(";"))
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert "unsafe" not in PAGE_CSP
    assert policy["frame-ancestors"] == "'none'"
    # ... which the page can live with: no inline script, style or handler
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []
    assert "<style" not in page
    assert re.search(r"\sstyle=|\son[a-z]+=", page) is None


def test_the_page_loader_is_the_one_asset_without_the_token(serve: Any,
                                                            tmp_path: Path) -> None:
    base = serve(create_app(f"sqlite:///{tmp_path / 's.db'}", token="t0ken"))
    with httpx.Client(base_url=base, timeout=30) as c:
        boot = c.get("/static/boot.js")
        assert boot.status_code == 200
        assert boot.text == (STATIC / "boot.js").read_text(encoding="utf-8")
        for path in ("/", "/static/app.js", "/static/style.css", "/api/health"):
            lines_of(c.get(path), 401, "token")
        assert c.get("/static/app.js", params={"token": "t0ken"}).status_code == 200


# ---- 5. the safety net -----------------------------------------------------------------

def test_unexpected_exception_is_a_json_500_and_the_connection_survives(
        client: httpx.Client) -> None:
    resp = client.get("/api/test-bug")
    assert lines_of(resp, 500, "internal error: RuntimeError") == [
        "internal error: RuntimeError"]
    assert "a bug" not in resp.text  # no internals in the answer
    assert client.get("/api/health").json() == {"status": "ok"}
