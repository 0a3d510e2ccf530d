"""Turn gitignore-style lines into a ``pathspec`` spec the way git would read them.

Git never rejects an ignore file: a line it cannot use (a bare ``!``, a lone or
trailing ``\\``) is simply inert and every other line still applies.  pathspec
instead raises for the whole file, which used to fail the entire index, so
lines it cannot parse are dropped here (logged once, with file and line).

pathspec also turns each ``*`` into its own ``[^/]*``; a run of them
backtracks exponentially (seconds per path at ten stars, forever at forty).
In git a run of asterisks that is not a whole path segment matches exactly
like one ``*``, and a whole-segment run (``***/x``, ``a/***``) acts like
``**``, so runs are collapsed to that before pathspec sees them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import pathspec

log = logging.getLogger(__name__)

# (source, line number, text) already reported: rescans rebuild specs, the log should not repeat.
_reported: set[tuple[str, int, str]] = set()


def collapse_stars(line: str) -> str:
    """Rewrite runs of unescaped ``*`` to ``**`` (whole segment) or ``*`` (anything else)."""
    if "**" not in line or line.startswith("#"):
        return line
    start = 1 if line.startswith("!") else 0  # git strips the negation before matching
    out: list[str] = [line[:start]]
    i, n = start, len(line)
    while i < n:
        c = line[i]
        if c == "\\" and i + 1 < n:  # an escaped character (``\*`` is a literal star) stays as is
            out.append(line[i:i + 2])
            i += 2
            continue
        if c != "*":
            out.append(c)
            i += 1
            continue
        j = i
        while j < n and line[j] == "*":
            j += 1
        seg_start = i == start or line[i - 1] == "/"
        seg_end = j == n or line[j] == "/" or line[j:].strip(" ") == ""
        out.append("**" if j - i > 1 and seg_start and seg_end else "*")
        i = j
    return "".join(out)


def _usable(line: str) -> bool:
    """Whether pathspec accepts the line on its own (git accepts every line)."""
    try:
        pathspec.GitIgnoreSpec.from_lines([line])
    except Exception:  # any line pathspec rejects, whatever the error type, is inert in git
        return False
    return True


def compile_ignore(sources: Sequence[tuple[str, Iterable[str]]]) -> pathspec.GitIgnoreSpec | None:
    """One spec from ``(source name, lines)`` pairs, in order; None when there are no lines.

    The whole list is compiled first (the normal case costs nothing extra);
    only when pathspec rejects it are lines checked one by one.
    """
    numbered = [(src, no, collapse_stars(text)) for src, lines in sources for no, text in enumerate(lines, 1)]
    if not numbered:
        return None
    try:
        return pathspec.GitIgnoreSpec.from_lines([text for _, _, text in numbered])
    except Exception:  # a line pathspec cannot parse: find it below rather than fail the whole index
        pass
    kept: list[str] = []
    for src, no, text in numbered:
        if _usable(text):
            kept.append(text)
        elif (src, no, text) not in _reported:
            _reported.add((src, no, text))
            log.warning("ignoring unusable pattern %r at %s:%d (git treats it as inert)", text, src, no)
    return pathspec.GitIgnoreSpec.from_lines(kept)
