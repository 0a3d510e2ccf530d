"""The tokenizer and prompt format the context engine uses when the model itself is not loaded.

``coderflash context`` must work without loading model weights (and without any model at all):

* a resolvable GGUF → its vocabulary only (``llama_cpp.Llama(vocab_only=True)``, a fraction of a second
  even for Qwen3's 151K tokens): exact token counts and the format detected from that vocabulary, with
  the same ids the loaded model would use;
* no model (or a remote backend) → the documented estimate (``ceil(utf8_bytes / 3.2)``, see
  ``engine.model.tokens``) and the Qwen3-Coder repository-level format, control tokens rendered by their text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.model.prompt_format import PromptFormat, detect_format, text_format
from engine.model.tokens import TokenCounter


class VocabTokenizer:
    """A GGUF's tokenizer without its weights."""

    def __init__(self, path: Path | str) -> None:
        from engine.model.llama_loader import open_llama

        self.llm = open_llama(model_path=str(path), vocab_only=True)
        self.name = str(self.llm.metadata.get("general.name", Path(path).stem))

    def token_id(self, text: str) -> int | None:
        from engine.model.llama_loader import special_token_id

        return special_token_id(self.llm, text)

    def tokenize(self, text: str) -> list[int]:
        from engine.model.llama_loader import tokenize_user_text

        return tokenize_user_text(self.llm, text)

    def prompt_format(self) -> PromptFormat:
        return detect_format(self.token_id, self.llm.token_eos())


def context_tokenizer(backend: Any | None = None, model_path: Path | str | None = None) -> tuple[PromptFormat, TokenCounter]:
    """(format, counter) from a loaded backend, else a GGUF's vocabulary, else the estimate."""
    if backend is not None:
        name = str(backend.info().get("model_name", backend.name))
        return backend.prompt_format, TokenCounter(backend.tokenize, name=name)
    if model_path is not None:
        vocab = VocabTokenizer(model_path)
        return vocab.prompt_format(), TokenCounter(vocab.tokenize, name=vocab.name)
    return text_format("qwen"), TokenCounter(None)
