"""Document synchronisation: didOpen, didChange, didSave, didClose reach the document's engine.

pygls keeps the buffer text itself (``ls.workspace``) and the engine gets the whole new text on every change
(cheap: the index overlay is synced when the file is next completed in). A change also cancels the
document's running inline completion, whose answer would be stale.
"""

from __future__ import annotations

from lsprotocol import types

from .disk_documents import open_document
from .server import CoderflashServer


def on_did_open(ls: CoderflashServer, params: types.DidOpenTextDocumentParams) -> None:
    path = ls.document_path(params.text_document.uri)
    ls.workspaces.note_open(path, params.text_document.text)
    engine = ls.engine_for(params.text_document.uri)
    if engine.is_secret_document(path):  # a .env or key open in the editor: nothing of it is prepared for a prompt
        return
    # Background, lowest priority: this file's per-file context, then its repository prefix in the KV cache.
    engine.prepare_document(path, params.text_document.text)
    if engine.loaded:
        engine.warm_up(path, params.text_document.text)


def on_did_change(ls: CoderflashServer, params: types.DidChangeTextDocumentParams) -> None:
    uri = params.text_document.uri
    token = ls.pending.pop(uri, None)
    if token is not None:
        token.cancel("document changed")
    document = open_document(ls, uri)
    if document is None:  # a change (with no content changes) to a document never opened: nothing to sync,
        return  # and pygls would read the disk on the event loop, which blocks forever on a FIFO
    ls.workspaces.note_change(ls.document_path(uri), document.source)


def on_did_save(ls: CoderflashServer, params: types.DidSaveTextDocumentParams) -> None:
    ls.workspaces.note_save(ls.document_path(params.text_document.uri))


def on_did_close(ls: CoderflashServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.workspaces.note_close(ls.document_path(params.text_document.uri))


def register(server: CoderflashServer) -> None:
    server.feature(types.TEXT_DOCUMENT_DID_OPEN)(on_did_open)
    server.feature(types.TEXT_DOCUMENT_DID_CHANGE)(on_did_change)
    server.feature(types.TEXT_DOCUMENT_DID_SAVE)(on_did_save)
    server.feature(types.TEXT_DOCUMENT_DID_CLOSE)(on_did_close)
