"""Which engine serves which document: one engine per workspace root (multi-root), longest root wins.

Documents outside every root get an engine rooted at their own directory, so a lone file still completes.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from engine.service import Engine


class WorkspaceSet:
    def __init__(self, make_engine: Callable[[Path | None], Engine]) -> None:
        self._make_engine = make_engine
        self.roots: list[Path] = []
        self._engines: dict[Path, Engine] = {}
        self._lock = threading.Lock()

    def set_roots(self, roots: list[Path]) -> None:
        self.roots = [r.resolve() for r in roots]

    def add_root(self, root: Path) -> None:
        root = root.resolve()
        if root not in self.roots:
            self.roots.append(root)

    def remove_root(self, root: Path) -> None:
        root = root.resolve()
        self.roots = [r for r in self.roots if r != root]
        with self._lock:
            engine = self._engines.pop(root, None)
        if engine is not None:
            engine.close()

    def root_for(self, path: Path) -> Path:
        path = path.resolve()
        matches = [r for r in self.roots if path == r or r in path.parents]
        if matches:
            return max(matches, key=lambda r: len(r.parts))
        return path.parent

    def engine_for(self, path: Path) -> Engine:
        root = self.root_for(path)
        with self._lock:
            engine = self._engines.get(root)
            if engine is None:
                engine = self._make_engine(root)
                self._engines[root] = engine
            return engine

    def engines(self) -> list[Engine]:
        for root in self.roots:
            self.engine_for(root / ".")
        with self._lock:
            return list(self._engines.values())

    def reconfigure(self) -> None:
        """New settings: engines are rebuilt lazily with the new configuration."""
        with self._lock:
            old = list(self._engines.values())
            self._engines.clear()
        for engine in old:
            engine.close()

    def note_open(self, path: Path, text: str) -> None:
        self.engine_for(path).document_opened(path, text)

    def note_change(self, path: Path, text: str) -> None:
        self.engine_for(path).document_changed(path, text)

    def note_save(self, path: Path) -> None:
        self.engine_for(path).document_saved(path)

    def note_close(self, path: Path) -> None:
        self.engine_for(path).document_closed(path)

    def clear_caches(self) -> int:
        with self._lock:
            engines = list(self._engines.values())
        return sum(engine.clear_caches() for engine in engines)

    def status(self) -> dict[str, Any]:
        with self._lock:
            engines = dict(self._engines)
        totals: dict[str, int] = {}
        workspaces = []
        for root, engine in engines.items():
            status = engine.status()
            for key, value in status["counters"].items():
                totals[key] = totals.get(key, 0) + int(value)
            workspaces.append({"root": str(root), **status})
        model = next((w["model"] for w in workspaces if w["model"].get("path") or w["model"].get("error")), {})
        return {"version": _version(), "model": model, "counters": totals, "workspaces": workspaces,
                **{k: totals.get(k, 0) for k in ("requests", "prompt_tokens", "reused_tokens", "evaluated_tokens", "cancelled")}}


def _version() -> str:
    from engine import __version__

    return __version__
