"""The operator cost model against kernels measured on one H200.

Usage::

    .venv/bin/python scripts/device_report.py [CSV]

Reads ``validation/device/h200_kernels.csv`` (written on a lent H200 by
``scripts/device/kernel_microbench.py``; see ``validation/device/README.md``) and predicts
every measured kernel with the cost model as the engine runs it: the H200's catalog
``compute`` block, the committed calibration's ``hopper`` efficiencies and per-kernel
cost. Writes ``docs/device-h200.md``: per group of kernels, the median and p90 of
``|ln(predicted / measured)|`` and the median signed error, the achieved fractions of
peak beside the fitted efficiencies, and the whole-layer composition check. Nothing here
is fitted: the measurements test the laws, they do not set the calibration.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from _cli import ScriptParser, bad_input, parse_argv, script_parser  # scripts/ sibling

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import system_for_chip
from ocplan.costmodel.attention import flash_attention_time_s
from ocplan.costmodel.chip import ChipCompute
from ocplan.costmodel.gemm import gemm_cost
from ocplan.costmodel.op_time import ChipPeaks, Efficiencies, PassTime, imbalance_terms, profile
from ocplan.costmodel.roofline import HBM_EFFICIENCY, KERNEL_GAP_S
from ocplan.errors import SpecError
from ocplan.plan.calibration import Calibration, FamilyCalibration, load_calibration
from ocplan.plan.engine import SystemModel, chip_peaks, efficiencies, system_model
from ocplan.results.validation import read_csv_rows
from ocplan.serving.calibration import load_serving_calibration
from ocplan.serving.memory import kv_bytes_per_token_per_chip
from ocplan.serving.plan import ServingPlan
from ocplan.serving.step import IterationTime, StepModel, step_model
from ocplan.workloads.operators import Shard, layer_operators
from ocplan.workloads.serving import ServingWorkload
from ocplan.workloads.shape import ModelShape

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "validation" / "device" / "h200_kernels.csv"
REPORT = ROOT / "docs" / "device-h200.md"
#: The columns of the measurements: those ``scripts/device/kernel_microbench.py`` writes,
#: and the run each row came from.
COLUMNS = ("run", "section", "kernel", "dtype", "m", "n", "k", "groups", "batch", "heads",
           "kv_heads", "seq", "head_dim", "causal", "pass", "flops", "bytes", "time_s",
           "tflops", "tbps", "method", "note")
CHIP = "h200-sxm-141gb"
#: GEMMs of at least this many FLOPs are compute-bound on H200 at every shape measured
#: (8 GFLOP: 10 us at the sustained BF16 rate, past the ~5 us kernel floor).
COMPUTE_BOUND_FLOPS = 2.0 ** 33
#: The machine's state around run 4 (the sustained layers): its ``after_warm_up`` clock
#: is a pure GEMM stream's at the 700 W cap.
ENV_RUN4 = ROOT / "validation" / "device" / "h200_env_run4.json"
#: How long each sustained layer ran before and while it was timed (the microbench's
#: SUSTAIN_WARM_S and SUSTAIN_TIME_S).
SUSTAIN_NOTE = "3 s, then 1.5 s timed"

Row = dict[str, str]


@dataclass(frozen=True)
class Device:
    """The H200 as the engine sees it (its :class:`~ocplan.plan.engine.SystemModel`) and
    the calibration it runs with; peaks, efficiencies and the cost model's view of the
    chip come from the engine's own functions."""

    sm: SystemModel
    cal: Calibration

    @property
    def compute(self) -> ChipCompute:
        return self.sm.compute

    @property
    def peak16_flops(self) -> float:
        return self.sm.peak["bf16"]

    @property
    def peak8_flops(self) -> float:
        return self.sm.peak["fp8"]

    @property
    def hbm_Bps(self) -> float:
        return self.sm.hbm_Bps

    @property
    def fam(self) -> FamilyCalibration:
        return self.cal.for_family(self.sm.family)

    @property
    def eff(self) -> Efficiencies:
        return efficiencies(self.sm, self.cal)

    @property
    def peaks(self) -> ChipPeaks:
        return chip_peaks(self.sm, "bf16")


@dataclass(frozen=True)
class Compared:
    """One measured kernel and its prediction."""

    group: str
    row: Row
    predicted_s: float

    @property
    def measured_s(self) -> float:
        return float(self.row["time_s"])

    @property
    def log_error(self) -> float:
        """``ln(predicted / measured)``: positive where the model is slower."""
        return math.log(self.predicted_s / self.measured_s)


