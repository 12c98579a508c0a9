"""MosaicML's llm-foundry benchmark tables as a sequence-length sweep: the same software
(PyTorch FSDP, FlashAttention-2) on H100 and A100, MPT models of 125M to 70B parameters
at 512 to 65,536 tokens a sequence, predicted with the committed calibration.

Usage::

    .venv/bin/python scripts/foundry_sweep.py            # writes docs/llm-foundry-sweep.md
    .venv/bin/python scripts/foundry_sweep.py --build README.md   # rebuilds the CSV

Reads ``validation/sweeps/llm_foundry_mpt.csv`` (every BF16 row of the tables, in the
training CSV's columns; ``--build`` writes it from the tables' markdown). Never fitted:
four of its rows are development rows and eighteen are hold-out rows (the report marks
them and scores the rest apart). What the sweep shows that the development set cannot is
how the error moves with the attention share of a step at fixed software: the
development runs sit at 2,048-8,192 tokens a sequence.
"""

from __future__ import annotations

import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from _cli import (  # scripts/ sibling
    TRAINING_DEV_CSV,
    ScriptParser,
    bad_input,
    parse_argv,
    script_parser,
    write_training_rows,
)

from ocplan.catalog.catalog import load_catalog
from ocplan.errors import SpecError
from ocplan.results.validation import predict_row, read_cases

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ROOT / "validation" / "sweeps" / "llm_foundry_mpt.csv"
REPORT = ROOT / "docs" / "llm-foundry-sweep.md"
HOLDOUT = ROOT / "validation" / "holdout" / "training_holdout.csv"
#: Where the tables are: mosaicml/llm-foundry, last changed in 4952183 (2024-04-22).
SOURCE = ("mosaicml/llm-foundry@4952183 scripts/train/benchmarking/README.md; model dims "
          "from scripts/train/yamls/pretrain/mpt-*.yaml")
#: MPT sizes (``scripts/train/yamls/pretrain/mpt-<size>.yaml``): layers, d_model, heads;
#: expansion ratio 4 (gelu), vocabulary 50,368.
MPT = {"125m": (12, 768, 12), "350m": (24, 1024, 16), "760m": (24, 1536, 12),
       "1b": (24, 2048, 16), "3b": (32, 2560, 20), "7b": (32, 4096, 32),
       "13b": (40, 5120, 40), "30b": (48, 7168, 56), "70b": (80, 8192, 64)}
MPT_VOCAB = 50368
#: The tables' GPU column: catalog chip, and the scale-out network the A100 tables name in
#: their titles (1,600 Gbps RoCE a node); the H100 tables name none (the chip's default).
GPUS = {"h100_80gb": ("h100-sxm-80gb", ""), "a100_80gb": ("a100-sxm-80gb", "8x200G-RoCE"),
        "a100_40gb": ("a100-sxm-40gb", "8x200G-RoCE")}
#: Columns that identify one run across the sweep, the development and hold-out sets.
KEY = ("chip", "n_layers", "hidden_size", "seq_len", "num_chips", "micro_batch",
       "global_batch")


def build(readme: Path, out: Path = SWEEP) -> int:
    """Write the sweep CSV from the tables of ``readme`` (BF16 tables only); returns the
    row count. SpecError (nothing written) when ``readme`` cannot be read."""
    if not readme.is_file():
        raise SpecError.one(str(readme), "", "file not found")
    rows: list[dict[str, object]] = []
    table, cols = "", []
    for line in readme.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            table, cols = line[3:].strip(), []
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or cells[0].startswith("---"):
            continue
        if cells[0] == "Model":
            cols = cells
            continue
        r = dict(zip(cols, cells, strict=True))
        if "FP8" in table or r.get("Model") not in MPT:
            continue
        layers, d, heads = MPT[r["Model"]]
        chip, scale_out = GPUS[r["GPU"]]
        n = int(r["# GPUs"])
        rows.append(dict(
            case_id=f"LF{len(rows) + 1:03d}", source=f"{SOURCE} | table '{table}'",
            model=f"MPT-{r['Model']}", n_layers=layers, hidden_size=d, n_heads=heads,
            n_kv_heads=heads, ffn_hidden=4 * d, mlp="gelu", vocab_size=MPT_VOCAB,
            seq_len=r["SeqLen (T)"], chip=chip, num_chips=n, chips_per_node=8,
            scale_out=scale_out, precision="bf16", tp=1, pp=1, dp=n, cp=1, ep=1,
            sequence_parallel="no",
            zero_stage=3 if r["Sharding Strategy"] == "FULL_SHARD" else 2,
            micro_batch=r["MicroBatchSize"], global_batch=r["GlobalBatchSize"],
            recompute="full" if r["Activation Checkpointing"] == "True" else "none",
            measured_tokens_per_s_per_chip=r["Throughput (T/s/GPU)"],
            measured_from=(f"reported_tps: Throughput (T/s/GPU) read from the table; "
                           f"FSDP mixed precision {r['MP Mode']}, "
                           f"{r['Sharding Strategy']}"),
            confidence="high"))
    return write_training_rows(rows, out)


