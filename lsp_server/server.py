"""The coderflash language server object (pygls 2): the state every handler shares and the services
they use (configuration, the engine for a document, messages to the user, progress, model loading,
indexing). The handlers themselves live in lifecycle, documents, completion, code_actions, commands and
chat_handlers; ``app.build_server`` makes the one server and registers them on it.
The protocol subclass (``protocol.CoderflashProtocol``) answers what pygls 2.1 leaves unanswered.
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
from typing import Any, AsyncIterator, Callable, Collection

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from engine import __version__
from engine.config import Config, ConfigError, load_config
from engine.model.backend import CancelToken
from engine.model.resolution import ModelError, model_notice
from engine.model_host import HostClosed, ModelHost
from engine.service import Engine, EngineClosed

from .protocol import CoderflashProtocol
from .workspaces import WorkspaceSet

logger = logging.getLogger("coderflash")


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
        self.background: set[asyncio.Future[Any]] = set()  # other background indexing, referenced until done
        self._reporting = threading.local()

    # -- configuration ------------------------------------------------------------------------
    def config_for(self, root: Path | None) -> Config:
        """The settings for ``root``. A layer with an error (a typo in ``.coderflash.toml``, a wrong type in
        the LSP settings) is left out and the user told once which, so the server keeps serving."""
        overrides = self.lsp_settings or None
        try:
            return load_config(root, overrides=overrides, override_source="LSP settings")
        except ConfigError:
            skipped: list[str] = []
            config = load_config(root, overrides=overrides, override_source="LSP settings", skipped=skipped)
            message = "; ".join(skipped)
            self.show_once(f"config-error: {message}", f"coderflash: {message}; those settings are ignored",
                           types.MessageType.Error)
            return config

    def _make_engine(self, root: Path | None, host: ModelHost) -> Engine:
        return Engine(self.config_for(root), root, log=self.log, host=host, background_index=True)

    def _make_host(self) -> ModelHost:
        """The one model of this process, with the first workspace root's model settings."""
        roots = self.workspaces.roots
        return ModelHost(self.config_for(roots[0] if roots else None), log=self.log)

    def log(self, message: str, kind: types.MessageType = types.MessageType.Log,
            error: BaseException | None = None) -> None:
        """``message`` to the log file and the client's log; with ``error``, logged once as a warning with its
        traceback (the client gets the one line)."""
        if error is None:
            logger.info(message)
        else:
            logger.warning(message, exc_info=error)
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

    async def index_all(self, roots: Collection[Path] | None = None) -> list[dict[str, Any]]:
        """Index every workspace root (or those of ``roots``; a warm start re-parses only changed files), with
        progress, then follow each root's disk. Requests are served meanwhile (completions use the current
        file)."""
        results = []
        for engine in self.workspaces.engines():
            if engine.root is None or (roots is not None and engine.root not in roots):
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
                    self.log(f"indexing {engine.root} failed: {type(exc).__name__}: {exc}", types.MessageType.Error,
                             error=exc)
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

    def index_added_roots(self, roots: list[Path]) -> None:
        """Folders the editor added (``workspace/didChangeWorkspaceFolders``): index and watch them as the
        first roots were (``index_all`` gives them the documents already open there)."""
        self.background.add(task := asyncio.ensure_future(self.index_all(set(roots))))
        task.add_done_callback(self.background.discard)

    def serving_roots(self) -> dict[str, Path | None]:
        """Which workspace root serves each open document now (by uri)."""
        return {uri: self.workspaces.root_for(self.document_path(uri)) for uri in list(self.workspace.text_documents)}

    def reopen_documents(self, uris: Collection[str] | None = None) -> int:
        """Hand the editor's open buffers (all, or those of ``uris``) to the engines that now serve them: after
        a settings change rebuilt the engines, or a folder was added or removed, an engine starts knowing no
        buffer, and without this unsaved text would be invisible to every prompt until the editor reopened
        the file. The number of buffers handed over."""
        handed = 0
        for uri, document in list(self.workspace.text_documents.items()):
            if uris is None or uri in uris:
                self.workspaces.note_open(self.document_path(uri), document.source)
                handed += 1
        return handed

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
