/**
 * Training speed: seconds per epoch per net for phase 1 (head on pooled features) and phase 2
 * (unfrozen tail + head on frontier activations), on synthetic features of the real shapes,
 * extrapolated from a few timed batches to the full train split (~4590 images, patient
 * protocol). Goals: train-all --profile full, cold cache,
 * <= 20 min (<= 30 with augmented views), peak RSS <= 3 GiB on 2 cores.
 */
import { initBackend, tf } from "../lib/tf/backend.ts";
import { getNetSpec, NET_INFO, NET_NAMES } from "../lib/models/registry.ts";
import { cutAt, inferShapes, knownShape } from "../lib/models/graph.ts";
import { buildTfModel } from "../lib/models/tfjs.ts";
import { arraySource, Learner } from "../lib/training/learner.ts";
import { HeadModel } from "../lib/training/model.ts";
import { PROFILES, resolveConfig } from "../lib/training/config.ts";
import { join } from "node:path";
import { outputsDir, runsDir } from "../lib/util/paths.ts";

interface TrainAllRecord {
  finishedAt: string;
  args: string[];
  profile?: string;
  augmentViews?: number;
  coldCache?: boolean;
  wallSeconds: number;
  peakRssBytes: number;
  loadAverage?: { start: number[]; end: number[] };
}

/** Which record answers which goal of the performance issue: cold cache, full profile. */
const TRAIN_ALL_GOALS: [string, number, (r: TrainAllRecord) => boolean][] = [
  ["full, cold cache, no augmentation", 20, (r) => isFullCold(r) && !(r.augmentViews! > 0)],
  ["full, cold cache, augmented views", 30, (r) => isFullCold(r) && r.augmentViews! > 0],
];

function isFullCold(r: TrainAllRecord): boolean {
  return r.profile === "full" && r.coldCache === true;
}

/** Every recorded train-all, oldest first (the history file, else the last record alone). */
async function trainAllRecords(): Promise<TrainAllRecord[]> {
  try {
    const text = await Deno.readTextFile(join(outputsDir(), "train-all-history.jsonl"));
    return text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
  } catch {
    return [JSON.parse(await Deno.readTextFile(join(outputsDir(), "train-all.json")))];
  }
}

function describeRecord(r: TrainAllRecord, goal: number): string {
  const min = r.wallSeconds / 60;
  const load = r.loadAverage
    ? `load average ${r.loadAverage.start.map((x) => x.toFixed(2)).join(" ")} at its start, ${
      r.loadAverage.end.map((x) => x.toFixed(2)).join(" ")
    } at its end`
    : "load average not recorded";
  return `${min.toFixed(1)} min (goal <= ${goal}: ${min <= goal ? "met" : "NOT met"}), peak RSS ${
    (r.peakRssBytes / 2 ** 30).toFixed(2)
  } GiB (goal <= 3), ${load}; \`train-all ${r.args.join(" ")}\` finished ${r.finishedAt}`;
}

