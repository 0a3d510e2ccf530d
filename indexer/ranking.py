"""Rank files and definitions by how the repository uses them (Aider's repo-map idea).

Graph: an edge referencer-file -> definer-file for every identifier defined in
one and used in the other, weighted by ``mul(ident) * sqrt(uses)`` where
``mul`` rewards specific names (long snake/camel case x10) and discounts
private names (x0.1) and names defined in many files (x0.1).  PageRank with a
personalisation vector (current file, recently edited files) ranks files; each
file's rank is then split over its out-edges to rank (file, identifier) pairs.

Per-identifier edge lists are kept in memory and only the identifiers touched
by a changed file are recomputed; PageRank itself is a few numpy passes and is
cached per (graph generation, personalisation).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Iterable

import numpy as np

MAX_PAIRS_PER_IDENT = 4000  # 'get', '__init__': defined/used everywhere, no signal, quadratic cost


def ident_multiplier(name: str, n_definers: int) -> float:
    mul = 1.0
    is_snake = "_" in name.strip("_") and any(c.isalpha() for c in name)
    is_camel = any(c.isupper() for c in name) and any(c.islower() for c in name)
    if (is_snake or is_camel) and len(name) >= 8:
        mul *= 10.0
    if name.startswith("_"):
        mul *= 0.1
    if n_definers > 5:
        mul *= 0.1
    return mul


class RankModel:
    """In-memory reference graph, updated per file."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.file_defs: dict[int, set[str]] = {}
        self.file_refs: dict[int, dict[str, int]] = {}
        self.definers: dict[str, set[int]] = {}
        self.referencers: dict[str, dict[int, int]] = {}
        self.ident_edges: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.dirty_idents: set[str] = set()
        self.generation = 0
        self._arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]] | None = None
        self._file_graph: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # aggregated (src, dst, w)
        self._cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.loaded = False

    # ---- maintenance
    def load(self, defs: Iterable[tuple[int, str]], refs: Iterable[tuple[int, str, int]]) -> None:
        with self.lock:
            self.__init__()  # type: ignore[misc]
            for fid, name in defs:
                self.file_defs.setdefault(fid, set()).add(name)
                self.definers.setdefault(name, set()).add(fid)
            for fid, name, cnt in refs:
                self.file_refs.setdefault(fid, {})[name] = cnt
                self.referencers.setdefault(name, {})[fid] = cnt
            self.dirty_idents = set(self.definers)
            self.loaded = True
            self.generation += 1

    def update_file(self, fid: int, def_names: set[str] | None, refs: dict[str, int] | None) -> None:
        """Replace one file's contribution (None/None removes the file)."""
        with self.lock:
            if not self.loaded:
                return
            old_defs = self.file_defs.pop(fid, set())
            old_refs = self.file_refs.pop(fid, {})
            for n in old_defs:
                s = self.definers.get(n)
                if s is not None:
                    s.discard(fid)
                    if not s:
                        del self.definers[n]
            for n in old_refs:
                r = self.referencers.get(n)
                if r is not None:
                    r.pop(fid, None)
                    if not r:
                        del self.referencers[n]
            new_defs = def_names or set()
            new_refs = refs or {}
            if new_defs:
                self.file_defs[fid] = set(new_defs)
                for n in new_defs:
                    self.definers.setdefault(n, set()).add(fid)
            if new_refs:
                self.file_refs[fid] = dict(new_refs)
                for n, c in new_refs.items():
                    self.referencers.setdefault(n, {})[fid] = c
            touched = (old_defs ^ new_defs) | {n for n in set(old_refs) | set(new_refs)
                                                if old_refs.get(n) != new_refs.get(n)}
            touched = {n for n in touched if n in self.definers or n in self.ident_edges}
            if touched:
                self.dirty_idents |= touched
                self.generation += 1

    def _edges_for(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        definers = self.definers.get(name)
        if not definers:
            return None
        refs = self.referencers.get(name)
        if not refs:
            # Aider: defined but unused names still give the file a small self weight
            d = np.fromiter(definers, dtype=np.int64)
            return d, d.copy(), np.full(len(d), 0.1)
        if len(refs) * len(definers) > MAX_PAIRS_PER_IDENT:
            return None
        mul = ident_multiplier(name, len(definers))
        src: list[int] = []
        dst: list[int] = []
        w: list[float] = []
        for r, cnt in refs.items():
            ww = mul * math.sqrt(cnt)
            for d in definers:
                src.append(r)
                dst.append(d)
                w.append(ww)
        return np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64), np.array(w)

    def _ensure_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
        if self.dirty_idents or self._arrays is None:
            for n in self.dirty_idents:
                e = self._edges_for(n)
                if e is None:
                    self.ident_edges.pop(n, None)
                else:
                    self.ident_edges[n] = e
            self.dirty_idents = set()
            names = sorted(self.ident_edges)  # sorted, not set order: ties rank the same in every process
            if names:
                parts = [self.ident_edges[n] for n in names]
                src = np.concatenate([p[0] for p in parts])
                dst = np.concatenate([p[1] for p in parts])
                w = np.concatenate([p[2] for p in parts])
                ident = np.repeat(np.arange(len(names)), [len(p[0]) for p in parts])
            else:
                src = dst = ident = np.zeros(0, dtype=np.int64)
                w = np.zeros(0)
            self._arrays = (src, dst, w, ident, names)
            # PageRank runs on file-level edges (many identifiers collapse into one edge)
            if len(src):
                n = int(max(src.max(), dst.max())) + 1
                key = src * n + dst
                uniq, inv = np.unique(key, return_inverse=True)
                self._file_graph = (uniq // n, uniq % n, np.bincount(inv, weights=w))
            else:
                self._file_graph = (src, dst, w)
            self._cache.clear()
        return self._arrays

    # ---- queries
    def pagerank(self, n_nodes: int, personalization: dict[int, float] | None,
                 alpha: float = 0.85, tol: float = 1e-8, max_iter: int = 100) -> np.ndarray:
        """File ranks indexed by file id (ids must be < n_nodes), cached per personalisation."""
        with self.lock:
            self._ensure_arrays()
            assert self._file_graph is not None
            src, dst, w = self._file_graph
            key = (n_nodes, tuple(sorted((personalization or {}).items())))
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit  # type: ignore[return-value]
            n = max(n_nodes, int(src.max()) + 1 if len(src) else 0, int(dst.max()) + 1 if len(dst) else 0)
            p = np.zeros(n)
            if personalization:
                for k, v in personalization.items():
                    if 0 <= k < n and v > 0:
                        p[k] = v
            if p.sum() <= 0:
                p[:] = 1.0
            p /= p.sum()
            outw = np.bincount(src, weights=w, minlength=n) if len(src) else np.zeros(n)
            dangling = outw == 0
            with np.errstate(divide="ignore", invalid="ignore"):
                norm_w = w / outw[src] if len(src) else w
            x = p.copy()
            for _ in range(max_iter):
                prev = x
                spread = np.bincount(dst, weights=prev[src] * norm_w, minlength=n) if len(src) else np.zeros(n)
                x = alpha * (spread + prev[dangling].sum() * p) + (1 - alpha) * p
                if np.abs(x - prev).sum() < n * tol:
                    break
            res = x
            self._cache[key] = res
            if len(self._cache) > 32:
                self._cache.popitem(last=False)
            return res

    def ranked_pairs(self, n_nodes: int, personalization: dict[int, float] | None,
                     limit: int | None = None) -> list[tuple[int, str, float]]:
        """(definer file id, identifier, score), best first: each identifier edge carries its
        share of its source file's rank (Aider's scheme); at most ``limit`` pairs."""
        with self.lock:
            x = self.pagerank(n_nodes, personalization)
            src, dst, w, ident, names = self._ensure_arrays()
            if not len(dst):
                return []
            outw = np.bincount(src, weights=w, minlength=len(x))
            share = x[src] * w / outw[src]
            nn = len(names)
            key = dst * nn + ident
            uniq, inv = np.unique(key, return_inverse=True)
            scores = np.bincount(inv, weights=share)
            if limit is not None and limit < len(scores):
                top = np.argpartition(-scores, limit)[:limit]
                order = top[np.argsort(-scores[top], kind="stable")]
            else:
                order = np.argsort(-scores, kind="stable")
            return [(int(uniq[i] // nn), names[int(uniq[i] % nn)], float(scores[i])) for i in order]

    def file_edges(self) -> list[tuple[int, int, float]]:
        """Aggregated (src, dst, weight) for persisting in the edges table."""
        with self.lock:
            self._ensure_arrays()
            assert self._file_graph is not None
            src, dst, w = self._file_graph
            return [(int(a), int(b), float(c)) for a, b, c in zip(src, dst, w)]