@dataclass(frozen=True)
class Summary:
    group: str
    n: int
    median_abs_pct: float
    p90_abs_pct: float
    median_signed_pct: float


def device() -> Device:
    """One 8-chip server of the H200 and the committed calibration."""
    return Device(sm=system_model(system_for_chip(load_catalog(), CHIP, 8)),
                  cal=load_calibration())


def read_rows(path: Path = DATA) -> list[Row]:
    """The measured rows that have a time (failed cases carry only a note); SpecError
    naming the file when it cannot be read (missing, not UTF-8, not CSV, a column of
    :data:`COLUMNS` missing)."""
    return [r for r in read_csv_rows(path, COLUMNS, lambda source, line, row: None)
            if r["time_s"]]


def _num(row: Row, *names: str) -> tuple[float, ...]:
    return tuple(float(row[n]) for n in names)


def gemm_group(row: Row) -> str:
    """``dtype kind`` with kind the kernel's prefix (layer, wgrad, stair_m, small_m,
    k_sweep, accum) and ``compute-bound`` or ``memory-bound`` for the layer shapes."""
    kind = row["kernel"].split(":")[0]
    if kind == "layer":
        m, n, k = _num(row, "m", "n", "k")
        kind = "layer, compute-bound" if 2 * m * n * k >= COMPUTE_BOUND_FLOPS else \
            "layer, memory-bound"
    return f"{row['dtype']} {kind}"


def compare_gemms(rows: Iterable[Row], dev: Device) -> list[Compared]:
    """Every dense GEMM against :func:`~ocplan.costmodel.gemm.gemm_cost` at the family's
    efficiency for its input precision."""
    fam = dev.fam
    out = []
    for r in rows:
        if r["section"] != "gemm":
            continue
        m, n, k = _num(r, "m", "n", "k")
        fp8 = r["dtype"] == "fp8"
        t = gemm_cost(m, n, k, 1, dev.peak8_flops if fp8 else dev.peak16_flops, dev.hbm_Bps,
                      dev.compute, 1 if fp8 else 2, 2, fam.gemm_8bit if fp8 else fam.gemm,
                      dev.cal.kernel_overhead_s).time_s
        out.append(Compared(gemm_group(r), r, float(t)))
    return out


def max_over_mean(row: Row) -> float:
    """Tokens of the most loaded expert over the mean, from a grouped row's note."""
    found = re.search(r"max/mean tokens ([0-9.]+)", row["note"])
    assert found, row["note"]
    return float(found.group(1))


def compare_grouped(rows: Iterable[Row], dev: Device, eta: float | None = None,
                    routing: str = "balanced", spread: bool = True) -> list[Compared]:
    """Grouped GEMMs (``torch._grouped_mm``) with ``balanced`` (every expert the same
    tokens) or ``routed`` (multinomial) tokens at ``eta`` (default: the engine's grouped
    efficiency, ``gemm x grouped_gemm_efficiency``), with the engine's imbalance terms
    (:func:`~ocplan.costmodel.op_time.imbalance_terms`; ``spread`` False drops the
    ragged groups' padding)."""
    e = dev.eff.grouped_gemm if eta is None else eta
    out = []
    for r in rows:
        if r["section"] != "grouped" or not r["kernel"].endswith(f":{routing}"):
            continue
        m, n, k, g = _num(r, "m", "n", "k", "groups")
        factor, ragged = imbalance_terms(np.array(m), np.array(m * max_over_mean(r)),
                                         np.array(g))
        cost = gemm_cost(m, n, k, g, dev.peak16_flops, dev.hbm_Bps, dev.compute, 2, 2, e,
                         0.0, ragged=ragged & spread)
        t = float(cost.time_s * factor) + dev.cal.kernel_overhead_s
        bound = "compute-bound" if m >= 256 else "memory-bound"
        out.append(Compared(f"grouped {routing}, {bound}", r, t))
    return out


