"""One assistant turn as a resumable job on the inference worker.

Why: an inline completion pre-empts chat within one decode step (engine/inference/scheduler.py), and the
scheduler then calls the job again. The turn keeps the text it has produced so far; the next run renders
the conversation again with that text appended, so the model continues where it stopped and the stream
never repeats itself. Counters add up over the runs. ``Engine.chat`` (code actions) and every step of a
chat session (engine/chat/session.py) are such turns: they differ only in how they render their
conversation, which each gives as a ``Render`` function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from engine.config import ChatConfig
from engine.model.backend import Backend, CancelToken, GenerationRequest, GenerationResult, Sampling
from engine.model.prompt_format import Piece


@dataclass
class ChatPrompt:
    """What one run of a turn sends to the model."""

    pieces: Sequence[Piece] = ()  # the rendered conversation, without the text generated so far
    max_tokens: int = 1  # this run's limit; <= 0: no room is left and the turn ends with "length"
    stop_ids: frozenset[int] = frozenset()
    prompt_tokens: int = 0  # what the result reports when no room is left
    messages: Sequence[dict] | None = None  # instead of pieces: the backend applies the template (Backend.chat)
    tools: Sequence[dict] | None = None  # with ``messages``: the tools the template declares


Render = Callable[[Backend, str, int], ChatPrompt]
"""(backend, the text generated so far, the tokens generated so far) → this run's prompt."""


def chat_sampling(cfg: ChatConfig) -> Sampling:
    """The configured chat sampling (``[chat]``: Qwen3-Coder's recommendation by default)."""
    return Sampling(temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                    repeat_penalty=cfg.repeat_penalty)


def combine(text: str, results: Sequence[GenerationResult]) -> GenerationResult:
    """The runs of one turn as one result: the whole text, counters added up, the last run's outcome."""
    last = results[-1]
    return GenerationResult(
        text=text,
        prompt_tokens=last.prompt_tokens,
        reused_tokens=sum(r.reused_tokens for r in results),
        evaluated_tokens=sum(r.evaluated_tokens for r in results),
        generated_tokens=sum(r.generated_tokens for r in results),
        elapsed_ms=round(sum(r.elapsed_ms for r in results), 3),
        finish_reason=last.finish_reason,
        first_token_ms=results[0].first_token_ms,
    )


class LinkedCancel(CancelToken):
    """Fires when any of its tokens fires (the scheduler's pre-emption token and the user's cancel)."""

    def __init__(self, *tokens: CancelToken) -> None:
        super().__init__()
        self._tokens = tokens

    @property
    def cancelled(self) -> bool:  # type: ignore[override]
        return any(t.cancelled for t in self._tokens)

    def check(self) -> None:
        for token in self._tokens:
            token.check()


class ChatTurn:
    """One assistant turn across the runs the scheduler gives it.

    ``on_text`` receives only text not streamed before: a turn constrained by a ``grammar`` cannot resume
    mid-way, so a pre-empted one starts over and streams what goes beyond its earlier text. ``cancel`` is
    the user's token, checked before every run and linked to the scheduler's; ``record`` takes each run's
    result (the engine's counters)."""

    def __init__(self, render: Render, *, sampling: Sampling, record: Callable[[GenerationResult], None],
                 on_text: Callable[[str], None] | None = None, grammar: str | None = None,
                 cancel: CancelToken | None = None) -> None:
        self.render = render
        self.sampling = sampling
        self.record = record
        self.on_text = on_text
        self.grammar = grammar
        self.cancel = cancel
        self.text = ""
        self.results: list[GenerationResult] = []
        self.runs = 0
        self._streamed = 0

    def _collect(self, piece: str) -> None:
        self.text += piece
        if len(self.text) > self._streamed:
            new = self.text[self._streamed:]
            self._streamed = len(self.text)
            if self.on_text is not None:
                self.on_text(new)

    def run(self, backend: Backend, token: CancelToken) -> GenerationResult:
        """One run: from the start, or on from the text an earlier, pre-empted run produced."""
        if self.cancel is not None:
            self.cancel.check()
        self.runs += 1
        if self.grammar is not None and self.text:
            self.text, self.results = "", []  # a grammar cannot resume mid-way: regenerate
        prompt = self.render(backend, self.text, sum(r.generated_tokens for r in self.results))
        if prompt.max_tokens <= 0:
            return self.result(GenerationResult("", prompt.prompt_tokens, 0, 0, 0, 0.0, "length"))
        pieces = list(prompt.pieces) + [self.text] if self.text else list(prompt.pieces)
        request = GenerationRequest(pieces=pieces, max_tokens=prompt.max_tokens, sampling=self.sampling,
                                    stop_ids=prompt.stop_ids, grammar=self.grammar, on_text=self._collect)
        cancel = token if self.cancel is None else LinkedCancel(token, self.cancel)
        if prompt.messages is not None:
            result = backend.chat(prompt.messages, request, prompt.tools, cancel)
        else:
            result = backend.generate(request, cancel)
        self.results.append(result)
        self.record(result)
        return self.result()

    def result(self, fallback: GenerationResult | None = None) -> GenerationResult:
        """The turn so far as one result (``fallback`` when no run has finished yet)."""
        results = self.results or ([fallback] if fallback is not None else [])
        return combine(self.text, results)
