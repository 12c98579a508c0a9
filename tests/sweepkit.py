"""The environment the sweep tests run in (imported as ``from sweepkit import
pinned_sweep_env``, like clikit and browserkit)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from ocplan.sweep.runner import DELAY_ENV
from ocplan.version import CODE_VERSION_ENV


@contextmanager
def pinned_sweep_env(code_version: str) -> Iterator[None]:
    """No user catalog, no task delay, and a pinned code version: the source digest
    would change under a developer who edits the model while the tests run, and every
    run of one module (in-process, subprocess, Ray driver, web server) must key tasks
    alike. Each module pins its own version, so no module finds another's results."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("OCPLAN_CATALOG", raising=False)
        mp.delenv(DELAY_ENV, raising=False)
        mp.setenv(CODE_VERSION_ENV, code_version)
        yield
