/**
 * Load test of `deno task serve` on 127.0.0.1: 1,000 mixed good/bad requests at 16-way
 * concurrency against a server subprocess, plus sequential passes (one request at a time) for
 * per-image latency with and without Grad-CAM. Prints p50/p95 latency, throughput, errors,
 * server crashes and the server's peak RSS next to the goals (p50 <= 80 ms per image for one
 * net, 0 crashes). Then batching: the same server with `--max-batch 1` (each request alone) and
 * with the default batching, one after the other in this run: sequential p50, throughput of
 * good JPEGs at 16-way concurrency, images per ORT call and peak RSS, and the ratio
 * batched/unbatched (goal >= 1.8), printed with the load average before and after.
 *
 *   deno run -A bench/serving.ts [--run <run-id|dir>] [--requests 1000] [--concurrency 16]
 *                                [--batch-requests 192] [--batching-only] [--baseline <checkout>]
 * --baseline adds the server of another checkout (e.g. main before a change, its own defaults)
 * to the batching table, so "today's" throughput is measured in the same run too.
 * Without --run it serves the DenseNet121 demo classifier (formula weights, not ImageNet).
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { sharedDir } from "../lib/util/paths.ts";
import { limitRows, rssMb, type ServerProcess, stop, waitReady } from "./serving_limits.ts";
import { loadAverage, printTable } from "./anchors.ts";

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    run: { type: "string" },
    requests: { type: "string", default: "1000" },
    concurrency: { type: "string", default: "16" },
    "limits-only": { type: "boolean", default: false },
    "batching-only": { type: "boolean", default: false },
    "batch-requests": { type: "string", default: "192" },
    baseline: { type: "string" },
  },
});
const TOTAL = Number(values.requests);
const CONCURRENCY = Number(values.concurrency);
const TRAIN = join(sharedDir(), "data", "chest_xray", "train");

function pool(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const cls of ["NORMAL", "PNEUMONIA"]) {
    const names = [...Deno.readDirSync(join(TRAIN, cls))].map((e) => e.name).sort().slice(0, 25);
    for (const n of names) out.push(Deno.readFileSync(join(TRAIN, cls, n)));
  }
  return out;
}

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

interface Kind {
  name: string;
  expect: number;
  make(img: Uint8Array): { init: RequestInit; query: string };
}

const raw = (
  body: BodyInit,
  type = "image/jpeg",
  query = "",
): { init: RequestInit; query: string } => ({
  init: { method: "POST", body, headers: { "content-type": type } },
  query,
});

const KINDS: { kind: Kind; weight: number }[] = [
  {
    kind: {
      name: "good raw jpeg",
      expect: 200,
      make: (img) => raw(img as Uint8Array<ArrayBuffer>),
    },
    weight: 50,
  },
  {
    kind: {
      name: "good multipart",
      expect: 200,
      make: (img) => {
        const form = new FormData();
        form.append(
          "image",
          new Blob([img as Uint8Array<ArrayBuffer>], { type: "image/jpeg" }),
          "x.jpeg",
        );
        return { init: { method: "POST", body: form }, query: "" };
      },
    },
    weight: 30,
  },
  { kind: { name: "empty body", expect: 400, make: () => raw(new Uint8Array(0)) }, weight: 4 },
  {
    kind: { name: "not an image", expect: 400, make: () => raw("plain text, not a picture") },
    weight: 4,
  },
  {
    kind: {
      name: "truncated jpeg",
      expect: 400,
      make: (img) => raw(img.slice(0, img.length >> 1) as Uint8Array<ArrayBuffer>),
    },
    weight: 4,
  },
  {
    kind: {
      name: "wrong content type",
      expect: 415,
      make: (img) => raw(img as Uint8Array<ArrayBuffer>, "text/plain"),
    },
    weight: 4,
  },
  {
    kind: {
      name: "unknown model",
      expect: 404,
      make: (img) => raw(img as Uint8Array<ArrayBuffer>, "image/jpeg", "?model=alexnet"),
    },
    weight: 4,
  },
];

function pickKind(i: number): Kind {
  // Deterministic interleaving by weight.
  const total = KINDS.reduce((s, k) => s + k.weight, 0);
  let r = (i * 37) % total;
  for (const k of KINDS) {
    if (r < k.weight) return k.kind;
    r -= k.weight;
  }
  return KINDS[0].kind;
}

async function startServerProcess(
  extraArgs: string[] = [],
  checkout = join(import.meta.dirname!, ".."),
): Promise<ServerProcess> {
  const args = [
    "run",
    "-A",
    join(checkout, "lib", "cli", "serve.ts"),
    "--port",
    "0",
    "--quiet",
    ...extraArgs,
  ];
  if (values.run) args.push("--run", values.run);
  else args.push("--demo");
  const child = new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "inherit" })
    .spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (true) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`server exited before listening:\n${text}`);
    text += value;
    const m = text.match(/serving on (http:\/\/[^/\s]+)/);
    if (m) {
      // Keep draining stdout so the child never blocks on a full pipe.
      (async () => {
        while (!(await reader.read()).done) { /* drain */ }
      })();
      return { url: m[1], child };
    }
  }
}

