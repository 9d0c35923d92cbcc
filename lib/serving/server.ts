/**
 * The HTTP API and the clinical-test page. `createHandler` is a plain Request -> Response
 * function (so tests can inject fake classifiers); `startServer` binds it with Deno.serve on
 * loopback by default.
 */
import { Buffer } from "node:buffer";
import { fileURLToPath } from "node:url";
import type { Explainer } from "../explain/explainer.ts";
import type { Classifier } from "../inference/classifier.ts";
import { IMAGE_SIZE } from "../inference/classifier.ts";
import { errorResponse, HttpError, jsonResponse } from "./errors.ts";
import { ConcurrencyLimiter } from "./limiter.ts";
import { openApiDocument } from "./openapi.ts";
import { decodeUpload, DEFAULT_LIMITS, extractImageBytes, type UploadLimits } from "./upload.ts";

export const NOTICE = "Research prototype, not a diagnostic device. Not for clinical decisions.";

const DISPLAY_NAMES: Record<string, string> = {
  vgg16: "VGG16",
  resnet50: "ResNet50",
  densenet121: "DenseNet121",
};

export interface ServerOptions {
  /** Loaded classifiers, or a promise of them (the server answers /readyz 503 until it settles). */
  classifiers: Classifier[] | Promise<Classifier[]>;
  explain?: Explainer;
  limits?: Partial<UploadLimits>;
  /** Predictions running at once (default 2, the CPU count here). */
  maxConcurrent?: number;
  /** Requests waiting for a slot before 503 (default 64). */
  maxQueue?: number;
  /** Per-request limit in ms (default 30000) -> 504. */
  timeoutMs?: number;
  /** Called once per request with a short access-log line. */
  log?: (line: string) => void;
  staticDir?: string;
}

interface ModelEntry {
  classifier: Classifier;
  displayName: string;
}

const STATIC_FILES: Record<string, string> = {
  "/": "index.html",
  "/index.html": "index.html",
  "/app.js": "app.js",
  "/style.css": "style.css",
};

const MIME: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
};

const SECURITY_HEADERS = {
  "x-content-type-options": "nosniff",
  "content-security-policy":
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'",
  "referrer-policy": "no-referrer",
};

export const DEFAULT_STATIC_DIR = fileURLToPath(new URL("./static/", import.meta.url));

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

