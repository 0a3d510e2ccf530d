"""Which engine serves which document, all on one model.

Each workspace root has its own ``Engine`` (index, context, buffers); all of them share one ``ModelHost``
(one model load, one inference worker), as README promises. A document under several roots belongs to
the deepest. A document under none (library source opened by go-to-definition, a scratch file) is
served by the nearest workspace's engine: it completes with its own buffer plus that workspace's
context, and its directory is never indexed. With no roots at all, one engine without an index serves
every document.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import Any, Callable

from engine import __version__
from engine.model_host import ModelHost
from engine.service import Engine

MakeEngine = Callable[[Path | None, ModelHost], Engine]


@functools.lru_cache(maxsize=4096)
def _root_serving(path: str, roots: tuple[Path, ...]) -> Path | None:
    """``WorkspaceSet.root_for``, memoised per path and set of roots: every keystroke asks, and resolving
    symlinks costs a system call per path component."""
    resolved = Path(path).resolve()
    inside = [r for r in roots if resolved == r or r in resolved.parents]
    if inside:
        return max(inside, key=lambda r: len(r.parts))
    if not roots:
        return None

    def shared(root: Path) -> int:
        return len(Path(os.path.commonpath([root, resolved])).parts)

    best = max(shared(r) for r in roots)
    return next(r for r in roots if shared(r) == best)


class WorkspaceSet:
    def __init__(self, make_engine: MakeEngine, make_host: Callable[[], ModelHost]) -> None:
        self._make_engine = make_engine
        self._make_host = make_host
        self.roots: list[Path] = []
        self._engines: dict[Path | None, Engine] = {}
        self._host: ModelHost | None = None
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

    @property
    def host(self) -> ModelHost:
        """The process's one model (created on first use, with the primary root's model settings)."""
        with self._lock:
            if self._host is None:
                self._host = self._make_host()
            return self._host

    def root_for(self, path: Path) -> Path | None:
        """The workspace root that serves ``path``: the deepest root holding it, else the nearest root
        (longest common leading path; the first root on a tie), else None (no roots)."""
        return _root_serving(str(path), tuple(self.roots))

    def engine_for(self, path: Path) -> Engine:
        root = self.root_for(path)
        host = self.host
        with self._lock:
            engine = self._engines.get(root)
            if engine is None:
                engine = self._make_engine(root, host)
                self._engines[root] = engine
            return engine

    def engines(self) -> list[Engine]:
        for root in self.roots:
            self.engine_for(root / ".")
        with self._lock:
            return list(self._engines.values())

    def reconfigure(self) -> None:
        """New settings: engines and the model are rebuilt lazily with the new configuration."""
        with self._lock:
            old = list(self._engines.values())
            self._engines.clear()
            host, self._host = self._host, None
        for engine in old:
            engine.close()
        if host is not None:
            host.close()

    def close(self) -> None:
        """Shutdown: every engine, then the model (its worker stops; the KV snapshot is written)."""
        self.reconfigure()

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
            host = self._host
        workspaces = [{"root": str(root) if root is not None else None, **engine.status()}
                      for root, engine in engines.items()]
        counters = host.counters.to_json() if host is not None else {}
        model = host.model_info() if host is not None else {}
        indexing = [w["index"] for w in workspaces if w["index"].get("state") in ("building", "updating")]
        latency = host.speed.to_json() if host is not None else {}
        return {"version": __version__, "model": model, "counters": counters, "workspaces": workspaces,
                "indexing": bool(indexing), "latency": latency,
                **{k: counters.get(k, 0) for k in ("requests", "prompt_tokens", "reused_tokens", "evaluated_tokens",
                                                   "cancelled")}}

