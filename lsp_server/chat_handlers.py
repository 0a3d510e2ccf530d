"""LSP front end of chat and agent mode (protocol: docs/chat-protocol.md).

- ``coderflash/chat`` request → streamed ``coderflash/chatDelta`` notifications → the final result object;
- ``coderflash/chat/cancel`` (request or notification) or ``$/cancelRequest`` stops a running chat;
- ``propose_edit`` reaches the editor as ``workspace/applyEdit``: the editor asks the user, and the model is
  told whether the edit was applied or refused.

The turn itself (engine/chat/session.py) runs on a small thread pool of its own: its generation steps are queued on
the engine's inference scheduler at chat priority, so inline completions pre-empt it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from lsprotocol import types
from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams, JsonRpcInvalidRequest
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument

from engine.chat.conversation import ChatError, ChatRequest, ConversationStore
from engine.chat.session import ChatSession
from engine.chat.tools import EditProposal
from engine.model.backend import CancelToken
from engine.service import Engine

from .disk_documents import UnreadableDocument, document_for, open_document
from .edits import FileEdits, can_create_files, workspace_edit
from .positions import offset_to_client, position_param, range_from_client
from .server import CoderflashServer

CHAT_REQUEST = "coderflash/chat"
CHAT_CANCEL = "coderflash/chat/cancel"
CHAT_DELTA = "coderflash/chatDelta"

_APPLY_TIMEOUT_S = 600.0  # the user is looking at the edit


def _plain(value: Any) -> Any:
    """pygls hands custom params over as namedtuples: back to dicts and lists."""
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _parse(ls: CoderflashServer, raw: Any) -> tuple[Engine, ChatRequest]:
    p = _plain(raw)
    if not isinstance(p, dict):
        raise JsonRpcInvalidParams("params must be an object {message, mode, conversationId?, textDocument?, range?}")
    message = p.get("message")
    if not isinstance(message, str) or not message.strip():
        raise JsonRpcInvalidParams("message must be a non-empty string")
    mode = p.get("mode", "ask")
    if mode not in ("ask", "agent"):
        raise JsonRpcInvalidParams('mode must be "ask" or "agent"')
    cid = p.get("conversationId")
    if cid is not None and (not isinstance(cid, str) or not cid):
        raise JsonRpcInvalidParams("conversationId must be a non-empty string")
    grammars = p.get("grammars")
    if grammars is not None and (not isinstance(grammars, list)
                                 or not all(g is None or isinstance(g, str) for g in grammars)):
        raise JsonRpcInvalidParams("grammars must be a list of GBNF strings (or nulls)")
    max_steps = p.get("maxSteps")
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
        raise JsonRpcInvalidParams("maxSteps must be a positive integer")
    max_tokens = p.get("maxTokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise JsonRpcInvalidParams("maxTokens must be a positive integer")
    doc = p.get("textDocument")
    uri = None
    if doc is not None:
        if not isinstance(doc, dict) or not isinstance(doc.get("uri"), str):
            raise JsonRpcInvalidParams("textDocument must be {uri}")
        uri = doc["uri"]
    path = text = selection = None
    if uri is not None:
        path = ls.document_path(uri)
        engine = ls.engine_for(uri)
        opened = open_document(ls, uri)
        if opened is not None:
            text = opened.source
        # An unopened document without a range is left to the turn (engine/chat/prompt.py reads it off the
        # event loop, and leaves it out if unreadable); with a range its text is needed here, to convert it.
        rng = p.get("range")
        if rng is not None:
            if not isinstance(rng, dict):
                raise JsonRpcInvalidParams("range must be {start, end}")
            start, end = position_param(rng.get("start"), "range.start"), position_param(rng.get("end"), "range.end")
            try:  # never blocks: a FIFO or device is refused with an error that says so
                document = document_for(ls, uri)
            except UnreadableDocument as exc:
                raise JsonRpcInvalidParams(str(exc)) from None
            text = document.source
            srange = range_from_client(document, types.Range(start=start, end=end))
            selection = (srange.start.line, srange.start.character, srange.end.line, srange.end.character)
    else:
        if p.get("range") is not None:
            raise JsonRpcInvalidParams("range needs textDocument")
        roots = ls.workspaces.roots
        if not roots:
            raise JsonRpcInvalidRequest("no workspace folder is open: send textDocument or open a folder")
        engine = ls.workspaces.engine_for(roots[0] / ".")
    try:
        request = ChatRequest(message=message, mode=mode, conversation_id=cid, path=path, text=text,
                              selection=selection, grammars=grammars, max_steps=max_steps,
                              max_tokens=max_tokens)
    except ChatError as exc:
        raise JsonRpcInvalidParams(str(exc)) from None
    return engine, request


# -- the editor's buffers and edits ---------------------------------------------------------------------
def _open_document(ls: CoderflashServer, path: Path) -> TextDocument | None:
    try:
        documents = list(ls.workspace.text_documents.items())
    except RuntimeError:  # the event loop changed the dict while we copied it: try once more
        documents = list(ls.workspace.text_documents.items())
    for uri, document in documents:
        try:
            if Path(to_fs_path(uri) or uri).resolve() == path:
                return document
        except OSError:
            continue
    return None


def _proposal_edit(ls: CoderflashServer, proposal: EditProposal) -> types.WorkspaceEdit:
    """The proposal as a WorkspaceEdit on the open buffer (its version) or the file; a new file is created
    first. The proposal's offsets are in ``proposal.current``, the text the model saw."""
    document = _open_document(ls, proposal.path)
    uri = document.uri if document is not None else proposal.path.as_uri()
    codec = ls.workspace.position_codec
    edit = types.TextEdit(range=types.Range(start=offset_to_client(codec, proposal.current, proposal.start),
                                            end=offset_to_client(codec, proposal.current, proposal.end)),
                          new_text=proposal.new_text)
    version = document.version if document is not None and not proposal.create else None
    return workspace_edit(ls.client_capabilities, [FileEdits(uri, [edit], version)],
                          create=[uri] if proposal.create else [])


