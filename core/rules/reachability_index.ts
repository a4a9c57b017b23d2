/**
 * The reachability table (`core/rules/routing.ts`) kept up to date one
 * routing policy or network at a time, for the controller.
 *
 * `RoutingRules` compiles every policy and decides every candidate pair
 * each time; at 10,000 policies a single policy change cost the controller
 * most of a second. Here each policy is compiled on its own when it
 * changes, and an update re-decides only the (source, destination) pairs
 * that can have moved:
 * - a policy change: the pairs its old version decided and the pairs its
 *   new version is a candidate for (its sources × its destinations);
 * - a network change: the pairs with the network as source, and those with
 *   one of its prefixes as destination;
 * - a destination that appears or goes (a network's prefix, a narrower
 *   prefix a policy names): its pairs.
 * Each pair is decided as `RoutingRules` decides it: the candidate policies
 * in (priority, name) order, conditions evaluated by json-rules-engine,
 * first match wins, else the default. Then only the sources whose pairs
 * moved (or whose allowed prefixes hold a destination that came or went)
 * have their entries rebuilt, and only the reply-only routes those touch.
 *
 * `recomputeAll()` rebuilds the table from scratch with the same pieces;
 * it is the reference the incremental path is tested against, and what
 * a large batch (the first load, a relist) uses.
 *
 * It is the only engine that builds the table: `reachabilityTable` (below)
 * computes one from scratch for tools and benchmarks, and `RoutingRules`
 * decides single pairs (`lace explain`) with the same compiled policies
 * and defaults. Reply entries are listed by source network name; a reply
 * names the policy of the first allowed destination (by prefix) of that
 * network.
 *
 * @example
 * const index = new ReachabilityIndex();
 * index.setNetwork(frontend); index.setNetwork(backend); index.setPolicy(feToBe);
 * await index.update(); // Set { "backend", "frontend" }: the names whose entries or replies changed
 * index.table.sources.get("frontend"); // [{ network: "backend", prefix: "10.40.0.0/16", action: "allow", policy: "fe-to-be" }, ...]
 */
import type { Prefix } from "../ip/mod.ts";
import type { Network, NetworkRoutingPolicy, NetworkSet } from "../resources/types.ts";
import { comparePolicies } from "./candidate_index.ts";
import type { PolicyEngine, RuleExtensionSet } from "./engine.ts";
import { type NetworkInfo, networkInfo, NetworkLocator } from "./network_locator.ts";
import type { PolicyProblem } from "./policy_problem.ts";
import { type CompiledRoutingRule, compileRoutingPolicy, type ReachabilityTable, type ReachEntry, type ReplyEntry, routingEngine } from "./routing.ts";
import { type FieldProblem, type SelectorAnchor, selectorAnchors } from "./selector.ts";

export interface ReachabilityIndexOptions {
  extensions?: RuleExtensionSet;
  /** Batches larger than this many changed policies and networks are recomputed in full. Default: 64, or an eighth of all. */
  fullThreshold?: number;
}

interface Net {
  name: string;
  info: NetworkInfo;
  /** What decisions depend on: a network whose key is unchanged is left alone. */
  key: string;
  /** Own prefixes (or the one prefix-less destination), sorted. */
  base: Unit[];
  /** Base plus the narrower prefixes policies name inside it. */
  units: Set<Unit>;
  alive: boolean;
}

interface Unit {
  net: Net;
  prefix: Prefix | null;
  text: string | null;
  /** The network's own prefix this one narrows. */
  parent?: Unit;
  alive: boolean;
}

/** One side of a policy: the networks it names, or those a selector could match (its anchors must all hold). */
interface Side {
  names: Set<string>;
  anchors: SelectorAnchor[];
}

interface Pol extends CompiledRoutingRule {
  /** null: any network. */
  from: Side | null;
  to: Side | null;
}

interface Decided {
  source: Net;
  unit: Unit;
  allow: boolean;
  policy: string;
}

interface SourceState {
  entries: ReachEntry[];
  allowed: Unit[];
  /** Destination networks (not the source) with an allowed prefix, and the policy of the first. */
  targets: Map<Net, string | null>;
}

