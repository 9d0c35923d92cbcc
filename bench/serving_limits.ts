/**
 * The server's bounds under hostile load (issue 19), each against a fresh server process so its
 * peak RSS (VmHWM) is its own:
 *  - 24 concurrent uploads of a small-file 7000x7000 16-bit RGBA PNG (49 MP, just under the
 *    50 MP limit: the decoder's worst case per byte), once with `--concurrency 1 --queue 3`
 *    (how many 503s) and once with the defaults (all admitted): peak RSS, goal < 1.5 GB;
 *  - 70 connections trickling a 1 MB body: real requests during the trickle (status, latency)
 *    against the same requests without it, and when the tricklers are cut (408).
 */
import sharp from "sharp";

export interface ServerProcess {
  url: string;
  child: Deno.ChildProcess;
}

export type StartServer = (extraArgs: string[]) => Promise<ServerProcess>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** VmHWM / VmRSS of a process in MB. */
export function rssMb(pid: number, field: "VmHWM" | "VmRSS" = "VmHWM"): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = status.match(new RegExp(`${field}:\\s+(\\d+) kB`));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Resolves when /readyz answers 200. */
export async function waitReady(url: string) {
  for (let i = 0; i < 600; i++) {
    try {
      const r = await fetch(`${url}/readyz`);
      await r.body?.cancel();
      if (r.ok) return;
    } catch { /* not yet */ }
    await sleep(200);
  }
  throw new Error("server not ready after 120 s");
}

/** Stops a server process and waits for it (nothing to do when it already exited). */
export async function stop(child: Deno.ChildProcess) {
  try {
    child.kill("SIGTERM");
  } catch { /* already gone */ }
  await child.status;
}

export async function hugePng(): Promise<Uint8Array<ArrayBuffer>> {
  const buf = await sharp({
    create: {
      width: 7000,
      height: 7000,
      channels: 4,
      background: { r: 90, g: 90, b: 90, alpha: 1 },
    },
    limitInputPixels: false,
  }).toColourspace("rgb16").png({ compressionLevel: 9 }).toBuffer();
  return new Uint8Array(buf);
}

async function post(url: string, body: Uint8Array<ArrayBuffer>, type = "image/png") {
  const t = performance.now();
  try {
    const res = await fetch(`${url}/v1/predict`, {
      method: "POST",
      body,
      headers: { "content-type": type },
    });
    await res.body?.cancel();
    return { status: res.status, ms: performance.now() - t };
  } catch {
    return { status: 0, ms: performance.now() - t };
  }
}

function tally(statuses: number[]): string {
  const counts = new Map<number, number>();
  for (const s of statuses) counts.set(s, (counts.get(s) ?? 0) + 1);
  return [...counts].sort().map(([s, n]) => `${n}x${s || "net-err"}`).join(" ");
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** 24 concurrent huge-PNG uploads; returns the rows for the table. */
export async function hugeUploads(
  start: StartServer,
  png: Uint8Array<ArrayBuffer>,
  args: string[],
) {
  const { url, child } = await start(args);
  try {
    await waitReady(url);
    const idle = rssMb(child.pid, "VmRSS");
    let maxActive = 0;
    let maxQueued = 0;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const r = await fetch(`${url}/readyz`).then((r) => r.json()).catch(() => ({}));
        maxActive = Math.max(maxActive, r.active ?? 0);
        maxQueued = Math.max(maxQueued, r.queued ?? 0);
        await sleep(100);
      }
    })();
    const t = performance.now();
    const results = await Promise.all(Array.from({ length: 24 }, () => post(url, png)));
    const secs = (performance.now() - t) / 1000;
    watching = false;
    await watch;
    return {
      statuses: tally(results.map((r) => r.status)),
      idle,
      peak: rssMb(child.pid),
      seconds: secs,
      readyz: `max active ${maxActive}, max queued ${maxQueued}`,
    };
  } finally {
    await stop(child);
  }
}

/** Real requests during 70 trickling uploads, against the same without them. */
export async function slowBodies(start: StartServer, jpeg: Uint8Array<ArrayBuffer>) {
  const bodyTimeoutMs = 5000;
  const { url, child } = await start(["--body-timeout-ms", String(bodyTimeoutMs)]);
  const port = Number(new URL(url).port);
  try {
    await waitReady(url);
    const real = async (n: number) => {
      const out = [];
      for (let i = 0; i < n; i++) out.push(await post(url, jpeg, "image/jpeg"));
      return out;
    };
    await real(3); // warm-up
    const before = await real(15);
    const head = new TextEncoder().encode(
      `POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n` +
        `Content-Length: 1000000\r\n\r\n`,
    );
    const conns = await Promise.all(Array.from({ length: 70 }, async () => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      await c.write(head);
      return c;
    }));
    const t0 = performance.now();
    const cutAt: number[] = [];
    const trickle = conns.map(async (c) => {
      const buf = new Uint8Array(64);
      const closed = c.read(buf).then((n) => n === null || n > 0, () => true);
      let done = false;
      closed.then(() => (done = true));
      while (!done && performance.now() - t0 < bodyTimeoutMs + 10_000) {
        await c.write(Uint8Array.of(0)).catch(() => (done = true));
        await Promise.race([closed, sleep(1000)]); // 1 byte/s
      }
      cutAt.push((performance.now() - t0) / 1000);
      c.close();
    });
    await sleep(500);
    const during = await real(15);
    await Promise.all(trickle);
    return {
      before: `${tally(before.map((r) => r.status))}, p50 ${
        median(before.map((r) => r.ms)).toFixed(1)
      } ms`,
      during: `${tally(during.map((r) => r.status))}, p50 ${
        median(during.map((r) => r.ms)).toFixed(1)
      } ms`,
      cut: `70 cut after ${Math.min(...cutAt).toFixed(1)}-${
        Math.max(...cutAt).toFixed(1)
      } s (limit ${bodyTimeoutMs / 1000} s)`,
    };
  } finally {
    await stop(child);
  }
}

/** Runs the three scenarios; returns [measure, value, goal] rows. */
export async function limitRows(
  start: StartServer,
  jpeg: Uint8Array<ArrayBuffer>,
): Promise<[string, string, string][]> {
  const png = await hugePng();
  const kb = (png.byteLength / 1024).toFixed(0);
  const tight = await hugeUploads(start, png, ["--concurrency", "1", "--queue", "3"]);
  const loose = await hugeUploads(start, png, []);
  const slow = await slowBodies(start, jpeg);
  const mb = (x: number) => x.toFixed(0);
  return [
    [
      `24 x 7000x7000 16-bit PNG (${kb} KB), --concurrency 1 --queue 3`,
      tight.statuses,
      "mostly 503",
    ],
    ["  /readyz during them", tight.readyz, "active <= 1, queued <= 3"],
    ["  server RSS idle / peak (MB)", `${mb(tight.idle)} / ${mb(tight.peak)}`, "peak < 1536"],
    ["24 x the same PNG, defaults (concurrency 2, queue 64)", loose.statuses, "-"],
    ["  /readyz during them", loose.readyz, "active <= 2"],
    ["  server RSS idle / peak (MB)", `${mb(loose.idle)} / ${mb(loose.peak)}`, "peak < 1536"],
    ["  wall time for the 24 (s)", loose.seconds.toFixed(1), "-"],
    ["15 real predictions, sequential, no trickle", slow.before, "all 200"],
    ["15 real predictions during 70 trickling 1 MB bodies", slow.during, "all 200"],
    ["  the trickling uploads", slow.cut, "cut with 408"],
  ];
}
