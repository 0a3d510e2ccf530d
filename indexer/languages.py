"""Language registry: file extensions, tree-sitter grammars and the queries we run.

Definition patterns come from each grammar wheel's own ``queries/tags.scm``
(reference-only patterns are disabled: we collect references ourselves from
every identifier node, which is both more complete and cheaper than running
the call-only reference patterns).  Where ``tags.scm`` misses definitions that
ctags reports (constructors, enums, records, namespaces, C++ out-of-line
methods, ...) we append patterns.  Kotlin ships no ``tags.scm``; its patterns
are all ours.  Import statements are matched by patterns appended to the same
query so the tree is walked once for definitions and imports.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from functools import lru_cache

import tree_sitter as ts


@dataclass(frozen=True)
class LangSpec:
    name: str
    module: str  # the grammar wheel's module
    func: str = "language"  # its function returning the language
    tags_from: tuple[str, ...] = ()  # modules whose queries/tags.scm to use (in order)
    extra: str = ""  # our additional definition / import / scope patterns
    ident_types: tuple[str, ...] = ("identifier",)  # node types that are identifiers (references)


_JS_EXTRA = r"""
(variable_declarator name: (identifier) @name value: (object)) @definition.object
(assignment_expression left: (member_expression property: (property_identifier) @name) right: (object)) @definition.object
(method_definition name: (_) @name) @definition.method
(program (lexical_declaration (variable_declarator name: (identifier) @name) @definition.constant))
(program (variable_declaration (variable_declarator name: (identifier) @name) @definition.constant))
(program (export_statement declaration: (lexical_declaration (variable_declarator name: (identifier) @name) @definition.constant)))
(program (export_statement declaration: (variable_declaration (variable_declarator name: (identifier) @name) @definition.constant)))
(import_statement source: (string) @src) @import
(export_statement source: (string) @src) @import
(call_expression function: (identifier) @_fn arguments: (arguments . (string) @src) (#eq? @_fn "require")) @import
(call_expression function: (import) arguments: (arguments . (string) @src)) @import
"""

_TS_EXTRA = _JS_EXTRA + r"""
(abstract_method_signature name: (_) @name) @definition.method
(property_signature name: (property_identifier) @name type: (type_annotation (function_type))) @definition.method
(class_declaration name: (type_identifier) @name) @definition.class
(type_alias_declaration name: (type_identifier) @name) @definition.type
(enum_declaration name: (identifier) @name) @definition.enum
(internal_module name: (_) @name) @definition.module
(public_field_definition name: (property_identifier) @name value: [(arrow_function) (function_expression)]) @definition.method
(import_require_clause source: (string) @src) @import
"""

_C_EXTRA = r"""
(union_specifier name: (type_identifier) @name body: (_)) @definition.class
(enum_specifier name: (type_identifier) @name body: (_)) @definition.enum
(preproc_function_def name: (identifier) @name) @definition.macro
(preproc_def name: (identifier) @name) @definition.macro
(function_declarator declarator: (parenthesized_declarator (identifier) @name)) @definition.function
(preproc_include path: (_) @src) @import
"""

_CPP_EXTRA = _C_EXTRA + r"""
(function_declarator declarator: (qualified_identifier name: (_) @name)) @definition.method
(function_declarator declarator: (destructor_name) @name) @definition.method
(function_declarator declarator: (operator_name) @name) @definition.method
(namespace_definition name: (_) @name) @definition.module
(union_specifier name: (type_identifier) @name body: (_)) @definition.class
(alias_declaration name: (type_identifier) @name) @definition.type
(concept_definition name: (identifier) @name) @definition.type
"""

#: Our patterns per language, appended to the grammar's tags.scm: definitions it misses, imports, scopes.
_EXTRA: dict[str, str] = {
    "python": r"""
(assignment left: (identifier) @name right: (lambda)) @definition.function
(import_statement) @import
(import_from_statement) @import
""",
    "javascript": _JS_EXTRA + "(field_definition property: (property_identifier) @name value: [(arrow_function) (function_expression)]) @definition.method",
    "typescript": _TS_EXTRA,
    "tsx": _TS_EXTRA,
    "go": r"""
(type_alias name: (type_identifier) @name) @definition.type
(method_elem name: (field_identifier) @name) @definition.method
(import_spec path: (_) @src) @import
""",
    "rust": r"""
(function_signature_item name: (identifier) @name) @definition.method
(const_item name: (identifier) @name) @definition.constant
(static_item name: (identifier) @name) @definition.constant
(impl_item type: (_) @name) @scope.impl
(use_declaration argument: (_) @src) @import
(mod_item name: (identifier) @src !body) @import
(source_file (macro_invocation (token_tree) @item_macro_body))
(declaration_list (macro_invocation (token_tree) @item_macro_body))
""",
    "java": r"""
(enum_declaration name: (identifier) @name) @definition.enum
(record_declaration name: (identifier) @name) @definition.class
(constructor_declaration name: (identifier) @name) @definition.method
(annotation_type_declaration name: (identifier) @name) @definition.interface
(annotation_type_element_declaration name: (identifier) @name) @definition.method
(import_declaration) @import
""",
    "kotlin": r"""
(class_declaration name: (identifier) @name) @definition.class
(object_declaration name: (identifier) @name) @definition.class
(function_declaration name: (identifier) @name) @definition.function
(type_alias type: (identifier) @name) @definition.type
(source_file (property_declaration (variable_declaration (identifier) @name)) @definition.constant)
(companion_object (class_body (property_declaration (variable_declaration (identifier) @name)) @definition.constant))
(object_declaration (class_body (property_declaration (variable_declaration (identifier) @name)) @definition.constant))
(import (qualified_identifier) @src) @import
""",
    "c": _C_EXTRA,
    "cpp": _CPP_EXTRA,
    "csharp": r"""
(struct_declaration name: (identifier) @name) @definition.class
(enum_declaration name: (identifier) @name) @definition.enum
(record_declaration name: (identifier) @name) @definition.class
(constructor_declaration name: (identifier) @name) @definition.method
(property_declaration name: (identifier) @name) @definition.property
(delegate_declaration name: (identifier) @name) @definition.type
(using_directive) @import
""",
    "ruby": r"""
(call method: (identifier) @_fn arguments: (argument_list . (string) @src) (#match? @_fn "^(require|require_relative|load)$")) @import
""",
    "php": r"""
(enum_declaration name: (name) @name) @definition.enum
(namespace_use_clause) @import
(require_once_expression (string) @src) @import
(require_expression (string) @src) @import
(include_expression (string) @src) @import
(include_once_expression (string) @src) @import
""",
}

_JS_TAGS = ("tree_sitter_javascript",)
_TS_TAGS = ("tree_sitter_javascript", "tree_sitter_typescript")
_TYPED_IDENTS = ("identifier", "type_identifier", "field_identifier")
_TS_IDENTS = ("identifier", "property_identifier", "shorthand_property_identifier", "type_identifier")

#: language -> (grammar module, its language function, modules whose tags.scm to use, identifier node types)
_GRAMMARS: dict[str, tuple[str, str, tuple[str, ...], tuple[str, ...]]] = {
    "python": ("tree_sitter_python", "language", ("tree_sitter_python",), ("identifier",)),
    "javascript": ("tree_sitter_javascript", "language", _JS_TAGS,
                   ("identifier", "property_identifier", "shorthand_property_identifier",
                    "private_property_identifier")),
    "typescript": ("tree_sitter_typescript", "language_typescript", _TS_TAGS, _TS_IDENTS),
    "tsx": ("tree_sitter_typescript", "language_tsx", _TS_TAGS, _TS_IDENTS),
    "go": ("tree_sitter_go", "language", ("tree_sitter_go",), _TYPED_IDENTS),
    "rust": ("tree_sitter_rust", "language", ("tree_sitter_rust",), _TYPED_IDENTS),
    "java": ("tree_sitter_java", "language", ("tree_sitter_java",), ("identifier", "type_identifier")),
    "kotlin": ("tree_sitter_kotlin", "language", (), ("identifier",)),  # ships no tags.scm
    "c": ("tree_sitter_c", "language", ("tree_sitter_c",), _TYPED_IDENTS),
    "cpp": ("tree_sitter_cpp", "language", ("tree_sitter_cpp",), _TYPED_IDENTS + ("namespace_identifier",)),
    "csharp": ("tree_sitter_c_sharp", "language", ("tree_sitter_c-sharp",), ("identifier",)),
    "ruby": ("tree_sitter_ruby", "language", ("tree_sitter_ruby",), ("identifier", "constant")),
    "php": ("tree_sitter_php", "language_php", ("tree_sitter_php",), ("name",)),
}

#: The languages we parse, by name.
LANGS: dict[str, LangSpec] = {
    name: LangSpec(name, module, func, tags_from, _EXTRA[name], ident_types)
    for name, (module, func, tags_from, ident_types) in _GRAMMARS.items()
}

EXTENSIONS: dict[str, str] = {
    ".py": "python", ".pyi": "python", ".pyw": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".kt": "kotlin", ".kts": "kotlin",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".c++": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp",
    ".h++": "cpp", ".ipp": "cpp", ".tpp": "cpp", ".inl": "cpp",
    ".cs": "csharp",
    ".rb": "ruby", ".rake": "ruby", ".gemspec": "ruby",
    ".php": "php", ".phtml": "php",
}

#: Unparsed but still indexed (so context can include them): a display language name.
TEXT_LANGUAGES: dict[str, str] = {
    ".md": "markdown", ".rst": "rst", ".txt": "text", ".toml": "toml", ".yaml": "yaml", ".yml": "yaml",
    ".json": "json", ".cfg": "ini", ".ini": "ini", ".sh": "shell", ".bash": "shell", ".zsh": "shell",
    ".html": "html", ".css": "css", ".scss": "scss", ".sql": "sql", ".swift": "swift", ".scala": "scala",
    ".lua": "lua", ".xml": "xml", ".proto": "protobuf", ".gradle": "gradle", ".cmake": "cmake",
    ".vue": "vue", ".svelte": "svelte", ".dart": "dart", ".ex": "elixir", ".exs": "elixir", ".hs": "haskell",
    ".ml": "ocaml", ".r": "r", ".jl": "julia", ".pl": "perl", ".zig": "zig", ".nim": "nim",
}
_SPECIAL_NAMES = {"Makefile": "make", "Dockerfile": "dockerfile", "CMakeLists.txt": "cmake", "Rakefile": "ruby",
                  "Gemfile": "ruby", "BUILD": "starlark", "WORKSPACE": "starlark"}


def language_for_path(rel: str) -> str | None:
    """Language name for a path: a parseable one from LANGS, a text language, or None."""
    name = rel.rsplit("/", 1)[-1]
    if name in _SPECIAL_NAMES:
        return _SPECIAL_NAMES[name]
    dot = name.rfind(".")
    if dot <= 0 and not name.startswith("."):
        return None
    ext = name[dot:].lower()
    return EXTENSIONS.get(ext) or TEXT_LANGUAGES.get(ext)


#: How a language writes a line comment where it is not ``//`` (the context marks lines it leaves out of a
#: file with one: ``# ...`` in Python).
_LINE_COMMENTS = {"python": "#", "ruby": "#", "shell": "#", "r": "#", "perl": "#", "toml": "#", "yaml": "#",
                  "make": "#", "dockerfile": "#", "cmake": "#", "starlark": "#", "elixir": "#", "julia": "#",
                  "nim": "#", "lua": "--", "sql": "--", "haskell": "--"}


def line_comment(lang: str | None) -> str:
    """The line-comment marker of a language (``//`` for the C family and anything unknown)."""
    return _LINE_COMMENTS.get(lang or "", "//")


def is_parseable(lang: str | None) -> bool:
    return lang in LANGS


def tags_path(module: str) -> str | None:
    """Locate ``queries/tags.scm`` shipped by a grammar wheel (C# ships it under a dashed dir)."""
    if module.endswith("-sharp"):
        base = importlib.import_module("tree_sitter_c_sharp").__file__ or ""
        p = os.path.join(os.path.dirname(os.path.dirname(base)), "tree_sitter_c-sharp", "queries", "tags.scm")
    else:
        mod = importlib.import_module(module)
        p = os.path.join(os.path.dirname(mod.__file__ or ""), "queries", "tags.scm")
    return p if os.path.exists(p) else None


@dataclass
class LoadedLanguage:
    spec: LangSpec
    language: ts.Language
    parser: ts.Parser
    query: ts.Query  # definitions + imports + scopes + every identifier (@ref), one tree walk
    tags_text: str  # the definition/import part alone (for tools and tests)


def _split_patterns(text: str) -> list[str]:
    """Split a .scm file into top-level patterns (balanced parens/brackets, comments dropped)."""
    out: list[str] = []
    depth = 0
    cur: list[str] = []
    i = 0
    in_str = False
    while i < len(text):
        c = text[i]
        if in_str:
            cur.append(c)
            if c == "\\":
                cur.append(text[i + 1]); i += 2; continue
            if c == '"':
                in_str = False
        elif c == ";":
            j = text.find("\n", i)
            i = len(text) if j < 0 else j
            continue
        elif c == '"':
            in_str = True; cur.append(c)
        elif c in "([":
            depth += 1; cur.append(c)
        elif c in ")]":
            depth -= 1; cur.append(c)
        else:
            cur.append(c)
        if depth == 0 and c in ")]" and not in_str:
            # a pattern may carry trailing captures / quantifiers: "(x) @name @ref"
            j = i + 1
            while j < len(text) and text[j] not in "(\n[;":
                j += 1
            cur.append(text[i + 1:j]); i = j
            s = "".join(cur).strip()
            if s:
                out.append(s)
            cur = []
            continue
        i += 1
    return out


def _definition_patterns(text: str) -> list[str]:
    """Keep only patterns that capture a definition (reference patterns are replaced by our identifier scan)."""
    return [p for p in _split_patterns(text) if "@definition." in p]


@lru_cache(maxsize=None)
def load(name: str) -> LoadedLanguage:
    """Load grammar and compile queries once per process (workers call this lazily)."""
    spec = LANGS[name]
    mod = importlib.import_module(spec.module)
    language = ts.Language(getattr(mod, spec.func)())
    parts: list[str] = []
    for m in spec.tags_from:
        p = tags_path(m)
        if p:
            with open(p, encoding="utf-8") as f:
                parts.extend(_definition_patterns(f.read()))
    parts.append(spec.extra)
    tags_text = "\n".join(parts)
    query = ts.Query(language, tags_text + "\n" + "\n".join(f"({t}) @ref" for t in spec.ident_types))
    return LoadedLanguage(spec, language, ts.Parser(language), query, tags_text)
