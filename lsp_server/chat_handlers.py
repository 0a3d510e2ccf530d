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
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams, JsonRpcInvalidRequest
from pygls.uris import to_fs_path

from engine.model.backend import CancelToken
from engine.chat.session import ChatError, ChatRequest, ChatSession, ConversationStore
from engine.chat.tools import EditProposal

from .server import CoderflashServer, server

CHAT_REQUEST = "coderflash/chat"
CHAT_CANCEL = "coderflash/chat/cancel"
CHAT_DELTA = "coderflash/chatDelta"

_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="coderflash-chat")
_stores: dict[str, ConversationStore] = {}
_active: dict[str, CancelToken] = {}
_lock = threading.Lock()
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


def _store(root: Path | None) -> ConversationStore:
    key = str(root)
    with _lock:
        if key not in _stores:
            _stores[key] = ConversationStore()
        return _stores[key]


def _position(value: Any, name: str) -> types.Position:
    if not isinstance(value, dict) or not isinstance(value.get("line"), int) or not isinstance(value.get("character"), int) \
            or value["line"] < 0 or value["character"] < 0:
        raise JsonRpcInvalidParams(f"{name} must be a position {{line, character}} with non-negative integers")
    return types.Position(line=value["line"], character=value["character"])


def _parse(ls: CoderflashServer, raw: Any) -> tuple[Any, ChatRequest, str | None]:
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
        if uri in ls.workspace.text_documents:
            document = ls.workspace.get_text_document(uri)
            text = document.source
        rng = p.get("range")
        if rng is not None:
            if not isinstance(rng, dict):
                raise JsonRpcInvalidParams("range must be {start, end}")
            start, end = _position(rng.get("start"), "range.start"), _position(rng.get("end"), "range.end")
            document = ls.workspace.get_text_document(uri)
            if text is None:
                text = document.source
            srange = document.position_codec.range_from_client_units(document.lines, types.Range(start=start, end=end))
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
    return engine, request, uri


# -- edits --------------------------------------------------------------------------------------------
_BREAK = re.compile(r"\r\n|\r|\n")


def _client_position(ls: CoderflashServer, text: str, offset: int) -> types.Position:
    """An offset in ``text`` as an LSP position in the negotiated encoding (UTF-16 unless agreed otherwise)."""
    before = text[:offset]
    breaks = list(_BREAK.finditer(before))
    line_start = breaks[-1].end() if breaks else 0
    return types.Position(line=len(breaks), character=ls.workspace.position_codec.client_num_units(before[line_start:]))


def _open_document(ls: CoderflashServer, path: Path):
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


def _client_can(ls: CoderflashServer, *attrs: str) -> Any:
    value: Any = ls.client_capabilities
    for attr in attrs:
        value = getattr(value, attr, None) if value is not None else None
    return value


def _workspace_edit(ls: CoderflashServer, proposal: EditProposal) -> types.WorkspaceEdit:
    document = _open_document(ls, proposal.path)
    uri = document.uri if document is not None else proposal.path.as_uri()
    start = _client_position(ls, proposal.current, proposal.start)
    end = _client_position(ls, proposal.current, proposal.end)
    edit = types.TextEdit(range=types.Range(start=start, end=end), new_text=proposal.new_text)
    doc_changes = _client_can(ls, "workspace", "workspace_edit", "document_changes")
    if proposal.create:
        operations = _client_can(ls, "workspace", "workspace_edit", "resource_operations") or []
        if not doc_changes or types.ResourceOperationKind.Create not in operations:
            raise _Refused("the editor cannot create files through workspace/applyEdit")
        return types.WorkspaceEdit(document_changes=[
            types.CreateFile(uri=uri, options=types.CreateFileOptions(overwrite=False, ignore_if_exists=True)),
            types.TextDocumentEdit(text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=None),
                                   edits=[edit])])
    if doc_changes:
        version = document.version if document is not None else None
        return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
            text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version), edits=[edit])])
    return types.WorkspaceEdit(changes={uri: [edit]})


class _Refused(Exception):
    pass


def _make_apply_edit(ls: CoderflashServer, loop: asyncio.AbstractEventLoop, cancel: CancelToken):
    def apply_edit(proposal: EditProposal) -> tuple[bool, str]:
        if not _client_can(ls, "workspace", "apply_edit"):
            return False, "the editor does not support workspace/applyEdit"
        try:
            edit = _workspace_edit(ls, proposal)
        except _Refused as exc:
            return False, str(exc)
        params = types.ApplyWorkspaceEditParams(edit=edit, label=f"coderflash: edit {proposal.rel}")
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


def _make_read_buffer(ls: CoderflashServer):
    def read_buffer(path: Path) -> str | None:
        document = _open_document(ls, path)
        return document.source if document is not None else None

    return read_buffer


# -- handlers -----------------------------------------------------------------------------------------
@server.feature(CHAT_REQUEST)
async def on_chat(ls: CoderflashServer, params: Any = None) -> dict[str, Any]:
    engine, request, _uri = _parse(ls, params)
    conversation = _store(engine.root).get(request.conversation_id)
    cid = conversation.id
    cancel = CancelToken()
    with _lock:
        _active[cid] = cancel
    loop = asyncio.get_running_loop()

    def emit(kind: str, text: str, **extra: Any) -> None:
        loop.call_soon_threadsafe(ls.protocol.notify, CHAT_DELTA,
                                  {"conversationId": cid, "kind": kind, "text": text, **extra})

    def work():
        if not ls.ensure_model(engine):
            raise ChatError(engine.load_error or "the model could not be loaded")
        session = ChatSession(engine, conversation, request, emit=emit, apply_edit=_make_apply_edit(ls, loop, cancel),
                              read_buffer=_make_read_buffer(ls), roots=list(ls.workspaces.roots), cancel=cancel)
        return session.run()

    try:
        result = await loop.run_in_executor(_pool, work)
    except asyncio.CancelledError:
        cancel.cancel("$/cancelRequest")
        raise
    except ChatError as exc:
        raise JsonRpcInternalError(f"coderflash: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - one line for the editor, the details in the log
        ls.log(f"chat failed: {type(exc).__name__}: {exc}", types.MessageType.Error)
        raise JsonRpcInternalError(f"coderflash: chat failed: {exc}") from None
    finally:
        with _lock:
            if _active.get(cid) is cancel:
                _active.pop(cid, None)
    return result.to_json()


@server.feature(CHAT_CANCEL)
def on_chat_cancel(ls: CoderflashServer, params: Any = None) -> dict[str, Any]:
    p = _plain(params)
    cid = p.get("conversationId") if isinstance(p, dict) else None
    if not isinstance(cid, str):
        raise JsonRpcInvalidParams("conversationId must be a string")
    with _lock:
        token = _active.get(cid)
    if token is not None:
        token.cancel("cancelled by the user")
    return {"conversationId": cid, "cancelled": token is not None}
