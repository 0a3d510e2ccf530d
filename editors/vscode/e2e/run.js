// End-to-end: the packaged extension inside real VS Code (code-server) driven by headless Chromium
// through playwright-core. Ghost text appears while typing and Tab accepts it; the chat view streams an
// answer. Needs scripts/e2e-setup.sh first. Usage: node e2e/run.js --vsix coderflash.vsix --server PATH
//   --model tiny.gguf [--screenshots DIR]
"use strict";
const { spawn, execFileSync } = require("child_process");
const fs = require("fs");
const http = require("http");
const net = require("net");
const os = require("os");
const path = require("path");

const ROOT = path.resolve(__dirname, "..");
const E2E = path.join(ROOT, ".e2e");
const REPO = path.resolve(ROOT, "..", "..");

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

const vsix = path.resolve(arg("vsix", path.join(ROOT, "coderflash.vsix")));
const server = path.resolve(arg("server", path.join(REPO, ".venv", "bin", "coderflash")));
const model = path.resolve(arg("model", ""));
const shots = arg("screenshots", "");
const chromium = arg("chromium", process.env.CHROMIUM || "/usr/bin/chromium");
const node24 = fs.readFileSync(path.join(E2E, "node24.path"), "utf8").trim();
const codeServerMain = path.join(E2E, "cs", "node_modules", "code-server", "out", "node", "entry.js");
const { chromium: pw } = require(path.join(E2E, "pw", "node_modules", "playwright-core"));

const log = (...a) => console.log(`[e2e ${(process.uptime()).toFixed(1)}s]`, ...a);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
    s.on("error", reject);
  });
}

function waitHttp(url, ms) {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => {
      http.get(url, (res) => { res.resume(); resolve(res.statusCode); }).on("error", () => {
        if (Date.now() > end) reject(new Error(`no answer from ${url}`)); else setTimeout(tick, 250);
      });
    };
    tick();
  });
}

