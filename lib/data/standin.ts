/**
 * A stand-in "site" folder for trying calibration and external sets without data from another
 * hospital: images of patients a run never trained on (its patient-disjoint validation),
 * optionally under an acquisition shift, written as `DIR/{NORMAL,PNEUMONIA}/*` (symlinks when
 * unshifted, lossless PNGs when shifted). For tests, the README example and teaching; it is
 * not a substitute for real data from elsewhere.
 */
import { basename, join } from "node:path";
import sharp from "sharp";
import { decodeImage } from "./images.ts";
import { applyShifts, type Shift } from "./shifts.ts";

export interface StandinItem {
  path: string;
  label: 0 | 1;
}

/** Write the folder; returns the number of images per class [NORMAL, PNEUMONIA]. */
export async function writeStandinSite(
  items: readonly StandinItem[],
  dir: string,
  opts: { shifts?: readonly Shift[] } = {},
): Promise<[number, number]> {
  const counts: [number, number] = [0, 0];
  for (const cls of ["NORMAL", "PNEUMONIA"]) await Deno.mkdir(join(dir, cls), { recursive: true });
  for (const it of items) {
    const cls = it.label ? "PNEUMONIA" : "NORMAL";
    const name = basename(it.path);
    if (!opts.shifts?.length) {
      await Deno.symlink(it.path, join(dir, cls, name));
    } else {
      const img = await decodeImage(it.path);
      const side = Math.round(Math.sqrt(img.data.length / 3));
      const px = Uint8Array.from(await applyShifts(img.data, opts.shifts));
      await sharp(px, { raw: { width: side, height: side, channels: 3 } }).png()
        .toFile(join(dir, cls, name.replace(/\.[^.]+$/, ".png")));
    }
    counts[it.label]++;
  }
  return counts;
}
