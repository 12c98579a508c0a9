"""Defaults of the training requests (a layout search, an estimate's sensitivity) that
their clients (CLI options, API requests) show before anything runs; kept apart from
:mod:`ocplan.plan.search` and :mod:`ocplan.plan.sensitivity` so that declaring a command
does not import the engine."""

__all__ = ["DEFAULT_GLOBAL_BATCH", "DEFAULT_MEMORY_HEADROOM", "DEFAULT_SEQ_LEN",
           "MAX_SENSITIVITY_FACTOR", "MIN_SENSITIVITY_FACTOR", "SENSITIVITY_FACTOR",
           "TIE_TOLERANCE"]

#: Layouts whose score lies within this share of a better one's are one row of the
#: result, listed as its variants (the same work reshuffled: dp against cp, ...).
TIE_TOLERANCE = 0.005
#: HBM share a search keeps free unless told otherwise: the memory model counts weights,
#: states, activations and a fixed reserve, not the caching allocator's fragmentation or
#: the runtime's transient buffers, which take a few percent in practice; a layout at
#: 189.7 of 192 GB is not one to buy hardware for.
DEFAULT_MEMORY_HEADROOM = 0.05
#: Sequences per step and tokens per sequence of a training job that names none (CLI
#: flags and API requests alike): 512 x 4096 = 2 Mi tokens per step, the context and half
#: the 4 M-token global batch of Llama 2's pre-training (Touvron et al. 2023,
#: arXiv:2307.09288, Table 1 and its caption).
DEFAULT_GLOBAL_BATCH = 512
DEFAULT_SEQ_LEN = 4096
#: The factor an estimate's sensitivity scales each hardware resource by unless told
#: otherwise: "what if it were twice as fast", about one chip generation's step in peak
#: or bandwidth (:mod:`ocplan.plan.sensitivity`).
SENSITIVITY_FACTOR = 2.0
#: Bounds of that factor: a tenth to ten times; beyond them the latencies and
#: efficiencies the sensitivity holds at today's values stop meaning anything.
MIN_SENSITIVITY_FACTOR = 0.1
MAX_SENSITIVITY_FACTOR = 10.0
