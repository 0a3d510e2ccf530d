"""Repository-level context: what of the repository goes into a completion prompt, and in which order.

Selection, in priority order (each item degrades full body → signature → omitted):

1. the current buffer around the cursor (prefix favoured, a bounded suffix);
2. near the cursor: members of the receiver being typed (``obj.``/``Type::``), definitions of the names
   used around the cursor (bodies when small), the enclosing class and its bases;
3. the per-file neighbourhood: definitions of every name the current file uses (resolved through its
   imports by the index), outlines of the modules it imports, recently edited regions of open buffers;
4. the rest of the repository by graph rank (PageRank personalised to the current file and its imports):
   definition signatures first, then whole files, until the budget is full.

Layout, most stable first so that consecutive prompts share a long token prefix with the model's KV cache:
repository-wide part (global rank; depends only on the repository, cached until another file changes),
then the per-file neighbourhood, then the near-cursor part, then the current file. The current file's
prefix is cut on a coarse line grid so that typing does not move its first line.

Every chunk is redacted and counted once (by content hash); the assembled pieces are counted exactly
with the model's tokenizer (or the documented estimate) and trimmed until they fit the budget.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from .context import ContextResult, Section, split_at_cursor
from .prompt_format import Piece, PromptFormat
from .redact import redact, redact_cached
from .tokens import TokenCounter

# Lines per prefix grid cell: the current file's prefix starts on a multiple of this, so typing
# does not shift the first line of the prompt's current-file part.
PREFIX_GRID_LINES = 32
NEAR_BEFORE = 40  # lines above the cursor whose names count as "near the cursor"
NEAR_AFTER = 8
REPO_WIDE_MIN_BUDGET = 32_768  # below this every token goes to the per-file neighbourhood
REPO_WIDE_SHARE = 0.5  # of what the current file leaves, when the whole repository does not fit

_COMMENT_PREFIX = {
    "python": "#", "ruby": "#", "bash": "#", "r": "#", "perl": "#", "toml": "#", "yaml": "#",
    "lua": "--", "sql": "--", "haskell": "--",
}
_RECEIVER = re.compile(r"([A-Za-z_$][\w$]*)\s*(?:\.|::|->)\s*$")
_SELF_NAMES = {"self", "this", "cls", "Self", "super"}
_IDENT = re.compile(r"[A-Za-z_]\w*")


def _language_of(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    return {".py": "python", ".pyi": "python", ".rb": "ruby", ".sh": "bash", ".lua": "lua", ".sql": "sql",
            ".hs": "haskell", ".toml": "toml", ".yml": "yaml", ".yaml": "yaml"}.get(ext, "")


def elision_line(path: str) -> str:
    return f"{_COMMENT_PREFIX.get(_language_of(path), '//')} ...\n"


@dataclass
class Snip:
    """One selected piece of a repository file."""

    path: str
    start: int  # first line, 0-based
    end: int  # last line, inclusive
    text: str  # redacted, ends with a newline
    kind: str  # "file" | "outline" | "definition" | "signature" | "recent"
    symbol: str
    tokens: int
    layer: int  # 1 repository-wide, 2 per-file neighbourhood, 3 near the cursor


@dataclass
class _Block:
    layer: int
    path: str
    snips: list[Snip]
    text: str = ""


@dataclass
class _Candidate:
    """A selection candidate: its forms from richest to poorest (the first that fits is taken)."""

    path: str
    key: tuple  # identity for de-duplication: (path, start line)
    forms: list[Snip]


@dataclass
class _RepoWide:
    key: tuple
    snips: list[Snip]
    whole_paths: set[str]
    tokens: int


class _FileCache:
    """File texts and their line lists, keyed by path and (size, mtime) so edits on disk are seen."""

    def __init__(self, max_files: int = 50_000) -> None:
        self._data: OrderedDict[str, tuple[tuple, str, list[str]]] = OrderedDict()
        self._max = max_files

    def get(self, index: Any, root: str, path: str, overlays: dict[str, str]) -> tuple[str, list[str]] | None:
        if path in overlays:
            text = overlays[path]
            stamp: tuple = ("overlay", hash(text))
        else:
            try:
                st = os.stat(os.path.join(root, path))
                stamp = (st.st_size, st.st_mtime_ns)
            except OSError:
                stamp = ("missing",)
            text = None
        hit = self._data.get(path)
        if hit is not None and hit[0] == stamp:
            self._data.move_to_end(path)
            return hit[1], hit[2]
        if text is None:
            text = index.read_text(path)
        if text is None:
            return None
        text = redact_cached(text)
        lines = text.splitlines(keepends=True)
        self._data[path] = (stamp, text, lines)
        while len(self._data) > self._max:
            self._data.popitem(last=False)
        return text, lines


class RepoContextBuilder:
    """Repository-aware FIM context for one workspace (one instance per workspace)."""

    def __init__(self, fmt: PromptFormat, counter: TokenCounter, index_provider: Callable[[], Any],
                 repo_name: str = "", suffix_tokens: int = 512, root: str | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.fmt = fmt
        self.counter = counter
        self._index_provider = index_provider
        self.repo_name = repo_name
        self.suffix_tokens = suffix_tokens
        self.log = log or (lambda message: None)
        self._root = root
        self._files = _FileCache()
        self._overlay_seen: dict[str, int] = {}
        self._repo_wide: _RepoWide | None = None
        self._neighbourhood: OrderedDict[tuple, tuple] = OrderedDict()
        self._body_cap = 256
        self._open_buffers: OrderedDict[str, tuple[str, int]] = OrderedDict()  # path -> (text, last edit line)
        from .context import SharedPrefixTracker

        self.tracker = SharedPrefixTracker(counter)

    # -- index ----------------------------------------------------------------------------------
    def index(self) -> Any:
        try:
            return self._index_provider()
        except Exception as exc:  # the index is an optional improvement: fall back to the current file
            self.log(f"repository index unavailable: {exc}")
            return None

    def invalidate(self) -> None:
        """Forget cached selections (the repository changed in a way the caches cannot see)."""
        self._repo_wide = None
        self._neighbourhood.clear()
        self._overlay_seen.clear()

    def note_buffer(self, path: str, text: str, edit_line: int) -> None:
        """An open buffer was edited at ``edit_line``: its neighbourhood becomes recent-edit context."""
        self._open_buffers[path] = (text, edit_line)
        self._open_buffers.move_to_end(path)
        while len(self._open_buffers) > 8:
            self._open_buffers.popitem(last=False)

    def _sync_overlay(self, index: Any, path: str, text: str) -> None:
        """The request's buffer replaces the saved file in the index (an overlay) when they differ."""
        digest = hash(text)
        if self._overlay_seen.get(path) == digest:
            return
        overlays = getattr(index, "overlays", {})
        if path in overlays:
            if overlays[path] != text:
                index.set_overlay(path, text)
        else:
            try:
                with open(os.path.join(self._root or index.root, path), "rb") as f:
                    on_disk = f.read().decode("utf-8", "replace")
            except OSError:
                on_disk = None
            if on_disk != text:
                index.set_overlay(path, text)
        self._overlay_seen[path] = digest

    def _file(self, index: Any, path: str) -> tuple[str, list[str]] | None:
        root = self._root or getattr(index, "root", "")
        return self._files.get(index, root, path, getattr(index, "overlays", {}))

    # -- snippets -------------------------------------------------------------------------------
    def _snip(self, path: str, start: int, end: int, text: str, kind: str, symbol: str, layer: int) -> Snip:
        if not text.endswith("\n"):
            text += "\n"
        return Snip(path, start, end, text, kind, symbol, self.counter.count(text), layer)

    def _header_snip(self, index: Any, d: Any, layer: int, kind: str = "signature") -> Snip | None:
        got = self._file(index, d.path)
        if got is None:
            return None
        _, lines = got
        start = d.start_line
        sig = (d.signature or "").rstrip()
        n = max(1, sig.count("\n") + 1) if sig else 1
        name_line = d.name_line if getattr(d, "name_line", -1) >= 0 else start
        # decorators/attributes may precede the header: start at the line that holds the header's first line
        first = sig.split("\n", 1)[0].strip() if sig else ""
        if first:
            for ln in range(start, min(name_line, len(lines) - 1) + 1):
                if first[:40] and lines[ln].strip().startswith(first[:40]):
                    start = ln
                    break
        else:
            start = name_line
        end = min(start + n - 1, len(lines) - 1)
        if start >= len(lines) or start < 0:
            return None
        text = "".join(lines[start:end + 1])
        return self._snip(d.path, start, end, text, kind, d.name, layer)

    def _body_snip(self, index: Any, d: Any, layer: int) -> Snip | None:
        got = self._file(index, d.path)
        if got is None:
            return None
        _, lines = got
        if d.start_line >= len(lines):
            return None
        end = min(d.end_line, len(lines) - 1)
        return self._snip(d.path, d.start_line, end, "".join(lines[d.start_line:end + 1]), "definition", d.name, layer)

    def _outline_snips(self, index: Any, path: str, layer: int, parent: str | None = None) -> list[Snip]:
        out = []
        for d in index.outline(path):
            if parent is not None and d.parent != parent and d.qualified_name != parent:
                continue
            s = self._header_snip(index, d, layer, "outline")
            if s is not None:
                out.append(s)
        return out

    def _whole_file(self, index: Any, path: str, layer: int) -> Snip | None:
        got = self._file(index, path)
        if got is None:
            return None
        text, lines = got
        if not text:
            return None
        return self._snip(path, 0, max(0, len(lines) - 1), text, "file", "", layer)

    # -- current file ---------------------------------------------------------------------------
    def _suffix_cap(self, budget: int) -> int:
        return min(self.suffix_tokens, max(budget // 32, min(128, budget // 8)))

    def _prefix_cap(self, budget: int) -> int:
        return max(min(512, budget // 2), budget * 3 // 10)

    def _cut_prefix(self, prefix: str, cap: int) -> str:
        """The prefix from the earliest grid line whose tail fits ``cap`` tokens (stable while typing)."""
        if self.counter.count(prefix) <= cap:
            return prefix
        lines = prefix.splitlines(keepends=True)
        cells = [("".join(lines[i:i + PREFIX_GRID_LINES]), i) for i in range(0, len(lines), PREFIX_GRID_LINES)]
        used = 0
        start_line = len(lines)
        for cell_text, first in reversed(cells):
            cost = self.counter.count(cell_text)
            if used + cost > cap:
                break
            used += cost
            start_line = first
        if start_line >= len(lines):  # not even the cursor's cell fits: keep whole lines from the end
            kept: list[str] = []
            used = 0
            for text_line in reversed(lines):
                cost = self.counter.count(text_line)
                if used + cost > cap:
                    break
                kept.append(text_line)
                used += cost
            return "".join(reversed(kept))
        return "".join(lines[start_line:])

    def _head(self, text: str, cap: int) -> str:
        if self.counter.count(text) <= cap:
            return text
        kept: list[str] = []
        used = 0
        for text_line in text.splitlines(keepends=True):
            cost = self.counter.count(text_line)
            if used + cost > cap:
                break
            kept.append(text_line)
            used += cost
        return "".join(kept)

    # -- selection ------------------------------------------------------------------------------
    def _near_candidates(self, index: Any, path: str, text: str, line: int, prefix: str) -> list[_Candidate]:
        """Layer 3: what the cursor is about to use."""
        cands: list[_Candidate] = []
        outline = index.outline(path)
        last_line = prefix.rsplit("\n", 1)[-1]
        receiver = _RECEIVER.search(last_line)
        if receiver:
            name = receiver.group(1)
            cands.extend(self._receiver_candidates(index, path, name, line, outline))
        # definitions of the names around the cursor, nearest first
        lo, hi = max(0, line - NEAR_BEFORE), line + NEAR_AFTER
        refs = index.references_in_range(path, lo, hi)
        dist: dict[str, int] = {}
        for r in refs:
            dist[r.name] = min(dist.get(r.name, 1 << 30), abs(r.line - line))
        defs = [d for d in index.definitions_referenced_in(path, lo, hi) if not self._inside(d, path, line)]
        defs.sort(key=lambda d: dist.get(d.name, 1 << 30))
        for d in defs:
            forms = [s for s in (self._body_snip(index, d, 3), self._header_snip(index, d, 3)) if s is not None]
            if forms and forms[0].kind == "definition" and (forms[0].end - forms[0].start > 60
                                                             or forms[0].tokens > self._body_cap):
                forms = forms[1:]  # long bodies only as signatures near the cursor
            if forms:
                cands.append(_Candidate(d.path, (d.path, d.start_line), forms))
        # the enclosing class (its other members) and its bases
        enclosing = [d for d in outline if d.kind in ("class", "struct", "interface", "impl", "trait", "enum")
                     and d.start_line <= line <= d.end_line]
        for d in enclosing[-1:]:
            for s in self._outline_snips(index, path, 3, parent=d.qualified_name):
                cands.append(_Candidate(path, (path, s.start), [s]))
            for base in self._bases(d.signature):
                for bd in index.definitions(base)[:2]:
                    for s in self._outline_snips(index, bd.path, 3, parent=bd.qualified_name):
                        cands.append(_Candidate(bd.path, (bd.path, s.start), [s]))
        return cands

    @staticmethod
    def _inside(d: Any, path: str, line: int) -> bool:
        return d.path == path and d.start_line <= line <= d.end_line

    @staticmethod
    def _bases(signature: str) -> list[str]:
        m = re.search(r"\(([^)]*)\)\s*:?\s*$", signature or "") or re.search(r"\b(?:extends|implements|:)\s+(.+?)\s*\{?\s*$", signature or "")
        if not m:
            return []
        names = []
        for part in m.group(1).split(","):
            part = part.strip().split("[", 1)[0].split("<", 1)[0]
            if "=" in part or not part:
                continue
            ident = part.replace("::", ".").split(".")[-1].strip()
            if _IDENT.fullmatch(ident) and ident not in ("object", "metaclass"):
                names.append(ident)
        return names

    def _receiver_candidates(self, index: Any, path: str, name: str, line: int, outline: list) -> list[_Candidate]:
        cands: list[_Candidate] = []
        if name in _SELF_NAMES:
            classes = [d for d in outline if d.kind in ("class", "struct", "interface", "impl", "trait")
                       and d.start_line <= line <= d.end_line]
            targets = [(path, d.qualified_name, d.signature) for d in classes[-1:]]
            extra = []
            for _, _, sig in targets:
                for base in self._bases(sig):
                    extra.extend((bd.path, bd.qualified_name, bd.signature) for bd in index.definitions(base)[:2])
            targets += extra
            for p, q, _ in targets:
                for s in self._outline_snips(index, p, 3, parent=q):
                    cands.append(_Candidate(p, (p, s.start), [s]))
            return cands
        # a module imported under this name, or a type/namespace with members
        for imported in index.imports_of(path):
            stem = os.path.splitext(os.path.basename(imported))[0]
            if stem == name or (stem in ("__init__", "mod", "index") and os.path.basename(os.path.dirname(imported)) == name):
                for s in self._outline_snips(index, imported, 3):
                    cands.append(_Candidate(imported, (imported, s.start), [s]))
        type_name = "".join(part[:1].upper() + part[1:] for part in name.split("_"))  # parser_state → ParserState
        for d in index.definitions(name)[:3] + (index.definitions(type_name)[:2] if type_name != name else []):
            if d.kind in ("class", "struct", "interface", "enum", "trait", "impl", "module", "namespace", "object"):
                for s in self._outline_snips(index, d.path, 3, parent=d.qualified_name):
                    cands.append(_Candidate(d.path, (d.path, s.start), [s]))
        return cands

    def _file_candidates(self, index: Any, path: str, n_lines: int) -> tuple[list[_Candidate], list[_Candidate], list[str]]:
        """Layer 2: names used anywhere in the file, imported modules' outlines, recent edits.

        Returns (first, deferred, imported files): a name whose definitions are neither imported nor
        unique (``append``, ``get``) and the private members of imported modules are deferred until
        after the graph-ranked signatures — the outline of a module degrades to its public part.
        """
        cands: list[_Candidate] = []
        deferred: list[_Candidate] = []
        imported = [p for p in index.imports_of(path) if p != path]
        imported_set = set(imported)
        found = index.definitions_referenced_in(path, 0, n_lines)
        per_name = Counter(d.name for d in found)
        for d in found:
            if d.path == path:
                continue
            s = self._header_snip(index, d, 2)
            if s is not None:
                target = cands if (d.path in imported_set or per_name[d.name] == 1) else deferred
                target.append(_Candidate(d.path, (d.path, s.start), [s]))
        for p in imported:
            for s in self._outline_snips(index, p, 2):
                public = not s.symbol.startswith("_") or (s.symbol.startswith("__") and s.symbol.endswith("__"))
                (cands if public else deferred).append(_Candidate(p, (p, s.start), [s]))
        for other, (buf, edit_line) in reversed(self._open_buffers.items()):
            if other == path:
                continue
            lines = redact_cached(buf).splitlines(keepends=True)
            lo, hi = max(0, edit_line - 12), min(len(lines) - 1, edit_line + 12)
            if lo <= hi:
                s = self._snip(other, lo, hi, "".join(lines[lo:hi + 1]), "recent", "", 2)
                cands.append(_Candidate(other, (other, "recent"), [s]))
        return cands, deferred, imported

    def _ranked_candidates(self, index: Any, personalization: dict[str, float], limit: int, layer: int,
                           skip: str | None) -> tuple[list[_Candidate], list[str]]:
        cands = []
        for d, _score in index.ranked_definitions(personalization, limit):
            if d.path == skip:
                continue
            s = self._header_snip(index, d, layer, "outline")
            if s is not None:
                cands.append(_Candidate(d.path, (d.path, s.start), [s]))
        files = [p for p, _ in index.ranked_files(personalization) if p != skip]
        return cands, files

    # -- repository-wide layer ------------------------------------------------------------------
    def _repo_state(self, index: Any) -> tuple:
        overlays = getattr(index, "overlays", {})
        infos = tuple((f.path, f.size, f.lines) for f in index.files() if f.path not in overlays)
        return (hash(infos), len(overlays))

    def _repo_wide_layer(self, index: Any, room: int, budget: int) -> _RepoWide:
        """Layer 1: the whole repository if it fits, else a share of the room by global rank.

        Independent of the current file (whose own block is dropped at selection), so it is computed
        once per repository state and budget and keeps its tokens identical across requests and files.
        """
        key = self._repo_state(index) + (room, budget, self.counter.name)
        cached = self._repo_wide
        if cached is not None and cached.key == key:
            return cached
        snips: list[Snip] = []
        whole: set[str] = set()
        files = [p for p, _ in index.ranked_files(None)]
        total = 0
        everything: list[Snip] = []
        for p in files:
            s = self._whole_file(index, p, 1)
            if s is None:
                continue
            total += s.tokens + self._block_overhead(p) + 1
            everything.append(s)
            if total > room:
                break
        if total <= room:
            snips, whole = everything, {s.path for s in everything}
        elif budget >= REPO_WIDE_MIN_BUDGET:
            share = int(room * REPO_WIDE_SHARE)
            limit = max(64, share // 12)
            cands, ranked_files = self._ranked_candidates(index, {}, limit, 1, None)
            snips, whole, total = self._fill([], cands, ranked_files, share, index, 1, set(), set())
        tokens = sum(s.tokens for s in snips) + sum(self._block_overhead(p) for p in {s.path for s in snips})
        self._repo_wide = _RepoWide(key, snips, whole, tokens)
        return self._repo_wide

    def _block_overhead(self, path: str) -> int:
        return 1 + self.counter.count(f"{path}\n") + 2

    def _fill(self, chosen: list[Snip], cands: Iterable[_Candidate], ranked_files: Sequence[str], room: int,
              index: Any, layer: int, taken_keys: set, whole: set[str]) -> tuple[list[Snip], set[str], int]:
        """Greedy: candidates in priority order (first form that fits), then whole files by rank."""
        used = 0
        paths = {s.path for s in chosen}
        for cand in cands:
            if cand.path in whole or cand.key in taken_keys:
                continue
            overhead = 0 if cand.path in paths else self._block_overhead(cand.path)
            for form in cand.forms:
                cost = form.tokens + overhead + 2
                if used + cost <= room:
                    chosen.append(form)
                    taken_keys.add(cand.key)
                    paths.add(cand.path)
                    used += cost
                    break
        for p in ranked_files:
            if p in whole or used >= room:
                continue
            s = self._whole_file(index, p, layer)
            if s is None:
                continue
            mine = [c for c in chosen if c.path == p]
            refund = sum(c.tokens + 2 for c in mine) + (self._block_overhead(p) if mine else 0)
            cost = s.tokens + self._block_overhead(p)
            if used - refund + cost <= room:
                chosen[:] = [c for c in chosen if c.path != p]
                chosen.append(s)
                whole.add(p)
                used += cost - refund
        return chosen, whole, used

    # -- layout ---------------------------------------------------------------------------------
    def _blocks(self, snips: list[Snip]) -> list[_Block]:
        by_key: dict[tuple[int, str], list[Snip]] = {}
        for s in snips:
            by_key.setdefault((s.layer, s.path), []).append(s)
        blocks = []
        for (layer, path) in sorted(by_key):
            parts = sorted(by_key[(layer, path)], key=lambda s: (s.start, -s.end))
            merged: list[Snip] = []
            for s in parts:  # drop snippets inside an earlier one (a signature inside a chosen body)
                if merged and s.start >= merged[-1].start and s.end <= merged[-1].end and s.kind != "recent":
                    continue
                merged.append(s)
            out: list[str] = []
            prev_end = -1
            for s in merged:
                if out and s.start > prev_end + 1:
                    out.append(elision_line(path))
                out.append(s.text)
                prev_end = max(prev_end, s.end)
            blocks.append(_Block(layer, path, merged, "".join(out)))
        return blocks

    # -- build ----------------------------------------------------------------------------------
    def build(self, path: str, text: str, line: int, character: int, budget: int) -> ContextResult:
        start_t = time.perf_counter()
        prefix, suffix = split_at_cursor(text, line, character)
        prefix, suffix = redact(prefix), redact(suffix)
        fmt, counter = self.fmt, self.counter
        head = fmt.repo_header(self.repo_name) if self.repo_name else []
        cur_header = fmt.current_file_header(path)
        fixed = counter.count_pieces(head) + counter.count_pieces(cur_header) + counter.count_pieces(fmt.infill("", ""))
        if fixed > budget:
            raise ValueError(f"budget {budget} is smaller than the prompt format's fixed {fixed} tokens")
        suffix = self._head(suffix, min(self._suffix_cap(budget), (budget - fixed) // 4)) if fmt.fim else ""
        prefix = self._cut_prefix(prefix, min(self._prefix_cap(budget), budget - fixed - counter.count(suffix)))
        current_cost = counter.count(prefix) + counter.count(suffix)
        room = budget - fixed - self._reserve(budget, current_cost)
        self._body_cap = max(48, budget // 64)

        index = self.index() if room > 0 else None
        snips: list[Snip] = []
        if index is not None:
            try:
                self._sync_overlay(index, path, text)
                visible = (line - prefix.count("\n"), line + suffix.count("\n"))
                snips = self._select(index, path, text, line, prefix, room, budget, fixed, visible)
            except Exception as exc:  # never fail a completion because of the repository part
                self.log(f"repository context failed: {type(exc).__name__}: {exc}")
                snips = []
        return self._assemble(path, snips, head, cur_header, prefix, suffix, budget, start_t)

    @staticmethod
    def _reserve(budget: int, current_cost: int) -> int:
        """Room kept for the current file, rounded up so small edits keep the rest of the layout stable."""
        quantum = max(32, budget // 64)
        return -(-current_cost // quantum) * quantum

    def _select(self, index: Any, path: str, text: str, line: int, prefix: str, room: int, budget: int,
                fixed: int, visible: tuple[int, int] = (0, -1)) -> list[Snip]:
        rel = index.rel(path) if hasattr(index, "rel") else path
        stable_room = budget - fixed - self._reserve(budget, self._prefix_cap(budget) + self._suffix_cap(budget))
        repo = self._repo_wide_layer(index, stable_room, budget)
        repo_snips = [s for s in repo.snips if s.path != rel]
        taken = {(s.path, s.start) for s in repo_snips}
        whole = set(repo.whole_paths) - {rel}
        left = room - repo.tokens + sum(s.tokens for s in repo.snips if s.path == rel)
        chosen: list[Snip] = []
        if left > 0:
            near = self._near_candidates(index, rel, text, line, prefix)
            # the per-file neighbourhood depends on the file, not on the keystroke: computed on the first
            # request in a file and kept while the rest of the repository is unchanged (stable and fast)
            limit = max(32, left // 10)
            nkey = (rel, limit, self._repo_state(index)[0])
            cached = self._neighbourhood.get(nkey)
            if cached is None:
                file_cands, deferred, imported = self._file_candidates(index, rel, text.count("\n") + 1)
                personalization = {rel: 1.0}
                for p in imported:
                    personalization.setdefault(p, 0.5)
                ranked, ranked_files = self._ranked_candidates(index, personalization, limit, 2, rel)
                cached = (file_cands, deferred, ranked, ranked_files)
                self._neighbourhood[nkey] = cached
                while len(self._neighbourhood) > 16:
                    self._neighbourhood.popitem(last=False)
            file_cands, deferred, ranked, ranked_files = cached
            # the current file's own definitions only where the prompt does not show them already
            cands = [c for c in near + file_cands + ranked + deferred
                     if c.path != rel or not any(visible[0] <= f.start <= visible[1] for f in c.forms)]
            chosen, whole, _ = self._fill(chosen, cands, ranked_files, left, index, 2, taken, whole)
        return repo_snips + chosen

    def _assemble(self, path: str, snips: list[Snip], head: list[Piece], cur_header: list[Piece], prefix: str,
                  suffix: str, budget: int, start_t: float) -> ContextResult:
        fmt, counter = self.fmt, self.counter
        # whole files in an earlier layer supersede later snippets of the same file
        whole = {s.path for s in snips if s.kind == "file"}
        snips = [s for s in snips if s.kind == "file" or s.path not in whole]
        priority = list(snips)  # selection order: drop from the end when over budget
        while True:
            blocks = self._blocks(snips)
            pieces: list[Piece] = list(head)
            spans: list[tuple[_Block, int, int]] = []
            for b in blocks:
                block_pieces = fmt.file_block(b.path, b.text)
                spans.append((b, len(pieces), len(pieces) + len(block_pieces)))
                pieces.extend(block_pieces)
            tail = cur_header + fmt.infill(prefix, suffix)
            pieces.extend(tail)
            pieces = [p for p in pieces if p != ""]
            total = counter.count_pieces(pieces)
            if total <= budget or not priority:
                break
            excess = total - budget
            while excess > 0 and priority:  # drop lowest-priority snippets worth the excess
                s = priority.pop()
                excess -= s.tokens
            keep = set(map(id, priority))
            snips = [s for s in snips if id(s) in keep]
        sections = self._sections(head, blocks, cur_header, prefix, suffix, path)
        ids = counter.pieces_to_ids(pieces) if counter.exact else None
        shared = self.tracker.update(pieces, ids)
        elapsed = round((time.perf_counter() - start_t) * 1000, 3)
        return ContextResult(pieces, fmt.render(pieces), total, budget, counter.name, shared, sections, elapsed,
                             prefix, suffix)

    def _sections(self, head: list[Piece], blocks: list[_Block], cur_header: list[Piece], prefix: str, suffix: str,
                  path: str) -> list[Section]:
        counter = self.counter
        sections: list[Section] = []
        if head:
            sections.append(Section("repo_header", "", self.repo_name, counter.count_pieces(head)))
        layer_names = {1: "repo", 2: "neighbourhood", 3: "near_cursor"}
        for b in blocks:
            block_tokens = counter.count_pieces([p for p in self.fmt.file_block(b.path, b.text) if p != ""])
            groups: list[Section] = []
            for s in b.snips:
                kind = s.kind
                if kind in ("outline",) and groups and groups[-1].kind == "outline":
                    groups[-1].tokens += s.tokens
                    continue
                groups.append(Section(kind, b.path, s.symbol, s.tokens))
            groups[0].tokens += block_tokens - sum(g.tokens for g in groups)  # separators, path line, elisions
            for g in groups:
                g.layer = layer_names[b.layer]  # type: ignore[attr-defined]
            sections.extend(groups)
        sections.append(Section("file_header", path, "", counter.count_pieces(cur_header)))
        sections.append(Section("current_prefix", path, "", counter.count(prefix)))
        infill_overhead = counter.count_pieces(self.fmt.infill("", ""))
        sections.append(Section("current_suffix", path, "", counter.count(suffix) + infill_overhead))
        return sections

    # -- chat -----------------------------------------------------------------------------------
    def chat_context(self, budget: int, path: str | None = None, text: str | None = None, line: int = 0) -> str:
        """Repository context for a chat prompt, as plain text within ``budget`` tokens.

        With a current file, the same neighbourhood selection as completions (without the FIM part);
        without one, the repository by global rank. Files are rendered as ``File: path`` + fenced code.
        """
        index = self.index()
        if index is None or budget <= 0:
            return ""
        snips: list[Snip] = []
        if path is not None:
            rel = index.rel(path) if hasattr(index, "rel") else path
            if text is not None:
                self._sync_overlay(index, rel, text)
            got = self._file(index, rel)
            buf = text if text is not None else (got[0] if got else "")
            prefix = "".join(buf.splitlines(keepends=True)[:line])
            near = self._near_candidates(index, rel, buf, line, prefix)
            file_cands, deferred, imported = self._file_candidates(index, rel, buf.count("\n") + 1)
            pers = {rel: 1.0, **{p: 0.5 for p in imported}}
            ranked, files = self._ranked_candidates(index, pers, max(32, budget // 10), 2, None)
            whole_current = self._whole_file(index, rel, 3)
            first = [_Candidate(rel, (rel, "current"), [whole_current])] if whole_current else []
            snips, _, _ = self._fill([], first + near + file_cands + ranked + deferred, files, int(budget * 0.9), index, 2, set(), set())
        else:
            ranked, files = self._ranked_candidates(index, {}, max(32, budget // 10), 2, None)
            snips, _, _ = self._fill([], ranked, files, int(budget * 0.9), index, 2, set(), set())
        whole = {s.path for s in snips if s.kind == "file"}
        snips = [s for s in snips if s.kind == "file" or s.path not in whole]
        while True:
            out = []
            for b in self._blocks(snips):
                out.append(f"File: {b.path}\n```\n{b.text}```\n")
            rendered = "\n".join(out)
            if self.counter.count(rendered) <= budget or not snips:
                return rendered
            snips = snips[:-max(1, len(snips) // 20)]
