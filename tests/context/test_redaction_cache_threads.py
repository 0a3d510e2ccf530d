"""The redaction cache is process-wide and used from several threads at once (the inference worker builds
prompts while chat's repository tools read files in their pool): its look-ups and stores must not race.

A race showed as a ``KeyError`` (a hit moved to the end after another thread had evicted it) and, worse, as a
character count that drifted up for good (two threads redacting the same text both added it): once the count
alone passed the bound, every store evicted everything and the cache held nothing for the rest of the session.
Run in a fresh interpreter so the bound is the smallest one (no earlier test raised it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PRELUDE = r"""
import json, sys, threading, time
sys.setswitchinterval(1e-6)  # switch threads as often as possible: a race shows within one run
from engine.context import redact
errors = []

def start_threads(count, work):
    def run():
        try:
            work()
        except Exception as exc:
            errors.append(repr(exc))
    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    return threads
"""

SCRIPT = PRELUDE + r"""

CHUNK = 20_000
# the threads' texts are 11 characters longer than the later ones, so a count that drifted by any number of
# them can never add up to a whole number of the later texts
texts = [(f"value_{i} = compute({i})  # line\n" * (CHUNK // 30))[:CHUNK + 11] for i in range(60)]

def worker():
    for _ in range(3):
        for text in texts:
            redact.redact_cached(text)

for t in start_threads(4, worker):
    t.join()
limit = redact.cache_limit()
after_threads = redact.cached_chars()
fresh = [f"other_{i} = 1\n".ljust(CHUNK - 1, "x") + "\n" for i in range(60)]
for text in fresh:  # single-threaded now: the cache ends up holding exactly the newest texts that fit
    redact.redact_cached(text)
print(json.dumps({"errors": errors, "limit": limit, "after_threads": after_threads,
                  "after_fresh": redact.cached_chars()}))
"""


def test_threads_sharing_the_redaction_cache_never_fail_and_count_each_text_once():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["errors"] == []
    assert out["after_threads"] <= out["limit"]
    chunk = 20_000
    fits = out["limit"] // chunk
    assert out["after_fresh"] == fits * chunk, out  # the count is the characters actually held


CONFIGURE_SCRIPT = PRELUDE + r"""
texts = [(f"value_{i} = compute({i})  # line\n" * 20) for i in range(40)]
stop = threading.Event()

def reader():
    while not stop.is_set():
        for text in texts:
            redact.redact_cached(text)

threads = start_threads(2, reader)
until = time.monotonic() + 3
while time.monotonic() < until:  # engines built (settings changed, a folder added) reconfigure the rules
    redact.configure()
    time.sleep(0.001)  # mostly hits in between: a clear lands between a hit and its move to the end
stop.set()
for t in threads:
    t.join()
print(json.dumps({"errors": errors[:3], "count": redact.cached_chars(), "limit": redact.cache_limit()}))
"""


def test_reconfiguring_the_rules_while_threads_redact_never_fails_them():
    proc = subprocess.run([sys.executable, "-c", CONFIGURE_SCRIPT], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["errors"] == [] and out["count"] <= out["limit"], out


def test_a_text_redacted_under_the_old_rules_is_not_cached_after_new_rules_arrive():
    """A text still being redacted when ``[redaction]`` gains a pattern must not be stored: a later prompt
    would show what the new pattern hides."""
    from engine.context import redact

    text = "".join(f"value_{i} = compute({i})  # TOKEN_{i}\n" for i in range(12_000))  # ~0.5 s to redact
    done: list[str] = []
    worker = threading.Thread(target=lambda: done.append(redact.redact_cached(text)))
    try:
        worker.start()
        time.sleep(0.05)
        assert worker.is_alive(), "redaction finished before the rules changed: make the text larger"
        redact.configure(patterns=[r"compute\(\d+\)"])
        worker.join()
        assert "compute(" not in redact.redact_cached(text)
    finally:
        worker.join()
        redact.configure()
