/**
 * The embedded API server: a SqliteStore served over HTTP with the
 * Kubernetes REST conventions, so the controller and agents use the same
 * `@kubernetes/client-node` code against it as against a real API server.
 *
 * Served: `/api/v1/...` (Namespace, Node, Pod, Service, Event),
 * `/apis/discovery.k8s.io/v1/...` (EndpointSlice) and
 * `/apis/lace-cni.io/v1alpha1/...` (every lace-cni kind); get, list (label
 * and field selectors, `limit`/`continue` pages), watch (from a
 * resourceVersion, bookmarks, `timeoutSeconds`), create (`generateName`),
 * update (a lace-cni kind needs `metadata.resourceVersion`), `/status`,
 * JSON, merge and strategic merge patches (strategic: built-in kinds only, as
 * for custom resources on a real API server), server-side apply with
 * field managers (server_side_apply.ts), delete with preconditions and
 * finalizers, delete of a collection; `?dryRun=All` on every write; Table
 * responses for `kubectl get`; `/openapi/v2` and `/openapi/v3`; errors as
 * `Status` objects. Every write is validated first (admission.ts).
 *
 * It listens on a unix socket (mode 0600: the file mode is the access
 * control) or on loopback TCP with a bearer token; browsers are refused
 * (request_guard.ts).
 *
 * @example
 * const server = await startEmbeddedServer({ store: SqliteStore.open("lace.db"), listen: "127.0.0.1:0" });
 * console.log(server.url); // https://127.0.0.1:41234
 * await server.close();
 */
