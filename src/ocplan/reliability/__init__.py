"""Failures, checkpoints and goodput of training clusters.

* :mod:`~ocplan.reliability.rates`: sourced failure rates per component
  (``data/failure_rates.yaml``).
* :mod:`~ocplan.reliability.failures`: component counts, cluster failure rate, MTBF.
* :mod:`~ocplan.reliability.checkpoint`: checkpoint size, save/load time, async saves.
* :mod:`~ocplan.reliability.interval`: Young's and Daly's checkpoint intervals.
* :mod:`~ocplan.reliability.options`: :class:`GoodputOptions` (recovery, spares, async).
* :mod:`~ocplan.reliability.recovery`: restart time per failure, hot-spare pool.
* :mod:`~ocplan.reliability.goodput`: the one entry point, :func:`goodput`.

This package reads only :mod:`ocplan.catalog` and :mod:`ocplan.errors`; estimators call
it with the ideal training time they computed.
"""

from ocplan.reliability.checkpoint import (
    CHECKPOINT_BYTES_PER_PARAM,
    ZERO_MODEL_STATE_BYTES_PER_PARAM,
    CheckpointCost,
    checkpoint_bytes,
    checkpoint_cost,
)
from ocplan.reliability.failures import (
    ClusterFailureRate,
    ComponentCounts,
    cluster_failure_rate,
    counts_for_chips,
    counts_from_system,
)
from ocplan.reliability.goodput import Goodput, goodput
from ocplan.reliability.interval import daly_interval_s, optimal_interval_s, young_interval_s
from ocplan.reliability.options import GoodputOptions
from ocplan.reliability.rates import RateSet, RateTable, default_table, rate_set, rate_table

__all__ = [
    "CHECKPOINT_BYTES_PER_PARAM",
    "ZERO_MODEL_STATE_BYTES_PER_PARAM",
    "CheckpointCost",
    "ClusterFailureRate",
    "ComponentCounts",
    "Goodput",
    "GoodputOptions",
    "RateSet",
    "RateTable",
    "checkpoint_bytes",
    "checkpoint_cost",
    "cluster_failure_rate",
    "counts_for_chips",
    "counts_from_system",
    "daly_interval_s",
    "default_table",
    "goodput",
    "optimal_interval_s",
    "rate_set",
    "rate_table",
    "young_interval_s",
]
