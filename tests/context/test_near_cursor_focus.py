"""What the near-cursor part puts next to the current file: in an import or export list, the listed module's
names the list lacks; and what the cursor needs even when an earlier layer shows it far from the cursor."""

from __future__ import annotations

import textwrap

import pytest
from ctx_helpers import estimate_context
from test_selection import SHAPES, _big_module, _blocks, _write

from engine.context.builder import build
from engine.context.import_lists import enclosing_list


@pytest.mark.parametrize("head, is_list", [
    ("export type {", True), ("import {", True), ("export {", True), ("import Default, {", True),
    ("from .util import (", True), ("use crate::value::{", True), ("pub(crate) use crate::de::{", True),
    ("export default {", False), ("export const table = {", False), ("export function f(", False),
    ("def f(", False), ("export class A {", False), ("call(", False),
])
def test_an_import_list_is_told_from_other_brackets(head, is_list):
    text = f"{head}\n  Alpha,\n  Beta,\n  "
    span = enclosing_list(text, len(text))
    assert (span is not None) == is_list
    if is_list:
        assert text[span[0]] in "({" and "Alpha" in text[span[0]:span[1]]


def test_a_python_from_import_line_without_brackets_is_a_list():
    text = "import os\nfrom .util import alpha, beta, \nrun()\n"
    offset = text.index("beta, ") + len("beta, ")
    start, end = enclosing_list(text, offset)
    assert text[start:end].split() == ["alpha,", "beta,"]
    assert enclosing_list(text, len("import os")) is None


def _constants(n: int) -> str:
    """A module too big to be shown whole at 2K tokens: one documented constant per entry."""
    return "".join(f"# The {i}th setting of the service, read at start-up.\nNAME_{i:03d} = {i}\n" for i in range(n))


def test_in_an_import_list_the_names_it_lacks_come_next_to_the_cursor(repo, index):
    _write(repo, index, {"app/constants.py": _constants(300)})
    ctx = estimate_context(repo, index)
    listed = [f"    NAME_{i:03d},\n" for i in range(40) if i not in (12, 35)]

    def near_block(at: int) -> str:
        text = "from app.constants import (\n" + "".join(listed[:at]) + "    \n" + "".join(listed[at:]) + ")\n"
        res = build(*ctx, "app/main.py", text, 1 + at, 4, 2048)
        return _blocks(res.prompt, "app/constants.py")[-1]

    # between NAME_011 and NAME_013: the name the gap lacks, not the listed names around the cursor
    between = near_block(12)
    assert "NAME_012 = 12" in between
    assert "NAME_011 = 11" not in between and "NAME_013 = 13" not in between and "NAME_035" not in between
    # after the last item: the names declared after it, nearest first, and the earlier gap's name
    at_end = near_block(len(listed))
    assert "NAME_040 = 40" in at_end and "NAME_035 = 35" in at_end and "NAME_039 = 39" not in at_end
    assert at_end.index("NAME_035") < at_end.index("NAME_040")  # in declaration order


def test_in_an_import_list_the_decoder_is_told_which_names_may_come_first(repo, index):
    _write(repo, index, {"app/constants.py": _constants(300)})
    ctx = estimate_context(repo, index)
    listed = [f"    NAME_{i:03d},\n" for i in range(40) if i not in (12, 35)]

    def rule_at(at: int, typed: str = ""):
        text = "from app.constants import (\n" + "".join(listed[:at]) + f"    {typed}\n" + "".join(listed[at:]) + ")\n"
        return build(*ctx, "app/main.py", text, 1 + at, 4 + len(typed), 2048).name_rule

    between = rule_at(12)
    assert between.required  # more names follow: closing the list here would break it
    # the list follows declaration order: only the name declared between NAME_011 and NAME_013 may come
    assert between.allowed == ("NAME_012",)
    assert {"NAME_011", "NAME_013", "NAME_039"} <= between.banned and "NAME_012" not in between.banned
    assert between.verdict("NAME_012,") == "ok" and between.verdict("NAME_013,") == "bad"
    assert between.verdict("NAME_035,") == "bad"  # unlisted, but declared in another gap
    at_end = rule_at(len(listed))
    assert not at_end.required  # after the last item the list may end
    assert {"NAME_040", "NAME_299"} <= set(at_end.allowed) and "NAME_035" not in at_end.allowed
    typed = rule_at(12, "NAME_0")
    assert typed.typed == "NAME_0" and typed.verdict("12,") == "ok"
    outside = build(*ctx, "app/main.py", "import os\n\nvalue = os.", 2, len("value = os."), 2048)
    assert outside.name_rule is None


