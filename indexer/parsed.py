"""What parsing one file yields, and the compact encodings it travels and is stored in.

Everything is plain tuples / bytes so a worker process can send it back cheaply (``to_wire``) and the
store can write it without conversion.  References are packed: one marshal blob per file mapping each
name to its positions as a flat ``uint32`` array of (line, column) pairs; one opaque blob per file is
far cheaper to pickle across processes and to store than one row per name.
"""

from __future__ import annotations

import marshal
from array import array
from dataclasses import dataclass, field
from itertools import chain

import numpy as np

# Definition tuple layout (kept positional for cheap pickling):
# (name, qualified_name, kind, signature, doc, start_line, end_line, start_byte, end_byte, parent, name_line)
DefTuple = tuple[str, str, str, str, str, int, int, int, int, "str | None", int]
# Import tuple: (module, names_csv, line)
ImportTuple = tuple[str, str, int]


@dataclass
class ParsedFile:
    lines: int
    defs: list[DefTuple] = field(default_factory=list)
    # marshal of {name: array('I', [line, col, ...]).tobytes()} (see pack_refs)
    refs_blob: bytes = b""
    ref_count: int = 0
    imports: list[ImportTuple] = field(default_factory=list)

    @property
    def refs(self) -> dict[str, bytes]:
        return decode_refs(self.refs_blob)

    def ref_counts(self) -> dict[str, int]:
        return {n: len(b) // 8 for n, b in self.refs.items()}


def decode_refs(blob: bytes | None) -> dict[str, bytes]:
    return marshal.loads(blob) if blob else {}


def to_wire(p: ParsedFile) -> bytes:
    """marshal is several times faster than pickling the dataclass across the process pipe."""
    return marshal.dumps((p.lines, p.defs, p.refs_blob, p.ref_count, p.imports))


def from_wire(b: bytes) -> ParsedFile:
    lines, defs, blob, count, imports = marshal.loads(b)
    return ParsedFile(lines, defs, blob, count, imports)


def pack_refs(src: bytes, offsets: dict[bytes, list[int]]) -> tuple[bytes, int]:
    """Pack each name's byte offsets in ``src`` into (line, column) pairs: the blob and the number of uses.

    Lines and columns are computed for all occurrences at once with numpy (per node, the parser's hot
    loop only reads the start byte).  The blob keeps the names in the order given."""
    counts = [len(v) for v in offsets.values()]
    offs = np.fromiter(chain.from_iterable(offsets.values()), dtype=np.int64, count=sum(counts))
    nl = np.flatnonzero(np.frombuffer(src, dtype=np.uint8) == 10)
    lines_arr = np.searchsorted(nl, offs)
    starts = np.where(lines_arr > 0, nl[np.maximum(lines_arr - 1, 0)] + 1, 0)
    buf = np.empty(2 * len(offs), dtype=np.uint32)
    buf[0::2] = lines_arr
    buf[1::2] = offs - starts
    raw_bytes = buf.tobytes()
    refs: dict[str, bytes] = {}
    pos = 0
    for k, c in zip(offsets, counts):
        refs[k.decode("utf-8", "replace")] = raw_bytes[pos:pos + 8 * c]
        pos += 8 * c
    return marshal.dumps(refs), len(offs)


def unpack_positions(blob: bytes) -> list[tuple[int, int]]:
    """One name's (line, column) pairs from its part of the blob."""
    a = array("I")
    a.frombytes(blob)
    return list(zip(a[0::2], a[1::2]))
