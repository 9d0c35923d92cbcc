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
/** Test-only: an uncaught error in the worker (as a crash of its runtime would give), or a
 * worker thread that stops answering (as a native call that never returns would give). */
interface CrashMsg {
  kind: "crash";
}
interface HangMsg {
  kind: "hang";
}
type Reply =
  | { kind: "loaded"; info: Omit<Classifier, "predict" | "close"> }
  | { kind: "result"; id: number; result?: PredictResult; error?: string };

/**
 * A model that cannot answer now: its worker died (`retryable`: it restarts on the next call)
 * or died again after its one restart, or failed to reload (for good).
 */
export class ModelUnavailableError extends Error {
  constructor(readonly model: string, reason: string, readonly retryable = false) {
    super(`model ${model} is unavailable: ${reason}`);
    this.name = "ModelUnavailableError";
  }
}

/** One worker with the package loaded; `dead` once it failed (every later call rejects). */
interface Session {
  info: Omit<Classifier, "predict" | "close">;
  worker: Worker;
  dead: Error | null;
  died: Promise<Error>;
  call(msg: PredictMsg | CloseMsg): Promise<PredictResult>;
}

/**
 * How long a call may go unanswered before its worker counts as hung (it is then ended and
 * restarted like a crashed one). Far above any real batch: a hung native call, not a slow one.
 */
export const DEFAULT_HANG_MS = 120_000;

/** Starts a worker and loads `source` in it; `died` settles on its end (error, hang, load failure). */
function spawn(
  source: Source,
  threads: number | undefined,
  name: string,
  hangMs: number,
): Promise<Session> {
  const worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
  const waiting = new Map<
    number,
    { resolve: (r: PredictResult) => void; reject: (e: Error) => void }
  >();
  let onDied = (_e: Error) => {};
  let hung = () => {};
  const s: Session = {
    info: undefined as unknown as Session["info"],
    worker,
    dead: null,
    died: new Promise<Error>((ok) => (onDied = ok)),
    call: (msg) =>
      new Promise<PredictResult>((resolve, reject) => {
        if (s.dead) return reject(s.dead);
        const timer = setTimeout(() => hung(), hangMs);
        const done = <T>(f: (x: T) => void) => (x: T) => (clearTimeout(timer), f(x));
        waiting.set(msg.id, { resolve: done(resolve), reject: done(reject) });
        worker.postMessage(msg);
      }),
  };
  return new Promise<Session>((resolveLoad, rejectLoad) => {
    const die = (e: Error) => {
      if (s.dead) return;
      s.dead = e;
      rejectLoad(e);
      for (const w of waiting.values()) w.reject(e);
      waiting.clear();
      worker.terminate();
      onDied(e);
    };
    const crashed = (why: string) =>
      die(new ModelUnavailableError(s.info?.id ?? name, `its worker crashed (${why})`, true));
    hung = () =>
      die(
        new ModelUnavailableError(
          s.info?.id ?? name,
          `its worker hung (no answer in ${hangMs} ms)`,
          true,
        ),
      );
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      crashed(e.message);
    };
    worker.onmessageerror = () => crashed("unreadable message");
    worker.onmessage = (e: MessageEvent<Reply>) => {
      const r = e.data;
      if (r.kind === "loaded") {
        s.info = r.info;
        return resolveLoad(s);
      }
      const w = waiting.get(r.id);
      waiting.delete(r.id);
      if (r.error !== undefined) {
        if (r.id === -1) die(new Error(r.error));
        else w?.reject(new Error(r.error));
      } else w?.resolve(r.result!);
    };
    worker.postMessage({ kind: "load", source, threads } satisfies LoadMsg);
  });
}

/** Test hook: makes a worker-backed classifier's worker crash (or hang, stuck in a loop);
 * a crash settles once the death is seen, a hang at once. */
const crashHooks = new WeakMap<Classifier, (how: "crash" | "hang") => Promise<unknown>>();
export function crashWorkerForTest(c: Classifier, how: "crash" | "hang" = "crash") {
  const crash = crashHooks.get(c);
  if (!crash) throw new Error(`${c.id} is not a worker-backed classifier`);
  return crash(how);
}

/**
 * Opens `source` (as loadClassifier does) in a worker of its own. A worker that dies, or leaves a
 * call unanswered for `hangMs`, fails its pending calls; the next call restarts it once
 * (reloading `source`). If it dies again or cannot reload, the model is unavailable for good
 * (`unavailable()` says why).
 */
export async function loadClassifierInWorker(
  source: Source,
  opts: Pick<LoadOptions, "threads"> & { hangMs?: number } = {},
): Promise<Classifier> {
  const name = typeof source === "string" ? source : source.onnxPath;
  const hangMs = opts.hangMs ?? DEFAULT_HANG_MS;
  let session = await spawn(source, opts.threads, name, hangMs);
  const id = session.info.id;
  let restart: Promise<Session> | null = null;
  let unavailable: string | null = null;
  const markDown = (e: Error) => (unavailable ??= `its worker died after a restart: ${e.message}`);
  const live = async (): Promise<Session> => {
    if (unavailable !== null) throw new ModelUnavailableError(id, unavailable);
    if (!session.dead) return session;
    restart ??= spawn(source, opts.threads, name, hangMs).then((s) => {
      s.died.then(markDown);
      return (session = s);
    }, (e) => {
      throw new ModelUnavailableError(id, markDown(e));
    });
    const s = await restart;
    if (s.dead) throw new ModelUnavailableError(id, markDown(s.dead));
    return s;
  };
  let nextId = 0;
  const classifier: Classifier = {
    ...session.info,
    predict: async (images, n) =>
      await (await live()).call({ kind: "predict", id: nextId++, images, n }),
    unavailable: () => unavailable,
    async close() {
      if (session.dead) return;
      await session.call({ kind: "close", id: nextId++ }).catch(() => {});
      session.worker.terminate();
    },
  };
  crashHooks.set(classifier, (how) => {
    session.worker.postMessage({ kind: how } satisfies CrashMsg | HangMsg);
    return how === "crash" ? session.died : Promise.resolve();
  });
  return classifier;
}

// Worker side: runs when this module is loaded as a worker.
// deno-lint-ignore no-explicit-any
const self_ = globalThis as any;
if (typeof self_.WorkerGlobalScope !== "undefined" && self_ instanceof self_.WorkerGlobalScope) {
  let classifier: Classifier | null = null;
  self_.onmessage = async (
    e: MessageEvent<LoadMsg | PredictMsg | CloseMsg | CrashMsg | HangMsg>,
  ) => {
    const msg = e.data;
    if (msg.kind === "crash" || msg.kind === "hang") {
      while (msg.kind === "hang") { /* as a native call that never returns */ }
      setTimeout(() => {
        throw new Error("crash requested by a test");
      });
      return;
    }
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
