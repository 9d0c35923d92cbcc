import assert from "node:assert/strict";
import { join } from "node:path";
import { DatasetError, scanDataset } from "../lib/data/dataset.ts";
import { patientId } from "../lib/data/patients.ts";
import { sha256Hex } from "../lib/data/images.ts";
import { loadBatches } from "../lib/data/loader.ts";
import { sharedDir } from "../lib/util/paths.ts";
import { grayJpeg, makeTree, put } from "./data_fixtures.ts";

const SHARED = join(sharedDir(), "data");

interface ManifestRow {
  split: string;
  className: string;
  file: string;
  bytes: number;
  sha256: string;
  patient: string;
}

async function readManifest(): Promise<ManifestRow[]> {
  const lines = (await Deno.readTextFile(join(SHARED, "MANIFEST.tsv"))).trim().split("\n");
  const header = lines[0].split("\t");
  const col = (name: string) => header.indexOf(name);
  return lines.slice(1).map((line) => {
    const f = line.split("\t");
    return {
      split: f[col("split")],
      className: f[col("class")],
      file: f[col("file")],
      bytes: Number(f[col("bytes")]),
      sha256: f[col("sha256")],
      patient: f[col("patient")],
    };
  });
}

Deno.test("patientId: the file-name forms of the data set", () => {
  assert.deepEqual(patientId("person1_bacteria_1.jpeg"), "person1");
  assert.deepEqual(patientId("person1000_virus_1681.jpeg"), "person1000");
  assert.deepEqual(patientId("IM-0115-0001.jpeg"), "IM-0115");
  assert.deepEqual(patientId("NORMAL2-IM-0381-0001.jpeg"), "NORMAL2-IM-0381");
  assert.deepEqual(patientId("IM-0135-0001-0001.jpeg"), "IM-0135");
  assert.deepEqual(patientId("/x/train/NORMAL/IM-0135-0001-0001.jpeg"), "IM-0135");
  // Unknown names are their own patient (never merged with another).
  assert.deepEqual(patientId("scan_42.png"), "scan_42");
});

Deno.test("scanDataset matches the shared MANIFEST.tsv (files, labels, patients, sha256)", async () => {
  const manifest = await readManifest();
  const scan = await scanDataset(join(SHARED, "chest_xray"));
  assert.deepEqual(scan.items.length, manifest.length);
  assert.deepEqual(scan.missingSplits, ["val", "test"]);
  assert.deepEqual(scan.warnings, []);
  const byRel = new Map(scan.items.map((it) => [it.rel, it]));
  for (const row of manifest) {
    const item = byRel.get(`${row.split}/${row.className}/${row.file}`);
    assert.ok(item, `missing ${row.split}/${row.className}/${row.file}`);
    assert.deepEqual(item.label, row.className === "PNEUMONIA" ? 1 : 0);
    assert.deepEqual(item.className, row.className);
    assert.deepEqual(item.patient, row.patient, row.file);
  }
  const patients = (label: number) =>
    new Set(scan.items.filter((it) => it.label === label).map((it) => it.patient)).size;
  assert.deepEqual([patients(0), patients(1)], [1211, 1635]);
  // sha256 of a spread sample, through the batch loader (which hashes the bytes it decodes).
  const sample = manifest.filter((_, i) => i % 163 === 0);
  const items = sample.map((row) => byRel.get(`${row.split}/${row.className}/${row.file}`)!);
  const seen: string[] = [];
  for await (const batch of loadBatches(items, { batchSize: 8, progress: false })) {
    assert.deepEqual(batch.failed, []);
    assert.deepEqual(batch.data.length, batch.items.length * 224 * 224 * 3);
    seen.push(...batch.sha256);
  }
  assert.deepEqual(seen, sample.map((r) => r.sha256));
  const first = await Deno.readFile(items[0].path);
  assert.deepEqual(first.length, sample[0].bytes);
  assert.deepEqual(await sha256Hex(first), sample[0].sha256);
});

Deno.test("scanDataset: wrong path, no splits, empty class folder, non-image file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cxr-data-" });
  try {
    const missing = join(dir, "nope");
    await assert.rejects(() => scanDataset(missing), (e) => {
      assert.ok(e instanceof DatasetError);
      assert.ok(e.message.includes(missing) && e.message.includes("not found"), e.message);
      return true;
    });

    await put(join(dir, "file.txt"), "x");
    await assert.rejects(() => scanDataset(join(dir, "file.txt")), {
      name: "DatasetError",
      message: /not a folder/,
    });

    // A parent of chest_xray/: the error names the folder the user probably meant.
    await makeTree(join(dir, "parent", "chest_xray"), ["train/NORMAL/IM-0001-0001.jpeg"]);
    await assert.rejects(() => scanDataset(join(dir, "parent")), (e) => {
      assert.ok(e instanceof DatasetError);
      assert.ok(e.message.includes(join(dir, "parent", "chest_xray")), e.message);
      return true;
    });

    const root = join(dir, "tree");
    await makeTree(root, ["train/NORMAL/IM-0001-0001.jpeg", "test/PNEUMONIA/person3_virus_7.jpeg"]);
    await Deno.mkdir(join(root, "train", "PNEUMONIA"), { recursive: true }); // empty class folder
    await put(join(root, "train", "NORMAL", "notes.txt"), "not an image");
    await put(join(root, "train", "NORMAL", ".DS_Store"), "junk");
    await put(join(root, "test", "NORMAL", "IM-0002-0001.jpeg"), await grayJpeg(20, 20));
    const scan = await scanDataset(root);
    assert.deepEqual(scan.missingSplits, ["val"]);
    assert.deepEqual(scan.items.map((it) => it.rel), [
      "test/NORMAL/IM-0002-0001.jpeg",
      "test/PNEUMONIA/person3_virus_7.jpeg",
      "train/NORMAL/IM-0001-0001.jpeg",
    ]);
    assert.deepEqual(scan.items.map((it) => [it.label, it.patient]), [[0, "IM-0002"], [
      1,
      "person3",
    ], [
      0,
      "IM-0001",
    ]]);
    const warnings = scan.warnings.join("\n");
    assert.ok(
      warnings.includes(`empty class folder (no images): ${join(root, "train", "PNEUMONIA")}`),
      warnings,
    );
    assert.ok(
      warnings.includes(
        `not an image file, skipped: ${join(root, "train", "NORMAL", "notes.txt")}`,
      ),
      warnings,
    );
    assert.ok(!warnings.includes(".DS_Store"), warnings);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("scanDataset: a file name that is not UTF-8 is named and skipped, not a false ENOENT", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cxr-data-" });
  try {
    await makeTree(dir, ["train/NORMAL/IM-0001-0001.jpeg", "train/PNEUMONIA/person1_virus_1.jpeg"]);
    // Deno cannot create such a name itself: the shell writes the raw bytes (Latin-1 "é" = 0xE9).
    const out = await new Deno.Command("sh", {
      args: ["-c", `cp IM-0001-0001.jpeg "$(printf 'IM-0002-caf\\351.jpeg')"`],
      cwd: join(dir, "train", "NORMAL"),
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const scan = await scanDataset(dir);
    assert.deepEqual(scan.items.map((it) => it.rel), [
      "train/NORMAL/IM-0001-0001.jpeg",
      "train/PNEUMONIA/person1_virus_1.jpeg",
    ]);
    const warning = scan.warnings.find((w) => w.includes("not valid UTF-8"));
    assert.ok(
      warning?.includes(join(dir, "train", "NORMAL", "IM-0002-caf")),
      scan.warnings.join("\n"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
