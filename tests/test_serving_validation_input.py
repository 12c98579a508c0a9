"""``ocplan validate`` on a serving CSV refuses bad cells as the other layouts refuse bad
input: exit 2, one line per problem naming the file, the row (line and case id), the
column, the value and what is allowed, every problem of the file at once, no traceback.
It read them before: ``num_chips = 0`` as 1 chip, an empty prompt length as 1 token,
unknown vocabulary words as nothing, a ``tp`` without ``pp``/``dp`` as no layout, and a
word for a number failed the row with a bare ``could not convert string to float``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from clikit import one_line, run
from ocplan.catalog.catalog import load_catalog
from ocplan.errors import SpecError
from ocplan.results.serving_validation import prepare_serving_row

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "validation" / "inference_dev.csv"
HOLDOUT = ROOT / "validation" / "holdout" / "inference_holdout.csv"

#: The serving layout's columns (inference_dev.csv's header).
HEADER = ["case_id", "source", "source_group", "source_date", "vendor", "model",
          "model_catalog_id", "n_layers", "hidden_size", "n_heads", "n_kv_heads", "head_dim",
          "ffn_hidden", "mlp", "vocab_size", "attention", "kv_lora_rank", "qk_rope_head_dim",
          "moe_num_experts", "moe_top_k", "moe_expert_ffn", "moe_shared_experts", "moe_layer_freq",
          "moe_first_dense_layers", "chip", "num_chips", "chips_per_node", "framework",
          "weight_precision", "activation_precision", "kv_precision", "tp", "pp", "ep", "dp",
          "attention_dp", "scenario", "dataset", "input_len_mean", "output_len_mean",
          "batch_or_concurrency", "batch_kind", "primary_metric",
          "measured_output_tokens_per_s_per_chip", "measured_output_tokens_per_s_total",
          "measured_input_tokens_per_s_per_chip", "ttft_ms", "ttft_stat", "tpot_ms", "tpot_stat",
          "slo_ttft_ms", "slo_tpot_ms", "measured_from", "confidence"]
#: Two published rows (INF001 and INF003 of inference_dev.csv, notes shortened).
LLAMA = {"source_group": "MLPerf Inference (Datacenter, closed)", "model": "Llama-2-70B-chat",
         "model_catalog_id": "llama2-70b", "n_layers": "80", "hidden_size": "8192",
         "n_heads": "64", "n_kv_heads": "8", "head_dim": "128", "ffn_hidden": "28672",
         "mlp": "swiglu", "vocab_size": "32000", "attention": "gqa", "num_chips": "8",
         "chips_per_node": "8", "weight_precision": "fp8", "activation_precision": "fp8",
         "pp": "1", "ep": "1", "attention_dp": "no", "scenario": "offline",
         "dataset": "MLPerf llama2-70b: OpenOrca (GPT-4 part), 24,576 samples",
         "input_len_mean": "222.3", "batch_kind": "max_batch_per_instance",
         "primary_metric": "output", "measured_from": "reported_total", "confidence": "high"}
ROWS = (
    dict(LLAMA, case_id="INF001", vendor="Intel", chip="gaudi2", tp="8", dp="1",
         output_len_mean="291.6", batch_or_concurrency="1024",
         measured_output_tokens_per_s_per_chip="1004.4",
         measured_output_tokens_per_s_total="8034.85"),
    dict(LLAMA, case_id="INF003", vendor="NVIDIA", chip="h100-sxm-80gb", tp="2", dp="4",
         output_len_mean="290.3", batch_or_concurrency="896",
         measured_output_tokens_per_s_per_chip="3065.6",
         measured_output_tokens_per_s_total="24524.9"),
)


def _write(tmp_path: Path, *edits: dict[str, str], header: list[str] | None = None) -> Path:
    """The two rows as a CSV, the n-th edited by ``edits[n]``."""
    rows = [dict(row, **(edits[n] if n < len(edits) else {})) for n, row in enumerate(ROWS)]
    path = tmp_path / "serving.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header or HEADER, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _refused(capsys: pytest.CaptureFixture[str], path: Path) -> list[str]:
    """The lines of a refusal: exit 2, nothing on stdout, no traceback."""
    rc, out, err = run(capsys, "validate", path)
    assert rc == 2, (rc, out, err)
    assert out == ""
    assert "Traceback" not in err
    return err.strip().splitlines()


def test_zero_chips_are_refused_not_read_as_one(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, {"num_chips": "0"})
    assert one_line(*run(capsys, "validate", path)) == (
        f"{path}: line 2 (INF001).num_chips = '0': expected a whole number of chips, at "
        "least 1 (always filled)")


@pytest.mark.parametrize(("column", "what"), [("input_len_mean", "mean prompt length"),
                                              ("output_len_mean", "mean generated length")])
def test_an_empty_request_length_is_refused(column: str, what: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """An empty length was a 1-token prompt (or output), predicted as if published."""
    path = _write(tmp_path, {}, {column: ""})
    line = one_line(*run(capsys, "validate", path))
    assert line.startswith(f"{path}: line 3 (INF003).{column} = '': expected a positive "
                           f"number of tokens (the {what}")


def test_an_output_length_may_be_empty_only_on_a_disaggregated_row(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, {"output_len_mean": "", "scenario": "max-load"})
    line = one_line(*run(capsys, "validate", path))
    assert "required where scenario = max-load" in line
    assert line.endswith("empty only on disagg-prefill and disagg-decode rows")


@pytest.mark.parametrize(("column", "value", "allowed"), [
    ("scenario", "batch", "expected one of offline, server, interactive, max-load, "
                          "fixed-batch, disagg-prefill, disagg-decode"),
    ("batch_kind", "concurrency", "expected one of max_batch_per_instance, max_num_seqs, "
                                  "requests_queued, static_batch, per_chip_batch, "
                                  "tokens_per_chip_step, target_qps, or empty"),
    ("attention_dp", "true", "expected one of yes, no, or empty"),
])
def test_an_unknown_vocabulary_value_is_refused_naming_the_allowed_ones(
        column: str, value: str, allowed: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, {column: value})
    line = one_line(*run(capsys, "validate", path))
    assert line.startswith(f"{path}: line 2 (INF001).{column} = {value!r}: {allowed}")


@pytest.mark.parametrize(("given", "missing"), [({"tp": "8"}, "pp, dp"),
                                                ({"tp": "8", "pp": "1"}, "dp")])
def test_a_partly_given_layout_is_refused_naming_the_missing_columns(
        given: dict[str, str], missing: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """``tp`` without ``pp``/``dp`` was dropped for a searched layout; the README fills
    the three together or not at all."""
    path = _write(tmp_path, {"tp": "", "pp": "", "dp": "", **given})
    line = one_line(*run(capsys, "validate", path))
    assert line.startswith(f"{path}: line 2 (INF001).{missing}: empty beside tp = 8")
    assert "tp, pp and dp are filled together" in line


def test_a_word_for_a_number_names_file_row_column_value_and_what_is_allowed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, {}, {"num_chips": "eight"})
    line = one_line(*run(capsys, "validate", path))
    assert line == (f"{path}: line 3 (INF003).num_chips = 'eight': expected a whole number "
                    "of chips, at least 1 (always filled)")
    assert "could not convert" not in line


def test_a_truncated_serving_header_names_the_serving_columns_it_lacks(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, header=HEADER[:20])
    line = one_line(*run(capsys, "validate", path))
    assert line.startswith(f"{path}: header: missing columns of the serving results layout")
    assert line.endswith(": chip, num_chips, scenario, input_len_mean, output_len_mean, "
                         "primary_metric, measured_output_tokens_per_s_per_chip, "
                         "measured_input_tokens_per_s_per_chip")
    for training in ("seq_len", "global_batch", "measured_tokens_per_s_per_chip"):
        assert training not in line
    # a cut training header is still told the training columns it lacks
    training_file = tmp_path / "training.csv"
    training_file.write_text("case_id,source,model,n_layers,hidden_size,n_heads,seq_len\n"
                             "T1,x,m,2,64,4,128\n", encoding="utf-8")
    assert one_line(*run(capsys, "validate", training_file)) == (
        f"{training_file}: header: missing columns: mlp, chip, num_chips, precision, tp, pp, "
        "dp, cp, global_batch, measured_tokens_per_s_per_chip")


def test_every_problem_of_the_file_is_reported_at_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, {"num_chips": "eight", "scenario": "batch", "tpot_ms": "fast"},
                  {"pp": "", "dp": "", "weight_precision": "fp7"})
    lines = _refused(capsys, path)
    assert [line.split(" = ")[0].split(": ")[1] for line in lines] == [
        "line 2 (INF001).num_chips", "line 2 (INF001).scenario", "line 2 (INF001).tpot_ms",
        "line 3 (INF003).weight_precision", "line 3 (INF003).pp, dp"]
    assert all(line.startswith(f"{path}: ") for line in lines)


def test_a_prepared_row_is_refused_before_anything_is_defaulted() -> None:
    """The row reader's callers (the fit script) get the same refusal, not a guess."""
    with pytest.raises(SpecError) as err:
        prepare_serving_row(dict(ROWS[0], num_chips="0", input_len_mean=""), load_catalog())
    assert [p.field for p in err.value.problems] == ["INF001.num_chips",
                                                     "INF001.input_len_mean"]


def test_a_valid_file_still_runs_and_every_published_row_passes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ocplan.results.serving_validation import serving_row_problems

    rc, out, err = run(capsys, "validate", _write(tmp_path), "--format", "json")
    assert rc == 0, err
    cases = json.loads(out)["cases"]
    assert [c["case_id"] for c in cases] == ["INF001", "INF003"]
    assert all(c["status"] == "ok" and c["predicted"] > 0 for c in cases)
    assert [c["layout_source"] for c in cases] == ["published", "published"]
    for source in (DEV, HOLDOUT):
        if not source.exists():
            continue
        with source.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
        assert reader.fieldnames == HEADER
        assert rows
        assert [p.line() for r in rows for p in serving_row_problems(str(source), "", r)] == []
