"""Inline completions sized to a first-token target (engine/inference/latency.py): speeds measured from
the generations that ran, the suffix bounded by them, and repository files the KV cache does not hold yet
left out until the background warm-up has evaluated them."""

from __future__ import annotations

import shutil
from pathlib import Path

from engine.inference.latency import SpeedMeter, repository_cut, target_ms, trim_current_prefix
from engine.model.backend import GenerationResult
from engine.model.prompt_format import text_format
from engine.service import Engine

from engine_helpers import tiny_config


def test_speeds_come_from_finished_generations_and_size_the_plan():
    meter = SpeedMeter()
    assert meter.plan(800, 512) is None  # nothing measured: nothing is cut
    # 400 prompt tokens, first token after 1,000 ms, then 10 more tokens in 500 ms (50 ms a step)
    meter.observe(GenerationResult("x", 400, 0, 400, 11, 1500.0, "stop", first_token_ms=1000.0))
    assert round(meter.decode_ms_per_token) == 50
    assert round(meter.prefill_tokens_per_s) == round(400 / 950 * 1000) and meter.keystroke_tokens_per_s is None
    plan = meter.plan(800, 512)  # a keystroke's speed guessed from the prefill's: 40% of it
    assert plan.evaluable_tokens == int(750 * 400 / 950 * 0.4 * 0.75)  # the target less one decode step, less 25%
    assert plan.suffix_tokens == 32  # half of it, down to a power of two (stable while speeds wobble)
    # a keystroke-sized evaluation measured: 40 tokens before the first token at 450 ms (50 ms of it a step)
    meter.observe(GenerationResult("x", 4000, 3960, 40, 3, 550.0, "stop", first_token_ms=450.0))
    assert round(meter.keystroke_tokens_per_s) == 100
    plan = meter.plan(800, 512)
    assert plan.evaluable_tokens == int((800 - meter.decode_ms_per_token) * 100 / 1000 * 0.75)
    assert meter.plan(60_000, 512).suffix_tokens == 512  # never above the setting
    assert meter.plan(1, 512).suffix_tokens == 8  # never below about a line
    # a prefill the deadline cut still measures speed; a few tokens (one decode step) do not
    meter.observe(GenerationResult("", 800, 0, 200, 0, 5000.0, "deadline"))
    assert meter.prefill_tokens_per_s < 400 / 950 * 1000
    samples = meter.samples
    meter.observe(GenerationResult("", 800, 796, 4, 1, 40.0, "stop", first_token_ms=40.0))
    assert meter.samples == samples
    assert target_ms(0, gpu=True) == 300 and target_ms(0, gpu=False) == 800 and target_ms(150, gpu=False) == 150


def test_a_fast_keystroke_speed_never_plans_more_than_the_measured_prefill_speed_allows():
    """Small batches can run faster per token than a large prefill across a long context (the tiny model:
    ~18K against ~9K tokens/s); the plan must not promise a large evaluation the small-batch speed, nor a
    long one the speed of short prefills."""
    meter = SpeedMeter()
    meter.observe_prefill(8000, 8000 / 9000 * 1000)  # 8,000 tokens at 9,000 tokens/s
    meter.observe_prefill(100, 100 / 18000 * 1000)  # 100 tokens at 18,000 tokens/s
    assert round(meter.keystroke_tokens_per_s) == 18000 and round(meter.prefill_tokens_per_s) == 9000
    assert meter.plan(800, 512).evaluable_tokens == int(800 * 9000 / 1000 * 0.75)
    mixed = SpeedMeter()  # short prefills fast, a long one slow: a plan as long as that gets the long one's speed
    for _ in range(5):
        mixed.observe_prefill(500, 500 / 25000 * 1000)
    mixed.observe_prefill(8000, 8000 / 9000 * 1000)
    mixed.observe_prefill(100, 100 / 18000 * 1000)
    assert round(mixed.long_prefill_tokens_per_s) == 9000 and mixed.prefill_tokens_per_s > 15000
    assert mixed.plan(800, 512).evaluable_tokens == int(800 * 9000 / 1000 * 0.75)
    assert mixed.plan(100, 512).evaluable_tokens == int(100 * 18000 / 1000 * 0.75)  # 1,350: short, keystroke speed
    slow = SpeedMeter()  # the usual CPU case: keystroke-sized batches are the slower ones, and they size it
    slow.observe_prefill(512, 512 / 85 * 1000)
    slow.observe_prefill(16, 16 / 33 * 1000)
    assert slow.plan(800, 512).evaluable_tokens == int(800 * 33 / 1000 * 0.75)


