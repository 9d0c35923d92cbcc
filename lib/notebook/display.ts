/**
 * Rich outputs for Deno's Jupyter kernel: HTML tables, PNG images and Vega-Lite charts that
 * JupyterLab, VS Code and nbconvert's HTML export all render. Outside a kernel (deno run,
 * tests) `show` prints the plain-text form instead.
 */
import { Buffer } from "node:buffer";
import { inKernel, jupyterKernel, type MimeBundle } from "../util/jupyter.ts";

export { inKernel };
export type { MimeBundle };

const DISPLAY = Symbol.for("Jupyter.display");

/** Anything the kernel renders through `Symbol.for("Jupyter.display")`. */
export interface Displayable {
  [key: symbol]: () => MimeBundle;
}

/** Wraps a MIME bundle so that evaluating it in a cell shows it. */
export function displayable(bundle: MimeBundle): Displayable {
  return { [DISPLAY]: () => bundle };
}

export function isDisplayable(x: unknown): x is Displayable {
  return typeof x === "object" && x !== null && DISPLAY in x;
}

/** Escapes text for HTML. */
export function esc(s: unknown): string {
  return String(s).replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

/** An HTML fragment with a plain-text fallback. */
export function html(markup: string, plain = markup.replace(/<[^>]+>/g, "")): Displayable {
  return displayable({ "text/html": markup, "text/plain": plain });
}

/** Markdown text (rendered by every Jupyter front end). */
export function markdown(text: string): Displayable {
  return displayable({ "text/markdown": text, "text/plain": text });
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

/** A PNG data URL for <img> tags. */
export function pngDataUrl(png: Uint8Array): string {
  return `data:image/png;base64,${base64(png)}`;
}

/** A PNG image output. */
export function png(bytes: Uint8Array, alt = "image"): Displayable {
  return displayable({ "image/png": base64(bytes), "text/plain": alt });
}

/** A table from rows of cells; the first row is the header. */
export function table(rows: unknown[][], caption?: string): Displayable {
  const [head, ...body] = rows;
  const cell = (tag: string, v: unknown) =>
    `<${tag} style="text-align:${typeof v === "number" ? "right" : "left"};padding:2px 8px">${
      esc(v)
    }</${tag}>`;
  const markup = `<table>${caption ? `<caption>${esc(caption)}</caption>` : ""}<thead><tr>${
    head.map((h) => cell("th", h)).join("")
  }</tr></thead><tbody>${
    body.map((r) => `<tr>${r.map((v) => cell("td", v)).join("")}</tr>`).join("")
  }</tbody></table>`;
  const widths = head.map((_, j) => Math.max(...rows.map((r) => String(r[j] ?? "").length)));
  const plain = [
    ...(caption ? [caption] : []),
    ...rows.map((r) => r.map((v, j) => String(v ?? "").padEnd(widths[j])).join("  ")),
  ].join("\n");
  return displayable({ "text/html": markup, "text/plain": plain });
}

/** A grid of captioned images (HTML, so captions need no fonts in the image). */
export function imageGrid(
  images: { png: Uint8Array; caption: string }[],
  opts: { width?: number; title?: string } = {},
): Displayable {
  const w = opts.width ?? 180;
  const figures = images.map((im) =>
    `<figure style="display:inline-block;margin:4px;width:${w}px;vertical-align:top">` +
    `<img src="${pngDataUrl(im.png)}" width="${w}" alt="${esc(im.caption)}">` +
    // File names have no spaces: let them wrap anywhere rather than run under the next image.
    `<figcaption style="font-size:12px;line-height:1.3;overflow-wrap:anywhere;` +
    `word-break:break-word">${esc(im.caption)}</figcaption></figure>`
  ).join("");
  const title = opts.title ? `<div style="font-weight:bold">${esc(opts.title)}</div>` : "";
  return displayable({
    "text/html": `<div>${title}${figures}</div>`,
    "text/plain": `${opts.title ?? "images"}: ${images.map((i) => i.caption).join("; ")}`,
  });
}

/** Shows each item now (several outputs from one cell); prints plain text outside a kernel. */
export async function show(...items: (Displayable | string)[]): Promise<void> {
  const j = jupyterKernel();
  for (const item of items) {
    const bundle: MimeBundle = typeof item === "string" ? { "text/plain": item } : item[DISPLAY]();
    if (j) await j.display(bundle, { raw: true });
    else console.log(String(bundle["text/plain"] ?? ""));
  }
  // Deno's kernel can report a cell finished before its last display messages leave; a
  // short pause lets them reach the front end (nbclient drops messages after "idle").
  if (j) await new Promise((r) => setTimeout(r, 100));
}