def compare_attention(rows: Iterable[Row], dev: Device, backend: str = "cudnn"
                      ) -> list[Compared]:
    """Self-attention of ``backend`` (cuDNN: what Transformer Engine runs on Hopper)
    against :func:`~ocplan.costmodel.attention.flash_attention_time_s`; forward+backward
    rows against the forward plus the backward prediction. FlashAttention-2 (``flash``)
    is the portable kernel: predicted at the chip's ``portable_attention`` rate, as a
    plan with ``native_attention`` off runs it."""
    rate = 1.0 if backend == "cudnn" else dev.compute.portable_attention
    out = []
    for r in rows:
        if r["section"] != "attention" or r["kernel"] != f"sdpa:{backend}":
            continue
        b, h, hkv, s, d = _num(r, "batch", "heads", "kv_heads", "seq", "head_dim")
        causal = r["causal"] == "1"

        def one(backward: bool, b: float = b, h: float = h, hkv: float = hkv, s: float = s,
                d: float = d, causal: bool = causal) -> float:
            return float(flash_attention_time_s(
                b, h, hkv, s, d, causal, 0, dev.peak16_flops, dev.hbm_Bps, dev.eff.attention,
                dev.compute, 2, dev.cal.kernel_overhead_s, backward=backward,
                softmax_overlap=dev.cal.softmax_overlap))
        t = (one(False) + (one(True) if r["pass"] == "fwd+bwd" else 0.0)) / rate
        out.append(Compared(f"attention {backend} {r['pass']}", r, t))
    return out


def layer_time(dev: Device, model: str, batch: float, seq: float, backward: bool,
               eff: Efficiencies | None = None) -> PassTime:
    """The engine's time of one unsharded layer of catalog ``model`` (forward, plus
    backward when ``backward``) by category: :func:`~ocplan.workloads.operators.
    layer_operators` timed by :func:`~ocplan.costmodel.op_time.profile` under ``eff``
    (default the hopper efficiencies)."""
    shape = ModelShape.from_arch(load_catalog().model(model))
    shard = Shard(tp=1, batch=batch, seq_len=seq)
    phases = ("forward", "backward") if backward else ("forward",)
    times = [profile(layer_operators(shape, ph, shard, precision="bf16"), dev.peaks, 1)
             .time(eff or dev.eff) for ph in phases]
    return times[0] if len(times) == 1 else times[0].plus(times[1])


def dense_rate_grouped(dev: Device) -> Efficiencies:
    """The hopper efficiencies with grouped (expert) GEMMs at the dense GEMM's rate (no
    ``grouped_gemm_efficiency``): what the grouped kernels measure."""
    eff = dev.eff
    return replace(eff, grouped_gemm=eff.gemm, grouped_gemm_8bit=eff.gemm_8bit)


def is_moe(model: str) -> bool:
    return ModelShape.from_arch(load_catalog().model(model)).moe_experts > 0


def compare_layers(rows: Iterable[Row], dev: Device, eff: Efficiencies | None = None
                   ) -> list[Compared]:
    """Whole layers (forward, forward+backward; dense and MoE) against the engine's
    composition (:func:`layer_time`)."""
    out = []
    for r in rows:
        if r["section"] != "layer":
            continue
        t = layer_time(dev, r["kernel"], float(r["batch"]), float(r["seq"]),
                       r["pass"] == "fwd+bwd", eff)
        kind = "moe" if is_moe(r["kernel"]) else "dense"
        out.append(Compared(f"{kind} layer {r['pass']}", r, float(t.total_s[0])))
    return out


#: Kernel names of the profiler rows by the engine's categories: cuBLAS (nvjet) and
#: CUTLASS GEMMs with their split-K reductions and grouped-GEMM set-up; cuDNN's fused
#: attention and its helper kernels. Everything else is memory-bound work.
MATRIX_KERNELS = re.compile(r"^nvjet|cutlass|splitKreduce|grouped_gemm")
ATTENTION_KERNELS = re.compile(r"sdpa|cudnn::fusion|flash")


@dataclass(frozen=True)
class Profiled:
    """Device seconds of one profiled layer (forward+backward) by the engine's
    categories, and the sustained run's clock note."""

    model: str
    batch: int
    seq: int
    matrix_s: float
    attention_s: float
    memory_s: float
    note: str

    @property
    def total_s(self) -> float:
        return self.matrix_s + self.attention_s + self.memory_s


def kernel_category(kernel: str) -> int:
    """0 matrix, 1 attention, 2 memory-bound or other (:class:`Profiled`'s order) for a
    profiled CUDA kernel name; attention first: FlashAttention-2's kernel names carry
    CUTLASS types."""
    return 1 if ATTENTION_KERNELS.search(kernel) else 0 if MATRIX_KERNELS.search(kernel) \
        else 2


