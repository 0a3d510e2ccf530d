"""Geometry on the sphere."""
