"""Similar code next to the cursor: a window of a related file whose identifiers overlap the lines above the
cursor, shown with the lines that follow it (``engine/context/similar.py``)."""

from __future__ import annotations

from ctx_helpers import estimate_context
from test_selection import _big_module, _blocks, _write

from engine.context.builder import build
from engine.context.layout import blocks
from engine.context.similar import SIMILAR_FILES, searched_files
from engine.context.snippets import Snip

_ROUTES = '''
def register_billing(router, audit_trail):
    router.add_route("GET", "/billing/invoices", timeout_seconds=30)
    router.add_route("POST", "/billing/refunds", timeout_seconds=90)
    router.add_middleware(audit_trail, retries=3, jitter_ms=250)
    router.mount_static("/billing/assets", cache_seconds=600)
    router.enable_tracing(sample_rate=0.25, propagate_baggage=True)
    return router
'''


def _current(last: str) -> str:
    return ('def register_orders(router, audit_trail):\n'
            '    router.add_route("GET", "/orders/open", timeout_seconds=30)\n'
            '    router.add_route("POST", "/orders/cancel", timeout_seconds=90)\n'
            '    router.add_middleware(audit_trail, retries=3, jitter_ms=250)\n'
            f'    {last}')


def test_a_repeated_pattern_elsewhere_comes_next_to_the_cursor_with_what_follows_it(repo, index):
    # billing.py is too big to be shown whole at 2K; none of the router's methods is defined in the repository,
    # so only the similar window can show what the pattern does next
    _write(repo, index, {"app/billing.py": _big_module(40) + _ROUTES})
    ctx = estimate_context(repo, index)
    text = _current("")
    res = build(*ctx, "app/orders.py", text, 4, 4, 2048)
    near = _blocks(res.prompt, "app/billing.py")[-1]
    assert "router.add_middleware(audit_trail" in near  # the window like the lines above the cursor
    assert "router.mount_static(" in near and "router.enable_tracing(" in near  # and what follows it
    assert res.prompt.rindex("router.mount_static(") < res.prompt.index("<|fim_prefix|>")
    assert any(s.kind == "window" for s in res.sections)
    # typing on the cursor's line leaves the windows (and so the prompt before the current file) alone
    typed = build(*ctx, "app/orders.py", _current("router.mo"), 4, 13, 2048)
    assert typed.prompt.split("<|file_sep|>app/orders.py")[0] == res.prompt.split("<|file_sep|>app/orders.py")[0]


def test_lines_unlike_any_window_bring_none(repo, index):
    _write(repo, index, {"app/billing.py": _big_module(40) + _ROUTES})
    text = "def unrelated(x):\n    y = x * 2\n    z = y + 1\n    w = z - 3\n    "
    res = build(*estimate_context(repo, index), "app/other.py", text, 4, 4, 2048)
    assert not any(s.kind == "window" for s in res.sections)


def test_the_search_covers_the_directory_and_the_ranking_first_and_is_capped():
    ranked = [f"lib/m{i}.py" for i in range(100)] + [f"app/s{i}.py" for i in range(100)] + ["app/cur.py"]
    files = searched_files("app/cur.py", ranked)
    assert len(files) == SIMILAR_FILES and "app/cur.py" not in files
    assert files[:SIMILAR_FILES // 2] == [f"app/s{i}.py" for i in range(SIMILAR_FILES // 2)]
    assert files[SIMILAR_FILES // 2:] == [f"lib/m{i}.py" for i in range(SIMILAR_FILES - SIMILAR_FILES // 2)]


def _snip(start: int, end: int, kind: str) -> Snip:
    text = "".join(f"line {i}\n" for i in range(start, end + 1))
    return Snip("a.py", start, end, text, kind, "", end - start + 1, 3)


def test_a_window_overlapping_a_definition_shows_each_line_once():
    for first, second in ((_snip(5, 15, "definition"), _snip(10, 39, "window")),
                          (_snip(0, 29, "window"), _snip(20, 35, "definition"))):
        text = blocks([first, second])[0].text
        lines = text.splitlines()
        assert lines == [f"line {i}" for i in range(first.start, second.end + 1)], text


def test_the_windows_held_between_requests_stay_bounded(repo, index, monkeypatch):
    import engine.context.similar as similar

    monkeypatch.setattr(similar, "WINDOWS_HELD", 40)
    _write(repo, index, {f"app/mod{i}.py": _big_module(3) for i in range(6)})  # 10+ windows each
    ctx = estimate_context(repo, index)
    held = []
    for i in range(6):
        build(*ctx, f"app/mod{i}.py", _big_module(3) + "\n\ndef more():\n    ", 3 * 31 + 2, 4, 2048)
        held.append(ctx[1].stats()["windows"])
    assert max(held) <= 40 and min(held) > 0, held
    assert len(set(held)) > 1  # cleared and cut anew as the searches move between files


_ROUTER = '''
class Router:
    def add_route(self, method, path, timeout_seconds=10):
        return (method, path, timeout_seconds)

    def add_middleware(self, handler, retries=0, jitter_ms=0):
        return (handler, retries, jitter_ms)
'''


def _near_kinds(repo, index, text: str) -> list[str]:
    from engine.context.builder import repo_view
    from engine.context.near_cursor import near_candidates

    ws, cache = estimate_context(repo, index)
    view = repo_view(ws, cache, index)
    line = text.count("\n")
    cands = near_candidates(view, "app/orders.py", text, len(text), line, len(text.rsplit("\n", 1)[-1]),
                            [], [], (0, line), 2048, ["app/billing.py", "app/router.py"])
    return [c.forms[0].kind for c in cands]


def test_a_near_copy_of_the_lines_above_goes_before_the_definitions_of_their_names(repo, index):
    # at 2K the definitions of the names around the cursor can fill the near part; a sibling implementation of
    # the same lines (billing's routes) says more about the next line, so it is taken first
    _write(repo, index, {"app/billing.py": _ROUTES, "app/router.py": _ROUTER})
    copied = ('def register_orders(router, audit_trail):\n'
              '    router.add_route("GET", "/billing/invoices", timeout_seconds=30)\n'
              '    router.add_route("POST", "/billing/refunds", timeout_seconds=90)\n'
              '    router.add_middleware(audit_trail, retries=3, jitter_ms=250)\n    ')
    kinds = _near_kinds(repo, index, copied)
    assert kinds[0] == "window" and "definition" in kinds[1:], kinds
    # lines that only share some names with the window: the definitions first, the window after them
    loose = ('def register_orders(router, audit_trail):\n'
             '    checked = router.add_route("GET", "/orders/open")\n'
             '    handler = wrap(audit_trail, retries=3)\n'
             '    router.add_middleware(handler)\n'
             '    log(checked, jitter_ms=250)\n    ')
    kinds = _near_kinds(repo, index, loose)
    assert "window" in kinds and kinds.index("window") > kinds.index("definition"), kinds
