/**
 * The ensemble as a model of its own: combination rules, its threshold chosen on validation
 * only (test predictions cannot move it; validation ones do), refusal of members validated on
 * other images, and serving it as `?model=ensemble` over the members' classifiers.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildEnsemble, ensembleRunId } from "../lib/ensemble/build.ts";
import { chooseThreshold } from "../lib/evaluation/threshold.ts";
import type { Classifier } from "../lib/inference/classifier.ts";
import { loadClassifier } from "../lib/inference/classifier.ts";
import { combineProbs } from "../lib/inference/ensemble.ts";
import { intensityOf } from "../lib/serving/models.ts";
import { startServer } from "../lib/serving/server.ts";
import { mulberry32 } from "../lib/util/random.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test("combineProbs: mean of probabilities, or sigmoid of the mean logit", () => {
  const p = combineProbs([[0.2, 0.9], [0.6, 0.5]], "prob");
  assert.ok(Math.abs(p[0] - 0.4) < 1e-7 && Math.abs(p[1] - 0.7) < 1e-7);
  const l = combineProbs([[0.2, 0.9], [0.8, 0.9]], "logit");
  assert.ok(Math.abs(l[0] - 0.5) < 1e-6 && Math.abs(l[1] - 0.9) < 1e-6);
  assert.throws(() => combineProbs([[0.1], [0.1, 0.2]], "prob"), /disagree/);
});

interface Item {
  rel: string;
  sha256: string;
  patient: string;
  label: 0 | 1;
  prob: number;
}

/** Items shared by every member (same images), each member scoring them with its own noise. */
function items(split: string, n: number): Omit<Item, "prob">[] {
  return Array.from({ length: n }, (_, i) => {
    const label = (i % 4 === 0 ? 0 : 1) as 0 | 1;
    return {
      rel: `${split}/${label ? "PNEUMONIA" : "NORMAL"}/img${i}.jpeg`,
      sha256: `${split}-${i}`.padStart(64, "0"),
      patient: `${split}-p${Math.floor(i / 2)}`,
      label,
    };
  });
}

function score(list: Omit<Item, "prob">[], seed: number, separation: number): Item[] {
  const rand = mulberry32(seed);
  return list.map((it) => {
    const z = (rand() + rand() + rand() - 1.5) * 3 + (it.label ? separation : -separation);
    return { ...it, prob: Math.round(1e6 / (1 + Math.exp(-z))) / 1e6 };
  });
}

async function writeMember(root: string, net: string, seed: number): Promise<string> {
  const dir = join(root, `${net}-quick-formula-patient-${seed}`);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    join(dir, "config.json"),
    JSON.stringify({
      runId: `${net}-quick-formula-patient-${seed}`,
      net,
      thresholdMethod: "sens95",
      protocol: "patient",
      weights: { choice: "formula", label: "formula (not ImageNet)", isImageNet: false, md5: "ab" },
      data: { root: "/data" },
    }),
  );
  const write = (split: string, its: Item[]) =>
    Deno.writeTextFile(
      join(dir, `predictions-${split}.json`),
      JSON.stringify({ split, items: its }),
    );
  await write("val", score(items("val", 120), seed, 1.2));
  await write("test", score(items("test", 80), seed + 1, 0.8));
  return dir;
}

async function readPreds(dir: string, split: string): Promise<Item[]> {
  return JSON.parse(await Deno.readTextFile(join(dir, `predictions-${split}.json`))).items;
}

