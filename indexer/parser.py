"""Turn one file's bytes into definitions, references and imports.

Everything returned is plain tuples / bytes so a worker process can pickle it
cheaply; the store turns it into rows.  Two tree-sitter queries run per file:
the definition+import query (from ``tags.scm`` + our patterns, via
``matches`` so names pair with their definition node) and an identifier query
(via ``captures``, the cheapest way to visit every identifier).
"""

from __future__ import annotations

import hashlib
import marshal
import re
from bisect import bisect_left
from collections import defaultdict
from itertools import chain

import numpy as np
from array import array
from dataclasses import dataclass, field

import tree_sitter as ts

from .languages import LoadedLanguage, is_parseable, load

# Definition tuple layout (kept positional for cheap pickling):
# (name, qualified_name, kind, signature, doc, start_line, end_line, start_byte, end_byte, parent, name_line)
DefTuple = tuple[str, str, str, str, str, int, int, int, int, "str | None", int]
# Import tuple: (module, names_csv, line)
ImportTuple = tuple[str, str, int]


@dataclass
class ParsedFile:
    lines: int
    defs: list[DefTuple] = field(default_factory=list)
    # marshal of {name: array('I', [line, col, ...]).tobytes()}: one opaque blob per file is far
    # cheaper to pickle across processes and to store than one row per name
    refs_blob: bytes = b""
    ref_count: int = 0
    imports: list[ImportTuple] = field(default_factory=list)

    @property
    def refs(self) -> dict[str, bytes]:
        return decode_refs(self.refs_blob)

    def ref_counts(self) -> dict[str, int]:
        return {n: len(b) // 8 for n, b in self.refs.items()}


def decode_refs(blob: bytes | None) -> dict[str, bytes]:
    return marshal.loads(blob) if blob else {}


def to_wire(p: ParsedFile) -> bytes:
    """marshal is several times faster than pickling the dataclass across the process pipe."""
    return marshal.dumps((p.lines, p.defs, p.refs_blob, p.ref_count, p.imports))


def from_wire(b: bytes) -> ParsedFile:
    lines, defs, blob, count, imports = marshal.loads(b)
    return ParsedFile(lines, defs, blob, count, imports)


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
_C_DECL_CLIMB = frozenset({
    "pointer_declarator", "reference_declarator", "function_declarator", "parenthesized_declarator",
    "attributed_declarator", "qualified_identifier",
})
_C_TYPE_SPECIFIERS = frozenset({"enum_specifier", "struct_specifier", "union_specifier", "class_specifier"})
CLASS_KINDS = frozenset({"class", "interface", "struct", "enum", "trait", "impl", "object"})
CONTAINER_KINDS = frozenset({"class", "interface", "module", "struct", "enum", "trait", "impl", "namespace", "object"})
_NON_SCOPE_KINDS = frozenset({"constant", "field", "property", "macro", "variable", "prototype", "type"})
_GO_RECV = re.compile(r"\*?\s*([A-Za-z_]\w*)\s*(?:\[[^\]]*\])?\s*\)\s*$")
_DOC_STRIP = re.compile(r"^\s*(?:/\*\*?|\*/|\*|///?!?|#+|--)\s?")


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def content_skip_reason(data: bytes, max_line_length: int) -> str | None:
    """Reasons found by looking at the bytes: binary, not UTF-8, minified."""
    if b"\x00" in data:
        return "binary"
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return "invalid_utf8"
    if len(data) > 20_000:
        nl = data.count(b"\n") + 1
        if len(data) / nl > max_line_length or (nl < 5 and len(data) > 50_000):
            return "minified"
    return None


def _line_start(src: bytes, byte: int) -> int:
    return src.rfind(b"\n", 0, byte) + 1


def _find_body(node: ts.Node) -> ts.Node | None:
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


def _signature(src: bytes, node: ts.Node, name_node: ts.Node, body: ts.Node | None) -> str:
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


def _python_doc(body: ts.Node | None) -> str:
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


def _comment_doc(node: ts.Node) -> str:
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


def _strip_quotes(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s[0] in "\"'`<" and s[-1] in "\"'`>":
        return s[1:-1]
    return s


def _import_from_match(lang: str, caps: dict[str, list[ts.Node]]) -> ImportTuple | None:
    node = caps["import"][0]
    line = node.start_point.row
    src_nodes = caps.get("src")
    if lang == "python":
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
    if src_nodes:
        s = src_nodes[0]
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
        names: list[str] = []
        if lang in ("javascript", "typescript", "tsx") and node.type == "import_statement":
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
        return (_strip_quotes(text), ",".join(names), line)
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


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the common prefix (binary search over C-speed slice compares)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _point(src: bytes, byte: int) -> tuple[int, int]:
    return src.count(b"\n", 0, byte), byte - (src.rfind(b"\n", 0, byte) + 1)


def reparse(lang_name: str, old_src: bytes, old_tree: ts.Tree, new_src: bytes) -> ts.Tree:
    """Incremental re-parse of an edited buffer: tell tree-sitter what changed, reuse the rest.

    The edit is the span between the common prefix and the common suffix, which is
    exact for a single edit and still correct (just less reuse) for several.
    """
    start = _common_prefix(old_src, new_src)
    limit = min(len(old_src), len(new_src)) - start
    lo, hi = 0, limit
    while lo < hi:  # common suffix, not overlapping the prefix
        mid = (lo + hi + 1) // 2
        if old_src[len(old_src) - mid:] == new_src[len(new_src) - mid:]:
            lo = mid
        else:
            hi = mid - 1
    old_end, new_end = len(old_src) - lo, len(new_src) - lo
    old_tree.edit(start_byte=start, old_end_byte=old_end, new_end_byte=new_end,
                  start_point=_point(old_src, start), old_end_point=_point(old_src, old_end),
                  new_end_point=_point(new_src, new_end))
    return load(lang_name).parser.parse(new_src, old_tree)


def parse_source(lang_name: str, src: bytes, loaded: LoadedLanguage | None = None,
                 tree: ts.Tree | None = None) -> ParsedFile:
    """Parse ``src`` (or use an already parsed ``tree``) and extract everything the store needs."""
    lines = src.count(b"\n") + (0 if src.endswith(b"\n") or not src else 1)
    if not is_parseable(lang_name):
        return ParsedFile(lines)
    L = loaded or load(lang_name)
    if tree is None:
        tree = L.parser.parse(src)
    root = tree.root_node
    out = ParsedFile(lines)

    # ---- one query walk: definitions, scopes, imports and every identifier
    caps = ts.QueryCursor(L.query).captures(root)
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
            if k not in def_nodes:
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
    raw: list[tuple[ts.Node, ts.Node, str, bool]] = []  # (def node, name node, kind, is_scope)
    for k, name_node in paired.items():
        dn, kind, is_scope = def_nodes[k]
        if name_node.start_byte in seen:
            continue
        norm = _normalise_def_node(lang_name, dn, kind)
        if norm is None:
            continue
        seen.add(name_node.start_byte)
        raw.append((norm[0], name_node, norm[1], is_scope))

    imports = caps.get("import")
    if imports:
        srcs = sorted(caps.get("src", ()), key=lambda n: n.start_byte)
        src_starts = [n.start_byte for n in srcs]
        for imp_node in sorted(imports, key=lambda n: n.start_byte):
            j = bisect_left(src_starts, imp_node.start_byte)
            m: dict[str, list[ts.Node]] = {"import": [imp_node]}
            if j < len(srcs) and srcs[j].end_byte <= imp_node.end_byte:
                m["src"] = [srcs[j]]
            imp = _import_from_match(lang_name, m)
            if imp is not None and imp[0]:
                out.imports.append(imp)

    raw.sort(key=lambda r: (r[0].start_byte, -r[0].end_byte))
    stack: list[tuple[int, str, str]] = []  # (end_byte, qualified, kind)
    for def_node, name_node, kind, is_scope in raw:
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
        body = _find_body(def_node)
        doc = _python_doc(body) if lang_name == "python" else _comment_doc(def_node)
        sp, ep = def_node.start_point, def_node.end_point
        out.defs.append((
            name, qualified, kind, _signature(src, def_node, name_node, body), doc,
            sp.row, ep.row, sb, eb, parent_q, name_node.start_point.row,
        ))
        if kind not in _NON_SCOPE_KINDS:
            stack.append((eb, qualified, kind))

    # ---- references: every identifier that is not a definition's own name.
    # Per node we only touch .text and .start_byte (the hot loop); lines and columns
    # are computed for all occurrences at once with numpy.
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
    keys = sorted(k for k, v in groups.items() if len(k) > 1 and v)
    for k in keys:
        groups[k].sort()  # capture order is not guaranteed to be document order; keep the blob canonical
    if keys:
        counts = [len(groups[k]) for k in keys]
        offs = np.fromiter(chain.from_iterable(groups[k] for k in keys), dtype=np.int64, count=sum(counts))
        nl = np.flatnonzero(np.frombuffer(src, dtype=np.uint8) == 10)
        lines_arr = np.searchsorted(nl, offs)
        starts = np.where(lines_arr > 0, nl[np.maximum(lines_arr - 1, 0)] + 1, 0)
        buf = np.empty(2 * len(offs), dtype=np.uint32)
        buf[0::2] = lines_arr
        buf[1::2] = offs - starts
        raw_bytes = buf.tobytes()
        refs: dict[str, bytes] = {}
        pos = 0
        for k, c in zip(keys, counts):
            refs[k.decode("utf-8", "replace")] = raw_bytes[pos:pos + 8 * c]
            pos += 8 * c
        out.refs_blob = marshal.dumps(refs)
        out.ref_count = len(offs)
    return out


def unpack_positions(blob: bytes) -> list[tuple[int, int]]:
    a = array("I")
    a.frombytes(blob)
    return list(zip(a[0::2], a[1::2]))
