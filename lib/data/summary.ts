/**
 * What is in a Kaggle-layout dataset and whether it can be used: counts per split and class,
 * patients, class ratio, image sizes, unreadable files, absent splits, and the leak check of
 * both split protocols (`deno task data:summary` prints it).
 */
import { CLASS_NAMES, countByClass, type ImageItem, scanDataset, SPLITS } from "./dataset.ts";
import { decodeImage, imageInfo } from "./images.ts";
import { leakCount, makeSplits } from "./splits.ts";
import { Progress } from "../util/progress.ts";

export interface SizeStats {
  n: number;
  widthMin: number;
  widthMedian: number;
  widthMax: number;
  heightMin: number;
  heightMedian: number;
  heightMax: number;
  /** e.g. { "jpeg 1ch uchar": 4000, "jpeg 3ch uchar": 1216 } */
  modes: Record<string, number>;
}

export interface DataSummary {
  root: string;
  missingSplits: string[];
  warnings: string[];
  splits: Record<
    string,
    {
      normal: number;
      pneumonia: number;
      total: number;
      patientsNormal: number;
      patientsPneumonia: number;
      patients: number;
    }
  >;
  sizes: SizeStats;
  unreadable: { rel: string; error: string }[];
  protocols: Record<
    string,
    {
      train: number;
      val: number;
      /** Validation images that are PNEUMONIA (the rest are NORMAL). */
      valPneumonia: number;
      test: number;
      leaks: number;
      leakPairs: string[];
      notes: string[];
    }
  >;
}

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const s = values.slice().sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function patientsOf(items: readonly ImageItem[], label: number): number {
  return new Set(items.filter((it) => it.label === label).map((it) => it.patient)).size;
}

async function imageStats(
  items: readonly ImageItem[],
  full: boolean,
): Promise<{ sizes: SizeStats; unreadable: { rel: string; error: string }[] }> {
  const widths: number[] = [];
  const heights: number[] = [];
  const modes: Record<string, number> = {};
  const unreadable: { rel: string; error: string }[] = [];
  const progress = new Progress(full ? "decode" : "headers", { total: items.length, unit: "img" });
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      try {
        const info = await imageInfo(item.path);
        // A full decode (kept small: 32 px) finds truncated files that headers hide.
        if (full) await decodeImage(item.path, 32);
        widths.push(info.width);
        heights.push(info.height);
        const mode = `${info.format} ${info.channels}ch ${info.depth}`;
        modes[mode] = (modes[mode] ?? 0) + 1;
      } catch (e) {
        unreadable.push({ rel: item.rel, error: e instanceof Error ? e.message : String(e) });
      }
      progress.tick(1, { unreadable: String(unreadable.length) });
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  progress.done({ unreadable: String(unreadable.length) });
  unreadable.sort((a, b) => (a.rel < b.rel ? -1 : 1));
  return {
    sizes: {
      n: widths.length,
      widthMin: widths.length ? Math.min(...widths) : 0,
      widthMedian: median(widths),
      widthMax: widths.length ? Math.max(...widths) : 0,
      heightMin: heights.length ? Math.min(...heights) : 0,
      heightMedian: median(heights),
      heightMax: heights.length ? Math.max(...heights) : 0,
      modes,
    },
    unreadable,
  };
}

/** Gather the summary (no printing). */
export async function summarizeDataset(
  root: string,
  opts: { full?: boolean; seed?: number; valFraction?: number } = {},
): Promise<DataSummary> {
  const scan = await scanDataset(root);
  const counts = countByClass(scan.items);
  const splits: DataSummary["splits"] = {};
  for (const split of SPLITS) {
    const items = scan.items.filter((it) => it.split === split);
    splits[split] = {
      normal: counts[split][0],
      pneumonia: counts[split][1],
      total: items.length,
      patientsNormal: patientsOf(items, 0),
      patientsPneumonia: patientsOf(items, 1),
      patients: new Set(items.map((it) => it.patient)).size,
    };
  }
  const { sizes, unreadable } = await imageStats(scan.items, opts.full ?? true);
  const protocols: DataSummary["protocols"] = {};
  for (const protocol of ["patient", "seed"] as const) {
    const s = makeSplits(scan.items, { protocol, seed: opts.seed, valFraction: opts.valFraction });
    protocols[protocol] = {
      train: s.train.length,
      val: s.val.length,
      valPneumonia: s.val.filter((it) => it.label === 1).length,
      test: s.test.length,
      leaks: leakCount(s),
      leakPairs: s.leaks.filter((l) => l.patients.length > 0).map((l) =>
        `${l.a}/${l.b}: ${l.patients.length} (${l.patients.slice(0, 5).join(", ")}${
          l.patients.length > 5 ? ", ..." : ""
        })`
      ),
      notes: s.notes,
    };
  }
  return {
    root: scan.root,
    missingSplits: scan.missingSplits,
    warnings: scan.warnings,
    splits,
    sizes,
    unreadable,
    protocols,
  };
}

function pad(s: string | number, n: number): string {
  return String(s).padStart(n);
}

/** Human-readable lines of a summary. */
export function formatSummary(s: DataSummary): string[] {
  const lines: string[] = [`dataset: ${s.root}`];
  lines.push(
    `${"split".padEnd(6)} ${pad(CLASS_NAMES[0], 7)} ${pad(CLASS_NAMES[1], 9)} ${pad("total", 6)} ${
      pad("patients", 9)
    } ${pad("(N/P)", 12)} ${pad("P:N", 6)}`,
  );
  for (const split of SPLITS) {
    if (s.missingSplits.includes(split)) {
      lines.push(`${split.padEnd(6)} absent (no ${split}/ folder)`);
      continue;
    }
    const c = s.splits[split];
    const ratio = c.normal > 0 ? (c.pneumonia / c.normal).toFixed(2) : "-";
    lines.push(
      `${split.padEnd(6)} ${pad(c.normal, 7)} ${pad(c.pneumonia, 9)} ${pad(c.total, 6)} ${
        pad(c.patients, 9)
      } ${pad(`${c.patientsNormal}/${c.patientsPneumonia}`, 12)} ${pad(ratio, 6)}`,
    );
  }
  const z = s.sizes;
  lines.push(
    `image size (${z.n} readable): width ${z.widthMin}..${z.widthMax} (median ${z.widthMedian}), height ${z.heightMin}..${z.heightMax} (median ${z.heightMedian})`,
  );
  lines.push(
    `image modes: ${Object.entries(z.modes).map(([k, v]) => `${k} ${v}`).join(", ") || "-"}`,
  );
  lines.push(`unreadable files: ${s.unreadable.length}`);
  for (const u of s.unreadable) lines.push(`  ${u.rel}: ${u.error}`);
  if (s.missingSplits.length) lines.push(`absent splits: ${s.missingSplits.join(", ")}`);
  for (const w of s.warnings) lines.push(`warning: ${w}`);
  for (const [protocol, p] of Object.entries(s.protocols)) {
    lines.push(
      `protocol ${protocol}: train ${p.train} / val ${p.val} (N/P ${
        p.val - p.valPneumonia
      }/${p.valPneumonia}) / test ${p.test}; leaks: ${p.leaks} patients${
        p.leakPairs.length ? ` (${p.leakPairs.join("; ")})` : ""
      }`,
    );
    for (const note of p.notes) lines.push(`  ${note}`);
  }
  return lines;
}
