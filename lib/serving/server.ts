/**
 * The HTTP API and the clinical-test page. `createHandler` is a plain Request -> Response
 * function over a route table (so tests can inject fake classifiers); `startServer` binds it
 * on loopback by default. Each route is a short handler; the upload pipeline is predict.ts.
 */
import type { Explainer } from "../explain/explainer.ts";
import type { Classifier } from "../inference/classifier.ts";
import type { GuardModel } from "../inference/guard.ts";
import { errorResponse, HttpError, jsonResponse } from "./errors.ts";
import { ConcurrencyLimiter } from "./limiter.ts";
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
  /** Per-request limit in ms (default 30000) -> 504. */
  timeoutMs?: number;
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
}

const get = (handle: Route["handle"]): Route => ({ methods: ["GET"], handle });

function readiness(registry: ModelRegistry, limiter: ConcurrencyLimiter): Response {
  const state = registry.state;
  if (state.status !== "ready") return jsonResponse(state, 503);
  return jsonResponse({ ...state, active: limiter.active, queued: limiter.queued });
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
function routeTable(opts: ServerOptions, registry: ModelRegistry, limiter: ConcurrencyLimiter) {
  const serveStatic = staticFiles(opts.staticDir ?? DEFAULT_STATIC_DIR);
  const routes: Record<string, Route> = {
    "/openapi.json": get(() => jsonResponse(openApiDocument())),
    "/healthz": get(() => jsonResponse({ status: "ok" })),
    "/readyz": get(() => readiness(registry, limiter)),
    "/v1/models": get(() =>
      jsonResponse({ models: registry.describe(), guard: guardSummary(opts.guard), notice: NOTICE })
    ),
    "/v1/predict": {
      methods: ["POST"],
      handle: predictRoute({
        registry,
        limiter,
        limits: { ...DEFAULT_LIMITS, ...opts.limits },
        timeoutMs: opts.timeoutMs ?? 30_000,
        explain: opts.explain,
        guard: opts.guard ?? null,
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
  log?.(`internal error: ${(e as Error)?.stack ?? e}`);
  return errorResponse(new HttpError(500, "internal", `internal error: ${(e as Error)?.message}`));
}

export function createHandler(opts: ServerOptions): Handler {
  const registry = new ModelRegistry(opts.classifiers, opts.defaultThreshold);
  const limiter = new ConcurrencyLimiter(opts.maxConcurrent ?? 2, opts.maxQueue ?? 64);
  const routes = routeTable(opts, registry, limiter);
  const handler = (async (req: Request): Promise<Response> => {
    const t0 = performance.now();
    let res: Response;
    try {
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
    onError: (e) => toErrorResponse(e, opts.log),
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
