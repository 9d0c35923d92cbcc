/**
 * Binds a fetch-style handler (Request -> Response) to a socket with node:http rather than
 * Deno.serve, for the connection deadlines Deno.serve lacks: a client that sends its headers
 * or its body too slowly is answered 408 and disconnected (headersTimeout, requestTimeout),
 * idle keep-alive sockets are closed, and the number of open sockets is capped. Without these a
 * few dozen trickling connections could hold the server's sockets and memory indefinitely.
 */
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { Buffer } from "node:buffer";
import { Readable } from "node:stream";

export interface ConnectionLimits {
  /** All request headers must arrive within this (default 10 s). */
  headersTimeoutMs: number;
  /** The whole request, body included, must arrive within this (default 60 s). */
  requestTimeoutMs: number;
  /** Idle keep-alive sockets are closed after this (default 5 s). */
  keepAliveTimeoutMs: number;
  /** Open sockets at most; more are refused at accept (default 256). */
  maxConnections: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 256,
};

export interface Listening {
  hostname: string;
  port: number;
  /** Stops accepting, waits for in-flight requests, then closes idle sockets. */
  close(): Promise<void>;
  finished: Promise<void>;
}

/** The web Request for a node request; the URL's origin is the bound address, never the Host. */
function toRequest(req: http.IncomingMessage, origin: string, signal: AbortSignal): Request {
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  }
  const method = req.method ?? "GET";
  const hasBody = method !== "GET" && method !== "HEAD";
  return new Request(new URL(req.url ?? "/", origin), {
    method,
    headers,
    body: hasBody ? Readable.toWeb(req) as ReadableStream<Uint8Array> : null,
    signal,
    duplex: "half",
  } as RequestInit);
}

async function writeResponse(req: http.IncomingMessage, res: http.ServerResponse, r: Response) {
  // Every answer here is small (JSON, the page's files): send it whole, with its length.
  const body = new Uint8Array(await r.arrayBuffer());
  res.statusCode = r.status;
  r.headers.forEach((value, name) => res.setHeader(name, value));
  res.setHeader("content-length", body.byteLength);
  // A body the handler did not read (early 4xx/503, 408) is not drained: close after answering.
  if (!req.complete) res.setHeader("connection", "close");
  res.end(body);
}

/** node's parser error codes -> the status and code of the JSON answer (others: 400). */
const CLIENT_ERRORS: Record<string, [number, string, string]> = {
  HPE_HEADER_OVERFLOW: [431, "headers_too_large", "request headers too large"],
  ERR_HTTP_REQUEST_TIMEOUT: [408, "request_timeout", "request did not arrive in time"],
  HPE_HEADERS_TIMEOUT: [408, "request_timeout", "request headers did not arrive in time"],
};

/** A request node's parser refused: answer a minimal JSON error if still possible, then close. */
function onClientError(err: Error & { code?: string }, socket: Socket) {
  if (err.code !== "ECONNRESET" && socket.writable && !socket.writableEnded) {
    const [status, code, message] = CLIENT_ERRORS[err.code ?? ""] ??
      [400, "bad_request", `malformed HTTP request (${err.code ?? err.message})`];
    const body = JSON.stringify({ error: { code, message } });
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n` +
        "content-type: application/json; charset=utf-8\r\ncache-control: no-store\r\n" +
        `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/** Serves `handler` on hostname:port (port 0 picks a free one). */
export async function listen(
  handler: (req: Request) => Promise<Response>,
  opts: { hostname: string; port: number; limits?: Partial<ConnectionLimits> },
  onError: (e: unknown) => Response,
): Promise<Listening> {
  const limits = { ...DEFAULT_CONNECTION_LIMITS, ...opts.limits };
  const server = http.createServer({
    headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs),
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // How often the two deadlines above are checked (node's default, 30 s, would dwarf them).
    connectionsCheckingInterval: Math.max(100, Math.min(1000, limits.headersTimeoutMs / 4)),
  } as http.ServerOptions);
  server.maxConnections = limits.maxConnections;
  server.on("clientError", onClientError);
  const host = opts.hostname.includes(":") ? `[${opts.hostname}]` : opts.hostname;
  let origin = "";
  // node's close() waits for keep-alive sockets to time out; track them to end them ourselves.
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  let inFlight = 0;
  let drained = () => {};
  server.on("request", async (req, res) => {
    inFlight++;
    const aborted = new AbortController();
    res.on("close", () => aborted.abort());
    let response: Response;
    try {
      response = await handler(toRequest(req, origin, aborted.signal));
    } catch (e) {
      response = onError(e);
    }
    try {
      await writeResponse(req, res, response);
    } catch {
      res.destroy(); // the client went away mid-answer
    } finally {
      if (--inFlight === 0) drained();
    }
  });
  await new Promise<void>((ok, fail) => {
    server.once("error", fail);
    server.listen(opts.port, opts.hostname, () => {
      server.off("error", fail);
      ok();
    });
  });
  const port = (server.address() as AddressInfo).port;
  origin = `http://${host}:${port}`;
  const finished = new Promise<void>((ok) => server.once("close", () => ok()));
  return {
    hostname: opts.hostname,
    port,
    close: async () => {
      server.close();
      if (inFlight > 0) await new Promise<void>((ok) => (drained = ok));
      for (const socket of sockets) socket.destroy();
      await finished;
    },
    finished,
  };
}
