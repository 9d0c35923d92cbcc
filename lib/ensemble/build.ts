/**
 * An ensemble of trained runs as a run of its own (`outputs/runs/ensemble-<combine>-<hash8>/`):
 * its predictions on every split all members were evaluated on are the combined member
 * predictions, its threshold is chosen on those validation predictions only (evaluateRun), and
 * it is evaluated, charted, reported, tracked and served like a net. Members must have
 * predicted the same validation images (same data, split protocol and seed); test and external
 * splits are combined where every member has them.
 */
import { createHash } from "node:crypto";
import { basename, resolve } from "node:path";
import {
  evaluateRun,
  type Evaluation,
  listPredictionFiles,
  loadPredictions,
  type PredictionsFile,
  readRunConfig,
  type RunConfigView,
} from "../evaluation/evaluate.ts";
import type { ThresholdMethod } from "../evaluation/threshold.ts";
import {
  combineProbs,
  ENSEMBLE_FORMAT,
  ENSEMBLE_NET,
  type EnsembleCombine,
  type EnsembleMeta,
} from "../inference/ensemble.ts";
import type { WeightsInfo } from "../inference/meta.ts";
import { openTracker } from "../tracking/tracker.ts";
import type { Tracker } from "../tracking/types.ts";
import { exists, writeJsonAtomic } from "../util/fs.ts";
import { predictionsFileName, RunFolder } from "../runs/mod.ts";

export interface EnsembleOptions {
  combine?: EnsembleCombine;
  /** Threshold method (default: the first member's, else sens95). */
  method?: ThresholdMethod;
  /** A tracker to use; null: none; undefined: openTracker unless `mlflow` is false. */
  tracker?: Tracker | null;
  mlflow?: boolean;
  /** Rebuild even when a finished ensemble of the same member predictions exists. */
  force?: boolean;
  log?: (line: string) => void;
}

export interface EnsembleResult {
  runId: string;
  runDir: string;
  evaluation: Evaluation;
  skipped: boolean;
}

interface Member {
  dir: string;
  runId: string;
  config: RunConfigView | null;
  preds: Record<string, PredictionsFile>;
}

async function readMember(dir: string): Promise<Member> {
  const files = await listPredictionFiles(dir).catch(() => ({} as Record<string, string>));
  if (!files.val) {
    const val = predictionsFileName("val");
    throw new Error(`ensemble member ${dir}: no ${val} (train or evaluate it first)`);
  }
  const preds: Record<string, PredictionsFile> = {};
  for (const [key, path] of Object.entries(files)) preds[key] = await loadPredictions(path);
  const config = await readRunConfig(dir);
  return { dir, runId: basename(dir), config, preds };
}

/** Item identity across members: its path and, when known, its bytes. */
const itemKey = (it: { rel: string; sha256?: string }) => `${it.rel}\n${it.sha256 ?? ""}`;

/**
 * Combined predictions of one split, in the first member's order; throws when members did not
 * predict the same images with the same labels (`strict`), or returns null (other splits).
 */
export function combineSplit(
  key: string,
  files: PredictionsFile[],
  combine: EnsembleCombine,
  strict: boolean,
): PredictionsFile | null {
  const first = files[0];
  const index = files.map((f) => new Map(f.items.map((it, i) => [itemKey(it), i])));
  const mismatch = files.findIndex((f, m) =>
    f.items.length !== first.items.length ||
    first.items.some((it) => f.items[index[m].get(itemKey(it)) ?? -1]?.label !== it.label)
  );
  if (mismatch >= 0) {
    if (!strict) return null;
    throw new Error(
      `ensemble: member ${mismatch + 1} predicted other ${key} images than member 1 ` +
        `(${files[mismatch].items.length} vs ${first.items.length}); members must share data, ` +
        `split protocol and seed so that one validation set chooses the threshold`,
    );
  }
  const probs = files.map((f, m) =>
    first.items.map((it) => f.items[index[m].get(itemKey(it))!].prob)
  );
  const combined = combineProbs(probs, combine);
  return {
    split: key,
    items: first.items.map((it, i) => ({
      rel: it.rel,
      ...(it.sha256 ? { sha256: it.sha256 } : {}),
      ...(it.patient ? { patient: it.patient } : {}),
      label: it.label,
      prob: Math.min(1, Math.max(0, combined[i])),
    })),
    ...(first.source ? { source: first.source } : {}),
  };
}

