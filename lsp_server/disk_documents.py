"""The text of a document the editor has not opened, read from disk without ever blocking the server.

Why: pygls hands out a document for any URI and reads an unopened one from disk on every ``.source`` and
``.lines`` access, with a plain ``open()``, on the event loop. A named pipe (FIFO) blocks that open until
a writer comes, so one ``textDocument/inlineCompletion`` for a FIFO stopped the whole server (even
``coderflash/status``). Every handler that needs an unopened document's text goes through here instead:
only a regular file is read (``indexer.regular_files``: checked, opened non-blocking, checked again), at
most ``index.max_file_size`` bytes of it, once per request, into a detached snapshot document.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

from pygls.workspace import TextDocument

from indexer.regular_files import read_regular_file

from .server import CoderflashServer


class UnreadableDocument(Exception):
    """An unopened document whose file cannot be read: missing, not a regular file, too large, not UTF-8.
    The message names the document and says why, for an error response."""


def open_document(ls: CoderflashServer, uri: str) -> TextDocument | None:
    """The editor's buffer for ``uri``, or None when the editor has not opened it. Looked up the way pygls
    stores it (percent-decoded), so a percent-encoded URI finds its buffer; never touches the disk."""
    return ls.workspace.text_documents.get(unquote(uri))


def disk_text(path: str | Path, max_bytes: int, errors: str = "strict") -> str:
    """A regular file's text as pygls would read it (UTF-8, universal newlines), never blocking; ``OSError``
    (``NotRegularFileError``, ``FileTooLargeError``, missing) or ``ValueError`` (not UTF-8, unless ``errors``
    says how to decode it anyway) otherwise."""
    text = read_regular_file(path, max_bytes).decode("utf-8", errors)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def document_for(ls: CoderflashServer, uri: str) -> TextDocument:
    """The open buffer, else a snapshot of the file on disk (version None, as pygls gives an unopened
    document). A URI without a file path (``untitled:``) is the empty document pygls makes of it.

    Raises ``UnreadableDocument`` instead of blocking or reading an unbounded file."""
    document = open_document(ls, uri)
    if document is not None:
        return document
    unopened = ls.workspace.get_text_document(uri)  # not stored by pygls, and nothing read yet
    if unopened.path is None:
        return unopened
    limit = ls.engine_for(uri).config.index.max_file_size
    try:
        text = disk_text(unopened.path, limit)
    except (OSError, ValueError) as exc:
        raise UnreadableDocument(f"{uri} is not open and cannot be read: {exc}") from None
    return TextDocument(uri, source=text, version=unopened.version, language_id=unopened.language_id,
                        position_codec=ls.workspace.position_codec)
