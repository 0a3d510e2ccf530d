"""Echoes (``engine/model/echo.py``): which tails of the line before the cursor a completion may not begin with,
the verdicts on partial text, and the decoder keeping to them through real llama.cpp (the tiny random-weight
model: the search and the cache, not the quality of what replaces the echo)."""

from __future__ import annotations

import pytest

from engine.model.echo import echo_tails, echo_verdict
from engine.model.name_rule import NameRule, with_echo
from engine_helpers import generate_infill


def test_tails_end_at_an_accessor_start_on_a_token_and_are_long_enough():
    tails = echo_tails("fn f() {\n            Value::Object(map) => map.entry(self.to_owned()).")
    assert "entry(self.to_owned())." in tails and "map.entry(self.to_owned())." in tails
    assert "ntry(self.to_owned())." not in tails  # inside a word
    assert " map.entry(self.to_owned())." not in tails  # on a space
    assert "))." not in tails  # no word character: nothing the model would echo as code
    assert "fn f() {\n" not in "".join(tails)  # the cursor's line only
    assert "String::" in echo_tails("    let mut buf = String::")
    assert "self." in echo_tails("        x = self.")
    assert echo_tails("    io.") == ()  # shorter than MIN_ECHO_CHARS
    assert echo_tails("self.foo") == echo_tails("f(None, ") == echo_tails("") == ()  # no accessor at the cursor
    assert echo_tails("    return node->") == ("node->", "return node->")


@pytest.mark.parametrize("generated, verdict", [
    ("", "open"), ("ent", "open"), ("entry(self.", "open"), ("entry(self.to_owned()).", "bad"),
    ("entry(self.to_owned()).value()", "bad"), ("entry()", "ok"), ("or_insert(Value::Null)", "ok"),
    ("map.entry(self.to_owned()).x", "bad"), ("m", "open"), ("x", "ok"),
])
def test_verdicts_while_the_echo_is_being_written(generated, verdict):
    tails = echo_tails("            Value::Object(map) => map.entry(self.to_owned()).")
    assert echo_verdict(tails, generated) == verdict


def test_the_echo_joins_a_list_rule_and_a_line_without_one_adds_nothing():
    listed = NameRule(banned=frozenset({"Alpha"}))
    assert with_echo(listed, "import { Beta, ") is listed
    assert with_echo(None, "x = 1 + ") is None
    ruled = with_echo(listed, "x = config.")
    assert ruled.banned == listed.banned and ruled.echo == ("config.", "= config.", "x = config.")
    assert ruled.verdict("config.") == "bad" and ruled.verdict("conf") == "open"
    assert ruled.verdict("Alpha") != "ok" and ruled.verdict("value") == "open" and ruled.verdict("value ") == "ok"


def _generate(backend, rule: NameRule | None, max_tokens: int = 16) -> str:
    return generate_infill(backend, "main.py", "import os\n\ndef main():\n    value = os.", "\n", rule, max_tokens)


def test_the_decoder_leaves_an_echo_for_the_next_most_likely_start(backend):
    plain = _generate(backend, None)
    if len(plain) < 2:
        pytest.skip(f"the tiny model's greedy text is too short to stand for an echo: {plain!r}")
    echo = plain[:max(2, len(plain) // 2)]  # what the model writes first stands for the text before the cursor
    ruled = _generate(backend, NameRule(echo=(echo,)))
    assert not ruled.startswith(echo), (plain, ruled)
    assert _generate(backend, None) == plain  # the cache the search left behind is sound
    assert _generate(backend, NameRule(echo=("zzzzzzzz",))) == plain  # a rule the greedy text obeys changes nothing
