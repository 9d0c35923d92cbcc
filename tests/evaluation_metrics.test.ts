import assert from "node:assert/strict";
import {
  calibrationBins,
  computeMetrics,
  prCurve,
  rocAuc,
  rocCurve,
} from "../lib/evaluation/metrics.ts";
import { bootstrapCI, mulberry32 } from "../lib/evaluation/bootstrap.ts";
import {
  chooseThreshold,
  parseThresholdMethod,
  thresholdSweep,
} from "../lib/evaluation/threshold.ts";

function close(actual: number, expected: number, tol = 1e-9, what = "") {
  assert.ok(
    Math.abs(actual - expected) <= tol,
    `${what}: expected ${expected}, got ${actual}`,
  );
}

/** Brute-force AUC over all positive/negative pairs (ties 1/2). */
function pairwiseAuc(labels: number[], probs: number[]): number {
  let s = 0, pairs = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] !== 1) continue;
    for (let j = 0; j < labels.length; j++) {
      if (labels[j] !== 0) continue;
      pairs++;
      s += probs[i] > probs[j] ? 1 : probs[i] === probs[j] ? 0.5 : 0;
    }
  }
  return s / pairs;
}

Deno.test("metrics: hand-computed case at threshold 0.5", () => {
  const labels = [1, 1, 0, 0, 1, 0];
  const probs = [0.9, 0.8, 0.7, 0.3, 0.2, 0.1];
  const m = computeMetrics(labels, probs, 0.5);
  assert.deepEqual(m.confusion, { tp: 2, fp: 1, tn: 2, fn: 1 });
  assert.equal(m.n, 6);
  assert.equal(m.positives, 3);
  close(m.accuracy, 4 / 6, 1e-12, "accuracy");
  close(m.sensitivity, 2 / 3, 1e-12, "sensitivity");
  close(m.specificity, 2 / 3, 1e-12, "specificity");
  close(m.ppv, 2 / 3, 1e-12, "ppv");
  close(m.npv, 2 / 3, 1e-12, "npv");
  close(m.f1, 2 / 3, 1e-12, "f1");
  close(m.rocAuc, 7 / 9, 1e-12, "auc");
  close(m.prAuc, 13 / 15, 1e-12, "average precision");
  close(m.brier, 1.28 / 6, 1e-12, "brier");
  const bce = -(Math.log(0.9) + Math.log(0.8) + Math.log(0.3) + Math.log(0.7) + Math.log(0.2) +
    Math.log(0.9)) / 6;
  close(m.loss, bce, 1e-9, "loss");
  // prob >= threshold is positive: at 0.7 the negative at 0.7 is a false positive
  assert.deepEqual(computeMetrics(labels, probs, 0.7).confusion, { tp: 2, fp: 1, tn: 2, fn: 1 });
  assert.deepEqual(computeMetrics(labels, probs, 0.75).confusion, { tp: 2, fp: 0, tn: 3, fn: 1 });
});

Deno.test("metrics: AUC and average precision with ties (scikit-learn documented values)", () => {
  // sklearn docs: roc_auc_score = 0.75, average_precision_score = 0.8333...
  const labels = [0, 0, 1, 1];
  const probs = [0.1, 0.4, 0.35, 0.8];
  close(rocAuc(labels, probs), 0.75, 1e-12, "auc");
  close(computeMetrics(labels, probs, 0.5).prAuc, 0.8333333333333333, 1e-12, "ap");
  // a positive tied with a negative counts one half
  close(rocAuc([1, 0, 1, 0], [0.5, 0.5, 0.8, 0.2]), 3.5 / 4, 1e-12, "tie auc");
  // all scores tied: no information
  close(rocAuc([1, 0, 1, 0, 0], [0.3, 0.3, 0.3, 0.3, 0.3]), 0.5, 1e-12, "all tied");
  // AP with all scores tied = prevalence
  close(computeMetrics([1, 0, 1, 0, 0], [0.3, 0.3, 0.3, 0.3, 0.3], 0.5).prAuc, 0.4, 1e-12, "ap");
  // Mann-Whitney vs brute force on random data with many ties
  const rand = mulberry32(7);
  const l: number[] = [], p: number[] = [];
  for (let i = 0; i < 300; i++) {
    const y = rand() < 0.3 ? 1 : 0;
    l.push(y);
    p.push(Math.round(Math.min(1, rand() * 0.7 + y * 0.3) * 10) / 10);
  }
  close(rocAuc(l, p), pairwiseAuc(l, p), 1e-12, "random ties");
  // trapezoid area under rocCurve equals the Mann-Whitney AUC (ties give diagonal segments)
  const roc = rocCurve(l, p);
  let area = 0;
  for (let k = 1; k < roc.fpr.length; k++) {
    area += (roc.fpr[k] - roc.fpr[k - 1]) * (roc.tpr[k] + roc.tpr[k - 1]) / 2;
  }
  close(area, rocAuc(l, p), 1e-12, "trapezoid");
});

