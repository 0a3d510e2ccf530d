"""Parsing real sample files in every supported language with the real grammars."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.languages import LANGS, language_for_path, load
from indexer.parser import parse_source

from idx_helpers import SAMPLES


def _defs(name: str) -> dict[str, tuple]:
    path = SAMPLES / name
    parsed = parse_source(language_for_path(name), path.read_bytes())
    return {d[1]: d for d in parsed.defs}


def test_every_language_loads_and_has_definition_patterns() -> None:
    for name in LANGS:
        loaded = load(name)
        assert "@definition." in loaded.tags_text, name


@pytest.mark.parametrize(
    "sample, expected",
    [
        ("event_bus.js", {"EventBus": "class", "EventBus.subscribe": "method", "EventBus.constructor": "method",
                          "matchTopic": "function", "normalizeTopic": "function", "idGenerator": "function"}),
        ("store.ts", {"Store": "class", "Store.dispatch": "method", "Action": "interface", "Status": "enum",
                      "Listener": "type", "Middleware.apply": "method", "createStore": "function",
                      "Internal.resetAll": "function"}),
        ("server.go", {"Server": "struct", "Store": "interface", "Server.ServeHTTP": "method", "New": "function",
                       "Server.Hits": "method", "Map": "function"}),
        ("parser.rs", {"Parser": "class", "Parser.new": "method", "Visitor": "interface", "Counter.visit": "method",
                       "ParseError.fmt": "method", "parse": "function", "MAX_DEPTH": "constant"}),
        ("Inventory.java", {"Inventory": "class", "Inventory.add": "method", "Inventory.Snapshot.age": "method",
                            "Inventory.Listener": "interface", "Inventory.Level": "enum", "Auditable": "interface"}),
        ("ringbuf.c", {"rb_create": "function", "rb_pop": "function", "rb_stats": "class", "ring_buffer_t": "type",
                       "RB_MASK": "macro"}),
        ("shapes.cpp", {"geo.Shape": "class", "geo.Circle.area": "method", "geo.Circle.radius": "method",
                        "geo.total_area": "function", "main": "function"}),
        ("Billing.cs", {"InvoiceService": "class", "InvoiceService.Create": "method", "IInvoiceService": "interface",
                        "Money": "class"}),
        ("cache.rb", {"Caching": "module", "Caching.LruCache": "class", "Caching.LruCache.fetch": "method"}),
        ("Router.php", {"Router": "class", "Router.dispatch": "method", "RouteMatcher": "interface",
                        "make_router": "function"}),
        ("Repository.kt", {"UserRepository": "interface", "InMemoryUserRepository.save": "method",
                           "Repositories.inMemory": "method", "active": "function"}),
    ],
)
def test_definitions_qualified_names_and_kinds(sample: str, expected: dict[str, str]) -> None:
    defs = _defs(sample)
    for qualified, kind in expected.items():
        assert qualified in defs, f"{sample}: {qualified} missing; have {sorted(defs)}"
        assert defs[qualified][2] == kind, (qualified, defs[qualified][2])


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.iterdir()))
def test_signature_contains_header_line_verbatim(sample: str) -> None:
    lines = (SAMPLES / sample).read_text().splitlines()
    parsed = parse_source(language_for_path(sample), (SAMPLES / sample).read_bytes())
    assert parsed.defs
    for d in parsed.defs:
        header = lines[d[10]].strip()
        if header.endswith("{") and not d[3].endswith("{"):
            header = header[:-1].rstrip()
        assert header in d[3] or d[3] in header, (sample, d[1], header, d[3])
        assert "\n    return" not in d[3]  # never a body


def test_python_signature_doc_parent_and_ranges(tmp_path: Path) -> None:
    src = (
        "import os\n"
        "from .models import User as U, make_user\n\n"
        "class Service(Base):\n"
        '    """Service doc."""\n\n'
        "    @property\n"
        "    def run(self, a,\n"
        "            b: int = 1) -> int:  # trailing comment\n"
        "        def helper():\n"
        "            return 1\n"
        "        return helper()\n"
    )
    parsed = parse_source("python", src.encode())
    defs = {d[1]: d for d in parsed.defs}
    assert defs["Service"][3] == "class Service(Base):"
    assert defs["Service"][4] == "Service doc."
    run = defs["Service.run"]
    assert run[2] == "method" and run[9] == "Service"
    assert run[3] == "def run(self, a,\n            b: int = 1) -> int:"
    assert (run[5], run[6]) == (7, 11)
    assert defs["Service.run.helper"][9] == "Service.run"
    assert ("os", "", 0) in parsed.imports
    assert (".models", "User,make_user", 1) in parsed.imports
    refs = parsed.refs
    assert "helper" in refs and "Base" in refs and "Service" not in refs  # a definition's own name is not a use


def test_doc_comments_for_brace_languages() -> None:
    go = _defs("server.go")
    assert go["New"][4].startswith("New creates a Server")
    rs = _defs("parser.rs")
    assert rs["Parser.new"][4] == "Create a parser over `input`."
    java = _defs("Inventory.java")
    assert java["Inventory.add"][4] == "Add or replace an item."
    ts = _defs("store.ts")
    assert ts["Store"][4] == "A minimal observable store."


def test_imports_per_language() -> None:
    def imports(name: str) -> list[str]:
        return [i[0] for i in parse_source(language_for_path(name), (SAMPLES / name).read_bytes()).imports]

    assert "./util/timing" in imports("event_bus.js") and "events" in imports("event_bus.js")
    assert "./reducer" in imports("store.ts")
    assert "example.com/kv/internal/storage" in imports("server.go")
    assert "crate::lexer::{Lexer,Token}" in imports("parser.rs") and "mod:precedence" in imports("parser.rs")
    assert "com.example.inventory.model.Item" in imports("Inventory.java")
    assert "ringbuf.h" in imports("ringbuf.c")
    assert "com.example.data.model.User" in imports("Repository.kt")
    assert "store/backend" in imports("cache.rb")


def test_unknown_language_still_counts_lines() -> None:
    parsed = parse_source("markdown", b"# Title\n\ntext\n")
    assert parsed.lines == 3 and not parsed.defs
    assert language_for_path("README.md") == "markdown"
    assert language_for_path("LICENSE") is None


MODULE_VARIABLES = b"""export const isServer = typeof window === 'undefined'
export const skipToken = Symbol()
const first = 1, second = { a: 1 }
let counter = 0
var legacy = 1
export const increment = (n: number) => n + 1
function scoped() { const inner = 2; return inner }
"""


@pytest.mark.parametrize("lang", ["javascript", "typescript", "tsx"])
def test_module_level_variables_are_definitions(lang: str) -> None:
    """A module's top-level ``const``/``let``/``var`` (exported or not) is a definition, as Python's module
    constants are: ``import { isServer } from './utils'`` must find it. A function- or object-valued one keeps
    its telling kind; a function's locals are not definitions."""
    defs = {d[1]: d for d in parse_source(lang, MODULE_VARIABLES).defs}
    for name in ("isServer", "skipToken", "first", "counter", "legacy"):
        assert defs[name][2] == "constant", (name, defs.get(name))
    assert defs["second"][2] == "object"
    assert defs["increment"][2] == "function"
    assert "inner" not in defs and "scoped.inner" not in defs
    assert "isServer" in defs["isServer"][3]
