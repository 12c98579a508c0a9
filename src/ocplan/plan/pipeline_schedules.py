"""Pipeline schedules: the order in which a stage runs its micro-batches' forwards and
backwards, and what that order costs in idle time and memory.

Each schedule is declared once here; the plan's ``pp_schedule`` choices and help, the
engine's bubble, head charge, parameter copies and in-flight activations, and the
search's constraints are derived from :data:`PIPELINE_SCHEDULES`.

- ``1f1b``: one forward, one backward (PipeDream-Flush; Narayanan et al. SC'21 §2.2),
  interleaved over ``vpp`` chunks per stage: the bubble is ``(p - 1) / v`` micro-batch
  times (:attr:`~ocplan.plan.layout_arrays.DerivedLayout.bubble_fraction`).
- ``dualpipe``: DeepSeek-V3's bidirectional pipeline (DeepSeek-AI, arXiv 2412.19437
  §3.2.1, Table 2; github.com/deepseek-ai/DualPipe, README table "Pipeline Bubbles and
  Memory Usage Comparison"). Micro-batches enter from both ends: rank ``i`` holds stage
  ``i`` for one direction and stage ``p - 1 - i`` for the other, so every rank keeps two
  stages' parameters (2x), the first rank pairs the embedding's stage with the LM head's,
  and a forward chunk of one direction overlaps a backward chunk of the other. Bubble
  ``(p/2 - 1)(F&B + B - 3W)``; activations of ``p + 1`` micro-batches; ``p`` even and
  at least ``2p`` micro-batches, an even number (``DualPipe.step``'s assertions).
- ``dualpipev``: the "cut-in-half" V-shape of DualPipe (Sea AI Lab; the DualPipe
  repository's ``DualPipeV``): ``p`` ranks hold ``2p`` stages, rank ``i`` stages ``i``
  and ``2p - 1 - i``, so parameters are 1x, the first rank again pairs the two ends, and
  the bubble is DualPipe's over ``2p`` stages of half the size. At least ``2p``
  micro-batches (``DualPipeV.step``).

``F``, ``B`` and ``W`` are one chunk's forward, full backward and weight-gradient times;
``F&B`` is a forward and a backward chunk run overlapped, which the model takes as
``F + B`` (the overlap hides communication, :class:`~ocplan.plan.plan.Plan`
``ep_overlap``, not compute).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from numpy.typing import ArrayLike

from ocplan.costmodel.roofline import FloatArray

__all__ = ["PIPELINE_SCHEDULES", "WGRAD_SHARE", "PipelineSchedule", "PpSchedule",
           "bidirectional_bubble", "schedule", "unmet"]

#: The schedule names, for the plan field's type.
PpSchedule = Literal["1f1b", "dualpipe", "dualpipev"]

#: Share of a layer's backward (without recompute) that computes weight gradients, ``W /
#: B``: each linear layer's backward is two GEMMs of its forward's size, one for the
#: input gradient and one for the weight gradient (``dX = dY W^T``, ``dW = X^T dY``). The
#: attention core has no weights, so this overstates W by its share; the DualPipe
#: README's bubble is stated in these chunk times.
WGRAD_SHARE = 0.5


@dataclass(frozen=True)
class PipelineSchedule:
    """One pipeline schedule, as the engine and the search read it."""

    name: str
    help: str
    bidirectional: bool
    """Ranks hold two stages from opposite ends of the model (DualPipe's pairing): the
    first rank holds the embedding's stage and the LM head's, so the head's cost is
    shared over the pair; the bubble is :func:`bidirectional_bubble`'s."""
    stage_share: float
    """Share of a rank's layers per pipeline rank (the plan's stage split) that one
    stage of the schedule's pipeline holds: DualPipe 1 (its ``p`` stages are the split's;
    a rank holds two of them, one per direction), DualPipeV 0.5 (``2p`` half stages);
    1 for 1F1B, whose chunks are ``vpp``'s."""
    param_copies: int
    """Copies of a rank's layers' parameters it holds (DualPipe 2: each stage lives on
    two ranks)."""
    extra_in_flight: float
    """Micro-batches of the first rank's layers' activations held beyond ``p`` (the
    README's ``PP + 1`` against 1F1B's ``PP``; DualPipeV's ``PP`` counts its ``2p`` half
    stages, so the extra one is half a rank's layers)."""
    even_stages: bool
    """``pp`` must be even (DualPipe splits the ranks into two halves)."""
    even_micro_batches: bool
    """The micro-batches must be even (half enter from each end)."""
    min_micro_batches_per_stage: int
    """At least this many micro-batches per pipeline rank (``num_chunks >= 2 x
    num_ranks``), 0 for none."""


PIPELINE_SCHEDULES: tuple[PipelineSchedule, ...] = (
    PipelineSchedule(
        "1f1b", "one forward, one backward (Megatron-LM; interleaved with vpp > 1)",
        bidirectional=False, stage_share=1.0, param_copies=1, extra_in_flight=0.0,
        even_stages=False, even_micro_batches=False, min_micro_batches_per_stage=0),
    PipelineSchedule(
        "dualpipe", "DeepSeek-V3's bidirectional DualPipe: micro-batches enter from both "
                    "ends, a rank holds two stages (2x parameters) and runs a forward of "
                    "one direction beside a backward of the other; pp even, vpp 1, at "
                    "least 2 x pp micro-batches, an even number",
        bidirectional=True, stage_share=1.0, param_copies=2, extra_in_flight=1.0,
        even_stages=True, even_micro_batches=True, min_micro_batches_per_stage=2),
    PipelineSchedule(
        "dualpipev", "DualPipeV, DualPipe cut in half (Sea AI Lab): a V-shaped "
                     "bidirectional pipeline whose ranks hold two half stages (1x "
                     "parameters); vpp 1, at least 2 x pp micro-batches",
        bidirectional=True, stage_share=0.5, param_copies=1, extra_in_flight=0.5,
        even_stages=False, even_micro_batches=False, min_micro_batches_per_stage=2),
)
_BY_NAME = {s.name: s for s in PIPELINE_SCHEDULES}
assert set(_BY_NAME) == set(get_args(PpSchedule)), "PpSchedule literal out of date"


def schedule(name: str) -> PipelineSchedule:
    """The declared schedule ``name`` (the plan validates names against the choices)."""
    return _BY_NAME[name]


def unmet(s: PipelineSchedule, pp: ArrayLike, vpp: ArrayLike, micro_batches: ArrayLike,
          places: ArrayLike) -> dict[str, np.ndarray]:
    """Where (numbers or arrays over layouts) a pipeline of ``pp`` ranks misses each
    condition ``s`` states, by condition: ``vpp`` (the schedule chunks the stages
    itself: vpp 1), ``even_pp``, ``micro_batches`` (at least
    ``min_micro_batches_per_stage x pp``), ``even_micro_batches`` and ``stages`` (the
    ``places`` of the split, :func:`~ocplan.plan.plan.split_places`, fill its ``pp /
    stage_share`` stages). Nothing is missed without a pipeline (the schedule is idle)
    or under 1F1B. The plan's check and the search's constraint both read this."""
    p, v, m = np.asarray(pp), np.asarray(vpp), np.asarray(micro_batches)
    pipe = (p > 1) & s.bidirectional
    return {"vpp": pipe & (v > 1),
            "even_pp": pipe & s.even_stages & (p % 2 == 1),
            "micro_batches": pipe & (m < s.min_micro_batches_per_stage * p),
            "even_micro_batches": pipe & s.even_micro_batches & (m % 2 == 1),
            "stages": pipe & (np.asarray(places) * s.stage_share < p)}


def bidirectional_bubble(pp: FloatArray, share: FloatArray, per_stage: FloatArray,
                         forward_s: FloatArray, backward_s: FloatArray,
                         recompute_s: FloatArray) -> FloatArray:
    """Idle time of a bidirectional schedule, in micro-batch times of a rank:
    ``(S/2 - 1)(F&B + B - 3W)`` over ``S = p / share`` stages (DualPipe README,
    "Pipeline Bubbles and Memory Usage Comparison"), each stage a ``share`` of the
    rank's ``L_s`` layers (:attr:`PipelineSchedule.stage_share`; half stages of an odd
    ``L_s`` are uneven and the schedule keeps the pace of the larger, ``ceil(share
    L_s) / L_s``).

    Per micro-batch the rank runs forward ``F_r``, backward ``B_r`` (without recompute)
    and recompute ``R_r``; a chunk is the stage's share of them, with ``F&B = F +
    B_full``, ``B_full = B + R`` and ``W = WGRAD_SHARE x B``, so in micro-batch times
    ``(S/2 - 1) x share x (F + 2 B_full - 3 W) / (F + B_full)``. Without recompute and
    with ``B = 2F``, ``W = F``, that is ``(p/2 - 1) 2/3`` for DualPipe."""
    layers = np.maximum(per_stage, 1.0)
    chunk = np.where(share < 1.0, np.ceil(share * layers) / layers, share)
    b_full = backward_s + recompute_s
    work = forward_s + 2.0 * b_full - 3.0 * WGRAD_SHARE * backward_s
    per_mb = np.maximum(forward_s + b_full, np.finfo(np.float64).tiny)
    out: FloatArray = np.maximum(pp / share / 2.0 - 1.0, 0.0) * chunk * work / per_mb
    return out
