"""End to end over real LSP (stdio) against the real server and the tiny synthesized model,
with the client capabilities of real editors that pytest-lsp ships."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "sample_repo"
MAIN_LINE, MAIN_CHAR = 15, 12


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    os.environ["CF_TEST_MODEL"] = str(tiny_model)
    target = tmp_path_factory.mktemp("ws") / "sample_repo"
    shutil.copytree(SAMPLE, target)
    return target


def _make_client_fixture(editor: str):
    @pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-m", "lsp_server", "serve"]))
    async def client(lsp_client: LanguageClient, workspace: Path):
        params = types.InitializeParams(
            capabilities=client_capabilities(editor),
            root_uri=workspace.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name=workspace.name)],
            initialization_options={"model": os.environ["CF_TEST_MODEL"], "llama": {"n_ctx": 8192}},
        )
        result = await lsp_client.initialize_session(params)
        lsp_client.init_result = result
        yield
        await lsp_client.shutdown_session()

    return client


client = _make_client_fixture("neovim")


def _open(client: LanguageClient, path: Path, version: int = 1) -> str:
    uri = path.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=version, text=path.read_text())))
    return uri


async def test_capabilities(client: LanguageClient) -> None:
    caps = client.init_result.capabilities
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is not None
    assert caps.text_document_sync is not None


async def test_inline_completion_returns_an_item(client: LanguageClient, workspace: Path) -> None:
    uri = _open(client, workspace / "main.py")
    result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=MAIN_LINE, character=MAIN_CHAR),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    items = result.items if isinstance(result, types.InlineCompletionList) else result
    assert items and items[0].insert_text.strip()
    assert items[0].range.start == types.Position(line=MAIN_LINE, character=MAIN_CHAR)


async def test_completion_fallback(client: LanguageClient, workspace: Path) -> None:
    uri = _open(client, workspace / "main.py")
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=MAIN_LINE, character=MAIN_CHAR)))
    assert result.items, result
    item = result.items[0]
    assert item.detail.startswith("coderflash")
    assert item.text_edit.new_text.strip()


async def test_status_counters_move(client: LanguageClient, workspace: Path) -> None:
    before = await client.protocol.send_request_async("coderflash/status", {})
    uri = _open(client, workspace / "main.py")
    await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=MAIN_LINE, character=MAIN_CHAR),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic)))
    after = await client.protocol.send_request_async("coderflash/status", {})
    for key in ("requests", "prompt_tokens", "reused_tokens", "evaluated_tokens", "cancelled"):
        assert hasattr(after, key), key
    assert after.requests > before.requests
    assert after.prompt_tokens > before.prompt_tokens


async def test_unknown_method_gets_an_error_and_the_session_goes_on(client: LanguageClient) -> None:
    with pytest.raises(Exception) as info:
        await asyncio.wait_for(client.protocol.send_request_async("coderflash/noSuchMethod", {}), timeout=20)
    assert "not found" in str(info.value).lower() or "-32601" in str(info.value)
    status = await client.protocol.send_request_async("coderflash/status", {})
    assert status is not None