def _keys(path: Path) -> dict[tuple[str, ...], str]:
    with path.open(newline="", encoding="utf-8") as f:
        return {tuple(r[k] for k in KEY): r["case_id"] for r in csv.DictReader(f)}


def _bucket(seq: int) -> str:
    return f"{seq // 1024}K" if seq >= 1024 else str(seq)


def report(sweep: Path = SWEEP) -> str:
    """The report: every row predicted once, the signed error by chip and sequence length
    and the fullest run's memory."""
    rows = read_cases(sweep)
    known = {**_keys(TRAINING_DEV_CSV), **_keys(HOLDOUT)}
    catalog = load_catalog()
    cells: dict[tuple[str, int], list[float]] = defaultdict(list)
    errs: list[float] = []
    new: list[float] = []
    overlap = []
    fills: list[tuple[float, dict[str, str]]] = []
    for r in rows:
        est = predict_row(r, catalog)[0]
        assert est.feasible, f"{r['case_id']}: {est.reason}"
        assert est.memory is not None
        err = 100.0 * (est.tokens_per_s_per_chip
                       / float(r["measured_tokens_per_s_per_chip"]) - 1.0)
        errs.append(err)
        cells[(r["chip"], int(r["seq_len"]))].append(err)
        # The benchmarkers chose each micro-batch to fill the GPU, so the fullest runs
        # test the memory model: a run it over-counts would come out infeasible.
        fills.append((est.memory.total_bytes / est.memory.capacity_bytes, r))
        match = known.get(tuple(r[k] for k in KEY))
        if match:
            overlap.append(f"{r['case_id']} = {match}")
        else:
            new.append(err)
    fill, full = max(fills, key=lambda f: f[0])
    chips = sorted({k[0] for k in cells})
    seqs = sorted({k[1] for k in cells})
    absn = np.abs(new)
    lines = [
        "# llm-foundry's MPT tables as a sequence-length sweep",
        "",
        f"Written by `scripts/foundry_sweep.py` from `validation/sweeps/llm_foundry_mpt.csv` "
        f"({len(rows)} BF16 rows of {SOURCE}), each predicted with the committed "
        "calibration. Never fitted.",
        "",
        f"Median |error| {statistics.median(abs(e) for e in errs):.1f} %, mean signed "
        f"{statistics.fmean(errs):+.1f} % over all {len(errs)}; over the {len(new)} rows "
        f"that are neither development nor hold-out rows, median |error| "
        f"{np.median(absn):.1f} %, p90 {np.percentile(absn, 90):.1f} %.",
        "",
        f"Memory: every run fits the model's count; the fullest, {full['case_id']} "
        f"({full['model']}, {full['seq_len']} tokens, micro-batch {full['micro_batch']} on "
        f"{full['chip']}), at {100 * fill:.0f} % of its HBM; "
        f"{sum(f > 0.9 for f, _ in fills)} runs above 90 %.",
        "",
        "Median signed error, % (100 (predicted - measured) / measured; rows in the cell):",
        "",
        "| chip | " + " | ".join(_bucket(s) for s in seqs) + " |",
        "|---|" + "---|" * len(seqs),
    ]
    for chip in chips:
        out = []
        for s in seqs:
            v = cells.get((chip, s))
            out.append(f"{statistics.median(v):+.1f} ({len(v)})" if v else "")
        lines.append(f"| {chip} | " + " | ".join(out) + " |")
    lines += ["", "Rows that are development or hold-out rows: " + ", ".join(overlap) + ".",
              ""]
    return "\n".join(lines)


def parser() -> ScriptParser:
    p = script_parser(__file__, __doc__, "writes docs/llm-foundry-sweep.md, or the CSV "
                      "with --build")
    p.add_argument("--build", type=Path, metavar="README.md",
                   help="rebuild validation/sweeps/llm_foundry_mpt.csv from the tables")
    return p


def main(argv: list[str]) -> int:
    args = parse_argv(parser(), argv)
    if isinstance(args, int):  # --help (0), or a bad argument's one line printed (2)
        return args
    try:
        if args.build is not None:
            print(f"{build(args.build)} rows -> {SWEEP.relative_to(ROOT)}")
            return 0
        REPORT.write_text(report(), encoding="utf-8")
    except SpecError as exc:
        return bad_input(__file__, exc)
    print(f"wrote {REPORT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
