import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { referenceDir } from "../lib/util/paths.ts";
import { DownloadError, downloadFile } from "../lib/models/weights/download.ts";
import { exists } from "../lib/util/fs.ts";

const FILE = join(referenceDir(), "densenet121_formula_notop.h5");

interface Served {
  url: string;
  requests: { range: string | null }[];
  close: () => Promise<void>;
}

/**
 * A loopback server for `bytes` with Range support. The first `cutFirst` requests are cut after
 * `cutAfter` bytes of body (the connection is aborted with Content-Length still unmet).
 */
function serve(
  bytes: Uint8Array<ArrayBuffer>,
  opts: { cutFirst?: number; cutAfter?: number } = {},
): Served {
  const requests: { range: string | null }[] = [];
  let cuts = opts.cutFirst ?? 0;
  const quiet = { hostname: "127.0.0.1", port: 0, onListen() {}, onError: () => new Response() };
  const server = Deno.serve(quiet, (req) => {
    const range = req.headers.get("range");
    requests.push({ range });
    let start = 0;
    let status = 200;
    const headers = new Headers({ "content-type": "application/octet-stream" });
    const match = range?.match(/^bytes=(\d+)-$/);
    if (match) {
      start = Number(match[1]);
      if (start >= bytes.length) {
        headers.set("content-range", `bytes */${bytes.length}`);
        return new Response(null, { status: 416, headers });
      }
      status = 206;
      headers.set("content-range", `bytes ${start}-${bytes.length - 1}/${bytes.length}`);
    }
    const body = bytes.subarray(start);
    headers.set("content-length", String(body.length));
    if (cuts > 0) {
      cuts--;
      const sent = body.subarray(0, opts.cutAfter ?? body.length >> 1);
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(sent);
        },
        pull(controller) {
          controller.error(new Error("cut"));
        },
      });
      return new Response(stream, { status, headers });
    }
    return new Response(body, { status, headers });
  });
  const { port } = server.addr as Deno.NetAddr;
  return {
    url: `http://127.0.0.1:${port}/densenet/densenet121_formula_notop.h5`,
    requests,
    close: async () => {
      await server.shutdown();
    },
  };
}

async function withTempDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "cxr-download-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const bytes = await Deno.readFile(FILE);
const md5 = createHash("md5").update(bytes).digest("hex");

Deno.test("downloadFile: progress, md5 check, then the cache is reused without a request", async () => {
  const server = serve(bytes);
  try {
    await withTempDir(async (dir) => {
      const dest = join(dir, "sub", "w.h5");
      const lines: string[] = [];
      const first = await downloadFile(server.url, dest, {
        md5,
        progressOptions: { write: (t) => lines.push(t), plain: true, minIntervalMs: 0 },
      });
      assert.deepEqual(first, { path: dest, md5, resumed: false, cached: false });
      assert.deepEqual(await Deno.readFile(dest), bytes);
      assert.equal(await exists(`${dest}.part`), false);
      assert.ok(lines.length >= 2, lines.join(""));
      const last = lines.at(-1)!;
      assert.match(last, /download densenet121_formula_notop\.h5/);
      assert.match(last, /27\.7 MiB\/27\.7 MiB \(100%\)/);
      assert.equal(server.requests.length, 1);

      const second = await downloadFile(server.url, dest, { md5, progress: false });
      assert.deepEqual(second, { path: dest, md5, resumed: false, cached: true });
      assert.equal(server.requests.length, 1, "cached file must not be fetched again");
    });
  } finally {
    await server.close();
  }
});

Deno.test("downloadFile: resumes with a Range request after the connection is cut", async () => {
  const server = serve(bytes, { cutFirst: 1, cutAfter: 10_000_000 });
  try {
    await withTempDir(async (dir) => {
      const dest = join(dir, "w.h5");
      const result = await downloadFile(server.url, dest, {
        md5,
        progress: false,
        retryDelayMs: 0,
      });
      assert.equal(result.resumed, true);
      assert.equal(result.md5, md5);
      assert.deepEqual(await Deno.readFile(dest), bytes);
      assert.equal(server.requests.length, 2);
      assert.equal(server.requests[0].range, null);
      const resumedAt = Number(server.requests[1].range!.match(/^bytes=(\d+)-$/)![1]);
      assert.ok(resumedAt > 0 && resumedAt <= 10_000_000, `resumed at ${resumedAt}`);
    });
  } finally {
    await server.close();
  }
});

Deno.test("downloadFile: a .part left by an earlier run is resumed by the next call", async () => {
  const server = serve(bytes, { cutFirst: 2, cutAfter: 5_000_000 });
  try {
    await withTempDir(async (dir) => {
      const dest = join(dir, "w.h5");
      const error = await downloadFile(server.url, dest, {
        md5,
        progress: false,
        retries: 1,
        retryDelayMs: 0,
      })
        .then(() => null, (e) => e);
      assert.ok(error instanceof DownloadError, String(error));
      assert.match(error.message, /partial download kept in .*w\.h5\.part/);
      const partSize = (await Deno.stat(`${dest}.part`)).size;
      assert.ok(partSize >= 5_000_000 && partSize < bytes.length, `part ${partSize}`);
      assert.equal(await exists(dest), false);

      const result = await downloadFile(server.url, dest, { md5, progress: false });
      assert.equal(result.resumed, true);
      assert.deepEqual(await Deno.readFile(dest), bytes);
      assert.equal(server.requests.at(-1)!.range, `bytes=${partSize}-`);
    });
  } finally {
    await server.close();
  }
});

Deno.test("downloadFile: an md5 mismatch is rejected and the file is not kept", async () => {
  const server = serve(bytes);
  try {
    await withTempDir(async (dir) => {
      const dest = join(dir, "w.h5");
      const wrong = "0123456789abcdef0123456789abcdef";
      const error = await downloadFile(server.url, dest, { md5: wrong, progress: false })
        .then(() => null, (e) => e);
      assert.ok(error instanceof DownloadError, String(error));
      assert.match(error.message, new RegExp(`md5 mismatch: got ${md5}, expected ${wrong}`));
      assert.ok(error.message.includes(server.url) && error.message.includes(dest));
      assert.equal(await exists(dest), false);
      assert.equal(await exists(`${dest}.part`), false);

      // An existing file with the wrong md5 is never silently accepted.
      await Deno.writeFile(dest, bytes.subarray(0, 1000));
      const stale = await downloadFile(server.url, dest, { md5, progress: false })
        .then(() => null, (e) => e);
      assert.ok(stale instanceof DownloadError);
      assert.match(stale.message, /exists but its md5 is/);
    });
  } finally {
    await server.close();
  }
});

Deno.test("downloadFile: HTTP errors name the URL and the status", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("no", { status: 404 }),
  );
  try {
    await withTempDir(async (dir) => {
      const url = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}/missing.h5`;
      const error = await downloadFile(url, join(dir, "m.h5"), { progress: false })
        .then(() => null, (e) => e);
      assert.ok(error instanceof DownloadError);
      assert.match(error.message, /missing\.h5.*HTTP 404/);
    });
  } finally {
    await server.shutdown();
  }
});
