"""Similar code: the windows of related files whose identifiers overlap most with the lines above the
cursor (Jaccard similarity of identifier sets, the retrieval of CrossCodeEval's and RepoCoder's baselines),
shown with the lines that follow them.

Why: the other near-cursor sources follow names (the definitions of the names around the cursor, a
receiver's members, the neighbours in their module). A pattern the repository repeats (a sibling test's
set-up, the same reducer shape in the next module) need not share a definition with the cursor's names,
and the small model copies what it sees next to the cursor: what follows a similar window is often what
follows the cursor. Only the files the ranking relates to the current file and the files of its directory
are searched (``SIMILAR_FILES``, ``MAX_WINDOWS``), so a search costs a few milliseconds on a repository of any
size; a file's windows are cut once per text, and typing on one line reuses the line's search.
"""

from __future__ import annotations

import posixpath
import sys
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from engine.context.receivers import IDENT
from engine.context.snippets import Candidate, Repo, make_snip

WINDOW_LINES = 20  # a window's lines (what is compared with the query)
WINDOW_STRIDE = 10  # windows start every this many lines; a window is shown with this many lines after it
QUERY_LINES = 20  # the lines above the cursor's line that are compared with the windows
SIMILAR_FILES = 48  # files searched: the current directory's and the ranking's first, half each at most
SIMILAR_WINDOWS = 2  # windows shown at most
MAX_WINDOWS = 4000  # windows compared per search at most (the searched files' first, in their order)
MIN_SIMILARITY = 0.2  # below this a window is a coincidence of common names
STRONG_SIMILARITY = 0.4  # from this a window is a near-copy of the lines above the cursor (a sibling
# implementation): it goes before the definitions of the names around the cursor (``near_cursor``)
MIN_IDENTIFIERS = 4  # a query or window with fewer distinct identifiers says too little
WINDOWS_HELD = 4 * MAX_WINDOWS  # windows kept between requests at most (about 0.75 KB each; beyond: cut anew)


def file_windows(repo: Repo, path: str) -> tuple[Sequence[str], list[tuple[int, tuple[str, ...]]]] | None:
    """A repository file's lines and its windows' identifier sets, cut once per file text."""
    got = repo.file(path)
    if got is None:
        return None
    lines = got[1]
    files = repo.windows.files
    cached = files.get(path)
    if cached is not None and cached[0] is lines:
        return cached
    windows = []
    for start in range(0, max(1, len(lines) - WINDOW_LINES + WINDOW_STRIDE), WINDOW_STRIDE):
        # distinct names, interned, as a tuple: a name shared by many windows is held once, and a tuple
        # costs a quarter of a set's memory (measured on stdlib files: 0.75 KB a window, 2.9 KB as sets)
        idents = tuple(set(map(sys.intern, IDENT.findall("".join(lines[start:start + WINDOW_LINES])))))
        if len(idents) >= MIN_IDENTIFIERS:
            windows.append((start, idents))
    cache = repo.windows
    if cached is not None:  # an older text's windows go
        cache.held -= len(cached[1])
    if cache.held + len(windows) > WINDOWS_HELD:
        files.clear()
        cache.held = 0
    files[path] = (lines, windows)
    cache.held += len(windows)
    return files[path]


def searched_files(rel: str, ranked_files: Sequence[str]) -> list[str]:
    """The current directory's files and the files the ranking puts first (``SIMILAR_FILES`` at most)."""
    directory = posixpath.dirname(rel)
    same_dir = [p for p in ranked_files if p != rel and posixpath.dirname(p) == directory][:SIMILAR_FILES // 2]
    chosen = set(same_dir)
    related = [p for p in ranked_files if p != rel and p not in chosen][:SIMILAR_FILES - len(same_dir)]
    return same_dir + related


def searched_windows(repo: Repo, rel: str, ranked_files: Sequence[str]
                     ) -> Iterator[tuple[str, Sequence[str], list[tuple[int, tuple[str, ...]]]]]:
    """(path, lines, windows) of the files a search from ``rel`` compares, ``MAX_WINDOWS`` windows in all."""
    compared = 0
    for path in searched_files(rel, ranked_files):
        got = file_windows(repo, path)
        if got is None:
            continue
        yield path, got[0], got[1][:MAX_WINDOWS - compared]
        compared += len(got[1])
        if compared >= MAX_WINDOWS:
            return


def cut_windows(repo: Repo, rel: str, ranked_files: Sequence[str]) -> None:
    """Cut the windows of the files a search from ``rel`` compares (``prepare_file``: off the keystroke path)."""
    for _ in searched_windows(repo, rel, ranked_files):
        pass


class Similar(NamedTuple):
    """The windows a search found, most similar first: ``strong`` (``STRONG_SIMILARITY`` and above) and the rest."""

    strong: list[Candidate]
    other: list[Candidate]


def similar_candidates(repo: Repo, rel: str, above: Sequence[str], ranked_files: Sequence[str]) -> Similar:
    """The windows most similar to ``above``, the lines above the cursor's line (``QUERY_LINES`` are compared), most
    similar first, each shown with the ``WINDOW_STRIDE`` lines after it. Overlapping windows of one file count
    once. The cursor's own line is left out: typing on it must not change the windows (the near-cursor part sits
    before the current file, and a new window there re-evaluates all of the current file's tokens)."""
    query = frozenset(IDENT.findall("\n".join(above[-QUERY_LINES:])))
    if len(query) < MIN_IDENTIFIERS:
        return Similar([], [])
    last = repo.windows.last  # typing on one line asks again with the same lines above it: the same answer
    if last is not None and last[0][:2] == (rel, query) and last[0][2] is repo.memo and last[0][3] is ranked_files:
        return last[1]
    scored: list[tuple[float, str, int]] = []
    texts: dict[str, Sequence[str]] = {}
    for path, lines, windows in searched_windows(repo, rel, ranked_files):
        texts[path] = lines
        for start, idents in windows:
            shared = len(query.intersection(idents))
            score = shared / (len(query) + len(idents) - shared)
            if score >= MIN_SIMILARITY:
                scored.append((score, path, start))
    scored.sort(key=lambda x: (-x[0], x[1], x[2]))
    out = Similar([], [])
    for score, path, start in scored:
        if len(out.strong) + len(out.other) >= SIMILAR_WINDOWS:
            break
        if any(c.path == path and abs(c.forms[0].start - start) < WINDOW_LINES for c in out.strong + out.other):
            continue
        lines = texts[path]
        end = min(len(lines), start + WINDOW_LINES + WINDOW_STRIDE) - 1
        window = make_snip(repo.counter, path, start, end, "".join(lines[start:end + 1]), "window", "", 3)
        # keyed as the near part's kept selection is
        (out.strong if score >= STRONG_SIMILARITY else out.other).append(Candidate(path, (path, start), [window]))
    repo.windows.last = ((rel, query, repo.memo, ranked_files), out)
    return out
