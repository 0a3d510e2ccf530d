"""Protocol fuzzing (hypothesis): 2,400 generated messages over stdio to one real server, each answered
with the error JSON-RPC and LSP prescribe, and a valid inline completion served afterwards.

- bodies that are not JSON → ParseError (-32700, id null);
- JSON that is no JSON-RPC message (an array, a string, an object without ``jsonrpc``, a wrong version, a
  method that is not a string, an id that is an object) → InvalidRequest (-32600, with the id when usable);
- requests for methods nobody serves → MethodNotFound (-32601); unknown notifications → nothing at all;
- ``textDocument/inlineCompletion`` with wrong types, missing fields, positions past the end or inside a
  surrogate pair, documents never opened and not on disk, odd URIs → InvalidParams (-32602); a valid
  position → a result (a column past the end of its line means the line's end, as LSP says);
- huge payloads are read and answered like small ones.

Never InternalError (-32603): each message's fate is decided by the protocol, not by an exception. The
runs are derandomized (a fixed seed per test), so CI sees the same messages every time. RequestCancelled,
ContentModified and requests after shutdown need an order of events, not a message: test_malformed.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rawlsp import RawLspProcess

OPEN_TEXT = "def greet(name):\n    return f'hi {name} 😀!'\n\nvalue = '𝄞 clef'\n"
FUZZ = settings(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))


SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample_repo"


@pytest.fixture(scope="module")
def session(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    repo = Path(shutil.copytree(SAMPLE, tmp_path_factory.mktemp("fuzz") / "repo"))
    server = RawLspProcess()
    server.initialize(repo.as_uri(), {"model": str(tiny_model), "llama": {"n_ctx": 4096},
                                      "completion": {"max_tokens": 4}})
    opened = repo / "greet.py"
    server.notify("textDocument/didOpen", {"textDocument": {"uri": opened.as_uri(), "languageId": "python",
                                                            "version": 1, "text": OPEN_TEXT}})
    yield server, repo
    if server.proc.poll() is None:
        server.proc.kill()


def _error_code(server: RawLspProcess, msg_id, timeout: float = 20) -> int | None:
    reply = server.response(msg_id, timeout=timeout)
    return reply["error"]["code"] if "error" in reply else None


def _alive(server: RawLspProcess) -> None:
    reply = server.call("coderflash/status", {}, timeout=60)
    assert "result" in reply, reply


# -- envelopes ---------------------------------------------------------------------------------
def _not_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return True
    return False


@settings(FUZZ, max_examples=500)
@given(body=st.one_of(st.binary(min_size=1, max_size=200), st.text(min_size=1, max_size=200).map(str.encode))
       .filter(_not_json))
def test_bodies_that_are_not_json_get_parse_error(session, body: bytes) -> None:
    server, _ = session
    server.send_bytes(body)
    assert _error_code(server, None) == -32700


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)
ids = st.one_of(st.integers(min_value=10_000_000, max_value=2**31), st.text(min_size=1, max_size=12).map(lambda s: "fz-" + s))


@settings(FUZZ, max_examples=400)
@given(value=st.one_of(st.lists(json_values, max_size=5), st.text(max_size=30), st.integers(), st.booleans(),
                       st.floats(allow_nan=False)))
def test_json_that_is_no_message_gets_invalid_request(session, value) -> None:
    server, _ = session
    server.send_bytes(json.dumps(value).encode())
    assert _error_code(server, None) == -32600


@settings(FUZZ, max_examples=400)
@given(msg_id=ids, flaw=st.sampled_from(["version", "method_type", "no_method_no_result", "no_jsonrpc"]),
       junk=json_values)
def test_broken_envelopes_get_invalid_request_with_their_id(session, msg_id, flaw: str, junk) -> None:
    server, _ = session
    message = {"jsonrpc": "2.0", "id": msg_id, "method": "coderflash/status", "params": {}}
    if flaw == "version":
        message["jsonrpc"] = junk if junk != "2.0" else "1.0"
    elif flaw == "method_type":
        message["method"] = junk if not isinstance(junk, str) else [junk]
    elif flaw == "no_method_no_result":
        del message["method"], message["params"]
    else:
        del message["jsonrpc"]
    server.send_bytes(json.dumps(message).encode())
    assert _error_code(server, msg_id) == -32600


@settings(FUZZ, max_examples=500)
@given(method=st.text(min_size=1, max_size=40).filter(lambda m: not m.startswith("$/")).map(lambda m: "fuzz/" + m),
       params=json_values, notification=st.booleans())
# found by this test in CI: a params object with a "jsonrpc" key was structured as a message of its own
@example(method="fuzz/0", params={"": {"jsonrpc": None}}, notification=False)
@example(method="fuzz/0", params={"jsonrpc": "2.0", "method": "exit"}, notification=False)
def test_unknown_methods(session, method: str, params, notification: bool) -> None:
    server, _ = session
    if notification:
        server.notify(method, params)  # nothing comes back; the next request is answered
        _alive(server)
    else:
        assert _error_code(server, server.request(method, params)) == -32601


@settings(FUZZ, max_examples=20)
@given(size=st.integers(min_value=1_000_000, max_value=8_000_000), notification=st.booleans())
def test_huge_payloads(session, size: int, notification: bool) -> None:
    server, repo = session
    if notification:  # a document of `size` bytes opened and closed
        uri = (repo / "huge.py").as_uri()
        server.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1,
                                                                "text": "x = 1\n" * (size // 6)}})
        server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        _alive(server)
    else:
        assert _error_code(server, server.request("fuzz/huge", {"blob": "a" * size})) == -32601


# -- inline completion params --------------------------------------------------------------------
def _lines(text: str) -> list[str]:
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")


def _utf16_valid(line: str, character: int) -> bool:
    units = 0
    for ch in line:
        if units >= character:
            return True
        width = 2 if ord(ch) > 0xFFFF else 1
        if units < character < units + width:
            return False
        units += width
    return True


def _expect(text: str | None, line, character) -> str:
    """'result' or 'invalid' for a position in a document with ``text`` (None: no such document)."""
    if isinstance(line, (bool, float)) or isinstance(character, (bool, float)):
        return "either"  # lsprotocol's converter reads true as 1 and 2.0 as 2; lenient, and harmless
    if text is None or not isinstance(line, int) or not isinstance(character, int) \
            or line < 0 or character < 0 or line >= 2**31 or character >= 2**31:
        return "invalid"
    lines = _lines(text)
    if line > len(lines):
        return "invalid"
    if line < len(lines) and not _utf16_valid(lines[line], character):
        return "invalid"
    return "result"


positions = st.one_of(st.integers(min_value=-3, max_value=12), st.integers(min_value=-2**40, max_value=2**40),
                      st.text(max_size=3), st.none(), st.floats(allow_nan=False), st.booleans())


@settings(FUZZ, max_examples=600)
@given(target=st.sampled_from(["open", "on_disk", "missing", "untitled", "http", "garbage"]),
       line=positions, character=positions, drop=st.sampled_from([None, "position", "textDocument", "context"]))
def test_inline_completion_params(session, target: str, line, character, drop) -> None:
    server, repo = session
    uris = {"open": (repo / "greet.py").as_uri(), "on_disk": (repo / "main.py").as_uri(),
            "missing": (repo / "never" / "there.py").as_uri(), "untitled": "untitled:Untitled-1",
            "http": "http://example.com/x.py", "garbage": "::not a uri::"}
    texts = {"open": OPEN_TEXT, "on_disk": (repo / "main.py").read_text()}
    params = {"textDocument": {"uri": uris[target]}, "position": {"line": line, "character": character},
              "context": {"triggerKind": 2}}
    if drop:
        del params[drop]
    msg_id = server.request("textDocument/inlineCompletion", params)
    try:
        reply = server.response(msg_id, timeout=60)
    except Exception:
        raise AssertionError(f"no answer to {params}") from None
    expected = "invalid" if drop else _expect(texts.get(target), line, character)  # all three are required
    if expected == "invalid":
        assert reply.get("error", {}).get("code") == -32602, (params, reply)
    elif expected == "either":
        assert "result" in reply or reply["error"]["code"] == -32602, (params, reply)
    else:
        assert "result" in reply and isinstance(reply["result"]["items"], list), (params, reply)


def test_a_completion_is_served_after_the_fuzzing(session) -> None:
    server, repo = session
    reply = server.call("textDocument/inlineCompletion", {
        "textDocument": {"uri": (repo / "greet.py").as_uri()}, "position": {"line": 1, "character": 4},
        "context": {"triggerKind": 1}}, timeout=120)
    assert reply["result"]["items"] and reply["result"]["items"][0]["insertText"], reply
    assert server.close() == 0
