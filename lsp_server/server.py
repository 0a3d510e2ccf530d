"""The coderflash language server object (pygls 2): the state every handler shares and the services
they use (configuration, the engine for a document, messages to the user, progress, model loading,
indexing). The handlers themselves live in lifecycle, documents, completion, code_actions, commands and
chat_handlers; ``app.build_server`` makes the one server and registers them on it.

Why the protocol subclass: pygls 2.1 sends no response to a request whose params fail to convert and
none to a message that is not JSON; JSON-RPC requires an error response (InvalidParams / ParseError),
and a client that gets none waits forever. And pygls 2.1 keeps the future of every notification its
built-in handlers run (didOpen, didChange, didSave, didClose: ``_request_futures`` under a fresh UUID, never
removed) and of every async or threaded handler they yield to: one future per keystroke, forever (after
30,000 soak events tracemalloc counted 45,000 of them, with their locks and ids over 30 MB). The subclass
drops each such future once it is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Generator

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidRequest, JsonRpcParseError
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method
from pygls.uris import to_fs_path

from engine import __version__
from engine.config import Config, load_config
from engine.model.backend import CancelToken
from engine.model.resolution import ModelError, model_notice
from engine.model_host import HostClosed, ModelHost
from engine.service import Engine, EngineClosed

from .workspaces import WorkspaceSet

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
        if self._shutdown and getattr(message, "method", "") != "exit" and hasattr(message, "id") \
                and hasattr(message, "method"):
            self._send_error(message.id, JsonRpcInvalidRequest("Invalid request: the server is shut down"))
            return
        super().handle_message(message)

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


class CoderflashServer(LanguageServer):
    """Holds per-workspace engines and the editor-facing state (open documents, pending requests)."""

    def __init__(self) -> None:
        super().__init__("coderflash", __version__, protocol_cls=CoderflashProtocol)
        self.protocol: CoderflashProtocol
        self.lsp_settings: dict[str, Any] = {}
        self.workspaces = WorkspaceSet(self._make_engine, self._make_host)
        # Model inference runs on the engine's single scheduled worker (priorities, pre-emption); this
        # pool only waits on it and does slow set-up (model load, indexing) off the event loop.
        self.loader = ThreadPoolExecutor(max_workers=4, thread_name_prefix="coderflash-loader")
        self.log_file: Path | None = None
        # Engine time of recent completions (submit → result, measured on the worker's side) for the
        # server-overhead benchmark: round trip minus this is what the server itself costs.
        self.engine_ms: deque[float] = deque(maxlen=2000)
        self.pending: dict[str, CancelToken] = {}  # latest inline completion per document
        self.notified: set[str] = set()
        self.startup: asyncio.Future[None] | None = None  # the running background start-up (kept referenced)
        self._reporting = threading.local()

    # -- configuration ------------------------------------------------------------------------
    def config_for(self, root: Path | None) -> Config:
        return load_config(root, overrides=self.lsp_settings or None, override_source="LSP settings")

    def _make_engine(self, root: Path | None, host: ModelHost) -> Engine:
        return Engine(self.config_for(root), root, log=self.log, host=host, background_index=True)

    def _make_host(self) -> ModelHost:
        """The one model of this process, with the first workspace root's model settings."""
        roots = self.workspaces.roots
        return ModelHost(self.config_for(roots[0] if roots else None), log=self.log)

    def log(self, message: str, kind: types.MessageType = types.MessageType.Log) -> None:
        logger.info(message)
        try:
            self.window_log_message(types.LogMessageParams(type=kind, message=message))
        except Exception:  # not connected yet / shutting down
            pass

    def show_once(self, key: str, message: str, kind: types.MessageType) -> None:
        if key in self.notified:
            return
        self.notified.add(key)
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def report_server_error(self, error: Exception, source: Any) -> None:
        """A body that is not JSON gets a ParseError response (id null); other errors are logged.

        Not JSON: what ``json.loads`` in pygls's reader raises (``source`` is then ``JsonRpcException``): a
        syntax error, bytes that are not UTF-8 (``UnicodeDecodeError``), nesting deeper than the parser's
        recursion limit. Never raises and never recurses: an error while writing (client gone) is only
        logged to stderr."""
        if isinstance(error, json.JSONDecodeError) or (
                source is JsonRpcException and isinstance(error, (UnicodeDecodeError, RecursionError))):
            self.protocol.send_parse_error(error)
            return
        logger.error("server error from %s: %s", getattr(source, "__name__", source), error)
        if self.protocol.shutting_down or getattr(self._reporting, "active", False):
            return
        self._reporting.active = True
        try:
            self.window_log_message(types.LogMessageParams(type=types.MessageType.Error, message=f"coderflash: {error}"))
        except Exception:
            pass
        finally:
            self._reporting.active = False

    # -- progress, indexing, logs ---------------------------------------------------------------
    def _supports_progress(self) -> bool:
        window = self.client_capabilities.window
        return bool(window and window.work_done_progress)

    @contextlib.asynccontextmanager
    async def progress(self, title: str, cancellable: bool = False) -> AsyncIterator[Callable[..., None]]:
        """Work-done progress when the client supports it; yields ``report(message, percentage=None)``,
        callable from any thread."""
        loop = asyncio.get_running_loop()
        token = f"coderflash-{uuid.uuid4().hex[:12]}"
        enabled = self._supports_progress()
        if enabled:
            try:
                await asyncio.wait_for(self.work_done_progress.create_async(token), timeout=10)
                self.work_done_progress.begin(token, types.WorkDoneProgressBegin(title=title, cancellable=cancellable))
            except Exception as exc:  # a client that refuses progress still gets the work done
                logger.info("progress not available: %s", exc)
                enabled = False

        def report(message: str, percentage: int | None = None) -> None:
            if enabled:
                value = types.WorkDoneProgressReport(message=message, percentage=percentage)
                loop.call_soon_threadsafe(self.work_done_progress.report, token, value)

        try:
            yield report
        finally:
            if enabled:
                self.work_done_progress.end(token, types.WorkDoneProgressEnd(message="done"))

    async def load_models(self) -> None:
        """Load the one model in the background, with progress, telling the user once."""
        engines = self.workspaces.engines()
        if not engines:
            return
        async with self.progress("coderflash: loading model") as report:
            report(engines[0].config.model or "default model")
            await asyncio.get_running_loop().run_in_executor(self.loader, self.ensure_model, engines[0])

    async def index_all(self) -> list[dict[str, Any]]:
        """Index every workspace root (warm start re-parses only changed files), with progress, then
        follow each root's disk. Requests are served meanwhile (completions use the current file)."""
        results = []
        for engine in self.workspaces.engines():
            if engine.root is None:
                continue
            async with self.progress(f"coderflash: indexing {engine.root.name}") as report:
                def progress(done: int, total: int) -> None:
                    if total and (done == total or done % 50 == 0):
                        report(f"{done}/{total} files", int(100 * done / total))

                try:
                    stats = await asyncio.get_running_loop().run_in_executor(self.loader, engine.reindex, progress)
                except EngineClosed:  # the settings changed meanwhile: the new engine indexes its own root
                    continue
                except Exception as exc:  # the server keeps serving without an index
                    self.log(f"indexing {engine.root} failed: {exc}", types.MessageType.Error)
                    continue
                self.log(f"indexed {engine.root}: {stats.get('files')} files, {stats.get('definitions')} definitions "
                         f"in {stats.get('elapsed_s', 0):.2f}s")
                results.append(stats)
                await asyncio.get_running_loop().run_in_executor(self.loader, self.watch, engine)
                for rel, text in list(engine.open_documents.items()):  # opened before the index was ready
                    engine.prepare_document(engine.root / rel, text)  # files outside the root are skipped there
        return results

    def watch(self, engine: Engine) -> None:
        """Follow the root's disk; tell the user once when the OS watch limit forces polling."""
        if not engine.config.index.watch:
            return
        try:
            mode = engine.start_watching()
        except Exception as exc:  # noqa: BLE001 - without a watcher the index is refreshed by reindex
            self.log(f"watching {engine.root} failed: {exc}", types.MessageType.Warning)
            return
        info = engine.watch_info()
        if mode == "polling" and info.get("limit_message"):
            self.show_once("watch-limit", info["limit_message"], types.MessageType.Warning)
        self.log(f"watching {engine.root}: {mode}")

    def start_background_work(self) -> None:
        """Load the model while the indexes build (one on a loader thread, the other in parser processes);
        after a configuration change too (the engines were rebuilt; a warm build re-parses nothing)."""
        async def start() -> None:
            results = await asyncio.gather(self.load_models(), self.index_all(), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    self.log(f"background start-up failed: {result!r}", types.MessageType.Error)

        self.startup = asyncio.ensure_future(start())

    # -- documents ----------------------------------------------------------------------------
    def document_path(self, uri: str) -> Path:
        return Path(to_fs_path(uri) or uri)

    def engine_for(self, uri: str) -> Engine:
        return self.workspaces.engine_for(self.document_path(uri))

    def ensure_model(self, engine: Engine) -> bool:
        """Load the model if needed; tell the user once when it is missing or the small default."""
        try:
            engine.backend  # noqa: B018 - loads on first use
        except HostClosed:  # the settings changed during the load: the new host loads its own model
            return False
        except ModelError as exc:
            self.show_once("model-error", f"coderflash: {exc}", types.MessageType.Error)
            return False
        resolved = engine.resolve()
        if resolved is not None and resolved.is_small_default:
            self.show_once("small-default", model_notice(resolved), types.MessageType.Info)
        return True
