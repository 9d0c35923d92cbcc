/**
 * Adding to a finished training run's MLflow run after the fact (report, robustness suite,
 * site profiles): reopen it from the run folder's `run.json`, log, end it FINISHED again.
 * A run trained with --no-mlflow has no MLflow run: nothing is logged. A down server never
 * fails the caller: the error is printed and the caller goes on.
 */
import { basename } from "node:path";
import { RunFolder } from "../runs/mod.ts";
import { openTracker, type Tracker } from "./tracker.ts";

/** Log into the MLflow run of `runDir`; false when it has none or logging failed (printed). */
export async function logToRunMlflow(
  runDir: string,
  what: string,
  log: (tracker: Tracker) => Promise<void>,
): Promise<boolean> {
  const status = await new RunFolder(runDir).readStatus();
  if (!status?.mlflowRunId) return false;
  try {
    // the run itself, where it was logged: never a new, empty run beside it
    const tracker = await openTracker({
      runName: basename(runDir),
      resumeRunId: status.mlflowRunId,
      resumeUri: status.mlflowUri,
      mustExist: true,
    });
    await log(tracker);
    await tracker.end("FINISHED");
    return true;
  } catch (e) {
    console.error(
      `warning: ${what} not logged to the MLflow run of ${runDir}: ${(e as Error).message}`,
    );
    return false;
  }
}
