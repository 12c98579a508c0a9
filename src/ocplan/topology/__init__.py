"""Topology graphs: scale-up builders, whole-cluster graphs, their measures and power."""
