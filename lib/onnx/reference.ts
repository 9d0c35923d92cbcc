/**
 * A naive float64 NHWC forward pass of a NetSpec with Keras semantics, written directly from
 * the Keras layer definitions. Slow: it exists so the ONNX exporter can be checked against an
 * implementation that shares none of its code (tests use tiny nets): it imports the NetSpec
 * types and the never-check only, and writes TensorFlow's padding rule from TensorFlow's documentation rather than reusing
 * the exporter's.
 */
import { assertNever } from "../models/graph.ts";
import type { ActivationName, LayerSpec, NetSpec, NetWeights, Padding } from "../models/spec.ts";

/** One NHWC tensor of a single image (no batch dim) or a flat vector. */
export interface RefTensor {
  shape: number[];
  data: Float64Array;
}

function act(v: Float64Array, a: ActivationName): Float64Array {
  switch (a) {
    case "linear":
      return v;
    case "relu":
      return v.map((x) => Math.max(0, x));
    case "sigmoid":
      return v.map((x) => 1 / (1 + Math.exp(-x)));
    case "softmax":
      throw new Error("reference: softmax is only used on flat outputs here");
    default:
      return assertNever(a, "activation");
  }
}

/**
 * [pad before, pad after, output size] along one dim. TensorFlow's documented "same" rule:
 * pad_along = max(k - s, 0) when size % s == 0, else max(k - size % s, 0); the odd pixel after.
 */
function pads(size: number, k: number, s: number, p: Padding): [number, number, number] {
  if (p === "valid") return [0, 0, Math.floor((size - k) / s) + 1];
  const along = size % s === 0 ? Math.max(k - s, 0) : Math.max(k - (size % s), 0);
  const before = Math.floor(along / 2);
  return [before, along - before, Math.ceil(size / s)];
}

