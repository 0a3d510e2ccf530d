"""The layers that do not depend on the cursor: the repository-wide part and the current file's
neighbourhood.

- Repository-wide (layer 1, at large budgets): the whole repository if it fits, else a share of the room
  by global rank (definition signatures first, then whole files). It depends only on the repository.
- Per-file neighbourhood (layer 2): definitions of every name the current file uses (resolved through
  its imports by the index), outlines of the modules it imports, then definitions by graph rank
  (PageRank personalised to the current file and its imports); a name's third and later definitions
  (``new``, ``close`` in every type) and other files' test-only code go after everything else of the
  layer.

Each layer has its own budget, fixed by the total budget alone (not by what the other layers happen to
hold), so what is near the cursor never changes what fits of the earlier layers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.context.fill import block_overhead, fill
from engine.context.layout import Block, Rendered, blocks, render
from engine.context.snippets import Candidate, Repo, Snip, breadth, header_snip, module_outline_snips, whole_file
from engine.model.prompt_format import Piece, PromptFormat

if TYPE_CHECKING:
    from indexer.models import Definition

REPO_WIDE_MIN_BUDGET = 32_768  # below this every token goes to the per-file neighbourhood
REPO_WIDE_SHARE = 0.5  # of the room, when the whole repository does not fit
NEIGHBOURHOOD_SHARE = 0.6  # of what the repository-wide part leaves; the rest is near the cursor
REPEAT_DISTANCE = 1024  # tokens: material the stable layers show further than this before the current file
# may be shown again next to it when the near-cursor part selects it (see ``far_from_cursor``)
MAX_RANKED = 2000  # ranked definitions asked of the index per layer (beyond that, whole files by rank)
RANKED_REPEATS_KEPT = 2  # definitions of one name listed in rank order; the rest of them go last


@dataclass
class RepoWide:
    """The repository-wide layer for one repository state, room and budget (``key``)."""

    key: tuple
    snips: list[Snip]
    whole_paths: set[str]
    tokens: int


@dataclass
class FileLayer:
    """Everything that depends on the current file but not on the cursor (computed once per file)."""

    repo_snips: list[Snip]  # the repository-wide part without the current file
    snips: list[Snip]  # the per-file neighbourhood
    taken: set
    whole: set[str]
    rest: list[Candidate]  # candidates that did not fit: the near-cursor part continues with them
    ranked_files: list[str]
    stable: Rendered  # repository header + the two layers, rendered
    imported: list[str]
    outline: list[Definition]  # the current file's definitions, as the index knows them
    partial: set[str] = field(default_factory=set)  # files the stable layers show in part
    far: set = field(default_factory=set)  # keys of ``taken`` the stable layers show only far from the cursor
    far_whole: set[str] = field(default_factory=set)  # files the stable layers show whole, far from the cursor


def is_test_only(d: Definition) -> bool:
    """A definition only tests can use: inside a ``tests``/``test`` module (Rust's ``#[cfg(test)] mod
    tests``, private to that module and not even compiled outside tests), or a ``test_*`` function."""
    if d.name.startswith("test_"):
        return True
    parent = d.parent or ""
    return bool(parent) and any(part in ("tests", "test") for part in parent.replace("::", ".").split("."))


def file_candidates(repo: Repo, path: str, n_lines: int,
                    budget: int | None) -> tuple[list[Candidate], list[Candidate], list[str]]:
    """Layer 2: names used anywhere in the file, imported modules' outlines.

    Returns (first, deferred, imported files): a name whose definitions are neither imported nor
    unique (``append``, ``get``) and the private members of imported modules are deferred until
    after the graph-ranked signatures — the outline of a module degrades to its public part.
    ``budget`` None: long signatures are never cut (see ``breadth``).
    """
    cands: list[Candidate] = []
    deferred: list[Candidate] = []
    imported = repo.memo.imports_of(path)
    imported_set = set(imported)
    found = repo.memo.index.definitions_referenced_in(path, 0, n_lines)
    per_name = Counter(d.name for d in found)
    for d in found:
        if d.path == path:
            continue
        s = header_snip(repo, d, 2)
        if s is not None:
            target = cands if (d.path in imported_set or per_name[d.name] == 1) else deferred
            target.append(Candidate(d.path, (d.path, s.start), [breadth(repo.counter, s, budget)]))
    for p in imported:
        for s in module_outline_snips(repo, p, 2):
            public = not s.symbol.startswith("_") or (s.symbol.startswith("__") and s.symbol.endswith("__"))
            (cands if public else deferred).append(Candidate(p, (p, s.start), [breadth(repo.counter, s, budget)]))
    return cands, deferred, imported


def ranked_candidates(repo: Repo, personalization: dict[str, float], limit: int, layer: int, skip: str | None,
                      budget: int | None) -> tuple[list[Candidate], list[Candidate], list[str]]:
    """Definitions by graph rank, as (first, later, ranked files); callers place ``later`` after
    everything else, so the same budget reaches further down the ranking. ``later`` holds:

    - the definitions of a name beyond its first ``RANKED_REPEATS_KEPT`` (``new``, ``fmt``, ``close``
      defined in every type): each costs as much as a new name but tells the model little more; in the
      stdlib and Rust corpora they were a third of the ranked entries a small budget reached;
    - test-only code of other files (see ``is_test_only``): no other file can name it.

    Definitions in the file ``skip`` are left out; ``budget`` None: long signatures are never cut."""
    index = repo.memo.index
    first: list[Candidate] = []
    later: list[Candidate] = []
    shown: Counter = Counter()
    for d, _score in index.ranked_definitions(personalization, limit):
        if d.path == skip:
            continue
        s = header_snip(repo, d, layer, "outline")
        if s is not None:
            shown[d.name] += 1
            target = later if shown[d.name] > RANKED_REPEATS_KEPT or is_test_only(d) else first
            target.append(Candidate(d.path, (d.path, s.start), [breadth(repo.counter, s, budget)]))
    files = [p for p, _ in index.ranked_files(personalization) if p != skip]
    return first, later, files


def repo_wide_layer(repo: Repo, key: tuple, room: int, budget: int) -> RepoWide:
    """Layer 1: the whole repository if it fits, else a share of the room by global rank (nothing below
    ``REPO_WIDE_MIN_BUDGET`` unless the whole repository fits).

    Independent of the current file (whose own block is dropped at selection), so callers compute it
    once per repository state and budget (``key``) and its tokens stay identical across requests and files.
    """
    counter = repo.counter
    snips: list[Snip] = []
    whole: set[str] = set()
    if budget >= REPO_WIDE_MIN_BUDGET or sum(repo.memo.sizes.values()) / 8 <= room:
        files = [p for p, _ in repo.memo.index.ranked_files(None)]
        total = 0
        everything: list[Snip] = []
        for p in files:
            s = whole_file(repo, p, 1)
            if s is None:
                continue
            total += s.tokens + block_overhead(counter, p) + 1
            everything.append(s)
            if total > room:
                break
        if total <= room:
            snips, whole = everything, {s.path for s in everything}
        elif budget >= REPO_WIDE_MIN_BUDGET:
            share = int(room * REPO_WIDE_SHARE)
            limit = min(MAX_RANKED, max(64, share // 12))
            cands, later, ranked_files = ranked_candidates(repo, {}, limit, 1, None, budget)
            snips, whole, total = fill(repo, cands + later, ranked_files, share, 1, set(), set())
    tokens = sum(s.tokens for s in snips) + sum(block_overhead(counter, p) for p in {s.path for s in snips})
    return RepoWide(key, snips, whole, tokens)


def file_layer(fmt: PromptFormat, repo_name: str, repo: Repo, rel: str, n_lines: int, budget: int, max_room: int,
               head: list[Piece], repo_wide: RepoWide) -> FileLayer:
    """The repository-wide part (without ``rel``) and the per-file neighbourhood of ``rel``, rendered
    after ``head``; ``max_room`` is what the current file and the format leave of the budget."""
    repo_snips = [s for s in repo_wide.snips if s.path != rel]
    taken = {(s.path, s.start) for s in repo_snips}
    whole = set(repo_wide.whole_paths) - {rel}
    repo_tokens = repo_wide.tokens - sum(s.tokens for s in repo_wide.snips if s.path == rel)
    left = max(0, max_room - repo_tokens)
    own = int(left * NEIGHBOURHOOD_SHARE)
    limit = min(MAX_RANKED, max(32, left // 8))
    file_cands, deferred, imported = file_candidates(repo, rel, n_lines, budget)
    personalization = {rel: 1.0}
    for p in imported:
        personalization.setdefault(p, 0.5)
    ranked, later, ranked_files = ranked_candidates(repo, personalization, limit, 2, rel, budget)
    cands = file_cands + ranked + deferred + later
    snips, whole, _ = fill(repo, cands, ranked_files, own, 2, taken, whole)
    rest = [c for c in cands if c.key not in taken and c.path not in whole]
    stable_blocks = blocks(repo_snips + snips)
    stable = render(fmt, repo.counter, repo_name, head, stable_blocks)
    near_room = max(0, max_room - (stable.tokens - repo.counter.count_pieces(head)))  # what follows the stable layers
    far, far_whole = far_from_cursor(stable_blocks, stable.block_tokens, near_room, taken)
    return FileLayer(repo_snips, snips, taken, whole, rest, ranked_files, stable, imported,
                     repo.memo.outline(rel), {s.path for s in repo_snips + snips if s.kind != "file"},
                     far, far_whole)


def far_from_cursor(stable_blocks: list[Block], block_tokens: list[int], near_room: int,
                    taken: set) -> tuple[set, set[str]]:
    """(keys of ``taken``, whole files) that the stable layers show only in blocks ending more than
    ``REPEAT_DISTANCE`` tokens before the current file (counting the ``near_room`` the near-cursor part may
    fill after them; ``block_tokens``: each block's tokens as ``render`` counted them): the near-cursor
    part may show them again, next to the current file. A key is far when a far block's snippet of its
    file covers its line.

    Why: at 8K tokens a receiver's class outline sat 3,500 tokens before the current file in the per-file
    layer while at 2K, where the 0.5B model got the member (``self.result.`` → ``wasSuccessful``), it was the
    last block. Measured (``bench/quality_bench.py``, xfile cuts, seed 14, 8K): identifier exact match 0.13
    before and after, the same cases; the model still misses that member with the outline adjacent. Kept as
    neutral: what the near-cursor part chose is shown next to the cursor, as the layout intends."""
    spans: dict[str, list[tuple[int, int]]] = {}
    near_spans: dict[str, list[tuple[int, int]]] = {}
    far_whole: set[str] = set()
    distance = near_room  # tokens from the end of the block to the current file
    for b, tokens in zip(reversed(stable_blocks), reversed(block_tokens)):
        target = spans if distance > REPEAT_DISTANCE else near_spans
        for s in b.snips:
            target.setdefault(s.path, []).append((s.start, s.end))
            if s.kind == "file" and distance > REPEAT_DISTANCE:
                far_whole.add(s.path)
        distance += tokens

    def covered(where: dict[str, list[tuple[int, int]]], key: tuple) -> bool:
        return any(a <= key[1] <= b for a, b in where.get(key[0], ()))

    far = {k for k in taken if covered(spans, k) and not covered(near_spans, k)}
    return far, far_whole
