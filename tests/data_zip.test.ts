/** unzipFile: the archive's files under the destination, junk skipped, bad archives refused. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { zipSync } from "fflate";
import { unzipFile, ZipError } from "../lib/data/zip.ts";

const noise = (n: number, seed: number) =>
  Uint8Array.from({ length: n }, (_, i) => (Math.imul(i + seed, 2654435761) >>> 13) & 255);

async function withZip(
  files: Record<string, Uint8Array>,
  level: 0 | 6,
  fn: (zip: string, dir: string, bytes: Uint8Array) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "cxr-zip-" });
  try {
    const bytes = zipSync(files, { level });
    await Deno.writeFile(join(dir, "a.zip"), bytes);
    await fn(join(dir, "a.zip"), join(dir, "out"), bytes);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("unzipFile writes every file, deflated or stored, and skips Mac junk", async () => {
  for (const level of [0, 6] as const) {
    const big = noise(300_000, level);
    const text = new TextEncoder().encode("hello ".repeat(5000));
    await withZip(
      {
        "d/big.bin": big,
        "d/sub/t.txt": text,
        "__MACOSX/d/._big.bin": noise(10, 1),
      },
      level,
      async (zip, out) => {
        const r = await unzipFile(zip, out);
        assert.deepEqual([r.files, r.skipped, r.bytes], [2, 1, big.length + text.length]);
        assert.deepEqual(await Deno.readFile(join(out, "d/big.bin")), big);
        assert.deepEqual(await Deno.readFile(join(out, "d/sub/t.txt")), text);
      },
    );
  }
});

Deno.test("unzipFile refuses escaping entries, cut-short and non-zip files", async () => {
  await withZip({ "../evil.txt": noise(10, 2) }, 6, async (zip, out) => {
    await assert.rejects(() => unzipFile(zip, out), ZipError);
  });
  await withZip({ "a.bin": noise(200_000, 3) }, 0, async (zip, out, bytes) => {
    await Deno.writeFile(zip, bytes.subarray(0, bytes.length >> 1));
    await assert.rejects(() => unzipFile(zip, out), /cut short/);
    await Deno.writeFile(zip, new TextEncoder().encode("not a zip at all"));
    await assert.rejects(() => unzipFile(zip, out), /bad zip archive .*a\.zip: no entries/);
  });
});
