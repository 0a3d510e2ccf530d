"""Redaction cost for a 256K-token prompt's worth of repository text, cold and warm.

The text: standard-library sources plus the planted-secrets corpus (tests/security/planted.py) until
``--tokens`` × 3.2 bytes (the token estimate). Cold: every file redacted once (``redact``), as the
first request in a repository does; warm: every file again through ``redact_cached``, as every later
request does (the 20 ms target is for this). ``--against REF`` loads engine/context/redact.py of a git
revision and measures it side by side on the same text (its own kind-less API).

    .venv/bin/python bench/redact_bench.py --out bench/results/redact.json --against 20110f2
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "security"))

from engine.context import redact as current  # noqa: E402
from planted import plant  # noqa: E402

BYTES_PER_TOKEN = 3.2


def corpus(tokens: int) -> list[tuple[str, str]]:
    """(path, text) of planted files, then stdlib sources, up to ``tokens`` × 3.2 bytes."""
    files: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        plant(Path(tmp))
        files += [(str(p.relative_to(tmp)), p.read_text()) for p in sorted(Path(tmp).rglob("*")) if p.is_file()]
    total = sum(len(t) for _, t in files)
    for p in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        if total >= tokens * BYTES_PER_TOKEN:
            break
        if "test" in p.parts or "site-packages" in p.parts:
            continue
        text = p.read_text(errors="replace")
        files.append((str(p), text))
        total += len(text)
    return files


def load_revision(ref: str):
    source = subprocess.run(["git", "show", f"{ref}:engine/context/redact.py"], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / "redact_old.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("redact_old", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def measure(module, files: list[tuple[str, str]], with_kind: bool, repeat: int) -> dict:
    def run(fn) -> float:
        t0 = time.perf_counter()
        for path, text in files:
            fn(text, module.kind_for(path)) if with_kind else fn(text)
        return (time.perf_counter() - t0) * 1000

    cold = []
    for _ in range(repeat):
        cold.append(run(module.redact))
    module._CACHE.clear()
    run(module.redact_cached)  # fill the cache
    warm = [run(module.redact_cached) for _ in range(repeat)]
    return {"cold_ms_median": round(statistics.median(cold), 1), "warm_ms_median": round(statistics.median(warm), 2),
            "warm_ms_max": round(max(warm), 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=262_144)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--against", help="a git revision whose redaction to measure side by side")
    ap.add_argument("--out")
    args = ap.parse_args()
    files = corpus(args.tokens)
    out = {"files": len(files), "bytes": sum(len(t) for _, t in files), "tokens_estimate": args.tokens,
           "target_warm_ms": 20, "current": measure(current, files, True, args.repeat)}
    if args.against:
        out["against"] = {"revision": args.against, **measure(load_revision(args.against), files, False, args.repeat)}
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
