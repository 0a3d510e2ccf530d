"""Code actions computed by the model: fix a diagnostic, add a docstring, complete a function body,
generate tests, rewrite a selection, explain.

Why lazily: listing actions is free (no model call); the model runs only for the action the user picks
(``codeAction/resolve``). Every result is a set of text edits (and files to create) that the language
server turns into one WorkspaceEdit, so the client applies it with undo.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from engine.config import Config
from engine.context.redact import kind_for, redact
from engine.inference.scheduler import Priority
from engine.model.backend import Backend, GenerationRequest, GenerationResult, Sampling, chat_stop_ids
from engine.text_position import line_ending, line_texts, with_line_ending
from indexer.languages import language_for_path
from indexer.regular_files import read_regular_file
from indexer.models import Definition

DEFAULT_REWRITE_INSTRUCTION = "Improve this code: make it clearer and more idiomatic without changing its behaviour."

ACTION_TITLES = {
    "docstring": "coderflash: Add docstring",
    "body": "coderflash: Complete function body",
    "tests": "coderflash: Generate tests",
    "rewrite": "coderflash: Rewrite selection",
    "explain": "coderflash: Explain this code",
}

#: A definition header in most languages, read from one line without parsing. Listing actions only asks
#: whether one is at or above the cursor; the fallback of ``find_enclosing`` takes the Python-like ones
#: (``def``/``class``/``function`` and a name, no modifiers) and their indentation.
DEFINITION_HEADER = re.compile(
    r"^(?P<indent>\s*)(?P<modifiers>(?:export\s+)?(?:pub(?:\(\w+\))?\s+)?)(?:async\s+)?(?P<static>static\s+)?"
    r"(?:(?P<kind>def|class|function|fn|func|fun|struct|interface|impl|module)(?:\s+(?P<name>\w+))?"
    r"|(?:public|private|protected)\s+[\w<>\[\], ]+\s*\()"
)
_INDENTED_KINDS = ("def", "class", "function")
_MAX_TOKENS = 512  # an action's answer: a function, a docstring, a test file
_COMMENT_STYLE = {"ruby": "#", "shell": "#", "lua": "--"}  # others: /** */ (Python: a docstring)
_FENCE = re.compile(r"```[\w+#.-]*[^\n]*\n(.*?)(?:```|\Z)", re.S)


class SymbolIndex(Protocol):
    """What the actions need of the workspace index (indexer.api.Index)."""

    def set_overlay(self, path: str, text: str, keep_if: Callable[[], bool] | None = None) -> None: ...

    def symbol_at(self, path: str, line: int) -> Definition | None: ...


class ActionEngine(Protocol):
    """What the actions need of a workspace's engine (engine.service.Engine)."""

    @property
    def config(self) -> Config: ...

    @property
    def root(self) -> Path | None: ...

    @property
    def backend(self) -> Backend: ...

    def repo_index(self) -> SymbolIndex | None: ...

    def is_open(self, rel: str) -> bool: ...

    def relative_path(self, path: Path | str) -> str: ...

    def is_secret_document(self, path: Path | str) -> bool: ...

    def generate(self, request: GenerationRequest, *, priority: Priority = Priority.ACTION) -> Future[GenerationResult]: ...

    def chat(self, messages: list[dict], *, max_tokens: int | None = None,
             sampling: Sampling | None = None) -> Future[GenerationResult]: ...


@dataclass
class TextEdit:
    path: str  # absolute path
    start_line: int
    start_character: int
    end_line: int
    end_character: int
    new_text: str


@dataclass
class ActionResult:
    edits: list[TextEdit] = field(default_factory=list)
    create_files: list[str] = field(default_factory=list)  # absolute paths created before the edits apply
    markdown: str | None = None  # for "explain"


@dataclass
class Enclosing:
    """The definition around the cursor: its whole range and where its header ends."""

    name: str
    start_line: int
    end_line: int
    header_end_line: int
    indent: str


def inside_definition(lines: Sequence[str], line: int) -> bool:
    """Cheap check for listing actions (no model, no index): is there a definition header at ``line`` or
    within 400 lines above it?"""
    for number in range(min(line, len(lines) - 1), max(-1, line - 400), -1):
        if DEFINITION_HEADER.match(lines[number]):
            return True
    return False


