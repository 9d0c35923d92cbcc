/**
 * `deno task serve`: the inference API and clinical-test page over trained classifiers.
 *
 *   deno task serve                      # every run in outputs/runs with a classifier.onnx
 *   deno task serve --run <run-id|dir>   # one or more runs (repeat the flag)
 *   deno task serve --model x.onnx       # an ONNX file with classifier.json beside it
 *   deno task serve --demo               # formula-weights demo classifier (not ImageNet)
 */
import { parseArgs } from "node:util";
import { existsSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { gradCamExplainer } from "../explain/gradcam.ts";
import { type Classifier, isServableRun, loadClassifier } from "../inference/classifier.ts";
import { CLASSIFIER_ONNX_FILE } from "../inference/meta.ts";
import { loadClassifierInWorker } from "../inference/worker.ts";
import { defaultAnchors, writeSyntheticClassifier } from "../inference/synthetic.ts";
import { parseNetName } from "../models/registry.ts";
import type { NetName } from "../models/spec.ts";
import { startServer } from "../serving/server.ts";
import { DEFAULT_BATCHING } from "../serving/batcher.ts";
import { cacheDir, dataDir, outputsDir, runsDir, sharedDir } from "../util/paths.ts";
import { GUARD_FILE, type GuardModel, loadGuard } from "../inference/guard.ts";
import { numberFlag } from "./args.ts";
import { describeError, runCli } from "./entry.ts";
import { RunFolder } from "../runs/mod.ts";

const USAGE = `usage: deno task serve [options]
  --run <id|dir>        serve a training run (repeatable); default: every run with ${CLASSIFIER_ONNX_FILE}
  --model <file.onnx>   serve an ONNX classifier with classifier.json beside it (repeatable)
  --demo                serve a formula-weights demo classifier (NOT ImageNet, not trained)
  --demo-net <net>      net of the demo classifier (default densenet121)
  --host <addr>         bind address (default 127.0.0.1, loopback only)
  --port <n>            port (default 8080; 0 picks a free one)
  --allow-host <name>   also answer requests for this Host name (repeatable; IP addresses
                        and localhost always pass, other names get 421: DNS-rebinding guard)
  --max-upload-mb <n>   upload limit in MB (default 20)
  --max-buffered-mb <n> upload bytes held in memory at once, all requests together; a new
                        upload past it gets 503 (default 8 x --max-upload-mb)
  --max-megapixels <n>  image size limit (default 50)
  --concurrency <n>     predictions at once (default 2)
  --queue <n>           waiting requests before 503 (default 64)
  --max-batch <n>       images per ONNX Runtime call when concurrent requests for one model
                        are grouped (default 16; 1: no batching, each request alone)
  --batch-window-ms <n> longest wait for batch-mates (default 10; a lone request never waits)
  --timeout-ms <n>      from a received upload to its answer, queue included (default 30000)
  --body-timeout-ms <n> an upload must arrive within this, else 408 (default 30000)
  --threads <n>         ONNX Runtime threads per model (default: ORT's choice)
  --guard <file>        out-of-distribution guard from \`deno task guard\` (default: <outputs>/guard.json if present)
  --no-guard            check DICOM tags only, no image score
  --threshold PROFILE   default threshold profile: validation (default) or site:NAME from
                        \`deno task calibrate\`; a request's ?threshold= overrides it
  --quiet               no access log
  --debug               print the stack of an unexpected error (or CXR_DEBUG=1)
  -h, --help            this help
A run folder that cannot be loaded (incomplete, corrupt) is skipped with a warning.`;

/** A number flag > 0 (>= 0 with `allowZero`), `fallback` when absent. */
function positive(name: string, v: string | undefined, fallback: number, allowZero = false) {
  return numberFlag(name, v, allowZero ? { min: 0 } : { above: 0 }) ?? fallback;
}

function trainDir(): string {
  const local = join(dataDir(), "train");
  return existsSync(local) ? local : join(sharedDir(), "data", "chest_xray", "train");
}

/** Run dirs to serve: explicit ids/paths, or every run with a classifier.onnx. */
function findRuns(runs: string[]): string[] {
  if (runs.length > 0) {
    // A named run without a model is skipped with a warning, like one that fails to load.
    return runs.map((r) => [r, isAbsolute(r) || r.includes("/") ? r : join(runsDir(), r)])
      .filter(([r, dir]) => {
        if (isServableRun(dir)) return true;
        console.error(
          `serve: warning: skipping run "${r}": no ${CLASSIFIER_ONNX_FILE} (nor ensemble.json) in ${dir}; check --run or train it first`,
        );
        return false;
      }).map(([, dir]) => dir);
  }
  if (!existsSync(runsDir())) return [];
  return [...Deno.readDirSync(runsDir())]
    .filter((e) => e.isDirectory && isServableRun(join(runsDir(), e.name)))
    .map((e) => join(runsDir(), e.name))
    .sort();
}

async function loadAll(
  runs: string[],
  models: string[],
  demo: NetName | null,
  { threads, hangMs }: { threads: number | undefined; hangMs: number },
  log: (s: string) => void,
  warn: (s: string) => void = (s) => console.error(s),
): Promise<Classifier[]> {
  const sources: (string | { onnxPath: string })[] = [
    ...runs,
    ...models.map((m) => ({ onnxPath: m })),
  ];
  const demoDir = demo ? join(cacheDir(), `demo-classifier-${demo}`) : null;
  if (demo && demoDir) {
    const dir = demoDir;
    if (!existsSync(join(dir, CLASSIFIER_ONNX_FILE))) {
      log(`building the ${demo} demo classifier (formula weights, not ImageNet) in ${dir}`);
      await writeSyntheticClassifier(dir, { net: demo, anchors: defaultAnchors(trainDir()) });
    }
    sources.push(dir);
  }
  const out: Classifier[] = [];
  // Single nets first, so that an ensemble reuses its members' sessions when they are served.
  const loaded = new Map<string, Classifier>();
  const isEnsemble = (s: string | { onnxPath: string }) =>
    typeof s === "string" && existsSync(new RunFolder(s).ensembleMetaPath);
  sources.sort((a, b) => Number(isEnsemble(a)) - Number(isEnsemble(b)));
  const skipped: string[] = [];
  const inWorker = (s: string | { onnxPath: string }) =>
    loadClassifierInWorker(s, { threads, hangMs });
  for (const s of sources) {
    const name = typeof s === "string" ? s : s.onnxPath;
    try {
      // A single net runs in a worker of its own, so inference never stalls the server's thread;
      // an ensemble calls its members: the served ones' workers, or workers of their own.
      const c = isEnsemble(s)
        ? await loadClassifier(s, { threads, loaded, loadMember: inWorker })
        : await inWorker(s);
      // The demo is untrained whatever an older cached copy's classifier.json says.
      if (s === demoDir) c.meta = { ...c.meta, untrained: true };
      if (typeof s === "string" && c.net !== "ensemble") loaded.set(resolve(s), c);
      log(
        `loaded ${c.id} (${c.net}, weights ${c.weights.label}, threshold ${c.threshold.value} ${c.threshold.method})`,
      );
      out.push(c);
    } catch (e) {
      // One incomplete or damaged run must not take the others down.
      warn(`serve: warning: skipping ${name}: ${describeError(e)}`);
      skipped.push(name);
    }
  }
  if (out.length === 0) {
    throw new Error(
      `none of the ${sources.length} classifier(s) could be loaded (${
        skipped.join(", ")
      }); see the warnings above`,
    );
  }
  return out;
}

/** --guard FILE, else <outputs>/guard.json when present; --no-guard: DICOM tags only. */
async function findGuard(
  path: string | undefined,
  off: boolean,
  log: (s: string) => void,
): Promise<GuardModel | null> {
  if (off) return null;
  const file = path ?? join(outputsDir(), GUARD_FILE);
  if (!path && !existsSync(file)) {
    log(`no ${file}: the guard checks DICOM tags only (fit one with \`deno task guard\`)`);
    return null;
  }
  const g = await loadGuard(file);
  log(
    `guard ${file}: fitted on ${g.fit.train} images, ${
      (g.falseAlarms.rate * 100).toFixed(1)
    }% false alarms on ${g.falseAlarms.n} held-out validation images`,
  );
  return g;
}

export async function main(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        run: { type: "string", multiple: true },
        model: { type: "string", multiple: true },
        demo: { type: "boolean" },
        "demo-net": { type: "string" },
        host: { type: "string" },
        port: { type: "string" },
        "max-upload-mb": { type: "string" },
        "max-buffered-mb": { type: "string" },
        "max-megapixels": { type: "string" },
        concurrency: { type: "string" },
        queue: { type: "string" },
        "max-batch": { type: "string" },
        "batch-window-ms": { type: "string" },
        "timeout-ms": { type: "string" },
        "body-timeout-ms": { type: "string" },
        "allow-host": { type: "string", multiple: true },
        threads: { type: "string" },
        guard: { type: "string" },
        "no-guard": { type: "boolean" },
        threshold: { type: "string" },
        quiet: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    console.error(`serve: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const log = values.quiet ? () => {} : (s: string) => console.log(s);
  let opts;
  try {
    opts = {
      port: numberFlag("port", values.port, { integer: true, min: 0, below: 65536 }) ?? 8080,
      maxBytes: positive("max-upload-mb", values["max-upload-mb"], 20) * 1024 * 1024,
      maxBufferedMb: numberFlag("max-buffered-mb", values["max-buffered-mb"], { above: 0 }),
      maxPixels: positive("max-megapixels", values["max-megapixels"], 50) * 1e6,
      concurrency: positive("concurrency", values.concurrency, 2),
      queue: positive("queue", values.queue, 64, true),
      maxBatch:
        numberFlag("max-batch", values["max-batch"], { integer: true, min: 1, below: 257 }) ??
          DEFAULT_BATCHING.maxBatch,
      windowMs: positive(
        "batch-window-ms",
        values["batch-window-ms"],
        DEFAULT_BATCHING.windowMs,
        true,
      ),
      timeoutMs: positive("timeout-ms", values["timeout-ms"], 30_000),
      bodyTimeoutMs: positive("body-timeout-ms", values["body-timeout-ms"], 30_000),
      threads: values.threads ? positive("threads", values.threads, 0) : undefined,
      demo: values.demo ? parseNetName(values["demo-net"] ?? "densenet121") : null,
    };
  } catch (e) {
    console.error(`serve: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  // --demo alone serves only the demo; with --run/--model it is added to those.
  const runs = opts.demo && !values.run && !values.model ? [] : findRuns(values.run ?? []);
  const models = values.model ?? [];
  if (runs.length === 0 && models.length === 0 && !opts.demo) {
    console.error(
      `serve: no classifier to serve: no run in ${runsDir()} has ${CLASSIFIER_ONNX_FILE}.\n` +
        `Train one (deno task train), pass --run/--model, or try --demo (formula weights, not ImageNet).`,
    );
    return 1;
  }
  let guard: GuardModel | null = null;
  try {
    guard = await findGuard(values.guard, values["no-guard"] ?? false, log);
  } catch (e) {
    console.error(`serve: ${(e as Error).message}`);
    return 1;
  }
  const hostname = values.host ?? "127.0.0.1";
  // A worker silent for four request deadlines is hung, not slow: it is ended and restarted.
  const hangMs = 4 * opts.timeoutMs;
  const classifiers = loadAll(runs, models, opts.demo, { threads: opts.threads, hangMs }, log);
  classifiers.catch(() => {}); // reported below, once the server is up
  let server;
  try {
    server = await startServer({
      classifiers,
      explain: gradCamExplainer,
      guard,
      defaultThreshold: values.threshold ?? "validation",
      hostname,
      port: opts.port,
      allowedHosts: values["allow-host"] ?? [],
      limits: { maxBytes: opts.maxBytes, maxPixels: opts.maxPixels },
      maxBufferedBytes: opts.maxBufferedMb === undefined
        ? undefined
        : opts.maxBufferedMb * 1024 * 1024,
      maxConcurrent: opts.concurrency,
      maxQueue: opts.queue,
      batching: opts.maxBatch > 1 ? { maxBatch: opts.maxBatch, windowMs: opts.windowMs } : null,
      timeoutMs: opts.timeoutMs,
      bodyTimeoutMs: opts.bodyTimeoutMs,
      log,
    });
  } catch (e) {
    const why = (e as { code?: string }).code === "EINVAL"
      ? `${(e as Error).message}; is --host an address of this machine?`
      : describeError(e);
    console.error(`serve: cannot listen on ${hostname} port ${opts.port}: ${why}`);
    return 1;
  }
  console.log(
    `cxr serving on ${server.url}/ (API: ${server.url}/openapi.json). Research prototype, not a diagnostic device.`,
  );
  try {
    await classifiers;
  } catch (e) {
    console.error(`serve: ${(e as Error).message}`);
    await server.close();
    return 1;
  }
  const stop = () => server.close();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await server.finished;
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", stop);
  for (const c of await classifiers) await c.close();
  return 0;
}

if (import.meta.main) Deno.exit(await runCli("serve", main));
