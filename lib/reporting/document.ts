/**
 * A tiny document model rendered to both Markdown and self-contained HTML, so the two report
 * files always say the same thing. Inline text supports **bold** and `code` only.
 */
import { Buffer } from "node:buffer";

function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

export interface Figure {
  caption: string;
  /** Path written into Markdown (relative to the report). */
  mdPath: string;
  /** Bytes (PNG) or text (SVG) embedded into the HTML. */
  content: Uint8Array | string;
  mime: "image/png" | "image/svg+xml";
  /** Display width in the HTML page (px), default: natural size capped at page width. */
  width?: number;
}

export type Block =
  | { kind: "h1" | "h2" | "h3"; text: string; id?: string }
  | { kind: "p"; text: string }
  | { kind: "banner"; text: string; level: "warning" | "info" }
  | { kind: "list"; items: string[] }
  | { kind: "table"; header: string[]; rows: string[][]; caption?: string }
  | { kind: "figures"; figures: Figure[] };

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}

/** **bold** and `code` to HTML, everything else escaped. */
export function inlineHtml(s: string): string {
  return escapeHtml(s)
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>");
}

function mdCell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/** Render blocks as GitHub-flavoured Markdown. */
export function toMarkdown(blocks: Block[]): string {
  const out: string[] = [];
  for (const b of blocks) {
    switch (b.kind) {
      case "h1":
        out.push(`# ${b.text}`);
        break;
      case "h2":
        out.push(`## ${b.text}`);
        break;
      case "h3":
        out.push(`### ${b.text}`);
        break;
      case "p":
        out.push(b.text);
        break;
      case "banner":
        out.push(`> ${b.level === "warning" ? "⚠️ " : ""}${b.text}`);
        break;
      case "list":
        out.push(b.items.map((i) => `- ${i}`).join("\n"));
        break;
      case "table": {
        const lines = [
          `| ${b.header.map(mdCell).join(" | ")} |`,
          `| ${b.header.map(() => "---").join(" | ")} |`,
          ...b.rows.map((r) => `| ${r.map(mdCell).join(" | ")} |`),
        ];
        if (b.caption) lines.push("", `*${b.caption}*`);
        out.push(lines.join("\n"));
        break;
      }
      case "figures":
        out.push(b.figures.map((f) => `![${f.caption}](${encodeURI(f.mdPath)})`).join("\n"));
        break;
    }
  }
  return out.join("\n\n") + "\n";
}

const CSS = `
body { font-family: "DejaVu Sans", Arial, sans-serif; max-width: 1180px; margin: 24px auto;
  padding: 0 16px; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #1f77b4; padding-bottom: 6px; }
h2 { margin-top: 36px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
table { border-collapse: collapse; margin: 12px 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f4f8; }
tr:nth-child(even) td { background: #fafafa; }
.caption { font-size: 12px; color: #555; font-style: italic; }
.banner { padding: 10px 14px; border-radius: 4px; margin: 12px 0; font-weight: bold; }
.banner.warning { background: #fde8e8; border: 2px solid #c62828; color: #8e0000; }
.banner.info { background: #e8f0fd; border: 1px solid #1f77b4; color: #0d3c6e; }
.figures { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
figure { margin: 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 12px; color: #555; max-width: 400px; }
code { background: #f3f3f3; padding: 0 3px; border-radius: 3px; font-size: 12px; }
`;

function figureHtml(f: Figure): string {
  const data = typeof f.content === "string"
    ? encodeBase64(new TextEncoder().encode(f.content))
    : encodeBase64(f.content);
  const width = f.width ? ` width="${f.width}"` : "";
  return `<figure><img alt="${
    escapeHtml(f.caption)
  }"${width} src="data:${f.mime};base64,${data}">` +
    `<figcaption>${inlineHtml(f.caption)}</figcaption></figure>`;
}

/** Render blocks as one self-contained HTML page (images inlined as data URIs). */
export function toHtml(blocks: Block[], title: string): string {
  const body: string[] = [];
  for (const b of blocks) {
    switch (b.kind) {
      case "h1":
      case "h2":
      case "h3":
        body.push(
          `<${b.kind}${b.id ? ` id="${escapeHtml(b.id)}"` : ""}>${inlineHtml(b.text)}</${b.kind}>`,
        );
        break;
      case "p":
        body.push(`<p>${inlineHtml(b.text)}</p>`);
        break;
      case "banner":
        body.push(`<div class="banner ${b.level}">${inlineHtml(b.text)}</div>`);
        break;
      case "list":
        body.push(`<ul>${b.items.map((i) => `<li>${inlineHtml(i)}</li>`).join("")}</ul>`);
        break;
      case "table":
        body.push(
          `<table><thead><tr>${
            b.header.map((h) => `<th>${inlineHtml(h)}</th>`).join("")
          }</tr></thead>` +
            `<tbody>${
              b.rows.map((r) => `<tr>${r.map((c) => `<td>${inlineHtml(c)}</td>`).join("")}</tr>`)
                .join("")
            }</tbody></table>` +
            (b.caption ? `<div class="caption">${inlineHtml(b.caption)}</div>` : ""),
        );
        break;
      case "figures":
        body.push(`<div class="figures">${b.figures.map(figureHtml).join("")}</div>`);
        break;
    }
  }
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>${CSS}</style></head>
<body>
${body.join("\n")}
</body></html>
`;
}
