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
from pathlib import Path
from typing import Sequence

from .backend import (
    BackendError,
    CancelToken,
    GenerationRequest,
    GenerationResult,
    elapsed_ms,
)
from .config import LlamaConfig
from .models import ModelError, check_gguf
from .prompt_format import Piece, PromptFormat, detect_format

_KV_TYPES = {"f16": 1, "q4_0": 2, "q8_0": 8}
_LOG_LOCK = threading.Lock()
_LOG_LINES: list[str] = []


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


def _recent_log_errors() -> str:
    with _LOG_LOCK:
        lines = [ln.strip() for ln in _LOG_LINES if "error" in ln.lower() or "failed" in ln.lower()]
    return "; ".join(dict.fromkeys(lines))[-400:]


def gpu_offload_supported() -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


class LlamaBackend:
    """One loaded GGUF model and its single evaluated sequence (the KV cache we keep warm)."""

    name = "llama.cpp"

    def __init__(self, model_path: Path | str, config: LlamaConfig | None = None) -> None:
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
        if config.threads > 0:
            kwargs["n_threads"] = config.threads
            kwargs["n_threads_batch"] = config.threads
        if config.rope_scaling == "yarn":
            kwargs["rope_scaling_type"] = llama_cpp.LLAMA_ROPE_SCALING_TYPE_YARN
            kwargs["yarn_orig_ctx"] = 262_144
            kwargs["rope_freq_scale"] = 1.0 / config.yarn_factor
        try:
            self.llm = llama_cpp.Llama(**kwargs)
        except (ValueError, RuntimeError) as exc:
            detail = _recent_log_errors() or str(exc)
            raise ModelError(f"llama.cpp could not load {self.model_path.name}: {detail}") from None
        self.n_ctx = self.llm.n_ctx()
        self._lock = threading.RLock()
        self.prompt_format: PromptFormat = detect_format(self.token_id, self.llm.token_eos())
        self._special_cache: dict[str, int | None] = {}
        self.chat_template: str = self.llm.metadata.get("tokenizer.chat_template", "")
        self.metadata = dict(self.llm.metadata)

    # -- vocabulary ---------------------------------------------------------------------------
    def token_id(self, text: str) -> int | None:
        """The id of a control/special token, looked up by its text in the model's vocabulary."""
        ids = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        if len(ids) != 1:
            return None
        if self.llm._model.token_get_text(ids[0]) != text:
            return None
        return ids[0]

    def tokenize(self, text: str) -> list[int]:
        """User text: control-token spellings inside it stay plain text."""
        if not text:
            return []
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def detokenize(self, ids: Sequence[int]) -> str:
        return self.llm.detokenize(list(ids)).decode("utf-8", "replace")

    def pieces_to_ids(self, pieces: Sequence[Piece]) -> list[int]:
        ids: list[int] = []
        for piece in pieces:
            if isinstance(piece, int):
                ids.append(piece)
            else:
                ids.extend(self.tokenize(piece))
        return ids

    # -- KV cache -------------------------------------------------------------------------------
    @property
    def cached_tokens(self) -> list[int]:
        """Token ids currently evaluated in the KV cache (sequence 0)."""
        return self.llm.input_ids[: self.llm.n_tokens].tolist()

    def _prefill(self, ids: list[int], cancel: CancelToken | None) -> int:
        """Evaluate ``ids`` after the longest common prefix with the cache; returns tokens reused."""
        llm = self.llm
        current = llm.input_ids[: llm.n_tokens]
        common = 0
        limit = min(len(current), len(ids))
        # Compare in numpy: prompts can be 256K tokens long.
        if limit:
            import numpy as np

            diff = np.nonzero(current[:limit] != np.asarray(ids[:limit], dtype=current.dtype))[0]
            common = int(diff[0]) if len(diff) else limit
        if common == len(ids):
            common -= 1  # the last token must be evaluated again to get fresh logits
        llm.n_tokens = common
        llm._ctx.kv_cache_seq_rm(-1, common, -1)
        rest = ids[common:]
        step = max(1, llm.n_batch)
        for start in range(0, len(rest), step):
            if cancel is not None:
                cancel.check()
            llm.eval(rest[start : start + step])
        return common

    def prefill(self, pieces: Sequence[Piece], cancel: CancelToken | None = None) -> tuple[int, int]:
        """Warm the KV cache with a prompt (prefix warm-up); returns (prompt_tokens, reused)."""
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

    # -- generation -----------------------------------------------------------------------------
    def generate(self, request: GenerationRequest, cancel: CancelToken | None = None) -> GenerationResult:
        from .backend import Cancelled

        start = time.perf_counter()
        with self._lock:
            ids = self.pieces_to_ids(request.pieces)
            self._check_fits(ids, request.max_tokens)
            max_tokens = max(0, min(request.max_tokens, self.n_ctx - len(ids) - 1))
            generated: list[int] = []
            finish = "length"
            reused = 0
            try:
                reused = self._prefill(ids, cancel)
                finish = self._sample_loop(ids, request, max_tokens, generated, cancel)
            except Cancelled:
                finish = "cancelled"
            text = self.detokenize(generated)
            for stop in request.stop_strings:
                cut = text.find(stop)
                if cut >= 0:
                    text = text[:cut]
                    finish = "stop"
            return GenerationResult(
                text=text,
                prompt_tokens=len(ids),
                reused_tokens=reused,
                evaluated_tokens=len(ids) - reused,
                generated_tokens=len(generated),
                elapsed_ms=elapsed_ms(start),
                finish_reason=finish,
            )

    def _sample_loop(
        self,
        ids: list[int],
        request: GenerationRequest,
        max_tokens: int,
        generated: list[int],
        cancel: CancelToken | None,
    ) -> str:
        import llama_cpp

        sampling = request.sampling
        grammar = llama_cpp.LlamaGrammar.from_string(request.grammar, verbose=False) if request.grammar else None
        greedy = sampling.temperature <= 0
        stop_ids = set(request.stop_ids) | {self.llm.token_eos()}
        streamed = ""
        if max_tokens == 0:
            return "length"
        # The prompt is fully evaluated, so generate() finds it cached and samples at once.
        tokens = self.llm.generate(
            ids,
            top_k=1 if greedy else (sampling.top_k or 40),
            top_p=1.0 if greedy else sampling.top_p,
            min_p=0.0,
            temp=0.0 if greedy else sampling.temperature,
            repeat_penalty=sampling.repeat_penalty,
            grammar=grammar,
        )
        try:
            for token in tokens:
                if token in stop_ids:
                    return "stop"
                generated.append(token)
                if request.on_text is not None or request.stop_strings:
                    text = self.detokenize(generated)
                    if request.on_text is not None and len(text) > len(streamed) and not text.endswith("\ufffd"):
                        request.on_text(text[len(streamed):])
                        streamed = text
                    if any(s in text for s in request.stop_strings):
                        return "stop"
                if len(generated) >= max_tokens:
                    return "length"
                if request.deadline is not None and time.monotonic() >= request.deadline:
                    return "deadline"
                if cancel is not None:
                    cancel.check()
        finally:
            with contextlib.suppress(Exception):
                tokens.close()
        return "stop"

    # -- chat -------------------------------------------------------------------------------------
    def render_chat(self, messages: Sequence[dict], tools: Sequence[dict] | None = None) -> list[Piece]:
        """Render the model's own chat template; message contents stay text pieces (never control tokens)."""
        from .chat_template import render_chat_pieces

        return render_chat_pieces(self.chat_template, messages, tools, self._special_pieces)

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
        }

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.llm.close()
