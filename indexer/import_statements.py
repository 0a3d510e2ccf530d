"""Read an import statement matched by a language's query: the module as written and the names it brings in.

The query captures the statement (``@import``) and, where the grammar has one, the node holding the
module (``@src``); each language spells the rest differently.  The resolver (indexer/resolve.py) turns
the module text into repository files.
"""

from __future__ import annotations

import re

import tree_sitter as ts

from .parsed import ImportTuple


def _strip_quotes(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s[0] in "\"'`<" and s[-1] in "\"'`>":
        return s[1:-1]
    return s


def _python_import(node: ts.Node, line: int) -> ImportTuple | None:
    if node.type == "import_statement":
        mods = []
        for c in node.named_children:
            t = c.child_by_field_name("name") if c.type == "aliased_import" else c
            if t is not None:
                mods.append(t.text.decode())
        return (",".join(mods), "", line) if mods else None
    m = node.child_by_field_name("module_name")
    if m is None:
        return None
    names = []
    for c in node.children_by_field_name("name"):
        t = c.child_by_field_name("name") if c.type == "aliased_import" else c
        if t is not None:
            names.append(t.text.decode())
    if any(c.type == "wildcard_import" for c in node.named_children):
        names.append("*")
    return (m.text.decode(), ",".join(names), line)


def _js_imported_names(node: ts.Node) -> list[str]:
    names: list[str] = []
    for c in node.named_children:
        if c.type == "import_clause":
            stack = [c]
            while stack:
                x = stack.pop()
                if x.type == "import_specifier":
                    nm = x.child_by_field_name("name")
                    if nm is not None:
                        names.append(nm.text.decode())
                elif x.type == "identifier" and x.parent is not None and x.parent.type == "import_clause":
                    names.append("default")
                elif x.type == "namespace_import":
                    names.append("*")
                else:
                    stack.extend(x.named_children)
    return names


def _import_with_source(lang: str, node: ts.Node, s: ts.Node, line: int) -> ImportTuple:
    text = s.text.decode("utf-8", "replace")
    if lang == "rust":
        if s.type == "identifier":
            return ("mod:" + text, "", line)
        text = re.sub(r"\s+", "", text)
        names = []
        if "{" in text:
            inner = text[text.index("{") + 1:text.rindex("}") if "}" in text else None]
            names = [p.split("::")[-1].split(" as ")[0] for p in inner.split(",") if p]
        else:
            names = [text.split("::")[-1]]
        return (text, ",".join(n for n in names if n), line)
    if lang == "kotlin":
        return (text, text.rsplit(".", 1)[-1], line)
    names = []
    if lang in ("javascript", "typescript", "tsx") and node.type == "import_statement":
        names = _js_imported_names(node)
    return (_strip_quotes(text), ",".join(names), line)


def _import_from_statement_text(lang: str, node: ts.Node, line: int) -> ImportTuple | None:
    text = node.text.decode("utf-8", "replace")
    if lang == "java":
        t = re.sub(r"^\s*import\s+(static\s+)?|;\s*$", "", text).strip()
        return (t, t.rsplit(".", 1)[-1], line)
    if lang == "csharp":
        t = re.sub(r"^\s*(global\s+)?using\s+(static\s+)?|;\s*$", "", text).strip()
        if "=" in t:
            t = t.split("=", 1)[1].strip()
        return (t, "", line)
    if lang == "php":
        t = text.strip().lstrip("\\")
        t = t.split(" as ")[0].strip()
        return (t, t.rsplit("\\", 1)[-1], line)
    return None


def import_from_node(lang: str, node: ts.Node, src: ts.Node | None) -> ImportTuple | None:
    """(module, comma-separated names, line) of the import statement ``node``; ``src`` is its @src capture."""
    line = node.start_point.row
    if lang == "python":
        return _python_import(node, line)
    if src is not None:
        return _import_with_source(lang, node, src, line)
    return _import_from_statement_text(lang, node, line)
