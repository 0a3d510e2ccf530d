"""Prompt-lookup decoding: drafts come from the prompt's n-grams, and greedy output does not change."""

from __future__ import annotations

import dataclasses

from engine.model.backend import GenerationRequest
from engine.model.prompt_lookup import PromptLookup


def test_the_latest_occurrence_of_the_longest_tail_gives_the_draft():
    lookup = PromptLookup([1, 2, 3, 4, 5, 9, 2, 3, 7, 8, 6, 2, 3], max_draft=3)
    assert lookup.draft() == [7, 8, 6]  # "2 3" last seen before 7 8 6 (the earlier 2 3 → 4 5 loses)
    lookup.append(4)
    lookup.append(5)
    lookup.append(1)  # tail "4 5 1": no 3-gram match; the 2-gram "5 1" none either → nothing
    assert lookup.draft() == []
    lookup.append(2)  # tail "5 1 2" unmatched, "1 2" matches at the start → 3 4 5
    assert lookup.draft() == [3, 4, 5]
    assert lookup.draft(limit=1) == [3] and lookup.draft(limit=0) == []


def test_no_match_no_draft_and_the_buffer_grows():
    lookup = PromptLookup([1, 2, 3], room=1)
    assert lookup.draft() == []
    for token in (4, 1, 2):
        lookup.append(token)
    assert len(lookup) == 6 and lookup.draft() == [3, 4, 1, 2]  # up to the end of what exists


def test_a_unigram_alone_never_drafts():
    lookup = PromptLookup([5, 6, 7, 5], max_draft=4)  # only "5" repeats: too weak a signal
    assert lookup.draft() == []


def _greedy(backend, pieces, draft: str) -> tuple[str, int, int]:
    backend.config = dataclasses.replace(backend.config, draft=draft, draft_tokens=8)
    backend.clear_kv()
    result = backend.generate(GenerationRequest(pieces=pieces, max_tokens=64))
    return result.text, result.draft_tokens, result.accepted_draft_tokens


def test_drafts_leave_greedy_output_unchanged_and_save_steps(backend):
    """The tiny model's greedy output loops, which prompt lookup drafts; verified in batches, the text is
    exactly the one-token-at-a-time text, and accepted drafts are counted."""
    fmt = backend.prompt_format
    body = "def total(items):\n    return sum(item.price for item in items)\n" * 6
    pieces = fmt.infill(body + "def total_", "\n")
    plain, proposed, accepted = _greedy(backend, pieces, "none")
    assert (proposed, accepted) == (0, 0)
    drafted, proposed, accepted = _greedy(backend, pieces, "prompt-lookup")
    assert drafted == plain
    assert proposed > 0 and accepted > 0, (proposed, accepted)
    assert backend.llm.n_tokens <= backend.n_ctx  # rejected drafts left no stale tail in the KV cache
    again, _, _ = _greedy(backend, pieces, "none")
    assert again == plain


def test_auto_drafts_only_with_gpu_offload(backend):
    from engine.model.llama_loader import gpu_offload_supported

    backend.config = dataclasses.replace(backend.config, draft="auto")
    assert (backend.draft_source is not None) == gpu_offload_supported()
    backend.config = dataclasses.replace(backend.config, draft="prompt-lookup", draft_tokens=0)
    assert backend.draft_source is None
