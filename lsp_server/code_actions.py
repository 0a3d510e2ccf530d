"""Code actions: listed for free, computed in ``codeAction/resolve`` (the model runs only for the one picked).

Every edit is one WorkspaceEdit (files to create first, then text edits), so the client applies it with undo.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.uris import from_fs_path
from pygls.workspace.position_codec import ServerTextPosition

from engine.inference.actions import ACTION_TITLES, ActionResult, ActionRunner

from .server import CoderflashServer, server

_DEFINITION_LINE = re.compile(
    r"^\s*(?:export\s+)?(?:pub(?:\(\w+\))?\s+)?(?:async\s+)?(?:static\s+)?"
    r"(?:def|class|function|fn|func|fun|struct|interface|impl|module|(?:public|private|protected)\s+[\w<>\[\], ]+\s*\()"
)

ACTION_KINDS = {
    "quickfix": types.CodeActionKind.QuickFix,
    "docstring": types.CodeActionKind.RefactorRewrite,
    "body": types.CodeActionKind.RefactorRewrite,
    "rewrite": types.CodeActionKind.RefactorRewrite,
    "tests": "source.coderflash.generateTests",
    "explain": "source.coderflash.explain",
}


def _inside_definition(lines: list[str], line: int) -> bool:
    """Cheap check for listing (no model, no index): is there a definition header at or above ``line``?"""
    for number in range(min(line, len(lines) - 1), max(-1, line - 400), -1):
        if _DEFINITION_LINE.match(lines[number]):
            return True
    return False


@server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                types.CodeActionOptions(code_action_kinds=sorted({str(k) for k in ACTION_KINDS.values()}),
                                        resolve_provider=True))
def on_code_action(ls: CoderflashServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    uri = params.text_document.uri
    document = ls.workspace.get_text_document(uri)
    lines = document.source.split("\n")
    selection = document.range_from_client_units(params.range)
    base = {"uri": uri, "version": document.version, "start_line": selection.start.line,
            "end_line": selection.end.line}
    actions: list[types.CodeAction] = []
    wanted = params.context.only

    def add(kind: str, title: str, **data: Any) -> None:
        lsp_kind = ACTION_KINDS[kind]
        if wanted and not any(str(lsp_kind).startswith(str(w)) for w in wanted):
            return
        diagnostics = data.pop("_diagnostics", None)
        actions.append(types.CodeAction(title=title, kind=lsp_kind, data={**base, "kind": kind, **data},
                                        diagnostics=diagnostics))

    for diagnostic in params.context.diagnostics:
        span = document.range_from_client_units(diagnostic.range)
        message = diagnostic.message.split("\n", 1)[0][:80]
        add("quickfix", f"coderflash: Fix “{message}”", _diagnostics=[diagnostic],
            diagnostic={"message": diagnostic.message, "start_line": span.start.line, "end_line": span.end.line})
    if _inside_definition(lines, selection.start.line):
        for kind in ("docstring", "body", "tests"):
            add(kind, ACTION_TITLES[kind])
    if selection.end != selection.start:
        add("rewrite", ACTION_TITLES["rewrite"])
    add("explain", ACTION_TITLES["explain"])
    return actions


def _client_position(ls: CoderflashServer, text: str, line: int, character: int) -> types.Position:
    lines = text.splitlines(True) or [""]
    return ls.workspace.position_codec.position_to_client_units(lines, ServerTextPosition(line, character))


def to_workspace_edit(ls: CoderflashServer, result: ActionResult, texts: dict[str, str]) -> types.WorkspaceEdit:
    """Engine edits → a WorkspaceEdit; files are created first when the client supports it."""
    caps = ls.client_capabilities.workspace
    edit_caps = caps.workspace_edit if caps else None
    document_changes = bool(edit_caps and edit_caps.document_changes)
    can_create = bool(edit_caps and edit_caps.resource_operations and
                      types.ResourceOperationKind.Create in edit_caps.resource_operations)
    by_file: dict[str, list[types.TextEdit]] = {}
    for edit in result.edits:
        text = texts.get(edit.path, "")
        by_file.setdefault(edit.path, []).append(types.TextEdit(
            range=types.Range(start=_client_position(ls, text, edit.start_line, edit.start_character),
                              end=_client_position(ls, text, edit.end_line, edit.end_character)),
            new_text=edit.new_text))
    if document_changes:
        changes: list[Any] = []
        if can_create:
            changes += [types.CreateFile(uri=from_fs_path(p), options=types.CreateFileOptions(ignore_if_exists=True))
                        for p in result.create_files]
        for path, edits in by_file.items():
            uri = from_fs_path(path)
            version = ls.workspace.get_text_document(uri).version if uri in ls.workspace.text_documents else None
            changes.append(types.TextDocumentEdit(
                text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
                edits=edits))
        return types.WorkspaceEdit(document_changes=changes)
    return types.WorkspaceEdit(changes={from_fs_path(p): e for p, e in by_file.items()})


def _texts_for(ls: CoderflashServer, result: ActionResult, path: str, text: str) -> dict[str, str]:
    texts = {path: text}
    for edit in result.edits:
        if edit.path not in texts:
            uri = from_fs_path(edit.path)
            if uri in ls.workspace.text_documents:
                texts[edit.path] = ls.workspace.get_text_document(uri).source
            elif Path(edit.path).is_file():
                texts[edit.path] = Path(edit.path).read_text(encoding="utf-8", errors="replace")
    return texts


@server.feature(types.CODE_ACTION_RESOLVE)
async def on_code_action_resolve(ls: CoderflashServer, action: types.CodeAction) -> types.CodeAction:
    data = action.data or {}
    uri = data.get("uri")
    if not uri or uri not in ls.workspace.text_documents:
        return action
    document = ls.workspace.get_text_document(uri)
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
        target = ls.write_explanation(path, result.markdown)
        action.command = types.Command(title="Show explanation", command="coderflash.showExplanation",
                                       arguments=[str(target)])
        return action
    action.edit = to_workspace_edit(ls, result, _texts_for(ls, result, path, text))
    return action