def profiled_layers(rows: Iterable[Row], section: str = "profile_sustained"
                    ) -> list[Profiled]:
    """Per layer of the profiler ``section``, its kernels' seconds summed by category."""
    sums: dict[str, list[float]] = {}
    meta: dict[str, Row] = {}
    for r in rows:
        if r["section"] != section:
            continue
        model, kernel = r["kernel"].split("|", 1)
        if kernel == "TOTAL":
            meta[model] = r
            continue
        acc = sums.setdefault(model, [0.0, 0.0, 0.0])
        acc[kernel_category(kernel)] += float(r["time_s"])
    return [Profiled(m, int(meta[m]["batch"]), int(meta[m]["seq"]), *sums[m],
                     meta[m]["note"].split("after: ")[-1]) for m in sums]


def sustained_layers(rows: Iterable[Row], dev: Device) -> list[Compared]:
    """Layers run back to back for seconds (clocks under the power cap), forward+backward,
    against the engine at its fitted efficiencies."""
    out = []
    for r in rows:
        if r["section"] == "sustained":
            t = layer_time(dev, r["kernel"], float(r["batch"]), float(r["seq"]), True)
            out.append(Compared("sustained", r, float(t.total_s[0])))
    return out


def clock_mhz(note: str) -> float:
    """The median SM clock in a sustained row's note (``sm 1612 MHz, 620 W ...``)."""
    found = re.search(r"sm (\d+) MHz", note)
    assert found, note
    return float(found.group(1))


def power_w(note: str) -> float:
    """The median power in a sustained row's note."""
    found = re.search(r"(\d+) W", note)
    assert found, note
    return float(found.group(1))


def stream_clock_mhz() -> float:
    """The SM clock after run 4's GEMM warm-up (``after_warm_up`` of its env file, as
    ``nvidia-smi`` printed it: ``1410 MHz``): a pure GEMM stream at the power cap."""
    warm = json.loads(ENV_RUN4.read_text())["after_warm_up"]
    return float(warm["clocks.sm"].removesuffix(" MHz"))


#: Catalog model of the serving iterations (Llama 3.1 8B has Llama 3 8B's shape), and
#: the name the microbenchmark gives them.
SERVE_MODEL = "llama3-8b"
SERVE_KERNEL = "llama3.1-8b"
#: The run whose serving rows the report shows (run 6 timed the same decode grid first:
#: every step within 2.1 % of run 7's).
SERVE_RUN = "7"


def serve_model(dev: Device) -> StepModel:
    """The serving step model of one H200 holding the whole model (TP 1) at the
    committed training and serving calibrations."""
    wl = ServingWorkload(ModelShape.from_arch(load_catalog().model(SERVE_MODEL)), 1024, 128)
    sm = system_model(system_for_chip(load_catalog(), CHIP, 1))
    return step_model(wl, ServingPlan(), sm, chip_peaks(sm, "bf16"), dev.cal,
                      load_serving_calibration())


def serve_iteration(model: StepModel, row: Row) -> IterationTime:
    """The step model's iteration of a measured ``serve`` row: ``batch`` sequences
    decoding at ``seq`` cached tokens each, or one prompt of ``seq`` tokens."""
    b, s = _num(row, "batch", "seq")
    if row["pass"] == "decode":
        return model.iteration(0, 0, b, b * s)
    return model.iteration(s, 1, 0, 0)


def device_s(it: IterationTime) -> float:
    """Device seconds of one iteration (no host overhead, no communication)."""
    return float(it.matrix_s[0] + it.attention_s[0] + it.memory_s[0])


def compare_serving(rows: Iterable[Row], model: StepModel) -> list[Compared]:
    """Graph-replayed decode and prefill iterations of :data:`SERVE_RUN` against the step
    model's device time."""
    out = []
    for r in rows:
        if r["section"] == "serve" and r["run"] == SERVE_RUN:
            # run 7 timed decode with FlashAttention-2 only (no note); later runs name
            # the backend tried first, as the prefills always did
            group = r["pass"] if not r["note"] else \
                f"{r['pass']}, {r['note'].split()[0]} attention"
            out.append(Compared(group, r, device_s(serve_iteration(model, r))))
    return out


@dataclass(frozen=True)
class DecodeRates:
    """Rates read from the profiled decode steps: the weight stream of the GEMMs at
    batch 1, the KV-cache stream of the attention kernels at the largest cache, and the
    mean device time of the other (small) kernels at batch 1."""

    gemm_stream_Bps: float
    attention_stream_Bps: float
    small_kernel_s: float
    small_kernels: int


