"""Repository-level context: what of the repository goes into a completion prompt, and in which order.

Selection, in priority order (each item degrades full body → signature → omitted):

1. the current buffer around the cursor (prefix favoured, a bounded suffix). The prefix share is
   sublinear in the budget (``512 + budget/8``, at most 30%): beyond ~100 lines the far prefix is worth
   less than the repository's ranked definitions, which is where a repository map wins at small budgets;
2. near the cursor: members of the receiver being typed (``obj.``/``Type::``, also while its member
   name is being typed: an imported module, a repository module of that name the index did not resolve,
   a type of that name, or, for a receiver of unknown type, the types that define the most members the
   buffer uses on it; for a call's result, ``f(x).``, the type ``f``'s signature says it returns), definitions of the names used around the cursor (bodies for names within a few
   lines, else signatures), the definitions neighbouring them in the modules that define the nearest
   names, the enclosing class's other members and its bases;
3. the per-file neighbourhood: definitions of every name the current file uses (resolved through its
   imports by the index), outlines of the modules it imports, then definitions by graph rank (PageRank personalised to the current file and its imports); a name's
   third and later definitions (``new``, ``close`` in every type) and other files' test-only code go
   after everything else of the layer;
4. the rest of the repository by global rank (at large budgets): definition signatures first, then
   whole files, until its share is full.

Rendering: a header whose body is elided is closed inline, stub style (``def f(x): ...``,
``fn f() { ... }``), so an outline costs one line per entry (no elision line) and a Python outline
is valid Python; members appear under their enclosing class/impl header; in the per-file lists a long
multi-line signature shows its first line at small budgets (breadth first).

Layout, most stable first so that consecutive prompts share a long token prefix with the model's KV cache:
repository-wide part (global rank; depends only on the repository), then the per-file neighbourhood
(depends on the file, computed when the file is prepared or on the first request in it, and kept while
the repository is unchanged), then the near-cursor part, then the current file. Each layer has its own
budget, fixed by the total budget alone (not by what the other layers happen to hold), so what is near
the cursor never changes what fits of the earlier layers. While the cursor stays on one line, the
near-cursor part keeps what the previous request chose, in place, and adds after it. The current file's
prefix starts on a line grid and is laid out as one piece per grid cell, so typing changes (and
re-counts) only the cursor's cell.

Speed: nothing is re-parsed or re-ranked per keystroke. ``prepare_file`` (the server calls it through
``Engine.prepare_document`` when a document opens) computes the per-file part off the keystroke path, so
the first request in a file only does the near-cursor part. The index is read as the repository state
(the editor integration keeps open buffers as index overlays; a buffer this builder saw edited is synced
into its overlay when completion moves to another file); the current buffer itself is only scanned
around the cursor. Index answers (definitions by name, outlines, imports, ranks) are memoised per index
generation; file texts are redacted and counted once (by content hash), header snippets once per text.
"""

from __future__ import annotations

import keyword
import os
import re
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from engine.context.result import ContextResult, Section, split_at_cursor
from engine.model.prompt_format import Piece, PromptFormat
from engine.context.redact import redact, redact_cached
from engine.model.tokens import TokenCounter

# Lines per prefix grid cell: the current file's prefix starts on a multiple of this, and each cell is
# its own prompt piece, so typing does not shift the first line of the prompt's current-file part.
PREFIX_GRID_LINES = 32
NEAR_BEFORE = 40  # lines above the cursor whose names count as "near the cursor"
NEAR_AFTER = 8
NEAR_MODULES = 3  # modules defining the names nearest the cursor: their definitions nearest to the one used
NEAR_MODULE_ENTRIES = 12  # are near-cursor candidates (this many per module)
NEAR_BODY_LINES = 8  # names used this close to the cursor get their definitions' bodies (when small); the
# others near the cursor get signatures
REPO_WIDE_MIN_BUDGET = 32_768  # below this every token goes to the per-file neighbourhood
REPO_WIDE_SHARE = 0.5  # of the room, when the whole repository does not fit
NEIGHBOURHOOD_SHARE = 0.6  # of what the repository-wide part leaves; the rest is near the cursor
PATH_ALLOWANCE = 64  # tokens kept for the current file's path line, so the repository-wide part's room
# (and so its content) does not depend on which file is current
MAX_RANKED = 2000  # ranked definitions asked of the index per layer (beyond that, whole files by rank)
RANKED_REPEATS_KEPT = 2  # definitions of one name listed in rank order; the rest of them go last
SUFFIX_CHARS_PER_TOKEN = 16  # a suffix is pre-cut to this many characters per allowed token

_COMMENT_PREFIX = {
    "python": "#", "ruby": "#", "bash": "#", "r": "#", "perl": "#", "toml": "#", "yaml": "#",
    "lua": "--", "sql": "--", "haskell": "--",
}
_RECEIVER = re.compile(r"([A-Za-z_$][\w$]*)\s*(?:\.|::|->)\s*[A-Za-z_$]?[\w$]*$")
_SELF_NAMES = {"self", "this", "cls", "Self", "super"}
# a member of a call's result being typed: ``getAdm(target).`` → the members of getAdm's return type
_CALL_RECEIVER = re.compile(r"([A-Za-z_$][\w$]*)\s*\([^()]*\)\s*(?:\.|::|->)\s*[A-Za-z_$]?[\w$]*$")
_RETURNS = re.compile(r"(?:\)\s*:|->)\s*([^{=;]+?)\s*(?:\{|:|=>|;|where\b|$)")
_WRAPPERS = frozenset({"Option", "Result", "Box", "Rc", "Arc", "RefCell", "Cell", "Vec", "Promise", "Optional",
                       "Awaitable", "Iterator", "Iterable", "impl", "dyn", "mut", "const", "readonly", "Ref",
                       "RefMut", "Cow", "Mutex", "MutexGuard", "Self", "self"})
_IDENT = re.compile(r"[A-Za-z_]\w*")
_PARTIAL_BEFORE = re.compile(r"[A-Za-z_]\w*$")
_PARTIAL_AFTER = re.compile(r"^\w+")
_PREFIX_SLOT = "\x00<current prefix cells>\x00"  # where the prefix cells go in the format's infill
_TYPE_KINDS = ("class", "struct", "interface", "enum", "trait", "impl", "module", "namespace", "object")
_CLASS_KINDS = ("class", "struct", "interface", "impl", "trait", "enum")
_NOT_NEAR = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | {
    "self", "cls", "this", "super", "true", "false", "null", "nil", "undefined", "let", "const", "var",
    "function", "fn", "pub", "use", "mod", "impl", "struct", "enum", "trait", "match", "new", "typeof",
    "instanceof", "void", "int", "str", "bool", "float", "bytes", "dict", "list", "set", "tuple", "len",
    "print", "range", "isinstance", "Some", "Ok", "Err", "Option", "Result", "Vec", "String", "Box", "mut",
    "ref", "where", "crate", "export", "default", "extends", "implements", "interface", "private", "public",
    "protected", "static", "readonly", "string", "number", "boolean", "any", "unknown", "never", "object",
}


