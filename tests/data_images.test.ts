import assert from "node:assert/strict";
import sharp from "sharp";
import { join } from "node:path";
import { decodeImage, ImageDecodeError, sha256Hex } from "../lib/data/images.ts";
import { loadBatches } from "../lib/data/loader.ts";
import { Progress } from "../lib/util/progress.ts";
import { sharedDir } from "../lib/util/paths.ts";
import { grayJpeg, put } from "./data_fixtures.ts";

const S = 224;

function pixel(data: Float32Array, x: number, y: number): number[] {
  const i = (y * S + x) * 3;
  return [data[i], data[i + 1], data[i + 2]];
}

Deno.test("decode: large 8-bit gray JPEG -> 224x224 RGB, Keras/PIL nearest pixels", async () => {
  // 1792x1344 = 8x6 times 224: PIL nearest picks source pixel (8x+4, 6y+3).
  const w = 1792, h = 1344;
  const bytes = await grayJpeg(w, h);
  const img = await decodeImage(bytes, S);
  assert.deepEqual([img.width, img.height, img.data.length], [w, h, S * S * 3]);
  assert.deepEqual(img.sha256, await sha256Hex(bytes));
  const gray = await sharp(bytes).toColourspace("b-w").raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual((await sharp(bytes).metadata()).channels, 1); // really a single-channel file
  assert.deepEqual(gray.info.channels, 1);
  for (const [x, y] of [[0, 0], [1, 0], [0, 1], [100, 57], [223, 223], [17, 200]]) {
    const v = gray.data[(6 * y + 3) * w + (8 * x + 4)];
    assert.deepEqual(pixel(img.data, x, y), [v, v, v], `pixel ${x},${y}`);
  }
  // Non-integer ratio and a smooth kernel still give 224x224x3 with equal channels.
  const odd = await decodeImage(await grayJpeg(1000, 700), S, { interpolation: "bilinear" });
  assert.deepEqual(odd.data.length, S * S * 3);
  assert.ok(pixel(odd.data, 50, 60).every((v, _, a) => v === a[0]));
});

Deno.test("decode: 16-bit gray PNG scales to 8 bits", async () => {
  const w = 300, h = 300;
  const px = new Uint16Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      px[y * w + x] = x < w / 2 ? 65535 : 257 * 100;
    }
  }
  const png = await sharp(px, { raw: { width: w, height: h, channels: 1 } })
    .toColourspace("grey16").png().toBuffer();
  assert.deepEqual((await sharp(png).metadata()).depth, "ushort");
  const img = await decodeImage(new Uint8Array(png), S);
  assert.deepEqual(pixel(img.data, 10, 10), [255, 255, 255]);
  assert.deepEqual(pixel(img.data, 200, 100), [100, 100, 100]);
});

Deno.test("decode: CMYK JPEG and RGBA PNG -> RGB", async () => {
  const w = 400, h = 250;
  const rgb = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) rgb.set([200, 40, 40], i * 3);
  const cmyk = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).toColourspace("cmyk")
    .jpeg()
    .toBuffer();
  assert.deepEqual((await sharp(cmyk).metadata()).space, "cmyk");
  const c = await decodeImage(new Uint8Array(cmyk), S);
  const [r, g, b] = pixel(c.data, 112, 112);
  assert.ok(r > 150 && g < 100 && b < 100, `red stays red: ${r},${g},${b}`);

  const rgba = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) rgba.set([10, 20, 30, i % 2 ? 0 : 255], i * 4);
  const png = await sharp(rgba, { raw: { width: w, height: h, channels: 4 } }).png().toBuffer();
  const a = await decodeImage(new Uint8Array(png), S);
  // Alpha is dropped, not composited (PIL convert("RGB")): even transparent pixels keep their colour.
  for (const [x, y] of [[0, 0], [1, 0], [111, 3], [223, 223]]) {
    assert.deepEqual(pixel(a.data, x, y), [10, 20, 30]);
  }
});

Deno.test("decode: a shared 224x224 JPEG is used as is (no resampling)", async () => {
  const path = join(sharedDir(), "data", "chest_xray", "train", "NORMAL", "IM-0115-0001.jpeg");
  const img = await decodeImage(path);
  assert.deepEqual(img.sha256, "7a84303b155885cc1cd5f94269d6335a110f389e8278d0c77c62adfb5ebac320");
  const raw = await sharp(path).raw().toBuffer();
  assert.deepEqual(Array.from(img.data), Array.from(raw));
});

Deno.test("decode: truncated, non-image, empty and missing files name the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cxr-img-" });
  try {
    const good = await grayJpeg(300, 200);
    const cases: [string, Uint8Array | string, string][] = [
      ["truncated.jpeg", good.subarray(0, Math.floor(good.length / 2)), "premature end"],
      ["text.jpeg", "this is not an image", "unsupported image format"],
      ["empty.jpeg", new Uint8Array(0), "empty file"],
    ];
    for (const [name, bytes, why] of cases) {
      const path = join(dir, name);
      await put(path, bytes);
      await assert.rejects(() => decodeImage(path), (e) => {
        assert.ok(e instanceof ImageDecodeError);
        assert.equal(e.file, path);
        assert.ok(e.message.includes(path) && e.message.toLowerCase().includes(why), e.message);
        return true;
      });
    }
    const missing = join(dir, "missing.jpeg");
    await assert.rejects(() => decodeImage(missing), (e) => {
      assert.ok(e instanceof ImageDecodeError);
      assert.ok(e.message.includes(missing), e.message);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadBatches: order kept, corrupt images skipped and counted, next batch decodes early", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cxr-load-" });
  try {
    const paths: string[] = [];
    for (let i = 0; i < 10; i++) {
      const path = join(dir, `img${i}.jpeg`);
      await put(
        path,
        i === 3
          ? "garbage"
          : i === 7
          ? (await grayJpeg(64, 64)).subarray(0, 200)
          : await grayJpeg(64 + i, 48, i),
      );
      paths.push(path);
    }
    // Items whose path reads are logged: shows when each image's decode started.
    const touched = new Set<number>();
    const items = paths.map((p, i) => ({
      id: i,
      get path() {
        touched.add(i);
        return p;
      },
    }));
    const lines: string[] = [];
    const progress = new Progress("decode", {
      total: items.length,
      unit: "img",
      plain: true,
      minIntervalMs: 0,
      write: (t) => lines.push(t),
    });
    const got: number[] = [];
    const failed: number[] = [];
    let batches = 0;
    for await (const batch of loadBatches(items, { batchSize: 4, prefetch: 1, progress })) {
      if (batches === 0) {
        assert.ok(touched.has(4), "batch 2 was started before batch 1 was handed over");
      }
      assert.deepEqual(batch.data.length, batch.items.length * S * S * 3);
      assert.deepEqual(batch.sha256.length, batch.items.length);
      got.push(...batch.items.map((it) => it.id));
      for (const f of batch.failed) {
        failed.push(f.item.id);
        assert.ok(f.error.includes(paths[f.item.id]), f.error);
      }
      batches++;
    }
    assert.deepEqual(batches, 3);
    assert.deepEqual(got, [0, 1, 2, 4, 5, 6, 8, 9]);
    assert.deepEqual(failed, [3, 7]);
    assert.ok(
      lines.at(-1)!.includes("10/10") && lines.at(-1)!.includes("failed=2"),
      lines.join(""),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
