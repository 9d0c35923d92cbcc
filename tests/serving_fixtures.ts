/** What the serving tests share: a fake classifier reading the pixels, raw-socket HTTP. */
import type { Classifier } from "../lib/inference/classifier.ts";

/** P(pneumonia) = mean brightness, so different images give different answers. */
export function fakeClassifier(
  net: Classifier["net"],
  id: string,
  opts: { delayMs?: number } = {},
): Classifier & { calls: number } {
  const c = {
    id,
    net,
    calls: 0,
    threshold: { method: "sens95", value: 0.5, val_sensitivity: 0.95, val_specificity: 0.7 },
    weights: { label: "formula (not ImageNet)", md5: "0123456789abcdef", isImageNet: false },
    gradcamLayer: "relu",
    runDir: null,
    meta: {} as Classifier["meta"],
    async predict(images: Float32Array, n: number) {
      c.calls++;
      if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
      let s = 0;
      for (const v of images) s += v;
      return {
        prob: Float32Array.of(s / images.length / 255),
        gradcam: { data: new Float32Array(7 * 7 * 4).fill(1), shape: [n, 7, 7, 4] },
      };
    },
    async close() {},
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
