"""Synthesize GGUF models (architecture ``qwen3moe``) that llama.cpp loads.

Why: tests must run real llama.cpp on a real GGUF without downloading weights, and speed must be
measurable on a GPU at the real Qwen3-Coder-30B-A3B shape without the 17 GB download. The tiny model's
output layer is shaped so greedy decoding from any prompt yields printable text (never a control token),
so tests can assert that a completion or an answer appears.
"""

from __future__ import annotations

import errno
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

LLAMA_CPP_PYTHON_VERSION = "0.3.36"

# Qwen3's added tokens, in id order from 151643. The <|…|> ones are control tokens; the XML-like
# tool/think markers are user-defined (always tokenized atomically), as in the real model.
QWEN3_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>",
    "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
    "<tool_response>", "</tool_response>", "<think>", "</think>",
)
QWEN3_FIRST_SPECIAL_ID = 151643
QWEN3_PADDED_VOCAB = 151936

TOKEN_NORMAL, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED = 1, 3, 4, 5

CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


@dataclass(frozen=True)
class ModelShape:
    """Hyper-parameters of a qwen3moe model."""

    name: str
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_expert: int
    n_expert_used: int
    n_ff_exp: int
    n_ff: int
    context_length: int = 262_144
    rope_freq_base: float = 10_000_000.0
    quantized: bool = False  # Q4_0 for the large matrices (random blocks), F32 otherwise


SHAPES: dict[str, ModelShape] = {
    "tiny": ModelShape("tiny", n_layer=2, n_embd=64, n_head=4, n_head_kv=2, head_dim=16,
                       n_expert=8, n_expert_used=2, n_ff_exp=32, n_ff=128),
    "qwen3-coder-30b-a3b": ModelShape("qwen3-coder-30b-a3b", n_layer=48, n_embd=2048, n_head=32,
                                      n_head_kv=4, head_dim=128, n_expert=128, n_expert_used=8,
                                      n_ff_exp=768, n_ff=6144, quantized=True),
}


@dataclass
class Vocabulary:
    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    chat_template: str
    name: str

    def id_of(self, text: str) -> int:
        return self.tokens.index(text)


def _gpt2_byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable-unicode map used by byte-level BPE vocabularies."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, codes)}


BYTE_TO_UNICODE = _gpt2_byte_to_unicode()
UNICODE_TO_BYTE = {v: k for k, v in BYTE_TO_UNICODE.items()}


def byte_level_vocabulary() -> Vocabulary:
    """The smallest lossless vocabulary: 256 byte tokens, one merge, Qwen3's special tokens."""
    tokens = [BYTE_TO_UNICODE[b] for b in range(256)]
    space = BYTE_TO_UNICODE[ord(" ")]
    merges = [f"{space} {space}"]
    tokens.append(space + space)
    types = [TOKEN_NORMAL] * len(tokens)
    for special in QWEN3_SPECIAL_TOKENS:
        tokens.append(special)
        types.append(TOKEN_CONTROL if special.startswith("<|") else TOKEN_USER_DEFINED)
    return Vocabulary(tokens, types, merges, CHATML_TEMPLATE, "byte")


def qwen3_vocabulary(cache_dir: Path) -> Vocabulary:
    """The real Qwen3 vocabulary (151,643 BPE tokens + 26 added, padded to 151,936) and chat template."""
    from gguf import GGUFReader

    vocab_path, template_path = ensure_qwen3_vocab_files(cache_dir)
    reader = GGUFReader(str(vocab_path))

    def strings(key: str) -> list[str]:
        field = reader.fields[key]
        return [bytes(field.parts[i]).decode("utf-8") for i in field.data]

    tokens = strings("tokenizer.ggml.tokens")[:QWEN3_FIRST_SPECIAL_ID]
    merges = strings("tokenizer.ggml.merges")
    types = [TOKEN_NORMAL] * len(tokens)
    for special in QWEN3_SPECIAL_TOKENS:
        tokens.append(special)
        types.append(TOKEN_CONTROL if special.startswith("<|") else TOKEN_USER_DEFINED)
    while len(tokens) < QWEN3_PADDED_VOCAB:
        tokens.append(f"[PAD{len(tokens)}]")
        types.append(TOKEN_UNUSED)
    return Vocabulary(tokens, types, merges, template_path.read_text(encoding="utf-8"), "qwen3")