async function sequential(url: string, imgs: Uint8Array[], n: number, query: string) {
  const wall: number[] = [];
  const model: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const res = await fetch(
      `${url}/v1/predict${query}`,
      raw(imgs[i % imgs.length] as Uint8Array<ArrayBuffer>).init,
    );
    const body = await res.json();
    wall.push(performance.now() - t);
    if (res.ok) model.push(body.results[0].latency_ms);
  }
  return { wall, model };
}

/** The throughput and latency table (1,000 mixed requests and the sequential passes). */
async function throughput(imgs: Uint8Array[]) {
  const { url, child } = await startServerProcess();
  let crashed = false;
  child.status.then((s) => {
    if (!s.success && !s.signal) crashed = true;
  });
  try {
    await waitReady(url);
    // Warm-up (ORT first runs, Grad-CAM tail build).
    await sequential(url, imgs, 3, "");
    await sequential(url, imgs, 2, "?explain=gradcam");

    const seq = await sequential(url, imgs, 40, "");
    const seqGc = await sequential(url, imgs, 20, "?explain=gradcam");

    const latency: Record<string, number[]> = {};
    const modelMs: number[] = [];
    const unexpected: Record<string, number> = {};
    let busy = 0;
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < TOTAL) {
        const i = next++;
        const kind = pickKind(i);
        const { init, query } = kind.make(imgs[i % imgs.length]);
        const t = performance.now();
        let status = 0;
        try {
          const res = await fetch(`${url}/v1/predict${query}`, init);
          const body = await res.json();
          status = res.status;
          if (status === 200) modelMs.push(body.results[0].latency_ms);
        } catch (e) {
          unexpected[`network error: ${(e as Error).message}`] =
            (unexpected[`network error: ${(e as Error).message}`] ?? 0) + 1;
          continue;
        }
        (latency[kind.name] ??= []).push(performance.now() - t);
        if (status === 503) busy++;
        else if (status !== kind.expect) {
          const k = `${kind.name}: got ${status}, expected ${kind.expect}`;
          unexpected[k] = (unexpected[k] ?? 0) + 1;
        }
      }
    }));
    const seconds = (performance.now() - t0) / 1000;
    const health = await fetch(`${url}/healthz`).then((r) => r.ok).catch(() => false);
    const rss = rssMb(child.pid);
    const good = [...(latency["good raw jpeg"] ?? []), ...(latency["good multipart"] ?? [])];
    const bad = Object.entries(latency).filter(([k]) => !k.startsWith("good")).flatMap(([, v]) =>
      v
    );
    const errors = Object.values(unexpected).reduce((s, v) => s + v, 0);
    const f = (x: number) => x.toFixed(1);
    const rows: [string, string, string][] = [
      ["sequential, 1 net: p50 model latency (ms)", f(quantile(seq.model, 0.5)), "<= 80"],
      [
        "sequential, 1 net: p50 / p95 end-to-end (ms)",
        `${f(quantile(seq.wall, 0.5))} / ${f(quantile(seq.wall, 0.95))}`,
        "<= 80 (p50)",
      ],
      [
        "sequential + Grad-CAM: p50 / p95 end-to-end (ms)",
        `${f(quantile(seqGc.wall, 0.5))} / ${f(quantile(seqGc.wall, 0.95))}`,
        "-",
      ],
      [
        `${TOTAL} mixed @ ${CONCURRENCY}: good p50 / p95 (ms)`,
        `${f(quantile(good, 0.5))} / ${f(quantile(good, 0.95))}`,
        "queueing included",
      ],
      [
        `${TOTAL} mixed @ ${CONCURRENCY}: bad p50 / p95 (ms)`,
        `${f(quantile(bad, 0.5))} / ${f(quantile(bad, 0.95))}`,
        "-",
      ],
      [
        `${TOTAL} mixed @ ${CONCURRENCY}: model latency p50 (ms)`,
        f(quantile(modelMs, 0.5)),
        "<= 80",
      ],
      ["throughput (req/s; good img/s)", `${f(TOTAL / seconds)}; ${f(good.length / seconds)}`, "-"],
      ["unexpected statuses / network errors", String(errors), "0"],
      ["503 busy", String(busy), "0 at queue 64"],
      ["server crashes", crashed || !health ? "1" : "0", "0"],
      ["server peak RSS (MB)", f(rss), "-"],
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    console.log(
      `\nserving benchmark (${
        values.run ?? "demo DenseNet121, formula weights, not ImageNet"
      }; ${navigator.hardwareConcurrency} CPUs)`,
    );
    console.log(`${"measure".padEnd(w)}  ${"value".padStart(16)}  goal`);
    for (const [k, v, g] of rows) console.log(`${k.padEnd(w)}  ${v.padStart(16)}  ${g}`);
    for (const [k, v] of Object.entries(unexpected)) console.log(`  unexpected: ${k} x${v}`);
  } finally {
    await stop(child);
  }
}

