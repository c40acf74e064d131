"""The prometheus collector and its fact vocabulary."""
