"""Speculative decoding with a draft model (engine/model/draft_model.py): a second GGUF with the same
vocabulary drafts, the main model verifies; greedy output is the main model's own, one token at a time or
not; a model with another vocabulary is refused with a reason and decoding goes on without it; a draft
model far behind the main model never makes a completion evaluate the prompt for it, the warm-up does, but
it does evaluate what the main model evaluated for a keystroke (the text after the cursor)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from engine.config import LlamaConfig
from engine.model.backend import GenerationRequest
from engine.model.draft_model import MAX_CATCH_UP
from engine.model.llama_backend import LlamaBackend


@pytest.fixture(scope="module")
def other_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny shape with other weights (seed 1) and the same vocabulary: a draft model that agrees with the
    main model sometimes, not always."""
    from engine.model.synth import synthesize

    return synthesize(tmp_path_factory.mktemp("draft") / "tiny-seed1.gguf", "tiny", seed=1)


def _greedy(backend: LlamaBackend, pieces, draft: str) -> tuple[str, int, int]:
    backend.config = dataclasses.replace(backend.config, draft=draft)
    backend.clear_kv()
    result = backend.generate(GenerationRequest(pieces=pieces, max_tokens=64))
    return result.text, result.draft_tokens, result.accepted_draft_tokens


@pytest.mark.parametrize("draft", ["same", "other"])
def test_a_draft_model_leaves_greedy_output_unchanged(tiny_model: Path, other_tiny_model: Path, tmp_path: Path,
                                                      draft: str):
    draft_path = tiny_model if draft == "same" else other_tiny_model
    config = LlamaConfig(n_ctx=4096, draft="model", draft_model=str(draft_path), draft_tokens=6)
    backend = LlamaBackend(tiny_model, config, kv_dir=tmp_path / "kv")
    try:
        assert backend.draft_source == "model" and backend.draft_error == "", backend.draft_error
        assert backend.info()["draft_model"] == draft_path.name
        pieces = backend.prompt_format.infill("def total(items):\n    return sum(item.price for item in items)\n"
                                              "def count(", "\n")
        plain, proposed, _ = _greedy(backend, pieces, "none")
        assert proposed == 0
        drafted, proposed, accepted = _greedy(backend, pieces, "model")
        assert drafted == plain
        assert proposed > 0, "the draft model proposed nothing"
        if draft == "same":  # the model drafting for itself: (nearly) every draft is its own choice
            assert accepted >= 0.8 * proposed, (proposed, accepted)
        else:
            assert accepted < proposed, (proposed, accepted)  # another model: some rejected and rolled back
        again, _, _ = _greedy(backend, pieces, "model")  # the draft model's cache rolled back correctly
        assert again == plain
    finally:
        backend.close()


def test_a_draft_model_behind_the_main_model_catches_up_in_the_warm_up_not_in_a_completion(
        tiny_model: Path, tmp_path: Path):
    """The main model holds the prompt (a snapshot restored, a prefill done without drafts) and the draft
    model does not: the completion decodes without drafts rather than evaluating the prompt for them; the
    idle warm-up catches the draft model up, and the next completion drafts."""
    config = LlamaConfig(n_ctx=8192, draft="model", draft_model=str(tiny_model), draft_tokens=6)
    backend = LlamaBackend(tiny_model, config, kv_dir=tmp_path / "kv")
    try:
        fmt = backend.prompt_format
        body = "".join(f"def f{i}(x):\n    return x * {i} + len(str(x))\n" for i in range(80))
        pieces = fmt.infill(body + "def total(", "\n")
        assert len(backend.pieces_to_ids(pieces)) > 2 * MAX_CATCH_UP
        backend.config = dataclasses.replace(config, draft="none")
        plain = backend.generate(GenerationRequest(pieces=pieces, max_tokens=16))  # the main model only
        backend.config = config
        assert backend.draft_model.llm.n_tokens == 0
        cold = backend.generate(GenerationRequest(pieces=pieces, max_tokens=16))
        assert cold.evaluated_tokens <= 1 and cold.draft_tokens == 0 and cold.text == plain.text
        assert backend.draft_model.llm.n_tokens == 0  # nothing evaluated for drafts
        assert backend.draft_model_behind(pieces)
        backend.warm_prefix(pieces, save=False)
        assert not backend.draft_model_behind(pieces)
        assert backend.draft_model.resident(backend.pieces_to_ids(pieces)) == len(backend.pieces_to_ids(pieces))
        warm = backend.generate(GenerationRequest(pieces=pieces, max_tokens=16))
        assert warm.draft_tokens > 0 and warm.text == cold.text
    finally:
        backend.close()


