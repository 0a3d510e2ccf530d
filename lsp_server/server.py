"""The coderflash language server (pygls 2): thin handlers that translate LSP to engine calls.

Why the protocol subclass: pygls 2.1 sends no response to a request whose params fail to convert and
none to a message that is not JSON; JSON-RPC requires an error response (InvalidParams / ParseError),
and a client that gets none waits forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcParseError
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.uris import to_fs_path

from engine import __version__
from engine.model.backend import CancelToken, Cancelled
from engine.config import Config, ConfigError, load_config, merged
from engine.model.resolution import PULL_HINT, ModelError
from engine.model_host import ModelHost
from indexer.worker import exit_when_orphaned
from engine.service import Engine

from . import workspaces

logger = logging.getLogger("coderflash")

STATUS_REQUEST = "coderflash/status"


class _AlreadyAnswered:
    """Placeholder for a request already answered with an error; pygls ignores it (wrong jsonrpc)."""

    jsonrpc = "answered"


class CoderflashProtocol(LanguageServerProtocol):
    """Answers requests whose params are invalid, instead of dropping them."""

    def structure_message(self, data: dict[str, Any]):
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if isinstance(data, dict) and "id" in data and "method" in data:
                self._send_response(data["id"], None, exc.to_response_error())
                return _AlreadyAnswered()
            raise


class CoderflashServer(LanguageServer):
    """Holds per-workspace engines and the editor-facing state (open documents, pending requests)."""

    def __init__(self) -> None:
        super().__init__("coderflash", __version__, protocol_cls=CoderflashProtocol)
        self.lsp_settings: dict[str, Any] = {}
        self.workspaces = workspaces.WorkspaceSet(self._make_engine, self._make_host)
        # Model inference runs on the engine's single scheduled worker (priorities, pre-emption); this
        # pool only waits on it and does slow set-up (model load, indexing) off the event loop.
        self.loader = ThreadPoolExecutor(max_workers=4, thread_name_prefix="coderflash-loader")
        self.log_file: Path | None = None
        # Engine time of recent completions (submit → result, measured on the worker's side) for the
        # server-overhead benchmark: round trip minus this is what the server itself costs.
        self.engine_ms: deque[float] = deque(maxlen=2000)
        self.pending: dict[str, CancelToken] = {}  # latest inline completion per document
        self.notified: set[str] = set()
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

        Never raises and never recurses: an error while writing (client gone) is only logged to stderr."""
        if isinstance(error, json.JSONDecodeError):
            self.protocol._send_data({"jsonrpc": "2.0", "id": None,
                                      "error": {"code": JsonRpcParseError.CODE, "message": f"Parse error: {error}"}})
            return
        logger.error("server error from %s: %s", getattr(source, "__name__", source), error)
        if self.protocol._shutdown or getattr(self._reporting, "active", False):
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

    def setup_log_file(self, config: Config) -> None:
        """A log file in the cache dir (the client's output panel gets window/logMessage too)."""
        if self.log_file is not None:
            return
        try:
            logs = config.cache_path / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            self.log_file = logs / "server.log"
            handler = logging.FileHandler(self.log_file, encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            logging.getLogger().addHandler(handler)
            logger.setLevel(logging.INFO)
        except OSError as exc:
            logger.warning("no log file: %s", exc)

    def write_explanation(self, path: str, markdown: str) -> Path:
        engine = self.workspaces.engine_for(Path(path))
        folder = engine.config.cache_path / "explanations"
        folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1(markdown.encode()).hexdigest()[:10]
        target = folder / f"{Path(path).stem}-{digest}.md"
        target.write_text(markdown, encoding="utf-8")
        return target

    # -- documents ----------------------------------------------------------------------------
    def document_path(self, uri: str) -> Path:
        return Path(to_fs_path(uri) or uri)

    def engine_for(self, uri: str) -> Engine:
        return self.workspaces.engine_for(self.document_path(uri))

    def ensure_model(self, engine: Engine) -> bool:
        """Load the model if needed; tell the user once when it is missing or the small default."""
        try:
            engine.backend  # noqa: B018 - loads on first use
        except ModelError as exc:
            self.show_once("model-error", f"coderflash: {exc}", types.MessageType.Error)
            return False
        resolved = engine.resolve()
        if resolved is not None and resolved.is_small_default:
            self.show_once("small-default", f"coderflash is using the small embedded default model "
                           f"({resolved.path.name}). {PULL_HINT}", types.MessageType.Info)
        return True


server = CoderflashServer()


def _exit_with_parent(process_id: int | None) -> None:
    """LSP: exit when the client process is gone (its pipe may outlive it, e.g. a killed editor whose
    socket another process still holds). Also exit when we were re-parented."""
    exit_when_orphaned(process_id, on_exit=lambda: logger.warning("client process is gone; exiting"), poll_s=2.0)


@server.feature(types.INITIALIZE)
def on_initialize(ls: CoderflashServer, params: types.InitializeParams) -> None:
    _exit_with_parent(params.process_id)
    options = params.initialization_options
    if isinstance(options, dict):
        ls.lsp_settings = dict(options.get("coderflash", options))
    roots = [Path(to_fs_path(f.uri)) for f in params.workspace_folders or []]
    if not roots and params.root_uri:
        roots = [Path(to_fs_path(params.root_uri))]
    elif not roots and params.root_path:
        roots = [Path(params.root_path)]
    try:
        for root in roots:
            ls.config_for(root)  # validate early: a bad setting is reported, not fatal
    except ConfigError as exc:
        ls.lsp_settings = {}
        ls.show_once("config-error", f"coderflash: {exc}; using defaults", types.MessageType.Error)
    ls.workspaces.set_roots(roots)
    try:
        ls.setup_log_file(ls.config_for(roots[0] if roots else None))
    except ConfigError:
        pass


@server.feature(types.INITIALIZED)
async def on_initialized(ls: CoderflashServer, params: types.InitializedParams) -> None:
    ls.start_background_work()


@server.feature(types.SHUTDOWN)
def on_shutdown(ls: CoderflashServer, params: Any = None) -> None:
    """Stop watchers and the worker, write the KV snapshot, close the indexes (before exit)."""
    ls.workspaces.close()


@server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
def on_did_change_configuration(ls: CoderflashServer, params: types.DidChangeConfigurationParams) -> None:
    settings = params.settings
    if isinstance(settings, dict) and "coderflash" in settings:
        settings = settings["coderflash"]
    if not isinstance(settings, dict):
        return
    try:
        for root in ls.workspaces.roots or [None]:
            merged(load_config(root), settings, "workspace/didChangeConfiguration")
    except ConfigError as exc:
        ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=f"coderflash: {exc}"))
        return
    if settings == ls.lsp_settings:
        return  # clients repeat their initializationOptions here: nothing to reload
    ls.lsp_settings = settings
    ls.workspaces.reconfigure()
    ls.start_background_work()


