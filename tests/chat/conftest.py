"""Chat tests import ``indexer``; tests/indexer (a directory on sys.path via tests/) must not shadow it."""

from __future__ import annotations

import sys
from pathlib import Path

_REPO = str(Path(__file__).resolve().parents[2])
if sys.path[:1] != [_REPO]:
    sys.path.insert(0, _REPO)
_mod = sys.modules.get("indexer")
if _mod is not None and getattr(_mod, "__file__", None) is None:
    for _name in [n for n in sys.modules if n == "indexer" or n.startswith("indexer.")]:
        del sys.modules[_name]
