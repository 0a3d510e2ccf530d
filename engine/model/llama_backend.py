"""In-process llama.cpp backend (llama-cpp-python) with longest-common-prefix KV reuse.

Why a hand-driven loop instead of ``create_completion``: prefill is evaluated in ``n_batch`` chunks with a
cancel check between chunks (a keystroke can pre-empt a long chat prefill), FIM prompts are built from
token ids (``create_completion(suffix=…)`` does no real FIM), and every call reports how many prompt
tokens were reused from the KV cache and how many were evaluated.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
import time
from array import array
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

from engine.config import LlamaConfig
from engine.model.backend import (
    BackendError,
    Cancelled,
    CancelToken,
    GenerationRequest,
    GenerationResult,
    elapsed_ms,
    end_of_turn_ids,
)
from engine.model.kv_store import KVStore, SnapshotError, SnapshotWriter, model_key
from engine.model.llama_loader import (gpu_offload_supported, load_model, resident_prefix, special_token_id,
                                      tokenize_user_text)
from engine.model.prompt_format import Piece, PromptFormat, detect_format
from engine.model.draft_model import open_draft_model
from engine.model.llama_decode import draft_source, sample_loop
from engine.model.prompt_lookup import PromptLookup
from engine.model.text_stream import TextStream


class PrefillDeadline(Exception):
    """The deadline passed during prefill; ``evaluated`` tokens after ``reused`` are in the KV cache."""

    def __init__(self, reused: int, evaluated: int) -> None:
        super().__init__(f"deadline after {evaluated} prompt tokens")
        self.reused = reused
        self.evaluated = evaluated


class LlamaBackend:
    """One loaded GGUF model and its single evaluated sequence (the KV cache we keep warm)."""

    name = "llama.cpp"

    def __init__(self, model_path: Path | str, config: LlamaConfig | None = None,
                 kv_dir: Path | str | None = None) -> None:
        config = config or LlamaConfig()
        self.config = config
        self.model_path = Path(model_path)
        self.llm = load_model(self.model_path, config)
        self.n_ctx = self.llm.n_ctx()
        self._lock = threading.RLock()
        self.prompt_format: PromptFormat = detect_format(self.token_id, self.llm.token_eos())
        self.chat_template: str = self.llm.metadata.get("tokenizer.chat_template", "")
        self.metadata = dict(self.llm.metadata)
        self.kv_store = KVStore(kv_dir) if kv_dir else None
        self._writer = SnapshotWriter(self.kv_store) if self.kv_store is not None else None
        self._piece_ids: OrderedDict[str, array] = OrderedDict()
        self._piece_tokens = 0
        self.last_llama_evaluated = 0
        # ``draft_error``: why ``llama.draft_model`` is not in use (the server goes on without it)
        self.draft_model, self.draft_error = open_draft_model(config, self.llm)

    # -- vocabulary ---------------------------------------------------------------------------
    def token_id(self, text: str) -> int | None:
        return special_token_id(self.llm, text)

    def tokenize(self, text: str) -> list[int]:
        return tokenize_user_text(self.llm, text)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def detokenize(self, ids: Sequence[int]) -> str:
        return self.llm.detokenize(list(ids)).decode("utf-8", "replace")

    def pieces_to_ids(self, pieces: Sequence[Piece]) -> list[int]:
        """Prompt ids; long text pieces (repository files) are tokenized once and remembered.

        Why: the repository part of a FIM prompt is 32K+ tokens that do not change between keystrokes;
        re-tokenizing it on every request would cost more than evaluating the few new tokens. Kept as
        ``array("i")``: 4 bytes a token, where a list cost 37 with Qwen's vocabulary (an int object per id).
        Keyed by the text itself: the stable pieces are the same str objects every request, so a lookup
        neither hashes nor compares their text again (a digest key would hash the whole prompt per request).
        """
        ids: list[int] = []
        for piece in pieces:
            if isinstance(piece, int):
                ids.append(piece)
            elif len(piece) < 512:
                ids.extend(self.tokenize(piece))
            else:
                ids.extend(self._tokenize_cached(piece))
        return ids

    def _tokenize_cached(self, text: str) -> array:
        cached = self._piece_ids.get(text)
        if cached is not None:
            self._piece_ids.move_to_end(text)
            return cached
        ids = array("i", self.tokenize(text))
        self._piece_ids[text] = ids
        self._piece_tokens += len(ids)
        while self._piece_tokens > 2 * self.n_ctx and self._piece_ids:
            _, old = self._piece_ids.popitem(last=False)
            self._piece_tokens -= len(old)
        return ids

    # -- KV cache -------------------------------------------------------------------------------
    @property
    def cached_tokens(self) -> list[int]:
        """Token ids currently evaluated in the KV cache (sequence 0)."""
        return self.llm.input_ids[: self.llm.n_tokens].tolist()

    def common_prefix(self, ids: Sequence[int]) -> int:
        """How many leading tokens of ``ids`` are already in the KV cache."""
        return resident_prefix(self.llm, ids)

    def clear_kv(self) -> None:
        """Empty the KV cache: the next prompt is evaluated from its first token (a rejected snapshot, and
        benchmarks that measure a cold prefill)."""
        with self._lock:
            self.llm._ctx.kv_cache_seq_rm(-1, 0, -1)
            self.llm.n_tokens = 0

    def llama_eval_count(self) -> int:
        """Tokens llama.cpp itself reports as decoded (prompt batches + single-token steps).

        llama.cpp reports a counter of 0 as 1, so a delta is exact once both counters are past 1.
        """
        import llama_cpp

        perf = llama_cpp.llama_perf_context(self.llm._ctx.ctx)
        return int(perf.n_p_eval) + int(perf.n_eval)

    def _prefill(self, ids: list[int], cancel: CancelToken | None, deadline: float | None = None,
                 chunk: int | None = None) -> int:
        """Evaluate ``ids`` after the longest common prefix with the cache; returns tokens reused.

        Chunks of ``n_batch`` with a cancel check between them. Not smaller: on CPU with flash attention a
        32-token chunk deep in a 12K context took 360 ms against ~150 ms for 512 tokens, so shrinking chunks
        for a quicker cancel made every prefill several times slower. Past ``deadline`` (after at least one
        chunk) it stops with ``PrefillDeadline``: what it evaluated stays in the cache, so the next request
        with the same prompt start goes on from there instead of starting over. ``chunk``: smaller chunks for
        a background prefill, so that a keystroke pre-empting it waits for less than its first-token target.
        """
        llm = self.llm
        common = self.common_prefix(ids)
        if common == len(ids):
            common -= 1  # the last token must be evaluated again to get fresh logits
        llm.n_tokens = common
        llm._ctx.kv_cache_seq_rm(-1, common, -1)
        rest = ids[common:]
        step = max(1, min(llm.n_batch, chunk or llm.n_batch))
        for pos in range(0, len(rest), step):
            if cancel is not None:
                cancel.check()
            if pos and deadline is not None and time.monotonic() >= deadline:
                raise PrefillDeadline(common, pos)
            llm.eval(rest[pos : pos + step])
        return common

    def _check_fits(self, ids: list[int]) -> None:
        if len(ids) + 1 > self.n_ctx:
            raise BackendError(
                f"prompt of {len(ids)} tokens does not fit the context window of {self.n_ctx} tokens "
                "(raise llama.n_ctx or lower context.budget)"
            )

    # -- snapshots of the repository prefix ---------------------------------------------------------
    def _model_key(self) -> str:
        cfg = self.config
        return model_key(self.model_path, {"n_ctx": self.n_ctx, "kv": cfg.kv_cache_type,
                                           "rope": cfg.rope_scaling, "yarn": cfg.yarn_factor,
                                           "flash_attn": cfg.flash_attn})

    def save_prefix(self, prefix: Sequence[int], wait: bool = False) -> Path | None:
        """Snapshot the KV cache when it starts with ``prefix`` (lean: KV bytes + token ids). Only the copy
        out of llama.cpp happens here; ``SnapshotWriter`` writes the file. ``wait``: until it is on disk."""
        import llama_cpp

        if self.kv_store is None:
            return None
        with self._lock:
            prefix = list(prefix)
            if not prefix or self.common_prefix(prefix) < len(prefix):
                return None
            ctx = self.llm._ctx.ctx
            size = llama_cpp.llama_state_seq_get_size(ctx, 0)
            buf = (ctypes.c_uint8 * size)()
            written = llama_cpp.llama_state_seq_get_data(ctx, buf, size, 0)
            state, tokens, key = bytes(buf)[:written], self.cached_tokens, self._model_key()
            del buf
        assert self._writer is not None
        future = self._writer.submit(key, prefix, tokens, state)
        if wait:
            future.result()
        return self.kv_store.path_for(key, prefix)

    def snapshot_pending(self, prefix: Sequence[int]) -> bool:
        """True while a snapshot of ``prefix`` is being written (don't start a second one)."""
        return self._writer is not None and self._writer.pending(self._model_key(), prefix)

    def flush_snapshots(self) -> None:
        """Wait for snapshot files being written (shutdown, tests)."""
        if self._writer is not None:
            self._writer.flush()

    def restore_prefix(self, prefix: Sequence[int]) -> int:
        """Load a saved snapshot for ``prefix`` into the KV cache; returns the tokens restored (0: none).

        A corrupt or truncated file raises SnapshotError before llama.cpp sees a byte of it.
        """
        import llama_cpp

        if self.kv_store is None:
            return 0
        with self._lock:
            snap = self.kv_store.load(self._model_key(), list(prefix))
            if snap is None:
                return 0
            self.clear_kv()
            llm = self.llm
            buf = (ctypes.c_uint8 * len(snap.state)).from_buffer_copy(snap.state)
            if llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, buf, len(snap.state), 0) == 0:
                raise SnapshotError("llama.cpp rejected the snapshot (different model or settings)")
            n = len(snap.tokens)
            llm.input_ids[:n] = snap.tokens
            llm.n_tokens = n
            llm._requires_eval = True  # logits are not part of the snapshot
            return n

    def warm_prefix(self, pieces: Sequence[Piece], cancel: CancelToken | None = None,
                    save: bool = True, chunk: int | None = None) -> dict[str, object]:
        """Make the repository prefix resident: already cached, restored from disk, or prefilled and saved
        (``save``: a snapshot when none is on disk; not for a whole completion prompt, which changes with
        every cursor position).

        A cancelled prefill keeps what it evaluated (the next request reuses it through the common prefix).
        """
        start = time.perf_counter()
        with self._lock:
            ids = self.pieces_to_ids(pieces)
            self._check_fits(ids)
            info: dict[str, object] = {"prefix_tokens": len(ids)}
            common = self.common_prefix(ids)
            if common >= len(ids):
                info["source"] = "cached"
            else:
                restored = 0
                try:
                    restored = self.restore_prefix(ids) if save and (common < len(ids) // 2 or common < 64) else 0
                except SnapshotError as exc:
                    info["snapshot_error"] = str(exc)
                    assert self.kv_store is not None
                    self.kv_store.path_for(self._model_key(), ids).unlink(missing_ok=True)
                    self.clear_kv()
                if restored:
                    info["source"] = "snapshot"
                    info["evaluated_tokens"] = 0
                else:
                    reused = self._prefill(ids, cancel, chunk=chunk)
                    info.update(source="prefill", evaluated_tokens=len(ids) - reused)
            if save and self.kv_store is not None and not self.kv_store.has(self._model_key(), ids) \
                    and not self.snapshot_pending(ids):
                path = self.save_prefix(ids)
                info["saved"] = str(path) if path else None
            if self.draft_source == "model" and self.draft_model is not None:  # completions here draft at once
                self.draft_model.catch_up(ids, cancel, chunk=chunk)
            info["elapsed_ms"] = elapsed_ms(start)
            return info

    # -- generation -----------------------------------------------------------------------------
    def generate(self, request: GenerationRequest, cancel: CancelToken | None = None) -> GenerationResult:
        start = time.perf_counter()
        with self._lock:
            ids = self.pieces_to_ids(request.pieces)
            self._check_fits(ids)
            max_tokens = max(0, min(request.max_tokens, self.n_ctx - len(ids) - 1))
            out = TextStream(request)
            finish = "length"
            reused = 0
            evaluated = None
            before = self.llama_eval_count()
            try:
                reused = self._prefill(ids, cancel, request.deadline)
                finish = self._sample_loop(request, max_tokens, out, cancel, start, ids, len(ids) - reused)
            except Cancelled:
                finish = "cancelled"
            except PrefillDeadline as stop:
                reused, evaluated, finish = stop.reused, stop.evaluated, "deadline"
            self.last_llama_evaluated = self.llama_eval_count() - before
            text, cut = out.finish()
            if cut:
                finish = "stop"
            return GenerationResult(
                text=text,
                prompt_tokens=len(ids),
                reused_tokens=reused,
                evaluated_tokens=len(ids) - reused if evaluated is None else evaluated,
                generated_tokens=len(out.ids),
                elapsed_ms=elapsed_ms(start),
                finish_reason=finish,
                first_token_ms=out.first_token_ms,
                draft_tokens=out.draft_tokens,
                accepted_draft_tokens=out.accepted_draft_tokens,
            )

    def _sample_loop(self, request: GenerationRequest, max_tokens: int, out: "TextStream",
                     cancel: CancelToken | None, start: float, prompt_ids: Sequence[int] = (),
                     evaluated: int = 0) -> str:
        """Sample and decode until a stop, the limit, the deadline or a cancel (``llama_decode``); ``evaluated``:
        prompt tokens the model just evaluated (the draft model may evaluate as many, see ``draft_model``)."""
        import llama_cpp

        if max_tokens == 0:
            return "length"
        grammar = None
        if request.grammar:
            self.check_grammar(request.grammar)
            grammar = llama_cpp.LlamaGrammar.from_string(request.grammar, verbose=False)
        lookup = None
        source = self.draft_source
        if request.sampling.temperature <= 0 and source and prompt_ids:
            max_draft = min(self.config.draft_tokens, self.llm.n_batch - 1)
            lookup = self.draft_model.drafter(prompt_ids, max_draft, evaluated) \
                if source == "model" and self.draft_model else PromptLookup(prompt_ids, max_draft=max_draft)
        stop_ids = set(request.stop_ids) | {self.llm.token_eos()} | self.eog_ids
        return sample_loop(self.llm, request, max_tokens, out, cancel, start, stop_ids, grammar, lookup)

    def draft_model_behind(self, pieces: Sequence[Piece]) -> bool:
        """Whether the draft model in use lacks more of this prompt than a completion catches up, so the idle
        warm-up must (else a document whose text after the repository prefix is long never gets drafts)."""
        with self._lock:
            return self.draft_source == "model" and self.draft_model is not None \
                and self.draft_model.behind(self.pieces_to_ids(pieces))

    @property
    def draft_source(self) -> str | None:
        """``"model"``, ``"prompt-lookup"`` or None (``llama_decode.draft_source``)."""
        return draft_source(self.config, self.draft_model is not None)

    # -- end of generation and grammars ---------------------------------------------------------------
    @property
    def eog_ids(self) -> frozenset[int]:
        """Every token llama.cpp treats as end of generation (computed once per model)."""
        cached = getattr(self, "_eog_ids", None)
        if cached is None:
            import llama_cpp

            vocab = self.llm._model.vocab
            n = llama_cpp.llama_vocab_n_tokens(vocab)
            cached = frozenset(t for t in range(n) if llama_cpp.llama_vocab_is_eog(vocab, t))
            self._eog_ids = cached
        return cached

    def check_grammar(self, grammar: str) -> None:
        """BackendError unless llama.cpp accepts the GBNF: llama-cpp-python 0.3.36 crashes the process
        (NULL sampler) on a grammar llama.cpp rejects, e.g. a repetition count above its limit."""
        import llama_cpp

        sampler = llama_cpp.llama_sampler_init_grammar(self.llm._model.vocab, grammar.encode("utf-8"), b"root")
        if not sampler:
            raise BackendError("llama.cpp rejected the grammar (see the log for the parse error)")
        llama_cpp.llama_sampler_free(sampler)

    # -- chat -------------------------------------------------------------------------------------
    def render_chat(self, messages: Sequence[dict], tools: Sequence[dict] | None = None) -> list[Piece]:
        """Render the model's own chat template; message contents stay text pieces (never control tokens)."""
        from engine.model.chat_template import render_chat_pieces

        return render_chat_pieces(self.chat_template, messages, tools, self._special_pieces)

    def chat(self, messages: Sequence[dict], request: GenerationRequest, tools: Sequence[dict] | None = None,
             cancel: CancelToken | None = None) -> GenerationResult:
        """Generate an assistant turn with the GGUF's chat template (``request.pieces`` is ignored)."""
        import dataclasses

        pieces = self.render_chat(messages, tools)
        stops = set(request.stop_ids) | end_of_turn_ids(self.token_id)
        return self.generate(dataclasses.replace(request, pieces=pieces, stop_ids=frozenset(stops)), cancel)

    def _special_pieces(self, text: str) -> list[Piece]:
        """Template text (written by the template, not the user): control-token spellings become ids."""
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def info(self) -> dict[str, object]:
        return {
            "backend": self.name,
            "model_path": str(self.model_path),
            "model_name": self.metadata.get("general.name", self.model_path.stem),
            "architecture": self.metadata.get("general.architecture", ""), "n_ctx": self.n_ctx,
            "n_ctx_train": self.llm.n_ctx_train() if hasattr(self.llm, "n_ctx_train") else None,
            "gpu_offload": gpu_offload_supported(),
            "prompt_format": self.prompt_format.name,
            "flash_attn": self.config.flash_attn, "kv_cache_type": self.config.kv_cache_type,
            "rope_scaling": self.config.rope_scaling,
            "cached_tokens": self.llm.n_tokens,
            "draft": self.draft_source, "draft_model": self.draft_model.name if self.draft_model else None,
            **({"draft_model_error": self.draft_error} if self.draft_error else {}),
        }

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        with contextlib.suppress(Exception):
            self.llm.close()
        if self.draft_model is not None:
            with contextlib.suppress(Exception):
                self.draft_model.close()
