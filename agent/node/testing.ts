/**
 * Fakes for agent tests: a dataplane that records what it is asked to do
 * and a minimal desired-state source (local l3 blocks and endpoints only).
 * Both implement the agent's real interfaces, checked by the compiler.
 *
 * @example
 * const dp = new RecordingDataplane();
 * const agent = new NodeAgent({ store, node: "node-1", dataplane: dp, states: new LocalStateSource() });
 */
import {
  type Allocation, type ApplyReport, type DataplaneCapabilities, type Network, type NetworkEndpoint, type NetworkForwarding,
  type NodeDesiredState, Prefix, type Resource,
} from "../../core/mod.ts";
import type { NodeStateSource, PodAttachment, PodCheck, PodDataplane } from "./contracts.ts";

export class RecordingDataplane implements PodDataplane {
  readonly applied: NodeDesiredState[] = [];
  readonly attached = new Map<string, PodAttachment>();
  readonly calls: string[] = [];
  /** Set to make the next attach fail with this message. */
  failAttach?: string;
  /** What the dataplane says it forwards. */
  forwarding: DataplaneCapabilities["forwarding"] = ["routed"];
  /** The backend it says it runs, and why it lacks a kind of forwarding. */
  backend?: string;
  notForwarded?: DataplaneCapabilities["notForwarded"];

  capabilities(): Promise<DataplaneCapabilities> {
    return Promise.resolve({
      vrf: false, seg6: true, seg6local: true, nexthopObjects: true, bpf: false, overlappingSubnets: true, forwarding: this.forwarding,
      ...(this.backend ? { backend: this.backend } : {}), ...(this.notForwarded ? { notForwarded: this.notForwarded } : {}),
    });
  }

  /** Set to make applies fail with this message until cleared. */
  failApply?: string;

  apply(state: NodeDesiredState): Promise<ApplyReport> {
    if (this.failApply) return Promise.reject(new Error(this.failApply));
    this.applied.push(structuredClone(state));
    this.calls.push("apply");
    return Promise.resolve({ added: 0, changed: 0, removed: 0, writes: 0, durationMs: 0 });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  attachPod(pod: PodAttachment): Promise<void> {
    this.calls.push(`attach ${pod.hostIfname}`);
    if (this.failAttach) {
      const msg = this.failAttach;
      this.failAttach = undefined;
      return Promise.reject(new Error(msg));
    }
    this.attached.set(pod.hostIfname, pod);
    return Promise.resolve();
  }

  /** Set to hold detaches until this promise resolves (a slow veth deletion). */
  holdDetach?: Promise<void>;

  async detachPod(pod: { hostIfname: string }): Promise<void> {
    this.calls.push(`detach ${pod.hostIfname}`);
    if (this.holdDetach) await this.holdDetach;
    this.attached.delete(pod.hostIfname);
    this.calls.push(`detached ${pod.hostIfname}`);
  }

  checkPod(pod: PodAttachment): Promise<PodCheck> {
    const have = this.attached.get(pod.hostIfname);
    if (!have) return Promise.resolve(`the host interface ${pod.hostIfname} does not exist`);
    const missing = pod.addresses.filter((a) => !have.addresses.includes(a));
    return Promise.resolve(missing.length ? `lacks ${missing.join(", ")}` : undefined);
  }

  podPorts(): Promise<string[]> {
    return Promise.resolve([...this.attached.keys()]);
  }
}

/**
 * The smallest desired state an agent can attach pods with: every l3
 * Network with an id that has a block on this node gets a bridge, its
 * gateways and MTU; endpoints come from the attached NetworkEndpoints (a
 * detached one is left out, as the real builder does). No paths, no
 * remote blocks: enough for agent tests, not a controller.
 */
export class LocalStateSource implements NodeStateSource {
  private readonly objects = new Map<string, Resource>();
  private readonly listeners: ((node: string, state: NodeDesiredState) => void)[] = [];
  private revision = 0;
  upserts = 0;

  upsert(r: Resource): void {
    this.upserts++;
    this.objects.set(`${r.kind}/${r.metadata.namespace ?? ""}/${r.metadata.name}`, r);
    this.changed(r);
  }

  remove(kind: string, name: string, namespace?: string): void {
    const key = `${kind}/${namespace ?? ""}/${name}`;
    const r = this.objects.get(key);
    if (!r) return;
    this.objects.delete(key);
    this.changed(r);
  }

  onChange(listener: (node: string, state: NodeDesiredState) => void): void {
    this.listeners.push(listener);
  }

  private changed(r: Resource): void {
    this.revision++;
    const node = (r.spec as { node?: string } | undefined)?.node;
    if (node) for (const l of this.listeners) l(node, this.stateFor(node));
  }

  private all<T extends Resource>(kind: string): T[] {
    return [...this.objects.values()].filter((o) => o.kind === kind) as T[];
  }

  stateFor(node: string): NodeDesiredState {
    const networks: NetworkForwarding[] = [];
    for (const net of this.all<Network>("Network")) {
      const id = net.status?.id;
      const alloc = this.all<Allocation>("Allocation").find((a) => a.spec?.node === node && a.spec.network === net.metadata.name);
      // An l2 network: its subnet on every node (global IPAM); an l3 one: the node's blocks.
      const bridged = net.spec?.type === "l2";
      const here = this.all<NetworkEndpoint>("NetworkEndpoint").some((e) => e.spec?.node === node && e.spec.network === net.metadata.name);
      const blocks = bridged
        ? (here ? [net.spec?.ipv4Subnet?.prefix, net.spec?.ipv6Subnet?.prefix].filter((p): p is string => typeof p === "string") : [])
        : (alloc?.spec?.blocks ?? []).filter((b) => !b.pending).map((b) => b.prefix);
      if (id === undefined || blocks.length === 0) continue;
      networks.push({
        name: net.metadata.name, id, type: net.spec?.type ?? "l3", forwarding: bridged ? "bridged" : "routed", anonymous: !!net.spec?.anonymous,
        mtu: 1460, sid: `fd00:1ace:1::${id}`, sidBehavior: "decap-lookup",
        gateways: blocks.map((b) => {
          const p = Prefix.parse(b);
          return `${p.firstHost}/${p.length}`;
        }),
        localPrefixes: blocks, remoteBlocks: [], paths: [], neighbors: [], fdb: [], egress: [],
      });
    }
    const endpoints = this.all<NetworkEndpoint>("NetworkEndpoint").filter((e) => e.spec?.node === node && !e.spec.detachedAt).map((e) => ({
      id: `${e.metadata.namespace}/${e.metadata.name}`, network: e.spec!.network,
      addresses: e.spec!.addresses.map((a) => `${a}/${a.includes(":") ? 128 : 32}`), interface: e.spec!.interface ?? "",
    }));
    return {
      node, revision: this.revision, locator: "fd00:1ace:1::/48", encapsulation: "Reduced", underlay: { interface: "", mtu: 1500 },
      networks, endpoints, peers: [],
    };
  }
}
