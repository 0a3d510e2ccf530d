"""The JSON-RPC side of the server: pygls 2.1's protocol with the answers JSON-RPC and LSP require added.

Why: pygls 2.1 sends no response to a request whose params fail to convert and
none to a message that is not JSON; JSON-RPC requires an error response (InvalidParams / ParseError),
and a client that gets none waits forever. And pygls 2.1 keeps the future of every notification its
built-in handlers run (didOpen, didChange, didSave, didClose: ``_request_futures`` under a fresh UUID, never
removed) and of every async or threaded handler they yield to: one future per keystroke, forever (after
30,000 soak events tracemalloc counted 45,000 of them, with their locks and ids over 30 MB). The subclass
drops each such future once it is done.
And pygls 2.1 answers requests before ``initialize`` as if the session were set up (an InternalError
from a handler with no workspace), where LSP requires ServerNotInitialized; and a client's response it
cannot convert (``workspace/applyEdit`` answered with null) leaves the request waiting on it forever.
"""

from __future__ import annotations

import inspect
import logging
from concurrent.futures import Future
from typing import Any, Generator

from lsprotocol import types
from pygls.exceptions import (JsonRpcException, JsonRpcInvalidRequest, JsonRpcParseError,
                              JsonRpcServerNotInitialized)
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import JsonRPCResponseMessage
from pygls.protocol.language_server import lsp_method

logger = logging.getLogger("coderflash")


class _AlreadyAnswered:
    """Placeholder for a request already answered with an error; pygls ignores it (wrong jsonrpc)."""

    jsonrpc = "answered"


_ID_TYPES = (int, str)


def _usable_id(value: Any) -> Any:
    """``value`` when JSON-RPC allows it as an id (an integer or a string; not a boolean), else None."""
    return value if isinstance(value, _ID_TYPES) and not isinstance(value, bool) else None


def _invalid_request(data: dict[str, Any]) -> str | None:
    """Why a message object is not a JSON-RPC 2.0 request, notification or response (None: it is one)."""
    if data.get("jsonrpc") != "2.0":
        return f"jsonrpc must be \"2.0\", got {data.get('jsonrpc')!r}"
    if data.get("id") is not None and _usable_id(data["id"]) is None:
        return "id must be an integer, a string or null"
    if "method" in data:
        if not isinstance(data["method"], str):
            return "method must be a string"
        return None
    if "id" not in data or not ({"result", "error"} & set(data)):
        return "a message needs a method (request, notification) or an id with a result or an error (response)"
    return None