Deno.test("metrics: one-class and invalid inputs", () => {
  const m = computeMetrics([1, 1, 1], [0.9, 0.4, 0.6], 0.5);
  assert.ok(Number.isNaN(m.rocAuc), "AUC undefined with one class");
  assert.ok(Number.isNaN(m.specificity), "specificity undefined without negatives");
  close(m.sensitivity, 2 / 3, 1e-12, "sensitivity");
  const n = computeMetrics([0, 0], [0.9, 0.1], 0.5);
  assert.ok(Number.isNaN(n.sensitivity) && Number.isNaN(n.prAuc) && Number.isNaN(n.rocAuc));
  close(n.specificity, 0.5, 1e-12, "specificity");
  // nothing predicted positive: PPV undefined
  assert.ok(Number.isNaN(computeMetrics([1, 0], [0.2, 0.1], 0.5).ppv));
  assert.throws(() => rocCurve([1, 1], [0.2, 0.3]), /both classes: got 2 PNEUMONIA and 0 NORMAL/);
  assert.throws(() => prCurve([0, 0], [0.2, 0.3]), /both classes/);
  assert.throws(() => computeMetrics([1, 2], [0.2, 0.3], 0.5), /labels\[1\] = 2/);
  assert.throws(() => computeMetrics([1, 0], [0.2, NaN], 0.5), /probs\[1\] = NaN/);
  assert.throws(() => computeMetrics([1, 0], [0.2], 0.5), /differ in length/);
  assert.throws(() => computeMetrics([], [], 0.5), /empty/);
});

Deno.test("metrics: curves and calibration bins", () => {
  const labels = [1, 1, 0, 0, 1, 0];
  const probs = [0.9, 0.8, 0.7, 0.3, 0.2, 0.1];
  const roc = rocCurve(labels, probs);
  assert.deepEqual(roc.thresholds.slice(1), [0.9, 0.8, 0.7, 0.3, 0.2, 0.1]);
  assert.equal(roc.fpr.at(-1), 1);
  assert.equal(roc.tpr.at(-1), 1);
  const pr = prCurve(labels, probs);
  assert.deepEqual(pr.precision.slice(1), [1, 1, 2 / 3, 2 / 4, 3 / 5, 3 / 6]);
  const bins = calibrationBins(labels, probs, 5);
  assert.equal(bins.reduce((a, b) => a + b.count, 0), 6);
  const top = bins.find((b) => b.lo === 0.8)!;
  assert.equal(top.count, 2);
  close(top.fractionPositive, 1, 1e-12, "top bin");
  close(top.meanProb, 0.85, 1e-12, "top bin mean");
});

// 20 positives, 8 negatives, crafted so that sens95, Youden and 0.5 disagree.
const POS = [
  0.98,
  0.96,
  0.94,
  0.92,
  0.9,
  0.88,
  0.86,
  0.84,
  0.82,
  0.8,
  0.78,
  0.76,
  0.74,
  0.72,
  0.7,
  0.65,
  0.58,
  0.56,
  0.51,
  0.05,
];
const NEG = [0.1, 0.2, 0.3, 0.4, 0.45, 0.52, 0.53, 0.61];
const TL = [...POS.map(() => 1), ...NEG.map(() => 0)];
const TP = [...POS, ...NEG];

