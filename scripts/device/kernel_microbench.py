"""Measure, on one GPU, the kernel rates the operator cost model assumes.

Usage (on a machine with a CUDA GPU and PyTorch; nothing of ocplan is imported)::

    python3 scripts/device/kernel_microbench.py --out DIR [--budget-s 330]
    python3 scripts/device/kernel_microbench.py --dry --out /tmp/dry   # CPU smoke run

Writes ``DIR/kernels.csv`` (one row per measured kernel or kernel sequence) and
``DIR/env.json`` (device, library versions, clocks and power before and after). Sections,
in the order run (each stops early when the time budget is spent, so a slow section
cannot lose the ones before it):

- ``launch``: a one-element add, eager (host launch cost) and replayed from a CUDA graph
  (the gap between kernels; :data:`ocplan.costmodel.roofline.KERNEL_GAP_S`);
- ``copy``: device-to-device copies from 256 KiB to 4 GiB (achieved HBM bandwidth and the
  small-kernel floor, compute_units.md §2.5 and §2.7);
- ``gemm``: BF16 and FP8 (tensor-wise scaled, fast accumulation) GEMMs on the layer
  shapes of the models in the development set, M (tokens) from 1 to 16384, the weight-
  gradient shapes (K = tokens), an M staircase at N = K = 8192 across tile and wave
  boundaries, and a K sweep at M = N = 4096 (the K0 of eta_K);
- ``grouped``: grouped expert GEMMs (``torch._grouped_mm``) at MoE layer sizes with
  balanced and multinomially routed tokens, and the same work as a batched GEMM and as a
  loop of per-expert GEMMs;
- ``attention``: flash attention (and cuDNN attention where PyTorch has it) forward and
  forward+backward by sequence length, head width and mask; GQA; decode attention
  against a KV cache;
- ``memory``: the memory-bound kernels of a transformer layer (residual add, RMSNorm
  forward and forward+backward, LayerNorm, SiLU-and-multiply, casts, cross-entropy) at
  training sizes; bytes are the fewest a fused kernel must move;
- ``optimizer``: an AdamW step over 500 M fp32 parameters in 200 tensors, fused and
  foreach (28 bytes per parameter);
- ``layer``: forward and forward+backward of whole Llama 3 8B and 70B layers in plain
  PyTorch (eager, no communication), to check how the operator costs compose;
- ``moe``: the same for Qwen3-30B-A3B and Mixtral 8x7B layers with every expert on the
  chip (router, permutation padded per expert, grouped GEMMs, weighted combine);
- ``profile``: the kernels of one forward+backward of a dense, a small and an MoE layer
  as the PyTorch profiler sees them, summed by kernel name (what the operator list
  names and what it does not);
- ``attnpairs``: FlashAttention-2 and cuDNN attention on the same shapes at head widths
  64 and 256 (the portable kernel's rate beyond d = 128);
- ``fp8linear``: forward+backward of the Llama 3 8B projections as a BF16 linear and as
  an FP8 linear with its casts and transposed copies as separate kernels (tensor-wise
  e4m3, scale 1: the delayed-scaling path without the amax pass);
- ``serve``: whole-model Llama 3.1 8B serving iterations in bf16, captured in a CUDA
  graph: decode steps of 1 to 512 sequences against a contiguous KV cache (1k-8k tokens
  each) and prefills of one prompt (512-8192 tokens), each with cuDNN and with
  FlashAttention-2 tried first, logits for each sequence's last token (what the serving
  step model prices, without an engine's host work); three decode steps profiled by
  kernel.

Timing: each case cycles through enough copies of its inputs to overflow the L2 (so
weights stream from HBM as they do in a model with many layers), is captured in a CUDA
graph of back-to-back launches and replayed (the gap between kernels stays in, the host
launch cost does not; eager timing where capture fails, and for attention), and reports
the median of the replays per call. Inputs are random normal (never zeros: they run
faster). Results are measurements of the card as found: clocks, power limits and
settings are left alone.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import torch
    import torch.nn.functional as F
except ModuleNotFoundError:  # the usage still prints where PyTorch is missing
    if __name__ == "__main__":
        asked = bool({"-h", "--help"} & set(sys.argv[1:]))
        print(__doc__.split("Writes ``DIR")[0].rstrip(), file=sys.stdout if asked else sys.stderr)
        print("kernel_microbench.py: needs PyTorch (with a CUDA GPU, or CPU-only for --dry); "
              "this Python has none", file=sys.stderr)
        sys.exit(0 if asked else 2)
    raise

COLUMNS = ("section", "kernel", "dtype", "m", "n", "k", "groups", "batch", "heads",
           "kv_heads", "seq", "head_dim", "causal", "pass", "flops", "bytes", "time_s",
           "tflops", "tbps", "method", "note")

#: Layer GEMM shapes (N, K) of models in the development set, per chip after the usual
#: tensor parallelism: Llama 3 8B (TP 1), Llama 3 70B (TP 8), GPT-3 175B (TP 8), Mixtral
#: and DeepSeek-V3 experts, GPT-OSS, square references.
LAYER_SHAPES: tuple[tuple[str, int, int], ...] = (
    ("llama8b.qkv", 6144, 4096), ("llama8b.o", 4096, 4096),
    ("llama8b.gate_up", 28672, 4096), ("llama8b.down", 4096, 14336),
    ("llama70b_tp8.qkv", 1280, 8192), ("llama70b_tp8.o", 8192, 1024),
    ("llama70b_tp8.gate_up", 7168, 8192), ("llama70b_tp8.down", 8192, 3584),
    ("gpt3_tp8.qkv", 4608, 12288), ("gpt3_tp8.fc2", 12288, 6144),
    ("dsv3_expert.gate_up", 4096, 7168), ("dsv3_expert.down", 7168, 2048),
    ("gptoss.gate_up", 5760, 2880), ("sq4096", 4096, 4096), ("sq8192", 8192, 8192),
    ("sq16384", 16384, 16384),
)
TOKENS = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
FP8_TOKENS = (16, 64, 256, 1024, 4096, 16384)
STAIR_M = tuple(range(128, 4225, 64))
SMALL_M = tuple(range(8, 257, 8))
K_SWEEP = (64, 128, 256, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 16384)
#: MoE expert GEMMs (name, experts on the chip, N, K): DeepSeek-V3 at EP 32 and 8,
#: Qwen3-30B-A3B at EP 1 and 8, GPT-OSS-120B at EP 8, Mixtral 8x7B at EP 1.
MOE_SHAPES: tuple[tuple[str, int, int, int], ...] = (
    ("dsv3.gate_up.ep32", 8, 4096, 7168), ("dsv3.down.ep32", 8, 7168, 2048),
    ("dsv3.gate_up.ep8", 32, 4096, 7168), ("qwen3moe.gate_up.ep1", 128, 1536, 2048),
    ("qwen3moe.gate_up.ep8", 16, 1536, 2048), ("qwen3moe.down.ep8", 16, 2048, 768),
    ("gptoss.gate_up.ep8", 16, 5760, 2880), ("mixtral.gate_up.ep1", 8, 28672, 4096),
)
EXPERT_TOKENS = (16, 64, 256, 1024, 4096)
#: Tokens a flash-attention case covers (batch x seq), so every case fills the chip.
ATTN_TOKENS = 32768
ATTN_SEQ = (512, 1024, 2048, 4096, 8192, 16384, 32768)
ATTN_HEAD_DIMS = ((64, 32), (128, 32), (256, 16))   # (head_dim, heads)
#: (tokens, hidden) of the memory-bound kernels.
MEM_SIZES = ((4096, 4096), (16384, 4096), (16384, 8192))
COPY_BYTES = tuple(4 ** i * 256 * 1024 for i in range(0, 8))   # 256 KiB .. 4 GiB


class Bench:
    """Times callables on one device and appends rows to a CSV as it goes."""

    def __init__(self, out: Path, device: str, budget_s: float, dry: bool) -> None:
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.dry = dry
        self.out = out
        self.start = time.monotonic()
        self.budget_s = budget_s
        self.l2_bytes = (torch.cuda.get_device_properties(self.device).L2_cache_size
                         if self.cuda else 32 << 20)
        self._file = (out / "kernels.csv").open("w", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=COLUMNS)
        self._csv.writeheader()
        self.rows = 0
        self.failures = 0

    def left_s(self) -> float:
        return self.budget_s - (time.monotonic() - self.start)

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def copies(self, nbytes: float) -> int:
        """Input sets to cycle through so that one pass over them overflows the L2 twice."""
        return int(min(16, max(1, math.ceil(2 * self.l2_bytes / max(nbytes, 1.0)))))

    def _eager(self, calls: list[Callable[[], object]], inner: int, reps: int) -> list[float]:
        out = []
        for _ in range(reps):
            if self.cuda:
                e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                e0.record()
                for i in range(inner):
                    calls[i % len(calls)]()
                e1.record()
                e1.synchronize()
                out.append(e0.elapsed_time(e1) / 1e3 / inner)
            else:
                t0 = time.perf_counter()
                for i in range(inner):
                    calls[i % len(calls)]()
                out.append((time.perf_counter() - t0) / inner)
        return out

    def _graph(self, calls: list[Callable[[], object]], inner: int, reps: int) -> list[float]:
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for c in calls:
                c()
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for i in range(inner):
                calls[i % len(calls)]()
        graph.replay()
        self.sync()
        out = []
        for _ in range(reps):
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record()
            graph.replay()
            e1.record()
            e1.synchronize()
            out.append(e0.elapsed_time(e1) / 1e3 / inner)
        del graph
        return out

    def time(self, calls: list[Callable[[], object]], graph: bool = True,
             target_s: float = 0.008, reps: int = 5) -> tuple[float, str]:
        """Median seconds per call (cycling ``calls``) and the method used."""
        for c in calls:
            c()
        self.sync()
        est = statistics.median(self._eager(calls, max(2, len(calls)), 1 if self.dry else 2))
        inner = int(min(256, max(len(calls), 3, round(target_s / max(est, 1e-7)))))
        if self.dry:
            inner, reps = min(inner, 3), 2
        if graph and self.cuda:
            try:
                return statistics.median(self._graph(calls, inner, reps)), "graph"
            except Exception as exc:  # capture unsupported for this op: time it eagerly
                self.sync()
                note = f"graph failed: {type(exc).__name__}"
                return statistics.median(self._eager(calls, inner, reps)), "eager; " + note
        return statistics.median(self._eager(calls, inner, reps)), "eager"

    def record(self, **row: object) -> None:
        if "pass_" in row:
            row["pass"] = row.pop("pass_")
        t = float(row.get("time_s", 0.0) or 0.0)  # type: ignore[arg-type]
        flops = float(row.get("flops", 0.0) or 0.0)  # type: ignore[arg-type]
        nbytes = float(row.get("bytes", 0.0) or 0.0)  # type: ignore[arg-type]
        if t > 0:
            row.setdefault("tflops", f"{flops / t / 1e12:.2f}" if flops else "")
            row.setdefault("tbps", f"{nbytes / t / 1e12:.3f}" if nbytes else "")
            row["time_s"] = f"{t:.9g}"
        self._csv.writerow({c: row.get(c, "") for c in COLUMNS})
        self._file.flush()
        self.rows += 1

    def fail(self, section: str, kernel: str, exc: BaseException, **row: object) -> None:
        self.failures += 1
        self.record(section=section, kernel=kernel, note=f"error: {type(exc).__name__}: "
                    f"{str(exc).splitlines()[0][:160] if str(exc) else ''}", **row)
        self.sync()

    def close(self) -> None:
        self._file.close()


def randn(bench: Bench, *shape: int, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    return torch.randn(*shape, device=bench.device, dtype=torch.float32).to(dtype)


@contextlib.contextmanager
def freed(bench: Bench) -> Iterator[None]:
    """Release a case's tensors (and the graph pools) before the next."""
    try:
        yield
    finally:
        if bench.cuda:
            bench.sync()
            torch.cuda.empty_cache()