function weightsOf(members: Member[]): WeightsInfo {
  const ws = members.map((m) => m.config?.weights ?? {});
  const isImageNet = ws.every((w) => w.isImageNet === true);
  const labels = [...new Set(ws.map((w) => w.label ?? w.choice ?? "unknown"))];
  const label = labels.join(" + ");
  return {
    label: isImageNet || /not ImageNet/i.test(label) ? label : `${label} (not ImageNet)`,
    md5: createHash("md5").update(ws.map((w) => w.md5 ?? "").join(",")).digest("hex"),
    isImageNet,
    choice: [...new Set(ws.map((w) => w.choice ?? "unknown"))].join("+"),
  };
}

/** `ensemble-<combine>-<hash8 of the member run ids>`: same members, same folder. */
export function ensembleRunId(memberIds: string[], combine: EnsembleCombine): string {
  const hash = createHash("sha256").update(JSON.stringify([...memberIds].sort())).digest("hex");
  return `${ENSEMBLE_NET}-${combine}-${hash.slice(0, 8)}`;
}

/** Builds (or keeps, when its inputs did not change) the ensemble of `memberDirs`. */
export async function buildEnsemble(
  memberDirs: string[],
  opts: EnsembleOptions = {},
): Promise<EnsembleResult> {
  const log = opts.log ?? (() => {});
  const dirs = memberDirs.map((d) => resolve(d));
  if (new Set(dirs).size < 2) throw new Error("ensemble: needs at least two different runs");
  const root = resolve(dirs[0], "..");
  if (dirs.some((d) => resolve(d, "..") !== root)) {
    throw new Error(`ensemble: member runs must be in one runs folder (${root})`);
  }
  const members = await Promise.all(dirs.map(readMember));
  if (members.some((m) => m.config?.net === ENSEMBLE_NET)) {
    throw new Error("ensemble: a member is itself an ensemble");
  }
  const combine = opts.combine ?? "prob";
  const method = opts.method ??
    (members[0].config?.thresholdMethod as ThresholdMethod | undefined) ?? "sens95";
  const runId = ensembleRunId(members.map((m) => m.runId), combine);
  const run = RunFolder.of(runId, root);
  const runDir = run.dir;

  const keys = Object.keys(members[0].preds).filter((k) => members.every((m) => m.preds[k]));
  const combined: Record<string, PredictionsFile> = {};
  for (const key of keys) {
    const c = combineSplit(key, members.map((m) => m.preds[key]), combine, key === "val");
    if (c) combined[key] = c;
    else log(`split ${key}: members predicted different images; left out of the ensemble`);
  }
  const inputsHash = createHash("sha256")
    .update(JSON.stringify({ combine, method, combined }))
    .digest("hex");
  const status = await run.readStatus();
  if (!opts.force && status?.status === "finished" && status.inputsHash === inputsHash) {
    log(`ensemble ${runId} is up to date`);
    const evaluation = await run.readEvaluation<Evaluation>();
    if (!evaluation) throw new Error(`${run.evaluationPath} is missing: rerun with force`);
    return { runId, runDir, evaluation, skipped: true };
  }
  await Deno.remove(runDir, { recursive: true }).catch(() => {});
  await Deno.mkdir(runDir, { recursive: true });
  const startedAt = new Date().toISOString();
  const first = members[0].config as Record<string, unknown> | null;
  const weights = weightsOf(members);
  await run.writeConfig({
    runId,
    net: ENSEMBLE_NET,
    combine,
    thresholdMethod: method,
    members: members.map((m) => ({
      runId: m.runId,
      net: m.config?.net ?? "unknown",
      intensity: (m.config as { intensity?: string } | null)?.intensity ?? "off",
      augmentViews: (m.config as { augmentViews?: number } | null)?.augmentViews ?? 0,
    })),
    profile: first?.profile,
    protocol: first?.protocol,
    valFraction: first?.valFraction,
    seed: first?.seed,
    ...(first?.subset ? { subset: first.subset } : {}),
    weights,
    data: members[0].config?.data,
    split: members[0].config?.split,
    createdAt: startedAt,
  });
  for (const [key, p] of Object.entries(combined)) {
    await run.writePredictions(key, p);
  }
  const evaluation = await evaluateRun(runDir, { method });
  const meta: EnsembleMeta = {
    format: ENSEMBLE_FORMAT,
    runId,
    net: ENSEMBLE_NET,
    combine,
    members: members.map((m) => m.runId),
    threshold: {
      method: evaluation.threshold.method,
      value: evaluation.threshold.value,
      val_sensitivity: evaluation.threshold.val_sensitivity,
      val_specificity: evaluation.threshold.val_specificity,
    },
    weights,
    createdAt: startedAt,
  };
  await writeJsonAtomic(run.ensembleMetaPath, meta, 1);
  const mlflowRunId = await trackEnsemble(runDir, meta, evaluation, opts);
  await run.writeStatus({
    status: "finished",
    phase: 0,
    epoch: 0,
    startedAt,
    finishedAt: new Date().toISOString(),
    inputsHash,
    ...(mlflowRunId ? { mlflowRunId } : {}),
  });
  const v = evaluation.splits.val.metrics;
  log(
    `ensemble ${runId} (${combine} of ${members.length}): val ROC-AUC ${v.rocAuc.toFixed(4)}, ` +
      `threshold ${evaluation.threshold.value.toFixed(3)} (${method}, from validation)`,
  );
  return { runId, runDir, evaluation, skipped: false };
}

