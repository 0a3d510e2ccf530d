"""Repository-level context: what of the repository goes into a completion (or chat) prompt, and in which
order. The entry points: ``build`` (a completion prompt), ``chat_context``, ``prepare_file``, ``warm``.

Selection, in priority order (each item degrades full body → signature → omitted): the current buffer
around the cursor (``current_file``); near the cursor (``near_cursor``, ``receivers``, ``similar``); the per-file
neighbourhood, then the rest of the repository by global rank at large budgets (``neighbourhood``). Each
layer is filled greedily (``fill``) and laid out most stable first (``layout``), so that consecutive
prompts share a long token prefix with the model's KV cache. What the near-cursor part selects is shown
next to the current file even when a stable layer already shows it, if that is more than
``neighbourhood.REPEAT_DISTANCE`` tokens before the near-cursor part (large budgets): the small model uses
what is close to the cursor.

Every per-request value (the budget, the file, the cursor) is an argument; what survives between
requests is in the ``ContextCache`` the entry points receive, and the workspace's fixed inputs in its
``Workspace``. Neither is thread-safe: callers serialise requests (the engine holds one lock).

Speed: nothing is re-parsed or re-ranked per keystroke. ``prepare_file`` (the server calls it through
``Engine.prepare_document`` when a document opens) computes the per-file part off the keystroke path, so
the first request in a file only does the near-cursor part; that part and the repository-wide part are
kept while the repository is unchanged. While the cursor stays on one line, the near-cursor part keeps
what the previous request chose, in place, and adds after it. The index is read as the repository state
(the editor integration keeps open buffers as index overlays; a buffer this builder saw edited is synced
into its overlay when completion moves to another file: see ``buffers``). Index answers are memoised
per index generation; file texts are redacted and counted once (by content hash), header snippets once
per text.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from engine.context import cache_sizes
from engine.context.buffers import leave_file, sync_overlay
from engine.context.current_file import current_part, file_reserve, full_reserve, reserve
from engine.context.fill import fill
from engine.context.files import FileCache
from engine.context.import_lists import list_name_rule
from engine.context.index_view import IndexMemo, RepoIndex, memo_for
from engine.context.layout import assemble, chat_text
from engine.context.module_attributes import attribute_name_rule
from engine.context.near_cursor import near_candidates
from engine.context.neighbourhood import (FileLayer, RepoWide, file_candidates, file_layer, ranked_candidates,
                                          repo_wide_layer)
from engine.context.redact import cache_limit, cached_chars, kind_for, reserve_cache
from engine.context.result import ContextResult, SharedPrefixTracker, cursor_indentation, split_at_cursor
from engine.context.similar import cut_windows
from engine.context.snippets import Candidate, HeaderCache, Repo, Snip, WindowCache, whole_file
from engine.model.prompt_format import Piece, PromptFormat
from engine.model.tokens import TokenCounter
from engine.text_position import to_lf

PATH_ALLOWANCE = 64  # tokens kept for the current file's path line, so the repository-wide part's room
# (and so its content) does not depend on which file is current
FILE_LAYERS_KEPT = 32  # per-file layers kept (files recently completed in)


@dataclass(frozen=True)
class Workspace:
    """One workspace's fixed inputs to context building."""

    fmt: PromptFormat
    counter: TokenCounter
    index: Callable[[], RepoIndex | None]  # the repository index; None (or raising): the current file only
    repo_name: str = ""
    suffix_tokens: int = 512
    root: str | None = None  # where repository files are read (default: the index's root)
    log: Callable[[str], None] = lambda message: None
    # whether the editor still has a document open (by index path): a buffer it closed is not synced back
    is_open: Callable[[str], bool] = lambda path: True


