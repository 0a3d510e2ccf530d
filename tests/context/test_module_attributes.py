"""After a repository module and a dot, the completion's first name is one the module binds
(``engine/context/module_attributes.py``): what the rule allows, and where it stays out of the way."""

from __future__ import annotations

from ctx_helpers import estimate_context
from test_selection import _write

from engine.context.builder import build, repo_view
from engine.context.module_attributes import attribute_name_rule, bound_names, import_bindings

_SHAPES = '''
"""Shapes."""
import math
from app.units import *

__all__ = ["Square", "area_of"]
SIDES = 4

try:
    from fastmath import hypot
except ImportError:
    hypot = math.hypot


class Square:
    def grow(self, by):
        scale = by
        return scale


def area_of(shape):
    global LAST
    LAST = shape
    return 0
'''
_UNITS = '''
CENTIMETRE = 0.01
def to_metres(value):
    return value * CENTIMETRE
'''


def _rule(repo, index, text: str):
    ws, cache = estimate_context(repo, index)
    return attribute_name_rule(repo_view(ws, cache, index), "app/main.py", text, len(text))


def test_import_bindings_read_every_import_form() -> None:
    text = ("import os.path\nimport app.shapes as sh, json\nfrom app import shapes\nfrom . import units as u\n"
            "from .pkg import (a,\n    b as bee)\n    import xml.dom.minidom\n")
    assert import_bindings(text) == {"os": "os", "sh": "app.shapes", "json": "json", "shapes": "app.shapes",
                                     "u": ".units", "a": ".pkg.a", "bee": ".pkg.b", "xml": "xml"}


def test_bound_names_are_the_top_level_ones_and_none_when_names_come_at_run_time() -> None:
    names, stars = bound_names(_SHAPES)
    assert {"math", "__all__", "SIDES", "hypot", "Square", "area_of", "LAST"} <= names
    assert not {"grow", "scale", "shape", "by"} & names  # a method and locals are no module attributes
    assert stars == ("app.units",)
    for dynamic in ("def __getattr__(name):\n    return name\n", "globals()['x'] = 1\n",
                    "import sys\nsys.modules[__name__] = object()\n", "def broken(:\n"):
        assert bound_names(dynamic) is None, dynamic
    assert bound_names("import sys\nmods = list(sys.modules)\nrun(globals())\n") is not None


def test_after_a_module_and_a_dot_the_rule_allows_the_names_it_binds(repo, index) -> None:
    _write(repo, index, {"app/shapes.py": _SHAPES, "app/units.py": _UNITS, "app/__init__.py": ""})
    rule = _rule(repo, index, "from app import shapes\n\nprint(shapes.Sq")
    assert rule is not None and rule.typed == "Sq" and rule.required and rule.judges_paths
    assert {"Square", "area_of", "hypot", "CENTIMETRE", "to_metres", "__name__"} <= set(rule.allowed)
    assert "grow" not in rule.allowed and "Circle" not in rule.allowed
    assert rule.verdict("uare(2)") == "ok" and rule.verdict("uareish(2)") == "bad"
    assert rule.verdict("uare.grow(1)") == "ok"
    dotted = _rule(repo, index, "import app.shapes\n\nx = app.shapes.")
    assert dotted is not None and dotted.verdict("Square()") == "ok" and dotted.verdict("shapes.Square()") == "bad"
    package = _rule(repo, index, "import app\n\nx = app.")  # a package: its submodules too
    assert package is not None and {"shapes", "units"} <= set(package.allowed)


def test_no_rule_where_the_receiver_may_not_be_the_module(repo, index) -> None:
    _write(repo, index, {"app/shapes.py": _SHAPES, "app/units.py": _UNITS, "app/__init__.py": ""})
    for text in ("shapes.",  # not imported
                 "from app import shapes\nshapes = load()\nshapes.",  # rebound
                 "from app import shapes\ndef f(shapes):\n    return shapes.",  # a parameter
                 "from app import shapes\nfor shapes in groups:\n    shapes.",
                 "from app.shapes import Square\nSquare.",  # a class, not a module
                 "import json\njson.",  # not a repository module
                 "from app import shapes\nx = shapes.Square.",  # an attribute's attribute
                 ):
        assert _rule(repo, index, text) is None, text
    assert _rule(repo, index, "from app import shapes\nx = shapes.") is not None


def test_the_completion_prompt_carries_the_rule(repo, index) -> None:
    _write(repo, index, {"app/shapes.py": _SHAPES, "app/units.py": _UNITS, "app/__init__.py": ""})
    text = "from app import shapes\n\n\ndef main():\n    return shapes.\n"
    res = build(*estimate_context(repo, index), "app/main.py", text, 4, 18, 2048)
    assert res.name_rule is not None and "Square" in res.name_rule.allowed
    other = build(*estimate_context(repo, index), "app/main.py", text.replace("shapes.\n", "len(x)\n"), 4, 17, 2048)
    assert other.name_rule is None


def test_modules_under_a_source_root_resolve_and_their_names_are_read_once_per_generation(repo, index) -> None:
    _write(repo, index, {"src/geo/__init__.py": "", "src/geo/lib.py": "def dist(a, b):\n    return 0\n",
                         "src/geo/plane.py": "ORIGIN = (0, 0)\n"})
    view = repo_view(*estimate_context(repo, index), index)
    # ``lib`` is a stem the index names by its directory (``index_view.PACKAGE_STEMS``): found all the same
    dotted = "import geo.lib\n\ngeo.lib."
    lib = attribute_name_rule(view, "app/main.py", dotted, len(dotted))
    assert lib is not None and "dist" in lib.allowed
    text = "from geo import plane\nplane."
    plane = attribute_name_rule(view, "app/main.py", text, len(text))
    assert plane is not None and "ORIGIN" in plane.allowed and "dist" not in plane.allowed
    again = attribute_name_rule(view, "app/main.py", text + "ORI", len(text) + 3)
    assert again is not None and again.typed == "ORI" and again.allowed is plane.allowed
