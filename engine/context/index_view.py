"""The index as the context code sees it: the queries it asks (a typed Protocol) and their answers,
memoised for one index generation.

Why a Protocol and not ``indexer.Index`` itself: the context code depends on these few reads only, the
engine imports the indexer lazily (it costs a fraction of a second to import), and a test can hand in
anything that answers them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Protocol

if TYPE_CHECKING:
    from indexer.models import Definition, FileInfo


class RepoIndex(Protocol):
    """Exactly the part of ``indexer.Index`` the context code uses."""

    @property
    def root(self) -> str: ...

    @property
    def overlays(self) -> dict[str, str]: ...

    @property
    def generation(self) -> int: ...

    @property
    def overlay_version(self) -> int: ...

    def rel(self, path: str) -> str: ...

    def files(self) -> list[FileInfo]: ...

    def read_text(self, path: str) -> str | None: ...

    def set_overlay(self, path: str, text: str, keep_if: Callable[[], bool] | None = None) -> None: ...

    def definitions(self, name: str) -> list[Definition]: ...

    def outline(self, path: str) -> list[Definition]: ...

    def imports_of(self, path: str) -> list[str]: ...

    def definitions_referenced_in(self, path: str, start_line: int, end_line: int) -> list[Definition]: ...

    def ranked_files(self, personalization: dict[str, float] | None = None) -> list[tuple[str, float]]: ...

    def ranked_definitions(self, personalization: dict[str, float] | None = None,
                           limit: int | None = None) -> list[tuple[Definition, float]]: ...


PACKAGE_STEMS = ("__init__", "mod", "index", "lib")  # a file of these stems is named by its directory


def module_name(path: str) -> str:
    """The name code uses for the module in ``path``: its file stem, or its directory for a package file."""
    stem = os.path.splitext(os.path.basename(path))[0]
    if stem in PACKAGE_STEMS:
        return os.path.basename(os.path.dirname(path)) or stem
    return stem


@dataclass
class IndexMemo:
    """Index answers memoised for one index generation (a request asks the same names many times)."""

    generation: int
    index: RepoIndex
    repo_key: int  # the repository: on disk, and what open buffers change of it (see ``memo_for``)
    sizes: dict[str, int]
    defs: dict[str, list[Definition]] = field(default_factory=dict)
    outlines: dict[str, list[Definition]] = field(default_factory=dict)
    imports: dict[str, list[str]] = field(default_factory=dict)
    checked: set[str] = field(default_factory=set)  # files whose on-disk stamp was checked this generation
    modules: dict[str, list[str]] | None = None  # module name (file stem, or package dir) -> files
    parents: dict[str, dict[str, Definition]] = field(default_factory=dict)  # path -> qualified name -> def
    # Python module file -> the names it binds, None: unsure (``module_attributes``: asked on every keystroke
    # after ``module.``)
    attributes: dict[str, tuple[str, ...] | None] = field(default_factory=dict)

    def definitions(self, name: str) -> list[Definition]:
        hit = self.defs.get(name)
        if hit is None:
            hit = self.defs[name] = self.index.definitions(name)
        return hit

    def outline(self, path: str) -> list[Definition]:
        hit = self.outlines.get(path)
        if hit is None:
            hit = self.outlines[path] = self.index.outline(path)
        return hit

    def imports_of(self, path: str) -> list[str]:
        """Repository files ``path`` imports (never itself)."""
        hit = self.imports.get(path)
        if hit is None:
            hit = self.imports[path] = [p for p in self.index.imports_of(path) if p != path]
        return hit

    def parent_of(self, d: Definition) -> Definition | None:
        """The definition enclosing ``d`` (its class or impl), by qualified name in ``d``'s file."""
        by_name = self.parents.get(d.path)
        if by_name is None:
            by_name = self.parents[d.path] = {o.qualified_name: o for o in self.outline(d.path)}
        return by_name.get(d.parent) if d.parent is not None else None

    def files_of_module(self, name: str) -> list[str]:
        """Indexed files whose module name (see ``module_name``) is ``name``."""
        if self.modules is None:
            self.modules = {}
            for p in self.sizes:
                self.modules.setdefault(module_name(p), []).append(p)
        return self.modules.get(name, [])


def memo_for(index: RepoIndex, previous: IndexMemo | None, disk_info: dict[str, tuple]) -> IndexMemo:
    """``previous`` while the index generation is unchanged, else a fresh memo.

    ``repo_key`` identifies the repository the layers are selected from (they are kept while it is the same):
    the files on disk (size, lines and content hash: an edit that keeps the size and line count, ``0.2`` to
    ``0.3``, changes the repository too), where open buffers (overlays) count with what was last seen on
    disk (``disk_info``, kept across generations by the caller), plus the index's ``overlay_version``, which moves only when a
    buffer changes the text the index serves (opened with unsaved text, synced after edits, closed without
    saving). The size seen on disk does not move when a buffer closes: without the version, a layer built
    while another file's unsaved text was open was kept after the close, showing text no file has. Opening
    an unedited buffer changes neither; typing in the current file does not touch its overlay (synced only
    when completion moves on: see ``buffers``), so its layers and their KV-cached tokens are kept.
    """
    gen = index.generation
    if previous is not None and previous.generation == gen and previous.index is index:
        return previous
    version = index.overlay_version  # before the reads below: a layer never claims a newer version than its text
    overlays = index.overlays
    infos = []
    sizes: dict[str, int] = {}
    for f in index.files():
        sizes[f.path] = f.size
        if f.path in overlays:
            info = disk_info.get(f.path, ("overlay",))
        else:
            info = disk_info[f.path] = (f.size, f.lines, f.content_hash)
        infos.append((f.path, info))
    return IndexMemo(gen, index, hash((tuple(infos), version)), sizes)
