"""Secrets never reach the prompt; cache-stable layout; chat context."""

from __future__ import annotations

from ctx_helpers import SECRETS, estimate_context, make_context, write_big_file

from engine.context.builder import build, chat_context
from engine.context.redact import redact


def test_planted_secrets_never_reach_the_prompt_at_256k(repo, index, tiny_model):
    from engine.model.context_tokenizer import context_tokenizer

    current = (repo / "app/report.py").read_text() + f'\nTOKEN = "{SECRETS["github"]}"\npassword = "{SECRETS["password"]}"\n'
    for fmt, counter in (context_tokenizer(None, None), context_tokenizer(None, tiny_model)):
        ctx = make_context(fmt, counter, index, repo)
        for path, text, line in (("app/report.py", current, 10), ("app/settings.py", (repo / "app/settings.py").read_text(), 14)):
            res = build(*ctx, path, text, line, 0, 262_144)
            assert "def database_url() -> str:" in res.prompt or path == "app/settings.py"
            assert "AKIA" not in res.prompt
            for value in SECRETS.values():
                assert value not in res.prompt, value
            assert "<redacted>" in res.prompt
        chat = chat_context(*ctx, 100_000, "app/report.py", current, 10)
        assert "database_url" in chat and all(v not in chat for v in SECRETS.values())


def test_redaction_keeps_code_shape():
    assert redact('password = os.environ["PW"]') == 'password = os.environ["PW"]'
    assert redact('api_key = "sk-proj-abcdefghijklmnopqrstuvwx"') == 'api_key = "<redacted>"'
    assert redact("mysql://root:hunter2pw@localhost/db") == "mysql://root:<redacted>@localhost/db"


def test_consecutive_keystrokes_share_the_prompt_prefix(repo, index):
    lines, text = write_big_file(repo, index)
    ctx = estimate_context(repo, index)
    line = len(lines) - 1
    base = build(*ctx, "app/big.py", text, line, len(lines[-1]), 8192)
    assert base.shared_prefix_tokens == 0
    typed = text.replace("ledger.bal\n", "ledger.balan\n")
    nxt = build(*ctx, "app/big.py", typed, line, len(lines[-1]) + 2, 8192)
    assert nxt.prompt_tokens <= 8192
    assert nxt.shared_prefix_tokens >= 0.95 * nxt.prompt_tokens
    kinds = [s.kind for s in nxt.sections]
    assert kinds[-3:] == ["file_header", "current_prefix", "current_suffix"]  # current file last
    assert "def balance_cents(self) -> int:" in nxt.prompt  # receiver `ledger.` → Ledger's members


def test_chat_context_within_budget(repo, index):
    ctx = estimate_context(repo, index)
    counter = ctx[0].counter
    for budget in (50, 300, 5000):
        text = chat_context(*ctx, budget, "app/report.py")
        assert counter.count(text) <= budget
    assert "File: app/models.py" in chat_context(*ctx, 5000)
