"""Selection: prepared files, stub-style outlines, receivers (unresolved modules, duck typing), sticky near part."""

from __future__ import annotations

import ast
import textwrap

from ctx_helpers import estimate_context

from engine.context.builder import build, prepare_file, repo_view
from engine.context.neighbourhood import ranked_candidates
from engine.context.snippets import breadth, make_snip


SHAPES = '''
"""Shapes."""


class Shape:
    """Base."""

    def area(self) -> float:
        return 0.0

    def perimeter(self) -> float:
        return 0.0

    def describe(self) -> str:
        return f"{self.area()}"


class Square(Shape):
    def __init__(self, side: float) -> None:
        self.side = side

    def area(self) -> float:
        return self.side ** 2

    def scale_by(self, factor: float) -> "Square":
        return Square(self.side * factor)


def unit_square() -> Square:
    return Square(1.0)
'''

CODEC = '''
def encode_frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


def decode_frame(data: bytes) -> bytes:
    return data[4:]
'''


def _big_module(n: int = 60) -> str:
    """Too big to be shown whole at small budgets: its definitions appear as outline entries."""
    parts = ['"""Many shapes."""\n']
    for i in range(n):
        body = "\n".join(f"        total_{k} = self.side * {k} + {i}" for k in range(12))
        parts.append(f"\n\nclass Poly{i}:\n    def area_{i}(self) -> float:\n{body}\n        return total_0\n\n"
                     f"    def grow_{i}(self, by: float) -> None:\n{body}\n        self.side += by\n")
    return "".join(parts)


def _write(repo, index, files):
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(textwrap.dedent(text).lstrip("\n"))
    index.build()


def _blocks(prompt: str, path: str) -> list[str]:
    """The file's blocks (one per layer that shows it)."""
    out = []
    for part in prompt.split("<|file_sep|>")[1:]:
        if part.startswith(path + "\n"):
            out.append(part[len(path) + 1:].split("<|", 1)[0])
    return out


def test_prepare_file_does_the_per_file_work_and_changes_nothing(repo, index):
    _write(repo, index, {"app/shapes.py": SHAPES})
    text = "from app.shapes import Square\n\n\ndef main():\n    sq = Square(2.0)\n    print(sq.\n"
    cold = build(*estimate_context(repo, index), "app/main.py", text, 5, 13, 2048)
    ctx = estimate_context(repo, index)
    assert prepare_file(*ctx, "app/main.py", text, 2048) >= 0
    calls = []
    real = index.ranked_definitions
    index.ranked_definitions = lambda *a, **k: (calls.append(a), real(*a, **k))[1]  # type: ignore[method-assign]
    warm = build(*ctx, "app/main.py", text, 5, 13, 2048)
    assert calls == []  # ranked when the file was prepared, not on the first request
    assert warm.prompt == cold.prompt


def test_outline_entries_are_python_stubs(repo, index):
    _write(repo, index, {"app/polys.py": _big_module()})
    text = "from app.polys import Poly1, Poly2\n\nx = Poly1()\ny = \n"
    res = build(*estimate_context(repo, index), "app/main.py", text, 3, 4, 2048)
    blocks = _blocks(res.prompt, "app/polys.py")
    assert blocks and any("class Poly2:\n    def area_2(self) -> float: ...\n" in b for b in blocks)
    for block in blocks:
        assert "# ...\n" not in block  # every elided body is closed inline, members under their class
        ast.parse(block)  # and what is shown is valid Python (a stub file)


def test_receiver_naming_an_unimported_module_gets_its_outline(repo, index):
    _write(repo, index, {"app/net/codec.py": CODEC, "app/net/conn.py": "import os\n"})
    text = "def send(sock, payload):\n    sock.sendall(codec.)\n"
    res = build(*estimate_context(repo, index), "app/net/conn.py", text, 1, 23, 2048)
    assert "def decode_frame(data: bytes) -> bytes:" in res.prompt


def test_receiver_of_unknown_type_gets_the_type_that_has_its_members(repo, index):
    _write(repo, index, {"app/shapes.py": SHAPES})
    text = ("def report(thing):\n    print(thing.area(), thing.side)\n    big = thing.scale_by(2)\n"
            "    return thing.\n")
    res = build(*estimate_context(repo, index), "app/report.py", text, 3, 17, 2048)
    assert "class Square(Shape):" in res.prompt and "def scale_by(self, factor: float)" in res.prompt


def test_typing_past_a_receiver_keeps_the_prompt_before_the_current_file(repo, index):
    _write(repo, index, {"app/shapes.py": SHAPES})
    head = "from app.shapes import unit_square\n\n\ndef main():\n    sq = unit_square()\n"
    ctx = estimate_context(repo, index)
    line = "    value = sq."
    prev = build(*ctx, "app/main.py", head + line + "\n", 5, len(line), 2048)
    grew = 0
    for typed in "scale_by(2":
        line += typed
        res = build(*ctx, "app/main.py", head + line + "\n", 5, len(line), 2048)
        kept = prev.prompt.rsplit("<|file_sep|>app/main.py", 1)[0]
        shown = res.prompt.rsplit("<|file_sep|>app/main.py", 1)[0]
        assert shown.startswith(kept), line  # what was shown stays, in place; new material goes after it
        if shown == kept:
            assert res.shared_prefix_tokens >= 0.95 * res.prompt_tokens, line
        else:
            grew += 1
        prev = res
    # typing ``scale_by`` names a member of Square (duck typing): its members are added next to the cursor, once
    assert grew == 1
    assert _blocks(res.prompt, "app/shapes.py")[-1].count("def scale_by(") == 1


