"""Opening a GGUF with llama-cpp-python: load settings, llama.cpp's log, and vocabulary look-ups.

Why apart from the backend: the context engine opens a model's vocabulary alone (``context_tokenizer``)
with the same loader and the same token look-ups as the backend that generates, so both count and name
tokens identically; and a failed load is explained from llama.cpp's own log, captured here.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
from pathlib import Path
from typing import Any, Iterator, Sequence

from engine.config import LlamaConfig
from engine.model.resolution import ModelError, check_gguf

_KV_TYPES = {"f16": 1, "q4_0": 2, "q8_0": 8}
_LOG_LOCK = threading.Lock()
_LOG_LINES: list[str] = []
YARN_ORIGINAL_CONTEXT = 262_144  # Qwen3-Coder's native context; factor 4 reaches 1M


_INSTALL_LOCK = threading.Lock()
_QUIET_LOCK = threading.Lock()
_quiet: dict[str, Any] = {"depth": 0, "saved": None, "devnull": None}


def _install_log_capture() -> None:
    """Route llama.cpp's log into a buffer so load errors can be reported instead of 'Failed to load'.

    Once per process, under a lock: two first loads at once (the model on a loader thread, a vocabulary on the
    worker) each installed a callback, and the one llama.cpp kept could be the one whose last reference was
    dropped — llama.cpp then logs through freed memory (a crash)."""
    import llama_cpp

    with _INSTALL_LOCK:
        if getattr(_install_log_capture, "done", False):
            return

        @llama_cpp.llama_log_callback
        def _callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:  # pragma: no cover - C callback
            with _LOG_LOCK:
                _LOG_LINES.append(text.decode("utf-8", "replace"))
                del _LOG_LINES[:-200]

        _install_log_capture.callback = _callback  # type: ignore[attr-defined]  # alive before llama.cpp holds it
        llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))
        _install_log_capture.done = True  # type: ignore[attr-defined]


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """``sys.stderr`` goes to /dev/null while any thread is inside (loads overlap: the first in swaps it, the last
    out puts it back). Why not ``contextlib.redirect_stderr`` per load: two overlapping loads restored each
    other's /dev/null, and the second to leave put back the first's, already closed — every later write to
    ``sys.stderr`` raised ``ValueError``."""
    with _QUIET_LOCK:
        if _quiet["depth"] == 0:
            _quiet["saved"], _quiet["devnull"] = sys.stderr, open(os.devnull, "w")
            sys.stderr = _quiet["devnull"]
        _quiet["depth"] += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _quiet["depth"] -= 1
            if _quiet["depth"] == 0:
                sys.stderr = _quiet["saved"]
                _quiet["devnull"].close()
                _quiet["saved"] = _quiet["devnull"] = None


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
    with quiet_stderr():
        return llama_cpp.Llama(verbose=True, **kwargs)


def _recent_log_errors() -> str:
    with _LOG_LOCK:
        lines = [ln.strip() for ln in _LOG_LINES
                 if any(word in ln.lower() for word in ("error", "failed", "does not", "not supported"))]
    return "; ".join(dict.fromkeys(lines))[-400:]


def gpu_offload_supported() -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def load_model(model_path: Path, config: LlamaConfig) -> Any:
    """The ``llama_cpp.Llama`` for a GGUF with the ``[llama]`` settings; ModelError (with llama.cpp's own
    reason from its log) when it cannot be loaded."""
    import llama_cpp

    check_gguf(model_path)
    _install_log_capture()
    with _LOG_LOCK:
        _LOG_LINES.clear()
    kwargs: dict[str, object] = dict(
        model_path=str(model_path),
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
        return open_llama(**kwargs)  # type: ignore[arg-type]
    except (ValueError, RuntimeError) as exc:
        detail = _recent_log_errors() or str(exc)
        raise ModelError(f"llama.cpp could not load {model_path.name}: {detail}") from None


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


def resident_prefix(llm: Any, ids: Sequence[int]) -> int:
    """How many leading tokens of ``ids`` the KV cache of ``llm`` holds (compared in numpy: prompts can be
    256K tokens long)."""
    import numpy as np

    limit = min(llm.n_tokens, len(ids))
    if not limit:
        return 0
    diff = np.nonzero(llm.input_ids[:limit] != np.asarray(ids[:limit], dtype=llm.input_ids.dtype))[0]
    return int(diff[0]) if len(diff) else limit
