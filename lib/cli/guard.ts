/**
 * `deno task guard [--data DIR] [--out FILE] [--train-images N] [--seed S]`: fits the
 * out-of-distribution guard (lib/inference/guard.ts) on a dataset's training images, sets its
 * threshold on half of the validation patients, and prints the false-alarm rate on the other
 * half and the scores of generated foreign images. `deno task serve` picks the file up.
 */
import { join } from "node:path";
import { nonNegativeInt, parseCli, positiveInt, usageError } from "./args.ts";
import { fitGuard, GUARD_FILE } from "../inference/guard.ts";
import { dataDir, outputsDir } from "../util/paths.ts";

const USAGE = `usage: deno task guard [options]
  --data DIR          dataset root (default: CXR_DATA or data/chest_xray)
  --out FILE          where to write the guard (default: <outputs>/${GUARD_FILE})
  --train-images N    fit on a stratified N of the training part (default: all)
  --seed S            split seed (default 42, as training)
  --shifts            also report the share of held-out images flagged under each shift of the
                      robustness suite (contrast, gamma, blur, noise, JPEG, rotation...)
  --quiet             no progress bar
  --help              this text`;

export async function main(args: string[]): Promise<number> {
  const cli = { usage: USAGE, prefix: "guard" };
  const values = parseCli(args, {
    data: { type: "string" },
    out: { type: "string" },
    "train-images": { type: "string" },
    seed: { type: "string" },
    shifts: { type: "boolean", default: false },
    quiet: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  }, cli);
  if (typeof values === "number") return values;
  let trainImages: number | undefined, seed: number | undefined;
  try {
    trainImages = positiveInt("train-images", values["train-images"], undefined);
    seed = nonNegativeInt("seed", values.seed, undefined);
  } catch (e) {
    return usageError(cli, (e as Error).message);
  }
  const out = values.out ?? join(outputsDir(), GUARD_FILE);
  try {
    const t0 = performance.now();
    const g = await fitGuard({
      data: values.data ?? dataDir(),
      trainImages,
      seed,
      shifts: values.shifts,
      progress: !values.quiet,
    });
    await Deno.mkdir(join(out, ".."), { recursive: true });
    await Deno.writeTextFile(out, JSON.stringify(g));
    const fa = g.falseAlarms;
    console.log(
      `guard: fitted on ${g.fit.train} training images (shrinkage ${g.shrinkage.toFixed(3)}), ` +
        `threshold from ${g.fit.calibration} validation images in ${
          ((performance.now() - t0) / 1000).toFixed(1)
        } s`,
    );
    console.log(
      `guard: false alarms on ${fa.n} held-out validation images: ${fa.flagged} (${
        (fa.rate * 100).toFixed(1)
      }%)`,
    );
    for (const f of g.foreign) {
      console.log(
        `guard: foreign "${f.name}": score ${f.score.toFixed(2)} ${
          f.score > 1 ? "flagged" : "MISSED"
        }`,
      );
    }
    for (const sh of g.shifts ?? []) {
      console.log(
        `guard: under ${sh.key} (severity ${sh.severity}): ${sh.flagged}/${sh.n} flagged (${
          (100 * sh.flagged / sh.n).toFixed(1)
        }%)`,
      );
    }
    console.log(`guard: wrote ${out}`);
    return g.foreign.every((f) => f.score > 1) ? 0 : 1;
  } catch (e) {
    console.error(`guard: ${(e as Error).message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
