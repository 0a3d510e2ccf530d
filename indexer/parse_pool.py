"""Parsing many files in worker processes, any of which may die.

A parser process can be lost in the middle of a build: the OOM killer, a grammar that crashes on a hostile
file, a user's ``kill``. ``multiprocessing.Pool`` then waits forever for the chunk it lost: a cold index of
645 standard-library files (4.4 s) was still "building" 150 s after one of its two workers was SIGKILLed
(and Engine.close() waits for the index lock that build holds). A ``ProcessPoolExecutor`` says so instead
(``BrokenProcessPool`` on every unfinished task), so the files whose results were lost are parsed again
here: first in a fresh pool (a worker killed from outside costs one retry), then one file at a time in a
single worker, so that a file which kills its parser every time is found, reported as skipped
("parser_crashed") and every other file is indexed. Where no worker process can be started at all (a pool
start once failed with ``BrokenPipeError``), the files are parsed in this process, as incremental updates
are, except files that once killed a parser: those only ever go to a worker process.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Generator, Iterator

from .worker import Result, exit_when_orphaned, process_chunk, process_file

log = logging.getLogger(__name__)

# (path, size, mtime_ns, hash of the indexed version or None)
Todo = tuple[str, int, int, str | None]
_POOL_ERRORS = (BrokenProcessPool, OSError, EOFError)  # a worker lost, or none could be started
_FILES_PER_CHUNK = 24
PARSER_CRASHED = "parser_crashed"  # the skip reason of a file that killed its parser process every time


def _start_method() -> str:
    """forkserver where the platform has it (fast worker start, no threads copied), else spawn; never fork."""
    methods = mp.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


@contextlib.contextmanager
def parser_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of parser processes that never inherits the caller's threads and never outlives it.

    Never fork: the language server has threads (pygls's stdin reader holds the buffer lock of sys.stdin,
    which a forked child's bootstrap closes, so it hung forever)."""
    ctx = mp.get_context(_start_method())
    if ctx.get_start_method() == "forkserver":
        # The fork server imports the parser once; each worker forks from it with the grammars loaded
        # on first use. Not __main__: the server's entry point must not run again in the fork server.
        ctx.set_forkserver_preload(["indexer.worker"])
    # Each parser process ends as soon as the server is gone (it would otherwise outlive a SIGKILLed server,
    # holding the index's SQLite files). With forkserver its parent is the fork server, which exits when the
    # server dies; the server's pid is watched directly too.
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=exit_when_orphaned,
                               initargs=(os.getpid(),))
    finished = False
    try:
        yield pool
        finished = True
    finally:
        # A build stopped early (the engine closed) does not wait for the chunks still queued.
        pool.shutdown(wait=finished, cancel_futures=True)


def balanced_chunks(todo: list[Todo], workers: int) -> list[list[Todo]]:
    """Big and small files interleaved, so that chunks cost about the same."""
    n_chunks = min(max(workers * 8, len(todo) // _FILES_PER_CHUNK), len(todo))
    chunks: list[list[Todo]] = [[] for _ in range(n_chunks)]
    for i, item in enumerate(sorted(todo, key=lambda t: -t[1])):
        chunks[i % n_chunks].append(item)
    return chunks


def parse_files(root: str, max_line_length: int, todo: list[Todo], workers: int) -> Iterator[Result]:
    """One result per file of ``todo`` (see worker.process_file), in no particular order."""
    remaining = todo
    for attempt in (1, 2):
        remaining = yield from _pool_pass(root, max_line_length, remaining, workers)
        if not remaining:
            return
        log.warning("a parser process was lost (attempt %d): %d files are parsed again", attempt, len(remaining))
    yield from parse_each_alone(root, max_line_length, remaining)


def parse_in_worker(root: str, rel: str, mtime_ns: int, known_hash: str | None, max_line_length: int) -> Result:
    """One file parsed in a worker process: for a file that once killed its parser, which an update must
    not parse in the server's own process."""
    return next(parse_each_alone(root, max_line_length, [(rel, 0, mtime_ns, known_hash)]))


def _pool_pass(root: str, max_line_length: int, todo: list[Todo], workers: int
               ) -> Generator[Result, None, list[Todo]]:
    """Parse ``todo`` in a pool; returns the files whose results were lost with a worker."""
    chunks = balanced_chunks(todo, workers)
    delivered: set[int] = set()
    try:
        with parser_pool(workers) as pool:
            futures: dict[Future, int] = {pool.submit(process_chunk, (root, max_line_length, chunk)): i
                                          for i, chunk in enumerate(chunks)}
            for future in as_completed(futures):
                try:
                    results = future.result()
                except BrokenProcessPool:
                    continue
                yield from results
                delivered.add(futures[future])
    except _POOL_ERRORS as exc:
        log.warning("the parser pool failed: %s: %s", type(exc).__name__, exc)
    return [item for i, chunk in enumerate(chunks) if i not in delivered for item in chunk]


def parse_each_alone(root: str, max_line_length: int, todo: list[Todo]) -> Iterator[Result]:
    """Each file its own task in a single worker, the next sent when the last is answered: when the worker
    dies, the file it was parsing is known; it is skipped and the rest go on in a fresh worker. Files already
    known to kill their parser start here (a pool would lose other files' work twice before finding them)."""
    remaining = todo
    while remaining:
        delivered = 0
        try:
            with parser_pool(1) as pool:
                for item in remaining:
                    try:
                        results = pool.submit(process_chunk, (root, max_line_length, [item])).result()
                    except BrokenProcessPool:
                        log.warning("%s: its parser process died; the file is skipped", item[0])
                        yield ("skip", item[0], PARSER_CRASHED)
                        delivered += 1
                        break
                    yield from results
                    delivered += 1
        except (OSError, EOFError) as exc:  # no worker process can be started: parse here, as updates are
            log.warning("no parser process could be started (%s: %s): %d files are parsed in the server",
                        type(exc).__name__, exc, len(remaining) - delivered)
            for rel, _size, mtime, known_hash in remaining[delivered:]:
                yield process_file(root, rel, mtime, known_hash, max_line_length)
            return
        remaining = remaining[delivered:]
