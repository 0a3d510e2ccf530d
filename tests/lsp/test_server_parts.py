"""The language server's parts without a client: the methods and commands the one built server answers, the
position converter and the WorkspaceEdit builder every edit goes through, the definition check for listing
actions."""

from __future__ import annotations

from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec

from engine.inference import actions
from lsp_server.app import build_server
from lsp_server.edits import FileEdits, can_create_files, workspace_edit
from lsp_server.positions import offset_to_client, to_client

METHODS = {
    "initialize", "initialized", "shutdown", "workspace/didChangeConfiguration",
    "workspace/didChangeWorkspaceFolders", "textDocument/didOpen", "textDocument/didChange",
    "textDocument/didSave", "textDocument/didClose", "textDocument/inlineCompletion", "textDocument/completion",
    "coderflash/status", "textDocument/codeAction", "codeAction/resolve", "coderflash/chat",
    "coderflash/chat/cancel",
}
COMMANDS = ["coderflash.reindex", "coderflash.status", "coderflash.clearCache", "coderflash.pullModel",
            "coderflash.rewriteSelection", "coderflash.showExplanation"]


def test_build_server_registers_every_method_and_command_once_per_server() -> None:
    first, second = build_server(), build_server()  # no module-level server: each build is complete
    for server in (first, second):
        assert set(server.protocol.fm.features) == METHODS
        assert list(server.protocol.fm.commands) == COMMANDS


def test_to_client_counts_utf16_units_and_lsp_line_ends() -> None:
    codec = PositionCodec(types.PositionEncodingKind.Utf16)
    text = "a\r\nb😀c\rd\n"
    assert to_client(codec, text, 1, 2) == types.Position(line=1, character=3)  # 😀 is two UTF-16 units
    assert to_client(codec, text, 2, 1) == types.Position(line=2, character=1)  # a lone \r ends a line too
    assert to_client(codec, text, 3, 0) == types.Position(line=3, character=0)  # the empty last line
    assert to_client(codec, text, 9, 4) == types.Position(line=4, character=0)  # past the end
    assert to_client(codec, "", 0, 0) == types.Position(line=0, character=0)
    # A form feed is not a line end for an editor (str.splitlines would count one).
    assert to_client(codec, "x\x0cy\nz", 1, 1) == types.Position(line=1, character=1)


def test_offset_to_client_agrees_with_to_client() -> None:
    codec = PositionCodec(types.PositionEncodingKind.Utf16)
    text = "first\r\nsé😀cond\nthird"
    for line, character, offset in ((0, 3, 3), (1, 3, 10), (2, 2, 17)):
        assert offset_to_client(codec, text, offset) == to_client(codec, text, line, character)


def _capabilities(document_changes: bool, create: bool) -> types.ClientCapabilities:
    operations = [types.ResourceOperationKind.Create] if create else []
    return types.ClientCapabilities(workspace=types.WorkspaceClientCapabilities(
        workspace_edit=types.WorkspaceEditClientCapabilities(document_changes=document_changes,
                                                             resource_operations=operations)))


def test_workspace_edit_shapes() -> None:
    edit = types.TextEdit(range=types.Range(start=types.Position(line=0, character=0),
                                            end=types.Position(line=0, character=0)), new_text="x")
    files = [FileEdits("file:///a.py", [edit], 3), FileEdits("file:///t.py", [edit])]

    plain = workspace_edit(_capabilities(False, False), files, create=["file:///t.py"])
    assert plain.document_changes is None and plain.changes == {"file:///a.py": [edit], "file:///t.py": [edit]}

    versioned = workspace_edit(_capabilities(True, True), files, create=["file:///t.py"])
    create, first, second = versioned.document_changes
    assert isinstance(create, types.CreateFile) and create.uri == "file:///t.py"
    assert create.options.ignore_if_exists and not create.options.overwrite
    assert (first.text_document.uri, first.text_document.version) == ("file:///a.py", 3)
    assert (second.text_document.uri, second.text_document.version) == ("file:///t.py", None)

    no_create = workspace_edit(_capabilities(True, False), files, create=["file:///t.py"])
    assert all(isinstance(c, types.TextDocumentEdit) for c in no_create.document_changes)
    assert can_create_files(_capabilities(True, True))
    assert not can_create_files(_capabilities(False, True)) and not can_create_files(_capabilities(True, False))


def test_inside_definition_looks_up_to_400_lines_above() -> None:
    lines = ["import os", "", "def main():"] + ["    pass"] * 500
    assert not actions.inside_definition(lines, 1)
    assert actions.inside_definition(lines, 2) and actions.inside_definition(lines, 401)
    assert not actions.inside_definition(lines, 402)
    assert actions.inside_definition(["export async function go() {"], 0)
    assert actions.inside_definition(["    public static int size(List<T> items) {"], 0)


def test_test_file_follows_each_language(tmp_path) -> None:
    (tmp_path / "tests").mkdir()
    assert actions.test_file_for(str(tmp_path / "shop" / "cart.py"), tmp_path) == str(tmp_path / "tests" / "test_cart.py")
    assert actions.test_file_for("/r/ui/view.tsx", None) == "/r/ui/view.test.tsx"
    assert actions.test_file_for("/r/cmd/main.go", None) == "/r/cmd/main_test.go"
    assert actions.test_file_for("/r/src/lib.rs", None) == "/r/src/lib.rs"


class _WithoutIndex:
    """An engine whose index is not built yet: find_enclosing falls back to indentation."""

    def repo_index(self) -> None:
        return None


def test_find_enclosing_without_index_takes_python_like_headers() -> None:
    text = "class Cart:\n    def total(self,\n              tax):\n        return 1\n\nx = 2\n"
    enclosing = actions.find_enclosing(_WithoutIndex(), "/r/cart.py", text, 3)
    assert (enclosing.name, enclosing.start_line, enclosing.header_end_line, enclosing.end_line,
            enclosing.indent) == ("total", 1, 2, 4, "    ")
    # Headers with modifiers are left to the index (tree-sitter): the fallback finds the outer function.
    js = "function outer() {\n  export function inner() {\n    return 1;\n  }\n}\n"
    assert actions.find_enclosing(_WithoutIndex(), "/r/a.js", js, 2).name == "outer"
    assert actions.find_enclosing(_WithoutIndex(), "/r/a.py", "x = 1\ndefine = 2\n", 1) is None
