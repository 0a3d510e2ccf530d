// Render a terminal capture with ANSI colours (`tmux capture-pane -e -p`) to a PNG through Chromium
// (playwright-core from editors/vscode/.e2e). Used for the Neovim screenshot:
//   node editors/screenshots/ansi2png.js capture.ansi out.png
"use strict";
const fs = require("fs");
const path = require("path");
const { chromium } = require(path.join(__dirname, "..", "vscode", ".e2e", "pw", "node_modules", "playwright-core"));

const base = ["#000000", "#cd3131", "#0dbc79", "#e5e510", "#2472c8", "#bc3fbc", "#11a8cd", "#e5e5e5",
  "#666666", "#f14c4c", "#23d18b", "#f5f543", "#3b8eea", "#d670d6", "#29b8db", "#ffffff"];
function color256(n) {
  if (n < 16) return base[n];
  if (n >= 232) { const v = 8 + (n - 232) * 10; return `rgb(${v},${v},${v})`; }
  n -= 16; const c = [Math.floor(n / 36), Math.floor(n / 6) % 6, n % 6].map((x) => (x ? 55 + x * 40 : 0));
  return `rgb(${c.join(",")})`;
}
const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function toHtml(text) {
  let st = { fg: null, bg: null, bold: false, italic: false, ul: false };
  let out = "";
  const span = (s) => {
    if (!s) return;
    const css = [st.fg && `color:${st.fg}`, st.bg && `background:${st.bg}`, st.bold && "font-weight:bold",
      st.italic && "font-style:italic", st.ul && "text-decoration:underline"].filter(Boolean).join(";");
    out += css ? `<span style="${css}">${esc(s)}</span>` : esc(s);
  };
  const re = /\x1b\[([0-9;:]*)m/g;
  let last = 0, m;
  while ((m = re.exec(text))) {
    span(text.slice(last, m.index)); last = re.lastIndex;
    const p = m[1] === "" ? [0] : m[1].split(/[;:]/).map(Number);
    for (let i = 0; i < p.length; i++) {
      const c = p[i];
      if (c === 0) st = { fg: null, bg: null, bold: false, italic: false, ul: false };
      else if (c === 1) st.bold = true; else if (c === 3) st.italic = true; else if (c === 4) st.ul = true;
      else if (c === 22) st.bold = false; else if (c === 23) st.italic = false; else if (c === 24) st.ul = false;
      else if (c >= 30 && c <= 37) st.fg = base[c - 30]; else if (c >= 90 && c <= 97) st.fg = base[c - 82];
      else if (c >= 40 && c <= 47) st.bg = base[c - 40]; else if (c >= 100 && c <= 107) st.bg = base[c - 92];
      else if (c === 39) st.fg = null; else if (c === 49) st.bg = null;
      else if ((c === 38 || c === 48) && p[i + 1] === 5) { const v = color256(p[i + 2]); if (c === 38) st.fg = v; else st.bg = v; i += 2; }
      else if ((c === 38 || c === 48) && p[i + 1] === 2) { const v = `rgb(${p[i + 2]},${p[i + 3]},${p[i + 4]})`; if (c === 38) st.fg = v; else st.bg = v; i += 4; }
    }
  }
  span(text.slice(last));
  return out;
}

(async () => {
  const [input, output] = process.argv.slice(2);
  const body = toHtml(fs.readFileSync(input, "utf8").replace(/\n$/, ""));
  const html = `<html><body style="margin:0;background:#1c1c1c"><pre id="t" style="margin:0;padding:8px;display:inline-block;
    font:14px/1.25 'DejaVu Sans Mono',monospace;color:#bcbcbc;background:#1c1c1c">${body}</pre></body></html>`;
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", headless: true,
    args: ["--no-sandbox", "--disable-gpu"] });
  const page = await browser.newPage({ viewport: { width: 1000, height: 600 } });
  await page.setContent(html);
  await page.locator("#t").screenshot({ path: output });
  await browser.close();
})();
