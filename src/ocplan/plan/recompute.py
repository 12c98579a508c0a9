"""Activation recompute modes: what a layer keeps for its backward and what it re-runs.

Each mode is declared once here; the plan's ``recompute`` choices, its help text, the
engine's recompute time and saved-activation bytes, and the search's recompute axis are
derived from :data:`RECOMPUTE_MODES`.

Two families of frameworks recompute differently, and the difference is a fifth of a
layer's forward:

- Megatron-LM's full recompute (``--recompute-granularity full``) and
  ``torch.utils.checkpoint`` re-run a checkpointed layer's forward from its saved input,
  every operator of it, before its backward (Korthikanti et al. 2022 §5; Megatron's
  ``CheckpointFunction`` replays the whole forward function).
- JAX's ``jax.checkpoint`` (``remat``) recomputes only the residuals the backward reads:
  partial evaluation of the layer's linearization keeps just the operators whose outputs
  feed some gradient, and XLA removes the rest as dead code. The MLP's down projection
  writes the layer output, which enters the residual sum and nothing else; the backward
  of the down projection reads its *input* (``dW = x^T dy``), not its output, so under
  JAX remat the down projection is never re-run. In a mixture-of-experts layer the routed
  experts' outputs are read by the gradient of the router's gate weights
  (``y = sum_i g_i E_i(x)``, ``dg_i = <dy, E_i(x)>``), so only the shared experts' down
  projection is dropped there. MaxText's ``remat_policy`` options name the tensors a layer
  keeps (``decoders.py``, ``get_remat_policy``): ``full`` keeps only the layer input;
  ``save_qkv_proj`` and ``qkv_proj_offloaded`` also keep the query, key and value
  projections (on the chip or in host memory).

Megatron-Core also recomputes named modules of a layer (``--recompute-granularity
selective --recompute-modules ...``): its MoE recipes in Megatron-Bridge's performance
configurations recompute the layer norms and the routed experts' activation function
(``layernorm``, ``moe_act``; GPT-OSS 120B on GB200, B200 and H100, 26.02-26.04), whose
outputs are the inputs of the next GEMMs, so the layer keeps neither and re-runs both
before its backward (``norm_act``; in a dense layer only the norms, as ``moe_act``
applies to experts alone). Its DeepSeek-V3 and Kimi K2 recipes recompute the MLA
up-projections and RoPE (``mla_up_proj``, ``mla_up``): the query, key and value heads are
rebuilt from the kept latents before the attention backward.

Offload (:class:`~ocplan.plan.plan.Plan` ``offload``) is orthogonal: it moves whatever a
mode keeps to host memory.

A mode belongs to a software stack (:data:`STACKS`): the layout search tries the modes of
one stack, the XLA ones on chips programmed only through XLA (:data:`XLA_FAMILIES`), the
PyTorch ones elsewhere; a plan may state any mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from ocplan.workloads.shape import ModelShape

__all__ = [
    "ALL_FEATURES",
    "ATTENTION_PROJECTIONS",
    "FEATURE_NAMES",
    "MLA_UP_OPERATORS",
    "NORM_ACT_OPERATORS",
    "RECOMPUTE_MODES",
    "STACKS",
    "XLA_DEAD_OPERATORS",
    "XLA_FAMILIES",
    "Recompute",
    "RecomputeMode",
    "Stack",
    "mode",
    "model_features",
    "searched_modes",
    "stack_of",
    "whole_layer_mode",
]

#: The recompute mode names (checked against :data:`RECOMPUTE_MODES` below).
Recompute = Literal["none", "selective", "full", "full_xla", "qkv_xla", "norm_act", "mla_up",
                    "norm_act_mla_up"]
Stack = Literal["torch", "xla"]
#: The software stacks whose recompute semantics differ: PyTorch (Megatron-LM,
#: torch.utils.checkpoint) and XLA (JAX, PyTorch/XLA).
STACKS: tuple[Stack, ...] = ("torch", "xla")
#: Calibration families of chips programmed only through the XLA compiler: Cloud TPUs
#: run JAX, PyTorch/XLA or TensorFlow, all lowered by XLA (Google Cloud TPU
#: documentation, "Cloud TPU introduction": supported frameworks).
XLA_FAMILIES = frozenset({"tpu"})

#: Forward operators whose outputs no gradient reads (:mod:`ocplan.workloads.operators`
#: names): the dense and shared-expert down projections, and the residual sum that
#: forms the layer's output (the next layer's saved input).
XLA_DEAD_OPERATORS = frozenset({"mlp_down", "shared_down", "residual_mlp"})
#: The attention input projections (standard and MLA), whose outputs MaxText's
#: ``save_qkv_proj`` / ``qkv_proj_offloaded`` keep.
ATTENTION_PROJECTIONS = frozenset({"qkv", "q_proj", "q_down", "q_up", "kv_down", "kv_up"})
#: The operators Megatron-Core's ``layernorm`` and ``moe_act`` recompute modules re-run:
#: the two pre-norms and the routed experts' activation function.
NORM_ACT_OPERATORS = frozenset({"norm_attn", "norm_mlp", "experts_act"})
#: The operators Megatron-Core's ``mla_up_proj`` recompute module re-runs: the MLA
#: query and key/value up-projections (the query projection where there is no query
#: LoRA rank) and the rotary embedding applied to their outputs.
MLA_UP_OPERATORS = frozenset({"q_up", "q_proj", "kv_up", "rope"})
#: Model features a module mode acts on.
ModelFeature = Literal["moe", "mla"]
#: What each feature is, as an infeasibility reason names it.
FEATURE_NAMES: dict[ModelFeature, str] = {"moe": "mixture-of-experts layers",
                                          "mla": "multi-head latent attention"}
#: Every feature: what the search assumes of a model it is not told about.
ALL_FEATURES: frozenset[ModelFeature] = frozenset(FEATURE_NAMES)


@dataclass(frozen=True)
class RecomputeMode:
    """One way of trading recompute for activation memory.

    ``whole_layers``: each recomputed layer keeps only its input (plus ``keeps_qkv``) and
    re-runs its forward before the backward, except the forward operators named in
    ``not_rerun``; ``attention_only``: only the attention cores are recomputed
    (Megatron's selective recompute, Korthikanti et al. 2022 §5); ``modules``: only the
    operators named there are recomputed (Megatron-Core's recompute modules; the memory
    model's :func:`~ocplan.plan.memory_terms.module_bytes` knows each by name); none of these:
    everything is kept. ``stack``: the software stack that runs it (None: any);
    ``searched_for``: the model feature without which the search does not try it;
    ``requires``: the one without which it names nothing the model has (a plan stating
    it is infeasible)."""

    name: Recompute
    help: str
    whole_layers: bool = False
    attention_only: bool = False
    keeps_qkv: bool = False
    not_rerun: frozenset[str] = frozenset()
    modules: frozenset[str] = frozenset()
    stack: Stack | None = None
    searched_for: ModelFeature | None = None
    requires: ModelFeature | None = None

    def __post_init__(self) -> None:
        assert sum((self.whole_layers, self.attention_only, bool(self.modules))) <= 1, \
            self.name
        assert self.whole_layers or not (self.keeps_qkv or self.not_rerun), self.name

    @property
    def named(self) -> frozenset[str]:
        """The operators the mode names: those a whole-layer mode does not re-run, or
        those a module mode re-runs."""
        return self.not_rerun or self.modules


#: Every recompute mode, in the order of their codes (the first is the default).
RECOMPUTE_MODES: tuple[RecomputeMode, ...] = (
    RecomputeMode("none", "keep every activation"),
    RecomputeMode("selective", "recompute the attention cores (Megatron selective)",
                  attention_only=True, stack="torch"),
    RecomputeMode("full", "re-run whole layers from their input (Megatron full, "
                          "torch.utils.checkpoint)", whole_layers=True, stack="torch"),
    RecomputeMode("full_xla", "whole layers from their input, JAX/XLA remat (MaxText "
                              "remat_policy=full): the MLP down projection is not re-run",
                  whole_layers=True, not_rerun=XLA_DEAD_OPERATORS, stack="xla"),
    RecomputeMode("qkv_xla", "keep the Q/K/V projections and recompute the rest of each "
                             "layer JAX/XLA-style (MaxText save_qkv_proj; with offload, "
                             "qkv_proj_offloaded)",
                  whole_layers=True, keeps_qkv=True,
                  not_rerun=XLA_DEAD_OPERATORS | ATTENTION_PROJECTIONS, stack="xla"),
    RecomputeMode("norm_act", "recompute the layer norms and the experts' activation "
                              "(Megatron-Core --recompute-modules layernorm moe_act)",
                  modules=NORM_ACT_OPERATORS, stack="torch", searched_for="moe"),
    RecomputeMode("mla_up", "recompute the MLA up-projections and RoPE (Megatron-Core "
                            "--recompute-modules mla_up_proj)",
                  modules=MLA_UP_OPERATORS, stack="torch", searched_for="mla",
                  requires="mla"),
    RecomputeMode("norm_act_mla_up", "both of the last two (Megatron-Core "
                                     "--recompute-modules layernorm moe_act mla_up_proj; "
                                     "DeepSeek-V3's recipe, its report §3.2.3 and §3.3.3: "
                                     "RMSNorm, the MLA up-projections and the SwiGLU "
                                     "output)",
                  modules=NORM_ACT_OPERATORS | MLA_UP_OPERATORS, stack="torch",
                  searched_for="mla", requires="mla"),
)
_BY_NAME: dict[str, RecomputeMode] = {m.name: m for m in RECOMPUTE_MODES}
assert len(_BY_NAME) == len(RECOMPUTE_MODES), "duplicate recompute mode"
assert set(_BY_NAME) == set(get_args(Recompute)), "Recompute literal out of date"


def mode(name: str) -> RecomputeMode:
    """The declared mode called ``name``."""
    return _BY_NAME[name]


def stack_of(family: str | None) -> Stack:
    """The software stack a chip of calibration ``family`` runs."""
    return "xla" if family in XLA_FAMILIES else "torch"


def model_features(shape: ModelShape) -> frozenset[ModelFeature]:
    """The features of ``shape`` that module modes act on (:data:`FEATURE_NAMES`)."""
    has: dict[ModelFeature, bool] = {"moe": shape.is_moe, "mla": shape.is_mla}
    return frozenset(f for f in ALL_FEATURES if has[f])


def searched_modes(stack: Stack, features: frozenset[ModelFeature] = ALL_FEATURES
                   ) -> tuple[RecomputeMode, ...]:
    """The modes the layout search tries on ``stack`` for a model with ``features``
    (:func:`model_features`): a module mode only where the model has what it names
    (``searched_for``; on a dense model ``norm_act`` recomputes the two norms alone, a
    saving the search leaves to a plan that states it, and ``mla_up`` nothing at all)."""
    return tuple(m for m in RECOMPUTE_MODES if m.stack in (None, stack)
                 and (m.searched_for is None or m.searched_for in features))


def whole_layer_mode(stack: Stack) -> RecomputeMode:
    """The mode recomputing whole layers from their input only on ``stack``: what the
    search's ``auto`` recompute of some layers per stage becomes."""
    (found,) = (m for m in searched_modes(stack)
                if m.whole_layers and not m.keeps_qkv and m.stack == stack)
    return found
