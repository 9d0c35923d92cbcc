/** What the serving tests share: a fake classifier reading the pixels, raw-socket HTTP. */
import type { Classifier } from "../lib/inference/classifier.ts";
import { brightnessClassifier } from "./fake_classifier.ts";

/**
 * The brightness classifier (fake_classifier.ts) with what these tests watch: a call count (ORT
 * calls: a batch is one), the images predicted, an optional delay, and a Grad-CAM activation
 * like the real ones return.
 */
export function fakeClassifier(
  net: Classifier["net"],
  id: string,
  opts: { delayMs?: number } = {},
): Classifier & { calls: number; images: number } {
  const base = brightnessClassifier({
    id,
    net,
    gradcamLayer: "relu",
    weights: { md5: "0123456789abcdef" },
  });
  const c = {
    ...base,
    calls: 0,
    images: 0,
    async predict(images: Float32Array, n: number) {
      c.calls++;
      c.images += n;
      if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
      const out = await base.predict(images, n);
      return {
        ...out,
        gradcam: { data: new Float32Array(n * 7 * 7 * 4).fill(1), shape: [n, 7, 7, 4] },
      };
    },
  };
  return c;
}

/** Everything the server sends on `conn` until it closes or `ms` pass ("" if nothing came). */
export async function readUntilClosed(conn: Deno.Conn, ms: number): Promise<string> {
  const buf = new Uint8Array(4096);
  let text = "";
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(buf).catch(() => null),
      new Promise<"late">((r) => (timer = setTimeout(() => r("late"), deadline - Date.now()))),
    ]);
    clearTimeout(timer);
    if (n === "late" || n === null) break;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return text;
}

/** One raw HTTP/1.1 request over a fresh socket; returns the status and the text after the head. */
export async function rawRequest(
  port: number,
  head: string,
  body: Uint8Array = new Uint8Array(0),
): Promise<{ status: number; body: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(head.replaceAll("\n", "\r\n") + "\r\n"));
    if (body.length) await conn.write(body);
    const text = await readUntilClosed(conn, 5000);
    const status = Number(text.match(/^HTTP\/1\.1 (\d+)/)?.[1] ?? 0);
    return { status, body: text.slice(text.indexOf("\r\n\r\n") + 4) };
  } finally {
    conn.close();
  }
}
