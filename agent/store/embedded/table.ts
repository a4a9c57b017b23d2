/**
 * `meta.k8s.io/v1` Table responses, what `kubectl get` asks for with
 * `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`: a Name column,
 * the kind's printer columns (the CRDs' `additionalPrinterColumns`, from
 * `core/resources/schema.ts`) and Age, one row per object.
 *
 * @example
 * toTable(kindInfo("Network"), networks, { includeObject: "Metadata" });
 * // { kind: "Table", columnDefinitions: [{ name: "Name" ... }, { name: "Type" ... }, ...], rows: [...] }
 */
import type { Resource } from "../../../core/mod.ts";
import { SCHEMAS } from "../../../core/resources/schema.ts";
import type { Kind } from "../../../core/resources/types.ts";
import type { KindInfo } from "../kinds.ts";

interface Column {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
  jsonPath?: string;
}

/** The columns the built-in kinds show beside Name and Age. */
const CORE_COLUMNS: Record<string, { name: string; type: string; jsonPath: string }[]> = {
  Namespace: [{ name: "Status", type: "string", jsonPath: ".status.phase" }],
  Pod: [
    { name: "Status", type: "string", jsonPath: ".status.phase" },
    { name: "Node", type: "string", jsonPath: ".spec.nodeName" },
  ],
  Service: [{ name: "Type", type: "string", jsonPath: ".spec.type" }],
  // As kubectl shows them from a real API server (there Ports and Endpoints are cut short).
  EndpointSlice: [
    { name: "AddressType", type: "string", jsonPath: ".addressType" },
    { name: "Ports", type: "string", jsonPath: ".ports[*].port" },
    { name: "Endpoints", type: "string", jsonPath: ".endpoints[*].addresses[0]" },
  ],
};

/** Whether an Accept header asks for a Table (kubectl get); plain JSON otherwise. */
export function wantsTable(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept.split(",").some((part) => {
    const params = part.split(";").map((p) => p.trim());
    return params.includes("as=Table") && params.includes("g=meta.k8s.io") && (params.includes("v=v1") || params.includes("v=v1beta1"));
  });
}

function columnsOf(info: KindInfo): Column[] {
  const custom = info.custom ? SCHEMAS[info.kind as Kind]?.printerColumns ?? [] : CORE_COLUMNS[info.kind] ?? [];
  return [
    { name: "Name", type: "string", format: "name", description: "The object's name", priority: 0 },
    ...custom.map((c) => ({ name: c.name, type: c.type, format: "", description: c.jsonPath, priority: 0, jsonPath: c.jsonPath })),
    { name: "Age", type: "string", format: "", description: "Time since the object was created", priority: 0 },
  ];
}

/**
 * Evaluates the JSONPath subset printer columns use: `.a.b`, `[n]`, `[*]`
 * and `[?(@.field=="value")]`. Returns every value found.
 */
export function jsonPath(obj: unknown, path: string): unknown[] {
  const steps = path.match(/\.[A-Za-z0-9_$-]+|\[[^\]]*\]/g) ?? [];
  let cur: unknown[] = [obj];
  for (const step of steps) {
    const next: unknown[] = [];
    for (const v of cur) {
      if (v === null || typeof v !== "object") continue;
      if (step.startsWith(".")) {
        const x = (v as Record<string, unknown>)[step.slice(1)];
        if (x !== undefined) next.push(x);
        continue;
      }
      if (!Array.isArray(v)) continue;
      const inner = step.slice(1, -1);
      const filter = /^\?\(@\.([A-Za-z0-9_$-]+)\s*==\s*["']([^"']*)["']\)$/.exec(inner);
      if (inner === "*") next.push(...v);
      else if (filter) next.push(...v.filter((e) => e && typeof e === "object" && String((e as Record<string, unknown>)[filter[1]]) === filter[2]));
      else if (/^-?\d+$/.test(inner)) {
        const i = Number(inner);
        const x = v[i < 0 ? v.length + i : i];
        if (x !== undefined) next.push(x);
      }
    }
    cur = next;
  }
  return cur;
}

function cell(values: unknown[], type: string): unknown {
  if (values.length === 0) return null;
  const flat = values.length === 1 && Array.isArray(values[0]) ? values[0] as unknown[] : values;
  if (flat.length === 1 && (type === "integer" || type === "number" || type === "boolean") && typeof flat[0] !== "object") return flat[0];
  return flat.map((v) => (typeof v === "object" ? JSON.stringify(v) : String(v))).join(",");
}

/** How long ago, as kubectl prints ages: `45s`, `3m12s`, `5h`, `12d`. */
export function humanAge(since: string | undefined, now = Date.now()): string {
  const t = since ? Date.parse(since) : NaN;
  if (Number.isNaN(t)) return "<unknown>";
  const s = Math.max(0, Math.floor((now - t) / 1000));
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  const d = Math.floor(h / 24);
  if (s < 120) return `${s}s`;
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  if (h < 192) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (d < 730) return `${d}d`;
  const y = Math.floor(d / 365);
  return d % 365 === 0 || y >= 8 ? `${y}y` : `${y}y${d % 365}d`;
}

export type IncludeObject = "None" | "Metadata" | "Object";

/** A Table of `items`; `includeObject` says what each row carries (kubectl's default: Metadata). */
export function toTable(
  info: KindInfo,
  items: Resource[],
  options: { includeObject?: IncludeObject; listMeta?: Record<string, unknown> } = {},
): Record<string, unknown> {
  const columns = columnsOf(info);
  const include = options.includeObject ?? "Metadata";
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: options.listMeta ?? {},
    columnDefinitions: columns.map(({ jsonPath: _, ...c }) => c),
    rows: items.map((o) => ({
      cells: columns.map((c) =>
        c.name === "Name" && c.format === "name"
          ? o.metadata.name
          : c.jsonPath
          ? cell(jsonPath(o, c.jsonPath), c.type)
          : humanAge(o.metadata.creationTimestamp)
      ),
      object: include === "Object"
        ? o
        : include === "Metadata"
        ? { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata }
        : undefined,
    })),
  };
}

/** Checks the `includeObject` query parameter. */
export function parseIncludeObject(value: string | null): IncludeObject | undefined {
  if (value === null || value === "") return undefined;
  if (value === "None" || value === "Metadata" || value === "Object") return value;
  throw new Error(`Invalid includeObject "${value}": expected None, Metadata or Object`);
}
