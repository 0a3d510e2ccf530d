"""The decode loop of the in-process backend: sample, check stops, evaluate — one token at a time, or with
prompt-lookup drafts verified in one batch.

Why a module of its own: ``llama_backend`` owns the model, the KV cache and its snapshots; how tokens are
chosen and fed back (sampler chain, drafts, rollback of rejected drafts) is one job that changes for its own
reasons (the draft model itself is ``draft_model``).
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from engine.config import LlamaConfig
from engine.model.backend import CancelToken, GenerationRequest, elapsed_ms
from engine.model.first_name import first_name_tokens
from engine.model.llama_loader import gpu_offload_supported
from engine.model.text_stream import TextStream


class Drafter(Protocol):
    """What proposes draft tokens for one completion (``PromptLookup``, ``draft_model.ModelDrafter``)."""

    def append(self, token: int) -> None: ...

    def draft(self, limit: int) -> list[int]: ...


def draft_source(config: LlamaConfig, draft_model_loaded: bool) -> str | None:
    """Where greedy decoding gets drafts: ``"model"`` (the draft model), ``"prompt-lookup"``, or None.
    ``auto``: only with layers offloaded to a GPU, where a decode step is bound by reading the weights and a
    batch of ten costs about one step — the draft model when one is loaded, else the prompt. On a CPU a step
    is bound by arithmetic: measured here (Qwen2.5-Coder-0.5B, one thread per core), a batch of 2 took 2.8x
    one step and a batch of 8 5.3x, so drafts made decoding slower unless nearly all of them were accepted
    (``bench/decode_bench.py``)."""
    if config.draft_tokens <= 0 or config.draft == "none":
        return None
    if config.draft == "auto":
        if not (config.n_gpu_layers != 0 and gpu_offload_supported()):
            return None
        return "model" if draft_model_loaded else "prompt-lookup"
    if config.draft == "model":
        return "model" if draft_model_loaded else None
    return "prompt-lookup"


def wants_draft_model(config: LlamaConfig) -> bool:
    """Whether to load ``llama.draft_model`` at all (it costs memory and a load): where drafts would come
    from it once loaded."""
    return bool(config.draft_model) and draft_source(config, draft_model_loaded=True) == "model"


def sample_loop(llm: Any, request: GenerationRequest, max_tokens: int, out: TextStream, cancel: CancelToken | None,
                start: float, stop_ids: set[int], grammar: Any, lookup: Drafter | None) -> str:
    """Sample, check stops/deadline/cancel, decode: a cancel lands within one decode step. Returns the finish
    reason. With ``lookup`` (greedy only: prompt lookup or a draft model) each step feeds the last token plus
    the drafted tokens in one batch, and keeps the model's own choice at every position up to the first that
    differs from the draft — the same tokens as one at a time, fewer decode steps. A request's ``name_rule``
    (greedy only) chooses the first tokens (``first_name``)."""
    sampling = request.sampling
    greedy = sampling.temperature <= 0
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
        ruled = None
        if request.name_rule is not None and greedy and grammar is None:
            ruled = first_name_tokens(llm, request.name_rule, stop_ids, request.stop_strings, request.deadline,
                                      cancel)
        pending = ruled or [llm.sample(idx=llm.n_tokens - 1)]
        out.first_token_ms = elapsed_ms(start)
        while True:
            for token in pending:
                if token in stop_ids:
                    return "stop"
                if out.add(token, llm.detokenize([token])):
                    return "stop"
                if len(out.ids) >= max_tokens:
                    return "length"
                if lookup is not None:
                    lookup.append(token)
            if request.deadline is not None and time.monotonic() >= request.deadline:
                return "deadline"
            if cancel is not None and cancel.cancelled:
                return "cancelled"
            draft = lookup.draft(max_tokens - len(out.ids) - 1) if lookup is not None else []
            if not draft:
                llm.eval([pending[-1]])
                pending = [llm.sample(idx=llm.n_tokens - 1)]
                continue
            pending = verify_draft(llm, pending[-1], draft)
            out.draft_tokens += len(draft)
            out.accepted_draft_tokens += len(pending) - 1
    finally:
        sampler, llm._sampler = llm._sampler, None
        # llama-cpp-python frees a sampler chain in __del__, but the chain's closure refers back to it:
        # without close() every completion's chain waits for the cyclic garbage collector.
        sampler.close()


def verify_draft(llm: Any, token: int, draft: list[int]) -> list[int]:
    """Decode ``token`` + ``draft`` in one batch; the tokens the model chooses after each position, up to and
    including the first that is not the draft's (accepted drafts, then the model's own next token). The KV
    cache keeps ``token`` and the accepted drafts only."""
    feed = [token, *draft]
    n_past = llm.n_tokens
    llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
    llm._batch.set_batch(batch=feed, n_past=n_past, logits_all=True)
    llm._ctx.decode(llm._batch)
    llm.input_ids[n_past : n_past + len(feed)] = feed
    chosen: list[int] = []
    for i in range(len(feed)):
        chosen.append(llm._sampler.sample(llm._ctx, i))
        if i == len(draft) or chosen[-1] != draft[i]:
            break
    keep = n_past + len(chosen)  # ``token`` and the accepted drafts; the last choice is not evaluated yet
    llm._ctx.kv_cache_seq_rm(-1, keep, -1)
    llm.n_tokens = keep
    return chosen