/** Run `spec` on one image (NHWC without batch) and return every layer's output. */
export function referenceForward(
  spec: NetSpec,
  weights: NetWeights,
  input: Float64Array,
): Map<string, RefTensor> {
  const out = new Map<string, RefTensor>();
  const w = (
    l: LayerSpec,
    k: "kernel" | "bias" | "gamma" | "beta" | "moving_mean" | "moving_variance",
  ) => weights.get(l.name)?.[k]?.data;
  for (const l of spec.layers) {
    if (l.kind === "InputLayer") {
      out.set(l.name, { shape: l.shape.map((d) => d ?? 0), data: input });
      continue;
    }
    const x = out.get(l.inputs[0])!;
    const [H, W, C] = x.shape;
    let y: RefTensor;
    switch (l.kind) {
      case "Conv2D": {
        const [kh, kw] = l.kernelSize;
        const [sh, sw] = l.strides;
        const [pt, , oh] = pads(H, kh, sh, l.padding);
        const [pl, , ow] = pads(W, kw, sw, l.padding);
        const k = w(l, "kernel")!;
        const b = l.useBias ? w(l, "bias")! : undefined;
        const F = l.filters;
        const o = new Float64Array(oh * ow * F);
        for (let i = 0; i < oh; i++) {
          for (let j = 0; j < ow; j++) {
            for (let f = 0; f < F; f++) {
              let s = b ? b[f] : 0;
              for (let u = 0; u < kh; u++) {
                const yy = i * sh + u - pt;
                if (yy < 0 || yy >= H) continue;
                for (let v = 0; v < kw; v++) {
                  const xx = j * sw + v - pl;
                  if (xx < 0 || xx >= W) continue;
                  for (let c = 0; c < C; c++) {
                    s += x.data[(yy * W + xx) * C + c] * k[((u * kw + v) * C + c) * F + f];
                  }
                }
              }
              o[(i * ow + j) * F + f] = s;
            }
          }
        }
        y = { shape: [oh, ow, F], data: act(o, l.activation) };
        break;
      }
      case "BatchNormalization": {
        const c = x.shape[x.shape.length - 1];
        const g = w(l, "gamma"), be = w(l, "beta");
        const m = w(l, "moving_mean")!, va = w(l, "moving_variance")!;
        const o = x.data.map((v, i) => {
          const ch = i % c;
          return (v - m[ch]) / Math.sqrt(va[ch] + l.epsilon) * (g ? g[ch] : 1) + (be ? be[ch] : 0);
        });
        y = { shape: x.shape, data: o };
        break;
      }
      case "Activation":
        y = { shape: x.shape, data: act(x.data, l.activation) };
        break;
      case "ZeroPadding2D": {
        const [[t, b], [le, r]] = l.padding;
        const oh = H + t + b, ow = W + le + r;
        const o = new Float64Array(oh * ow * C);
        for (let i = 0; i < H; i++) {
          for (let j = 0; j < W; j++) {
            for (let c = 0; c < C; c++) {
              o[((i + t) * ow + j + le) * C + c] = x.data[(i * W + j) * C + c];
            }
          }
        }
        y = { shape: [oh, ow, C], data: o };
        break;
      }
      case "MaxPooling2D":
      case "AveragePooling2D": {
        const [kh, kw] = l.poolSize;
        const [sh, sw] = l.strides;
        const [pt, , oh] = pads(H, kh, sh, l.padding);
        const [pl, , ow] = pads(W, kw, sw, l.padding);
        const o = new Float64Array(oh * ow * C);
        for (let i = 0; i < oh; i++) {
          for (let j = 0; j < ow; j++) {
            for (let c = 0; c < C; c++) {
              let mx = -Infinity, sum = 0, n = 0; // padding is excluded from max and mean (TF)
              for (let u = 0; u < kh; u++) {
                const yy = i * sh + u - pt;
                if (yy < 0 || yy >= H) continue;
                for (let v = 0; v < kw; v++) {
                  const xx = j * sw + v - pl;
                  if (xx < 0 || xx >= W) continue;
                  const val = x.data[(yy * W + xx) * C + c];
                  mx = Math.max(mx, val);
                  sum += val;
                  n++;
                }
              }
              o[(i * ow + j) * C + c] = l.kind === "MaxPooling2D" ? mx : sum / n;
            }
          }
        }
        y = { shape: [oh, ow, C], data: o };
        break;
      }
      case "Add": {
        const o = new Float64Array(x.data.length);
        for (const n of l.inputs) out.get(n)!.data.forEach((v, i) => (o[i] += v));
        y = { shape: x.shape, data: o };
        break;
      }
      case "Concatenate": {
        const parts = l.inputs.map((n) => out.get(n)!);
        const cs = parts.map((p) => p.shape[p.shape.length - 1]);
        const ct = cs.reduce((a, b) => a + b, 0);
        const pix = x.data.length / cs[0];
        const o = new Float64Array(pix * ct);
        for (let p = 0; p < pix; p++) {
          let off = 0;
          parts.forEach((t, k) => {
            for (let c = 0; c < cs[k]; c++) o[p * ct + off + c] = t.data[p * cs[k] + c];
            off += cs[k];
          });
        }
        y = { shape: [...x.shape.slice(0, -1), ct], data: o };
        break;
      }
      case "GlobalAveragePooling2D":
      case "GlobalMaxPooling2D": {
        const o = new Float64Array(C).fill(l.kind === "GlobalMaxPooling2D" ? -Infinity : 0);
        for (let p = 0; p < H * W; p++) {
          for (let c = 0; c < C; c++) {
            const v = x.data[p * C + c];
            o[c] = l.kind === "GlobalMaxPooling2D" ? Math.max(o[c], v) : o[c] + v / (H * W);
          }
        }
        y = { shape: [C], data: o };
        break;
      }
      case "Flatten":
        y = { shape: [x.data.length], data: x.data };
        break;
      case "Dropout":
        y = x;
        break;
      case "Dense": {
        const k = w(l, "kernel")!;
        const b = l.useBias ? w(l, "bias")! : undefined;
        const n = x.data.length;
        const o = new Float64Array(l.units);
        for (let u = 0; u < l.units; u++) {
          let s = b ? b[u] : 0;
          for (let i = 0; i < n; i++) s += x.data[i] * k[i * l.units + u];
          o[u] = s;
        }
        if (l.activation === "softmax") {
          const m = Math.max(...o);
          const e = o.map((v) => Math.exp(v - m));
          const z = e.reduce((a, b) => a + b, 0);
          y = { shape: [l.units], data: e.map((v) => v / z) };
        } else y = { shape: [l.units], data: act(o, l.activation) };
        break;
      }
      default:
        return assertNever(l, "layer kind");
    }
    out.set(l.name, y);
  }
  return out;
}
