"""Definitions that real Rust hides in macros reach the context of a call site in another file.

Crates such as tokio wrap whole modules in item-level macros (``cfg_rt! { ... }``); tree-sitter keeps a
macro body as an opaque token tree, so without a re-parse those items are not in the index and the
context for a use in another file cannot show them.  The module holding them is far larger than the
budget, so only the index (not the file shown whole) can bring their headers into the prompt.
Driven through the real ``coderflash context`` command, as an editor integration or script would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from indexer.parser import parse_source

CLI = [str(Path(sys.executable).parent / "coderflash")]

MACROS = """
/// Items that exist only with the runtime.
macro_rules! cfg_rt {
    ($($item:item)*) => {
        $( #[cfg(feature = "rt")] $item )*
    }
}

macro_rules! if_loom {
    ($($t:tt)*) => {{
        #[cfg(loom)]
        { $($t)* }
    }}
}
"""

APP = """
use crate::runtime::{spawn_blocking_task, Builder};

pub fn start() -> u32 {
    let mut builder = Builder::new_current_thread();
    builder.enable_all_drivers();
    if_loom! { builder.enable_all_drivers(); }
    let handle = spawn_blocking_task(
"""


def _runtime_module() -> str:
    """The wrapped items, nested two macros deep and inside an ``impl``, among 120 filler functions."""
    filler = "\n".join(
        f"    pub(crate) fn filler_{i}(value: u64) -> u64 {{\n"
        + "".join(f"        let step_{k} = value.wrapping_mul({k + 3}).rotate_left({i % 7});\n" for k in range(8))
        + "        step_0 ^ step_7\n    }\n"
        for i in range(120))
    return (
        "use std::sync::Arc;\n\n"
        "cfg_rt! {\n"
        "    /// Builds a runtime.\n"
        "    pub struct Builder {\n        drivers: bool,\n    }\n\n"
        "    impl Builder {\n"
        "        pub fn new_current_thread() -> Builder {\n            Builder { drivers: false }\n        }\n\n"
        "        cfg_rt! {\n"
        "            pub fn enable_all_drivers(&mut self) -> &mut Self {\n"
        "                self.drivers = true;\n                self\n            }\n"
        "        }\n"
        "    }\n\n"
        "    cfg_rt! {\n"
        "        pub fn spawn_blocking_task<F: FnOnce() -> u32>(task: F) -> Arc<u32> {\n"
        "            Arc::new(task())\n        }\n"
        "    }\n\n"
        + filler +
        "}\n")


def _write_crate(root: Path) -> Path:
    files = {"src/lib.rs": "#[macro_use]\nmod macros;\nmod runtime;\nmod app;\n",
             "src/macros.rs": textwrap.dedent(MACROS).lstrip("\n"),
             "src/runtime.rs": _runtime_module(),
             "src/app.rs": textwrap.dedent(APP).lstrip("\n")}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_items_inside_item_macros_are_definitions_at_their_own_lines(tmp_path):
    text = _runtime_module()
    lines = text.splitlines()
    defs = {d[1]: d for d in parse_source("rust", text.encode()).defs}
    assert defs["Builder"][2] == "class"
    assert defs["Builder.enable_all_drivers"][2] == "method"  # two macros deep, qualified by its impl
    assert "fn spawn_blocking_task" in lines[defs["spawn_blocking_task"][10]]  # the name's own line
    assert defs["Builder.new_current_thread"][3] == "pub fn new_current_thread() -> Builder"
    assert len([d for d in defs if d.startswith("filler_")]) == 120
    macros = parse_source("rust", textwrap.dedent(MACROS).encode())
    assert {(d[0], d[2]) for d in macros.defs} == {("cfg_rt", "macro"), ("if_loom", "macro")}
    # macro call sites are references to the macro's name
    assert {"cfg_rt", "Builder", "Arc"} <= set(parse_source("rust", text.encode()).refs)


def test_context_at_a_call_site_shows_the_wrapped_headers_and_the_macro_definition(tmp_path):
    root = _write_crate(tmp_path / "crate")
    app = root / "src/app.rs"
    last = app.read_text().splitlines()
    env = dict(os.environ, CODERFLASH_MODEL=str(tmp_path / "no-model.gguf"))  # count with the estimate
    proc = subprocess.run(
        CLI + ["context", str(app), "--line", str(len(last) - 1), "--character", str(len(last[-1])),
               "--root", str(root), "--budget", "2048", "--json"],
        capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    prompt = json.loads(proc.stdout)["prompt"]
    assert "filler_119" not in prompt  # the module is not shown whole: headers come from the index
    for header in ("pub fn spawn_blocking_task<F: FnOnce() -> u32>(task: F) -> Arc<u32>",
                   "pub fn enable_all_drivers(&mut self) -> &mut Self",
                   "pub struct Builder",
                   "macro_rules! if_loom"):
        assert header in prompt, header
