"""Per-keystroke work stays local: no index writes, stable layers reused, redaction equal to the reference."""

from __future__ import annotations

import random

import pytest

from ctx_helpers import SECRETS, estimate_context, write_big_file

from engine.context.builder import build
from engine.context.current_file import PREFIX_GRID_LINES
from engine.model.prompt_format import text_format
from engine.context.redact import redact, redact_reference


@pytest.mark.parametrize("budget", [2048, 8192, 32768, 262_144])
def test_keystrokes_write_nothing_to_the_index_and_share_the_prefix(repo, index, budget):
    lines, text = write_big_file(repo, index)
    ctx = estimate_context(repo, index)
    writes = []
    real = index.set_overlay
    index.set_overlay = lambda *a, **k: (writes.append(a), real(*a, **k))  # type: ignore[method-assign]
    line = len(lines) - 1
    build(*ctx, "app/big.py", text, line, len(lines[-1]), budget)
    gen = index.generation
    typed = lines[-1]
    for extra in "ance_cents":
        typed += extra
        buffer = text.replace(lines[-1] + "\n", typed + "\n")
        res = build(*ctx, "app/big.py", buffer, line, len(typed), budget)
        assert res.prompt_tokens <= budget
        assert sum(s.tokens for s in res.sections) == res.prompt_tokens
        assert res.shared_prefix_tokens >= 0.95 * res.prompt_tokens, (budget, typed)
    assert writes == [] and index.generation == gen  # nothing re-parsed or re-ranked while typing


def test_prefix_cells_are_grid_aligned_pieces(repo, index):
    lines, text = write_big_file(repo, index)
    ctx = estimate_context(repo, index)
    line = len(lines) - 1
    res = build(*ctx, "app/big.py", text, line, len(lines[-1]), 8192)
    start = res.pieces.index(text_format("qwen").prefix_id) + 1
    end = res.pieces.index(text_format("qwen").suffix_id)
    cells = res.pieces[start:end]
    assert len(cells) > 1 and "".join(cells) == res.prefix
    assert all(c.count("\n") == PREFIX_GRID_LINES for c in cells[:-1])
    first_line = text.splitlines(keepends=True).index(cells[0].splitlines(keepends=True)[0])
    assert first_line % PREFIX_GRID_LINES == 0


def test_switching_files_syncs_the_edited_open_buffer_once(repo, index):
    ctx = estimate_context(repo, index)
    report = (repo / "app/report.py").read_text()
    index.set_overlay("app/report.py", report)  # opened in the editor
    edited = report + "\n\ndef brand_new_helper() -> int:\n    return 1\n"
    build(*ctx, "app/report.py", edited, 10, 4, 4096)
    assert index.overlays["app/report.py"] == report  # not per keystroke
    res = build(*ctx, "app/models.py", (repo / "app/models.py").read_text(), 5, 0, 4096)
    assert index.overlays["app/report.py"] == edited  # synced when completion moved on
    assert res.prompt_tokens <= 4096
    assert [d.path for d in index.definitions("brand_new_helper")] == ["app/report.py"]


def test_current_file_text_comes_only_from_the_buffer(repo, index):
    (repo / "app/report.py").write_text((repo / "app/report.py").read_text() + "\nSAVED_ONLY = 1\n")
    index.build()
    ctx = estimate_context(repo, index)
    buffer = "from app.models import Ledger\n\n\ndef unsaved():\n    ledger = Ledger()\n    ledger.\n"
    for budget in (512, 4096, 262_144):
        res = build(*ctx, "app/report.py", buffer, 5, 11, budget)
        assert "SAVED_ONLY" not in res.prompt
        assert "def balance_cents(self) -> int:" in res.prompt or budget < 1000


def _random_code(rng: random.Random) -> str:
    parts = []
    names = ["password", "api_key", "token", "x", "DB_PASSWORD", "secret", "value", "client_secret", "url"]
    values = [f'"{v}"' for v in SECRETS.values()] + ['"short"', "os.environ['PW']", "None", '"${VAR}"',
                                                   "'postgres://u:pw1234@h/db'", '"Bearer abcdef0123456789abcdefXYZ"']
    for _ in range(rng.randint(5, 60)):
        kind = rng.random()
        if kind < 0.4:
            parts.append(f"{rng.choice(names)} {rng.choice(['=', ':', '==', ':='])} {rng.choice(values)}")
        elif kind < 0.5:
            parts.append(f"{rng.choice(names).upper()}={rng.choice(list(SECRETS.values()))}")
        elif kind < 0.6:
            parts.append(f"{rng.choice(names)} =\n\n    {rng.choice(values)}")
        elif kind < 0.65:
            parts.append(f"-----BEGIN RSA PRIVATE KEY-----\n{SECRETS['pem_body']}\n-----END RSA PRIVATE KEY-----")
        else:
            parts.append(f"def f{rng.randint(0, 99)}(a, b):\n    return a + b  # token bucket, key order")
    return rng.choice(["\n", "\n\n", "\r\n"]).join(parts) + rng.choice(["", "\n"])


def test_fast_redaction_equals_the_reference():
    rng = random.Random(7)
    for _ in range(400):
        text = _random_code(rng)
        assert redact(text) == redact_reference(text), text
    for value in SECRETS.values():
        assert value not in redact(f'api_key = "{value}"\nTOKEN="{value}"\nx = 1\n') or value == SECRETS["pem_body"]