import { randomBytes } from "node:crypto";
import { chmodSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { Socket } from "node:net";
import { parse as parseYaml } from "yaml";
import { isStoreError, mergePatch, type Resource, StoreError, type WatchEvent } from "../../../core/mod.ts";
import { parseConfig } from "../../../core/plugin/config.ts";
import { loadPlugins } from "../../../core/plugin/loader.ts";
import type { NetworkTypeLookup } from "../../../core/resources/validate.ts";
import { apiVersionOf, kindByPlural, type KindInfo } from "../kinds.ts";
import { admission, checkBodyShape, InvalidObjectError } from "./admission.ts";
import { applyJsonPatch } from "./json_patch.ts";
import { namespaceLifecycle } from "./namespace_lifecycle.ts";
import { discovery } from "./discovery.ts";
import { freeSocketPath, parseListen } from "./listen_address.ts";
import { pruneUnknownFields } from "./prune.ts";
import { guardRequest } from "./request_guard.ts";
import { parseFieldSelector, parseLabelSelector } from "./selector.ts";
import { selfSignedCertificate } from "./self_signed.ts";
import { serverSideApply } from "./server_side_apply.ts";
import type { SqliteStore } from "./sqlite_store.ts";
import { strategicMergePatch, supportsStrategicMerge } from "./strategic_merge.ts";
import { parseIncludeObject, toTable, wantsTable } from "./table.ts";

export { type ListenAddress, parseListen } from "./listen_address.ts";

export interface EmbeddedServerOptions {
  store: SqliteStore;
  /** `unix:/run/lace/store.sock`, `127.0.0.1:6443` or `127.0.0.1:0` (any free port). */
  listen: string;
  /** How often a watch that asked for bookmarks gets one. Default 10 s. */
  bookmarkIntervalMs?: number;
  /** The bearer token TCP clients must send. Default: a new random one (see {@link EmbeddedServer.token}). Ignored on a unix socket. */
  token?: string;
  /** TCP only: the TLS certificate and key (PEM). Default: a new self-signed one (see {@link EmbeddedServer.certificate}). */
  tls?: { cert: string; key: string };
  /** The network types Networks are validated against. Default: the built-in l3, l2 and external. */
  networkTypes?: NetworkTypeLookup;
}

export interface EmbeddedServer {
  /** What a kubeconfig's `server:` says: `https://127.0.0.1:PORT`, or `http://localhost` for a socket. */
  url: string;
  /** The unix socket path, when listening on one. */
  socketPath?: string;
  /** The address in `--listen` form, with the real port. */
  listen: string;
  /** The bearer token clients send on TCP (undefined on a unix socket). */
  token?: string;
  /** The TLS certificate (PEM) clients trust on TCP, its own root (undefined on a unix socket). */
  certificate?: string;
  /** Ends every open watch stream, as an API server does on restart; clients resume from their last version. */
  closeWatches(): void;
  close(): Promise<void>;
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
  if (e instanceof InvalidObjectError) {
    return send(res, 422, status(422, "Invalid", e.message, { name: e.objectName, group: info?.group ?? "", kind: e.kind, causes: e.causes }));
  }
  if (isStoreError(e)) return send(res, e.status, status(e.status, REASON[e.reason] ?? e.reason, e.message, details));
  if (e instanceof HttpError) return send(res, e.code, status(e.code, e.reason, e.message, details));
  send(res, 500, status(500, "InternalError", `Internal error: ${(e as Error)?.message ?? String(e)}`));
}

const MAX_BODY = 3 * 1024 * 1024;
const MAX_WATCH_BUFFER = 16 * 1024 * 1024;

/** Reads a JSON body, or a YAML one when the Content-Type says so (`application/yaml`, `application/apply-patch+yaml`). */
async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, "RequestEntityTooLarge", `Request body is larger than ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (!text.trim()) return undefined;
  const type = (req.headers["content-type"] ?? "").split(";")[0].trim();
  if (type.endsWith("yaml")) {
    try {
      return parseYaml(text, { logLevel: "error" });
    } catch (e) {
      throw new HttpError(400, "BadRequest", `Request body is not valid YAML: ${(e as Error).message}`);
    }
  }
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

/**
 * The decoded segments of a request path, read from the raw URL: a dot
 * segment (`..`, also as `%2e%2e`) or broken percent-encoding is 400, never
 * resolved, so `/pods/..` cannot address the Namespace above it.
 */
function pathSegments(rawUrl: string): string[] {
  const raw = rawUrl.split("?")[0];
  return raw.split("/").filter((s) => s !== "").map((s) => {
    let decoded: string;
    try {
      decoded = decodeURIComponent(s);
    } catch {
      throw new HttpError(400, "BadRequest", `Invalid path segment ${JSON.stringify(s)}: broken percent-encoding`);
    }
    if (decoded === "." || decoded === ".." || decoded.includes("/")) {
      throw new HttpError(400, "BadRequest", `Invalid path segment ${JSON.stringify(s)}: expected a name, not "." or ".." or a "/"`);
    }
    return decoded;
  });
}

/** The namespaces a real API server creates at start; namespaced objects need theirs to exist. */
export const SYSTEM_NAMESPACES: readonly string[] = ["default", "kube-system", "kube-public", "kube-node-lease"];

const BUILT_IN_TYPES = "plugins: [lace-cni/l3, lace-cni/l2, lace-cni/external]";

/** The network types of the built-in plugins, for validation when the caller has none. */
async function builtInNetworkTypes(): Promise<NetworkTypeLookup> {
  const loaded = await loadPlugins(parseConfig(BUILT_IN_TYPES, "built-in configuration"), { baseUrl: import.meta.url });
  return loaded.networkTypes;
}

/** `?dryRun=All` (in the query, or `dryRun: ["All"]` in DeleteOptions): true; anything else but nothing is refused. */
function parseDryRun(values: unknown[]): boolean {
  const given = values.filter((v) => v !== "");
  for (const v of given) {
    if (v !== "All") throw new HttpError(400, "BadRequest", `Invalid dryRun value ${JSON.stringify(v)}: expected All`);
  }
  return given.length > 0;
}

const FIELD_VALIDATION = new Set(["", "Strict", "Warn", "Ignore"]);

/**
 * Who a write is recorded under: `?fieldManager=`, else the client's
 * program name from its User-Agent (`kubectl/v1.32 ...` → `kubectl`), as
 * the API server does. A name that is not 1-128 printable characters is 422.
 */
function fieldManager(param: string | null, userAgent: string | undefined): string {
  if (param !== null) {
    if (param.length === 0 || param.length > 128 || !/^[\x20-\x7e]+$/.test(param)) {
      throw new HttpError(422, "Invalid", `Invalid fieldManager ${JSON.stringify(param.slice(0, 140))}: expected 1-128 printable ASCII characters`);
    }
    return param;
  }
  const name = (userAgent ?? "").split("/")[0].trim().replace(/[^\x20-\x7e]/g, "").slice(0, 128);
  return name || "unknown";
}

/** Starts the server; resolves once it listens. */
export async function startEmbeddedServer(options: EmbeddedServerOptions): Promise<EmbeddedServer> {
  const { store } = options;
  const bookmarkIntervalMs = options.bookmarkIntervalMs ?? 10_000;
  const address = parseListen(options.listen);
  // kubectl sends a bearer token only over TLS: TCP is HTTPS, a unix socket plain HTTP.
  const token = address.kind === "tcp" ? options.token ?? randomBytes(32).toString("base64url") : undefined;
  const tls = address.kind === "tcp" ? options.tls ?? selfSignedCertificate() : undefined;
  const sockets = new Set<Socket>();
  const watches = new Set<() => void>();
  const networkTypes = options.networkTypes ?? await builtInNetworkTypes();
  // Before anything is changed: a path that is not ours to take stops the start here.
  if (address.kind === "unix") await freeSocketPath(address.path);

  // As a real API server: the system namespaces exist, and every write passes admission.
  store.setAdmission(undefined);
  for (const name of SYSTEM_NAMESPACES) {
    if (!store.getSync("Namespace", name)) store.createSync({ apiVersion: "v1", kind: "Namespace", metadata: { name }, status: { phase: "Active" } });
  }
  const removeAdmission = store.setAdmission(admission({ networkTypes, namespaceOf: (ns) => store.getSync("Namespace", ns) }));
  const namespaces = namespaceLifecycle(store);

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) sendError(res, e);
      else res.destroy();
    });
  };
  const server: Server = tls ? createTlsServer({ cert: tls.cert, key: tls.key }, onRequest) : createServer(onRequest);
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const refusal = guardRequest(req, { token });
    if (refusal) {
      // Unread request bodies would otherwise keep the connection busy.
      req.resume();
      return send(res, refusal.code, status(refusal.code, refusal.reason, refusal.message));
    }
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
    const r = route(pathSegments(req.url ?? "/"));
    if (!r) throw new HttpError(404, "NotFound", `The server could not find the requested resource: ${method} ${path}`);
    const { info, namespace, name, subresource } = r;
    const q = url.searchParams;
    try {
      const dry = parseDryRun(q.getAll("dryRun"));
      const fieldValidation = q.get("fieldValidation") ?? "";
      if (!FIELD_VALIDATION.has(fieldValidation)) {
        throw new HttpError(400, "BadRequest", `Invalid fieldValidation ${JSON.stringify(fieldValidation)}: expected Strict, Warn or Ignore`);
      }
      const manager = fieldManager(q.get("fieldManager"), req.headers["user-agent"]);
      // Writes other than apply record their changed fields under their manager (managedFields, operation Update).
      const runAs = (m: string | undefined) => <T>(fn: () => T): T => {
        const write = m === undefined ? fn : () => store.writeAs(m, fn, subresource);
        return dry ? store.dryRun(write) : write();
      };
      const run = runAs(manager);
      // Strict (kubectl's default, and ours when unsaid) refuses unknown fields; Ignore and Warn drop them.
      const dropUnknown = (o: Resource) => {
        if (fieldValidation !== "Ignore" && fieldValidation !== "Warn") return;
        const dropped = pruneUnknownFields(info, o as unknown as Record<string, unknown>);
        if (fieldValidation === "Warn" && dropped.length > 0) {
          // Header values are printable ASCII: a client's odd field names must not break the answer.
          res.setHeader("Warning", dropped.map((p) => `299 - "unknown field \\"${p.replace(/[^\x20-\x7e]|["\\]/g, "?")}\\""`));
        }
      };
      const table = wantsTable(req.headers.accept);
      const includeObject = table ? parseQuery(() => parseIncludeObject(q.get("includeObject"))) : undefined;
      if (name === undefined) {
        if (method === "GET") {
          const label = parseLabelSelector(q.get("labelSelector"));
          const field = parseFieldSelector(q.get("fieldSelector"));
          if (q.get("watch") === "true" || q.get("watch") === "1") {
            // A watch starts from what is on disk, so it never shows a write that could still be lost.
            await store.durable();
            return watch(req, res, info, namespace, q, table ? includeObject ?? "Metadata" : undefined);
          }
          const limit = parseLimit(q.get("limit"));
          const list = store.listSync(info.kind, { namespace, label, field, limit, continue: q.get("continue") || undefined });
          const listMeta = { resourceVersion: list.resourceVersion, ...(list.continue ? { continue: list.continue } : {}) };
          if (table) return reply(res, 200, toTable(info, list.items, { includeObject, listMeta }));
          return reply(res, 200, { apiVersion: apiVersionOf(info), kind: `${info.kind}List`, metadata: listMeta, items: list.items });
        }
        if (method === "POST") {
          if (info.namespaced && namespace === undefined) {
            throw new HttpError(405, "MethodNotAllowed", `Create ${info.kind} under /namespaces/<namespace>/${info.plural}`);
          }
          const body = await objectBody(req, info, namespace);
          if (!body.metadata.name && !(body.metadata as { generateName?: string }).generateName) {
            throw new InvalidObjectError(info.kind, "", [{ reason: "FieldValueRequired", field: "metadata.name", message: "is required (or metadata.generateName)" }]);
          }
          if (body.metadata.resourceVersion) {
            throw new HttpError(400, "BadRequest", `resourceVersion should not be set on objects to be created, got ${JSON.stringify(body.metadata.resourceVersion)}`);
          }
          dropUnknown(body);
          return reply(res, 201, run(() => store.createSync(body)));
        }
        if (method === "DELETE") {
          // Delete collection: every object the selectors match, each as a DELETE would (finalizers honoured).
          if (info.kind === "Namespace") throw new HttpError(405, "MethodNotAllowed", "Namespaces are deleted one at a time (as on a Kubernetes API server)");
          const options = await deleteOptions(req);
          const dryAll = dry || parseDryRun(options.dryRun ?? []);
          const label = parseLabelSelector(q.get("labelSelector"));
          const field = parseFieldSelector(q.get("fieldSelector"));
          const list = store.listSync(info.kind, { namespace, label, field });
          const deleted = list.items.map((o) => {
            const del = () => store.deleteSync(info.kind, o.metadata.name, o.metadata.namespace);
            return dryAll ? store.dryRun(del) : del();
          });
          return reply(res, 200, { apiVersion: apiVersionOf(info), kind: `${info.kind}List`, metadata: { resourceVersion: store.resourceVersion }, items: deleted });
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
          if (table) return reply(res, 200, toTable(info, [o], { includeObject, listMeta: { resourceVersion: o.metadata.resourceVersion } }));
          return reply(res, 200, o);
        }
        case "PUT": {
          const body = await objectBody(req, info, namespace);
          if (body.metadata.name !== name) {
            throw new HttpError(400, "BadRequest", `The name in the body ("${body.metadata.name}") does not match the name in the URL ("${name}")`);
          }
          if (info.custom && !body.metadata.resourceVersion && store.getSync(info.kind, name, namespace)) {
            // Custom resources do not allow unconditional updates: a PUT must say which version it replaces.
            throw new InvalidObjectError(info.kind, name, [{
              reason: "FieldValueInvalid",
              field: "metadata.resourceVersion",
              message: "must be specified for an update (the version read before changing the object)",
            }]);
          }
          dropUnknown(body);
          return reply(res, 200, run(() => (subresource === "status" ? store.updateStatusSync(body) : store.updateSync(body))));
        }
        case "PATCH":
          // An apply records its own managed fields (server_side_apply.ts), not an update's.
          return patch(req, res, info, name, namespace, subresource, q, run, runAs(undefined), dropUnknown);
        case "DELETE": {
          if (subresource) throw new HttpError(405, "MethodNotAllowed", "DELETE is not supported on /status");
          const options = await deleteOptions(req);
          const del = () =>
            info.kind === "Namespace"
              ? namespaces.delete(name, options.preconditions ?? {})
              : store.deleteSync(info.kind, name, namespace, options.preconditions ?? {});
          return reply(res, 200, dry || parseDryRun(options.dryRun ?? []) ? store.dryRun(del) : del());
        }
        default:
          throw new HttpError(405, "MethodNotAllowed", `${method} is not supported on ${info.plural}/${name}`);
      }
    } catch (e) {
      if (res.headersSent) throw e;
      sendError(res, e, info, name);
    }
  }

  /** Answers once what the request wrote or read is on disk (group commit): nothing unacknowledged is ever shown. */
  async function reply(res: ServerResponse, code: number, body: unknown): Promise<void> {
    await store.durable();
    send(res, code, body);
  }

  function parseQuery<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw new HttpError(400, "BadRequest", (e as Error).message);
    }
  }

  function parseLimit(text: string | null): number | undefined {
    if (text === null || text === "") return undefined;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0) throw new HttpError(400, "BadRequest", `Invalid limit ${JSON.stringify(text)}: expected a non-negative integer`);
    return n || undefined;
  }

  async function deleteOptions(req: IncomingMessage): Promise<{ preconditions?: { resourceVersion?: string; uid?: string }; dryRun?: unknown[] }> {
    const body = await readBody(req);
    if (body === undefined) return {};
    if (body === null || typeof body !== "object" || Array.isArray(body)) {
      throw new HttpError(400, "BadRequest", `The DELETE body must be DeleteOptions (an object), got ${JSON.stringify(body)}`);
    }
    const o = body as { preconditions?: unknown; dryRun?: unknown };
    if (o.dryRun !== undefined && !Array.isArray(o.dryRun)) throw new HttpError(400, "BadRequest", `DeleteOptions.dryRun must be a list such as ["All"], got ${JSON.stringify(o.dryRun)}`);
    if (o.preconditions !== undefined && (typeof o.preconditions !== "object" || o.preconditions === null)) {
      throw new HttpError(400, "BadRequest", `DeleteOptions.preconditions must be an object, got ${JSON.stringify(o.preconditions)}`);
    }
    for (const [field, value] of Object.entries((o.preconditions ?? {}) as Record<string, unknown>)) {
      if (value !== undefined && value !== null && typeof value !== "string") {
        throw new HttpError(400, "BadRequest", `DeleteOptions.preconditions.${field} must be a string, got ${JSON.stringify(value)}`);
      }
    }
    return o as { preconditions?: { resourceVersion?: string; uid?: string }; dryRun?: unknown[] };
  }

  const CUSTOM_PATCH_TYPES = "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";

  async function patch(
    req: IncomingMessage,
    res: ServerResponse,
    info: KindInfo,
    name: string,
    namespace: string | undefined,
    subresource: "status" | undefined,
    q: URLSearchParams,
    run: <T>(fn: () => T) => T,
    runApply: <T>(fn: () => T) => T,
    dropUnknown: (o: Resource) => void,
  ): Promise<void> {
    const type = (req.headers["content-type"] ?? "").split(";")[0].trim();
    if (type === "application/strategic-merge-patch+json" && !supportsStrategicMerge(info.kind)) {
      // What a real API server answers for a custom resource; kubectl then sends a merge patch.
      throw new HttpError(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: ${CUSTOM_PATCH_TYPES}`);
    }
    const known = ["application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json", "application/apply-patch+yaml"];
    if (!known.includes(type)) {
      throw new HttpError(415, "UnsupportedMediaType", `Unsupported patch type "${type}": expected one of ${known.join(", ")}`);
    }
    const body = await readBody(req);
    const cur = store.getSync(info.kind, name, namespace);
    if (type === "application/apply-patch+yaml") {
      if (!q.get("fieldManager")) {
        throw new InvalidObjectError(info.kind, name, [{ reason: "FieldValueRequired", field: "fieldManager", message: "is required for apply patch" }]);
      }
      if (body === null || typeof body !== "object" || Array.isArray(body)) throw new HttpError(400, "BadRequest", `An apply patch must be an object, got ${JSON.stringify(body)}`);
      const applied = body as Resource;
      checkBodyShape(info.kind, applied as unknown as Record<string, unknown>);
      checkIdentity(info, name, namespace, applied, "apply");
      dropUnknown(applied);
      const force = q.get("force") ?? "false";
      if (force !== "true" && force !== "false") throw new HttpError(400, "BadRequest", `Invalid force ${JSON.stringify(force)}: expected true or false`);
      const config = structuredClone(applied);
      config.apiVersion ??= apiVersionOf(info);
      config.kind ??= info.kind;
      config.metadata = { ...(config.metadata ?? {}), name };
      if (info.namespaced) config.metadata.namespace = namespace;
      const options = { manager: q.get("fieldManager")!, force: force === "true", now: new Date(), subresource };
      if (!cur) {
        if (subresource) throw new StoreError("NotFound", `${info.plural} "${name}" not found`);
        return reply(res, 201, runApply(() => store.createSync(serverSideApply(undefined, config, options))));
      }
      return reply(res, 200, runApply(() => store.applySync(cur, serverSideApply(cur, config, options), subresource)));
    }
    if (!cur) throw new StoreError("NotFound", `${info.plural}${info.group ? "." + info.group : ""} "${name}" not found`);
    let patched: Resource;
    if (type === "application/json-patch+json") {
      if (!Array.isArray(body)) throw new HttpError(400, "BadRequest", `A JSON patch must be a list of operations, got ${JSON.stringify(body)}`);
      patched = applyJsonPatch(cur, body) as Resource;
    } else {
      if (body === null || typeof body !== "object" || Array.isArray(body)) {
        throw new HttpError(400, "BadRequest", `A merge patch must be a JSON object, got ${JSON.stringify(body)}`);
      }
      patched = (type === "application/merge-patch+json" ? mergePatch(cur, body) : strategicMergePatch(info.kind, cur, body)) as Resource;
    }
    if (patched === null || typeof patched !== "object" || Array.isArray(patched)) {
      throw new HttpError(400, "BadRequest", `The patched ${info.kind} is not an object`);
    }
    checkBodyShape(info.kind, patched as unknown as Record<string, unknown>);
    checkIdentity(info, name, namespace, patched, "patch");
    dropUnknown(patched);
    return reply(res, 200, run(() => store.applySync(cur, patched, subresource)));
  }

  /** A patch may not rename or move an object: as the API server, 400. */
  function checkIdentity(info: KindInfo, name: string, namespace: string | undefined, o: Resource, verb: string): void {
    const meta = (o.metadata ?? {}) as Resource["metadata"];
    if (meta.name !== undefined && meta.name !== name) {
      throw new HttpError(400, "BadRequest", `The ${verb} changes metadata.name to ${JSON.stringify(meta.name)}: the name of the object must stay ${JSON.stringify(name)}, the name in the URL`);
    }
    if (info.namespaced && meta.namespace !== undefined && meta.namespace !== namespace) {
      throw new HttpError(400, "BadRequest", `The ${verb} changes metadata.namespace to ${JSON.stringify(meta.namespace)}: the namespace must stay ${JSON.stringify(namespace)}, the namespace in the URL`);
    }
    if (o.kind !== undefined && o.kind !== info.kind) {
      throw new HttpError(400, "BadRequest", `The ${verb} changes kind to ${JSON.stringify(o.kind)}: expected ${info.kind}`);
    }
  }

  async function objectBody(req: IncomingMessage, info: KindInfo, namespace: string | undefined): Promise<Resource> {
    const body = await readBody(req);
    if (body === null || typeof body !== "object" || Array.isArray(body)) {
      throw new HttpError(400, "BadRequest", `The body must be a ${info.kind} object, got ${body === undefined ? "nothing" : JSON.stringify(body).slice(0, 60)}`);
    }
    const o = body as Resource;
    o.apiVersion ??= apiVersionOf(info);
    o.kind ??= info.kind;
    if (o.kind !== info.kind || o.apiVersion !== apiVersionOf(info)) {
      throw new HttpError(400, "BadRequest", `The body is a ${o.apiVersion}/${o.kind}, expected ${apiVersionOf(info)}/${info.kind} at this path`);
    }
    checkBodyShape(info.kind, o as unknown as Record<string, unknown>);
    o.metadata ??= { name: "" };
    if (info.namespaced) {
      if (o.metadata.namespace !== undefined && o.metadata.namespace !== namespace) {
        throw new HttpError(400, "BadRequest", `The namespace of the object ("${o.metadata.namespace}") does not match the namespace in the URL ("${namespace}")`);
      }
      o.metadata.namespace = namespace;
    } else {
      // As the API server: a cluster-scoped object has no namespace, whatever the body says.
      delete o.metadata.namespace;
    }
    return o;
  }

  function watch(
    req: IncomingMessage,
    res: ServerResponse,
    info: KindInfo,
    namespace: string | undefined,
    q: URLSearchParams,
    table: "None" | "Metadata" | "Object" | undefined,
  ): void {
    const label = parseLabelSelector(q.get("labelSelector"));
    const field = parseFieldSelector(q.get("fieldSelector"));
    const rv = q.get("resourceVersion") ?? "";
    res.writeHead(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked", "Cache-Control": "no-cache" });
    res.flushHeaders();
    const write = (e: WatchEvent<unknown> | { type: "ERROR"; object: unknown }) => {
      if (res.writableEnded) return;
      // kubectl get --watch asks for Tables: each event carries a one-row Table.
      const out = table && (e.type === "ADDED" || e.type === "MODIFIED" || e.type === "DELETED")
        ? { type: e.type, object: toTable(info, [e.object as Resource], { includeObject: table }) }
        : e;
      res.write(JSON.stringify(out) + "\n");
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
        write({ type: "BOOKMARK", object: { apiVersion: apiVersionOf(info), kind: info.kind, metadata: { resourceVersion: store.durableResourceVersion } } });
      }, bookmarkIntervalMs);
    }
    const seconds = Number(q.get("timeoutSeconds") ?? "");
    if (seconds > 0) timeout = setTimeout(end, seconds * 1000);
  }

  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      if (address.kind === "unix") {
        // Created owner-only from the start: a chmod after listen would leave a window.
        const umask = process.umask(0o177);
        try {
          server.listen(address.path, resolve);
        } finally {
          process.umask(umask);
        }
      } else server.listen(address.port, address.host, resolve);
    });
  } catch (e) {
    removeAdmission();
    namespaces.close();
    throw e;
  }
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
    url = `https://${host}:${port}`;
    listen = `${host}:${port}`;
  }
  return {
    url,
    socketPath: address.kind === "unix" ? address.path : undefined,
    listen,
    token,
    certificate: tls?.cert,
    closeWatches: () => {
      for (const end of [...watches]) end();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const end of [...watches]) end();
        removeAdmission();
        namespaces.close();
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
