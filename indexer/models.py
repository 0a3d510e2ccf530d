"""Plain data types shared by the indexer and its callers.

They are deliberately small dataclasses (no ORM, no tree-sitter objects) so that
they can cross process boundaries cheaply and be handed to the context engine
without keeping parse trees alive.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Definition:
    """A named definition (function, class, method, type, ...) in one file.

    Lines are 0-based. ``signature`` holds the definition's header text exactly
    as written (from the start of its first line up to, not including, its body),
    so the context engine can paste it into a prompt verbatim.
    ``name_line`` is the line of the name token (differs from ``start_line`` when
    annotations / modifiers precede the name on earlier lines).
    ``kind`` is one of: class, struct, interface, enum, object, module, function, method,
    prototype (a declaration without body), type, constant, property, field, macro.
    ``parent`` is the qualified name of the enclosing definition (or impl/receiver type).
    """

    path: str
    name: str
    qualified_name: str
    kind: str
    signature: str
    doc: str
    start_line: int
    end_line: int
    start_byte: int
    end_byte: int
    parent: str | None
    name_line: int = -1


@dataclass(frozen=True)
class Reference:
    """One use of an identifier: 0-based line and *byte* column within the line (UTF-8), not UTF-16."""

    path: str
    name: str
    line: int
    character: int


@dataclass(frozen=True)
class Import:
    """An import statement: the module text as written and the names it brings in.

    ``resolved`` is the repository file it resolves to (None for external modules).
    """

    path: str
    module: str
    names: tuple[str, ...]
    line: int
    resolved: str | None = None


@dataclass(frozen=True)
class FileInfo:
    """A file known to the index (also files whose language we cannot parse)."""

    path: str
    language: str | None
    size: int
    lines: int
    content_hash: str = ""  # of the text indexed: an edit that keeps the size and line count still changes it


@dataclass
class IndexStats:
    """Summary of an index build, in the shape the ``coderflash index --json`` CLI prints."""

    root: str
    files: int = 0
    parsed_files: int = 0
    reused_files: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    languages: dict[str, int] = field(default_factory=dict)
    definitions: int = 0
    references: int = 0
    imports: int = 0
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The exact dict the CLI prints (keys in a stable order)."""
        d = asdict(self)
        d["elapsed_s"] = round(float(self.elapsed_s), 4)
        d["skipped"] = dict(sorted(self.skipped.items()))
        d["languages"] = dict(sorted(self.languages.items()))
        return d

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2)
