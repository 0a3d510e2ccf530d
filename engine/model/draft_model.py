"""Speculative decoding with a small draft model: a second GGUF with the main model's vocabulary proposes
the next tokens, greedily, and the main model verifies them in one batch (``llama_decode.verify_draft``).

Why: on a GPU a decode step of the main model costs about the same for one token as for ten (it is bound by
reading the weights), so every accepted draft token is a step saved. Qwen2.5-Coder-0.5B shares the
vocabulary family of Qwen2.5-Coder-1.5B/7B and Qwen3-Coder (llama.cpp's ``--fim-qwen-7b-spec`` preset pairs
them). The output is the main model's own: a draft token is kept only where the main model chose it.

The draft model keeps its own KV cache of the prompt, reused by longest common prefix like the main one's.
It never makes a keystroke wait for much: during a completion it evaluates at most as many prompt tokens as
the main model just did, plus ``MAX_CATCH_UP`` (a keystroke in a fill-in-the-middle prompt re-evaluates the
text after the cursor in both models; the draft model's share costs a fraction of the main model's, by their
sizes). A request whose prompt it holds less of (the main model's prefix restored from a snapshot, say)
decodes without drafts, and the idle-time warm-up that evaluates the main model's prompt evaluates the draft
model's too (``DraftModel.catch_up``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from engine.config import LlamaConfig
from engine.model.backend import CancelToken
from engine.model.llama_decode import wants_draft_model
from engine.model.llama_loader import load_model, resident_prefix
from engine.model.resolution import ModelError, resolve_model

MAX_CATCH_UP = 256  # prompt tokens the draft model may evaluate during a completion beyond the main model's
VOCAB_SIZE_SLACK = 128  # vocabularies may differ by padding at the end (llama.cpp's speculative check)
VOCABULARY_PROBE = ("<|fim_prefix|>def total(items):\n    return sum(i.price for i in items)\n"
                    "<|fim_suffix|>\n<|fim_middle|>    # naïve → 合计 {}[]()<|file_sep|><|im_end|>")


def same_vocabulary(draft: Any, main: Any) -> str | None:
    """None when ``draft`` can propose tokens for ``main`` (same tokenization of code and control tokens,
    vocabulary sizes within padding); else why not."""
    n_draft, n_main = draft.n_vocab(), main.n_vocab()
    if abs(n_draft - n_main) > VOCAB_SIZE_SLACK:
        return f"vocabulary sizes differ ({n_draft} vs {n_main})"
    probe = VOCABULARY_PROBE.encode("utf-8")
    if draft.tokenize(probe, add_bos=False, special=True) != main.tokenize(probe, add_bos=False, special=True):
        return "the two models tokenize the same text differently"
    return None


def open_draft_model(config: LlamaConfig, main: Any) -> tuple["DraftModel | None", str]:
    """(the draft model ``llama.draft_model`` names, or None; why none when one was asked for). Resolved like
    ``model`` (nothing is downloaded) and loaded only where drafts may come from it
    (``llama_decode.wants_draft_model``); one that cannot be used leaves decoding as it was."""
    if not wants_draft_model(config):
        return None, ""
    try:
        return DraftModel.open(resolve_model(config.draft_model).path, config, main), ""
    except ModelError as exc:
        return None, f"llama.draft_model: {exc}"


class DraftModel:
    """The loaded draft model and its one evaluated sequence."""

    def __init__(self, llm: Any, n_vocab: int, name: str) -> None:
        self.llm = llm
        self.n_vocab = n_vocab  # only ids both vocabularies have are proposed
        self.name = name

    @classmethod
    def open(cls, path: Path, config: LlamaConfig, main: Any) -> "DraftModel":
        """Load ``path`` with the main model's ``[llama]`` settings; ModelError when it cannot draft for
        ``main`` (another vocabulary)."""
        llm = load_model(path, config)
        reason = same_vocabulary(llm, main)
        if reason is not None:
            llm.close()
            raise ModelError(f"{path.name} cannot be the draft model: {reason}")
        return cls(llm, min(llm.n_vocab(), main.n_vocab()), path.name)

    def resident(self, ids: Sequence[int]) -> int:
        """Leading tokens of ``ids`` the draft model's KV cache holds."""
        return resident_prefix(self.llm, ids)

    def _kept(self, ids: Sequence[int]) -> int:
        """Leading tokens of ``ids`` a catch-up keeps: the resident ones but the last (its logits are needed)."""
        return min(self.resident(ids), len(ids) - 1)

    def behind(self, ids: Sequence[int]) -> bool:
        """Whether a completion on ``ids`` would decode without drafts: more than ``MAX_CATCH_UP`` of its
        tokens are not in the draft model's KV cache (see ``catch_up``'s ``limit``)."""
        return len(ids) - self._kept(ids) > MAX_CATCH_UP

    def catch_up(self, ids: Sequence[int], cancel: CancelToken | None = None, limit: int | None = None,
                 chunk: int | None = None) -> bool:
        """Make the KV cache hold exactly ``ids``, its last token evaluated last (its logits are the next
        token's). False, evaluating nothing, when that takes more than ``limit`` tokens. Raises Cancelled
        between chunks (``chunk`` tokens, at most ``n_batch``: a warm-up's, sized to the first-token target)."""
        if not ids:
            return False
        llm = self.llm
        common = self._kept(ids)
        if limit is not None and len(ids) - common > limit:
            return False
        llm.n_tokens = common  # ``eval`` drops the KV cache after n_tokens
        step = min(chunk or llm.n_batch, llm.n_batch)
        for start in range(common, len(ids), step):
            if cancel is not None:
                cancel.check()
            llm.eval(list(ids[start:start + step]))
        return True

    def next_token(self) -> int:
        """The draft model's greedy choice after the last evaluated token."""
        import llama_cpp

        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self.llm._ctx.ctx, -1),
                                       shape=(self.llm.n_vocab(),))
        return int(np.argmax(logits[: self.n_vocab]))

    def drafter(self, prompt_ids: Sequence[int], max_draft: int, evaluated: int = 0) -> "ModelDrafter":
        """Drafts for one completion whose prompt the main model evaluated ``evaluated`` tokens of."""
        return ModelDrafter(self, prompt_ids, max_draft, catch_up_limit=MAX_CATCH_UP + evaluated)

    def close(self) -> None:
        self.llm.close()


class ModelDrafter:
    """One completion's drafts (``PromptLookup``'s interface: ``append`` each token the main model chose,
    ``draft`` before each verification)."""

    def __init__(self, model: DraftModel, prompt_ids: Sequence[int], max_draft: int,
                 catch_up_limit: int = MAX_CATCH_UP) -> None:
        self.model = model
        self.catch_up_limit = catch_up_limit  # prompt tokens the draft model may evaluate before drafting
        self.history = list(prompt_ids)
        self.max_draft = max_draft
        self.enabled = True

    def append(self, token: int) -> None:
        self.history.append(token)

    def draft(self, limit: int) -> list[int]:
        """Up to ``min(limit, max_draft)`` tokens the draft model expects after the history; none while the
        draft model would first have to evaluate much of the prompt (see the module docstring)."""
        n = min(limit, self.max_draft)
        if n <= 0 or not self.enabled:
            return []
        if not self.model.catch_up(self.history, limit=self.catch_up_limit):
            self.enabled = False
            return []
        out: list[int] = []
        for i in range(n):
            out.append(self.model.next_token())
            if i + 1 < n:
                self.model.llm.eval([out[-1]])
        return out
