"""Find the files worth indexing under a workspace root.

One ``os.scandir`` walk (stat results come with the directory listing, so a warm
start costs one pass over the tree) with git's ignore semantics: ``.gitignore``
at every level, ``.git/info/exclude``, plus ``.coderflashignore`` and settings
patterns at the root.  Path-only decisions (ignored, secret, too large,
generated, symlink escapes/loops) are made here; content decisions (binary,
invalid UTF-8, minified) are made when the file is read for parsing.
"""

from __future__ import annotations

import errno
import os
import stat as stat_mod
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from .ignore_patterns import compile_ignore
from .settings import IndexSettings, is_generated_name, is_secret_path


@dataclass(frozen=True)
class Candidate:
    """A file that passed the path-level filters."""

    rel: str
    size: int
    mtime_ns: int


@dataclass
class DiscoveryResult:
    files: list[Candidate] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # rel path -> reason (not 'ignored')
    ignored: int = 0  # gitignored / vendored entries (not listed individually: could be huge)
    dirs: list[str] = field(default_factory=list)  # directories walked (what a file watcher must watch)


def _read_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except OSError:
        return []


GIT_EXCLUDE = ".git/info/exclude"  # the repository's own ignore file, outside the tree the index walks
RULE_FILE_NAMES = (".gitignore", ".coderflashignore")  # ignore files at any level of the tree


def is_rule_file(rel: str) -> bool:
    """Whether the repository-relative path ``rel`` holds ignore rules: a change to it can (un)ignore whole
    subtrees, so the index re-applies the rules rather than indexing the file."""
    return rel == GIT_EXCLUDE or rel.rsplit("/", 1)[-1] in RULE_FILE_NAMES


class IgnoreRules:
    """Stack of gitignore specs, one per directory level that has a ``.gitignore``.

    Git gives the deepest matching pattern precedence, so we evaluate from the
    root down and let the last decisive match win.
    """

    def __init__(self, root: str, settings: IndexSettings) -> None:
        self.root = root
        self.settings = settings
        root_files = [os.path.join(root, *GIT_EXCLUDE.split("/"))] + [os.path.join(root, n) for n in RULE_FILE_NAMES]
        self.root_spec = compile_ignore([("settings index.extra_ignore", list(settings.extra_ignore))]
                                        + [(f, _read_lines(f)) for f in root_files])
        self._cache: dict[str, pathspec.GitIgnoreSpec | None] = {}

    def spec_for_dir(self, rel_dir: str) -> pathspec.GitIgnoreSpec | None:
        """The spec from ``rel_dir/.gitignore`` (root handled separately), cached."""
        if rel_dir == "":
            return self.root_spec
        if rel_dir not in self._cache:
            path = os.path.join(self.root, rel_dir, ".gitignore")
            self._cache[rel_dir] = compile_ignore([(path, _read_lines(path))])
        return self._cache[rel_dir]

    def chain_for_dir(self, rel_dir: str) -> list[tuple[str, pathspec.GitIgnoreSpec]]:
        """(prefix, spec) for the root and every ancestor of ``rel_dir`` with patterns."""
        chain: list[tuple[str, pathspec.GitIgnoreSpec]] = []
        parts = rel_dir.split("/") if rel_dir else []
        for i in range(len(parts) + 1):
            d = "/".join(parts[:i])
            spec = self.spec_for_dir(d)
            if spec is not None:
                chain.append((d + "/" if d else "", spec))
        return chain

    @staticmethod
    def matches(chain: list[tuple[str, pathspec.GitIgnoreSpec]], rel: str, is_dir: bool) -> bool:
        result = False
        for prefix, spec in chain:
            sub = rel[len(prefix):]
            r = spec.check_file(sub + "/" if is_dir else sub)
            if r.include is not None:
                result = r.include
        return result

    def is_ignored(self, rel: str, is_dir: bool = False) -> bool:
        """Check a single path, including whether any ancestor directory is ignored."""
        parts = rel.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if parts[i - 1] in self.settings.ignored_dirs:
                return True
            if self.matches(self.chain_for_dir("/".join(parts[: i - 1])), d, True):
                return True
        return self.matches(self.chain_for_dir("/".join(parts[:-1])), rel, is_dir)


