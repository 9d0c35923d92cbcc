/**
 * The HTTP API and the clinical-test page. `createHandler` is a plain Request -> Response
 * function over a route table (so tests can inject fake classifiers); `startServer` binds it
 * on loopback by default. Each route is a short handler; the upload pipeline is predict.ts.
 */
import type { Explainer } from "../explain/explainer.ts";
import type { Classifier } from "../inference/classifier.ts";
import type { GuardModel } from "../inference/guard.ts";
import { ModelUnavailableError } from "../inference/worker.ts";
import { errorResponse, HttpError, jsonResponse } from "./errors.ts";
import { type ConnectionLimits, listen } from "./http.ts";
import { hostChecker } from "./host.ts";
import { BodyBudget, ConcurrencyLimiter } from "./limiter.ts";
import { BatcherSet, type BatchOptions, DEFAULT_BATCHING } from "./batcher.ts";
import { ModelRegistry } from "./models.ts";
import { openApiDocument } from "./openapi.ts";
import { NOTICE, predictRoute } from "./predict.ts";
import { DEFAULT_STATIC_DIR, STATIC_FILES, staticFiles } from "./static.ts";
import { DEFAULT_LIMITS, type UploadLimits } from "./upload.ts";

export { NOTICE } from "./predict.ts";
export { DEFAULT_STATIC_DIR } from "./static.ts";

export interface ServerOptions {
  /** Loaded classifiers, or a promise of them (the server answers /readyz 503 until it settles). */
  classifiers: Classifier[] | Promise<Classifier[]>;
  explain?: Explainer;
  /** Out-of-distribution guard (lib/inference/guard.ts); absent: DICOM tags are checked only. */
  guard?: GuardModel | null;
  /** Threshold profile when a request names none (`serve --threshold`; default validation). */
  defaultThreshold?: string;
  limits?: Partial<UploadLimits>;
  /** Predictions running at once (default 2, the CPU count here). */
  maxConcurrent?: number;
  /** Requests waiting for a slot before 503 (default 64). */
  maxQueue?: number;
  /**
   * Concurrent requests grouped into one ORT call per model (default DEFAULT_BATCHING: up to 16
   * images, 10 ms window, 64 waiting); null or maxBatch 1: each request runs alone in its slot.
   */
  batching?: Partial<BatchOptions> | null;
  /** From a complete upload to its answer, queue wait included, in ms (default 30000) -> 504. */
  timeoutMs?: number;
  /** An upload must arrive within this many ms (default 30000) -> 408. */
  bodyTimeoutMs?: number;
  /** Upload bytes held in memory by all requests together (default 8 x limits.maxBytes) -> 503. */
  maxBufferedBytes?: number;
  /** Host names answered besides IP literals and localhost (DNS rebinding guard) -> 421. */
  allowedHosts?: string[];
  /** Called once per request with a short access-log line. */
  log?: (line: string) => void;
  staticDir?: string;
}

/** One path's handler and the methods it answers (others get 405). */
export interface Route {
  methods: readonly string[];
  handle: (req: Request, url: URL) => Response | Promise<Response>;
}

export interface Handler {
  (req: Request): Promise<Response>;
  /** Settles when the classifiers are loaded (or failed to load). */
  ready: Promise<void>;
  limiter: ConcurrencyLimiter;
  budget: BodyBudget;
}

/** What bounds the work in flight; /readyz reports it. */
interface Bounds {
  limiter: ConcurrencyLimiter;
  budget: BodyBudget;
  /** null when batching is off. */
  batchers: BatcherSet | null;
}

const get = (handle: Route["handle"]): Route => ({ methods: ["GET"], handle });

/** Ready once models are loaded; the counts include timed-out work still holding its slot. */
function readiness(registry: ModelRegistry, { limiter, budget, batchers }: Bounds): Response {
  const state = registry.state;
  if (state.status !== "ready") return jsonResponse(state, 503);
  // Models whose worker died for good: listed; not ready when none is left to answer.
  const unavailable = registry.unavailable();
  const none = unavailable.length === state.models;
  return jsonResponse({
    ...state,
    ...(none ? { status: "unavailable" } : {}),
    unavailable,
    active: limiter.active,
    queued: limiter.queued,
    uploads: budget.holders,
    uploadBytes: budget.used,
    busy: limiter.saturated,
    batching: batchers?.stats() ?? null,
  }, none ? 503 : 200);
}

/** What /v1/models says about the guard: fitted or tags only, and its measured false alarms. */
function guardSummary(g: GuardModel | null | undefined) {
  if (!g) return { fitted: false, checks: ["dicom tags"] };
  return {
    fitted: true,
    checks: ["dicom tags", "image score"],
    trainImages: g.fit.train,
    falseAlarms: g.falseAlarms,
  };
}

