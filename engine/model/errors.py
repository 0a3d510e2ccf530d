"""The one error type of model resolution and pulling.

Why a module of its own: ``resolution`` (the ``model`` setting → a GGUF) and ``pypi_models`` (pulling a
GGUF out of PyPI wheels) both raise it, and ``resolution`` uses ``pypi_models``; defining it below both keeps
the import graph one-way. ``engine.model.resolution.ModelError`` stays the name callers import.
"""

from __future__ import annotations


class ModelError(RuntimeError):
    """The configured model cannot be used or pulled; the message says what to do."""