def decode_rates(rows: list[Row]) -> DecodeRates:
    """:class:`DecodeRates` of the ``serveprofile`` rows (bytes from the timed rows of
    the same shapes: weights plus cache)."""
    shape = ModelShape.from_arch(load_catalog().model(SERVE_MODEL))
    kv_per_token = kv_bytes_per_token_per_chip(shape, ServingPlan(), "bf16", 0.0)
    prof = {(p.batch, p.seq): p for p in profiled_layers(rows, "serveprofile")}
    one = prof[min(prof)]
    big = max(prof.values(), key=lambda p: p.batch * p.seq)
    weights = next(float(r["bytes"]) - kv_per_token * float(r["batch"]) * float(r["seq"])
                   for r in rows if r["section"] == "serve" and r["pass"] == "decode"
                   and (int(r["batch"]), int(r["seq"])) == (one.batch, one.seq))
    step = f"{SERVE_KERNEL}:decode:{one.batch}x{one.seq}"
    kernels = (r for r in rows if r["section"] == "serveprofile")
    calls = sum(int(float(r["note"].split()[1].rstrip(";"))) for r in kernels
                if r["kernel"].split("|", 1)[0] == step
                and r["kernel"].split("|", 1)[1] != "TOTAL"
                and kernel_category(r["kernel"].split("|", 1)[1]) == 2)
    return DecodeRates(weights / one.matrix_s,
                       kv_per_token * big.batch * big.seq / big.attention_s,
                       one.memory_s / calls, calls)


def summarize(group: str, items: list[Compared]) -> Summary:
    errors = np.array([c.log_error for c in items]) * 100.0
    return Summary(group, len(items), float(np.median(np.abs(errors))),
                   float(np.percentile(np.abs(errors), 90)), float(np.median(errors)))


def by_group(items: list[Compared]) -> list[Summary]:
    groups = dict.fromkeys(c.group for c in items)
    return [summarize(g, [c for c in items if c.group == g]) for g in groups]


def best_fraction(rows: Iterable[Row], pick: Callable[[Row], bool], peak: float,
                  field: str = "tflops", scale: float = 1e12) -> float:
    """The highest achieved fraction of ``peak`` among the rows ``pick`` selects."""
    return max(float(r[field]) * scale / peak for r in rows if pick(r) and r[field])


def median_fraction(rows: Iterable[Row], pick: Callable[[Row], bool], peak: float,
                    field: str = "tflops", scale: float = 1e12) -> float:
    return statistics.median(float(r[field]) * scale / peak for r in rows
                             if pick(r) and r[field])


def graph_gap_s(rows: Iterable[Row]) -> float:
    """Seconds per node of a replayed graph of one-element adds."""
    return next(float(r["time_s"]) for r in rows
                if r["section"] == "launch" and r["method"] == "graph")


def _table(summaries: list[Summary]) -> list[str]:
    lines = ["| kernels | n | median abs error % | p90 abs error % | median signed % |",
             "|---|---|---|---|---|"]
    lines += [f"| {s.group} | {s.n} | {s.median_abs_pct:.1f} | {s.p90_abs_pct:.1f} | "
              f"{s.median_signed_pct:+.1f} |" for s in summaries]
    return lines