/** Where policies are filed by one side, to find those that can match a network. */
class SideIndex {
  readonly byName = new Map<string, Set<Pol>>();
  readonly byLabel = new Map<string, Set<Pol>>();
  readonly any = new Set<Pol>();

  add(p: Pol, side: Side | null): void {
    for (const k of sideKeys(side)) {
      if (k === null) this.any.add(p);
      else addTo(k[0] === "n" ? this.byName : this.byLabel, k.slice(1), p);
    }
  }

  remove(p: Pol, side: Side | null): void {
    for (const k of sideKeys(side)) {
      if (k === null) this.any.delete(p);
      else {
        const m = k[0] === "n" ? this.byName : this.byLabel;
        const set = m.get(k.slice(1));
        set?.delete(p);
        if (set?.size === 0) m.delete(k.slice(1));
      }
    }
  }

  /** Policies whose side may hold `net` (a superset; `sideHas` decides). */
  lookup(net: Net, out: Set<Pol>): void {
    for (const p of this.any) out.add(p);
    for (const p of this.byName.get(net.name) ?? EMPTY_SET) out.add(p);
    for (const k in net.info.labels) {
      for (const p of this.byLabel.get(k) ?? EMPTY_SET) out.add(p);
      for (const p of this.byLabel.get(k + SEP + net.info.labels[k]) ?? EMPTY_SET) out.add(p);
    }
  }
}

const SEP = "\u0000";
const EMPTY_SET: ReadonlySet<Pol> = new Set();
const DENY = { allow: false, policy: null } as const;
const ALLOW = { allow: true, policy: null } as const;

export class ReachabilityIndex {
  /** The live table: updated in place by `update()`; lists are replaced, never changed. */
  readonly table: ReachabilityTable = { sources: new Map(), replies: new Map(), stats: { networks: 0, destinations: 0, pairs: 0, evaluations: 0 } };
  private readonly engine: PolicyEngine;
  private readonly fullThreshold?: number;

  // Inputs.
  private readonly nets = new Map<string, Net>();
  private readonly pols = new Map<string, Pol>();
  private readonly problemsOf = new Map<string, PolicyProblem[]>();
  private readonly pendingNets = new Map<string, Network | null>();
  private readonly pendingPols = new Map<string, NetworkRoutingPolicy | null>();
  private built = false;

  // Indexes.
  private readonly netsByLabel = new Map<string, Set<Net>>();
  private readonly srcIndex = new SideIndex();
  private readonly dstIndex = new SideIndex();
  /** Destinations with a prefix, sorted by family, address, length, network. */
  private readonly sorted: Unit[] = [];
  private readonly prefixless = new Set<Unit>();
  private locator = new NetworkLocator([]);
  /** Policy prefixes (text) → how many policies name them, and the narrower destination they make. */
  private readonly narrowed = new Map<string, { prefix: Prefix; count: number; unit?: Unit }>();

  // Decisions: only pairs a policy decided are kept; every other pair has its default.
  private readonly decided = new Map<Net, Map<Unit, Decided>>();
  private readonly decidedByPolicy = new Map<string, Set<Decided>>();
  private readonly decidedByUnit = new Map<Unit, Set<Decided>>();

  // Derived.
  private readonly state = new Map<Net, SourceState>();
  /** Allowed destination → sources allowed there (their deny entries inside it depend on what lies within). */
  private readonly allowedBy = new Map<Unit, Set<Net>>();
  /** Destination network → source → the reply-only entries it gets back to that source. */
  private readonly contrib = new Map<Net, Map<Net, ReplyEntry[]>>();

  // Work of the update in progress.
  private collecting = true;
  private dirtyPairs = new Map<Net, Set<Unit>>();
  private dirtySources = new Set<Net>();
  private changedUnits: Unit[] = [];
  private dirtyReplies = new Map<Net, Set<Net>>();
  private locatorStale = false;
  private changed = new Set<string>();
  /** Networks that went (their entries leave the table unless they came back) and networks that came. */
  private removedNames = new Set<string>();
  private addedNets = new Set<Net>();

  constructor(options: ReachabilityIndexOptions = {}) {
    this.engine = routingEngine(options.extensions);
    this.fullThreshold = options.fullThreshold;
  }

