"""Training precision recipes: what each training precision means for the kernels, the
collectives and the chips that can run it, declared once.

A training job's ``precision`` (:data:`TrainingPrecision`) names the format of its GEMM
inputs, and with it a framework recipe: which GEMMs run in that format, whether the
kernels that produce a GEMM's operand write it already quantized, whether the recipe
exists on a chip without a matrix unit for the format, and whether it can overlap the
tensor-parallel collectives with the GEMMs. The operator list
(:mod:`ocplan.workloads.operators`), the engine's feasibility check and the
communication terms read these fields; nothing else spells a recipe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

__all__ = ["RECIPES", "Recipe", "TrainingPrecision"]

#: GEMM input precision of a training job (the catalog's peak_flops keys). The API, CLI,
#: sweep files and web form take their choices from this declaration.
TrainingPrecision = Literal["bf16", "fp16", "fp8", "int8", "fp4"]


@dataclass(frozen=True)
class Recipe:
    """What a training precision's framework recipe does.

    Attributes
    ----------
    precision
        The GEMM input format of the forward and data-gradient GEMMs.
    name
        What the recipe is called (in messages).
    wgrad
        Format of the weight-gradient GEMM (``dW = X^T dY``).
    producer_quantized
        Norms and activations write the next GEMM's operand already quantized (a scale
        known before the kernel runs, or block scales it computes), so that operand has
        no cast kernel of its own.
    needs_own_unit
        The recipe exists only on a chip with a matrix unit for ``precision``; elsewhere
        the job is infeasible (other formats run on the next wider unit).
    tp_overlap
        The recipe can overlap the tensor-parallel collectives with the GEMMs when the
        layout asks for it.
    source
        Where the recipe's behaviour is documented.
    """

    precision: str
    name: str
    wgrad: str
    producer_quantized: bool
    needs_own_unit: bool
    tp_overlap: bool
    source: str


_RECIPES = (
    Recipe("bf16", "BF16 mixed precision", "bf16", False, False, True,
           "mixed-precision training, 16-bit GEMM inputs (Micikevicius et al. 2018)"),
    Recipe("fp16", "FP16 mixed precision", "fp16", False, False, True,
           "mixed-precision training, 16-bit GEMM inputs (Micikevicius et al. 2018)"),
    Recipe("fp8", "Transformer Engine FP8", "fp8", True, False, True,
           "Transformer Engine's FP8 recipes: all three GEMMs in FP8; LayerNormLinear and "
           "LayerNormMLP write the norm's output and the activation in FP8 "
           "(with_quantized_norm; a scale known before the kernel, or MXFP8's 32-element "
           "block scales), and XLA fuses the convert into the producing fusion"),
    Recipe("int8", "AQT int8", "bf16", False, False, True,
           "AQT as MaxText configures it (quantization=int8, local_aqt_shards=0, as "
           "Google's MLPerf GPT-3 scripts run it): forward and data-gradient GEMMs in int8, "
           "weight gradient in bf16 (fwd_bits=8, dlhs_bits=8, drhs_bits=None in "
           "layers/quantizations.py); each operand scaled by its own absolute maximum, a "
           "reduction over the tensor before the quantize, so its cast is a pass of its own"),
    Recipe("fp4", "Transformer Engine NVFP4", "fp4", False, True, False,
           "Transformer Engine's NVFP4 recipe as Megatron-Bridge runs it "
           "(bf16_with_nvfp4_mixed: forward, data- and weight-gradient GEMMs in NVFP4, "
           "16-element blocks with E4M3 scales under a per-tensor FP32 scale taken from the "
           "tensor's absolute maximum, so every cast is a pass of its own, the random "
           "Hadamard transform of the weight-gradient operands inside it; no layers kept in "
           "BF16; NVIDIA, arXiv 2509.25149) on FP4 tensor cores only. TP communication "
           "overlap off: Megatron-Bridge's perf-recipe tests (\"NVFP4's fp4_param_gather "
           "path is incompatible with TP comm overlap\") and NVIDIA's MLPerf Training v5.1 "
           "config_common_fp4.sh (TP_COMM_OVERLAP=False, \"TP overlap not supported yet\")"),
)

#: The recipe of each training precision.
RECIPES: dict[str, Recipe] = {r.precision: r for r in _RECIPES}
assert tuple(RECIPES) == get_args(TrainingPrecision), "one recipe per training precision"
