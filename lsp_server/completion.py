"""Completion: ``textDocument/inlineCompletion`` (ghost text), ``textDocument/completion`` (the same
completion as one item, for clients without inline completion) and ``coderflash/status`` (counters and, on
request, the engine time of recent completions for the server-overhead benchmark)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcContentModified, JsonRpcInvalidParams

from engine.model.backend import CancelToken, Cancelled
from engine.inference.runtime import CompletionOutput
from engine.text_position import line_texts

from .disk_documents import UnreadableDocument, document_for
from .positions import from_client
from .process_memory import memory_usage
from .server import CoderflashServer

STATUS_REQUEST = "coderflash/status"


async def _complete_at(ls: CoderflashServer, uri: str, position: types.Position) -> CompletionOutput | None:
    """Run one completion for a document position; None when cancelled or unavailable, ContentModified when
    the document changed meanwhile, InvalidParams for a position or document that does not exist.

    The engine's scheduler gives inline completion the highest priority and lets the newest request for
    a document supersede the running one (it stops within one decode step)."""
    try:  # an unopened document is read from disk once, never blocking (a FIFO or device is refused)
        document = document_for(ls, uri)
    except UnreadableDocument as exc:  # an error, not an empty list: says why nothing can be completed
        raise JsonRpcInvalidParams(str(exc)) from None
    version = document.version
    text = document.source
    server_pos = from_client(document, position)
    engine = ls.engine_for(uri)
    path = ls.document_path(uri)
    if engine.is_secret_document(path):  # a .env, a key: its text never enters a prompt, so no completion
        return None
    token = CancelToken()
    previous = ls.pending.get(uri)
    if previous is not None:
        previous.cancel("superseded")  # latest request per document wins
    ls.pending[uri] = token
    loop = asyncio.get_running_loop()
    try:
        if not engine.loaded:
            ready = await loop.run_in_executor(ls.loader, ls.ensure_model, engine)
            if not ready or token.cancelled:
                return None
        started = time.perf_counter()
        future = engine.submit_complete(path, text, server_pos.line, server_pos.character, cancel=token)
        future.add_done_callback(lambda _f: ls.engine_ms.append(round((time.perf_counter() - started) * 1000, 3)))
        out = await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        token.cancel("$/cancelRequest")
        raise
    except Cancelled:
        out = None
    finally:
        if ls.pending.get(uri) is token:
            ls.pending.pop(uri, None)
    if ls.workspace.get_text_document(uri).version != version:  # the document changed while we computed
        raise JsonRpcContentModified(f"{uri} changed while the completion was computed")
    if out is None or token.cancelled or out.result.finish_reason == "cancelled":
        return None  # superseded by a newer request in the same document, or no model
    return out


async def on_inline_completion(ls: CoderflashServer, params: types.InlineCompletionParams) -> types.InlineCompletionList:
    out = await _complete_at(ls, params.text_document.uri, params.position)
    if out is None or not out.completion:
        return types.InlineCompletionList(items=[])
    item = types.InlineCompletionItem(
        insert_text=out.completion,
        range=types.Range(start=params.position, end=params.position),
    )
    return types.InlineCompletionList(items=[item])


async def on_completion(ls: CoderflashServer, params: types.CompletionParams) -> types.CompletionList:
    """Fallback for clients without inline completion: the completion as one labelled item."""
    out = await _complete_at(ls, params.text_document.uri, params.position)
    if out is None or not out.completion:
        return types.CompletionList(is_incomplete=True, items=[])
    lines = line_texts(out.completion)  # in the document's line ends: \r\n or a lone \r end a line too
    label = f"✦ {lines[0].strip()[:60]}" + ("…" if out.multiline and len(lines) > 1 else "")
    item = types.CompletionItem(
        label=label,
        kind=types.CompletionItemKind.Snippet,
        detail="coderflash" + (" (multi-line)" if len(lines) > 1 else ""),
        documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=f"```\n{out.completion}\n```"),
        text_edit=types.TextEdit(range=types.Range(start=params.position, end=params.position), new_text=out.completion),
        insert_text_format=types.InsertTextFormat.PlainText,
        sort_text="0",
        filter_text=" ",
        preselect=True,
    )
    return types.CompletionList(is_incomplete=True, items=[item])


def on_status(ls: CoderflashServer, params: Any = None) -> dict[str, Any]:
    status = ls.workspaces.status()
    wanted = params.get("timings") if isinstance(params, dict) else getattr(params, "timings", False)
    status["engine_ms"] = list(ls.engine_ms)[-1000:] if wanted else []
    status["handlers_in_flight"] = ls.protocol.handlers_in_flight
    status["memory"] = memory_usage()
    return status


def register(server: CoderflashServer) -> None:
    server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())(on_inline_completion)
    server.feature(types.TEXT_DOCUMENT_COMPLETION,
                   types.CompletionOptions(trigger_characters=[".", "(", " "]))(on_completion)
    server.feature(STATUS_REQUEST)(on_status)
