/**
 * Who may talk to the embedded API server, checked before a request is
 * read:
 *
 * - on TCP, a bearer token (`Authorization: Bearer <token>`), the one in
 *   the kubeconfig `lace store kubeconfig` prints; a unix socket's file
 *   mode (0600) is its access control;
 * - no browser: a request with an `Origin` (or a cross-site
 *   `Sec-Fetch-Site`) is refused, and the `Host` must be a loopback name, so
 *   a web page cannot reach the store through DNS rebinding;
 * - a body only in the media types kubectl and client-node send (JSON,
 *   YAML, the patch types): a browser's `text/plain` or form POST is 415.
 *
 * @example
 * const problem = guardRequest(req, { token });
 * if (problem) return sendStatus(res, problem);
 */
import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";

/** A refusal: the HTTP code, the Status reason and a message that says what was expected. */
export interface Refusal {
  code: number;
  reason: string;
  message: string;
}

/** The body media types the server reads. */
export const BODY_TYPES: readonly string[] = [
  "application/json",
  "application/yaml",
  "application/json-patch+json",
  "application/merge-patch+json",
  "application/strategic-merge-patch+json",
  "application/apply-patch+yaml",
];

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]", "::1"]);

function hostName(host: string): string {
  const m = /^(\[[^\]]*\]|[^:]*)(?::\d+)?$/.exec(host);
  return (m ? m[1] : host).toLowerCase();
}

function tokenMatches(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Why `req` is refused, or undefined when it may proceed. `token`: the bearer token TCP clients must send. */
export function guardRequest(req: IncomingMessage, options: { token?: string }): Refusal | undefined {
  const origin = req.headers.origin;
  if (origin !== undefined) {
    return { code: 403, reason: "Forbidden", message: `Cross-origin requests are refused: got Origin ${JSON.stringify(origin)}; the store serves kubectl and client-node, not browsers` };
  }
  const site = req.headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin" && site !== "none") {
    return { code: 403, reason: "Forbidden", message: `Cross-site requests are refused: got Sec-Fetch-Site ${JSON.stringify(site)}` };
  }
  const host = req.headers.host;
  if (host !== undefined && !LOOPBACK_HOSTS.has(hostName(host))) {
    return { code: 403, reason: "Forbidden", message: `Host ${JSON.stringify(host)} is refused: expected localhost, 127.0.0.1 or [::1], the only names of this store` };
  }
  if (options.token !== undefined) {
    const auth = req.headers.authorization ?? "";
    const m = /^Bearer\s+(\S+)$/i.exec(auth);
    if (!m || !tokenMatches(m[1], options.token)) {
      return {
        code: 401,
        reason: "Unauthorized",
        message: auth
          ? "Unauthorized: the bearer token is not this store's; use the kubeconfig `lace store kubeconfig` prints"
          : "Unauthorized: expected an Authorization: Bearer <token> header; use the kubeconfig `lace store kubeconfig` prints",
      };
    }
  }
  const method = req.method ?? "GET";
  const hasBody = Number(req.headers["content-length"] ?? 0) > 0 || req.headers["transfer-encoding"] !== undefined;
  if (method === "POST" || method === "PUT" || method === "PATCH" || (method === "DELETE" && hasBody)) {
    const type = (req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
    if (!BODY_TYPES.includes(type)) {
      return {
        code: 415,
        reason: "UnsupportedMediaType",
        message: `Unsupported Content-Type ${JSON.stringify(req.headers["content-type"] ?? "")} on ${method}: expected one of ${BODY_TYPES.join(", ")}`,
      };
    }
  }
  return undefined;
}
