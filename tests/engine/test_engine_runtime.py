"""Engine API on the tiny model: supersession through the scheduler, chat pre-empted by a keystroke and
resumed, typed-ahead reuse without a model call, background warm-up."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from engine.service import Engine

from engine_helpers import STDLIB_FILE, tiny_config


def _engine(tiny_model: Path, tmp_path: Path, **completion) -> tuple[Engine, Path]:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "decoder.py").write_text(STDLIB_FILE.read_text())
    cfg = tiny_config(tiny_model, tmp_path / "cache")
    for key, value in completion.items():
        setattr(cfg.completion, key, value)
    return Engine(cfg, root), root


def test_newer_completion_cancels_running_one(tiny_model: Path, tmp_path: Path):
    engine, root = _engine(tiny_model, tmp_path, max_tokens=4000, timeout_ms=60_000)
    text = "def f(x):\n    \n"
    first = engine.submit_complete(root / "new.py", text, 1, 4)
    time.sleep(0.5)  # let it start generating its 4000 tokens
    t0 = time.perf_counter()
    second = engine.submit_complete(root / "new.py", text + "#", 2, 1)
    out1 = first.result(30)
    stop_ms = (time.perf_counter() - t0) * 1000
    assert out1.result.finish_reason == "cancelled" and out1.completion == ""
    assert stop_ms < 250, stop_ms  # within one decode step + the job handover
    assert second.result(60).result.finish_reason != "cancelled"
    assert engine.status()["inference"]["scheduler"]["superseded"] >= 1
    engine.close()


def test_chat_preempted_by_keystroke_resumes(tiny_model: Path, tmp_path: Path):
    engine, root = _engine(tiny_model, tmp_path)
    streamed: list[str] = []
    started = threading.Event()

    def on_text(piece: str) -> None:
        streamed.append(piece)
        started.set()

    chat = engine.chat([{"role": "user", "content": "explain decoder.py"}], on_text=on_text, max_tokens=600)
    assert started.wait(30)
    out = engine.complete(root / "x.py", "import json\n", 1, 0)
    assert out.result.finish_reason != "cancelled"
    result = chat.result(60)
    sched = engine.status()["inference"]["scheduler"]
    assert sched["preempted"] >= 1 and sched["resumed"] >= 1
    assert result.generated_tokens >= 600 - 5 and "".join(streamed) == result.text
    engine.close()


def test_typed_ahead_served_without_model(tiny_model: Path, tmp_path: Path):
    engine, root = _engine(tiny_model, tmp_path)
    text = "x = 1\n"
    out = engine.complete(root / "t.py", text, 0, 4)
    assert out.completion and out.cached == ""
    requests = engine.counters.requests
    typed = out.completion[:2]
    text2 = text[:4] + typed + text[4:]
    again = engine.complete(root / "t.py", text2, 0, 4 + len(typed))
    assert again.cached == "typed_ahead" and again.completion == out.completion[2:]
    assert engine.counters.requests == requests and engine.counters.cache_hits == 1
    engine.close()


def test_warm_up_then_completion_reuses_prefix(tiny_model: Path, tmp_path: Path):
    engine, root = _engine(tiny_model, tmp_path)
    text = "import json\n\ndef g():\n    \n"
    info = engine.warm_up(root / "g.py", text, 3, 4).result(60)
    assert info["source"] in ("prefill", "snapshot") and info["prefix_tokens"] > 0
    out = engine.complete(root / "g.py", text, 3, 4, use_cache=False)
    assert out.result.reused_tokens >= info["prefix_tokens"]
    engine.close()


def test_status_says_how_full_the_bounded_context_caches_are(tiny_model: Path, tmp_path: Path):
    engine, root = _engine(tiny_model, tmp_path)
    assert engine.status()["context_cache"] == {}  # nothing assembled yet
    engine.complete(root / "g.py", "import decoder\n\ndef g():\n    return decoder.", 3, 19, use_cache=False)
    caches = engine.status()["context_cache"]
    assert caches["files"] >= 1 and caches["file_chars"] > 0, caches  # decoder.py, shown in the prompt
    assert 0 < caches["token_ids"] <= caches["token_ids_max"], caches
    assert caches["redacted_chars"] <= caches["redacted_chars_max"], caches
    engine.close()


def test_a_completion_cut_by_the_timeout_is_trimmed_not_cached_and_its_prefill_is_reused(tiny_model: Path,
                                                                                          tmp_path: Path):
    from engine.inference.postprocess import trim_interrupted

    engine, root = _engine(tiny_model, tmp_path, max_tokens=4000, timeout_ms=150)
    text = (root / "decoder.py").read_text() + "\n\ndef helper(value):\n    "
    line = text.count("\n")
    first = engine.complete(root / "decoder.py", text, line, 4)
    # On a busy machine the deadline can land in the prefill: what it evaluated is kept (the next test), so
    # asking again goes on from it, until a request reaches decoding and is cut there, the case under test.
    for _ in range(first.result.prompt_tokens // 16 + 2):
        if first.result.generated_tokens:
            break
        first = engine.complete(root / "decoder.py", text, line, 4)
    assert first.result.generated_tokens > 0, first.result
    assert first.result.finish_reason == "deadline", first.result
    shown = first.completion
    # whole tokens that parse, or nothing: trimming again changes nothing
    assert trim_interrupted(shown, first.context.prefix, first.context.suffix, "decoder.py") == shown
    second = engine.complete(root / "decoder.py", text, line, 4)
    assert second.cached == "", "a completion cut by the timeout must not be served from the cache"
    assert second.result.reused_tokens >= second.result.prompt_tokens - 2, (first.result, second.result)
    engine.close()


def test_a_prefill_cut_by_the_timeout_is_kept_and_the_next_request_goes_on_from_it(tiny_model: Path,
                                                                                   tmp_path: Path):
    engine, root = _engine(tiny_model, tmp_path, max_tokens=8, timeout_ms=25)
    engine.config.llama.n_batch = 16  # many small chunks: the deadline lands between two of them
    engine.config.completion.latency_target = False  # the deadline's own path, not the first-token target's
    text = (root / "decoder.py").read_text() * 3
    line = text.count("\n") - 1
    outs = []
    # Each request evaluates at least one 16-token chunk before its deadline is checked, so the prompt is
    # through in at most prompt/16 requests if what each one evaluated is kept — however slow the machine (a
    # fixed allowance of 40 assumed several chunks per 25 ms and failed on a busy one).
    allowed = 2
    while len(outs) < allowed:
        out = engine.complete(root / "decoder.py", text, line, 0, use_cache=False)
        outs.append(out)
        allowed = max(allowed, out.result.prompt_tokens // 16 + 2)
        if out.result.generated_tokens:
            break
    first, second = outs[0].result, outs[1].result
    assert first.finish_reason == "deadline" and outs[0].completion == "", first
    assert first.evaluated_tokens < first.prompt_tokens - first.reused_tokens, first  # stopped mid-prefill
    assert second.reused_tokens >= first.reused_tokens + first.evaluated_tokens - 1, (first, second)
    assert outs[-1].result.generated_tokens > 0, f"never got past the prefill in {len(outs)} requests"
    engine.close()
