"""In-process llama.cpp backend (llama-cpp-python) with longest-common-prefix KV reuse.

Why a hand-driven loop instead of ``create_completion``: prefill is evaluated in ``n_batch`` chunks with a
cancel check between chunks (a keystroke can pre-empt a long chat prefill), FIM prompts are built from
token ids (``create_completion(suffix=…)`` does no real FIM), and every call reports how many prompt
tokens were reused from the KV cache and how many were evaluated.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

from engine.model.backend import (
    BackendError,
    Cancelled,
    CancelToken,
    GenerationRequest,
    GenerationResult,
    elapsed_ms,
)
from engine.config import LlamaConfig
from engine.model.kv_store import KVStore, SnapshotError, model_key
from engine.model.resolution import ModelError, check_gguf
from engine.model.prompt_format import Piece, PromptFormat, detect_format

_KV_TYPES = {"f16": 1, "q4_0": 2, "q8_0": 8}
_LOG_LOCK = threading.Lock()
_LOG_LINES: list[str] = []
YARN_ORIGINAL_CONTEXT = 262_144  # Qwen3-Coder's native context; factor 4 reaches 1M


class _Output:
    """Generated tokens → text, streamed without splitting UTF-8 sequences or leaking a stop string."""

    def __init__(self, request: GenerationRequest) -> None:
        import codecs

        self.ids: list[int] = []
        self.text = ""
        self.streamed = 0
        self.first_token_ms = 0.0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = request.stop_strings
        self._hold = max((len(s) for s in self._stops), default=1) - 1
        self._on_text = request.on_text

    def add(self, token: int, data: bytes) -> bool:
        """Append a token; True when a stop string has appeared."""
        self.ids.append(token)
        piece = self._decoder.decode(data)
        if not piece:
            return False
        self.text += piece
        window = self.text[max(0, len(self.text) - len(piece) - self._hold):]
        if any(s in window for s in self._stops):
            return True
        self._emit(len(self.text) - self._hold)
        return False

    def _emit(self, upto: int) -> None:
        if self._on_text is not None and upto > self.streamed:
            self._on_text(self.text[self.streamed:upto])
            self.streamed = upto

    def finish(self) -> tuple[str, bool]:
        """Final text (cut at the first stop string) and whether a stop string cut it."""
        text = self.text + self._decoder.decode(b"", final=True)
        cut = False
        for stop in self._stops:
            at = text.find(stop)
            if at >= 0:
                text, cut = text[:at], True
        self.text = text
        self._emit(len(text))
        return text, cut


def _install_log_capture() -> None:
    """Route llama.cpp's log into a buffer so load errors can be reported instead of 'Failed to load'."""
    import llama_cpp

    if getattr(_install_log_capture, "done", False):
        return

    @llama_cpp.llama_log_callback
    def _callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:  # pragma: no cover - C callback
        with _LOG_LOCK:
            _LOG_LINES.append(text.decode("utf-8", "replace"))
            del _LOG_LINES[:-200]

    llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))
    _install_log_capture.callback = _callback  # type: ignore[attr-defined]  # keep a reference alive
    _install_log_capture.done = True  # type: ignore[attr-defined]


class PrefillDeadline(Exception):
    """The deadline passed during prefill; ``evaluated`` tokens after ``reused`` are in the KV cache."""

    def __init__(self, reused: int, evaluated: int) -> None:
        super().__init__(f"deadline after {evaluated} prompt tokens")
        self.reused = reused
        self.evaluated = evaluated


def open_llama(*, verbose: bool = False, **kwargs: Any) -> Any:
    """``llama_cpp.Llama(**kwargs)`` without llama-cpp-python's output silencing.

    Why: with ``verbose=False`` llama-cpp-python ``dup2``s /dev/null over file descriptors 1 and 2 of the
    whole process while it loads a model. In the language server fd 1 is the LSP channel: every message any
    thread writes during a load is lost, and two loads that overlap (the model on a loader thread, a
    vocabulary for the context builder on another) restore each other's /dev/null, leaving the server mute
    for good (seen: a code action never answered). llama.cpp's own log goes to our callback either way;
    llama-cpp-python's Python-level banner stays off ``sys.stderr`` unless ``verbose``."""
    import llama_cpp

    _install_log_capture()
    if verbose:
        return llama_cpp.Llama(verbose=True, **kwargs)
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):
        return llama_cpp.Llama(verbose=True, **kwargs)


