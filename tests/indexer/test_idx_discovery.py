"""File discovery: ignore rules, skipped files with reasons, secrets never read."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from indexer import Index, IndexSettings, is_secret_path

from idx_helpers import unprivileged_ids, write_tree


def _paths(idx: Index) -> set[str]:
    return {f.path for f in idx.files()}


def test_gitignore_at_every_level_info_exclude_and_coderflashignore(repo: Path, cache_dir: Path) -> None:
    write_tree(repo, {
        ".gitignore": "*.log\nbuild_out/\n!keep.log\n",
        ".git/info/exclude": "excluded_by_info.py\n",
        ".git/config": "[core]\n",
        ".coderflashignore": "private/\n",
        "keep.log": "kept\n",
        "drop.log": "dropped\n",
        "excluded_by_info.py": "x = 1\n",
        "build_out/gen.py": "x = 1\n",
        "private/notes.py": "x = 1\n",
        "sub/.gitignore": "local_only.py\n!important.log\n",
        "sub/local_only.py": "x = 1\n",
        "sub/important.log": "re-included by a deeper .gitignore\n",
        "sub/code.py": "def f():\n    pass\n",
        "other/local_only.py": "x = 1\n",  # the sub/.gitignore must not apply here
        "node_modules/lib/index.js": "module.exports = 1\n",
        ".venv/lib/site.py": "x = 1\n",
        "target/debug/out.rs": "fn main() {}\n",
        "dist/bundle.js": "x\n",
        "app.min.js": "var a=1;\n",
        "main.py": "print('hi')\n",
    })
    with Index.open(repo, cache_dir, IndexSettings(extra_ignore=["*.tmp"])) as idx:
        (repo / "scratch.tmp").write_text("tmp\n")
        stats = idx.build()
        assert _paths(idx) == {"keep.log", "sub/important.log", "sub/code.py", "other/local_only.py", "main.py"}
        assert stats.skipped["ignored"] >= 8
        assert stats.skipped["generated"] == 1
        assert idx.skipped()["app.min.js"] == "generated"


def test_skipped_files_have_reasons_and_nothing_else_breaks(repo: Path, cache_dir: Path) -> None:
    write_tree(repo, {
        "good.py": "def good():\n    return 1\n",
        "binary.py": b"def x():\n\x00\x01\x02 pass\n",
        "latin1.py": "# caf\xe9\ndef latin():\n    pass\n".encode("latin-1"),
        "minified.js": "var a=" + "1+" * 40_000 + "1;\n",
    })
    with open(repo / "huge.py", "wb") as f:  # 50 MB, sparse: never read because of its size
        f.truncate(50 * 1024 * 1024)
    os.symlink("loop_b", repo / "loop_a")
    os.symlink("loop_a", repo / "loop_b")
    (repo / "dir").mkdir()
    (repo / "dir" / "inner.py").write_text("def inner():\n    pass\n")
    os.symlink("..", repo / "dir" / "up")  # directory loop back to the root
    os.symlink("inner.py", repo / "dir" / "alias.py")  # inside the root: followed
    outside = Path(tempfile.mkdtemp())
    (outside / "secret_code.py").write_text("def outside():\n    pass\n")
    os.symlink(outside, repo / "escape")
    os.symlink(outside / "secret_code.py", repo / "escape_file.py")
    try:
        with Index.open(repo, cache_dir, IndexSettings(max_file_size=1_048_576)) as idx:
            stats = idx.build()
            skipped = idx.skipped()
            assert skipped["binary.py"] == "binary"
            assert skipped["latin1.py"] == "invalid_utf8"
            assert skipped["huge.py"] == "too_large"
            assert skipped["minified.js"] == "minified"
            assert skipped["loop_a"] == "symlink_loop" and skipped["loop_b"] == "symlink_loop"
            assert skipped["dir/up"] == "symlink_loop"
            assert skipped["escape"] == "symlink_outside_root"
            assert skipped["escape_file.py"] == "symlink_outside_root"
            assert _paths(idx) == {"good.py", "dir/inner.py", "dir/alias.py"}
            assert idx.definitions("good") and not idx.definitions("outside")
            for name in ("binary.py", "latin1.py", "huge.py", "escape_file.py"):
                assert idx.read_text(name) is None
            assert stats.skipped["binary"] == 1 and stats.skipped["too_large"] == 1
            assert stats.files == 3
    finally:
        shutil.rmtree(outside)


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX permissions")
def test_permission_denied_file_is_skipped(tmp_path: Path) -> None:
    """chmod 000 does not stop root, so when running as root the indexer runs as 'nobody' in a child."""
    base = Path(tempfile.mkdtemp(prefix="cf-perm-"))
    try:
        repo = write_tree(base / "repo", {"ok.py": "def ok():\n    pass\n", "locked.py": "def locked():\n    pass\n",
                                          "locked_dir/x.py": "def hidden():\n    pass\n"})
        (repo / "locked.py").chmod(0o000)
        (repo / "locked_dir").chmod(0o000)
        cache = base / "cache"
        cache.mkdir()
        for p in (base, repo, cache):
            p.chmod(0o777)
        # imports (and the grammar) are loaded before privileges are dropped: only the index run is unprivileged
        script = (
            "import json, os, sys\n"
            f"sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
            "from indexer import Index, IndexSettings\n"
            "from indexer.languages import load\n"
            "load('python')\n"
            "if os.getuid() == 0:\n"
            "    os.setgroups([]); os.setgid(int(sys.argv[2])); os.setuid(int(sys.argv[1]))\n"
            f"idx = Index.open({str(repo)!r}, {str(cache)!r}, IndexSettings(workers=1))\n"
            "s = idx.build()\n"
            "print(json.dumps({'files': sorted(f.path for f in idx.files()), 'skipped': idx.skipped(),\n"
            "                  'ok': len(idx.definitions('ok'))}))\n"
        )
        uid, gid = unprivileged_ids()
        out = subprocess.run([sys.executable, "-c", script, str(uid), str(gid)], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        import json

        res = json.loads(out.stdout.strip().splitlines()[-1])
        assert res["files"] == ["ok.py"]
        assert res["skipped"]["locked.py"] == "permission_denied"
        assert res["skipped"]["locked_dir"] == "permission_denied"
        assert res["ok"] == 1
    finally:
        for p in base.rglob("*"):
            try:
                p.chmod(0o700)
            except OSError:
                pass
        shutil.rmtree(base, ignore_errors=True)


SECRETS = {
    ".env": "API_KEY=TOKEN_ENV_0001\n",
    ".env.production": "TOKEN_ENV_0002\n",
    "config/server.pem": "-----BEGIN PRIVATE KEY-----TOKEN_PEM_0003\n",
    "keys/deploy.key": "TOKEN_KEY_0004\n",
    "id_rsa": "TOKEN_RSA_0005\n",
    "id_ed25519.pub": "TOKEN_ED_0006\n",
    "certs/client.p12": "TOKEN_P12_0007\n",
    "gcp-credentials.json": '{"private_key": "TOKEN_JSON_0008"}\n',
    "k8s/secrets.yaml": "password: TOKEN_YAML_0009\n",
    "app/secret_config.yml": "TOKEN_YML_0010\n",
    ".npmrc": "//registry/:_authToken=TOKEN_NPM_0011\n",
}


def test_secret_files_are_never_read(repo: Path, cache_dir: Path) -> None:
    write_tree(repo, dict(SECRETS, **{"app/main.py": "def main():\n    pass\n", "app/credentials.py": "def creds():\n    pass\n"}))
    opened: list[str] = []
    root = os.path.realpath(repo)

    def audit(event: str, args: tuple) -> None:
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            p = os.fsdecode(args[0])
            if p.startswith(root):
                opened.append(os.path.relpath(p, root))

    sys.addaudithook(audit)  # real file opens, in-process (workers=1)
    with Index.open(repo, cache_dir, IndexSettings(workers=1)) as idx:
        stats = idx.build()
        for rel in SECRETS:
            idx.update_paths([rel])
            idx.set_overlay(rel, "TOKEN_OVERLAY_9999")
            assert idx.read_text(rel) is None
        db = idx.db_path
        assert {f.path for f in idx.files()} == {"app/main.py", "app/credentials.py"}
        assert stats.skipped["secret"] == len(SECRETS)
    audit_done = list(opened)
    opened.clear()
    assert not set(audit_done) & set(SECRETS), set(audit_done) & set(SECRETS)
    blob = b"".join(Path(str(db) + s).read_bytes() for s in ("", "-wal") if Path(str(db) + s).exists())
    assert b"TOKEN_" not in blob


def test_is_secret_path_defaults_and_configurable() -> None:
    for p in SECRETS:
        assert is_secret_path(p), p
    for p in ("src/main.py", "src/env.py", "docs/secrets.md", "app/credentials.py", "keyboard.c"):
        assert not is_secret_path(p), p
    assert is_secret_path("conf/vault.hcl", ["*.hcl"]) and not is_secret_path(".env", ["*.hcl"])


def test_symlink_to_a_secret_file_is_secret(tmp_path: Path) -> None:
    """A harmless name must not let a secret in: notes.txt -> .env is skipped as secret and never read."""
    from indexer import Index

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".env").write_text("API_TOKEN=supersecretvalue123\n")
    (repo / "notes.txt").symlink_to(".env")
    (repo / "app.py").write_text("def main():\n    return 1\n")
    with Index.open(repo, tmp_path / "cache") as idx:
        stats = idx.build()
        assert idx.read_text("notes.txt") is None
        assert "notes.txt" not in {f.path for f in idx.files()}
        assert stats.to_json()["skipped"].get("secret", 0) >= 2
        (repo / "link2.txt").symlink_to(".env")
        idx.update_paths(["link2.txt"])
        assert idx.read_text("link2.txt") is None


def test_a_symlinked_directory_is_indexed_once_whatever_its_name(repo: Path, cache_dir: Path) -> None:
    """A link to a directory of the workspace adds no second copy of its files, also when the link's name
    sorts before the target's (the walk met the link first and indexed both, and a watcher keeps only one
    name per directory: edits reached one copy). A link into an ignored directory is still followed."""
    write_tree(repo, {"pkg/mod.py": "def in_pkg():\n    pass\n", "pkg/sub/deep.py": "def deep():\n    pass\n",
                      "gen/out.py": "def generated():\n    pass\n", ".gitignore": "gen/\n"})
    os.symlink("pkg", repo / "aaa_link")  # sorts before its target
    os.symlink("pkg", repo / "zzz_link")  # sorts after it
    os.symlink("gen", repo / "gen_link")  # its target is ignored: reached only through the link
    with Index.open(repo, cache_dir) as idx:
        idx.build()
        assert _paths(idx) == {"pkg/mod.py", "pkg/sub/deep.py", "gen_link/out.py"}
        assert [d.path for d in idx.definitions("in_pkg")] == ["pkg/mod.py"]
        assert idx.skipped()["aaa_link"] == idx.skipped()["zzz_link"] == "symlink_loop"


@pytest.mark.parametrize("eol", ["\r", "\r\n"])
def test_a_long_file_with_classic_mac_or_windows_line_ends_is_not_minified(repo: Path, cache_dir: Path,
                                                                          eol: str) -> None:
    """Lines end at a lone ``\\r`` too (LSP's line ends; the parser reads them so): 30 KB of short lines in
    ``\\r`` was skipped as one minified line, and its names went missing from every prompt."""
    body = "".join(f"# setting {i} of the service\nNAME_{i:03d} = {i}\n" for i in range(600))
    write_tree(repo, {"constants.py": body.replace("\n", eol).encode(), "one_line.py": body.replace("\n", ";")})
    with Index.open(repo, cache_dir, IndexSettings()) as idx:
        idx.build()
        assert "constants.py" not in idx.skipped() and idx.definitions("NAME_599")
        assert idx.skipped()["one_line.py"] == "minified"
