// VS Code settings → the server's settings (initializationOptions and workspace/didChangeConfiguration).
// The server rejects unknown keys, so only real server settings are sent, and only when set.

export interface ExtensionSettings {
  model?: string;
  backendUrl?: string;
  contextBudget?: number | null;
  debounceMs?: number;
}

export interface ServerSettings {
  model?: string;
  backend?: "llama" | "openai";
  remote?: { url: string };
  context?: { budget: number };
  completion?: { debounce_ms: number };
}

export function toServerSettings(s: ExtensionSettings): ServerSettings {
  const out: ServerSettings = {};
  const model = (s.model ?? "").trim();
  if (model) {
    out.model = model;
  }
  const url = (s.backendUrl ?? "").trim();
  if (url) {
    out.backend = "openai";
    out.remote = { url };
  }
  if (typeof s.contextBudget === "number" && Number.isFinite(s.contextBudget) && s.contextBudget > 0) {
    out.context = { budget: Math.floor(s.contextBudget) };
  }
  if (typeof s.debounceMs === "number" && Number.isFinite(s.debounceMs) && s.debounceMs >= 0) {
    out.completion = { debounce_ms: Math.floor(s.debounceMs) };
  }
  return out;
}

/** `coderflash.enable`: per language id, `*` for the rest (default on). */
export function isLanguageEnabled(enable: Record<string, unknown> | undefined, languageId: string): boolean {
  if (enable && typeof enable[languageId] === "boolean") {
    return enable[languageId] as boolean;
  }
  if (enable && typeof enable["*"] === "boolean") {
    return enable["*"] as boolean;
  }
  return true;
}

/** Settings whose change needs a server restart rather than didChangeConfiguration. */
export const RESTART_KEYS = ["coderflash.serverPath", "coderflash.serverArgs"];
