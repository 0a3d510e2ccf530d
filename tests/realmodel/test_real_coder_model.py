"""The real Qwen2.5-Coder-0.5B-Instruct model in the loop (issue 14): what users get, not a random-weight
stand-in.

* the prompt format: a qwen2 GGUF is recognised as the Qwen FIM family, with its control tokens resolved
  from the model's own vocabulary, both by the loaded model and by the vocabulary-only tokenizer that
  ``coderflash context`` uses; the ids are checked against the GGUF file read by an independent reader;
* README's first command: ``coderflash complete --json`` on the sample repository writes ``checkout_total(``;
* cross-file completions that need the repository: in ``examples/cross_file_repo`` each cursor needs a
  name that only another file defines (a method, a module function, a field) and that the current file
  does not import by name. With the current buffer alone (same model, greedy FIM) the model guesses
  another name; through ``coderflash serve`` over stdio (``textDocument/inlineCompletion``) it writes
  the right one. Greedy decoding: the same prompt gives the same answer on every run.

Every test needs the real GGUF (the ``real_coder_model`` fixture says how to get it when it is missing).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from engine.config import LlamaConfig
from engine.context.result import split_at_cursor
from engine.model.backend import GenerationRequest
from engine.model.context_tokenizer import context_tokenizer
from engine.model.llama_backend import LlamaBackend
from engine.model.prompt_format import Piece, PromptFormat
from real_repos import COMMAND
from real_server import close_after_one_model_load, inline_completion, start_on

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SAMPLE_REPO = EXAMPLES / "sample_repo"
CROSS_FILE_REPO = EXAMPLES / "cross_file_repo"
QWEN_CONTROL_TOKENS = ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|repo_name|>", "<|file_sep|>")
CONTROL_TOKEN_TYPE = 3  # llama.cpp's LLAMA_TOKEN_TYPE_CONTROL in ``tokenizer.ggml.token_type``
# A cold prompt on two busy cores can take longer than the default 5 s `completion.timeout_ms`, which would
# cut the completion short; the CLI and LSP tests give it a minute (a real timeout still fails the test).
COMPLETION_TIMEOUT_MS = 60_000


@dataclass(frozen=True)
class CrossFileCase:
    """A cursor at the end of ``line`` in ``path`` of the cross-file repository; the right completion starts
    with ``expected``, a name defined only in ``defined_in``."""

    path: str
    line: str
    expected: str
    defined_in: str

    @property
    def name(self) -> str:
        return self.expected.rstrip("(")

    def cursor(self, text: str) -> tuple[int, int]:
        lines = text.split("\n")
        assert lines.count(self.line) == 1, f"{self.path}: the cursor line {self.line!r} must occur once"
        return lines.index(self.line), len(self.line)


CROSS_FILE_CASES = (
    CrossFileCase("payments.py", "    ledger.", "post_double_entry(", "billing/ledger.py"),
    CrossFileCase("routes.py", "    return spherical.", "great_circle_km_between(", "geo/spherical.py"),
    CrossFileCase("weather.py", "    data = session.", "fetch_json_with_retries(", "net/client.py"),
    CrossFileCase("upload.py", "    return size <= settings.LIMITS.", "largest_upload_in_bytes", "settings.py"),
)


@pytest.fixture(scope="module")
def real_backend(real_coder_model: Path) -> Iterator[LlamaBackend]:
    """The real model loaded in this process through llama.cpp, as the engine loads it."""
    backend = LlamaBackend(real_coder_model, LlamaConfig(n_ctx=4096))
    yield backend
    backend.close()


def _gguf_vocabulary(path: Path) -> tuple[str, dict[str, int], list[int]]:
    """(architecture, {token text: id}, token types) read from the file by the ``gguf`` package: a reader
    independent of llama.cpp, to check the ids the engine resolves."""
    from gguf import GGUFReader

    reader = GGUFReader(path)
    arch = reader.fields["general.architecture"]
    tokens = reader.fields["tokenizer.ggml.tokens"]
    types = reader.fields["tokenizer.ggml.token_type"]
    vocab = {bytes(tokens.parts[i]).decode("utf-8", "replace"): n for n, i in enumerate(tokens.data)}
    return (bytes(arch.parts[arch.data[0]]).decode(), vocab, [int(types.parts[i][0]) for i in types.data])


def _assert_qwen_format(fmt: PromptFormat, vocab: dict[str, int], token_types: list[int]) -> None:
    assert fmt.name == "qwen" and fmt.fim and fmt.order == "psm", fmt
    resolved = dict(zip(QWEN_CONTROL_TOKENS, (fmt.prefix_id, fmt.suffix_id, fmt.middle_id, fmt.repo_name_id,
                                              fmt.file_sep_id)))
    assert resolved == {text: vocab[text] for text in QWEN_CONTROL_TOKENS}
    assert all(token_types[i] == CONTROL_TOKEN_TYPE for i in resolved.values()), resolved
    assert fmt.repo_level
    for stop in ("<|endoftext|>", "<|fim_pad|>", "<|file_sep|>"):
        assert vocab[stop] in fmt.stop_ids, stop
    rendered = fmt.render(fmt.infill("a = ", "\n"))
    assert rendered == "<|fim_prefix|>a = <|fim_suffix|>\n<|fim_middle|>"


def test_qwen2_gguf_gets_the_qwen_fim_format_from_its_vocabulary(real_coder_model: Path,
                                                                  real_backend: LlamaBackend) -> None:
    arch, vocab, token_types = _gguf_vocabulary(real_coder_model)
    assert arch == "qwen2"
    info = real_backend.info()
    assert info["architecture"] == "qwen2" and info["prompt_format"] == "qwen", info
    _assert_qwen_format(real_backend.prompt_format, vocab, token_types)
    # User text that spells a control token stays text: it never becomes the control token.
    assert vocab["<|fim_middle|>"] not in real_backend.tokenize("s = '<|fim_middle|>'")

    # The context tokenizer (``coderflash context`` without a loaded model) reads only the vocabulary and
    # must lay out the very same prompt: same format, same ids, same token counts.
    fmt, counter = context_tokenizer(model_path=real_coder_model)
    _assert_qwen_format(fmt, vocab, token_types)
    source = (SAMPLE_REPO / "shop" / "pricing.py").read_text()
    assert counter.count(source) == len(real_backend.tokenize(source))
    assert counter.name == info["model_name"]


def test_sample_repository_completes_checkout_total_through_the_cli(real_coder_model: Path,
                                                                    sample_repo: Path) -> None:
    """README's first command with the real coder model: ``total = `` in ``main()``. The only setting added is
    a longer ``completion.timeout_ms``, so that a slow cold prompt on a busy machine cannot cut it short."""
    main = sample_repo / "main.py"
    line, character = 15, 12
    assert main.read_text().split("\n")[line] == "    total = "
    run = subprocess.run([COMMAND, "complete", str(main), "--line", str(line), "--character", str(character),
                          "--model", str(real_coder_model), "--json"],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "CODERFLASH_COMPLETION__TIMEOUT_MS": str(COMPLETION_TIMEOUT_MS)})
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["completion"].startswith("checkout_total("), out
    assert out["model"] == "Qwen2.5 Coder 0.5B Instruct AWQ", out["model"]
    assert out["finish_reason"] == "stop", out
    sections = {(s["kind"], s["path"]) for s in out["context"]["sections"]}
    assert ("file", "shop/pricing.py") in sections, sections


def _greedy(backend: LlamaBackend, pieces: list[Piece]) -> str:
    """The first line the model writes (what an inline completion here shows), greedy."""
    fmt = backend.prompt_format
    result = backend.generate(GenerationRequest(pieces, max_tokens=24, stop_ids=fmt.stop_ids, stop_strings=("\n",)))
    return result.text.split("\n", 1)[0]


def test_cross_file_names_are_not_found_from_the_buffer_alone(real_backend: LlamaBackend) -> None:
    """The baseline: the same model, greedy, FIM over the current buffer only — once as the plain FIM
    prompt, once in coderflash's own layout (repository header, file separator, path) with no other file.
    Neither can know the name: each must complete something else, so the LSP test below shows what the
    repository context adds."""
    fmt = real_backend.prompt_format
    guesses: dict[str, tuple[str, str]] = {}
    for case in CROSS_FILE_CASES:
        text = (CROSS_FILE_REPO / case.path).read_text()
        assert case.name not in text, f"{case.path} itself names {case.name}"
        assert case.name in (CROSS_FILE_REPO / case.defined_in).read_text()
        prefix, suffix = split_at_cursor(text, *case.cursor(text))
        plain = _greedy(real_backend, fmt.infill(prefix, suffix))
        laid_out = _greedy(real_backend, [*fmt.repo_header(CROSS_FILE_REPO.name),
                                          *fmt.current_file_header(case.path), *fmt.infill(prefix, suffix)])
        assert plain.strip() and laid_out.strip(), (case.path, plain, laid_out)
        guesses[case.name] = (plain, laid_out)
    found = {name: guess for name, guess in guesses.items() if any(name in text for text in guess)}
    assert not found, f"the buffer alone already finds the name: {found}"


def test_cross_file_completion_needs_repository_context_over_lsp(real_coder_model: Path, tmp_path: Path) -> None:
    """``coderflash serve`` over stdio as an editor starts it, the real model, the index ready: every case's
    inline completion writes the name only another file defines."""
    repo = shutil.copytree(CROSS_FILE_REPO, tmp_path / CROSS_FILE_REPO.name)
    # No first-token target: this test is about what repository context gives, and on two busy cores an
    # 800 ms target leaves out every file not yet warmed (test_latency_target.py); even a 60 s target sized a
    # prompt without the definition once, in a CI run beside two benchmarks (routes.py: 'distance(start, end)').
    completion = {"timeout_ms": COMPLETION_TIMEOUT_MS, "latency_target": False}
    server, index = start_on(repo, tmp_path / "cache", {"model": str(real_coder_model), "completion": completion}, 60)
    try:
        assert index["files"] == len(list(repo.rglob("*.py"))), index
        completions = {}
        for case in CROSS_FILE_CASES:
            path = repo / case.path
            text = path.read_text()
            completions[case.path] = inline_completion(server, path, text, *case.cursor(text))
        close_after_one_model_load(server)
    finally:
        server.proc.kill()
    wrong = {case.path: completions[case.path] for case in CROSS_FILE_CASES
             if not completions[case.path].startswith(case.expected)}
    assert not wrong, f"expected {[c.expected for c in CROSS_FILE_CASES]}, got {completions}"
