/**
 * A naive float64 NHWC forward pass of a NetSpec with Keras semantics, written directly from
 * the Keras layer definitions. Slow: it exists so the ONNX exporter can be checked against an
 * implementation that shares none of its code (tests use tiny nets): it imports the NetSpec
 * types only, and writes TensorFlow's padding rule from TensorFlow's documentation rather than
 * reusing the exporter's. One function per layer kind; the table's type lists every kind.
 */
import type {
  ActivationName,
  LayerKind,
  LayerOf,
  LayerSpec,
  NetSpec,
  NetWeights,
  Padding,
  WeightKind,
} from "../models/spec.ts";

/** One NHWC tensor of a single image (no batch dim) or a flat vector. */
export interface RefTensor {
  shape: number[];
  data: Float64Array;
}

type Weight = (l: LayerSpec, kind: WeightKind) => Float32Array | undefined;
type RefLayer<K extends LayerKind> = (l: LayerOf<K>, ins: RefTensor[], w: Weight) => RefTensor;

/** Softmax over each run of `channels` values (Keras: the last axis). */
function softmax(v: Float64Array, channels: number): Float64Array {
  const out = new Float64Array(v.length);
  for (let p = 0; p < v.length; p += channels) {
    const row = v.subarray(p, p + channels);
    const m = Math.max(...row);
    const e = row.map((x) => Math.exp(x - m));
    const z = e.reduce((s, x) => s + x, 0);
    out.set(e.map((x) => x / z), p);
  }
  return out;
}

