/**
 * The shared DICOM corpus, file by file as its MANIFEST.tsv says, through the one image path
 * (decodeImage) that datasets, evaluate --data, the API and the notebooks use.
 */
import assert from "node:assert/strict";
import sharp from "sharp";
import { join } from "node:path";
import { decodeImage, ImageDecodeError } from "../lib/data/images.ts";
import { decodeDicom, decodeRle, inflateCapped, toDisplayGrey } from "../lib/data/dicom.ts";
import { deflateSync } from "fflate";
import { scanDataset } from "../lib/data/dataset.ts";
import { readLabelledFolder } from "../lib/data/labelled.ts";
import { corpusRows, DICOM_DIR, hasCorpus } from "./dicom_fixtures.ts";

async function expectedGrey(label: string): Promise<Uint8Array> {
  const name = label === "NORMAL" ? "normal.png" : "pneumonia.png";
  const { data } = await sharp(join(DICOM_DIR, "expected", name)).toColourspace("b-w").raw()
    .toBuffer({ resolveWithObject: true });
  return new Uint8Array(data);
}

/** Max and mean |difference| of channel 0 of the RGB float image against the expected grey. */
function diff(rgb: Float32Array, grey: Uint8Array): { max: number; mean: number } {
  let max = 0, sum = 0;
  for (let i = 0; i < grey.length; i++) {
    const d = Math.abs(rgb[i * 3] - grey[i]);
    if (d > max) max = d;
    sum += d;
  }
  return { max, mean: sum / grey.length };
}

/** What the MANIFEST note allows: exact, within 2 grey levels, or a mean difference under 2. */
function tolerance(note: string): { max?: number; mean?: number } {
  if (/exactly/.test(note)) return { max: 0 };
  if (/within 2 grey levels/.test(note)) return { max: 2 };
  if (/mean abs diff < 2/.test(note)) return { mean: 2 };
  return { max: 4, mean: 1.5 }; // "close to"
}

Deno.test({
  name: "DICOM corpus: every file decodes or fails as MANIFEST.tsv says",
  ignore: !hasCorpus,
  fn: async () => {
    const rows = corpusRows();
    assert.deepEqual(rows.length, 16);
    for (const row of rows) {
      const path = join(DICOM_DIR, row.file);
      if (row.expect === "error") {
        let err: unknown = null;
        try {
          await decodeImage(path, 224);
        } catch (e) {
          err = e;
        }
        assert.ok(err instanceof ImageDecodeError, `${row.file}: expected an ImageDecodeError`);
        assert.ok(
          err.dicom !== null || row.file === "not_dicom.dcm",
          `${row.file}: ${err.message}`,
        );
        assert.ok(err.message.includes(path), `${row.file}: the error names the file`);
        assert.ok(!err.message.includes("\n"), `${row.file}: one line`);
        continue;
      }
      const img = await decodeImage(path, 224);
      assert.ok(img.dicom, `${row.file}: DICOM tags reported`);
      if (row.expect === "warn") {
        assert.deepEqual(img.dicom.tags.modality, "CT");
        assert.deepEqual(img.dicom.tags.bodyPartExamined, "ABDOMEN");
        continue;
      }
      const grey = await expectedGrey(row.label);
      const d = diff(img.data, grey);
      const tol = tolerance(row.note);
      if (tol.max !== undefined) assert.ok(d.max <= tol.max, `${row.file}: max diff ${d.max}`);
      if (tol.mean !== undefined) assert.ok(d.mean < tol.mean, `${row.file}: mean diff ${d.mean}`);
      if (row.expect === "error-or-first-frame") {
        assert.deepEqual(img.dicom.tags.frames, 3);
        assert.ok(img.dicom.warnings.some((w) => /frame 1/.test(w)), "says frame 1 is used");
      }
    }
  },
});

