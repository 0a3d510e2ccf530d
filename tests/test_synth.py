"""Synthesized GGUF models load in real llama.cpp and behave as tests need."""

from __future__ import annotations

import time
from pathlib import Path

import gguf
import pytest

from engine.model.backend import GenerationRequest
from engine.config import LlamaConfig
from engine.model.llama_backend import LlamaBackend
from engine.model.synth import QWEN3_SPECIAL_TOKENS, SHAPES, scaled, synthesize

PROMPTS = ["def add(a, b):\n    return ", "", "x", "import os\n", "function f() {\n  ", "<|fim_middle|> literal"]


@pytest.fixture(scope="module")
def tiny_backend(tiny_model: Path) -> LlamaBackend:
    backend = LlamaBackend(tiny_model, LlamaConfig(n_ctx=4096))
    yield backend
    backend.close()


def test_tiny_metadata(tiny_model: Path) -> None:
    reader = gguf.GGUFReader(str(tiny_model))
    fields = reader.fields
    assert bytes(fields["general.architecture"].parts[-1]).decode() == "qwen3moe"
    assert int(fields["qwen3moe.context_length"].parts[-1][0]) == 262144
    assert int(fields["qwen3moe.expert_count"].parts[-1][0]) == 8
    assert "tokenizer.chat_template" in fields
    assert tiny_model.stat().st_size < 2_000_000


def test_special_tokens_are_single_control_tokens(tiny_backend: LlamaBackend) -> None:
    for text in QWEN3_SPECIAL_TOKENS:
        assert tiny_backend.token_id(text) is not None, text
    # In user text a control-token spelling stays plain text.
    ids = tiny_backend.tokenize("<|fim_middle|>")
    assert len(ids) > 1
    assert tiny_backend.prompt_format.name == "qwen"
    assert tiny_backend.prompt_format.repo_level


def test_tokenization_is_lossless(tiny_backend: LlamaBackend) -> None:
    text = "héllo wörld — 日本語 🚀\n\tdef f(): pass  "
    assert tiny_backend.detokenize(tiny_backend.tokenize(text)) == text


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_output_is_printable_for_16_tokens(tiny_backend: LlamaBackend, prompt: str) -> None:
    fmt = tiny_backend.prompt_format
    start = time.perf_counter()
    result = tiny_backend.generate(GenerationRequest(pieces=fmt.infill(prompt, "\n"), max_tokens=16))
    assert time.perf_counter() - start < 1.0  # "well under a second" with margin for a busy machine
    assert result.generated_tokens == 16, result
    assert len(result.text) >= 16
    assert result.text.strip() and all(32 <= ord(c) < 127 for c in result.text), repr(result.text)


def test_synthesis_is_deterministic(tmp_path: Path) -> None:
    a = synthesize(tmp_path / "a.gguf", "tiny", seed=7).read_bytes()
    b = synthesize(tmp_path / "b.gguf", "tiny", seed=7).read_bytes()
    c = synthesize(tmp_path / "c.gguf", "tiny", seed=8).read_bytes()
    assert a == b and a != c


def test_scaled_down_30b_shape_uses_the_quantized_path(tmp_path: Path) -> None:
    """Same code path as --shape qwen3-coder-30b-a3b (Q4_0 blocks, GQA 8:1, 8 of N experts), smaller numbers."""
    big = SHAPES["qwen3-coder-30b-a3b"]
    shape = scaled(big, n_layer=2, n_embd=256, n_head=8, n_head_kv=1, head_dim=32, n_expert=16, n_ff_exp=64, n_ff=256)
    path = synthesize(tmp_path / "small30b.gguf", shape, seed=1)
    reader = gguf.GGUFReader(str(path))
    types = {t.name: t.tensor_type for t in reader.tensors}
    assert types["blk.0.ffn_gate_exps.weight"] == gguf.GGMLQuantizationType.Q4_0
    assert types["blk.0.attn_norm.weight"] == gguf.GGMLQuantizationType.F32
    backend = LlamaBackend(path, LlamaConfig(n_ctx=512))
    try:
        result = backend.generate(GenerationRequest(pieces=["hello world"], max_tokens=4))
        assert result.prompt_tokens > 0 and result.evaluated_tokens == result.prompt_tokens
        assert backend.info()["architecture"] == "qwen3moe"
    finally:
        backend.close()


def test_full_30b_shape_plan_matches_the_real_model() -> None:
    from engine.model.synth import tensor_plans

    shape = SHAPES["qwen3-coder-30b-a3b"]
    assert (shape.n_layer, shape.n_embd, shape.n_head, shape.n_head_kv, shape.head_dim) == (48, 2048, 32, 4, 128)
    assert (shape.n_expert, shape.n_expert_used, shape.n_ff_exp, shape.context_length) == (128, 8, 768, 262144)
    plans = {p.name: p for p in tensor_plans(shape, 151936)}
    assert plans["blk.47.ffn_down_exps.weight"].shape == (128, 2048, 768)
    params = sum(int(__import__("numpy").prod(p.shape)) for p in plans.values())
    assert 29e9 < params < 32e9  # about 30.5B parameters, like the real model


def test_qwen3_vocabulary_matches_the_real_model_ids(tmp_path_factory: pytest.TempPathFactory) -> None:
    """`--vocab qwen3`: the real Qwen3 vocabulary from the llama-cpp-python sdist (PyPI), so token counts and
    control-token ids are exactly the real model's."""
    from engine.config import load_config
    from engine.model.synth import qwen3_vocabulary

    try:
        vocab = qwen3_vocabulary(load_config(None).cache_path)
    except RuntimeError as exc:  # no PyPI access: say why instead of failing on the network
        pytest.skip(f"Qwen3 vocabulary not obtainable here: {exc}")
    assert len(vocab.tokens) == 151936
    path = synthesize(tmp_path_factory.mktemp("qwen3") / "q.gguf", "tiny", vocab=vocab)
    backend = LlamaBackend(path, LlamaConfig(n_ctx=1024))
    try:
        assert backend.token_id("<|endoftext|>") == 151643
        assert backend.token_id("<|im_end|>") == 151645
        assert backend.token_id("<|fim_prefix|>") == 151659
        assert backend.token_id("<|file_sep|>") == 151664
        text = "def hello_world():\n    return 42\n"
        ids = backend.tokenize(text)
        assert len(ids) < len(text) / 2  # real BPE merges, not bytes
        assert backend.detokenize(ids) == text
        result = backend.generate(GenerationRequest(pieces=backend.prompt_format.infill("x = ", "\n"), max_tokens=16))
        assert result.generated_tokens == 16 and result.text.strip()
    finally:
        backend.close()