/** Keras activation `a` on a tensor whose last axis has `channels` values. */
function act(v: Float64Array, a: ActivationName, channels: number): Float64Array {
  switch (a) {
    case "linear":
      return v;
    case "relu":
      return v.map((x) => Math.max(0, x));
    case "sigmoid":
      return v.map((x) => 1 / (1 + Math.exp(-x)));
    case "softmax":
      return softmax(v, channels);
    default: {
      const unknown: never = a;
      throw new Error(`reference: activation ${unknown}`);
    }
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

/** The input taps of one output pixel (i, j): `visit(index of x[yy, xx, 0], u, v)` in bounds. */
interface Window {
  H: number;
  W: number;
  C: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  pt: number;
  pl: number;
}

function forTaps(
  g: Window,
  i: number,
  j: number,
  visit: (at: number, u: number, v: number) => void,
) {
  for (let u = 0; u < g.kh; u++) {
    const yy = i * g.sh + u - g.pt;
    if (yy < 0 || yy >= g.H) continue;
    for (let v = 0; v < g.kw; v++) {
      const xx = j * g.sw + v - g.pl;
      if (xx < 0 || xx >= g.W) continue;
      visit((yy * g.W + xx) * g.C, u, v);
    }
  }
}

/** The window of a conv/pool on `x` and its output size. */
function windowOf(
  x: RefTensor,
  [kh, kw]: [number, number],
  [sh, sw]: [number, number],
  padding: Padding,
): { g: Window; oh: number; ow: number } {
  const [H, W, C] = x.shape;
  const [pt, , oh] = pads(H, kh, sh, padding);
  const [pl, , ow] = pads(W, kw, sw, padding);
  return { g: { H, W, C, kh, kw, sh, sw, pt, pl }, oh, ow };
}

const conv2d: RefLayer<"Conv2D"> = (l, [x], w) => {
  const { g, oh, ow } = windowOf(x, l.kernelSize, l.strides, l.padding);
  const k = w(l, "kernel")!;
  const b = l.useBias ? w(l, "bias")! : undefined;
  const F = l.filters;
  const o = new Float64Array(oh * ow * F);
  for (let i = 0; i < oh; i++) {
    for (let j = 0; j < ow; j++) {
      for (let f = 0; f < F; f++) {
        let s = b ? b[f] : 0;
        forTaps(g, i, j, (at, u, v) => {
          for (let c = 0; c < g.C; c++) s += x.data[at + c] * k[((u * g.kw + v) * g.C + c) * F + f];
        });
        o[(i * ow + j) * F + f] = s;
      }
    }
  }
  return { shape: [oh, ow, F], data: act(o, l.activation, F) };
};

const batchNorm: RefLayer<"BatchNormalization"> = (l, [x], w) => {
  const c = x.shape[x.shape.length - 1];
  const g = w(l, "gamma"), be = w(l, "beta");
  const m = w(l, "moving_mean")!, va = w(l, "moving_variance")!;
  const o = x.data.map((v, i) => {
    const ch = i % c;
    return (v - m[ch]) / Math.sqrt(va[ch] + l.epsilon) * (g ? g[ch] : 1) + (be ? be[ch] : 0);
  });
  return { shape: x.shape, data: o };
};

const zeroPadding: RefLayer<"ZeroPadding2D"> = (l, [x]) => {
  const [H, W, C] = x.shape;
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
  return { shape: [oh, ow, C], data: o };
};

const pooling: RefLayer<"MaxPooling2D" | "AveragePooling2D"> = (l, [x]) => {
  const { g, oh, ow } = windowOf(x, l.poolSize, l.strides, l.padding);
  const C = g.C;
  const o = new Float64Array(oh * ow * C);
  for (let i = 0; i < oh; i++) {
    for (let j = 0; j < ow; j++) {
      for (let c = 0; c < C; c++) {
        let mx = -Infinity, sum = 0, n = 0; // padding is excluded from max and mean (TF)
        forTaps(g, i, j, (at) => {
          const val = x.data[at + c];
          mx = Math.max(mx, val);
          sum += val;
          n++;
        });
        o[(i * ow + j) * C + c] = l.kind === "MaxPooling2D" ? mx : sum / n;
      }
    }
  }
  return { shape: [oh, ow, C], data: o };
};

const add: RefLayer<"Add"> = (_l, ins) => {
  const o = new Float64Array(ins[0].data.length);
  for (const t of ins) t.data.forEach((v, i) => (o[i] += v));
  return { shape: ins[0].shape, data: o };
};

const concatenate: RefLayer<"Concatenate"> = (_l, parts) => {
  const cs = parts.map((p) => p.shape[p.shape.length - 1]);
  const ct = cs.reduce((a, b) => a + b, 0);
  const pix = parts[0].data.length / cs[0];
  const o = new Float64Array(pix * ct);
  for (let p = 0; p < pix; p++) {
    let off = 0;
    parts.forEach((t, k) => {
      for (let c = 0; c < cs[k]; c++) o[p * ct + off + c] = t.data[p * cs[k] + c];
      off += cs[k];
    });
  }
  return { shape: [...parts[0].shape.slice(0, -1), ct], data: o };
};

const globalPooling: RefLayer<"GlobalAveragePooling2D" | "GlobalMaxPooling2D"> = (l, [x]) => {
  const [H, W, C] = x.shape;
  const max = l.kind === "GlobalMaxPooling2D";
  const o = new Float64Array(C).fill(max ? -Infinity : 0);
  for (let p = 0; p < H * W; p++) {
    for (let c = 0; c < C; c++) {
      const v = x.data[p * C + c];
      o[c] = max ? Math.max(o[c], v) : o[c] + v / (H * W);
    }
  }
  return { shape: [C], data: o };
};

const dense: RefLayer<"Dense"> = (l, [x], w) => {
  const k = w(l, "kernel")!;
  const b = l.useBias ? w(l, "bias")! : undefined;
  const n = x.data.length;
  const o = new Float64Array(l.units);
  for (let u = 0; u < l.units; u++) {
    let s = b ? b[u] : 0;
    for (let i = 0; i < n; i++) s += x.data[i] * k[i * l.units + u];
    o[u] = s;
  }
  return { shape: [l.units], data: act(o, l.activation, l.units) };
};

/** One reference implementation per layer kind (a missing kind is a compile error). */
const LAYERS: { [K in LayerKind]: RefLayer<K> } = {
  InputLayer: (l) => {
    throw new Error(`reference: InputLayer "${l.name}" is fed, not computed`);
  },
  Conv2D: conv2d,
  BatchNormalization: batchNorm,
  Activation: (l, [x]) => ({ shape: x.shape, data: act(x.data, l.activation, x.shape.at(-1)!) }),
  ZeroPadding2D: zeroPadding,
  MaxPooling2D: pooling,
  AveragePooling2D: pooling,
  Add: add,
  Concatenate: concatenate,
  GlobalAveragePooling2D: globalPooling,
  GlobalMaxPooling2D: globalPooling,
  Flatten: (_l, [x]) => ({ shape: [x.data.length], data: x.data }),
  Dropout: (_l, [x]) => x,
  Dense: dense,
};

/** Run `spec` on one image (NHWC without batch) and return every layer's output. */
export function referenceForward(
  spec: NetSpec,
  weights: NetWeights,
  input: Float64Array,
): Map<string, RefTensor> {
  const out = new Map<string, RefTensor>();
  const w: Weight = (l, k) => weights.get(l.name)?.[k]?.data;
  for (const l of spec.layers) {
    if (l.kind === "InputLayer") {
      out.set(l.name, { shape: l.shape.map((d) => d ?? 0), data: input });
      continue;
    }
    const ins = l.inputs.map((n) => out.get(n)!);
    out.set(l.name, (LAYERS[l.kind] as RefLayer<LayerKind>)(l, ins, w));
  }
  return out;
}
