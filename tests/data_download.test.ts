import assert from "node:assert/strict";
import { zipSync } from "fflate";
import { join } from "node:path";
import {
  ChecksumError,
  downloadResumable,
  installArchive,
  KAGGLE_VAL_FILES,
} from "../lib/data/download.ts";
import { scanDataset } from "../lib/data/dataset.ts";
import { sha256Hex } from "../lib/data/images.ts";
import { main } from "../lib/cli/data_download.ts";
import { grayJpeg } from "./data_fixtures.ts";

/** A zip in the Kaggle layout (plus Mac junk), with one incompressible entry so cuts land mid-file. */
async function buildZip(withVal: boolean): Promise<Uint8Array> {
  const files: Record<string, Uint8Array | [Uint8Array, { level: 0 }]> = {};
  const jpeg = await grayJpeg(32, 32);
  files["chest_xray/train/NORMAL/IM-0001-0001.jpeg"] = jpeg;
  files["chest_xray/train/NORMAL/IM-0001-0002.jpeg"] = [jpeg, { level: 0 }]; // stored entry
  files["chest_xray/train/PNEUMONIA/person1_bacteria_1.jpeg"] = jpeg;
  files["chest_xray/test/NORMAL/IM-0009-0001.jpeg"] = jpeg;
  files["chest_xray/test/PNEUMONIA/person9_virus_3.jpeg"] = jpeg;
  const noise = new Uint8Array(96 * 1024);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 13 & 0xff;
  files["chest_xray/train/PNEUMONIA/person2_virus_4.jpeg"] = noise; // corrupt image: still unpacked
  files["__MACOSX/chest_xray/._IM-0001-0001.jpeg"] = new Uint8Array([0, 5, 22, 7]);
  if (withVal) {
    files["chest_xray/val/NORMAL/NORMAL2-IM-1427-0001.jpeg"] = jpeg;
    files["chest_xray/val/PNEUMONIA/person1946_bacteria_4874.jpeg"] = jpeg;
  } else {
    // Mendeley layout: no val/, the 16 Kaggle val images sit in train/.
    for (const rel of KAGGLE_VAL_FILES) files[`chest_xray/train/${rel}`] = jpeg;
  }
  return zipSync(files, { level: 6 });
}

/** Serves `zip` at /data.zip with Range support; the first full GET is cut after `cutAt` bytes. */
function serve(zip: Uint8Array, cutAt: number | null) {
  const ranges: (string | null)[] = [];
  let cut = cutAt !== null;
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    onError: () => new Response("error", { status: 500 }), // the deliberate cut is not news
  }, (req) => {
    const range = req.headers.get("range");
    ranges.push(range);
    if (new URL(req.url).pathname !== "/data.zip") {
      return new Response("not found", { status: 404 });
    }
    if (range) {
      const start = Number(/bytes=(\d+)-/.exec(range)![1]);
      if (start >= zip.length) return new Response(null, { status: 416 });
      return new Response(zip.slice(start), {
        status: 206,
        headers: { "content-range": `bytes ${start}-${zip.length - 1}/${zip.length}` },
      });
    }
    if (cut) {
      cut = false;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(zip.slice(0, cutAt!));
          setTimeout(() => controller.error(new Error("connection cut")), 20);
        },
      });
      return new Response(body, { headers: { "content-length": String(zip.length) } });
    }
    return new Response(new Uint8Array(zip));
  });
  const url = `http://127.0.0.1:${server.addr.port}/data.zip`;
  return { server, url, ranges };
}

