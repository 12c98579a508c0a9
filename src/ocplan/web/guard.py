"""The request guard in front of every route of the workbench (a pure ASGI middleware).

In order, a request is refused with a JSON ``{"detail": [line]}`` answer when:

1. its ``Host`` header names a host not allowed (400): a page of another site that got
   its name resolved to 127.0.0.1 (DNS rebinding) sends its own name, so it cannot talk
   to a workbench on loopback;
2. a token is set and the request does not carry it (401);
3. it changes state (POST, PUT, PATCH, DELETE) and comes from another origin: an
   ``Origin`` header other than the ``Host``, or ``Sec-Fetch-Site`` of ``cross-site`` or
   ``same-site`` (403);
4. it changes state and its ``Content-Type`` is not ``application/json`` (415): a
   browser sends such a request across origins only after a CORS preflight, which this
   server never grants, so a form or a ``text/plain`` fetch of another site is refused
   even from a browser that sends no ``Origin``;
5. its body is over the cap (413), whether announced by ``Content-Length`` or counted as
   it arrives (a state-changing request's body is read here, then replayed to the app).

Every answer, refusals included, carries the headers of :data:`SECURITY_HEADERS` and a
Content-Security-Policy (:data:`PAGE_CSP`; :data:`DOCS_CSP` on the OpenAPI pages, which
FastAPI builds from a CDN with an inline script). An exception that escapes a route is
logged and answered as a JSON 500 rather than a dropped connection; it is a safety net
(every expected failure has its own status), not a path the API relies on.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DEFAULT_ALLOWED_HOSTS", "DOCS_CSP", "PAGE_CSP", "PLOTLY_STYLE_HASHES",
           "PUBLIC_PATHS", "SECURITY_HEADERS", "STATE_CHANGING", "Guard", "normalize_host"]

log = logging.getLogger("ocplan.web")

#: Host names a loopback server answers to (any port).
DEFAULT_ALLOWED_HOSTS = ("127.0.0.1", "localhost", "[::1]")
#: Methods that may change state: they need a same-origin JSON request.
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Served without the token: the page's loader script, which must load before it can add
#: the token to the other assets' URLs (it holds nothing secret; it is in the package).
PUBLIC_PATHS = frozenset({"/static/boot.js"})
#: The OpenAPI page and its assets (inline script and style).
DOCS_PATHS = ("/docs",)

#: Headers on every answer: no MIME sniffing, no framing (clickjacking), no referrer,
#: and no other origin may open the page as a popup or embed its resources.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
#: The two <style> elements plotly.min.js adds, allowed by the hash of their text and
#: no other inline style: an empty one that Plotly fills through the CSSOM (which CSP
#: does not govern), and MapLibre's stylesheet, which the Plotly 7.1 bundle adds as it
#: loads. A Plotly upgrade that changes the latter makes the browser log "Applying inline
#: style violates ... a hash ('sha256-...')" (tests/test_browser.py fails on it): put
#: the hash it names here.
PLOTLY_STYLE_HASHES = (
    "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",  # "" (the empty element)
    "'sha256-ji27qzEtxXZW+7dun6UwjHXJ18e6WAin1VvNtkzIE/o='",  # MapLibre's CSS, Plotly 7.1
)
#: The workbench page: scripts, styles and requests from this server only (no inline
#: script; the page loads static/boot.js). Images may be data:/blob: URLs (Plotly's
#: "download as PNG" draws into one).
PAGE_CSP = ("default-src 'self'; script-src 'self'; "
            f"style-src 'self' {' '.join(PLOTLY_STYLE_HASHES)}; "
            "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
#: /docs: Swagger UI served from this app (``/docs-assets``, the swagger-ui-py
#: package, started by ``static/docs.js``); it styles its elements inline, so inline
#: style is allowed there; no script is inline and nothing comes from elsewhere.
DOCS_CSP = ("default-src 'self'; script-src 'self'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
            "base-uri 'none'; frame-ancestors 'none'")

# A Host header: a name or an IPv4 address, or an IPv6 address in brackets; a port.
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::[0-9]{1,5})?")


def normalize_host(host: str) -> str:
    """An allowed-host entry as compared: lower case, IPv6 in brackets, no port
    (``"::1"`` -> ``"[::1]"``, ``"LocalHost:8000"`` -> ``"localhost"``; ``"*"`` stays)."""
    host = host.strip().lower()
    if host == "*":
        return host
    if ":" in host and not host.startswith("["):
        if host.count(":") == 1:  # name:port
            return host.split(":")[0]
        return f"[{host}]"
    if host.startswith("[") and "]" in host:
        return host[:host.index("]") + 1]
    return host


def _json(status: int, line: str) -> JSONResponse:
    return JSONResponse({"detail": [line]}, status_code=status)


class Guard:
    """ASGI middleware: the checks, caps and headers of the module docstring."""

    def __init__(self, app: ASGIApp, *, token: str | None, max_body_bytes: int,
                 allowed_hosts: Iterable[str]) -> None:
        self.app = app
        self.token = token
        self.max_body_bytes = max_body_bytes
        self.allowed_hosts = frozenset(normalize_host(h) for h in allowed_hosts)

    def _refusal(self, scope: Scope, headers: Headers) -> JSONResponse | None:
        """The answer to a request refused before its body is read, or None."""
        host = headers.get("host", "").strip().lower()
        match = _HOST.fullmatch(host)
        if match is None or ("*" not in self.allowed_hosts
                             and match.group(1) not in self.allowed_hosts):
            shown = host[:60] or "(none)"
            return _json(400, f"host not allowed: {shown} (allowed: "
                              f"{', '.join(sorted(self.allowed_hosts))})")
        if self.token is not None and scope["path"] not in PUBLIC_PATHS:
            given = headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not given:
                given = _query_token(scope.get("query_string", b""))
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return _json(401, "missing or wrong token")
        if scope["method"] not in STATE_CHANGING:
            return None
        origin = headers.get("origin")
        if origin is not None and urlsplit(origin).netloc.lower() != host:
            return _json(403, f"cross-origin request refused: Origin {origin[:60]} is not "
                              f"this server ({host})")
        site = headers.get("sec-fetch-site", "")
        if site in ("cross-site", "same-site"):
            return _json(403, f"cross-origin request refused (Sec-Fetch-Site: {site})")
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            return _json(415, f"{scope['method']} needs Content-Type: application/json, "
                              f"got {media[:60] or 'none'}")
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            return _json(413, f"request body over {self.max_body_bytes} bytes")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = (DOCS_CSP if scope["path"].startswith(DOCS_PATHS) else PAGE_CSP).encode()
        started = False

        async def send_secured(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS,
                                      (b"content-security-policy", csp)]
            await send(message)

        headers = Headers(scope=scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, send_secured)
            return
        if scope["method"] in STATE_CHANGING:
            body = await _read_body(receive, self.max_body_bytes)
            if body is None:
                await _json(413, f"request body over {self.max_body_bytes} bytes")(
                    scope, receive, send_secured)
                return
            receive = _replay(body, receive)
        try:
            await self.app(scope, receive, send_secured)
        except Exception as exc:
            log.exception("unexpected error answering %s %s", scope["method"], scope["path"])
            if started:  # the answer is under way: nothing valid can be sent any more
                raise
            await _json(500, f"internal error: {type(exc).__name__}")(
                scope, receive, send_secured)


def _query_token(query: bytes) -> str:
    """The ``token`` query parameter, or ""."""
    values = parse_qs(query.decode("latin-1")).get("token", [""])
    return values[0]


async def _read_body(receive: Receive, cap: int) -> bytes | None:
    """The whole request body, or None once it passes ``cap`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then waits on the real one (disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
