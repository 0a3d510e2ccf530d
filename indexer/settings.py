"""Index settings and the secret-file policy.

Secret detection is by *path only*: the point is that a secret file's bytes are
never read at all, so content sniffing is not an option.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable

#: Default globs (matched against the file's basename, case-insensitive, and
#: against the full relative path when the glob contains a "/").
DEFAULT_SECRET_GLOBS: tuple[str, ...] = (
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.der",
    "*.crt",
    "*.cer",
    "*.asc",
    "*.gpg",
    "*.kdbx",
    "*.ovpn",
    "*.tfstate",
    "*.tfstate.*",
    "*.tfvars",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "*.ppk",
    ".netrc",
    "_netrc",
    ".npmrc",
    ".pypirc",
    ".pgpass",
    ".htpasswd",
    ".git-credentials",
    ".dockercfg",
    "credentials",
    "*credential*.json",
    "*credential*.yaml",
    "*credential*.yml",
    "*credential*.toml",
    "*credential*.ini",
    "*secret*.json",
    "*secret*.yaml",
    "*secret*.yml",
    "*secret*.toml",
    "*secret*.ini",
    "*secret*.txt",
    "*.secret",
    "*.secrets",
    "service-account*.json",
    "serviceaccount*.json",
    "*token*.json",
    "*password*.txt",
    "*passwords*.json",
    ".docker/config.json",
)

#: Directory names that are never descended into (VCS, vendored deps, build output, caches).
DEFAULT_IGNORED_DIRS: frozenset[str] = frozenset(
    {
        ".git", ".hg", ".svn", ".bzr", "_darcs", ".jj",
        "node_modules", "bower_components", "jspm_packages", "vendor", "third_party",
        ".venv", "venv", ".virtualenv", ".env", ".tox", ".nox", "site-packages",
        "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis", ".ipynb_checkpoints",
        "target", "dist", "build", "out", "_build", ".build", "obj",
        ".next", ".nuxt", ".svelte-kit", ".parcel-cache", ".turbo", ".cache", ".gradle", ".idea",
        ".vscode-test", "coverage", ".coverage_html", "htmlcov", ".eggs", ".terraform", ".dart_tool",
        "Pods", "DerivedData", ".stack-work", "elm-stuff", "zig-cache", "zig-out",
    }
)

_GENERATED_NAME_RE = re.compile(
    r"(\.min\.(js|css|mjs)$|[.-]bundle\.js$|\.pb\.go$|_pb2(_grpc)?\.pyi?$|\.generated\.\w+$|\.g\.dart$"
    r"|\.designer\.cs$|\.map$|^package-lock\.json$|^yarn\.lock$|^pnpm-lock\.yaml$|^Cargo\.lock$"
    r"|^poetry\.lock$|^composer\.lock$|^go\.sum$)",
    re.IGNORECASE,
)


def is_generated_name(name: str) -> bool:
    """Minified bundles, protobuf output, lock files: large, machine written, useless as context."""
    return bool(_GENERATED_NAME_RE.search(name))


@dataclass
class IndexSettings:
    """Knobs for discovery and parsing.

    ``workers=None`` uses every core for the cold index (the machine is small;
    more processes than cores only adds pickling overhead).
    """

    max_file_size: int = 1_048_576
    secret_globs: list[str] = field(default_factory=lambda: list(DEFAULT_SECRET_GLOBS))
    extra_ignore: list[str] = field(default_factory=list)
    workers: int | None = None
    ignored_dirs: frozenset[str] = DEFAULT_IGNORED_DIRS
    max_line_length: int = 2_000  # longer average line => treated as minified
    debounce_s: float = 0.05
    watch_overflow: int = 5_000  # more pending paths than this => full rescan
    watch_limit: int | None = None  # most directory watches to use (None: what the OS allows)

    def effective_workers(self) -> int:
        if self.workers is not None:
            return max(1, int(self.workers))
        return max(1, os.cpu_count() or 1)


@lru_cache(maxsize=64)
def _compile_secret(globs: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str] | None]:
    base = [fnmatch.translate(g.lower()) for g in globs if "/" not in g]
    full = [fnmatch.translate("*" + g.lower().lstrip("*")) for g in globs if "/" in g]
    base_re = re.compile("|".join(base) if base else r"(?!)")
    full_re = re.compile("|".join(full)) if full else None
    return base_re, full_re


def is_secret_path(path: str | os.PathLike[str], secret_globs: Iterable[str] | None = None) -> bool:
    """True if the path names a file that may hold credentials; such files are never read."""
    globs = tuple(secret_globs) if secret_globs is not None else DEFAULT_SECRET_GLOBS
    p = os.fspath(path).replace("\\", "/").lower()
    base_re, full_re = _compile_secret(globs)
    if base_re.match(p.rsplit("/", 1)[-1]):
        return True
    return bool(full_re and full_re.match(p))