Deno.test("threshold: sens95, youden and 0.5 on crafted data", () => {
  const s = chooseThreshold(TL, TP, "sens95");
  assert.equal(s.value, 0.51);
  close(s.sensitivity, 0.95, 1e-12, "sens95 sensitivity");
  close(s.specificity, 5 / 8, 1e-12, "sens95 specificity");
  const y = chooseThreshold(TL, TP, "youden");
  assert.equal(y.value, 0.65);
  close(y.sensitivity, 0.8, 1e-12, "youden sensitivity");
  close(y.specificity, 1, 1e-12, "youden specificity");
  const h = chooseThreshold(TL, TP, "0.5");
  assert.equal(h.value, 0.5);
  close(h.sensitivity, 0.95, 1e-12, "0.5 sensitivity");
  // the chosen threshold reproduces its rates through computeMetrics
  const m = computeMetrics(TL, TP, s.value);
  close(m.sensitivity, s.sensitivity, 1e-12, "consistent");
  close(m.specificity, s.specificity, 1e-12, "consistent");
  // tie in specificity: take the lowest threshold keeping it (more sensitivity for free)
  const t = chooseThreshold([1, 1, 1, 0, 0], [0.9, 0.8, 0.7, 0.6, 0.1], "sens95");
  assert.equal(t.value, 0.7);
  assert.equal(parseThresholdMethod("Youden"), "youden");
  assert.throws(() => parseThresholdMethod("f1"), /sens95, youden, 0.5/);
  assert.throws(() => chooseThreshold([1, 1], [0.4, 0.5], "sens95"), /both classes/);
  const sweep = thresholdSweep(TL, TP, 10);
  assert.equal(sweep.length, 11);
  assert.equal(sweep[0].sensitivity, 1);
  assert.equal(sweep[0].specificity, 0);
});

Deno.test("bootstrap: seeded, contains the estimate, cluster resampling widens", () => {
  const rand = mulberry32(3);
  const labels: number[] = [], probs: number[] = [], groups: string[] = [];
  // 30 patients with 8 near-identical images each: images are not independent
  for (let p = 0; p < 30; p++) {
    const y = p % 3 === 0 ? 0 : 1;
    const base = y ? 0.45 + rand() * 0.55 : rand() * 0.6;
    for (let k = 0; k < 8; k++) {
      labels.push(y);
      probs.push(Math.min(1, Math.max(0, base + (rand() - 0.5) * 0.02)));
      groups.push(`patient${p}`);
    }
  }
  const point = computeMetrics(labels, probs, 0.5);
  const a = bootstrapCI(labels, probs, 0.5, { iterations: 300, seed: 1 });
  const b = bootstrapCI(labels, probs, 0.5, { iterations: 300, seed: 1 });
  const c = bootstrapCI(labels, probs, 0.5, { iterations: 300, seed: 2 });
  assert.deepEqual(a, b, "same seed -> same intervals");
  assert.notDeepEqual(a, c, "different seed -> different intervals");
  for (const key of ["accuracy", "rocAuc", "sensitivity", "specificity", "brier"] as const) {
    assert.ok(
      a[key][0] <= point[key] && point[key] <= a[key][1],
      `${key} ${point[key]} in [${a[key]}]`,
    );
  }
  const cl = bootstrapCI(labels, probs, 0.5, { iterations: 300, seed: 1, groups });
  const width = (ci: [number, number]) => ci[1] - ci[0];
  assert.ok(
    width(cl.rocAuc) > 1.5 * width(a.rocAuc),
    `cluster AUC CI ${cl.rocAuc} wider than plain ${a.rocAuc}`,
  );
  assert.ok(width(cl.accuracy) > 1.5 * width(a.accuracy));
  // one-class data: AUC interval undefined
  const one = bootstrapCI([1, 1, 1], [0.2, 0.6, 0.9], 0.5, { iterations: 50 });
  assert.ok(Number.isNaN(one.rocAuc[0]));
  assert.throws(() => bootstrapCI([1, 0], [0.2, 0.3], 0.5, { groups: ["a"] }), /groups/);
});
