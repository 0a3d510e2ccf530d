"""The LSP4IJ user-defined server template (editors/jetbrains/coderflash) follows LSP4IJ's documented
format, its settings schema matches the server's settings, and its command line starts a server that
answers initialize."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from rawlsp import RawLspProcess

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "editors" / "jetbrains" / "coderflash"
SAMPLE_REPO = REPO / "examples" / "sample_repo"

# Keys LSP4IJ's LanguageServerTemplate deserializer reads from template.json.
KNOWN_KEYS = {"id", "name", "description", "programArgs", "fileTypeMappings", "languageMappings",
              "expandConfiguration", "disablePromotionFor", "env", "url"}
OS_KEYS = {"default", "windows", "mac", "unix"}


def load(name: str) -> Any:
    return json.loads((TEMPLATE / name).read_text())


def test_template_json_has_lsp4ij_shape():
    t = load("template.json")
    assert set(t) <= KNOWN_KEYS, set(t) - KNOWN_KEYS
    assert isinstance(t["name"], str) and t["name"]  # required: the deserializer calls getAsString()
    assert isinstance(t["id"], str) and t["id"]
    args = t["programArgs"]  # required: getAsJsonObject()
    assert isinstance(args, dict) and "default" in args and set(args) <= OS_KEYS
    assert all(isinstance(v, str) and v.strip() for v in args.values())
    mappings = t["fileTypeMappings"]
    assert mappings
    for m in mappings:
        assert set(m) <= {"fileType", "languageId"}
        ft = m["fileType"]
        assert set(ft) <= {"name", "patterns"} and ("name" in ft or "patterns" in ft)
        assert all(isinstance(p, str) and p.startswith("*.") for p in ft.get("patterns", []))
        assert isinstance(m["languageId"], str) and m["languageId"]
    patterns = [p for m in mappings for p in m["fileType"]["patterns"]]
    assert "*.py" in patterns and len(patterns) == len(set(patterns))
    for extra in ("README.md", "settings.json", "settings.schema.json", "initializationOptions.json"):
        assert (TEMPLATE / extra).is_file(), extra


def _validate(value: Any, schema: dict[str, Any], where: str = "$") -> None:
    """The subset of JSON Schema draft-07 the template uses."""
    kind = schema.get("type")
    types = {"object": dict, "string": str, "integer": int, "number": (int, float), "boolean": bool}
    if kind:
        assert isinstance(value, types[kind]) and not (kind in ("integer", "number") and isinstance(value, bool)), where
    if "enum" in schema:
        assert value in schema["enum"], where
    if "minimum" in schema:
        assert value >= schema["minimum"], where
    if "maximum" in schema:
        assert value <= schema["maximum"], where
    if kind == "object":
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            assert set(value) <= set(props), f"{where}: unknown {set(value) - set(props)}"
        for key, sub in value.items():
            if key in props:
                _validate(sub, props[key], f"{where}.{key}")


def _example(schema: dict[str, Any]) -> Any:
    """A value for every leaf of the schema."""
    kind = schema["type"]
    if kind == "object":
        return {k: _example(v) for k, v in schema["properties"].items()}
    if "enum" in schema:
        return schema["enum"][-1]
    return {"string": "x", "integer": max(schema.get("minimum", 0), 512), "number": 5.0, "boolean": True}[kind]


def test_settings_match_schema_and_server():
    from engine.config import Config, merged

    schema = load("settings.schema.json")
    assert schema["$schema"].startswith("http://json-schema.org/")
    _validate(load("settings.json"), schema)
    _validate(load("initializationOptions.json"), schema["properties"]["coderflash"])
    # Every key the schema offers is a real server setting with a valid value.
    example = _example(schema)
    _validate(example, schema)
    merged(Config(), example["coderflash"], "settings.schema.json example")


def test_command_line_starts_the_server(tiny_model: Path):
    argv = shlex.split(load("template.json")["programArgs"]["default"])
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    exe = shutil.which(argv[0], path=env["PATH"])
    assert exe, f"{argv[0]} is not on PATH (install coderflash)"
    options = dict(load("initializationOptions.json"), model=str(tiny_model))
    client = RawLspProcess(env=env, cwd=str(SAMPLE_REPO), argv=[exe, *argv[1:]], answer_requests=True)
    try:
        reply = client.call("initialize", {
            "processId": os.getpid(), "rootUri": SAMPLE_REPO.as_uri(),
            "workspaceFolders": [{"uri": SAMPLE_REPO.as_uri(), "name": "sample_repo"}],
            "capabilities": {"textDocument": {"inlineCompletion": {"dynamicRegistration": False}}},
            "initializationOptions": options, "clientInfo": {"name": "LSP4IJ-template-test"},
        })
        assert "error" not in reply, reply
        result = reply["result"]
        assert result["serverInfo"]["name"] == "coderflash"
        caps = result["capabilities"]
        assert caps.get("inlineCompletionProvider") is not None  # {} or true
        assert caps.get("completionProvider") is not None
        client.notify("initialized", {})
        client.notify("workspace/didChangeConfiguration", {"settings": load("settings.json")})
        status = client.call("coderflash/status", {})
        assert "error" not in status, status
        assert not [m for m in client.incoming if m.get("method") == "window/showMessage"
                    and m["params"].get("type") == 1], "the server reported an error"
    finally:
        client.close()
