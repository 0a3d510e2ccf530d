"""The repository layers of a file's prompt are kept while the repository is unchanged (typing in the current
file must not rebuild them: the model's KV cache keeps their tokens). Open buffers are part of the repository:
the text of a buffer the editor closed without saving must leave the layers that showed it, in every file's
prompt, not stay there until something changes on disk."""

from __future__ import annotations

from pathlib import Path

from engine.service import Engine

from engine_helpers import tiny_config

REPORT = "from shop.pricing import VAT_RATE, checkout_total\n\n\ndef vat_percent() -> float:\n    return \n"


def _engine(sample_repo: Path, tiny_model: Path, tmp_path: Path) -> Engine:
    engine = Engine(tiny_config(tiny_model, tmp_path / "cache"), sample_repo)  # buffer events apply at once
    engine.reindex()
    return engine


def test_a_buffer_closed_without_saving_leaves_the_prompts_of_other_files(sample_repo: Path, tiny_model: Path,
                                                                          tmp_path: Path) -> None:
    engine = _engine(sample_repo, tiny_model, tmp_path)
    try:
        main, pricing, report = sample_repo / "main.py", sample_repo / "shop/pricing.py", sample_repo / "report.py"
        engine.document_opened(main, main.read_text())
        assert "VAT_RATE = 0.2\n" in engine.build_context(main, main.read_text(), 15, 12).prompt
        on_disk = pricing.read_text()
        engine.document_opened(pricing, on_disk.replace("VAT_RATE = 0.2", "VAT_RATE = 0.2  # UNSAVED_EDIT"))
        engine.document_opened(report, REPORT)  # a new file that imports pricing.py
        assert "UNSAVED_EDIT" in engine.build_context(report, REPORT, 4, 11).prompt  # the open buffer wins
        engine.document_closed(pricing)  # without saving: the disk never had the edit
        typed = REPORT + "\n\ndef total_of(cart):\n    return \n"
        engine.document_changed(report, typed)
        prompt = engine.build_context(report, typed, 8, 11).prompt
        assert "UNSAVED_EDIT" not in prompt
        assert "VAT_RATE = 0.2\n" in prompt  # pricing.py as the disk has it
        assert "UNSAVED_EDIT" not in engine.build_context(main, main.read_text(), 15, 12).prompt
    finally:
        engine.close()


def test_typing_keeps_the_layers_and_only_a_changed_buffer_of_another_file_renews_them(
        sample_repo: Path, tiny_model: Path, tmp_path: Path) -> None:
    engine = _engine(sample_repo, tiny_model, tmp_path)
    try:
        main, pricing = sample_repo / "main.py", sample_repo / "shop/pricing.py"
        cache = engine.context_workspace()[1]
        text = main.read_text()
        engine.document_opened(main, text)
        engine.build_context(main, text, 15, 12)
        layer, wide = next(reversed(cache.file_layers.values())), cache.repo_wide
        typed = "    total = "
        for ch in "checkout_total(":
            typed += ch
            text = text.replace(text.splitlines()[15], typed)
            engine.document_changed(main, text)
            res = engine.build_context(main, text, 15, len(typed))
            assert next(reversed(cache.file_layers.values())) is layer and cache.repo_wide is wide
            assert res.shared_prefix_tokens >= 0.9 * res.prompt_tokens
        engine.document_opened(pricing, pricing.read_text())  # opened, not edited: the repository is the same
        engine.build_context(main, text, 15, len(typed))
        assert next(reversed(cache.file_layers.values())) is layer and cache.repo_wide is wide
        edited = pricing.read_text().replace("VAT_RATE = 0.2", "VAT_RATE = 0.25")
        engine.document_changed(pricing, edited)
        engine.build_context(pricing, edited, 4, 0)  # completing there puts the edit into its overlay
        assert "VAT_RATE = 0.25\n" in engine.build_context(main, text, 15, len(typed)).prompt
        renewed = next(reversed(cache.file_layers.values()))
        assert renewed is not layer
        engine.build_context(main, text + "\n", 15, len(typed))
        assert next(reversed(cache.file_layers.values())) is renewed
    finally:
        engine.close()


def test_a_disk_edit_that_keeps_the_size_and_line_count_renews_the_layers(sample_repo: Path, tiny_model: Path,
                                                                          tmp_path: Path) -> None:
    """The repository's identity counted each file by size and line count: ``0.2`` → ``0.3`` on disk (a
    pull, another editor) kept the layer that showed ``0.2``."""
    engine = _engine(sample_repo, tiny_model, tmp_path)
    try:
        main, pricing = sample_repo / "main.py", sample_repo / "shop/pricing.py"
        engine.document_opened(main, main.read_text())
        assert "VAT_RATE = 0.2\n" in engine.build_context(main, main.read_text(), 15, 12).prompt
        pricing.write_text(pricing.read_text().replace("VAT_RATE = 0.2", "VAT_RATE = 0.3"))
        engine.repo_index().update_paths(["shop/pricing.py"])  # what the watcher does
        prompt = engine.build_context(main, main.read_text(), 15, 12).prompt
        assert "VAT_RATE = 0.3\n" in prompt and "VAT_RATE = 0.2\n" not in prompt
    finally:
        engine.close()
