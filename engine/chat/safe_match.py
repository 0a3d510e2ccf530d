"""Matching the model's globs and regexes without letting a hostile pattern freeze the language server.

Python's ``re`` backtracks, and a search is one long C call that holds the GIL: while it runs, no other
thread (the LSP event loop included) gets to answer anything, and no deadline checked between calls can
stop it. Nested quantifiers such as ``(\\w*)*!`` take exponential time, and even ordinary-looking patterns
such as ``\\w+\\s*\\w+\\s*\\w+!`` are polynomial (about a second on one 300-character line), so rejecting
"dangerous" regexes up front cannot be complete without also rejecting normal ones. Hence two tools:

* globs are matched by a lazily built DFA (:class:`GlobMatcher`), never by backtracking: the cost is linear
  in the path, whatever stars the pattern holds;
* a grep regex runs in a child Python process (:class:`RegexWorker`) that is killed when it overruns its
  time. The server only waits on a pipe (GIL released), so ``status`` and ``cancel`` keep being answered,
  and the same ``re`` module keeps every pattern's meaning exactly as before.
"""

from __future__ import annotations

import fnmatch
import json
import queue
import re
import subprocess
import sys
import threading
from typing import Callable

from engine.chat.tools import ToolError

MAX_GLOB_CHARS = 256  # bounds the DFA's per-character work (one step is linear in the pattern)
_MAX_DFA_MOVES = 100_000  # bounds the memory of the cache of DFA transitions

Pred = Callable[[str], bool]


def _any(_c: str) -> bool:
    return True


def _not_slash(c: str) -> bool:
    return c != "/"


def _never(_c: str) -> bool:
    return False


def _literal(ch: str) -> Pred:
    return lambda c: c == ch


class GlobMatcher:
    """A glob as an NFA (tokens: ``one`` consumes a char, ``star`` any number of them, ``split`` none but
    also moves empty-handed to its ``skip`` target) run as a DFA whose states are built on first use and cached, so no input backtracks."""

    def __init__(self, tokens: list[tuple[str, Pred]], skip: dict[int, int]) -> None:
        self.tokens = tokens
        self.skip = skip
        self.end = len(tokens)
        self.moves: dict[tuple[frozenset[int], str], frozenset[int]] = {}
        self.start = self._closure(set([0]))

    def _closure(self, states: set[int]) -> frozenset[int]:
        stack = list(states)
        while stack:
            s = stack.pop()
            nexts = [self.skip[s]] if s in self.skip else []
            if s < self.end and self.tokens[s][0] in ("star", "split"):
                nexts.append(s + 1)
            for n in nexts:
                if n not in states:
                    states.add(n)
                    stack.append(n)
        return frozenset(states)

    def _step(self, states: frozenset[int], ch: str) -> frozenset[int]:
        moved = self.moves.get((states, ch))
        if moved is None:
            moved = self._closure({s if kind == "star" else s + 1 for s in states if s < self.end
                                   for kind, pred in [self.tokens[s]] if pred(ch)})
            if len(self.moves) < _MAX_DFA_MOVES:  # past this a glob still works, only uncached
                self.moves[(states, ch)] = moved
        return moved

    def match(self, text: str) -> bool:
        """True when the whole of ``text`` matches (what ``re.match`` with a trailing ``\\Z`` did)."""
        states = self.start
        for ch in text:
            states = self._step(states, ch)
            if not states:
                return False
        return self.end in states


def compile_glob(pattern: str) -> GlobMatcher:
    """``**`` crosses directories, ``*`` and ``?`` do not; ``**/`` also matches no directory at all.

    A run of stars means what the old left-to-right regex translation made of it: one ``*`` stays within a
    segment; two or more cross directories (``**/`` exactly is the optional-directories form, and an even
    run of four or more before ``/`` swallows that slash too, as ``.*(?:.*/)?`` did)."""
    if len(pattern) > MAX_GLOB_CHARS:
        raise ToolError(f"the glob is {len(pattern)} characters long; use at most {MAX_GLOB_CHARS}")
    tokens: list[tuple[str, Pred]] = []
    skip: dict[int, int] = {}
    i = 0
    while i < len(pattern):
        if pattern[i] == "*":
            j = i
            while j < len(pattern) and pattern[j] == "*":
                j += 1
            run, slash = j - i, pattern.startswith("/", j)
            if run == 1:
                tokens.append(("star", _not_slash))
            elif run == 2 and slash:
                skip[len(tokens)] = len(tokens) + 3  # either no directory, or anything up to a "/"
                tokens += [("split", _never), ("star", _any), ("one", _literal("/"))]
                j += 1
            else:
                tokens.append(("star", _any))
                j += 1 if slash and run % 2 == 0 else 0
            i = j
        elif pattern[i] == "?":
            tokens.append(("one", _not_slash))
            i += 1
        elif pattern[i] == "[" and pattern.find("]", i + 1) >= 0:
            close = pattern.find("]", i + 1)
            piece = fnmatch.translate(pattern[i: close + 1])[4:-3]
            if piece.startswith("["):
                cls = re.compile(piece)  # one bracket expression: matches exactly one character
                tokens.append(("one", lambda c, cls=cls: cls.match(c) is not None))
            elif piece == "(?!)":
                tokens.append(("one", _never))
            else:
                tokens += [("one", _literal(c)) for c in pattern[i: close + 1]]
            i = close + 1
        else:
            tokens.append(("one", _literal(pattern[i])))
            i += 1
    return GlobMatcher(tokens, skip)


_WORKER = """
import json, re, sys
pattern = json.loads(sys.stdin.readline())
try:
    rx = re.compile(pattern)
except re.error:
    rx = re.compile(re.escape(pattern))
for message in sys.stdin:
    files = json.loads(message)
    hits = [[f, n] for f, lines in enumerate(files) for n, line in enumerate(lines) if rx.search(line)]
    sys.stdout.write(json.dumps(hits) + "\\n")
    sys.stdout.flush()
"""


class RegexTimeout(Exception):
    """The child did not answer in time (and has been killed)."""


class RegexWorker:
    """A child process that searches batches of lines with one regex (an invalid regex is searched as
    literal text, as grep always did). Use as a context manager so the child never outlives the search.
    ``-I -S``: the child imports only the standard library, never a ``re.py`` from the current directory
    (the user's repository) nor site customisations; it touches no file and no network."""

    def __init__(self, pattern: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _WORKER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     encoding="utf-8", errors="replace")
        self.answers: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._send(pattern)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.answers.put(line)
        self.answers.put("")  # end of output: the child died or was killed
        self.proc.stdout.close()

    def _send(self, value: object) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(value) + "\n")
            self.proc.stdin.flush()
        except OSError:
            pass  # the child died; the next wait reports it

    def search(self, files: list[list[str]], timeout: float, poll: Callable[[], None]) -> list[tuple[int, int]]:
        """(file, line) indexes of the lines that match; ``poll`` runs every 50 ms while waiting (it may
        raise to cancel). Raises :class:`RegexTimeout` after ``timeout`` seconds."""
        self._send(files)
        waited = 0.0
        while True:
            poll()
            try:
                answer = self.answers.get(timeout=0.05)
                break
            except queue.Empty:
                waited += 0.05
                if waited >= timeout:
                    self.close()
                    raise RegexTimeout() from None
        if not answer:
            raise ToolError("the search process failed")
        return [(f, n) for f, n in json.loads(answer)]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass  # a broken pipe to a killed child

    def __enter__(self) -> RegexWorker:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
