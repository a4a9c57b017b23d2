/**
 * The embedded API server: a SqliteStore served over HTTP with the
 * Kubernetes REST conventions, so the controller and agents use the same
 * `@kubernetes/client-node` code against it as against a real API server.
 *
 * Served: `/api/v1/...` (Namespace, Node, Pod, Service) and
 * `/apis/lace-cni.io/v1alpha1/...` (every lace-cni kind); get, list (label
 * and field selectors), watch (from a resourceVersion, bookmarks,
 * `timeoutSeconds`), create, update, `/status`, merge and JSON patches,
 * delete with preconditions; errors as `Status` objects; the discovery
 * documents client-node asks for. It listens on a unix socket or on
 * loopback only: there is no authentication, the socket's file mode is the
 * access control.
 *
 * @example
 * const server = await startEmbeddedServer({ store: SqliteStore.open("lace.db"), listen: "127.0.0.1:0" });
 * console.log(server.url); // http://127.0.0.1:41234
 * await server.close();
 */
import { chmodSync, existsSync, unlinkSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { GROUP, isStoreError, type Resource, StoreError, VERSION, type WatchEvent } from "../../../core/mod.ts";
import { apiVersionOf, KIND_TABLE, kindByPlural, type KindInfo } from "../kinds.ts";
import { applyJsonPatch } from "./json_patch.ts";
import { parseFieldSelector, parseLabelSelector } from "./selector.ts";
import type { SqliteStore } from "./sqlite_store.ts";

export interface EmbeddedServerOptions {
  store: SqliteStore;
  /** `unix:/run/lace/store.sock`, `127.0.0.1:6443` or `127.0.0.1:0` (any free port). */
  listen: string;
  /** How often a watch that asked for bookmarks gets one. Default 10 s. */
  bookmarkIntervalMs?: number;
}

export interface EmbeddedServer {
  /** What a kubeconfig's `server:` says: `http://127.0.0.1:PORT`, or `http://localhost` for a socket. */
  url: string;
  /** The unix socket path, when listening on one. */
  socketPath?: string;
  /** The address in `--listen` form, with the real port. */
  listen: string;
  /** Ends every open watch stream, as an API server does on restart; clients resume from their last version. */
  closeWatches(): void;
  close(): Promise<void>;
}

export type ListenAddress = { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };

const LOOPBACK = new Set(["127.0.0.1", "::1", "[::1]", "localhost"]);

/** Parses `--listen`; anything but a unix socket or a loopback address is refused. */
export function parseListen(text: string): ListenAddress {
  if (text.startsWith("unix:")) {
    const path = text.slice("unix:".length);
    if (!path) throw new Error(`Invalid listen address "${text}": expected unix:<path>`);
    return { kind: "unix", path };
  }
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(text);
  if (!m) throw new Error(`Invalid listen address "${text}": expected unix:<path> or 127.0.0.1:<port>`);
  const [, host, port] = m;
  if (!LOOPBACK.has(host)) {
    throw new Error(`Refusing to listen on "${text}": the embedded store has no authentication, so it listens on a unix socket or loopback only`);
  }
  const n = Number(port);
  if (n > 65535) throw new Error(`Invalid listen address "${text}": port must be 0-65535, got ${port}`);
  return { kind: "tcp", host: host.replace(/^\[|\]$/g, ""), port: n };
}

/** A Kubernetes `Status` failure body. */
function status(code: number, reason: string, message: string, details?: Record<string, unknown>): Record<string, unknown> {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, ...(details ? { details } : {}), code };
}

const REASON: Record<string, string> = {
  NotFound: "NotFound",
  AlreadyExists: "AlreadyExists",
  Conflict: "Conflict",
  Gone: "Expired",
  Invalid: "Invalid",
  Unavailable: "ServiceUnavailable",
};

class HttpError extends Error {
  constructor(readonly code: number, readonly reason: string, message: string) {
    super(message);
  }
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, e: unknown, info?: KindInfo, name?: string): void {
  const details = info ? { ...(name ? { name } : {}), group: info.group, kind: info.plural } : undefined;
  if (isStoreError(e)) return send(res, e.status, status(e.status, REASON[e.reason] ?? e.reason, e.message, details));
  if (e instanceof HttpError) return send(res, e.code, status(e.code, e.reason, e.message, details));
  send(res, 500, status(500, "InternalError", `Internal error: ${(e as Error)?.message ?? String(e)}`));
}