@server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
def on_did_change_folders(ls: CoderflashServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
    for folder in params.event.removed:
        ls.workspaces.remove_root(Path(to_fs_path(folder.uri)))
    for folder in params.event.added:
        ls.workspaces.add_root(Path(to_fs_path(folder.uri)))


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def on_did_open(ls: CoderflashServer, params: types.DidOpenTextDocumentParams) -> None:
    path = ls.document_path(params.text_document.uri)
    ls.workspaces.note_open(path, params.text_document.text)
    engine = ls.engine_for(params.text_document.uri)
    # Background, lowest priority: this file's per-file context, then its repository prefix in the KV cache.
    engine.prepare_document(path, params.text_document.text)
    if engine.loaded:
        engine.warm_up(path, params.text_document.text)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def on_did_change(ls: CoderflashServer, params: types.DidChangeTextDocumentParams) -> None:
    uri = params.text_document.uri
    token = ls.pending.pop(uri, None)
    if token is not None:
        token.cancel("document changed")
    document = ls.workspace.get_text_document(uri)
    ls.workspaces.note_change(ls.document_path(uri), document.source)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def on_did_save(ls: CoderflashServer, params: types.DidSaveTextDocumentParams) -> None:
    ls.workspaces.note_save(ls.document_path(params.text_document.uri))


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def on_did_close(ls: CoderflashServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.workspaces.note_close(ls.document_path(params.text_document.uri))


async def _complete_at(ls: CoderflashServer, uri: str, position: types.Position):
    """Run one completion for a document position; None when stale, cancelled or unavailable.

    The engine's scheduler gives inline completion the highest priority and lets the newest request for
    a document supersede the running one (it stops within one decode step)."""
    document = ls.workspace.get_text_document(uri)
    version = document.version
    text = document.source
    server_pos = document.position_from_client_units(position)
    engine = ls.engine_for(uri)
    token = CancelToken()
    previous = ls.pending.get(uri)
    if previous is not None:
        previous.cancel("superseded")  # latest request per document wins
    ls.pending[uri] = token
    path = ls.document_path(uri)
    loop = asyncio.get_running_loop()
    try:
        if not engine.loaded:
            ready = await loop.run_in_executor(ls.loader, ls.ensure_model, engine)
            if not ready or token.cancelled:
                return None
        started = time.perf_counter()
        future = engine.submit_complete(path, text, server_pos.line, server_pos.character, cancel=token)
        future.add_done_callback(lambda _f: ls.engine_ms.append(round((time.perf_counter() - started) * 1000, 3)))
        out = await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        token.cancel("$/cancelRequest")
        raise
    except Cancelled:
        return None
    finally:
        if ls.pending.get(uri) is token:
            ls.pending.pop(uri, None)
    if out is None or token.cancelled or out.result.finish_reason == "cancelled":
        return None
    if ls.workspace.get_text_document(uri).version != version:
        return None  # the document changed while we computed: the answer is stale
    return out


@server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
async def on_inline_completion(ls: CoderflashServer, params: types.InlineCompletionParams):
    out = await _complete_at(ls, params.text_document.uri, params.position)
    if out is None or not out.completion:
        return types.InlineCompletionList(items=[])
    item = types.InlineCompletionItem(
        insert_text=out.completion,
        range=types.Range(start=params.position, end=params.position),
    )
    return types.InlineCompletionList(items=[item])


@server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "(", " "]))
async def on_completion(ls: CoderflashServer, params: types.CompletionParams):
    """Fallback for clients without inline completion: the completion as one labelled item."""
    out = await _complete_at(ls, params.text_document.uri, params.position)
    if out is None or not out.completion:
        return types.CompletionList(is_incomplete=True, items=[])
    first_line = out.completion.split("\n", 1)[0].strip()
    label = f"✦ {first_line[:60]}" + ("…" if out.multiline and "\n" in out.completion else "")
    item = types.CompletionItem(
        label=label,
        kind=types.CompletionItemKind.Snippet,
        detail="coderflash" + (" (multi-line)" if "\n" in out.completion else ""),
        documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=f"```\n{out.completion}\n```"),
        text_edit=types.TextEdit(range=types.Range(start=params.position, end=params.position), new_text=out.completion),
        insert_text_format=types.InsertTextFormat.PlainText,
        sort_text="0",
        filter_text=" ",
        preselect=True,
    )
    return types.CompletionList(is_incomplete=True, items=[item])


@server.feature(STATUS_REQUEST)
def on_status(ls: CoderflashServer, params: Any = None) -> dict[str, Any]:
    status = ls.workspaces.status()
    wanted = params.get("timings") if isinstance(params, dict) else getattr(params, "timings", False)
    status["engine_ms"] = list(ls.engine_ms)[-1000:] if wanted else []
    return status


def run_server(tcp: str | None = None) -> None:
    import faulthandler
    import signal

    logging.basicConfig(level=logging.WARNING)
    if hasattr(signal, "SIGUSR1"):  # `kill -USR1 <pid>` dumps every thread's stack to stderr
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    if tcp:
        host, _, port = tcp.rpartition(":")
        server.start_tcp(host or "127.0.0.1", int(port))
    else:
        server.start_io()


from . import code_actions, commands  # noqa: E402,F401  (register their handlers)
from . import chat_handlers  # noqa: E402,F401
