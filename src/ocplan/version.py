"""The installed version of ocplan, and a code version for content-addressed results.

``__version__`` is the package version from its metadata. :func:`code_version` adds a
digest of the package files that a result depends on (the model code, the calibration
and the built-in catalog), so that a stored result computed by other code or data is
never mistaken for a current one, even while the version number stays the same.
``OCPLAN_CODE_VERSION`` pins the code version to a text of one's choosing instead.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

__all__ = ["CODE_VERSION_ENV", "__version__", "code_version", "package_version",
           "source_digest"]

if TYPE_CHECKING:
    __version__: str


@lru_cache(maxsize=1)
def package_version() -> str:
    """The installed distribution's version; read on first use because
    ``importlib.metadata`` costs tens of milliseconds at every start of the CLI."""
    try:
        return version("ocplan")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> str:
    if name == "__version__":
        return package_version()
    raise AttributeError(f"module 'ocplan.version' has no attribute {name!r}")

_PACKAGE_DIR = Path(__file__).parent
#: Sub-packages that only present or store results: they cannot change one. (``results``
#: and ``sweep`` are hashed: a stored sweep row's energy, cost and goodput are computed
#: there, by ``results.compare.measured``; session 44, a changed formula had kept the old
#: version and served stale rows.)
_NOT_HASHED = frozenset({"cli", "store", "web", "__pycache__"})
_HASHED_SUFFIXES = frozenset({".py", ".json", ".yaml", ".yml", ".csv", ".toml"})


#: Set to any text to use it as the code version instead (results keyed under it are
#: then shared by every code that sets it: for pinning keys across builds on purpose).
CODE_VERSION_ENV = "OCPLAN_CODE_VERSION"


@lru_cache(maxsize=1)
def source_digest() -> str:
    """12 hex digits of a SHA-256 of the package's own source and data files (``cli``,
    ``store`` and ``web`` excluded), as they are on disk now."""
    digest = hashlib.sha256()
    files = sorted(p for p in _PACKAGE_DIR.rglob("*")
                   if p.is_file() and p.suffix in _HASHED_SUFFIXES
                   and not _NOT_HASHED.intersection(p.relative_to(_PACKAGE_DIR).parts[:-1]))
    for path in files:
        digest.update(path.relative_to(_PACKAGE_DIR).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:12]


def code_version() -> str:
    """``"<version>+<source digest>"``, or the text of ``OCPLAN_CODE_VERSION`` when set."""
    pinned = os.environ.get(CODE_VERSION_ENV, "").strip()
    return pinned or f"{package_version()}+{source_digest()}"
