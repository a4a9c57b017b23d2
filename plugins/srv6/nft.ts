/**
 * The nftables part of the srv6 dataplane. There is no nftables netlink
 * library among our dependencies (nf_tables speaks its own netlink family
 * with a large expression language), so the ruleset is written as nft
 * text and loaded with `nft -f -` — the one place the dataplane runs a
 * program, and only when the ruleset changes. The whole ruleset is
 * replaced in one nft transaction (atomic: no packet sees a half-loaded
 * ruleset), and only when its content hash, kept in the table comment,
 * differs from the loaded one (read over netlink, nfsets.ts: an unchanged
 * apply runs no process). Pod attach writes set elements over netlink.
 *
 * What it holds:
 * - `inet lace` prerouting: packets to any locator that did not arrive
 *   from the underlay are dropped (SID spoofing); packets from the
 *   underlay get the mark of their SID's network (SID → mark → table);
 * - `inet lace` prerouting: pods reach node-local addresses only at their
 *   own gateways;
 * - `inet lace` prerouting: new connections on reply-only paths are dropped
 *   (conntrack sees decapsulated packets because nf_hooks_lwtunnel is on);
 * - `inet lace` prerouting: the return mark (plan.ts `returnMark`) on
 *   every packet of a pod (the node's answers and ICMP errors reflect it)
 *   and on the connections a pod opens to an external network (restored on their
 *   replies from the underlay), so answers route back through the
 *   network's table;
 * - `inet lace` postrouting (nat): source NAT of egress to external
 *   networks, to the node's underlay address (masquerade for the family it
 *   does not cover);
 * - `bridge lace` prerouting: source-address validation on pod ports. Every
 *   pod port is in lace-cni's interface group (kernel.ts `POD_LINK_GROUP`),
 *   and may send only from the addresses its endpoint in the desired state
 *   has: a pod the desired state does not list yet cannot send at all (fail
 *   closed). `attachPod` adds a new pod's pairs to the sets over netfilter
 *   netlink (nfsets.ts), so the pod sends at once, before the next apply.
 *
 * @example
 * const text = renderRuleset(plan);
 * await loadRuleset(netns, text);
 */
import { spawnSync } from "node:child_process";
import { Prefix } from "../../core/plugin/mod.ts";
import { createHash } from "node:crypto";
import { inNetns } from "./netns.ts";
import { type Plan, RETURN_MARK_BASE } from "./plan.ts";
import { POD_LINK_GROUP } from "./kernel.ts";
import type { NetlinkClient } from "./netlink.ts";
import { listTables, NFPROTO } from "./nfsets.ts";

const q = (s: string) => JSON.stringify(s);
const hex = (n: number) => `0x${n.toString(16).padStart(8, "0")}`;

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const sorted = <T>(items: Iterable<T>, key: (x: T) => string): T[] => [...items].sort((a, b) => byText(key(a), key(b)));

/**
 * The ruleset for a plan, without the hash comment. A function of the
 * desired state alone, in a canonical order (sets and rules sorted within
 * their group), so any process renders the same text and hash for the same
 * state: a fresh process finds the loaded ruleset current and reloads
 * nothing. Nothing read from the kernel (such as which pod ports exist)
 * goes in: pod ports are matched by their interface group.
 */
