"""Resolve import statements to files inside the repository.

Each language gets the cheapest rule that matches how its toolchain finds
modules; anything that does not resolve is simply external (stdlib, packages).
The resolver is built once from the list of indexed paths and rebuilt only
when files are added or removed.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections import defaultdict
from functools import cached_property
from typing import Iterable

_JS_EXTS = (".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts")
_JS_LANGS = {"javascript", "typescript", "tsx"}


def python_relative_module(src: str, module: str) -> str:
    """The path (no extension) a ``.``-led Python module names from file ``src``: one dot is ``src``'s package,
    each further dot its parent (``..util`` from ``a/b/c.py`` is ``a/util``)."""
    dots = len(module) - len(module.lstrip("."))
    base = posixpath.dirname(src)
    for _ in range(dots - 1):
        base = posixpath.dirname(base)
    rest = module[dots:]
    return posixpath.join(base, *rest.split(".")) if rest else base


def _strip_json_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'(^|[^:"\\])//[^\n]*', r"\1", text)
    return re.sub(r",(\s*[}\]])", r"\1", text)


class Resolver:
    def __init__(self, root: str, paths: Iterable[str]) -> None:
        self.root = root
        self.paths = set(paths)
        self.dirs: dict[str, list[str]] = defaultdict(list)
        for p in self.paths:
            self.dirs[posixpath.dirname(p)].append(p)

    # ---- lazily built lookup tables
    @cached_property
    def py_modules(self) -> dict[str, str]:
        """Dotted module name -> file, relative to each source root (dir that is not itself a package)."""
        inits = {posixpath.dirname(p) for p in self.paths if p.endswith("/__init__.py") or p == "__init__.py"}
        mods: dict[str, str] = {}
        for p in sorted(self.paths, key=lambda s: (s.count("/"), s)):
            if not (p.endswith(".py") or p.endswith(".pyi")):
                continue
            d = posixpath.dirname(p)
            parts = [posixpath.basename(p).rsplit(".", 1)[0]]
            while d and d in inits:
                parts.append(posixpath.basename(d))
                d = posixpath.dirname(d)
            if parts[0] == "__init__":
                parts = parts[1:]
            if not parts:
                continue
            key = ".".join(reversed(parts))
            mods.setdefault(key, p)
        # namespace packages (PEP 420): every file is also importable by its full path from the root
        for p in self.paths:
            if p.endswith((".py", ".pyi")):
                key = p.rsplit(".", 1)[0].replace("/", ".")
                if key.endswith(".__init__"):
                    key = key[: -len(".__init__")]
                mods.setdefault(key, p)
        return mods

    @cached_property
    def suffix_map(self) -> dict[str, list[str]]:
        """'a/b/c.h' style suffixes (also without extension) -> files, for C includes and JVM packages."""
        m: dict[str, list[str]] = defaultdict(list)
        for p in self.paths:
            parts = p.split("/")
            noext = p.rsplit(".", 1)[0] if "." in parts[-1] else p
            nparts = noext.split("/")
            for i in range(max(0, len(parts) - 6), len(parts)):
                m["/".join(parts[i:])].append(p)
                m["/".join(nparts[i:])].append(p)
        return m

    @cached_property
    def go_module(self) -> tuple[str, str] | None:
        for p in sorted(self.paths, key=lambda s: s.count("/")):
            if posixpath.basename(p) == "go.mod":
                try:
                    with open(os.path.join(self.root, p), encoding="utf-8", errors="replace") as f:
                        m = re.search(r"^module\s+(\S+)", f.read(), re.M)
                except OSError:
                    continue
                if m:
                    return m.group(1), posixpath.dirname(p)
        return None

    @cached_property
    def ts_paths(self) -> tuple[str, list[tuple[str, list[str]]]]:
        """(baseUrl dir, [(pattern, targets)]) from the root tsconfig/jsconfig."""
        for name in ("tsconfig.json", "jsconfig.json"):
            fp = os.path.join(self.root, name)
            if not os.path.exists(fp):
                continue
            try:
                with open(fp, encoding="utf-8") as f:
                    cfg = json.loads(_strip_json_comments(f.read()))
            except (OSError, ValueError):
                continue
            co = cfg.get("compilerOptions") or {}
            base = posixpath.normpath(co.get("baseUrl", ".")).lstrip("./") if co.get("baseUrl") else ""
            return base, list((co.get("paths") or {}).items())
        return "", []

    # ---- entry point
    def resolve(self, lang: str | None, src_path: str, module: str, names: str) -> list[str]:
        try:
            if lang == "python":
                return self._python(src_path, module, names)
            if lang in _JS_LANGS:
                return self._js(src_path, module)
            if lang == "go":
                return self._go(module)
            if lang == "rust":
                return self._rust(src_path, module)
            if lang in ("java", "kotlin"):
                return self._jvm(module)
            if lang in ("c", "cpp"):
                return self._c(src_path, module)
            if lang == "ruby":
                return self._relative_with_exts(src_path, module, (".rb",), also_root=True)
            if lang == "php":
                return self._php(src_path, module)
        except Exception:  # a resolver bug must never break indexing
            return []
        return []

    # ---- languages
    def _python(self, src: str, module: str, names: str) -> list[str]:
        out: list[str] = []
        for mod in module.split(","):
            mod = mod.strip()
            if not mod:
                continue
            if mod.startswith("."):
                target = python_relative_module(src, mod)
                out += _names_or_module(lambda n: self._py_file(posixpath.join(target, n)),
                                        lambda: self._py_file(target), names)
                continue
            mods = self.py_modules
            out += _names_or_module(lambda n: mods.get(f"{mod}.{n}"), lambda: mods.get(mod), names)
        return out

    def _py_file(self, base: str) -> str | None:
        base = base.strip("/")
        for cand in (base + ".py", base + ".pyi", posixpath.join(base, "__init__.py")):
            if cand in self.paths:
                return cand
        return None

    def _js_file(self, base: str) -> str | None:
        base = posixpath.normpath(base)
        if base.startswith("../"):
            return None
        if base in self.paths:
            return base
        stem = base
        for ext in (".js", ".jsx", ".mjs", ".cjs"):
            if base.endswith(ext):  # TS ESM style: import './x.js' means ./x.ts
                stem = base[: -len(ext)]
                break
        for ext in _JS_EXTS:
            if stem + ext in self.paths:
                return stem + ext
        for ext in _JS_EXTS:
            cand = posixpath.join(base, "index" + ext)
            if cand in self.paths:
                return cand
        return None

    def _js(self, src: str, module: str) -> list[str]:
        if module.startswith("."):
            f = self._js_file(posixpath.join(posixpath.dirname(src), module))
            return [f] if f else []
        base, paths = self.ts_paths
        for pattern, targets in paths:
            if pattern.endswith("*"):
                pre = pattern[:-1]
                if not module.startswith(pre):
                    continue
                rest = module[len(pre):]
            elif pattern == module:
                rest = ""
            else:
                continue
            for t in targets:
                f = self._js_file(posixpath.join(base, t.replace("*", rest)))
                if f:
                    return [f]
        if base:
            f = self._js_file(posixpath.join(base, module))
            if f:
                return [f]
        return []

    def _go(self, module: str) -> list[str]:
        gm = self.go_module
        if gm is None:
            return []
        mod, moddir = gm
        if module != mod and not module.startswith(mod + "/"):
            return []
        d = posixpath.join(moddir, module[len(mod):].strip("/")).strip("/")
        return sorted(p for p in self.dirs.get(d, ()) if p.endswith(".go") and not p.endswith("_test.go"))

    def _rust_crate_root(self, src: str) -> str:
        d = posixpath.dirname(src)
        while True:
            for n in ("lib.rs", "main.rs"):
                if posixpath.join(d, n) in self.paths and (posixpath.basename(d) == "src" or not d):
                    return d
            if not d:
                break
            if posixpath.basename(d) == "src":
                return d
            d = posixpath.dirname(d)
        return posixpath.dirname(src)

    def _rust_mod_dir(self, src: str) -> str:
        """Directory holding the children of the module defined by ``src``."""
        base = posixpath.basename(src)
        if base in ("mod.rs", "lib.rs", "main.rs"):
            return posixpath.dirname(src)
        return src[:-3]

    def _rust_find(self, d: str, segs: list[str]) -> str | None:
        # longest prefix of segments that names a module file
        for i in range(len(segs), 0, -1):
            p = posixpath.join(d, *segs[:i]).strip("/")
            for cand in (p + ".rs", posixpath.join(p, "mod.rs")):
                if cand in self.paths:
                    return cand
        return None

    def _rust(self, src: str, module: str) -> list[str]:
        if module.startswith("mod:"):
            name = module[4:]
            d = self._rust_mod_dir(src)
            for cand in (posixpath.join(d, name + ".rs"), posixpath.join(d, name, "mod.rs")):
                if cand.strip("/") in self.paths:
                    return [cand.strip("/")]
            return []
        text = module.replace(" ", "")
        brace = text.find("{")
        prefix = text[:brace].rstrip(":") if brace >= 0 else text
        inner = [x for x in text[brace + 1:text.rfind("}")].split(",")] if brace >= 0 else [""]
        segs = [s for s in prefix.split("::") if s]
        if not segs:
            return []
        if segs[0] == "crate":
            d, segs = self._rust_crate_root(src), segs[1:]
        elif segs[0] in ("self", "super"):
            d = self._rust_mod_dir(src)
            while segs and segs[0] in ("self", "super"):
                if segs[0] == "super":
                    d = posixpath.dirname(d) if posixpath.basename(src) not in ("mod.rs",) or d else d
                segs = segs[1:]
        else:
            return []
        out: list[str] = []
        for item in inner:
            full = segs + [s for s in item.split("::") if s and s != "self" and s != "*"]
            f = self._rust_find(d, full)
            if f and f != src and f not in out:
                out.append(f)
        return out

    def _jvm(self, module: str) -> list[str]:
        mod = module.strip().rstrip(";")
        if mod.endswith(".*"):
            d = mod[:-2].replace(".", "/")
            hits = [p for p in self.paths if posixpath.dirname(p).endswith(d) and p.endswith((".java", ".kt"))]
            return sorted(hits)[:50]
        segs = mod.split(".")
        sm = self.suffix_map
        for i in range(len(segs), 1, -1):
            key = "/".join(segs[:i])
            hits = [p for p in sm.get(key, ()) if p.endswith((".java", ".kt", ".kts"))]
            if hits:
                return sorted(hits)[:1]
        return []

    def _c(self, src: str, module: str) -> list[str]:
        rel = posixpath.normpath(posixpath.join(posixpath.dirname(src), module))
        if rel in self.paths:
            return [rel]
        hits = self.suffix_map.get(module.lstrip("./"), [])
        if hits:
            hits = sorted(hits, key=lambda p: (p.count("/"), p))
            return [hits[0]]
        return []

    def _relative_with_exts(self, src: str, module: str, exts: tuple[str, ...], also_root: bool) -> list[str]:
        bases = [posixpath.normpath(posixpath.join(posixpath.dirname(src), module))]
        if also_root:
            bases += [module, posixpath.join("lib", module)]
        for b in bases:
            for cand in (b, *[b + e for e in exts]):
                if cand in self.paths:
                    return [cand]
        return []

    def _php(self, src: str, module: str) -> list[str]:
        if "/" in module or module.endswith(".php"):
            return self._relative_with_exts(src, module, (".php",), also_root=True)
        key = module.replace("\\", "/").strip("/")
        segs = key.split("/")
        for i in range(len(segs)):
            hits = [p for p in self.suffix_map.get("/".join(segs[i:]), ()) if p.endswith(".php")]
            if hits:
                return sorted(hits)[:1]
        return []


def _names_or_module(member_file, module_file, names: str) -> list[str]:
    """``from M import a, b``: the files of submodules ``M.a``/``M.b`` when they exist, else the file of ``M``."""
    found = [f for n in names.split(",") if n and n != "*" for f in [member_file(n)] if f]
    if found:
        return found
    f = module_file()
    return [f] if f else []