function round(x: number, digits = 6): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function describeModel(e: ModelEntry) {
  const c = e.classifier;
  return {
    id: c.id,
    net: c.net,
    displayName: e.displayName,
    threshold: c.threshold,
    weights: { ...c.weights, notImageNet: !c.weights.isImageNet },
    gradcam: c.gradcamLayer !== null,
    gradcamLayer: c.gradcamLayer,
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new HttpError(504, "timeout", `request took longer than ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export interface Handler {
  (req: Request): Promise<Response>;
  /** Settles when the classifiers are loaded (or failed to load). */
  ready: Promise<void>;
  limiter: ConcurrencyLimiter;
}

export function createHandler(opts: ServerOptions): Handler {
  const limits: UploadLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const limiter = new ConcurrencyLimiter(opts.maxConcurrent ?? 2, opts.maxQueue ?? 64);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const staticDir = opts.staticDir ?? DEFAULT_STATIC_DIR;
  const staticCache = new Map<string, Uint8Array>();
  let models: ModelEntry[] = [];
  let loadError: string | null = null;
  let loaded = false;
  let inFlight = 0;

  const ready = Promise.resolve(opts.classifiers).then(
    (list) => {
      models = list.map((c) => ({ classifier: c, displayName: DISPLAY_NAMES[c.net] ?? c.net }));
      loaded = true;
    },
    (e) => {
      loadError = (e as Error).message;
      loaded = true;
    },
  );

  function selectModels(param: string | null): ModelEntry[] {
    if (!loaded || loadError || models.length === 0) {
      throw new HttpError(
        503,
        "not_ready",
        loadError ? `models failed to load: ${loadError}` : "no model loaded yet; retry shortly",
      );
    }
    if (!param) return models;
    const wanted = param.split(",").map((s) => s.trim()).filter(Boolean);
    const picked: ModelEntry[] = [];
    for (const w of wanted) {
      const hits = models.filter((m) =>
        m.classifier.id === w || m.classifier.net === w.toLowerCase()
      );
      if (hits.length === 0) {
        throw new HttpError(
          404,
          "unknown_model",
          `unknown model ${JSON.stringify(w)}; loaded: ${
            models.map((m) => `${m.classifier.id} (${m.classifier.net})`).join(", ")
          }`,
        );
      }
      for (const h of hits) if (!picked.includes(h)) picked.push(h);
    }
    return picked;
  }

  async function predict(req: Request, url: URL): Promise<Response> {
    const explain = url.searchParams.get("explain");
    if (explain !== null && explain !== "gradcam" && explain !== "") {
      throw new HttpError(
        400,
        "bad_parameter",
        `explain must be "gradcam", got ${JSON.stringify(explain)}`,
      );
    }
    for (const k of url.searchParams.keys()) {
      if (k !== "model" && k !== "explain") {
        throw new HttpError(
          400,
          "bad_parameter",
          `unknown query parameter ${JSON.stringify(k)} (known: model, explain)`,
        );
      }
    }
    const selected = selectModels(url.searchParams.get("model"));
    const t0 = performance.now();
    // Bound everything in flight (bodies are held in memory), not only the model runs.
    if (inFlight >= limiter.maxActive + limiter.maxQueue) throw limiter.busyError();
    inFlight++;
    try {
      return await withTimeout(admitted(req, t0, selected, explain), timeoutMs);
    } finally {
      inFlight--;
    }
  }

  async function admitted(
    req: Request,
    t0: number,
    selected: ModelEntry[],
    explain: string | null,
  ): Promise<Response> {
    // Reading and checking the upload happens before queueing for a model slot, so bad
    // input is refused at once instead of waiting behind good requests.
    const bytes = await extractImageBytes(req, limits.maxBytes);
    const img = await decodeUpload(bytes, limits, IMAGE_SIZE);
    return await limiter.run(async () => {
      const results = [];
      for (const m of selected) {
        const c = m.classifier;
        const t1 = performance.now();
        const out = await c.predict(img.rgb, 1);
        const prob = out.prob[0];
        const result: Record<string, unknown> = {
          model: c.id,
          net: c.net,
          displayName: m.displayName,
          probability: round(prob),
          label: prob >= c.threshold.value ? "PNEUMONIA" : "NORMAL",
          threshold: c.threshold,
          weights: { ...c.weights, notImageNet: !c.weights.isImageNet },
          latency_ms: 0,
        };
        if (explain === "gradcam") {
          if (!opts.explain || c.gradcamLayer === null) {
            result.gradcam_error = `Grad-CAM is not available for model ${c.id}`;
          } else {
            try {
              const ex = await opts.explain(c, img.rgb, { prob, activation: out.gradcam });
              result.gradcam = {
                layer: ex.layer,
                target: ex.target,
                width: ex.w,
                height: ex.h,
                png_base64: toBase64(ex.overlayPng),
              };
            } catch (e) {
              result.gradcam_error = `Grad-CAM failed: ${(e as Error).message}`;
              opts.log?.(`gradcam error for ${c.id}: ${(e as Error).stack}`);
            }
          }
        }
        result.latency_ms = round(performance.now() - t1, 2);
        results.push(result);
      }
      return jsonResponse({
        image: {
          width: img.width,
          height: img.height,
          format: img.format,
          bytes: img.bytes,
          sha256: img.sha256,
          ...(img.dicom ? { dicom: img.dicom.tags, warnings: img.dicom.warnings } : {}),
        },
        results,
        latency_ms: round(performance.now() - t0, 2),
        notice: NOTICE,
      });
    });
  }

  async function serveStatic(path: string): Promise<Response> {
    const file = STATIC_FILES[path];
    let bytes = staticCache.get(file);
    if (!bytes) {
      bytes = await Deno.readFile(`${staticDir}/${file}`);
      staticCache.set(file, bytes);
    }
    const ext = file.split(".").pop()!;
    return new Response(bytes as Uint8Array<ArrayBuffer>, {
      headers: { "content-type": MIME[ext], "cache-control": "no-cache", ...SECURITY_HEADERS },
    });
  }

  async function route(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const path = url.pathname;
    const method = req.method;
    const allow = (methods: string[]) => {
      if (!methods.includes(method)) {
        throw new HttpError(
          405,
          "method_not_allowed",
          `${method} ${path} not allowed; use ${methods.join(", ")}`,
          {
            allow: methods.join(", "),
          },
        );
      }
    };
    if (path in STATIC_FILES) {
      allow(["GET", "HEAD"]);
      return await serveStatic(path);
    }
    switch (path) {
      case "/openapi.json":
        allow(["GET"]);
        return jsonResponse(openApiDocument());
      case "/healthz":
        allow(["GET"]);
        return jsonResponse({ status: "ok" });
      case "/readyz": {
        allow(["GET"]);
        if (!loaded) return jsonResponse({ status: "loading" }, 503);
        if (loadError) return jsonResponse({ status: "failed", error: loadError }, 503);
        if (models.length === 0) return jsonResponse({ status: "no_models" }, 503);
        return jsonResponse({
          status: "ready",
          models: models.length,
          active: limiter.active,
          queued: limiter.queued,
        });
      }
      case "/v1/models":
        allow(["GET"]);
        return jsonResponse({ models: models.map(describeModel), notice: NOTICE });
      case "/v1/predict":
        allow(["POST"]);
        return await predict(req, url);
      default:
        throw new HttpError(404, "not_found", `no route ${path}; see /openapi.json`);
    }
  }

  const handler = (async (req: Request): Promise<Response> => {
    const t0 = performance.now();
    let res: Response;
    try {
      res = await route(req);
    } catch (e) {
      if (e instanceof HttpError) {
        res = errorResponse(e);
      } else {
        opts.log?.(`internal error: ${(e as Error).stack ?? e}`);
        res = errorResponse(
          new HttpError(500, "internal", `internal error: ${(e as Error).message}`),
        );
      }
    }
    opts.log?.(
      `${req.method} ${new URL(req.url).pathname}${new URL(req.url).search} ${res.status} ${
        (performance.now() - t0).toFixed(1)
      }ms`,
    );
    return res;
  }) as Handler;
  handler.ready = ready;
  handler.limiter = limiter;
  return handler;
}

export interface RunningServer {
  url: string;
  hostname: string;
  port: number;
  handler: Handler;
  /** Stops accepting connections and waits for in-flight requests. */
  close(): Promise<void>;
  finished: Promise<void>;
}

/** Binds the handler (loopback by default; port 0 picks a free port). */
export function startServer(
  opts: ServerOptions & { hostname?: string; port?: number; signal?: AbortSignal },
): Promise<RunningServer> {
  const handler = createHandler(opts);
  const hostname = opts.hostname ?? "127.0.0.1";
  const server = Deno.serve({
    hostname,
    port: opts.port ?? 8080,
    signal: opts.signal,
    onListen: () => {}, // the CLI prints the URL itself
    onError: (e) => {
      opts.log?.(`unhandled: ${(e as Error).stack ?? e}`);
      return errorResponse(new HttpError(500, "internal", "internal error"));
    },
  }, handler);
  const port = (server.addr as Deno.NetAddr).port;
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return Promise.resolve({
    url: `http://${host}:${port}`,
    hostname,
    port,
    handler,
    close: () => server.shutdown(),
    finished: server.finished,
  });
}
