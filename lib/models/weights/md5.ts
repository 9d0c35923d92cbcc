/**
 * Fingerprints of weights: the md5 of a file on disk (what Keras' `get_file` checks) and the md5
 * of a net's weights as float32 bytes in Keras order (what caches and run records key on, so two
 * runs with the same numbers share features whatever file they came from).
 */
import { createHash } from "node:crypto";
import type { NetWeights } from "../spec.ts";
import type { WeightLayout } from "../layout.ts";

/** md5 over every weight of `layout` in Keras order (layer, then kind), as float32 bytes. */
export function weightsMd5(weights: NetWeights, layout: WeightLayout): string {
  const hash = createHash("md5");
  for (const entry of layout) {
    for (const w of entry.weights) {
      const tensor = weights.get(entry.layer)?.[w.kind];
      if (!tensor) {
        throw new Error(`weightsMd5: layer ${entry.layer} has no ${w.kind} weight`);
      }
      const bytes = new Uint8Array(
        tensor.data.buffer,
        tensor.data.byteOffset,
        tensor.data.byteLength,
      );
      hash.update(bytes);
    }
  }
  return hash.digest("hex");
}

/** md5 (hex) of a file, read in chunks so large `.h5` files need little memory. */
export async function fileMd5(path: string): Promise<string> {
  const hash = createHash("md5");
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(1 << 20);
  while (true) {
    const n = await file.read(buffer);
    if (n === null) break;
    hash.update(buffer.subarray(0, n));
  }
  return hash.digest("hex");
}
