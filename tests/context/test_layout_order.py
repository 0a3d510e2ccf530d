"""Block order: most stable layer first; within a layer, the most relevant file next to the current file."""

from __future__ import annotations

from engine.context.layout import blocks
from engine.context.snippets import make_snip
from engine.model.tokens import TokenCounter


def _snip(counter: TokenCounter, path: str, start: int, layer: int):
    return make_snip(counter, path, start, start, f"def f{start}(): ...", "signature", f"f{start}", layer)


def test_within_a_layer_the_first_chosen_file_goes_last():
    counter = TokenCounter()
    chosen = [_snip(counter, "a.py", 0, 2), _snip(counter, "b.py", 0, 2), _snip(counter, "a.py", 5, 2),
              _snip(counter, "c.py", 0, 2), _snip(counter, "z.py", 0, 3), _snip(counter, "y.py", 0, 3)]
    order = [(b.layer, b.path) for b in blocks(chosen)]
    # layers in order; within each, reverse selection order (not the paths' alphabetical order)
    assert order == [(2, "c.py"), (2, "b.py"), (2, "a.py"), (3, "y.py"), (3, "z.py")]
    a = next(b for b in blocks(chosen) if b.path == "a.py")
    assert [s.start for s in a.snips] == [0, 5]  # snippets of one file stay in file order
    assert blocks(chosen) == blocks(list(chosen))  # the same selection renders the same

