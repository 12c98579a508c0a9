"""NVIDIA's DGX Cloud NeMo recipes as a sweep (scripts/dgxc_sweep.py,
validation/sweeps/dgxc_nemo.csv, docs/dgxc-sweep.md): the CSV is the tables' step times
with the layouts they state, and the committed report is what the committed model gives."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from types import ModuleType

import pytest

from scriptkit import load_script

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "validation" / "training_dev.csv"


@pytest.fixture(scope="module")
def dg() -> ModuleType:
    return load_script("dgxc_sweep")


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return {r["case_id"]: r for r in csv.DictReader(f)}


def test_each_rate_is_the_step_time_it_cites(dg: ModuleType) -> None:
    """Every row's rate is ``seq x GBS / step / GPUs`` of the step time its notes quote,
    its data-parallel size fills the GPUs, and a run appears once (a release that
    republishes a step time adds no row)."""
    rows = _rows(dg.SWEEP)
    assert len(rows) == 259
    seen = set()
    for r in rows.values():
        step = float(re.search(r"step time ([\d.]+) s", r["measured_from"])[1])
        rate = int(r["seq_len"]) * int(r["global_batch"]) / step / int(r["num_chips"])
        assert float(r["measured_tokens_per_s_per_chip"]) == pytest.approx(rate, abs=0.06)
        assert int(r["tp"]) * int(r["pp"]) * int(r["dp"]) * int(r["cp"]) == int(
            r["num_chips"])
        key = tuple(r[k] for k in dg.KEY)
        assert key not in seen, r["case_id"]
        seen.add(key)
    # spot values read off the tables: Llama 3.1 8B BF16 on 8 H100, 24.09, 12.91 s a
    # step at GBS 128; Nemotron-4 340B FP8 on 512 GB200 (strong scaling), 5.668 s at 512
    first = next(r for r in rows.values() if r["model"] == "Llama 3.1 8B")
    assert (first["num_chips"], first["global_batch"], first["precision"]) == ("8", "128",
                                                                               "bf16")
    assert float(first["measured_tokens_per_s_per_chip"]) == pytest.approx(
        8192 * 128 / 12.91 / 8, abs=0.06)
    strong = [r for r in rows.values() if r["chip"] == "gb200" and r["global_batch"] == "512"
              and r["num_chips"] == "512" and r["precision"] == "fp8"]
    assert len(strong) == 1
    assert float(strong[0]["measured_tokens_per_s_per_chip"]) == pytest.approx(
        4096 * 512 / 5.668 / 512, abs=0.06)


def test_the_launch_script_fixes_the_printed_layout(dg: ModuleType) -> None:
    """v25.04's Nemotron-4 340B rows run interleaved (VP 12, its launch.sh), not the
    README's "NA"."""
    rows = [r for r in _rows(dg.SWEEP).values()
            if "@v25.04 nemotron" in r["source"] and r["model"] == "Nemotron-4 340B"]
    assert rows
    assert {r["vpp"] for r in rows} == {"12"}


README = """
**GB200**:

| GPUs | SeqLen | Layers | FSDP | TP | PP | CP | EP | ETP | DP | VP | MBS | GBS | GA |
|------|:------:|:------:|:----:|:--:|:--:|:--:|:--:|:---:|:--:|:--:|:---:|:---:|:--:|
| 128  | 8192   | 126    | 0    |  4 | 8  | 2  | NA | NA  | 2  | 8  |  1  | 64  | 32 |

| Llama 3.1 405b 24.09 FP8 (TP=8, PP=9, CP=2, VP=7, MBS=1, GA=63) | 32x H100 GPUs | 576x H100 GPUs |
|---|---|---|
| Layers                                 | 7      | 126    |
| GBS                                    | 126    | 252    |
| PP                                     | 1      | 9      |
| VP                                     | n/a    | 7      |
| Training step time (seconds per step)  | 5.80   | 11.2 4 |

| Llama3.1 405b BF16 | 128x GB200 GPUs |
|---|:---:|
Training step time (seconds per step)| 9.347 |
"""


def test_the_parser_reads_each_table_form(dg: ModuleType) -> None:
    """Layout from the title with per-column rows over it (the 405B proxies), a split
    number (``11.2 4``), and a table whose layout is the configuration table under a
    GB200 heading and whose body rows lack the leading bar."""
    rows = dg.rows_from_readme(README, "vX", "r.md", "00.00")
    assert [(r["chip"], r["num_chips"], r["n_layers"], r["pp"], r["vpp"], r["dp"],
             r["global_batch"]) for r in rows] == [
        ("h100-sxm-80gb", "32", "7", "1", "", "2", "126"),
        ("h100-sxm-80gb", "576", "126", "9", "7", "4", "252"),
        ("gb200", "128", "126", "8", "8", "2", "64")]
    assert rows[0]["model"] == "Llama 3.1 405B proxy, 7 of 126 layers"
    assert float(rows[1]["measured_tokens_per_s_per_chip"]) == pytest.approx(
        8192 * 252 / 11.24 / 576, abs=0.06)
    assert (rows[2]["tp"], rows[2]["cp"], rows[2]["precision"]) == ("4", "2", "bf16")
    assert (rows[2]["scale_out"], rows[2]["chips_per_node"]) == ("NVL72/4x400G-IB", "4")


