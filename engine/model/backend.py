"""The backend interface shared by in-process llama.cpp and OpenAI-compatible servers.

Every generation reports the same counters, so editors, `coderflash complete --json` and benchmarks can
show how much of the prompt was reused from the KV cache and how much had to be evaluated.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Protocol, Sequence

from engine.model.name_rule import NameRule
from engine.model.prompt_format import Piece, PromptFormat


class BackendError(RuntimeError):
    """Inference failed in a way the user can act on (server down, model unusable, ...)."""


class Cancelled(Exception):
    """Raised inside a generation when its cancel token fires."""


@dataclass
class Sampling:
    temperature: float = 0.0  # 0 → greedy (FIM default)
    top_p: float = 1.0
    top_k: int = 0
    repeat_penalty: float = 1.0
    seed: int = 0


@dataclass
class GenerationRequest:
    pieces: Sequence[Piece]
    max_tokens: int = 128
    sampling: Sampling = field(default_factory=Sampling)
    stop_ids: frozenset[int] = frozenset()
    stop_strings: tuple[str, ...] = ()
    deadline: float | None = None  # time.monotonic() value after which generation stops
    grammar: str | None = None  # GBNF, in-process backend only
    on_text: Callable[[str], None] | None = None  # streamed pieces of text
    # the first name the completion may write (an import list's): in-process greedy decoding keeps to it; a remote
    # server cannot be steered token by token and ignores it
    name_rule: NameRule | None = None


@dataclass
class GenerationResult:
    text: str
    prompt_tokens: int
    reused_tokens: int
    evaluated_tokens: int
    generated_tokens: int
    elapsed_ms: float
    finish_reason: str  # "stop" | "length" | "deadline" | "cancelled" | "preempted"
    first_token_ms: float = 0.0  # prefill + first sampled token: what a user waits for before ghost text
    draft_tokens: int = 0  # drafted tokens (prompt lookup or the draft model) the model verified (greedy, in-process)
    accepted_draft_tokens: int = 0  # of those, the ones it kept (each saved a decode step)

    def counters(self) -> dict[str, float | int]:
        data = asdict(self)
        data.pop("text")
        data.pop("finish_reason")
        return data


class CancelToken:
    """Set by the scheduler when a newer request supersedes this one; checked once per decode step."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancelled") -> None:
        """``reason`` "preempted" is a pause (the scheduler runs the job again later); any other is final and is
        never replaced by "preempted" — a superseded or shut-down job must not come back."""
        if not (reason == "preempted" and self._event.is_set() and self.reason != "preempted"):
            self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled(self.reason)

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``; raise Cancelled as soon as the token fires."""
        if self._event.wait(seconds):
            raise Cancelled(self.reason)


class Backend(Protocol):
    """What the engine needs from an inference backend."""

    name: str
    prompt_format: PromptFormat

    def tokenize(self, text: str) -> list[int]: ...

    def detokenize(self, ids: Sequence[int]) -> str: ...

    def count_tokens(self, text: str) -> int: ...

    def generate(self, request: GenerationRequest, cancel: CancelToken | None = None) -> GenerationResult: ...

    def render_chat(self, messages: Sequence[dict[str, str]], tools: Sequence[dict] | None = None) -> list[Piece]: ...

    def chat(self, messages: Sequence[dict], request: GenerationRequest, tools: Sequence[dict] | None = None,
             cancel: CancelToken | None = None) -> GenerationResult:
        """An assistant turn with the model's chat template; ``request`` gives limits, sampling, streaming."""
        ...

    def warm_prefix(self, pieces: Sequence[Piece], cancel: CancelToken | None = None,
                    save: bool = True, chunk: int | None = None) -> dict[str, object]:
        """Make ``pieces`` the evaluated start of the KV cache (restored from disk when possible).

        Remote backends have no KV cache of ours to warm and return ``{"skipped": ...}``.
        """
        ...

    def info(self) -> dict[str, object]: ...

    def close(self) -> None: ...


def elapsed_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


END_OF_TURN = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>")
"""Spellings of the tokens that end an assistant turn in the chat templates we meet (ChatML, Llama 3, Gemma)."""


def end_of_turn_ids(token_id: Callable[[str], int | None]) -> set[int]:
    """The ids of ``END_OF_TURN`` in a vocabulary (``token_id``: text → id, None when it has no such token)."""
    return {tid for text in END_OF_TURN if (tid := token_id(text)) is not None}


def chat_stop_ids(backend: object) -> frozenset[int]:
    """Token ids that end an assistant turn: the FIM/control stops, the chat end markers, and every token
    llama.cpp itself treats as end of generation (e.g. Qwen3's ``</s>``); a grammar that has finished allows
    only those, so without them a constrained turn would run to max_tokens."""
    stops = set(getattr(getattr(backend, "prompt_format", None), "stop_ids", ()) or ())
    token_id = getattr(backend, "token_id", None)
    if token_id is not None:
        stops |= end_of_turn_ids(token_id)
    stops |= getattr(backend, "eog_ids", frozenset())
    return frozenset(stops)
