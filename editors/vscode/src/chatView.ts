// The chat view: a webview that sends coderflash/chat and renders the streamed coderflash/chatDelta
// notifications. Agent-mode edits arrive as workspace/applyEdit, which the language client applies.
import { randomUUID } from "crypto";
import * as vscode from "vscode";
import { CancellationTokenSource, LanguageClient } from "vscode-languageclient/node";
import { ChatResult, Conversation, isChatDelta, Turn } from "./chatModel";

type FromWebview =
  | { type: "send"; text: string; mode: "ask" | "agent" }
  | { type: "cancel" }
  | { type: "new" }
  | { type: "ready" };

export class ChatViewProvider implements vscode.WebviewViewProvider {
  static readonly viewType = "coderflash.chat";
  private view?: vscode.WebviewView;
  private client?: LanguageClient;
  private conversation = new Conversation(randomUUID());
  private cancel?: CancellationTokenSource;

  constructor(private readonly extensionUri: vscode.Uri, private readonly output: vscode.OutputChannel) {}

  setClient(client: LanguageClient) {
    this.client = client;
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    view.webview.options = { enableScripts: true, localResourceRoots: [this.extensionUri] };
    view.webview.html = chatHtml(nonce());
    view.webview.onDidReceiveMessage((msg: FromWebview) => this.onMessage(msg));
  }

  private post(message: unknown) {
    void this.view?.webview.postMessage(message);
  }

  private render(turn: Turn) {
    this.post({ type: "turn", turn });
  }

  private async onMessage(msg: FromWebview) {
    if (msg.type === "ready") {
      for (const turn of this.conversation.turns) {
        this.render(turn);
      }
    } else if (msg.type === "new") {
      this.stop();
      this.conversation = new Conversation(randomUUID());
      this.post({ type: "reset" });
    } else if (msg.type === "cancel") {
      this.stop();
    } else if (msg.type === "send" && msg.text.trim()) {
      await this.ask(msg.text.trim(), msg.mode === "agent" ? "agent" : "ask");
    }
  }

  private stop() {
    const running = this.conversation.running;
    if (!running) {
      return;
    }
    void this.client?.sendRequest("coderflash/chat/cancel", { conversationId: this.conversation.id }).catch(() => undefined);
    this.cancel?.cancel();
    const turn = this.conversation.fail("cancelled");
    if (turn) {
      this.render(turn);
    }
  }

  /** Ask in the current conversation; resolves with the finished turn. */
  async ask(message: string, mode: "ask" | "agent" = "ask"): Promise<Turn | undefined> {
    if (!this.client || !this.client.isRunning()) {
      void vscode.window.showWarningMessage("coderflash: the server is not running.");
      return undefined;
    }
    if (this.conversation.running) {
      this.stop();
    }
    const turn = this.conversation.start(message, mode);
    this.render(turn);
    const params: Record<string, unknown> = { conversationId: this.conversation.id, message, mode };
    const editor = vscode.window.activeTextEditor;
    if (editor && editor.document.uri.scheme === "file") {
      params.textDocument = { uri: editor.document.uri.toString() };
      if (!editor.selection.isEmpty) {
        params.range = this.client.code2ProtocolConverter.asRange(editor.selection);
      }
    }
    this.cancel = new CancellationTokenSource();
    const conversation = this.conversation;
    try {
      const result = await this.client.sendRequest<ChatResult>("coderflash/chat", params, this.cancel.token);
      const done = conversation.finish(result);
      if (done) {
        this.render(done);
      }
    } catch (err) {
      const failed = conversation.fail(err instanceof Error ? err.message : String(err));
      this.output.appendLine(`coderflash/chat failed: ${err}`);
      if (failed) {
        this.render(failed);
      }
    }
    return turn;
  }

  onDelta(params: unknown) {
    if (!isChatDelta(params)) {
      return;
    }
    const turn = this.conversation.delta(params);
    if (turn) {
      this.post({ type: "delta", turnId: turn.id, kind: params.kind, text: params.text });
    }
  }
}

function nonce(): string {
  return randomUUID().replace(/-/g, "");
}

