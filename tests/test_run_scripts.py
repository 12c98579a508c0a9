"""Batching a row leaves unstated, read from the script its authors published to
reproduce it (Narayanan et al. SC'21 Table 1: NVIDIA/Megatron-LM
``examples/sc21/run_table_1.sh``, today under ``examples/academic_paper_scripts/``)."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.results.validation import (
    SC21_TABLE1_SCRIPT,
    first_arxiv,
    plan_from_row,
    predict_prepared,
    prepare_row,
    script_batching,
    shape_from_row,
)

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "validation" / "training_dev.csv"
SC21 = "Narayanan et al., SC'21 (arXiv:2104.04473) | Paper Table 1"


def _dev_rows() -> dict[str, dict[str, str]]:
    if not DEV.exists():
        pytest.skip("shared validation data not beside the checkout")
    with DEV.open() as f:
        return {r["case_id"]: r for r in csv.DictReader(f)}


def _row(layers: int, hidden: int, source: str = SC21, **cols: str) -> dict[str, str]:
    row = {"source": source, "model": "GPT", "n_layers": str(layers),
           "hidden_size": str(hidden), "n_heads": str(hidden // 128), "n_kv_heads": "",
           "ffn_hidden": str(4 * hidden), "mlp": "gelu", "vocab_size": "51200",
           "seq_len": "2048", "tp": "8", "pp": "1", "dp": "8", "cp": "1",
           "micro_batch": "", "vpp": "", "global_batch": "1024", "precision": "fp16"}
    return row | cols


@pytest.mark.parametrize(("layers", "hidden", "pp", "expected"), [
    (24, 2304, 1, (16, 1)),      # 1.7B: MBS 16, no interleaving
    (40, 6144, 1, (8, 1)),       # 18B
    (60, 10240, 4, (2, 3)),      # 76B: 5 layers a virtual stage, 15 a stage
    (80, 12288, 8, (2, 2)),      # 145B
    (105, 20480, 35, (1, 3)),    # 530B: one layer a virtual stage
    (128, 25600, 64, (1, 1)),    # 1T
])
def test_unstated_batching_of_the_sc21_runs_is_their_scripts(
        layers: int, hidden: int, pp: int, expected: tuple[int, int]) -> None:
    row = _row(layers, hidden, pp=str(pp))
    assert script_batching(row, shape_from_row(row), pp) == expected


def test_stated_columns_and_other_sources_are_not_overridden() -> None:
    stated = _row(24, 2304, micro_batch="4", vpp="2")
    assert script_batching(stated, shape_from_row(stated), int(stated["pp"])) == (4, 2)
    other = _row(24, 2304, source="Jiang et al. (arXiv:2402.15032); cites arXiv:2104.04473")
    assert first_arxiv(other["source"]) == (2402, 15032)
    assert script_batching(other, shape_from_row(other), int(other["pp"])) == (1, 1)
    unknown = _row(25, 2304)        # not a Table 1 shape
    assert script_batching(unknown, shape_from_row(unknown), int(unknown["pp"])) == (1, 1)
    uneven = _row(60, 10240, pp="8")  # 76B on 8 stages: 5-layer chunks do not fit
    assert script_batching(uneven, shape_from_row(uneven), int(uneven["pp"])) == (2, 1)


def test_every_script_entry_splits_its_layers_evenly() -> None:
    """A layers-per-virtual-stage entry must divide the layers of each pipeline stage
    of the table's runs (the script would refuse the run otherwise)."""
    table_pp = {(60, 10240): 4, (80, 12288): 8, (96, 16384): 16, (105, 20480): 35}
    for (layers, hidden), (micro, per_chunk) in SC21_TABLE1_SCRIPT.items():
        assert micro >= 1
        if per_chunk is not None:
            pp = table_pp[(layers, hidden)]
            assert layers % (pp * per_chunk) == 0, (layers, pp, per_chunk)


def test_the_development_rows_read_the_script() -> None:
    rows = _dev_rows()
    got = {cid: (p.micro_batch, p.vpp) for cid in ("R001", "R004", "R006", "R007", "R010")
           for p in [plan_from_row(rows[cid], shape_from_row(rows[cid]))]}
    assert got == {"R001": (16, 1), "R004": (8, 1), "R006": (2, 3), "R007": (2, 2),
                   "R010": (1, 1)}
    # Korthikanti's rows state their micro-batch; the Megatron-LM README's do not and
    # have no script: both keep what they had.
    assert plan_from_row(rows["R011"], shape_from_row(rows["R011"])).micro_batch == 4
    assert plan_from_row(rows["R022"], shape_from_row(rows["R022"])).micro_batch == 1


def test_the_small_model_loses_a_gemm_wave_at_micro_batch_one() -> None:
    """GPT 1.7B (h = 2304) on A100: 2048-row GEMMs fill 144 tiles of 128 x 256, a wave and
    a third of 108 SMs; the script's 16 sequences a micro-batch fill the waves, so the
    step is faster per token than the same run read at micro-batch 1."""
    rows = _dev_rows()
    p = prepare_row(rows["R001"], load_catalog())
    script = predict_prepared(p).tokens_per_s_per_chip
    one = predict_prepared(replace(p, plan=replace(p.plan, micro_batch=1)))
    assert script > 1.05 * one.tokens_per_s_per_chip