Deno.test({
  name: "DICOM corpus: tags, windows and error codes",
  ignore: !hasCorpus,
  fn: async () => {
    const read = (f: string) => Deno.readFile(join(DICOM_DIR, f));
    const win = await decodeDicom(await read("mono2_12bit_window.dcm"));
    assert.deepEqual(win.tags.window, {
      center: 2048,
      width: 4096,
      function: "LINEAR",
      source: "tags",
    });
    assert.deepEqual([win.tags.bitsStored, win.tags.modality], [12, "CR"]);
    const inv = await decodeDicom(await read("mono1_12bit_inverted.dcm"));
    assert.deepEqual(inv.tags.photometricInterpretation, "MONOCHROME1");
    const none = await decodeDicom(await read("mono2_12bit_nowindow.dcm"));
    assert.deepEqual(none.tags.window.source, "pixel range");
    const rgb = await decodeDicom(await read("rgb_secondary_capture.dcm"));
    assert.deepEqual([rgb.channels, rgb.tags.photometricInterpretation], [3, "RGB"]);
    const j2k = await decodeDicom(await read("mono2_jpeg2000_lossless.dcm"));
    assert.deepEqual(j2k.tags.transferSyntax.name, "JPEG 2000 Lossless");
    const codes: Record<string, string> = {
      "no_pixel_data.dcm": "no_pixel_data",
      "truncated.dcm": "corrupt_dicom",
      "jpegls_garbage.dcm": "decode_failed",
      "not_dicom.dcm": "not_dicom",
    };
    for (const [file, code] of Object.entries(codes)) {
      const e = await decodeDicom(await read(file)).then(() => null, (e) => e);
      assert.deepEqual(e?.code, code, `${file}: ${e?.message}`);
    }
    // Patient fields are never read: nothing identifying in what a decode returns.
    const text = JSON.stringify(win.tags) + JSON.stringify(win.warnings);
    assert.ok(!/ANON|patient/i.test(text), text);
  },
});

Deno.test("RLE: PackBits runs and literals over MSB/LSB planes", () => {
  // 2x2 16-bit: values 0x0102, 0x0102, 0x0304, 0x0506 -> MSB plane [1,1,3,5], LSB [2,2,4,6].
  const header = new Uint8Array(64);
  const dv = new DataView(header.buffer);
  dv.setUint32(0, 2, true);
  dv.setUint32(4, 64, true);
  // 0xff = run of 2 (257 - 255) of the next byte; 0x01 = a literal of the next 2 bytes.
  const msbSeg = [0xff, 1, 0x01, 3, 5];
  const lsbSeg = [0xff, 2, 0x01, 4, 6];
  dv.setUint32(8, 64 + msbSeg.length, true);
  const data = new Uint8Array([...header, ...msbSeg, ...lsbSeg]);
  const out = decodeRle(data, { rows: 2, columns: 2, samples: 1, bitsAllocated: 16 });
  const vals = new Uint16Array(out.buffer);
  assert.deepEqual([...vals], [0x0102, 0x0102, 0x0304, 0x0506]);
});

