"""Echoes (``engine/inference/echo.py``): which tails of the line before the cursor count as written again,
and the completion shown without them (``postprocess.trim_completion``, the path every completion and the
quality benchmark's baselines take). The real model's echo is ``tests/realmodel/test_real_model_echo.py``."""

from __future__ import annotations

import pytest

from engine.inference.echo import MAX_ECHO_CHARS, echo_tails, strip_echo
from engine.inference.postprocess import CompletionShape, finish_completion

SERDE = "fn f() {\n            Value::Object(map) => map.entry(self.to_owned())."


def test_tails_end_at_an_accessor_start_on_a_token_and_are_long_enough():
    tails = echo_tails(SERDE)
    assert "entry(self.to_owned())." in tails and "map.entry(self.to_owned())." in tails
    assert "ntry(self.to_owned())." not in tails  # inside a word
    assert " map.entry(self.to_owned())." not in tails  # on a space
    assert "))." not in tails  # no word character: nothing the model would echo as code
    assert not any("fn f()" in t for t in tails)  # the cursor's line only
    assert "String::" in echo_tails("    let mut buf = String::")
    assert "self." in echo_tails("        x = self.")
    assert echo_tails("    return node->") == ("node->", "return node->")
    assert echo_tails("    io.") == ()  # shorter than MIN_ECHO_CHARS
    assert echo_tails("self.foo") == echo_tails("f(None, ") == echo_tails("") == ()  # no accessor at the cursor


@pytest.mark.parametrize("generated, shown", [
    ("entry(self.to_owned()).or_insert(Value::Null),", "or_insert(Value::Null),"),
    ("map.entry(self.to_owned()).or_insert(Value::Null),", "or_insert(Value::Null),"),  # the longest tail
    ("entry(self.to_owned()).", ""),  # nothing but the echo: nothing to show
    ("entry(key).or_insert(1)", "entry(key).or_insert(1)"),  # the same method, other arguments: chaining
    ("or_insert(Value::Null),", "or_insert(Value::Null),"),
])
def test_the_longest_echo_is_cut_off(generated, shown):
    assert strip_echo(generated, SERDE) == shown


def test_every_completion_is_shown_without_the_echo():
    line = "        deserializer.deserialize(self.number.take().unwrap()."
    single = CompletionShape(multiline=False, max_lines=1)
    shown = finish_completion("unwrap().into_deserializer())", "stop", line, "\n    }\n", single, "de.rs")
    assert shown == "into_deserializer())"
    multi = CompletionShape(multiline=True, max_lines=8)
    assert finish_completion("minidom.Document()\n", "stop", "    f = xml.dom.minidom.", "\n", multi,
                             "a.py") == "Document()"
    assert finish_completion("now()", "stop", "t = datetime.", "\n", single, "a.py") == "now()"


def test_a_minified_line_is_scanned_only_as_far_as_an_echo_could_reach():
    line = "var a=" + "b.c(d)," * 200_000 + "e."  # 1.4M characters on the cursor's line
    assert echo_tails(line, 12) == ("d),e.", "(d),e.", "c(d),e.", ".c(d),e.", "b.c(d),e.", ",b.c(d),e.",
                                    "),b.c(d),e.", "d),b.c(d),e.")
    assert max(map(len, echo_tails(line))) <= MAX_ECHO_CHARS
    assert strip_echo("b.c(d),e.f()", line) == "f()"
    assert strip_echo("f()", line) == "f()"
