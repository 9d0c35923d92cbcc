/** The original project's classification head: GAP, dropout, one sigmoid unit (P(pneumonia)). */
import { NetBuilder } from "./builder.ts";
import type { NetSpec } from "./spec.ts";

export const HEAD_LAYERS = ["head_pool", "head_dropout", "head_dense"] as const;

/** `base` followed by head_pool (GlobalAveragePooling2D), head_dropout, head_dense (sigmoid). */
export function withHead(base: NetSpec, opts: { dropout?: number } = {}): NetSpec {
  const rate = opts.dropout ?? 0.5;
  if (!(rate >= 0 && rate < 1)) throw new Error(`head dropout must be in [0, 1), got ${rate}`);
  const b = new NetBuilder();
  for (const layer of base.layers) b.add(layer);
  let x = b.globalAvgPool(base.output, "head_pool");
  x = b.dropout(x, "head_dropout", rate);
  x = b.dense(x, "head_dense", 1, "sigmoid");
  return b.build(base.name, base.preprocessing, x);
}
