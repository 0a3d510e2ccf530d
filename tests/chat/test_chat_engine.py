"""The agent loop in process, through real llama.cpp with the tiny model. A random model cannot choose tools,
so each step's output is constrained with a GBNF grammar (ChatRequest.grammars)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from engine.model.backend import CancelToken
from engine.chat.conversation import ChatRequest, Conversation, ConversationStore, trim_history
from engine.chat.prompt import render_messages
from engine.chat.session import ChatSession
from engine.config import Config
from engine.service import Engine

from chat_grammars import call_text, gbnf_literal

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample_repo"


@pytest.fixture
def engine(tmp_path: Path, tiny_model: Path):
    root = tmp_path / "repo"
    shutil.copytree(SAMPLE, root)
    (root / ".env").write_text("TOKEN=hunter2\n")
    config = Config(model=str(tiny_model), cache_dir=str(tmp_path / "cache"))
    config.llama.n_ctx = 8192
    config.chat.max_tokens = 300
    config.context.chat_reserve = 5000  # small prompts: the byte vocabulary spends a token per byte
    eng = Engine(config, root)
    yield eng
    eng.close()


def run(engine: Engine, request: ChatRequest, conversation: Conversation | None = None, **kw):
    deltas: list[tuple[str, str]] = []
    session = ChatSession(engine, conversation or Conversation("c1"), request,
                          emit=lambda kind, text, **extra: deltas.append((kind, text)), **kw)
    return session, session.run(), deltas


def test_tool_call_result_and_final_answer(engine: Engine) -> None:
    grammars = [gbnf_literal(call_text("read_file", path="shop/pricing.py")), gbnf_literal("It sums the cart.")]
    session, result, deltas = run(engine, ChatRequest("what does pricing do?", mode="agent", grammars=grammars))
    assert result.finish_reason == "stop", result
    assert result.steps == 2
    assert [k for k, _ in deltas if k != "text"] == ["tool_call", "tool_result"]
    assert result.tool_calls[0]["name"] == "read_file" and result.tool_calls[0]["ok"]
    assert "def checkout_total" in result.tool_calls[0]["result"]
    assert result.text == "It sums the cart."
    assert "".join(t for k, t in deltas if k == "text") == "It sums the cart."
    # the tool result went back to the model as a <tool_response> user turn
    msgs = session.conversation.messages
    assert [m["role"] for m in msgs] == ["user", "assistant", "tool", "assistant"]
    rendered = render_messages(session.conversation.system, msgs, session.native_tool_role)
    assert rendered[3]["role"] == "user" and rendered[3]["content"].startswith("<tool_response>\n")
    # the tiny model's ChatML template does not declare tools: the system turn carries the <tools> block
    assert "<tools>" in session.conversation.system and "<name>propose_edit</name>" in session.conversation.system


def test_refusals_reach_the_model_as_tool_errors(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("outside")
    grammars = [gbnf_literal(call_text("read_file", path="../secret.txt") + "\n" + call_text("read_file", path=".env")
                             + "\n" + call_text("run_command", command="ls")), gbnf_literal("ok")]
    _, result, deltas = run(engine, ChatRequest("read", mode="agent", grammars=grammars))
    results = [c["result"] for c in result.tool_calls]
    assert "outside the workspace" in results[0] and "secret" in results[1] and "unknown tool" in results[2]
    assert not any("hunter2" in t or "outside" == t for _, t in deltas)


def test_malformed_call_is_text_and_ends_the_turn(engine: Engine) -> None:
    bad = "<tool_call>\n<function=read_file>\nnot a parameter\n</function>\n</tool_call>"
    _, result, deltas = run(engine, ChatRequest("x", mode="agent", grammars=[gbnf_literal(bad)]))
    assert result.steps == 1 and result.tool_calls == [] and result.text == bad


def test_step_limit(engine: Engine) -> None:
    loop = gbnf_literal(call_text("list_files", glob="*.py"))
    _, result, _ = run(engine, ChatRequest("x", mode="agent", grammars=[loop] * 5, max_steps=3))
    assert result.finish_reason == "max_steps" and result.steps == 3 and len(result.tool_calls) == 2


def test_ask_mode_declares_no_tools(engine: Engine) -> None:
    session, result, deltas = run(engine, ChatRequest("hello", mode="ask"))
    assert "<tools>" not in session.conversation.system
    assert result.steps == 1 and result.text and "".join(t for _, t in deltas) == result.text
    assert "Repository context" in session.conversation.system and "shop/pricing.py" in session.conversation.system


def test_cancel_before_and_during(engine: Engine) -> None:
    token = CancelToken()
    token.cancel()
    _, result, _ = run(engine, ChatRequest("x"), cancel=token)
    assert result.finish_reason == "cancelled"
    engine.config.chat.max_tokens = 100000
    token = CancelToken()
    deltas: list[str] = []

    def emit(kind: str, text: str, **extra) -> None:
        deltas.append(text)
        if len(deltas) == 3:
            token.cancel()

    session = ChatSession(engine, Conversation("c2"), ChatRequest("x", grammars=["root ::= [a-z]+"]), emit=emit,
                          cancel=token)
    result = session.run()
    assert result.finish_reason == "cancelled" and result.counters["generated_tokens"] < 1000


def test_history_is_bounded_and_kept_per_conversation(engine: Engine) -> None:
    engine.config.chat.history = 4
    store = ConversationStore()
    conv = store.get(None)
    for i in range(3):
        run(engine, ChatRequest(f"turn {i}", grammars=[gbnf_literal(f"answer {i}")]), conversation=conv)
    assert [m["content"] for m in conv.messages] == ["turn 1", "answer 1", "turn 2", "answer 2"]
    assert store.get(conv.id) is conv
    assert trim_history([{"role": "user"}, {"role": "assistant"}, {"role": "tool"}, {"role": "user"}], 2) == [{"role": "user"}]


def test_selection_goes_into_the_user_turn(engine: Engine) -> None:
    path = engine.root / "main.py"
    text = path.read_text()
    session, _, _ = run(engine, ChatRequest("explain", path=path, text=text, selection=(6, 0, 10, 15),
                                            grammars=[gbnf_literal("ok")]))
    user = session.conversation.messages[0]["content"]
    assert user.startswith("explain\n\nSelected code in `main.py` (lines 7-11)")
    assert "def build_demo_cart() -> Cart:" in user


def test_preempted_by_completion_then_resumes(engine: Engine) -> None:
    engine.config.chat.max_tokens = 1500
    started = threading.Event()
    texts: list[str] = []

    def emit(kind: str, text: str, **extra) -> None:
        texts.append(text)
        started.set()

    session = ChatSession(engine, Conversation("c3"), ChatRequest("x", grammars=["root ::= [a-z ]+"]), emit=emit)
    box: dict = {}
    worker = threading.Thread(target=lambda: box.setdefault("result", session.run()))
    worker.start()
    assert started.wait(30)
    path = engine.root / "main.py"
    out = engine.complete(path, path.read_text(), 15, 12)
    assert not worker.join(0) and worker.is_alive(), "the chat should still be running after the completion"
    assert out.result.finish_reason != "cancelled"
    worker.join(60)
    result = box["result"]
    assert result.finish_reason == "length" and result.counters["generated_tokens"] == 1500
    assert result.counters["preemptions"] >= 1
    assert "".join(texts) == result.text and len(result.text) >= 1500
    stats = engine.runtime.scheduler.status()
    assert stats["preempted"] >= 1 and stats["resumed"] >= 1


def test_cli_json(tiny_model: Path, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(SAMPLE, root)
    env = {**os.environ, "CODERFLASH_LLAMA__N_CTX": "8192", "CODERFLASH_CONTEXT__CHAT_RESERVE": "6000",
           "CODERFLASH_CHAT__MAX_TOKENS": "40", "CODERFLASH_CHAT__MAX_STEPS": "2"}
    proc = subprocess.run([sys.executable, "-m", "lsp_server", "chat", "--root", str(root), "--model", str(tiny_model),
                           "--agent", "--json", "hello"], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) >= {"conversationId", "text", "toolCalls", "edits"}


def test_repository_context_leaves_out_symlinked_secrets_and_outside_files(engine: Engine, tmp_path: Path) -> None:
    (engine.root / "notes.txt").symlink_to(engine.root / ".env")
    (tmp_path / "outside.py").write_text("OUTSIDE = 'outside-data'\n")
    (engine.root / "ext.py").symlink_to(tmp_path / "outside.py")
    session, _, _ = run(engine, ChatRequest("hello", grammars=[gbnf_literal("ok")]))
    system = session.conversation.system
    assert "File: main.py" in system
    assert "File: notes.txt" not in system and "TOKEN=" not in system
    assert "File: ext.py" not in system and "outside-data" not in system


def test_tool_output_too_big_for_the_window_is_elided(engine: Engine) -> None:
    (engine.root / "big.py").write_text("".join(f"x_{i} = {i}\n" for i in range(3000)))
    grammars = [gbnf_literal(call_text("read_file", path="big.py")), gbnf_literal("ok")]
    _, result, _ = run(engine, ChatRequest("read big", mode="agent", grammars=grammars))
    assert result.tool_calls[0]["ok"] and "truncated" in result.tool_calls[0]["result"]
    assert result.finish_reason == "stop" and result.text == "ok" and result.counters["prompt_tokens"] < 8192


@pytest.mark.parametrize("selected", [False, True])
def test_a_large_current_file_or_selection_is_cut_to_the_window(engine: Engine, selected: bool) -> None:
    """Under an 8K window a 60 KB open file once filled the user's turn past the window ("no longer fits")."""
    path = engine.root / "big_module.py"
    text = "".join(f"def helper_{i}(value):\n    return value * {i}\n\n" for i in range(2000))
    path.write_text(text)
    selection = (0, 0, 5000, 0) if selected else None
    session, result, _ = run(engine, ChatRequest("explain", path=path, text=text, selection=selection,
                                                 grammars=[gbnf_literal("ok")]))
    assert result.finish_reason == "stop" and result.text == "ok", result
    user = session.conversation.messages[0]["content"]
    assert "def helper_0(value):" in user and user.endswith("[... truncated]\n```")
    assert result.counters["prompt_tokens"] < 8192


def test_a_step_refused_for_keystrokes_waits_for_room_instead_of_failing(engine: Engine) -> None:
    """Completions from many documents can fill the inference queue (16 jobs); a chat step then was refused
    ("inference queue is full") and the whole turn failed. Keystrokes pre-empt chat; now the step waits."""
    from engine.inference.scheduler import Priority

    release, started = threading.Event(), threading.Event()
    scheduler = engine.runtime.scheduler
    blockers = [scheduler.submit(lambda cancel: started.set() or release.wait(30), Priority.INLINE)]
    assert started.wait(10)  # one running, then a full queue of 16 behind it
    blockers += [scheduler.submit(lambda cancel: release.wait(30), Priority.INLINE) for _ in range(16)]
    outcome: list = []
    chat = threading.Thread(target=lambda: outcome.append(
        run(engine, ChatRequest("hi", grammars=[gbnf_literal("ok")]))[1]))
    chat.start()
    chat.join(1.0)
    assert chat.is_alive()  # refused so far: waiting for room, not failed
    release.set()
    chat.join(60)
    assert all(b.result(10) for b in blockers)
    assert outcome and outcome[0].finish_reason == "stop" and outcome[0].text == "ok", outcome