/** The bounds under hostile load (bench/serving_limits.ts). */
async function limits(imgs: Uint8Array[]) {
  const rows = await limitRows(startServerProcess, imgs[0] as Uint8Array<ArrayBuffer>);
  const w = Math.max(...rows.map((r) => r[0].length));
  const v = Math.max(...rows.map((r) => r[1].length));
  console.log(
    `\nserving under hostile load (demo DenseNet121; ${navigator.hardwareConcurrency} CPUs)`,
  );
  console.log(`${"measure".padEnd(w)}  ${"value".padEnd(v)}  goal`);
  for (const [k, val, g] of rows) console.log(`${k.padEnd(w)}  ${val.padEnd(v)}  ${g}`);
  console.log(`load average: ${Deno.readTextFileSync("/proc/loadavg").trim()}`);
}

/** Good JPEGs only, `CONCURRENCY` at a time against `url`: img/s and every request's latency. */
async function goodLoad(url: string, imgs: Uint8Array[], total: number) {
  let next = 0;
  let failed = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < total) {
      const i = next++;
      const res = await fetch(
        `${url}/v1/predict`,
        raw(imgs[i % imgs.length] as Uint8Array<ArrayBuffer>).init,
      );
      await res.body?.cancel();
      if (res.status !== 200) failed++;
    }
  }));
  return { imgPerSec: total / ((performance.now() - t0) / 1000), failed };
}

/** One server, batched or not: sequential p50, 16-way throughput, peak RSS. */
async function batchingPass(imgs: Uint8Array[], maxBatch: number | null, checkout?: string) {
  const args = maxBatch === null ? [] : ["--max-batch", String(maxBatch)];
  const { url, child } = await startServerProcess(args, checkout);
  try {
    await waitReady(url);
    await sequential(url, imgs, 3, "");
    await goodLoad(url, imgs, CONCURRENCY); // warm-up: ORT's first batch of each size
    const seq = await sequential(url, imgs, 30, "");
    const before = (await (await fetch(`${url}/readyz`)).json()).batching ?? null;
    const load = await goodLoad(url, imgs, Number(values["batch-requests"]));
    const after = (await (await fetch(`${url}/readyz`)).json()).batching ?? null;
    // Images per ORT call during the 16-way load (1 when batching is off).
    const perCall = after ? (after.images - before.images) / (after.batches - before.batches) : 1;
    return { p50: quantile(seq.wall, 0.5), ...load, perCall, rss: rssMb(child.pid) };
  } finally {
    await stop(child);
  }
}

/** Batched vs unbatched in the same run: the ratio is the figure, absolute ones sit by the load. */
async function batching(imgs: Uint8Array[]) {
  const before = loadAverage();
  const base = values.baseline ? await batchingPass(imgs, null, values.baseline) : null;
  const off = await batchingPass(imgs, 1);
  const on = await batchingPass(imgs, 16);
  const after = loadAverage();
  if (base) {
    console.log(
      `\nbaseline ${values.baseline} (its own defaults): ${
        base.imgPerSec.toFixed(1)
      } img/s at ${CONCURRENCY}-way, sequential p50 ${base.p50.toFixed(1)} ms, peak RSS ${
        base.rss.toFixed(1)
      } MB; batched/baseline ${(on.imgPerSec / base.imgPerSec).toFixed(2)} (goal >= 1.8)`,
    );
  }
  const f = (x: number) => x.toFixed(1);
  console.log(
    `\nbatching (${values.run ?? "demo DenseNet121"}; ${
      values["batch-requests"]
    } good JPEGs at ${CONCURRENCY}-way; unbatched = --max-batch 1, batched = default 16 / 10 ms)`,
  );
  printTable([
    ["measure", "unbatched", "batched", "batched/unbatched", "goal"],
    [
      `throughput @ ${CONCURRENCY} (img/s)`,
      f(off.imgPerSec),
      f(on.imgPerSec),
      (on.imgPerSec / off.imgPerSec).toFixed(2),
      ">= 1.8",
    ],
    [
      "sequential p50 end-to-end (ms)",
      f(off.p50),
      f(on.p50),
      (on.p50 / off.p50).toFixed(2),
      "~1 (<= 80 ms quiet)",
    ],
    ["images per ORT call @ 16", f(off.perCall), f(on.perCall), "-", "<= 16"],
    ["server peak RSS (MB)", f(off.rss), f(on.rss), (on.rss / off.rss).toFixed(2), "bounded"],
    ["non-200 answers", String(off.failed), String(on.failed), "-", "0"],
  ]);
  console.log(`ratios from one run; load average before ${before}, after ${after}`);
}

const imgs = pool();
if (values["batching-only"]) {
  await batching(imgs);
} else {
  if (!values["limits-only"]) {
    await throughput(imgs);
    await batching(imgs);
  }
  await limits(imgs);
}
