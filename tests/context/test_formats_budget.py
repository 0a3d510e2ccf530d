"""Exact budgets on every prompt format: real vocab GGUFs per FIM family, tokenized by llama.cpp."""

from __future__ import annotations

import pytest

from engine.context.builder import build
from engine.model.context_tokenizer import VocabTokenizer, context_tokenizer
from engine.model.prompt_format import FAMILIES, detect_format, dict_lookup, text_format
from engine.context.redact import redact

from ctx_helpers import FAMILY_TOKENS, estimate_context, make_context


def test_detect_every_family_from_a_lookup_dict():
    for fam in FAMILIES:
        vocab = {t: i for i, t in enumerate([fam.prefix, fam.suffix, fam.middle, fam.repo_name or "x", fam.file_sep or "y"])}
        fmt = detect_format(dict_lookup(vocab))
        assert fmt.name == fam.name and fmt.fim
        assert fmt.prefix_id == 0 and fmt.middle_id == 2
    assert detect_format(dict_lookup({"<s>": 1})).name == "plain"


def test_text_format_renders_qwen_repo_level_prompt():
    fmt = text_format("qwen")
    pieces = fmt.repo_header("r") + fmt.file_block("a.py", "x = 1") + fmt.current_file_header("b.py") + fmt.infill("p", "s")
    assert fmt.render(pieces) == "<|repo_name|>r\n<|file_sep|>a.py\nx = 1\n<|file_sep|>b.py\n<|fim_prefix|>p<|fim_suffix|>s<|fim_middle|>"


@pytest.mark.parametrize("family", list(FAMILY_TOKENS))
def test_budget_is_exact_on_every_format(family, family_models, repo, index):
    fmt, counter = context_tokenizer(None, family_models[family])
    assert fmt.name == family
    vocab = VocabTokenizer(family_models[family])
    ctx = make_context(fmt, counter, index, repo)
    text = (repo / "app/report.py").read_text()
    for budget in (120, 200, 400, 900, 3000, 262_144):
        for line, character in ((10, 4), (4, 0), (12, 30)):
            res = build(*ctx, "app/report.py", text, line, character, budget)
            ids = []
            for piece in res.pieces:  # what the backend sends: control ids + user text tokenized without specials
                ids.extend([piece] if isinstance(piece, int) else vocab.tokenize(piece))
            assert len(ids) == res.prompt_tokens <= budget
            assert sum(s.tokens for s in res.sections) == res.prompt_tokens
            if fmt.fim:
                assert fmt.middle_id in ids or fmt.order == "spm"
    big = build(*ctx, "app/report.py", text, 10, 4, 262_144)
    for f in index.files():  # the whole (small) repository is in: every other file, whole (redacted)
        whole = redact(index.read_text(f.path) or "")
        if f.path != "app/report.py" and whole.strip():
            assert f.path in big.prompt and whole in big.prompt, f.path
    assert "class Ledger:" in big.prompt and "def total_with_tax(self, rate: float) -> int:" in big.prompt


def test_estimate_budget_and_tiny_budgets(repo, index):
    ctx = estimate_context(repo, index)
    text = (repo / "app/report.py").read_text()
    for budget in range(40, 2000, 37):
        res = build(*ctx, "app/report.py", text, 11, 10, budget)
        assert res.prompt_tokens <= budget
        assert res.tokenizer == "estimate"
    with pytest.raises(ValueError):
        build(*ctx, "app/report.py", text, 11, 10, 3)


def test_the_cursor_lines_indentation_is_left_out_of_the_prompt(repo, index):
    """After Enter the cursor sits after the indentation: the prompt ends at the line break (a token boundary
    the model saw in training; ``    ``+cursor is not one) and the result says what was left out."""
    text = "def total(items):\n    s = 0\n    \n    return s\n"
    res = build(*estimate_context(repo, index), "app/main.py", text, 2, 4, 2048)
    assert res.indent == "    "
    assert res.prefix == "def total(items):\n    s = 0\n"
    assert res.prompt.endswith("<|fim_prefix|>def total(items):\n    s = 0\n<|fim_suffix|>\n    return s\n<|fim_middle|>")
    # code before the cursor on its line: nothing is left out
    mid = build(*estimate_context(repo, index), "app/main.py", text, 1, 5, 2048)
    assert mid.indent == "" and mid.prefix.endswith("    s")
