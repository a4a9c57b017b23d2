/**
 * The pod source pairs (port, address) of the bridge table's sets `allow4`
 * and `allow6` (nft.ts), kept in step with the desired state element by
 * element over netlink. They are not part of the ruleset text, so a pod
 * coming or going never reloads the ruleset: its ADD writes its pairs
 * (pods.ts), and an apply adds what is missing and removes what no pod
 * holds any more, in one nf_tables transaction each.
 *
 * A pair of a port that exists but that the state does not list is kept:
 * that pod was attached after the state was taken, and the next state
 * lists it.
 *
 * @example
 * const have = await readPodSources(nf);
 * loadRuleset(...);                                  // a reload empties the sets
 * await syncPodSources(nf, plan.allowed, ports, []); // so everything is written back
 */
import type { NetlinkClient } from "./netlink.ts";
import { deleteSetElements, NFPROTO, podSourceKey, podSourceOf, readSetElements, type SetElements, writeSetElements } from "./nfsets.ts";
import { canonicalIp } from "./wire.ts";

/** One allowed source: a pod's port and one of its addresses. */
export interface PodSource {
  ifname: string;
  address: string;
  family: 4 | 6;
}

const SETS = [["allow4", 4], ["allow6", 6]] as const;
const key = (p: { ifname: string; address: string }) => `${p.ifname}|${canonicalIp(p.address)}`;

/** The pairs in the sets now; none when our table is not loaded. */
export async function readPodSources(nf: NetlinkClient): Promise<PodSource[]> {
  const out: PodSource[] = [];
  for (const [set, family] of SETS) {
    for (const k of await readSetElements(nf, NFPROTO.BRIDGE, "lace", set)) out.push({ ...podSourceOf(k, family), family });
  }
  return out;
}

/**
 * Writes the difference between `have` (read back, or [] right after a
 * reload) and what the sets should hold: the `wanted` pairs, plus the pairs
 * of existing `ports` that `wanted` does not mention (`have` holds them, or
 * `kept` when a reload emptied the sets). Returns the elements written.
 */
export async function syncPodSources(
  nf: NetlinkClient, wanted: readonly PodSource[], ports: ReadonlySet<string>, have: readonly PodSource[], kept: readonly PodSource[] = have,
): Promise<number> {
  const listedPorts = new Set(wanted.map((w) => w.ifname));
  const target = new Map<string, PodSource>();
  for (const w of wanted) target.set(key(w), w);
  for (const k of kept) if (ports.has(k.ifname) && !listedPorts.has(k.ifname)) target.set(key(k), k);
  const present = new Map(have.map((h) => [key(h), h]));
  const add = [...target].filter(([k]) => !present.has(k)).map(([, v]) => v);
  const remove = [...present].filter(([k]) => !target.has(k)).map(([, v]) => v);
  if (add.length) await writeSetElements(nf, podSourceElements(add, "pod sources"));
  if (remove.length) await deleteSetElements(nf, podSourceElements(remove, "pod sources no pod holds"));
  return add.length + remove.length;
}

/** Pairs as the elements of `allow4` and `allow6`, for one transaction. */
export function podSourceElements(list: readonly PodSource[], what: string): SetElements[] {
  return SETS.map(([set, family]) => ({
    family: NFPROTO.BRIDGE, table: "lace", set, what,
    keys: list.filter((p) => p.family === family).map((p) => podSourceKey(p.ifname, p.address)),
  }));
}
