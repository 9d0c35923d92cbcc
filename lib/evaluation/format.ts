/** One-screen text of an evaluation (terminals: `deno task evaluate`, `deno task ensemble`). */
import { type Evaluation, thresholdLabel } from "./evaluate.ts";

function fmt(v: number | null | undefined, pct = false): string {
  if (typeof v !== "number" || !Number.isFinite(v)) return "n/a";
  return pct ? `${(100 * v).toFixed(1)}%` : v.toFixed(3);
}

/** Text summary of an evaluation, one line per split. */
export function formatEvaluation(ev: Evaluation): string {
  const lines = [
    `${ev.runId}${ev.notImageNet ? `  [NOT IMAGENET: ${ev.weightsLabel}]` : ""}`,
    `threshold ${fmt(ev.threshold.value)} (${thresholdLabel(ev.threshold)}; on validation: ` +
    `sensitivity ${fmt(ev.threshold.val_sensitivity, true)}, specificity ${
      fmt(ev.threshold.val_specificity, true)
    })`,
  ];
  for (const [key, s] of Object.entries(ev.splits)) {
    const m = s.metrics;
    const ci = (k: "accuracy" | "rocAuc" | "sensitivity" | "specificity", pct: boolean) =>
      `${fmt(m[k], pct)} [${fmt(s.ci[k]?.[0], pct)}–${fmt(s.ci[k]?.[1], pct)}]`;
    lines.push(
      `  ${key.padEnd(5)} n=${m.n} (${m.positives} pneumonia / ${m.negatives} normal)  ` +
        `acc ${ci("accuracy", true)}  AUC ${ci("rocAuc", false)}  ` +
        `sens ${ci("sensitivity", true)}  spec ${ci("specificity", true)}`,
    );
    const d = s.fromValidation;
    if (d) {
      const delta = (k: keyof typeof d, pct: boolean) => {
        const f = (x: number) =>
          (x >= 0 ? "+" : "") + (pct ? `${(100 * x).toFixed(1)}` : x.toFixed(3));
        return `${f(d[k].delta)} [${f(d[k].ci[0])}, ${f(d[k].ci[1])}]`;
      };
      lines.push(
        `        vs validation: AUC ${delta("rocAuc", false)}  sens ${
          delta("sensitivity", true)
        } pts  spec ${delta("specificity", true)} pts`,
      );
    }
  }
  return lines.join("\n");
}