def ensure_qwen3_vocab_files(cache_dir: Path) -> tuple[Path, Path]:
    """Find (or extract from the llama-cpp-python sdist on PyPI) the Qwen2/3 vocab GGUF and Qwen3-Coder template."""
    import os

    target = cache_dir / "vocab"
    vocab = target / "ggml-vocab-qwen2.gguf"
    template = target / "Qwen3-Coder.jinja"
    override = os.environ.get("CODERFLASH_QWEN3_VOCAB")
    if override:
        vocab = Path(override)
        if not vocab.is_file():
            raise FileNotFoundError(f"CODERFLASH_QWEN3_VOCAB points to {vocab}, which does not exist")
        sibling = vocab.parent / "Qwen3-Coder.jinja"
        return vocab, sibling if sibling.is_file() else _write_chatml(target)
    if vocab.is_file() and template.is_file():
        return vocab, template
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}",
               "--no-deps", "--no-binary", ":all:", "-d", tmp, "-q"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        archives = list(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if result.returncode != 0 or not archives:
            raise RuntimeError(
                "cannot fetch the Qwen3 vocabulary: `pip download llama-cpp-python=="
                f"{LLAMA_CPP_PYTHON_VERSION} --no-binary :all:` failed ({result.stderr.strip()[-300:]}); "
                "set CODERFLASH_QWEN3_VOCAB to a ggml-vocab-qwen2.gguf"
            )
        wanted = {"vendor/llama.cpp/models/ggml-vocab-qwen2.gguf": vocab,
                  "vendor/llama.cpp/models/templates/Qwen3-Coder.jinja": template}
        with tarfile.open(archives[0]) as archive:
            for member in archive.getmembers():
                inner = member.name.split("/", 1)[-1]
                if inner in wanted:
                    source = archive.extractfile(member)
                    assert source is not None
                    partial = wanted[inner].with_suffix(".part")
                    partial.write_bytes(source.read())
                    partial.replace(wanted[inner])
    if not vocab.is_file() or not template.is_file():
        raise RuntimeError("the llama-cpp-python sdist did not contain the Qwen2 vocabulary or the Qwen3-Coder template")
    return vocab, template


def _write_chatml(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    path = target / "chatml.jinja"
    path.write_text(CHATML_TEMPLATE, encoding="utf-8")
    return path


def _printable_mask(vocab: Vocabulary) -> np.ndarray:
    """True for normal tokens whose bytes are printable ASCII with at least one non-space."""
    mask = np.zeros(len(vocab.tokens), dtype=bool)
    for i, (tok, kind) in enumerate(zip(vocab.tokens, vocab.token_types)):
        if kind != TOKEN_NORMAL:
            continue
        try:
            raw = bytes(UNICODE_TO_BYTE[c] for c in tok)
        except KeyError:
            continue
        if raw and all(32 <= b < 127 for b in raw) and raw.strip():
            mask[i] = True
    return mask


def _q4_0_random(rng: np.random.Generator, rows: int, cols: int, scale: float) -> np.ndarray:
    """Random Q4_0 blocks as raw bytes: (fp16 scale, 16 bytes of nibbles) per 32 values."""
    assert cols % 32 == 0
    blocks = rows * cols // 32
    data = rng.integers(0, 256, size=(blocks, 18), dtype=np.uint8)
    data[:, 0:2] = np.frombuffer(np.float16(scale).tobytes(), dtype=np.uint8)
    return data.reshape(rows, cols // 32 * 18)


@dataclass
class TensorPlan:
    name: str
    shape: tuple[int, ...]  # numpy shape (ggml dims reversed)
    scale: float
    quantize: bool


def tensor_plans(shape: ModelShape, n_vocab: int) -> list[TensorPlan]:
    e, hd = shape.n_embd, shape.head_dim
    q = shape.quantized
    plans = [
        TensorPlan("token_embd.weight", (n_vocab, e), 1.0, q),
        TensorPlan("output_norm.weight", (e,), 1.0, False),
        TensorPlan("output.weight", (n_vocab, e), 0.5, q),
    ]
    for i in range(shape.n_layer):
        p = f"blk.{i}."
        plans += [
            TensorPlan(p + "attn_norm.weight", (e,), 1.0, False),
            TensorPlan(p + "attn_q.weight", (shape.n_head * hd, e), 0.1, q),
            TensorPlan(p + "attn_k.weight", (shape.n_head_kv * hd, e), 0.1, q),
            TensorPlan(p + "attn_v.weight", (shape.n_head_kv * hd, e), 0.1, q),
            TensorPlan(p + "attn_output.weight", (e, shape.n_head * hd), 0.5, q),
            TensorPlan(p + "attn_q_norm.weight", (hd,), 1.0, False),
            TensorPlan(p + "attn_k_norm.weight", (hd,), 1.0, False),
            TensorPlan(p + "ffn_norm.weight", (e,), 1.0, False),
            TensorPlan(p + "ffn_gate_inp.weight", (shape.n_expert, e), 0.1, False),
            TensorPlan(p + "ffn_gate_exps.weight", (shape.n_expert, shape.n_ff_exp, e), 0.1, q),
            TensorPlan(p + "ffn_up_exps.weight", (shape.n_expert, shape.n_ff_exp, e), 0.1, q),
            TensorPlan(p + "ffn_down_exps.weight", (shape.n_expert, e, shape.n_ff_exp), 0.5, q),
        ]
    return plans


def _materialize(plan: TensorPlan, rng: np.random.Generator, printable: np.ndarray) -> np.ndarray:
    """Create one tensor's data. Norm weights are ones; embeddings carry a constant first dimension
    that the output layer turns into a large bonus for printable tokens (and a penalty for the rest)."""
    if plan.name.endswith("norm.weight"):
        return np.ones(plan.shape, dtype=np.float32)
    if plan.quantize:
        rows = int(np.prod(plan.shape[:-1]))
        data = _q4_0_random(rng, rows, plan.shape[-1], plan.scale / 8)
        return data.reshape(*plan.shape[:-1], data.shape[-1])
    data = rng.standard_normal(plan.shape, dtype=np.float32) * plan.scale
    if plan.name == "token_embd.weight":
        data[:, 0] = 8.0
    elif plan.name == "output.weight":
        data[:, 0] = np.where(printable, 4.0, -4.0)
    return data


def synthesize(
    out: Path | str,
    shape: ModelShape | str = "tiny",
    *,
    seed: int = 0,
    vocab: Vocabulary | None = None,
) -> Path:
    """Write a qwen3moe GGUF to ``out`` (deterministic for a seed). Streams tensors, so the
    30B-shape file never has to fit in memory."""
    if isinstance(shape, str):
        if shape not in SHAPES:
            raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")
        shape = SHAPES[shape]
    vocab = vocab or byte_level_vocabulary()
    out = Path(out)
    if out.is_dir():  # before the work: the rename at the end would fail after writing the whole file
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a model file", str(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(str(out) + ".part")
    try:
        _write_gguf(partial, shape, vocab, seed)
        partial.replace(out)
    except BaseException:  # a failed or interrupted write leaves no partial model beside the destination
        partial.unlink(missing_ok=True)
        raise
    return out


def _write_gguf(path: Path, shape: ModelShape, vocab: Vocabulary, seed: int) -> None:
    """Stream the GGUF of ``shape`` with ``vocab`` to ``path``."""
    import gguf

    rng = np.random.default_rng(seed)
    printable = _printable_mask(vocab)
    n_vocab = len(vocab.tokens)

    arch = "qwen3moe"
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name(f"coderflash synthetic {shape.name} ({vocab.name} vocab, seed {seed})")
    writer.add_context_length(shape.context_length)
    writer.add_embedding_length(shape.n_embd)
    writer.add_block_count(shape.n_layer)
    writer.add_feed_forward_length(shape.n_ff)
    writer.add_head_count(shape.n_head)
    writer.add_head_count_kv(shape.n_head_kv)
    writer.add_key_length(shape.head_dim)
    writer.add_value_length(shape.head_dim)
    writer.add_rope_freq_base(shape.rope_freq_base)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_expert_count(shape.n_expert)
    writer.add_expert_used_count(shape.n_expert_used)
    writer.add_expert_feed_forward_length(shape.n_ff_exp)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0 if shape.quantized else gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.token_types)
    writer.add_token_merges(vocab.merges)
    writer.add_bos_token_id(vocab.id_of("<|endoftext|>"))
    writer.add_eos_token_id(vocab.id_of("<|im_end|>"))
    writer.add_pad_token_id(vocab.id_of("<|endoftext|>"))
    writer.add_add_bos_token(False)
    writer.add_chat_template(vocab.chat_template)

    plans = tensor_plans(shape, n_vocab)
    for plan in plans:
        if plan.quantize:
            byte_shape = (*plan.shape[:-1], plan.shape[-1] // 32 * 18)
            writer.add_tensor_info(plan.name, byte_shape, np.dtype(np.uint8), int(np.prod(byte_shape)),
                                   raw_dtype=gguf.GGMLQuantizationType.Q4_0)
        else:
            writer.add_tensor_info(plan.name, plan.shape, np.dtype(np.float32), int(np.prod(plan.shape)) * 4)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for plan in plans:  # quantized big shapes carry no printable bias: they exist to measure speed
        writer.write_tensor_data(_materialize(plan, rng, printable))
    writer.close()


def scaled(shape: ModelShape, **changes: int) -> ModelShape:
    """A variant of ``shape`` (same code path, smaller numbers) for tests of the big shape."""
    return replace(shape, **changes)
