/**
 * Maps of groups (`network → node → value`, `node → set of networks`) whose
 * empty groups disappear, so a map's keys are exactly the groups in use.
 *
 * @example
 * const m = new Map<string, Set<string>>();
 * mapSetAdd(m, "node-1", "red");
 * mapSetDelete(m, "node-1", "red"); // m.size === 0
 */

export function mapAdd<V>(m: Map<string, Map<string, V>>, group: string, key: string, v: V): void {
  let g = m.get(group);
  if (!g) m.set(group, g = new Map());
  g.set(key, v);
}

export function mapDelete<V>(m: Map<string, Map<string, V>>, group: string, key: string): void {
  const g = m.get(group);
  if (!g) return;
  g.delete(key);
  if (g.size === 0) m.delete(group);
}

export function mapSetAdd(m: Map<string, Set<string>>, group: string, v: string): void {
  let g = m.get(group);
  if (!g) m.set(group, g = new Set());
  g.add(v);
}

export function mapSetDelete(m: Map<string, Set<string>>, group: string, v: string): void {
  const g = m.get(group);
  if (!g) return;
  g.delete(v);
  if (g.size === 0) m.delete(group);
}