function chatHtml(n: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'nonce-${n}'; script-src 'nonce-${n}';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<style nonce="${n}">
  body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); color: var(--vscode-foreground); padding: 0 8px; }
  #log { display: flex; flex-direction: column; gap: 8px; padding-bottom: 8px; }
  .q { font-weight: 600; white-space: pre-wrap; }
  .a { white-space: pre-wrap; font-family: var(--vscode-editor-font-family); }
  .tool { opacity: .75; border-left: 2px solid var(--vscode-textBlockQuote-border); padding-left: 6px; white-space: pre-wrap; }
  .err { color: var(--vscode-errorForeground); }
  .turn { border-bottom: 1px solid var(--vscode-panel-border); padding-bottom: 6px; }
  textarea { width: 100%; box-sizing: border-box; min-height: 4em; color: var(--vscode-input-foreground);
             background: var(--vscode-input-background); border: 1px solid var(--vscode-input-border, transparent); }
  .row { display: flex; gap: 6px; margin-top: 4px; align-items: center; }
  button { color: var(--vscode-button-foreground); background: var(--vscode-button-background); border: none; padding: 4px 10px; cursor: pointer; }
</style></head>
<body>
<div id="log"></div>
<textarea id="input" placeholder="Ask about this repository (Ctrl+Enter to send)"></textarea>
<div class="row">
  <button id="send">Send</button><button id="stop">Stop</button><button id="new">New</button>
  <label><input type="checkbox" id="agent"> agent (may edit files)</label>
</div>
<script nonce="${n}">
  const vscode = acquireVsCodeApi();
  const log = document.getElementById("log");
  const input = document.getElementById("input");
  const turns = new Map();
  function el(turn) {
    let node = turns.get(turn.id);
    if (!node) {
      node = document.createElement("div"); node.className = "turn"; node.dataset.turn = turn.id;
      node.innerHTML = '<div class="q"></div><div class="body"><div class="a"></div></div><div class="meta"></div>';
      log.appendChild(node); turns.set(turn.id, node);
    }
    return node;
  }
  function lastAnswer(node) {
    const body = node.querySelector(".body");
    let a = body.lastElementChild;
    if (!a || a.className !== "a") { a = document.createElement("div"); a.className = "a"; body.appendChild(a); }
    return a;
  }
  function render(turn) {
    const node = el(turn);
    node.querySelector(".q").textContent = (turn.mode === "agent" ? "You (agent): " : "You: ") + turn.question;
    const body = node.querySelector(".body");
    body.innerHTML = "";
    let text = "";
    for (const ev of turn.events) {
      if (ev.kind === "text") { lastAnswer(node).textContent += ev.text; text += ev.text; }
      else { const t = document.createElement("div"); t.className = "tool"; t.textContent = (ev.kind === "tool_call" ? "tool call: " : "tool result: ") + ev.text; body.appendChild(t); }
    }
    if (turn.done && turn.answer && text.trim() === "") { lastAnswer(node).textContent = turn.answer; }
    const meta = node.querySelector(".meta");
    meta.className = "meta" + (turn.error ? " err" : "");
    meta.textContent = turn.error ? turn.error : turn.done ? (turn.edits ? turn.edits + " edit(s) applied" : "") : "…";
    node.dataset.done = turn.done ? "1" : "0";
    window.scrollTo(0, document.body.scrollHeight);
  }
  window.addEventListener("message", (e) => {
    const m = e.data;
    if (m.type === "turn") render(m.turn);
    else if (m.type === "reset") { log.innerHTML = ""; turns.clear(); }
    else if (m.type === "delta") {
      const node = turns.get(m.turnId); if (!node) return;
      if (m.kind === "text") lastAnswer(node).textContent += m.text;
      else { const t = document.createElement("div"); t.className = "tool"; t.textContent = (m.kind === "tool_call" ? "tool call: " : "tool result: ") + m.text; node.querySelector(".body").appendChild(t); }
      node.dataset.streamed = "1";
      window.scrollTo(0, document.body.scrollHeight);
    }
  });
  function send() {
    const text = input.value.trim(); if (!text) return;
    vscode.postMessage({ type: "send", text, mode: document.getElementById("agent").checked ? "agent" : "ask" });
    input.value = "";
  }
  document.getElementById("send").addEventListener("click", send);
  document.getElementById("stop").addEventListener("click", () => vscode.postMessage({ type: "cancel" }));
  document.getElementById("new").addEventListener("click", () => vscode.postMessage({ type: "new" }));
  input.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); send(); } });
  vscode.postMessage({ type: "ready" });
</script>
</body></html>`;
}
