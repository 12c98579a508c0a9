"""Sweeps: grids of layout searches, run in parallel and stored by content key."""

from ocplan.sweep.runner import BACKENDS, SweepReport, TaskSummary, run_sweep
from ocplan.sweep.spec import (
    ServingSweepSpec,
    ServingSweepTask,
    Sweep,
    SweepSpec,
    SweepTask,
    expand_sweep,
    load_sweep,
)

__all__ = ["BACKENDS", "ServingSweepSpec", "ServingSweepTask", "Sweep", "SweepReport",
           "SweepSpec", "SweepTask", "TaskSummary",
           "expand_sweep", "load_sweep", "run_sweep"]
