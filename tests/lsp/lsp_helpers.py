"""Helpers for end-to-end LSP tests: apply a WorkspaceEdit the way an editor does (UTF-16 positions)."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pygls.uris import to_fs_path


def _offset(text: str, position: types.Position) -> int:
    lines = text.split("\n")
    if position.line >= len(lines):
        return len(text)
    start = sum(len(line) + 1 for line in lines[: position.line])
    units = 0
    for index, char in enumerate(lines[position.line]):
        if units >= position.character:
            return start + index
        units += 2 if ord(char) > 0xFFFF else 1
    return start + len(lines[position.line])


def apply_text_edits(text: str, edits: list[types.TextEdit]) -> str:
    """Apply edits (non-overlapping, any order) as LSP specifies: against the original text."""
    spans = sorted(((_offset(text, e.range.start), _offset(text, e.range.end), e.new_text) for e in edits), reverse=True)
    previous_start = len(text) + 1
    for start, end, new_text in spans:
        assert start <= end <= previous_start, "overlapping edits"
        text = text[:start] + new_text + text[end:]
        previous_start = start
    return text


def apply_workspace_edit(edit: types.WorkspaceEdit, open_texts: dict[str, str]) -> dict[str, str]:
    """Return the new text of every touched file (open buffers first, then disk, created files empty)."""
    texts: dict[str, str] = {}

    def current(uri: str) -> str:
        if uri in texts:
            return texts[uri]
        if uri in open_texts:
            return open_texts[uri]
        path = Path(to_fs_path(uri))
        return path.read_text() if path.exists() else ""

    for change in edit.document_changes or []:
        if isinstance(change, types.CreateFile):
            texts.setdefault(change.uri, current(change.uri))
        elif isinstance(change, types.TextDocumentEdit):
            texts[change.text_document.uri] = apply_text_edits(current(change.text_document.uri), list(change.edits))
    for uri, edits in (edit.changes or {}).items():
        texts[uri] = apply_text_edits(current(uri), list(edits))
    return texts
