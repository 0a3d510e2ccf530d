"""The in-process backend through real llama.cpp: prefix reuse (cross-checked with llama.cpp's own
counters), cancellation, streaming, lean KV snapshots across processes, rejection of truncated files."""

from __future__ import annotations

import pytest

import json
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

from engine.model.backend import CancelToken, GenerationRequest
from engine.config import LlamaConfig

from engine_helpers import STDLIB_FILE

SOURCE = STDLIB_FILE.read_text()


def _pieces(backend, prefix: str, suffix: str = "\n"):
    fmt = backend.prompt_format
    return (fmt.repo_header("repo") + fmt.file_block("json/decoder.py", SOURCE[:4000])
            + fmt.current_file_header("cur.py") + fmt.infill(prefix, suffix))


def test_typing_sequence_reuses_prefix_and_matches_llama_counters(backend):
    typed = "def parse(value):\n    return val"
    results = []
    for n in range(len(typed) - 8, len(typed) + 1):
        req = GenerationRequest(_pieces(backend, typed[:n]), max_tokens=4, stop_ids=backend.prompt_format.stop_ids)
        result = backend.generate(req)
        results.append(result)
        # llama.cpp's perf counters: prompt tokens decoded + one decode per generated token but the last.
        # (llama.cpp reports a counter of 0 as 1, so the very first delta is off by up to 2: skip it.)
        decodes = result.generated_tokens - (1 if result.finish_reason == "length" else 0)
        if len(results) > 1:
            assert backend.last_llama_evaluated == result.evaluated_tokens + decodes
    first, rest = results[0], results[1:]
    assert first.reused_tokens == 0 and first.evaluated_tokens == first.prompt_tokens > 1000
    for r in rest:
        assert r.reused_tokens + r.evaluated_tokens == r.prompt_tokens
        assert r.evaluated_tokens <= 8, r  # one typed character + the suffix/middle tail
    assert sum(r.evaluated_tokens for r in rest) < 0.01 * sum(r.prompt_tokens for r in rest)


def test_remembered_piece_ids_cost_about_four_bytes_per_token(backend):
    """Long prompt pieces are remembered as 32-bit arrays: a list would hold an int object per id (~40 bytes
    per token), and the cursor's cell is a new long piece at every keystroke (allocator churn in a soak)."""
    pieces = [f"# piece {i}\n" + SOURCE[i * 1500:i * 1500 + 3000] for i in range(6)]
    want = [backend.tokenize(p) for p in pieces]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        got = [backend.pieces_to_ids([p]) == w for p, w in zip(pieces, want)]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert all(got)
    tokens = sum(len(w) for w in want)
    assert tokens > 3000 and held < 6 * tokens, (held, tokens)  # a list: 8 bytes a token, ints aside
    assert [backend.pieces_to_ids([p]) for p in pieces] == want  # served from what was remembered


def test_streaming_and_stop_strings(backend):
    pieces: list[str] = []
    req = GenerationRequest(_pieces(backend, "x = "), max_tokens=24, on_text=pieces.append)
    result = backend.generate(req)
    assert "".join(pieces) == result.text and result.generated_tokens == 24
    assert result.first_token_ms > 0
    cut = result.text[5:7]
    stopped = backend.generate(GenerationRequest(_pieces(backend, "x = "), max_tokens=24, stop_strings=(cut,)))
    assert stopped.text == result.text[: result.text.find(cut)] and stopped.finish_reason == "stop"


def test_cancel_stops_within_one_decode_step(backend):
    token = CancelToken()
    out = {}
    generating = threading.Event()

    def run():
        out["r"] = backend.generate(GenerationRequest(_pieces(backend, "y = "), max_tokens=100_000 // 20,
                                                      on_text=lambda piece: generating.set()), token)

    thread = threading.Thread(target=run)
    thread.start()
    assert generating.wait(30)  # past the prefill: this measures a cancel during decoding
    time.sleep(0.05)
    t0 = time.perf_counter()
    token.cancel("superseded")
    thread.join(5)
    stop_ms = (time.perf_counter() - t0) * 1000
    assert out["r"].finish_reason == "cancelled" and 0 < out["r"].generated_tokens < 5000
    assert stop_ms < 50, stop_ms


def test_yarn_parameters_for_qwen3(tiny_model: Path):
    import llama_cpp

    from engine.model.llama_backend import LlamaBackend

    b = LlamaBackend(tiny_model, LlamaConfig(n_ctx=1024, rope_scaling="yarn", yarn_factor=4.0))
    params = b.llm.context_params
    assert params.rope_scaling_type == llama_cpp.LLAMA_ROPE_SCALING_TYPE_YARN
    assert params.yarn_orig_ctx == 262_144 and abs(params.rope_freq_scale - 0.25) < 1e-9
    assert b.generate(GenerationRequest(["def f():"], max_tokens=4)).generated_tokens == 4
    b.close()


