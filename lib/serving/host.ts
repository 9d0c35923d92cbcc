/**
 * The Host header check against DNS rebinding: a page on evil.example whose name is re-pointed
 * at 127.0.0.1 reaches a loopback server with `Host: evil.example`. Only names that cannot be
 * re-pointed that way are accepted: IP literals, `localhost` (and `*.localhost`), the bound
 * host name, and names the operator allowed (`--allow-host`).
 */
import { isIP } from "node:net";
import { HttpError } from "./errors.ts";

/** The host part of a Host header value ("[::1]:8080" -> "::1", "Example:80" -> "example"). */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith("[")) return h.slice(1, h.indexOf("]") >>> 0);
  const colon = h.lastIndexOf(":");
  return (colon >= 0 ? h.slice(0, colon) : h).replace(/\.$/, "");
}

/** Throws 421 unless the request's Host is one this server answers to. */
export function hostChecker(allowed: readonly string[]): (req: Request) => void {
  const names = new Set(allowed.map((a) => hostName(a)));
  return (req) => {
    const header = req.headers.get("host");
    if (header === null) return; // HTTP/1.0 without Host: nothing a browser could rebind
    const name = hostName(header);
    if (isIP(name) || name === "localhost" || name.endsWith(".localhost") || names.has(name)) {
      return;
    }
    throw new HttpError(
      421,
      "bad_host",
      `Host ${
        JSON.stringify(header)
      } is not served here (DNS rebinding guard): use an IP address or localhost, or start the server with --allow-host ${name}`,
    );
  };
}