  // ------------------------------------------------------------ inputs

  /** Queues a network added or changed; `update()` applies it. */
  setNetwork(n: Network): void {
    this.pendingNets.set(n.metadata.name, n);
  }

  removeNetwork(name: string): void {
    this.pendingNets.set(name, null);
  }

  /** Queues a routing policy added or changed; `update()` applies it. */
  setPolicy(p: NetworkRoutingPolicy): void {
    const old = this.pols.get(p.metadata.name);
    // A resync or relist hands over equal policies as new objects: they need no work, and must not make a batch look large.
    if (old && !this.pendingPols.has(p.metadata.name) && (old.resource === p || JSON.stringify(old.resource.spec) === JSON.stringify(p.spec))) return;
    this.pendingPols.set(p.metadata.name, p);
  }

  removePolicy(name: string): void {
    this.pendingPols.set(name, null);
  }

  /** Policies left out because they could not be compiled. */
  problems(): PolicyProblem[] {
    return [...this.problemsOf.values()].flat();
  }

  /** Whether changes are queued. */
  get pending(): boolean {
    return this.pendingNets.size > 0 || this.pendingPols.size > 0;
  }

  /**
   * Applies the queued changes and returns the networks whose entries or
   * reply-only routes changed. Small batches re-decide only the pairs they
   * can affect; the first load and large batches recompute everything.
   */
  async update(): Promise<Set<string>> {
    const size = this.pendingNets.size + this.pendingPols.size;
    const threshold = this.fullThreshold ?? Math.max(64, (this.nets.size + this.pols.size) / 8);
    if (!this.built || size > threshold) return await this.recomputeAll();
    this.collecting = true;
    this.applyInputs();
    let pairs = 0;
    let evaluations = 0;
    const { almanac, use } = this.engine.reusableAlmanac();
    for (const [s, units] of this.dirtyPairs) {
      if (!s.alive) continue;
      const forSource = new Set<Pol>();
      this.srcIndex.lookup(s, forSource);
      const candidates = [...forSource].filter((p) => sideHas(p.from, s)).sort(comparePolicies);
      for (const u of units) {
        if (!u.alive) continue;
        pairs++;
        let found: Pol | undefined;
        let facts: Record<string, unknown> | undefined;
        for (const p of candidates) {
          if (!unitMatch(p, u)) continue;
          if (!facts) use(facts = factsOf(s, u));
          evaluations++;
          if ((await this.engine.evaluate(p.rule, almanac)).result) {
            found = p;
            break;
          }
        }
        this.record(s, u, found);
      }
    }
    // A destination that came or went changes the deny entries of sources allowed to a prefix around it.
    for (const cu of this.changedUnits) {
      if (!cu.prefix) continue;
      for (const [a, sources] of this.allowedBy) {
        if (a.prefix && a.prefix.covers(cu.prefix)) for (const s of sources) this.dirtySources.add(s);
      }
    }
    for (const s of this.dirtySources) if (s.alive) this.recomputeSource(s);
    this.flushReplies();
    for (const name of this.removedNames) {
      if (this.nets.has(name)) continue;
      if (this.table.sources.delete(name)) this.changed.add(name);
      if (this.table.replies.delete(name)) this.changed.add(name);
    }
    this.table.stats = { networks: this.nets.size, destinations: this.sorted.length + this.prefixless.size, pairs, evaluations };
    return this.finish();
  }

