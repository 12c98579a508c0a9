"""Fuzz the workbench JSON API with generated requests (issue 8).

The bulk runs in-process: the ASGI app of :func:`ocplan.web.app.create_app` (with its
worker pool, a fresh SQLite scenarios file and a request time limit, its lifespan held
open) behind ``httpx.ASGITransport`` on ``http://127.0.0.1``. Every request asserts:

* no 5xx other than the refusals the API documents (503 busy, 504 over the time limit):
  the answer is 2xx or one of 400, 403, 404, 405, 413, 415, 422, 503, 504, or the
  framework's redirect of a trailing slash (``/api/scenarios/`` to ``/api/scenarios``);
* every other answer under ``/api`` is one strict JSON document (``NaN``/``Infinity``
  refused), an error answer carries ``detail``, and the app's own error lines are one
  line each;
* no request takes more than :data:`CASE_LIMIT_S` seconds;

and after each batch ``GET /api/health`` answers 200 ``{"status": "ok"}``.

Requests are generated from fixed seeds (``random.Random(SEED + test)``; hypothesis with
``derandomize=True`` for random JSON documents):

* :func:`test_malformed_bodies`: truncated JSON, ``[`` x 2,000, ``{"a":`` x 30,000,
  integers of 5,000 digits, NaN, invalid UTF-8, empty, huge strings up to and over the
  size limit, wrong top-level types, BOMs, UTF-16, duplicate keys, lone surrogates, and
  odd content types, to every POST endpoint;
* :func:`test_random_json_bodies`: well-formed JSON that violates the schemas;
* :func:`test_hostile_valid_bodies`: valid estimate, search, check, topology and
  scenario bodies with one or two fields made hostile (bounds, types, unicode, control
  characters, rich markup, deep or large values);
* :func:`test_corpus_requests`: a few known-nasty requests tried on every run;
* :func:`test_get_routes_and_headers`: the GET and DELETE routes with hostile ids and
  kinds, wrong methods, and requests the guard must refuse (host, origin, content type);
* :func:`test_real_server_keeps_answering`: the nastiest of these against a real
  uvicorn server over one keep-alive connection, which must keep working.

A generated test sends all its requests, then fails once listing each kind of failure
with its count, the first request that showed it and, for a 500, the server's
traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio.from_thread
import httpx
import pytest
import yaml
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzzkit import Ledger, value_at, value_paths
from ocplan.catalog.catalog import load_catalog
from ocplan.web.app import MAX_BODY_BYTES, create_app

ROOT = Path(__file__).resolve().parents[1]
#: The seed of every generator here (the issue number); each test adds its own name.
SEED = 8
#: Longest one request may take. The app's own limit is lower, so a computation that
#: runs too long is answered 504 (an accepted refusal) before this.
CASE_LIMIT_S = 10.0
APP_TIMEOUT_S = 8.0
ACCEPTED = frozenset({400, 403, 404, 405, 413, 415, 422, 503, 504})
JSON = {"content-type": "application/json"}
POSTS = ["/api/check", "/api/topology", "/api/estimate", "/api/search", "/api/scenarios"]

N_MALFORMED = 130
N_RANDOM_JSON = 110
N_HOSTILE = 110
N_GETS = 70

SYSTEMS = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8"))
           for p in (ROOT / "examples").glob("*.yaml") if not p.stem.startswith("sweep-")}
SMALL_SYSTEM = SYSTEMS["nf5698g7-mi300x"]
VALID: dict[str, list[dict[str, Any]]] = {
    "/api/check": [SYSTEMS["mx1-8oam-air"], SMALL_SYSTEM, SYSTEMS["ubb-1024-liquid"]],
    "/api/topology": [SYSTEMS["mx1-8oam-air"], SMALL_SYSTEM],
    "/api/estimate": [
        {"model": "llama3-8b", "chip": "mi300x", "chips": 8, "global_batch": 64,
         "seq_len": 2048, "tp": 2},
        {"model": "gpt3-175b", "system": SYSTEMS["ubb-1024-liquid"], "chips": 1024,
         "global_batch": 1536, "seq_len": 2048, "precision": "fp8", "tp": 8, "pp": 8,
         "vpp": 6},
        {"model": "mixtral-8x7b", "chip": "h100-sxm-80gb", "chips": 16, "global_batch": 128,
         "seq_len": 4096, "ep": 8, "zero": 3, "recompute": "full", "recompute_layers": 2,
         "train_tokens": 1e12, "price_per_chip_hour": 2.5},
    ],
    "/api/search": [
        {"model": "llama3-8b", "chip": "mi300x", "chips": 8, "global_batch": 64,
         "seq_len": 2048, "top_k": 3},
        {"model": "mixtral-8x7b", "chip": "h100-sxm-80gb", "chips": 8, "global_batch": 32,
         "seq_len": 1024, "chip_counts": [4, 8], "max_power_W": 2e6,
         "memory_headroom": 0.1, "objective": "cost"},
        {"model": "llama3-8b", "chip": "h100-sxm-80gb", "chips": 4, "global_batch": 16,
         "seq_len": 1024, "objective": "cost", "price_per_chip_hour": 0, "top_k": 2},
    ],
    "/api/scenarios": [
        {"name": "fuzz", "kind": "estimate", "request": {"model": "llama3-8b"},
         "result": {"mfu": 0.5}},
        {"name": "s", "kind": "system", "request": SMALL_SYSTEM, "result": {}},
    ],
}

# ---- hostile values -------------------------------------------------------------------

HOSTILE: list[Any] = [
    0, -1, 10**7, 10**30, 2**63, -(2**63), 2**20, 2**20 + 1, 1.5, -0.0, 1e308, -1e308,
    1e-320, 5e-324, True, False, None, "", " ", "8", "1e3", "nan", "inf", "LLAMA3-8B",
    "llama3-8b ", "unknown-model", "é", "模型", "\u202emi300x", "\x1b[31mred\x1b[0m",
    "a\nb", "\r", "\x00", "\x07", "[bold]", "[/bold]", "[link=file:///etc/passwd]x[/link]",
    "x" * 10_000, "\ud800", "\udcff", "<script>alert(1)</script>", "'; DROP TABLE x; --",
    "2 MW", "-1 W", "1e-320 W", [], {}, [1, 2, 3], {"a": 1}, [[[[[[[[[[1]]]]]]]]]],
    list(range(100)), {"k" * 100: "v" * 100},
]
#: Values a topology body may carry without asking for a graph of millions of nodes.
SMALL_HOSTILE = [v for v in HOSTILE if not (isinstance(v, int) and not isinstance(v, bool)
                                            and v > 64)]


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


# ---- checking answers ------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json(text: bytes) -> Any:
    return json.loads(text, parse_constant=_no_constant)


class ServerErrors(logging.Handler):
    """Keeps the tracebacks the app logs (its safety net logs every unexpected error)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text += "\n" + "".join(traceback.format_exception(exc)).rstrip()
            remote = getattr(exc, "traceback", None)  # pebble: the worker's traceback
            if remote:
                text += f"\n{remote}"
        self.records.append(text)

    def last(self) -> str:
        if not self.records:
            return "(no traceback logged)"
        return "\n".join(self.records[-1].rstrip().splitlines()[-10:])