def _inside(root: str, real: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _secret_target(root: str, real: str, settings: IndexSettings) -> bool:
    """A symlink is as secret as the file it points to: the name alone would let ``notes.txt -> .env`` in."""
    return is_secret_path(os.path.relpath(real, root).replace(os.sep, "/"), settings.secret_globs)


def _walked_by_name(rules: IgnoreRules, root: str, real: str, settings: IndexSettings) -> bool:
    """A symlinked directory whose target the walk reaches under the target's own name (inside the root, not
    ignored) adds nothing but a second copy of every file under it, and a copy a watcher cannot keep current
    (one watch per directory, under one name). Whether the walk met the target first depended on name order."""
    rel = os.path.relpath(real, root).replace(os.sep, "/")
    if rel == "." or rel.startswith("../"):
        return rel == "."
    if any(part in settings.ignored_dirs for part in rel.split("/")):
        return False
    return not rules.is_ignored(rel, is_dir=True)


def path_skip_reason(rel: str, size: int, settings: IndexSettings) -> str | None:
    """Path-level reasons to skip a file that is not ignored."""
    name = rel.rsplit("/", 1)[-1]
    if is_secret_path(rel, settings.secret_globs):
        return "secret"
    if is_generated_name(name):
        return "generated"
    if size > settings.max_file_size:
        return "too_large"
    return None


def discover(root: str | Path, settings: IndexSettings, subdir: str = "") -> DiscoveryResult:
    """Walk ``root`` (or only ``root/subdir``) and classify every entry."""
    root_s = os.path.realpath(os.fspath(root))
    rules = IgnoreRules(root_s, settings)
    res = DiscoveryResult()
    visited: set[tuple[int, int]] = set()
    ignored_dirs = settings.ignored_dirs

    start = subdir.strip("/")
    if start and rules.is_ignored(start, is_dir=True):
        res.ignored += 1
        return res

    # Iterative DFS; each frame carries its ancestor (dev, ino) set so loops are detected.
    stack: list[tuple[str, frozenset[tuple[int, int]]]] = []
    try:
        st = os.stat(os.path.join(root_s, start) if start else root_s)
        visited.add((st.st_dev, st.st_ino))
        stack.append((start, frozenset({(st.st_dev, st.st_ino)})))
    except OSError:
        return res

    while stack:
        rel_dir, ancestors = stack.pop()
        res.dirs.append(rel_dir)
        abs_dir = os.path.join(root_s, rel_dir) if rel_dir else root_s
        chain = rules.chain_for_dir(rel_dir)
        try:
            entries = list(os.scandir(abs_dir))
        except PermissionError:
            if rel_dir:
                res.skipped[rel_dir] = "permission_denied"
            continue
        except OSError:
            continue
        entries.sort(key=lambda e: e.name)
        prefix = rel_dir + "/" if rel_dir else ""
        for entry in entries:
            name = entry.name
            rel = prefix + name
            try:
                is_link = entry.is_symlink()
                if is_link:
                    real = os.path.realpath(entry.path)
                    if not _inside(root_s, real):
                        res.skipped[rel] = "symlink_outside_root"
                        continue
                    if _secret_target(root_s, real, settings):  # notes.txt -> .env is still a secret
                        res.skipped[rel] = "secret"
                        continue
                    try:
                        st = os.stat(entry.path)
                    except OSError as e:
                        res.skipped[rel] = "symlink_loop" if e.errno == errno.ELOOP else "broken_symlink"
                        continue
                else:
                    st = entry.stat(follow_symlinks=False)
            except PermissionError:
                res.skipped[rel] = "permission_denied"
                continue
            except OSError as e:
                res.skipped[rel] = "symlink_loop" if e.errno == errno.ELOOP else "unreadable"
                continue
            mode = st.st_mode
            if stat_mod.S_ISDIR(mode):
                if name in ignored_dirs or (chain and IgnoreRules.matches(chain, rel, True)):
                    res.ignored += 1
                    continue
                key = (st.st_dev, st.st_ino)
                duplicate = is_link and (key in visited or _walked_by_name(rules, root_s, real, settings))
                if key in ancestors or duplicate:
                    res.skipped[rel] = "symlink_loop"
                    continue
                visited.add(key)
                stack.append((rel, ancestors | {key}))
            elif stat_mod.S_ISREG(mode):
                if name in RULE_FILE_NAMES:
                    continue
                if chain and IgnoreRules.matches(chain, rel, False):
                    res.ignored += 1
                    continue
                reason = path_skip_reason(rel, st.st_size, settings)
                if reason:
                    res.skipped[rel] = reason
                    continue
                res.files.append(Candidate(rel, st.st_size, st.st_mtime_ns))
            else:
                res.skipped[rel] = "not_regular_file"
    res.files.sort(key=lambda c: c.rel)
    return res


def stat_one(root: str, rel: str, settings: IndexSettings, rules: IgnoreRules | None = None) -> tuple[Candidate | None, str | None]:
    """Classify a single path (used for incremental updates).

    Returns (candidate, None) for an indexable file, (None, reason) for a skipped
    one, (None, None) when the file is gone or ignored.
    """
    root_s = os.path.realpath(root)
    rules = rules or IgnoreRules(root_s, settings)
    abs_p = os.path.join(root_s, rel)
    if rules.is_ignored(rel):
        return None, None
    try:
        if os.path.islink(abs_p):
            real = os.path.realpath(abs_p)
            if not _inside(root_s, real):
                return None, "symlink_outside_root"
            if _secret_target(root_s, real, settings):
                return None, "secret"
        st = os.stat(abs_p)
    except FileNotFoundError:
        return None, None
    except PermissionError:
        return None, "permission_denied"
    except OSError as e:
        return None, "symlink_loop" if e.errno == errno.ELOOP else None
    if not stat_mod.S_ISREG(st.st_mode):
        return None, None
    reason = path_skip_reason(rel, st.st_size, settings)
    if reason:
        return None, reason
    return Candidate(rel, st.st_size, st.st_mtime_ns), None
