"""NVIDIA's DGX Cloud benchmarking recipes (dgxc-benchmarking) for Llama 3.1 8B, 70B and
405B, Nemotron-4 15B and 340B, GPT-3 175B and the mixture-of-experts Grok-1 314B and
DeepSeek-V3 671B as a sweep: four releases of the recipes (NeMo 24.05 to 25.04) on H100
and GB200, weak-scaled from 8 to 2,304 GPUs, predicted with the committed calibration.
Never fitted.

Usage::

    .venv/bin/python scripts/dgxc_sweep.py            # writes docs/dgxc-sweep.md
    .venv/bin/python scripts/dgxc_sweep.py --build GIT_DIR   # rebuilds the CSV

Reads ``validation/sweeps/dgxc_nemo.csv`` (every row of the recipes' "Expected
Performance" tables, in the training CSV's columns; ``--build`` writes it from a git
directory of github.com/NVIDIA/dgxc-benchmarking, reading the README of each release in
:data:`READMES`). The recipes publish step times for one layout at several GPU counts
(global batch growing with the GPUs), so each table is a weak-scaling series of one
software release; the same configurations recur across releases. What the sweep shows
that the development set cannot: the data-parallel scaling of one layout to thousands of
GPUs, and the releases' spread at fixed layout. The MoE recipes state more than their
tables (dispatcher, capacity, expert TP, recompute modules, pipeline split): what each
release's configuration files and the NeMo commit its ``setup.sh`` checks out set is
written into the rows' notes (:func:`recipe`), in the words the validation reader reads.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from _cli import (  # scripts/ sibling
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
SWEEP = ROOT / "validation" / "sweeps" / "dgxc_nemo.csv"
REPORT = ROOT / "docs" / "dgxc-sweep.md"
REPO = "NVIDIA/dgxc-benchmarking"
#: The README of each release that carries measured step times (later releases print the
#: layouts only), with the NeMo container its README or ``setup.sh`` names:
#: (git tag, README path, container).
READMES: tuple[tuple[str, str, str], ...] = (
    ("v24.11.1", "llama3.1/README_8b.md", "24.09"),
    ("v24.11.1", "llama3.1/README_70b.md", "24.09"),
    ("v24.11.1", "llama3.1/README_405b.md", "24.09"),
    ("v24.11.1", "nemotron/README_15b.md", "24.09"),
    ("v24.11.1", "nemotron/README_340b.md", "24.09"),
    ("v24.11.1", "nemo_megatron/README_175b.md", "24.05"),
    ("v25.02", "llama3.1/README_8b.md", "24.12"),
    ("v25.02", "llama3.1/README_70b.md", "24.12"),
    ("v25.02", "llama3.1/README_405b.md", "24.12"),
    ("v25.02", "nemotron/README_15b.md", "24.12 or 24.09"),
    ("v25.02", "nemotron/README_340b.md", "24.12 or 24.09"),
    ("v25.02", "nemo_megatron/README_175b.md", "24.12"),
    ("v25.04", "llama3.1/README.md", "25.02.01"),
    ("v25.04", "nemotron/README.md", "25.02.01"),
    ("v25.05.01", "llama3.1/README.md", "25.04.01"),
    ("v25.05.01", "nemotron/README.md", "25.04.00"),
    ("v24.11.1", "grok1/README_314b.md", "dev"),
    ("v25.02", "grok1/README_314b.md", "24.12"),
    ("v25.04", "grok1/README_314b.md", "24.12"),
    ("v25.05.01", "grok1/README.md", "25.04.00"),
    ("v25.05.01", "deepseek_v3/pretraining/README.md", "25.04.01"),
)
#: The models by size as the tables name them: label, layers, hidden, heads, KV heads,
#: FFN, MLP as the training CSV writes it, vocabulary ("" for the reader's default),
#: tokens a sequence. Llama 3.1: Meta's config.json (SwiGLU). Nemotron-4: arXiv
#: 2402.16819 (15B) and 2406.11704 Table 1 (340B); squared ReLU, a non-gated
#: two-matrix MLP, written ``gelu`` as the development set writes it. GPT-3 175B: Brown et
#: al. 2020 Table 2.1; the vocabulary left to the reader, as the development set's NeMo
#: GPT3-175B row leaves it.
MODELS: dict[str, tuple[str, int, int, int, int, int, str, str, int]] = {
    "8b": ("Llama 3.1 8B", 32, 4096, 32, 8, 14336, "swiglu", "128256", 8192),
    "70b": ("Llama 3.1 70B", 80, 8192, 64, 8, 28672, "swiglu", "128256", 8192),
    "405b": ("Llama 3.1 405B", 126, 16384, 128, 8, 53248, "swiglu", "128256", 8192),
    "15b": ("Nemotron-4 15B", 32, 6144, 48, 8, 24576, "gelu", "256000", 4096),
    "340b": ("Nemotron-4 340B", 96, 18432, 96, 8, 73728, "gelu", "256000", 4096),
    "175b": ("GPT-3 175B", 96, 12288, 96, 96, 49152, "gelu", "", 2048),
    "314b": ("Grok-1 314B", 64, 6144, 48, 8, 32768, "swiglu", "128256", 8192),
    "671b": ("DeepSeek-V3 671B", 61, 7168, 128, 128, 18432, "swiglu", "129280", 4096),
}
#: The mixture-of-experts models' expert columns (experts, top-k, expert FFN, shared
#: experts, leading dense layers) and what the notes say of their architecture.
MOE: dict[str, tuple[tuple[int, int, int, int, int], str]] = {
    "314b": ((8, 2, 32768, 0, 0),
             "architecture: Grok-1 (github.com/xai-org/grok-1 run.py: 64 layers, 48 query "
             "and 8 KV heads of 128, 8 experts top-2 in every layer, a gated MLP of FFN "
             "32768, its ffn_size at widening factor 8); the recipes' GeGLU (NeMo 1 "
             "fast-geglu) and SwiGLU (NeMo 2's MixtralConfig) have the same three "
             "matrices, recorded swiglu; vocabulary 128,256, as the recipes tokenize with "
             "Llama 3's tokenizer (their README); the README's 4.27e15 model FLOPs a "
             "sequence is 6 x 83.7B active parameters x 8192 tokens plus causal attention"),
    "671b": ((256, 8, 2048, 1, 3),
             "architecture: DeepSeek-V3 config.json; attention: MLA (kv_lora_rank 512, "
             "q_lora_rank 1536, qk head dim 192, v head dim 128), n_kv_heads set = n_heads "
             "because K/V are up-projected per head; first 3 layers dense (ffn 18432), 58 "
             "MoE layers of 256 experts top-8 (FFN 2048) and 1 shared expert"),
}
#: What the MoE recipes set beyond their tables' sizes, in the words the validation
#: reader reads (``ocplan.results.validation``: "without DeepEP", "capacity factor",
#: "moe_grouped_gemm false", "gradients reduced in bf16", "NVTE_FUSED_ATTN=0", "ETP n",
#: "first/last pipeline stage n layers", "mtp_num_layers n"), by release tag and model.
#: Grok-1 up to v25.04 runs NeMo 1 with the release's ``grok1/grok1_314b.yaml`` and
#: ``configure.sh``; v25.05.01 runs NeMo 2's ``scripts/performance/llm/
#: pretrain_grok1_314b.py`` and DeepSeek-V3 its ``pretrain_deepseek_v3.py``, at the NeMo
#: commits the releases' ``setup.sh`` check out (6f2c6fd and 7a8f1cc). Both token-drop at
#: capacity factor 1 with every expert's input padded to its capacity, so each expert
#: computes its capacity whatever the router does.
GROK_NEMO1 = (
    "recipe (NeMo 1 grok1_314b.yaml, configure.sh): moe_token_dispatcher_type alltoall, "
    "without DeepEP (no dispatch overlap); moe_grouped_gemm false; capacity factor 1.0 "
    "with moe_pad_expert_input_to_capacity (token-dropping, each expert padded to its "
    "capacity); no recompute (activations_checkpoint_granularity null); gradients reduced "
    "in bf16 (optim.grad_sync_dtype bf16); NVTE_FUSED_ATTN=0 (configure.sh); expert "
    "tensor parallelism the TP (Megatron-Core's default); fp8: fp8_hybrid, fp8_params")
GROK_NEMO2 = (
    "recipe (NeMo 2 pretrain_grok1_314b.py at NeMo 6f2c6fd, launch.sh): MixtralConfig "
    "(SwiGLU), moe_token_dispatcher_type alltoall, without DeepEP (no dispatch overlap); "
    "moe_grouped_gemm false (Megatron-Core's default, not set); capacity factor 1.0 with "
    "padding to capacity (MegatronTokenDropCallback); no recompute; gradients reduced in "
    "bf16 (performance mode: grad_reduce_in_fp32 False); TP communication overlap on; "
    "ETP {etp}")
DEEPSEEK_NEMO2 = (
    "recipe (NeMo 2 pretrain_deepseek_v3.py at NeMo 7a8f1cc, launch.sh): "
    "moe_token_dispatcher_type alltoall (DeepSeekV3Config), without DeepEP (no dispatch "
    "overlap); grouped GEMM; capacity factor 1.0 with padding to capacity "
    "(MegatronTokenDropCallback); selective recompute of modules {modules} (launch.sh); "
    "first pipeline stage {first} layers, last pipeline stage {last} layers (64/pp - 1 "
    "and 64/pp - 2); mtp_num_layers 1 (the recipe's use_mtp); gradients reduced in fp32 "
    "(a BF16 run: the precision plugin's default); ETP {etp}")
#: DeepSeek-V3's recompute modules by system (v25.05.01 ``launch.sh``: ``RM``), with the
#: recompute mode the training CSV writes for them.
DEEPSEEK_RECOMPUTE = {"H100": ("mla_up_proj", "mla_up"), "GB200": ("core_attn", "selective")}


def recipe(tag: str, size: str, system: str, lay: dict[str, str]) -> tuple[str, str]:
    """(notes, recompute column) of a MoE model's recipe at release ``tag``
    (:data:`GROK_NEMO1`, :data:`GROK_NEMO2`, :data:`DEEPSEEK_NEMO2`); for the dense
    models, whose tables and launch scripts name no recompute, that it is not stated."""
    if size == "314b":
        if tag == "v25.05.01":
            return GROK_NEMO2.format(etp=lay["ETP"]), "none"
        return GROK_NEMO1, "none"
    if size == "671b":
        modules, mode = DEEPSEEK_RECOMPUTE[system]
        middle = 64 // int(lay["PP"])
        return DEEPSEEK_NEMO2.format(modules=modules, first=middle - 1, last=middle - 2,
                                     etp=lay["ETP"]), mode
    return "recompute not stated", ""
#: Layout values a README prints wrong, by (tag, path, size), with what the release's
#: launch script sets: v25.04's Nemotron README prints VP "NA" for 340B, where its
#: ``nemotron/launch.sh`` passes ``-vp 12`` (as every other release's table states).
LAYOUT_FIXES: dict[tuple[str, str, str], dict[str, str]] = {
    ("v25.04", "nemotron/README.md", "340b"): {"VP": "12"},
}
#: The recipes' systems: catalog chip, GPUs a node, scale-out as the development set
#: writes them for DGX H100 and GB200 NVL72 (8 and 4 400G InfiniBand NICs a node).
SYSTEMS = {"H100": ("h100-sxm-80gb", 8, "8x400G-IB"),
           "GB200": ("gb200", 4, "NVL72/4x400G-IB")}
#: A performance table's title: the model (GPT-3's tables are titled "NeMo Megatron"),
#: an optional release, the precision, an optional system and layout.
TITLE = re.compile(r"(?:Llama ?3\.1 |Nemotron4? |(NeMo Megatron))(\d+b)?(?: [\d.]+)? "
                   r"(BF16|FP8)\b[^(]*(?:\(([^)]*)\))?", re.I)
#: A MoE table's title: Grok-1's ("Grok 1 314b Dev BF16", "Grok1 314b FP8") or
#: DeepSeek-V3's ("Deepseek V3 BF16 H100"), the model's size key and the precision.
MOE_TITLE = re.compile(r"(?:Grok ?1 (314b)|Deepseek V3)(?: Dev)? (BF16|FP8)\b", re.I)
COLUMN = re.compile(r"(\d+)x? (H100|GB200) GPUs(?: \(GBS=(\d+)\))?")
CHIP_MARK = re.compile(r"^(?:\*\*|#+ )(H100|GB200)s?\b")
#: Columns that identify one run across releases: a later release that republishes a
#: run's step time is the same run.
KEY = ("model", "chip", "num_chips", "precision", "n_layers",
       "measured_tokens_per_s_per_chip")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _number(text: str) -> float:
    """A table number; the 24.09 405B table writes one step time as ``8.7  5``."""
    return float(re.sub(r"\s+", "", text))


def _layout(text: str) -> dict[str, str]:
    """``TP=8, PP=9, CP=2, VP=7, MBS=1, GA=63`` as a dict (upper-case keys)."""
    return {k.upper(): v for k, v in re.findall(r"(\w+)=(\w+)", text)}


def config_tables(text: str) -> dict[tuple[str, str, str, int], dict[str, str]]:
    """The layouts of a README's configuration tables, by (size, precision, chip, GPUs);
    size or precision ``""`` where the table has no such column (the 405B-only README of
    25.04.01) and ``BF16/FP8`` rows entered under both precisions."""
    out: dict[tuple[str, str, str, int], dict[str, str]] = {}
    head: list[str] = []
    chip = "H100"
    for line in text.splitlines():
        mark = CHIP_MARK.match(line.strip())
        if mark:
            chip = mark[1]
        if not line.startswith("|"):
            head = []
            continue
        cells = _cells(line)
        if "GPUs" in cells and "TP" in cells:
            head = cells
            continue
        if not head or cells[0].startswith("-") or len(cells) != len(head):
            continue
        r = dict(zip(head, cells, strict=True))
        size = r.get("Size", "").lower().replace("-proxy", "")
        for precision in r.get("Precision", "").split("/"):
            out[(size, precision, chip, int(r["GPUs"]))] = r
    return out


def _table(lines: list[str], i: int) -> tuple[dict[str, list[str]], int]:
    """The body of the table whose header is ``lines[i]``: its rows by first cell (the
    separator left out), and the index past it. The 25.04 Nemotron tables leave the body
    rows' leading bar out, so a row is any line with a bar."""
    body: dict[str, list[str]] = {}
    i += 1
    while i < len(lines) and "|" in lines[i]:
        cells = _cells(lines[i])
        if not cells[0].startswith("-"):
            body[cells[0]] = cells[1:]
        i += 1
    return body, i


