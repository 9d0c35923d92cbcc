/**
 * Fingerprints of weights: the md5 of a file on disk (what Keras' `get_file` checks) and the md5
 * of a net's weights as float32 bytes in Keras order (what caches and run records key on, so two
 * runs with the same numbers share features whatever file they came from).
 */
import { createHash } from "node:crypto";
import type { NetWeights } from "../spec.ts";
import type { WeightLayout } from "../layout.ts";
import { hashFile } from "../../util/fs.ts";

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
export function fileMd5(path: string): Promise<string> {
  return hashFile(path, "md5");
}