class ContextCache:
    """What survives between requests of one workspace (one per ``Workspace``: token counts are its
    counter's): memoised index answers, file texts, header snippets, the layers that do not depend on
    the cursor, the previous request's near-cursor selection and buffer, the shared-prefix tracker."""

    def __init__(self, counter: TokenCounter) -> None:
        self.counter = counter
        self.files = FileCache()
        self.headers: HeaderCache = {}
        self.windows = WindowCache()  # files' similarity windows and the last search (``similar``)
        self.memo: IndexMemo | None = None
        self.disk_info: dict[str, tuple] = {}  # path -> (size, lines, hash) last seen on disk (see ``memo_for``)
        self.repo_wide: RepoWide | None = None
        self.file_layers: OrderedDict[tuple, FileLayer] = OrderedDict()
        self.sticky: tuple[tuple, list[Snip]] | None = None  # (rel, line, budget, layer) → near selection
        self.last_buffer: tuple[str, str] | None = None  # (path, text) of the latest request
        self.tracker = SharedPrefixTracker(counter)

    def size_for(self, budget: int) -> None:
        """Let the token-id and redaction caches hold prompts of ``budget`` tokens (``cache_sizes``)."""
        self.counter.reserve(cache_sizes.token_cache_tokens(budget))
        reserve_cache(cache_sizes.redaction_cache_chars(budget))

    def stats(self) -> dict[str, int]:
        """How full the bounded caches are (``coderflash/status``): a long session's memory should level off
        as they reach their bounds, and this says whether they have."""
        return {"files": len(self.files), "file_chars": self.files.chars, "headers": len(self.headers),
                "file_layers": len(self.file_layers), "windows": self.windows.held,
                "token_ids": self.counter.held_tokens,
                "token_ids_max": self.counter.max_cached_tokens, "redacted_chars": cached_chars(),
                "redacted_chars_max": cache_limit()}

    def invalidate(self) -> None:
        """Forget cached selections (the repository changed in a way the caches cannot see)."""
        self.repo_wide = None
        self.file_layers.clear()
        self.memo = None


def _index(ws: Workspace) -> RepoIndex | None:
    try:
        return ws.index()
    except Exception as exc:  # the index is an optional improvement: fall back to the current file
        ws.log(f"repository index unavailable: {exc}")
        return None


def repo_view(ws: Workspace, cache: ContextCache, index: RepoIndex) -> Repo:
    """How a request reads the repository: ``index``'s answers memoised for its current generation (the
    cache's memo, replaced when the generation changed) and the cache's file texts and headers."""
    cache.memo = memo_for(index, cache.memo, cache.disk_info)
    return Repo(cache.memo, cache.files, cache.headers, ws.counter, ws.root or index.root, cache.windows)


def _fixed_tokens(ws: Workspace, head: list[Piece], path: str) -> int:
    """What the prompt format's fixed pieces cost: the repository header, the current file's header, the
    empty infill."""
    counter = ws.counter
    return (counter.count_pieces(head) + counter.count_pieces(ws.fmt.current_file_header(path))
            + counter.count_pieces(ws.fmt.infill("", "")))


def _head(ws: Workspace) -> list[Piece]:
    return ws.fmt.repo_header(ws.repo_name) if ws.repo_name else []


def _file_layer(ws: Workspace, cache: ContextCache, repo: Repo, rel: str, n_lines: int, budget: int,
                max_room: int, head: list[Piece]) -> FileLayer:
    """The repository-wide part and the per-file neighbourhood for ``rel``: computed on the first
    request in the file, kept while the repository is unchanged (cheap and byte-identical)."""
    counter = ws.counter
    key = (rel, budget, max_room, repo.memo.repo_key, hash(repo.memo.index.overlays.get(rel)), counter.name)
    hit = cache.file_layers.get(key)
    if hit is not None:
        cache.file_layers.move_to_end(key)
        return hit
    repo_room = budget - counter.count_pieces(head) - counter.count_pieces(ws.fmt.infill("", "")) \
        - PATH_ALLOWANCE - full_reserve(budget, ws.suffix_tokens)
    room = min(max_room, repo_room)
    wide_key = (repo.memo.repo_key, room, budget, counter.name)
    if cache.repo_wide is None or cache.repo_wide.key != wide_key:
        cache.repo_wide = repo_wide_layer(repo, wide_key, room, budget)
    layer = file_layer(ws.fmt, ws.repo_name, repo, rel, n_lines, budget, max_room, head, cache.repo_wide)
    cache.file_layers[key] = layer
    while len(cache.file_layers) > FILE_LAYERS_KEPT:
        cache.file_layers.popitem(last=False)
    return layer


