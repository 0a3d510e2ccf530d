"""Typed configuration with one precedence order for every entry point.

Layers, lowest first: built-in defaults < user file (``~/.config/coderflash/config.toml`` via
platformdirs) < workspace file (``.coderflash.toml``) < environment (``CODERFLASH_*``) < LSP
``initializationOptions`` / ``workspace/didChangeConfiguration``.

The model setting is spelled ``model`` everywhere (TOML key, ``CODERFLASH_MODEL``, ``{"model": …}``):
outside tools rely on those three spellings. Nested keys use a dotted path in TOML sections
(``[llama] n_ctx = …``), ``CODERFLASH_LLAMA__N_CTX`` in the environment, and nested objects in LSP.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib

import platformdirs

APP_NAME = "coderflash"
WORKSPACE_FILE = ".coderflash.toml"
ENV_PREFIX = "CODERFLASH_"


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key and where it came from."""


@dataclass
class LlamaConfig:
    """In-process llama.cpp settings."""

    n_ctx: int = 32768
    n_gpu_layers: int = -1  # all layers when offload is supported
    flash_attn: bool = True
    kv_cache_type: str = "f16"
    threads: int = 0  # 0: llama.cpp's default (physical cores)
    n_batch: int = 512
    rope_scaling: str = "none"  # "none" | "yarn"
    yarn_factor: float = 4.0
    draft: str = "auto"  # "auto" | "model" | "prompt-lookup" | "none": drafts verified in a batch (auto: with
    # GPU offload, from ``draft_model`` when set, else from the prompt)
    draft_tokens: int = 10  # the most draft tokens verified per decode step
    draft_model: str = ""  # a small model with the same vocabulary (``model``'s spellings): the draft model
    verbose: bool = False


@dataclass
class RemoteConfig:
    """OpenAI-compatible server settings (llama-server, vLLM, SGLang, Ollama)."""

    url: str = ""
    model: str = ""
    api_key: str = ""
    api_key_env: str = "CODERFLASH_API_KEY"
    timeout_s: float = 30.0
    retries: int = 2
    prompt_format: str = "qwen"  # FIM family of the served model: qwen, starcoder, deepseek, codellama, codestral, plain


@dataclass
class CompletionConfig:
    """Inline completion behaviour."""

    max_tokens: int = 128
    max_lines: int = 16
    timeout_ms: int = 5000
    latency_target: bool = True  # size inline completions to first_token_ms (engine/inference/latency.py)
    first_token_ms: int = 0  # the first-token target; 0: 300 ms with GPU offload, 800 ms on a CPU
    debounce_ms: int = 75
    cache_size: int = 256


@dataclass
class ContextConfig:
    """Context assembly."""

    budget: int = 8192
    suffix_tokens: int = 512
    chat_reserve: int = 2048


@dataclass
class ChatConfig:
    """Chat sampling (Qwen3-Coder's recommendation) and agent limits."""

    temperature: float = 0.7
    top_p: float = 0.8
    top_k: int = 20
    repeat_penalty: float = 1.05
    max_tokens: int = 1024
    max_steps: int = 8
    history: int = 20


@dataclass
class IndexConfig:
    """Indexer settings."""

    max_file_size: int = 1_048_576
    secret_globs: list[str] = field(default_factory=list)  # added to the built-in list
    extra_ignore: list[str] = field(default_factory=list)
    watch: bool = True  # the server follows the disk (file watching; polling past the OS watch limit)
    watch_limit: int = 0  # most directory watches per workspace (0: what the OS allows)


@dataclass
class RedactionConfig:
    """What redaction replaces besides its built-in rules (engine/context/redact.py): ``names``, regular
    expressions matched inside identifiers whose assigned value is a secret (``stripe_restricted``);
    ``patterns``, regular expressions whose every match is replaced (``ACME-[0-9A-F]{24}``)."""

    names: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)


@dataclass
class ToolsConfig:
    """Agent tools: running commands is off unless named here."""

    run_commands: list[str] = field(default_factory=list)
    command_timeout_s: float = 30.0
    output_cap: int = 16_000