Deno.test({
  name: "DICOM in a dataset folder: .dcm and extension-less DICM files are listed",
  ignore: !hasCorpus,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "cxr_dicomds_" });
    try {
      await Deno.mkdir(join(root, "val", "NORMAL"), { recursive: true });
      await Deno.mkdir(join(root, "val", "PNEUMONIA"), { recursive: true });
      await Deno.copyFile(
        join(DICOM_DIR, "mono2_8bit_explicit.dcm"),
        join(root, "val", "NORMAL", "a.dcm"),
      );
      await Deno.copyFile(
        join(DICOM_DIR, "mono2_rle_lossless.dcm"),
        join(root, "val", "PNEUMONIA", "IMG0001"),
      );
      await Deno.writeTextFile(join(root, "val", "PNEUMONIA", "notes.txt"), "hello");
      const ds = await scanDataset(root);
      assert.deepEqual(ds.items.map((i) => i.rel), ["val/NORMAL/a.dcm", "val/PNEUMONIA/IMG0001"]);
      assert.ok(ds.warnings.some((w) => w.includes("notes.txt")));
      const img = await decodeImage(ds.items[1].path, 224);
      assert.deepEqual(img.dicom?.tags.transferSyntax.name, "RLE Lossless");
      // The same rule for an external set in class folders (evaluate --data, calibrate).
      const set = await readLabelledFolder(join(root, "val"));
      assert.deepEqual(set.items.map((i) => i.rel), ["NORMAL/a.dcm", "PNEUMONIA/IMG0001"]);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test("display pipeline: rescale, PS3.3 C.11.2.1.2 windows, MONOCHROME1, pixel range", () => {
  const base = {
    slope: null,
    intercept: null,
    center: null,
    width: null,
    voiFunction: "LINEAR",
    bitsStored: 16,
    signed: true,
    photometric: "MONOCHROME2",
    presentationLut: null,
  };
  // CT-like: stored 0..2000, rescale -1024 -> HU; soft-tissue window C 40 W 400 (linear):
  // HU <= -160 black, HU > 239 white, HU 40 -> ((40 - 39.5) / 399 + 0.5) * 255 = 127.8 -> 128.
  const hu = [-1024, -160, -159, 40, 239, 240, 976];
  const stored = hu.map((h) => h + 1024);
  const ct = toDisplayGrey(stored, { ...base, slope: 1, intercept: -1024, center: 40, width: 400 });
  const linear = (x: number) => Math.round(((x - 39.5) / 399 + 0.5) * 255);
  assert.deepEqual([...ct.pixels], [0, 0, linear(-159), 128, linear(239), 255, 255]);
  assert.deepEqual(ct.window, { center: 40, width: 400, function: "LINEAR", source: "tags" });
  // MONOCHROME1 inverts after the window; an INVERSE presentation LUT flips it back.
  const m1 = toDisplayGrey(stored, {
    ...base,
    intercept: -1024,
    center: 40,
    width: 400,
    photometric: "MONOCHROME1",
  });
  assert.deepEqual([...m1.pixels], [...ct.pixels].map((v) => 255 - v));
  const both = toDisplayGrey(stored, {
    ...base,
    intercept: -1024,
    center: 40,
    width: 400,
    photometric: "MONOCHROME1",
    presentationLut: "INVERSE",
  });
  assert.deepEqual([...both.pixels], [...ct.pixels]);
  // LINEAR_EXACT: x <= c - w/2 -> 0, x > c + w/2 -> 255, else ((x - c) / w + 0.5) * 255.
  const exact = toDisplayGrey([0, 50, 100, 150, 200], {
    ...base,
    center: 100,
    width: 100,
    voiFunction: "LINEAR_EXACT",
  });
  assert.deepEqual([...exact.pixels], [0, 0, 128, 255, 255]);
  // SIGMOID: 255 / (1 + exp(-4 (x - c) / w)); the centre is mid-grey.
  const sig = toDisplayGrey([100], { ...base, center: 100, width: 50, voiFunction: "SIGMOID" });
  assert.deepEqual([...sig.pixels], [128]);
  // No window: the range of the values used maps to 0..255 (a negative slope included).
  const range = toDisplayGrey([10, 20, 30], { ...base, slope: -2, intercept: 0 });
  assert.deepEqual([...range.pixels], [255, 128, 0]);
  assert.deepEqual(range.window, {
    center: -40,
    width: 40,
    function: "LINEAR",
    source: "pixel range",
  });
  // A width below 1 is not a valid linear window: the range is used instead.
  assert.equal(
    toDisplayGrey([0, 4], { ...base, center: 2, width: 0.5 }).window.source,
    "pixel range",
  );
});

/** A minimal Part-10 file whose dataset is deflated (transfer syntax 1.2.840.10008.1.2.1.99). */
function deflatedDicom(dataset: Uint8Array): Uint8Array {
  const uid = new TextEncoder().encode("1.2.840.10008.1.2.1.99");
  const meta = new Uint8Array(8 + uid.length);
  meta.set([0x02, 0x00, 0x10, 0x00, 0x55, 0x49, uid.length, 0]);
  meta.set(uid, 8);
  const body = deflateSync(dataset);
  const out = new Uint8Array(132 + meta.length + body.length);
  out.set(new TextEncoder().encode("DICM"), 128);
  out.set(meta, 132);
  out.set(body, 132 + meta.length);
  return out;
}

/** Explicit VR LE elements: a 2x2 MONOCHROME2 8-bit image. */
function tinyDataset(): Uint8Array {
  const parts: number[] = [];
  const el = (g: number, e: number, vr: string, value: number[]) => {
    parts.push(g & 255, g >> 8, e & 255, e >> 8, vr.charCodeAt(0), vr.charCodeAt(1));
    if (vr === "OB") parts.push(0, 0, value.length & 255, value.length >> 8, 0, 0);
    else parts.push(value.length & 255, value.length >> 8);
    parts.push(...value);
  };
  const us = (v: number) => [v & 255, v >> 8];
  el(0x0028, 0x0002, "US", us(1));
  el(0x0028, 0x0004, "CS", [..."MONOCHROME2 "].map((c) => c.charCodeAt(0)));
  el(0x0028, 0x0010, "US", us(2));
  el(0x0028, 0x0011, "US", us(2));
  el(0x0028, 0x0100, "US", us(8));
  el(0x0028, 0x0101, "US", us(8));
  el(0x0028, 0x0102, "US", us(7));
  el(0x0028, 0x0103, "US", us(0));
  el(0x7fe0, 0x0010, "OB", [0, 85, 170, 255]);
  return new Uint8Array(parts);
}

Deno.test("deflated DICOM: decodes, and inflation stops at its cap (no zip bomb)", async () => {
  const img = await decodeDicom(deflatedDicom(tinyDataset()));
  assert.deepEqual([img.width, img.height, img.channels], [2, 2, 1]);
  assert.deepEqual([...img.pixels], [0, 85, 170, 255]);
  const bomb = deflateSync(new Uint8Array(8 * 1024 * 1024));
  assert.ok(bomb.length < 64 * 1024);
  assert.throws(() => inflateCapped(bomb, 1024 * 1024), /inflates past 1 MB/);
  assert.equal(inflateCapped(bomb, 16 * 1024 * 1024).length, 8 * 1024 * 1024);
});
