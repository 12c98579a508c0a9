"""ocplan.cli."""
