"""Ranked files and definitions of one index: the store's rows fed to the PageRank model (indexer/ranking.py).

The model is built lazily on the first ranked query (a cold index is never held in memory) and from then
on kept in step with every changed file; its file graph is written back to the ``edges`` table on close.
"""

from __future__ import annotations

import numpy as np

from .models import Definition
from .parsed import ParsedFile, decode_refs
from .ranking import RankModel
from .state import IndexState
from .store import DEF_COLS


class Ranker:
    """The rank model of one index and the ranked queries over it."""

    def __init__(self, state: IndexState) -> None:
        self.state = state
        self._model = RankModel()
        self._edges_dirty = False

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory (and so must hear about changed files)."""
        return self._model.loaded

    def reset(self) -> None:
        """Drop the model: after a mass change, reloading it lazily is cheaper than replaying every file."""
        self._model = RankModel()

    def update(self, fid: int, parsed: ParsedFile | None) -> None:
        """A file was written (``parsed``) or deleted (None)."""
        if not self._model.loaded:
            return
        self._edges_dirty = True
        if parsed is None:
            self._model.update_file(fid, None, None)
        else:
            self._model.update_file(fid, {d[0] for d in parsed.defs}, parsed.ref_counts())

    def _ensure_model(self) -> RankModel:
        if not self._model.loaded:
            c = self.state.store.conn
            defs = c.execute("SELECT DISTINCT file_id, name FROM definitions").fetchall()
            defined = {n for _, n in defs}
            refs = [(fid, n, len(b) // 8) for fid, blob in c.execute("SELECT file_id, data FROM refs")
                    for n, b in decode_refs(blob).items() if n in defined]
            self._model.load(defs, refs)
            self._edges_dirty = True
        return self._model

    def persist_edges(self) -> None:
        """Write the file graph to the ``edges`` table if it changed; caller holds the lock."""
        if not self._edges_dirty or not self._model.loaded:
            return
        store = self.state.store
        try:
            edges = self._model.file_edges()
            c = store.conn
            c.execute("BEGIN")
            c.execute("DELETE FROM edges")
            c.executemany("INSERT INTO edges VALUES(?,?,?)", edges)
            c.execute("COMMIT")
            self._edges_dirty = False
        except Exception:
            if store.conn.in_transaction:
                store.conn.execute("ROLLBACK")

    def personalization_for(self, current: str | None = None, recent_weight: float = 0.5) -> dict[str, float]:
        pers: dict[str, float] = {}
        for i, p in enumerate(reversed(self.state.recent)):
            pers[p] = recent_weight / (1 + i)
        if current:
            pers[self.state.rel(current)] = 1.0
        return pers

    def _pers_ids(self, personalization: dict[str, float] | None) -> dict[int, float] | None:
        if not personalization:
            return None
        rel = self.state.rel
        _, ids = self.state.id_maps()
        out = {ids[rel(p)]: float(w) for p, w in personalization.items() if rel(p) in ids}
        return out or None

    def _rank_inputs(self, personalization: dict[str, float] | None
                     ) -> tuple[RankModel, dict[int, str], int, dict[int, float]]:
        """The rank model, file ids, node count and personalisation (uniform when none is given); caller holds the lock."""
        model = self._ensure_model()
        paths, _ = self.state.id_maps()
        n = (max(paths) + 1) if paths else 0
        pers = self._pers_ids(personalization)
        if pers is None:
            pers = {i: 1.0 for i in paths}
        return model, paths, n, pers

    def ranked_files(self, personalization: dict[str, float] | None = None) -> list[tuple[str, float]]:
        state = self.state
        with state.store.lock:
            key = ("rf", state.generation, tuple(sorted((personalization or {}).items())))
            hit = state.cached(key)
            if hit is not None:
                return list(hit)  # type: ignore[call-overload]
            model, paths, n, pers = self._rank_inputs(personalization)
            x = model.pagerank(n, pers)
            ids = np.fromiter(paths.keys(), dtype=np.int64, count=len(paths))
            scores = x[ids] if len(x) else np.zeros(len(ids))
            order = np.argsort(-scores, kind="stable")
            out = [(paths[int(ids[i])], float(scores[i])) for i in order]
            state.cache_put(key, out)
            return list(out)

    def ranked_definitions(self, personalization: dict[str, float] | None = None,
                           limit: int | None = None) -> list[tuple[Definition, float]]:
        state = self.state
        with state.store.lock:
            key = ("rd", state.generation, tuple(sorted((personalization or {}).items())), limit)
            hit = state.cached(key)
            if hit is not None:
                return list(hit)  # type: ignore[call-overload]
            model, paths, n, pers = self._rank_inputs(personalization)
            pairs = model.ranked_pairs(n, pers, None if limit is None else 2 * limit + 16)
            out: list[tuple[Definition, float]] = []
            c = state.store.conn
            for fid, name, score in pairs:
                path = paths.get(fid)
                if path is None:
                    continue
                for r in c.execute(f"SELECT {DEF_COLS} FROM definitions d WHERE d.file_id=? AND d.name=? "
                                   "ORDER BY d.start_byte", (fid, name)):
                    out.append((Definition(path, *r), score))
                if limit is not None and len(out) >= limit:
                    out = out[:limit]
                    break
            state.cache_put(key, out)
            return list(out)