def _language(path: str) -> str:
    """The language name for prompts and conventions (the index's one extension map)."""
    return language_for_path(path) or "text"


def extract_code(answer: str) -> str:
    """The first fenced code block of an answer, else the answer itself (models often skip fences)."""
    match = _FENCE.search(answer)
    code = match.group(1) if match else answer
    return code.strip("\n")


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _block(lines: Sequence[str], start: int, end: int) -> str:
    return "\n".join(lines[start : end + 1])


def _replace_lines(path: str, lines: Sequence[str], start: int, end: int, new_text: str) -> TextEdit:
    end = min(end, len(lines) - 1)
    return TextEdit(path, start, 0, end, len(lines[end]), new_text)


def _file_head(lines: Sequence[str], enc: Enclosing) -> str:
    """The file's first lines above the definition (its imports), as a hint for completing a body."""
    head = "\n".join(lines[: min(enc.start_line, 40)])
    return f"The file starts with:\n```\n{head}\n```" if head.strip() else ""


def find_enclosing(engine: ActionEngine, path: str, text: str, line: int) -> Enclosing | None:
    """The innermost function/method/class around ``line``: from the index (tree-sitter) when available,
    else an indentation heuristic for Python-like code."""
    lines = line_texts(text)  # the editor's lines: a lone \r ends one too
    try:
        index = engine.repo_index()
    except Exception:
        index = None
    if index is not None:
        rel = engine.relative_path(path)
        try:
            index.set_overlay(rel, text, lambda: engine.is_open(rel))  # not put back once the editor closed it
            definition = index.symbol_at(rel, line)
        except Exception:
            definition = None
        if definition is not None:
            header_lines = max(1, definition.signature.count("\n") + 1)
            start = definition.start_line
            return Enclosing(definition.name, start, definition.end_line,
                             min(start + header_lines - 1, definition.end_line),
                             _indent_of(lines[start]) if start < len(lines) else "")
    for number in range(min(line, len(lines) - 1), -1, -1):
        match = DEFINITION_HEADER.match(lines[number])
        if (match and match["kind"] in _INDENTED_KINDS and match["name"]
                and not match["modifiers"] and not match["static"]):
            indent = match["indent"]
            end = number
            for later in range(number + 1, len(lines)):
                if lines[later].strip() and len(_indent_of(lines[later])) <= len(indent):
                    break
                end = later
            header_end = number
            while header_end < end and not lines[header_end].rstrip().endswith((":", "{")):
                header_end += 1
            return Enclosing(match["name"], number, end, header_end, indent)
    return None


def test_file_for(path: str, root: Path | None) -> str:
    """Where generated tests go, following each ecosystem's convention."""
    p = Path(path)
    language = _language(path)
    if language == "python":
        tests_dir = (root / "tests") if root is not None else None
        if tests_dir is not None and tests_dir.is_dir():
            return str(tests_dir / f"test_{p.stem}.py")
        return str(p.with_name(f"test_{p.stem}.py"))
    if language in ("javascript", "typescript", "tsx"):
        return str(p.with_name(f"{p.stem}.test{p.suffix}"))
    if language == "go":
        return str(p.with_name(f"{p.stem}_test.go"))
    if language == "rust":
        return str(p)  # Rust keeps unit tests in the same file (#[cfg(test)] mod tests)
    return str(p.with_name(f"{p.stem}_test{p.suffix}"))


