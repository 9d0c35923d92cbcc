/**
 * End to end on real images with a real ONNX classifier (formula weights, synthetic head):
 * robustness, calibrate and external sets through their CLIs, on patient-disjoint slices of the
 * shared training images standing in for a validation set and for "sites".
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { main as robustness } from "../lib/cli/robustness.ts";
import { main as calibrate } from "../lib/cli/calibrate.ts";
import { main as evaluate } from "../lib/cli/evaluate.ts";
import { writeStandinSite } from "../lib/data/standin.ts";
import { readLabelledFolder } from "../lib/data/labelled.ts";
import { hasTrainData, patientSlice, TRAIN } from "./site_fixtures.ts";

/** Run `fn` with console.log/error captured; returns [result, output]. */
async function capture<T>(fn: () => Promise<T>): Promise<[T, string]> {
  const lines: string[] = [];
  const [log, err] = [console.log, console.error];
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  console.error = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    return [await fn(), lines.join("\n")];
  } finally {
    [console.log, console.error] = [log, err];
  }
}

const readJson = async (p: string) => JSON.parse(await Deno.readTextFile(p));

Deno.test("labels CSV: header optional, names/digits, missing files skipped, bad labels named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cxr_csv_" });
  try {
    for (const n of ["a.jpeg", "b.png", "c d.jpeg"]) {
      await Deno.writeFile(join(dir, n), new Uint8Array(1));
    }
    await Deno.writeTextFile(
      join(dir, "labels.csv"),
      'file,label\na.jpeg,PNEUMONIA\n"c d.jpeg",0\nb.png,normal\nzz.jpeg,1\n',
    );
    const set = await readLabelledFolder(dir);
    assert.deepEqual(set.layout, "csv");
    assert.deepEqual(set.items.map((i) => [i.rel, i.label]), [["a.jpeg", 1], ["c d.jpeg", 0], [
      "b.png",
      0,
    ]]);
    assert.ok(set.warnings[0].includes("zz.jpeg"));
    await Deno.writeTextFile(join(dir, "bad.csv"), "a.jpeg,1\nb.png,maybe\n");
    let msg = "";
    await readLabelledFolder(dir, { labels: join(dir, "bad.csv") }).catch((e) => msg = e.message);
    assert.ok(msg.includes("bad.csv:2") && msg.includes('"maybe"'), msg);
    // Class folders (no CSV): DICOM files are images like any other; other files are named.
    const cls = join(dir, "site");
    for (const n of ["NORMAL/x.dcm", "PNEUMONIA/y.jpeg", "PNEUMONIA/notes.txt"]) {
      await Deno.mkdir(join(cls, n, ".."), { recursive: true });
      await Deno.writeFile(join(cls, n), new Uint8Array(1));
    }
    const folders = await readLabelledFolder(cls);
    assert.deepEqual(folders.layout, "class-folders");
    assert.deepEqual(folders.items.map((i) => [i.rel, i.label]), [["NORMAL/x.dcm", 0], [
      "PNEUMONIA/y.jpeg",
      1,
    ]]);
    assert.ok(folders.warnings.some((w) => w.includes("notes.txt")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "site CLIs: robustness, calibrate (profiles), external sets keyed and never clashing",
  ignore: !hasTrainData(),
  sanitizeResources: false, // onnxruntime-node keeps native handles
  sanitizeOps: false,
  fn: async () => {
    const { writeSyntheticClassifier, defaultAnchors } = await import(
      "../lib/inference/synthetic.ts"
    );
    const root = await Deno.makeTempDir({ prefix: "cxr_site_" });
    try {
      const run = join(root, "run");
      await writeSyntheticClassifier(run, { net: "densenet121", anchors: defaultAnchors(TRAIN) });
      const meta = await Deno.readTextFile(join(run, "classifier.json"));
      const valDir = join(root, "val");
      await Deno.writeTextFile(
        join(run, "config.json"),
        JSON.stringify({ runId: "synthetic", net: "densenet121", data: { root: valDir } }),
      );
      // Validation stand-in: slice 2 of the patients, predicted through evaluate --data.
      await writeStandinSite(patientSlice(2, 6), valDir);
      assert.deepEqual(
        await evaluate([
          "--run",
          run,
          "--split",
          "val",
          "--data",
          valDir,
          "--iterations",
          "50",
          "--no-charts",
        ]),
        0,
      );
      // Robustness twice: same numbers.
      const args = [
        "--run",
        run,
        "--images",
        "8",
        "--shifts",
        "invert,noise",
        "--severities",
        "2",
        "--iterations",
        "50",
        "--no-mlflow",
      ];
      const [rc, out] = await capture(() => robustness(args));
      assert.deepEqual(rc, 0, out);
      assert.ok(/DenseNet121: worst shift noise/.test(out), out);
      const r1 = await readJson(join(run, "robustness.json"));
      assert.deepEqual(await robustness([...args, "--no-charts"]), 0);
      const r2 = await readJson(join(run, "robustness.json"));
      assert.deepEqual(r2.conditions, r1.conditions);
      assert.deepEqual([r1.images.n, r1.conditions.length, r1.threshold.profile], [
        8,
        3,
        "validation",
      ]);
      assert.ok(await Deno.stat(join(run, "charts", "robustness.svg")));
      // Site: other patients, brighter (scores move); calibrate stores site:bright.
      const site = join(root, "site-a", "chest_xray");
      await writeStandinSite(patientSlice(3, 6), site, { shifts: [{ kind: "gamma", value: 0.6 }] });
      const [rcCal, calOut] = await capture(() =>
        calibrate([
          "--run",
          run,
          "--data",
          site,
          "--name",
          "bright",
          "--iterations",
          "100",
          "--no-mlflow",
        ])
      );
      assert.deepEqual(rcCal, 0, calOut);
      assert.ok(calOut.includes("WARNING: small sample: 6 PNEUMONIA images"), calOut);
      assert.deepEqual(
        await Deno.readTextFile(join(run, "classifier.json")),
        meta,
        "validation untouched",
      );
      const profiles = (await readJson(join(run, "thresholds.json"))).profiles;
      const p = profiles["site:bright"];
      assert.deepEqual([p.data.n, p.data.positives, p.targetSensitivity], [12, 6, 0.95]);
      assert.ok(/^[0-9a-f]{64}$/.test(p.data.sha256) && p.sensitivity >= 0.95);
      // Same name, other data: refused, nothing replaced.
      const other = join(root, "site-b", "chest_xray");
      await writeStandinSite(patientSlice(4, 5), other);
      const [rcClash, clashOut] = await capture(() =>
        calibrate(["--run", run, "--data", other, "--name", "bright", "--no-mlflow"])
      );
      assert.deepEqual(rcClash, 1);
      assert.ok(
        clashOut.includes("already holds another set") || clashOut.includes("already exists"),
        clashOut,
      );
      assert.deepEqual(
        (await readJson(join(run, "thresholds.json"))).profiles["site:bright"].value,
        p.value,
      );
      // Two external folders both called chest_xray: two keys, no overwrite. Unnamed, a set
      // already stored (site-a, by calibrate) keeps its key; a new one gets its content hash.
      for (const dir of [site, other]) {
        assert.deepEqual(
          await evaluate(["--run", run, "--data", dir, "--iterations", "50", "--no-charts"]),
          0,
        );
      }
      const ev = await readJson(join(run, "evaluation.json"));
      const ext = Object.keys(ev.splits).filter((k) => k.startsWith("ext-"));
      assert.deepEqual(ext.length, 2, Object.keys(ev.splits).join(", "));
      assert.ok(ext.includes("ext-site-bright") && ext.some((k) => /^ext-[0-9a-f]{12}$/.test(k)));
      assert.deepEqual(ext.map((k) => ev.splits[k].metrics.n).sort(), [10, 12]);
      const prov = ev.splits[ext[0]].source;
      assert.ok(prov.dataRoot && /^[0-9a-f]{64}$/.test(prov.sha256) && prov.counts.n > 0);
      assert.ok(Number.isFinite(ev.splits[ext[0]].fromValidation.specificity.delta));
      assert.deepEqual(ev.threshold.profile, "validation");
      // A --name already used by another set is refused.
      assert.deepEqual(
        await evaluate(["--run", run, "--data", site, "--name", "s1", "--no-charts"]),
        0,
      );
      assert.deepEqual(
        await evaluate(["--run", run, "--data", other, "--name", "s1", "--no-charts"]),
        1,
      );
      // Evaluate under the site profile: the label says which profile produced it.
      assert.deepEqual(
        await evaluate([
          "--run",
          run,
          "--threshold",
          "site:bright",
          "--iterations",
          "50",
          "--no-charts",
        ]),
        0,
      );
      const evSite = await readJson(join(run, "evaluation.json"));
      assert.deepEqual([evSite.threshold.profile, evSite.threshold.value], [
        "site:bright",
        p.value,
      ]);
      assert.deepEqual(evSite.splits["ext-site-bright"].metrics.threshold, p.value);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
