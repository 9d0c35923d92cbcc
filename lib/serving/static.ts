/** The clinical-test page's files (lib/serving/static/), read once and kept in memory. */
import { fileURLToPath } from "node:url";

export const DEFAULT_STATIC_DIR = fileURLToPath(new URL("./static/", import.meta.url));

/** URL path -> file name in the static folder. */
export const STATIC_FILES: Record<string, string> = {
  "/": "index.html",
  "/index.html": "index.html",
  "/app.js": "app.js",
  "/style.css": "style.css",
};

const MIME: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
};

export const SECURITY_HEADERS = {
  "x-content-type-options": "nosniff",
  "content-security-policy":
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'",
  "referrer-policy": "no-referrer",
};

/** A function answering one static URL path (a key of STATIC_FILES) from `dir`. */
export function staticFiles(dir: string): (path: string) => Promise<Response> {
  const cache = new Map<string, Uint8Array<ArrayBuffer>>();
  return async (path) => {
    const file = STATIC_FILES[path];
    let bytes = cache.get(file);
    if (!bytes) {
      bytes = await Deno.readFile(`${dir}/${file}`);
      cache.set(file, bytes);
    }
    const ext = file.split(".").pop()!;
    return new Response(bytes, {
      headers: { "content-type": MIME[ext], "cache-control": "no-cache", ...SECURITY_HEADERS },
    });
  };
}
