"""Budget fill: candidates in priority order, each in the richest form that fits, then whole files by rank.

Costs are counted as the layout renders them (a file's block header once per file, the stub or elision
line after a snippet, enclosing headers not shown yet), so what is chosen fits when laid out.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from engine.context.snippets import Candidate, Repo, Snip, whole_file
from engine.model.tokens import TokenCounter


def block_overhead(counter: TokenCounter, path: str) -> int:
    """What a file's block costs beyond its snippets, as selection counts it: the file separator, the
    path line, and a small margin (the layout's exact count may differ by a few tokens)."""
    return 1 + counter.count(f"{path}\n") + 2


def fill(repo: Repo, cands: Iterable[Candidate], ranked_files: Sequence[str], room: int, layer: int,
         taken_keys: set, whole: set[str], no_whole: set[str] | frozenset = frozenset(),
         keep_layer: bool = False) -> tuple[list[Snip], set[str], int]:
    """Greedy: candidates in priority order (first form that fits), then whole files by rank.

    Returns (chosen snippets, whole files, tokens used). ``taken_keys`` and ``whole`` (what earlier
    layers show) are extended in place; a whole file replaces the snippets chosen from it when that
    fits. Chosen forms move to ``layer`` unless ``keep_layer``; ``no_whole`` files are never shown whole.
    """
    counter = repo.counter
    chosen: list[Snip] = []
    used = 0
    paths: set[str] = set()
    heads: set[tuple[str, int]] = set()  # headers shown (a member's enclosing one is added once)
    for cand in cands:
        if used >= room:
            break
        if cand.path in whole or cand.key in taken_keys:
            continue
        overhead = 0 if cand.path in paths else block_overhead(counter, cand.path)
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
    refunds: dict[str, int] = {}
    for c in chosen:
        refunds[c.path] = refunds.get(c.path, 0) + c.tokens + 2
    for path in ranked_files:
        if used >= room - 8:
            break
        if path in whole or path in no_whole:
            continue
        size = repo.memo.sizes.get(path)
        refund = refunds[path] + block_overhead(counter, path) if path in refunds else 0
        if size is not None and size / 8 > room - used + refund:
            continue  # too big at any plausible bytes per token: not read
        s = whole_file(repo, path, layer)
        if s is None:
            continue
        cost = s.tokens + block_overhead(counter, path)
        if used - refund + cost <= room:
            if path in refunds:
                chosen[:] = [c for c in chosen if c.path != path]
            chosen.append(s)
            whole.add(path)
            used += cost - refund
    return chosen, whole, used
