"""The cursor after a repository module and a dot (Python): ``xml.dom.minidom.|``, ``case.|`` after
``from . import case``. What comes next is a name the module binds, which is what an IDE's completion list
offers there; the rule (``NameRule``) hands that set to the decoder (``engine/model/first_name``).

Why: the 0.5B model, shown the module, still wrote names it does not bind. Seeds 16-20 of
``bench/quality_bench.py`` hold nine distinct cuts after a repository module's name in the Python corpora,
and the engine was wrong on five, writing ``xml.sax.Handler`` for ``xml.sax.ContentHandler``,
``xml.dom.minidom.minidom.Document()``, ``xml.sax.handler.features`` for ``feature_namespaces``, and
``@case.make_failed_test`` for ``@case.skip``. Where the model's own name is one the module binds, nothing
changes, so the rule can only turn a wrong first name into another name (right or wrong). On seed 24, drawn after
the rule was written, it fired on two of ten cuts at 8K: ``util._what(self, 'fail')`` became
``util.strclass(self.__class__)`` (right), ``saxutils.XMLReader.parse`` became ``saxutils.xmlreader...`` (still
wrong: the module imports ``xmlreader``, so the name is bound).

The rule holds only where it is sure. The receiver's first name must be bound by an import in the buffer and
by nothing else there: an assignment, a parameter or a loop variable of that name could shadow the import.
The whole receiver must resolve to a repository file. The module must parse. It must not build its names at
run time: a module ``__getattr__``, a store into ``globals()``, or a change to its ``sys.modules`` entry. The
names the rule allows are read with ``ast``: what the module's top level binds, including inside its
``if``/``try`` blocks, plus what its functions declare ``global``, what its ``*`` imports of repository
modules bring, the package's submodules, and the attributes every module has. A few names too many cost little; one too few would force a wrong answer on the decoder.
"""

from __future__ import annotations

import ast
import posixpath
import re
from functools import lru_cache

from engine.context.index_view import PACKAGE_STEMS
from engine.context.snippets import Repo
from engine.model.name_rule import NameRule
from indexer.resolve import python_relative_module

_RECEIVER_AT = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\.([A-Za-z_]\w*)?$")
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w., \t]+?)[ \t]*(?:#.*)?$", re.M)
_FROM_IMPORT = re.compile(r"^[ \t]*from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[\w, \t]+)", re.M)
_AS = re.compile(r"^([\w.]+)(?:\s+as\s+(\w+))?$")
# what adds a module's names at run time (reading ``sys.modules`` or passing ``globals()`` adds none)
_RUNTIME_NAMES = re.compile(r"\bglobals\s*\(\s*\)\s*(?:\[[^\]\n]*\]\s*=(?!=)|\.(?:update|setdefault)\b)"
                            r"|\bsys\.modules\s*\[\s*__name__\s*\]|\bsetattr\s*\(\s*sys\.modules\b")
_MODULE_ATTRIBUTES = ("__all__", "__builtins__", "__cached__", "__dict__", "__doc__", "__file__", "__loader__",
                      "__name__", "__package__", "__path__", "__spec__")
_BLOCKS = (ast.If, ast.Try, ast.With, ast.For, ast.While, ast.AsyncFor, ast.AsyncWith) + (
    (ast.TryStar,) if hasattr(ast, "TryStar") else ())


def _shadowing(name: str) -> re.Pattern[str]:
    """What else than an import could bind ``name`` in the buffer: an assignment (or a keyword argument: a
    false alarm only costs the rule), a parameter, a loop or ``with``/``except`` variable."""
    n = re.escape(name)
    return re.compile(rf"(?<![\w.]){n}\s*(?::[^=\n]*)?=(?!=)|\bfor\b[^\n:]*(?<![\w.]){n}\b[^\n:]*\bin\b"
                      rf"|\bdef\s+\w+\s*\([^)]*(?<![\w.]){n}\b|\blambda\b[^:\n]*(?<![\w.]){n}\b"
                      rf"|\b(?:with|except)\b[^\n]*\bas\s+{n}\b")


def import_bindings(text: str) -> dict[str, str]:
    """Names the buffer's import statements bind → the dotted module (or module member) each stands for:
    ``import a.b`` binds ``a`` → ``a``; ``import a.b as x``: ``x`` → ``a.b``; ``from .m import c``: ``c`` → ``.m.c``."""
    bound: dict[str, str] = {}
    for m in _IMPORT.finditer(text):
        for part in m.group(1).split(","):
            got = _AS.match(part.strip())
            if got:
                dotted, alias = got.groups()
                bound[alias or dotted.split(".")[0]] = dotted if alias else dotted.split(".")[0]
    for m in _FROM_IMPORT.finditer(text):
        base = m.group(1)
        for part in m.group(2).strip("()").replace("\n", " ").split(","):
            got = _AS.match(part.strip())
            if got and "." not in got.group(1):
                name, alias = got.groups()
                bound[alias or name] = base + ("" if base.endswith(".") else ".") + name
    return bound


def module_file(repo: Repo, rel: str, dotted: str) -> str | None:
    """The repository file of the dotted module (``.``-led: relative to ``rel``'s package); None when no
    file, or more than one, is that module."""
    paths = repo.memo.sizes
    if dotted.startswith("."):
        stem = python_relative_module(rel, dotted)
        found = [p for p in (stem + ".py", stem + "/__init__.py") if p in paths]
    else:
        stem = dotted.replace(".", "/")
        last = dotted.rsplit(".", 1)[-1]
        # the files the index names like the module (its last part), not every path: this runs per keystroke
        named = paths if last in PACKAGE_STEMS else repo.memo.files_of_module(last)
        found = [p for p in named if p in (stem + ".py", stem + "/__init__.py")
                 or p.endswith(("/" + stem + ".py", "/" + stem + "/__init__.py"))]
    return found[0] if len(found) == 1 else None


@lru_cache(maxsize=64)
def bound_names(source: str) -> tuple[frozenset[str], tuple[str, ...]] | None:
    """What a module's top level binds (``ast``), and the modules it imports ``*`` from (dotted, ``.``-led when
    relative); None when it does not parse or adds names at run time."""
    if _RUNTIME_NAMES.search(source):
        return None
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    names: set[str] = set()
    stars: list[str] = []
    body = list(tree.body)
    while body:
        node = body.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom) and node.names[0].name == "*":
            stars.append("." * node.level + (node.module or ""))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(a.asname or a.name.split(".")[0] for a in node.names)
        elif isinstance(node, _BLOCKS):
            body.extend(ast.iter_child_nodes(node))
        elif isinstance(node, ast.ExceptHandler):
            body.extend(node.body)
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor, ast.With,
                             ast.AsyncWith, ast.NamedExpr)):
            names.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
    if "__getattr__" in names:
        return None
    names.update(n for g in ast.walk(tree) if isinstance(g, ast.Global) for n in g.names)
    return frozenset(names), tuple(stars)


