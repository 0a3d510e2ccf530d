"""The text the index keeps for a definition: its header (signature) and its doc comment or docstring.

The header is pasted into prompts verbatim, so it is cut from the source bytes (not rebuilt from the
tree): from the start of the definition's first line up to its body.
"""

from __future__ import annotations

import re

import tree_sitter as ts

MAX_SIGNATURE = 1000
MAX_DOC = 600

_BODY_TYPES = frozenset({
    "block", "class_body", "declaration_list", "field_declaration_list", "compound_statement",
    "statement_block", "interface_body", "enum_body", "enum_class_body", "object_type", "function_body",
    "enum_variant_list", "body_statement", "enum_member_declaration_list", "enum_declaration_list",
    "struct_declaration_list", "constructor_body", "annotation_type_body", "record_body",
    "enum_member_list",
})
_FUNC_VALUES = frozenset({"arrow_function", "function_expression", "function", "generator_function"})
_WRAPPERS = frozenset({
    "export_statement", "decorated_definition", "template_declaration", "lexical_declaration",
    "variable_declaration", "type_declaration", "declaration", "field_declaration", "function_definition",
    "ambient_declaration",
})
_COMMENT_TYPES = frozenset({"comment", "line_comment", "block_comment", "multiline_comment"})
_SKIP_BEFORE_DOC = frozenset({"attribute_item", "decorator", "attribute_list", "annotation"})
_DOC_STRIP = re.compile(r"^\s*(?:/\*\*?|\*/|\*|///?!?|#+|--)\s?")


def _line_start(src: bytes, byte: int) -> int:
    return src.rfind(b"\n", 0, byte) + 1


def find_body(node: ts.Node) -> ts.Node | None:
    """The definition's body node (block, class body, ...), or None for a declaration without one."""
    b = node.child_by_field_name("body")
    if b is not None:
        return b
    v = node.child_by_field_name("value")
    if v is not None and v.type in _FUNC_VALUES:
        return v.child_by_field_name("body")
    for c in node.named_children:
        if c.type in _BODY_TYPES:
            return c
    t = node.child_by_field_name("type")  # Go: type Foo struct { ... }
    if t is not None:
        for c in t.named_children:
            if c.type in _BODY_TYPES:
                return c
    return None


def signature(src: bytes, node: ts.Node, name_node: ts.Node, body: ts.Node | None) -> str:
    """Header text: from the start of the definition's first line up to its body.

    Starting at the line start keeps modifiers written before the node on the same
    line (``export``, ``const``, ``pub``) so the header line appears verbatim.
    """
    start = _line_start(src, node.start_byte)
    if body is not None and body.start_byte > name_node.start_byte:
        end = body.start_byte
        prev = body.prev_sibling
        while prev is not None and prev.type in _COMMENT_TYPES:  # `def f():  # note`
            end = prev.start_byte
            prev = prev.prev_sibling
    else:
        end = src.find(b"\n", name_node.end_byte)
        if end < 0 or end > node.end_byte:
            end = max(node.end_byte, name_node.end_byte)
    text = src[start:end].decode("utf-8", "replace").rstrip()
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    if len(text) > MAX_SIGNATURE:
        ns = _line_start(src, name_node.start_byte) - start
        text = text[ns:ns + MAX_SIGNATURE]
    if body is None and text.endswith("{"):
        text = text[:-1].rstrip()
    return text.strip()


def python_doc(body: ts.Node | None) -> str:
    """The docstring: the string literal that opens the body."""
    if body is None or body.type != "block":
        return ""
    first = body.named_child(0)
    if first is None or first.type != "expression_statement":
        return ""
    s = first.named_child(0)
    if s is None or s.type != "string":
        return ""
    parts = [c.text.decode("utf-8", "replace") for c in s.named_children if c.type == "string_content"]
    return _clean_doc("".join(parts))


def _clean_doc(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines()]
    out = "\n".join(ln for ln in lines).strip()
    return out[:MAX_DOC]


def comment_doc(node: ts.Node) -> str:
    """The comments directly above the definition (or above its decorators / attributes), markers stripped."""
    outer = node
    while outer.parent is not None and outer.parent.type in _WRAPPERS:
        outer = outer.parent
    row = outer.start_point.row
    parts: list[str] = []
    sib = outer.prev_named_sibling
    while sib is not None:
        if sib.type in _SKIP_BEFORE_DOC:
            row = sib.start_point.row
        elif sib.type in _COMMENT_TYPES and sib.end_point.row >= row - 1:
            parts.append(sib.text.decode("utf-8", "replace"))
            row = sib.start_point.row
        else:
            break
        sib = sib.prev_named_sibling
        if len(parts) > 40:
            break
    if not parts:
        return ""
    lines: list[str] = []
    for p in reversed(parts):
        for ln in p.splitlines():
            ln = _DOC_STRIP.sub("", ln).rstrip()
            if ln.endswith("*/"):
                ln = ln[:-2].rstrip()
            lines.append(ln)
    return _clean_doc("\n".join(lines))
