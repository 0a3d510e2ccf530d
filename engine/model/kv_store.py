"""On-disk snapshots of the repository prefix's KV state, so a restart does not re-prefill 32K+ tokens.

Why a custom file instead of ``Llama.save_state()``: that copies the whole logits buffer (311 MB with a
151K vocabulary) and records nothing about which model or settings produced it. A snapshot here is the
sequence's KV bytes (``llama_state_seq_get_data``) plus the token ids they encode (the prefix, possibly
followed by the tokens that were evaluated after it), keyed by model + prefix hash, written to a temporary file and renamed, and closed by a SHA-256 of everything before it: a file cut
short by a crash or a full disk fails the check and is never handed to llama.cpp.

Layout: ``MAGIC`` · u32 header length · header JSON · int32 token ids · state bytes · 32-byte SHA-256.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import tempfile
import time
from array import array
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

MAGIC = b"CFKV\x01\n"
DIGEST = 32


class SnapshotError(ValueError):
    """A snapshot file is unusable (truncated, corrupt, for another model); the reason says which."""


@dataclass
class Snapshot:
    tokens: list[int]
    state: bytes
    header: dict[str, object]


def prefix_hash(tokens: Sequence[int]) -> str:
    """Stable hash of a token sequence (the prefix a snapshot encodes)."""
    return hashlib.blake2b(array("i", tokens).tobytes(), digest_size=16).hexdigest()


def model_key(model_path: Path, settings: dict[str, object]) -> str:
    """Identify the model file and every setting that changes the KV bytes (n_ctx, cache type, rope)."""
    stat = model_path.stat()
    ident = json.dumps({"path": str(model_path.resolve()), "size": stat.st_size, "mtime": stat.st_mtime_ns,
                        **settings}, sort_keys=True)
    return hashlib.blake2b(ident.encode(), digest_size=12).hexdigest()


class KVStore:
    """A directory of snapshots, at most ``keep`` per model (oldest removed)."""

    #: A temporary file this old is left over by a process killed mid-write (a write takes seconds at most).
    STALE_TEMP_S = 600

    def __init__(self, directory: Path | str, keep: int = 4) -> None:
        self.directory = Path(directory)
        self.keep = keep
        self._remove_stale_temporaries()

    def _remove_stale_temporaries(self) -> None:
        """Temporary files of writes that never finished (the writer was killed, or the disk filled up)."""
        now = time.time()
        for tmp in self.directory.glob(".kv-*") if self.directory.is_dir() else ():
            with contextlib.suppress(OSError):
                if now - tmp.stat().st_mtime > self.STALE_TEMP_S:
                    tmp.unlink()

    def path_for(self, model: str, tokens: Sequence[int]) -> Path:
        return self.directory / f"{model}-{prefix_hash(tokens)}.kv"

    def has(self, model: str, prefix: Sequence[int]) -> bool:
        return self.path_for(model, prefix).is_file()

    def save(self, model: str, prefix: Sequence[int], tokens: Sequence[int], state: bytes) -> Path:
        """Store ``state`` (the KV of ``tokens``, which start with ``prefix``) under the prefix's key."""
        assert list(tokens[: len(prefix)]) == list(prefix), "snapshot tokens must start with the prefix"
        self.directory.mkdir(parents=True, exist_ok=True)
        header = json.dumps({"model": model, "n_tokens": len(tokens), "state_size": len(state),
                             "prefix_tokens": len(prefix), "prefix_hash": prefix_hash(prefix)}).encode()
        digest = hashlib.sha256()
        target = self.path_for(model, prefix)
        fd, tmp = tempfile.mkstemp(prefix=".kv-", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                for part in (MAGIC, struct.pack("<I", len(header)), header, array("i", tokens).tobytes(), state):
                    handle.write(part)
                    digest.update(part)
                handle.write(digest.digest())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._prune(model)
        return target

    def load(self, model: str, prefix: Sequence[int]) -> Snapshot | None:
        """The snapshot for this prefix, or None when there is none; SnapshotError when corrupt."""
        path = self.path_for(model, prefix)
        if not path.is_file():
            return None
        snap = read_snapshot(path)
        if snap.header.get("model") != model or snap.tokens[: len(prefix)] != list(prefix):
            raise SnapshotError(f"{path.name}: written for another model or prefix")
        return snap

    def _prune(self, model: str) -> None:
        files = sorted(self.directory.glob(f"{model}-*.kv"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in files[self.keep:]:
            old.unlink(missing_ok=True)


class SnapshotWriter:
    """Writes a store's snapshot files on a thread of its own.

    Why: only the copy out of llama.cpp has to happen on the inference worker; the file is written here,
    so a keystroke never waits behind gigabytes of disk I/O (the real model's KV is ~96 KiB per token)."""

    def __init__(self, store: KVStore) -> None:
        self.store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="coderflash-kv-writer")
        self._in_flight: dict[Path, Future] = {}

    def submit(self, model: str, prefix: Sequence[int], tokens: Sequence[int], state: bytes) -> "Future[Path]":
        """Queue ``KVStore.save``; the future carries the file's path."""
        target = self.store.path_for(model, prefix)
        future = self._executor.submit(self.store.save, model, prefix, tokens, state)
        self._in_flight[target] = future
        future.add_done_callback(lambda _f: self._in_flight.pop(target, None))
        return future

    def pending(self, model: str, prefix: Sequence[int]) -> bool:
        """True while a snapshot of ``prefix`` is being written (don't start a second one)."""
        return self.store.path_for(model, list(prefix)) in self._in_flight

    def flush(self) -> None:
        """Wait for the files being written (shutdown, tests)."""
        for future in list(self._in_flight.values()):
            with contextlib.suppress(Exception):
                future.result()

    def close(self) -> None:
        self.flush()
        self._executor.shutdown(wait=True)


def read_snapshot(path: Path) -> Snapshot:
    data = path.read_bytes()
    if len(data) < len(MAGIC) + 4 + DIGEST or not data.startswith(MAGIC):
        raise SnapshotError(f"{path.name}: not a coderflash KV snapshot or truncated")
    body, digest = data[:-DIGEST], data[-DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise SnapshotError(f"{path.name}: checksum mismatch (truncated or corrupt file)")
    offset = len(MAGIC)
    (header_len,) = struct.unpack_from("<I", body, offset)
    offset += 4
    header = json.loads(body[offset:offset + header_len])
    offset += header_len
    n_tokens = int(header["n_tokens"])
    tokens = array("i")
    tokens.frombytes(body[offset:offset + 4 * n_tokens])
    offset += 4 * n_tokens
    state = body[offset:]
    if len(tokens) != n_tokens or len(state) != int(header["state_size"]):
        raise SnapshotError(f"{path.name}: sizes do not match its header")
    return Snapshot(tokens.tolist(), bytes(state), header)
