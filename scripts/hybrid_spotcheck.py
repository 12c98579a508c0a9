"""Hybrid models predicted against published measurements (out of sample).

No hybrid model is in the development sets, so the recurrent mixer's cost law
(docs/model.md, "Hybrid models") was fitted on nothing; these are the measured points
found for it: Qwen3-Next-80B-A3B serving (engine pull requests' benchmark runs and one
provider's page, single runs each, mostly while tuning kernels), Nemotron 3 Nano serving
(one provider's vLLM concurrency sweep of finite runs, its recurrent state cached in
float32 as the release's config asks), and Nemotron-H-56B and
Nemotron 3 Nano training (NVIDIA's dgxc-benchmarking tables and Megatron-Bridge's
performance summary). Prints one row per point: the measured rate (output tokens/s of
the engine; training tokens/s per GPU), the model's, and the signed error.

Usage: .venv/bin/python scripts/hybrid_spotcheck.py
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from _cli import ScriptParser, parse_argv, script_parser  # scripts/ sibling

from ocplan import api
from ocplan.catalog.catalog import load_catalog

MODEL = "qwen3-next-80b-a3b"
NANO = "nemotron-3-nano-30b-a3b"

#: (source, job fields, measured rate).
Point = tuple[str, dict[str, Any], float]

#: (source, job fields, measured output tokens/s over all chips), Qwen3-Next.
SERVING_POINTS: tuple[Point, ...] = (
    ("vLLM PR #26887 (v0.11.0, default MoE config), 2x H100, FP8 checkpoint, 128/1024, "
     "concurrency 64",
     dict(chip="h100-sxm-80gb", chips=2, tp=2, weight_precision="fp8",
          activation_precision="fp8", input_len=128, output_len=1024, load="concurrency",
          concurrency=64), 2886.0),
    ("vLLM PR #28095, H20, TP4 + EP, bf16, 32 prompts at once, 2048/1024",
     dict(chip="h20", chips=4, tp=4, ep=4, input_len=2048, output_len=1024, load="offline",
          requests=32), 2020.0),
    ("SGLang PR #10404 (tuned), H200 TP2, 1000/2000, concurrency 8",
     dict(chip="h200-sxm-141gb", chips=2, tp=2, input_len=1000, output_len=2000,
          load="concurrency", concurrency=8), 938.0),
    ("SGLang PR #10404 (tuned), H200 TP4, 1000/2000, concurrency 8",
     dict(chip="h200-sxm-141gb", chips=4, tp=4, input_len=1000, output_len=2000,
          load="concurrency", concurrency=8), 1138.0),
    ("SGLang PR #10404 (tuned), H200 TP8, 1000/2000, concurrency 8",
     dict(chip="h200-sxm-141gb", chips=8, tp=8, input_len=1000, output_len=2000,
          load="concurrency", concurrency=8), 1239.0),
    ("SGLang PR #10467, H20 TP4, bf16, 1000/2000, concurrency 32",
     dict(chip="h20", chips=4, tp=4, input_len=1000, output_len=2000, load="concurrency",
          concurrency=32), 2233.0),
    ("SGLang PR #10467, H20 TP8, bf16, 1000/2000, concurrency 32",
     dict(chip="h20", chips=8, tp=8, input_len=1000, output_len=2000, load="concurrency",
          concurrency=32), 2705.0),
    ("Lambda, Qwen3-Coder-Next (same shape), 4x H100, 8192/1024, concurrency 32 "
     "(two tables: 1,810 and 2,180; their mean)",
     dict(chip="h100-sxm-80gb", chips=4, tp=4, input_len=8192, output_len=1024,
          load="concurrency", concurrency=32), 1995.0),
)


_VULTR = dict(model=NANO, chip="b200", chips=2, tp=2, weight_precision="fp8",
              activation_precision="fp8", input_len=2048, output_len=512, load="concurrency")
#: Nemotron 3 Nano served by vLLM 0.16.0 on HGX B200 (Vultr inference cookbook,
#: "Concurrency tuning", https://docs.vultr.com/inference-cookbook/cuda/optimization/
#: concurrency-tuning: the FP8 checkpoint at TP 2, random 2,048 / 512, vllm bench serve).
#: Each run is finite and starts at once: the cookbook's methodology page
#: (https://docs.vultr.com/inference-cookbook/cuda/benchmarks/methodology) gives 50
#: prompts at concurrency 1 and 400 above, so the runs at 512 and 1,024 are the same
#: 400 prompts started together (their published rates, 18,746 and 18,829, agree). No
#: --mamba-ssm-cache-dtype: vLLM's NemotronH hook takes float32 from the model's config,
#: the catalog's state_format.
NANO_SERVING_POINTS: tuple[Point, ...] = tuple(
    (f"Vultr cookbook, vLLM 0.16.0, 2x B200, FP8 TP 2, 2048/512, concurrency {c}, "
     f"{n} prompts", dict(_VULTR, concurrency=c, requests=n), measured)
    for c, n, measured in ((1, 50, 277.0), (8, 400, 1881.0), (16, 400, 3455.0),
                           (32, 400, 3798.0), (64, 400, 8120.0), (128, 400, 11556.0),
                           (256, 400, 15552.0), (512, 400, 18746.0), (1024, 400, 18829.0)))


_NANO = dict(model=NANO, tp=1, ep=8, seq_len=8192, precision="fp8")
_H56 = dict(model="nemotron-h-56b", seq_len=8192, precision="fp8", sequence_parallel=True,
            micro_batch=1, tp_overlap=False)
#: (source, training job fields, measured tokens/s per GPU). Megatron-Bridge force-balances
#: the MoE routing; the Nemotron-H-56B recipe trains in FP8 current scaling with its TP
#: collectives not overlapped (Megatron-Bridge nemotronh_56b_pretrain_config: "comm
#: overlap disabled ... with FP8 current scaling").
TRAINING_POINTS: tuple[Point, ...] = (
    ("Megatron-Bridge perf summary 26.06, Nemotron 3 Nano, 16 H100, FP8, EP 8, MBS 1, "
     "GBS 1024", dict(_NANO, chip="h100-sxm-80gb", chips=16, micro_batch=1,
                      global_batch=1024), 14719.0),
    ("Megatron-Bridge perf summary 26.08, Nemotron 3 Nano, 8 GB300, MXFP8, EP 8, MBS 4, "
     "GBS 512", dict(_NANO, chip="gb300", chips=8, micro_batch=4, global_batch=512), 39936.0),
    ("Megatron-Bridge perf summary 26.06.01, Nemotron 3 Nano, 8 GB200, MXFP8, EP 8, MBS 2, "
     "GBS 512", dict(_NANO, chip="gb200", chips=8, micro_batch=2, global_batch=512), 34816.0),
    ("Megatron-Bridge perf summary 26.06, Nemotron 3 Nano, 8 B300, MXFP8, EP 8, MBS 4, "
     "GBS 512", dict(_NANO, chip="b300", chips=8, micro_batch=4, global_batch=512), 37316.0),
    ("Megatron-Bridge perf summary 26.04.01, Nemotron 3 Nano, 8 B200, MXFP8, EP 8, MBS 2, "
     "GBS 512", dict(_NANO, chip="b200", chips=8, micro_batch=2, global_batch=512), 32768.0),
    ("dgxc-benchmarking v25.05, Nemotron-H 56B, 32 H100, FP8, TP 8, GBS 96",
     dict(_H56, chip="h100-sxm-80gb", chips=32, tp=8, global_batch=96), 1626.0),
    ("dgxc-benchmarking v25.05, Nemotron-H 56B, 256 H100, FP8, TP 8, GBS 768",
     dict(_H56, chip="h100-sxm-80gb", chips=256, tp=8, global_batch=768), 1546.0),
    ("dgxc-benchmarking v25.05, Nemotron-H 56B, 2048 H100, FP8, TP 8, GBS 6144",
     dict(_H56, chip="h100-sxm-80gb", chips=2048, tp=8, global_batch=6144), 1563.0),
    ("dgxc-benchmarking v25.10 example output, Nemotron-H 56B, 128 GB200, FP8, TP 4, MBS 2, "
     "GBS 384 (5.310 s a step)",
     dict(_H56, chip="gb200", chips=128, tp=4, micro_batch=2, global_batch=384), 4628.0),
)


def _table(title: str, points: tuple[Point, ...], predict: Callable[[dict[str, Any]], float]
           ) -> None:
    """Print each point's signed error, predicted and measured rate, then the summary."""
    print(title)
    errors = []
    for source, job, measured in points:
        predicted = predict(job)
        error = 100.0 * (predicted - measured) / measured
        errors.append(error)
        print(f"{error:+6.1f} %  predicted {predicted:7,.0f}  measured {measured:7,.0f}  "
              f"{source}")
    ranked = sorted(errors, key=abs)
    print(f"median |error| {abs(ranked[len(ranked) // 2]):.1f} %, "
          f"mean signed {sum(errors) / len(errors):+.1f} %, n = {len(errors)}")


def parser() -> ScriptParser:
    """The command line: no arguments (``--help`` only)."""
    return script_parser(__file__, __doc__, "Writes nothing; prints the table.")


def main(argv: list[str]) -> int:
    stop = parse_argv(parser(), argv)
    if isinstance(stop, int):  # --help (0), or a bad argument's one line printed (2)
        return stop
    catalog = load_catalog()

    def serve(job: dict[str, Any]) -> float:
        est, _, _ = api.run_infer(catalog, api.InferRequest(**{"model": MODEL, **job}))
        assert est.feasible, (job, est.reason)
        return est.output_tokens_per_s

    def train(job: dict[str, Any]) -> float:
        run, _, _ = api.run_estimate(catalog, api.EstimateRequest(**job))
        assert run.feasible, (job, run.reason)
        return run.tokens_per_s_per_chip

    _table("Serving, Qwen3-Next-80B-A3B (output tokens/s, all chips)", SERVING_POINTS, serve)
    _table("\nServing, Nemotron 3 Nano (output tokens/s, all chips)", NANO_SERVING_POINTS,
           serve)
    _table("\nTraining, Nemotron-H and Nemotron 3 (tokens/s per GPU)", TRAINING_POINTS, train)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