class CoderflashProtocol(LanguageServerProtocol):
    """Answers every message JSON-RPC says must be answered, where pygls 2.1 drops it: requests whose
    params do not convert (InvalidParams), bodies that are JSON but no JSON-RPC message (InvalidRequest,
    with the message's id where it has a usable one), requests after ``shutdown`` (InvalidRequest)."""

    initialize_seen = False  # set by the ``initialize`` request (LSP: before it, only ``exit`` is handled)

    def structure_message(self, data: dict[str, Any]):
        """The identity. Why: the readers pass this as ``json.loads``'s ``object_hook``, which calls it for
        every object, nested ones first — so a params object with a ``"jsonrpc"`` key was taken for a
        message of its own (protocol fuzzing: ``{"": {"jsonrpc": null}}`` as params gave InternalError
        instead of MethodNotFound). ``handle_message`` structures the top-level object only."""
        return data

    def _structure_top_level(self, data: dict[str, Any]):
        if "jsonrpc" in data:  # a message (pygls tells messages from plain objects the same way)
            reason = _invalid_request(data)
            if reason is not None:
                self._send_error(_usable_id(data.get("id")), JsonRpcInvalidRequest(f"Invalid request: {reason}"))
                return _AlreadyAnswered()
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if isinstance(data, dict) and "id" in data and "method" in data:
                self._send_response(data["id"], None, exc.to_response_error())
                return _AlreadyAnswered()
            if isinstance(data, dict) and "result" in data:  # the client's answer to our request, unreadable
                logger.warning("the client's answer to request %r does not convert: %s", data["id"], exc)
                return JsonRPCResponseMessage(id=data["id"], jsonrpc="2.0", result=data["result"])
            raise

    def handle_message(self, message: Any) -> None:
        if isinstance(message, dict):
            message = self._structure_top_level(message)
        if isinstance(message, _AlreadyAnswered):
            return
        if not hasattr(message, "jsonrpc"):  # JSON, but no message: an object without jsonrpc, an array, ...
            msg_id = _usable_id(message.get("id")) if isinstance(message, dict) else None
            what = "an object without jsonrpc" if isinstance(message, dict) else type(message).__name__
            self._send_error(msg_id, JsonRpcInvalidRequest(f"Invalid request: a message is a JSON-RPC 2.0 object, got {what}"))
            return
        method = getattr(message, "method", None)
        if method == types.INITIALIZE:
            self.initialize_seen = True
        elif not self.initialize_seen and method is not None and method != types.EXIT:
            if hasattr(message, "id"):  # LSP: a request before initialize gets ServerNotInitialized
                self._send_error(message.id, JsonRpcServerNotInitialized(
                    f"Server not initialized: {method} before initialize"))
            return  # LSP: a notification before initialize is dropped
        if self._shutdown and getattr(message, "method", "") != "exit" and hasattr(message, "id") \
                and hasattr(message, "method"):
            self._send_error(message.id, JsonRpcInvalidRequest("Invalid request: the server is shut down"))
            return
        if method == types.TEXT_DOCUMENT_DID_CHANGE and not hasattr(message, "id") and not self._shutdown \
                and getattr(message, "jsonrpc", None) == "2.0" and self._did_change(message.params):
            return
        super().handle_message(message)

    def _did_change(self, params: types.DidChangeTextDocumentParams) -> bool:
        """A keystroke, applied and handed to the server's handler directly: what pygls 2.1's built-in
        didChange does, without its dispatch. Why: that dispatch made two UUIDs (``os.urandom`` releases the
        GIL, and taking it back waited for the inference thread's switch interval), a future, a context copy
        and isinstance checks against runtime protocols per keystroke, most of the event loop's time at
        2,000 didChange per second while a completion ran (bench/load_bench.py). False: not handled here (the
        server's handler is not a plain function), pygls's path runs instead."""
        handler = self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)
        if handler is not None and (inspect.iscoroutinefunction(handler) or inspect.isgeneratorfunction(handler)
                                    or getattr(handler, "execute_in_thread", False)):
            return False
        try:
            for change in params.content_changes:
                self.workspace.update_text_document(params.text_document, change)
            if handler is not None:
                handler(params)
        except Exception as exc:  # reported as pygls reports a failed notification handler; the server goes on
            failed: Future[None] = Future()
            failed.set_exception(exc)
            self._check_handler_result(failed)
        return True

    def _execute_handler(self, msg_id: Any, handler: Any, args: Any = None, kwargs: Any = None,
                         callback: Any = None) -> None:
        super()._execute_handler(msg_id, handler, args=args, kwargs=kwargs, callback=callback)
        future = self._request_futures.get(msg_id)
        if future is not None:  # a request's own future is removed by its answer; this covers the rest
            future.add_done_callback(lambda done, key=msg_id: self._forget_future(key, done))

    def _forget_future(self, msg_id: Any, future: Any) -> None:
        if self._request_futures.get(msg_id) is future:
            self._request_futures.pop(msg_id, None)

    @lsp_method(types.SHUTDOWN)
    def lsp_shutdown(self, *args: Any) -> Generator[Any, Any, None]:
        """pygls 2.1's shutdown, cancelling what still runs over a copy of the futures: a cancelled future's
        done callbacks remove it from the dict being iterated (pygls issue 606)."""
        if (user_handler := self.fm.features.get(types.SHUTDOWN)) is not None:
            yield user_handler, args, None
        current_id = self.msg_id
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current_id and not future.done():
                future.cancel()
        self._shutdown = True

    def _send_error(self, msg_id: Any, error: JsonRpcException) -> None:
        self._send_data({"jsonrpc": "2.0", "id": msg_id,
                         "error": {"code": error.code, "message": error.message}})

    @property
    def handlers_in_flight(self) -> int:
        """Requests and notifications whose handler has not finished (kept for cancellation)."""
        return len(self._request_futures)

    @property
    def shutting_down(self) -> bool:
        return self._shutdown

    def send_parse_error(self, error: Exception) -> None:
        """JSON-RPC's answer to a body that is not JSON: a ParseError response with id null."""
        self._send_data({"jsonrpc": "2.0", "id": None,
                         "error": {"code": JsonRpcParseError.CODE, "message": f"Parse error: {error}"}})
