"""Where real code hides definitions from a naive tree-sitter pass, per language (tests/indexer/blind_spots/).

Rust keeps macro bodies as opaque token trees: items in ``cfg_if!``/``cfg_rt!``/``thread_local!``/
``bitflags!`` bodies are re-parsed (indexer/parser.py). The others are checked so that they stay found:
C/C++ definitions under ``#ifdef``/``extern "C"``/anonymous namespaces, Python definitions under
``if TYPE_CHECKING:``/``try:``/platform branches and inside functions, TypeScript ``declare module``/
``declare global``/namespaces/ambient declarations, Go files behind a build tag, Java/Kotlin nested, inner,
local and anonymous classes, companion objects. Not indexable without expanding macros (and not
attempted): C functions a macro generates (``DEFINE_GETTER(width)`` → ``get_width``) and items a
``macro_rules!`` body generates.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.languages import language_for_path
from indexer.parser import parse_source

SAMPLES = Path(__file__).parent / "blind_spots"

EXPECTED = {
    "wrapped.rs": {("platform_name", 4), ("Fallback", 6), ("CURRENT", 11), ("Flags", 15), ("Runtime", 21),
                   ("metrics", 27), ("cfg_metrics", 34)},
    "ifdef.c": {("open_port", 2), ("open_port", 4), ("poller", 7), ("poller_wait", 8), ("kqueue_wait", 10),
                ("exported_api", 17), ("exported_impl", 18)},
    "ns.cpp": {("hidden_helper", 1), ("c_entry", 4), ("Widget", 7), ("draw", 8), ("FastPath", 11), ("go", 11)},
    "cond.py": {("ProtoReader", 4), ("read_frame", 5), ("fast_scan", 9), ("spawn_process", 12),
                ("spawn_process", 15), ("LocalThing", 18), ("local_method", 19), ("inner_helper", 21),
                ("modern_path", 26)},
    "decl.ts": {("legacyInit", 1), ("LegacyOptions", 2), ("Window", 5), ("area", 8), ("Point", 9), ("move", 9),
                ("declaredOnly", 11), ("Ambient", 12), ("method", 12), ("arrowHelper", 13), ("helperMethod", 16)},
    "tagged_windows.go": {("openWindowsPort", 4), ("winHandle", 6), ("Close", 8)},
    "Outer.java": {("Nested", 1), ("nestedMethod", 1), ("Inner", 2), ("innerMethod", 2), ("Callback", 3),
                   ("helperInAnon", 6), ("LocalClass", 7), ("localMethod", 7), ("sum", 9)},
    "Outer.kt": {("Nested", 1), ("nestedFun", 2), ("Inner", 5), ("innerFun", 6), ("create", 10), ("LIMIT", 11),
                 ("localFun", 18), ("Registry", 22), ("register", 23), ("next", 33), ("shout", 36)},
}


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_definitions_where_real_code_hides_them(sample: str) -> None:
    lang = language_for_path(sample)
    parsed = parse_source(lang, (SAMPLES / sample).read_bytes())  # type: ignore[arg-type]
    found = {(d[0], d[10]) for d in parsed.defs}  # (name, line of the name)
    assert EXPECTED[sample] <= found, sorted(EXPECTED[sample] - found)


def test_rust_macro_bodies_keep_qualification_and_imports() -> None:
    parsed = parse_source("rust", (SAMPLES / "wrapped.rs").read_bytes())
    qualified = {d[1]: d[2] for d in parsed.defs}
    assert qualified["Runtime.metrics"] == "method"  # an impl's member two macros deep
    assert ("self::unix::*", "*", 3) in parsed.imports and ("mod:unix", "", 2) in parsed.imports
    assert "cfg_metrics" in parsed.refs  # the invocation ``cfg_metrics! {`` is a reference to the macro
