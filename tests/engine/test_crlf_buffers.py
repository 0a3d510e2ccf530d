"""Completion prompts read buffers with ``\\n`` line ends (``to_lf``), while the index overlay of an open
buffer holds the editor's text: leaving an untouched CRLF buffer for another file must not count as an edit
(that re-parsed the file and bumped the index generation, which drops every memoised index answer)."""

from __future__ import annotations

from pathlib import Path

from engine.service import Engine

from engine_helpers import tiny_config


def test_leaving_an_untouched_crlf_buffer_does_not_reparse_it(sample_repo: Path, tiny_model: Path,
                                                              tmp_path: Path) -> None:
    windows = sample_repo / "windows.py"
    windows.write_bytes(b"from shop.pricing import checkout_total\r\n\r\ndef total(cart):\r\n    return \r\n")
    engine = Engine(tiny_config(tiny_model, tmp_path / "cache"), sample_repo)  # buffer events apply at once
    try:
        index = engine.repo_index()
        main, text = sample_repo / "main.py", (sample_repo / "main.py").read_text()
        buffer = windows.read_bytes().decode()
        engine.document_opened(windows, buffer)
        engine.document_opened(main, text)
        assert "\r" not in engine.build_context(windows, buffer, 3, 11).prompt
        generation = index.generation
        engine.build_context(main, text, 15, 12)  # completion moves to another file
        assert index.generation == generation
    finally:
        engine.close()
