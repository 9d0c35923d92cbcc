/**
 * A classifier whose ONNX Runtime session lives in a Web Worker. onnxruntime-node's `run` holds
 * its JS thread for the whole inference; in a worker that is the worker's thread, so a server
 * keeps receiving and decoding requests while a batch computes (and the next batch fills).
 * The proxy answers to the same Classifier interface; inputs are copied to the worker (the
 * caller keeps its pixels for Grad-CAM), outputs are transferred back.
 */
import type { Classifier, PredictResult } from "./model.ts";
import { loadClassifier, type LoadOptions } from "./classifier.ts";

type Source = string | { onnxPath: string; metaPath?: string };

interface LoadMsg {
  kind: "load";
  source: Source;
  threads?: number;
}
interface PredictMsg {
  kind: "predict";
  id: number;
  images: Float32Array;
  n: number;
}
interface CloseMsg {
  kind: "close";
  id: number;
}
type Reply =
  | { kind: "loaded"; info: Omit<Classifier, "predict" | "close"> }
  | { kind: "result"; id: number; result?: PredictResult; error?: string };

/** Opens `source` (as loadClassifier does) in a worker of its own. */
export function loadClassifierInWorker(
  source: Source,
  opts: Pick<LoadOptions, "threads"> = {},
): Promise<Classifier> {
  const worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
  const waiting = new Map<
    number,
    { resolve: (r: PredictResult) => void; reject: (e: Error) => void }
  >();
  let nextId = 0;
  let failed: Error | null = null;
  return new Promise<Classifier>((resolveLoad, rejectLoad) => {
    const fail = (e: Error) => {
      failed = e;
      rejectLoad(e);
      for (const w of waiting.values()) w.reject(e);
      waiting.clear();
      worker.terminate();
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      fail(new Error(`classifier worker failed: ${e.message}`));
    };
    const call = (msg: PredictMsg | CloseMsg) =>
      new Promise<PredictResult>((resolve, reject) => {
        if (failed) return reject(failed);
        waiting.set(msg.id, { resolve, reject });
        worker.postMessage(msg);
      });
    worker.onmessage = (e: MessageEvent<Reply>) => {
      const r = e.data;
      if (r.kind === "loaded") {
        resolveLoad({
          ...r.info,
          predict: (images, n) => call({ kind: "predict", id: nextId++, images, n }),
          async close() {
            await call({ kind: "close", id: nextId++ }).catch(() => {});
            worker.terminate();
          },
        });
        return;
      }
      const w = waiting.get(r.id);
      waiting.delete(r.id);
      if (r.error !== undefined) {
        if (r.id === -1) fail(new Error(r.error));
        else w?.reject(new Error(r.error));
      } else w?.resolve(r.result!);
    };
    worker.postMessage({ kind: "load", source, threads: opts.threads } satisfies LoadMsg);
  });
}

// Worker side: runs when this module is loaded as a worker.
// deno-lint-ignore no-explicit-any
const self_ = globalThis as any;
if (typeof self_.WorkerGlobalScope !== "undefined" && self_ instanceof self_.WorkerGlobalScope) {
  let classifier: Classifier | null = null;
  self_.onmessage = async (e: MessageEvent<LoadMsg | PredictMsg | CloseMsg>) => {
    const msg = e.data;
    if (msg.kind === "load") {
      try {
        classifier = await loadClassifier(msg.source, { threads: msg.threads });
        const { predict: _p, close: _c, ...info } = classifier;
        self_.postMessage({ kind: "loaded", info } satisfies Reply);
      } catch (err) {
        self_.postMessage(
          { kind: "result", id: -1, error: (err as Error).message } satisfies Reply,
        );
      }
      return;
    }
    try {
      if (!classifier) throw new Error("classifier not loaded");
      if (msg.kind === "close") {
        await classifier.close();
        self_.postMessage({ kind: "result", id: msg.id, result: { prob: new Float32Array() } });
        return;
      }
      const result = await classifier.predict(msg.images, msg.n);
      const transfer = [
        result.prob.buffer,
        ...(result.gradcam ? [result.gradcam.data.buffer] : []),
      ];
      self_.postMessage({ kind: "result", id: msg.id, result } satisfies Reply, transfer);
    } catch (err) {
      self_.postMessage(
        { kind: "result", id: msg.id, error: (err as Error).message } satisfies Reply,
      );
    }
  };
}
