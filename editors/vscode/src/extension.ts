// The coderflash VS Code extension: starts `coderflash serve`, lets vscode-languageclient bridge
// textDocument/inlineCompletion (with our debounce and per-language switch), code actions and server
// commands, shows a status bar item, and hosts the chat view.
import * as vscode from "vscode";
import {
  CancellationTokenSource, LanguageClient, LanguageClientOptions, RevealOutputChannelOn, ServerOptions, State,
} from "vscode-languageclient/node";
import { ChatViewProvider } from "./chatView";
import { delay } from "./debounce";
import { resolveServerCommand } from "./serverPath";
import { isLanguageEnabled, RESTART_KEYS, toServerSettings } from "./settings";
import { formatStatus, ServerStatus } from "./statusText";

let client: LanguageClient | undefined;
let statusItem: vscode.StatusBarItem;
let output: vscode.LogOutputChannel;
let lastStatus: ServerStatus | undefined;
let lastError: string | undefined;
let enabled = true;
let statusTimer: NodeJS.Timeout | undefined;

function config() {
  return vscode.workspace.getConfiguration("coderflash");
}

export function serverSettings() {
  const c = config();
  return toServerSettings({
    model: c.get<string>("model"),
    backendUrl: c.get<string>("backendUrl"),
    contextBudget: c.get<number | null>("contextBudget"),
    debounceMs: c.get<number>("debounceMs"),
  });
}

function updateStatusBar() {
  const state = lastError ? "error" : !client ? "stopped" : client.state === State.Running ? "running"
    : client.state === State.Starting ? "starting" : "stopped";
  const view = formatStatus({ state, enabled, status: lastStatus, error: lastError });
  statusItem.text = view.text;
  statusItem.tooltip = view.tooltip;
}

async function refreshStatus(): Promise<ServerStatus | undefined> {
  if (!client || client.state !== State.Running) {
    updateStatusBar();
    return undefined;
  }
  try {
    lastStatus = await client.sendRequest<ServerStatus>("coderflash/status", {});
  } catch (err) {
    output.appendLine(`coderflash/status failed: ${err}`);
  }
  updateStatusBar();
  return lastStatus;
}

async function startClient(context: vscode.ExtensionContext, chat: ChatViewProvider): Promise<void> {
  const c = config();
  const resolved = resolveServerCommand(c.get<string>("serverPath"), c.get<string[]>("serverArgs"), process.env.PATH);
  if ("error" in resolved) {
    lastError = resolved.error;
    updateStatusBar();
    void vscode.window.showErrorMessage(`coderflash: ${resolved.error}`);
    return;
  }
  lastError = undefined;
  // No `transport`: TransportKind.stdio would append `--stdio` to the arguments; stdio is the default.
  const serverOptions: ServerOptions = { command: resolved.command, args: resolved.args };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
    initializationOptions: serverSettings(),
    outputChannel: output,
    revealOutputChannelOn: RevealOutputChannelOn.Never,
    middleware: {
      provideInlineCompletionItems: async (document, position, ctx, token, next) => {
        if (!enabled || !isLanguageEnabled(config().get("enable"), document.languageId)) {
          return undefined;
        }
        // Typing triggers automatically: wait for a pause. An explicit trigger runs at once.
        if (ctx.triggerKind === vscode.InlineCompletionTriggerKind.Automatic) {
          if (!(await delay(config().get<number>("debounceMs") ?? 75, token))) {
            return undefined;
          }
        }
        const result = await next(document, position, ctx, token);
        scheduleStatusRefresh();
        return result;
      },
      workspace: {
        configuration: (params, _token, _next) =>
          params.items.map((item) => (item.section === "coderflash" ? serverSettings() : null)),
      },
    },
  };
  client = new LanguageClient("coderflash", "coderflash", serverOptions, clientOptions);
  client.onNotification("coderflash/chatDelta", (params) => chat.onDelta(params));
  client.onDidChangeState(() => updateStatusBar());
  chat.setClient(client);
  updateStatusBar();
  try {
    await client.start();
  } catch (err) {
    lastError = `The server failed to start: ${err}`;
    output.appendLine(lastError);
  }
  void refreshStatus();
}

function scheduleStatusRefresh() {
  if (statusTimer) {
    clearTimeout(statusTimer);
  }
  statusTimer = setTimeout(() => void refreshStatus(), 500);
}

async function showStatus() {
  const status = await refreshStatus();
  output.appendLine("");
  output.appendLine(`coderflash status ${new Date().toISOString()}`);
  output.appendLine(status ? JSON.stringify(status, null, 2) : lastError ?? "The server is not running.");
  output.show(true);
}

export async function activate(context: vscode.ExtensionContext) {
  output = vscode.window.createOutputChannel("coderflash", { log: true });
  statusItem = vscode.window.createStatusBarItem("coderflash.status", vscode.StatusBarAlignment.Right, 100);
  statusItem.name = "coderflash";
  statusItem.command = "coderflash.showStatus";
  statusItem.show();
  enabled = context.globalState.get<boolean>("coderflash.enabled", true);

  const chat = new ChatViewProvider(context.extensionUri, output);
  context.subscriptions.push(
    output, statusItem,
    vscode.window.registerWebviewViewProvider(ChatViewProvider.viewType, chat, {
      webviewOptions: { retainContextWhenHidden: true },
    }),
    vscode.commands.registerCommand("coderflash.showStatus", showStatus),
    vscode.commands.registerCommand("coderflash.toggle", async () => {
      enabled = !enabled;
      await context.globalState.update("coderflash.enabled", enabled);
      updateStatusBar();
      void vscode.window.setStatusBarMessage(`coderflash inline completions ${enabled ? "on" : "off"}`, 3000);
    }),
    vscode.commands.registerCommand("coderflash.restart", async () => {
      await client?.stop().catch(() => undefined);
      await startClient(context, chat);
    }),
    vscode.commands.registerCommand("coderflash.openChat", async () => {
      await vscode.commands.executeCommand("coderflash.chat.focus");
    }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (!e.affectsConfiguration("coderflash")) {
        return;
      }
      if (RESTART_KEYS.some((k) => e.affectsConfiguration(k))) {
        await client?.stop().catch(() => undefined);
        await startClient(context, chat);
        return;
      }
      if (client?.state === State.Running) {
        await client.sendNotification("workspace/didChangeConfiguration", { settings: { coderflash: serverSettings() } });
      }
    }),
  );
  await startClient(context, chat);
}

export async function deactivate() {
  if (statusTimer) {
    clearTimeout(statusTimer);
  }
  await client?.stop();
}

export { CancellationTokenSource };