def gpu_state() -> dict[str, str]:
    """Clocks, power and temperature as ``nvidia-smi`` reads them (empty without one)."""
    fields = ("name,clocks.sm,clocks.mem,clocks.max.sm,power.draw,power.limit,"
              "temperature.gpu,driver_version")
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return dict(zip(fields.split(","), (v.strip() for v in out.splitlines()[0].split(",")),
                    strict=False))


def warm_up(bench: Bench, seconds: float) -> None:
    """Run large GEMMs for ``seconds`` so clocks and power settle before timing."""
    if bench.dry:
        return
    a, b = randn(bench, 8192, 8192), randn(bench, 8192, 8192)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(20):
            a @ b
        bench.sync()


def section_launch(bench: Bench) -> None:
    x = torch.zeros(1, device=bench.device)

    def call() -> None:
        x.add_(1.0)
    for graph in (False, True):
        t, method = bench.time([call], graph=graph, target_s=0.004)
        bench.record(section="launch", kernel="add_1elt", dtype="fp32", time_s=t,
                     method=method, pass_="fwd")


def section_copy(bench: Bench) -> None:
    sizes = COPY_BYTES[:3] if bench.dry else COPY_BYTES
    for nbytes in sizes:
        if bench.left_s() < 0:
            return
        with freed(bench):
            n = nbytes // 2
            sets = bench.copies(2 * nbytes)
            src = [randn(bench, n) for _ in range(sets)]
            dst = [torch.empty_like(s) for s in src]
            calls = [(lambda d=d, s=s: d.copy_(s)) for d, s in zip(dst, src, strict=True)]
            # large copies both ways: a graph's memcpy node may take another path than an
            # eagerly launched copy
            for graph in (True, False) if nbytes >= 1 << 29 else (True,):
                t, method = bench.time(calls, graph=graph)
                bench.record(section="copy", kernel="copy", dtype="bf16", n=n,
                             bytes=2 * nbytes, time_s=t, method=method, note=f"{sets} sets")


def _gemm_case(bench: Bench, kernel: str, m: int, n: int, k: int, fp8: bool,
               fast_accum: bool = True) -> None:
    """One GEMM ``C[m, n] = A[m, k] @ W[n, k]^T`` (weights as nn.Linear stores them)."""
    b_in = 1 if fp8 else 2
    nbytes = (m * k + n * k) * b_in + m * n * 2
    dtype = "fp8" if fp8 else "bf16"
    row = {"section": "gemm", "kernel": kernel, "dtype": dtype, "m": m, "n": n, "k": k,
           "groups": 1, "flops": 2.0 * m * n * k, "bytes": nbytes}
    try:
        with freed(bench):
            sets = bench.copies(nbytes)
            if fp8:
                e4m3 = torch.float8_e4m3fn
                a = [randn(bench, m, k).to(e4m3) for _ in range(sets)]
                w = [randn(bench, n, k).to(e4m3) for _ in range(sets)]
                one = torch.ones((), device=bench.device, dtype=torch.float32)
                calls = [(lambda a=a_, w=w_: torch._scaled_mm(
                    a, w.t(), one, one, out_dtype=torch.bfloat16, use_fast_accum=fast_accum))
                    for a_, w_ in zip(a, w, strict=True)]
            else:
                a = [randn(bench, m, k) for _ in range(sets)]
                w = [randn(bench, n, k) for _ in range(sets)]
                calls = [(lambda a=a_, w=w_: F.linear(a, w)) for a_, w_ in zip(a, w, strict=True)]
            t, method = bench.time(calls)
            note = f"{sets} sets" + ("" if not fp8 else f"; fast_accum={fast_accum}")
            bench.record(time_s=t, method=method, note=note, **row)
    except Exception as exc:
        bench.fail(**row, exc=exc)