async function poll(fn, ms, what) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out: ${what} (last: ${last})`);
}

async function main() {
  if (!fs.existsSync(model)) throw new Error(`--model ${model} does not exist`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "coderflash-e2e-"));
  const userData = path.join(tmp, "user");
  const extensions = path.join(tmp, "extensions");
  const workspace = path.join(tmp, "sample_repo");
  fs.cpSync(path.join(REPO, "examples", "sample_repo"), workspace, { recursive: true });
  fs.mkdirSync(path.join(userData, "User"), { recursive: true });
  fs.writeFileSync(path.join(userData, "User", "settings.json"), JSON.stringify({
    "coderflash.serverPath": server,
    "coderflash.model": model,
    "coderflash.debounceMs": 30,
    "chat.disableAIFeatures": true,
    "security.workspace.trust.enabled": false,
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": false,
    "workbench.welcomePage.walkthroughs.openOnInstall": false,
    "telemetry.telemetryLevel": "off",
    "update.mode": "none",
    "extensions.autoCheckUpdates": false,
    "extensions.autoUpdate": false,
    "editor.inlineSuggest.enabled": true,
    "editor.quickSuggestions": { "other": false, "comments": false, "strings": false },
    "editor.suggestOnTriggerCharacters": false,
    "editor.minimap.enabled": false,
    "window.commandCenter": false,
    "workbench.colorTheme": "Default Dark Modern",
  }, null, 2));
  const env = { ...process.env, PATH: `${path.join(node24, "bin")}:${process.env.PATH}`,
    CODERFLASH_MODEL: model, XDG_DATA_HOME: path.join(tmp, "xdg-data"), XDG_CONFIG_HOME: path.join(tmp, "xdg-config") };
  const nodeBin = path.join(node24, "bin", "node");
  log("installing", path.basename(vsix));
  execFileSync(nodeBin, [codeServerMain, "--extensions-dir", extensions, "--user-data-dir", userData,
    "--install-extension", vsix, "--force"], { env, stdio: "inherit", timeout: 120000 });

  const port = await freePort();
  const csLog = fs.openSync(path.join(tmp, "code-server.log"), "w");
  const cs = spawn(nodeBin, [codeServerMain, "--auth", "none", "--bind-addr", `127.0.0.1:${port}`,
    "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust", "--extensions-dir", extensions,
    "--user-data-dir", userData, workspace], { env, stdio: ["ignore", csLog, csLog], detached: true });
  let browser;
  try {
    await waitHttp(`http://127.0.0.1:${port}/healthz`, 60000);
    log("code-server up on port", port);
    browser = await pw.launch({ executablePath: chromium, headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    page.setDefaultTimeout(60000);
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
    await page.waitForSelector(".monaco-workbench", { timeout: 90000 });
    log("workbench loaded");

    // Open main.py through Quick Open.
    await page.waitForSelector(".explorer-folders-view, .monaco-list", { timeout: 60000 });
    await page.keyboard.press("Control+P");
    await page.waitForSelector(".quick-input-widget input");
    await page.keyboard.type("main.py", { delay: 20 });
    await page.waitForSelector(".quick-input-list .monaco-list-row");
    await page.keyboard.press("Enter");
    await page.waitForSelector(".monaco-editor .view-lines");
    await poll(() => page.locator(".view-line", { hasText: "total =" }).count(), 30000, "main.py open");
    log("main.py open");

    // Wait until the extension's server is running (its status bar item shows the sparkle icon).
    const item = page.locator(".statusbar-item", { hasText: "coderflash" }).first();
    await poll(async () => (await item.locator(".codicon-sparkle").count()) > 0, 90000, "coderflash status bar item running");
    log("status bar:", JSON.stringify(await item.textContent()));

    // Go to line 16 (1-based), end of line, type, wait for ghost text.
    await page.click(".monaco-editor .view-lines");
    await page.keyboard.press("Control+G");
    await page.waitForSelector(".quick-input-widget input");
    await page.keyboard.type("16", { delay: 20 });
    await page.keyboard.press("Enter");
    await page.keyboard.press("End");
    await page.keyboard.type("cart", { delay: 60 });
    const ghost = page.locator(".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text-decoration-preview, .monaco-editor .ghost-text");
    await poll(async () => (await ghost.count()) > 0 && ((await ghost.first().textContent()) || "").length > 0, 60000, "ghost text");
    const ghostText = (await ghost.allTextContents()).join("");
    log("ghost text:", JSON.stringify(ghostText.slice(0, 60)));
    if (shots) {
      fs.mkdirSync(shots, { recursive: true });
      await page.screenshot({ path: path.join(shots, "vscode-ghost-text.png"), clip: { x: 0, y: 0, width: 1280, height: 420 } });
    }
    await page.keyboard.press("Tab");
    // After Tab the accepted text is real text; a new suggestion may already show after it (the server
    // completes again at the new position), so read the line without any ghost-text decorations.
    const line = await poll(async () => {
      const t = await page.evaluate(() => {
        for (const el of document.querySelectorAll(".monaco-editor .view-line")) {
          if (!el.textContent.replace(/\u00a0/g, " ").includes("total = cart")) continue;  // monaco renders spaces as NBSP
          const copy = el.cloneNode(true);
          copy.querySelectorAll('[class*="ghost-text"]').forEach((n) => n.remove());
          return copy.textContent.replace(/\u00a0/g, " ");
        }
        return "";
      });
      if (t.length > "    total = cart".length) return t;
      throw new Error(`line is ${JSON.stringify(t)}`);
    }, 20000, "Tab accepted the ghost text");
    log("after Tab:", JSON.stringify(line.slice(0, 80)));
    const firstGhostLine = ghostText.replace(/\u00a0/g, " ").split("\n")[0].slice(0, 10);
    if (!line.includes(firstGhostLine)) throw new Error(`accepted line ${JSON.stringify(line)} lacks the ghost text ${JSON.stringify(firstGhostLine)}`);
    await page.keyboard.press("Escape");

    // Chat: open the view, ask, wait for a streamed answer.
    await page.keyboard.press("Control+Shift+P");
    await page.waitForSelector(".quick-input-widget input");
    await page.keyboard.type("coderflash: Open Chat", { delay: 10 });
    await page.waitForSelector(".quick-input-list .monaco-list-row");
    await page.keyboard.press("Enter");
    const frame = await poll(async () => {
      for (const f of page.frames()) {
        if (await f.locator("#input").count().catch(() => 0)) return f;
      }
      return undefined;
    }, 60000, "chat webview");
    await frame.fill("#input", "What does main do?");
    await frame.click("#send");
    const answer = await poll(async () => {
      const done = await frame.locator(".turn[data-done='1']").count();
      if (!done) return "";
      return { text: await frame.locator(".turn .a").first().textContent(),
        streamed: await frame.locator(".turn[data-streamed='1']").count(),
        meta: await frame.locator(".turn .meta").first().textContent() };
    }, 120000, "chat answer");
    log("chat:", JSON.stringify({ streamed: answer.streamed, meta: answer.meta, text: (answer.text || "").slice(0, 60) }));
    if (!answer.streamed) throw new Error("the chat answer did not stream (no coderflash/chatDelta)");
    if (!(answer.text || "").trim()) throw new Error(`empty chat answer (${answer.meta})`);
    if (shots) {
      await page.screenshot({ path: path.join(shots, "vscode-chat.png"), clip: { x: 0, y: 0, width: 1280, height: 720 } });
    }
    log("PASS");
  } catch (err) {
    try {
      const pages = browser ? browser.contexts().flatMap((c) => c.pages()) : [];
      if (pages[0]) await pages[0].screenshot({ path: path.join(tmp, "failure.png") });
    } catch { /* ignore */ }
    console.error(`[e2e] FAIL: ${err && err.stack || err}\n  logs and failure.png in ${tmp}`);
    process.exitCode = 1;
  } finally {
    if (browser) await browser.close().catch(() => undefined);
    try { process.kill(-cs.pid, "SIGTERM"); } catch { /* gone */ }
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
