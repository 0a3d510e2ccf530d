"""Code actions, commands and status end to end (pytest-lsp, VS Code's capabilities, tiny model)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from lsp_helpers import apply_workspace_edit

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample_repo"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    os.environ["CF_TEST_MODEL"] = str(tiny_model)
    target = tmp_path_factory.mktemp("actions") / "sample_repo"
    shutil.copytree(SAMPLE, target)
    return target


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-m", "lsp_server", "serve"]))
async def client(lsp_client: LanguageClient, workspace: Path):
    params = types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        root_uri=workspace.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name=workspace.name)],
        initialization_options={"model": os.environ["CF_TEST_MODEL"], "llama": {"n_ctx": 8192}},
    )
    lsp_client.applied_edits = []

    @lsp_client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(client: LanguageClient, params: types.ApplyWorkspaceEditParams):
        client.applied_edits.append(params)
        return types.ApplyWorkspaceEditResult(applied=True)

    lsp_client.initialize_result = await lsp_client.initialize_session(params)
    yield
    await lsp_client.shutdown_session()


def _open(client: LanguageClient, path: Path) -> tuple[str, str]:
    uri, text = path.as_uri(), path.read_text()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
    return uri, text


async def _actions(client: LanguageClient, uri: str, line: int, diagnostics=(), only=None) -> list[types.CodeAction]:
    result = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(start=types.Position(line=line, character=4), end=types.Position(line=line, character=4)),
        context=types.CodeActionContext(diagnostics=list(diagnostics), only=only)))
    return [a for a in result or [] if isinstance(a, types.CodeAction)]


@pytest.mark.parametrize("kind", ["docstring", "body"])
async def test_action_resolves_to_an_edit_that_applies(client: LanguageClient, workspace: Path, kind: str) -> None:
    uri, text = _open(client, workspace / "shop" / "pricing.py")
    actions = await _actions(client, uri, 8)  # inside apply_discount
    chosen = next(a for a in actions if a.data["kind"] == kind)
    assert chosen.edit is None  # listing is free: no model ran yet
    resolved = await client.code_action_resolve_async(chosen)
    assert resolved.edit is not None
    new_texts = apply_workspace_edit(resolved.edit, {uri: text})
    assert uri in new_texts and new_texts[uri] != text
    if kind == "docstring":  # inserted under the header, the rest unchanged
        assert new_texts[uri].count('"""') == text.count('"""') + 2
        assert new_texts[uri].replace(text, "") != new_texts[uri] or "def apply_discount" in new_texts[uri]


async def test_generate_tests_creates_a_test_file(client: LanguageClient, workspace: Path) -> None:
    uri, text = _open(client, workspace / "shop" / "pricing.py")
    actions = await _actions(client, uri, 14)
    chosen = next(a for a in actions if a.data["kind"] == "tests")
    resolved = await client.code_action_resolve_async(chosen)
    creates = [c for c in resolved.edit.document_changes if isinstance(c, types.CreateFile)]
    assert creates and creates[0].uri.endswith("test_pricing.py")
    new_texts = apply_workspace_edit(resolved.edit, {uri: text})
    assert "from shop.pricing import checkout_total" in new_texts[creates[0].uri]


async def test_quickfix_from_a_diagnostic(client: LanguageClient, workspace: Path) -> None:
    uri, text = _open(client, workspace / "main.py")
    diagnostic = types.Diagnostic(range=types.Range(start=types.Position(line=15, character=4),
                                                    end=types.Position(line=15, character=11)),
                                  message="SyntaxError: invalid syntax", severity=types.DiagnosticSeverity.Error)
    actions = await _actions(client, uri, 15, [diagnostic])
    fix = next(a for a in actions if a.kind == types.CodeActionKind.QuickFix)
    assert "invalid syntax" in fix.title
    resolved = await client.code_action_resolve_async(fix)
    new_texts = apply_workspace_edit(resolved.edit, {uri: text})
    assert new_texts[uri] != text


async def test_explain_shows_a_document(client: LanguageClient, workspace: Path) -> None:
    uri, _ = _open(client, workspace / "shop" / "models.py")
    actions = await _actions(client, uri, 14)
    explain = next(a for a in actions if a.data["kind"] == "explain")
    resolved = await client.code_action_resolve_async(explain)
    assert resolved.command is not None and resolved.command.command == "coderflash.showExplanation"
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command=resolved.command.command, arguments=resolved.command.arguments))
    assert result["shown"] is True
    assert client.shown_documents and client.shown_documents[-1].uri.endswith(".md")


async def test_commands_are_advertised_and_work(client: LanguageClient, workspace: Path) -> None:
    uri, _ = _open(client, workspace / "main.py")
    status = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="coderflash.status"))
    assert "requests" in status and "model" in status
    reindexed = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="coderflash.reindex"))
    assert reindexed["reindexed"] and reindexed["reindexed"][0]["files"] >= 4
    cleared = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="coderflash.clearCache"))
    assert "cleared" in cleared
    pulled = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="coderflash.pullModel", arguments=["someone/Nothing-GGUF:Q4_K_M"]))
    assert "offline" in pulled["error"].lower()  # the tests run with HF_HUB_OFFLINE=1: a clear error, no crash


async def test_rewrite_selection_applies_through_the_client(client: LanguageClient, workspace: Path) -> None:
    uri, _ = _open(client, workspace / "shop" / "pricing.py")
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="coderflash.rewriteSelection",
        arguments=[{"uri": uri, "range": {"start": {"line": 8, "character": 0}, "end": {"line": 10, "character": 0}},
                    "instruction": "use a guard clause"}]))
    assert result["applied"] is True
    assert client.applied_edits and client.applied_edits[-1].label == "coderflash: rewrite"
    edits = client.applied_edits[-1].edit.document_changes[0].edits
    assert edits[0].range.start.line == 8


async def test_kinds_are_advertised_and_filtered_by_their_wire_names(client: LanguageClient, workspace: Path) -> None:
    """``only: ["refactor"]`` (VS Code's Refactor… menu) lists the rewrite actions; the capability names
    the kinds as the protocol spells them ("quickfix", not the enum's Python name)."""
    kinds = client.initialize_result.capabilities.code_action_provider.code_action_kinds
    assert "quickfix" in kinds and "refactor.rewrite" in kinds
    uri, _ = _open(client, workspace / "shop" / "pricing.py")
    refactors = await _actions(client, uri, 8, only=[types.CodeActionKind.Refactor])
    assert {a.data["kind"] for a in refactors} == {"docstring", "body"}
    assert await _actions(client, uri, 8, only=[types.CodeActionKind.QuickFix]) == []
