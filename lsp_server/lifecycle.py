"""The session's lifecycle: initialize (settings, roots, log file, exit with the client), initialized (start
the model load and indexing), shutdown, configuration changes and workspace folder changes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.uris import to_fs_path

from engine.config import Config, ConfigError, load_config, merged
from indexer.worker import exit_when_orphaned

from . import fast_documents
from .server import CoderflashServer

logger = logging.getLogger("coderflash")


def _exit_with_parent(process_id: int | None) -> None:
    """LSP: exit when the client process is gone (its pipe may outlive it, e.g. a killed editor whose
    socket another process still holds). Also exit when we were re-parented."""
    exit_when_orphaned(process_id, on_exit=lambda: logger.warning("client process is gone; exiting"), poll_s=2.0)


def _setup_log_file(ls: CoderflashServer, config: Config) -> None:
    """A log file in the cache dir (the client's output panel gets window/logMessage too)."""
    if ls.log_file is not None:
        return
    try:
        logs = config.cache_path / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        ls.log_file = logs / "server.log"
        handler = logging.FileHandler(ls.log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
        logger.setLevel(logging.INFO)
    except OSError as exc:
        logger.warning("no log file: %s", exc)


def _settings_from(options: Any) -> dict[str, Any]:
    """The LSP settings in ``initializationOptions``: its ``coderflash`` object, or the whole object (clients
    differ). Anything else (``{"coderflash": null}``, a string) is reported and ignored: a client's mistake
    must not leave the session without its workspaces."""
    if not isinstance(options, dict):
        return {}
    settings = options.get("coderflash", options)
    if not isinstance(settings, dict):
        logger.warning("initializationOptions.coderflash is %s, not an object: ignored", type(settings).__name__)
        return {}
    return dict(settings)


def on_initialize(ls: CoderflashServer, params: types.InitializeParams) -> None:
    _exit_with_parent(params.process_id)
    fast_documents.install(ls.workspace)  # pygls made the workspace just now; no document is open yet
    ls.lsp_settings = _settings_from(params.initialization_options)
    roots = [Path(to_fs_path(f.uri)) for f in params.workspace_folders or []]
    if not roots and params.root_uri:
        roots = [Path(to_fs_path(params.root_uri))]
    elif not roots and params.root_path:
        roots = [Path(params.root_path)]
    for root in roots:
        ls.config_for(root)  # validate early: a layer with an error is reported once and left out
    ls.workspaces.set_roots(roots)
    _setup_log_file(ls, ls.config_for(roots[0] if roots else None))


def on_initialized(ls: CoderflashServer, params: types.InitializedParams) -> None:
    """Synchronous, so that every root has its engine before the next message is handled (a status
    request right after ``initialized`` lists each workspace); the model load and indexing start in the
    background."""
    ls.workspaces.engines()
    ls.start_background_work()


def on_shutdown(ls: CoderflashServer, params: Any = None) -> None:
    """Stop watchers and the worker, write the KV snapshot, close the indexes (before exit)."""
    ls.workspaces.close()


def on_did_change_configuration(ls: CoderflashServer, params: types.DidChangeConfigurationParams) -> None:
    settings = params.settings
    if isinstance(settings, dict) and "coderflash" in settings:
        settings = settings["coderflash"]
    if not isinstance(settings, dict):
        return
    try:
        for root in ls.workspaces.roots or [None]:
            # only the new settings are judged here: a file's error is reported when an engine loads it
            merged(load_config(root, skipped=[]), settings, "workspace/didChangeConfiguration")
    except ConfigError as exc:
        ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=f"coderflash: {exc}"))
        return
    if settings == ls.lsp_settings:
        return  # clients repeat their initializationOptions here: nothing to reload
    ls.lsp_settings = settings
    ls.workspaces.reconfigure()
    ls.reopen_documents()  # the new engines know no buffer yet
    ls.start_background_work()


def on_did_change_folders(ls: CoderflashServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
    """Roots come and go; the open buffers whose serving root changed are handed to their new engine, and
    an added root is indexed and watched like the first ones."""
    serving = ls.serving_roots()
    for folder in params.event.removed:
        ls.workspaces.remove_root(Path(to_fs_path(folder.uri)))
    added = [Path(to_fs_path(folder.uri)).resolve() for folder in params.event.added]
    for root in added:
        ls.workspaces.add_root(root)
    ls.reopen_documents([uri for uri, root in ls.serving_roots().items() if serving.get(uri) != root])
    if added:
        ls.index_added_roots(added)


def register(server: CoderflashServer) -> None:
    server.feature(types.INITIALIZE)(on_initialize)
    server.feature(types.INITIALIZED)(on_initialized)
    server.feature(types.SHUTDOWN)(on_shutdown)
    server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)(on_did_change_configuration)
    server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)(on_did_change_folders)