export function renderRuleset(plan: Plan): string {
  const lines: string[] = [];
  const sidMarks = sorted(plan.sidMarks, ([sid]) => sid).map(([sid, mark]) => `${sid} : 0x${mark.toString(16)}`);
  const locators = [...new Set(plan.locators)].sort(byText);
  lines.push("table inet lace {");
  lines.push("  map sid2mark {", "    type ipv6_addr : mark");
  if (sidMarks.length) lines.push(`    elements = { ${sidMarks.join(", ")} }`);
  lines.push("  }");
  lines.push("  set locators {", "    type ipv6_addr", "    flags interval");
  if (locators.length) lines.push(`    elements = { ${locators.join(", ")} }`);
  lines.push("  }");
  lines.push("  chain prerouting {", "    type filter hook prerouting priority -150; policy accept;");
  lines.push(`    iifname != ${q(plan.underlay)} ip6 daddr @locators drop`);
  lines.push(`    iifname ${q(plan.underlay)} meta mark set ip6 daddr map @sid2mark`);
  // Pods reach the node itself only at their gateways (and link-local, for neighbour discovery):
  // without this, every node-local address would be reachable from every network.
  for (const [bridge, allowed] of sorted(plan.localAllowed, ([b]) => b)) {
    const v4 = allowed.filter((a) => !a.includes(":")).sort(byText);
    const v6 = [...allowed.filter((a) => a.includes(":")).sort(byText), "fe80::/10"];
    lines.push(`    iifname ${q(bridge)} fib daddr type local${v4.length ? ` ip daddr != { ${v4.join(", ")} }` : " meta nfproto ipv4"} drop`);
    lines.push(`    iifname ${q(bridge)} fib daddr type local ip6 daddr != { ${v6.join(", ")} } drop`);
  }
  // Everything a pod sends carries its network's return mark, and fwmark_reflect copies it onto what the
  // node answers: echo replies and TCP from the gateway, and ICMP errors (unreachable, fragmentation
  // needed) for forwarded packets. They route back through the pod's table (mark rule), never by the
  // node's own rule for local blocks (plan.ts RULE_PRIORITY_NODE), which picks one of two overlapping
  // networks. Forwarding ignores the mark (the iif rule comes first). Not link-local or multicast: the
  // answers to those (fe80::1) leave by the bridge's fe80::/64 route in the main table.
  for (const [bridge, mark] of sorted(plan.returnMarks, ([b]) => b)) {
    lines.push(`    iifname ${q(bridge)} meta nfproto ipv4 meta mark set ${hex(mark)}`);
    lines.push(`    iifname ${q(bridge)} ip6 daddr != { fe80::/10, ff00::/8 } meta mark set ${hex(mark)}`);
  }
  // Egress: the connection remembers its network, so replies (possibly de-NATed to an address another
  // network also uses) route back into the right table.
  const egress = sorted(plan.egress, (e) => `${e.bridge}|${e.family}|${e.destination}|${e.snat}`);
  for (const e of egress) {
    const mark = plan.returnMarks.get(e.bridge)!;
    lines.push(`    iifname ${q(e.bridge)} ${e.family === 4 ? "ip" : "ip6"} daddr ${e.destination} ct state new ct mark set ${hex(mark)}`);
  }
  if (egress.length) {
    lines.push(`    iifname ${q(plan.underlay)} ct direction reply ct mark and 0xff000000 == ${hex(RETURN_MARK_BASE)} meta mark set ct mark`);
  }
  // Reply-only paths. In prerouting (after conntrack at -200), not forward: a packet routed into
  // a seg6 encap route is encapsulated on input and never reaches the forward hook.
  // The bridge's own gateways are never closed this way: a destination inside the network's own subnet
  // (an anonymous network) or an overlapping one's may cover them.
  for (const r of sorted(plan.replyOnly, (x) => `${x.bridge}|${x.family}|${x.destination}`)) {
    const fam = r.family === 4 ? "ip" : "ip6";
    const gws = (plan.localAllowed.get(r.bridge) ?? []).filter((a) => a.includes(":") === (r.family === 6)).sort(byText);
    lines.push(`    iifname ${q(r.bridge)} ${fam} daddr ${r.destination}${gws.length ? ` ${fam} daddr != { ${gws.join(", ")} }` : ""} ct state new drop`);
  }
  lines.push("  }");
  const snat = egress.filter((e) => e.snat);
  if (snat.length) {
    // Matched by ct mark: the input device is unknown in postrouting.
    lines.push("  chain postrouting {", "    type nat hook postrouting priority srcnat; policy accept;");
    for (const e of snat) {
      const fam = e.family === 4 ? "ip" : "ip6";
      const to = plan.snatAddress && plan.snatAddress.includes(":") === (e.family === 6) ? `snat ${fam} to ${plan.snatAddress}` : "masquerade";
      lines.push(`    oifname ${q(plan.underlay)} ct mark ${hex(plan.returnMarks.get(e.bridge)!)} ${fam} daddr ${e.destination} ${to}`);
    }
    lines.push("  }");
  }
  lines.push("}");

  // The pairs themselves are elements written over netlink (pod_sources.ts), not part of this text:
  // a pod coming or going never reloads the ruleset.
  lines.push("table bridge lace {");
  lines.push("  set allow4 {", "    type ifname . ipv4_addr", "  }");
  lines.push("  set allow6 {", "    type ifname . ipv6_addr", "  }");
  // Pods may only send from the addresses they were given (and IPv6 link-local / DAD sources for ND).
  // Every pod port is in lace-cni's interface group (set when attachPod creates it, in the same
  // message): a port the desired state does not list yet cannot send at all (fail closed), and no
  // per-pod element is needed to know that a port is a pod's (this kernel lacks `meta ibrname`).
  lines.push("  chain prerouting {", "    type filter hook prerouting priority -200; policy accept;");
  lines.push(`    meta iifgroup ${POD_LINK_GROUP} ether type ip iifname . ip saddr != @allow4 drop`);
  lines.push(`    meta iifgroup ${POD_LINK_GROUP} ether type ip6 ip6 saddr != { ::, fe80::/10 } iifname . ip6 saddr != @allow6 drop`);
  lines.push("  }");
  lines.push("}");
  return lines.join("\n") + "\n";
}

