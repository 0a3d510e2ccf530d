"""workspace/executeCommand: reindex, status, clearCache, pullModel, rewriteSelection, showExplanation."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from engine.inference.actions import DEFAULT_REWRITE_INSTRUCTION, ActionResult, ActionRunner
from engine.model.resolution import ModelError, pull

from .code_actions import action_edit
from .disk_documents import open_document
from .positions import position_param, range_from_client
from .server import CoderflashServer

logger = logging.getLogger("coderflash")


def _arg(args: Any, index: int, default: Any = None) -> Any:
    if isinstance(args, (list, tuple)) and len(args) > index:
        return args[index]
    return default


async def cmd_reindex(ls: CoderflashServer, *args: Any) -> dict[str, Any]:
    stats = await ls.index_all()
    return {"reindexed": stats}


def cmd_status(ls: CoderflashServer, *args: Any) -> dict[str, Any]:
    status = ls.workspaces.status()
    model = status.get("model", {})
    summary = (f"coderflash {status['version']}: model {model.get('model_name') or model.get('path') or 'not loaded'}; "
               f"{status['requests']} requests, {status['reused_tokens']} of {status['prompt_tokens']} prompt tokens "
               f"reused, {status['evaluated_tokens']} evaluated, {status['cancelled']} cancelled")
    ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Info, message=summary))
    return status


def cmd_clear_cache(ls: CoderflashServer, *args: Any) -> dict[str, Any]:
    cleared = ls.workspaces.clear_caches()
    ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Info,
                                                   message=f"coderflash: cleared {cleared} cached items"))
    return {"cleared": cleared}


async def cmd_pull_model(ls: CoderflashServer, *args: Any) -> dict[str, Any]:
    spec = _arg(args, 0) or ""
    if not isinstance(spec, str):
        raise JsonRpcInvalidParams(f"pullModel takes a model name or Hugging Face repo id, got {spec!r}")
    async with ls.progress("coderflash: downloading model", cancellable=False) as report:
        try:
            path = await asyncio.get_running_loop().run_in_executor(
                ls.loader, lambda: pull(spec, progress=lambda line: report(line)))
        except ModelError as exc:
            ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=f"coderflash: {exc}"))
            return {"error": str(exc)}
    ls.window_show_message(types.ShowMessageParams(
        type=types.MessageType.Info, message=f"coderflash: downloaded {Path(path).name}; set \"model\" to use it"))
    return {"path": str(path)}


async def cmd_rewrite_selection(ls: CoderflashServer, *args: Any) -> dict[str, Any]:
    """Arguments: [uri, range, instruction?] or [{uri, range, instruction?}]."""
    first = _arg(args, 0)
    if isinstance(first, dict) and "uri" in first:
        uri, lsp_range, instruction = first["uri"], first.get("range"), first.get("instruction")
    else:
        uri, lsp_range, instruction = first, _arg(args, 1), _arg(args, 2)
    if not isinstance(uri, str) or not isinstance(lsp_range, dict):
        raise JsonRpcInvalidParams("rewriteSelection takes [uri, range, instruction?] or [{uri, range, instruction?}]")
    if instruction is not None and not isinstance(instruction, str):
        raise JsonRpcInvalidParams(f"instruction must be a string, got {instruction!r}")
    client_range = types.Range(start=position_param(lsp_range.get("start"), "range.start"),
                               end=position_param(lsp_range.get("end"), "range.end"))
    document = open_document(ls, uri)  # percent-encoded as VS Code writes it ("file:///c%3A/...") or not
    if document is None:
        return {"applied": False, "error": "rewriteSelection needs an open document uri and a range"}
    selection = range_from_client(document, client_range)
    path, text = str(ls.document_path(uri)), document.source
    engine = ls.engine_for(uri)

    def work() -> ActionResult | None:
        if not ls.ensure_model(engine):
            return None
        return ActionRunner(engine).run("rewrite", path, text, selection.start.line, selection.end.line,
                                        instruction=instruction or DEFAULT_REWRITE_INSTRUCTION)

    result = await asyncio.get_running_loop().run_in_executor(ls.loader, work)
    if result is None:
        return {"applied": False, "error": "no model"}
    edit = action_edit(ls, result, path, text)
    response = await ls.workspace_apply_edit_async(types.ApplyWorkspaceEditParams(edit=edit, label="coderflash: rewrite"))
    return {"applied": bool(getattr(response, "applied", False))}  # a null answer: not applied


def _explanation_file(ls: CoderflashServer, raw: Any) -> Path | None:
    """``raw`` when it names an explanation this server wrote (``<cache>/explanations/…``), else None. Why: the
    command takes a path from the client, and showing any file would show ``.env`` or ``/proc/self/environ``
    in the editor, past the secret rules every other path obeys."""
    if not isinstance(raw, str) or not raw:
        return None
    target = Path(raw).resolve()
    folders = {(engine.config.cache_path / "explanations").resolve() for engine in ls.workspaces.engines()}
    return target if target.parent in folders and target.is_file() else None


async def cmd_show_explanation(ls: CoderflashServer, *args: Any) -> dict[str, Any]:
    target = _explanation_file(ls, _arg(args, 0))
    if target is None:
        return {"shown": False}
    window = ls.client_capabilities.window
    if window and window.show_document and window.show_document.support:
        result = await ls.window_show_document_async(types.ShowDocumentParams(uri=target.as_uri(), take_focus=True))
        logger.info("showDocument result: %r", result)
        return {"shown": bool(getattr(result, "success", False))}
    text = target.read_text(encoding="utf-8", errors="replace")
    ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Info, message=text[:4000]))
    return {"shown": True}


def register(server: CoderflashServer) -> None:
    server.command("coderflash.reindex")(cmd_reindex)
    server.command("coderflash.status")(cmd_status)
    server.command("coderflash.clearCache")(cmd_clear_cache)
    server.command("coderflash.pullModel")(cmd_pull_model)
    server.command("coderflash.rewriteSelection")(cmd_rewrite_selection)
    server.command("coderflash.showExplanation")(cmd_show_explanation)
