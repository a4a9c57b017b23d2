/**
 * A validation problem: which object, which field, what was expected
 * versus found.
 *
 * @example
 * formatProblem({ object: "Network/backend", path: "spec.ipv4Subnet.prefix", message: "host bits set" });
 * // "Network/backend: spec.ipv4Subnet.prefix: host bits set"
 */
export interface Problem {
  /** `Kind/name` (`Kind/namespace/name` for namespaced kinds), or `file:line` for a document that is not an object. */
  object: string;
  /** Field path with dots and `[i]` for list items: `spec.externalPrefixes[1]`. Empty: the object as a whole. */
  path: string;
  /** What was expected versus found; starts lowercase, no final period. */
  message: string;
}

/** `<Kind>/<name>: <field.path>: <message>`, or `<object>: <message>` when there is no path. */
export function formatProblem(p: Problem): string {
  return p.path ? `${p.object}: ${p.path}: ${p.message}` : `${p.object}: ${p.message}`;
}

/**
 * Joins a field path and a child: `spec` + `a` → `spec.a`, `spec.a` + 1 →
 * `spec.a[1]`, `metadata.labels` + `app.kubernetes.io/name` →
 * `metadata.labels["app.kubernetes.io/name"]`.
 */
export function joinPath(base: string, child: string | number): string {
  if (typeof child === "number") return `${base}[${child}]`;
  if (!/^[A-Za-z_$][\w$-]*$/.test(child)) return `${base}[${JSON.stringify(child)}]`;
  return base ? `${base}.${child}` : child;
}

/** True when `path` is `ancestor` or lies beneath it. */
export function isWithin(path: string, ancestor: string): boolean {
  if (ancestor === "") return true;
  return path === ancestor || path.startsWith(`${ancestor}.`) || path.startsWith(`${ancestor}[`);
}
