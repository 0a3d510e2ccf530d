"""Turn raw FIM output into what an editor should show.

Why each rule: small models may begin by writing again the text before the cursor (``echo``: cut it off);
models keep going past the hole and re-type the code after the cursor (cut where the completion starts
repeating the suffix); a completion inside a line must not spill onto the next lines
(single-line mode); indentation must follow the block the cursor is in; and ghost text longer than a
screenful is noise (bound the lines).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from engine.inference.echo import strip_echo


@dataclass
class CompletionShape:
    multiline: bool
    max_lines: int
    syntax: str | None = None  # what tree-sitter saw at the cursor, when it decided


# Node types (substrings) that force a single-line completion when they enclose the cursor.
_SINGLE_LINE_NODES = (
    ("comment", "comment"),
    ("string", "string"),
    ("template_string", "string"),
    ("argument_list", "arguments"),
    ("arguments", "arguments"),
    ("parameters", "arguments"),
    ("formal_parameters", "arguments"),
    ("parameter_list", "arguments"),
    ("subscript", "arguments"),
)
_BLOCK_NODES = ("block", "body", "compound_statement", "statement_block", "declaration_list",
                "class_body", "field_declaration_list", "suite", "module", "program", "source_file",
                "translation_unit")
_PARSE_LOCK = threading.Lock()


@lru_cache(maxsize=16)
def _parser_for(lang: str) -> Any:
    """One parser per language for this module (parsers are not shared with the indexer's threads)."""
    import tree_sitter as ts

    from indexer.languages import load

    return ts.Parser(load(lang).language)


def syntax_at_cursor(path: str, text: str, offset: int) -> str | None:
    """``"comment"``, ``"string"``, ``"arguments"``, ``"block"`` or None (unknown language / no opinion).

    Why tree-sitter and not regexes: whether ``(`` on the line is still open, or whether the cursor is
    inside a triple-quoted string that began 20 lines up, is syntax; a 1,000-line file parses in ~2 ms.
    """
    try:
        from indexer.languages import is_parseable, language_for_path

        lang = language_for_path(path)
        if not is_parseable(lang):
            return None
        assert lang is not None
        data = text.encode("utf-8", "surrogatepass")
        byte = len(text[:offset].encode("utf-8", "surrogatepass"))
        with _PARSE_LOCK:
            tree = _parser_for(lang).parse(data)
    except Exception:  # noqa: BLE001 - a missing grammar must never break completion
        return None
    node = tree.root_node.descendant_for_byte_range(max(0, byte - 1), byte)
    while node is not None:
        kind = node.type
        # The cursor right after a closing quote/paren is outside the node.
        inside = node.start_byte < byte < node.end_byte or (node.end_byte == byte and node.has_error)
        if inside:
            for needle, label in _SINGLE_LINE_NODES:
                if needle in kind:
                    return label
            if kind == "ERROR":
                return _open_bracket(node, byte)
            if kind in _BLOCK_NODES or kind.endswith("_body"):
                return "block"
        node = node.parent
    return "block"


def _open_bracket(error: Any, byte: int) -> str:
    """Inside unfinished code (an ERROR node): an unclosed ``(``/``[`` before the cursor means arguments."""
    stack: list[str] = []
    pending = [error]
    tokens: list[Any] = []
    while pending:  # the ERROR node's leaves before the cursor, in order
        node = pending.pop()
        if node.start_byte >= byte:
            continue
        if node.child_count == 0:
            tokens.append(node)
        else:
            pending.extend(reversed(node.children))
    for tok in tokens:
        if tok.type in ("(", "[", "{"):
            stack.append(tok.type)
        elif tok.type in (")", "]", "}") and stack:
            stack.pop()
    return "arguments" if stack and stack[-1] in ("(", "[") else "block"


def choose_shape(prefix: str, suffix: str, max_lines: int, syntax: str | None = None) -> CompletionShape:
    """Single-line when the cursor sits before code on the same line or mid-expression; else multi-line.

    When tree-sitter says the cursor is inside a string, comment or argument list, single line. Otherwise a
    cursor at the end of a line that opens a block (``:``, ``{``, ``(``, ``=>``) or on an empty line (an
    empty block body) gets a multi-line completion, as in Copilot.
    """
    if syntax in ("comment", "string", "arguments"):
        current_line = prefix.rsplit("\n", 1)[-1]
        # An open call/list at the end of a line (``foo(`` then Enter) still wants its arguments laid out.
        if not (syntax == "arguments" and current_line.strip() == "" and not suffix.split("\n", 1)[0].strip()):
            return CompletionShape(False, 1, syntax)
    shape = _shape_from_text(prefix, suffix, max_lines)
    shape.syntax = syntax
    return shape


def _shape_from_text(prefix: str, suffix: str, max_lines: int) -> CompletionShape:
    rest_of_line = suffix.split("\n", 1)[0]
    if rest_of_line.strip() and rest_of_line.strip() not in (")", "]", "}", ");", "),", "];", "};", "})", "):"):
        return CompletionShape(False, 1)
    current_line = prefix.rsplit("\n", 1)[-1]
    if current_line.strip() == "" or current_line.rstrip().endswith((":", "{", "(", "[", "=>", "->", "do", "then")):
        return CompletionShape(True, max_lines)
    return CompletionShape(False, 1)


def _first_suffix_line(suffix: str) -> str:
    for line in suffix.split("\n"):
        if line.strip():
            return line.strip()
    return ""


_FENCE = re.compile(r"^[ \t]*```", re.M)  # a Markdown code fence line
_LEADING_BLANK_LINES = re.compile(r"\A(?:[ \t]*\r?\n)+")  # whole blank lines at the start of a generation


def trim_completion(text: str, prefix: str, suffix: str, shape: CompletionShape) -> str:
    """Cut off an echo of the text before the cursor (``echo``), apply the shape, stop at suffix repetition,
    keep indentation consistent, strip trailing space."""
    text = strip_echo(text.replace("\r\n", "\n"), prefix)  # what the model wrote again before its answer
    if not text:
        return ""
    lines = text.split("\n")
    if not shape.multiline:
        lines = lines[:1]
    else:
        lines = lines[: shape.max_lines]
    # A chat answer's closing fence (instruct-tuned models write one after a block) is no code, nor is the
    # prose after it; a document with fences of its own (Markdown, an example in a docstring) keeps them.
    fence = next((i for i, line in enumerate(lines) if _FENCE.match(line)), None)
    if fence is not None and not _FENCE.search(prefix):  # the prefix is scanned only when a fence was written
        lines = lines[:fence] or [""]
    # Stop where the model starts re-typing the code after the cursor.
    anchor = _first_suffix_line(suffix)
    if anchor and len(anchor) >= 3:
        for i, line in enumerate(lines):
            if i > 0 and line.strip() == anchor:
                lines = lines[:i]
                break
    rest_of_line = suffix.split("\n", 1)[0]
    if rest_of_line.strip() and lines and lines[0].endswith(rest_of_line.strip()) and len(lines[0]) > len(rest_of_line.strip()):
        lines[0] = lines[0][: -len(rest_of_line.strip())]
    # Indentation: continuation lines may not dedent below the cursor line's block when it opens one.
    if shape.multiline and len(lines) > 1:
        cursor_line = prefix.rsplit("\n", 1)[-1]
        base = len(cursor_line) - len(cursor_line.lstrip())
        kept = [lines[0]]
        for line in lines[1:]:
            indent = len(line) - len(line.lstrip())
            if line.strip() and indent < base:
                break  # the completion left the block the cursor is in
            kept.append(line)
        lines = _before_suffix_closer(kept, suffix)
    while len(lines) > 1 and not lines[-1].strip():
        lines.pop()
    return "\n".join(line.rstrip() if i < len(lines) - 1 else line for i, line in enumerate(lines)).rstrip()


def _before_suffix_closer(lines: list[str], suffix: str) -> list[str]:
    """Stop before a line that closes a bracket the completion did not open, when the code after the cursor
    begins by closing one the same way: the model is re-typing the block's end (``}``) that is already
    there — the suffix rule above skips anchors this short, and one more ``}`` is a syntax error."""
    anchor = _first_suffix_line(suffix)
    if not anchor or anchor[0] not in _CLOSERS:
        return lines
    depth = 0
    for i, line in enumerate(lines):
        if i > 0 and depth <= 0 and line.strip()[:1] == anchor[0]:
            return lines[:i]
        depth += _bracket_depth(line)
    return lines


def finish_completion(text: str, finish_reason: str, prefix: str, suffix: str, shape: CompletionShape,
                      path: str, indent: str = "") -> str:
    """What the editor is shown of a generation (``text``) that ended for ``finish_reason``.

    On a blank cursor line, blank lines the generation starts with are skipped: the cursor already is on a
    fresh line, and a first line left empty would show nothing (a single-line completion) or push the code
    down (the 0.5B model, its prompt ending at the line break, wrote ``\nQueryKeyWithDataTag,`` for the next
    name of an export list; seed 24 of ``bench/quality_bench.py``, 8K). With ``indent`` (the cursor line's
    indentation, left out of the prompt: ``ContextResult.indent``) the
    first line's leading whitespace is dropped — the editor already shows the indentation. Then the
    shape's trim (``prefix``: the text before the cursor, indentation included). Then, for a generation
    cut short, only what is whole: one the deadline interrupted keeps its longest start that parses
    (``trim_interrupted``); a multi-line one the token limit ended loses its last line when that is where
    the limit fell (a half-written statement or a dangling ``if x:`` is worse than one line less); a
    cancelled one shows nothing."""
    if finish_reason == "cancelled":
        return ""
    if not prefix.rsplit("\n", 1)[-1].strip():
        text = _LEADING_BLANK_LINES.sub("", text, count=1)
    if indent:
        text = text.lstrip(" \t")
    completion = trim_completion(text, prefix, suffix, shape)
    if finish_reason == "deadline":
        return trim_interrupted(completion, prefix, suffix, path)
    if finish_reason == "length" and shape.multiline:
        return drop_cut_line(completion, text)
    return completion


def drop_cut_line(completion: str, text: str) -> str:
    """``completion`` without its last line when that line is the last line of ``text``, the generation
    the token limit cut (unless the generation ended on a line break: then every line is whole). The
    first line stays: something is better than nothing when the model wrote one long line."""
    lines = completion.split("\n")
    if len(lines) < 2 or text.endswith("\n"):
        return completion
    generated = text.replace("\r\n", "\n").rstrip().split("\n")
    if len(generated) != len(lines) or not generated[-1].rstrip().endswith(lines[-1].strip()):
        return completion  # the trim already ended the completion on an earlier, whole line
    return "\n".join(lines[:-1]).rstrip()


# -- completions cut by the deadline -----------------------------------------------------------------
_IDENTIFIER_TAIL = re.compile(r"[\w$]+$")
_CALLEE_TAIL = re.compile(r"[\w$.]+$")
_OPENERS, _CLOSERS = "([{", ")]}"
_DANGLING = set(".,+-*/%=&|^<>!~([{:\\@?")  # an expression or statement cannot end on these
_MAX_CUTS = 12


def _syntax_errors(lang: str, text: str) -> int:
    """ERROR and MISSING nodes in ``text`` (tree-sitter), the measure of 'does it parse'."""
    with _PARSE_LOCK:
        tree = _parser_for(lang).parse(text.encode("utf-8", "surrogatepass"))
    count = 0
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if not node.has_error and not node.is_missing:
            continue
        if node.type == "ERROR" or node.is_missing:
            count += 1
        stack.extend(node.children)
    return count


def _bracket_depth(text: str) -> int:
    """Brackets ``text`` opens minus those it closes."""
    return sum(text.count(c) for c in _OPENERS) - sum(text.count(c) for c in _CLOSERS)


def _balanced(text: str) -> bool:
    """No bracket opened in ``text`` left open, and no quote left open on its last line (closing the
    prefix's brackets is fine: the completion may finish a call the user began)."""
    last = text.rsplit("\n", 1)[-1]
    return _bracket_depth(text) <= 0 and all(last.count(q) % 2 == 0 for q in ("'", '"', "`"))


def trim_interrupted(text: str, prefix: str, suffix: str, path: str) -> str:
    """A completion the deadline cut mid-generation: keep its longest start that ends on a whole token and
    parses, or nothing. Why: the last token may be half an identifier (``adj`` for ``adjacency_spectrum``,
    ``raise`` for ``raise_error()``) or leave a call open; shown (or cached) that is worse than no answer.

    The trailing identifier is always dropped (it cannot be known to be whole), and of several lines the
    last; then cut points are tried
    from the end: brackets opened by the completion closed, quotes closed, and with a grammar for the file,
    no more syntax errors in prefix + completion + suffix than in prefix + suffix."""
    if "\n" in text.rstrip():
        text = text.rstrip().rsplit("\n", 1)[0]  # several lines: the last one was cut, the others are whole
    else:
        text = _IDENTIFIER_TAIL.sub("", text).rstrip()
    if not text.strip():
        return ""
    lang = None
    try:
        from indexer.languages import is_parseable, language_for_path

        found = language_for_path(path)
        lang = found if is_parseable(found) else None
    except Exception:  # noqa: BLE001 - no grammar: the token and bracket rules alone decide
        lang = None
    baseline = None
    candidate = text
    for _ in range(_MAX_CUTS):
        candidate = candidate.rstrip()
        if not candidate.strip():
            return ""
        if _balanced(candidate) and candidate[-1] not in _DANGLING:
            if lang is None:
                return candidate
            if baseline is None:
                baseline = _syntax_errors(lang, prefix + suffix)
            if _syntax_errors(lang, prefix + candidate + suffix) <= baseline:
                return candidate
        # back to the previous whole-token boundary: drop the last word, or else the last symbol
        word = _IDENTIFIER_TAIL.search(candidate)
        if word:
            candidate = candidate[:word.start()]
        elif candidate[-1] in _OPENERS:  # a call or index whose arguments were cut: drop its callee too
            candidate = _CALLEE_TAIL.sub("", candidate[:-1])
        else:
            candidate = candidate[:-1]
    return ""
