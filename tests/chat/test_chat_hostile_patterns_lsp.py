"""End to end over stdio: while the agent greps with a catastrophically backtracking regex, the server still
answers ``coderflash/status`` (the old in-process ``re`` search held the GIL and froze the event loop)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from chat_grammars import call_text, gbnf_literal

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample_repo"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    os.environ["CF_TEST_MODEL"] = str(tiny_model)
    target = tmp_path_factory.mktemp("hostile") / "sample_repo"
    shutil.copytree(SAMPLE, target)
    (target / "long_names.py").write_text("computethetotalpriceofcart\n")  # (\w*)*! backtracks for seconds
    return target


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-m", "lsp_server", "serve"]))
async def client(lsp_client: LanguageClient, workspace: Path):
    params = types.InitializeParams(
        capabilities=client_capabilities("neovim"), root_uri=workspace.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name=workspace.name)],
        initialization_options={"model": os.environ["CF_TEST_MODEL"], "llama": {"n_ctx": 8192},
                                "context": {"chat_reserve": 5000}, "chat": {"max_tokens": 300}},
    )
    lsp_client.deltas = []

    @lsp_client.feature("coderflash/chatDelta")
    def on_delta(client: LanguageClient, params) -> None:
        client.deltas.append(params)

    await lsp_client.initialize_session(params)
    yield
    await lsp_client.shutdown_session()


async def test_status_is_answered_while_the_agent_greps_a_hostile_regex(client: LanguageClient) -> None:
    await asyncio.sleep(2)  # let the first index build settle so grep sees long_names.py
    grammars = [gbnf_literal(call_text("grep", pattern=r"(\w*)*!")), gbnf_literal("Done.")]
    pending = asyncio.ensure_future(client.protocol.send_request_async(
        "coderflash/chat", {"message": "search", "mode": "agent", "conversationId": "hostile", "grammars": grammars}))
    slowest = 0.0
    while not pending.done():  # status all through the chat (the freeze came before the deltas could leave)
        start = time.monotonic()
        await client.protocol.send_request_async("coderflash/status", {})
        slowest = max(slowest, time.monotonic() - start)
        await asyncio.sleep(0.1)
    assert slowest < 1.0, f"coderflash/status waited {slowest:.1f} s"
    result = await asyncio.wait_for(pending, 60)
    tool = result.toolCalls[0]
    assert tool.name == "grep" and tool.ok is False and "simplify" in tool.result, tool
