/**
 * The three exported nets (formula weights, preprocessing in the graph) against the
 * independent float64 Keras reference in ../shared/reference/keras_features.json.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { exportOnnx } from "../lib/onnx/export.ts";
import { openSession } from "../lib/onnx/session.ts";
import { getNetSpec, NET_NAMES } from "../lib/models/registry.ts";
import { withHead } from "../lib/models/head.ts";
import { weightLayout } from "../lib/models/layout.ts";
import { formulaWeights } from "../lib/models/weights/formula.ts";
import { decodeImage } from "../lib/data/images.ts";
import { referenceDir } from "../lib/util/paths.ts";

interface LayerRef {
  shape: number[];
  std: number;
  samples: { at: number[]; value: number }[];
}
interface Reference {
  inputs: { name: string; png: string }[];
  nets: Record<string, {
    preprocessing: string;
    outputs: Record<string, { pooled: number[]; layers: Record<string, LayerRef> }>;
  }>;
}

const TOL = 1e-4; // max |a - r| / max |r| over the pooled vector (measured: ~3e-7)
const opts = { sanitizeResources: false, sanitizeOps: false }; // ORT keeps native handles

const ref: Reference = JSON.parse(
  await Deno.readTextFile(join(referenceDir(), "keras_features.json")),
);
const images = await Promise.all(
  ref.inputs.map((i) => decodeImage(join(referenceDir(), i.png), 224)),
);
const batch = new Float32Array(images.length * 224 * 224 * 3);
images.forEach((im, k) => batch.set(im.data, k * im.data.length));

for (const net of NET_NAMES) {
  Deno.test(
    `${net}: ONNX Runtime matches the Keras reference (formula weights)`,
    opts,
    async () => {
      const base = getNetSpec(net);
      const netRef = ref.nets[net];
      assert.equal(netRef.preprocessing, base.preprocessing);
      const layers = Object.keys(netRef.outputs[ref.inputs[0].name].layers);
      const bytes = exportOnnx(withHead(base), formulaWeights(weightLayout(base)), {
        outputs: ["head_pool", ...layers],
        preprocessing: base.preprocessing,
      });
      const model = await openSession(bytes);
      try {
        const out = await model.run({
          image: { data: batch, shape: [images.length, 224, 224, 3] },
        });
        ref.inputs.forEach(({ name }, k) => {
          const r = netRef.outputs[name].pooled;
          const got = out.head_pool.data.subarray(k * r.length, (k + 1) * r.length);
          let diff = 0, scale = 0;
          r.forEach((v, i) => {
            diff = Math.max(diff, Math.abs(v - got[i]));
            scale = Math.max(scale, Math.abs(v));
          });
          assert.ok(diff / scale <= TOL, `${net}/${name} pooled: relative error ${diff / scale}`);
          for (const [layer, info] of Object.entries(netRef.outputs[name].layers)) {
            const [, h, w, c] = info.shape;
            assert.deepEqual(out[layer].shape.slice(1), [h, w, c], layer);
            for (const s of info.samples) {
              const [, y, x, ch] = s.at;
              const v = out[layer].data[k * h * w * c + (y * w + x) * c + ch];
              const err = Math.abs(v - s.value) / info.std;
              assert.ok(
                err <= TOL,
                `${net}/${name} ${layer}${JSON.stringify(s.at)}: ${v} vs ${s.value}`,
              );
            }
          }
        });
      } finally {
        await model.close();
      }
    },
  );
}
