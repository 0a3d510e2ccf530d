"""`coderflash doctor`: what backend, offload, model, index and config coderflash sees, and what is wrong."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from engine import __version__
from engine.config import ConfigError, load_config, user_config_path
from engine.model.pypi_models import models_dir
from engine.model.resolution import DEFAULT_REPO, PULL_HINT, ModelError, check_gguf, model_notice, resolve_model


def run_doctor(root: Path) -> tuple[dict[str, Any], list[str]]:
    problems: list[str] = []
    report: dict[str, Any] = {"version": __version__, "python": sys.version.split()[0], "root": str(root)}
    report["user_config"] = str(user_config_path()) + ("" if user_config_path().is_file() else " (absent)")
    workspace_file = root / ".coderflash.toml"
    report["workspace_config"] = str(workspace_file) + ("" if workspace_file.is_file() else " (absent)")
    try:
        config = load_config(root)
    except ConfigError as exc:
        problems.append(str(exc))
        config = None
    try:
        import llama_cpp

        report["llama_cpp_python"] = llama_cpp.__version__
        report["gpu_offload"] = bool(llama_cpp.llama_supports_gpu_offload())
        report["system_info"] = llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip()
    except Exception as exc:  # pragma: no cover - broken install
        problems.append(f"llama-cpp-python is not usable: {exc}")
        report["gpu_offload"] = False
    if config is not None:
        report["backend"] = config.backend
        report["cache_dir"] = str(config.cache_path)
        if config.backend == "openai":
            report["remote_url"] = config.remote.url or "(not set)"
            if not config.remote.url:
                problems.append("backend is openai but remote.url is not set")
        else:
            try:
                resolved = resolve_model(config.model)
                check_gguf(resolved.path)
                report["model"] = {"configured": config.model, "name": resolved.name, "path": str(resolved.path),
                                   "source": resolved.source, "small_default": resolved.is_small_default}
                if resolved.is_small_default:
                    report["note"] = model_notice(resolved)
                elif not resolved.name.startswith(DEFAULT_REPO):
                    report["note"] = PULL_HINT
            except ModelError as exc:
                report["model"] = {"configured": config.model, "error": str(exc)}
                problems.append(str(exc))
        report["models_dir"] = str(models_dir())  # pulled PyPI models (CODERFLASH_MODELS_DIR)
        index_dir = config.cache_path / "index"
        report["index_dir"] = str(index_dir) + ("" if index_dir.is_dir() else " (no index yet)")
    report["problems"] = problems
    return report, problems
