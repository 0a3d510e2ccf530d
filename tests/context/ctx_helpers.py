"""Helpers shared by the context tests (imported by name: tests/context is on sys.path)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from engine.context.builder import ContextCache, Workspace
from engine.model.prompt_format import PromptFormat, text_format
from engine.model.synth import BYTE_TO_UNICODE, CHATML_TEMPLATE, TOKEN_CONTROL, TOKEN_NORMAL, Vocabulary
from engine.model.tokens import TokenCounter

FAMILY_TOKENS = {
    "qwen": None,  # the default byte vocabulary carries Qwen3's real special tokens
    "starcoder": ["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<fim_pad>", "<repo_name>", "<file_sep>"],
    "deepseek": ["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", "<｜end▁of▁sentence｜>"],
    "codellama": ["<PRE>", "<SUF>", "<MID>", "<EOT>"],
    "codestral": ["[PREFIX]", "[SUFFIX]", "[MIDDLE]", "</s>"],
    "plain": [],
}


def family_vocabulary(family: str) -> Vocabulary | None:
    specials = FAMILY_TOKENS[family]
    if specials is None:
        return None
    tokens = [BYTE_TO_UNICODE[b] for b in range(256)]
    space = BYTE_TO_UNICODE[ord(" ")]
    tokens.append(space + space)
    types = [TOKEN_NORMAL] * len(tokens)
    for special in ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *specials]:
        tokens.append(special)
        types.append(TOKEN_CONTROL)
    return Vocabulary(tokens, types, [f"{space} {space}"], CHATML_TEMPLATE, f"byte+{family}")


SECRETS = {
    "aws": "AKIAIOSFODNN7EXAMPLQ",
    "github": "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "password": "Tr0ub4dor&3-horse",
    "pg": "pgS3cretPassw0rd",
    "azure": "k3yMaterialAbc123+/xyz==",
    "bearer": "abcdef0123456789abcdef0123456789",
    "pem_body": "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
}


def write_repo(root: Path, extra_files: dict[str, str] | None = None) -> Path:
    files = {
        "app/__init__.py": "",
        "app/models.py": '''
            """Domain models."""
            from dataclasses import dataclass


            @dataclass
            class Invoice:
                number: str
                amount_cents: int

                def total_with_tax(self, rate: float) -> int:
                    return round(self.amount_cents * (1 + rate))


            class Ledger:
                def __init__(self) -> None:
                    self.invoices: list[Invoice] = []

                def add_invoice(self, invoice: Invoice) -> None:
                    self.invoices.append(invoice)

                def balance_cents(self) -> int:
                    return sum(i.amount_cents for i in self.invoices)
            ''',
        "app/settings.py": f'''
            """Settings with planted secrets: none of these values may reach a prompt."""
            import os

            AWS_ACCESS_KEY_ID = "{SECRETS['aws']}"
            GITHUB_TOKEN = "{SECRETS['github']}"
            DB_PASSWORD = "{SECRETS['password']}"
            DATABASE_URL = "postgres://app:{SECRETS['pg']}@db.internal:5432/app"
            STORAGE = "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={SECRETS['azure']};"
            HEADERS = {{"Authorization": "Bearer {SECRETS['bearer']}"}}
            SIGNING_KEY = """-----BEGIN PRIVATE KEY-----
            {SECRETS['pem_body']}
            -----END PRIVATE KEY-----"""


            def database_url() -> str:
                return os.environ.get("DATABASE_URL", DATABASE_URL)
            ''',
        "app/report.py": '''
            from app.models import Invoice, Ledger
            from app.settings import database_url


            def monthly_report(ledger: Ledger) -> str:
                lines = [f"{i.number}: {i.amount_cents}" for i in ledger.invoices]
                return "\\n".join(lines)


            def run() -> None:
                ledger = Ledger()
                ledger.add_invoice(Invoice("A-1", 1200))
                print(monthly_report(ledger), database_url())
            ''',
    }
    files.update(extra_files or {})
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def make_context(fmt: PromptFormat, counter: TokenCounter, index, repo: Path) -> tuple[Workspace, ContextCache]:
    """The workspace "repo" over ``index`` and fresh caches: the first two arguments of every entry point."""
    return Workspace(fmt, counter, lambda: index, repo_name="repo", root=str(repo)), ContextCache(counter)


def estimate_context(repo: Path, index) -> tuple[Workspace, ContextCache]:
    """A Qwen-format workspace counting with the documented estimate (no model needed)."""
    return make_context(text_format("qwen"), TokenCounter(None), index, repo)


def write_big_file(repo: Path, index) -> tuple[list[str], str]:
    """app/big.py: 300 helpers, then a cursor line typing ``ledger.bal`` (a receiver the index knows).
    Returns its lines up to that cursor line, and the whole text; the index is rebuilt."""
    lines = ["from app.models import Invoice, Ledger", "", ""]
    for i in range(300):
        lines += [f"def helper_{i}(ledger: Ledger) -> int:", f"    total = ledger.balance_cents() + {i}", "    return total", ""]
    lines += ["def main():", "    ledger = Ledger()", "    ledger.add_invoice(Invoice('x', 1))", "    value = ledger.bal"]
    text = "\n".join(lines) + "\n\nprint('done')\n"
    (repo / "app/big.py").write_text(text)
    index.build()
    return lines, text
