/**
 * Gradient kernels the tfjs wasm backend lacks, so a conv tail can be trained on wasm.
 *
 * tfjs-backend-wasm 4.22 has Conv2D, Conv2DBackpropInput, pooling grads and everything a
 * BatchNorm/ReLU/Concat/Add backward pass needs, but no Conv2DBackpropFilter (the kernel gradient
 * of every conv). We add it as im2col (a plain copy loop in JS, skipped for 1x1 stride-1 convs,
 * which are most of ResNet50's and DenseNet121's tails) followed by the wasm backend's own
 * Transpose and XNNPACK BatchMatMul: dW[K, Cout] = cols[M, K]^T x dy[M, Cout] with K = kh*kw*cin, M = n*oh*ow.
 */
import * as tf from "@tensorflow/tfjs";

/** The parts of tfjs-backend-wasm's BackendWasm we use (not exported as a type). */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
  disposeData(dataId: unknown): boolean;
}

interface Conv2DBackpropFilterAttrs {
  strides: [number, number] | number;
  pad: "valid" | "same" | number;
  dataFormat: "NHWC" | "NCHW";
  dimRoundingMode?: "floor" | "round" | "ceil";
  filterShape: [number, number, number, number];
}

interface Conv2DBackpropInputAttrs {
  strides: [number, number] | number;
  pad: "valid" | "same" | number;
  dataFormat: "NHWC" | "NCHW";
  dimRoundingMode?: "floor" | "round" | "ceil";
  inputShape: [number, number, number, number];
}

/** Kernels registered (or replaced) by `registerWasmTrainingKernels` (for logs and tests). */
export const EXTRA_WASM_KERNELS: readonly string[] = [
  "Conv2DBackpropFilter",
  "Conv2DBackpropInput",
];

/**
 * Visits the patches of a conv in im2col order: for every output pixel and kernel tap, the
 * offset of its `inChannels` values in the im2col matrix [n*oh*ow, kh*kw*cin] and in the NHWC
 * input (-1 where the tap falls in the zero padding). Returns the im2col size.
 */
function forEachPatch(
  info: tf.backend_util.Conv2DInfo,
  visit: (colOffset: number, xOffset: number) => void,
): number {
  const {
    batchSize: n,
    inHeight: h,
    inWidth: w,
    inChannels: c,
    outHeight: oh,
    outWidth: ow,
    filterHeight: kh,
    filterWidth: kw,
    strideHeight: sh,
    strideWidth: sw,
    dilationHeight: dh,
    dilationWidth: dw,
  } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  let col = 0;
  for (let b = 0; b < n; b++) {
    const xBatch = b * h * w * c;
    for (let y = 0; y < oh; y++) {
      for (let x0 = 0; x0 < ow; x0++) {
        for (let i = 0; i < kh; i++) {
          const iy = y * sh - top + i * dh;
          for (let j = 0; j < kw; j++) {
            const ix = x0 * sw - left + j * dw;
            const inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
            visit(col, inside ? xBatch + (iy * w + ix) * c : -1);
            col += c;
          }
        }
      }
    }
  }
  return col;
}

/** Writes the im2col matrix [n*oh*ow, kh*kw*cin] of NHWC `x` into `cols` (zero padding). */
export function im2col(
  x: Float32Array,
  cols: Float32Array,
  info: tf.backend_util.Conv2DInfo,
): void {
  const c = info.inChannels;
  const size = forEachPatch(info, (col, xo) => {
    if (xo < 0) cols.fill(0, col, col + c);
    else cols.set(x.subarray(xo, xo + c), col);
  });
  if (size !== cols.length) throw new Error("im2col: size mismatch");
}

/** A float32 [1, rows, cols] view of a tensor's data (no copy). */
function view3(t: tf.TensorInfo, rows: number, cols: number): tf.TensorInfo {
  return { dataId: t.dataId, shape: [1, rows, cols], dtype: "float32" };
}

/**
 * op(a) x op(b) with the wasm BatchMatMul on [1, rows, cols] operands, op = transpose where
 * asked. XNNPACK only covers untransposed operands (a transposeA matmul runs ~30x slower), so
 * a transposed operand is first copied by the wasm Transpose kernel (and freed afterwards).
 */
function wasmMatMul(
  kernelBackend: tf.KernelBackend,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  opts: { transposeA?: boolean; transposeB?: boolean } = {},
): tf.TensorInfo {
  const transpose = tf.getKernel("Transpose", "wasm");
  const matMul = tf.getKernel("BatchMatMul", "wasm");
  if (!matMul || !transpose) throw new Error("wasm backend has no BatchMatMul/Transpose kernel");
  const copies: tf.TensorInfo[] = [];
  const operand = (t: tf.TensorInfo, transposed?: boolean) => {
    if (!transposed) return t;
    const copy = transpose.kernelFunc({
      inputs: { x: t },
      backend: kernelBackend,
      attrs: { perm: [0, 2, 1] },
    }) as tf.TensorInfo;
    copies.push(copy);
    return copy;
  };
  const out = matMul.kernelFunc({
    inputs: { a: operand(a, opts.transposeA), b: operand(b, opts.transposeB) },
    backend: kernelBackend,
    attrs: { transposeA: false, transposeB: false },
  }) as tf.TensorInfo;
  for (const c of copies) (kernelBackend as unknown as WasmBackendLike).disposeData(c.dataId);
  return out;
}