def _title(cell: str) -> tuple[str, str, str] | None:
    """(model size key, precision, the title's ``KEY=value`` list) of a performance
    table's title cell (:data:`TITLE`, :data:`MOE_TITLE`), or None for another cell."""
    dense = TITLE.match(cell)
    if dense:
        return ("175b" if dense[1] else dense[2].lower()), dense[3].upper(), dense[4] or ""
    moe = MOE_TITLE.match(cell)
    if moe:
        return (moe[1] or "671b").lower(), moe[2].upper(), ""
    return None


def _column_layout(title_layout: str, size: str, precision: str, system: str,
                   gpus: int, j: int, body: dict[str, list[str]],
                   configs: dict[tuple[str, str, str, int], dict[str, str]],
                   fix: dict[str, str]) -> dict[str, str]:
    """The layout of column ``j``: the configuration table's row, over it the title's
    ``KEY=value`` list, over that the column's own rows, over all :data:`LAYOUT_FIXES`."""
    cfg = configs.get((size, precision, system, gpus)) or configs.get(
        ("", "", system, gpus)) or {}
    lay = {**cfg, **_layout(title_layout)}
    lay.update({name: body[name][j] for name in ("Layers", "GBS", "PP", "VP") if name in body})
    return {**lay, **fix}


def _csv_row(source: str, tag: str, size: str, precision: str, system: str, gpus: int,
             gbs_column: str | None, lay: dict[str, str], step: str) -> dict[str, str]:
    """One run in the training CSV's columns, its rate ``seq x GBS / step / GPUs``; a MoE
    model's with its expert columns, expert-parallel size and :func:`recipe`."""
    label, n, d, heads, kv, ffn, mlp, vocab, seq = MODELS[size]
    chip, per_node, scale_out = SYSTEMS[system]
    layers = int(lay.get("Layers", n))
    seq = int(lay.get("SEQ") or lay.get("SeqLen") or seq)
    tp, pp, cp, mbs = int(lay["TP"]), int(lay["PP"]), int(lay.get("CP", 1)), int(lay["MBS"])
    dp = gpus // (tp * pp * cp)
    gbs = int(gbs_column or lay.get("GBS") or int(lay["GA"]) * mbs * dp)
    vp = lay.get("VP", "")
    proxy = f" proxy, {layers} of {n} layers" if layers != n else ""
    relu2 = "; mlp: squared-ReLU (relu2), non-gated 2-matrix shape recorded as gelu"
    notes, recompute = recipe(tag, size, system, lay)
    experts: dict[str, str] = {}
    if size in MOE:
        (count, top_k, expert_ffn, shared, dense), arch = MOE[size]
        experts = dict(moe_num_experts=str(count), moe_top_k=str(top_k),
                       moe_expert_ffn=str(expert_ffn), moe_shared_experts=str(shared),
                       moe_layer_freq="1", moe_first_dense_layers=str(dense))
        notes = f"EP carved out of dp; {notes}; {arch}"
    return dict(
        source=source, model=f"{label}{proxy}", n_layers=str(layers), hidden_size=str(d),
        n_heads=str(heads), n_kv_heads=str(kv), ffn_hidden=str(ffn), mlp=mlp,
        vocab_size=vocab, seq_len=str(seq), **experts, chip=chip, num_chips=str(gpus),
        chips_per_node=str(per_node), scale_out=scale_out, precision=precision.lower(),
        tp=str(tp), pp=str(pp), dp=str(dp), cp=str(cp), ep=lay["EP"] if experts else "1",
        vpp=vp if vp.isdigit() and int(vp) > 1 else "",
        sequence_parallel="yes" if tp > 1 else "no", zero_stage="1", micro_batch=str(mbs),
        global_batch=str(gbs), recompute=recompute,
        measured_tokens_per_s_per_chip=f"{seq * gbs / _number(step) / gpus:.1f}",
        measured_from=(
            f"step_time: seq_len x global_batch / step time / GPUs, step time "
            f"{step.replace(' ', '')} s from the table; dp derived = GPUs / (tp pp cp); "
            "zero_stage 1 assumed (NeMo's distributed optimizer); sequence parallelism "
            f"inferred (NeMo default with TP); {notes}; scale_out inferred "
            "from the standard system spec" + (relu2 if size in ("15b", "340b") else "")),
        confidence="high")


