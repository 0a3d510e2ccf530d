"""The module an import/export list lists (``import_lists.listed_module``) is the same in every process: a tie
between two modules was broken by a set's iteration order, which follows each process's string hashing, so a
re-export list (immer's ``immer.ts``) got one module's missing names in one run and the other's in the next."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Two modules each define two of the listed names (a tie); a name defined in both counts for both.
_CHOOSE = """
from types import SimpleNamespace as NS
from engine.context.import_lists import listed_module
defs = {"alpha": ["pkg/one.ts"], "beta": ["pkg/one.ts"], "gamma": ["pkg/two.ts"], "delta": ["pkg/two.ts"],
        "shared": ["pkg/two.ts", "pkg/one.ts"]}
memo = NS(definitions=lambda name: [NS(path=p, parent=None) for p in defs.get(name, [])])
repo = NS(memo=memo)
print(listed_module(repo, "index.ts", ["alpha", "gamma", "beta", "delta"]),
      listed_module(repo, "index.ts", ["gamma", "alpha", "delta", "beta", "shared"]))
"""


def test_a_tie_goes_to_the_first_listed_names_module_whatever_the_hash_seed():
    seen = set()
    for seed in range(8):
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        out = subprocess.run([sys.executable, "-c", _CHOOSE], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        seen.add(out.stdout.strip())
    assert seen == {"pkg/one.ts pkg/two.ts"}, seen
