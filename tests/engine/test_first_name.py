"""The first name a completion writes under a ``NameRule``: the verdicts on partial text, and the decoder that
keeps to them through real llama.cpp (the tiny random-weight model: what is checked is the search and the KV
cache it moves, not the quality of the name; ``tests/realmodel/test_real_model_import_lists.py`` is that)."""

from __future__ import annotations

import re
import string

import pytest

from engine.model.backend import GenerationRequest
from engine.model.first_name import MAX_SCORED
from engine.model.name_rule import NameRule, name_before

RULE = NameRule(allowed=("DefaultError", "QueryKey"), banned=frozenset({"NetworkMode", "Register"}),
                passes=frozenset({"type"}), required=True)


@pytest.mark.parametrize("text, verdict", [
    ("", "open"), ("  ", "open"), ("  Default", "open"), ("  DefaultError", "open"),
    ("  DefaultError,", "ok"), ("DefaultError as Alias", "ok"),
    ("  Network", "bad"), ("NetworkMode,", "bad"), ("Nope,", "bad"),
    ("ty", "open"), ("type ", "open"), ("type Query", "open"), ("type QueryKey,", "ok"), ("type Net", "bad"),
    ("}", "bad"), ("// a comment", "bad"), ("de:", "open"), ("de::Visitor", "ok"),
])
def test_verdicts_on_what_the_model_has_written_so_far(text, verdict):
    assert RULE.verdict(text) == verdict


def test_a_list_that_ends_at_the_cursor_may_be_closed_and_a_typed_name_is_continued():
    closing = NameRule(banned=frozenset({"a"}))
    assert closing.verdict("}") == "ok" and closing.verdict("a,") == "bad" and closing.verdict("b,") == "ok"
    typed = NameRule(typed="Query", allowed=("QueryKey",))
    assert typed.verdict("Key,") == "ok" and typed.verdict("Meta,") == "bad" and typed.verdict(" x") == "bad"
    assert name_before("export { Alpha, Bet") == "Bet" and name_before("x, ") == ""


def _generate(backend, rule: NameRule | None, max_tokens: int = 12) -> str:
    fmt = backend.prompt_format
    pieces = [*fmt.repo_header("repo"), *fmt.current_file_header("index.ts"),
              *fmt.infill("export type {\n  Alpha,\n  Beta,\n", "  Delta,\n} from './types'\n")]
    return backend.generate(GenerationRequest(pieces, max_tokens=max_tokens, stop_ids=fmt.stop_ids,
                                              name_rule=rule)).text


def test_a_rule_the_greedy_text_obeys_changes_nothing(backend):
    plain = _generate(backend, None)
    assert _generate(backend, NameRule()) == plain
    assert _generate(backend, None) == plain  # the cache the rule's decoding left behind is sound


def test_when_no_allowed_name_is_found_decoding_goes_on_as_without_the_rule(backend):
    plain = _generate(backend, None)
    # more names than are scored whole, each too long for the bounded search to finish
    impossible = NameRule(allowed=tuple(f"Zzzzzzzzzzzzzzzzzzzzzzzzzzzz{i}" for i in range(MAX_SCORED + 1)),
                          required=True)
    assert _generate(backend, impossible) == plain  # the search gave up and restored the prompt's logits
    assert _generate(backend, None) == plain


def _sequence_logprob(model_path, ids: list[int], continuation: list[int]) -> float:
    """The log-probability of ``continuation`` after ``ids``, from a llama.cpp instance of its own that
    evaluates everything in one batch (not the decoder's tree and cache)."""
    import llama_cpp
    import numpy as np

    llm = llama_cpp.Llama(str(model_path), n_ctx=2048, logits_all=True, verbose=False)
    try:
        llm.eval(ids + continuation)
        total = 0.0
        for k, token in enumerate(continuation):
            logits = np.asarray(llm.scores[len(ids) + k - 1], dtype=np.float64)
            top = logits.max()
            total += logits[token] - top - np.log(np.exp(logits - top).sum())
        return total
    finally:
        llm.close()


def test_a_few_allowed_names_are_scored_whole_and_the_likeliest_is_written(backend, tiny_model):
    """Two allowed names, neither the greedy one: the one the model gives the higher probability (as a whole,
    after the text greedy wrote before its name) is written, even where neither starts with one of the most
    likely next tokens (which the search alone would need)."""
    plain = _generate(backend, None)
    first = re.match(r"(\s*)([A-Za-z_$][\w$]*)", plain)
    if first is None:
        pytest.skip(f"the tiny model's greedy text starts with no name: {plain!r}")
    lead = first.group(1)
    names = ("Omega", "Quux")
    fmt = backend.prompt_format
    ids = backend.pieces_to_ids([*fmt.repo_header("repo"), *fmt.current_file_header("index.ts"),
                                 *fmt.infill("export type {\n  Alpha,\n  Beta,\n", "  Delta,\n} from './types'\n")])
    scores = {n: _sequence_logprob(tiny_model, ids, backend.tokenize(lead + n)) for n in names}
    if abs(scores["Omega"] - scores["Quux"]) < 1e-2:
        pytest.skip(f"the two names score alike under the tiny model: {scores}")
    likeliest = max(scores, key=scores.get)
    ruled = _generate(backend, NameRule(allowed=names, banned=frozenset({first.group(2)}), required=True))
    assert ruled.startswith(lead + likeliest), (scores, plain, ruled)
    assert _generate(backend, None) == plain  # the cache the scoring left behind is sound


def test_a_name_the_rule_refuses_is_replaced_by_the_most_likely_allowed_one(backend):
    plain = _generate(backend, None, max_tokens=24)
    first = re.match(r"\s*([A-Za-z_$])", plain)
    if first is None:
        pytest.skip(f"the tiny model's greedy text starts with no name: {plain!r}")
    # one-letter names only, not the greedy one: the search must leave the greedy path and end a name early
    rule = NameRule(allowed=tuple(sorted(set(string.ascii_letters) - {first.group(1)})), required=True)
    ruled = _generate(backend, rule, max_tokens=24)
    assert rule.verdict(ruled) == "ok" and ruled != plain, (plain, ruled)
    assert re.match(r"\s*[A-Za-z]\W", ruled), ruled
    assert _generate(backend, None, max_tokens=24) == plain