@dataclass
class WebLedger(Ledger):
    """A ledger of requests, with the server's logged tracebacks for its 5xx answers."""

    what: str = "requests"
    prompt: str = ""
    errors: ServerErrors | None = None


def describe(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> str:
    """A request as a reproducer line (long bodies abbreviated, with their length)."""
    shown = ""
    if body is not None:
        text = body[:300].decode("utf-8", "backslashreplace")
        shown = f" body={text!r}" + (f"... ({len(body):,} bytes)" if len(body) > 300 else "")
    extra = {k: v for k, v in headers.items() if k != "content-type"}
    ctype = headers.get("content-type")
    return (f"{method} {url[:300]}{shown}" + (f" content-type={ctype!r}" if ctype else "")
            + (f" headers={extra}" if extra else ""))


def problems(resp: httpx.Response, seconds: float) -> list[tuple[str, str]]:
    """Each way an answer breaks the contract of the module docstring, as (kind,
    detail)."""
    found: list[tuple[str, str]] = []
    status = resp.status_code
    if seconds > CASE_LIMIT_S:
        found.append(("slower than the limit", f"{seconds:.1f} s"))
    path = resp.url.path
    if status in (307, 308) and path.endswith("/") \
            and resp.headers.get("location", "").endswith(path.rstrip("/")):
        return found  # FastAPI's redirect_slashes: an empty body, not an answer of ours
    if not (200 <= status < 300 or status in ACCEPTED):
        found.append((f"status {status}", resp.text[:500]))
    if not path.startswith("/api"):
        return found
    try:
        doc = strict_json(resp.content)
    except ValueError as exc:
        found.append(("answer is not strict JSON", f"{status}: {exc}: {resp.content[:200]!r}"))
        return found
    if status >= 400:
        if not isinstance(doc, dict) or "detail" not in doc:
            found.append(("error answer without detail", f"{status}: {resp.text[:200]}"))
        elif isinstance(doc["detail"], list):
            bad = [ln for ln in doc["detail"]
                   if not isinstance(ln, str) or "\n" in ln or not ln.strip()]
            if bad:
                found.append(("detail line is not one line of text", repr(bad[0])[:300]))
    return found


class AsgiClient:
    """A blocking client of an ASGI app: an ``httpx.AsyncClient`` on
    ``httpx.ASGITransport``, driven through an anyio portal (whose event loop also holds
    the app's lifespan, so its worker pool is running)."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal,
                 client: httpx.AsyncClient) -> None:
        self.portal = portal
        self.client = client

    def request(self, method: str, url: str, content: bytes | None = None,
                headers: dict[str, str] | None = None) -> httpx.Response:
        return self.portal.call(functools.partial(self.client.request, method, url,
                                                  content=content, headers=headers))

    def get(self, url: str) -> httpx.Response:
        return self.request("GET", url)


Client = httpx.Client | AsgiClient


class Fuzzer:
    """Sends requests through a client and records what breaks the contract."""

    def __init__(self, client: Client, ledger: WebLedger) -> None:
        self.client = client
        self.ledger = ledger

    def send(self, method: str, url: str, body: bytes | Iterator[bytes] | None = None,
             headers: dict[str, str] | None = None, count: bool = True
             ) -> httpx.Response | None:
        """Send one request and check its answer; ``count=False`` for polls (checked,
        not counted as cases)."""
        headers = dict(JSON if headers is None and method in ("POST", "DELETE")
                       else headers or {})
        request = describe(method, url, body if isinstance(body, bytes) else None, headers)
        start = time.perf_counter()
        try:
            resp = self.client.request(method, url, content=body,  # type: ignore[arg-type]
                                       headers=headers)
        except (httpx.InvalidURL, UnicodeEncodeError):
            return None  # not a request HTTP can carry: nothing reached the server
        except Exception as exc:
            self.ledger.cases += count
            self.ledger.add(f"{method} {url.split('?')[0][:40]}: {type(exc).__name__}",
                            request, "".join(traceback.format_exception(exc))[-1500:])
            return None
        seconds = time.perf_counter() - start
        self.ledger.cases += count
        found = problems(resp, seconds)
        if found:
            kind, detail = found[0]
            if resp.status_code >= 500:
                assert self.ledger.errors is not None
                detail += "\n" + self.ledger.errors.last()
            path = resp.url.path
            route = "/".join(path.split("/")[:3]) + ("/{id}" if path.count("/") > 2 else "")
            self.ledger.add(f"{method} {route}: {kind}", request, detail)
        return resp

    def finish_job(self, resp: httpx.Response | None, request: str) -> None:
        """Wait (at most CASE_LIMIT_S) for the search job a request started; a job that
        ends in an internal error (not a bad-input line) is a failure."""
        if resp is None or resp.status_code != 202:
            return
        job = resp.json().get("id")
        deadline = time.monotonic() + CASE_LIMIT_S
        while isinstance(job, str):
            state = self.send("GET", f"/api/jobs/{job}", count=False)
            if state is None or state.status_code != 200:
                return
            status = state.json().get("status")
            if status in ("done", "cancelled"):
                return
            if status == "error":
                lines = state.json().get("error") or []
                if any(str(ln).startswith("internal error") for ln in lines):
                    self.ledger.add("search job: internal error", request, str(lines))
                return
            if time.monotonic() > deadline:
                self.ledger.add("search job: slower than the limit", request, status)
                self.send("DELETE", f"/api/jobs/{job}")
                return
            time.sleep(0.05)

    def post_json(self, url: str, value: Any, wait: bool = False) -> httpx.Response | None:
        """POST ``value`` as JSON text (a lax encoder: NaN is written as NaN, and a lone
        surrogate as its ``\\u`` escape)."""
        try:
            body = json.dumps(value, ensure_ascii=False, allow_nan=True).encode("utf-8")
        except UnicodeEncodeError:
            body = json.dumps(value, allow_nan=True).encode("ascii")
        resp = self.send("POST", url, body)
        if wait:
            self.finish_job(resp, describe("POST", url, body, JSON))
        else:
            self.cancel_job(resp)
        return resp

    def cancel_job(self, resp: httpx.Response | None) -> None:
        """Cancel a search job a request started, so the batch does not queue work."""
        if resp is None or resp.status_code != 202:
            return
        job = resp.json().get("id")
        if isinstance(job, str):
            self.send("DELETE", f"/api/jobs/{job}")
            self.send("GET", f"/api/jobs/{job}")

    def healthy(self) -> None:
        """GET /api/health answers 200 {"status": "ok"} (asserted at once)."""
        resp = self.client.get("/api/health")
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"status": "ok"}


@pytest.fixture(scope="module")
def server_errors() -> Iterator[ServerErrors]:
    handler = ServerErrors()
    logger = logging.getLogger("ocplan.web")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsgiClient]:
    """The app in-process, its worker pool started (the lifespan runs), on 127.0.0.1;
    an exception escaping the app is answered 500, as a server would."""
    db = tmp_path_factory.mktemp("fuzz-web") / "scenarios.db"
    app: FastAPI = create_app(f"sqlite:///{db}", request_timeout_s=APP_TIMEOUT_S)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    with anyio.from_thread.start_blocking_portal() as portal, \
            portal.wrap_async_context_manager(app.router.lifespan_context(app)):
        http = httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1",
                                 timeout=60)
        try:
            yield AsgiClient(portal, http)
        finally:
            portal.call(http.aclose)


def _fuzzer(client: AsgiClient, errors: ServerErrors, name: str) -> Fuzzer:
    return Fuzzer(client, WebLedger(name, errors=errors))


# ---- a small corpus of known-nasty requests ------------------------------------------------

#: Requests worth trying on every run whatever the generators draw: lone surrogates
#: (valid JSON escapes that no UTF-8 encoder can write back), control characters in
#: names that are echoed, and searches whose objective multiplies by zero.
CORPUS: list[tuple[str, Any]] = [
    ("/api/scenarios", {"name": "\ud800", "kind": "system", "request": {}, "result": {}}),
    ("/api/scenarios", {"name": "ok", "kind": "estimate", "request": {"\udcff": "x"},
                        "result": {"s": "\ud800"}}),
    ("/api/scenarios", {"name": "ok", "kind": "estimate", "request": {"x": "\ud800"},
                        "result": {}}),
    ("/api/scenarios", {"name": "\x00\x1b[31m\u202e", "kind": "search", "request": {},
                        "result": {"x": [None, True, -0.0, 5e-324, 2**63]}}),
    ("/api/check", {**SMALL_SYSTEM, "name": "\ud800"}),
    ("/api/topology", {**SMALL_SYSTEM, "name": "\udcff\x00"}),
    ("/api/estimate", {**VALID["/api/estimate"][0], "model": "\ud800"}),
    ("/api/search", {**VALID["/api/search"][0], "chip": "\udcff"}),
    ("/api/search", {"model": "llama3-8b", "chip": "mi300x", "chips": 8, "global_batch": 64,
                     "seq_len": 4096, "objective": "cost", "price_per_chip_hour": 0}),
    ("/api/search", {"model": "llama3-8b", "chip": "mi300x", "chips": 8, "global_batch": 1,
                     "seq_len": 1, "objective": "energy", "train_tokens": 1}),
]


def test_corpus_requests(client: AsgiClient, server_errors: ServerErrors) -> None:
    """The corpus above is answered without a 5xx (searches run to the end without an
    internal error), and afterwards the scenario list and each saved scenario still
    answer 200."""
    fuzz = _fuzzer(client, server_errors, "corpus")
    saved: list[str] = []
    for url, body in CORPUS:
        resp = fuzz.post_json(url, body, wait=True)
        if url == "/api/scenarios" and resp is not None and resp.status_code == 201:
            saved.append(resp.json()["id"])
    fuzz.send("GET", "/api/scenarios")
    for ident in saved:
        fuzz.send("GET", f"/api/scenarios/{ident}")
        fuzz.send("DELETE", f"/api/scenarios/{ident}")
    fuzz.ledger.assert_clean()
    fuzz.healthy()


# ---- malformed bodies --------------------------------------------------------------------


def _valid_text(rnd: random.Random, url: str) -> str:
    return json.dumps(rnd.choice(VALID[url]))


MALFORMED: list[Callable[[random.Random, str], bytes]] = [
    lambda rnd, url: _valid_text(rnd, url)[:rnd.randrange(1, len(_valid_text(rnd, url)))]
    .encode(),
    lambda rnd, url: b"[" * 2000,
    lambda rnd, url: b"[" * 2000 + b"]" * 2000,
    lambda rnd, url: b'{"a":' * 30000,
    lambda rnd, url: b'{"chips": ' + b"9" * 5000 + b"}",
    lambda rnd, url: b"-" + b"1" * 5000,
    lambda rnd, url: b'{"servers": 1' + b"0" * 4400 + b', "chips": 1e400}',
    lambda rnd, url: rnd.choice([b"NaN", b"Infinity", b"-Infinity", b'{"chips": NaN}',
                                 b'{"global_batch": Infinity}', b"[NaN]"]),
    lambda rnd, url: rnd.choice([b"\xff\xfe{}", b'{"model": "\xc3\x28"}', b"\xed\xa0\x80",
                                 b'{"name": "\xf4\x90\x80\x80"}', b"\xc0\xaf"]),
    lambda rnd, url: rnd.choice([b"", b" ", b"\n\t ", b"\x00", b"\x00" * 100]),
    lambda rnd, url: rnd.choice([b"null", b"true", b"1", b"-0", b"1e999", b'"text"', b"[]",
                                 b"{}", b"[{}]", b'"\\ud800"', b"[[]]"]),
    lambda rnd, url: b'{"model": "' + b"a" * (MAX_BODY_BYTES - 20) + b'"}',
    lambda rnd, url: b'{"name": "' + b"\\u00e9" * ((MAX_BODY_BYTES - 20) // 6) + b'"}',
    lambda rnd, url: b'{"model": "' + b"a" * (MAX_BODY_BYTES + 10) + b'"}',
    lambda rnd, url: b"\xef\xbb\xbf" + _valid_text(rnd, url).encode(),
    lambda rnd, url: _valid_text(rnd, url).encode("utf-16"),
    lambda rnd, url: b'{"chips": 1, "chips": 2, "model": "llama3-8b", "model": 3}',
    lambda rnd, url: json.dumps(_nested(31)).encode(),
    lambda rnd, url: json.dumps(_nested(33)).encode(),
    lambda rnd, url: b'{"a": ' + b"[" * 900 + b"]" * 900 + b"}",
    lambda rnd, url: _valid_text(rnd, url).encode() + rnd.choice([b"garbage", b"}", b",",
                                                                  b"\x00", b" {}"]),
    lambda rnd, url: rnd.choice([b'{"name": "\\ud800", "kind": "system", "request": {}, '
                                 b'"result": {}}',
                                 b'{"model": "\\udcff"}', b'{"\\ud800": 1}',
                                 b'{"name": "a\\u0000b", "kind": "estimate", "request": {},'
                                 b' "result": {"\\u001b[31m": "\\u0007"}}']),
    lambda rnd, url: b'{"model": "llama3-8b\x01"}',
    lambda rnd, url: b'{"model": "llama3-8b", "chips": 8, "global_batch": 1.0}',
    lambda rnd, url: b"{'model': 'llama3-8b'}",
    lambda rnd, url: b'{"model": "llama3-8b",}',
    lambda rnd, url: b"// comment\n{}",
]
CONTENT_TYPES = ["application/json; charset=utf-8", "APPLICATION/JSON", "text/plain", "",
                 "application/json-patch+json", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=x", "application/json; charset=latin-1"]


def test_malformed_bodies(client: AsgiClient, server_errors: ServerErrors) -> None:
    """Bodies that are not JSON, or are JSON beyond the limits (size, depth, digits,
    NaN), to every POST endpoint are refused with 400/413/415/422, never a 5xx, and
    the server stays healthy."""
    rnd = random.Random(f"{SEED}-malformed")
    fuzz = _fuzzer(client, server_errors, "malformed bodies")
    for case in range(N_MALFORMED):
        url = POSTS[case % len(POSTS)]
        body = rnd.choice(MALFORMED)(rnd, url)
        headers = dict(JSON)
        if rnd.random() < 0.08:
            ctype = rnd.choice(CONTENT_TYPES)
            headers = {"content-type": ctype} if ctype else {}
        fuzz.cancel_job(fuzz.send("POST", url, body, headers))
    fuzz.ledger.assert_clean()
    fuzz.healthy()


# ---- random JSON ---------------------------------------------------------------------------

FIELD_NAMES = ["model", "chip", "system", "chips", "global_batch", "seq_len", "precision",
               "tp", "pp", "cp", "ep", "vpp", "micro_batch", "zero", "recompute",
               "recompute_layers", "sequence_parallel", "shard_group", "train_tokens",
               "price_per_chip_hour", "objective", "top_k", "chip_counts", "max_power_W",
               "memory_headroom", "name", "kind", "request", "result", "server",
               "accelerator", "servers", "scale_out", "rack", "facility", "cooling"]
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                         st.text(max_size=12), st.sampled_from(HOSTILE[:40]))
json_docs = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=6)), inner,
                        max_size=5)),
    max_leaves=8)


@settings(max_examples=N_RANDOM_JSON, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(url=st.sampled_from(POSTS), doc=json_docs)
def test_random_json_bodies(client: AsgiClient, server_errors: ServerErrors, url: str,
                            doc: Any) -> None:
    """Well-formed JSON that breaks the schemas (random types, field names from every
    request and system schema, NaN written by a lax encoder) is answered 400/422 (or
    accepted when it happens to be valid), never a 5xx."""
    fuzz = _fuzzer(client, server_errors, f"random JSON to {url}")
    fuzz.post_json(url, doc)
    fuzz.ledger.assert_clean()


def test_health_after_random_json(client: AsgiClient) -> None:
    """The server still answers GET /api/health after the random JSON batch."""
    resp = client.get("/api/health")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"status": "ok"}


# ---- hostile but valid-shaped bodies -------------------------------------------------------


CATALOG = load_catalog(use_env=False)
MODELS = sorted(e.id for e in CATALOG.all("model"))
SERVED_CHIPS = sorted(e.id for e in CATALOG.all("accelerator")
                      if getattr(e, "default_server", None))
#: Names, kinds and other free text: valid where text is allowed, hostile to printers.
TEXTS = ["é", "模型", "\u202eevil", "\x1b[31mred\x1b[0m", "a\nb", "\r", "\x00", "\x07",
         "[bold]x[/bold]", "[link=file:///etc/passwd]x[/link]", "<script>alert(1)</script>",
         "'; DROP TABLE scenarios; --", "x" * 120, "x" * 200, " padded ", "\ud800",
         "\udcff", "%s%n", "{{7*7}}", "\u2028", "😀" * 50]


def _json_value(rnd: random.Random, depth: int = 0) -> Any:
    """A random JSON value for scenario requests and results (valid JSON data)."""
    roll = rnd.random()
    if depth > 3 or roll < 0.5:
        return rnd.choice([0, -1, 2**63, 10**30, 1.5, -0.0, 1e308, 5e-324, True, None, "",
                           *TEXTS])
    if roll < 0.75:
        return [_json_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]
    return {rnd.choice(["k", "", "é", "\x00", "a.b", "$ref", *TEXTS[:6]]):
            _json_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))}


def valid_body(rnd: random.Random, url: str) -> Any:
    """A random valid body of ``url``: small jobs on real ids, small systems, scenarios
    with free text and arbitrary JSON."""
    if url in ("/api/estimate", "/api/search"):
        chips = rnd.choice([1, 2, 4, 8] + ([16, 32] if url == "/api/estimate" else []))
        body: dict[str, Any] = {"model": rnd.choice(MODELS),
                                "chip": rnd.choice(SERVED_CHIPS), "chips": chips,
                                "global_batch": rnd.choice([8, 16, 64]),
                                "seq_len": rnd.choice([512, 1024, 2048])}
        if url == "/api/estimate":
            body["tp"] = rnd.choice([d for d in (1, 2, 4, 8) if chips % d == 0])
            body |= rnd.choice([{}, {"zero": 3}, {"recompute": "full", "recompute_layers": 1},
                                {"train_tokens": 1e15, "price_per_chip_hour": 1e4},
                                {"micro_batch": 2, "sequence_parallel": False}])
        else:
            body |= rnd.choice([{}, {"top_k": 100}, {"objective": "energy"},
                                {"objective": "cost", "price_per_chip_hour": 0},
                                {"chip_counts": [1, chips]}, {"max_power_W": 1.0},
                                {"memory_headroom": 0.999}, {"train_tokens": 1}])
        return body
    if url in ("/api/check", "/api/topology"):
        system = json.loads(json.dumps(rnd.choice(VALID[url])))
        system["name"] = rnd.choice([system["name"], *TEXTS])
        if rnd.random() < 0.5:
            system["servers"] = rnd.randint(1, 4)
        return system
    return {"name": rnd.choice(["fuzz", *TEXTS]),
            "kind": rnd.choice(["estimate", "search", "system"]),
            "request": {"x": _json_value(rnd)}, "result": {"y": _json_value(rnd)}}


def hostile_body(rnd: random.Random, url: str) -> Any:
    """A valid body of ``url`` (fixed or random) with zero to two values replaced by
    hostile ones or an unknown field added; scenario bodies also get large or deep
    request/result values."""
    source = rnd.choice(VALID[url]) if rnd.random() < 0.3 else valid_body(rnd, url)
    doc = json.loads(json.dumps(source))
    pool = SMALL_HOSTILE if url in ("/api/topology", "/api/check") else HOSTILE
    for _ in range(rnd.choice([0, 0, 1, 1, 2])):
        paths = value_paths(doc)
        roll = rnd.random()
        if url == "/api/scenarios" and roll < 0.3:
            doc[rnd.choice(["request", "result"])] = rnd.choice([
                {"deep": _nested(29)}, {"deep": _nested(40)}, {"big": "x" * 200_000},
                {"nan": "NaN"}, {"\ud800": 1}, {"list": list(range(20_000))},
                {"s": "\x1b[31m\u202e"}, {"n": 10**300}, {"f": 1e308}])
        elif roll < 0.15 or not paths:
            doc[rnd.choice(["extra", "Model", "chips ", "", "__proto__", "\ud800"])] = \
                rnd.choice(pool)
        else:
            path = rnd.choice(paths)
            value_at(doc, path[:-1])[path[-1]] = rnd.choice(pool)
    return doc


def test_hostile_valid_bodies(client: AsgiClient, server_errors: ServerErrors) -> None:
    """Valid estimate, search, check, topology and scenario bodies with hostile values
    (out-of-range numbers, wrong types, unicode, control characters, markup, lone
    surrogates, deep or large values) are answered 2xx or refused as bad input, never
    a 5xx; scenarios that were saved can be read back, and the first searches that
    start a job finish without an internal error."""
    rnd = random.Random(f"{SEED}-hostile")
    fuzz = _fuzzer(client, server_errors, "hostile valid-shaped bodies")
    for case in range(N_HOSTILE):
        url = POSTS[case % len(POSTS)]
        # the first searches run to the end (their job must not fail), the rest are
        # cancelled at once
        resp = fuzz.post_json(url, hostile_body(rnd, url), wait=case < 12 * len(POSTS))
        if url == "/api/scenarios" and resp is not None and resp.status_code == 201:
            saved = resp.json()["id"]
            fuzz.send("GET", f"/api/scenarios/{saved}")
            if rnd.random() < 0.5:
                fuzz.send("DELETE", f"/api/scenarios/{saved}")
    fuzz.send("GET", "/api/scenarios")
    fuzz.ledger.assert_clean()
    fuzz.healthy()


# ---- GET and DELETE routes, methods and headers ---------------------------------------------

IDS = ["mi300x", "MI300X", "llama3-8b", "", " ", "..", "%2e%2e%2f", "a/b", "%00", "\x00",
       "é", "模型", "x" * 10_000, "' OR 1=1 --", "\x1b[31m", "[bold]", "nan", "-1",
       "0" * 32, "f" * 32, "%", "?", "#", "\ud800", "<script>", "con", "../../etc/passwd"]


def _route(rnd: random.Random) -> tuple[str, str, bytes | None, dict[str, str] | None]:
    """(method, url, body, headers) of one GET/DELETE/wrong-method/guard case."""
    ident = rnd.choice(IDS)
    encoded = quote(ident, safe="", errors="surrogatepass") if rnd.random() < 0.7 else ident
    roll = rnd.random()
    if roll < 0.2:
        kind = rnd.choice(["accelerator", "model", "Accelerator", "", "x" * 5000, "nic",
                           "[bold]", "\x00", "kind=model", "system"])
        return "GET", f"/api/catalog?kind={quote(kind, safe='') if rnd.random() < 0.8 else kind}", \
            None, None
    if roll < 0.55:
        base = rnd.choice(["/api/catalog/", "/api/jobs/", "/api/scenarios/"])
        return "GET", base + encoded, None, None
    if roll < 0.7:
        base = rnd.choice(["/api/jobs/", "/api/scenarios/"])
        return "DELETE", base + encoded, None, None
    if roll < 0.8:
        method = rnd.choice(["PUT", "PATCH", "DELETE", "GET"])
        return method, rnd.choice([*POSTS, "/api/health", "/api/catalog"]), b"{}", dict(JSON)
    body = json.dumps(rnd.choice(VALID["/api/estimate"])).encode()
    headers = rnd.choice([
        {"host": "evil.example"}, {"host": "127.0.0.1.evil.example"}, {"host": ""},
        {"origin": "http://evil.example"}, {"origin": "null"},
        {"sec-fetch-site": "cross-site"}, {"content-type": "text/plain"},
        {"host": "[::1]:8000"}, {"host": "localhost:1"}, {"host": "127.0.0.1:"},
        {"host": "127.0.0.1:99999999"}, {"origin": "http://127.0.0.1"},
    ])
    return "POST", rnd.choice(POSTS[:3]), body, {**JSON, **headers}


def test_get_routes_and_headers(client: AsgiClient, server_errors: ServerErrors) -> None:
    """GET/DELETE of catalog entries, jobs and scenarios with hostile ids and kinds,
    wrong methods, and requests the guard refuses (foreign Host or Origin, cross-site
    fetches, another content type) get 2xx or a documented refusal, never a 5xx."""
    rnd = random.Random(f"{SEED}-routes")
    fuzz = _fuzzer(client, server_errors, "routes and headers")
    for _ in range(N_GETS):
        method, url, body, headers = _route(rnd)
        fuzz.cancel_job(fuzz.send(method, url, body, headers))
    fuzz.ledger.assert_clean()
    fuzz.healthy()


# ---- a real server -------------------------------------------------------------------------


def _local_port(resp: httpx.Response) -> int | None:
    """The client-side port of the connection that carried ``resp`` (None if unknown)."""
    stream = resp.extensions.get("network_stream")
    if stream is None:
        return None
    addr = stream.get_extra_info("client_addr")
    return addr[1] if isinstance(addr, tuple) else None


def _chunks(total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * 16384
        sent += 16384


NASTIEST: list[tuple[str, str, bytes | Callable[[], Iterator[bytes]]]] = [
    ("POST", "/api/estimate", b"[" * 2000),
    ("POST", "/api/check", b'{"a":' * 30000),
    ("POST", "/api/topology", b'{"name": "x", "server": "mx1", "servers": ' + b"9" * 5000
     + b"}"),
    ("POST", "/api/scenarios", b'{"name": "\xff\xfe", "kind": "system"}'),
    ("POST", "/api/scenarios", b'{"name": "x", "kind": "system", "request": {"a": "\\ud800"},'
                               b' "result": {}}'),
    ("POST", "/api/check", b'{"name": "x", "server": "mx1", "servers": NaN}'),
    ("POST", "/api/search", b'{"model": "' + b"a" * (MAX_BODY_BYTES + 1000) + b'"}'),
    ("POST", "/api/estimate", lambda: _chunks(MAX_BODY_BYTES + 50_000)),
    ("GET", "/api/catalog/" + "x" * 10_000, b""),
]


def test_real_server_keeps_answering(serve: Any, tmp_path: Path,
                                     server_errors: ServerErrors) -> None:
    """The nastiest requests against a real uvicorn server, over one keep-alive httpx
    connection: each is answered without a 5xx, the next request on the same client
    works (on the same connection unless the server said ``Connection: close``), and
    /api/health answers at the end."""
    base = serve(create_app(f"sqlite:///{tmp_path / 's.db'}",
                            request_timeout_s=APP_TIMEOUT_S))
    ledger = WebLedger("real server", errors=server_errors)
    with httpx.Client(base_url=base, timeout=30) as http:
        fuzz = Fuzzer(http, ledger)
        for method, url, body in NASTIEST:
            content = body() if callable(body) else body
            headers = dict(JSON) if method == "POST" else {}
            shown = describe(method, url, None if callable(body) else body, headers)
            resp = fuzz.send(method, url, content if method == "POST" else None, headers)
            after = http.get("/api/health")
            ledger.cases += 1
            if after.status_code != 200:
                ledger.add("health after a nasty request", shown, after.text[:300])
            closing = resp is None or resp.headers.get("connection", "").lower() == "close"
            before_port, after_port = (None if resp is None else _local_port(resp),
                                       _local_port(after))
            if not closing and before_port is not None and before_port != after_port:
                ledger.add("keep-alive connection dropped without Connection: close", shown,
                           f"port {before_port} then {after_port}")
        fuzz.healthy()
    ledger.assert_clean()