def _near_fill(cache: ContextCache, repo: Repo, rel: str, line: int, budget: int, layer: FileLayer,
               cands: list[Candidate], left: int) -> list[Snip]:
    """The near-cursor selection. While the cursor stays on one line, what the previous request chose
    comes first, unchanged and in its place (what typing adds goes after it, as a later block), so
    typing an identifier (``obj.`` → ``obj.meth(``) does not reshuffle the prompt before the current
    file and the model's KV cache keeps it."""
    key = (rel, line, budget, id(layer))
    prev = cache.sticky[1] if cache.sticky is not None and cache.sticky[0] == key else []
    # what the stable layers show far from the cursor may be repeated here
    taken = set(layer.taken) - layer.far
    whole = set(layer.whole) - layer.far_whole
    near: list[Snip] = []
    used = 0
    if prev:
        first = [Candidate(s.path, (s.path, s.start), [s]) for s in prev]
        near, _, used = fill(repo, first, [], left, 3, taken, whole, layer.partial, keep_layer=True)
    later = max((s.layer for s in near), default=2) + 1 if prev else 3
    no_whole = set(layer.partial) | layer.far_whole | {s.path for s in near}
    more, _, _ = fill(repo, cands + layer.rest, layer.ranked_files, left - used, later, taken, whole, no_whole)
    near = near + more
    cache.sticky = (key, near)
    return near


def build(ws: Workspace, cache: ContextCache, path: str, text: str, line: int, character: int,
          budget: int, suffix_tokens: int | None = None) -> ContextResult:
    """The completion prompt for the cursor at (``line``, ``character``) of ``text`` (the buffer of
    ``path``), within ``budget`` tokens. Raises ValueError when the format's fixed pieces do not fit.
    ``suffix_tokens``: this request's suffix cap (a first-token target's), else the workspace's."""
    start_t = time.perf_counter()
    cache.size_for(budget)
    fmt, counter = ws.fmt, ws.counter
    head = _head(ws)
    cur_header = fmt.current_file_header(path)
    fixed = _fixed_tokens(ws, head, path)
    if fixed > budget:
        raise ValueError(f"budget {budget} is smaller than the prompt format's fixed {fixed} tokens")
    cells, suffix, offset = current_part(counter, fmt.fim, min(ws.suffix_tokens, suffix_tokens or ws.suffix_tokens),
                                         text, line, character, budget, fixed,
                                         kind_for(path))
    indent = cursor_indentation(cells[-1]) if cells else ""
    if indent:  # the prompt ends at the line break: see ``ContextResult.indent``
        cells[-1] = cells[-1][:-len(indent)]
    prefix = "".join(cells)
    current_cost = sum(counter.count(c) for c in cells) + counter.count(suffix)
    max_room = budget - fixed - file_reserve(budget, ws.suffix_tokens, len(text), current_cost)
    room = budget - fixed - reserve(budget, current_cost)

    index = _index(ws) if room > 0 else None
    layer: FileLayer | None = None
    near: list[Snip] = []
    name_rule = None
    if index is not None:
        try:
            rel = index.rel(path)
            last, cache.last_buffer = cache.last_buffer, (rel, text)
            leave_file(index, last, rel, ws.log, ws.is_open)
            repo = repo_view(ws, cache, index)
            name_rule = list_name_rule(repo, rel, text, offset) or attribute_name_rule(repo, rel, text, offset)
            layer = _file_layer(ws, cache, repo, rel, text.count("\n") + 1, budget, max(0, max_room), head)
            visible = (line - prefix.count("\n"), line + suffix.count("\n"))
            left = room - (layer.stable.tokens - counter.count_pieces(head))
            if left > 0:
                cands = near_candidates(repo, rel, text, offset, line, character, layer.outline, layer.imported,
                                        visible, budget, layer.ranked_files)
                near = _near_fill(cache, repo, rel, line, budget, layer, cands, left)
        except Exception as exc:  # never fail a completion because of the repository part
            ws.log(f"repository context failed: {type(exc).__name__}: {exc}")
            layer, near = None, []
    # whole files in an earlier layer supersede later snippets of the same file, unless far from the cursor
    whole = {s.path for s in (layer.repo_snips + layer.snips if layer else []) if s.kind == "file"}
    whole = (whole - (layer.far_whole if layer else set())) | {s.path for s in near if s.kind == "file"}
    near = [s for s in near if s.kind == "file" or s.path not in whole]
    result = assemble(fmt, counter, cache.tracker, ws.repo_name, head, layer.stable if layer is not None else None,
                      near, path, cur_header, cells, suffix, budget, start_t)
    result.indent = indent
    result.name_rule = name_rule
    return result


