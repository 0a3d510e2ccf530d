// Status bar text from the server's coderflash/status result and work-done progress.

export interface ServerStatus {
  version?: string;
  model?: Record<string, unknown> | null;
  requests?: number;
  prompt_tokens?: number;
  reused_tokens?: number;
  evaluated_tokens?: number;
  cancelled?: number;
  workspaces?: unknown[];
  [key: string]: unknown;
}

export interface StatusView {
  text: string;
  tooltip: string;
}

export function reusedPercent(s: ServerStatus | undefined): number | undefined {
  if (!s || !s.prompt_tokens) {
    return undefined;
  }
  return Math.round((100 * (s.reused_tokens ?? 0)) / s.prompt_tokens);
}

function modelName(s: ServerStatus | undefined): string | undefined {
  const m = s?.model;
  if (!m || typeof m !== "object") {
    return undefined;
  }
  for (const key of ["model_name", "name", "model_path", "path"]) {
    const v = (m as Record<string, unknown>)[key];
    if (typeof v === "string" && v) {
      return key.endsWith("path") ? v.split(/[\\/]/).pop() : v;
    }
  }
  return undefined;
}

/** progress: the running work-done progress titles (indexing, model loading, warm-up). */
export function formatStatus(opts: { state: "starting" | "running" | "stopped" | "error"; enabled: boolean;
  status?: ServerStatus; progress?: string[]; error?: string }): StatusView {
  const { state, enabled, status, progress = [] } = opts;
  const lines: string[] = [];
  let text: string;
  if (state === "error") {
    text = "$(error) coderflash";
    lines.push(opts.error ?? "The server failed.");
  } else if (state === "stopped") {
    text = "$(circle-slash) coderflash";
    lines.push("The server is not running.");
  } else if (state === "starting") {
    text = "$(loading~spin) coderflash";
    lines.push("Starting the server…");
  } else if (progress.length > 0) {
    text = `$(loading~spin) coderflash: ${progress[progress.length - 1]}`;
    lines.push(...progress);
  } else {
    const pct = reusedPercent(status);
    text = (enabled ? "$(sparkle) coderflash" : "$(circle-slash) coderflash") + (pct !== undefined ? ` ${pct}% reused` : "");
  }
  const name = modelName(status);
  if (name) {
    lines.push(`Model: ${name}`);
  }
  if (status) {
    lines.push(`Requests: ${status.requests ?? 0} (cancelled ${status.cancelled ?? 0})`);
    lines.push(`Prompt tokens: ${status.prompt_tokens ?? 0}, reused ${status.reused_tokens ?? 0}, evaluated ${status.evaluated_tokens ?? 0}`);
  }
  if (!enabled) {
    lines.push("Inline completions are off (coderflash: Toggle Inline Completions).");
  }
  lines.push("Click for the full status.");
  return { text, tooltip: lines.join("\n") };
}