def _recent_log_errors() -> str:
    with _LOG_LOCK:
        lines = [ln.strip() for ln in _LOG_LINES
                 if any(word in ln.lower() for word in ("error", "failed", "does not", "not supported"))]
    return "; ".join(dict.fromkeys(lines))[-400:]


def gpu_offload_supported() -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def special_token_id(llm: object, text: str) -> int | None:
    """The id of a control/special token, looked up by its text in the model's vocabulary (never hard-coded)."""
    ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)  # type: ignore[attr-defined]
    if len(ids) != 1 or llm._model.token_get_text(ids[0]) != text:  # type: ignore[attr-defined]
        return None
    return ids[0]


def tokenize_user_text(llm: object, text: str) -> list[int]:
    """User text: control-token spellings inside it stay plain text (``special=False``)."""
    if not text:
        return []
    return llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)  # type: ignore[attr-defined]


class LlamaBackend:
    """One loaded GGUF model and its single evaluated sequence (the KV cache we keep warm)."""

    name = "llama.cpp"

    def __init__(self, model_path: Path | str, config: LlamaConfig | None = None,
                 kv_dir: Path | str | None = None) -> None:
        import llama_cpp

        config = config or LlamaConfig()
        self.config = config
        self.model_path = Path(model_path)
        check_gguf(self.model_path)
        _install_log_capture()
        with _LOG_LOCK:
            _LOG_LINES.clear()
        kwargs: dict[str, object] = dict(
            model_path=str(self.model_path),
            n_ctx=config.n_ctx,
            n_batch=config.n_batch,
            n_ubatch=config.n_batch,
            n_gpu_layers=config.n_gpu_layers if gpu_offload_supported() else 0,
            flash_attn=config.flash_attn,
            type_k=_KV_TYPES[config.kv_cache_type],
            type_v=_KV_TYPES[config.kv_cache_type],
            verbose=config.verbose,
            logits_all=False,
            seed=0,
        )
        # llama-cpp-python's default runs prefill on every logical CPU; with hyper-threads or other busy
        # processes, ggml's spinning thread barriers then stall (measured here: 3.8 s instead of 0.45 s for a
        # 3.7K-token prefill on 2 shared vCPUs). Default to one thread per physical core for both phases.
        threads = config.threads if config.threads > 0 else max(1, (os.cpu_count() or 2) // 2)
        kwargs["n_threads"] = threads
        kwargs["n_threads_batch"] = threads
        if config.rope_scaling == "yarn":
            kwargs["rope_scaling_type"] = llama_cpp.LLAMA_ROPE_SCALING_TYPE_YARN
            kwargs["yarn_orig_ctx"] = YARN_ORIGINAL_CONTEXT
            kwargs["rope_freq_scale"] = 1.0 / config.yarn_factor  # llama-server's --rope-scale 4
        try:
            self.llm = open_llama(**kwargs)  # type: ignore[arg-type]
        except (ValueError, RuntimeError) as exc:
            detail = _recent_log_errors() or str(exc)
            raise ModelError(f"llama.cpp could not load {self.model_path.name}: {detail}") from None
        self.n_ctx = self.llm.n_ctx()
        self._lock = threading.RLock()
        self.prompt_format: PromptFormat = detect_format(self.token_id, self.llm.token_eos())
        self._special_cache: dict[str, int | None] = {}
        self.chat_template: str = self.llm.metadata.get("tokenizer.chat_template", "")
        self.metadata = dict(self.llm.metadata)
        self.kv_store = KVStore(kv_dir) if kv_dir else None
        self._snapshot_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="coderflash-kv-writer")
        self._snapshots_in_flight: dict[Path, Future] = {}
        self._piece_ids: OrderedDict[str, list[int]] = OrderedDict()
        self._piece_tokens = 0
        self.last_llama_evaluated = 0

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
        re-tokenizing it on every request would cost more than evaluating the few new tokens.
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

    def _tokenize_cached(self, text: str) -> list[int]:
        cached = self._piece_ids.get(text)
        if cached is not None:
            self._piece_ids.move_to_end(text)
            return cached
        ids = self.tokenize(text)
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
        import numpy as np

        llm = self.llm
        limit = min(llm.n_tokens, len(ids))
        if not limit:
            return 0
        # Compare in numpy: prompts can be 256K tokens long.
        diff = np.nonzero(llm.input_ids[:limit] != np.asarray(ids[:limit], dtype=llm.input_ids.dtype))[0]
        return int(diff[0]) if len(diff) else limit

    def llama_eval_count(self) -> int:
        """Tokens llama.cpp itself reports as decoded (prompt batches + single-token steps).

        llama.cpp reports a counter of 0 as 1, so a delta is exact once both counters are past 1.
        """
        import llama_cpp

        perf = llama_cpp.llama_perf_context(self.llm._ctx.ctx)
        return int(perf.n_p_eval) + int(perf.n_eval)

    def _prefill(self, ids: list[int], cancel: CancelToken | None, deadline: float | None = None) -> int:
        """Evaluate ``ids`` after the longest common prefix with the cache; returns tokens reused.

        Chunks of ``n_batch`` with a cancel check between them. Not smaller: on CPU with flash attention a
        32-token chunk deep in a 12K context took 360 ms against ~150 ms for 512 tokens, so shrinking chunks
        for a quicker cancel made every prefill several times slower. Past ``deadline`` (after at least one
        chunk) it stops with ``PrefillDeadline``: what it evaluated stays in the cache, so the next request
        with the same prompt start goes on from there instead of starting over.
        """
        llm = self.llm
        common = self.common_prefix(ids)
        if common == len(ids):
            common -= 1  # the last token must be evaluated again to get fresh logits
        llm.n_tokens = common
        llm._ctx.kv_cache_seq_rm(-1, common, -1)
        rest = ids[common:]
        step = max(1, llm.n_batch)
        for pos in range(0, len(rest), step):
            if cancel is not None:
                cancel.check()
            if pos and deadline is not None and time.monotonic() >= deadline:
                raise PrefillDeadline(common, pos)
            llm.eval(rest[pos : pos + step])
        return common

    def prefill(self, pieces: Sequence[Piece], cancel: CancelToken | None = None) -> tuple[int, int]:
        """Warm the KV cache with a prompt; returns (prompt_tokens, reused)."""
        with self._lock:
            ids = self.pieces_to_ids(pieces)
            self._check_fits(ids, 0)
            return len(ids), self._prefill(ids, cancel)

    def _check_fits(self, ids: list[int], max_tokens: int) -> None:
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
        """Snapshot the KV cache when it starts with ``prefix`` (lean: KV bytes + token ids).

        Only the copy out of llama.cpp happens here, on the inference worker; the file is written by a
        background thread, so a keystroke never waits behind gigabytes of disk I/O (the real model's KV is
        ~96 KiB per token). ``wait`` blocks until the file is on disk."""
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
        target = self.kv_store.path_for(key, prefix)
        future = self._snapshot_writer.submit(self.kv_store.save, key, prefix, tokens, state)
        self._snapshots_in_flight[target] = future
        future.add_done_callback(lambda _f: self._snapshots_in_flight.pop(target, None))
        if wait:
            future.result()
        return target

    def snapshot_pending(self, prefix: Sequence[int]) -> bool:
        """True while a snapshot of ``prefix`` is being written (don't start a second one)."""
        return self.kv_store is not None and self.kv_store.path_for(self._model_key(), list(prefix)) in self._snapshots_in_flight

    def flush_snapshots(self) -> None:
        """Wait for snapshot files being written (shutdown, tests)."""
        for future in list(self._snapshots_in_flight.values()):
            with contextlib.suppress(Exception):
                future.result()

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
            llm = self.llm
            llm._ctx.kv_cache_seq_rm(-1, 0, -1)
            llm.n_tokens = 0
            buf = (ctypes.c_uint8 * len(snap.state)).from_buffer_copy(snap.state)
            if llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, buf, len(snap.state), 0) == 0:
                raise SnapshotError("llama.cpp rejected the snapshot (different model or settings)")
            n = len(snap.tokens)
            llm.input_ids[:n] = snap.tokens
            llm.n_tokens = n
            llm._requires_eval = True  # logits are not part of the snapshot
            return n

    def warm_prefix(self, pieces: Sequence[Piece], cancel: CancelToken | None = None) -> dict[str, object]:
        """Make the repository prefix resident: already cached, restored from disk, or prefilled and saved.

        A cancelled prefill keeps what it evaluated (the next request reuses it through the common prefix).
        """
        start = time.perf_counter()
        with self._lock:
            ids = self.pieces_to_ids(pieces)
            self._check_fits(ids, 0)
            info: dict[str, object] = {"prefix_tokens": len(ids)}
            common = self.common_prefix(ids)
            if common >= len(ids):
                info["source"] = "cached"
            else:
                restored = 0
                try:
                    restored = self.restore_prefix(ids) if common < len(ids) // 2 or common < 64 else 0
                except SnapshotError as exc:
                    info["snapshot_error"] = str(exc)
                    assert self.kv_store is not None
                    self.kv_store.path_for(self._model_key(), ids).unlink(missing_ok=True)
                    self.llm.n_tokens = 0
                    self.llm._ctx.kv_cache_seq_rm(-1, 0, -1)
                if restored:
                    info["source"] = "snapshot"
                    info["evaluated_tokens"] = 0
                else:
                    reused = self._prefill(ids, cancel)
                    info.update(source="prefill", evaluated_tokens=len(ids) - reused)
            if self.kv_store is not None and not self.kv_store.has(self._model_key(), ids) \
                    and not self.snapshot_pending(ids):
                path = self.save_prefix(ids)
                info["saved"] = str(path) if path else None
            info["elapsed_ms"] = elapsed_ms(start)
            return info

    # -- generation -----------------------------------------------------------------------------
    def generate(self, request: GenerationRequest, cancel: CancelToken | None = None) -> GenerationResult:
        start = time.perf_counter()
        with self._lock:
            ids = self.pieces_to_ids(request.pieces)
            self._check_fits(ids, request.max_tokens)
            max_tokens = max(0, min(request.max_tokens, self.n_ctx - len(ids) - 1))
            out = _Output(request)
            finish = "length"
            reused = 0
            evaluated = None
            before = self.llama_eval_count()
            try:
                reused = self._prefill(ids, cancel, request.deadline)
                finish = self._sample_loop(request, max_tokens, out, cancel, start)
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
            )

    def _sample_loop(self, request: GenerationRequest, max_tokens: int, out: "_Output",
                     cancel: CancelToken | None, start: float) -> str:
        """Sample, check stops/deadline/cancel, decode one token: a cancel lands within one decode step."""
        import llama_cpp

        if max_tokens == 0:
            return "length"
        llm = self.llm
        sampling = request.sampling
        grammar = None
        if request.grammar:
            self.check_grammar(request.grammar)
            grammar = llama_cpp.LlamaGrammar.from_string(request.grammar, verbose=False)
        greedy = sampling.temperature <= 0
        stop_ids = set(request.stop_ids) | {llm.token_eos()} | self.eog_ids
        if sampling.seed:
            llm.set_seed(sampling.seed)
        llm._sampler = llm._init_sampler(
            top_k=1 if greedy else (sampling.top_k or 40),
            top_p=1.0 if greedy else sampling.top_p,
            min_p=0.0,
            temp=0.0 if greedy else sampling.temperature,
            repeat_penalty=sampling.repeat_penalty,
            grammar=grammar,
        )
        try:
            while True:
                token = llm.sample(idx=llm.n_tokens - 1)
                if not out.ids:
                    out.first_token_ms = elapsed_ms(start)
                if token in stop_ids:
                    return "stop"
                if out.add(token, llm.detokenize([token])):
                    return "stop"
                if len(out.ids) >= max_tokens:
                    return "length"
                if request.deadline is not None and time.monotonic() >= request.deadline:
                    return "deadline"
                if cancel is not None and cancel.cancelled:
                    return "cancelled"
                llm.eval([token])
        finally:
            llm._sampler = None

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
        stops = set(request.stop_ids)
        for text in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>"):
            if (tid := self.token_id(text)) is not None:
                stops.add(tid)
        return self.generate(dataclasses.replace(request, pieces=pieces, stop_ids=frozenset(stops)), cancel)

    def _special_pieces(self, text: str) -> list[Piece]:
        """Template text (written by the template, not the user): control-token spellings become ids."""
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def info(self) -> dict[str, object]:
        return {
            "backend": self.name,
            "model_path": str(self.model_path),
            "model_name": self.metadata.get("general.name", self.model_path.stem),
            "architecture": self.metadata.get("general.architecture", ""),
            "n_ctx": self.n_ctx,
            "n_ctx_train": self.llm.n_ctx_train() if hasattr(self.llm, "n_ctx_train") else None,
            "gpu_offload": gpu_offload_supported(),
            "prompt_format": self.prompt_format.name,
            "flash_attn": self.config.flash_attn,
            "kv_cache_type": self.config.kv_cache_type,
            "rope_scaling": self.config.rope_scaling,
            "cached_tokens": self.llm.n_tokens,
        }

    def close(self) -> None:
        self.flush_snapshots()
        self._snapshot_writer.shutdown(wait=True)
        with contextlib.suppress(Exception):
            self.llm.close()
