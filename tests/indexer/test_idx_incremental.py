"""Incremental updates: explicit paths, editor overlays and the file watcher."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from indexer import Index, IndexSettings

from idx_helpers import wait_for, write_tree

BASE = {
    "pkg/__init__.py": "",
    "pkg/a.py": "from .b import helper\n\ndef alpha():\n    return helper()\n",
    "pkg/b.py": "def helper():\n    return 1\n",
    "README.md": "# readme\n",
}


@pytest.fixture
def idx(repo: Path, cache_dir: Path):
    write_tree(repo, BASE)
    index = Index.open(repo, cache_dir, IndexSettings(workers=1, debounce_s=0.02))
    index.build()
    yield index
    index.close()


def _def_paths(idx: Index, name: str) -> set[str]:
    return {d.path for d in idx.definitions(name)}


def test_update_paths_edit_create_rename_delete(idx: Index, repo: Path) -> None:
    (repo / "pkg/b.py").write_text("def helper2():\n    return 2\n")
    assert idx.update_paths([str(repo / "pkg/b.py")]) == ["pkg/b.py"]  # absolute paths work too
    assert _def_paths(idx, "helper2") == {"pkg/b.py"} and not idx.definitions("helper")

    (repo / "pkg/c.py").write_text("def gamma():\n    pass\n")
    idx.update_paths(["pkg/c.py"])
    assert _def_paths(idx, "gamma") == {"pkg/c.py"}

    os.rename(repo / "pkg/c.py", repo / "pkg/d.py")
    idx.update_paths(["pkg/c.py", "pkg/d.py"])
    assert _def_paths(idx, "gamma") == {"pkg/d.py"}

    (repo / "pkg/d.py").unlink()
    idx.update_paths(["pkg/d.py"])
    assert not idx.definitions("gamma")
    assert "pkg/d.py" not in {f.path for f in idx.files()}

    # a whole directory removed
    (repo / "pkg/sub").mkdir()
    (repo / "pkg/sub/x.py").write_text("def in_sub():\n    pass\n")
    idx.update_paths(["pkg/sub"])
    assert _def_paths(idx, "in_sub") == {"pkg/sub/x.py"}
    (repo / "pkg/sub/x.py").unlink()
    (repo / "pkg/sub").rmdir()
    idx.update_paths(["pkg/sub"])
    assert not idx.definitions("in_sub")
    # the index equals a fresh build of the same tree
    assert idx.build().parsed_files == 0


def test_a_file_replaced_by_a_directory_of_its_name_leaves_the_index(idx: Index, repo: Path) -> None:
    (repo / "pkg/b.py").unlink()
    write_tree(repo, {"pkg/b.py/inner.py": "def inner_of_dir():\n    pass\n"})
    assert "pkg/b.py" in idx.update_paths(["pkg/b.py"])
    assert "pkg/b.py" not in {f.path for f in idx.files()} and not idx.definitions("helper")
    assert _def_paths(idx, "inner_of_dir") == {"pkg/b.py/inner.py"}
    assert idx.build().parsed_files == 0  # the index equals a fresh build of the same tree


def test_a_directory_replaced_by_a_file_of_its_name_takes_its_files_along(idx: Index, repo: Path) -> None:
    """By renames (the directory moved out, a file moved in): no event names the files that were inside."""
    os.rename(repo / "pkg", repo.parent / "pkg_elsewhere")
    (repo / "pkg").write_text("a file now\n")
    idx.update_paths(["pkg"])
    assert {f.path for f in idx.files()} == {"README.md", "pkg"}
    assert not idx.definitions("alpha")
    assert idx.build().parsed_files == 0


def test_gitignore_change_reapplies_rules(idx: Index, repo: Path) -> None:
    (repo / ".gitignore").write_text("pkg/b.py\n")
    changed = idx.update_paths([".gitignore"])
    assert "pkg/b.py" in changed and not idx.definitions("helper")
    (repo / ".gitignore").write_text("")
    idx.update_paths([str(repo / ".gitignore")])
    assert idx.definitions("helper")
    assert ".gitignore" not in {f.path for f in idx.files()}


def test_import_edges_follow_new_files(idx: Index, repo: Path) -> None:
    (repo / "pkg/a.py").write_text("from .later import thing\n")
    idx.update_paths(["pkg/a.py"])
    assert idx.imports_of("pkg/a.py") == []
    (repo / "pkg/later.py").write_text("thing = 1\n")
    idx.update_paths(["pkg/later.py"])
    assert idx.imports_of("pkg/a.py") == ["pkg/later.py"]


def test_open_unsaved_buffer_overrides_disk(idx: Index, repo: Path) -> None:
    disk = (repo / "pkg/b.py").read_text()
    idx.set_overlay("pkg/b.py", "def from_buffer(x):\n    return x\n")
    assert _def_paths(idx, "from_buffer") == {"pkg/b.py"}
    assert not idx.definitions("helper")
    assert idx.read_text("pkg/b.py") == "def from_buffer(x):\n    return x\n"
    assert (repo / "pkg/b.py").read_text() == disk  # nothing written to disk
    assert idx.symbol_at("pkg/b.py", 1).name == "from_buffer"  # type: ignore[union-attr]

    # disk changes while the buffer is open do not win
    (repo / "pkg/b.py").write_text("def saved_elsewhere():\n    pass\n")
    idx.update_paths(["pkg/b.py"])
    assert idx.definitions("from_buffer") and not idx.definitions("saved_elsewhere")
    # a warm build keeps the overlay too
    idx.build()
    assert idx.definitions("from_buffer")

    idx.clear_overlay("pkg/b.py")
    assert not idx.definitions("from_buffer")
    assert _def_paths(idx, "saved_elsewhere") == {"pkg/b.py"}
    assert idx.read_text("pkg/b.py") == "def saved_elsewhere():\n    pass\n"


def test_overlay_of_never_saved_file_and_restart(repo: Path, cache_dir: Path) -> None:
    write_tree(repo, BASE)
    with Index.open(repo, cache_dir) as idx:
        idx.build()
        idx.set_overlay("pkg/new.py", "def unsaved():\n    pass\n")
        assert _def_paths(idx, "unsaved") == {"pkg/new.py"}
        idx.build()
        assert idx.definitions("unsaved")
    # restart without the editor: the overlay is not the disk, so it is dropped
    with Index.open(repo, cache_dir) as idx:
        idx.build()
        assert not idx.definitions("unsaved")
        idx.set_overlay("pkg/b.py", "def temp():\n    pass\n")
    with Index.open(repo, cache_dir) as idx:
        s = idx.build()
        assert s.parsed_files == 1 and idx.definitions("helper") and not idx.definitions("temp")


def test_watcher_follows_edit_rename_delete_within_a_second(idx: Index, repo: Path) -> None:
    changes: list[list[str]] = []
    lock = threading.Lock()

    def on_change(paths: list[str]) -> None:
        with lock:
            changes.append(paths)

    idx.start_watching(on_change)
    try:
        (repo / "pkg/b.py").write_text("def watched_edit():\n    return 3\n")
        assert wait_for(lambda: bool(idx.definitions("watched_edit")), timeout=1.0)

        os.rename(repo / "pkg/b.py", repo / "pkg/renamed.py")
        assert wait_for(lambda: _def_paths(idx, "watched_edit") == {"pkg/renamed.py"}, timeout=1.0)
        assert "pkg/b.py" not in {f.path for f in idx.files()}

        (repo / "pkg/renamed.py").unlink()
        assert wait_for(lambda: not idx.definitions("watched_edit"), timeout=1.0)

        (repo / "newdir").mkdir()
        (repo / "newdir/mod.py").write_text("def in_new_dir():\n    pass\n")
        assert wait_for(lambda: bool(idx.definitions("in_new_dir")), timeout=1.0)
        # ignored directories never reach the index
        (repo / "node_modules").mkdir()
        (repo / "node_modules/x.js").write_text("function vendored() {}\n")
        (repo / "pkg/after.py").write_text("def after_vendor():\n    pass\n")
        assert wait_for(lambda: bool(idx.definitions("after_vendor")), timeout=1.0)
        assert not idx.definitions("vendored")
        with lock:
            assert changes and any("pkg/b.py" in c for c in changes)
    finally:
        idx.stop_watching()


def test_watcher_overflow_triggers_rescan(repo: Path, cache_dir: Path) -> None:
    write_tree(repo, BASE)
    with Index.open(repo, cache_dir, IndexSettings(workers=1, debounce_s=0.02, watch_overflow=5)) as idx:
        idx.build()
        idx.start_watching()
        for i in range(20):
            (repo / f"bulk_{i}.py").write_text(f"def bulk_{i}():\n    pass\n")
        assert wait_for(lambda: all(idx.definitions(f"bulk_{i}") for i in range(20)), timeout=3.0)
        idx.stop_watching()


def test_one_file_reindex_is_fast_enough_to_be_interactive(idx: Index, repo: Path) -> None:
    """Not a benchmark (see bench/index_bench.py): just guards against pathological regressions."""
    import time

    body = "".join(f"def f{i}(a, b):\n    return a + b + {i}\n\n" for i in range(330))
    (repo / "pkg/big.py").write_text(body)
    idx.update_paths(["pkg/big.py"])
    t0 = time.perf_counter()
    for i in range(5):
        idx.set_overlay("pkg/big.py", body + f"x = {i}\n")
    per = (time.perf_counter() - t0) / 5
    assert per < 0.25
    assert len(idx.outline("pkg/big.py")) == 331


@pytest.mark.parametrize("sample", ["event_bus.js", "store.ts", "server.go", "parser.rs", "Inventory.java", "ringbuf.c"])
def test_incremental_reparse_matches_full_parse(sample: str) -> None:
    """Overlays re-parse against the previous tree; the result must equal a from-scratch parse."""
    import random

    from idx_helpers import SAMPLES
    from indexer.languages import language_for_path, load
    from indexer.parser import parse_source
    from indexer.reparse import reparse

    lang = language_for_path(sample)
    text = (SAMPLES / sample).read_bytes()
    tree = load(lang).parser.parse(text)
    rnd = random.Random(sample)
    for step in range(25):
        pos = rnd.randrange(len(text))
        op = step % 3
        if op == 0:
            new = text[:pos] + b"\n// note\nvoid added_%d() {}\n" % step + text[pos:]
        elif op == 1:
            new = text[:pos] + text[pos + rnd.randrange(1, 40):]
        else:
            new = text[:pos] + b"renamed_%d" % step + text[pos + 3:]
        tree = reparse(lang, text, tree, new)
        inc, full = parse_source(lang, new, tree=tree), parse_source(lang, new)
        assert (inc.defs, inc.refs_blob, inc.imports, inc.lines) == (full.defs, full.refs_blob, full.imports, full.lines)
        text = new


def test_overlay_typing_sequence_stays_consistent(idx: Index, repo: Path) -> None:
    text = (repo / "pkg/a.py").read_text()
    for ch in "\ndef typed_fn(x):\n    return helper(x)\n":
        text += ch
        idx.set_overlay("pkg/a.py", text)
    assert [d.name for d in idx.outline("pkg/a.py")] == ["alpha", "typed_fn"]
    assert {r.name for r in idx.references_in_range("pkg/a.py", 5, 6)} >= {"helper"}


def test_cold_build_with_process_pool_while_threads_run(repo: Path, cache_dir: Path) -> None:
    """The LSP server has threads (watcher, event loop): the pool path must still work."""
    write_tree(repo, {f"m{i}.py": f"def func_{i}():\n    return {i}\n" for i in range(80)})
    with Index.open(repo, cache_dir, IndexSettings(workers=2)) as idx:
        idx.start_watching()  # its catch-up build is the cold build here, run with the watcher's threads alive
        assert idx.parsed_total == 80 and len(idx.definitions("func_79")) == 1
        assert idx.build().reused_files == 80
        idx.stop_watching()


def test_a_buffer_outside_the_root_never_enters_the_index(idx: Index, repo: Path) -> None:
    """A code action on a file outside the workspace hands its buffer to the index like any other: it must not
    become an indexed file (its definitions would reach prompts and repository tools of this workspace)."""
    outside = repo.parent / "outside_helper.py"
    outside.write_text("def outside_only():\n    return 1\n")
    idx.set_overlay(str(outside), outside.read_text())
    idx.set_overlay("../outside_helper.py", outside.read_text())
    assert not any(path.startswith("..") for path in idx.overlays)
    assert not idx.definitions("outside_only")
