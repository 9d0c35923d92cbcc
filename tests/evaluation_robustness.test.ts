import assert from "node:assert/strict";
import { decodeImage } from "../lib/data/images.ts";
import {
  type RobustnessResult,
  runShiftSuite,
  selectSuiteImages,
  shiftedMeans,
  type SuiteModel,
  worstCondition,
} from "../lib/evaluation/robustness.ts";
import { robustnessChart } from "../lib/evaluation/robustness_runs.ts";
import { renderSvg } from "../lib/charts/render.ts";
import { hasTrainData, patientSlice, type SliceItem } from "./site_fixtures.ts";

const hasData = hasTrainData();

Deno.test("robustness: suite images are class-balanced, one per patient first, seeded", () => {
  const items = [];
  for (let i = 0; i < 60; i++) {
    const label = (i % 3 === 0 ? 0 : 1) as 0 | 1;
    items.push({ rel: `x/${i}`, label, patient: label ? `p${i % 9}` : `n${i % 7}` });
  }
  const a = selectSuiteImages(items, 20, 1);
  assert.deepEqual(a, selectSuiteImages(items, 20, 1));
  assert.deepEqual(a.filter((i) => i.label === 0).length, 10);
  // Every patient of a class appears before any patient's second image.
  for (const label of [0, 1]) {
    const patients: number = new Set(items.filter((i) => i.label === label).map((i) => i.patient))
      .size;
    const picked = a.filter((i) => i.label === label).map((i) => i.patient);
    assert.deepEqual(new Set(picked).size, Math.min(10, patients), "distinct patients first");
  }
  assert.ok(
    selectSuiteImages(items, 20, 2).some((x, k) => x !== a[k]),
    "another seed, other images",
  );
  assert.deepEqual(selectSuiteImages(items, "all").length, 60);
  // A class that runs out leaves its share to the other.
  const few = items.filter((i) => i.label === 1 || i.rel === "x/0");
  assert.deepEqual(selectSuiteImages(few, 10).filter((i) => i.label === 0).length, 1);
  assert.deepEqual(selectSuiteImages(few, 10).length, 10);
});

/** 8x8 block means of the grey image: a crude but honest image feature. */
function features(img: Float32Array): number[] {
  const side = Math.round(Math.sqrt(img.length / 3));
  const f = new Array(64).fill(0);
  const cell = side / 8;
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      f[Math.floor(y / cell) * 8 + Math.floor(x / cell)] += img[(y * side + x) * 3];
    }
  }
  return f.map((v) => v / (cell * cell) / 255);
}

/** A logistic regression on block means, fitted on `train` images: a model that can be shifted. */
async function linearModel(train: SliceItem[]): Promise<SuiteModel> {
  const X: number[][] = [];
  for (const it of train) X.push(features((await decodeImage(it.path)).data));
  const y = train.map((i) => i.label);
  const d = 64;
  const mean = Array.from({ length: d }, (_, j) => X.reduce((s, x) => s + x[j], 0) / X.length);
  const sd = Array.from(
    { length: d },
    (_, j) => Math.sqrt(X.reduce((s, x) => s + (x[j] - mean[j]) ** 2, 0) / X.length) || 1,
  );
  const z = (x: number[]) => x.map((v, j) => (v - mean[j]) / sd[j]);
  const Z = X.map(z);
  const w = new Array(d).fill(0);
  let b = 0;
  for (let step = 0; step < 400; step++) {
    const g = new Array(d).fill(0);
    let gb = 0;
    Z.forEach((x, i) => {
      const p = 1 / (1 + Math.exp(-(x.reduce((s, v, j) => s + v * w[j], 0) + b)));
      x.forEach((v, j) => g[j] += (p - y[i]) * v);
      gb += p - y[i];
    });
    for (let j = 0; j < d; j++) w[j] -= 0.1 * (g[j] / Z.length + 0.01 * w[j]);
    b -= 0.1 * gb / Z.length;
  }
  return {
    id: "linear-probe",
    net: null,
    weightsLabel: "test model",
    notImageNet: true,
    threshold: {
      name: "validation",
      value: 0.5,
      method: "0.5",
      sensitivity: null,
      specificity: null,
    },
    predict(images: Float32Array, n: number) {
      const per = images.length / n;
      const prob = new Float32Array(n);
      for (let k = 0; k < n; k++) {
        const x = z(features(images.subarray(k * per, (k + 1) * per)));
        prob[k] = 1 / (1 + Math.exp(-(x.reduce((s, v, j) => s + v * w[j], 0) + b)));
      }
      return Promise.resolve({ prob });
    },
  };
}