  /** Recomputes every decision, entry and reply from the inputs: the reference for `update()`. */
  async recomputeAll(): Promise<Set<string>> {
    this.collecting = false;
    this.applyInputs();
    this.built = true;
    const oldSources = new Map(this.table.sources);
    const oldReplies = new Map(this.table.replies);
    this.decided.clear();
    this.decidedByPolicy.clear();
    this.decidedByUnit.clear();
    this.state.clear();
    this.allowedBy.clear();
    this.contrib.clear();
    this.table.sources.clear();
    this.table.replies.clear();
    // Every candidate pair with its candidates in decision order (policies are visited in that order).
    const pairs = new Map<Net, Map<Unit, Pol[]>>();
    for (const p of [...this.pols.values()].sort(comparePolicies)) {
      const units = this.unitsOf(p);
      for (const s of this.sourcesOf(p)) {
        let m = pairs.get(s);
        if (!m) pairs.set(s, m = new Map());
        for (const u of units) {
          const list = m.get(u);
          if (list) list.push(p);
          else m.set(u, [p]);
        }
      }
    }
    let count = 0;
    let evaluations = 0;
    const { almanac, use } = this.engine.reusableAlmanac();
    for (const [s, m] of pairs) {
      for (const [u, list] of m) {
        count++;
        use(factsOf(s, u));
        for (const p of list) {
          evaluations++;
          if ((await this.engine.evaluate(p.rule, almanac)).result) {
            this.record(s, u, p);
            break;
          }
        }
      }
    }
    for (const s of this.nets.values()) this.recomputeSource(s);
    this.flushReplies();
    this.table.stats = { networks: this.nets.size, destinations: this.sorted.length + this.prefixless.size, pairs: count, evaluations };
    // What changed is what differs, whatever the path there.
    this.changed = new Set();
    for (const name of new Set([...oldSources.keys(), ...this.table.sources.keys()])) {
      if (!sameList(oldSources.get(name) ?? [], this.table.sources.get(name) ?? [], sameReach)) this.changed.add(name);
    }
    for (const name of new Set([...oldReplies.keys(), ...this.table.replies.keys()])) {
      if (!sameList(oldReplies.get(name) ?? [], this.table.replies.get(name) ?? [], sameReply)) this.changed.add(name);
    }
    return this.finish();
  }

  private finish(): Set<string> {
    const out = this.changed;
    this.changed = new Set();
    this.dirtyPairs = new Map();
    this.dirtySources = new Set();
    this.changedUnits = [];
    this.dirtyReplies = new Map();
    this.removedNames = new Set();
    this.addedNets = new Set();
    return out;
  }

  // ------------------------------------------------------------ applying inputs

  private applyInputs(): void {
    for (const [name, n] of this.pendingNets) {
      const old = this.nets.get(name);
      const info = n ? networkInfo(n) : undefined;
      const key = info ? netKey(info) : "";
      if (old && info && old.key === key) continue;
      if (old) this.removeNet(old);
      if (info) this.addNet(info, key);
    }
    this.pendingNets.clear();
    if (this.locatorStale) {
      this.locatorStale = false;
      this.locator = new NetworkLocator([...this.nets.values()].map((n) => n.info));
      for (const ref of this.narrowed.values()) this.homeNarrowed(ref);
    }
    for (const [name, p] of this.pendingPols) {
      const old = this.pols.get(name);
      if (old && p && old.resource === p) continue;
      if (old) this.removePol(old);
      this.problemsOf.delete(name);
      if (p) this.addPol(p);
    }
    this.pendingPols.clear();
  }

  private addNet(info: NetworkInfo, key: string): void {
    const net: Net = { name: info.name, info, key, base: [], units: new Set(), alive: true };
    this.nets.set(net.name, net);
    for (const k in info.labels) {
      addTo(this.netsByLabel, k, net);
      addTo(this.netsByLabel, k + SEP + info.labels[k], net);
    }
    const prefixes = [...info.prefixes].sort((a, b) => a.compare(b));
    if (prefixes.length === 0) net.base.push({ net, prefix: null, text: null, alive: true });
    for (const p of prefixes) {
      // Duplicate prefixes in one network make one destination, as in RoutingRules.
      if (net.base.some((u) => u.prefix!.equals(p))) continue;
      net.base.push({ net, prefix: p, text: p.toString(), alive: true });
    }
    for (const u of net.base) this.addUnit(u);
    this.locatorStale = true;
    this.addedNets.add(net);
    if (!this.collecting) return;
    this.dirtySources.add(net);
    const forSource = new Set<Pol>();
    this.srcIndex.lookup(net, forSource);
    for (const p of forSource) {
      if (!sideHas(p.from, net)) continue;
      for (const u of this.unitsOf(p)) this.addPair(net, u);
    }
  }