/** Every path the server answers; /openapi.json describes the same set. */
function routeTable(opts: ServerOptions, registry: ModelRegistry, bounds: Bounds) {
  const serveStatic = staticFiles(opts.staticDir ?? DEFAULT_STATIC_DIR);
  const routes: Record<string, Route> = {
    "/openapi.json": get(() => jsonResponse(openApiDocument())),
    "/healthz": get(() => jsonResponse({ status: "ok" })),
    "/readyz": get(() => readiness(registry, bounds)),
    "/v1/models": get(() =>
      jsonResponse({ models: registry.describe(), guard: guardSummary(opts.guard), notice: NOTICE })
    ),
    "/v1/predict": {
      methods: ["POST"],
      handle: predictRoute({
        registry,
        ...bounds,
        limits: limitsOf(opts),
        timeoutMs: opts.timeoutMs ?? 30_000,
        bodyTimeoutMs: opts.bodyTimeoutMs ?? 30_000,
        explain: opts.explain,
        guard: opts.guard ?? null,
        batchers: bounds.batchers,
        log: opts.log,
      }),
    },
  };
  for (const path of Object.keys(STATIC_FILES)) {
    routes[path] = { methods: ["GET", "HEAD"], handle: () => serveStatic(path) };
  }
  return routes;
}

function dispatch(routes: Record<string, Route>, req: Request): Response | Promise<Response> {
  const url = new URL(req.url);
  const route = Object.hasOwn(routes, url.pathname) ? routes[url.pathname] : undefined;
  if (!route) throw new HttpError(404, "not_found", `no route ${url.pathname}; see /openapi.json`);
  if (!route.methods.includes(req.method)) {
    const allow = route.methods.join(", ");
    throw new HttpError(
      405,
      "method_not_allowed",
      `${req.method} ${url.pathname} not allowed; use ${allow}`,
      { allow },
    );
  }
  return route.handle(req, url);
}

/** Any throw becomes a JSON error; unexpected ones are logged with their stack. */
function toErrorResponse(e: unknown, log?: (line: string) => void): Response {
  if (e instanceof HttpError) return errorResponse(e);
  if (e instanceof ModelUnavailableError) {
    const retry = e.retryable ? { "retry-after": "1" } : undefined;
    return errorResponse(new HttpError(503, "model_unavailable", e.message, retry));
  }
  log?.(`internal error: ${(e as Error)?.stack ?? e}`);
  return errorResponse(new HttpError(500, "internal", `internal error: ${(e as Error)?.message}`));
}

function batchersOf(batching: ServerOptions["batching"]): BatcherSet | null {
  if (batching === null) return null;
  const opts = { ...DEFAULT_BATCHING, ...batching };
  return opts.maxBatch > 1 ? new BatcherSet(opts) : null;
}

const limitsOf = (opts: ServerOptions): UploadLimits => ({ ...DEFAULT_LIMITS, ...opts.limits });

export function createHandler(opts: ServerOptions): Handler {
  const registry = new ModelRegistry(opts.classifiers, opts.defaultThreshold);
  const bounds = {
    limiter: new ConcurrencyLimiter(opts.maxConcurrent ?? 2, opts.maxQueue ?? 64),
    budget: new BodyBudget(opts.maxBufferedBytes ?? 8 * limitsOf(opts).maxBytes),
    batchers: batchersOf(opts.batching),
  };
  const routes = routeTable(opts, registry, bounds);
  const checkHost = hostChecker(opts.allowedHosts ?? []);
  const handler = (async (req: Request): Promise<Response> => {
    const t0 = performance.now();
    let res: Response;
    try {
      checkHost(req);
      res = await dispatch(routes, req);
    } catch (e) {
      res = toErrorResponse(e, opts.log);
    }
    const { pathname, search } = new URL(req.url);
    const ms = (performance.now() - t0).toFixed(1);
    opts.log?.(`${req.method} ${pathname}${search} ${res.status} ${ms}ms`);
    return res;
  }) as Handler;
  handler.ready = registry.ready;
  Object.assign(handler, bounds);
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
export async function startServer(
  opts: ServerOptions & {
    hostname?: string;
    port?: number;
    signal?: AbortSignal;
    connections?: Partial<ConnectionLimits>;
  },
): Promise<RunningServer> {
  const hostname = opts.hostname ?? "127.0.0.1";
  const handler = createHandler({ ...opts, allowedHosts: [hostname, ...opts.allowedHosts ?? []] });
  // The socket-level deadline backs the handler's own (which answers a JSON 408 first).
  const requestTimeoutMs = (opts.bodyTimeoutMs ?? 30_000) + 5_000;
  const server = await listen(
    handler,
    { hostname, port: opts.port ?? 8080, limits: { requestTimeoutMs, ...opts.connections } },
    (e) => toErrorResponse(e, opts.log),
  );
  opts.signal?.addEventListener("abort", () => server.close(), { once: true });
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return {
    url: `http://${host}:${server.port}`,
    hostname,
    port: server.port,
    handler,
    close: server.close,
    finished: server.finished,
  };
}