def rows_from_readme(text: str, tag: str, path: str, container: str) -> list[dict[str, str]]:
    """Every run of a README's performance tables, in the training CSV's columns (no
    ``case_id``). A table's layout comes from its title (24.09, 24.12), its per-column
    rows (the 405B proxies' layers, batch, PP and VP) or the README's configuration
    tables (25.02.01, 25.04.01), in that order."""
    configs = config_tables(text)
    rows: list[dict[str, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        cells = _cells(lines[i]) if lines[i].startswith("|") else []
        title = _title(cells[0]) if cells else None
        if not title:
            i += 1
            continue
        size, precision, title_layout = title
        body, i = _table(lines, i)
        steps = next(v for k, v in body.items() if k.startswith("Training step time"))
        source = f"{REPO}@{tag} {path} (NeMo {container}) | table '{cells[0]}'"
        fix = LAYOUT_FIXES.get((tag, path, size), {})
        for j, col in enumerate(COLUMN.search(c) for c in cells[1:] if c):
            assert col, f"{tag} {path}: column {j} of '{cells[0]}' names no GPUs"
            gpus, system = int(col[1]), col[2]
            lay = _column_layout(title_layout, size, precision, system, gpus, j, body,
                                 configs, fix)
            rows.append(_csv_row(source, tag, size, precision, system, gpus, col[3], lay,
                                 steps[j]))
    return rows


def build(git_dir: Path, out: Path = SWEEP) -> int:
    """Write the sweep CSV from the READMEs of :data:`READMES` in ``git_dir`` (a git
    directory of dgxc-benchmarking), each run once: a later release that republishes a
    run's step time (:data:`KEY`) adds nothing. Returns the
    row count; SpecError (nothing written) when ``git_dir`` lacks a README."""
    if not (git_dir / "HEAD").is_file():
        raise SpecError.one(str(git_dir), "", "not a git directory (a clone or mirror of "
                            f"github.com/{REPO} with its release tags)")
    rows: list[dict[str, str]] = []
    seen: set[tuple[str, ...]] = set()
    for tag, path, container in READMES:
        shown = subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{tag}:{path}"],
                               capture_output=True, text=True, check=False)
        if shown.returncode:
            raise SpecError.one(str(git_dir), f"{tag}:{path}",
                                "not found (a git directory of NVIDIA/dgxc-benchmarking "
                                "with its release tags)")
        for r in rows_from_readme(shown.stdout, tag, path, container):
            key = tuple(r[k] for k in KEY)
            if key not in seen:
                seen.add(key)
                rows.append({"case_id": f"DG{len(rows) + 1:03d}", **r})
    return write_training_rows(rows, out)


def _tag(source: str) -> str:
    """The recipes' release tag a row's source cites (``v25.02``)."""
    match = re.search(r"@(v[\d.]+) ", source)
    assert match, source
    return match[1]


def _summary(label: str, errs: list[float]) -> str:
    """One line of a group's errors: median and 90th percentile of the absolute, mean
    of the signed, in %."""
    a = np.abs(errs)
    return (f"{label}: median |error| {np.median(a):.1f} %, p90 "
            f"{np.percentile(a, 90):.1f} %, mean signed {statistics.fmean(errs):+.1f} %.")


def report(sweep: Path = SWEEP) -> str:
    """The report: every run predicted once; the error by model, precision, chip and
    release, and how it moves from the smallest to the largest GPU count of a series."""
    rows = read_cases(sweep)
    catalog = load_catalog()
    errs: list[float] = []
    moe_errs: list[float] = []
    cells: dict[tuple[str, str, str], dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(list))
    series: dict[tuple[str, ...], list[tuple[int, float]]] = defaultdict(list)
    for r in rows:
        est = predict_row(r, catalog)[0]
        assert est.feasible, f"{r['case_id']}: {est.reason}"
        err = 100.0 * (est.tokens_per_s_per_chip
                       / float(r["measured_tokens_per_s_per_chip"]) - 1.0)
        (moe_errs if (r.get("moe_num_experts") or "").strip() else errs).append(err)
        release = _tag(r["source"])
        base = r["model"].split(" proxy")[0]
        cells[(base, r["precision"], r["chip"])][release].append(err)
        if "proxy" not in r["model"]:
            # a weak-scaling series: one layout, the batch a fixed multiple of the GPUs
            per_gpu = f"{int(r['global_batch']) / int(r['num_chips']):.6g}"
            series[(release, base, r["precision"], r["chip"], r["tp"], r["pp"], r["cp"],
                    per_gpu)].append((int(r["num_chips"]), err))
    releases = sorted({c for v in cells.values() for c in v},
                      key=lambda s: tuple(int(x) for x in s[1:].split(".")))
    drift = [max(s)[1] - min(s)[1] for s in series.values() if len(s) > 1]
    lines = [
        "# NVIDIA's DGX Cloud NeMo recipes as a sweep",
        "",
        f"Written by `scripts/dgxc_sweep.py` from `validation/sweeps/dgxc_nemo.csv` "
        f"({len(rows)} runs of Llama 3.1 8B-405B, Nemotron-4 15B and 340B, GPT-3 175B, "
        f"and the mixture-of-experts Grok-1 314B and DeepSeek-V3 671B: "
        f"the \"Expected Performance\" tables of github.com/{REPO} at the release tags "
        f"{', '.join(sorted({t for t, _, _ in READMES}))}; each row's source names the NeMo "
        "container it ran), each predicted with the committed calibration. Never fitted; "
        "no development or hold-out row comes from this source.",
        "",
        _summary(f"Dense ({len(errs)} runs)", errs),
        "",
        _summary(f"Mixture of experts ({len(moe_errs)} runs; their recipes pad every "
                 "expert's input to a capacity factor of 1)", moe_errs),
        "",
        f"Weak scaling: over the {len(drift)} series of one layout at several GPU counts "
        "(the proxies of fewer layers apart), the signed error at the most GPUs less that "
        f"at the fewest has median {statistics.median(drift):+.1f} points (range "
        f"{min(drift):+.1f} to {max(drift):+.1f}): what the model gets wrong about "
        "scale (data-parallel communication, per-step costs).",
        "",
        "Median signed error, % (100 (predicted - measured) / measured; runs in the "
        "cell), by release of the recipes:",
        "",
        "| model | precision | chip | " + " | ".join(releases) + " |",
        "|---|---|---|" + "---|" * len(releases),
    ]
    for (model, precision, chip), by_release in sorted(cells.items()):
        out = [f"{statistics.median(v):+.1f} ({len(v)})" if (v := by_release.get(rel))
               else "" for rel in releases]
        lines.append(f"| {model} | {precision} | {chip} | " + " | ".join(out) + " |")
    lines.append("")
    return "\n".join(lines)


def parser() -> ScriptParser:
    p = script_parser(__file__, __doc__, "writes docs/dgxc-sweep.md, or the CSV with "
                      "--build")
    p.add_argument("--build", type=Path, metavar="GIT_DIR",
                   help="rebuild validation/sweeps/dgxc_nemo.csv from a git directory "
                        "of NVIDIA/dgxc-benchmarking")
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
