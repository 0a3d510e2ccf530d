"""Layout: chosen snippets grouped into one block per file and layer, rendered as prompt pieces, and the
completion prompt assembled within its budget.

Most stable first, so that consecutive prompts share a long token prefix with the model's KV cache: the
repository-wide part, the per-file neighbourhood, the near-cursor part, then the current file (its
prefix cells in the format's infill). Within a block, members appear under their enclosing class/impl
header and an elided body is closed inline (stub style) or marked by an elision comment line.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from engine.context.result import ContextResult, Section, SharedPrefixTracker
from engine.context.snippets import Snip
from engine.model.prompt_format import Piece, PromptFormat
from engine.model.tokens import TokenCounter
from engine.text_position import split_lines

_PREFIX_SLOT = "\x00<current prefix cells>\x00"  # where the prefix cells go in the format's infill


def elision_line(path: str) -> str:
    """The comment line that marks lines left out of a file's block (``# ...`` in Python)."""
    from indexer.languages import language_for_path, line_comment  # lazy: the engine imports the indexer on use

    return f"{line_comment(language_for_path(path))} ...\n"


@dataclass
class Block:
    """One file's snippets in one layer, and their text."""

    layer: int
    path: str
    snips: list[Snip]
    text: str = ""


@dataclass
class Rendered:
    """Blocks turned into prompt pieces, with their token count and sections (cached for stable layers)."""

    pieces: list[Piece]
    tokens: int
    sections: list[Section]
    block_tokens: list[int]  # each file block's tokens, in order (``neighbourhood.far_from_cursor``)


def _after(s: Snip, line: int) -> Snip:
    """``s`` from the line after ``line`` on (its token count scaled by the lines kept: sections only)."""
    kept = split_lines(s.text)[line + 1 - s.start:]
    tokens = s.tokens * len(kept) // max(1, s.end - s.start + 1)
    return Snip(s.path, line + 1, s.end, "".join(kept), s.kind, s.symbol, tokens, s.layer, s.body_end, s.parent,
                s.name_line)


def blocks(snips: list[Snip]) -> list[Block]:
    """One block per (layer, file); snippets in file order, nested ones dropped.

    ``snips`` come in priority order (selection order). Layers go in order (most stable first: the KV
    cache), and within a layer the file whose first snippet came first goes last, so the most relevant
    material sits next to the current file, where the model attends most (the layout Qwen's repository
    pretraining and CrossCodeEval/RepoBench prompts use). The order depends only on the selection, so an
    unchanged selection renders byte-identical."""
    by_key: dict[tuple[int, str], list[Snip]] = {}
    for s in snips:
        by_key.setdefault((s.layer, s.path), []).append(s)
    first_seen = {key: i for i, key in enumerate(by_key)}
    out_blocks = []
    for (layer, path) in sorted(by_key, key=lambda k: (k[0], -first_seen[k])):
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
            if merged and s.start <= merged[-1].end and "window" in (s.kind, merged[-1].kind):
                s = _after(s, merged[-1].end)  # a similar window overlapping a snippet: its lines once
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
        out_blocks.append(Block(layer, path, merged, "".join(out)))
    return out_blocks


def render(fmt: PromptFormat, counter: TokenCounter, repo_name: str, head: list[Piece],
           file_blocks: list[Block]) -> Rendered:
    """Pieces, exact token count and sections of the repository header ``head`` plus ``file_blocks``."""
    pieces: list[Piece] = [p for p in head if p != ""]
    sections: list[Section] = []
    if head:
        sections.append(Section("repo_header", "", repo_name, counter.count_pieces(head)))
    total = counter.count_pieces(pieces)
    per_block: list[int] = []
    for b in file_blocks:
        block_pieces = [p for p in fmt.file_block(b.path, b.text) if p != ""]
        block_tokens = counter.count_pieces(block_pieces)
        per_block.append(block_tokens)
        pieces.extend(block_pieces)
        total += block_tokens
        groups: list[Section] = []
        for s in b.snips:
            if s.kind == "outline" and groups and groups[-1].kind == "outline":
                groups[-1].tokens += s.tokens
                continue
            groups.append(Section(s.kind, b.path, s.symbol, s.tokens))
        groups[0].tokens += block_tokens - sum(g.tokens for g in groups)  # separators, path line, elisions
        sections.extend(groups)
    return Rendered(pieces, total, sections, per_block)


def assemble(fmt: PromptFormat, counter: TokenCounter, tracker: SharedPrefixTracker, repo_name: str,
             head: list[Piece], stable: Rendered | None, near: list[Snip], path: str, cur_header: list[Piece],
             cells: list[str], suffix: str, budget: int, start_t: float) -> ContextResult:
    """The completion prompt: ``stable`` (the repository header ``head`` and the layers before the
    near-cursor part, already rendered; None: the header alone), ``near`` (dropped from its end while
    over budget), the current file. ``tracker`` measures the prefix shared with the previous prompt."""
    header_only = stable is None
    if stable is None:
        stable = render(fmt, counter, repo_name, head, [])
    tail = fmt.infill(_PREFIX_SLOT, suffix)
    at = tail.index(_PREFIX_SLOT)
    tail = tail[:at] + list(cells) + tail[at + 1:]
    tail = [p for p in cur_header + tail if p != ""]
    tail_tokens = counter.count_pieces(tail)
    priority = list(near)  # selection order: drop from the end when over budget
    while True:
        rendered = render(fmt, counter, "", [], blocks(near))
        total = stable.tokens + rendered.tokens + tail_tokens
        if total <= budget or not priority:
            break
        excess = total - budget
        while excess > 0 and priority:  # drop lowest-priority snippets worth the excess
            s = priority.pop()
            excess -= s.tokens
        keep = set(map(id, priority))
        near = [s for s in near if id(s) in keep]
    if total > budget and not header_only:  # the stable layers alone are over (never expected)
        stable = render(fmt, counter, repo_name, head, [])
        total = stable.tokens + rendered.tokens + tail_tokens
    pieces = stable.pieces + rendered.pieces + tail
    sections = list(stable.sections) + rendered.sections
    sections.append(Section("file_header", path, "", counter.count_pieces(cur_header)))
    sections.append(Section("current_prefix", path, "", sum(counter.count(c) for c in cells)))
    infill_overhead = counter.count_pieces(fmt.infill("", ""))
    sections.append(Section("current_suffix", path, "", counter.count(suffix) + infill_overhead))
    shared = tracker.update(pieces)
    elapsed = round((time.perf_counter() - start_t) * 1000, 3)
    return ContextResult(pieces, fmt.render(pieces), total, budget, counter.name, shared, sections, elapsed,
                         "".join(cells), suffix)


def chat_text(counter: TokenCounter, snips: list[Snip], budget: int) -> str:
    """Snippets as chat context: ``File: path`` and fenced code per block, within ``budget`` tokens
    (snippets dropped from the end, a twentieth at a time, until it fits)."""
    whole = {s.path for s in snips if s.kind == "file"}
    snips = [s for s in snips if s.kind == "file" or s.path not in whole]
    while True:
        out = []
        for b in blocks(snips):
            out.append(f"File: {b.path}\n```\n{b.text}```\n")
        rendered = "\n".join(out)
        if counter.count(rendered) <= budget or not snips:
            return rendered
        snips = snips[:-max(1, len(snips) // 20)]
