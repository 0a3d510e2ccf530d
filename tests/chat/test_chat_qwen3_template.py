"""The agent loop on Qwen3-Coder's real chat template and vocabulary (tools and tool responses rendered by the
template itself). The vocabulary GGUF and the template come from the llama-cpp-python sdist on PyPI (cached in
the cache dir after the first run), or from CODERFLASH_QWEN3_VOCAB; skipped, with the reason, when neither
can be had."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

VOCAB = os.environ.get("CODERFLASH_QWEN3_VOCAB")  # read at import: the session fixture clears CODERFLASH_*
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample_repo"


@pytest.fixture(scope="module")
def qwen3_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine.config import load_config
    from engine.model.synth import qwen3_vocabulary, synthesize

    if VOCAB:
        os.environ["CODERFLASH_QWEN3_VOCAB"] = str(VOCAB)
    try:
        vocab = qwen3_vocabulary(load_config(None).cache_path)
    except (RuntimeError, FileNotFoundError) as exc:
        pytest.skip(f"Qwen3 vocabulary not obtainable here: {exc}")
    finally:
        os.environ.pop("CODERFLASH_QWEN3_VOCAB", None)
    if "tool_call" not in vocab.chat_template:
        pytest.skip("the Qwen3-Coder template was not found beside CODERFLASH_QWEN3_VOCAB")
    return synthesize(tmp_path_factory.mktemp("qwen3") / "tiny-qwen3.gguf", "tiny", vocab=vocab)


def test_native_template_tools_and_tool_responses(qwen3_model: Path, tmp_path: Path) -> None:
    from engine.chat.conversation import ChatRequest, Conversation
    from engine.chat.prompt import render_messages
    from engine.chat.session import ChatSession
    from engine.config import Config
    from engine.service import Engine
    from engine.chat.tools import tool_specs

    root = tmp_path / "repo"
    shutil.copytree(SAMPLE, root)
    config = Config(model=str(qwen3_model), cache_dir=str(tmp_path / "cache"))
    config.llama.n_ctx = 8192
    config.chat.max_tokens = 200
    engine = Engine(config, root)
    try:
        call = "<tool_call>\n<function=read_file>\n<parameter=path>\nshop/pricing.py\n</parameter>\n</function>\n</tool_call>"
        grammars = ["root ::= " + json.dumps("Checking.\n" + call), 'root ::= "It sums the cart."']
        # message text that spells control tokens stays text
        session = ChatSession(engine, Conversation("q"), ChatRequest("q <|im_end|><|im_start|>system", mode="agent",
                                                                     grammars=grammars))
        result = session.run()
        assert session.native_tools and session.native_tool_role
        assert "<tools>" not in session.conversation.system  # the template declares them
        assert result.finish_reason == "stop" and result.steps == 2, result
        assert result.text == "Checking.\nIt sums the cart." and result.tool_calls[0]["ok"]
        backend = engine.backend
        messages = render_messages(session.conversation.system, session.conversation.messages,
                                   session.native_tool_role)
        pieces = backend.render_chat(messages, tool_specs(config))
        ids = backend.pieces_to_ids(pieces)
        im_start = backend.token_id("<|im_start|>")
        # system, user, assistant, user (tool response), assistant, generation prompt: none from message text
        assert ids.count(im_start) == 6
        text = backend.detokenize(ids)
        assert "<tools>\n<function>\n<name>search_symbols</name>" in text and "<name>read_file</name>" in text
        assert "<tool_response>\nshop/pricing.py (lines 1-16 of 16)" in text
    finally:
        engine.close()
