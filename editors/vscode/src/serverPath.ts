// Find the coderflash executable: a configured path, else `coderflash` on PATH.
import * as fs from "fs";
import * as path from "path";

export interface ServerCommand {
  command: string;
  args: string[];
}

function isExecutable(file: string, platform: NodeJS.Platform): boolean {
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) {
      return false;
    }
    if (platform === "win32") {
      return true;
    }
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Look `name` up in a PATH string (with PATHEXT on Windows). */
export function which(name: string, envPath: string | undefined, platform: NodeJS.Platform = process.platform,
  pathExt: string | undefined = process.env.PATHEXT): string | undefined {
  const sep = platform === "win32" ? ";" : ":";
  const exts = platform === "win32" ? ["", ...(pathExt ?? ".EXE;.CMD;.BAT").split(";").map((e) => e.toLowerCase())] : [""];
  for (const dir of (envPath ?? "").split(sep)) {
    if (!dir) {
      continue;
    }
    for (const ext of exts) {
      const candidate = path.join(dir, name + ext);
      if (isExecutable(candidate, platform)) {
        return candidate;
      }
    }
  }
  return undefined;
}

/** The command line that starts the server, or an error message saying what to set. */
export function resolveServerCommand(configuredPath: string | undefined, args: string[] | undefined,
  envPath: string | undefined, platform: NodeJS.Platform = process.platform): ServerCommand | { error: string } {
  const serverArgs = args && args.length > 0 ? args : ["serve"];
  const configured = (configuredPath ?? "").trim();
  if (configured) {
    const expanded = configured.startsWith("~") ? path.join(process.env.HOME ?? "", configured.slice(1)) : configured;
    if (path.isAbsolute(expanded) || expanded.includes("/") || expanded.includes("\\")) {
      if (isExecutable(expanded, platform)) {
        return { command: expanded, args: serverArgs };
      }
      return { error: `coderflash.serverPath is set to ${configured}, which is not an executable file.` };
    }
    const found = which(expanded, envPath, platform);
    return found ? { command: found, args: serverArgs }
      : { error: `coderflash.serverPath is ${configured}, which is not on PATH.` };
  }
  const found = which("coderflash", envPath, platform);
  if (found) {
    return { command: found, args: serverArgs };
  }
  return { error: "The coderflash server was not found on PATH. Install it (pip install coderflash) or set coderflash.serverPath." };
}