def section_gemm(bench: Bench, fp8: bool) -> None:
    shapes = LAYER_SHAPES[:2] if bench.dry else LAYER_SHAPES
    tokens = (FP8_TOKENS if fp8 else TOKENS)[: 2 if bench.dry else None]
    scale = 16 if bench.dry else 1
    for name, n, k in shapes:
        for m in tokens:
            if bench.left_s() < 0:
                return
            _gemm_case(bench, f"layer:{name}", max(16 if fp8 else 1, m // scale),
                       n // scale, k // scale, fp8)
        # weight gradient: dW[n, k] = dY[tokens, n]^T X[tokens, k], reduction over tokens
        _gemm_case(bench, f"wgrad:{name}", n // scale, k // scale, 8192 // scale, fp8)
    stair = STAIR_M[::4] if fp8 else STAIR_M
    for m in stair[:2] if bench.dry else stair:
        if bench.left_s() < 0:
            return
        _gemm_case(bench, "stair_m", m // scale, 8192 // scale, 8192 // scale, fp8)
    if not fp8:
        for m in SMALL_M[:2] if bench.dry else SMALL_M:
            _gemm_case(bench, "small_m", m, 8192 // scale, 8192 // scale, fp8)
    for k in K_SWEEP[:2] if bench.dry else K_SWEEP:
        if bench.left_s() < 0:
            return
        _gemm_case(bench, "k_sweep", 4096 // scale, 4096 // scale, k, fp8)
    if fp8:
        for m in (1024, 4096, 16384):
            _gemm_case(bench, "accum", m // scale, 8192 // scale, 8192 // scale, fp8,
                       fast_accum=False)


def _offsets(bench: Bench, counts: list[int]) -> torch.Tensor:
    total = 0
    ends = []
    for c in counts:
        total += c
        ends.append(total)
    return torch.tensor(ends, device=bench.device, dtype=torch.int32)


def _routed_counts(groups: int, per_group: int, seed: int) -> list[int]:
    """Tokens per expert from uniform top-k routing (multinomial), rounded to 16 as the
    grouped kernels' row alignment asks, with the same total as the balanced case."""
    gen = torch.Generator().manual_seed(seed)
    total = groups * per_group
    draws = torch.multinomial(torch.full((groups,), 1.0), total, replacement=True,
                              generator=gen)
    counts = torch.bincount(draws, minlength=groups).tolist()
    rounded = [16 * round(c / 16) for c in counts]
    rounded[max(range(groups), key=lambda i: rounded[i])] += total - sum(rounded)
    return rounded


def section_grouped(bench: Bench) -> None:
    shapes = MOE_SHAPES[:1] if bench.dry else MOE_SHAPES
    scale = 16 if bench.dry else 1
    for name, groups, n_full, k_full in shapes:
        n, k = n_full // scale, k_full // scale
        for per in EXPERT_TOKENS[:2] if bench.dry else EXPERT_TOKENS:
            if bench.left_s() < 0:
                return
            total = groups * per
            flops = 2.0 * total * n * k
            nbytes = (total * k + groups * n * k + total * n) * 2
            base = {"section": "grouped", "dtype": "bf16", "m": per, "n": n, "k": k,
                    "groups": groups, "flops": flops, "bytes": nbytes}
            with freed(bench):
                sets = bench.copies(nbytes)
                xs = [randn(bench, total, k) for _ in range(sets)]
                ws = [randn(bench, groups, n, k) for _ in range(sets)]
                for routing in ("balanced", "routed"):
                    counts = ([per] * groups if routing == "balanced"
                              else _routed_counts(groups, per, seed=per + groups))
                    offs = _offsets(bench, counts)
                    row = dict(base, kernel=f"grouped_mm:{name}:{routing}")
                    try:
                        calls = [(lambda x=x, w=w, o=offs: torch._grouped_mm(
                            x, w.transpose(-2, -1), offs=o, out_dtype=torch.bfloat16))
                            for x, w in zip(xs, ws, strict=True)]
                        t, method = bench.time(calls)
                        bench.record(time_s=t, method=method,
                                     note=f"{sets} sets; max/mean tokens "
                                          f"{max(counts) / per:.2f}", **row)
                    except Exception as exc:
                        bench.fail(**row, exc=exc)
                row = dict(base, kernel=f"bmm:{name}")
                try:
                    xb = [x.view(groups, per, k) for x in xs]
                    calls = [(lambda x=x, w=w: torch.bmm(x, w.transpose(-2, -1)))
                             for x, w in zip(xb, ws, strict=True)]
                    t, method = bench.time(calls)
                    bench.record(time_s=t, method=method, note=f"{sets} sets", **row)
                except Exception as exc:
                    bench.fail(**row, exc=exc)
                if groups <= 32:
                    row = dict(base, kernel=f"loop:{name}")
                    try:
                        calls = [(lambda x=x, w=w, g=groups, t=per: _expert_loop(x, w, g, t))
                                 for x, w in zip(xs, ws, strict=True)]
                        t, method = bench.time(calls)
                        bench.record(time_s=t, method=method, note=f"{sets} sets", **row)
                    except Exception as exc:
                        bench.fail(**row, exc=exc)


def _expert_loop(x: torch.Tensor, w: torch.Tensor, groups: int, per: int) -> None:
    """One GEMM per expert, as frameworks without a grouped kernel run them."""
    for g in range(groups):
        F.linear(x[g * per:(g + 1) * per], w[g])


def _backends() -> list[tuple[str, object]]:
    from torch.nn.attention import SDPBackend
    out: list[tuple[str, object]] = [("flash", SDPBackend.FLASH_ATTENTION)]
    if hasattr(SDPBackend, "CUDNN_ATTENTION"):
        out.append(("cudnn", SDPBackend.CUDNN_ATTENTION))
    return out


def _attn_flops(batch: int, heads: int, seq: int, d: int, causal: bool) -> float:
    """Useful FLOPs of one forward: ``4 B H S^2 d``, halved under a causal mask."""
    return 4.0 * batch * heads * seq * seq * d * (0.5 if causal else 1.0)


def _attention_case(bench: Bench, backend: tuple[str, object], batch: int, heads: int,
                    kv_heads: int, seq: int, d: int, causal: bool) -> None:
    from torch.nn.attention import sdpa_kernel
    name, which = backend
    flops = _attn_flops(batch, heads, seq, d, causal)
    nbytes = batch * seq * (2 * heads + 2 * kv_heads) * d * 2
    base = {"section": "attention", "kernel": f"sdpa:{name}", "dtype": "bf16",
            "batch": batch, "heads": heads, "kv_heads": kv_heads, "seq": seq,
            "head_dim": d, "causal": int(causal)}
    with freed(bench):
        q = randn(bench, batch, heads, seq, d).requires_grad_()
        kk = randn(bench, batch, kv_heads, seq, d).requires_grad_()
        v = randn(bench, batch, kv_heads, seq, d).requires_grad_()
        do = randn(bench, batch, heads, seq, d)
        gqa = kv_heads != heads

        def fwd() -> torch.Tensor:
            with sdpa_kernel([which]):  # type: ignore[list-item]
                return F.scaled_dot_product_attention(q, kk, v, is_causal=causal,
                                                      enable_gqa=gqa)

        def fwd_bwd() -> None:
            torch.autograd.grad(fwd(), (q, kk, v), do)
        for label, fn, mult in (("fwd", fwd, 1.0), ("fwd+bwd", fwd_bwd, 3.5)):
            row = dict(base, pass_=label, flops=flops * mult,
                       bytes=nbytes * (1 if label == "fwd" else 3))
            try:
                t, method = bench.time([fn], graph=False, target_s=0.02, reps=3)
                bench.record(time_s=t, method=method, **row)
            except Exception as exc:
                bench.fail(**row, exc=exc)
                return


def _decode_case(bench: Bench, backend: tuple[str, object], batch: int, heads: int,
                 kv_heads: int, length: int, d: int) -> None:
    from torch.nn.attention import sdpa_kernel
    name, which = backend
    nbytes = batch * (2 * kv_heads * length + 2 * heads) * d * 2
    row = {"section": "attention", "kernel": f"decode:{name}", "dtype": "bf16",
           "batch": batch, "heads": heads, "kv_heads": kv_heads, "seq": length,
           "head_dim": d, "causal": 0, "pass_": "decode",
           "flops": 4.0 * batch * heads * length * d, "bytes": nbytes}
    try:
        with freed(bench):
            sets = bench.copies(nbytes)
            qs = [randn(bench, batch, heads, 1, d) for _ in range(sets)]
            ks = [randn(bench, batch, kv_heads, length, d) for _ in range(sets)]
            vs = [randn(bench, batch, kv_heads, length, d) for _ in range(sets)]
            gqa = kv_heads != heads

            def call(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
                with sdpa_kernel([which]):  # type: ignore[list-item]
                    return F.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)
            calls = [(lambda q=q, k=k, v=v: call(q, k, v)) for q, k, v in zip(qs, ks, vs,
                                                                               strict=True)]
            t, method = bench.time(calls, graph=False, target_s=0.01, reps=3)
            bench.record(time_s=t, method=method, note=f"{sets} sets", **row)
    except Exception as exc:
        bench.fail(**row, exc=exc)


def _attention_grid(bench: Bench, head_dims: tuple[tuple[int, int], ...],
                    seqs: tuple[int, ...],
                    backends: Callable[[int], list[tuple[str, object]]]) -> bool:
    """Self-attention (no GQA) at each (head width, heads), sequence length and mask,
    with the ``backends`` of each head width, every case the same tokens; False once the
    time budget is spent."""
    tokens = 256 if bench.dry else ATTN_TOKENS
    for d, heads in head_dims[:1] if bench.dry else head_dims:
        for seq in seqs:
            for causal in (True, False):
                if bench.left_s() < 0:
                    return False
                for backend in backends(d):
                    _attention_case(bench, backend, max(1, tokens // seq), heads, heads,
                                    seq, d, causal)
    return True


def section_attention(bench: Bench) -> None:
    from torch.nn.attention import SDPBackend
    backends = _backends()
    seqs = ATTN_SEQ[:2] if bench.dry else ATTN_SEQ
    tokens = 256 if bench.dry else ATTN_TOKENS
    if not _attention_grid(bench, ATTN_HEAD_DIMS, seqs,
                           lambda d: backends if d == 128 else backends[:1]):
        return
    for seq in seqs[2::2] if not bench.dry else seqs[:1]:   # GQA, Llama 3 70B heads (TP 1)
        for backend in backends:
            _attention_case(bench, backend, max(1, tokens // seq), 64, 8, seq, 128, True)
    for batch in (1, 16, 64):
        for length in (2048, 8192, 32768):
            if bench.left_s() < 0:
                return
            for backend in [*backends, ("efficient", SDPBackend.EFFICIENT_ATTENTION)]:
                _decode_case(bench, backend, batch, 32, 8, length // (16 if bench.dry else 1),
                             128)


#: Head widths (and heads) of the paired FlashAttention-2 / cuDNN cases beyond d = 128,
#: and their sequence lengths: the portable kernel's rate is measured at d = 128 by
#: ``attention``; these say whether it holds at other widths.
PAIRED_HEAD_DIMS = ((64, 32), (256, 16))
PAIRED_SEQ = (1024, 4096, 16384)


def section_attention_pairs(bench: Bench) -> None:
    """FlashAttention-2 and cuDNN back to back on the same shapes at d = 64 and 256."""
    backends = _backends()
    _attention_grid(bench, PAIRED_HEAD_DIMS, PAIRED_SEQ[:1] if bench.dry else PAIRED_SEQ,
                    lambda _: backends)


MemoryCase = tuple[str, float, list[Callable[[], object]], bool]


def _memory_cases(bench: Bench, xs: list[torch.Tensor], rs: list[torch.Tensor],
                  hidden: int) -> list[MemoryCase]:
    """(kernel, fewest bytes per element, calls over the input sets, graph-capturable)."""
    w, b = randn(bench, hidden), randn(bench, hidden)
    xg = [x.clone().requires_grad_() for x in xs]
    wg = w.clone().requires_grad_()
    gy = randn(bench, *xs[0].shape)
    f8 = torch.float8_e4m3fn
    pairs = list(zip(xs, rs, strict=True))
    return [
        ("add", 6.0, [(lambda x=x, r=r: x + r) for x, r in pairs], True),
        ("rms_norm", 4.0, [(lambda x=x: F.rms_norm(x, (hidden,), w)) for x in xs], True),
        ("layer_norm", 4.0, [(lambda x=x: F.layer_norm(x, (hidden,), w, b)) for x in xs], True),
        ("silu_mul", 6.0, [(lambda x=x, r=r: F.silu(x) * r) for x, r in pairs], True),
        ("cast_fp32", 6.0, [(lambda x=x: x.float()) for x in xs], True),
        ("cast_fp8", 3.0, [(lambda x=x: x.to(f8)) for x in xs], True),
        # fwd+bwd of a norm: read x, write y; read dy and x, write dx (10 bytes per element)
        ("rms_norm_fwd_bwd", 10.0,
         [(lambda x=x: torch.autograd.grad(F.rms_norm(x, (hidden,), wg), (x, wg), gy))
          for x in xg], False),
    ]


def section_memory(bench: Bench) -> None:
    sizes = ((64, 128),) if bench.dry else MEM_SIZES
    for tokens, hidden in sizes:
        if bench.left_s() < 0:
            return
        size = tokens * hidden
        with freed(bench):
            sets = bench.copies(6 * size)
            xs = [randn(bench, tokens, hidden) for _ in range(sets)]
            rs = [randn(bench, tokens, hidden) for _ in range(sets)]
            cases = _memory_cases(bench, xs, rs, hidden)
            for kernel, per_elt, calls, graph in cases:
                row = {"section": "memory", "kernel": kernel, "dtype": "bf16", "m": tokens,
                       "n": hidden, "bytes": per_elt * size}
                try:
                    t, method = bench.time(calls, graph=graph)
                    bench.record(time_s=t, method=method, note=f"{sets} sets", **row)
                except Exception as exc:
                    bench.fail(**row, exc=exc)
    vocab = 1000 if bench.dry else 128256
    tokens = 64 if bench.dry else 4096
    row = {"section": "memory", "kernel": "cross_entropy_fwd_bwd", "dtype": "bf16",
           "m": tokens, "n": vocab, "bytes": 4.0 * tokens * vocab}
    try:
        with freed(bench):
            logits = randn(bench, tokens, vocab).requires_grad_()
            target = torch.randint(0, vocab, (tokens,), device=bench.device)
            t, method = bench.time([lambda: torch.autograd.grad(
                F.cross_entropy(logits, target), (logits,))], graph=False)
            bench.record(time_s=t, method=method, **row)
    except Exception as exc:
        bench.fail(**row, exc=exc)


def section_optimizer(bench: Bench) -> None:
    """AdamW over fp32 master weights and fp32 gradients, fused (one multi-tensor kernel
    per chunk) and foreach: bytes per parameter read p, g, m, v and write p, m, v (28 B)."""
    count, size = (4, 4096) if bench.dry else (200, 2_500_000)
    for impl in ("fused", "foreach"):
        row = {"section": "optimizer", "kernel": f"adamw:{impl}", "dtype": "fp32",
               "n": count * size, "groups": count, "bytes": 28.0 * count * size}
        try:
            with freed(bench):
                params = [torch.nn.Parameter(randn(bench, size, dtype=torch.float32))
                          for _ in range(count)]
                for p in params:
                    p.grad = torch.randn_like(p)
                opt = torch.optim.AdamW(params, lr=1e-4, **{impl: True})
                t, method = bench.time([opt.step], graph=False, target_s=0.02, reps=3)
                bench.record(time_s=t, method=method, **row)
        except Exception as exc:
            bench.fail(**row, exc=exc)


#: Whole transformer layers (name, hidden, heads, kv heads, FFN width, (batch, seq) list):
#: Llama 3 8B and 70B, Llama 3.2 1B and 3B (Meta's published configs), unsharded, no
#: communication. The small ones are the per-chip work the issue found over-predicted.
LAYERS: tuple[tuple[str, int, int, int, int, tuple[tuple[int, int], ...]], ...] = (
    ("llama3-8b", 4096, 32, 8, 14336, ((1, 8192), (2, 4096), (4, 2048), (1, 4096))),
    ("llama3-70b", 8192, 64, 8, 28672, ((1, 4096), (1, 8192))),
    ("llama3.2-1b", 2048, 32, 8, 8192, ((1, 2048), (1, 4096), (2, 4096), (1, 8192))),
    ("llama3.2-3b", 3072, 24, 8, 8192, ((1, 2048), (1, 4096), (1, 8192))),
)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of ``x`` (last axis the head width, halves rotated) at the angles
    whose cosines and sines are given, as unfused elementwise kernels."""
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin


class Layer(torch.nn.Module):
    """A Llama layer in plain PyTorch: RMSNorm, fused QKV, (Qwen3's per-head RMSNorm of
    queries and keys when ``qk_norm``), RoPE, causal SDPA (cuDNN first), output
    projection, residual, RMSNorm, SwiGLU MLP, residual."""

    def __init__(self, hidden: int, heads: int, kv_heads: int, ffn: int, seq: int,
                 device: torch.device, head_dim: int = 0, qk_norm: bool = False) -> None:
        super().__init__()
        d = head_dim or hidden // heads
        kw = {"device": device, "dtype": torch.bfloat16}
        self.shape = (hidden, heads, kv_heads, d)
        self.qk_norm = qk_norm
        self.q_norm = torch.nn.Parameter(torch.ones(d, **kw))  # type: ignore[arg-type]
        self.k_norm = torch.nn.Parameter(torch.ones(d, **kw))  # type: ignore[arg-type]
        self.norm1 = torch.nn.Parameter(torch.ones(hidden, **kw))  # type: ignore[arg-type]
        self.norm2 = torch.nn.Parameter(torch.ones(hidden, **kw))  # type: ignore[arg-type]
        self.qkv = torch.nn.Linear(hidden, (heads + 2 * kv_heads) * d, bias=False, **kw)
        self.o = torch.nn.Linear(heads * d, hidden, bias=False, **kw)
        if ffn:  # 0: the MLP is a subclass's (MoELayer)
            self.gate_up = torch.nn.Linear(hidden, 2 * ffn, bias=False, **kw)
            self.down = torch.nn.Linear(ffn, hidden, bias=False, **kw)
        pos = torch.arange(seq, device=device, dtype=torch.float32)[:, None]
        inv = 500000.0 ** (-torch.arange(0, d, 2, device=device, dtype=torch.float32) / d)
        ang = torch.cat([pos * inv, pos * inv], dim=-1)
        self.cos, self.sin = ang.cos().to(torch.bfloat16), ang.sin().to(torch.bfloat16)

    def rope(self, x: torch.Tensor) -> torch.Tensor:
        return _rope(x, self.cos, self.sin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch.nn.attention import SDPBackend, sdpa_kernel
        hidden, heads, kv_heads, d = self.shape
        b, s, _ = x.shape
        y = F.rms_norm(x, (hidden,), self.norm1)
        q, k, v = self.qkv(y).split([heads * d, kv_heads * d, kv_heads * d], dim=-1)
        q, k = q.view(b, s, heads, d), k.view(b, s, kv_heads, d)
        if self.qk_norm:
            q, k = F.rms_norm(q, (d,), self.q_norm), F.rms_norm(k, (d,), self.k_norm)
        q = self.rope(q.transpose(1, 2))
        k = self.rope(k.transpose(1, 2))
        v = v.view(b, s, kv_heads, d).transpose(1, 2)
        with sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION],
                         set_priority=True):
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        x = x + self.o(a.transpose(1, 2).reshape(b, s, heads * d))
        return x + self.mlp(F.rms_norm(x, (hidden,), self.norm2).view(b * s, hidden)
                            ).view(b, s, hidden)

    def mlp(self, y: torch.Tensor) -> torch.Tensor:
        g, u = self.gate_up(y).chunk(2, dim=-1)
        return self.down(F.silu(g) * u)


class MoELayer(Layer):
    """A Qwen3-MoE / Mixtral layer: the attention of :class:`Layer`, then a router (softmax,
    top-k, renormalized weights), the tokens permuted by expert with each expert's rows
    padded to 16 (as torchtitan aligns them), two ``torch._grouped_mm`` with SwiGLU
    between, and the weighted combine back (index_add)."""

    ALIGN = 16

    def __init__(self, hidden: int, heads: int, kv_heads: int, head_dim: int, seq: int,
                 device: torch.device, experts: int, top_k: int, expert_ffn: int,
                 qk_norm: bool = False) -> None:
        super().__init__(hidden, heads, kv_heads, 0, seq, device, head_dim, qk_norm)
        kw = {"device": device, "dtype": torch.bfloat16}
        self.experts, self.top_k = experts, top_k
        self.router = torch.nn.Linear(hidden, experts, bias=False, **kw)
        self.w_up = torch.nn.Parameter(0.02 * torch.randn(experts, 2 * expert_ffn, hidden,
                                                          **kw))  # type: ignore[arg-type]
        self.w_down = torch.nn.Parameter(0.02 * torch.randn(experts, hidden, expert_ffn,
                                                            **kw))  # type: ignore[arg-type]
        self.last_imbalance = 1.0

    def mlp(self, y: torch.Tensor) -> torch.Tensor:
        tokens, hidden = y.shape
        probs = torch.softmax(self.router(y).float(), dim=-1)
        weight, chosen = probs.topk(self.top_k, dim=-1)
        weight = (weight / weight.sum(dim=-1, keepdim=True)).to(y.dtype)
        flat = chosen.flatten()
        order = flat.argsort(stable=True)
        counts = torch.bincount(flat, minlength=self.experts)
        padded = (counts + self.ALIGN - 1) // self.ALIGN * self.ALIGN
        ends = padded.cumsum(0)
        total = int(ends[-1])                       # host sync, as dropless MoE pays
        self.last_imbalance = float(counts.max()) / (tokens * self.top_k / self.experts)
        sorted_expert = flat[order]
        rank = torch.arange(flat.numel(), device=y.device) - (counts.cumsum(0) - counts
                                                                )[sorted_expert]
        dest = (ends - padded)[sorted_expert] + rank
        src = torch.full((total,), tokens, device=y.device, dtype=torch.long)
        src[dest] = order // self.top_k
        rows = torch.cat([y, y.new_zeros(1, hidden)])[src]
        offs = ends.to(torch.int32)
        g, u = torch._grouped_mm(rows, self.w_up.transpose(-2, -1), offs=offs,
                                 out_dtype=torch.bfloat16).chunk(2, dim=-1)
        out = torch._grouped_mm(F.silu(g) * u, self.w_down.transpose(-2, -1), offs=offs,
                                out_dtype=torch.bfloat16)
        combined = out[dest] * weight.flatten()[order].unsqueeze(1)
        return y.new_zeros(tokens, hidden).index_add(0, order // self.top_k, combined)


def _time_layer(bench: Bench, make: Callable[[], Layer], shape: tuple[int, int, int],
                base: dict[str, object], note: Callable[[Layer], str] = lambda _: "") -> None:
    """Forward and forward+backward of the layer ``make`` builds on ``(batch, seq,
    hidden)`` inputs, eager, one row each (``note`` read from the layer after timing)."""
    batch, seq, hidden = shape
    try:
        with freed(bench):
            layer = make()
            x = randn(bench, batch, seq, hidden).requires_grad_()
            gy = randn(bench, batch, seq, hidden)
            params = [x, *layer.parameters()]
            for label, fn in (("fwd", lambda: layer(x)),
                              ("fwd+bwd", lambda: torch.autograd.grad(
                                  layer(x), params, gy, allow_unused=True))):
                t, method = bench.time([fn], graph=False, target_s=0.03, reps=3)
                bench.record(time_s=t, method=method, pass_=label, note=note(layer), **base)
    except Exception as exc:
        bench.fail(**base, exc=exc)


def section_layer(bench: Bench) -> None:
    """Forward and forward+backward of whole layers, eager, for the composition check."""
    layers = ((LAYERS[0][0], 256, 4, 2, 512, ((1, 256),)),) if bench.dry else LAYERS
    for name, hidden, heads, kv_heads, ffn, shapes in layers:
        for batch, seq in shapes:
            if bench.left_s() < 0:
                return
            base = {"section": "layer", "kernel": name, "dtype": "bf16", "m": batch * seq,
                    "n": hidden, "k": ffn, "batch": batch, "heads": heads,
                    "kv_heads": kv_heads, "seq": seq, "head_dim": hidden // heads, "causal": 1}
            _time_layer(bench, lambda h=hidden, a=heads, kv=kv_heads, f=ffn, s=seq:
                        Layer(h, a, kv, f, s, bench.device), (batch, seq, hidden), base)


#: MoE layers (name, hidden, heads, kv heads, head width, experts, top-k, expert width,
#: QK-norm, (batch, seq) list): Qwen3-30B-A3B and Mixtral 8x7B (their published
#: configs), EP 1.
MOE_LAYERS: tuple[tuple[str, int, int, int, int, int, int, int, bool,
                        tuple[tuple[int, int], ...]], ...] = (
    ("qwen3-30b-a3b", 2048, 32, 4, 128, 128, 8, 768, True, ((1, 8192), (2, 4096), (1, 4096))),
    ("mixtral-8x7b", 4096, 32, 8, 128, 8, 2, 14336, False, ((1, 8192), (1, 4096))),
)


def section_moe_layer(bench: Bench) -> None:
    """Forward and forward+backward of whole MoE layers, eager; the note keeps the
    measured max/mean tokens per expert."""
    layers = (("qwen3-30b-a3b", 256, 4, 2, 64, 8, 2, 128, True, ((1, 256),)),) \
        if bench.dry else MOE_LAYERS
    for name, hidden, heads, kv_heads, d, experts, top_k, ffn, qk, shapes in layers:
        for batch, seq in shapes:
            if bench.left_s() < 0:
                return
            base = {"section": "layer", "kernel": name, "dtype": "bf16", "m": batch * seq,
                    "n": hidden, "k": ffn, "groups": experts, "batch": batch,
                    "heads": heads, "kv_heads": kv_heads, "seq": seq, "head_dim": d,
                    "causal": 1}
            _time_layer(bench, lambda h=hidden, a=heads, kv=kv_heads, d=d, s=seq, e=experts,
                        k=top_k, f=ffn, q=qk: MoELayer(h, a, kv, d, s, bench.device, e, k, f,
                                                       q),
                        (batch, seq, hidden), base,
                        lambda layer, k=top_k: f"top-{k}; max/mean tokens "
                                               f"{layer.last_imbalance:.2f}")


#: Layers whose forward+backward kernels are listed (name, builder arguments, (batch, seq)).
PROFILED = ("llama3-8b", "llama3.2-1b", "qwen3-30b-a3b")
PROFILE_ITERS = 3
#: Chrome-trace categories of device work (kernels, copies, fills).
DEVICE_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")


def _profiled_layer(bench: Bench, name: str) -> tuple[Callable[[], Layer], int, int, int]:
    """(builder, batch, seq, hidden) of a :data:`PROFILED` layer (tiny on a dry run)."""
    if bench.dry and name not in {m[0] for m in MOE_LAYERS}:
        return functools.partial(Layer, 256, 4, 2, 512, 256, bench.device), 1, 256, 256
    for lname, hidden, heads, kv_heads, ffn, shapes in LAYERS:
        if lname == name:
            batch, seq = shapes[0] if name != "llama3.2-1b" else shapes[1]
            return functools.partial(Layer, hidden, heads, kv_heads, ffn, seq,
                                     bench.device), batch, seq, hidden
    for lname, hidden, heads, kv_heads, d, experts, top_k, ffn, qk, shapes in MOE_LAYERS:
        if lname == name:
            batch, seq = shapes[0]
            if bench.dry:
                return functools.partial(MoELayer, 256, 4, 2, 64, 256, bench.device, 8, 2,
                                         128, qk), 1, 256, 256
            return functools.partial(MoELayer, hidden, heads, kv_heads, d, seq, bench.device,
                                     experts, top_k, ffn, qk), batch, seq, hidden
    raise AssertionError(name)


def _layer_step(bench: Bench, make: Callable[[], Layer], batch: int, seq: int,
                hidden: int) -> Callable[[], None]:
    """One forward+backward of the layer ``make`` builds on random ``(batch, seq,
    hidden)`` inputs with a random output gradient (the gradients of the input and every
    parameter, discarded)."""
    layer = make()
    x = randn(bench, batch, seq, hidden).requires_grad_()
    gy = randn(bench, batch, seq, hidden)
    params = [x, *layer.parameters()]

    def step() -> None:
        torch.autograd.grad(layer(x), params, gy, allow_unused=True)
    return step


def _profiler_activities(bench: Bench) -> list[object]:
    """What the profiler records: the host, and the device's kernels where there is one."""
    from torch.profiler import ProfilerActivity
    return [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if bench.cuda else [])


def _kernel_totals(trace: Path, cuda: bool) -> dict[str, tuple[float, int]]:
    """Seconds and calls per device kernel name in a Chrome trace (CPU ops on a dry run)."""
    events = json.loads(trace.read_text()).get("traceEvents", [])
    wanted = DEVICE_CATEGORIES if cuda else ("cpu_op",)
    totals: dict[str, tuple[float, int]] = {}
    for e in events:
        if e.get("cat") in wanted and "dur" in e:
            t, n = totals.get(e["name"], (0.0, 0))
            totals[e["name"]] = (t + float(e["dur"]) * 1e-6, n + 1)
    return totals


def section_profile(bench: Bench) -> None:
    """Device time per kernel name of one layer's forward+backward, averaged over
    :data:`PROFILE_ITERS` iterations, one row per kernel name; a last row per layer
    holds the sum and the wall time of the profiled iterations."""
    activities = _profiler_activities(bench)
    for name in PROFILED:
        if bench.left_s() < 0:
            return
        make, batch, seq, hidden = _profiled_layer(bench, name)
        base = {"section": "profile", "dtype": "bf16", "batch": batch, "seq": seq,
                "n": hidden, "pass_": "fwd+bwd"}
        try:
            with freed(bench):
                step = _layer_step(bench, make, batch, seq, hidden)
                for _ in range(2):
                    step()
                bench.sync()
                _profile_rows(bench, name, step, base, activities)
        except Exception as exc:
            bench.fail(kernel=f"{name}|TOTAL", exc=exc, **base)


def _profile_rows(bench: Bench, name: str, step: Callable[[], None], base: dict[str, object],
                  activities: list[object], note: str = "") -> None:
    """Profile :data:`PROFILE_ITERS` calls of ``step`` and record one row per kernel name
    and a ``TOTAL`` row (device busy time, calls, wall time per call)."""
    from torch.profiler import profile
    with profile(activities=activities) as prof:  # type: ignore[arg-type]
        t0 = time.perf_counter()
        for _ in range(PROFILE_ITERS):
            step()
        bench.sync()
        wall = (time.perf_counter() - t0) / PROFILE_ITERS
    trace = bench.out / f"trace_{name}.json"
    prof.export_chrome_trace(str(trace))
    totals = _kernel_totals(trace, bench.cuda)
    trace.unlink()
    for kernel, (t, n) in sorted(totals.items(), key=lambda kv: -kv[1][0]):
        bench.record(kernel=f"{name}|{kernel[:160]}", time_s=t / PROFILE_ITERS,
                     method="profiler", note=f"calls {n / PROFILE_ITERS:g}", **base)
    busy = sum(t for t, _ in totals.values()) / PROFILE_ITERS
    calls = sum(n for _, n in totals.values()) / PROFILE_ITERS
    bench.record(kernel=f"{name}|TOTAL", time_s=busy, method="profiler",
                 note=f"calls {calls:g}; wall {wall:.6g} s{note}", **base)


#: Seconds a layer runs before its sustained timing (clocks settle under the power cap),
#: and seconds timed.
SUSTAIN_WARM_S = 3.0
SUSTAIN_TIME_S = 1.5
#: Layers timed sustained (PROFILED plus Mixtral).
SUSTAINED = (*PROFILED, "mixtral-8x7b")


class ClockSampler:
    """``nvidia-smi`` sampling SM clock and power every 100 ms while it is open."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.samples: list[tuple[float, float]] = []

    def __enter__(self) -> ClockSampler:
        try:
            self.proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=clocks.sm,power.draw",
                 "--format=csv,noheader,nounits", "-lms", "100"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        except OSError:
            self.proc = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=10)
        for line in out.splitlines():
            parts = [v.strip() for v in line.split(",")]
            try:
                self.samples.append((float(parts[0]), float(parts[1])))
            except (ValueError, IndexError):
                continue

    def note(self) -> str:
        if not self.samples:
            return "no clock samples"
        clocks = statistics.median(c for c, _ in self.samples)
        power = statistics.median(p for _, p in self.samples)
        return f"sm {clocks:.0f} MHz, {power:.0f} W median of {len(self.samples)} samples"


def section_sustained(bench: Bench) -> None:
    """Forward+backward of a layer run back to back for :data:`SUSTAIN_WARM_S`, then
    timed over :data:`SUSTAIN_TIME_S` with the clocks sampled (as a training step runs
    it: under the power cap, not a burst from idle), then profiled while still hot."""
    activities = _profiler_activities(bench)
    for name in SUSTAINED:
        if bench.left_s() < 0:
            return
        make, batch, seq, hidden = _profiled_layer(bench, name)
        base = {"section": "sustained", "dtype": "bf16", "batch": batch, "seq": seq,
                "n": hidden, "pass_": "fwd+bwd"}
        try:
            with freed(bench):
                step = _layer_step(bench, make, batch, seq, hidden)
                warm_s, time_s = (0.2, 0.2) if bench.dry else (SUSTAIN_WARM_S, SUSTAIN_TIME_S)
                end = time.monotonic() + warm_s
                while time.monotonic() < end:
                    step()
                    step()
                    bench.sync()
                sampler = ClockSampler() if bench.cuda else None
                with sampler or contextlib.nullcontext():
                    t0, n = time.perf_counter(), 0
                    while time.perf_counter() - t0 < time_s:
                        step()
                        n += 1
                    bench.sync()
                    per = (time.perf_counter() - t0) / n
                clock = sampler.note() if sampler else "dry"
                bench.record(kernel=name, time_s=per, method="eager sustained",
                             note=f"{n} calls; {clock}", **base)
                base["section"] = "profile_sustained"
                _profile_rows(bench, name, step, base, activities, f"; after: {clock}")
        except Exception as exc:
            bench.fail(kernel=name, exc=exc, **base)


#: Llama 3 8B projections (name, N, K) at 8192 tokens for the FP8 linear section.
FP8_LINEARS = (("qkv", 6144, 4096), ("o", 4096, 4096), ("gate_up", 28672, 4096),
               ("down", 4096, 14336))
FP8_LINEAR_TOKENS = 8192


class _Fp8Linear(torch.autograd.Function):
    """``y = x W^T`` in e4m3 with scale 1: the casts, the transposed copies the backward
    GEMMs need (``_scaled_mm`` takes a row-major first and column-major second operand)
    and three ``_scaled_mm``, each its own kernel, as an unfused FP8 recipe runs them."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor,
                w: torch.Tensor) -> torch.Tensor:
        e4m3 = torch.float8_e4m3fn
        x8, w8 = x.to(e4m3), w.to(e4m3)
        one = torch.ones((), device=x.device, dtype=torch.float32)
        ctx.save_for_backward(x8, w8, one)
        return torch._scaled_mm(x8, w8.t(), one, one, out_dtype=torch.bfloat16,
                                use_fast_accum=True)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx,  # type: ignore[override]
                 gy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x8, w8, one = ctx.saved_tensors  # type: ignore[attr-defined]
        g8 = gy.to(torch.float8_e4m3fn)
        dx = torch._scaled_mm(g8, w8.t().contiguous().t(), one, one, out_dtype=torch.bfloat16)
        dw = torch._scaled_mm(g8.t().contiguous(), x8.t().contiguous().t(), one, one,
                              out_dtype=torch.bfloat16)
        return dx, dw


def section_fp8_linear(bench: Bench) -> None:
    """Forward+backward of one projection, BF16 ``F.linear`` against :class:`_Fp8Linear`
    (eager; ``flops`` = 6 M N K)."""
    scale = 16 if bench.dry else 1
    m = FP8_LINEAR_TOKENS // scale
    for name, n_full, k_full in FP8_LINEARS:
        n, k = n_full // scale, k_full // scale
        for dtype in ("bf16", "fp8"):
            if bench.left_s() < 0:
                return
            row = {"section": "fp8linear", "kernel": f"llama8b.{name}", "dtype": dtype,
                   "m": m, "n": n, "k": k, "groups": 1, "pass_": "fwd+bwd",
                   "flops": 6.0 * m * n * k}
            try:
                with freed(bench):
                    sets = bench.copies(2 * (m * k + n * k))
                    xs = [randn(bench, m, k).requires_grad_() for _ in range(sets)]
                    ws = [randn(bench, n, k).requires_grad_() for _ in range(sets)]
                    gy = randn(bench, m, n)
                    fwd: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = (
                        F.linear if dtype == "bf16" or not bench.cuda
                        else _Fp8Linear.apply)  # type: ignore[assignment]
                    calls = [(lambda x=x, w=w, fwd=fwd, gy=gy:
                              torch.autograd.grad(fwd(x, w), (x, w), gy))
                             for x, w in zip(xs, ws, strict=True)]
                    t, method = bench.time(calls, graph=False, target_s=0.03, reps=3)
                    bench.record(time_s=t, method=method, note=f"{sets} sets", **row)
            except Exception as exc:
                bench.fail(**row, exc=exc)


#: Whole-model serving iterations (name, hidden, heads, kv heads, FFN width, layers,
#: vocabulary): Llama 3.1 8B's published config, every layer its own weights (16 GB in
#: bf16, far past the L2).
SERVE_MODEL = ("llama3.1-8b", 4096, 32, 8, 14336, 32, 128256)
#: Decode iterations (sequences, context tokens each): batch 1 to 512, the KV cache
#: (128 KiB a token) up to 69 GB.
DECODE_GRID = ((1, 1024), (1, 8192), (8, 2048), (32, 2048), (64, 1024), (64, 4096),
               (128, 2048), (256, 1024), (256, 2048), (512, 1024))
#: Prefill iterations: one prompt of this many tokens, no cached prefix.
PREFILL_TOKENS = (512, 2048, 8192)
#: Decode iterations whose kernels are listed (profiler, eager).
PROFILED_SERVE = ((1, 1024), (64, 4096), (256, 2048))


class ServeModel(torch.nn.Module):
    """A Llama decoder for serving in plain PyTorch, from the hidden state of the new tokens
    to the logits of each sequence's last token: per layer RMSNorm, fused QKV, RoPE,
    the new keys and values written into a contiguous cache (decode), SDPA over the cache
    (FlashAttention with GQA; causal over the prompt in prefill), output projection,
    residual, RMSNorm, SwiGLU MLP, residual; then the final RMSNorm and the LM head."""

    def __init__(self, hidden: int, heads: int, kv_heads: int, ffn: int, layers: int,
                 vocab: int, device: torch.device) -> None:
        super().__init__()
        kw = {"device": device, "dtype": torch.bfloat16}
        d = hidden // heads
        self.shape = (hidden, heads, kv_heads, d)
        #: SDPA backend tried first: "flash" (FlashAttention-2) or "cudnn".
        self.attention = "flash"
        self.layers = torch.nn.ModuleList()
        for _ in range(layers):
            layer = torch.nn.Module()
            layer.qkv = torch.nn.Linear(hidden, (heads + 2 * kv_heads) * d, bias=False, **kw)
            layer.o = torch.nn.Linear(heads * d, hidden, bias=False, **kw)
            layer.gate_up = torch.nn.Linear(hidden, 2 * ffn, bias=False, **kw)
            layer.down = torch.nn.Linear(ffn, hidden, bias=False, **kw)
            layer.norm1 = torch.nn.Parameter(torch.ones(hidden, **kw))  # type: ignore[arg-type]
            layer.norm2 = torch.nn.Parameter(torch.ones(hidden, **kw))  # type: ignore[arg-type]
            self.layers.append(layer)
        self.norm = torch.nn.Parameter(torch.ones(hidden, **kw))  # type: ignore[arg-type]
        self.head = torch.nn.Linear(hidden, vocab, bias=False, **kw)
        self.caches: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                slot: torch.Tensor | None) -> torch.Tensor:
        """``x`` (B, S, hidden): S = 1 decodes against :attr:`caches` (the new key and
        value go to position ``slot``); otherwise causal prefill of S tokens."""
        from torch.nn.attention import SDPBackend, sdpa_kernel
        hidden, heads, kv_heads, d = self.shape
        b, s, _ = x.shape
        for i, layer in enumerate(self.layers):
            y = F.rms_norm(x, (hidden,), layer.norm1)
            q, k, v = layer.qkv(y).split([heads * d, kv_heads * d, kv_heads * d], dim=-1)
            q = _rope(q.view(b, s, heads, d).transpose(1, 2), cos, sin)
            k = _rope(k.view(b, s, kv_heads, d).transpose(1, 2), cos, sin)
            v = v.view(b, s, kv_heads, d).transpose(1, 2)
            if slot is not None:
                cache = self.caches[i]
                cache[0].index_copy_(2, slot, k)
                cache[1].index_copy_(2, slot, v)
                k, v = cache[0], cache[1]
            first, second = SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION
            if self.attention == "cudnn":
                first, second = second, first
            with sdpa_kernel([first, second, SDPBackend.MATH], set_priority=True):
                a = F.scaled_dot_product_attention(q, k, v, is_causal=slot is None,
                                                   enable_gqa=True)
            x = x + layer.o(a.transpose(1, 2).reshape(b, s, heads * d))
            g, u = layer.gate_up(F.rms_norm(x, (hidden,), layer.norm2)).chunk(2, dim=-1)
            x = x + layer.down(F.silu(g) * u)
        return self.head(F.rms_norm(x[:, -1], (hidden,), self.norm))


def _serve_case(bench: Bench, model: ServeModel, batch: int, seq: int, context: int,
                base: dict[str, object], profiled: bool = False) -> None:
    """One iteration of ``batch`` sequences of ``seq`` new tokens (``context`` cached
    tokens each in decode), captured in a CUDA graph and replayed; ``profiled``: its
    kernels listed instead (eager, :func:`_profile_rows`)."""
    hidden, heads, kv_heads, d = model.shape
    decode = context > 0
    weights = sum(p.numel() for p in model.parameters()) * 2
    keys = context if decode else seq
    kv_bytes = len(model.layers) * 2 * batch * kv_heads * keys * d * 2
    # Useful FLOPs: the weights' 2 per token (the LM head on the last token only) and
    # attention's 4 s_q s_kv d per head, halved under the causal mask.
    head = model.head.weight.numel()
    flops = (2.0 * (weights / 2 - head) * batch * seq + 2.0 * head * batch
             + len(model.layers) * 4.0 * batch * heads * seq * keys * d
             * (1.0 if decode else 0.5))
    row = dict(base, batch=batch, seq=context if decode else seq, m=batch * seq,
               causal=int(not decode), flops=flops, bytes=weights + kv_bytes)
    row["pass"] = "decode" if decode else "prefill"
    if profiled:
        row["section"] = "serveprofile"
    try:
        with freed(bench):
            if decode:
                model.caches = [randn(bench, 2, batch, kv_heads, context, d)
                                for _ in model.layers]
            x = randn(bench, batch, seq, hidden)
            ang = torch.rand(seq, d, device=bench.device)
            cos, sin = ang.cos().to(torch.bfloat16), ang.sin().to(torch.bfloat16)
            slot = torch.tensor([context - 1], device=bench.device) if decode else None
            with torch.no_grad():
                if profiled:
                    model(x, cos, sin, slot)
                    bench.sync()
                    name = f"{base['kernel']}:{row['pass']}:{batch}x{row['seq']}"
                    kept = {k: v for k, v in row.items()
                            if k not in ("kernel", "note", "flops", "bytes")}
                    _profile_rows(bench, name, lambda: model(x, cos, sin, slot), kept,
                                  _profiler_activities(bench))
                    return
                t, method = bench.time([lambda: model(x, cos, sin, slot)], graph=True,
                                       target_s=0.02, reps=5)
            bench.record(time_s=t, method=method, **row)
    except Exception as exc:
        bench.fail(**row, exc=exc)
    finally:
        model.caches = []


def section_serve(bench: Bench) -> None:
    """Whole-model decode and prefill iterations of Llama 3.1 8B (bf16, one chip): what
    the serving step model predicts, without an engine's scheduler or host work. Decode
    and prefill each with cuDNN and with FlashAttention-2 tried first (the row's note),
    then three decode steps profiled by kernel."""
    name, hidden, heads, kv_heads, ffn, layers, vocab = SERVE_MODEL
    if bench.dry:
        hidden, heads, kv_heads, ffn, layers, vocab = 256, 4, 2, 512, 2, 1000
    grid = ((2, 64), (4, 128)) if bench.dry else DECODE_GRID
    prompts = (64,) if bench.dry else PREFILL_TOKENS
    base = {"section": "serve", "kernel": name, "dtype": "bf16", "n": hidden, "k": ffn,
            "groups": layers, "heads": heads, "kv_heads": kv_heads,
            "head_dim": hidden // heads}
    with freed(bench):
        model = ServeModel(hidden, heads, kv_heads, ffn, layers, vocab, bench.device)
        # (sequences, new tokens, cached tokens): the decode grid, then one prompt each
        cases = [*((b, 1, c) for b, c in grid), *((1, t, 0) for t in prompts)]
        # cuDNN first: its decode kernel splits the cache across SMs (0.94 of peak in run
        # 1) where PyTorch's FlashAttention-2 path does not (0.52 at batch >= 64, run 7)
        for attention in ("cudnn", "flash"):
            model.attention = attention
            for batch, seq, context in cases:
                if bench.left_s() < 0:
                    return
                _serve_case(bench, model, batch, seq, context,
                            dict(base, note=f"{attention} attention first"))
        model.attention = "flash"
        for batch, context in ((2, 64),) if bench.dry else PROFILED_SERVE:
            if bench.left_s() < 0:
                return
            _serve_case(bench, model, batch, 1, context, base, profiled=True)
        del model


SECTIONS: tuple[tuple[str, Callable[[Bench], None]], ...] = (
    ("launch", section_launch),
    ("copy", section_copy),
    ("memory", section_memory),
    ("optimizer", section_optimizer),
    ("gemm bf16", lambda b: section_gemm(b, fp8=False)),
    ("attention", section_attention),
    ("grouped", section_grouped),
    ("gemm fp8", lambda b: section_gemm(b, fp8=True)),
    ("layer", section_layer),
    ("moe", section_moe_layer),
    ("profile", section_profile),
    ("fp8linear", section_fp8_linear),
    ("sustained", section_sustained),
    ("attnpairs", section_attention_pairs),
    ("serve", section_serve),
)


def summary(path: Path) -> str:
    """Per-section counts and a few headline rates, for the end of the log."""
    rows = list(csv.DictReader(path.open()))
    lines = [f"{len(rows)} rows"]
    for section in dict.fromkeys(r["section"] for r in rows):
        mine = [r for r in rows if r["section"] == section]
        errors = sum(1 for r in mine if r["note"].startswith("error"))
        best_tf = max((float(r["tflops"]) for r in mine if r["tflops"]), default=0.0)
        best_bw = max((float(r["tbps"]) for r in mine if r["tbps"]), default=0.0)
        lines.append(f"{section:10s} {len(mine):4d} rows {errors:3d} errors  "
                     f"best {best_tf:7.1f} TFLOP/s {best_bw:6.3f} TB/s")
    for r in rows:
        if r["note"].startswith("error"):
            lines.append(f"  {r['section']} {r['kernel']} m={r['m']} : {r['note'][:120]}")
    return "\n".join(lines[:60])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--budget-s", type=float, default=330.0)
    ap.add_argument("--dry", action="store_true", help="tiny shapes on the CPU")
    ap.add_argument("--only", default="", help="comma-separated section names")
    args = ap.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = sorted(only - {name for name, _ in SECTIONS})
    if unknown:
        sys.stderr.write(f"--only: unknown section {', '.join(unknown)}; allowed: "
                         f"{', '.join(name for name, _ in SECTIONS)}\n")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    device = "cpu" if args.dry or not torch.cuda.is_available() else "cuda"
    torch.manual_seed(0)
    bench = Bench(args.out, device, args.budget_s, args.dry)
    env: dict[str, object] = {"torch": torch.__version__, "device": device,
                              "cuda": torch.version.cuda, "before": gpu_state()}
    if bench.cuda:
        props = torch.cuda.get_device_properties(bench.device)
        env.update(name=props.name, sms=props.multi_processor_count,
                   l2_bytes=props.L2_cache_size, hbm_bytes=props.total_memory,
                   cudnn=torch.backends.cudnn.version())
    warm_up(bench, 3.0)
    env["after_warm_up"] = gpu_state()
    timings = {}
    for name, run in SECTIONS:
        if only and name not in only:
            continue
        if bench.left_s() < 0:
            timings[name] = "skipped: budget spent"
            continue
        t0 = time.monotonic()
        run(bench)
        timings[name] = f"{time.monotonic() - t0:.1f} s"
        sys.stdout.write(f"{name}: {timings[name]} ({bench.rows} rows so far)\n")
        sys.stdout.flush()
    env["after"] = gpu_state()
    env["sections"] = timings
    env["failures"] = bench.failures
    bench.close()
    (args.out / "env.json").write_text(json.dumps(env, indent=1) + "\n")
    sys.stdout.write(summary(args.out / "kernels.csv") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
