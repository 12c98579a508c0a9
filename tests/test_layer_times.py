"""The model's per-layer cost terms against published per-layer times (not fitted).

Korthikanti et al. (MLSys 2023) Table 4 times one layer of their 22B GPT on 8 A100s five
ways (``validation/layers/``). The development row R011 is that configuration with one
micro-batch on one pipeline stage, so the difference of two of its predicted steps,
divided by the 48 layers, is a difference of predicted layer times: head, loss and
optimizer cancel. Each test compares one such difference with the table's.

The table timed one layer, which fits in memory whatever the setting; the whole 48-layer
model without recompute keeps the unfused core's scores of every layer (Korthikanti Table
2: 110 GB a chip) and does not, so the steps are the engine's terms (:func:`evaluate`)
without the memory check.

One difference is known to be wrong and is marked as such (strict: a change that fixes
it makes its test pass, and the mark must then go): the fitted memory-bound efficiency
charges the replicated norms and residuals about three times what the run's fused
kernels took (docs/model.md, "Per-layer check"). The other, the selective recompute of
the attention core, was wrong while the model costed the core as flash attention; with
the unfused core of 2022 (the plan's ``fused_attention`` off, which the validation reads
for this paper) it holds.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.plan.calibration import load_calibration
from ocplan.plan.engine import evaluate, system_model
from ocplan.results.validation import prepare_row

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "validation" / "layers" / "korthikanti_2022_table4.csv"
DEV = ROOT.parent / "shared" / "validation" / "training_dev.csv"
needs_dev = pytest.mark.skipif(not DEV.exists(), reason="../shared/validation not present")
#: A step difference over this many layers is a layer difference: the template row
#: (GPT 22B) has 48 layers, one stage, one micro-batch.
LAYERS = 48
#: The share of the table's full-recompute overhead the model must reproduce within:
#: about the spread of the fitted efficiencies' effect on one forward pass.
FULL_RECOMPUTE_TOLERANCE = 0.15


@cache
def _table() -> dict[tuple[str, str], float]:
    """Measured forward + backward seconds of one layer by (sequence parallel, recompute)."""
    with TABLE.open(encoding="utf-8") as handle:
        return {(r["sequence_parallel"], r["recompute"]):
                1e-3 * (float(r["forward_ms"]) + float(r["backward_ms"]))
                for r in csv.DictReader(handle)}


@cache
def _template() -> dict[str, str]:
    """The development row the table's settings vary (read once; callers copy it)."""
    with TABLE.open(encoding="utf-8") as handle:
        cases = {r["template_case"] for r in csv.DictReader(handle)}
    assert len(cases) == 1, cases
    with DEV.open(encoding="utf-8") as handle:
        rows = {r["case_id"]: r for r in csv.DictReader(handle)}
    row = rows[cases.pop()]
    assert int(row["n_layers"]) == LAYERS
    assert int(row["global_batch"]) == int(row["micro_batch"]) * int(row["dp"])
    assert int(row["pp"]) == 1
    return row


def _model_layer_s(sp: str, recompute: str) -> float:
    """Predicted step of the template row with ``sp`` and ``recompute``, per layer."""
    row = dict(_template(), sequence_parallel=sp, recompute=recompute)
    job = prepare_row(row, load_catalog())
    assert not job.plan.fused_attention, "the 2022 run's core is unfused"
    terms = evaluate(job.workload, system_model(job.system), load_calibration(),
                     job.plan.encoded())
    return float(terms["step_s"]) / LAYERS


def _difference(a: tuple[str, str], b: tuple[str, str]) -> tuple[float, float]:
    """(measured, model) layer seconds of ``a`` minus those of ``b``."""
    table = _table()
    return table[a] - table[b], _model_layer_s(*a) - _model_layer_s(*b)


def test_table_is_the_five_published_settings() -> None:
    assert set(_table()) == {("no", "none"), ("yes", "none"), ("no", "full"),
                             ("no", "selective"), ("yes", "selective")}


@needs_dev
def test_full_recompute_costs_one_more_forward_as_measured() -> None:
    """Re-running the whole forward in the backward: 7.6 ms a layer measured (39 %)."""
    measured, model = _difference(("no", "full"), ("no", "none"))
    assert measured > 0
    assert model > 0
    assert abs(model / measured - 1.0) <= FULL_RECOMPUTE_TOLERANCE, (model, measured)


#: The share of the table's selective-recompute overhead (re-running the attention core,
#: 1.3 ms a layer) the model must reproduce within.
SELECTIVE_RECOMPUTE_TOLERANCE = 0.25


@needs_dev
def test_selective_recompute_reruns_the_unfused_core_as_measured() -> None:
    """Re-running the attention cores: 1.3 ms a layer measured (7 %), the scores written,
    soft-maxed, dropped out and read back again."""
    measured, model = _difference(("no", "selective"), ("no", "none"))
    assert measured > 0
    assert model > 0
    assert abs(model / measured - 1.0) <= SELECTIVE_RECOMPUTE_TOLERANCE, (model, measured)


#: Differences the model gets wrong, with why: (a, b, reason) for ``a`` minus ``b``.
KNOWN_WRONG = (
    (("no", "none"), ("yes", "none"),
     "the fitted memory-bound efficiency (0.31 of streaming) prices the norms and residuals "
     "that sequence parallelism stops replicating at about 3x the fused kernels of the run: "
     "the model saves 4.5 ms a layer, the table 0.6 ms"),
)


@needs_dev
@pytest.mark.parametrize(("a", "b"), [
    pytest.param(a, b, marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=why),
                 id=f"{a[1]}-sp{a[0]}-minus-{b[1]}-sp{b[0]}")
    for a, b, why in KNOWN_WRONG])
def test_known_wrong_differences_within_half_of_measured(a: tuple[str, str],
                                                         b: tuple[str, str]) -> None:
    """Sequence parallelism's saving."""
    measured, model = _difference(a, b)
    assert measured > 0
    assert model > 0
    assert abs(model - measured) <= 0.5 * measured, (model, measured)
