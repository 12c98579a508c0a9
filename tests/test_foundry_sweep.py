"""llm-foundry's MPT tables as a sequence-length sweep (scripts/foundry_sweep.py,
validation/sweeps/llm_foundry_mpt.csv, docs/llm-foundry-sweep.md): the CSV is the tables,
its overlap with the development and hold-out sets is found, and the committed report is
what the committed model gives."""

from __future__ import annotations

import csv
from pathlib import Path
from types import ModuleType

import pytest

from scriptkit import load_script

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "validation" / "training_dev.csv"

pytestmark = pytest.mark.skipif(not DEV.exists(), reason="needs ../shared/validation")


@pytest.fixture(scope="module")
def fs() -> ModuleType:
    return load_script("foundry_sweep")


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return {r["case_id"]: r for r in csv.DictReader(f)}


def test_the_sweep_carries_the_development_rows_measured_values(fs: ModuleType) -> None:
    """The four development rows of the same tables (R078, R079, R081, R084) appear in the
    sweep with the same layout and the same measured throughput: the CSV is the tables."""
    sweep, dev = _rows(fs.SWEEP), _rows(DEV)
    by_key = {tuple(r[k] for k in fs.KEY): r for r in sweep.values()}
    for cid in ("R078", "R079", "R081", "R084"):
        row = by_key[tuple(dev[cid][k] for k in fs.KEY)]
        assert float(row["measured_tokens_per_s_per_chip"]) == float(
            dev[cid]["measured_tokens_per_s_per_chip"])
        assert (row["recompute"], row["zero_stage"]) == (dev[cid]["recompute"],
                                                         dev[cid]["zero_stage"])
    assert len(sweep) == 209
    assert {r["seq_len"] for r in sweep.values()} >= {"512", "2048", "65536"}


def test_the_report_is_the_committed_models(fs: ModuleType) -> None:
    """docs/llm-foundry-sweep.md equals a fresh scoring: a change that moves a sweep
    prediction must rewrite it (``.venv/bin/python scripts/foundry_sweep.py``)."""
    assert fs.REPORT.read_text(encoding="utf-8") == fs.report()


def test_the_build_reads_the_tables(fs: ModuleType, tmp_path: Path) -> None:
    """``--build`` turns a table of the README's form into rows: BF16 tables only, the
    MPT dimensions, FSDP stage and recompute from their columns."""
    readme = tmp_path / "README.md"
    head = ("|  Model | SeqLen (T) | # GPUs | GPU | MFU | HFU | MicroBatchSize | GradAccum | "
            "GlobalBatchSize | Throughput (S/s) | Throughput (T/s) | Throughput (T/s/GPU) | "
            "GlobalBatchSize (T) | Precision | MP Mode | Sharding Strategy | "
            "Activation Checkpointing | Activation CPUOffload | NumParams |")
    rule = "|" + " --- |" * 19
    readme.write_text("\n".join([
        "## A100 40GB with 1600 Gbps node-node interconnect (RoCE)", "", head, rule,
        "|  7b | 4096 | 8 | a100_40gb | 50.11 | 66.82 | 6 | 4 | 192 | 6 | 26930 | 3366 | "
        "786432 | bf16 | PURE | FULL_SHARD | True | False | 6667247616 |",
        "## H100 80GB FP8", "", head, rule,
        "|  3b | 2048 | 8 | h100_80gb | 27.7 | 27.7 | 10 | 6 | 480 | 119 | 244692 | 30586 | "
        "983040 | amp_fp8 | DEFAULT | SHARD_GRAD_OP | False | False | 2651837440 |", ""]),
        encoding="utf-8")
    out = tmp_path / "sweep.csv"
    assert fs.build(readme, out) == 1
    (row,) = _rows(out).values()
    assert (row["chip"], row["n_layers"], row["hidden_size"], row["n_heads"]) == (
        "a100-sxm-40gb", "32", "4096", "32")
    assert (row["zero_stage"], row["recompute"], row["seq_len"], row["micro_batch"]) == (
        "3", "full", "4096", "6")
    assert row["measured_tokens_per_s_per_chip"] == "3366"