export function rulesetHash(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

function nft(netns: string | undefined, args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  const r = inNetns(netns, () => spawnSync("nft", args, { input, encoding: "utf8" }));
  if (r.error) throw new Error(`Cannot run nft: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message} (install the nftables package)`);
  return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The content hash of the loaded ruleset (the tag loadRuleset puts in the
 * inet table's comment), or undefined when ours is not loaded; read over
 * netfilter netlink, so an apply that changes nothing runs no process.
 */
export async function loadedRulesetHashOver(nf: NetlinkClient): Promise<string | undefined> {
  const tables = await listTables(nf);
  const inet = tables.find((x) => x.family === NFPROTO.INET && x.name === "lace");
  const m = inet && /lace-cni ([0-9a-f]+)/.exec(inet.userdata);
  if (!m) return undefined;
  return tables.some((x) => x.family === NFPROTO.BRIDGE && x.name === "lace") ? m[1] : undefined;
}

/**
 * The loaded rules that drop new connections from a network's bridge
 * (reply-only paths, denied destinations), read back with `nft list`;
 * empty when our table is not loaded.
 *
 * @example
 * newConnectionDrops("/run/netns/node-1"); // [{ bridge: "lb3", destination: Prefix 10.50.0.0/16, text: "iifname \"lb3\" ip daddr 10.50.0.0/16 ct state new drop" }]
 */
export function newConnectionDrops(netns: string | undefined): { bridge: string; destination: Prefix; text: string }[] {
  const r = nft(netns, ["list", "chain", "inet", "lace", "prerouting"]);
  if (r.status !== 0) return [];
  const out: { bridge: string; destination: Prefix; text: string }[] = [];
  for (const line of r.stdout.split("\n")) {
    const m = /iifname "([^"]+)" ip6? daddr (\S+) .*ct state new drop/.exec(line);
    if (!m) continue;
    const p = Prefix.tryParse(m[2].includes("/") ? m[2] : `${m[2]}/${m[2].includes(":") ? 128 : 32}`);
    if (p.ok) out.push({ bridge: m[1], destination: p.value, text: line.trim() });
  }
  return out;
}

/** Replaces our tables with `text` in one transaction, tagging them with its hash. */
export function loadRuleset(netns: string | undefined, text: string, label: string): void {
  const hash = rulesetHash(text);
  const tagged = text.replace("table inet lace {\n", `table inet lace {\n  comment "lace-cni ${hash}"\n`);
  // Declaring then deleting makes the load work whether or not the tables exist yet.
  const script = `table inet lace\ndelete table inet lace\ntable bridge lace\ndelete table bridge lace\n${tagged}`;
  const r = nft(netns, ["-f", "-"], script);
  if (r.status !== 0) throw new Error(`Cannot load the nftables ruleset in netns ${label}: ${r.stderr.trim()}`);
}

/** Removes our tables (close of a node, tests). Missing tables are fine. */
export function removeRuleset(netns: string | undefined): void {
  nft(netns, ["-f", "-"], "table inet lace\ndelete table inet lace\ntable bridge lace\ndelete table bridge lace\n");
}