Deno.test(
  "ensemble: threshold from validation only; test predictions never move it",
  opts,
  async () => {
    const root = await Deno.makeTempDir({ prefix: "cxr-ensemble-" });
    try {
      const members = [
        await writeMember(root, "vgg16", 1),
        await writeMember(root, "resnet50", 2),
        await writeMember(root, "densenet121", 3),
      ];
      const first = await buildEnsemble(members, { tracker: null });
      assert.equal(first.runId, ensembleRunId(members.map((d) => d.split("/").pop()!), "prob"));
      const val = await readPreds(first.runDir, "val");
      const memberVal = await Promise.all(members.map((d) => readPreds(d, "val")));
      val.forEach((it, i) => {
        const mean = memberVal.reduce((s, m) => s + m[i].prob, 0) / members.length;
        assert.ok(Math.abs(it.prob - mean) < 1e-6, `item ${i}: ${it.prob} vs mean ${mean}`);
      });
      const expected = chooseThreshold(val.map((i) => i.label), val.map((i) => i.prob), "sens95");
      assert.equal(first.evaluation.threshold.value, expected.value);
      assert.equal(first.evaluation.net, "ensemble");
      assert.ok(first.evaluation.splits.test, "test is combined and evaluated at that threshold");

      // Same inputs: kept as is.
      assert.equal((await buildEnsemble(members, { tracker: null })).skipped, true);

      // Members' test predictions change wildly: the threshold does not move, test metrics do.
      for (const d of members) {
        const t = await readPreds(d, "test");
        await Deno.writeTextFile(
          join(d, "predictions-test.json"),
          JSON.stringify({ split: "test", items: t.map((it) => ({ ...it, prob: 0.999 })) }),
        );
      }
      const second = await buildEnsemble(members, { tracker: null });
      assert.equal(second.skipped, false);
      assert.equal(second.evaluation.threshold.value, first.evaluation.threshold.value);
      assert.equal(second.evaluation.splits.test.metrics.specificity, 0);

      // Validation predictions change: the threshold follows them.
      const v0 = await readPreds(members[0], "val");
      await Deno.writeTextFile(
        join(members[0], "predictions-val.json"),
        JSON.stringify({ split: "val", items: v0.map((it) => ({ ...it, prob: it.prob ** 3 })) }),
      );
      const third = await buildEnsemble(members, { tracker: null });
      assert.notEqual(third.evaluation.threshold.value, first.evaluation.threshold.value);

      // Logits: another folder, another combination.
      const logit = await buildEnsemble(members, { tracker: null, combine: "logit" });
      assert.notEqual(logit.runDir, first.runDir);

      // A member validated on other images is refused, naming the split.
      const other = join(root, "densenet121-quick-formula-patient-9");
      await Deno.mkdir(other);
      await Deno.writeTextFile(
        join(other, "predictions-val.json"),
        JSON.stringify({ split: "val", items: score(items("val", 100), 9, 1) }),
      );
      await assert.rejects(
        () => buildEnsemble([members[0], other], { tracker: null }),
        /predicted other val images/,
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);

function fake(id: string, net: Classifier["net"], prob: number): Classifier {
  return {
    id,
    net,
    threshold: { method: "sens95", value: 0.5, val_sensitivity: 0.95, val_specificity: 0.7 },
    weights: { label: "formula (not ImageNet)", md5: "00", isImageNet: false },
    gradcamLayer: null,
    runDir: null,
    meta: {} as Classifier["meta"],
    predict: (_images, n) => Promise.resolve({ prob: new Float32Array(n).fill(prob) }),
    close: () => Promise.resolve(),
  };
}

Deno.test("ensemble: served as ?model=ensemble over its members", opts, async () => {
  const root = await Deno.makeTempDir({ prefix: "cxr-ensemble-serve-" });
  try {
    const members = [await writeMember(root, "vgg16", 1), await writeMember(root, "resnet50", 2)];
    const built = await buildEnsemble(members, { tracker: null });
    const a = fake("vgg16-run", "vgg16", 0.2);
    const b = fake("resnet50-run", "resnet50", 0.7);
    const ens = await loadClassifier(built.runDir, {
      loaded: new Map([[members[0], a], [members[1], b]]),
    });
    assert.equal(ens.net, "ensemble");
    assert.equal(ens.threshold.value, built.evaluation.threshold.value);
    // A member that is not served already is opened by the caller's loader (serve: a worker).
    const opened: string[] = [];
    const alone = await loadClassifier(built.runDir, {
      loaded: new Map([[members[0], a]]),
      loadMember: (
        dir,
      ) => (opened.push(dir), Promise.resolve(fake("resnet50-run", "resnet50", 0.7))),
    });
    assert.deepEqual(opened, [members[1]]);
    // The answer names the members' normalisation: shared, or "per member" when they differ.
    const eqA = { ...a, intensity: "equalize" as const };
    const eqB = { ...b, intensity: "equalize" as const };
    const same = await loadClassifier(built.runDir, {
      loaded: new Map([[members[0], eqA], [members[1], eqB]]),
    });
    assert.equal(intensityOf(same), "equalize");
    const mixed = await loadClassifier(built.runDir, {
      loaded: new Map([[members[0], eqA], [members[1], b]]),
    });
    assert.equal(intensityOf(mixed), "per member");
    const image = new Float32Array(224 * 224 * 3);
    assert.ok(Math.abs((await alone.predict(image, 1)).prob[0] - 0.45) < 1e-6);
    await alone.close();
    const server = await startServer({ classifiers: [a, b, ens], port: 0 });
    try {
      const jpeg = await (await import("sharp")).default({
        create: { width: 64, height: 64, channels: 3, background: { r: 90, g: 90, b: 90 } },
      }).jpeg().toBuffer();
      const res = await fetch(`${server.url}/v1/predict?model=ensemble`, {
        method: "POST",
        body: new Uint8Array(jpeg),
        headers: { "content-type": "image/jpeg" },
      });
      const body = await res.json();
      assert.equal(res.status, 200, JSON.stringify(body));
      assert.equal(body.results.length, 1);
      assert.equal(body.results[0].net, "ensemble");
      assert.equal(body.results[0].displayName, "Ensemble");
      assert.ok(Math.abs(body.results[0].probability - 0.45) < 1e-6);
      assert.equal(body.results[0].threshold.value, built.evaluation.threshold.value);
      const models = await (await fetch(`${server.url}/v1/models`)).json();
      const listed = models.models.find((m: { net: string }) => m.net === "ensemble");
      assert.deepEqual(listed.members, members.map((d) => d.split("/").pop()));
    } finally {
      await server.close();
    }
    // Members missing from disk: a clear error naming the ensemble.
    await assert.rejects(() => loadClassifier(built.runDir), /ensemble .*cannot load a member/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
