"""Near the cursor: what the code around the cursor is about to use, read from the buffer (not from the
index's copy of the file).

In an import or export list: the listed module's names it lacks (``import_lists``), nothing else.
Elsewhere, in priority order: code nearly the same as the lines above the cursor (``similar``: a sibling
implementation, whose next line is the likeliest one), members of the receiver being typed (see ``receivers``),
definitions of the names used around the cursor (bodies for names within a few lines, else signatures), the
enclosing class's other members and its bases, code less like the lines above the cursor, then the definitions
neighbouring the nearest names in the modules that define them.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.context.import_lists import unlisted_candidates
from engine.context.receivers import (IDENT, class_candidates, enclosing_class, receiver_candidates,
                                      returned_type_candidates)
from engine.context.similar import Similar, similar_candidates
from engine.context.snippets import Candidate, Repo, body_snip, breadth, header_snip

if TYPE_CHECKING:
    from indexer.models import Definition

NEAR_BEFORE = 40  # lines above the cursor whose names count as "near the cursor" (>= similar.QUERY_LINES)
NEAR_AFTER = 8
NEAR_MODULES = 3  # modules defining the names nearest the cursor: their definitions nearest to the one used
NEAR_MODULE_ENTRIES = 12  # are near-cursor candidates (this many per module)
NEAR_BODY_LINES = 8  # names used this close to the cursor get their definitions' bodies (when small); the
# others near the cursor get signatures
_RECEIVER = re.compile(r"([A-Za-z_$][\w$]*)\s*(?:\.|::|->)\s*[A-Za-z_$]?[\w$]*$")
# a member of a call's result being typed: ``getAdm(target).`` → the members of getAdm's return type
_CALL_RECEIVER = re.compile(r"([A-Za-z_$][\w$]*)\s*\([^()]*\)\s*(?:\.|::|->)\s*[A-Za-z_$]?[\w$]*$")
_PARTIAL_BEFORE = re.compile(r"[A-Za-z_]\w*$")
_PARTIAL_AFTER = re.compile(r"^\w+")
_NOT_NEAR = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | {
    "self", "cls", "this", "super", "true", "false", "null", "nil", "undefined", "let", "const", "var",
    "function", "fn", "pub", "use", "mod", "impl", "struct", "enum", "trait", "match", "new", "typeof",
    "instanceof", "void", "int", "str", "bool", "float", "bytes", "dict", "list", "set", "tuple", "len",
    "print", "range", "isinstance", "Some", "Ok", "Err", "Option", "Result", "Vec", "String", "Box", "mut",
    "ref", "where", "crate", "export", "default", "extends", "implements", "interface", "private", "public",
    "protected", "static", "readonly", "string", "number", "boolean", "any", "unknown", "never", "object",
}


def window(text: str, offset: int, before: int, after: int) -> tuple[list[str], int]:
    """Lines around the cursor (the cursor's line included) and the index of the cursor's line. ``text`` has
    ``\\n`` line ends (``text_position.to_lf``, as completions and chat pass it): a lone ``\\r`` is no break here."""
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


def near_names(lines: list[str], at: int, column: int) -> list[tuple[str, int]]:
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
        for name in IDENT.findall(text_line):
            if name in _NOT_NEAR or len(name) < 2:
                continue
            if d < dist.get(name, 1 << 30):
                dist[name] = d
    return sorted(dist.items(), key=lambda kv: kv[1])


def near_candidates(repo: Repo, rel: str, text: str, offset: int, line: int, column: int,
                    outline: list[Definition], imported: list[str], visible: tuple[int, int],
                    budget: int, ranked_files: Sequence[str] | None = None) -> list[Candidate]:
    """Layer 3 candidates, most specific first. ``outline`` is the current file's definitions as the
    index knows them, ``imported`` the files it imports, ``visible`` the buffer lines the prompt shows
    as the current file; ``budget`` (the request's) caps the bodies shown and cuts long signatures;
    ``ranked_files`` (the ranking's files for ``rel``; none: no search) are searched for code like the lines above
    the cursor (``similar``), which goes after the definitions of the names around the cursor and before the less
    specific candidates; a near-copy of those lines goes first of all (what follows it in a sibling implementation
    is the likeliest next line: serde-json's lexical parsers, seed 19/20 of the quality benchmark)."""
    body_cap = max(48, budget // 64)
    unlisted = unlisted_candidates(repo, rel, text, offset)
    if unlisted:  # in an import list what it lacks is all that matters (its items' own definitions are noise)
        return unlisted
    cands: list[Candidate] = []
    lines, at = window(text, offset, NEAR_BEFORE, NEAR_AFTER)
    before_cursor = lines[at][:column]
    receiver = _RECEIVER.search(before_cursor)
    if receiver:
        cands.extend(receiver_candidates(repo, rel, receiver.group(1), line, outline, imported, text, visible,
                                         budget))
    else:
        call = _CALL_RECEIVER.search(before_cursor)
        if call:
            cands.extend(returned_type_candidates(repo, rel, call.group(1)))
    imported_set = set(imported)
    later: list[Candidate] = []
    siblings: list[Definition] = []  # definitions of the nearest names, each defined once outside this file
    for name, dist in near_names(lines, at, column):
        defs = [d for d in repo.memo.definitions(name) if d.path != rel]
        if not defs:
            continue
        if len(defs) == 1 and len(siblings) < NEAR_MODULES and all(x.path != defs[0].path for x in siblings):
            siblings.append(defs[0])
        mine = [d for d in defs if d.path in imported_set]
        target = cands
        if mine:
            defs = mine[:3]
        elif len(defs) > 3:
            defs, target = defs[:2], later  # an ambiguous name: after the specific ones
        for d in defs:
            body = body_snip(repo, d, 3) if dist <= NEAR_BODY_LINES else None
            forms = [s for s in (body, header_snip(repo, d, 3)) if s is not None]
            if forms and forms[0].kind == "definition" and (forms[0].end - forms[0].start > 60
                                                             or forms[0].tokens > body_cap):
                forms = forms[1:]  # long bodies only as signatures near the cursor
            if forms:
                target.append(Candidate(d.path, (d.path, d.start_line), forms))
    # the enclosing class (its other members, from the buffer) and its bases
    for d in enclosing_class(outline, line):
        cands.extend(class_candidates(repo, rel, text, outline, d, visible))
    # what the cursor uses next often comes from the module the names around it come from: that
    # module's definitions, nearest in the file to the one used
    for d in siblings:
        entries = [o for o in repo.memo.outline(d.path) if o.parent == d.parent]
        entries.sort(key=lambda o: abs(o.start_line - d.start_line))
        for o in entries[:NEAR_MODULE_ENTRIES]:
            s = header_snip(repo, o, 3, "outline")
            if s is not None:
                later.append(Candidate(o.path, (o.path, s.start), [breadth(repo.counter, s, budget)]))
    similar = similar_candidates(repo, rel, lines[:at], ranked_files) if ranked_files is not None else Similar([], [])
    return similar.strong + cands + similar.other + later
