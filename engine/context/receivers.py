"""Members the cursor is about to use: of the receiver being typed (``obj.``/``Type::``/``f(x).``, also
while its member name is being typed) and of the class around the cursor.

A receiver resolves to: the enclosing class (``self``/``this``), an imported module of that name, a
repository module of that name the index did not resolve as an import, a type of that name, or, for a
receiver of unknown type, the types that define the most members the buffer uses on it; for a call's
result, the type the function's signature says it returns.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from typing import TYPE_CHECKING

from engine.context.index_view import module_name
from engine.context.redact import kind_for, redact
from engine.context.snippets import Candidate, Repo, breadth, header_from_lines, module_outline_snips, outline_snips
from engine.text_position import split_lines

if TYPE_CHECKING:
    from indexer.models import Definition

SELF_NAMES = {"self", "this", "cls", "Self", "super"}
TYPE_KINDS = ("class", "struct", "interface", "enum", "trait", "impl", "module", "namespace", "object")
CLASS_KINDS = ("class", "struct", "interface", "impl", "trait", "enum")
IDENT = re.compile(r"[A-Za-z_]\w*")
_RETURNS = re.compile(r"(?:\)\s*:|->)\s*([^{=;]+?)\s*(?:\{|:|=>|;|where\b|$)")
_WRAPPERS = frozenset({"Option", "Result", "Box", "Rc", "Arc", "RefCell", "Cell", "Vec", "Promise", "Optional",
                       "Awaitable", "Iterator", "Iterable", "impl", "dyn", "mut", "const", "readonly", "Ref",
                       "RefMut", "Cow", "Mutex", "MutexGuard", "Self", "self"})


def enclosing_class(outline: list[Definition], line: int) -> list[Definition]:
    """The innermost class-like definition around ``line`` (a list of at most one)."""
    return [d for d in outline if d.kind in CLASS_KINDS and d.start_line <= line <= d.end_line][-1:]


def _outline_candidates(repo: Repo, path: str, parent: str | None = None) -> list[Candidate]:
    return [Candidate(path, (path, s.start), [s]) for s in outline_snips(repo, path, 3, parent=parent)]


def _module_candidates(repo: Repo, path: str) -> list[Candidate]:
    return [Candidate(path, (path, s.start), [s]) for s in module_outline_snips(repo, path, 3)]


def current_members(repo: Repo, rel: str, text: str, outline: list[Definition], parent: str,
                    visible: tuple[int, int]) -> list[Candidate]:
    """Header lines of the current file's members of ``parent`` that the prompt does not show, read
    from the buffer (the index's line numbers are used only where the buffer still agrees)."""
    members = [d for d in outline if d.parent == parent and not visible[0] <= d.start_line <= visible[1]]
    if not members:
        return []
    lines = split_lines(text)  # numbered as the index's rows (``splitlines`` also broke at form feeds)
    out = []
    for d in members:
        ln = d.name_line if d.name_line >= 0 else d.start_line
        if not 0 <= ln < len(lines) or d.name not in lines[ln]:
            continue
        s = header_from_lines(repo.counter, d, 3, "outline", lines)
        if s is not None:
            s.text = redact(s.text, kind_for(rel))
            s.tokens = repo.counter.count(s.text)
            out.append(Candidate(rel, (rel, s.start), [s]))
    return out


def bases(signature: str) -> list[str]:
    """The base classes/interfaces a class header names (``class A(B, C):``, ``extends B``, ``: B``)."""
    m = re.search(r"\(([^)]*)\)\s*:?\s*$", signature or "") or re.search(r"\b(?:extends|implements|:)\s+(.+?)\s*\{?\s*$", signature or "")
    if not m:
        return []
    names = []
    for part in m.group(1).split(","):
        part = part.strip().split("[", 1)[0].split("<", 1)[0]
        if "=" in part or not part:
            continue
        ident = part.replace("::", ".").split(".")[-1].strip()
        if IDENT.fullmatch(ident) and ident not in ("object", "metaclass"):
            names.append(ident)
    return names


def class_candidates(repo: Repo, rel: str, text: str, outline: list[Definition], cls: Definition,
                     visible: tuple[int, int]) -> list[Candidate]:
    """A class around the cursor: its other members (from the buffer) and the outlines of its bases."""
    cands = list(current_members(repo, rel, text, outline, cls.qualified_name, visible))
    for base in bases(cls.signature):
        for bd in repo.memo.definitions(base)[:2]:
            if bd.path == rel:
                continue
            cands.extend(_outline_candidates(repo, bd.path, bd.qualified_name))
    return cands


def receiver_candidates(repo: Repo, rel: str, name: str, line: int, outline: list[Definition], imports: list[str],
                        text: str, visible: tuple[int, int], budget: int) -> list[Candidate]:
    """The members of ``name``, the receiver being typed (``name.``, ``name::``, ``name->``)."""
    cands: list[Candidate] = []
    if name in SELF_NAMES:
        for d in enclosing_class(outline, line):
            cands.extend(class_candidates(repo, rel, text, outline, d, visible))
        return cands
    # a module imported under this name, or a type/namespace with members
    found = False
    for imported in imports:
        if module_name(imported) == name:
            found = True
            cands.extend(_module_candidates(repo, imported))
    if not found:  # a repository module by that name that the index did not resolve as an import
        # (``from . import reduction``, ``hir::translate::``, a module injected at run time): the
        # nearest one in the tree
        near_first = sorted((p for p in repo.memo.files_of_module(name) if p != rel),
                            key=lambda p: (-len(os.path.commonpath([p, rel])) if os.path.dirname(p) and os.path.dirname(rel) else 0, p))
        for p in near_first[:1]:
            cands.extend(_module_candidates(repo, p))
    declared = declared_type_candidates(repo, rel, name, text)
    if declared:  # the buffer says what it is: better than a type named like it (``shared`` → ``Shared``)
        return cands + declared
    type_name = "".join(part[:1].upper() + part[1:] for part in name.split("_"))  # parser_state → ParserState
    defs = repo.memo.definitions(name)[:3] + (repo.memo.definitions(type_name)[:2] if type_name != name else [])
    for d in defs:
        if d.kind in TYPE_KINDS and d.path != rel:
            cands.extend(_outline_candidates(repo, d.path, d.qualified_name))
    if not cands:
        cands.extend(duck_typed(repo, rel, name, text, budget))
    return cands


def declared_types(text: str, name: str) -> list[str]:
    """Type names the buffer declares ``name`` to have, most often declared first: ``name: Type`` (a Rust
    field, parameter or ``let``; a Python or TypeScript annotation), wrappers (``Arc<..>``, ``Option[..]``)
    and module paths looked through. Only capitalised names count: a struct literal's ``name: value`` is
    not a type."""
    pattern = re.compile(rf"(?<![\w$\"'.]){re.escape(name)}\s*\??:\s*(?!:)([^=;,)\n{{]+)")
    votes: Counter = Counter()
    for m in pattern.finditer(text):
        for ident in re.findall(r"\b[A-Za-z_$][\w$]*\b(?!\s*(?:::|\.))", m.group(1)):
            if ident[:1].isupper() and ident not in _WRAPPERS:
                votes[ident] += 1
                break
    return [t for t, _ in votes.most_common()]


def declared_type_candidates(repo: Repo, rel: str, name: str, text: str) -> list[Candidate]:
    """The member outline of the repository type the buffer declares ``name`` to be (``self.shared.`` with
    ``shared: slab::Ref<ScheduledIo>`` among the fields → ``ScheduledIo``'s members)."""
    for type_name in declared_types(text, name)[:2]:
        defs = [d for d in repo.memo.definitions(type_name)[:2] if d.kind in TYPE_KINDS and d.path != rel]
        if defs:
            return [c for d in defs for c in _outline_candidates(repo, d.path, d.qualified_name)]
    return []


def returned_type_candidates(repo: Repo, rel: str, func: str) -> list[Candidate]:
    """A member of a call's result (``getAdm(target).``): the member outline of the repository type
    that ``func``'s signature declares it returns (``): T``, ``-> T``; wrappers such as ``Option<T>``
    are looked through; ``Self`` is the function's own class)."""
    cands: list[Candidate] = []
    seen: set[tuple] = set()
    for fd in repo.memo.definitions(func)[:3]:
        m = _RETURNS.search((fd.signature or "").replace("\n", " "))
        if not m:
            continue
        names = [n for n in re.findall(r"[A-Za-z_$][\w$]*", m.group(1)) if n not in _WRAPPERS]
        if re.match(r"\s*&?\s*(?:'\w+\s+)?(?:mut\s+)?Self\b", m.group(1)) and fd.parent:
            names.insert(0, fd.parent.replace("::", ".").split(".")[-1])
        for type_name in names[:1]:
            for d in repo.memo.definitions(type_name)[:2]:
                if d.kind not in TYPE_KINDS or d.path == rel or (d.path, d.qualified_name) in seen:
                    continue
                seen.add((d.path, d.qualified_name))
                cands.extend(_outline_candidates(repo, d.path, d.qualified_name))
    return cands


def duck_typed(repo: Repo, rel: str, name: str, text: str, budget: int) -> list[Candidate]:
    """A receiver of unknown type: the repository types that define the most of the members this
    buffer uses on that name elsewhere (``msg.get_payload()``, ``msg.walk()`` → ``class Message``),
    their member outlines."""
    used = dict.fromkeys(re.findall(rf"(?<![\w$]){re.escape(name)}\s*(?:\.|::|->)\s*([A-Za-z_$][\w$]*)", text))  # text order
    votes: Counter = Counter()
    for member in used:
        defs = repo.memo.definitions(member)
        if not defs or len(defs) > 8:  # unknown or everywhere (``get``): no evidence
            continue
        for d in defs:
            if d.parent and d.path != rel:
                votes[(d.path, d.parent)] += 1
    cands: list[Candidate] = []
    if not votes:
        return cands
    best = max(votes.values())
    for (path, parent), n in votes.most_common(2):
        if n < best or (n < 2 and len(used) > 1):
            break
        for s in outline_snips(repo, path, 3, parent=parent):
            cands.append(Candidate(path, (path, s.start), [breadth(repo.counter, s, budget)]))
    return cands
