"""Definitions' lines in files with classic-Mac line ends (a lone ``\\r``): tree-sitter counts rows at
``\\n`` only, so every definition of such a file was on line 0, while the editor, LSP and the engine
(engine/text_position.py) break lines at ``\\r`` too; the outline and snippets then pointed at the wrong
lines. CRLF files were always right (their ``\\n`` ends the line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer import Index, IndexSettings

from idx_helpers import write_tree

SOURCE = ["def first():", "    return 1", "", "class Second:", "    def third(self):", "        pass", ""]


def _lines(idx: Index) -> dict[str, tuple[int, int]]:
    return {d.name: (d.start_line, d.name_line) for d in idx.outline("mod.py")}


@pytest.mark.parametrize("eol", ["\r", "\r\n", "\n"])
def test_definition_lines_follow_every_line_end(repo: Path, cache_dir: Path, eol: str) -> None:
    write_tree(repo, {"mod.py": eol.join(SOURCE).encode()})
    expected = {"first": (0, 0), "Second": (3, 3), "third": (4, 4)}
    with Index.open(repo, cache_dir, IndexSettings(workers=1)) as idx:
        idx.build()
        assert _lines(idx) == expected  # the cold build (worker processes)
        edited = SOURCE[:1] + ["    # a comment"] + SOURCE[1:]
        idx.set_overlay("mod.py", eol.join(edited))  # an open buffer, parsed against its previous tree
        assert _lines(idx) == {"first": (0, 0), "Second": (4, 4), "third": (5, 5)}
        idx.clear_overlay("mod.py")
        assert _lines(idx) == expected