def test_a_keystroke_drafts_although_the_text_after_the_cursor_is_evaluated_again(tiny_model: Path,
                                                                                  tmp_path: Path):
    """Typing in a fill-in-the-middle prompt changes the text before everything after the cursor, so both
    models evaluate that again — more than ``MAX_CATCH_UP`` tokens with a long suffix. The draft model may
    evaluate as many as the main model did (a fraction of its cost), so the keystroke's completion drafts."""
    config = LlamaConfig(n_ctx=8192, draft="model", draft_model=str(tiny_model), draft_tokens=6)
    backend = LlamaBackend(tiny_model, config, kv_dir=tmp_path / "kv")
    try:
        fmt = backend.prompt_format
        head = "".join(f"def f{i}(x):\n    return x * {i}\n" for i in range(40))
        tail = "".join(f"\ndef g{i}(y):\n    return f{i}(y) - {i}\n" for i in range(60))
        first = backend.generate(GenerationRequest(pieces=fmt.infill(head + "def total(", tail), max_tokens=16))
        keystroke = backend.generate(GenerationRequest(pieces=fmt.infill(head + "def total(i", tail),
                                                       max_tokens=16))
        assert first.draft_tokens > 0
        assert keystroke.evaluated_tokens > MAX_CATCH_UP, keystroke.evaluated_tokens
        assert keystroke.draft_tokens > 0, keystroke
    finally:
        backend.close()


def test_a_model_with_another_vocabulary_is_refused_and_decoding_goes_on(real_coder_model: Path, tiny_model: Path,
                                                                         tmp_path: Path):
    config = LlamaConfig(n_ctx=2048, draft="model", draft_model=str(tiny_model))
    backend = LlamaBackend(real_coder_model, config, kv_dir=tmp_path / "kv")
    try:
        assert backend.draft_model is None and backend.draft_source is None
        assert "cannot be the draft model" in backend.draft_error and "vocabulary" in backend.draft_error
        assert backend.info()["draft_model_error"] == backend.draft_error
        result = backend.generate(GenerationRequest(pieces=backend.prompt_format.infill("def add(a, b):\n    return ",
                                                                                        "\n"), max_tokens=8))
        assert result.text.strip() and result.draft_tokens == 0
    finally:
        backend.close()


def test_a_draft_model_is_loaded_only_where_drafts_may_come_from_it(tiny_model: Path, tmp_path: Path):
    from engine.model.llama_loader import gpu_offload_supported

    for draft, loaded in (("none", False), ("prompt-lookup", False), ("auto", gpu_offload_supported())):
        config = LlamaConfig(n_ctx=1024, draft=draft, draft_model=str(tiny_model))
        backend = LlamaBackend(tiny_model, config, kv_dir=tmp_path / "kv")
        try:
            assert (backend.draft_model is not None) == loaded, draft
        finally:
            backend.close()
    missing = LlamaBackend(tiny_model, LlamaConfig(n_ctx=1024, draft="model", draft_model=str(tmp_path / "no.gguf")),
                           kv_dir=tmp_path / "kv")
    try:
        assert missing.draft_model is None and "llama.draft_model" in missing.draft_error
    finally:
        missing.close()


def test_the_real_coder_model_drafting_for_itself_keeps_its_output(real_coder_model: Path, tmp_path: Path):
    """Real vocabulary and real code: the check passes for two copies of one Qwen vocabulary, and with the
    prompt held by both models the drafted completion starts as the plain one, most drafts accepted.

    Why not the whole text: llama.cpp's CPU kernels add up a batch of tokens in another order than one token
    at a time, so at a near-tie the batch verifying drafts can choose the other token. Here, 26 tokens in,
    one step chose ``)\n`` and the batch ``)\n\n`` (then the plain text ended and the drafted one went on);
    ``bench/decode_bench.py`` counts how often that happens on real cases (``identical_outputs_model``)."""
    config = LlamaConfig(n_ctx=2048, draft="model", draft_model=str(real_coder_model), draft_tokens=8)
    backend = LlamaBackend(real_coder_model, config, kv_dir=tmp_path / "kv")
    try:
        assert backend.draft_source == "model", backend.draft_error
        pieces = backend.prompt_format.infill(
            "class Cart:\n    def __init__(self):\n        self.items = []\n\n    def add(self, item):\n"
            "        self.items.append(item)\n\n    def remove(self, item):\n        ", "\n")
        plain, _, _ = _greedy(backend, pieces, "none")
        backend.config = dataclasses.replace(backend.config, draft="model")
        backend.warm_prefix(pieces, save=False)  # the idle warm-up: the draft model now holds the prompt too
        drafted, proposed, accepted = _greedy(backend, pieces, "model")
        assert plain.strip() and drafted.split("\n")[0] == plain.split("\n")[0], (plain, drafted)
        assert proposed > 0 and accepted >= 0.5 * proposed, (proposed, accepted)
    finally:
        backend.close()
