/** Fixtures for the data tests: small images made with sharp and Kaggle-layout trees. */
import sharp from "sharp";
import { dirname, join } from "node:path";

/** A gray gradient JPEG, `width` x `height`, single channel. */
export async function grayJpeg(width: number, height: number, seed = 0): Promise<Uint8Array> {
  const px = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) px[y * width + x] = (x * 7 + y * 3 + seed * 31) % 256;
  }
  return new Uint8Array(
    await sharp(px, { raw: { width, height, channels: 1 } }).toColourspace("b-w").jpeg({
      quality: 90,
    })
      .toBuffer(),
  );
}

/** Write `bytes` at `path`, creating folders. */
export async function put(path: string, bytes: Uint8Array | string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  if (typeof bytes === "string") await Deno.writeTextFile(path, bytes);
  else await Deno.writeFile(path, bytes);
}

/**
 * A Kaggle-layout tree: `files` maps `split/CLASS/name` to bytes (default: a small gray JPEG).
 */
export async function makeTree(
  root: string,
  files: string[],
  bytesFor?: (rel: string, i: number) => Promise<Uint8Array> | Uint8Array,
): Promise<void> {
  let i = 0;
  for (const rel of files) {
    const bytes = bytesFor ? await bytesFor(rel, i) : await grayJpeg(40, 30, i);
    await put(join(root, rel), bytes);
    i++;
  }
}

/**
 * A synthetic data set with several images per patient: `nNormal` NORMAL patients
 * (IM-xxxx, 1-3 images each) and `nPneu` PNEUMONIA patients (personN, 1-4 images each).
 */
export function syntheticNames(
  split: string,
  nNormal: number,
  nPneu: number,
  offset = 0,
): string[] {
  const out: string[] = [];
  for (let p = 0; p < nNormal; p++) {
    const id = String(offset + p).padStart(4, "0");
    for (let k = 1; k <= 1 + (p % 3); k++) {
      out.push(`${split}/NORMAL/IM-${id}-${String(k).padStart(4, "0")}.jpeg`);
    }
  }
  for (let p = 0; p < nPneu; p++) {
    for (let k = 1; k <= 1 + (p % 4); k++) {
      out.push(`${split}/PNEUMONIA/person${offset + p}_bacteria_${p * 10 + k}.jpeg`);
    }
  }
  return out;
}
