"""Prompt formats detected from the model's own vocabulary.

A prompt is a list of pieces: ``str`` pieces are user text (tokenized with ``special=False`` so a literal
``<|fim_middle|>`` inside user code stays text) and ``int`` pieces are control-token ids looked up by
their text in the GGUF vocabulary, never hard-coded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence, Union

Piece = Union[str, int]
TokenLookup = Callable[[str], "int | None"]


@dataclass(frozen=True)
class _Family:
    name: str
    prefix: str
    suffix: str
    middle: str
    repo_name: str | None = None
    file_sep: str | None = None
    order: str = "psm"  # prefix-suffix-middle; "spm" puts the suffix first (Codestral)
    extra_stops: tuple[str, ...] = ()


FAMILIES: tuple[_Family, ...] = (
    _Family("qwen", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|repo_name|>", "<|file_sep|>",
            extra_stops=("<|endoftext|>", "<|im_end|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>")),
    _Family("starcoder", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<repo_name>", "<file_sep>",
            extra_stops=("<|endoftext|>", "<fim_pad>", "<file_sep>", "<repo_name>")),
    _Family("deepseek", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>",
            extra_stops=("<｜end▁of▁sentence｜>", "<|EOT|>")),
    _Family("codellama", "▁<PRE>", "▁<SUF>", "▁<MID>", extra_stops=("▁<EOT>", "<EOT>")),
    _Family("codellama", "<PRE>", "<SUF>", "<MID>", extra_stops=("<EOT>",)),
    _Family("codestral", "[PREFIX]", "[SUFFIX]", "[MIDDLE]", order="spm", extra_stops=("</s>",)),
)


@dataclass
class PromptFormat:
    """How to lay out a completion prompt for one model."""

    name: str
    fim: bool
    prefix_id: int | None = None
    suffix_id: int | None = None
    middle_id: int | None = None
    repo_name_id: int | None = None
    file_sep_id: int | None = None
    order: str = "psm"
    stop_ids: frozenset[int] = field(default_factory=frozenset)
    token_texts: dict[int, str] = field(default_factory=dict)

    @property
    def repo_level(self) -> bool:
        return self.file_sep_id is not None

    def repo_header(self, repo_name: str) -> list[Piece]:
        if self.repo_name_id is None:
            return []
        return [self.repo_name_id, f"{repo_name}\n"]

    def file_block(self, path: str, content: str) -> list[Piece]:
        """One repository file. Without file-separator tokens, a comment-style header in plain text."""
        if not content.endswith("\n"):
            content += "\n"
        if self.file_sep_id is not None:
            return [self.file_sep_id, f"{path}\n{content}"]
        return [f"# file: {path}\n{content}\n"]

    def current_file_header(self, path: str) -> list[Piece]:
        if self.file_sep_id is not None:
            return [self.file_sep_id, f"{path}\n"]
        return [f"# file: {path}\n"]

    def infill(self, prefix: str, suffix: str) -> list[Piece]:
        """The fill-in-the-middle tail; prefix-only for models without FIM tokens."""
        if not self.fim:
            return [prefix]
        assert self.prefix_id is not None and self.suffix_id is not None and self.middle_id is not None
        if self.order == "spm":
            return [self.suffix_id, suffix, self.prefix_id, prefix]
        return [self.prefix_id, prefix, self.suffix_id, suffix, self.middle_id]

    def render(self, pieces: Sequence[Piece]) -> str:
        """Human-readable prompt text (control tokens shown by their text)."""
        return "".join(p if isinstance(p, str) else self.token_texts.get(p, f"<#{p}>") for p in pieces)


def detect_format(lookup: TokenLookup, eos_id: int | None = None) -> PromptFormat:
    """Find the first FIM family whose three tokens exist in the vocabulary; else prefix-only."""
    stops: set[int] = set() if eos_id is None else {eos_id}
    for family in FAMILIES:
        ids = [lookup(t) for t in (family.prefix, family.suffix, family.middle)]
        if any(i is None for i in ids):
            continue
        texts = {}
        for text in (family.prefix, family.suffix, family.middle, family.repo_name, family.file_sep, *family.extra_stops):
            if text is not None and (tid := lookup(text)) is not None:
                texts[tid] = text
        repo_name_id = lookup(family.repo_name) if family.repo_name else None
        file_sep_id = lookup(family.file_sep) if family.file_sep else None
        for text in family.extra_stops:
            if (tid := lookup(text)) is not None:
                stops.add(tid)
        stops.update(i for i in ids if i is not None)
        return PromptFormat(family.name, True, ids[0], ids[1], ids[2], repo_name_id, file_sep_id,
                            family.order, frozenset(stops), texts)
    return PromptFormat("plain", False, stop_ids=frozenset(stops))


def dict_lookup(vocab: dict[str, int]) -> TokenLookup:
    """A token lookup over a plain ``{text: id}`` mapping (tests, vocabularies read from GGUF metadata)."""
    return vocab.get


# Pseudo ids for the token-text formats below: far above any real vocabulary, never sent to a model.
TEXT_FORMAT_ID_BASE = 1 << 30


def text_format(family: str = "qwen") -> PromptFormat:
    """A format for when no model is available (``coderflash context`` without a model).

    Control tokens get pseudo ids and are rendered by their text, so the printed prompt is exactly what
    the real model of that family would receive; token counts then come from the estimate counter.
    """
    if family == "plain":
        return PromptFormat("plain", False)
    for fam in FAMILIES:
        if fam.name == family:
            texts = [fam.prefix, fam.suffix, fam.middle, fam.repo_name, fam.file_sep, *fam.extra_stops]
            vocab: dict[str, int] = {}
            for text in texts:
                if text is not None and text not in vocab:
                    vocab[text] = TEXT_FORMAT_ID_BASE + len(vocab)
            return detect_format(dict_lookup(vocab))
    raise ValueError(f"unknown prompt format family {family!r}")
