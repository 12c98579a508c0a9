"""A cache of parsed catalog YAML, keyed by each file's content, so that starting a command
does not re-parse the ~170 built-in entries (about 0.25 s of PyYAML on a 2-core machine,
a quarter of ``ocplan match``).

Only the parse is cached: the data is validated against the schemas on every load, a file
whose text changed is parsed again (the key is a SHA-256 of its bytes), a file that fails
to parse is never stored. The cache is one file written atomically; a missing, stale,
unreadable or corrupt cache is ignored and rebuilt, and an unwritable cache folder only
costs the time. ``OCPLAN_CACHE_DIR`` names the folder (else ``$XDG_CACHE_HOME/ocplan``,
else ``~/.cache/ocplan``); ``OCPLAN_CACHE_DIR=off`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["CACHE_ENV", "ParseCache", "cache_dir"]

CACHE_ENV = "OCPLAN_CACHE_DIR"
#: Value of :data:`CACHE_ENV` that turns the cache off.
CACHE_OFF = "off"
#: Bytes of the SHA-256 that guards the payload against a torn or foreign file.
_CHECK_BYTES = 32


def cache_dir() -> Path | None:
    """The folder of the cache, or None when ``OCPLAN_CACHE_DIR=off``."""
    named = os.environ.get(CACHE_ENV, "").strip()
    if named == CACHE_OFF:
        return None
    if named:
        return Path(named)
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ocplan"


def _cache_file(folder: Path, name: str) -> Path:
    # marshal's format belongs to one Python version.
    major, minor = sys.version_info[:2]
    return folder / f"{name}-yaml-py{major}{minor}-m{marshal.version}.bin"


class ParseCache:
    """Parsed YAML documents by the SHA-256 of their text, for one load of a set of
    files (``name``: the catalog, the facility tables); each set has its own cache file,
    since a save keeps only the documents of its own load."""

    def __init__(self, folder: Path | None, name: str = "catalog") -> None:
        assert name.isidentifier(), name
        self._file = None if folder is None else _cache_file(folder, name)
        self._stored: dict[str, Any] = self._read() if self._file else {}
        self._used: dict[str, Any] = {}
        self._missed = False

    def _read(self) -> dict[str, Any]:
        assert self._file is not None
        try:
            blob = self._file.read_bytes()
        except OSError:
            return {}
        check, payload = blob[:_CHECK_BYTES], blob[_CHECK_BYTES:]
        if hashlib.sha256(payload).digest() != check:
            return {}
        try:
            data = marshal.loads(payload)
        except (EOFError, ValueError, TypeError):
            return {}
        return data if isinstance(data, dict) else {}

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    def get(self, key: str) -> Any | None:
        """The parsed document of a text with this key, or None when not cached."""
        value = self._stored.get(key)
        if value is None:
            self._missed = True
        else:
            self._used[key] = value
        return value

    def put(self, key: str, value: Any) -> None:
        self._used[key] = value

    def save(self) -> None:
        """Write the documents of this load (only when something was parsed anew, so a
        stale entry does not live on), atomically; failures are ignored."""
        if self._file is None or not self._missed:
            return
        try:
            payload = marshal.dumps(self._used)
        except ValueError:  # a value marshal cannot write: keep no cache
            return
        try:
            self._file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._file.parent, prefix=".catalog-yaml-")
        except OSError:
            return
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(hashlib.sha256(payload).digest() + payload)
            os.replace(tmp, self._file)
        except OSError:
            Path(tmp).unlink(missing_ok=True)
