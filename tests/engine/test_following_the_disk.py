"""The engine as the language server runs it (index built in the background, the disk watched) on a real
repository: a branch switch that rewrites hundreds of files is followed, re-parsing only what changed;
ignored trees get no watch; past the watch limit the index is polled instead."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from engine.service import Engine

from engine_helpers import tiny_config
from real_repos import copy_stdlib

PROVIDER_OLD = "def compute_total(items):\n    return sum(items)\n"
PROVIDER_NEW = "def compute_grand_total(items, tax_rate):\n    return sum(items) * (1 + tax_rate)\n"
CONSUMER_OLD = "from shop.pricing import compute_total\n\n\ndef pay(items):\n    amount = compute_total(items)\n    return amount\n"
CONSUMER_NEW = ("from shop.pricing import compute_grand_total\n\n\ndef pay(items):\n"
                "    amount = compute_grand_total(items, 0.2)\n    return amount\n")


def _replace(path: Path, text: str) -> None:
    """Write the way git checkout and most editors do: a temporary file renamed over the target."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _engine(repo: Path, tiny_model: Path, cache: Path) -> Engine:
    engine = Engine(tiny_config(tiny_model, cache), repo, background_index=True)
    engine.reindex()
    return engine


def test_branch_switch_is_followed_reparsing_only_changed_files(tiny_model: Path, tmp_path: Path) -> None:
    repo = copy_stdlib(tmp_path / "repo", files=600)
    (repo / "shop").mkdir()
    (repo / "shop" / "__init__.py").write_text("")
    (repo / "shop" / "pricing.py").write_text(PROVIDER_OLD)
    (repo / "shop" / "checkout.py").write_text(CONSUMER_OLD)
    (repo / ".git" / "objects").mkdir(parents=True)
    (repo / "node_modules" / "left-pad" / "lib").mkdir(parents=True)
    (repo / "build" / "lib").mkdir(parents=True)
    (repo / ".gitignore").write_text("build/\n")
    engine = _engine(repo, tiny_model, tmp_path / "cache")
    try:
        assert engine.start_watching() == "inotify"
        index = engine.repo_index()
        watched = index.watched_directories()
        assert "asyncio" in watched and "" in watched
        assert not [d for d in watched if d.split("/")[0] in (".git", "node_modules", "build")], watched
        consumer = repo / "shop" / "checkout.py"
        line, character = 4, len("    amount = ")
        assert "def compute_total(items)" in engine.build_context(consumer, CONSUMER_OLD, line, character).prompt

        files = sorted(p for p in repo.rglob("*.py") if p.parent != repo / "shop" and ".git" not in p.parts)
        deleted, changed, identical = files[:100], files[100:200], files[200:250]
        parsed_before = index.parsed_total
        for path in deleted:
            path.unlink()
        for path in changed:
            _replace(path, path.read_text() + "\n# on the other branch\n")
        for path in identical:
            _replace(path, path.read_text())
        (repo / "newpkg" / "sub").mkdir(parents=True)
        created = [repo / "newpkg" / "sub" / f"mod_{i}.py" for i in range(50)] + [repo / f"gen_{i}.py" for i in range(50)]
        for i, path in enumerate(created):
            path.write_text(f"def generated_{i}(x):\n    return x + {i}\n")
        _replace(repo / "shop" / "pricing.py", PROVIDER_NEW)
        _replace(consumer, CONSUMER_NEW)
        for i in range(50):  # what git itself writes, and a package manager: never indexed, never watched
            (repo / ".git" / "objects" / f"obj{i}").write_bytes(b"x" * 64)
            (repo / "node_modules" / "left-pad" / "lib" / f"f{i}.js").write_text("module.exports = 1;\n")
            (repo / "build" / "lib" / f"out{i}.py").write_text("x = 1\n")
        settled = time.monotonic()
        expected_parses = len(changed) + len(created) + 2
        prompt = ""
        while time.monotonic() - settled < 30:
            prompt = engine.build_context(consumer, CONSUMER_NEW, line, len("    amount = ")).prompt
            if "def compute_grand_total(items, tax_rate)" in prompt and index.parsed_total - parsed_before >= expected_parses:
                break
            time.sleep(0.05)
        latency = time.monotonic() - settled
        print(f"branch switch of {len(deleted) + len(changed) + len(identical) + len(created) + 2} files "
              f"reflected {latency:.2f}s after the disk settled")
        assert "def compute_grand_total(items, tax_rate)" in prompt
        time.sleep(1.0)  # late events must not cause more parsing either
        assert index.parsed_total - parsed_before == expected_parses
        paths = {f.path for f in index.files()}
        assert not {p.relative_to(repo).as_posix() for p in deleted} & paths
        assert {p.relative_to(repo).as_posix() for p in created} <= paths
        assert not [p for p in paths if p.startswith(("build/", "node_modules/", ".git/"))]
    finally:
        engine.close()


def test_past_the_watch_limit_the_index_is_polled(sample_repo: Path, tiny_model: Path, tmp_path: Path) -> None:
    (sample_repo / "pkg" / "deep").mkdir(parents=True)
    cfg = tiny_config(tiny_model, tmp_path / "cache")
    cfg.index.watch_limit = 1
    engine = Engine(cfg, sample_repo, background_index=True)
    engine.reindex()
    try:
        assert engine.start_watching() == "polling"
        assert "watch limit" in engine.watch_info()["limit_message"]
        (sample_repo / "pkg" / "deep" / "late.py").write_text("def arrived_late():\n    return 1\n")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if engine.repo_index().definitions("arrived_late"):
                break
            time.sleep(0.1)
        assert engine.repo_index().definitions("arrived_late")
    finally:
        engine.close()
        shutil.rmtree(sample_repo / "pkg", ignore_errors=True)
