"""The stdio reader's framing (lsp_server/stdio.py): what the whole-server tests cannot aim at precisely —
a message split at every byte, several in one read, a header block without a usable Content-Length."""

from __future__ import annotations

import json

from lsp_server.stdio import MessageFramer


def _frame(body: bytes, extra_header: bytes = b"") -> bytes:
    return b"Content-Length: %d\r\n" % len(body) + extra_header + b"\r\n" + body


def test_a_message_split_at_every_byte_comes_out_whole_once() -> None:
    # the body holds what looks like a header block: only Content-Length says where a message ends
    body = json.dumps({"jsonrpc": "2.0", "method": "x", "params": {"text": "é"}}).encode() + b"\r\n\r\nContent-Length: 3\r\n\r\n"
    data = _frame(body) * 3
    framer = MessageFramer()
    out = [b for i in range(len(data)) for b in framer.feed(data[i:i + 1])]
    assert out == [body] * 3


def test_several_messages_in_one_read_and_other_headers() -> None:
    bodies = [b'{"a": 1}', b"{}", b'{"b": "' + b"x" * 100_000 + b'"}']
    data = b"".join(_frame(b, b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n") for b in bodies)
    assert MessageFramer().feed(data) == bodies


def test_a_header_block_without_a_usable_length_is_dropped_and_the_next_message_read() -> None:
    framer = MessageFramer()
    assert framer.feed(b"X-Nothing: 1\r\n\r\n" + b"Content-Length: abc\r\n\r\n") == []
    assert framer.feed(b"content-length: 2\r\n\r\n{}") == [b"{}"]
