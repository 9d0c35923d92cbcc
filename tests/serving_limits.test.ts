/**
 * The server's resource bounds under hostile load (issue 19, findings 1, 2 and the Host check),
 * each reproducing what once went wrong: huge-image uploads all admitted past `--queue`, a
 * timed-out request freeing its slot while its decode ran, /readyz saying "0 active", slow
 * bodies holding every slot, slow headers never closed, any Host header accepted.
 */
import assert from "node:assert/strict";
import sharp from "sharp";
import { type RunningServer, startServer } from "../lib/serving/server.ts";
import { fakeClassifier, rawRequest, readUntilClosed } from "./serving_fixtures.ts";

// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function withServer(
  opts: Partial<Parameters<typeof startServer>[0]>,
  fn: (s: RunningServer) => Promise<void>,
) {
  const server = await startServer({
    classifiers: [fakeClassifier("densenet121", "dn")],
    port: 0,
    ...opts,
  });
  try {
    await server.handler.ready;
    await fn(server);
  } finally {
    await server.close();
  }
}

/** A small file that is a big image: a flat 16-bit RGBA PNG (the decoder's worst case per byte). */
async function flatPng16(side: number): Promise<Uint8Array<ArrayBuffer>> {
  const buf = await sharp({
    create: {
      width: side,
      height: side,
      channels: 4,
      background: { r: 90, g: 90, b: 90, alpha: 1 },
    },
  }).toColourspace("rgb16").png({ compressionLevel: 9 }).toBuffer();
  return new Uint8Array(buf);
}

const postPng = (url: string, png: Uint8Array<ArrayBuffer>) =>
  fetch(`${url}/v1/predict`, {
    method: "POST",
    body: png,
    headers: { "content-type": "image/png" },
  })
    .then(async (r) => ({ status: r.status, json: await r.json() as Json }));

const readyz = async (url: string): Promise<Json> => await (await fetch(`${url}/readyz`)).json();

Deno.test("limits: with --concurrency 1 --queue 3, 24 big-image uploads mostly get 503", async () => {
  const png = await flatPng16(1500);
  const slow = fakeClassifier("densenet121", "slow", { delayMs: 150 });
  await withServer({ classifiers: [slow], maxConcurrent: 1, maxQueue: 3 }, async ({ url }) => {
    const pending = Array.from({ length: 24 }, () => postPng(url, png));
    await sleep(50);
    const during = await readyz(url);
    const results = await Promise.all(pending);
    const count = (s: number) => results.filter((r) => r.status === s).length;
    assert.deepEqual(count(200) + count(503), 24, JSON.stringify(results.map((r) => r.status)));
    assert.ok(count(503) >= 16, `only ${count(503)} of 24 got 503`);
    assert.deepEqual(results.find((r) => r.status === 503)!.json.error.code, "busy");
    // /readyz told the truth while they ran: one running, the queue bounded.
    assert.ok(during.active === 1 && during.queued <= 3, JSON.stringify(during));
    assert.deepEqual(slow.images, count(200), "every answer came from the model");
  });
});

Deno.test("limits: a 504 during the decode keeps its slot (and /readyz counts it)", async () => {
  const model = fakeClassifier("densenet121", "dn");
  const png = await flatPng16(3000); // 9 MP of 16-bit RGBA: its decode outlasts the 30 ms limit
  await withServer(
    { classifiers: [model], maxConcurrent: 1, maxQueue: 0, timeoutMs: 30 },
    async ({ url }) => {
      assert.deepEqual((await postPng(url, png)).status, 504);
      assert.deepEqual((await readyz(url)).active, 1, "the timed-out decode still holds its slot");
      const second = await postPng(url, png);
      assert.deepEqual(second.status, 503, "the slot is not handed out while the decode runs");
      for (let i = 0; i < 100 && (await readyz(url)).active > 0; i++) await sleep(50);
      assert.deepEqual((await readyz(url)).active, 0);
      assert.deepEqual(model.calls, 0, "past its deadline the work stopped before the model");
    },
  );
});

Deno.test("limits: a header claiming too many pixels is refused before any decode", async () => {
  const png = await flatPng16(3000); // 9 megapixels, over the 4 MP limit set here
  await withServer({ limits: { maxPixels: 4e6 } }, async ({ url }) => {
    const t = performance.now();
    const r = await postPng(url, png);
    assert.deepEqual(r.status, 422);
    assert.deepEqual(r.json.error.code, "image_too_large");
    assert.ok(performance.now() - t < 2000, "answered from the header");
  });
});