def _make_apply_edit(ls: CoderflashServer, loop: asyncio.AbstractEventLoop,
                     cancel: CancelToken) -> Callable[[EditProposal], tuple[bool, str]]:
    def apply_edit(proposal: EditProposal) -> tuple[bool, str]:
        workspace = ls.client_capabilities.workspace
        if not (workspace and workspace.apply_edit):
            return False, "the editor does not support workspace/applyEdit"
        if proposal.create and not can_create_files(ls.client_capabilities):
            return False, "the editor cannot create files through workspace/applyEdit"
        params = types.ApplyWorkspaceEditParams(edit=_proposal_edit(ls, proposal), label=f"coderflash: edit {proposal.rel}")
        future = asyncio.run_coroutine_threadsafe(ls.workspace_apply_edit_async(params), loop)
        waited = 0.0
        while True:
            try:
                result = future.result(timeout=0.1)
                break
            except concurrent.futures.TimeoutError:
                waited += 0.1
                if cancel.cancelled or waited > _APPLY_TIMEOUT_S:
                    future.cancel()
                    return False, "the chat was cancelled before the editor answered" if cancel.cancelled \
                        else "the editor did not answer"
            except Exception as exc:  # noqa: BLE001 - an error response from the editor
                return False, f"the editor reported an error: {exc}"
        applied = bool(getattr(result, "applied", False))
        reason = getattr(result, "failure_reason", None) or ("" if applied else "refused in the editor")
        return applied, reason

    return apply_edit


def _make_read_buffer(ls: CoderflashServer) -> Callable[[Path], str | None]:
    def read_buffer(path: Path) -> str | None:
        document = _open_document(ls, path)
        return document.source if document is not None else None

    return read_buffer


# -- handlers -----------------------------------------------------------------------------------------
class ChatTurns:
    """The chat turns of one server and their state: conversations per workspace root, the running turns
    (by conversation id, for cancel) and the threads the turns run on."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="coderflash-chat")
        self._stores: dict[str, ConversationStore] = {}
        self._active: dict[str, list[CancelToken]] = {}  # the running turns of each conversation
        self._lock = threading.Lock()

    def _store(self, root: Path | None) -> ConversationStore:
        key = str(root)
        with self._lock:
            if key not in self._stores:
                self._stores[key] = ConversationStore()
            return self._stores[key]

    async def run(self, ls: CoderflashServer, params: Any) -> dict[str, Any]:
        """``coderflash/chat``: one turn, streamed as chatDelta notifications; the result object at the end."""
        engine, request = _parse(ls, params)
        conversation = self._store(engine.root).get(request.conversation_id)
        cid = conversation.id
        cancel = CancelToken()
        with self._lock:
            self._active.setdefault(cid, []).append(cancel)
        loop = asyncio.get_running_loop()

        def emit(kind: str, text: str, **extra: Any) -> None:
            loop.call_soon_threadsafe(ls.protocol.notify, CHAT_DELTA,
                                      {"conversationId": cid, "kind": kind, "text": text, **extra})

        def work():
            if not ls.ensure_model(engine):
                raise ChatError(engine.load_error or "the model could not be loaded")
            session = ChatSession(engine, conversation, request, emit=emit,
                                  apply_edit=_make_apply_edit(ls, loop, cancel), read_buffer=_make_read_buffer(ls),
                                  roots=list(ls.workspaces.roots), cancel=cancel)
            return session.run()

        try:
            result = await loop.run_in_executor(self._pool, work)
        except asyncio.CancelledError:
            cancel.cancel("$/cancelRequest")
            raise
        except ChatError as exc:
            raise JsonRpcInternalError(f"coderflash: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - one line for the editor, the details in the log
            ls.log(f"chat failed: {type(exc).__name__}: {exc}", types.MessageType.Error)
            raise JsonRpcInternalError(f"coderflash: chat failed: {exc}") from None
        finally:
            with self._lock:
                running = self._active.get(cid, [])
                if cancel in running:
                    running.remove(cancel)
                if not running:
                    self._active.pop(cid, None)
        return result.to_json()

    def cancel(self, params: Any) -> dict[str, Any]:
        """``coderflash/chat/cancel``: stop the conversation's running turns, if any (a client may start a turn
        before the last one ended: each has its own token, and a later turn never hides an earlier one)."""
        p = _plain(params)
        cid = p.get("conversationId") if isinstance(p, dict) else None
        if not isinstance(cid, str):
            raise JsonRpcInvalidParams("conversationId must be a string")
        with self._lock:
            tokens = list(self._active.get(cid, []))
        for token in tokens:
            token.cancel("cancelled by the user")
        return {"conversationId": cid, "cancelled": bool(tokens)}


def register(server: CoderflashServer) -> None:
    turns = ChatTurns()

    # pygls registers plain functions (it sets attributes on them), so the handlers wrap the turns' methods.
    async def on_chat(ls: CoderflashServer, params: Any = None) -> dict[str, Any]:
        return await turns.run(ls, params)

    def on_chat_cancel(params: Any = None) -> dict[str, Any]:
        return turns.cancel(params)

    server.feature(CHAT_REQUEST)(on_chat)
    server.feature(CHAT_CANCEL)(on_chat_cancel)
