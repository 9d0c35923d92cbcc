import { assert, assertEquals, assertRejects } from "./assert.ts";
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
      assertEquals(res.resumed, true);
      assertEquals(res.sha256, sha);
      assertEquals(res.bytes, zip.length);
      assertEquals(ranges, [null, `bytes=${cutAt}-`]);
      assertEquals(await Deno.readFile(dest), zip);
      assert(lines.some((l) => l.includes("download data.zip")), lines.join(""));
      // Already there and verified: not downloaded again.
      assertEquals(
        (await downloadResumable(url, dest, { sha256: sha, progress: false })).cached,
        true,
      );
      assertEquals(ranges.length, 2);

      const target = join(dir, "data", "chest_xray");
      const installed = await installArchive(dest, target, { progress: false });
      assertEquals(installed.notes, []);
      const scan = await scanDataset(target);
      assertEquals(scan.missingSplits, []);
      assertEquals(scan.items.length, 8);
      assertEquals(scan.items.filter((it) => it.split === "val").length, 2);
      assertEquals(scan.warnings, []); // no __MACOSX junk came along
      assertEquals((await Array.fromAsync(Deno.readDir(join(dir, "data")))).map((e) => e.name), [
        "chest_xray",
      ]); // scratch folder gone
      const e = await assertRejects(() => installArchive(dest, target, { progress: false }), Error);
      assert(e.message.includes(target) && e.message.includes("--force"), e.message);
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
      const e = await assertRejects(
        () => downloadResumable(url, dest, { sha256: "0".repeat(64), progress: false }),
        ChecksumError,
      );
      assert(e.message.includes("checksum mismatch") && e.message.includes(url), e.message);
      for (const p of [dest, `${dest}.part`]) {
        await assertRejects(() => Deno.stat(p), Deno.errors.NotFound);
      }
      // Through the CLI: exit 1, message on stderr, no dataset folder.
      const err: string[] = [];
      const target = join(dir, "data", "chest_xray");
      const code = await main(
        ["--url", url, "--sha256", "f".repeat(64), "--data", target, "--quiet"],
        { out: () => {}, err: (l) => err.push(l) },
      );
      assertEquals(code, 1);
      assert(err.join("\n").includes("checksum mismatch"), err.join("\n"));
      await assertRejects(() => Deno.stat(target), Deno.errors.NotFound);
      // HTTP errors name the URL.
      const e404 = await assertRejects(
        () =>
          downloadResumable(url.replace("data.zip", "nope.zip"), join(dir, "x.zip"), {
            progress: false,
          }),
        Error,
      );
      assert(e404.message.includes("HTTP 404") && e404.message.includes("nope.zip"), e404.message);
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
      assertEquals(code, 0, out.join("\n"));
      const scan = await scanDataset(target);
      assertEquals(scan.missingSplits, []);
      assertEquals(scan.items.filter((it) => it.split === "val").length, 16);
      assert(out.some((l) => l.includes("created val/")), out.join("\n"));
      await assertRejects(() => Deno.stat(join(dir, "data", "data.zip")), Deno.errors.NotFound); // archive removed

      const err: string[] = [];
      const bad = { out: () => {}, err: (l: string) => err.push(l) };
      assertEquals(await main(["--bogus"], bad), 2);
      assert(
        err.join("\n").includes("--bogus") && err.join("\n").includes("usage:"),
        err.join("\n"),
      );
      assertEquals(await main(["--source", "ftp"], bad), 2);
      assert(err.join("\n").includes("--source"), err.join("\n"));
      assertEquals(await main(["--url", url, "--data", target, "--quiet"], bad), 1); // exists, no --force
      assert(err.at(-1)!.includes(target) && err.at(-1)!.includes("--force"), err.at(-1));
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