const N_TRAIN = 4590;
const BATCH = 32;
const backend = await initBackend();
console.log(`backend: ${backend.name} (${backend.detail})`);
const rows: string[] = [];
for (const net of NET_NAMES) {
  const base = getNetSpec(net);
  const shapes = inferShapes(base);
  const dim = shapes.get(base.output)!.at(-1)!;
  // Phase 1: a whole epoch on in-memory pooled features.
  const pooled = new Float32Array(N_TRAIN * dim).map(() => Math.random());
  const labels = Array.from({ length: N_TRAIN }, (_, i) => (i % 4 === 0 ? 0 : 1));
  const m1 = new HeadModel({ dim, dropout: 0.5, standardization: null, seed: 1 });
  const src = arraySource(pooled, [dim], labels);
  const l1 = new Learner({
    model: m1,
    train: src,
    val: arraySource(pooled.subarray(0, 600 * dim), [dim], labels.slice(0, 600)),
    phase: 1,
    lr: 1e-3,
    batchSize: BATCH,
    seed: 1,
    classWeights: [2, 0.67],
  });
  const t1 = performance.now();
  await l1.fit(1);
  const p1 = (performance.now() - t1) / 1000;
  m1.dispose();
  let p2 = NaN;
  const cfg = resolveConfig({ net, weights: "none" }, "full");
  const from = cfg.phase2?.unfreezeFrom ?? NET_INFO[net].defaultUnfreezeFrom;
  if (from) {
    const cut = cutAt(base, from);
    const inShapes = cut.frontier.map((f) => knownShape(shapes.get(f)!, f));
    const steps = 3;
    const n = BATCH * steps;
    const data = inShapes.map((s) =>
      new Float32Array(n * s.reduce((a, b) => a * b, 1)).map(() => Math.random())
    );
    const source = {
      size: n,
      labels: Float32Array.from(labels.slice(0, n)),
      batch: (idx: number[]) =>
        inShapes.map((s, j) => {
          const per = s.reduce((a, b) => a * b, 1);
          const out = new Float32Array(idx.length * per);
          idx.forEach((i, k) => out.set(data[j].subarray(i * per, (i + 1) * per), k * per));
          return { data: out, shape: [idx.length, ...s] };
        }),
    };
    const tail = buildTfModel(cut.tail);
    const m2 = new HeadModel({ dim, dropout: 0.5, standardization: null, tail, seed: 1 });
    const l2 = new Learner({
      model: m2,
      train: source,
      val: source,
      phase: 2,
      lr: 1e-5,
      batchSize: BATCH,
      seed: 1,
      classWeights: null,
    });
    await l2.fit(1); // warm-up (kernel setup)
    const t2 = performance.now();
    await l2.fit(2);
    const per = (performance.now() - t2) / 1000 / (2 * n); // train + val pass per image
    p2 = per * N_TRAIN * 1.13; // + val (~13% of train) at similar cost
    m2.dispose();
    rows.push(
      `${net.padEnd(12)} phase1 ${p1.toFixed(2)} s/epoch   phase2 (from ${from}) ~${
        p2.toFixed(0)
      } s/epoch`,
    );
  } else {
    rows.push(`${net.padEnd(12)} phase1 ${p1.toFixed(2)} s/epoch   phase2 none`);
  }
  console.log(rows.at(-1));
}
console.log(
  `profile full: phase1 ${PROFILES.full.phase1Epochs} epochs max, phase2 ${PROFILES.full.phase2Epochs} epochs`,
);
console.log(`peak RSS now: ${(Deno.memoryUsage().rss / 2 ** 30).toFixed(2)} GiB (goal <= 3 GiB)`);
console.log(
  "goal: train-all --profile full on 2 cores, cold cache: <= 20 min, <= 30 with augmented views",
);
// The whole job is measured by train-all itself (outputs/train-all-history.jsonl, one line per
// job that trained something: wall time, peak RSS, load averages, cold cache or not); running it
// here would take a quarter of an hour.
try {
  const records = await trainAllRecords();
  if (records.length === 0) throw new Error("no records");
  for (const [label, goal, pick] of TRAIN_ALL_GOALS) {
    const r = records.findLast(pick);
    console.log(
      r
        ? `train-all ${label}: ${describeRecord(r, goal)}`
        : `train-all ${label}: no such run recorded yet (goal <= ${goal} min)`,
    );
  }
  const last = records.at(-1)!;
  if (!TRAIN_ALL_GOALS.some(([, , pick]) => pick(last))) {
    console.log(`last train-all (not a cold full run): ${describeRecord(last, 30)}`);
  }
} catch {
  // No train-all record: add up the full-profile runs' own start/finish times (run.json).
  let seconds = 0;
  const nets: string[] = [];
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync(runsDir())];
  } catch { /* no runs yet */ }
  for (const e of entries) {
    if (!e.isDirectory || !e.name.includes("-full-")) continue;
    try {
      const run = JSON.parse(await Deno.readTextFile(join(runsDir(), e.name, "run.json")));
      if (run.status !== "finished" || !run.finishedAt) continue;
      seconds += (Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000;
      nets.push(e.name);
    } catch { /* not a run */ }
  }
  console.log(
    nets.length
      ? `full-profile runs in outputs/runs (${nets.join(", ")}): ${
        (seconds / 60).toFixed(1)
      } min of training wall time in all (goal <= 30 for train-all); peak RSS and load average not recorded`
      : "no full-profile run yet: run `deno task train-all --profile full` to measure",
  );
}
tf.disposeVariables();
