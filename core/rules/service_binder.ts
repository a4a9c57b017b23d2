/**
 * Services are bound continuously: when a binding policy, a service or a
 * namespace changes, the binder re-evaluates exactly the services the
 * change can affect and returns the bindings that moved.
 *
 * - a policy changes or goes: the services it bound are decided again, and
 *   the services its new version matches (found through the policy's index
 *   anchor, then asked of json-rules-engine) move to it when it ranks
 *   before the policy that holds them;
 * - a service changes: that service is decided again;
 * - a namespace's labels change: the services in it are decided again.
 *
 * Calls are serialised: each one sees the state the previous one left.
 *
 * @example
 * const binder = new ServiceBinder(BindingRules.compile(policies, { defaultNetwork: "default" }));
 * await binder.setNamespace("shop", { team: "a" });
 * const changes = await binder.setService({ namespace: "shop", name: "cart", labels: { tier: "backend" } });
 * // [{ service: { namespace: "shop", name: "cart" }, oldNetwork: null, newNetwork: "backend", policy: "team-a-backend", ... }]
 */
import { isLaceError } from "../errors.ts";
import type { NetworkBindingPolicy } from "../resources/types.ts";
import { type BindingRules, type BindingSubject, NAMESPACE_NAME_LABEL } from "./binding.ts";

/** A service as the binder needs it. */
export interface ServiceObject {
  namespace: string;
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** A service's current binding. */
export interface ServiceBinding {
  /** Null when no policy matched and there is no default network. */
  network: string | null;
  /** The deciding policy; null for the default network or no binding. */
  policy: string | null;
  /** Why the service has no network. */
  error?: string;
}

/** A service whose network or deciding policy changed. */
export interface ServiceBindingChange {
  service: { namespace: string; name: string };
  oldNetwork: string | null;
  newNetwork: string | null;
  /** The policy that decided the new binding (null: default network, none, or the service is gone). */
  policy: string | null;
  oldPolicy: string | null;
  /** Set when the service is left without a network. */
  error?: string;
}

interface Entry {
  service: ServiceObject;
  binding: ServiceBinding;
}

const SEP = "\u0000";
const UNBOUND: ServiceBinding = Object.freeze({ network: null, policy: null });

export class ServiceBinder {
  private readonly services = new Map<string, Entry>();
  private readonly namespaces = new Map<string, Record<string, string>>();
  private readonly byPolicy = new Map<string, Set<string>>();
  private readonly byNamespace = new Map<string, Set<string>>();
  /** `key` and `key\0value` of service labels → services. */
  private readonly byLabel = new Map<string, Set<string>>();
  /** `key` and `key\0value` of namespace labels → namespaces. */
  private readonly nsByLabel = new Map<string, Set<string>>();
  private queue: Promise<unknown> = Promise.resolve();
  /** How many evaluations json-rules-engine was asked for, in total (decisions and single-policy checks). */
  evaluations = 0;

  /** The binder owns the rules' changes from now on: change policies through it. */
  constructor(readonly rules: BindingRules) {}

  /** The service's binding, if the binder knows the service. */
  binding(namespace: string, name: string): ServiceBinding | undefined {
    return this.services.get(namespace + "/" + name)?.binding;
  }

  /** A namespace's labels as last set, if the binder was told about it. */
  namespaceLabels(name: string): Record<string, string> | undefined {
    return this.namespaces.get(name);
  }

  /** Every known service with its binding. */
  *bindings(): Generator<[ServiceObject, ServiceBinding]> {
    for (const e of this.services.values()) yield [e.service, e.binding];
  }

  /** Adds or replaces a policy and rebinds the services it affects. Throws INVALID_RESOURCE for a policy that cannot be compiled. */
  setPolicy(policy: NetworkBindingPolicy): Promise<ServiceBindingChange[]> {
    return this.serial(async () => {
      const name = policy.metadata.name;
      const affected = new Set(this.byPolicy.get(name) ?? []);
      this.rules.upsert(policy);
      const changes = await this.redecide(affected);
      const where = this.rules.anchorOf(name);
      if (where?.matchKind === "Service") {
        for (const key of this.servicesUnder(where.anchor)) {
          if (affected.has(key)) continue;
          const e = this.services.get(key)!;
          if (e.binding.policy !== null && this.rules.compare(name, e.binding.policy) >= 0) continue;
          this.evaluations++;
          if (await this.rules.matches(name, this.subject(e.service))) {
            const change = this.assign(key, { network: policy.spec!.network, policy: name });
            if (change) changes.push(change);
          }
        }
      }
      return changes;
    });
  }

  /** Removes a policy and rebinds the services it bound. */
  removePolicy(name: string): Promise<ServiceBindingChange[]> {
    return this.serial(async () => {
      const affected = new Set(this.byPolicy.get(name) ?? []);
      if (!this.rules.remove(name)) return [];
      return await this.redecide(affected);
    });
  }