  private removeNet(net: Net): void {
    net.alive = false;
    this.nets.delete(net.name);
    for (const k in net.info.labels) {
      deleteFrom(this.netsByLabel, k, net);
      deleteFrom(this.netsByLabel, k + SEP + net.info.labels[k], net);
    }
    for (const u of [...net.units]) this.removeUnit(u);
    for (const d of this.decided.get(net)?.values() ?? []) {
      deleteFrom(this.decidedByPolicy, d.policy, d);
      deleteFrom(this.decidedByUnit, d.unit, d);
    }
    this.decided.delete(net);
    const st = this.state.get(net);
    if (st) {
      for (const a of st.allowed) deleteFrom(this.allowedBy, a, net);
      for (const d of st.targets.keys()) this.replyDirty(net, d);
      this.state.delete(net);
    }
    this.contrib.delete(net);
    // Its table entries stay until the update ends: a network that comes back reports only what differs.
    this.removedNames.add(net.name);
    this.locatorStale = true;
  }

  /** Puts a destination in the sorted list and asks for the pairs it may be decided in. */
  private addUnit(u: Unit): void {
    u.net.units.add(u);
    if (u.prefix) this.sorted.splice(this.lowerBound(u), 0, u);
    else this.prefixless.add(u);
    if (!this.collecting) return;
    this.changedUnits.push(u);
    this.dirtySources.add(u.net);
    const forDest = new Set<Pol>();
    this.dstIndex.lookup(u.net, forDest);
    for (const p of forDest) {
      if (!unitMatch(p, u)) continue;
      for (const s of this.sourcesOf(p)) this.addPair(s, u);
    }
  }

  private removeUnit(u: Unit): void {
    u.alive = false;
    u.net.units.delete(u);
    if (u.prefix) {
      const i = this.lowerBound(u);
      if (this.sorted[i] === u) this.sorted.splice(i, 1);
    } else this.prefixless.delete(u);
    for (const d of this.decidedByUnit.get(u) ?? []) {
      this.decided.get(d.source)?.delete(u);
      deleteFrom(this.decidedByPolicy, d.policy, d);
      this.dirtySources.add(d.source);
    }
    this.decidedByUnit.delete(u);
    for (const s of this.allowedBy.get(u) ?? []) this.dirtySources.add(s);
    this.changedUnits.push(u);
    if (u.net.alive) this.dirtySources.add(u.net);
  }

  /** Makes the narrower destination of a policy prefix agree with the networks as they are now. */
  private homeNarrowed(ref: { prefix: Prefix; count: number; unit?: Unit }): void {
    const m = this.locator.networkForPrefix(ref.prefix);
    const net = m && m.prefix.length < ref.prefix.length ? this.nets.get(m.network) : undefined;
    const parent = net?.base.find((b) => b.prefix?.equals(m!.prefix));
    const cur = ref.unit;
    if (cur && cur.alive && cur.net === net && cur.parent === parent) return;
    if (cur?.alive) this.removeUnit(cur);
    ref.unit = undefined;
    if (!net || !parent) return;
    ref.unit = { net, prefix: ref.prefix, text: ref.prefix.toString(), parent, alive: true };
    this.addUnit(ref.unit);
  }

  private addPol(resource: NetworkRoutingPolicy): void {
    const problems: FieldProblem[] = [];
    const c = compileRoutingPolicy(this.engine, resource, problems);
    if (!c) {
      this.problemsOf.set(resource.metadata.name, problems.map((q) => ({ kind: "NetworkRoutingPolicy", policy: resource.metadata.name, ...q })));
      return;
    }
    const p: Pol = { ...c, from: sideOf(resource.spec?.from), to: sideOf(resource.spec?.to) };
    this.pols.set(p.name, p);
    this.srcIndex.add(p, p.from);
    this.dstIndex.add(p, p.to);
    for (const q of p.prefixes) {
      const text = q.toString();
      const ref = this.narrowed.get(text);
      if (ref) ref.count++;
      else {
        const fresh = { prefix: q, count: 1 };
        this.narrowed.set(text, fresh);
        this.homeNarrowed(fresh);
      }
    }
    if (!this.collecting) return;
    const units = this.unitsOf(p);
    for (const s of this.sourcesOf(p)) for (const u of units) this.addPair(s, u);
  }