def _language_of(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    return {".py": "python", ".pyi": "python", ".rb": "ruby", ".sh": "bash", ".lua": "lua", ".sql": "sql",
            ".hs": "haskell", ".toml": "toml", ".yml": "yaml", ".yaml": "yaml"}.get(ext, "")


def _module_name(path: str) -> str:
    """The name code uses for the module in ``path``: its file stem, or its directory for a package file."""
    stem = os.path.splitext(os.path.basename(path))[0]
    if stem in ("__init__", "mod", "index", "lib"):
        return os.path.basename(os.path.dirname(path)) or stem
    return stem


def _test_only(d: Any) -> bool:
    """A definition only tests can use: inside a ``tests``/``test`` module (Rust's ``#[cfg(test)] mod
    tests``, private to that module and not even compiled outside tests), or a ``test_*`` function."""
    if d.name.startswith("test_"):
        return True
    parent = d.parent or ""
    return bool(parent) and any(part in ("tests", "test") for part in parent.replace("::", ".").split("."))


def elision_line(path: str) -> str:
    return f"{_COMMENT_PREFIX.get(_language_of(path), '//')} ...\n"


@dataclass
class Snip:
    """One selected piece of a repository file."""

    path: str
    start: int  # first line, 0-based
    end: int  # last line, inclusive
    text: str  # redacted, ends with a newline
    kind: str  # "file" | "outline" | "definition" | "signature"
    symbol: str
    tokens: int
    layer: int  # 1 repository-wide, 2 per-file neighbourhood, 3 near the cursor
    body_end: int = -1  # a header's definition ends here (its body is elided); -1: not a header
    parent: "Snip | None" = None  # a member's enclosing class/impl header, shown with it when not shown otherwise
    name_line: int = -1  # the line holding the definition's name (a header may start lines before it)

    def moved(self, layer: int, kind: str | None = None) -> "Snip":
        return Snip(self.path, self.start, self.end, self.text, kind or self.kind, self.symbol, self.tokens, layer,
                    self.body_end, self.parent, self.name_line)

    @property
    def stub(self) -> str:
        """What closes this header when its body is elided and nothing nested follows: `` ...`` after a
        ``:`` header (a Python stub), `` ... }`` after a ``{`` header; "" when the line does not open a body."""
        if self.body_end <= self.end:
            return ""
        last = self.text.rstrip()
        return " ..." if last.endswith(":") else " ... }" if last.endswith("{") else ""


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


@dataclass
class _Rendered:
    """Blocks turned into prompt pieces, with their token count and sections (cached for stable layers)."""

    pieces: list[Piece]
    tokens: int
    sections: list[Section]


@dataclass
class _FileLayer:
    """Everything that depends on the current file but not on the cursor (computed once per file)."""

    repo_snips: list[Snip]  # the repository-wide part without the current file
    snips: list[Snip]  # the per-file neighbourhood
    taken: set
    whole: set[str]
    rest: list[_Candidate]  # candidates that did not fit: the near-cursor part continues with them
    ranked_files: list[str]
    stable: _Rendered  # repository header + the two layers, rendered
    imported: list[str]
    outline: list  # the current file's definitions, as the index knows them
    partial: set[str] = field(default_factory=set)  # files the stable layers show in part


@dataclass
class _State:
    """Index answers memoised for one index generation."""

    gen: Any
    index: Any
    repo_key: int
    sizes: dict[str, int]
    defs: dict[str, list] = field(default_factory=dict)
    outlines: dict[str, list] = field(default_factory=dict)
    imports: dict[str, list[str]] = field(default_factory=dict)
    checked: set[str] = field(default_factory=set)  # files whose on-disk stamp was checked this generation
    modules: dict[str, list[str]] | None = None  # module name (file stem, or package dir) -> files
    parents: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> qualified name -> definition


class _FileCache:
    """File texts (redacted) and their line lists, keyed by path and (size, mtime) so disk edits are seen."""

    def __init__(self, max_files: int = 50_000) -> None:
        self._data: OrderedDict[str, tuple[tuple, str, list[str]]] = OrderedDict()
        self._max = max_files

    def get(self, index: Any, root: str, path: str, overlays: dict[str, str],
            checked: set[str] | None = None) -> tuple[str, list[str]] | None:
        hit = self._data.get(path)
        text = None
        if path in overlays:
            text = overlays[path]
            stamp: tuple = ("overlay", hash(text))
        elif hit is not None and checked is not None and path in checked and hit[0][0] != "overlay":
            self._data.move_to_end(path)
            return hit[1], hit[2]
        else:
            try:
                st = os.stat(os.path.join(root, path))
                stamp = (st.st_size, st.st_mtime_ns)
            except OSError:
                stamp = ("missing",)
            if checked is not None:
                checked.add(path)
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
        self._state_cache: _State | None = None
        self._disk_info: dict[str, tuple] = {}
        self._repo_wide: _RepoWide | None = None
        self._file_layers: OrderedDict[tuple, _FileLayer] = OrderedDict()
        self._body_cap = 256
        self._budget: int | None = None
        self._sticky: tuple[tuple, list[Snip]] | None = None  # (rel, line, budget, layer) → near selection
        self._header_cache: dict[tuple, tuple[list[str], Snip]] = {}  # definition → header snip (per file text)
        self._last_buffer: tuple[str, str] | None = None  # (path, text) of the latest request
        from engine.context.result import SharedPrefixTracker

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
        self._file_layers.clear()
        self._state_cache = None

    def warm(self, max_bytes: int = 64_000_000) -> int:
        """Read, redact and count every indexed file once (largest repositories: up to ``max_bytes``), so
        that the first request in a file only ranks and selects. Returns the number of files read.
        Called by the warm-up path (``coderflash`` warm-up builds a context first); safe to skip."""
        index = self.index()
        if index is None:
            return 0
        st = self._state(index)
        n = 0
        total = 0
        for p, size in sorted(st.sizes.items()):
            if total + size > max_bytes:
                break
            s = self._whole_file(index, p, 1, st)
            if s is not None:
                n += 1
                total += size
        return n

    def prepare_file(self, path: str, text: str, budget: int) -> float:
        """Compute the per-file part for ``path`` (what the first request in a file would otherwise pay:
        the ranking personalised to the file, its names' definitions, candidate snippets), so that the
        first completion in a freshly opened document only does the near-cursor part. Call it when a
        document opens, off the keystroke path, on the thread that builds contexts. Returns milliseconds."""
        t0 = time.perf_counter()
        index = self.index()
        if index is None:
            return 0.0
        head = self.fmt.repo_header(self.repo_name) if self.repo_name else []
        fixed = self.counter.count_pieces(head) + self.counter.count_pieces(self.fmt.current_file_header(path)) \
            + self.counter.count_pieces(self.fmt.infill("", ""))
        max_room = budget - fixed - self._reserve(budget, self._prefix_cap(budget) + self._suffix_cap(budget))
        if max_room <= 0:
            return 0.0
        try:
            rel = index.rel(path) if hasattr(index, "rel") else path
            st = self._state(index)
            self._file_layer(index, st, rel, text.count("\n") + 1, budget, max_room, head)
        except Exception as exc:
            self.log(f"prepare_file failed: {type(exc).__name__}: {exc}")
        return (time.perf_counter() - t0) * 1000

    def _state(self, index: Any) -> _State:
        """Memoised index answers, valid while the index generation is unchanged.

        ``repo_key`` identifies the repository on disk: open buffers (overlays) count with the last
        size seen on disk, so editing or opening a buffer does not change it.
        """
        gen = getattr(index, "_gen", None)
        st = self._state_cache
        if st is not None and gen is not None and st.gen == gen and st.index is index:
            return st
        overlays = getattr(index, "overlays", {})
        infos = []
        sizes: dict[str, int] = {}
        for f in index.files():
            sizes[f.path] = f.size
            if f.path in overlays:
                info = self._disk_info.get(f.path, ("overlay",))
            else:
                info = self._disk_info[f.path] = (f.size, f.lines)
            infos.append((f.path, info))
        st = _State(gen, index, hash(tuple(infos)), sizes)
        self._state_cache = st
        return st

    def _defs_named(self, st: _State, name: str) -> list:
        hit = st.defs.get(name)
        if hit is None:
            hit = st.defs[name] = st.index.definitions(name)
        return hit

    def _outline(self, st: _State, path: str) -> list:
        hit = st.outlines.get(path)
        if hit is None:
            hit = st.outlines[path] = st.index.outline(path)
        return hit

    def _imports(self, st: _State, path: str) -> list[str]:
        hit = st.imports.get(path)
        if hit is None:
            hit = st.imports[path] = [p for p in st.index.imports_of(path) if p != path]
        return hit

    def _sync_overlay(self, index: Any, path: str, text: str) -> None:
        """The buffer replaces the saved file in the index (an overlay) when they differ (re-parses)."""
        overlays = getattr(index, "overlays", {})
        if path in overlays:
            if overlays[path] != text:
                index.set_overlay(path, text)
            return
        try:
            with open(os.path.join(self._root or index.root, path), "rb") as f:
                on_disk = f.read().decode("utf-8", "replace")
        except OSError:
            on_disk = None
        if on_disk != text:
            index.set_overlay(path, text)

    def _leave_file(self, index: Any, rel: str, text: str) -> None:
        """Completion moved to another file: the buffer last seen for the previous one, when it is open
        in the index (an overlay) and was edited since, becomes that overlay. Never per keystroke."""
        last, self._last_buffer = self._last_buffer, (rel, text)
        if last is None or last[0] == rel:
            return
        overlays = getattr(index, "overlays", {})
        if last[0] in overlays and overlays[last[0]] != last[1]:
            try:
                index.set_overlay(last[0], last[1])
            except Exception as exc:
                self.log(f"overlay sync failed: {exc}")

    def _file(self, index: Any, path: str, st: _State | None = None) -> tuple[str, list[str]] | None:
        root = self._root or getattr(index, "root", "")
        return self._files.get(index, root, path, getattr(index, "overlays", {}), st.checked if st else None)

    # -- snippets -------------------------------------------------------------------------------
    def _snip(self, path: str, start: int, end: int, text: str, kind: str, symbol: str, layer: int) -> Snip:
        if not text.endswith("\n"):
            text += "\n"
        return Snip(path, start, end, text, kind, symbol, self.counter.count(text), layer)

    def _header_snip(self, index: Any, d: Any, layer: int, kind: str = "signature", st: _State | None = None,
                     lines: list[str] | None = None) -> Snip | None:
        cache_key = None
        if lines is None:
            got = self._file(index, d.path, st)
            if got is None:
                return None
            _, lines = got
            cache_key = (d.path, d.start_line, getattr(d, "name_line", -1), d.signature, d.name)
            hit = self._header_cache.get(cache_key)
            if hit is not None and hit[0] is lines:  # same file text: the same header
                s = hit[1]
                if s.layer == layer and s.kind == kind:
                    return s
                return s.moved(layer, kind)
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
        snip = self._snip(d.path, start, end, text, kind, d.name, layer)
        snip.body_end = max(end, d.end_line)
        snip.name_line = name_line if start <= name_line <= end else start
        if d.parent and st is not None and index is not None:
            pd = self._parent_def(st, d)
            if pd is not None and pd.start_line < start:
                snip.parent = self._header_snip(index, pd, layer, "outline", st)
        if cache_key is not None:
            if len(self._header_cache) > 200_000:
                self._header_cache.clear()
            self._header_cache[cache_key] = (lines, snip)
        return snip

    def _parent_def(self, st: _State, d: Any) -> Any:
        by_name = st.parents.get(d.path)
        if by_name is None:
            by_name = st.parents[d.path] = {o.qualified_name: o for o in self._outline(st, d.path)}
        return by_name.get(d.parent)

    def _body_snip(self, index: Any, d: Any, layer: int, st: _State | None = None) -> Snip | None:
        got = self._file(index, d.path, st)
        if got is None:
            return None
        _, lines = got
        if d.start_line >= len(lines):
            return None
        end = min(d.end_line, len(lines) - 1)
        return self._snip(d.path, d.start_line, end, "".join(lines[d.start_line:end + 1]), "definition", d.name, layer)

    def _outline_snips(self, index: Any, path: str, layer: int, parent: str | None = None,
                       st: _State | None = None) -> list[Snip]:
        out = []
        for d in (self._outline(st, path) if st is not None else index.outline(path)):
            if parent is not None and d.parent != parent and d.qualified_name != parent:
                continue
            s = self._header_snip(index, d, layer, "outline", st)
            if s is not None:
                out.append(s)
        return out

    def _whole_file(self, index: Any, path: str, layer: int, st: _State | None = None) -> Snip | None:
        got = self._file(index, path, st)
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
        return min(max(min(512, budget // 2), budget * 3 // 10), 512 + budget // 8)

    def _cut_prefix(self, prefix: str, cap: int) -> str:
        """The prefix from the earliest grid line whose tail fits ``cap`` tokens (whole text; slow path)."""
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
            return self._tail_lines(lines, cap)
        return "".join(lines[start_line:])

    def _tail_lines(self, lines: list[str], cap: int) -> str:
        kept: list[str] = []
        used = 0
        for text_line in reversed(lines):
            cost = self.counter.count(text_line)
            if used + cost > cap:
                break
            kept.append(text_line)
            used += cost
        return "".join(reversed(kept))

    def _prefix_cells(self, text: str, offset: int, line: int, cap: int) -> list[str]:
        """The prefix before ``offset`` as redacted grid cells (absolute lines ``k*GRID…``), the earliest
        kept cell being the first whose tail fits ``cap``. Only the cells kept are read, redacted and
        counted, and all but the cursor's cell are cache hits while typing."""
        counter = self.counter
        grid = PREFIX_GRID_LINES
        line_start = text.rfind("\n", 0, offset) + 1
        cell_first = (line // grid) * grid
        # the cursor's cell: from its first line to the cursor
        pos = line_start
        for _ in range(line - cell_first):
            pos = text.rfind("\n", 0, pos - 1) + 1
        cells: list[str] = [redact(text[pos:offset])]
        used = counter.count(cells[0])
        if used > cap:  # not even the cursor's cell fits: whole lines from the end
            return [self._tail_lines(cells[0].splitlines(keepends=True), cap)]
        while pos > 0:
            end = pos
            for _ in range(grid):
                pos = text.rfind("\n", 0, pos - 1) + 1
                if pos == 0:
                    break
            cell = redact_cached(text[pos:end])
            cost = counter.count(cell)
            if used + cost > cap:
                break
            used += cost
            cells.append(cell)
        cells.reverse()
        return [c for c in cells if c]

    def _head(self, text: str, cap: int) -> str:
        if len(text) > cap * SUFFIX_CHARS_PER_TOKEN:
            text = text[:cap * SUFFIX_CHARS_PER_TOKEN]
            text = text[:text.rfind("\n") + 1] if "\n" in text else text
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

    # -- near the cursor ------------------------------------------------------------------------
    @staticmethod
    def _window(text: str, offset: int, before: int, after: int) -> tuple[list[str], int]:
        """Lines around the cursor (the cursor's line included) and the index of the cursor's line."""
        start = text.rfind("\n", 0, offset) + 1
        n_before = 0
        while start > 0 and n_before < before:
            start = text.rfind("\n", 0, start - 1) + 1
            n_before += 1
        end = offset
        for _ in range(after + 1):
            nl = text.find("\n", end)
            if nl < 0:
                end = len(text)
                break
            end = nl + 1
        return text[start:end].split("\n"), n_before

    @staticmethod
    def _near_names(lines: list[str], at: int, column: int) -> list[tuple[str, int]]:
        """(name, distance in lines) of the identifiers around the cursor, nearest first; the partial
        identifier the cursor is in is not one of them (it is being typed)."""
        dist: dict[str, int] = {}
        for i, text_line in enumerate(lines):
            if i == at:
                before, after = text_line[:column], text_line[column:]
                m = _PARTIAL_BEFORE.search(before)
                if m:
                    before = before[:m.start()]
                after = _PARTIAL_AFTER.sub("", after)
                text_line = before + " " + after
            d = abs(i - at)
            for name in _IDENT.findall(text_line):
                if name in _NOT_NEAR or len(name) < 2:
                    continue
                if d < dist.get(name, 1 << 30):
                    dist[name] = d
        return sorted(dist.items(), key=lambda kv: kv[1])

    def _near_candidates(self, index: Any, st: _State, rel: str, text: str, offset: int, line: int,
                         column: int, layer_info: _FileLayer, visible: tuple[int, int]) -> list[_Candidate]:
        """Layer 3: what the cursor is about to use (from the buffer, not from the index's copy of it)."""
        cands: list[_Candidate] = []
        lines, at = self._window(text, offset, NEAR_BEFORE, NEAR_AFTER)
        before_cursor = lines[at][:column]
        outline = layer_info.outline
        receiver = _RECEIVER.search(before_cursor)
        if receiver:
            cands.extend(self._receiver_candidates(index, st, rel, receiver.group(1), line, outline,
                                                   layer_info.imported, text, visible))
        else:
            call = _CALL_RECEIVER.search(before_cursor)
            if call:
                cands.extend(self._returned_type_candidates(index, st, rel, call.group(1)))
        imported = set(layer_info.imported)
        later: list[_Candidate] = []
        siblings: list[Any] = []  # definitions of the nearest names, each defined once outside this file
        for name, dist in self._near_names(lines, at, column):
            defs = [d for d in self._defs_named(st, name) if d.path != rel]
            if not defs:
                continue
            if len(defs) == 1 and len(siblings) < NEAR_MODULES and all(x.path != defs[0].path for x in siblings):
                siblings.append(defs[0])
            mine = [d for d in defs if d.path in imported]
            target = cands
            if mine:
                defs = mine[:3]
            elif len(defs) > 3:
                defs, target = defs[:2], later  # an ambiguous name: after the specific ones
            for d in defs:
                body = self._body_snip(index, d, 3, st) if dist <= NEAR_BODY_LINES else None
                forms = [s for s in (body, self._header_snip(index, d, 3, st=st)) if s is not None]
                if forms and forms[0].kind == "definition" and (forms[0].end - forms[0].start > 60
                                                                 or forms[0].tokens > self._body_cap):
                    forms = forms[1:]  # long bodies only as signatures near the cursor
                if forms:
                    target.append(_Candidate(d.path, (d.path, d.start_line), forms))
        # the enclosing class (its other members, from the buffer) and its bases
        enclosing = [d for d in outline if d.kind in _CLASS_KINDS and d.start_line <= line <= d.end_line]
        for d in enclosing[-1:]:
            cands.extend(self._class_candidates(index, st, rel, text, outline, d, visible))
        # what the cursor uses next often comes from the module the names around it come from: that
        # module's definitions, nearest in the file to the one used
        for d in siblings:
            outline = [o for o in self._outline(st, d.path) if o.parent == d.parent]
            outline.sort(key=lambda o: abs(o.start_line - d.start_line))
            for o in outline[:NEAR_MODULE_ENTRIES]:
                s = self._header_snip(index, o, 3, "outline", st)
                if s is not None:
                    later.append(_Candidate(o.path, (o.path, s.start), [self._breadth(s, self._budget)]))
        return cands + later

    def _current_members(self, rel: str, text: str, outline: list, parent: str,
                         visible: tuple[int, int]) -> list[_Candidate]:
        """Header lines of the current file's members of ``parent`` that the prompt does not show, read
        from the buffer (the index's line numbers are used only where the buffer still agrees)."""
        members = [d for d in outline if d.parent == parent and not visible[0] <= d.start_line <= visible[1]]
        if not members:
            return []
        lines = text.splitlines(keepends=True)
        out = []
        for d in members:
            ln = d.name_line if getattr(d, "name_line", -1) >= 0 else d.start_line
            if not 0 <= ln < len(lines) or d.name not in lines[ln]:
                continue
            s = self._header_snip(None, d, 3, "outline", lines=lines)
            if s is not None:
                s.text = redact(s.text)
                s.tokens = self.counter.count(s.text)
                out.append(_Candidate(rel, (rel, s.start), [s]))
        return out

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

    def _class_candidates(self, index: Any, st: _State, rel: str, text: str, outline: list, cls: Any,
                          visible: tuple[int, int]) -> list[_Candidate]:
        """A class around the cursor: its other members (from the buffer) and the outlines of its bases."""
        cands = list(self._current_members(rel, text, outline, cls.qualified_name, visible))
        for base in self._bases(cls.signature):
            for bd in self._defs_named(st, base)[:2]:
                if bd.path == rel:
                    continue
                for s in self._outline_snips(index, bd.path, 3, parent=bd.qualified_name, st=st):
                    cands.append(_Candidate(bd.path, (bd.path, s.start), [s]))
        return cands

    def _receiver_candidates(self, index: Any, st: _State, rel: str, name: str, line: int, outline: list,
                             imports: list[str], text: str, visible: tuple[int, int]) -> list[_Candidate]:
        cands: list[_Candidate] = []
        if name in _SELF_NAMES:
            classes = [d for d in outline if d.kind in _CLASS_KINDS and d.start_line <= line <= d.end_line]
            for d in classes[-1:]:
                cands.extend(self._class_candidates(index, st, rel, text, outline, d, visible))
            return cands
        # a module imported under this name, or a type/namespace with members
        found = False
        for imported in imports:
            if _module_name(imported) == name:
                found = True
                for s in self._outline_snips(index, imported, 3, st=st):
                    cands.append(_Candidate(imported, (imported, s.start), [s]))
        if not found:  # a repository module by that name that the index did not resolve as an import
            # (``from . import reduction``, ``hir::translate::``, a module injected at run time): the
            # nearest one in the tree
            if st.modules is None:
                st.modules = {}
                for p in st.sizes:
                    st.modules.setdefault(_module_name(p), []).append(p)
            near_first = sorted((p for p in st.modules.get(name, ()) if p != rel),
                                key=lambda p: (-len(os.path.commonpath([p, rel])) if os.path.dirname(p) and os.path.dirname(rel) else 0, p))
            for p in near_first[:1]:
                for s in self._outline_snips(index, p, 3, st=st):
                    cands.append(_Candidate(p, (p, s.start), [s]))
        type_name = "".join(part[:1].upper() + part[1:] for part in name.split("_"))  # parser_state → ParserState
        defs = self._defs_named(st, name)[:3] + (self._defs_named(st, type_name)[:2] if type_name != name else [])
        for d in defs:
            if d.kind in _TYPE_KINDS and d.path != rel:
                for s in self._outline_snips(index, d.path, 3, parent=d.qualified_name, st=st):
                    cands.append(_Candidate(d.path, (d.path, s.start), [s]))
        if not cands:
            cands.extend(self._duck_typed(index, st, rel, name, text))
        return cands

    def _returned_type_candidates(self, index: Any, st: _State, rel: str, func: str) -> list[_Candidate]:
        """A member of a call's result (``getAdm(target).``): the member outline of the repository type
        that ``func``'s signature declares it returns (``): T``, ``-> T``; wrappers such as ``Option<T>``
        are looked through; ``Self`` is the function's own class)."""
        cands: list[_Candidate] = []
        seen: set[tuple] = set()
        for fd in self._defs_named(st, func)[:3]:
            m = _RETURNS.search((fd.signature or "").replace("\n", " "))
            if not m:
                continue
            names = [n for n in re.findall(r"[A-Za-z_$][\w$]*", m.group(1)) if n not in _WRAPPERS]
            if re.match(r"\s*&?\s*(?:'\w+\s+)?(?:mut\s+)?Self\b", m.group(1)) and fd.parent:
                names.insert(0, fd.parent.replace("::", ".").split(".")[-1])
            for type_name in names[:1]:
                for d in self._defs_named(st, type_name)[:2]:
                    if d.kind not in _TYPE_KINDS or d.path == rel or (d.path, d.qualified_name) in seen:
                        continue
                    seen.add((d.path, d.qualified_name))
                    for s in self._outline_snips(index, d.path, 3, parent=d.qualified_name, st=st):
                        cands.append(_Candidate(d.path, (d.path, s.start), [s]))
        return cands

    def _duck_typed(self, index: Any, st: _State, rel: str, name: str, text: str) -> list[_Candidate]:
        """A receiver of unknown type: the repository types that define the most of the members this
        buffer uses on that name elsewhere (``msg.get_payload()``, ``msg.walk()`` → ``class Message``),
        their member outlines."""
        used = dict.fromkeys(re.findall(rf"(?<![\w$]){re.escape(name)}\s*(?:\.|::|->)\s*([A-Za-z_$][\w$]*)", text))  # text order
        votes: Counter = Counter()
        where: dict[str, Any] = {}
        for member in used:
            defs = self._defs_named(st, member)
            if not defs or len(defs) > 8:  # unknown or everywhere (``get``): no evidence
                continue
            for d in defs:
                if d.parent and d.path != rel:
                    votes[(d.path, d.parent)] += 1
                    where[(d.path, d.parent)] = d
        cands: list[_Candidate] = []
        if not votes:
            return cands
        best = max(votes.values())
        for (path, parent), n in votes.most_common(2):
            if n < best or (n < 2 and len(used) > 1):
                break
            for s in self._outline_snips(index, path, 3, parent=parent, st=st):
                cands.append(_Candidate(path, (path, s.start), [self._breadth(s, self._budget)]))
        return cands

    # -- per file ---------------------------------------------------------------------------------
    def _breadth(self, s: Snip, budget: int | None) -> Snip:
        """An entry of the per-file lists (names the file uses, imported modules, ranked definitions): at
        small budgets a long multi-line signature shows only its lines up to the one holding the name
        (usually the first), so the list reaches further down the ranking; what is near the cursor keeps
        whole signatures."""
        if budget is None or s.start == s.end or s.tokens <= max(32, budget // 256):
            return s
        last = max(s.start, min(s.name_line, s.end))
        head = "".join(s.text.splitlines(keepends=True)[:last - s.start + 1])
        if head == s.text:
            return s
        return Snip(s.path, s.start, last, head, s.kind, s.symbol, self.counter.count(head), s.layer, s.body_end,
                    s.parent, s.name_line)

    def _file_candidates(self, index: Any, st: _State, path: str, n_lines: int,
                         budget: int | None = None) -> tuple[list[_Candidate], list[_Candidate], list[str]]:
        """Layer 2: names used anywhere in the file, imported modules' outlines.

        Returns (first, deferred, imported files): a name whose definitions are neither imported nor
        unique (``append``, ``get``) and the private members of imported modules are deferred until
        after the graph-ranked signatures — the outline of a module degrades to its public part.
        """
        cands: list[_Candidate] = []
        deferred: list[_Candidate] = []
        imported = self._imports(st, path)
        imported_set = set(imported)
        found = index.definitions_referenced_in(path, 0, n_lines)
        per_name = Counter(d.name for d in found)
        for d in found:
            if d.path == path:
                continue
            s = self._header_snip(index, d, 2, st=st)
            if s is not None:
                target = cands if (d.path in imported_set or per_name[d.name] == 1) else deferred
                target.append(_Candidate(d.path, (d.path, s.start), [self._breadth(s, budget)]))
        for p in imported:
            for s in self._outline_snips(index, p, 2, st=st):
                public = not s.symbol.startswith("_") or (s.symbol.startswith("__") and s.symbol.endswith("__"))
                (cands if public else deferred).append(_Candidate(p, (p, s.start), [self._breadth(s, budget)]))
        return cands, deferred, imported

    def _ranked_candidates(self, index: Any, personalization: dict[str, float], limit: int, layer: int,
                           skip: str | None, st: _State | None = None,
                           budget: int | None = None) -> tuple[list[_Candidate], list[_Candidate], list[str]]:
        """Definitions by graph rank, as (first, later, ranked files); callers place ``later`` after
        everything else, so the same budget reaches further down the ranking. ``later`` holds:

        - the definitions of a name beyond its first ``RANKED_REPEATS_KEPT`` (``new``, ``fmt``, ``close``
          defined in every type): each costs as much as a new name but tells the model little more; in the
          stdlib and Rust corpora they were a third of the ranked entries a small budget reached;
        - test-only code of other files (see ``_test_only``): no other file can name it."""
        first: list[_Candidate] = []
        later: list[_Candidate] = []
        shown: Counter = Counter()
        for d, _score in index.ranked_definitions(personalization, limit):
            if d.path == skip:
                continue
            s = self._header_snip(index, d, layer, "outline", st)
            if s is not None:
                shown[d.name] += 1
                target = later if shown[d.name] > RANKED_REPEATS_KEPT or _test_only(d) else first
                target.append(_Candidate(d.path, (d.path, s.start), [self._breadth(s, budget)]))
        files = [p for p, _ in index.ranked_files(personalization) if p != skip]
        return first, later, files

    def _file_layer(self, index: Any, st: _State, rel: str, n_lines: int, budget: int, max_room: int,
                    head: list[Piece]) -> _FileLayer:
        """The repository-wide part and the per-file neighbourhood for ``rel``: computed on the first
        request in the file, kept while the repository is unchanged (cheap and byte-identical)."""
        overlays = getattr(index, "overlays", {})
        key = (rel, budget, max_room, st.repo_key, hash(overlays.get(rel)), self.counter.name)
        hit = self._file_layers.get(key)
        if hit is not None:
            self._file_layers.move_to_end(key)
            return hit
        repo_room = budget - self.counter.count_pieces(head) - self.counter.count_pieces(self.fmt.infill("", "")) \
            - PATH_ALLOWANCE - self._reserve(budget, self._prefix_cap(budget) + self._suffix_cap(budget))
        repo = self._repo_wide_layer(index, st, min(max_room, repo_room), budget)
        repo_snips = [s for s in repo.snips if s.path != rel]
        taken = {(s.path, s.start) for s in repo_snips}
        whole = set(repo.whole_paths) - {rel}
        repo_tokens = repo.tokens - sum(s.tokens for s in repo.snips if s.path == rel)
        left = max(0, max_room - repo_tokens)
        own = int(left * NEIGHBOURHOOD_SHARE)
        limit = min(MAX_RANKED, max(32, left // 8))
        file_cands, deferred, imported = self._file_candidates(index, st, rel, n_lines, budget)
        personalization = {rel: 1.0}
        for p in imported:
            personalization.setdefault(p, 0.5)
        ranked, later, ranked_files = self._ranked_candidates(index, personalization, limit, 2, rel, st, budget)
        cands = file_cands + ranked + deferred + later
        snips, whole, _ = self._fill([], cands, ranked_files, own, index, 2, taken, whole, st)
        rest = [c for c in cands if c.key not in taken and c.path not in whole]
        stable = self._render(head, self._blocks(repo_snips + snips))
        layer = _FileLayer(repo_snips, snips, taken, whole, rest, ranked_files, stable, imported,
                           self._outline(st, rel), {s.path for s in repo_snips + snips if s.kind != "file"})
        self._file_layers[key] = layer
        while len(self._file_layers) > 32:
            self._file_layers.popitem(last=False)
        return layer

    # -- repository-wide layer ------------------------------------------------------------------
    def _repo_wide_layer(self, index: Any, st: _State, room: int, budget: int) -> _RepoWide:
        """Layer 1: the whole repository if it fits, else a share of the room by global rank.

        Independent of the current file (whose own block is dropped at selection), so it is computed
        once per repository state and budget and keeps its tokens identical across requests and files.
        """
        key = (st.repo_key, room, budget, self.counter.name)
        cached = self._repo_wide
        if cached is not None and cached.key == key:
            return cached
        snips: list[Snip] = []
        whole: set[str] = set()
        if budget >= REPO_WIDE_MIN_BUDGET or sum(st.sizes.values()) / 8 <= room:
            files = [p for p, _ in index.ranked_files(None)]
            total = 0
            everything: list[Snip] = []
            for p in files:
                s = self._whole_file(index, p, 1, st)
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
                limit = min(MAX_RANKED, max(64, share // 12))
                cands, later, ranked_files = self._ranked_candidates(index, {}, limit, 1, None, st, budget)
                snips, whole, total = self._fill([], cands + later, ranked_files, share, index, 1, set(), set(), st)
        tokens = sum(s.tokens for s in snips) + sum(self._block_overhead(p) for p in {s.path for s in snips})
        self._repo_wide = _RepoWide(key, snips, whole, tokens)
        return self._repo_wide

    def _block_overhead(self, path: str) -> int:
        return 1 + self.counter.count(f"{path}\n") + 2

    def _fill(self, chosen: list[Snip], cands: Iterable[_Candidate], ranked_files: Sequence[str], room: int,
              index: Any, layer: int, taken_keys: set, whole: set[str], st: _State | None = None,
              no_whole: set[str] | frozenset = frozenset(), keep_layer: bool = False,
              ) -> tuple[list[Snip], set[str], int]:
        """Greedy: candidates in priority order (first form that fits), then whole files by rank."""
        used = 0
        paths = {s.path for s in chosen}
        heads = {(s.path, s.start) for s in chosen}  # headers shown (a member's enclosing one is added once)
        for cand in cands:
            if used >= room:
                break
            if cand.path in whole or cand.key in taken_keys:
                continue
            overhead = 0 if cand.path in paths else self._block_overhead(cand.path)
            for form in cand.forms:
                # + the stub or the elision line (a whole file has neither), + enclosing headers not shown
                cost = form.tokens + overhead + (0 if form.kind == "file" else 1 if form.stub else 2)
                parents = []
                p = form.parent
                while p is not None and (p.path, p.start) not in heads:
                    parents.append(p)
                    cost += p.tokens
                    p = p.parent
                if used + cost <= room:
                    if form.layer != layer and not keep_layer:
                        form = form.moved(layer)
                    chosen.append(form)
                    taken_keys.add(cand.key)
                    paths.add(cand.path)
                    heads.add((form.path, form.start))
                    for p in parents:
                        heads.add((p.path, p.start))
                        taken_keys.add((p.path, p.start))
                    used += cost
                    break
        sizes = st.sizes if st is not None else {}
        refunds: dict[str, int] = {}
        for c in chosen:
            refunds[c.path] = refunds.get(c.path, 0) + c.tokens + 2
        for p in ranked_files:
            if used >= room - 8:
                break
            if p in whole or p in no_whole:
                continue
            size = sizes.get(p)
            refund = refunds[p] + self._block_overhead(p) if p in refunds else 0
            if size is not None and size / 8 > room - used + refund:
                continue  # too big at any plausible bytes per token: not read
            s = self._whole_file(index, p, layer, st)
            if s is None:
                continue
            cost = s.tokens + self._block_overhead(p)
            if used - refund + cost <= room:
                if p in refunds:
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
            shown = by_key[(layer, path)]
            starts = {s.start for s in shown}
            for s in list(shown):  # members come with their enclosing headers (class, impl), once
                p = s.parent
                while p is not None and p.start not in starts:
                    starts.add(p.start)
                    shown.append(p.moved(layer, "outline"))
                    p = p.parent
            parts = sorted(shown, key=lambda s: (s.start, -s.end))
            merged: list[Snip] = []
            for s in parts:  # drop snippets inside an earlier one (a signature inside a chosen body)
                if merged and s.start >= merged[-1].start and s.end <= merged[-1].end:
                    continue
                merged.append(s)
            out: list[str] = []
            prev_end = -1
            closed = False  # the previous piece needs no elision line after it (a stub, or members follow)
            for i, s in enumerate(merged):
                if out and s.start > prev_end + 1 and not closed:
                    out.append(elision_line(path))
                stub = s.stub
                nested_next = i + 1 < len(merged) and merged[i + 1].start <= s.body_end
                if stub and not nested_next:  # its body is elided: close it inline, stub style
                    out.append(s.text.rstrip("\r\n") + stub + "\n")
                else:
                    out.append(s.text)
                closed = bool(stub)
                prev_end = max(prev_end, s.end)
            blocks.append(_Block(layer, path, merged, "".join(out)))
        return blocks

    def _render(self, head: list[Piece], blocks: list[_Block]) -> _Rendered:
        """Pieces, exact token count and sections of the repository header plus ``blocks``."""
        counter = self.counter
        pieces: list[Piece] = [p for p in head if p != ""]
        sections: list[Section] = []
        if head:
            sections.append(Section("repo_header", "", self.repo_name, counter.count_pieces(head)))
        layer_names = {1: "repo", 2: "neighbourhood", 3: "near_cursor"}
        total = counter.count_pieces(pieces)
        for b in blocks:
            block_pieces = [p for p in self.fmt.file_block(b.path, b.text) if p != ""]
            block_tokens = counter.count_pieces(block_pieces)
            pieces.extend(block_pieces)
            total += block_tokens
            groups: list[Section] = []
            for s in b.snips:
                if s.kind == "outline" and groups and groups[-1].kind == "outline":
                    groups[-1].tokens += s.tokens
                    continue
                groups.append(Section(s.kind, b.path, s.symbol, s.tokens))
            groups[0].tokens += block_tokens - sum(g.tokens for g in groups)  # separators, path line, elisions
            for g in groups:
                g.layer = layer_names.get(b.layer, "near_cursor")  # type: ignore[attr-defined]
            sections.extend(groups)
        return _Rendered(pieces, total, sections)

    # -- build ----------------------------------------------------------------------------------
    def build(self, path: str, text: str, line: int, character: int, budget: int) -> ContextResult:
        start_t = time.perf_counter()
        fmt, counter = self.fmt, self.counter
        head = fmt.repo_header(self.repo_name) if self.repo_name else []
        cur_header = fmt.current_file_header(path)
        fixed = counter.count_pieces(head) + counter.count_pieces(cur_header) + counter.count_pieces(fmt.infill("", ""))
        if fixed > budget:
            raise ValueError(f"budget {budget} is smaller than the prompt format's fixed {fixed} tokens")
        prefix_raw, suffix_raw = split_at_cursor(text, line, character)
        offset = len(prefix_raw)
        suffix_cap = min(self._suffix_cap(budget), (budget - fixed) // 4)
        if "PRIVATE KEY" in text:  # a key block may span the cut: redact the whole buffer first
            prefix, suffix = redact(prefix_raw), redact(suffix_raw)
            suffix = self._head(suffix, suffix_cap) if fmt.fim else ""
            prefix_cap = min(self._prefix_cap(budget), budget - fixed - counter.count(suffix))
            cells = [self._cut_prefix(prefix, prefix_cap)]
        else:
            suffix = redact(self._head(suffix_raw, suffix_cap)) if fmt.fim else ""
            suffix = self._head(suffix, suffix_cap)
            prefix_cap = min(self._prefix_cap(budget), budget - fixed - counter.count(suffix))
            cells = self._prefix_cells(text, offset, line, prefix_cap)
        cells = [c for c in cells if c]
        prefix = "".join(cells)
        current_cost = sum(counter.count(c) for c in cells) + counter.count(suffix)
        max_room = budget - fixed - self._reserve(budget, self._prefix_cap(budget) + self._suffix_cap(budget))
        room = budget - fixed - self._reserve(budget, current_cost)
        self._body_cap = max(48, budget // 64)
        self._budget = budget

        index = self.index() if room > 0 else None
        layer: _FileLayer | None = None
        near: list[Snip] = []
        if index is not None:
            try:
                rel = index.rel(path) if hasattr(index, "rel") else path
                self._leave_file(index, rel, text)
                st = self._state(index)
                layer = self._file_layer(index, st, rel, text.count("\n") + 1, budget, max(0, max_room), head)
                visible = (line - prefix.count("\n"), line + suffix.count("\n"))
                left = room - (layer.stable.tokens - counter.count_pieces(head))
                if left > 0:
                    cands = self._near_candidates(index, st, rel, text, offset, line, character, layer, visible)
                    near = self._near_fill(index, st, rel, line, budget, layer, cands, left)
            except Exception as exc:  # never fail a completion because of the repository part
                self.log(f"repository context failed: {type(exc).__name__}: {exc}")
                layer, near = None, []
        return self._assemble(path, layer, near, head, cur_header, cells, suffix, budget, start_t)

    def _near_fill(self, index: Any, st: _State, rel: str, line: int, budget: int, layer: _FileLayer,
                   cands: list[_Candidate], left: int) -> list[Snip]:
        """The near-cursor selection. While the cursor stays on one line, what the previous request chose
        comes first, unchanged and in its place (what typing adds goes after it, as a later block), so
        typing an identifier (``obj.`` → ``obj.meth(``) does not reshuffle the prompt before the current
        file and the model's KV cache keeps it."""
        key = (rel, line, budget, id(layer))
        prev = self._sticky[1] if self._sticky is not None and self._sticky[0] == key else []
        taken = set(layer.taken)
        whole = set(layer.whole)
        near: list[Snip] = []
        used = 0
        if prev:
            first = [_Candidate(s.path, (s.path, s.start), [s]) for s in prev]
            near, _, used = self._fill([], first, [], left, index, 3, taken, whole, st, layer.partial, keep_layer=True)
        later = max((s.layer for s in near), default=2) + 1 if prev else 3
        no_whole = set(layer.partial) | {s.path for s in near}
        more, _, _ = self._fill([], cands + layer.rest, layer.ranked_files, left - used, index, later, taken, whole,
                                st, no_whole)
        near = near + more
        self._sticky = (key, near)
        return near

    @staticmethod
    def _reserve(budget: int, current_cost: int) -> int:
        """Room kept for the current file, rounded up so small edits keep the rest of the layout stable."""
        quantum = max(32, budget // 64)
        return -(-current_cost // quantum) * quantum

    def _assemble(self, path: str, layer: _FileLayer | None, near: list[Snip], head: list[Piece],
                  cur_header: list[Piece], cells: list[str], suffix: str, budget: int,
                  start_t: float) -> ContextResult:
        fmt, counter = self.fmt, self.counter
        stable = layer.stable if layer is not None else self._render(head, [])
        # whole files in an earlier layer supersede later snippets of the same file
        whole = {s.path for s in (layer.repo_snips + layer.snips if layer else []) if s.kind == "file"}
        whole |= {s.path for s in near if s.kind == "file"}
        near = [s for s in near if s.kind == "file" or s.path not in whole]
        tail = fmt.infill(_PREFIX_SLOT, suffix)
        at = tail.index(_PREFIX_SLOT)
        tail = tail[:at] + list(cells) + tail[at + 1:]
        tail = [p for p in cur_header + tail if p != ""]
        tail_tokens = counter.count_pieces(tail)
        priority = list(near)  # selection order: drop from the end when over budget
        while True:
            rendered = self._render([], self._blocks(near))
            total = stable.tokens + rendered.tokens + tail_tokens
            if total <= budget or not priority:
                break
            excess = total - budget
            while excess > 0 and priority:  # drop lowest-priority snippets worth the excess
                s = priority.pop()
                excess -= s.tokens
            keep = set(map(id, priority))
            near = [s for s in near if id(s) in keep]
        if total > budget and layer is not None:  # the stable layers alone are over (never expected)
            stable = self._render(head, [])
            total = stable.tokens + rendered.tokens + tail_tokens
        pieces = stable.pieces + rendered.pieces + tail
        sections = list(stable.sections) + rendered.sections
        sections.append(Section("file_header", path, "", counter.count_pieces(cur_header)))
        sections.append(Section("current_prefix", path, "", sum(counter.count(c) for c in cells)))
        infill_overhead = counter.count_pieces(fmt.infill("", ""))
        sections.append(Section("current_suffix", path, "", counter.count(suffix) + infill_overhead))
        shared = self.tracker.update(pieces)
        elapsed = round((time.perf_counter() - start_t) * 1000, 3)
        return ContextResult(pieces, fmt.render(pieces), total, budget, counter.name, shared, sections, elapsed,
                             "".join(cells), suffix)

    # -- chat -----------------------------------------------------------------------------------
    def chat_context(self, budget: int, path: str | None = None, text: str | None = None, line: int = 0) -> str:
        """Repository context for a chat prompt, as plain text within ``budget`` tokens.

        With a current file, the same neighbourhood selection as completions (without the FIM part);
        without one, the repository by global rank. Files are rendered as ``File: path`` + fenced code.
        """
        index = self.index()
        if index is None or budget <= 0:
            return ""
        # the same caps a completion at this budget uses (never whatever the last completion left)
        self._body_cap = max(48, budget // 64)
        self._budget = budget
        snips: list[Snip] = []
        if path is not None:
            rel = index.rel(path) if hasattr(index, "rel") else path
            if text is not None and not rel.startswith("../"):  # a file outside the root never enters the index
                self._sync_overlay(index, rel, text)
            st = self._state(index)
            got = self._file(index, rel, st)
            buf = text if text is not None else (got[0] if got else "")
            line = max(0, min(line, buf.count("\n")))
            offset = len(split_at_cursor(buf, line, 0)[0])
            file_cands, deferred, imported = self._file_candidates(index, st, rel, buf.count("\n") + 1)
            info = _FileLayer([], [], set(), set(), [], [], _Rendered([], 0, []), imported, self._outline(st, rel))
            near = self._near_candidates(index, st, rel, buf, offset, line, 0, info, (0, -1))
            pers = {rel: 1.0, **{p: 0.5 for p in imported}}
            ranked, later, files = self._ranked_candidates(index, pers, max(32, budget // 10), 2, None, st)
            whole_current = self._whole_file(index, rel, 3, st)
            first = [_Candidate(rel, (rel, "current"), [whole_current])] if whole_current else []
            snips, _, _ = self._fill([], first + near + file_cands + ranked + deferred + later, files,
                                     int(budget * 0.9), index, 2, set(), set(), st)
        else:
            st = self._state(index)
            ranked, later, files = self._ranked_candidates(index, {}, max(32, budget // 10), 2, None, st)
            snips, _, _ = self._fill([], ranked + later, files, int(budget * 0.9), index, 2, set(), set(), st)
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
