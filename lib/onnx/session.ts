/**
 * ONNX Runtime (onnxruntime-node, native CPU) behind a small interface of plain Float32Arrays,
 * so callers never touch ort types.
 */
import * as ort from "onnxruntime-node";
import { availableParallelism } from "node:os";

/** A float32 tensor in row-major order. */
export interface TensorData {
  data: Float32Array;
  shape: number[];
}

export interface OnnxModel {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Run the model; returns every output (or only `fetches` when given). */
  run(feeds: Record<string, TensorData>, fetches?: string[]): Promise<Record<string, TensorData>>;
  close(): Promise<void>;
}

export interface SessionOptions {
  /** Intra-op threads (default: number of cores). */
  threads?: number;
  /**
   * Let ORT's idle threads spin between parallel sections (ORT's default). Off by default here:
   * on 2 shared cores a spinning thread burns the CPU that the decode worker (or whatever
   * preempted its peer) needs.
   */
  spinning?: boolean;
}

/** Default thread count: all cores (ORT is the only heavy work while it runs). */
export function defaultThreads(): number {
  return Math.max(1, availableParallelism());
}

/** Open an ONNX model from bytes or a file path. */
export async function openSession(
  model: Uint8Array | string,
  opts: SessionOptions = {},
): Promise<OnnxModel> {
  const options: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: opts.threads ?? defaultThreads(),
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    extra: { session: { intra_op: { allow_spinning: opts.spinning ? "1" : "0" } } },
  };
  let session: ort.InferenceSession;
  try {
    session = typeof model === "string"
      ? await ort.InferenceSession.create(model, options)
      : await ort.InferenceSession.create(model, options);
  } catch (e) {
    const what = typeof model === "string" ? model : `${model.length}-byte model`;
    throw new Error(`ONNX Runtime could not load ${what}: ${(e as Error).message}`);
  }
  return {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    async run(feeds, fetches) {
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) {
        if (!session.inputNames.includes(name)) {
          throw new Error(
            `ONNX model has no input "${name}" (inputs: ${session.inputNames.join(", ")})`,
          );
        }
        ortFeeds[name] = new ort.Tensor("float32", t.data, t.shape);
      }
      const result = fetches ? await session.run(ortFeeds, fetches) : await session.run(ortFeeds);
      const out: Record<string, TensorData> = {};
      for (const [name, t] of Object.entries(result)) {
        out[name] = { data: t.data as Float32Array, shape: t.dims.map(Number) };
      }
      return out;
    },
    async close() {
      await session.release();
    },
  };
}
