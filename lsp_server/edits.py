"""The one WorkspaceEdit builder: code actions, rewriteSelection and chat's ``propose_edit`` all send their
edits through it, so every client gets the same shape for the same capabilities.

Why ``documentChanges`` when the client supports it: the versioned form lets the editor refuse an edit
computed for an older buffer, and it is the only form that can create a file first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from lsprotocol import types


@dataclass(frozen=True)
class FileEdits:
    """The text edits for one document; ``version`` is the open buffer's version (None: as on disk)."""

    uri: str
    edits: list[types.TextEdit]
    version: int | None = None


def _workspace_edit_capabilities(capabilities: types.ClientCapabilities) -> types.WorkspaceEditClientCapabilities | None:
    workspace = capabilities.workspace
    return workspace.workspace_edit if workspace else None


def supports_document_changes(capabilities: types.ClientCapabilities) -> bool:
    caps = _workspace_edit_capabilities(capabilities)
    return bool(caps and caps.document_changes)


def can_create_files(capabilities: types.ClientCapabilities) -> bool:
    """Whether a WorkspaceEdit may create files (``documentChanges`` with the ``create`` resource operation)."""
    caps = _workspace_edit_capabilities(capabilities)
    return bool(caps and caps.document_changes and caps.resource_operations
                and types.ResourceOperationKind.Create in caps.resource_operations)


def workspace_edit(capabilities: types.ClientCapabilities, files: Sequence[FileEdits],
                   create: Sequence[str] = ()) -> types.WorkspaceEdit:
    """One WorkspaceEdit: the files in ``create`` (URIs) are created first (never overwritten) when the client
    can create files; without ``documentChanges`` the edits go as a plain ``changes`` map."""
    if not supports_document_changes(capabilities):
        return types.WorkspaceEdit(changes={f.uri: f.edits for f in files})
    changes: list[Any] = []
    if can_create_files(capabilities):
        changes += [types.CreateFile(uri=uri, options=types.CreateFileOptions(overwrite=False, ignore_if_exists=True))
                    for uri in create]
    changes += [types.TextDocumentEdit(
        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=f.uri, version=f.version), edits=f.edits)
        for f in files]
    return types.WorkspaceEdit(document_changes=changes)
