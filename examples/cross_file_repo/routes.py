"""Route lengths for the delivery planner."""

from geo import spherical


def leg_length(start: tuple[float, float], end: tuple[float, float]) -> float:
    """Length of one leg of a route, in kilometres."""
    return spherical.
