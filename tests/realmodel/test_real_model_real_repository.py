"""The real coder model on a real repository of hundreds of files, cold cache, through ``coderflash serve``
over stdio as an editor starts it (issue 14): what a user gets on their first morning with coderflash.

The repository is 600 files of this interpreter's standard library. The cursors are sampled, not picked:
every line ``module.name(`` where ``module`` comes from ``from . import module`` (a sibling file of the
copy), ``name`` is defined in that file with ``def``/``class`` and appears nowhere else in the current file;
six of them (a fixed seed), each cut right after ``module.`` with the rest of the line removed, as the
editor's open buffer.

What is asserted is the whole path at a real size — a cold index of 600 files, the real GGUF loaded once,
repository context over a real index, an inline completion for every cursor — and that what comes back is
code: inserted at the cursor, the cut line parses again (a random-weight model writes no such thing). Which
name the model writes is reported, not asserted: at 2K tokens the 0.5B model wrote the original name for
none of these six (it wrote ``util._ensure(...)`` for ``util.info(...)``, ``spawn.prepare(...)`` for
``spawn.get_command_line(...)``), with the defining module's outline in the prompt. How often the names
come out right, against baselines, is ``bench/quality_bench.py``'s job (``xfile`` cuts).
"""

from __future__ import annotations

import ast
import random
import re
from dataclasses import dataclass
from pathlib import Path

from real_repos import copy_stdlib
from real_server import close_after_one_model_load, inline_completion, start_on

FILES = 600
CASES = 6
PARSING_REQUIRED = 5  # of six: the model may leave a call open at the end of its line once
SEED = 14
BUDGET = 2048  # tokens: a 2K prompt takes ~10 s on two cores; the default 8K would take a minute per cut
COMPLETION_TIMEOUT_MS = 120_000  # quality, not latency: a slow cold prompt must not be cut short
SIBLING_IMPORT = re.compile(r"^from \. import ([\w, ]+)$", re.M)


@dataclass(frozen=True)
class Cut:
    path: str
    line: int
    character: int
    name: str
    defined_in: str


def cross_file_cuts(repo: Path) -> list[Cut]:
    """Every ``module.name(`` use of a sibling module's function or class that the file names only there."""
    cuts = []
    for path in sorted(repo.rglob("*.py")):
        text = path.read_text(errors="replace")
        for imported in SIBLING_IMPORT.finditer(text):
            for module in (m.strip() for m in imported.group(1).split(",")):
                target = path.parent / f"{module}.py"
                if not target.is_file():
                    continue
                defined = target.read_text(errors="replace")
                for use in re.finditer(rf"\b{module}\.(\w+)\(", text):
                    name = use.group(1)
                    if len(re.findall(rf"\b{name}\b", text)) == 1 and \
                            re.search(rf"^(def|class) {name}\b", defined, re.M):
                        line = text.count("\n", 0, use.start())
                        column = use.start() - (text.rfind("\n", 0, use.start()) + 1) + len(module) + 1
                        cuts.append(Cut(str(path.relative_to(repo)), line, column, name,
                                        str(target.relative_to(repo))))
    return cuts


def cut_buffer(text: str, cut: Cut) -> str:
    lines = text.split("\n")
    lines[cut.line] = lines[cut.line][:cut.character]
    return "\n".join(lines)


def test_real_model_completes_cross_file_names_in_a_600_file_repository(real_coder_model: Path,
                                                                        tmp_path: Path) -> None:
    repo = copy_stdlib(tmp_path / "stdlib", files=FILES)
    found = cross_file_cuts(repo)
    assert len(found) >= 20, f"only {len(found)} cross-file cuts in the copy"
    cuts = random.Random(SEED).sample(found, CASES)
    # The first-token target off (a target no prompt misses): what is tested is completion with repository
    # context; with the 800 ms target a cold KV cache leaves every file out that the warm-up has not reached
    # yet, and how far it got depended on the machine's load (CI once got 4 of 6 parsing lines).
    options = {"model": str(real_coder_model), "context": {"budget": BUDGET},
               "completion": {"timeout_ms": COMPLETION_TIMEOUT_MS, "first_token_ms": COMPLETION_TIMEOUT_MS}}
    server, index = start_on(repo, tmp_path / "cache", options, 300)
    got: dict[Cut, str] = {}
    try:
        assert index["files"] >= FILES - 5, index  # a few files of the copy may not be Python the grammar takes
        for cut in cuts:
            path = repo / cut.path
            got[cut] = inline_completion(server, path, cut_buffer(path.read_text(errors="replace"), cut),
                                         cut.line, cut.character)
            server.notify("textDocument/didClose", {"textDocument": {"uri": path.as_uri()}})
        close_after_one_model_load(server)
    finally:
        server.proc.kill()
    report = {f"{c.path}:{c.line + 1} {c.name} (from {c.defined_in})": got[c] for c in cuts}
    assert all(text.strip() and "\n" not in text for text in got.values()), report
    parsing = [c for c in cuts if line_parses(repo, c, got[c])]
    assert len(parsing) >= PARSING_REQUIRED, f"{len(parsing)} of {CASES} completed lines parse: {report}"


def line_parses(repo: Path, cut: Cut, completion: str) -> bool:
    """Whether the cut line, completed with ``completion``, is a statement that parses (its indentation
    taken off; a line that opens a block gets a ``pass`` body)."""
    line = (repo / cut.path).read_text(errors="replace").split("\n")[cut.line][:cut.character] + completion
    statement = line.strip()
    if statement.endswith(":"):
        statement += " pass"
    try:
        ast.parse(statement)
    except SyntaxError:
        return False
    return True

