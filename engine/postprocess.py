"""Turn raw FIM output into what an editor should show.

Why each rule: models keep going past the hole and re-type the code after the cursor (cut where the
completion starts repeating the suffix); a completion inside a line must not spill onto the next lines
(single-line mode); indentation must follow the block the cursor is in; and ghost text longer than a
screenful is noise (bound the lines).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CompletionShape:
    multiline: bool
    max_lines: int


def choose_shape(prefix: str, suffix: str, max_lines: int) -> CompletionShape:
    """Single-line when the cursor sits before code on the same line or mid-expression; else multi-line.

    A cursor at the end of a line that opens a block (``:``, ``{``, ``(``, ``=>``) or on an empty line gets a
    multi-line completion, as in Copilot.
    """
    rest_of_line = suffix.split("\n", 1)[0]
    if rest_of_line.strip() and rest_of_line.strip() not in (")", "]", "}", ");", "),", "];", "};", "})", "):"):
        return CompletionShape(False, 1)
    current_line = prefix.rsplit("\n", 1)[-1]
    if current_line.strip() == "" or current_line.rstrip().endswith((":", "{", "(", "[", "=>", "->", "do", "then")):
        return CompletionShape(True, max_lines)
    return CompletionShape(False, 1)


def _first_suffix_line(suffix: str) -> str:
    for line in suffix.split("\n"):
        if line.strip():
            return line.strip()
    return ""


def trim_completion(text: str, prefix: str, suffix: str, shape: CompletionShape) -> str:
    """Apply the shape, stop at suffix repetition, keep indentation consistent, strip trailing space."""
    if not text:
        return ""
    text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if not shape.multiline:
        lines = lines[:1]
    else:
        lines = lines[: shape.max_lines]
    # Stop where the model starts re-typing the code after the cursor.
    anchor = _first_suffix_line(suffix)
    if anchor and len(anchor) >= 3:
        for i, line in enumerate(lines):
            if i > 0 and line.strip() == anchor:
                lines = lines[:i]
                break
    rest_of_line = suffix.split("\n", 1)[0]
    if rest_of_line.strip() and lines and lines[0].endswith(rest_of_line.strip()) and len(lines[0]) > len(rest_of_line.strip()):
        lines[0] = lines[0][: -len(rest_of_line.strip())]
    # Indentation: continuation lines may not dedent below the cursor line's block when it opens one.
    if shape.multiline and len(lines) > 1:
        cursor_line = prefix.rsplit("\n", 1)[-1]
        base = len(cursor_line) - len(cursor_line.lstrip())
        kept = [lines[0]]
        for line in lines[1:]:
            indent = len(line) - len(line.lstrip())
            if line.strip() and indent < base:
                break  # the completion left the block the cursor is in
            kept.append(line)
        lines = kept
    while len(lines) > 1 and not lines[-1].strip():
        lines.pop()
    return "\n".join(line.rstrip() if i < len(lines) - 1 else line for i, line in enumerate(lines)).rstrip()