def test_a_list_out_of_declaration_order_or_too_short_to_tell_allows_every_name_it_lacks(repo, index):
    _write(repo, index, {"app/constants.py": _constants(300)})
    ctx = estimate_context(repo, index)

    def rule(numbers: list[int], cursor_after: int):
        items = [f"    NAME_{i:03d},\n" for i in numbers]
        text = "from app.constants import (\n" + "".join(items[:cursor_after]) + "    \n" + \
            "".join(items[cursor_after:]) + ")\n"
        return build(*ctx, "app/main.py", text, 1 + cursor_after, 4, 2048).name_rule

    shuffled = rule([5, 1, 9, 3, 7, 2], 3)
    assert {"NAME_000", "NAME_004", "NAME_299"} <= set(shuffled.allowed)
    short = rule([1, 3, 5], 1)  # three names in order may be chance
    assert {"NAME_002", "NAME_004", "NAME_299"} <= set(short.allowed)
    adjacent = rule([1, 2, 3, 4, 5], 2)  # nothing declared between NAME_002 and NAME_003: out of order next
    assert {"NAME_000", "NAME_006", "NAME_299"} <= set(adjacent.allowed)
    ordered = rule([1, 2, 4, 5], 2)
    assert ordered.allowed == ("NAME_003",)


@pytest.mark.parametrize("eol", ["\r\n", "\r"])
def test_the_gap_is_found_in_a_module_with_windows_or_classic_mac_line_ends(repo, index, eol):
    """The module's names are placed by the file cache's line index, which breaks lines where LSP and the
    indexer do (a lone ``\\r`` too): a name found on the wrong line would be placed at its line's start and
    a list in order would look out of order."""
    _write(repo, index, {"app/constants.py": _constants(300).replace("\n", eol)})
    ctx = estimate_context(repo, index)
    items = [f"    NAME_{i:03d},\n" for i in (1, 2, 4, 5, 7)]
    text = "from app.constants import (\n" + "".join(items[:2]) + "    \n" + "".join(items[2:]) + ")\n"
    assert build(*ctx, "app/main.py", text, 3, 4, 2048).name_rule.allowed == ("NAME_003",)


def test_a_list_not_closed_yet_ends_at_the_next_statement():
    text = "export type { \nexport { Client } from './client'\n"
    start, end = enclosing_list(text, len("export type { "))
    assert text[start] == "{" and text[start + 1:end].strip() == ""


def test_the_names_allowed_in_a_list_come_from_the_modules_text_not_only_its_indexed_definitions(repo, index):
    util = "".join(f"export function helper{i}(): number {{ return {i} }}\n" for i in range(6))
    util += "export const isServer = typeof window === 'undefined'\nexport { fromElsewhere } from './other'\n"
    util += "export function generic<TItem>(item: TItem): TItem { return item }\n"
    _write(repo, index, {"web/util.ts": util,
                         "web/all.ts": "export * from './util'\nexport function own(): void {}\n"})
    ctx = estimate_context(repo, index)

    def rule(names: list[str], cursor_after: int):
        items = [f"  {n},\n" for n in names]
        text = "export {\n" + "".join(items[:cursor_after]) + "  \n" + "".join(items[cursor_after:]) + "} from './x'\n"
        return build(*ctx, "web/index.ts", text, 1 + cursor_after, 2, 2048).name_rule

    listed = rule(["helper0", "helper1", "helper3"], 2)
    assert {"isServer", "helper2", "fromElsewhere", "generic"} <= set(listed.allowed)  # a value const, a re-export
    assert not {"TItem", "window", "export", "item"} & set(listed.allowed)  # a declaration's other words are not
    assert "helper1" in listed.banned and "helper1" not in listed.allowed and "nowhere" not in listed.allowed
    assert listed.verdict("isServer,") == "ok" and listed.verdict("nowhere,") == "bad"
    wildcard = rule(["own"], 1)  # all.ts re-exports util's names with ``export *``: its text does not name them
    assert wildcard.allowed is None and wildcard.banned == {"own"} and not wildcard.required


def test_a_receivers_members_are_repeated_next_to_the_cursor_when_an_earlier_layer_shows_them_far_away(
        repo, index):
    _write(repo, index, {"app/shapes.py": SHAPES, "app/poly.py": _big_module(60)})
    text = textwrap.dedent('''
        from app import poly
        from app.shapes import Square


        def grow_all(sq: Square, by: float):
            shape = poly.Poly1()
            shape.grow_1(by)
            sq.
    ''').lstrip("\n")
    line = text.count("\n") - 1
    ctx = estimate_context(repo, index)
    res = build(*ctx, "app/main.py", text, line, len("    sq."), 8192)
    shapes = _blocks(res.prompt, "app/shapes.py")
    assert len(shapes) >= 2 and "def scale_by(" in shapes[0], "the per-file layer shows Square's members"
    last_before_cursor = res.prompt.rsplit("<|file_sep|>", 2)[-2]
    assert last_before_cursor.startswith("app/shapes.py\n") and "def scale_by(" in last_before_cursor
    # at 2K nothing is that far from the cursor: the members are shown once
    small = build(*ctx, "app/main.py", text, line, len("    sq."), 2048)
    assert sum(b.count("def scale_by(") for b in _blocks(small.prompt, "app/shapes.py")) == 1