def test_the_suffix_size_holds_through_a_one_step_wobble_and_follows_a_real_change():
    meter = SpeedMeter()
    meter.observe(GenerationResult("x", 4000, 3960, 40, 3, 550.0, "stop", first_token_ms=450.0))  # 100 tokens/s
    first = meter.plan(2000, 512).suffix_tokens
    assert first == 64  # (2000 - 50) ms x 100 tokens/s x 0.75 = 146 tokens: half, down to a power of two
    assert meter.plan(1700, 512).suffix_tokens == 64  # 123 tokens alone would plan 32: one step, kept
    assert meter.plan(4000, 512).suffix_tokens == 64  # 296 alone would plan 128: one step, kept
    assert meter.plan(12000, 512).suffix_tokens == 256  # 896: two steps up, followed
    assert meter.plan(1000, 512).suffix_tokens == 32  # 71: 256 no longer fits three quarters of it
    assert meter.plan(6000, 128).suffix_tokens == 128  # never above the setting


def test_the_repository_part_is_cut_at_the_last_resident_file_boundary():
    fmt = text_format("qwen")
    sep, header = fmt.file_sep_id, fmt.repo_name_id
    pieces = [header, "repo\n", sep, "a.py\nA", sep, "b.py\nB", sep, "cur.py\n", fmt.prefix_id, "x = ",
              fmt.suffix_id, "\n", fmt.middle_id]
    tokens = [1, 2, 1, 100, 1, 200, 1, 3, 1, 2, 1, 1, 1]
    repository = 6  # up to the current file's separator
    assert repository_cut(pieces, fmt, repository, tokens, resident=500) is None  # all resident
    assert repository_cut(pieces, fmt, repository, tokens, resident=307) is None  # 3 + 101 + 201 + its sep
    assert repository_cut(pieces, fmt, repository, tokens, resident=200) == 4  # a.py stays, b.py goes
    assert repository_cut(pieces, fmt, repository, tokens, resident=104) == 4  # exactly a.py
    assert repository_cut(pieces, fmt, repository, tokens, resident=50) == 2  # half of a.py: it goes
    assert repository_cut(pieces, fmt, repository, tokens, resident=0) == 2  # the header always stays


def test_the_current_prefix_is_cut_from_its_start_down_to_the_cursor_line():
    fmt = text_format("qwen")
    cells = ["a = 1\nb = 2\n", "c = 3\nd = 4\nresult = comp"]
    pieces = [fmt.file_sep_id, "cur.py\n", fmt.prefix_id, *cells, fmt.suffix_id, "\nprint(result)\n", fmt.middle_id]
    count = len  # one token a character keeps the arithmetic visible
    tokens = [1 if isinstance(p, int) else count(p) for p in pieces]
    after = sum(tokens[2:])
    same, _ = trim_current_prefix(pieces, fmt, tokens, after, count)
    assert same == pieces  # it fits: nothing cut
    one_cell, kept = trim_current_prefix(pieces, fmt, tokens, after - 1, count)
    assert one_cell == [*pieces[:3], cells[1], *pieces[5:]] and kept == [1 if isinstance(p, int) else count(p)
                                                                         for p in one_cell]
    last_line, _ = trim_current_prefix(pieces, fmt, tokens, 0, count)
    assert last_line == [*pieces[:3], "result = comp", *pieces[5:]]  # the cursor's line always stays


