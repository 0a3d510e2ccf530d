"""Snippets: the pieces of repository files a prompt shows (whole files, definitions, headers), and the
candidates selection chooses among.

A header whose body is elided is closed inline, stub style (``def f(x): ...``, ``fn f() { ... }``), so
an outline costs one line per entry and a Python outline is valid Python; a member carries its enclosing
class/impl header (``parent``), shown with it when not shown otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.context.files import FileCache
from engine.context.index_view import IndexMemo
from engine.model.tokens import TokenCounter
from engine.text_position import split_lines

if TYPE_CHECKING:
    from engine.context.line_index import LineIndex
    from indexer.models import Definition


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
class Candidate:
    """A selection candidate: its forms from richest to poorest (the first that fits is taken)."""

    path: str
    key: tuple  # identity for de-duplication: (path, start line)
    forms: list[Snip]


#: path -> (the file's lines the headers were cut from, definition -> header snip). One version of a file's
#: lines per path: a header cached per definition could keep every version of an edited buffer alive.
HeaderCache = dict[str, tuple[Sequence[str], dict[tuple, Snip]]]


@dataclass
class WindowCache:
    """What ``similar`` keeps between requests: each file's windows (path -> (the lines they were cut from,
    [(first line, distinct identifiers)])), how many windows that is, and the last search (its key, its windows)."""

    files: dict[str, tuple[Sequence[str], list[tuple[int, tuple[str, ...]]]]] = field(default_factory=dict)
    held: int = 0
    last: tuple[tuple, list] | None = None


@dataclass(frozen=True)
class Repo:
    """What one request reads the repository through: this index generation's memoised answers, the file
    texts and header snippets kept across requests, the counter, and the root files are read under."""

    memo: IndexMemo
    files: FileCache
    headers: HeaderCache
    counter: TokenCounter
    root: str
    windows: WindowCache = field(default_factory=WindowCache)

    def file(self, path: str) -> tuple[str, LineIndex] | None:
        """(redacted text, lines) of a repository file."""
        return self.files.get(self.memo.index, self.root, path, self.memo.checked)


def make_snip(counter: TokenCounter, path: str, start: int, end: int, text: str, kind: str, symbol: str,
              layer: int) -> Snip:
    if not text.endswith("\n"):
        text += "\n"
    return Snip(path, start, end, text, kind, symbol, counter.count(text), layer)


def header_from_lines(counter: TokenCounter, d: Definition, layer: int, kind: str,
                      lines: Sequence[str]) -> Snip | None:
    """The header lines of ``d`` (its signature, from the line where it starts: decorators and attributes
    before it are left out) cut from ``lines``; None when the lines no longer hold it."""
    start = d.start_line
    sig = (d.signature or "").rstrip()
    n = max(1, sig.count("\n") + 1) if sig else 1
    name_line = d.name_line if d.name_line >= 0 else start
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
    snip = make_snip(counter, d.path, start, end, "".join(lines[start:end + 1]), kind, d.name, layer)
    snip.body_end = max(end, d.end_line)
    snip.name_line = name_line if start <= name_line <= end else start
    return snip


def header_snip(repo: Repo, d: Definition, layer: int, kind: str = "signature") -> Snip | None:
    """``d``'s header from the repository file, with its enclosing headers; cached per file text."""
    got = repo.file(d.path)
    if got is None:
        return None
    _, lines = got
    cached = repo.headers.get(d.path)
    if cached is None or cached[0] is not lines:  # first header of this file text: the older ones go
        cached = (lines, {})
        if len(repo.headers) > 50_000:
            repo.headers.clear()
        repo.headers[d.path] = cached
    by_definition = cached[1]
    cache_key = (d.start_line, d.name_line, d.signature, d.name)
    s = by_definition.get(cache_key)
    if s is not None:  # same file text: the same header
        return s if s.layer == layer and s.kind == kind else s.moved(layer, kind)
    snip = header_from_lines(repo.counter, d, layer, kind, lines)
    if snip is None:
        return None
    if d.parent:
        pd = repo.memo.parent_of(d)
        if pd is not None and pd.start_line < snip.start:
            snip.parent = header_snip(repo, pd, layer, "outline")
    by_definition[cache_key] = snip
    return snip


def body_snip(repo: Repo, d: Definition, layer: int) -> Snip | None:
    """``d`` whole (header and body)."""
    got = repo.file(d.path)
    if got is None:
        return None
    _, lines = got
    if d.start_line >= len(lines):
        return None
    end = min(d.end_line, len(lines) - 1)
    return make_snip(repo.counter, d.path, d.start_line, end, "".join(lines[d.start_line:end + 1]), "definition",
                     d.name, layer)


def outline_snips(repo: Repo, path: str, layer: int, parent: str | None = None) -> list[Snip]:
    """The headers of a file's definitions (of ``parent``'s members and ``parent`` itself, when given)."""
    out = []
    for d in repo.memo.outline(path):
        if parent is not None and d.parent != parent and d.qualified_name != parent:
            continue
        s = header_snip(repo, d, layer, "outline")
        if s is not None:
            out.append(s)
    return out


def module_outline_snips(repo: Repo, path: str, layer: int) -> list[Snip]:
    """The outline of a module another file uses (``ast::``, ``from email import utils``): its top-level
    definitions first, in file order, then the members of its classes and impls. What can follow
    ``module.`` / ``module::`` is a top-level name; in a large module (regex-syntax's ``ast/mod.rs``) file
    order spent a small budget on ``fmt``/``cmp`` of the first few types and never reached the rest."""
    snips = outline_snips(repo, path, layer)
    return [s for s in snips if s.parent is None] + [s for s in snips if s.parent is not None]


def whole_file(repo: Repo, path: str, layer: int) -> Snip | None:
    got = repo.file(path)
    if got is None:
        return None
    text, lines = got
    if not text:
        return None
    return make_snip(repo.counter, path, 0, max(0, len(lines) - 1), text, "file", "", layer)


def breadth(counter: TokenCounter, s: Snip, budget: int | None) -> Snip:
    """An entry of the per-file lists (names the file uses, imported modules, ranked definitions): at
    small budgets a long multi-line signature shows only its lines up to the one holding the name
    (usually the first), so the list reaches further down the ranking; what is near the cursor keeps
    whole signatures. ``budget`` None: never cut."""
    if budget is None or s.start == s.end or s.tokens <= max(32, budget // 256):
        return s
    last = max(s.start, min(s.name_line, s.end))
    head = "".join(split_lines(s.text)[:last - s.start + 1])
    if head == s.text:
        return s
    return Snip(s.path, s.start, last, head, s.kind, s.symbol, counter.count(head), s.layer, s.body_end,
                s.parent, s.name_line)
