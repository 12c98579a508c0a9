"""The code version keys stored results: a change to anything that computes a stored
column must change it (session 44: ``results.compare.measured`` computes a sweep row's
energy, cost and goodput, but ``results`` was left out of the hash, so a changed
formula kept the version and a sweep served its old rows)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ocplan import version


@pytest.fixture
def package_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "ocplan"
    shutil.copytree(Path(version.__file__).parent, copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(version, "_PACKAGE_DIR", copy)
    version.source_digest.cache_clear()
    yield copy
    version.source_digest.cache_clear()


@pytest.mark.parametrize(("module", "hashed"), [
    ("results/compare.py", True),     # stored sweep rows' energy, cost, goodput
    ("sweep/runner.py", True),        # what a sweep row holds
    ("plan/engine.py", True),
    ("cli/main.py", False),           # presentation only
    ("store/db.py", False),
])
def test_the_digest_follows_what_computes_stored_rows(package_copy: Path, module: str,
                                                      hashed: bool) -> None:
    before = version.source_digest()
    path = package_copy / module
    assert path.exists(), module
    path.write_text(path.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    version.source_digest.cache_clear()
    assert (version.source_digest() != before) is hashed
