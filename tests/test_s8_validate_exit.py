"""``ocplan validate`` exits 1 when a row failed or was infeasible (session 8, item 2).

The acceptance of the validation sets is "none failed, none infeasible", so a script
(``make``, CI) must see it in the exit code; the output (table or JSON) is unchanged and
still printed. CPU rows of benchmarks the model does not predict are ``excluded``, not
failures.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from ocplan.cli.main import main

HEADER = ("case_id,source,model,n_layers,hidden_size,n_heads,n_kv_heads,head_dim,ffn_hidden,"
          "mlp,vocab_size,seq_len,chip,num_chips,chips_per_node,scale_out,precision,tp,pp,"
          "dp,cp,ep,vpp,sequence_parallel,zero_stage,micro_batch,global_batch,recompute,"
          "measured_tokens_per_s_per_chip")
#: Row R001 of the training set: GPT 1.7B on 32 A100 (Narayanan et al., SC'21,
#: arXiv:2104.04473, Table 1), 9,287.9 tokens/s per GPU.
GOOD = ("R001,Narayanan et al. SC'21 | Table 1,GPT 1.7B,24,2304,24,24,,9216,gelu,51200,2048,"
        "a100-sxm-80gb,32,8,8x200G-IB,fp16,1,1,32,1,1,,no,0,,512,full,9287.9")
#: The same run with GPT-3 175B's shape (Brown et al. 2020, Table 2.1) on one chip:
#: 175e9 parameters of fp16 weights alone are 350 GB, over the 80 GB of HBM.
IMPOSSIBLE = ("X175,made impossible,GPT-3 175B,96,12288,96,96,,49152,gelu,51200,2048,"
              "a100-sxm-80gb,1,1,,fp16,1,1,1,1,1,,no,0,,512,full,100")
CPU_DEV = Path(__file__).resolve().parents[2] / "shared" / "validation" / "cpu_dev.csv"


@pytest.fixture(autouse=True)
def _no_env_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCPLAN_CATALOG", raising=False)


def write(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "runs.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def test_all_rows_predicted_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(write(tmp_path, GOOD)), "--format", "json"]) == 0
    (case,) = json.loads(capsys.readouterr().out)["cases"]
    assert case["status"] == "ok"


def test_an_impossible_row_exits_1_and_still_prints_json(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD, IMPOSSIBLE)
    assert main(["validate", str(path), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    status = {c["case_id"]: c["status"] for c in data["cases"]}
    assert status == {"R001": "ok", "X175": "infeasible"}
    assert data["summary"]["n"] == 2
    assert data["summary"]["failed"] == 1


def test_the_table_form_exits_1_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(write(tmp_path, GOOD, IMPOSSIBLE))]) == 1
    out = capsys.readouterr().out
    assert "n=2 failed=1" in out


def test_a_row_that_cannot_be_predicted_exits_1(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    unknown_chip = GOOD.replace("a100-sxm-80gb", "a100-sxm-8gb")
    assert main(["validate", str(write(tmp_path, GOOD, unknown_chip)),
                 "--format", "json"]) == 1
    statuses = [c["status"] for c in json.loads(capsys.readouterr().out)["cases"]]
    assert statuses == ["ok", "error"]


@pytest.mark.skipif(not CPU_DEV.exists(), reason="../shared/validation/cpu_dev.csv absent")
def test_excluded_cpu_rows_are_not_failures(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """TPC-E rows are benchmarks the CPU model does not predict: excluded, exit 0."""
    with CPU_DEV.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames
        rows = [r for r in reader if r["benchmark"] == "tpc_e"]
    assert fields is not None
    assert rows
    path = tmp_path / "cpu.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    assert main(["validate", str(path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {c["status"] for c in data["cases"]} == {"excluded"}
