"""Definition coverage against universal-ctags (used by the tests and the benchmarks).

A ctags definition counts as found when the index has a definition with the
same name whose name line (or start line) equals ctags's line.  Only the kinds
the acceptance criterion names are compared: function, method, class, struct,
interface (plus ctags's spellings of them: Go ``func``, JS ``generator``).

ctags, like tree-sitter, does not look into Rust macro bodies, and real crates wrap whole modules in
item-level macros (tokio's ``cfg_rt! { ... }``).  So that the oracle still sees those items, ctags
reads Rust files with each line that opens such a block (``cfg_rt! {``) rewritten as a module
(``mod cfg_rt {``): same lines, same positions, items inside now visible.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections import defaultdict
from typing import Iterable

from .languages import language_for_path
from .parser import parse_source

COMPARED_KINDS = frozenset({"function", "method", "class", "struct", "interface", "func", "generator"})


#: A line that opens an item-level macro block in Rust: ``cfg_rt! {`` (optionally ``crate::cfg_rt! {``).
_ITEM_MACRO_OPEN = re.compile(r"^([ \t]*)(?:[A-Za-z_]\w*::)*([A-Za-z_]\w*)![ \t]*\{[ \t]*$", re.M)


def open_item_macros(text: str) -> str:
    """Rust source with every ``name! {`` line rewritten as ``mod name {`` (line numbers unchanged)."""
    return _ITEM_MACRO_OPEN.sub(lambda m: f"{m.group(1)}mod {m.group(2)} {{", text)


def _run_ctags(root: str, paths: list[str]) -> list[dict]:
    proc = subprocess.run(
        ["ctags", "--output-format=json", "--fields=+nKz", "-f", "-", "-L", "-"],
        input="\n".join(paths), cwd=root, capture_output=True, text=True, check=False)
    tags = []
    for line in proc.stdout.splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if d.get("_type") == "tag":
            tags.append(d)
    return tags


def ctags_tags(root: str, rel_paths: Iterable[str]) -> list[dict]:
    """Every tag ctags reports for the files (JSON objects), Rust item-level macro blocks opened up."""
    paths = list(rel_paths)
    rust = [p for p in paths if p.endswith(".rs")]
    tags = _run_ctags(root, [p for p in paths if not p.endswith(".rs")]) if len(rust) < len(paths) else []
    if rust:
        with tempfile.TemporaryDirectory(prefix="ctags-rust-") as tmp:
            for rel in rust:
                try:
                    with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
                        text = f.read()
                except OSError:
                    continue
                os.makedirs(os.path.dirname(os.path.join(tmp, rel)), exist_ok=True)
                with open(os.path.join(tmp, rel), "w", encoding="utf-8") as f:
                    f.write(open_item_macros(text))
            tags.extend(_run_ctags(tmp, rust))
    return tags


def ctags_definitions(root: str, rel_paths: Iterable[str]) -> list[tuple[str, str, int, str]]:
    """(path, name, 0-based line, kind) for the compared kinds, from ``ctags --output-format=json``."""
    out: list[tuple[str, str, int, str]] = []
    for d in ctags_tags(root, rel_paths):
        if d.get("kind") not in COMPARED_KINDS:
            continue
        name = d.get("name", "")
        if not name or name.startswith(("__anon", "Anonymous")) or name == "<lambda>":
            continue  # ctags's invented names for anonymous functions/classes
        out.append((d["path"], name, int(d.get("line", 0)) - 1, d["kind"]))
    return out


def _norm(name: str) -> str:
    return name.lstrip("#")  # JS private methods: ctags drops the '#'


def index_definitions(root: str, rel_paths: Iterable[str]) -> dict[str, set[tuple[str, int]]]:
    """path -> {(name, line)} for every line of each definition's header (name line .. end of signature).

    ctags reports the line of the name for some languages and the line where the
    header ends for others (multi-line TypeScript ``interface X\n extends ...``).
    """
    res: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for rel in rel_paths:
        lang = language_for_path(rel)
        try:
            with open(os.path.join(root, rel), "rb") as f:
                data = f.read()
        except OSError:
            continue
        for d in parse_source(lang, data).defs:  # type: ignore[arg-type]
            name = _norm(d[0])
            first = min(d[5], d[10])
            last = max(d[10], d[5] + d[3].count("\n"))
            for line in range(first, last + 1):
                res[rel].add((name, line))
    return res


def coverage(root: str, rel_paths: Iterable[str]) -> dict[str, object]:
    """Per-language {ctags, found, ratio, missing(sample)} comparing the index to ctags."""
    paths = list(rel_paths)
    ours = index_definitions(root, paths)
    per: dict[str, dict[str, object]] = {}
    for path, name, line, kind in ctags_definitions(root, paths):
        lang = language_for_path(path) or "unknown"
        st = per.setdefault(lang, {"ctags": 0, "found": 0, "missing": []})
        st["ctags"] = int(st["ctags"]) + 1  # type: ignore[call-overload]
        if (_norm(name), line) in ours.get(path, ()):
            st["found"] = int(st["found"]) + 1  # type: ignore[call-overload]
        else:
            missing = st["missing"]
            assert isinstance(missing, list)
            if len(missing) < 15:
                missing.append(f"{path}:{line + 1} {kind} {name}")
    for st in per.values():
        st["ratio"] = round(int(st["found"]) / int(st["ctags"]), 4) if st["ctags"] else 1.0  # type: ignore[call-overload]
    return per
