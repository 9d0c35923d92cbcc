/**
 * The notebooks' robustness step: the run's validation images under the shift suite (a small,
 * fast default for a teaching run; the CLI `deno task robustness` runs the full default), shown
 * as one summary line, the heat map and the table.
 */
import type { ShiftKind } from "../data/shifts.ts";
import { formatRobustness, robustnessSummaryLine } from "../evaluation/robustness.ts";
import { robustnessChart, robustnessForRuns } from "../evaluation/robustness_runs.ts";
import { vegaDisplayWithSvg } from "../charts/render.ts";
import { displayName } from "../models/registry.ts";
import { type Displayable, esc, html, markdown } from "./display.ts";

export interface RobustnessViewOptions {
  /** Validation images, class-balanced (default 24: about 15-60 s per net here). */
  images?: number | "all";
  /** Severities (default [3], the strongest; the CLI default runs 1, 2 and 3). */
  severities?: (1 | 2 | 3)[];
  kinds?: ShiftKind[];
  /** Threshold profile (default validation). */
  threshold?: string;
  seed?: number;
}

/** Run the shift suite on one run and display it (writes robustness.json into the run). */
export async function robustnessView(
  runDir: string,
  opts: RobustnessViewOptions = {},
): Promise<Displayable[]> {
  const [r] = await robustnessForRuns([runDir], {
    images: opts.images ?? 24,
    severities: opts.severities ?? [3],
    kinds: opts.kinds,
    threshold: opts.threshold,
    seed: opts.seed,
    iterations: 500,
  });
  return [
    markdown(
      `**Acquisition shifts** (${r.images.n} validation images, synthetic shifts; ` +
        `\`deno task robustness\` runs more): ${robustnessSummaryLine(r, displayName(r.net))}`,
    ),
    await vegaDisplayWithSvg(robustnessChart([r])),
    html(`<pre>${esc(formatRobustness(r))}</pre>`),
  ];
}
