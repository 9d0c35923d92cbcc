/**
 * The run's ordered Learner callbacks (fastai style; see CALLBACK_ORDER): progress bar, run
 * status + history, MLflow metrics and the kill-simulating test hook. Early stopping lives in
 * learner.ts and checkpoints in checkpoint.ts.
 */
import { type Callback, CALLBACK_ORDER, type EpochRecord } from "./learner.ts";
import { Progress } from "../util/progress.ts";
import type { Tracker } from "../tracking/types.ts";
import type { RunFolder, RunStatus } from "../runs/mod.ts";

/** Progress bar per epoch: items, rate, ETA, running loss. */
export function progressCallback(opts: { quiet?: boolean; label?: string } = {}): Callback {
  let bar: Progress | null = null;
  let last = 0;
  return {
    order: CALLBACK_ORDER.progress,
    onBatchEnd(l, info) {
      if (!bar) {
        bar = new Progress(`${opts.label ?? "train"} phase ${l.phase} epoch ${l.epoch + 1}`, {
          total: info.total,
          unit: "img",
          quiet: opts.quiet,
        });
        last = 0;
      }
      bar.tick(info.seen - last, { loss: info.loss });
      last = info.seen;
    },
    onEpochEnd(_l, r) {
      bar?.done({ loss: r.loss, val_loss: r.val_loss, val_auc: r.val_auc });
      bar = null;
    },
  };
}

/**
 * After every epoch: run.json (phase, epoch) and history.json (`previousHistory` of earlier
 * phases + this fit's), then `onEpoch`.
 */
export function recordCallback(opts: {
  run: RunFolder;
  status: RunStatus;
  previousHistory: EpochRecord[];
  onEpoch?: (record: EpochRecord) => void;
}): Callback {
  return {
    order: CALLBACK_ORDER.record,
    async onEpochEnd(l, r) {
      opts.status.phase = r.phase;
      opts.status.epoch = r.epoch;
      await opts.run.writeStatus(opts.status);
      await opts.run.writeHistory([...opts.previousHistory, ...l.history]);
      opts.onEpoch?.(r);
    },
  };
}

/** Sends each epoch's metrics to MLflow (step = global epoch). */
export function trackerCallback(tracker: Tracker): Callback {
  return {
    order: CALLBACK_ORDER.tracking,
    async onEpochEnd(_l, r) {
      const metrics: Record<string, number> = {};
      for (const k of ["loss", "accuracy", "auc", "val_loss", "val_accuracy", "val_auc", "lr"]) {
        const v = r[k as keyof EpochRecord] as number;
        if (typeof v === "number") metrics[k] = v; // NaN too: a diverged loss is worth seeing
      }
      metrics.epoch_seconds = r.seconds;
      metrics.phase = r.phase;
      await tracker.logMetrics(metrics, r.epoch);
    },
  };
}

/** Thrown by `abortCallback` (a simulated kill in tests). */
export class TrainingAborted extends Error {}

/** Test hook: throws TrainingAborted once global epoch `after` is saved. */
export function abortCallback(after: number): Callback {
  return {
    order: CALLBACK_ORDER.abort,
    onEpochEnd(_l, r) {
      if (r.epoch >= after) throw new TrainingAborted(`aborted after epoch ${r.epoch} (test hook)`);
    },
  };
}