def report(rows: list[Row], dev: Device) -> str:
    fam = dev.fam
    gemms = compare_gemms(rows, dev)
    grouped = compare_grouped(rows, dev) + compare_grouped(rows, dev, routing="routed")
    grouped_dense = compare_grouped(rows, dev, eta=fam.gemm) + compare_grouped(
        rows, dev, eta=fam.gemm, routing="routed")
    flat = [Compared(c.group + ", no ragged padding", c.row, c.predicted_s)
            for c in compare_grouped(rows, dev, eta=fam.gemm, routing="routed", spread=False)]
    attn = compare_attention(rows, dev) + compare_attention(rows, dev, "flash")
    layers = compare_layers(rows, dev)
    big = [r for r in rows if r["section"] == "gemm" and r["dtype"] == "bf16"
           and 2 * float(r["m"]) * float(r["n"]) * float(r["k"]) >= COMPUTE_BOUND_FLOPS]
    mem_kernels = [r for r in rows if r["section"] == "memory" and r["m"] == "16384"
                   and r["n"] == "8192"]
    lines = [
        "# The cost model against kernels measured on one H200",
        "",
        "Written by `scripts/device_report.py` from `validation/device/h200_kernels.csv` "
        f"({len(rows)} timed kernels; how they were measured: `validation/device/README.md`). "
        "Each kernel is predicted as the engine predicts it: the H200 catalog `compute` "
        "block, the committed calibration's `hopper` efficiencies (gemm "
        f"{fam.gemm:.3f}, gemm_8bit {fam.gemm_8bit:.3f}, attention {fam.attention:.3f}, "
        f"fitted on published training runs, not on these kernels) and its per-kernel "
        f"cost {dev.cal.kernel_overhead_s * 1e6:.2f} us. Errors are "
        "`ln(predicted / measured)` in %: positive where the model is slower.",
        "",
        "## Dense GEMMs",
        "",
        *_table(by_group(gemms)),
        "",
        "Measured large-GEMM rates: BF16 median "
        f"{median_fraction(big, lambda r: True, dev.peak16_flops):.3f} of the 989 TFLOP/s "
        "peak (the card held about 1.4 GHz at its 700 W limit, not the 1.83 GHz of the "
        "peak), best "
        f"{best_fraction(big, lambda r: True, dev.peak16_flops):.3f}; the fitted hopper "
        f"gemm is {fam.gemm:.3f}. FP8 best "
        f"{best_fraction(rows, lambda r: r['section'] == 'gemm' and r['dtype'] == 'fp8', dev.peak8_flops):.3f}"  # noqa: E501
        f" of 1979 against a fitted gemm_8bit of {fam.gemm_8bit:.3f}: FP8 training pays "
        "casts and scaling the bare GEMM does not.",
        "",
        "## Grouped (expert) GEMMs",
        "",
        "Balanced (every expert the same tokens) and routed (multinomial, the most loaded "
        "expert 1.0-3.0 times the mean) at the engine's grouped efficiency:",
        "",
        *_table(by_group(grouped)),
        "",
        "The same kernels at the dense efficiency (no `grouped_gemm_efficiency`), routed "
        "ones with and without the ragged groups' padding (`RAGGED_PAD_TILES`):",
        "",
        *_table(by_group(grouped_dense)),
        *_table(by_group(flat))[2:],
        "",
        "## Attention",
        "",
        "cuDNN's fused attention is what Transformer Engine runs on Hopper; `flash` is "
        "PyTorch's FlashAttention-2 kernel, the portable one, predicted at the chip's "
        f"`portable_attention` rate ({dev.compute.portable_attention:.2f} of the native "
        "kernel's, as `native_attention` off runs it). Predicted by "
        "`flash_attention_time_s`, the "
        "cost model's law for one kernel, which counts the 128 x 128 score blocks a "
        "kernel visits (the engine's operators count the exact causal half: 3 % fewer "
        "FLOPs at 4096 tokens) and covers the non-causal rows the engine's causal "
        "layers never run.",
        "",
        *_table(by_group(attn)),
        "",
        "## Memory-bound kernels and launch",
        "",
        f"- Graph-replayed kernel gap: {graph_gap_s(rows) * 1e6:.2f} us per node "
        f"(`KERNEL_GAP_S` {KERNEL_GAP_S * 1e6:.1f} us).",
        "- Streaming: a residual add of 256 MiB tensors moves "
        f"{best_fraction(mem_kernels, lambda r: r['kernel'] == 'add', dev.hbm_Bps, 'tbps'):.2f}"
        f" of peak HBM bandwidth (`HBM_EFFICIENCY` {HBM_EFFICIENCY:.2f}).",
        "- Eager PyTorch kernels at 16384 x 8192, fraction of peak bandwidth on their fewest "
        "bytes: " + ", ".join(
            f"{r['kernel']} {float(r['tbps']) * 1e12 / dev.hbm_Bps:.2f}" for r in mem_kernels)
        + f". The engine runs memory-bound operators at `HBM_EFFICIENCY` x "
        f"`memory_efficiency` = {HBM_EFFICIENCY * dev.cal.memory_efficiency:.2f}: below "
        "every listed kernel, so the fitted value stands for kernels the operator list does "
        "not name (layout copies, casts, the eager framework's extra passes), not for slow "
        "norms.",
        "",
        "## Whole layers (eager PyTorch, one H200, no communication)",
        "",
        "Timed for about 0.1 s each (run 2: Llama 3 8B and 70B; run 3 all). MoE layers hold "
        "every expert (EP 1), route with a real softmax top-k (the note gives the most "
        "loaded expert over the mean), permute with PyTorch indexing (rows padded to 16 "
        "per expert) and run `torch._grouped_mm`; Qwen3's layers have per-head QK-norm, "
        "which the engine's operator list does not name. `dense-rate` is the engine with "
        "grouped GEMMs at the dense efficiency.",
        "",
        "| run | layer | batch x seq | pass | measured ms | predicted ms | error % | "
        "dense-rate error % |",
        "|---|---|---|---|---|---|---|---|",
        *(f"| {c.row['run']} | {c.row['kernel']} | {c.row['batch']} x {c.row['seq']} | "
          f"{c.row['pass']} | {c.measured_s * 1e3:.2f} | {c.predicted_s * 1e3:.2f} | "
          f"{c.log_error * 100:+.1f} | "
          + (f"{d.log_error * 100:+.1f} |" if c.group.startswith("moe") else "|")
          for c, d in zip(layers, compare_layers(rows, dev, dense_rate_grouped(dev)),
                          strict=True)),
        "",
        *_where_time_goes(rows, dev),
        *_fp8_linears(rows),
        *_serving(rows, dev),
    ]
    return "\n".join(lines)


