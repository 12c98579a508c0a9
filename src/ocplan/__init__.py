"""ocplan."""
