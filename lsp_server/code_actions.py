"""Code actions: listed for free, computed in ``codeAction/resolve`` (the model runs only for the one picked).

Every edit is one WorkspaceEdit (files to create first, then text edits), so the client applies it with undo.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.uris import from_fs_path

from engine.inference.actions import ACTION_TITLES, ActionResult, ActionRunner, inside_definition
from engine.text_position import split_lines

from .disk_documents import UnreadableDocument, disk_text, document_for, open_document
from .edits import FileEdits, workspace_edit
from .positions import range_from_client, to_client
from .server import CoderflashServer

ACTION_KINDS = {
    "quickfix": types.CodeActionKind.QuickFix.value,
    "docstring": types.CodeActionKind.RefactorRewrite.value,
    "body": types.CodeActionKind.RefactorRewrite.value,
    "rewrite": types.CodeActionKind.RefactorRewrite.value,
    "tests": "source.coderflash.generateTests",
    "explain": "source.coderflash.explain",
}


def kind_value(kind: types.CodeActionKind | str) -> str:
    """The wire string of a kind: ``str()`` of an lsprotocol enum is ``"CodeActionKind.QuickFix"``."""
    return kind.value if isinstance(kind, types.CodeActionKind) else str(kind)


def kind_wanted(kind: str, only: list[types.CodeActionKind | str] | None) -> bool:
    """LSP's ``only`` filter is hierarchical: ``refactor`` asks for ``refactor.rewrite`` too."""
    return not only or any(kind == w or kind.startswith(w + ".") for w in map(kind_value, only))


def on_code_action(ls: CoderflashServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    """The actions for a selection. An unopened document that cannot be read (a FIFO, a device, too large)
    has none: editors ask on every cursor move, and no action could be resolved for it anyway (resolve
    needs an open document), so an empty list, not an error response each time."""
    uri = params.text_document.uri
    try:
        document = document_for(ls, uri)
    except UnreadableDocument as exc:
        ls.log(f"code actions: {exc}")
        return []
    lines = split_lines(document.source)  # LSP's lines: a lone \r ends one too
    selection = range_from_client(document, params.range)
    base = {"uri": uri, "version": document.version, "start_line": selection.start.line,
            "end_line": selection.end.line}
    actions: list[types.CodeAction] = []
    wanted = params.context.only

    def add(kind: str, title: str, **data: Any) -> None:
        lsp_kind = ACTION_KINDS[kind]
        if not kind_wanted(lsp_kind, wanted):
            return
        diagnostics = data.pop("_diagnostics", None)
        actions.append(types.CodeAction(title=title, kind=lsp_kind, data={**base, "kind": kind, **data},
                                        diagnostics=diagnostics))

    for diagnostic in params.context.diagnostics:
        span = range_from_client(document, diagnostic.range)
        message = diagnostic.message.split("\n", 1)[0][:80]
        add("quickfix", f"coderflash: Fix “{message}”", _diagnostics=[diagnostic],
            diagnostic={"message": diagnostic.message, "start_line": span.start.line, "end_line": span.end.line})
    if inside_definition(lines, selection.start.line):
        for kind in ("docstring", "body", "tests"):
            add(kind, ACTION_TITLES[kind])
    if selection.end != selection.start:
        add("rewrite", ACTION_TITLES["rewrite"])
    add("explain", ACTION_TITLES["explain"])
    return actions


def action_edit(ls: CoderflashServer, result: ActionResult, path: str, text: str) -> types.WorkspaceEdit:
    """An action's edits as one WorkspaceEdit. Positions are converted on the text each edit was computed
    on: ``text`` for the document itself, the open buffer or the disk for another file (a test file)."""
    texts = {path: text}
    by_file: dict[str, list[types.TextEdit]] = {}
    codec = ls.workspace.position_codec
    for edit in result.edits:
        if edit.path not in texts:
            texts[edit.path] = _current_text(ls, edit.path)
        target = texts[edit.path]
        by_file.setdefault(edit.path, []).append(types.TextEdit(
            range=types.Range(start=to_client(codec, target, edit.start_line, edit.start_character),
                              end=to_client(codec, target, edit.end_line, edit.end_character)),
            new_text=edit.new_text))
    files = []
    for file_path, edits in by_file.items():
        uri = from_fs_path(file_path)
        document = open_document(ls, uri) if uri else None
        version = document.version if document is not None else None
        files.append(FileEdits(uri, edits, version))
    return workspace_edit(ls.client_capabilities, files, create=[from_fs_path(p) for p in result.create_files])


def _current_text(ls: CoderflashServer, path: str) -> str:
    """The open buffer's text, else the file on disk, else empty (a file the action creates, or one that
    cannot be read without blocking: a FIFO or device is never opened)."""
    uri = from_fs_path(path)
    document = open_document(ls, uri) if uri else None
    if document is not None:
        return document.source
    try:
        return disk_text(path, ls.workspaces.engine_for(Path(path)).config.index.max_file_size, errors="replace")
    except (OSError, ValueError):
        return ""


def _write_explanation(ls: CoderflashServer, path: str, markdown: str) -> Path:
    """An explanation as a Markdown file in the cache (the client opens it with showDocument)."""
    engine = ls.workspaces.engine_for(Path(path))
    folder = engine.config.cache_path / "explanations"
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(markdown.encode()).hexdigest()[:10]
    target = folder / f"{Path(path).stem}-{digest}.md"
    target.write_text(markdown, encoding="utf-8")
    return target


async def on_code_action_resolve(ls: CoderflashServer, action: types.CodeAction) -> types.CodeAction:
    data = action.data or {}
    uri = data.get("uri")
    document = open_document(ls, uri) if isinstance(uri, str) else None  # the uri as the editor wrote it
    if document is None:
        return action
    if document.version != data.get("version"):
        ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning,
                                                       message="coderflash: the document changed; run the action again"))
        return action
    path = str(ls.document_path(uri))
    text = document.source
    engine = ls.engine_for(uri)

    def work() -> ActionResult | None:
        if not ls.ensure_model(engine):
            return None
        return ActionRunner(engine).run(data["kind"], path, text, int(data["start_line"]), int(data["end_line"]),
                                        diagnostic=data.get("diagnostic"))

    try:
        result = await asyncio.get_running_loop().run_in_executor(ls.loader, work)
    except ValueError as exc:
        ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=f"coderflash: {exc}"))
        return action
    if result is None:
        return action
    if result.markdown is not None:
        target = _write_explanation(ls, path, result.markdown)
        action.command = types.Command(title="Show explanation", command="coderflash.showExplanation",
                                       arguments=[str(target)])
        return action
    action.edit = action_edit(ls, result, path, text)
    return action


def register(server: CoderflashServer) -> None:
    server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                   types.CodeActionOptions(code_action_kinds=sorted(set(ACTION_KINDS.values())),
                                           resolve_provider=True))(on_code_action)
    server.feature(types.CODE_ACTION_RESOLVE)(on_code_action_resolve)