  private removePol(p: Pol): void {
    this.pols.delete(p.name);
    this.srcIndex.remove(p, p.from);
    this.dstIndex.remove(p, p.to);
    // Its decisions stay until re-decided (after the update they name whatever decides them then).
    for (const d of this.decidedByPolicy.get(p.name) ?? []) this.addPair(d.source, d.unit);
    for (const q of p.prefixes) {
      const text = q.toString();
      const ref = this.narrowed.get(text)!;
      if (--ref.count > 0) continue;
      this.narrowed.delete(text);
      if (ref.unit?.alive) this.removeUnit(ref.unit);
    }
  }

  private addPair(s: Net, u: Unit): void {
    if (!this.collecting) return;
    let set = this.dirtyPairs.get(s);
    if (!set) this.dirtyPairs.set(s, set = new Set());
    set.add(u);
  }

  // ------------------------------------------------------------ decisions

  private record(s: Net, u: Unit, p: Pol | undefined): void {
    let m = this.decided.get(s);
    const cur = m?.get(u);
    if (cur && p && cur.policy === p.name && cur.allow === (p.action === "Allow")) return;
    if (!cur && !p) return;
    if (cur) {
      m!.delete(u);
      deleteFrom(this.decidedByPolicy, cur.policy, cur);
      deleteFrom(this.decidedByUnit, u, cur);
    }
    if (p) {
      const d: Decided = { source: s, unit: u, allow: p.action === "Allow", policy: p.name };
      if (!m) this.decided.set(s, m = new Map());
      m.set(u, d);
      addTo(this.decidedByPolicy, p.name, d);
      addTo(this.decidedByUnit, u, d);
    }
    this.dirtySources.add(s);
    // Replies from u's network back to s depend on whether s may open connections to u.
    if (u.parent === undefined && u.text !== null && u.net !== s) this.replyDirty(u.net, s);
  }

  private outcome(s: Net, u: Unit): { allow: boolean; policy: string | null } {
    const d = this.decided.get(s)?.get(u);
    if (d) return d;
    return s === u.net && !s.info.anonymous ? ALLOW : DENY;
  }

  /** A source's entries, as `RoutingRules.reachability()` lists them. */
  private recomputeSource(s: Net): void {
    const listed = new Set<Unit>();
    const entries: ReachEntry[] = [];
    const allowed: Unit[] = [];
    const consider = (u: Unit) => {
      if (listed.has(u)) return;
      const o = this.outcome(s, u);
      if (!o.allow) return;
      if (u.parent) {
        const po = this.outcome(s, u.parent);
        if (po.allow && po.policy === o.policy) return; // the network's own entry already says so
      }
      listed.add(u);
      allowed.push(u);
      entries.push({ network: u.net.name, prefix: u.text, action: "allow", policy: o.policy });
    };
    for (const u of this.decided.get(s)?.keys() ?? []) consider(u);
    for (const u of s.units) consider(u);
    // Denied destinations inside an allowed prefix need entries of their own, or the wider route would carry them.
    for (const a of allowed) {
      if (!a.prefix) continue;
      for (const u of this.unitsWithin(a.prefix)) {
        if (listed.has(u) || u === a) continue;
        const o = this.outcome(s, u);
        if (o.allow) continue;
        listed.add(u);
        entries.push({ network: u.net.name, prefix: u.text, action: "deny", policy: o.policy });
      }
    }
    entries.sort(byDestination);
    const targets = new Map<Net, string | null>();
    for (const e of entries) {
      if (e.action !== "allow" || e.network === s.name) continue;
      const d = this.nets.get(e.network)!;
      if (!targets.has(d)) targets.set(d, e.policy);
    }
    const old = this.state.get(s);
    for (const a of old?.allowed ?? []) deleteFrom(this.allowedBy, a, s);
    for (const a of allowed) if (a.prefix) addTo(this.allowedBy, a, s);
    for (const d of old?.targets.keys() ?? []) this.replyDirty(s, d);
    for (const d of targets.keys()) this.replyDirty(s, d);
    this.state.set(s, { entries, allowed, targets });
    const before = this.table.sources.get(s.name) ?? [];
    if (sameList(before, entries, sameReach)) return;
    if (entries.length) this.table.sources.set(s.name, entries);
    else this.table.sources.delete(s.name);
    this.changed.add(s.name);
  }

