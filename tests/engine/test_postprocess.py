import pytest

from engine.inference.postprocess import choose_shape, syntax_at_cursor, trim_completion


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


_BODY = "import graph\n\n\ndef main(self):\n    value = "
_AFTER = "\n    return value\n"


@pytest.mark.parametrize("cut, shown", [
    ("adj", ""),  # half of adjacency_spectrum(...): never shown
    ("adjacency_spectrum(self.G", ""),  # a call whose arguments were cut: the callee goes with it
    ("adjacency_spectrum(self.G) + tra", "adjacency_spectrum(self.G)"),
    ("[1, 2, 3]", "[1, 2, 3]"),
    ("'unterminated str", ""),
    ("x.y", "x"),
])
def test_a_completion_cut_by_the_deadline_ends_on_whole_tokens_that_parse(cut: str, shown: str):
    from engine.inference.postprocess import trim_interrupted

    assert trim_interrupted(cut, _BODY, _AFTER, "a.py") == shown


def test_a_cut_statement_keyword_is_dropped_and_whole_lines_are_kept():
    from engine.inference.postprocess import trim_interrupted

    assert trim_interrupted("raise", "def f():\n    if x:\n        ", "\n", "a.py") == ""
    kept = trim_interrupted("a = f(1)\n        b = g(2)\n        c = h(", "def f():\n    if x:\n        ", "\n", "a.py")
    assert kept == "a = f(1)\n        b = g(2)"


def test_a_multiline_completion_the_token_limit_cut_loses_its_half_written_last_line():
    from engine.inference.postprocess import finish_completion

    prefix, suffix = "def f(x):\n    ", "\n\ndef g():\n    pass\n"
    shape = choose_shape(prefix, suffix, 16, "block")
    cut = "y = x * 2\n    if y > 3:\n        return compute_th"
    assert finish_completion(cut, "length", prefix, suffix, shape, "a.py") == "y = x * 2\n    if y > 3:"
    # the model stopped on its own, or the trim already ended on an earlier whole line: nothing is dropped
    assert finish_completion(cut, "stop", prefix, suffix, shape, "a.py") == cut
    left_block = "y = x * 2\n    return y\n\ndef h():\n    return 1"
    assert finish_completion(left_block, "length", prefix, suffix, shape, "a.py") == "y = x * 2\n    return y"
    # a single line is kept, and so is a generation that ended on a line break
    assert finish_completion("y = x * 2", "length", prefix, suffix, shape, "a.py") == "y = x * 2"
    assert finish_completion("y = 1\n    z = 2\n", "length", prefix, suffix, shape, "a.py") == "y = 1\n    z = 2"
    assert finish_completion(cut, "cancelled", prefix, suffix, shape, "a.py") == ""


def test_the_cursor_lines_indentation_is_not_written_twice():
    """The prompt left the cursor line's indentation out (``ContextResult.indent``): the model writes the line
    whole, and what it wrote before the first code goes (the editor shows the indentation already); the
    trim still measures blocks from the real cursor column."""
    from engine.inference.postprocess import finish_completion

    prefix, suffix = "def f(x):\n    ", "\n"
    shape = choose_shape(prefix, suffix, 16, "block")
    text = "    y = x * 2\n    return y\ndef g():\n"
    assert finish_completion(text, "stop", prefix, suffix, shape, "a.py", "    ") == "y = x * 2\n    return y"
    assert finish_completion("y = 1", "stop", prefix, suffix, shape, "a.py", "    ") == "y = 1"


def test_blank_lines_a_generation_starts_with_are_skipped_on_a_blank_cursor_line():
    """The cursor is on a fresh line already; a first line left empty would show nothing. The case is the
    quality benchmark's (seed 24, 8K): the next name of an export list, written after a line break at column 0."""
    from engine.inference.postprocess import finish_completion

    prefix, suffix = "export {\n  DataTag,\n  ", "\n  InferDataFromTag,\n} from './types'\n"
    shape = choose_shape(prefix, suffix, 16, "block")
    raw = "\nQueryKeyWithDataTag,\nMutationDefaults,\n"
    assert finish_completion(raw, "stop", prefix, suffix, shape, "index.ts", "  ") == "QueryKeyWithDataTag,"
    # at column 0 the model writes the indentation itself: it stays
    assert finish_completion(" \n\n  x = 1", "stop", "def f():\n", "\n", shape, "a.py") == "  x = 1"
    # code before the cursor on its line: the line break is the model's answer (this line ends here), kept
    assert finish_completion("\nfoo", "stop", "x = 1", "\n", choose_shape("x = 1", "\n", 16), "a.py") == ""


def test_a_body_completion_does_not_close_the_block_the_suffix_closes():
    prefix, suffix = "class A {\n  add(o) {\n    ", "\n  }\n}\n"
    shape = choose_shape(prefix, suffix, 16, "block")
    text = "// nothing to do when unsubscribed\n    }\n\n    remove(o) {"
    assert trim_completion(text, prefix, suffix, shape) == "// nothing to do when unsubscribed"
    # a block the completion opens keeps its own closer
    opened = "if (o) {\n      this.list.push(o)\n    }\n  }"
    assert trim_completion(opened, prefix, suffix, shape) == "if (o) {\n      this.list.push(o)\n    }"


_MAIN = '"""Main entry point"""\n\nfrom .main import main\n\n'


def test_a_markdown_fence_ends_a_completion_in_code():
    """An instruct-tuned model ends a block it wrote with a chat answer's closing fence: in a Python file
    that line (and the prose an answer puts after it) is not code (seen in the quality bench: stdlib
    unittest/__main__.py completed as ``main()`` then a line of three backticks)."""
    shape = choose_shape(_MAIN, "\n", 16)
    assert shape.multiline
    got = trim_completion('if __name__ == "__main__":\n    main()\n```\nThis runs the tests.', _MAIN, "\n", shape)
    assert got == 'if __name__ == "__main__":\n    main()'


def test_a_fence_is_kept_where_the_document_has_fences():
    """A Markdown file, or a docstring with an example block: the fence there is the text being written."""
    prefix = "# Usage\n\n```python\nimport tool\n"
    shape = choose_shape(prefix, "", 16)
    assert trim_completion("tool.run()\n```\n", prefix, "", shape) == "tool.run()\n```"
