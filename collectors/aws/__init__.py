"""The aws collector and its fact vocabulary."""