/** One MLflow run for the ensemble: params, final metrics, its files. Never fails the build. */
async function trackEnsemble(
  runDir: string,
  meta: EnsembleMeta,
  evaluation: Evaluation,
  opts: EnsembleOptions,
): Promise<string | null> {
  if (opts.tracker === null || opts.mlflow === false) return null;
  try {
    const tracker = opts.tracker ?? await openTracker({ runName: meta.runId });
    await tracker.logParams({
      net: ENSEMBLE_NET,
      combine: meta.combine,
      members: meta.members.join(","),
      n_members: meta.members.length,
      threshold_method: meta.threshold.method,
    });
    await tracker.setTags({
      "cxr.net": ENSEMBLE_NET,
      "cxr.weights.label": meta.weights.label,
      "cxr.weights.imagenet": String(meta.weights.isImageNet),
    });
    const v = evaluation.splits.val.metrics;
    await tracker.logMetrics({
      final_val_auc: v.rocAuc,
      final_val_accuracy: v.accuracy,
      final_val_sensitivity: v.sensitivity,
      final_val_specificity: v.specificity,
      threshold: meta.threshold.value,
    }, 0);
    const run = new RunFolder(runDir);
    for (const f of [run.configPath, run.evaluationPath, run.ensembleMetaPath]) {
      await tracker.logArtifact(f).catch(() => {});
    }
    if (await exists(run.chartsDir)) {
      await tracker.logArtifact(run.chartsDir, "charts").catch(() => {});
    }
    await tracker.end("FINISHED");
    return tracker.backend === "off" ? null : tracker.runId;
  } catch (e) {
    opts.log?.(`ensemble: not logged to MLflow: ${(e as Error).message}`);
    return null;
  }
}