@dataclass
class Config:
    """The whole configuration. ``model`` is a GGUF path, ``REPO[:QUANT]``, a short name of a PyPI-hosted model
    (``qwen2.5-coder-0.5b``) or empty (Qwen3-Coder if pulled, else the pulled Qwen2.5-Coder-0.5B)."""

    model: str = ""
    backend: str = "llama"  # "llama" | "openai"
    cache_dir: str = ""
    llama: LlamaConfig = field(default_factory=LlamaConfig)
    remote: RemoteConfig = field(default_factory=RemoteConfig)
    completion: CompletionConfig = field(default_factory=CompletionConfig)
    context: ContextConfig = field(default_factory=ContextConfig)
    chat: ChatConfig = field(default_factory=ChatConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    tools: ToolsConfig = field(default_factory=ToolsConfig)
    redaction: RedactionConfig = field(default_factory=RedactionConfig)

    @property
    def cache_path(self) -> Path:
        """Where index, KV snapshots and logs live; the platform cache dir unless configured."""
        return Path(self.cache_dir).expanduser() if self.cache_dir else Path(platformdirs.user_cache_dir(APP_NAME))


_CHOICES: dict[str, tuple[str, ...]] = {
    "backend": ("llama", "openai"),
    "llama.kv_cache_type": ("f16", "q8_0", "q4_0"),
    "llama.rope_scaling": ("none", "yarn"),
    "llama.draft": ("auto", "model", "prompt-lookup", "none"),
    "remote.prompt_format": ("qwen", "starcoder", "deepseek", "codellama", "codestral", "plain"),
}
_RANGES: dict[str, tuple[float, float]] = {
    "llama.n_ctx": (256, 1_048_576),
    "llama.n_batch": (1, 65_536),
    "llama.draft_tokens": (0, 64),
    "context.budget": (64, 1_048_576),
    "completion.max_tokens": (1, 8192),
    "completion.max_lines": (1, 1000),
    "completion.timeout_ms": (1, 600_000),
    "completion.first_token_ms": (0, 600_000),
    "chat.temperature": (0.0, 5.0),
    "chat.top_p": (0.0, 1.0),
    "index.max_file_size": (1, 1 << 34),
}


def _coerce(value: Any, target: Any, key: str, source: str) -> Any:
    """Convert ``value`` to the type of the default ``target``; strings from the environment parse."""
    where = f"{key} (from {source})"
    if isinstance(target, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"invalid value for {where}: expected true or false, got {value!r}")
    if isinstance(target, int):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(f"invalid value for {where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"invalid value for {where}: expected an integer, got {value!r}") from None
    if isinstance(target, float):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"invalid value for {where}: expected a number, got {value!r}")
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"invalid value for {where}: expected a number, got {value!r}") from None
    if isinstance(target, list):
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"invalid value for {where}: expected a list of strings, got {value!r}")
        return list(value)
    if isinstance(target, str):
        if not isinstance(value, str):
            raise ConfigError(f"invalid value for {where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"unsupported setting {where}")  # pragma: no cover


def _apply(obj: Any, data: Mapping[str, Any], source: str, prefix: str = "", strict: bool = True) -> None:
    """Merge a nested mapping onto a config dataclass, validating every key and value.

    ``strict=False`` (the environment) skips names that are not settings: other tools' ``CODERFLASH_*``
    variables must not stop the server."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"invalid value for {prefix.rstrip('.') or 'configuration'} (from {source}): expected a table")
    names = {f.name for f in dataclasses.fields(obj)}
    for raw_key, value in data.items():
        key = str(raw_key).replace("-", "_")
        dotted = prefix + key
        if key not in names:
            if not strict:
                continue
            raise ConfigError(f"unknown setting {dotted!r} (from {source})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not strict and not isinstance(value, Mapping):
                continue
            _apply(current, value, source, dotted + ".", strict)
            continue
        setattr(obj, key, _coerce(value, current, dotted, source))


def _validate(cfg: Config, source: str) -> None:
    for dotted, choices in _CHOICES.items():
        value = _get(cfg, dotted)
        if value not in choices:
            raise ConfigError(f"invalid value for {dotted} (from {source}): {value!r}; choose one of {', '.join(choices)}")
    for dotted, (low, high) in _RANGES.items():
        value = _get(cfg, dotted)
        if not low <= value <= high:
            raise ConfigError(f"invalid value for {dotted} (from {source}): {value!r} is outside {low:g}..{high:g}")
    for dotted in ("redaction.names", "redaction.patterns"):
        for pattern in _get(cfg, dotted):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"invalid value for {dotted} (from {source}): {pattern!r} is not a regular "
                                  f"expression ({exc})") from None


def _get(cfg: Config, dotted: str) -> Any:
    obj: Any = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``CODERFLASH_MODEL`` → ``model``; ``CODERFLASH_LLAMA__N_CTX`` → ``llama.n_ctx``."""
    result: dict[str, Any] = {}
    skip = {"CODERFLASH_API_KEY", "CODERFLASH_CONFIG", "CODERFLASH_QWEN3_VOCAB", "CODERFLASH_DEBUG"}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in skip:
            continue
        path = name[len(ENV_PREFIX):].lower().split("__")
        node = result
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return result


def user_config_path() -> Path:
    override = os.environ.get("CODERFLASH_CONFIG")
    if override:
        return Path(override)
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot parse {path}: {exc}") from None


def load_config(
    workspace: Path | str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    override_source: str = "initializationOptions",
    skipped: list[str] | None = None,
) -> Config:
    """Build the effective configuration for a workspace (all layers, validated).

    ``skipped``: instead of raising, leave out each layer (user file, workspace file, environment, overrides)
    that cannot be read, applied or validated, and append its error to this list. Why: the language server
    must keep serving with a typo in ``.coderflash.toml``, saying which settings it ignores; the command
    line raises, so a script sees the error."""
    env = os.environ if environ is None else environ
    layers: list[tuple[Callable[[], Any], str, bool]] = []
    user_file = user_config_path()
    if user_file.is_file():
        layers.append((functools.partial(_read_toml, user_file), str(user_file), True))
    if workspace is not None:
        ws_file = Path(workspace) / WORKSPACE_FILE
        if ws_file.is_file():
            layers.append((functools.partial(_read_toml, ws_file), str(ws_file), True))
    layers.append((functools.partial(env_overrides, env), "environment", False))
    if overrides:
        layers.append((lambda: overrides, override_source, True))
    cfg = Config()
    for read, source, strict in layers:
        if skipped is None:
            _apply(cfg, read(), source, strict=strict)
            continue
        trial = copy.deepcopy(cfg)
        try:
            _apply(trial, read(), source, strict=strict)
            _validate(trial, source)
        except (ConfigError, OSError) as exc:
            skipped.append(str(exc))
            continue
        cfg = trial
    _validate(cfg, override_source if overrides else "configuration")
    return cfg


def merged(base: Config, overrides: Mapping[str, Any], source: str) -> Config:
    """A copy of ``base`` with LSP settings applied (didChangeConfiguration)."""
    cfg = copy.deepcopy(base)
    _apply(cfg, overrides, source)
    _validate(cfg, source)
    return cfg