  private replyDirty(s: Net, d: Net): void {
    let set = this.dirtyReplies.get(s);
    if (!set) this.dirtyReplies.set(s, set = new Set());
    set.add(d);
  }

  /** Reply-only routes: each destination network's context routes back to the sources that may reach it, unless it may open connections there itself. */
  private flushReplies(): void {
    // A network that came (or came back) lists its replies afresh, even if no source's share of them moved.
    const touched = new Set<Net>([...this.addedNets].filter((n) => n.alive));
    for (const [s, ds] of this.dirtyReplies) {
      for (const d of ds) {
        let next: ReplyEntry[] | undefined;
        const policy = s.alive && d.alive && s !== d ? this.state.get(s)?.targets.get(d) : undefined;
        if (policy !== undefined) {
          for (const back of s.base) {
            if (back.text === null || this.outcome(d, back).allow) continue;
            (next ??= []).push({ network: s.name, prefix: back.text, policy });
          }
        }
        let m = this.contrib.get(d);
        const cur = m?.get(s);
        if (cur === next || (cur && next && sameList(cur, next, sameReply))) continue;
        if (next) {
          if (!m) this.contrib.set(d, m = new Map());
          m.set(s, next);
        } else m?.delete(s);
        if (d.alive) touched.add(d);
      }
    }
    for (const d of touched) {
      const m = this.contrib.get(d);
      const list = m ? [...m].sort((a, b) => a[0].name < b[0].name ? -1 : 1).flatMap(([, e]) => e) : [];
      const before = this.table.replies.get(d.name) ?? [];
      if (sameList(before, list, sameReply)) continue;
      if (list.length) this.table.replies.set(d.name, list);
      else this.table.replies.delete(d.name);
      if (m?.size === 0) this.contrib.delete(d);
      this.changed.add(d.name);
    }
  }

  // ------------------------------------------------------------ candidates

  /** The networks a policy's `from` may hold. */
  private sourcesOf(p: Pol): Iterable<Net> {
    return p.from === null ? this.nets.values() : this.netsOf(p.from);
  }

  /** The destinations a policy's `to` (networks and prefixes) may hold. */
  private unitsOf(p: Pol): Unit[] {
    if (p.prefixes.length > 0) {
      const out = new Set<Unit>();
      for (const q of p.prefixes) for (const u of this.unitsWithin(q)) if (!p.to || sideHas(p.to, u.net)) out.add(u);
      return [...out];
    }
    if (p.to) return this.netsOf(p.to).flatMap((n) => [...n.units]);
    return [...this.sorted, ...this.prefixless];
  }

  private netsOf(side: Side): Net[] {
    const out = new Set<Net>();
    for (const name of side.names) {
      const n = this.nets.get(name);
      if (n) out.add(n);
    }
    if (side.anchors.length > 0) {
      // The anchor with the fewest networks, then every anchor checked.
      let best: Net[] | undefined;
      for (const a of side.anchors) {
        const list = a.values ? [...new Set(a.values)].flatMap((v) => [...this.netsByLabel.get(a.key + SEP + v) ?? []]) : [...this.netsByLabel.get(a.key) ?? []];
        if (!best || list.length < best.length) best = list;
      }
      for (const n of best!) if (side.anchors.every((a) => anchorHolds(a, n.info.labels))) out.add(n);
    }
    return [...out];
  }

  private lowerBound(u: Unit): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareUnits(this.sorted[mid], u) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Destinations within `p`. */
  private *unitsWithin(p: Prefix): Generator<Unit> {
    const units = this.sorted;
    let lo = 0;
    let hi = units.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const q = units[mid].prefix!;
      if (q.family > p.family || (q.family === p.family && q.network >= p.network)) hi = mid;
      else lo = mid + 1;
    }
    const last = p.last.value;
    for (let i = lo; i < units.length; i++) {
      const q = units[i].prefix!;
      if (q.family !== p.family || q.network > last) return;
      if (q.length >= p.length) yield units[i];
    }
  }
}

// ------------------------------------------------------------ helpers