/** A 1x1, stride-1, unpadded conv: im2col and col2im are the identity. */
function isPointwise(info: tf.backend_util.Conv2DInfo): boolean {
  return info.filterHeight === 1 && info.filterWidth === 1 && info.strideHeight === 1 &&
    info.strideWidth === 1 && info.padInfo.top === 0 && info.padInfo.left === 0;
}

function conv2dBackpropFilterWasm(
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as unknown as Conv2DBackpropFilterAttrs;
  if (attrs.dataFormat === "NCHW") {
    throw new Error("Conv2DBackpropFilter (cxr wasm kernel): only NHWC is supported");
  }
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const m = info.batchSize * info.outHeight * info.outWidth;
  const k = info.filterHeight * info.filterWidth * info.inChannels;
  const pointwise = isPointwise(info);
  let cols: tf.TensorInfo;
  let ownCols = false;
  if (pointwise) {
    cols = { dataId: x.dataId, shape: [1, m, k], dtype: "float32" };
  } else {
    cols = backend.makeOutput([1, m, k], "float32");
    ownCols = true;
    // Views are taken after the allocation: growing the wasm heap detaches older views.
    const xData = backend.typedArrayFromHeap(x);
    im2col(xData, backend.typedArrayFromHeap(cols), info);
  }
  // dW[K, Cout] = cols^T[K, M] x dy[M, Cout]
  const out = wasmMatMul(
    args.backend as tf.KernelBackend,
    cols,
    view3(dy, m, info.outChannels),
    { transposeA: true },
  );
  if (ownCols) backend.disposeData(cols.dataId);
  return { dataId: out.dataId, shape: [...attrs.filterShape], dtype: "float32" };
}

/** Adds the rows of `cols` [n*oh*ow, kh*kw*cin] back into NHWC `dx` (the adjoint of im2col). */
export function col2im(
  cols: Float32Array,
  dx: Float32Array,
  info: tf.backend_util.Conv2DInfo,
): void {
  const c = info.inChannels;
  dx.fill(0);
  forEachPatch(info, (col, xo) => {
    if (xo < 0) return;
    for (let k = 0; k < c; k++) dx[xo + k] += cols[col + k];
  });
}

/**
 * Conv2DBackpropInput (the input gradient of a conv): tfjs-backend-wasm 4.22 has one, but as a
 * plain loop it runs ~10x slower than a matmul (1.85 s vs 0.19 s for ResNet50's last 1x1 conv
 * on a batch of 32), and fused convs compute it even for non-trainable inputs. Here:
 * cols[M, K] = dy[M, Cout] x W^T[Cout, K] with XNNPACK, then col2im (nothing to do for a
 * pointwise conv).
 */
function conv2dBackpropInputWasm(
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = args.attrs as unknown as Conv2DBackpropInputAttrs;
  if (attrs.dataFormat === "NCHW") {
    throw new Error("Conv2DBackpropInput (cxr wasm kernel): only NHWC is supported");
  }
  const info = tf.backend_util.computeConv2DInfo(
    attrs.inputShape,
    filter.shape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const m = info.batchSize * info.outHeight * info.outWidth;
  const k = info.filterHeight * info.filterWidth * info.inChannels;
  // cols[M, K] = dy[M, Cout] x W^T[Cout, K]; W [kh, kw, cin, cout] is [K, Cout] row-major.
  const cols = wasmMatMul(
    args.backend as tf.KernelBackend,
    view3(dy, m, info.outChannels),
    view3(filter, k, info.outChannels),
    { transposeB: true },
  );
  if (isPointwise(info)) {
    return { dataId: cols.dataId, shape: [...attrs.inputShape], dtype: "float32" };
  }
  const dx = backend.makeOutput([...attrs.inputShape], "float32");
  // Views are taken after the allocation: growing the wasm heap detaches older views.
  col2im(backend.typedArrayFromHeap(cols), backend.typedArrayFromHeap(dx), info);
  backend.disposeData(cols.dataId);
  return dx;
}

let registered = false;

/** Registers the missing gradient kernels for backend "wasm" (idempotent). */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  registered = true;
  if (!tf.getKernel("Conv2DBackpropFilter", "wasm")) {
    tf.registerKernel({
      kernelName: "Conv2DBackpropFilter",
      backendName: "wasm",
      kernelFunc: conv2dBackpropFilterWasm as unknown as tf.KernelFunc,
    });
  }
  // Replace the built-in loop with the matmul version (see conv2dBackpropInputWasm).
  if (tf.getKernel("Conv2DBackpropInput", "wasm")) {
    tf.unregisterKernel("Conv2DBackpropInput", "wasm");
  }
  tf.registerKernel({
    kernelName: "Conv2DBackpropInput",
    backendName: "wasm",
    kernelFunc: conv2dBackpropInputWasm as unknown as tf.KernelFunc,
  });
}
