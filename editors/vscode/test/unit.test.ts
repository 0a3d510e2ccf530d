import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { Conversation, isChatDelta } from "../src/chatModel";
import { delay } from "../src/debounce";
import { resolveServerCommand, which } from "../src/serverPath";
import { isLanguageEnabled, toServerSettings } from "../src/settings";
import { formatStatus, reusedPercent } from "../src/statusText";

const ROOT = path.resolve(__dirname, "..", "..");

test("settings: only set values become server settings, with the server's key names", () => {
  assert.deepEqual(toServerSettings({}), {});
  assert.deepEqual(toServerSettings({ model: " ", backendUrl: "", contextBudget: null }), {});
  assert.deepEqual(toServerSettings({ model: "/m/q.gguf", backendUrl: "http://127.0.0.1:8080/v1", contextBudget: 4096.7, debounceMs: 50 }), {
    model: "/m/q.gguf", backend: "openai", remote: { url: "http://127.0.0.1:8080/v1" }, context: { budget: 4096 },
    completion: { debounce_ms: 50 },
  });
  assert.deepEqual(toServerSettings({ contextBudget: -1, debounceMs: Number.NaN }), {});
});

test("settings: enable per language with a * default", () => {
  assert.equal(isLanguageEnabled(undefined, "python"), true);
  assert.equal(isLanguageEnabled({ "*": false, python: true }, "python"), true);
  assert.equal(isLanguageEnabled({ "*": false, python: true }, "go"), false);
  assert.equal(isLanguageEnabled({ markdown: false }, "markdown"), false);
  assert.equal(isLanguageEnabled({ markdown: "no" }, "markdown"), true);
});

test("serverPath: configured path, PATH lookup, and a clear error", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cf-"));
  const exe = path.join(dir, "coderflash");
  fs.writeFileSync(exe, "#!/bin/sh\n");
  fs.chmodSync(exe, 0o755);
  const notExe = path.join(dir, "plain");
  fs.writeFileSync(notExe, "");
  assert.deepEqual(resolveServerCommand("", undefined, `/nonexistent:${dir}`, "linux"), { command: exe, args: ["serve"] });
  assert.deepEqual(resolveServerCommand(exe, ["serve", "--tcp", "x"], "", "linux"), { command: exe, args: ["serve", "--tcp", "x"] });
  assert.match((resolveServerCommand(notExe, [], "", "linux") as { error: string }).error, /not an executable/);
  assert.match((resolveServerCommand("", [], "/nonexistent", "linux") as { error: string }).error, /not found on PATH/);
  assert.equal(which("coderflash", dir, "linux"), exe);
  assert.equal(which("plain", dir, "linux"), undefined);
});

test("debounce: resolves after the delay, false when cancelled", async () => {
  assert.equal(await delay(5), true);
  assert.equal(await delay(5, { isCancellationRequested: true }), false);
  let fire: (() => void) | undefined;
  const token = { isCancellationRequested: false, onCancellationRequested: (l: () => void) => { fire = l; return { dispose() {} }; } };
  const started = Date.now();
  const p = delay(10_000, token);
  token.isCancellationRequested = true;
  fire!();
  assert.equal(await p, false);
  assert.ok(Date.now() - started < 1000);
});

test("chat: streamed deltas build the answer; the final text wins only when nothing streamed", () => {
  const c = new Conversation("c1");
  assert.equal(isChatDelta({ conversationId: "c1", kind: "text", text: "x" }), true);
  assert.equal(isChatDelta({ conversationId: "c1", kind: "other", text: "x" }), false);
  const t = c.start("why?", "ask");
  assert.equal(c.delta({ conversationId: "other", kind: "text", text: "no" }), undefined);
  c.delta({ conversationId: "c1", kind: "text", text: "Because " });
  c.delta({ conversationId: "c1", kind: "tool_call", text: "read_file main.py" });
  c.delta({ conversationId: "c1", kind: "tool_result", text: "..." });
  c.delta({ conversationId: "c1", kind: "text", text: "it is." });
  assert.equal(t.answer, "Because it is.");
  assert.equal(t.events.length, 4);
  c.finish({ conversationId: "c1", text: "Because it is. (final)", edits: [{}, {}] });
  assert.equal(t.answer, "Because it is.");
  assert.equal(t.done, true);
  assert.equal(t.edits, 2);
  assert.equal(c.delta({ conversationId: "c1", kind: "text", text: "late" }), undefined);

  const t2 = c.start("again", "agent");
  c.finish({ conversationId: "c1", text: "unstreamed" });
  assert.equal(t2.answer, "unstreamed");
  const t3 = c.start("stop", "ask");
  c.fail("cancelled");
  assert.equal(t3.error, "cancelled");
  assert.equal(c.running, undefined);
});

test("status bar: reuse ratio, progress and errors", () => {
  assert.equal(reusedPercent({ prompt_tokens: 200, reused_tokens: 150 }), 75);
  assert.equal(reusedPercent({ prompt_tokens: 0 }), undefined);
  const running = formatStatus({ state: "running", enabled: true,
    status: { prompt_tokens: 100, reused_tokens: 90, requests: 3, model: { model_path: "/m/qwen.gguf" } } });
  assert.equal(running.text, "$(sparkle) coderflash 90% reused");
  assert.match(running.tooltip, /Model: qwen\.gguf/);
  assert.match(formatStatus({ state: "running", enabled: true, progress: ["Indexing 3/10"] }).text, /Indexing 3\/10/);
  assert.match(formatStatus({ state: "error", enabled: true, error: "boom" }).tooltip, /boom/);
  assert.match(formatStatus({ state: "running", enabled: false }).text, /circle-slash/);
});

test("package.json: settings and commands the code uses are contributed", () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
  const props = Object.keys(pkg.contributes.configuration.properties);
  for (const key of ["serverPath", "serverArgs", "model", "backendUrl", "contextBudget", "debounceMs", "enable"]) {
    assert.ok(props.includes(`coderflash.${key}`), key);
  }
  const commands = pkg.contributes.commands.map((c: { command: string }) => c.command);
  for (const c of ["coderflash.showStatus", "coderflash.toggle", "coderflash.openChat", "coderflash.reindex",
    "coderflash.clearCache", "coderflash.pullModel"]) {
    assert.ok(commands.includes(c), c);
  }
  assert.equal(pkg.contributes.views.coderflash[0].id, "coderflash.chat");
  const src = fs.readFileSync(path.join(ROOT, "src", "extension.ts"), "utf8");
  for (const m of src.matchAll(/config\(\)\.get<[^>]+>\("(\w+)"\)|c\.get<[^>]+>\("(\w+)"\)/g)) {
    const key = m[1] ?? m[2];
    assert.ok(props.includes(`coderflash.${key}`), `extension reads coderflash.${key}`);
  }
});