def module_names(repo: Repo, module: str, depth: int = 3) -> set[str] | None:
    """The names ``module`` binds, with those of the repository modules it imports ``*`` from (all their names:
    a few too many cost little); None when unsure (``bound_names``, or a ``*`` import from outside)."""
    got = repo.file(module)
    parsed = bound_names(got[0]) if got is not None else None
    if parsed is None or (parsed[1] and depth == 0):
        return None
    names = set(parsed[0])
    for star in parsed[1]:
        source = module_file(repo, module, star)
        more = module_names(repo, source, depth - 1) if source is not None else None
        if more is None:
            return None
        names |= more
    return names


def _submodules(repo: Repo, package_init: str) -> set[str]:
    directory = posixpath.dirname(package_init) + "/"
    out = set()
    for p in repo.memo.sizes:
        if p.startswith(directory) and p.endswith(".py"):
            first = p[len(directory):].split("/")[0]
            out.add(first[:-3] if first.endswith(".py") else first)
    return out


def attribute_name_rule(repo: Repo, rel: str, text: str, offset: int) -> NameRule | None:
    """What the completion at ``offset`` may name first when the cursor follows a repository module and a dot
    (see the module's docstring); None elsewhere or when unsure."""
    if not rel.endswith((".py", ".pyi")):
        return None
    line = text[text.rfind("\n", 0, offset) + 1:offset]
    m = _RECEIVER_AT.search(line)
    if m is None:
        return None
    first, _, rest = m.group(1).partition(".")
    bound = import_bindings(text)
    if first not in bound or _shadowing(first).search(text):
        return None
    module = module_file(repo, rel, bound[first] + ("." + rest if rest else ""))
    allowed = _attributes(repo, module) if module is not None else None
    if allowed is None:
        return None
    return NameRule(typed=m.group(2) or "", allowed=allowed, required=True, judges_paths=True)


def _attributes(repo: Repo, module: str) -> tuple[str, ...] | None:
    """The sorted names ``module`` (a repository file) offers after its name and a dot, None when unsure;
    memoised for the index generation (``IndexMemo.attributes``)."""
    memo = repo.memo.attributes
    if module not in memo:
        names = module_names(repo, module)
        if names is not None:
            names |= set(_MODULE_ATTRIBUTES)
            if module.endswith("/__init__.py"):
                names |= _submodules(repo, module)
        memo[module] = tuple(sorted(names)) if names is not None else None
    return memo[module]