Deno.test({
  name: "limits: 70 slow bodies do not lock real requests out, and are cut at the deadline",
  sanitizeResources: false, // the trickling sockets are closed by the server, not by us
  fn: async () => {
    const png = await flatPng16(64);
    await withServer(
      { maxConcurrent: 1, maxQueue: 2, bodyTimeoutMs: 1500 },
      async ({ url, port }) => {
        const head = "POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
          "Content-Type: image/png\r\nContent-Length: 1000000\r\n\r\n";
        const slow = await Promise.all(Array.from({ length: 70 }, async () => {
          const c = await Deno.connect({ hostname: "127.0.0.1", port });
          await c.write(new TextEncoder().encode(head));
          return c;
        }));
        let stop = false;
        const trickle = (async () => {
          for (let i = 0; i < 40 && !stop; i++) {
            await Promise.all(slow.map((c) => c.write(Uint8Array.of(0x89)).catch(() => 0)));
            await sleep(100);
          }
        })();
        await sleep(300);
        assert.ok((await readyz(url)).uploads >= 60, "the slow uploads are being received");
        for (let i = 0; i < 5; i++) {
          const r = await postPng(url, png);
          assert.deepEqual(
            r.status,
            200,
            `real request ${i} during the trickle: ${JSON.stringify(r.json)}`,
          );
        }
        // Past the body deadline every trickler is answered 408 and disconnected.
        const answers = await Promise.all(slow.map((c) => readUntilClosed(c, 4000)));
        stop = true;
        await trickle;
        for (const c of slow) c.close();
        const timedOut = answers.filter((a) => a.startsWith("HTTP/1.1 408")).length;
        assert.equal(timedOut, 70, answers.find((a) => !a.startsWith("HTTP/1.1 408")) ?? "");
        assert.deepEqual((await readyz(url)).uploads, 0);
      },
    );
  },
});

Deno.test("limits: slow or missing headers are cut at the header deadline", async () => {
  await withServer({ connections: { headersTimeoutMs: 600 } }, async ({ port }) => {
    const idle = await Deno.connect({ hostname: "127.0.0.1", port });
    const slow = await Deno.connect({ hostname: "127.0.0.1", port });
    const t = performance.now();
    let stop = false;
    const trickle = (async () => {
      const bytes = new TextEncoder().encode("GET /healthz HTTP/1.1\r\nX-Pad: " + "a".repeat(100));
      for (let i = 0; i < bytes.length && !stop; i++) {
        await slow.write(bytes.subarray(i, i + 1)).catch(() => (stop = true));
        await sleep(50);
      }
    })();
    const [a, b] = await Promise.all([readUntilClosed(idle, 5000), readUntilClosed(slow, 5000)]);
    stop = true;
    await trickle;
    idle.close();
    slow.close();
    assert.ok(performance.now() - t < 4000, "closed well before the test's own bound");
    for (const text of [a, b]) assert.ok(text === "" || text.startsWith("HTTP/1.1 408"), text);
  });
});

Deno.test("limits: only loopback, IP literals and allowed host names pass the Host check", async () => {
  await withServer({ allowedHosts: ["cxr.lan"] }, async ({ port }) => {
    const get = (host: string) =>
      rawRequest(port, `GET /healthz HTTP/1.1\nHost: ${host}\nConnection: close\n`);
    for (const ok of [`127.0.0.1:${port}`, `localhost:${port}`, "[::1]", "cxr.lan:80", "CXR.LAN"]) {
      assert.deepEqual((await get(ok)).status, 200, ok);
    }
    for (const bad of ["evil.example", `evil.example:${port}`, "127.0.0.1.nip.io"]) {
      const r = await get(bad);
      assert.deepEqual(r.status, 421, bad);
      assert.deepEqual(JSON.parse(r.body).error.code, "bad_host");
    }
  });
});

Deno.test("limits: requests node's parser refuses get a JSON error, not a bare status", async () => {
  await withServer({ connections: { headersTimeoutMs: 600 } }, async ({ port }) => {
    const send = async (raw: string) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(new TextEncoder().encode(raw)).catch(() => {});
      const text = await readUntilClosed(conn, 5000);
      conn.close();
      const status = Number(text.match(/^HTTP\/1\.1 (\d+)/)?.[1] ?? 0);
      return { status, text, json: JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4)) as Json };
    };
    const bad = await send("GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n");
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.json.error.code, "bad_request");
    assert.match(bad.text, /content-type: application\/json/i);
    const big = await send(`GET /healthz HTTP/1.1\r\nX-Pad: ${"a".repeat(100_000)}\r\n\r\n`);
    assert.equal(big.status, 431, big.text);
    assert.equal(big.json.error.code, "headers_too_large");
    const slow = await send("GET /healthz HTTP/1.1\r\nX-Pad: a");
    assert.equal(slow.status, 408, slow.text);
    assert.equal(slow.json.error.code, "request_timeout");
  });
});

for (const batching of [null, { maxBatch: 16, windowMs: 10 }]) {
  Deno.test(
    `limits: a client that hangs up while queued frees its place; its image never reaches the model${
      batching ? " (batching)" : ""
    }`,
    async () => {
      const png = new Uint8Array(
        await sharp({ create: { width: 64, height: 64, channels: 3, background: "#777" } }).png()
          .toBuffer(),
      );
      const slow = fakeClassifier("densenet121", "slow", { delayMs: 400 });
      await withServer(
        { classifiers: [slow], maxConcurrent: 1, maxQueue: 3, batching },
        async ({ url }) => {
          const first = postPng(url, png); // holds the only slot for 400 ms
          await sleep(50);
          const gone = new AbortController();
          const second = fetch(`${url}/v1/predict`, {
            method: "POST",
            body: png,
            headers: { "content-type": "image/png" },
            signal: gone.signal,
          }).catch((e) => e);
          await sleep(100);
          gone.abort(); // while it waits for the slot (or its batch)
          assert.equal((await first).status, 200);
          assert.ok((await second) instanceof Error);
          await sleep(500); // long enough for the model to have run it, had it stayed
          assert.equal(slow.images, 1, "only the first image reached the model");
          const r = await readyz(url);
          assert.equal(r.queued, 0, JSON.stringify(r));
          assert.equal(r.active, 0, JSON.stringify(r));
        },
      );
    },
  );
}
