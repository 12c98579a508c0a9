"""Defaults of a layout search that its clients (CLI options, API requests) show before
any search runs; kept apart from :mod:`ocplan.plan.search` so that declaring a command
does not import the engine."""

__all__ = ["DEFAULT_MEMORY_HEADROOM", "TIE_TOLERANCE"]

#: Layouts whose score lies within this share of a better one's are one row of the
#: result, listed as its variants (the same work reshuffled: dp against cp, ...).
TIE_TOLERANCE = 0.005
#: HBM share a search keeps free unless told otherwise: the memory model counts weights,
#: states, activations and a fixed reserve, not the caching allocator's fragmentation or
#: the runtime's transient buffers, which take a few percent in practice; a layout at
#: 189.7 of 192 GB is not one to buy hardware for.
DEFAULT_MEMORY_HEADROOM = 0.05
