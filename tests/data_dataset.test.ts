import { assert, assertEquals, assertRejects } from "./assert.ts";
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
  assertEquals(patientId("person1_bacteria_1.jpeg"), "person1");
  assertEquals(patientId("person1000_virus_1681.jpeg"), "person1000");
  assertEquals(patientId("IM-0115-0001.jpeg"), "IM-0115");
  assertEquals(patientId("NORMAL2-IM-0381-0001.jpeg"), "NORMAL2-IM-0381");
  assertEquals(patientId("IM-0135-0001-0001.jpeg"), "IM-0135");
  assertEquals(patientId("/x/train/NORMAL/IM-0135-0001-0001.jpeg"), "IM-0135");
  // Unknown names are their own patient (never merged with another).
  assertEquals(patientId("scan_42.png"), "scan_42");
});

Deno.test("scanDataset matches the shared MANIFEST.tsv (files, labels, patients, sha256)", async () => {
  const manifest = await readManifest();
  const scan = await scanDataset(join(SHARED, "chest_xray"));
  assertEquals(scan.items.length, manifest.length);
  assertEquals(scan.missingSplits, ["val", "test"]);
  assertEquals(scan.warnings, []);
  const byRel = new Map(scan.items.map((it) => [it.rel, it]));
  for (const row of manifest) {
    const item = byRel.get(`${row.split}/${row.className}/${row.file}`);
    assert(item, `missing ${row.split}/${row.className}/${row.file}`);
    assertEquals(item.label, row.className === "PNEUMONIA" ? 1 : 0);
    assertEquals(item.className, row.className);
    assertEquals(item.patient, row.patient, row.file);
  }
  const patients = (label: number) =>
    new Set(scan.items.filter((it) => it.label === label).map((it) => it.patient)).size;
  assertEquals([patients(0), patients(1)], [1211, 1635]);
  // sha256 of a spread sample, through the batch loader (which hashes the bytes it decodes).
  const sample = manifest.filter((_, i) => i % 163 === 0);
  const items = sample.map((row) => byRel.get(`${row.split}/${row.className}/${row.file}`)!);
  const seen: string[] = [];
  for await (const batch of loadBatches(items, { batchSize: 8, progress: false })) {
    assertEquals(batch.failed, []);
    assertEquals(batch.data.length, batch.items.length * 224 * 224 * 3);
    seen.push(...batch.sha256);
  }
  assertEquals(seen, sample.map((r) => r.sha256));
  const first = await Deno.readFile(items[0].path);
  assertEquals(first.length, sample[0].bytes);
  assertEquals(await sha256Hex(first), sample[0].sha256);
});

Deno.test("scanDataset: wrong path, no splits, empty class folder, non-image file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cxr-data-" });
  try {
    const missing = join(dir, "nope");
    const e1 = await assertRejects(() => scanDataset(missing), DatasetError);
    assert(e1.message.includes(missing), e1.message);
    assert(e1.message.includes("not found"), e1.message);

    await put(join(dir, "file.txt"), "x");
    const e2 = await assertRejects(() => scanDataset(join(dir, "file.txt")), DatasetError);
    assert(e2.message.includes("not a folder"), e2.message);

    // A parent of chest_xray/: the error names the folder the user probably meant.
    await makeTree(join(dir, "parent", "chest_xray"), ["train/NORMAL/IM-0001-0001.jpeg"]);
    const e3 = await assertRejects(() => scanDataset(join(dir, "parent")), DatasetError);
    assert(e3.message.includes(join(dir, "parent", "chest_xray")), e3.message);

    const root = join(dir, "tree");
    await makeTree(root, ["train/NORMAL/IM-0001-0001.jpeg", "test/PNEUMONIA/person3_virus_7.jpeg"]);
    await Deno.mkdir(join(root, "train", "PNEUMONIA"), { recursive: true }); // empty class folder
    await put(join(root, "train", "NORMAL", "notes.txt"), "not an image");
    await put(join(root, "train", "NORMAL", ".DS_Store"), "junk");
    await put(join(root, "test", "NORMAL", "IM-0002-0001.jpeg"), await grayJpeg(20, 20));
    const scan = await scanDataset(root);
    assertEquals(scan.missingSplits, ["val"]);
    assertEquals(scan.items.map((it) => it.rel), [
      "test/NORMAL/IM-0002-0001.jpeg",
      "test/PNEUMONIA/person3_virus_7.jpeg",
      "train/NORMAL/IM-0001-0001.jpeg",
    ]);
    assertEquals(scan.items.map((it) => [it.label, it.patient]), [[0, "IM-0002"], [1, "person3"], [
      0,
      "IM-0001",
    ]]);
    const warnings = scan.warnings.join("\n");
    assert(
      warnings.includes(`empty class folder (no images): ${join(root, "train", "PNEUMONIA")}`),
      warnings,
    );
    assert(
      warnings.includes(
        `not an image file, skipped: ${join(root, "train", "NORMAL", "notes.txt")}`,
      ),
      warnings,
    );
    assert(!warnings.includes(".DS_Store"), warnings);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
