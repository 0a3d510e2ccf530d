import pytest

from engine.postprocess import choose_shape, syntax_at_cursor, trim_completion


@pytest.mark.parametrize("source, syntax, multiline", [
    ("x = foo(a, |)\n", "arguments", False),
    ('s = "hel|lo"\n', "string", False),
    ("# a comm|ent\n", "comment", False),
    ("def f(x):\n    |\n", "block", True),
    ("class A:\n    def g(self):\n        return 1\n    |\n", "block", True),
    ("x = compute(|\n", "arguments", False),
])
def test_shape_from_syntax(source: str, syntax: str, multiline: bool):
    offset = source.index("|")
    text = source.replace("|", "")
    found = syntax_at_cursor("a.py", text, offset)
    assert found == syntax
    assert choose_shape(text[:offset], text[offset:], 16, found).multiline is multiline


def test_unknown_language_falls_back_to_text_rules():
    assert syntax_at_cursor("notes.unknownext", "abc", 1) is None
    assert choose_shape("def f():\n", "", 8, None).multiline


def test_trim_stops_at_suffix_repetition_and_dedent():
    shape = choose_shape("def f(x):\n    ", "\nreturn_value = f(1)\n", 16)
    text = "y = x * 2\n    return y\nreturn_value = f(1)\n"
    assert trim_completion(text, "def f(x):\n    ", "\nreturn_value = f(1)\n", shape) == "y = x * 2\n    return y"
