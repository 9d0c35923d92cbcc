import assert from "node:assert/strict";
import { join } from "node:path";
import { wilsonInterval } from "../lib/evaluation/bootstrap.ts";
import { calibrateThreshold, positivesNeeded } from "../lib/evaluation/calibration.ts";
import { chooseThreshold } from "../lib/evaluation/threshold.ts";
import {
  listProfiles,
  resolveProfile,
  saveSiteProfile,
  type ThresholdProfile,
} from "../lib/evaluation/profiles.ts";
import { mulberry32 } from "../lib/util/random.ts";

/** Standard normal CDF (Abramowitz-Stegun 7.1.26 erf, |error| < 1.5e-7). */
function phi(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const erf = 1 - t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 +
                t * (-1.453152027 + t * 1.061405429)))) *
      Math.exp(-z * z);
  return x >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

/** A population of logits: NORMAL ~ N(mu0, 1), PNEUMONIA ~ N(mu1, 1); probabilities = sigmoid. */
function sample(n0: number, n1: number, mu0: number, mu1: number, rand: () => number) {
  const g = () => {
    const u = 1 - rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
  const labels: number[] = [];
  const probs: number[] = [];
  for (let i = 0; i < n0 + n1; i++) {
    const y = i < n0 ? 0 : 1;
    labels.push(y);
    probs.push(1 / (1 + Math.exp(-((y ? mu1 : mu0) + g()))));
  }
  return { labels, probs };
}

const logit = (p: number) => Math.log(p / (1 - p));

Deno.test("calibration: positives needed for the small-sample warning", () => {
  const n = positivesNeeded(0.95, 0.9);
  assert.ok(wilsonInterval(Math.ceil(0.95 * n), n)[0] >= 0.9);
  assert.ok(wilsonInterval(Math.ceil(0.95 * (n - 1)), n - 1)[0] < 0.9, "and no fewer");
  assert.ok(n > 50 && n < 200, `${n}`);
  assert.ok(positivesNeeded(0.99, 0.9) < n, "a higher target is easier to bound above 0.90");
  const small = sample(20, 30, -1.5, 1.5, mulberry32(1));
  const c = calibrateThreshold(small.labels, small.probs, { iterations: 200 });
  assert.ok(c.warnings.some((w) => w.includes(`at least ${n}`)), c.warnings.join("\n"));
  const big = sample(400, 400, -3, 3, mulberry32(2));
  assert.deepEqual(calibrateThreshold(big.labels, big.probs, { iterations: 200 }).warnings, []);
});

Deno.test("calibration on a shifted sample moves the threshold the right way", () => {
  const rand = mulberry32(5);
  const val = sample(300, 300, -1.5, 1.5, rand);
  const valT = chooseThreshold(val.labels, val.probs, "sens95").value;
  // Scores drift upward at the new site (as on normal images from elsewhere): the site
  // threshold must rise, and the validation threshold there loses specificity.
  const up = sample(300, 300, -0.5, 2.5, rand);
  const cu = calibrateThreshold(up.labels, up.probs, { iterations: 200 });
  assert.ok(cu.value > valT, `site threshold ${cu.value} should exceed validation ${valT}`);
  assert.deepEqual(logit(cu.value) - logit(valT) > 0.5, true, "by about the drift (1 logit)");
  assert.ok(cu.sensitivity >= 0.95);
  const down = sample(300, 300, -2.5, 0.5, rand);
  assert.ok(calibrateThreshold(down.labels, down.probs, { iterations: 200 }).value < valT);
});

Deno.test("calibration: the CI covers the true sensitivity and specificity in a simulation", () => {
  // 150 simulated sites, each a sample of 120 + 120 from a known population; the truth at the
  // chosen threshold comes from the normal CDF. A 95% interval should cover it ~95% of the time.
  const rand = mulberry32(11);
  const [mu0, mu1] = [-1.2, 1.2];
  let coverSens = 0, coverSpec = 0;
  const sims = 150;
  for (let s = 0; s < sims; s++) {
    const d = sample(120, 120, mu0, mu1, rand);
    const c = calibrateThreshold(d.labels, d.probs, { iterations: 300, seed: s });
    const t = logit(c.value);
    const trueSens = 1 - phi(t - mu1);
    const trueSpec = phi(t - mu0);
    if (c.ci.sensitivity[0] <= trueSens && trueSens <= c.ci.sensitivity[1]) coverSens++;
    if (c.ci.specificity[0] <= trueSpec && trueSpec <= c.ci.specificity[1]) coverSpec++;
  }
  console.log(`coverage: sensitivity ${coverSens / sims}, specificity ${coverSpec / sims}`);
  assert.ok(coverSens / sims >= 0.88, `sensitivity coverage ${coverSens / sims}`);
  assert.ok(coverSpec / sims >= 0.88, `specificity coverage ${coverSpec / sims}`);
});

Deno.test("profiles: site profiles never overwrite the validation threshold", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cxr_profiles_" });
  try {
    const meta = JSON.stringify({
      runId: "r1",
      net: "densenet121",
      threshold: { method: "sens95", value: 0.4, val_sensitivity: 0.95, val_specificity: 0.9 },
    });
    await Deno.writeTextFile(join(dir, "classifier.json"), meta);
    const site = (name: string, value: number, sha256: string): ThresholdProfile => ({
      name,
      value,
      method: "target-sensitivity",
      sensitivity: 0.95,
      specificity: 0.5,
      data: { path: "/x", sha256, n: 10, positives: 5, negatives: 5, patients: null },
    });
    for (const bad of ["validation", "site:validation!", "Site:A", ""]) {
      let msg = "";
      await saveSiteProfile(dir, site(bad, 0.7, "a")).catch((e) => msg = e.message);
      assert.ok(msg.includes("profile name"), `"${bad}" refused: ${msg}`);
    }
    await saveSiteProfile(dir, site("site:a", 0.7, "h1"));
    await saveSiteProfile(dir, site("b", 0.2, "h2")); // bare name -> site:b
    assert.deepEqual(await Deno.readTextFile(join(dir, "classifier.json")), meta, "untouched");
    assert.deepEqual((await resolveProfile(dir)).value, 0.4);
    assert.deepEqual((await resolveProfile(dir, "validation")).value, 0.4);
    assert.deepEqual((await resolveProfile(dir, "site:a")).value, 0.7);
    assert.deepEqual((await listProfiles(dir)).map((p) => p.name), [
      "validation",
      "site:a",
      "site:b",
    ]);
    // Same name, other data: refused; same data: replaced; --replace: replaced.
    let msg = "";
    await saveSiteProfile(dir, site("site:a", 0.9, "other")).catch((e) => msg = e.message);
    assert.ok(msg.includes("already exists"), msg);
    await saveSiteProfile(dir, site("site:a", 0.75, "h1"));
    assert.deepEqual((await resolveProfile(dir, "a")).value, 0.75);
    await saveSiteProfile(dir, site("site:a", 0.8, "other"), { replace: true });
    assert.deepEqual((await resolveProfile(dir, "site:a")).value, 0.8);
    msg = "";
    await resolveProfile(dir, "site:zz").catch((e) => msg = e.message);
    assert.ok(msg.includes("has: validation, site:a, site:b"), msg);
    assert.deepEqual((await resolveProfile(dir)).value, 0.4, "validation still 0.4");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