function numbers(r: RobustnessResult) {
  return r.conditions.map((
    c,
  ) => [c.shift, c.severity, c.rocAuc, c.specificity, c.ci, c.meanProbNormal]);
}

Deno.test({
  name: "robustness: the suite is deterministic, and inversion collapses AUC",
  ignore: !hasData,
  fn: async () => {
    const model = await linearModel(patientSlice(0, 40));
    const images = patientSlice(1, 14); // other patients
    const opts = { kinds: ["noise", "invert", "blur"] as const, severities: [2] as const };
    const [a] = await runShiftSuite(images, [model], {
      ...opts,
      seed: 3,
      iterations: 200,
      quiet: true,
    });
    const [b] = await runShiftSuite(images, [model], {
      ...opts,
      seed: 3,
      iterations: 200,
      quiet: true,
    });
    assert.deepEqual(numbers(a), numbers(b), "same seed, same numbers");
    const [c] = await runShiftSuite(images, [model], {
      ...opts,
      seed: 4,
      iterations: 200,
      quiet: true,
    });
    const noise = (r: RobustnessResult) => r.conditions.find((x) => x.shift === "noise")!;
    assert.ok(
      noise(c).meanProbNormal !== noise(a).meanProbNormal,
      "the seed drives the noise field",
    );
    const clean = a.conditions.find((x) => x.shift === "none")!;
    const inverted = a.conditions.find((x) => x.shift === "invert")!;
    assert.deepEqual([a.images.n, a.images.positives, a.forwardPasses], [28, 14, 28 * 4]);
    assert.ok(clean.rocAuc > 0.75, `the probe separates unshifted images (AUC ${clean.rocAuc})`);
    assert.ok(inverted.rocAuc < 0.35, `inversion collapses AUC (${inverted.rocAuc})`);
    assert.ok(clean.ci.rocAuc[0] <= clean.rocAuc && clean.rocAuc <= clean.ci.rocAuc[1]);
    assert.deepEqual(
      a.worst?.shift !== "invert",
      true,
      "inversion is a sanity case, never the worst",
    );
    const svg = await renderSvg(robustnessChart([a, { ...a, net: "vgg16" }]));
    assert.ok(svg.includes("<svg") && svg.includes("invert"));
  },
});

Deno.test("robustness: the worst condition is the lowest specificity among real shifts", () => {
  const c = (shift: string, specificity: number, rocAuc = 0.9) =>
    ({
      shift,
      severity: 1,
      value: 1,
      rocAuc,
      sensitivity: 1,
      specificity,
      ci: { rocAuc: [0, 1], sensitivity: [0, 1], specificity: [0, 1] },
      meanProbNormal: 0.2,
      meanProbPneumonia: 0.8,
    }) as Parameters<typeof worstCondition>[0][number];
  assert.deepEqual(
    worstCondition([c("none", 0.1), c("invert", 0), c("gamma", 0.5), c("blur", 0.5, 0.7)])?.shift,
    "blur",
  );
  assert.deepEqual(worstCondition([c("none", 0.1)]), null);
  // Means leave out the unshifted and the inverted images; a NaN (one class missing) is skipped.
  const m = shiftedMeans([
    c("none", 0.1),
    c("invert", 0),
    c("gamma", 0.5, 0.8),
    c("blur", 0.7, 0.6),
    c("zoom", NaN),
  ]);
  assert.equal(m.conditions, 3);
  assert.ok(Math.abs(m.specificity - 0.6) < 1e-12);
  assert.ok(Math.abs(m.rocAuc - (0.8 + 0.6 + 0.9) / 3) < 1e-12);
  assert.ok(Math.abs(m.meanProbNormal - 0.2) < 1e-12);
});