def chat_context(ws: Workspace, cache: ContextCache, budget: int, path: str | None = None,
                 text: str | None = None, line: int = 0) -> str:
    """Repository context for a chat prompt, as plain text within ``budget`` tokens.

    With a current file, the same neighbourhood selection as completions (without the FIM part);
    without one, the repository by global rank. Files are rendered as ``File: path`` + fenced code.
    """
    index = _index(ws)
    if index is None or budget <= 0:
        return ""
    cache.size_for(budget)
    if path is not None:
        rel = index.rel(path)
        if text is not None and not rel.startswith("../"):  # a file outside the root never enters the index
            sync_overlay(index, ws.root or index.root, rel, text, ws.is_open)
        repo = repo_view(ws, cache, index)
        got = repo.file(rel)
        # the editor's lines, in \n text as completions read it (``to_lf``): split at \n only, a lone-CR
        # buffer was one line and the selection's line was clamped to line 0
        buf = to_lf(text) if text is not None else (got[0] if got else "")
        line = max(0, min(line, buf.count("\n")))
        offset = len(split_at_cursor(buf, line, 0)[0])
        file_cands, deferred, imported = file_candidates(repo, rel, buf.count("\n") + 1, None)
        near = near_candidates(repo, rel, buf, offset, line, 0, repo.memo.outline(rel), imported, (0, -1), budget)
        pers = {rel: 1.0, **{p: 0.5 for p in imported}}
        ranked, later, files = ranked_candidates(repo, pers, max(32, budget // 10), 2, None, None)
        whole_current = whole_file(repo, rel, 3)
        first = [Candidate(rel, (rel, "current"), [whole_current])] if whole_current else []
        snips, _, _ = fill(repo, first + near + file_cands + ranked + deferred + later, files, int(budget * 0.9), 2,
                           set(), set())
    else:
        repo = repo_view(ws, cache, index)
        ranked, later, files = ranked_candidates(repo, {}, max(32, budget // 10), 2, None, None)
        snips, _, _ = fill(repo, ranked + later, files, int(budget * 0.9), 2, set(), set())
    return chat_text(ws.counter, snips, budget)


def prepare_file(ws: Workspace, cache: ContextCache, path: str, text: str, budget: int) -> float:
    """Compute the per-file part for ``path`` (what the first request in a file would otherwise pay:
    the ranking personalised to the file, its names' definitions, candidate snippets, the windows of the
    files ``similar`` searches), so that the first completion in a freshly opened document only does the
    near-cursor part. Call it when a document opens, off the keystroke path, on the thread that builds
    contexts. Returns milliseconds."""
    t0 = time.perf_counter()
    index = _index(ws)
    if index is None:
        return 0.0
    head = _head(ws)
    max_room = budget - _fixed_tokens(ws, head, path) - file_reserve(budget, ws.suffix_tokens, len(text))
    if max_room <= 0:
        return 0.0
    try:
        rel = index.rel(path)
        repo = repo_view(ws, cache, index)
        layer = _file_layer(ws, cache, repo, rel, text.count("\n") + 1, budget, max_room, head)
        cut_windows(repo, rel, layer.ranked_files)
    except Exception as exc:
        ws.log(f"prepare_file failed: {type(exc).__name__}: {exc}")
    return (time.perf_counter() - t0) * 1000


def warm(ws: Workspace, cache: ContextCache, max_bytes: int = 64_000_000) -> int:
    """Read, redact and count every indexed file once (largest repositories: up to ``max_bytes``), so
    that the first request in a file only ranks and selects. Returns the number of files read."""
    index = _index(ws)
    if index is None:
        return 0
    repo = repo_view(ws, cache, index)
    n = 0
    total = 0
    for p, size in sorted(repo.memo.sizes.items()):
        if total + size > max_bytes:
            break
        if whole_file(repo, p, 1) is not None:
            n += 1
            total += size
    return n
