"""Qwen3-Next-80B-A3B serving, predicted against published measurements (out of sample).

No hybrid model is in the serving development set, so the recurrent mixer's cost law
(docs/model.md, "Hybrid models") was fitted on nothing; these are the measured points
found for it (engine pull requests' benchmark runs and one provider's page, single runs
each, mostly while tuning kernels). Prints one row per point: the engine's output tokens
per second, the model's, and the signed error.

Usage: .venv/bin/python scripts/hybrid_spotcheck.py
"""

from __future__ import annotations

import sys
from typing import Any

from _cli import ScriptParser, parse_argv, script_parser  # scripts/ sibling

from ocplan import api
from ocplan.catalog.catalog import load_catalog

MODEL = "qwen3-next-80b-a3b"

#: (source, job fields, measured output tokens/s over all chips).
POINTS: tuple[tuple[str, dict[str, Any], float], ...] = (
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


def parser() -> ScriptParser:
    """The command line: no arguments (``--help`` only)."""
    return script_parser(__file__, __doc__, "Writes nothing; prints the table.")


def main(argv: list[str]) -> int:
    stop = parse_argv(parser(), argv)
    if isinstance(stop, int):  # --help (0), or a bad argument's one line printed (2)
        return stop
    catalog = load_catalog()
    errors = []
    for source, job, measured in POINTS:
        est, _, _ = api.run_infer(catalog, api.InferRequest(model=MODEL, **job))
        assert est.feasible, (source, est.reason)
        error = 100.0 * (est.output_tokens_per_s - measured) / measured
        errors.append(error)
        print(f"{error:+6.1f} %  predicted {est.output_tokens_per_s:7,.0f}  measured "
              f"{measured:7,.0f}  {source}")
    errors.sort(key=abs)
    print(f"median |error| {abs(errors[len(errors) // 2]):.1f} %, "
          f"mean signed {sum(errors) / len(errors):+.1f} %, n = {len(errors)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
