"""An engine's caps (sequences in flight, tokens an iteration) hold per scheduler, and
under attention DP every rank runs its own: a serving row's cap becomes its instance's
cap only where the row says how many schedulers the instance runs. Found on NVIDIA's
MLPerf v6.0 DeepSeek-R1 results on GB200 NVL72 (validation/sweeps, session 68): their
configs give 512 sequences and 4,608 tokens per rank but no layout the columns hold, and
pinning them to the whole instance throttled every attention-DP layout the search tried
(1,411 output tokens/s per GPU predicted against 6,752 measured)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.results.serving_validation import prepare_serving_row

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ROOT / "validation" / "sweeps" / "mlperf_inference_v6.csv"


@pytest.fixture(scope="module")
def row() -> dict[str, str]:
    """M6162: DeepSeek-R1 offline on 72 GB200 (NVIDIA, v6.0), layout not published,
    512 sequences a scheduler and ``max_num_tokens 4608`` in its notes."""
    with SWEEP.open(newline="", encoding="utf-8") as f:
        found = next(r for r in csv.DictReader(f) if r["case_id"] == "M6162")
    assert (found["tp"], found["attention_dp"], found["batch_or_concurrency"],
            found["batch_kind"]) == ("", "", "512", "max_batch_per_instance")
    assert "max_num_tokens 4608" in found["measured_from"]
    return found


def test_a_cap_per_scheduler_of_an_unknown_layout_is_left_to_the_search(
        row: dict[str, str]) -> None:
    p = prepare_serving_row(dict(row), load_catalog())
    assert "max_seqs" not in p.fixed
    assert "chunk_tokens" not in p.fixed
    assert any(n.startswith("engine caps (sequences, token budget) not applied")
               for n in p.notes)


def test_attention_dp_off_makes_the_caps_the_instances(
        row: dict[str, str]) -> None:
    """Attention DP stated off: one scheduler, so the caps are the instance's."""
    p = prepare_serving_row(dict(row, attention_dp="no"), load_catalog())
    assert (p.fixed["max_seqs"], p.fixed["chunk_tokens"]) == (512, 4608)
    assert not any("not applied" in n for n in p.notes)


def test_a_published_attention_dp_layout_takes_the_cap_per_rank(
        row: dict[str, str]) -> None:
    """A published layout with attention DP over 72 ranks: 72 schedulers, each with the
    row's caps."""
    p = prepare_serving_row(dict(row, tp="1", pp="1", dp="72", ep="72", attention_dp="yes"),
                            load_catalog())
    assert (p.fixed["max_seqs"], p.fixed["chunk_tokens"]) == (512 * 72, 4608 * 72)