def _where_time_goes(rows: list[Row], dev: Device) -> list[str]:
    """The sustained runs' clocks and the profiled kernels by category beside the
    engine's categories."""
    sustained = sustained_layers(rows, dev)
    stream_mhz = stream_clock_mhz()
    lines = [
        "## Where a layer's time goes (sustained, profiled)",
        "",
        f"Run 4 ran each layer's forward+backward back to back for {SUSTAIN_NOTE}, sampling "
        "the SM clock and power with `nvidia-smi`, then profiled three iterations while "
        f"hot. A pure GEMM stream holds {stream_mhz:.0f} MHz at the 700 W cap (the warm-up "
        "before the run); whole layers, whose memory-bound kernels and attention draw less "
        "power, hold higher clocks:",
        "",
        "| layer | batch x seq | SM clock MHz | power | measured ms | predicted ms | error % |",
        "|---|---|---|---|---|---|---|",
        *(f"| {c.row['kernel']} | {c.row['batch']} x {c.row['seq']} | "
          f"{clock_mhz(c.row['note']):.0f} | {power_w(c.row['note']):.0f} W | "
          f"{c.measured_s * 1e3:.2f} | {c.predicted_s * 1e3:.2f} | "
          f"{c.log_error * 100:+.1f} |" for c in sustained),
        "",
        "The profiled kernels by the engine's categories (cuBLAS/CUTLASS GEMMs; cuDNN "
        "attention with its helper kernels; everything else), ms per forward+backward, "
        "measured / predicted (MoE layers: predicted with grouped GEMMs at the dense rate, "
        "then at the fitted `grouped_gemm_efficiency`):",
        "",
        "| layer | GEMMs | attention | memory-bound and other | total |",
        "|---|---|---|---|---|",
    ]
    dense_rate = dense_rate_grouped(dev)
    for p in profiled_layers(rows):
        t = layer_time(dev, p.model, p.batch, p.seq, True, dense_rate)
        extra = ""
        if is_moe(p.model):  # the matrix time again at the fitted grouped efficiency
            fitted = layer_time(dev, p.model, p.batch, p.seq, True)
            extra = f" ({float(fitted.matrix_s[0]) * 1e3:.2f})"
        lines.append(
            f"| {p.model} {p.batch} x {p.seq} | {p.matrix_s * 1e3:.2f} / "
            f"{float(t.matrix_s[0]) * 1e3:.2f}{extra} | {p.attention_s * 1e3:.2f} / "
            f"{float(t.attention_s[0]) * 1e3:.2f} | {p.memory_s * 1e3:.2f} / "
            f"{float(t.memory_s[0]) * 1e3:.2f} | {p.total_s * 1e3:.2f} / "
            f"{float(t.total_s[0]) * 1e3:.2f} |")
    return [*lines, ""]


def _fp8_linears(rows: list[Row]) -> list[str]:
    """Forward+backward of one projection in BF16 and in unfused FP8."""
    fp8 = {(r["kernel"], r["dtype"]): r for r in rows if r["section"] == "fp8linear"}
    names = dict.fromkeys(k for k, _ in fp8)
    lines = [
        "## FP8 linear layers with their casts (eager, unfused)",
        "",
        "Forward+backward of the Llama 3 8B projections at 8192 tokens: `F.linear` in BF16 "
        "against three `_scaled_mm` in e4m3 with each cast and transposed copy a kernel of "
        "its own (scale 1; a fused recipe such as Transformer Engine's `cast_transpose` "
        "moves fewer bytes). TFLOP/s count 6 M N K.",
        "",
        "| projection | BF16 TFLOP/s | FP8 TFLOP/s | FP8 speed-up |",
        "|---|---|---|---|",
    ]
    for name in names:
        b, f = fp8[(name, "bf16")], fp8[(name, "fp8")]
        lines.append(f"| {name} | {float(b['tflops']):.0f} | {float(f['tflops']):.0f} | "
                     f"{float(b['time_s']) / float(f['time_s']):.2f} |")
    return [*lines, ""]


