import os
import signal
import subprocess
import sys
import time
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


def test_a_write_cut_by_a_full_disk_leaves_the_previous_snapshot_and_no_temporary(tmp_path: Path):
    """RLIMIT_FSIZE makes the kernel refuse the write past 64 KB (EFBIG, as ENOSPC would on a full disk)."""
    store = KVStore(tmp_path)
    good = store.save("m", [1, 2], [1, 2], b"old" * 100)
    script = (
        "import resource, signal, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
        "from engine.model.kv_store import KVStore\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))\n"
        f"store = KVStore({str(tmp_path)!r})\n"
        "try:\n"
        "    store.save('m', [1, 2], [1, 2], b'new' * 1_000_000)\n"
        "except OSError as exc:\n"
        "    print('refused', exc.errno)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("refused"), (out.stdout, out.stderr)
    snap = store.load("m", [1, 2])
    assert snap is not None and snap.state == b"old" * 100  # the previous snapshot, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == [good.name]


def test_sigkill_mid_save_never_leaves_a_partial_snapshot(tmp_path: Path):
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})\n"
        "from engine.model.kv_store import KVStore\n"
        f"store = KVStore({str(tmp_path)!r}, keep=100)\n"
        "i = 0\n"
        "while True:\n"
        "    i += 1\n"
        "    store.save('m', [i], [i], bytes([i % 256]) * 50_000_000)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (list(tmp_path.glob("m-*.kv")) and list(tmp_path.glob(".kv-*"))):
            time.sleep(0.01)  # at least one snapshot done and the next being written
        assert list(tmp_path.glob(".kv-*")), "never caught a write in progress"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    snapshots = list(tmp_path.glob("m-*.kv"))
    assert snapshots
    for path in snapshots:  # every file under a snapshot's name is whole
        snap = read_snapshot(path)
        assert len(snap.state) == 50_000_000 and set(snap.state) == {snap.tokens[0] % 256}
    leftovers = list(tmp_path.glob(".kv-*"))
    assert leftovers  # the killed write's temporary file ...
    old = time.time() - KVStore.STALE_TEMP_S - 1
    for tmp in leftovers:
        os.utime(tmp, (old, old))
    KVStore(tmp_path)  # ... is removed by the next process that opens the store
    assert not list(tmp_path.glob(".kv-*"))