Deno.test({
  name: "download: progress, resume after a cut connection, checksum, unpack",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "cxr-dl-" });
    const zip = await buildZip(true);
    const sha = await sha256Hex(zip);
    const cutAt = Math.floor(zip.length * 0.6);
    const { server, url, ranges } = serve(zip, cutAt);
    try {
      const lines: string[] = [];
      const dest = join(dir, "data.zip");
      const res = await downloadResumable(url, dest, {
        sha256: sha,
        retryDelayMs: 10,
        progress: { write: (t) => lines.push(t) },
      });
      assert.deepEqual(res.resumed, true);
      assert.deepEqual(res.sha256, sha);
      assert.deepEqual(res.bytes, zip.length);
      assert.deepEqual(ranges, [null, `bytes=${cutAt}-`]);
      assert.deepEqual(await Deno.readFile(dest), zip);
      assert.ok(lines.some((l) => l.includes("download data.zip")), lines.join(""));
      // Already there and verified: not downloaded again.
      assert.deepEqual(
        (await downloadResumable(url, dest, { sha256: sha, progress: false })).cached,
        true,
      );
      assert.deepEqual(ranges.length, 2);

      const target = join(dir, "data", "chest_xray");
      const installed = await installArchive(dest, target, { progress: false });
      assert.deepEqual(installed.notes, []);
      const scan = await scanDataset(target);
      assert.deepEqual(scan.missingSplits, []);
      assert.deepEqual(scan.items.length, 8);
      assert.deepEqual(scan.items.filter((it) => it.split === "val").length, 2);
      assert.deepEqual(scan.warnings, []); // no __MACOSX junk came along
      assert.deepEqual(
        (await Array.fromAsync(Deno.readDir(join(dir, "data")))).map((e) => e.name),
        [
          "chest_xray",
        ],
      ); // scratch folder gone
      await assert.rejects(() => installArchive(dest, target, { progress: false }), (e) => {
        assert.ok(e instanceof Error);
        assert.ok(e.message.includes(target) && e.message.includes("--force"), e.message);
        return true;
      });
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "download: a checksum mismatch is rejected and nothing is installed",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "cxr-dl-" });
    const zip = await buildZip(true);
    const { server, url } = serve(zip, null);
    try {
      const dest = join(dir, "data.zip");
      await assert.rejects(
        () => downloadResumable(url, dest, { sha256: "0".repeat(64), progress: false }),
        (e) => {
          assert.ok(e instanceof ChecksumError);
          assert.ok(e.message.includes("checksum mismatch") && e.message.includes(url), e.message);
          return true;
        },
      );
      for (const p of [dest, `${dest}.part`]) {
        await assert.rejects(() => Deno.stat(p), Deno.errors.NotFound);
      }
      // Through the CLI: exit 1, message on stderr, no dataset folder.
      const err: string[] = [];
      const target = join(dir, "data", "chest_xray");
      const code = await main(
        ["--url", url, "--sha256", "f".repeat(64), "--data", target, "--quiet"],
        { out: () => {}, err: (l) => err.push(l) },
      );
      assert.deepEqual(code, 1);
      assert.ok(err.join("\n").includes("checksum mismatch"), err.join("\n"));
      await assert.rejects(() => Deno.stat(target), Deno.errors.NotFound);
      // HTTP errors name the URL.
      await assert.rejects(
        () =>
          downloadResumable(url.replace("data.zip", "nope.zip"), join(dir, "x.zip"), {
            progress: false,
          }),
        /HTTP 404.*nope\.zip|nope\.zip.*HTTP 404/,
      );
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "data:download CLI: Mendeley-style archive gets the Kaggle val split; bad flags exit 2",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "cxr-dl-" });
    const zip = await buildZip(false);
    const { server, url } = serve(zip, null);
    try {
      const out: string[] = [];
      const target = join(dir, "data", "chest_xray");
      const io = { out: (l: string) => out.push(l), err: (l: string) => out.push(l) };
      const code = await main([
        "--url",
        url,
        "--sha256",
        await sha256Hex(zip),
        "--data",
        target,
        "--quiet",
      ], io);
      assert.deepEqual(code, 0, out.join("\n"));
      const scan = await scanDataset(target);
      assert.deepEqual(scan.missingSplits, []);
      assert.deepEqual(scan.items.filter((it) => it.split === "val").length, 16);
      assert.ok(out.some((l) => l.includes("created val/")), out.join("\n"));
      await assert.rejects(() => Deno.stat(join(dir, "data", "data.zip")), Deno.errors.NotFound); // archive removed

      const err: string[] = [];
      const bad = { out: () => {}, err: (l: string) => err.push(l) };
      assert.deepEqual(await main(["--bogus"], bad), 2);
      assert.ok(
        err.join("\n").includes("--bogus") && err.join("\n").includes("usage:"),
        err.join("\n"),
      );
      assert.deepEqual(await main(["--source", "ftp"], bad), 2);
      assert.ok(err.join("\n").includes("--source"), err.join("\n"));
      assert.deepEqual(await main(["--url", url, "--data", target, "--quiet"], bad), 1); // exists, no --force
      assert.ok(err.at(-1)!.includes(target) && err.at(-1)!.includes("--force"), err.at(-1)!);
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