def _serving(rows: list[Row], dev: Device) -> list[str]:
    """Whole-model serving iterations against the serving step model."""
    model = serve_model(dev)
    items = compare_serving(rows, model)
    rates = decode_rates(rows)
    peak = dev.hbm_Bps
    lines = [
        "## Serving iterations (whole Llama 3.1 8B, bf16, one H200)",
        "",
        f"Runs 6 and 7 (session 37) timed whole-model iterations in plain PyTorch captured "
        "in a CUDA graph (cuBLAS GEMMs, PyTorch's FlashAttention-2 against a contiguous "
        "cache, unfused RoPE and norms; no engine, no host work) and profiled three decode "
        "steps. Predicted: the serving step model's device time (`matrix_s + attention_s "
        "+ memory_s`, no host overhead) at the committed serving calibration (hopper HBM "
        f"efficiency {model.hbm_efficiency:.2f}, per-kernel cost "
        f"{model.eff.launch_s * 1e6:.2f} us):",
        "",
        "| iteration | batch | tokens (cache or prompt) | measured ms | predicted ms | "
        "error % |",
        "|---|---|---|---|---|---|",
        *(f"| {c.group} | {c.row['batch']} | {c.row['seq']} | {c.measured_s * 1e3:.2f} | "
          f"{c.predicted_s * 1e3:.2f} | {c.log_error * 100:+.1f} |" for c in items),
        "",
        "The profiled decode steps by category, ms, measured / predicted:",
        "",
        "| decode step | GEMMs | attention | other kernels | total |",
        "|---|---|---|---|---|",
    ]
    for p in profiled_layers(rows, "serveprofile"):
        it = model.iteration(0, 0, p.batch, p.batch * p.seq)
        lines.append(
            f"| {p.batch} x {p.seq} | {p.matrix_s * 1e3:.2f} / "
            f"{float(it.matrix_s[0]) * 1e3:.2f} | {p.attention_s * 1e3:.2f} / "
            f"{float(it.attention_s[0]) * 1e3:.2f} | {p.memory_s * 1e3:.2f} / "
            f"{float(it.memory_s[0]) * 1e3:.2f} | {p.total_s * 1e3:.2f} / "
            f"{device_s(it) * 1e3:.2f} |")
    lines += [
        "",
        f"- Weights streamed by the batch-1 decode GEMMs (cuBLAS, M = 1): "
        f"{rates.gemm_stream_Bps / 1e12:.2f} TB/s, {rates.gemm_stream_Bps / peak:.2f} of "
        f"peak (`HBM_EFFICIENCY` {HBM_EFFICIENCY:.2f}; the serving fit's hopper value "
        f"{model.hbm_efficiency:.2f}).",
        f"- KV cache streamed by PyTorch's FlashAttention-2 decode at the largest cache: "
        f"{rates.attention_stream_Bps / 1e12:.2f} TB/s, "
        f"{rates.attention_stream_Bps / peak:.2f} of peak (its non-split kernel; cuDNN's "
        "decode kernel reached "
        f"{best_fraction(rows, lambda r: r['kernel'] == 'decode:cudnn', peak, 'tbps'):.2f}"
        " in run 1, the serving fit's hopper value is "
        f"{model.hbm_efficiency:.2f}).",
        f"- The {rates.small_kernels} other kernels of a batch-1 step (norms, RoPE in six "
        f"kernels, cache writes, residuals, SiLU) take {rates.small_kernel_s * 1e6:.1f} us "
        f"each on the device (the serving fit's per-kernel cost: "
        f"{model.eff.launch_s * 1e6:.2f} us).",
        "",
    ]
    return lines


def parser() -> ScriptParser:
    """The command line: an optional measurements file."""
    p = script_parser(__file__, __doc__, f"Writes {REPORT.relative_to(ROOT)}.")
    p.add_argument("csv", nargs="?", type=Path, default=DATA, metavar="CSV",
                   help=f"the measured kernels (default: {DATA.relative_to(ROOT)})")
    return p


def main(argv: list[str]) -> int:
    args = parse_argv(parser(), argv)
    if isinstance(args, int):  # --help (0), or a bad argument's one line printed (2)
        return args
    try:
        rows = read_rows(args.csv)
    except SpecError as exc:  # one line per problem, as the ocplan CLI prints them
        return bad_input(__file__, exc)
    REPORT.write_text(report(rows, device()))
    sys.stdout.write(f"wrote {REPORT.relative_to(ROOT)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