MOE_README = """
| GPUs | SeqLen | Layers | TP  | PP  | CP  | EP  | DP  | VP  | MBS | GBS  | GA  |
|------|:------:|:------:|:---:|:---:|:---:|:---:|:---:|:---:|:---:|:----:|:---:|
| 8    | 4096   | 2      | 4   | 1   | 1   | 2   | 1   | NA  | 1   | 1024 | 128 |
| 512  | 8192   | 64     | 4   | 8   | 2   | 8   | 1   | 8   | 1   | 1024 | 128 |

| Grok 1 314b Dev BF16 | Throughput on 8x H100 GPUs | Throughput on 512 H100 GPUs |
|---|:---:|:---:|
| Training step time (seconds per step) | 24.03 | 20.83
| Throughput in tokens per second       | 174544 | 402718
"""
DEEPSEEK_README = """
# GB200 specifications

| Size | Precision | GPUs | SeqLen | Layers | TP | PP | CP | EP | ETP | DP | VP | MBS | GBS | GA |
|------|:---------:|:----:|:------:|:------:|:--:|:--:|:--:|:--:|:---:|:--:|:--:|:---:|:---:|:--:|
| 671B | BF16 | 128 | 4096 | 61 | 2 | 4 | 1 | 32 | 1 | 16 | 1 | 1 | 1024 | 64 |

| Deepseek V3 BF16 GB200 | 128x GB200 GPUs  |
|---|:---:|
Training step time (seconds per step)| 34.168 |
"""


def test_the_parser_reads_the_moe_tables(dg: ModuleType) -> None:
    """Grok-1's tables (a proxy of 2 layers at 4,096 tokens, the whole model at 8,192,
    the configuration table's expert-parallel size) and DeepSeek-V3's (its GB200
    configuration table by size and precision): expert columns, EP, and the recipe's
    notes and recompute (DeepSeek-V3's 64/pp - 1 and 64/pp - 2 layers at the ends)."""
    grok = dg.rows_from_readme(MOE_README, "v25.02", "grok1/README_314b.md", "24.12")
    deepseek = dg.rows_from_readme(DEEPSEEK_README, "v25.05.01",
                                   "deepseek_v3/pretraining/README.md", "25.04.01")
    assert [(r["model"], r["num_chips"], r["n_layers"], r["seq_len"], r["ep"], r["dp"])
            for r in grok[:2]] == [
        ("Grok-1 314B proxy, 2 of 64 layers", "8", "2", "4096", "2", "2"),
        ("Grok-1 314B", "512", "64", "8192", "8", "8")]
    assert float(grok[1]["measured_tokens_per_s_per_chip"]) == pytest.approx(
        8192 * 1024 / 20.83 / 512, abs=0.06)
    assert (grok[0]["moe_num_experts"], grok[0]["moe_top_k"], grok[0]["recompute"]) == (
        "8", "2", "none")
    assert "capacity factor 1.0" in grok[0]["measured_from"]
    assert "moe_grouped_gemm false" in grok[0]["measured_from"]
    assert [(r["chip"], r["pp"], r["ep"], r["recompute"]) for r in deepseek] == [
        ("gb200", "4", "32", "selective")]
    notes = deepseek[0]["measured_from"]
    assert "first pipeline stage 15 layers, last pipeline stage 14 layers" in notes
    assert "ETP 1" in notes
    assert "mtp_num_layers 1" in notes
    assert "kv_lora_rank 512" in notes


@pytest.mark.skipif(not DEV.exists(), reason="needs ../shared/validation")
def test_the_moe_rows_read_as_their_recipes(dg: ModuleType) -> None:
    """The sweep's MoE rows become the plans their recipes ran: Grok-1 (NeMo 1) with
    per-expert GEMMs, the alltoall dispatch without overlap, bf16 gradient reduction and
    the flash-attn kernel; DeepSeek-V3 on H100 with its recompute module, uneven ends,
    whole experts and its prediction module; both padded to a capacity of 1."""
    from ocplan.catalog.catalog import load_catalog
    from ocplan.results.validation import prepare_row
    catalog = load_catalog()
    rows = _rows(dg.SWEEP)
    grok = prepare_row(next(r for r in rows.values() if r["model"] == "Grok-1 314B"
                            and "v24.11.1" in r["source"]), catalog)
    assert (grok.plan.grouped_gemm, grok.plan.ep_dedup, grok.plan.ep_overlap,
            grok.plan.grad_reduce_bf16, grok.plan.native_attention) == (
        False, False, False, True, False)
    assert (grok.workload.moe_capacity_factor, grok.workload.moe_dispatch) == (1.0,
                                                                            "permute")
    ds = prepare_row(next(r for r in rows.values() if r["model"] == "DeepSeek-V3 671B"
                          and r["chip"] == "h100-sxm-80gb"), catalog)
    assert (ds.plan.recompute, ds.plan.first_stage_layers, ds.plan.last_stage_layers,
            ds.plan.etp) == ("mla_up", 3, 2, 1)
    assert ds.workload.model.mtp_depth == 1
    assert ds.workload.model.is_mla
    assert ds.workload.moe_capacity_factor == 1.0


@pytest.mark.skipif(not DEV.exists(), reason="needs ../shared/validation")
def test_the_report_is_the_committed_models(dg: ModuleType) -> None:
    """docs/dgxc-sweep.md equals a fresh scoring: a change that moves a sweep prediction
    must rewrite it (``.venv/bin/python scripts/dgxc_sweep.py``)."""
    assert dg.REPORT.read_text(encoding="utf-8") == dg.report()