Deno.test("robustness: MLflow metric names are valid and cover every condition", async () => {
  const { robustnessMetrics } = await import("../lib/cli/robustness.ts");
  const cond = (shift: string, severity: number, spec: number) => ({
    shift,
    severity,
    value: 1,
    rocAuc: 0.9,
    sensitivity: 0.95,
    specificity: spec,
    ci: { rocAuc: [0.8, 1], sensitivity: [0.9, 1], specificity: [0.5, 0.9] },
    meanProbNormal: 0.2,
    meanProbPneumonia: NaN,
  });
  const conditions = [cond("none", 0, 0.9), cond("gamma", 2, 0.4)];
  const m = robustnessMetrics({ conditions, worst: conditions[1] } as unknown as RobustnessResult);
  assert.deepEqual(m.robust_none_specificity, 0.9);
  assert.deepEqual(m.robust_gamma_s2_p_normal, 0.2);
  assert.deepEqual(m.robust_worst_specificity, 0.4);
  assert.equal(Object.keys(m).length, 2 * 4 + 1);
  for (const k of Object.keys(m)) assert.match(k, /^[A-Za-z0-9_.\-/ ]+$/, "MLflow key rules");
});

Deno.test("robustness: an ensemble in the suite combines its members' outputs per batch", async () => {
  const { grayJpeg, put } = await import("./data_fixtures.ts");
  const root = await Deno.makeTempDir({ prefix: "cxr_rob_ens_" });
  try {
    const images = [];
    for (let i = 0; i < 6; i++) {
      const path = `${root}/${i}.jpeg`;
      await put(path, await grayJpeg(48, 48, i));
      images.push({ path, rel: `${i}.jpeg`, label: (i % 2) as 0 | 1 });
    }
    let calls = 0;
    const fake = (id: string, scale: number): SuiteModel => ({
      id,
      net: id,
      weightsLabel: "test",
      notImageNet: true,
      threshold: {
        name: "validation",
        value: 0.4,
        method: "0.5",
        sensitivity: null,
        specificity: null,
      },
      predict: (x, n) => {
        calls++;
        const per = x.length / n;
        return Promise.resolve({
          prob: Float32Array.from({ length: n }, (_, k) => scale * x[k * per + 500] / 255),
        });
      },
    });
    const a = fake("a", 1), b = fake("b", 0.5);
    const ens: SuiteModel = {
      ...fake("ens", 0),
      predict: () => Promise.reject(new Error("must not be called")),
      ensembleOf: {
        members: [0, 1],
        combine: (p) => p[0].map((v, i) => (v + p[1][i]) / 2),
      },
    };
    const [ra, rb, re] = await runShiftSuite(images, [a, b, ens], {
      kinds: ["brightness"],
      severities: [1],
      iterations: 20,
      quiet: true,
      batchSize: 4,
    });
    assert.equal(calls, 2 * 2 * 2, "2 conditions x 2 batches x 2 members, none for the ensemble");
    assert.equal(re.forwardPasses, 0);
    for (const [k, c] of re.conditions.entries()) {
      const mean = (ra.conditions[k].meanProbNormal + rb.conditions[k].meanProbNormal) / 2;
      assert.ok(
        Math.abs(c.meanProbNormal - mean) < 1e-6,
        `${c.shift}: ${c.meanProbNormal} vs ${mean}`,
      );
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