def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(Path(__import__("json").__file__).parent, root / "json",
                    ignore=shutil.ignore_patterns("__pycache__", "tool.py"))
    return root


def _typing_in_the_middle(path: Path) -> tuple[str, int, int]:
    """decoder.py with a new function being typed half-way through (hundreds of lines of suffix)."""
    lines = path.read_text().split("\n")
    half = len(lines) // 2
    typed = "def parse_all(s):\n    return JSONDecoder().de"
    text = "\n".join(lines[:half]) + "\n\n" + typed + "\n\n" + "\n".join(lines[half:])
    return text, half + 2, len(typed.split("\n")[-1])


def test_a_cold_cache_gets_the_resident_files_now_and_the_rest_after_the_warm_up(tiny_model: Path,
                                                                                 tmp_path: Path):
    root = _repo(tmp_path)
    cfg = tiny_config(tiny_model, tmp_path / "cache")
    cfg.completion.first_token_ms = 1  # a target no prefill meets: only what is resident may be evaluated
    engine = Engine(cfg, root)
    other = root / "json" / "encoder.py"
    other_text = other.read_text()
    first = engine.complete(other, other_text, 40, 0, use_cache=False)  # nothing measured yet: whole prompt
    assert not first.repository_cut and engine.host.speed.prefill_tokens_per_s
    engine.runtime.scheduler.wait_idle(timeout=60)

    path = root / "json" / "decoder.py"  # another file: its prompt is not resident, nor snapshotted
    text, line, character = _typing_in_the_middle(path)
    cold = engine.complete(path, text, line, character, use_cache=False)
    latency = engine.status()["inference"]["latency"]
    files = [s.path for s in cold.context.sections if s.kind not in ("repo_header", "file_header",
                                                                      "current_prefix", "current_suffix")]
    assert files, "the full prompt must carry repository files for this test to mean anything"
    assert cold.repository_cut and latency["enabled"] and latency["target_ms"] == 1
    assert latency["evaluable_tokens"] >= 0 and latency["resident_tokens"] < latency["budget_tokens"] // 2
    assert cold.result.prompt_tokens == latency["prompt_tokens"] < latency["budget_tokens"]
    assert latency["suffix_tokens"] == 8 and len(cold.context.suffix) < 100
    # nothing of decoder.py was resident either: its prefix was cut down to the cursor's line
    assert cold.result.evaluated_tokens < 150, cold.result

    engine.runtime.scheduler.wait_idle(timeout=60)  # the warm-up the cut queued evaluates the rest
    warm = engine.complete(path, text, line, character, use_cache=False)
    latency = engine.status()["inference"]["latency"]
    assert not warm.repository_cut
    assert warm.result.prompt_tokens == latency["budget_tokens"] > cold.result.prompt_tokens
    # the warm-up evaluated the whole prompt, not only the repository part: the same place costs one token
    assert warm.result.evaluated_tokens <= 2, warm.result
    engine.close()


def test_off_the_prompt_is_the_budgets_whatever_the_speed(tiny_model: Path, tmp_path: Path):
    root = _repo(tmp_path)
    cfg = tiny_config(tiny_model, tmp_path / "cache")
    cfg.completion.first_token_ms = 1
    cfg.completion.latency_target = False
    engine = Engine(cfg, root)
    path = root / "json" / "decoder.py"
    text, line, character = _typing_in_the_middle(path)
    engine.complete(path, text, line, character, use_cache=False)
    engine.host.backend.clear_kv()
    out = engine.complete(path, text, line, character, use_cache=False)
    assert not out.repository_cut and out.result.prompt_tokens == out.context.prompt_tokens
    assert engine.status()["inference"]["latency"] == {"enabled": False, **engine.host.speed.to_json()}
    engine.close()