def test_quantized_kv_cache_error_is_explained(tiny_model: Path):
    """q8_0/q4_0 need head dims divisible by 32 (Qwen3-Coder: 128); the tiny model's 16 is not."""
    import pytest

    from engine.model.llama_backend import LlamaBackend
    from engine.model.resolution import ModelError

    with pytest.raises(ModelError, match="block size 32"):
        LlamaBackend(tiny_model, LlamaConfig(n_ctx=1024, kv_cache_type="q8_0"))


_CHILD = r"""
import json, sys
from engine.model.backend import GenerationRequest
from engine.config import LlamaConfig
from engine.model.llama_backend import LlamaBackend
model, kv, source = sys.argv[1:4]
b = LlamaBackend(model, LlamaConfig(n_ctx=8192), kv_dir=kv)
fmt = b.prompt_format
prefix = fmt.repo_header("repo") + fmt.file_block("a.py", open(source).read()[:6000])
info = b.warm_prefix(prefix)
r = b.generate(GenerationRequest(prefix + fmt.current_file_header("cur.py") + fmt.infill("def f(", ")\n"), max_tokens=8))
print(json.dumps({"warm": info, "prefix_tokens": len(b.pieces_to_ids(prefix)), "result": r.counters(),
                  "text": r.text, "llama_evaluated": b.last_llama_evaluated}))
"""


def _child(tiny_model: Path, kv: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(tiny_model), str(kv), str(STDLIB_FILE)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_snapshot_save_new_process_restore_and_truncated_file(tiny_model: Path, tmp_path: Path):
    kv = tmp_path / "kv"
    cold = _child(tiny_model, kv)
    assert cold["warm"]["source"] == "prefill" and cold["warm"]["saved"]
    files = list(kv.glob("*.kv"))
    assert len(files) == 1
    warm = _child(tiny_model, kv)
    assert warm["warm"]["source"] == "snapshot"
    new_tokens = warm["result"]["prompt_tokens"] - warm["prefix_tokens"]
    assert warm["result"]["evaluated_tokens"] == new_tokens  # only the tokens after the saved prefix
    assert warm["text"] == cold["text"]  # same KV → same greedy output
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) - 100])  # a crash mid-write / full disk
    broken = _child(tiny_model, kv)
    assert "snapshot_error" in broken["warm"] and broken["warm"]["source"] == "prefill"
    assert broken["text"] == cold["text"]
    assert len(list(kv.glob("*.kv"))) == 1  # replaced by a good snapshot
    assert _child(tiny_model, kv)["warm"]["source"] == "snapshot"


def test_rejected_grammar_is_an_error_not_a_crash(backend) -> None:
    """llama-cpp-python 0.3.36 crashes the process on a grammar llama.cpp rejects; the backend checks first."""
    from engine.model.backend import BackendError, GenerationRequest

    with pytest.raises(BackendError, match="rejected the grammar"):
        backend.generate(GenerationRequest(pieces=["x"], max_tokens=4, grammar='root ::= [a-z]{5000}'))
    ok = backend.generate(GenerationRequest(pieces=["x"], max_tokens=4, grammar='root ::= "ab" [a-z]*'))
    assert ok.text.startswith("ab")


def test_every_end_of_generation_token_stops(backend) -> None:
    from engine.model.backend import chat_stop_ids

    eog = backend.eog_ids
    assert backend.token_id("<|im_end|>") in eog or backend.llm.token_eos() in eog
    assert eog <= chat_stop_ids(backend)


def test_snapshot_file_is_written_off_the_inference_thread(backend) -> None:
    """save_prefix returns once the KV bytes are copied; the file appears from the writer thread."""
    import threading

    from engine.model.backend import GenerationRequest

    prefix = backend.tokenize("def a():\n    return 1\n" * 20)
    backend.generate(GenerationRequest(pieces=[prefix and backend.detokenize(prefix)], max_tokens=1))
    writer_threads: list[str] = []
    original = backend.kv_store.save

    def recording_save(*args, **kwargs):
        writer_threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    backend.kv_store.save = recording_save
    target = backend.save_prefix(prefix[:64])
    assert target is not None
    backend.flush_snapshots()
    assert target.is_file()
    assert writer_threads and writer_threads[0].startswith("coderflash-kv-writer")
    assert threading.current_thread().name not in writer_threads


def test_loading_a_model_never_redirects_the_process_stdout(tiny_model: Path, tmp_path: Path):
    """fd 1 is the LSP channel in the server: a load must never point it at /dev/null, not even briefly
    (llama-cpp-python's quiet mode does, for the whole process, and overlapping loads left it there)."""
    import os
    import threading

    from engine.model.context_tokenizer import VocabTokenizer
    from engine.model.llama_backend import LlamaBackend

    devnull = os.stat(os.devnull)
    seen: list[bool] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            st = os.fstat(1)
            seen.append((st.st_dev, st.st_ino) == (devnull.st_dev, devnull.st_ino))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(3):
            LlamaBackend(tiny_model, LlamaConfig(n_ctx=512), kv_dir=tmp_path / "kv").close()
            VocabTokenizer(tiny_model)
    finally:
        stop.set()
        watcher.join()
    assert seen and not any(seen), f"fd 1 pointed at /dev/null in {sum(seen)} of {len(seen)} samples"
