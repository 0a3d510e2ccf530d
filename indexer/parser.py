"""Turn one file's bytes into definitions, references and imports (tree-sitter).

One query walk per file (definitions + scopes + imports from ``tags.scm`` and our patterns, plus every
identifier as ``@ref``, see indexer/languages.py), read with ``captures``, the cheapest way to visit
every node it names.  Names are paired with their definitions by ancestry, definitions nest into
qualified names by byte ranges, and every other identifier is a reference.  What comes out is plain
data (indexer/parsed.py) so a worker process can send it back cheaply.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import defaultdict

import tree_sitter as ts

from .import_statements import import_from_node
from .languages import LoadedLanguage, is_parseable, load
from .parsed import DefTuple, ImportTuple, ParsedFile, pack_refs
from .signatures import comment_doc, find_body, python_doc, signature

_C_DECL_CLIMB = frozenset({
    "pointer_declarator", "reference_declarator", "function_declarator", "parenthesized_declarator",
    "attributed_declarator", "qualified_identifier",
})
_C_TYPE_SPECIFIERS = frozenset({"enum_specifier", "struct_specifier", "union_specifier", "class_specifier"})
CLASS_KINDS = frozenset({"class", "interface", "struct", "enum", "trait", "impl", "object"})
_NON_SCOPE_KINDS = frozenset({"constant", "field", "property", "macro", "variable", "prototype", "type"})
_GO_RECV = re.compile(r"\*?\s*([A-Za-z_]\w*)\s*(?:\[[^\]]*\])?\s*\)\s*$")
_LONE_CR = re.compile(rb"\r(?!\n)")

# (definition node, name node, kind, is_scope): a scope (Rust ``impl``) qualifies names but is no definition
_RawDef = tuple[ts.Node, ts.Node, str, bool]


def _normalise_def_node(lang: str, node: ts.Node, kind: str) -> tuple[ts.Node, str] | None:
    """Fix up what tags.scm captured: the real definition node, a sharper kind, or None to drop it.

    C/C++ tags capture the declarator (the definition is the enclosing function or
    declaration) and match ``enum x`` / ``struct x`` type *uses* as definitions.
    """
    t = node.type
    if t in _C_TYPE_SPECIFIERS and node.child_by_field_name("body") is None:
        return None
    if t == "type_spec" and lang == "go":
        ty = node.child_by_field_name("type")
        if ty is not None and ty.type == "struct_type":
            return node, "struct"
        if ty is not None and ty.type == "interface_type":
            return node, "interface"
        return node, kind
    if t == "class_declaration" and lang == "kotlin":
        for c in node.children:
            if c.type == "interface":
                return node, "interface"
            if c.type == "identifier":
                break
        return node, kind
    if node.type == "function_declarator":
        n = node
        while n.parent is not None and n.parent.type in _C_DECL_CLIMB:
            n = n.parent
        p = n.parent
        if p is not None and p.type == "function_definition":
            return p, kind
        if p is not None and p.type in ("declaration", "field_declaration"):
            return p, "prototype"
        return node, kind
    return node, kind


def _raw_definitions(lang_name: str, caps: dict[str, list[ts.Node]]) -> list[_RawDef]:
    """Captured definition and scope nodes, each with its name node, normalised, unordered."""
    def_nodes: dict[tuple[int, int], tuple[ts.Node, str, bool]] = {}
    for key, nodes in caps.items():
        if key.startswith("definition."):
            kind, is_scope = key[11:], False
        elif key.startswith("scope."):
            kind, is_scope = key[6:], True
        else:
            continue
        for n in nodes:
            k = (n.start_byte, n.end_byte)
            # a node two patterns capture keeps the more telling kind: a module-level ``const`` whose value is a
            # function or an object is one (the JS/TS patterns for every top-level variable say "constant")
            if k not in def_nodes or def_nodes[k][1] == "constant":
                def_nodes[k] = (n, kind, is_scope)
    # Pair each @name with its nearest enclosing captured definition node: names do not
    # always precede bodies (C: `typedef struct {...} name_t;`), ancestry is unambiguous.
    paired: dict[tuple[int, int], ts.Node] = {}
    for name_node in caps.get("name", ()):
        a = name_node.parent
        while a is not None:
            k = (a.start_byte, a.end_byte)
            if k in def_nodes and def_nodes[k][0].type == a.type:
                prev = paired.get(k)
                if prev is None or name_node.start_byte < prev.start_byte:
                    paired[k] = name_node
                break
            a = a.parent
    seen: set[int] = set()  # start bytes of definition names (not references)
    raw: list[_RawDef] = []
    for k, name_node in paired.items():
        dn, kind, is_scope = def_nodes[k]
        if name_node.start_byte in seen:
            continue
        norm = _normalise_def_node(lang_name, dn, kind)
        if norm is None:
            continue
        seen.add(name_node.start_byte)
        raw.append((norm[0], name_node, norm[1], is_scope))
    return raw


def _imports(lang_name: str, caps: dict[str, list[ts.Node]]) -> list[ImportTuple]:
    """Import statements in source order, each with the @src capture inside it (if any)."""
    out: list[ImportTuple] = []
    imports = caps.get("import")
    if not imports:
        return out
    srcs = sorted(caps.get("src", ()), key=lambda n: n.start_byte)
    src_starts = [n.start_byte for n in srcs]
    for imp_node in sorted(imports, key=lambda n: n.start_byte):
        j = bisect_left(src_starts, imp_node.start_byte)
        src = srcs[j] if j < len(srcs) and srcs[j].end_byte <= imp_node.end_byte else None
        imp = import_from_node(lang_name, imp_node, src)
        if imp is not None and imp[0]:
            out.append(imp)
    return out


def _definitions(lang_name: str, src: bytes, raw: list[_RawDef]) -> list[DefTuple]:
    """Definition tuples in source order, qualified by the scopes and definitions that contain them."""
    defs: list[DefTuple] = []
    stack: list[tuple[int, str, str]] = []  # (end_byte, qualified, kind)
    for def_node, name_node, kind, is_scope in sorted(raw, key=lambda r: (r[0].start_byte, -r[0].end_byte)):
        sb, eb = def_node.start_byte, def_node.end_byte
        while stack and stack[-1][0] <= sb:
            stack.pop()
        # innermost enclosing scope that actually contains this node
        while stack and stack[-1][0] < eb:
            stack.pop()
        parent_q, parent_kind = (stack[-1][1], stack[-1][2]) if stack else (None, None)
        name = name_node.text.decode("utf-8", "replace")
        if is_scope:
            m = re.match(r"[\w:]+", name)
            name = (m.group(0) if m else name).split("::")[-1]
        qual_base = parent_q
        if lang_name == "go" and def_node.type == "method_declaration":
            recv = def_node.child_by_field_name("receiver")
            m = _GO_RECV.search(recv.text.decode("utf-8", "replace")) if recv is not None else None
            if m:
                qual_base = m.group(1)
                parent_q = qual_base
                parent_kind = "struct"
        qn_parent = name_node.parent
        if qn_parent is not None and qn_parent.type == "qualified_identifier":
            top = qn_parent
            while top.parent is not None and top.parent.type == "qualified_identifier":
                top = top.parent
            scope_txt = re.sub(r"<[^<>]*>", "", top.text.decode("utf-8", "replace")).replace("::", ".")
            qualified = (parent_q + "." if parent_q else "") + scope_txt.lstrip(".")
            parent_q = qualified.rsplit(".", 1)[0] if "." in qualified else parent_q
            parent_kind = "class"
        else:
            qualified = f"{qual_base}.{name}" if qual_base else name
        if is_scope:
            stack.append((eb, qualified, kind))
            continue
        if kind == "function" and parent_kind in CLASS_KINDS:
            kind = "method"
        body = find_body(def_node)
        doc = python_doc(body) if lang_name == "python" else comment_doc(def_node)
        sp, ep = def_node.start_point, def_node.end_point
        defs.append((
            name, qualified, kind, signature(src, def_node, name_node, body), doc,
            sp.row, ep.row, sb, eb, parent_q, name_node.start_point.row,
        ))
        if kind not in _NON_SCOPE_KINDS:
            stack.append((eb, qualified, kind))
    return defs


def _reference_offsets(caps: dict[str, list[ts.Node]], raw: list[_RawDef]) -> dict[bytes, list[int]]:
    """Start bytes of every identifier that is not a definition's own name, by name (names sorted, one-letter
    names dropped).  Per node only .text and .start_byte are touched: this is the hot loop."""
    groups: defaultdict[bytes, list[int]] = defaultdict(list)
    for n in caps.get("ref", ()):
        groups[n.text].append(n.start_byte)
    for _dn, name_node, _k, _s in raw:
        lst = groups.get(name_node.text)
        if lst is not None:
            try:
                lst.remove(name_node.start_byte)
            except ValueError:
                pass
    # capture order is not guaranteed to be document order; keep the blob canonical
    return {k: sorted(groups[k]) for k in sorted(k for k, v in groups.items() if len(k) > 1 and v)}


#: How deep item-level macro invocations nest before their bodies are no longer re-parsed (tokio nests 3).
_MAX_MACRO_DEPTH = 8


def _macro_body_items(lang_name: str, loaded: LoadedLanguage, src: bytes, caps: dict[str, list[ts.Node]],
                      depth: int = 0) -> tuple[list[_RawDef], list[ImportTuple]]:
    """Definitions and imports written inside item-level macro invocations (Rust ``cfg_rt! { ... }``).

    tree-sitter keeps a macro's body as an opaque token tree, and real crates wrap whole modules in
    such macros, so their functions, types and ``use`` lines would be invisible.  Each body at item
    level (in a file or an ``impl``/``trait``/``mod`` block) is parsed again as Rust source, restricted
    to the body's byte range so every node keeps its position in the file; nested invocations recurse.
    Identifiers inside token trees are already references of the outer parse, so only definitions
    and imports are taken from the re-parse.
    """
    raw: list[_RawDef] = []
    imports: list[ImportTuple] = []
    for body in caps.get("item_macro_body", ()):
        if depth >= _MAX_MACRO_DEPTH or body.child_count < 2:
            continue
        open_tok, close_tok = body.children[0], body.children[-1]
        if close_tok.start_byte <= open_tok.end_byte:
            continue
        inner = ts.Range(open_tok.end_point, close_tok.start_point, open_tok.end_byte, close_tok.start_byte)
        sub_tree = ts.Parser(loaded.language, included_ranges=[inner]).parse(src)
        sub_caps = ts.QueryCursor(loaded.query).captures(sub_tree.root_node)
        raw.extend(_raw_definitions(lang_name, sub_caps))
        imports.extend(_imports(lang_name, sub_caps))
        nested_raw, nested_imports = _macro_body_items(lang_name, loaded, src, sub_caps, depth + 1)
        raw.extend(nested_raw)
        imports.extend(nested_imports)
    return raw, imports


def lf_rows(src: bytes) -> bytes:
    """``src`` with each lone ``\\r`` (classic Mac line end) written ``\\n``: the grammars end lines, and
    tree-sitter counts rows, at ``\\n`` only, so such a file parsed as one line of errors (no definitions),
    while editors and LSP break lines at ``\\r`` too. One byte for one byte: every offset stays valid."""
    return _LONE_CR.sub(b"\n", src) if b"\r" in src else src


def parse_source(lang_name: str, src: bytes, tree: ts.Tree | None = None) -> ParsedFile:
    """Parse ``src`` (or use an already parsed ``tree``) and extract everything the store needs."""
    lines = src.count(b"\n") + (0 if src.endswith(b"\n") or not src else 1)
    if not is_parseable(lang_name):
        return ParsedFile(lines)
    loaded = load(lang_name)
    if tree is None:
        tree = loaded.parser.parse(src)
    caps = ts.QueryCursor(loaded.query).captures(tree.root_node)
    raw = _raw_definitions(lang_name, caps)
    imports = _imports(lang_name, caps)
    if "item_macro_body" in caps:
        macro_raw, macro_imports = _macro_body_items(lang_name, loaded, src, caps)
        raw.extend(macro_raw)
        imports = sorted(imports + macro_imports, key=lambda imp: imp[2])
    out = ParsedFile(lines, defs=_definitions(lang_name, src, raw), imports=imports)
    offsets = _reference_offsets(caps, raw)
    if offsets:
        out.refs_blob, out.ref_count = pack_refs(src, offsets)
    return out