def test_member_of_a_call_result_gets_the_returned_type(repo, index):
    _write(repo, index, {"app/polys.py": _big_module(),
                         "app/factory.py": "from app.polys import *\n\n\ndef make_poly(side: float) -> Poly37:\n    return Poly37()\n"})
    text = "from app.factory import make_poly\n\n\ndef main():\n    make_poly(2.0).\n"
    res = build(*estimate_context(repo, index), "app/main.py", text, 4, 19, 1024)
    assert "def grow_37(self, by: float) -> None: ..." in res.prompt


def test_ranked_list_puts_repeated_names_and_test_code_last(repo, index):
    """`close` defined in every handle class, and Rust test-module helpers, go after the other ranked
    definitions (they cost as much as a new name but tell the model little; no other file can name test
    code), so a small budget reaches further down the ranking."""
    files = {f"app/handle{i}.py": f"class Handle{i}:\n    def close(self):\n        pass\n\n"
                                   f"    def flush_pending_{i}(self):\n        self.close()\n"
             for i in range(5)}
    files["src/lib.rs"] = ("pub fn parse_header(s: &str) -> usize {\n    s.len()\n}\n\n"
                           "#[cfg(test)]\nmod tests {\n    fn sample_input() -> String {\n        String::new()\n"
                           "    }\n\n    #[test]\n    fn parses() {\n        super::parse_header(&sample_input());\n"
                           "    }\n}\n")
    _write(repo, index, files)
    text = "".join(f"from app.handle{i} import Handle{i}\n" for i in range(5)) + (
        "\n\ndef shutdown(handles):\n    for h in handles:\n        h.close()\n"
        + "".join(f"    Handle{i}().flush_pending_{i}()\n" for i in range(5)))
    (repo / "app/main.py").write_text(text)
    index.build()
    ws, cache = estimate_context(repo, index)
    first, later, _ = ranked_candidates(repo_view(ws, cache, index), {"app/main.py": 1.0}, 500, 2, "app/main.py", None)
    names = [c.forms[0].symbol for c in first]
    later_names = [c.forms[0].symbol for c in later]
    assert names.count("close") == 2 and later_names.count("close") == 3
    assert all(f"flush_pending_{i}" in names for i in range(5))
    assert "sample_input" in later_names and "sample_input" not in names
    assert "parse_header" in names
    ranked = [d for d, _ in index.ranked_definitions({"app/main.py": 1.0}, 500) if d.path != "app/main.py"]
    order: dict[tuple[str, str], int] = {}
    for i, d in enumerate(ranked):
        order.setdefault((d.path, d.name), i)
    positions = [order[(c.path, c.forms[0].symbol)] for c in first]
    assert len(positions) == len(first) >= 8 and positions == sorted(positions)  # rank order kept


def test_breadth_cut_keeps_the_line_holding_the_name_and_the_enclosing_header(repo, index):
    """At small budgets a long multi-line header is cut to its lines up to the name's line (not always
    the first line: a header can open lines before its name), and a member keeps its enclosing header."""

    counter = estimate_context(repo, index)[0].counter
    parent = make_snip(counter, "a.ts", 0, 0, "export class Registry {\n", "outline", "Registry", 2)
    lines = ["    static readonly\n", "    registerEverything(first: number, second: number, third: number,\n",
             "        fourth: number, fifth: number, sixth: number, seventh: number): void {\n"]
    snip = make_snip(counter, "a.ts", 5, 7, "".join(lines), "outline", "registerEverything", 2)
    snip.body_end, snip.name_line, snip.parent = 20, 6, parent
    cut = breadth(counter, snip, 8192)
    assert cut.text == lines[0] + lines[1] and (cut.start, cut.end) == (5, 6)
    assert cut.parent is parent and cut.name_line == 6 and cut.tokens < snip.tokens
    assert breadth(counter, snip, 65536) is snip  # large budgets keep whole signatures


def test_receiver_with_a_declared_type_gets_that_type_not_one_named_like_it(repo, index):
    """``shape: Poly37`` declares the receiver's type; the class named like the receiver (``Shape``) is
    not what it is (tokio: ``self.shared.`` with ``shared: slab::Ref<ScheduledIo>``, not ``Shared``)."""
    _write(repo, index, {"app/polys.py": _big_module(), "app/shapes.py": SHAPES})
    text = "from app.polys import Poly37\n\n\ndef main(shape: Poly37) -> None:\n    shape.\n"
    res = build(*estimate_context(repo, index), "app/main.py", text, 4, 10, 1024)
    assert "def grow_37(self, by: float) -> None: ..." in res.prompt


def test_module_receiver_lists_top_level_names_before_members(repo, index):
    """After ``polys.`` only a top-level name can follow: a function at the end of a large module comes
    before the methods of the classes above it."""
    _write(repo, index, {"app/polys.py": _big_module() + "\n\ndef make_last_poly() -> Poly59:\n    return Poly59()\n"})
    text = "from app import polys\n\n\ndef main():\n    return polys.\n"
    res = build(*estimate_context(repo, index), "app/main.py", text, 4, 17, 1024)
    assert "def make_last_poly() -> Poly59:" in res.prompt
