"""coderflash/chat end to end over stdio (pytest-lsp, Neovim's capabilities, the tiny model through real
llama.cpp). Grammars (the request's ``grammars`` test hook) make the random model emit specific tool calls."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from chat_grammars import call_text, gbnf_literal

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample_repo"
CHAT_DELTA = "coderflash/chatDelta"


def plain(value):
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    os.environ["CF_TEST_MODEL"] = str(tiny_model)
    base = tmp_path_factory.mktemp("chat")
    target = base / "sample_repo"
    shutil.copytree(SAMPLE, target)
    (target / ".env").write_text("TOKEN=hunter2\n")
    (base / "outside.txt").write_text("outside the workspace\n")
    (target / "escape.txt").symlink_to(base / "outside.txt")
    return target


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-m", "lsp_server", "serve"]))
async def client(lsp_client: LanguageClient, workspace: Path):
    params = types.InitializeParams(
        capabilities=client_capabilities("neovim"),
        root_uri=workspace.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name=workspace.name)],
        initialization_options={"model": os.environ["CF_TEST_MODEL"], "llama": {"n_ctx": 8192},
                                "context": {"chat_reserve": 5000}, "chat": {"max_tokens": 300},
                                "tools": {"run_commands": ["echo"]}},
    )
    lsp_client.deltas = []
    lsp_client.edit_requests = []
    lsp_client.accept_edits = True

    @lsp_client.feature(CHAT_DELTA)
    def on_delta(client: LanguageClient, params) -> None:
        client.deltas.append(plain(params))

    @lsp_client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(client: LanguageClient, params: types.ApplyWorkspaceEditParams):
        client.edit_requests.append(params)
        if client.accept_edits:
            return types.ApplyWorkspaceEditResult(applied=True)
        return types.ApplyWorkspaceEditResult(applied=False, failure_reason="the user said no")

    await lsp_client.initialize_session(params)
    yield
    await lsp_client.shutdown_session()


async def chat(client: LanguageClient, **params):
    client.deltas.clear()
    result = await client.protocol.send_request_async("coderflash/chat", params)
    await asyncio.sleep(0.05)  # notifications sent before the response are already queued; let them land
    return plain(result)


async def test_agent_loop_streams_tool_call_result_and_answer(client: LanguageClient, workspace: Path) -> None:
    grammars = [gbnf_literal("Let me read it.\n" + call_text("read_file", path="shop/pricing.py")),
                gbnf_literal("It sums the cart.")]
    result = await chat(client, message="What does pricing do?", mode="agent", grammars=grammars)
    assert set(result) >= {"conversationId", "text", "toolCalls", "edits"}
    kinds = [d["kind"] for d in client.deltas]
    assert "tool_call" in kinds and "tool_result" in kinds
    assert kinds.index("tool_call") < kinds.index("tool_result") < len(kinds) - 1 and kinds[-1] == "text"
    assert all(d["conversationId"] == result["conversationId"] for d in client.deltas)
    text = "".join(d["text"] for d in client.deltas if d["kind"] == "text")
    assert text == result["text"] == "Let me read it.\nIt sums the cart."
    call = next(d for d in client.deltas if d["kind"] == "tool_call")
    assert call["text"] == 'read_file(path="shop/pricing.py")'
    tool_result = next(d for d in client.deltas if d["kind"] == "tool_result")
    assert "def checkout_total" in tool_result["text"] and tool_result["ok"] is True
    assert result["toolCalls"][0]["name"] == "read_file" and result["finishReason"] == "stop"

    # the same conversation continues with its history
    again = await chat(client, message="And models?", mode="ask", conversationId=result["conversationId"],
                       grammars=[gbnf_literal("Cart and Item.")])
    assert again["conversationId"] == result["conversationId"] and again["text"] == "Cart and Item."


async def test_propose_edit_applied_and_refused(client: LanguageClient, workspace: Path) -> None:
    main = workspace / "main.py"
    uri = main.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri, language_id="python", version=3, text=main.read_text())))
    edit = call_text("propose_edit", path="main.py", old_text="    total = ", new_text="    total = checkout_total(cart)")
    grammars = [gbnf_literal(edit), gbnf_literal("Done.")]
    client.accept_edits = True
    client.edit_requests.clear()
    result = await chat(client, message="fix main", mode="agent", grammars=grammars,
                        textDocument={"uri": uri})
    (request,) = client.edit_requests
    if request.edit.document_changes:  # the client supports versioned edits
        (doc_edit,) = request.edit.document_changes
        assert doc_edit.text_document.uri == uri and doc_edit.text_document.version == 3
        (text_edit,) = doc_edit.edits
    else:
        assert list(request.edit.changes) == [uri]
        (text_edit,) = request.edit.changes[uri]
    assert text_edit.range == types.Range(start=types.Position(line=15, character=0),
                                          end=types.Position(line=15, character=12))
    assert text_edit.new_text == "    total = checkout_total(cart)"
    assert result["edits"][0]["applied"] is True and result["edits"][0]["path"] == "main.py"
    assert "was applied" in result["toolCalls"][0]["result"]

    client.accept_edits = False
    client.edit_requests.clear()
    result = await chat(client, message="fix main", mode="agent", grammars=grammars, textDocument={"uri": uri})
    assert len(client.edit_requests) == 1
    assert result["edits"][0]["applied"] is False and "the user said no" in result["edits"][0]["reason"]
    assert "refused" in result["toolCalls"][0]["result"]
    tool_result = next(d for d in client.deltas if d["kind"] == "tool_result")
    assert tool_result["ok"] is False and "refused" in tool_result["text"]


@pytest.mark.parametrize("name,args,expect", [
    ("read_file", {"path": "../outside.txt"}, "outside the workspace"),
    ("read_file", {"path": "{outside}"}, "outside the workspace"),
    ("read_file", {"path": "escape.txt"}, "outside the workspace"),
    ("read_file", {"path": ".env"}, "secret"),
    ("propose_edit", {"path": ".env", "old_text": "TOKEN", "new_text": "X"}, "secret"),
    ("run_command", {"command": "ls -la"}, "not on the allowlist"),
])
async def test_refusals_are_tool_errors_the_model_sees(client: LanguageClient, workspace: Path, name, args, expect) -> None:
    args = {k: v.replace("{outside}", str(workspace.parent / "outside.txt")) for k, v in args.items()}
    client.edit_requests.clear()
    result = await chat(client, message="go", mode="agent",
                        grammars=[gbnf_literal(call_text(name, **args)), gbnf_literal("ok")])
    (call,) = result["toolCalls"]
    assert call["ok"] is False and expect in call["result"], call
    assert "hunter2" not in json.dumps(result) and "outside the workspace\n" not in call["result"]
    assert client.edit_requests == []


async def test_allowlisted_command_runs(client: LanguageClient) -> None:
    result = await chat(client, message="go", mode="agent",
                        grammars=[gbnf_literal(call_text("run_command", command="echo hello")), gbnf_literal("ok")])
    assert result["toolCalls"][0]["ok"] and "hello" in result["toolCalls"][0]["result"]


async def test_chat_is_preempted_by_inline_completion_then_completes(client: LanguageClient, workspace: Path) -> None:
    main = workspace / "main.py"
    uri = main.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri, language_id="python", version=10, text=main.read_text())))
    client.deltas.clear()
    long_chat = asyncio.ensure_future(client.protocol.send_request_async(
        "coderflash/chat", {"message": "talk", "mode": "ask", "maxTokens": 1500,
                              "grammars": ["root ::= [a-z ]+"]}))
    for _ in range(600):
        if client.deltas:
            break
        await asyncio.sleep(0.05)
    assert client.deltas, "the chat should be streaming"
    completion = await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=15, character=12),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    assert not long_chat.done(), "the completion should have been answered while the chat was still running"
    items = completion.items if isinstance(completion, types.InlineCompletionList) else completion
    assert items, "the completion ran (pre-empting the chat)"
    result = plain(await long_chat)
    assert result["finishReason"] in ("stop", "length") and len(result["text"]) == 1500
    assert result["counters"]["preemptions"] >= 1
    await asyncio.sleep(0.05)
    assert "".join(d["text"] for d in client.deltas) == result["text"]


async def test_cancel_by_conversation_id_and_cancel_request(client: LanguageClient) -> None:
    client.deltas.clear()
    request = {"message": "talk", "mode": "ask", "conversationId": "to-cancel", "maxTokens": 20000,
               "grammars": ["root ::= [a-z]+"]}
    pending = asyncio.ensure_future(client.protocol.send_request_async("coderflash/chat", request))
    for _ in range(600):
        if client.deltas:
            break
        await asyncio.sleep(0.05)
    answer = plain(await client.protocol.send_request_async("coderflash/chat/cancel", {"conversationId": "to-cancel"}))
    assert answer["cancelled"] is True
    result = plain(await asyncio.wait_for(pending, 30))
    assert result["finishReason"] == "cancelled" and len(result["text"]) < 20000

    # $/cancelRequest: the request is answered with RequestCancelled and generation stops
    client.deltas.clear()
    msg_id = "chat-to-cancel-2"
    future = client.protocol.send_request("coderflash/chat", {**request, "conversationId": "to-cancel-2"},
                                          msg_id=msg_id)
    for _ in range(600):
        if client.deltas:
            break
        await asyncio.sleep(0.05)
    client.protocol.notify("$/cancelRequest", types.CancelParams(id=msg_id))
    with pytest.raises(Exception):
        await asyncio.wait_for(asyncio.wrap_future(future), 30)
    status = plain(await client.protocol.send_request_async("coderflash/status", {}))
    scheduler = status["workspaces"][0]["inference"]["scheduler"]
    for _ in range(100):  # the worker goes idle: the chat stopped instead of generating 20000 tokens
        if scheduler["running"] is None:
            break
        await asyncio.sleep(0.1)
        status = plain(await client.protocol.send_request_async("coderflash/status", {}))
        scheduler = status["workspaces"][0]["inference"]["scheduler"]
    assert scheduler["running"] is None


async def test_a_grammar_llama_cpp_rejects_is_an_error_not_a_crash(client: LanguageClient) -> None:
    with pytest.raises(Exception) as info:
        await client.protocol.send_request_async("coderflash/chat", {"message": "x", "grammars": ["root ::= [a-z]{5000}"]})
    assert "grammar" in str(info.value)
    result = await chat(client, message="still alive?", grammars=[gbnf_literal("yes")])
    assert result["text"] == "yes"


async def test_invalid_params_get_an_error(client: LanguageClient) -> None:
    for params in ({"mode": "ask"}, {"message": "x", "mode": "shout"}, {"message": "x", "range": {}}, None):
        with pytest.raises(Exception) as info:
            await client.protocol.send_request_async("coderflash/chat", params)
        assert type(info.value).__name__ == "JsonRpcInvalidParams", info.value
