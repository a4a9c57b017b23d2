/**
 * RFC 6902 JSON Patch, for `PATCH` with `application/json-patch+json`
 * (what client-node's generated APIs send by default). Small enough that a
 * dependency would not pay for itself.
 *
 * @example
 * applyJsonPatch({ a: [1] }, [{ op: "add", path: "/a/-", value: 2 }]); // { a: [1, 2] }
 */
import { StoreError } from "../../../core/mod.ts";

export interface JsonPatchOperation {
  op: "add" | "remove" | "replace" | "move" | "copy" | "test";
  path: string;
  from?: string;
  value?: unknown;
}

type Container = Record<string, unknown> | unknown[];

function pointer(path: string): string[] {
  if (path === "") return [];
  if (!path.startsWith("/")) throw new StoreError("Invalid", `Invalid JSON pointer "${path}": expected it to start with "/"`);
  return path.slice(1).split("/").map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function parentOf(doc: unknown, parts: string[], path: string): [Container, string] {
  let cur: unknown = doc;
  for (const p of parts.slice(0, -1)) {
    if (cur === null || typeof cur !== "object") throw new StoreError("Invalid", `JSON patch path "${path}" does not exist`);
    cur = Array.isArray(cur) ? cur[Number(p)] : (cur as Record<string, unknown>)[p];
  }
  if (cur === null || typeof cur !== "object") throw new StoreError("Invalid", `JSON patch path "${path}" does not exist`);
  return [cur as Container, parts[parts.length - 1]];
}

function index(arr: unknown[], key: string, path: string, allowEnd: boolean): number {
  if (key === "-" && allowEnd) return arr.length;
  const i = Number(key);
  if (!/^\d+$/.test(key) || i > arr.length || (!allowEnd && i === arr.length)) {
    throw new StoreError("Invalid", `JSON patch path "${path}": index ${key} is out of range`);
  }
  return i;
}

function get(doc: unknown, path: string): unknown {
  let cur: unknown = doc;
  for (const p of pointer(path)) {
    if (cur === null || typeof cur !== "object") throw new StoreError("Invalid", `JSON patch path "${path}" does not exist`);
    cur = Array.isArray(cur) ? cur[Number(p)] : (cur as Record<string, unknown>)[p];
    if (cur === undefined) throw new StoreError("Invalid", `JSON patch path "${path}" does not exist`);
  }
  return cur;
}

function add(doc: unknown, path: string, value: unknown): unknown {
  const parts = pointer(path);
  if (parts.length === 0) return value;
  const [parent, key] = parentOf(doc, parts, path);
  if (Array.isArray(parent)) parent.splice(index(parent, key, path, true), 0, value);
  else parent[key] = value;
  return doc;
}

function remove(doc: unknown, path: string): unknown {
  const parts = pointer(path);
  const [parent, key] = parentOf(doc, parts, path);
  if (Array.isArray(parent)) parent.splice(index(parent, key, path, false), 1);
  else {
    if (!(key in parent)) throw new StoreError("Invalid", `JSON patch path "${path}" does not exist`);
    delete parent[key];
  }
  return doc;
}

const OPS = ["add", "remove", "replace", "move", "copy", "test"];

/** Checks one operation's shape before it runs: a client's patch never reaches the code below malformed. */
function checkOperation(op: unknown, i: number): asserts op is JsonPatchOperation {
  const at = `JSON patch operation ${i}`;
  if (op === null || typeof op !== "object" || Array.isArray(op)) {
    throw new StoreError("Invalid", `${at}: expected an object such as {"op": "add", "path": "/a", "value": 1}, got ${JSON.stringify(op)}`);
  }
  const o = op as Record<string, unknown>;
  if (typeof o.op !== "string" || !OPS.includes(o.op)) {
    throw new StoreError("Invalid", `${at}: op must be one of ${OPS.join(", ")}, got ${JSON.stringify(o.op) ?? "nothing"}`);
  }
  if (typeof o.path !== "string") throw new StoreError("Invalid", `${at} (${o.op}): path must be a JSON pointer string, got ${JSON.stringify(o.path) ?? "nothing"}`);
  if ((o.op === "move" || o.op === "copy") && typeof o.from !== "string") {
    throw new StoreError("Invalid", `${at} (${o.op}): from must be a JSON pointer string, got ${JSON.stringify(o.from) ?? "nothing"}`);
  }
  if ((o.op === "add" || o.op === "replace" || o.op === "test") && !("value" in o)) {
    throw new StoreError("Invalid", `${at} (${o.op}): value is required`);
  }
}

/** Applies `ops` to a copy of `doc`; a malformed or failing operation is an `Invalid` StoreError naming it. */
export function applyJsonPatch(doc: unknown, ops: unknown[]): unknown {
  ops.forEach(checkOperation);
  let out = structuredClone(doc);
  for (const op of ops as JsonPatchOperation[]) {
    switch (op.op) {
      case "add":
        out = add(out, op.path, structuredClone(op.value));
        break;
      case "remove":
        out = remove(out, op.path);
        break;
      case "replace":
        if (op.path === "") {
          out = structuredClone(op.value);
          break;
        }
        get(out, op.path);
        out = add(remove(out, op.path), op.path, structuredClone(op.value));
        break;
      case "move": {
        const v = get(out, op.from ?? "");
        out = add(remove(out, op.from ?? ""), op.path, v);
        break;
      }
      case "copy":
        out = add(out, op.path, structuredClone(get(out, op.from ?? "")));
        break;
      case "test":
        if (JSON.stringify(get(out, op.path)) !== JSON.stringify(op.value)) {
          throw new StoreError("Invalid", `JSON patch test failed at "${op.path}"`);
        }
        break;
      default:
        throw new StoreError("Invalid", `Unknown JSON patch operation "${(op as { op: string }).op}": expected add, remove, replace, move, copy or test`);
    }
  }
  return out;
}
