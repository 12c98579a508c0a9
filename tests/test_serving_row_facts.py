"""Configuration a serving row publishes only in its notes is read as the layout's
fields (issue 10 item 8: validation predicts each row from what the row says)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.results.serving_validation import prepare_serving_row

DEV = Path(__file__).resolve().parents[2] / "shared" / "validation" / "inference_dev.csv"
ROW = {"case_id": "X1", "model": "Llama-2-70B-chat", "model_catalog_id": "llama2-70b",
       "n_layers": "80", "hidden_size": "8192", "n_heads": "64", "n_kv_heads": "8",
       "head_dim": "128", "ffn_hidden": "28672", "mlp": "swiglu", "vocab_size": "32000",
       "attention": "gqa", "chip": "mi325x", "num_chips": "8", "weight_precision": "fp8",
       "activation_precision": "fp8", "tp": "1", "pp": "1", "dp": "8", "ep": "1",
       "scenario": "offline", "input_len_mean": "222", "output_len_mean": "294",
       "batch_or_concurrency": "2700", "batch_kind": "max_num_seqs",
       "primary_metric": "output", "measured_output_tokens_per_s_per_chip": "4000",
       "measured_from": "batch: vLLM max_num_seqs per TP1 instance"}


def _chunk(row: dict[str, str]) -> object:
    return prepare_serving_row(row, load_catalog()).fixed.get("chunk_tokens")


@pytest.mark.parametrize(("text", "expected"), [
    ("batch: vLLM max_num_seqs per TP1 instance, max_num_batched_tokens 65536", 65536),
    ("TensorRT-LLM engine: max_num_tokens 3584; max_batch_size 2048", 3584),
    ("batch: vLLM max_num_seqs per TP1 instance", None),
])
def test_a_published_token_budget_becomes_the_chunk(text: str, expected: int | None) -> None:
    assert _chunk(dict(ROW, measured_from=text)) == expected


@pytest.mark.skipif(not DEV.exists(), reason="../shared/validation not beside the checkout")
def test_the_development_rows_that_publish_a_budget_use_it() -> None:
    rows = {r["case_id"]: r
            for r in csv.DictReader(DEV.read_text(encoding="utf-8").splitlines())}
    assert _chunk(rows["INF044"]) == 51200   # AMD MLPerf Mixtral, offline_mi325x.yaml
    assert _chunk(rows["INF012"]) == 3584    # NVIDIA MLPerf Llama 2 70B on B200


MOE_ROW = dict(ROW, model="DeepSeek-R1", model_catalog_id="deepseek-v3", chip="b200",
               weight_precision="fp4", activation_precision="fp4", ep="8",
               batch_kind="max_batch_per_instance", batch_or_concurrency="512",
               measured_from="TensorRT-LLM gpu_batch_size 512")


@pytest.mark.parametrize(("adp", "expected"), [("yes", 512 * 8), ("no", 512), ("", 512)])
def test_an_engine_batch_cap_holds_per_attention_dp_rank(adp: str, expected: int) -> None:
    """With attention DP every rank schedules its own batch: the published cap of one
    scheduler times the 8 ranks; without it the instance has one scheduler."""
    prepared = prepare_serving_row(dict(MOE_ROW, attention_dp=adp), load_catalog())
    assert prepared.fixed.get("max_seqs") == expected
