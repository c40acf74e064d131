"""The github collector and its fact vocabulary."""
