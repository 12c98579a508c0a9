"""ocplan.cli: the ``ocplan`` command (:mod:`ocplan.cli.main`, which registers each
command from the module of its family: :mod:`~ocplan.cli.hardware` (catalog, check,
topology), :mod:`~ocplan.cli.training` (estimate, search, compare),
:mod:`~ocplan.cli.serving` (infer), :mod:`~ocplan.cli.matching`,
:mod:`~ocplan.cli.validating`, :mod:`~ocplan.cli.sweeping` and
:mod:`~ocplan.cli.reporting` (serve, report); what they share sits below them:
:mod:`~ocplan.cli.app` (the application, help and bad input), :mod:`~ocplan.cli.options`,
:mod:`~ocplan.cli.layout_options`, :mod:`~ocplan.cli.pages` (files written),
:mod:`~ocplan.cli.render` (consoles and tables) and :mod:`~ocplan.cli.state`).

Importing the package tunes the cycle collector for a command-line process, before the
command's modules load: starting a command builds a few hundred thousand long-lived
objects (pydantic validators, typer, numpy, the catalog), and with CPython's default
thresholds (700, 10, 10) the collector walks them again and again while they are built,
about a fifth of a command's start-up CPU time (measured on ``ocplan search``: 1.30 s of
imports and catalog load at the default, 1.07 s at the thresholds below, 0.99 s with no
collector at all). Collecting the youngest generation every 100,000 net allocations
instead keeps cyclic garbage bounded, for the web server and sweeps too.
"""

import gc

#: Net allocations between collections of the youngest generation (CPython default 700).
GC_YOUNG_THRESHOLD = 100_000
#: Collections of a generation between collections of the next (CPython default 10, 10).
GC_OLDER_THRESHOLDS = (50, 100)
#: The interpreter's thresholds, which a long-running command (the web server) restores
#: once started: over hours, garbage that reached the older generations would otherwise
#: wait for their rare collections.
INTERPRETER_THRESHOLDS = gc.get_threshold()

gc.set_threshold(GC_YOUNG_THRESHOLD, *GC_OLDER_THRESHOLDS)


def restore_collector() -> None:
    """Back to the interpreter's collector thresholds (for long-running commands)."""
    gc.set_threshold(*INTERPRETER_THRESHOLDS)
