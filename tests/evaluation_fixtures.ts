/** Synthetic run directories (config, history, predictions) for evaluation/report tests. */
import { join } from "node:path";
import { mulberry32 } from "../lib/evaluation/bootstrap.ts";

export interface SyntheticRunOptions {
  net: "vgg16" | "resnet50" | "densenet121";
  weights: "formula" | "none" | "imagenet";
  /** Validation and test sizes (test 0 = no predictions-test.json). */
  nVal: number;
  nTest: number;
  /** How well the scores separate the classes (logit shift). */
  separation: number;
  seed: number;
  imagesPerPatient?: number;
  protocol?: "patient" | "seed";
}

function predictions(split: string, n: number, o: SyntheticRunOptions, rand: () => number) {
  const items = [];
  const per = o.imagesPerPatient ?? 2;
  for (let i = 0; i < n; i++) {
    const label = (i % 4 === 0 ? 0 : 1) as 0 | 1; // 75% PNEUMONIA, like the data
    const z = (rand() + rand() + rand() - 1.5) * 2 + (label ? o.separation : -o.separation);
    const prob = Math.round(1e6 / (1 + Math.exp(-z))) / 1e6;
    items.push({
      rel: `${split}/${label ? "PNEUMONIA" : "NORMAL"}/img${i}.jpeg`,
      sha256: (o.seed * 100000 + i).toString(16).padStart(64, "0"),
      patient: `${split}-${label}-p${Math.floor(i / (4 * per))}`,
      label,
      prob,
    });
  }
  return { split, items };
}

export async function makeSyntheticRun(root: string, o: SyntheticRunOptions): Promise<string> {
  const runId = `${o.net}-quick-${o.weights}-${o.protocol ?? "patient"}-${o.seed}`;
  const dir = join(root, runId);
  await Deno.mkdir(dir, { recursive: true });
  const rand = mulberry32(o.seed);
  const isImageNet = o.weights === "imagenet";
  const config = {
    runId,
    net: o.net,
    weights: {
      choice: o.weights,
      source: o.weights,
      md5: "0123456789abcdef0123456789abcdef",
      label: isImageNet ? "imagenet" : `${o.weights} (not ImageNet)`,
      isImageNet,
    },
    profile: "quick",
    protocol: o.protocol ?? "patient",
    thresholdMethod: "sens95",
    data: { root: "/data/chest_xray" },
    split: {
      protocol: o.protocol ?? "patient",
      counts: { train: 100, val: o.nVal, test: o.nTest },
    },
    backend: "wasm",
    gitCommit: "abcdef1234567890",
    createdAt: "2024-01-01T00:00:00Z",
  };
  const epochs = [];
  for (let e = 1; e <= 6; e++) {
    epochs.push({
      epoch: e,
      phase: e <= 4 ? 1 : 2,
      loss: 0.7 / e + 0.1,
      accuracy: 0.7 + 0.04 * e,
      auc: 0.75 + 0.03 * e,
      val_loss: 0.6 / e + 0.15 + rand() * 0.02,
      val_accuracy: 0.72 + 0.035 * e,
      val_auc: 0.78 + 0.025 * e,
      lr: e <= 4 ? 1e-3 : 1e-5,
      seconds: 3,
    });
  }
  await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify(config));
  await Deno.writeTextFile(join(dir, "history.json"), JSON.stringify({ epochs }));
  await Deno.writeTextFile(
    join(dir, "predictions-val.json"),
    JSON.stringify(predictions("val", o.nVal, o, rand)),
  );
  if (o.nTest > 0) {
    await Deno.writeTextFile(
      join(dir, "predictions-test.json"),
      JSON.stringify(predictions("test", o.nTest, { ...o, separation: o.separation * 0.6 }, rand)),
    );
  }
  await Deno.writeTextFile(
    join(dir, "run.json"),
    JSON.stringify({
      status: "finished",
      phase: 2,
      epoch: 6,
      startedAt: "2024-01-01T00:00:00Z",
      finishedAt: `2024-01-01T00:0${o.seed % 10}:00Z`,
    }),
  );
  return dir;
}