  /** Adds or replaces a service and decides its binding. */
  setService(service: ServiceObject): Promise<ServiceBindingChange[]> {
    return this.serial(async () => {
      const key = service.namespace + "/" + service.name;
      const old = this.services.get(key);
      if (old) this.unindexLabels(key, old.service.labels);
      else {
        this.services.set(key, { service, binding: UNBOUND });
        addTo(this.byNamespace, service.namespace, key);
      }
      this.services.get(key)!.service = service;
      this.indexLabels(key, service.labels);
      return await this.redecide(new Set([key]));
    });
  }

  /** Forgets a service; its binding, if any, is reported as gone. */
  removeService(namespace: string, name: string): Promise<ServiceBindingChange[]> {
    return this.serial(() => {
      const key = namespace + "/" + name;
      const e = this.services.get(key);
      if (!e) return Promise.resolve([]);
      const change = this.assign(key, UNBOUND);
      this.unindexLabels(key, e.service.labels);
      deleteFrom(this.byNamespace, namespace, key);
      this.services.delete(key);
      return Promise.resolve(change ? [change] : []);
    });
  }

  /** Sets a namespace's labels and rebinds the services in it. */
  setNamespace(name: string, labels: Record<string, string> = {}): Promise<ServiceBindingChange[]> {
    return this.serial(() => {
      const old = this.namespaces.get(name);
      if (old) for (const k of labelKeys(withNameLabel(name, old))) deleteFrom(this.nsByLabel, k, name);
      this.namespaces.set(name, labels);
      for (const k of labelKeys(withNameLabel(name, labels))) addTo(this.nsByLabel, k, name);
      if (old && sameLabels(old, labels)) return Promise.resolve([]);
      return this.redecide(new Set(this.byNamespace.get(name) ?? []));
    });
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.queue.then(f, f);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async redecide(keys: Set<string>): Promise<ServiceBindingChange[]> {
    const changes: ServiceBindingChange[] = [];
    for (const key of keys) {
      const e = this.services.get(key);
      if (!e) continue;
      this.evaluations++;
      let binding: ServiceBinding;
      try {
        binding = await this.rules.decide(this.subject(e.service));
      } catch (err) {
        if (!isLaceError(err, "NO_BINDING_POLICY")) throw err;
        binding = { network: null, policy: null, error: err.message };
      }
      const change = this.assign(key, binding);
      if (change) changes.push(change);
    }
    return changes;
  }

  private assign(key: string, binding: ServiceBinding): ServiceBindingChange | undefined {
    const e = this.services.get(key)!;
    const old = e.binding;
    e.binding = binding;
    if (old.policy !== null) deleteFrom(this.byPolicy, old.policy, key);
    if (binding.policy !== null) addTo(this.byPolicy, binding.policy, key);
    if (old.network === binding.network && old.policy === binding.policy && old.error === binding.error) return undefined;
    const change: ServiceBindingChange = {
      service: { namespace: e.service.namespace, name: e.service.name },
      oldNetwork: old.network,
      newNetwork: binding.network,
      policy: binding.policy,
      oldPolicy: old.policy,
    };
    if (binding.error) change.error = binding.error;
    return change;
  }

  private subject(s: ServiceObject): BindingSubject {
    return {
      kind: "Service",
      namespace: s.namespace,
      name: s.name,
      labels: s.labels,
      annotations: s.annotations,
      namespaceLabels: this.namespaces.get(s.namespace),
    };
  }

  /** The services a policy filed under `anchor` could match. */
  private *servicesUnder(anchor: [string, string, ...string[]] | null): Generator<string> {
    if (anchor === null) {
      yield* this.services.keys();
      return;
    }
    const [scope, key, ...values] = anchor;
    const keys = values.length === 0 ? [key] : values.map((v) => key + SEP + v);
    if (scope === "l") {
      for (const k of keys) yield* this.byLabel.get(k) ?? [];
      return;
    }
    for (const k of keys) {
      for (const ns of this.nsByLabel.get(k) ?? []) yield* this.byNamespace.get(ns) ?? [];
    }
    // Namespaces the binder has not been told about still carry their name label.
    if (key === NAMESPACE_NAME_LABEL) {
      for (const ns of values) if (!this.namespaces.has(ns)) yield* this.byNamespace.get(ns) ?? [];
    }
  }

  private indexLabels(key: string, labels: Record<string, string> | undefined): void {
    for (const k of labelKeys(labels)) addTo(this.byLabel, k, key);
  }

  private unindexLabels(key: string, labels: Record<string, string> | undefined): void {
    for (const k of labelKeys(labels)) deleteFrom(this.byLabel, k, key);
  }
}

function labelKeys(labels: Record<string, string> | undefined): string[] {
  const out: string[] = [];
  for (const k in labels ?? {}) out.push(k, k + SEP + labels![k]);
  return out;
}

function withNameLabel(namespace: string, labels: Record<string, string>): Record<string, string> {
  return NAMESPACE_NAME_LABEL in labels ? labels : { ...labels, [NAMESPACE_NAME_LABEL]: namespace };
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
}

function addTo(m: Map<string, Set<string>>, k: string, v: string): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(v);
}

function deleteFrom(m: Map<string, Set<string>>, k: string, v: string): void {
  const s = m.get(k);
  if (s && s.delete(v) && s.size === 0) m.delete(k);
}
