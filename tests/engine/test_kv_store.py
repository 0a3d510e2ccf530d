from pathlib import Path

import pytest

from engine.model.kv_store import KVStore, SnapshotError, read_snapshot


def test_roundtrip_truncated_and_corrupt(tmp_path: Path):
    store = KVStore(tmp_path, keep=2)
    path = store.save("m", [1, 2, 3], [1, 2, 3, 4], b"state-bytes" * 100)
    snap = store.load("m", [1, 2, 3])
    assert snap is not None and snap.tokens == [1, 2, 3, 4] and snap.state == b"state-bytes" * 100
    assert store.load("m", [9]) is None
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SnapshotError, match="checksum|truncated"):
        store.load("m", [1, 2, 3])
    path.write_bytes(data[:-40] + bytes([data[-40] ^ 1]) + data[-39:])
    with pytest.raises(SnapshotError):
        read_snapshot(path)
    for i in range(4):
        store.save("m", [i], [i], b"x")
    assert len(list(tmp_path.glob("m-*.kv"))) == 2
