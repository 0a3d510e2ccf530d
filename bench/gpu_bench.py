"""What a GPU does with the Qwen3-Coder-30B-A3B shape: prefill and decode speed, a warmed 256K prefix against
a cold one, KV snapshot save/restore, peak memory — with f16 and q8_0 KV caches. Run by ``bench/gpu.sh``.

The model is synthesized (``engine.model.synth``: the real layer/expert/head shape, Q4_0 random weights,
the real Qwen3 vocabulary), so no 17 GB download is needed and no network: speed depends on the shape, not
on the weights' values. One prefill to the largest context measures the prefill rate at every smaller
checkpoint on the way (cumulative tokens/s at 4K, 32K, 128K, 256K). ``--check``: the same path on a CPU
with a scaled-down shape and contexts (the test suite runs it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.config import LlamaConfig  # noqa: E402
from engine.model.backend import GenerationRequest  # noqa: E402
from engine.model.llama_backend import LlamaBackend  # noqa: E402
from engine.model.synth import SHAPES, ModelShape, byte_level_vocabulary, qwen3_vocabulary, synthesize  # noqa: E402

CHECK_SHAPE = ModelShape("check", n_layer=2, n_embd=128, n_head=4, n_head_kv=2, head_dim=32, n_expert=8,
                         n_expert_used=2, n_ff_exp=64, n_ff=256, context_length=32_768, quantized=True)


class PeakMemory:
    """Peak GPU memory used (nvidia-smi, every 0.2 s) or, without a GPU, this process's peak RSS."""

    def __init__(self) -> None:
        self.gpu = shutil.which("nvidia-smi") is not None
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _sample(self) -> float:
        if self.gpu:
            out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, check=False).stdout.split()
            return max((float(x) for x in out), default=0.0)
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self._sample())
            self._stop.wait(0.2)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._sample())


def measure(model: Path, kv: str, contexts: list[int], n_gpu_layers: int, work: Path, decode_tokens: int) -> dict:
    top = max(contexts)
    config = LlamaConfig(n_ctx=top + 256, kv_cache_type=kv, n_gpu_layers=n_gpu_layers, flash_attn=True,
                         n_batch=2048 if n_gpu_layers else 512)
    with PeakMemory() as memory:
        t0 = time.perf_counter()
        backend = LlamaBackend(model, config, kv_dir=work / f"kv-{kv}")
        load_s = time.perf_counter() - t0
        rng = random.Random(0)
        n_vocab = backend.llm.n_vocab()
        ids = [rng.randrange(0, min(n_vocab, 150_000)) for _ in range(top)]
        llm = backend.llm
        backend.clear_kv()
        prefill = {}
        start = time.perf_counter()
        done = 0
        for checkpoint in sorted(contexts):
            llm.eval(ids[done:checkpoint])
            done = checkpoint
            prefill[str(checkpoint)] = round(checkpoint / (time.perf_counter() - start), 1)
        cold_prefill_s = time.perf_counter() - start
        # decode at the deepest context: greedy steps after the whole prefix
        result = backend.generate(GenerationRequest(pieces=[*ids, 0], max_tokens=decode_tokens))
        decode_tps = (result.generated_tokens - 1) / max(1e-9, (result.elapsed_ms - result.first_token_ms) / 1000)
        # warmed prefix: the same prefix resident, 64 new tokens, time to the first token
        warm = backend.generate(GenerationRequest(pieces=[*ids, *ids[:64]], max_tokens=1))
        # KV snapshot of the prefix: save, empty the cache, restore
        t0 = time.perf_counter()
        path = backend.save_prefix(ids, wait=True)
        save_s = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6 if path is not None and path.exists() else None
        backend.clear_kv()
        t0 = time.perf_counter()
        restored = backend.restore_prefix(ids)
        restore_s = time.perf_counter() - t0
        backend.close()
    return {"kv_cache_type": kv, "load_s": round(load_s, 2), "prefill_tokens_per_s": prefill,
            "cold_ttft_ms_at_max": round(cold_prefill_s * 1000 + result.first_token_ms, 1),
            "warm_ttft_ms_at_max": round(warm.first_token_ms, 1), "warm_evaluated_tokens": warm.evaluated_tokens,
            "decode_tokens_per_s": round(decode_tps, 1), "kv_save_s": round(save_s, 3),
            "kv_restore_s": round(restore_s, 3), "kv_restored_tokens": restored,
            "kv_snapshot_mb": round(size_mb, 1) if size_mb else None,
            "peak_memory_mb": round(memory.peak_mb, 1), "peak_memory_of": "gpu" if memory.gpu else "process rss"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="CPU, scaled-down shape and contexts (under 2 minutes)")
    ap.add_argument("--contexts", type=int, nargs="+")
    ap.add_argument("--kv", nargs="+", default=["f16", "q8_0"])
    ap.add_argument("--decode-tokens", type=int, default=64)
    ap.add_argument("--model", help="an existing GGUF instead of synthesizing one")
    ap.add_argument("--work", help="where the model and snapshots go (default: a temporary directory)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    import llama_cpp

    work = Path(args.work or tempfile.mkdtemp(prefix="gpu-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    gpu = bool(llama_cpp.llama_supports_gpu_offload())
    if args.check:
        shape, contexts, vocab = CHECK_SHAPE, args.contexts or [512, 2048, 4096], byte_level_vocabulary()
    else:
        if not gpu:
            print("gpu_bench: this llama-cpp-python has no GPU offload (build it with -DGGML_CUDA=on: bench/gpu.sh)",
                  file=sys.stderr)
            return 2
        shape, contexts = SHAPES["qwen3-coder-30b-a3b"], args.contexts or [4096, 32_768, 131_072, 262_144]
        vocab = qwen3_vocabulary(work)
    t0 = time.perf_counter()
    model = Path(args.model) if args.model else synthesize(work / f"{shape.name}.gguf", shape, vocab=vocab)
    synth_s = time.perf_counter() - t0
    runs = [measure(model, kv, contexts, 0 if args.check else -1, work, 8 if args.check else args.decode_tokens)
            for kv in args.kv]
    data = {"shape": shape.name, "check": args.check, "contexts": contexts, "model_mb": round(model.stat().st_size / 1e6, 1),
            "synthesize_s": round(synth_s, 1), "gpu_offload": gpu,
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                        "gpu": subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                              capture_output=True, text=True, check=False).stdout.strip()
                        if shutil.which("nvidia-smi") else None},
            "runs": runs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps(data, indent=1))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
