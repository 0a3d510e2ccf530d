"""The cursor inside an import or export list: the names of the module it lists that the list does not
name yet, next to the cursor.

``import { A, B, | } from './types'``, ``export type { ... } from './types'``, ``from .util import (a, |``,
``use crate::value::{Map, |}``: what comes next is a name the listed module defines and the list lacks,
usually the one declared between the items before and after the cursor (lists tend to follow declaration
order). An IDE offers exactly those names; a prompt can only show them, so the module's declarations that
the list does not name are shown in declaration order, nearest to the item before the cursor first, as the
first near-cursor candidates. The module is the repository file that defines most of the listed names
(no import path is parsed: the same rule holds for every language and for re-exports).

Why: cuts inside long re-export lists (``@tanstack/query-core``'s ``index.ts``, immer's ``immer.ts``) were
missed by the engine and every baseline alike (``bench/quality_bench.py``, real 0.5B model): the prompt
showed the module's outline with the 150 listed names, the names around the cursor's definitions, and the
one missing name somewhere among them. With this view the 0.5B model still restarts the list from its
first item at 2K tokens (3 cuts of seed 14), so the benchmark does not show a gain yet; what it shows is
what an IDE's completion list holds, at a few hundred tokens.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING

from engine.context.snippets import Candidate, Repo, header_snip
from engine.model.name_rule import NameRule, name_before

if TYPE_CHECKING:
    from engine.context.line_index import LineIndex
    from indexer.models import Definition

SCAN_CHARS = 8_000  # how far from the cursor an enclosing list's brackets are looked for (150 names fit)
UNLISTED_SHOWN = 24  # declarations the list lacks, shown nearest to the item before the cursor first
ORDER_EVIDENCE = 4  # the module's names a list must hold, in declaration order, before its order is trusted
_OPENS = {")": "(", "}": "{", "]": "["}
_CLOSES = {opening: closing for closing, opening in _OPENS.items()}
# what precedes the bracket that opens an import or export list, on its line
_LIST_HEADS = {
    "{": re.compile(r"^\s*(?:(?:import|export)(?:\s+type)?|import\s+(?:type\s+)?[\w$]+\s*,"
                    r"|(?:pub(?:\([\w:\s]+\))?\s+)?use\s+[\w:]*::)\s*$"),
    "(": re.compile(r"^\s*from\s+[\w.]+\s+import\s*$"),
}
_PY_FROM_IMPORT = re.compile(r"^\s*from\s+[\w.]+\s+import\s+(?=[^(\n]*$)", re.M)  # ``from m import a, b, |``
# a line no list item starts with: the statement after a list that is not closed yet
_STATEMENT = re.compile(r"^\s*(?:import|export|from|use|pub|def|class|fn|function|const|let|var)\b", re.M)
_ANY_HEAD = re.compile(r"^\s*(?:import|export|from|use|pub)\b", re.M)  # cheap test before the bracket scan
_JS_MODULE = re.compile(r"\.[cm]?[jt]sx?$")
_IDENT = re.compile(r"[A-Za-z_$][\w$]*")
_WILDCARD = re.compile(r"^\s*(?:export\s+\*|from\s+\S+\s+import\s+\*|pub\s+use\s+[\w:]*::\*)", re.M)
# the statements by which a module gives names it does not define (``module_names``): a JavaScript/TypeScript
# re-export, a Rust ``pub use``, a Python import (a module's imports are its attributes)
_GIVING_STATEMENT = {
    "js": re.compile(r"^[ \t]*export\s+(?:type\s*)?[{*][^\n]*", re.M),
    "rs": re.compile(r"^[ \t]*pub(?:\([\w:\s]+\))?\s+use\b[^\n]*", re.M),
    "py": re.compile(r"^(?:from|import)\b[^\n]*", re.M),
}
_EXPORTED_DECLARATION = re.compile(r"^[ \t]*export\s+(?:declare\s+)?(?:default\s+)?(?:abstract\s+)?(?:async\s+)?"
                                   r"(?:const|let|var|function\*?|class|type|interface|enum|namespace)\s+([\w$]+)", re.M)
_STRING = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")
_MODIFIERS = frozenset({"type"})  # what may precede a listed name (``export { type X }``)
_NOT_NAMES = frozenset({"type", "as", "self", "super", "crate", "typeof", "import", "export", "from", "default"})
_STATEMENT_WORDS = _NOT_NAMES | {"const", "let", "var", "function", "class", "interface", "enum", "namespace", "declare",
                                 "abstract", "async", "pub", "use", "in", "instanceof", "new", "void", "true", "false"}


def enclosing_list(text: str, offset: int) -> tuple[int, int] | None:
    """(position of the opening bracket, of the closing one or the end of the scan) of the import or export
    list around ``offset``; None when the innermost bracket around the cursor does not open one. A Python
    ``from m import a, b`` line without brackets is a list from its ``import`` to the end of the line."""
    line_start = text.rfind("\n", 0, offset) + 1
    unbracketed = _PY_FROM_IMPORT.match(text, line_start, offset)
    if unbracketed:
        end = text.find("\n", offset)
        return unbracketed.end() - 1, end if end >= 0 else len(text)
    lo = max(0, offset - SCAN_CHARS)
    if not _ANY_HEAD.search(text, lo, offset):  # the usual case, typing in code far from the imports
        return None
    depth: list[str] = []
    pos = offset - 1
    while pos >= lo:
        ch = text[pos]
        if ch in _OPENS:
            depth.append(_OPENS[ch])
        elif ch in "({[":
            if depth:
                if depth.pop() != ch:
                    return None
            else:
                break
        pos -= 1
    else:
        return None
    head = _LIST_HEADS.get(text[pos])
    line_start = text.rfind("\n", 0, pos) + 1
    if head is None or not head.match(text[line_start:pos]):
        return None
    hi = min(len(text), offset + SCAN_CHARS)
    unclosed = _STATEMENT.search(text, offset, hi)  # a list being written: what follows is the next statement
    if unclosed:
        hi = unclosed.start()
    end = text.find(_CLOSES[text[pos]], offset, hi)
    return pos, end if end >= 0 else hi


def _names(segment: str) -> list[str]:
    segment = re.sub(r"//[^\n]*|#[^\n]*|/\*.*?\*/", " ", segment, flags=re.S)
    return [n for n in _IDENT.findall(segment) if n not in _NOT_NAMES]


def listed_module(repo: Repo, rel: str, listed: list[str]) -> str | None:
    """The repository file (not ``rel``) that defines the most of the ``listed`` names at its top level;
    None unless it defines two of them (or the list's only one). A tie goes to the module of the name listed
    first: votes are counted in list order, not in a set's order, which changes with each process's string
    hashing (PYTHONHASHSEED) and made a restarted server, or the next quality run, pick the other module."""
    votes: Counter = Counter()
    for name in dict.fromkeys(listed):
        for path in dict.fromkeys(d.path for d in repo.memo.definitions(name) if d.path != rel and d.parent is None):
            votes[path] += 1  # most_common(1) keeps the first counted of equal votes
    if not votes:
        return None
    path, n = votes.most_common(1)[0]
    return path if n >= min(2, len(set(listed))) else None


def _list_at(repo: Repo, rel: str, text: str, offset: int) -> tuple[list[str], list[str], str, str | None] | None:
    """The import/export list around ``offset``: the names listed before and after the cursor, the name being
    typed at the cursor (not listed yet), and the module the list names (None when no repository file defines
    enough of them); None when the cursor is in no such list."""
    span = enclosing_list(text, offset)
    if span is None:
        return None
    before = _names(text[span[0] + 1:offset])
    typed = name_before(text[span[0] + 1:offset])
    if typed and before and before[-1] == typed:
        before = before[:-1]  # the name being typed is not listed yet
    after = _names(text[offset:span[1]])
    listed = before + after
    return before, after, typed, listed_module(repo, rel, listed) if listed else None


def module_names(repo: Repo, module: str, text: str, lines: LineIndex) -> dict[str, int]:
    """The names ``module`` (its source ``text``) gives other files, each with where it is first declared or
    given in ``text`` (a character offset): its top-level definitions in the index, the names its re-exports
    mention (``export { isServer } from``, ``pub use``, ``from .case import TestCase`` in a Python package's
    ``__init__``; a TypeScript ``import`` gives nothing: seed 16 chose ``QueryClient``, which ``types.ts`` only
    imports), and the names its ``export`` declarations declare (read from the text too: the index may lag
    behind it, and a ``declare``/``namespace`` export is no top-level definition there). A few more names than
    the module gives (a statement's module path) cost little; one fewer would force a wrong answer on the
    decoder. ``lines`` is ``text``'s line index (the file cache's), where the index's line numbers point."""
    where: dict[str, int] = {}

    def give(name: str, at: int) -> None:
        if at < where.get(name, len(text) + 1):
            where[name] = at

    for d in repo.memo.outline(module) if len(lines) else ():
        if d.parent is None:
            line = d.name_line if 0 <= d.name_line < len(lines) else min(max(d.start_line, 0), len(lines) - 1)
            column = text.find(d.name, lines.start(line), lines.start(line + 1))
            give(d.name, column if column >= 0 else lines.start(line))
    language = "js" if _JS_MODULE.search(module) else "rs" if module.endswith(".rs") else "py"
    for m in _GIVING_STATEMENT[language].finditer(text):
        stmt = m.group(0)
        opening = stmt.rfind("{") if stmt.rfind("{") > stmt.rfind("(") else stmt.rfind("(")
        if opening >= 0 and _CLOSES[stmt[opening]] not in stmt[opening:]:  # a list over several lines
            close = text.find(_CLOSES[stmt[opening]], m.end(), m.end() + SCAN_CHARS)
            stmt = text[m.start():close if close >= 0 else m.end()]
        for n in _IDENT.finditer(_STRING.sub(lambda q: " " * len(q.group(0)), stmt)):
            if n.group(0) not in _STATEMENT_WORDS:
                give(n.group(0), m.start() + n.start())
    for m in _EXPORTED_DECLARATION.finditer(text):
        give(m.group(1), m.start(1))
    return where


def declaration_gap(where: dict[str, int], before: list[str], after: list[str]) -> set[str] | None:
    """The names of ``where`` (a module's names and their positions, ``module_names``) declared between the
    listed names just before and just after the cursor, when the list follows the module's declaration order
    (at least ``ORDER_EVIDENCE`` of its names are the module's, each declared after the one listed before it);
    None when it does not, or when nothing is declared in the gap (the list's next item is the next
    declaration: what comes may be out of order).

    Why: an export list that follows declaration order (``@tanstack/query-core``'s ``index.ts`` lists 94 of
    ``types.ts``'s names, in order) has one right answer, the name declared in the gap; the module's other
    unlisted names are wrong there. The 0.5B model, offered every unlisted name of the module, wrote a wrong
    one on 4 of the 6 list cuts where it wrote an offered one at 2K (seeds 21, 22, 25 of
    ``bench/quality_bench.py``)."""
    placed = [where[n] for n in before + after if n in where]
    if len(placed) < ORDER_EVIDENCE or any(a >= b for a, b in zip(placed, placed[1:])):
        return None
    low = next((where[n] for n in reversed(before) if n in where), -1)
    high = next((where[n] for n in after if n in where), float("inf"))
    listed = set(before + after)
    return {n for n, at in where.items() if low < at < high and n not in listed} or None


def list_name_rule(repo: Repo, rel: str, text: str, offset: int) -> NameRule | None:
    """What the completion at ``offset`` may name first inside an import/export list: a name the list lacks,
    and one the listed module gives (``module_names``) when the module is sure (it defines every listed name
    the repository defines at all; aliases and outside names count for nothing) and gives no wildcard
    re-export; only the ones declared in the gap the cursor is in when the list follows declaration order
    (``declaration_gap``). A name is required while the list goes on after the cursor. None outside a list
    or in one that lists nothing yet."""
    at = _list_at(repo, rel, text, offset)
    if at is None or not (at[0] or at[1]):
        return None
    before, after, typed, module = at
    listed = frozenset(before + after)
    allowed = None
    got = repo.file(module) if module is not None else None
    if module is not None and got is not None and not _WILDCARD.search(got[0]) and all(
            any(d.path == module for d in defined) for name in listed
            if (defined := [d for d in repo.memo.definitions(name) if d.parent is None])):
        where = module_names(repo, module, *got)
        names = declaration_gap(where, before, after) or set(where) - listed
        allowed = tuple(sorted(names)) or None
    return NameRule(typed=typed, allowed=allowed, banned=listed, passes=_MODIFIERS, required=bool(after))


def unlisted_candidates(repo: Repo, rel: str, text: str, offset: int) -> list[Candidate]:
    """The declarations the import/export list around ``offset`` lacks, of the module it lists, nearest in
    declaration order to the item before the cursor first, none declared after the item after the cursor;
    [] when the cursor is in no such list. Keys are their own (``"unlisted"``): an earlier layer's outline
    of the same module, which also lists every name already imported, does not stand in for them."""
    at = _list_at(repo, rel, text, offset)
    if at is None or at[3] is None:
        return []
    before, after, _, module = at
    names = set(before + after)
    top: list[Definition] = [d for d in repo.memo.outline(module) if d.parent is None]
    order = {d.name: i for i, d in enumerate(top)}
    anchor = order.get(before[-1], -1) if before else -1
    # the gap ends at the item after the cursor (declared after the anchor): what lies beyond it is
    # another gap's, and a model copies what sits last before the cursor
    gap_end = min([order[n] for n in after if n in order and order[n] > anchor][:1] or [len(top)])
    unlisted = [(i, d) for i, d in enumerate(top) if d.name not in names and i < gap_end]
    exports_only = bool(_JS_MODULE.search(module))  # a JavaScript/TypeScript list names what the module exports
    unlisted.sort(key=lambda item: (exports_only and not item[1].signature.lstrip().startswith("export"),
                                    abs(item[0] - anchor) + (0.5 if item[0] < anchor else 0)))
    cands = []
    for _, d in unlisted[:UNLISTED_SHOWN]:
        s = header_snip(repo, d, 3, "outline")
        if s is not None:
            cands.append(Candidate(d.path, (d.path, s.start, "unlisted"), [s]))
    return cands
