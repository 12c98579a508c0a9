"""Shared fixtures: a real uvicorn server for the web workbench tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
import uvicorn

from browserkit import CHROMIUM, CHROMIUM_ARGS

if TYPE_CHECKING:
    from playwright.sync_api import Browser

ServeApp = Callable[[Any], str]


@pytest.fixture(autouse=True, scope="session")
def _private_parse_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The catalog's YAML parse cache of this test session lives in a temporary folder,
    never in the user's ~/.cache (subprocesses inherit the variable)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("OCPLAN_CACHE_DIR", str(tmp_path_factory.mktemp("ocplan-cache")))
    yield
    mp.undo()


def _start(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Run the ASGI app on a free port of 127.0.0.1 in a background thread: (server,
    thread, base URL) once it accepts connections."""
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that name it, and
    # without it Nagle and delayed ACKs add about 45 ms to every request.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", loop="asyncio", http="h11",
                            ws="none", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "the server thread died while starting"
        assert time.monotonic() < deadline, "the server did not start in 20 s"
        time.sleep(0.01)
    return server, thread, f"http://127.0.0.1:{port}"


def _stop(server: uvicorn.Server, thread: threading.Thread) -> None:
    """Ask the server to exit as a signal would (lifespan shutdown runs) and wait."""
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def serve() -> Iterator[ServeApp]:
    """``serve(app)`` runs the ASGI app on a free port of 127.0.0.1 in a background
    thread and returns its base URL (``http://127.0.0.1:PORT``). Every server started
    this way stops at the end of the session."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: Any) -> str:
        server, thread, url = _start(app)
        running.append((server, thread))
        return url

    yield start
    for server, _ in running:
        server.should_exit = True
    for _, thread in running:
        thread.join(timeout=10)


@pytest.fixture
def serve_then_stop() -> Iterator[Callable[[Any], tuple[str, Callable[[], None]]]]:
    """``serve_then_stop(app)`` runs the app like :func:`serve` and returns (base URL,
    ``stop``): ``stop()`` shuts it down as Ctrl+C does, lifespan shutdown included (also
    called at the end of the test if the test did not)."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: Any) -> tuple[str, Callable[[], None]]:
        server, thread, url = _start(app)
        running.append((server, thread))
        return url, lambda: _stop(server, thread)

    yield start
    for server, thread in running:
        _stop(server, thread)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless system Chromium for one test module (see :mod:`browserkit`)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()