const MAX_BODY = 3 * 1024 * 1024;
const MAX_WATCH_BUFFER = 16 * 1024 * 1024;

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, "RequestEntityTooLarge", `Request body is larger than ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, "BadRequest", `Request body is not valid JSON: ${(e as Error).message}`);
  }
}

interface Route {
  info: KindInfo;
  namespace?: string;
  name?: string;
  subresource?: "status";
}

/** Splits a resource path into kind, namespace, name and subresource, or undefined when it is none. */
function route(segments: string[]): Route | undefined {
  let group: string;
  let version: string;
  let rest: string[];
  if (segments[0] === "api" && segments.length >= 3) {
    [group, version, rest] = ["", segments[1], segments.slice(2)];
  } else if (segments[0] === "apis" && segments.length >= 4) {
    [group, version, rest] = [segments[1], segments[2], segments.slice(3)];
  } else return undefined;
  let namespace: string | undefined;
  // `namespaces/<ns>/status` is the Namespace's own status, not a kind inside it.
  if (rest[0] === "namespaces" && rest.length >= 3 && rest[2] !== "status") {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const info = kindByPlural(group, version, rest[0]);
  if (!info || rest.length > 3) return undefined;
  if (namespace !== undefined && !info.namespaced) return undefined;
  const name = rest[1];
  if (rest.length === 3 && (rest[2] !== "status" || !info.statusSubresource)) return undefined;
  return { info, namespace, name, subresource: rest.length === 3 ? "status" : undefined };
}

function resourceList(groupVersion: string, kinds: KindInfo[]): Record<string, unknown> {
  const verbs = ["create", "delete", "get", "list", "patch", "update", "watch"];
  const resources: Record<string, unknown>[] = [];
  for (const k of kinds) {
    resources.push({ name: k.plural, singularName: k.singular, namespaced: k.namespaced, kind: k.kind, verbs, shortNames: k.shortNames });
    if (k.statusSubresource) {
      resources.push({ name: `${k.plural}/status`, singularName: "", namespaced: k.namespaced, kind: k.kind, verbs: ["get", "patch", "update"] });
    }
  }
  return { kind: "APIResourceList", apiVersion: "v1", groupVersion, resources };
}

const LACE_GROUP_VERSION = `${GROUP}/${VERSION}`;
const API_GROUP = {
  kind: "APIGroup",
  apiVersion: "v1",
  name: GROUP,
  versions: [{ groupVersion: LACE_GROUP_VERSION, version: VERSION }],
  preferredVersion: { groupVersion: LACE_GROUP_VERSION, version: VERSION },
};

/** The documents client-node and kubectl read before talking to resources. */
function discovery(path: string): unknown {
  switch (path) {
    case "/api":
      return { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: "" }] };
    case "/api/v1":
      return resourceList("v1", KIND_TABLE.filter((k) => k.group === ""));
    case "/apis":
      return { kind: "APIGroupList", apiVersion: "v1", groups: [API_GROUP] };
    case `/apis/${GROUP}`:
      return API_GROUP;
    case `/apis/${LACE_GROUP_VERSION}`:
      return resourceList(LACE_GROUP_VERSION, KIND_TABLE.filter((k) => k.group === GROUP));
    case "/version":
      return { major: "1", minor: "31", gitVersion: "v1.31.0-lace-embedded", platform: "linux" };
    default:
      return undefined;
  }
}

/** Starts the server; resolves once it listens. */
export async function startEmbeddedServer(options: EmbeddedServerOptions): Promise<EmbeddedServer> {
  const { store } = options;
  const bookmarkIntervalMs = options.bookmarkIntervalMs ?? 10_000;
  const address = parseListen(options.listen);
  const sockets = new Set<Socket>();
  const watches = new Set<() => void>();

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) sendError(res, e);
      else res.destroy();
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://embedded");
    const path = url.pathname.replace(/\/+$/, "") || "/";
    const method = req.method ?? "GET";
    if (path === "/healthz" || path === "/readyz" || path === "/livez") {
      res.writeHead(200, { "Content-Type": "text/plain" });
      res.end("ok");
      return;
    }
    const doc = method === "GET" ? discovery(path) : undefined;
    if (doc) return send(res, 200, doc);
    const r = route(path.split("/").filter((s) => s !== "").map(decodeURIComponent));
    if (!r) throw new HttpError(404, "NotFound", `The server could not find the requested resource: ${method} ${path}`);
    const { info, namespace, name, subresource } = r;
    const q = url.searchParams;
    try {
      if (name === undefined) {
        if (method === "GET") {
          const label = parseLabelSelector(q.get("labelSelector"));
          const field = parseFieldSelector(q.get("fieldSelector"));
          if (q.get("watch") === "true" || q.get("watch") === "1") return watch(req, res, info, namespace, q);
          const list = store.listSync(info.kind, { namespace, label, field });
          return send(res, 200, {
            apiVersion: apiVersionOf(info),
            kind: `${info.kind}List`,
            metadata: { resourceVersion: list.resourceVersion },
            items: list.items,
          });
        }
        if (method === "POST") {
          if (info.namespaced && namespace === undefined) {
            throw new HttpError(405, "MethodNotAllowed", `Create ${info.kind} under /namespaces/<namespace>/${info.plural}`);
          }
          const body = await objectBody(req, info, namespace);
          return send(res, 201, store.createSync(body));
        }
        throw new HttpError(405, "MethodNotAllowed", `${method} is not supported on the ${info.plural} collection`);
      }
      if (info.namespaced && namespace === undefined) {
        throw new HttpError(404, "NotFound", `${info.kind} "${name}": a namespaced kind is addressed under /namespaces/<namespace>/${info.plural}/${name}`);
      }
      switch (method) {
        case "GET": {
          const o = store.getSync(info.kind, name, namespace);
          if (!o) throw new StoreError("NotFound", `${info.plural}${info.group ? "." + info.group : ""} "${name}" not found`);
          return send(res, 200, o);
        }
        case "PUT": {
          const body = await objectBody(req, info, namespace);
          if (body.metadata.name !== name) {
            throw new HttpError(400, "BadRequest", `The name in the body ("${body.metadata.name}") does not match the name in the URL ("${name}")`);
          }
          return send(res, 200, subresource === "status" ? store.updateStatusSync(body) : store.updateSync(body));
        }
        case "PATCH": {
          const type = (req.headers["content-type"] ?? "").split(";")[0].trim();
          const patch = await readJson(req);
          if (type === "application/json-patch+json") {
            if (!Array.isArray(patch)) throw new HttpError(400, "BadRequest", "A JSON patch must be an array of operations");
            const cur = store.getSync(info.kind, name, namespace);
            if (!cur) throw new StoreError("NotFound", `${info.plural} "${name}" not found`);
            const patched = applyJsonPatch(cur, patch) as Resource;
            return send(res, 200, store.applySync(cur, patched, subresource));
          }
          if (type === "application/merge-patch+json" || type === "application/strategic-merge-patch+json") {
            if (patch === null || typeof patch !== "object" || Array.isArray(patch)) {
              throw new HttpError(400, "BadRequest", "A merge patch must be a JSON object");
            }
            return send(res, 200, store.patchSync(info.kind, name, namespace, patch as Record<string, unknown>, subresource));
          }
          throw new HttpError(415, "UnsupportedMediaType", `Unsupported patch type "${type}": expected application/merge-patch+json, application/strategic-merge-patch+json or application/json-patch+json`);
        }
        case "DELETE": {
          if (subresource) throw new HttpError(405, "MethodNotAllowed", "DELETE is not supported on /status");
          const body = (await readJson(req)) as { preconditions?: { resourceVersion?: string; uid?: string } } | undefined;
          return send(res, 200, store.deleteSync(info.kind, name, namespace, body?.preconditions ?? {}));
        }
        default:
          throw new HttpError(405, "MethodNotAllowed", `${method} is not supported on ${info.plural}/${name}`);
      }
    } catch (e) {
      if (res.headersSent) throw e;
      sendError(res, e, info, name);
    }
  }

  async function objectBody(req: IncomingMessage, info: KindInfo, namespace: string | undefined): Promise<Resource> {
    const body = await readJson(req);
    if (body === null || typeof body !== "object" || Array.isArray(body)) {
      throw new HttpError(400, "BadRequest", `The body must be a ${info.kind} object`);
    }
    const o = body as Resource;
    o.apiVersion ??= apiVersionOf(info);
    o.kind ??= info.kind;
    if (o.kind !== info.kind || o.apiVersion !== apiVersionOf(info)) {
      throw new HttpError(400, "BadRequest", `The body is a ${o.apiVersion}/${o.kind}, expected ${apiVersionOf(info)}/${info.kind} at this path`);
    }
    o.metadata ??= { name: "" };
    if (info.namespaced) {
      if (o.metadata.namespace !== undefined && o.metadata.namespace !== namespace) {
        throw new HttpError(400, "BadRequest", `The namespace of the object ("${o.metadata.namespace}") does not match the namespace in the URL ("${namespace}")`);
      }
      o.metadata.namespace = namespace;
    }
    return o;
  }

  function watch(req: IncomingMessage, res: ServerResponse, info: KindInfo, namespace: string | undefined, q: URLSearchParams): void {
    const label = parseLabelSelector(q.get("labelSelector"));
    const field = parseFieldSelector(q.get("fieldSelector"));
    const rv = q.get("resourceVersion") ?? "";
    res.writeHead(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked", "Cache-Control": "no-cache" });
    res.flushHeaders();
    const write = (e: WatchEvent<unknown> | { type: "ERROR"; object: unknown }) => {
      if (res.writableEnded) return;
      res.write(JSON.stringify(e) + "\n");
      // A client that does not read would make us buffer without bound; end its
      // watch instead, as the API server does: it resumes from its last version.
      if (res.writableLength > MAX_WATCH_BUFFER) end();
    };
    let unsubscribe = () => {};
    let timer: ReturnType<typeof setInterval> | undefined;
    let timeout: ReturnType<typeof setTimeout> | undefined;
    const end = () => {
      unsubscribe();
      clearInterval(timer);
      clearTimeout(timeout);
      watches.delete(end);
      if (!res.writableEnded) res.end();
    };
    watches.add(end);
    req.on("close", end);
    res.on("close", end);
    try {
      // As the API server: no version (or "0") means "the current state, then changes".
      let from = rv;
      if (rv === "" || rv === "0") {
        const list = store.listSync(info.kind, { namespace, label, field });
        for (const o of list.items) write({ type: "ADDED", object: o });
        from = list.resourceVersion;
      }
      unsubscribe = store.subscribe(info.kind, { namespace, resourceVersion: from, label, field }, write);
    } catch (e) {
      if (isStoreError(e, "Gone")) {
        write({ type: "ERROR", object: status(410, "Expired", e.message) });
      } else {
        const code = isStoreError(e) ? e.status : 500;
        write({ type: "ERROR", object: status(code, isStoreError(e) ? REASON[e.reason] : "InternalError", (e as Error).message) });
      }
      end();
      return;
    }
    if (q.get("allowWatchBookmarks") === "true" || q.get("allowWatchBookmarks") === "1") {
      timer = setInterval(() => {
        write({ type: "BOOKMARK", object: { apiVersion: apiVersionOf(info), kind: info.kind, metadata: { resourceVersion: store.resourceVersion } } });
      }, bookmarkIntervalMs);
    }
    const seconds = Number(q.get("timeoutSeconds") ?? "");
    if (seconds > 0) timeout = setTimeout(end, seconds * 1000);
  }

  if (address.kind === "unix" && existsSync(address.path)) unlinkSync(address.path);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    if (address.kind === "unix") server.listen(address.path, resolve);
    else server.listen(address.port, address.host, resolve);
  });
  let url: string;
  let listen: string;
  if (address.kind === "unix") {
    chmodSync(address.path, 0o600);
    url = "http://localhost";
    listen = `unix:${address.path}`;
  } else {
    const a = server.address();
    const port = typeof a === "object" && a ? a.port : address.port;
    const host = address.host.includes(":") ? `[${address.host}]` : address.host;
    url = `http://${host}:${port}`;
    listen = `${host}:${port}`;
  }
  return {
    url,
    socketPath: address.kind === "unix" ? address.path : undefined,
    listen,
    closeWatches: () => {
      for (const end of [...watches]) end();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const end of [...watches]) end();
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