class ActionRunner:
    """Runs one code action on the shared model (code-action priority: below keystrokes, above chat)."""

    def __init__(self, engine: ActionEngine) -> None:
        self.engine = engine

    # -- model ------------------------------------------------------------------------------------
    def ask(self, instruction: str, code: str, path: str, extra: str = "") -> str:
        """One chat turn at action priority, greedy; returns the answer."""
        backend = self.engine.backend
        system = ("You are coderflash, a coding assistant inside the user's editor. Answer with code only, "
                  "in one fenced code block, unless asked to explain.")
        user = f"{instruction}\n\nFile: {self.engine.relative_path(path)}\n```{_language(path)}\n{redact(code, kind_for(path))}\n```"
        if extra:
            user += "\n\n" + redact(extra)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        greedy = Sampling(temperature=0.0)
        if self.engine.config.backend == "openai":  # the server renders its own template
            return self.engine.chat(messages, max_tokens=_MAX_TOKENS, sampling=greedy).result().text
        request = GenerationRequest(pieces=backend.render_chat(messages), max_tokens=_MAX_TOKENS,
                                    sampling=greedy, stop_ids=chat_stop_ids(backend))
        return self.engine.generate(request, priority=Priority.ACTION).result().text

    # -- actions ----------------------------------------------------------------------------------
    def run(self, kind: str, path: str, text: str, start_line: int, end_line: int, *,
            diagnostic: dict[str, Any] | None = None, instruction: str | None = None) -> ActionResult:
        """The action's edits, their text written with the line end of the file each goes into (the model
        reads and writes ``\\n``): a CRLF document got ``\\n`` lines inserted among its ``\\r\\n`` ones."""
        lines = line_texts(text)  # indexed by the editor's line numbers: a lone \r ends a line too
        eol = line_ending(text)
        if kind == "quickfix" and diagnostic is not None:
            result = self._fix(path, lines, diagnostic)
        elif kind == "rewrite":
            result = self._rewrite(path, lines, start_line, end_line, instruction or DEFAULT_REWRITE_INSTRUCTION)
        elif kind == "explain":
            return self._explain(path, lines, start_line, end_line)
        else:
            enclosing = find_enclosing(self.engine, path, text, start_line)
            if enclosing is None:
                raise ValueError("no function or class around the cursor")
            if kind == "docstring":
                result = self._docstring(path, lines, enclosing)
            elif kind == "body":
                result = self._body(path, lines, enclosing)
            elif kind == "tests":
                result = self._tests(path, lines, enclosing, eol)
            else:
                raise ValueError(f"unknown action {kind!r}")
        for edit in result.edits:
            if edit.path == path:  # another file's (a test file's) are written in its own line end by _tests
                edit.new_text = with_line_ending(edit.new_text, eol)
        return result

    def _fix(self, path: str, lines: Sequence[str], diagnostic: dict[str, Any]) -> ActionResult:
        start = int(diagnostic["start_line"])
        end = int(diagnostic.get("end_line", start))
        lo, hi = max(0, start - 3), min(len(lines) - 1, end + 3)
        answer = self.ask(f"Fix this problem reported at line {start + 1}: {diagnostic.get('message', '')}. "
                          f"Reply with the corrected version of exactly these lines.", _block(lines, lo, hi), path)
        return ActionResult([_replace_lines(path, lines, lo, hi, extract_code(answer))])

    def _rewrite(self, path: str, lines: Sequence[str], start: int, end: int, instruction: str) -> ActionResult:
        answer = self.ask(f"Rewrite this code. Instruction: {instruction}", _block(lines, start, end), path)
        return ActionResult([_replace_lines(path, lines, start, end, extract_code(answer))])

    def _explain(self, path: str, lines: Sequence[str], start: int, end: int) -> ActionResult:
        if end <= start:
            start, end = max(0, start - 10), min(len(lines) - 1, start + 10)
        answer = self.ask("Explain what this code does, briefly, in Markdown.", _block(lines, start, end), path)
        rel = self.engine.relative_path(path)
        return ActionResult(markdown=f"# {rel}, lines {start + 1}–{end + 1}\n\n{answer.strip()}\n")

    def _docstring(self, path: str, lines: Sequence[str], enc: Enclosing) -> ActionResult:
        answer = self.ask(f"Write a concise docstring for `{enc.name}`: one summary line, then what the "
                          "arguments and result mean. Reply with the docstring text only.",
                          _block(lines, enc.start_line, enc.end_line), path)
        doc = extract_code(answer).strip().strip('"').strip("'").strip() or f"{enc.name}."
        language = _language(path)
        if language == "python":
            body_indent = enc.indent + "    "
            for later in lines[enc.header_end_line + 1 : enc.end_line + 1]:
                if later.strip():
                    body_indent = _indent_of(later)
                    break
            doc_lines = doc.replace('"""', "'''").split("\n")
            block = "\n".join([f'{body_indent}"""{doc_lines[0]}'] + [f"{body_indent}{d}" if d else "" for d in doc_lines[1:]])
            block += ("\n" + body_indent if len(doc_lines) > 1 else "") + '"""\n'
            line = enc.header_end_line + 1
            return ActionResult([TextEdit(path, line, 0, line, 0, block)])
        marker = _COMMENT_STYLE.get(language)
        if marker:
            block = "\n".join(f"{enc.indent}{marker} {d}".rstrip() for d in doc.split("\n")) + "\n"
        else:
            block = f"{enc.indent}/**\n" + "\n".join(f"{enc.indent} * {d}".rstrip() for d in doc.split("\n")) + f"\n{enc.indent} */\n"
        return ActionResult([TextEdit(path, enc.start_line, 0, enc.start_line, 0, block)])

    def _body(self, path: str, lines: Sequence[str], enc: Enclosing) -> ActionResult:
        answer = self.ask(f"Complete the body of `{enc.name}`. Keep its signature. Reply with the whole "
                          "definition.", _block(lines, enc.start_line, enc.end_line), path,
                          extra=_file_head(lines, enc))
        return ActionResult([_replace_lines(path, lines, enc.start_line, enc.end_line, extract_code(answer))])

    def _check_test_target(self, target: Path) -> None:
        """ValueError (shown to the user, no edit) for a test file that resolves, symlinks followed, outside
        the workspace root or that is a secret file by its own name or its target's: SECURITY.md promises
        neither is read nor written, and a ``test_main.py`` linked to ``../notes.txt`` or ``.env`` got the
        model's output appended to it."""
        root = self.engine.root
        if root is not None:
            resolved, real_root = Path(os.path.realpath(target)), Path(os.path.realpath(root))
            if resolved != real_root and real_root not in resolved.parents:
                raise ValueError(f"refused: the test file {target.name} resolves outside the workspace")
        if self.engine.is_secret_document(target):  # by its own name or its symlink target's
            raise ValueError(f"refused: the test file {target.name} is a secret file")

    def _tests(self, path: str, lines: Sequence[str], enc: Enclosing, eol: str) -> ActionResult:
        """Tests for ``enc``: appended to the test file, in that file's line end, or a new test file, in
        CRLF when the source file (line end ``eol``) is CRLF, as Git's autocrlf and VS Code's ``files.eol``
        on Windows would write it, else ``\\n`` (a lone-CR source does not spread that legacy ending)."""
        new_file_eol = "\r\n" if eol == "\r\n" else "\n"
        target = test_file_for(path, self.engine.root)
        target_path = Path(target)
        if target != path:  # refused before the model runs
            self._check_test_target(target_path)
        answer = self.ask(f"Write unit tests for `{enc.name}` using the project's usual test framework. "
                          "Reply with the test code only.", _block(lines, enc.start_line, enc.end_line), path)
        code = extract_code(answer).rstrip() + "\n"
        if target == path:  # same file (Rust): append at the end
            last = len(lines) - 1
            return ActionResult([TextEdit(path, last, len(lines[last]), last, len(lines[last]), "\n\n" + code)])
        if target_path.exists():
            try:
                data = read_regular_file(target_path, self.engine.config.index.max_file_size)
            except OSError as exc:  # a FIFO, a device, too large: refused, never opened blocking
                raise ValueError(f"cannot add tests to {self.engine.relative_path(target)}: {exc}") from exc
            existing_text = data.decode("utf-8", errors="replace")
            existing = line_texts(existing_text)
            last = len(existing) - 1
            addition = ("\n\n" if existing[last].strip() else "\n") + code
            target_eol = line_ending(existing_text) if len(existing) > 1 else new_file_eol  # none yet: as new
            return ActionResult([TextEdit(target, last, len(existing[last]), last, len(existing[last]),
                                          with_line_ending(addition, target_eol))])
        header = ""
        if _language(path) == "python":
            module = self.engine.relative_path(path)[:-3].replace("/", ".")
            header = f"from {module} import {enc.name}\n\n\n"
        return ActionResult([TextEdit(target, 0, 0, 0, 0, with_line_ending(header + code, new_file_eol))],
                            create_files=[target])