function factsOf(s: Net, u: Unit): Record<string, unknown> {
  return {
    sourceNetwork: s.name,
    destinationNetwork: u.net.name,
    destinationPrefix: u.text,
    sourceType: s.info.type,
    destinationType: u.net.info.type,
    sourceLabels: s.info.labels,
    destinationLabels: u.net.info.labels,
  };
}

/** A side as `RoutingRules` resolves it: null (any network) without names and selector, or with a selector no index can key on. */
function sideOf(set: NetworkSet | undefined): Side | null {
  const names = Array.isArray(set?.networks) ? set.networks : undefined;
  const selector = set?.networkSelector;
  if (!names && !selector) return null;
  const anchors = selector ? selectorAnchors(selector) : [];
  if (selector && anchors.length === 0) return null;
  return { names: new Set(names ?? []), anchors };
}

/** Index keys of a side: `n<name>` or `l<label key[\0value]>`, or null for the any-network list. */
function sideKeys(side: Side | null): (string | null)[] {
  if (side === null) return [null];
  const keys: string[] = [...side.names].map((n) => "n" + n);
  const a = side.anchors[0];
  if (a) {
    if (a.values) for (const v of new Set(a.values)) keys.push("l" + a.key + SEP + v);
    else keys.push("l" + a.key);
  }
  return keys;
}

function sideHas(side: Side | null, net: Net): boolean {
  if (side === null || side.names.has(net.name)) return true;
  return side.anchors.length > 0 && side.anchors.every((a) => anchorHolds(a, net.info.labels));
}

function anchorHolds(a: SelectorAnchor, labels: Record<string, string>): boolean {
  if (!Object.hasOwn(labels, a.key)) return false;
  return !a.values || a.values.includes(labels[a.key]);
}

function unitMatch(p: Pol, u: Unit): boolean {
  if (p.to && !sideHas(p.to, u.net)) return false;
  if (p.prefixes.length === 0) return true;
  const up = u.prefix;
  return up !== null && p.prefixes.some((q) => q.covers(up));
}

function netKey(info: NetworkInfo): string {
  return JSON.stringify([info.type, info.anonymous, info.external, info.prefixes.map(String), Object.entries(info.labels).sort()]);
}

function compareUnits(a: Unit, b: Unit): number {
  const c = a.prefix!.compare(b.prefix!);
  if (c !== 0) return c;
  return a.net.name < b.net.name ? -1 : a.net.name > b.net.name ? 1 : 0;
}

function byDestination(a: ReachEntry, b: ReachEntry): number {
  if (a.network !== b.network) return a.network < b.network ? -1 : 1;
  const x = a.prefix ?? "";
  const y = b.prefix ?? "";
  return x < y ? -1 : x > y ? 1 : 0;
}

function sameReach(a: ReachEntry, b: ReachEntry): boolean {
  return a.network === b.network && a.prefix === b.prefix && a.action === b.action && a.policy === b.policy;
}

function sameReply(a: ReplyEntry, b: ReplyEntry): boolean {
  return a.network === b.network && a.prefix === b.prefix && a.policy === b.policy;
}

function sameList<T>(a: readonly T[], b: readonly T[], same: (x: T, y: T) => boolean): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !same(a[i], b[i])) return false;
  return true;
}

function addTo<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  let s = m.get(k);
  if (!s) m.set(k, s = new Set());
  s.add(v);
}

function deleteFrom<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  const s = m.get(k);
  if (!s) return;
  s.delete(v);
  if (s.size === 0) m.delete(k);
}

/**
 * The whole reachability table for `policies` over `networks`, computed
 * from scratch (`recomputeAll`): what a tool or a benchmark needs once.
 *
 * @example
 * const table = await reachabilityTable(policies, networks);
 * table.sources.get("frontend"); // [{ network: "backend", prefix: "10.40.0.0/16", action: "allow", policy: "fe-to-be" }, ...]
 */
export async function reachabilityTable(
  policies: Iterable<NetworkRoutingPolicy>,
  networks: Iterable<Network>,
  options: ReachabilityIndexOptions = {},
): Promise<ReachabilityTable> {
  const index = new ReachabilityIndex(options);
  for (const n of networks) index.setNetwork(n);
  for (const p of policies) index.setPolicy(p);
  await index.recomputeAll();
  return index.table;
}
