/**
 * The live commands on a store with fixtures (examples/, with the status
 * the controller would write): `lace status` reads networks, nodes and
 * pods, and asks each node's agent over its debug socket; a live `lace
 * explain` takes pods where they run, and shows the path and the
 * agreement of decision, desired state and datapath, or says why a side
 * could not be read.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DataplaneTrace, Network, NodeDesiredState, Resource, Topology, TraceQuery } from "../../core/mod.ts";
import { connectStore, type ConnectedStore } from "../store/connect.ts";
import { loadRuntime } from "../config/runtime.ts";
import { DebugServer } from "../node/debug.ts";
import { RecordingDataplane } from "../node/testing.ts";
import { readManifestFiles } from "./files.ts";
import { runStatus } from "./status.ts";
import { runLiveExplain } from "./explain_live.ts";

const t = suite("lace status and live explain (fixtures)");

let dir = "";
let connected: ConnectedStore;
let socket = "";

t.before(async () => {
  dir = mkdtempSync(join(tmpdir(), "lace-live-"));
  connected = await connectStore({ db: join(dir, "store.db"), env: {} });
  socket = connected.embedded!.socketPath!;
  const { resources } = await readManifestFiles(["examples/networks.yaml", "examples/policies.yaml", "examples/topology.yaml", "examples/cluster.yaml", "examples/state.yaml"]);
  const store = connected.store;
  for (const r of resources) if (r.kind !== "Pod" && r.kind !== "Service") await store.create(structuredClone(r));
  for (const node of ["node-1", "node-2"]) await store.create({ apiVersion: "v1", kind: "Node", metadata: { name: node } });
  // As a kubelet reports it.
  const n2 = (await store.get<Resource>("Node", "node-2"))!;
  await store.updateStatus({ ...n2, status: { conditions: [{ type: "Ready", status: "True", reason: "KubeletReady", message: "kubelet is posting ready status" }] } });
  // What the controller writes: ids, usage and conditions, the locators.
  let id = 1;
  for (const n of (await store.list<Network>("Network")).items.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    n.status = { id: id++, conditions: [{ type: "Accepted", status: "True", reason: "Valid", message: "ok" }] };
    if (n.metadata.name === "backend") n.status.usage = { addressesUsed: 1, addressesFree: "65531" };
    if (n.metadata.name === "vault") n.status.conditions!.push({ type: "Ready", status: "False", reason: "Exhausted", message: "no block left" });
    await store.updateStatus(n);
  }
  const topo = (await store.get<Topology>("Topology", "default"))!;
  topo.status = { locators: { "node-1": "fd00:1ace:1::/48", "node-2": "fd00:1ace:2::/48" } };
  await store.updateStatus(topo);
});

t.after(async () => {
  await connected.close();
  rmSync(dir, { recursive: true, force: true });
});

async function run(fn: (out: (l: string) => void, err: (l: string) => void) => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await fn((l) => out.push(l), (l) => err.push(l));
  return { code, out: out.join("\n"), err: err.join("\n") };
}

/** An agent for node-1 whose datapath answers `verdict` and whose desired state is node-1's. */
async function agentOf(verdict: DataplaneTrace["verdict"], state: NodeDesiredState): Promise<DebugServer> {
  const dp = new (class extends RecordingDataplane {
    trace(_q: TraceQuery): Promise<DataplaneTrace> {
      return Promise.resolve({ verdict, via: "sid", sid: "fd00:1ace:2::1", entries: [{ kind: "map", text: "lace_encap4[net 1, 10.40.2.5] = SID fd00:1ace:2::1" }] });
    }
  })();
  return DebugServer.listen(join(dir, "node-1", "debug.sock"), { node: "node-1", dataplane: dp, state: () => state, ready: () => true });
}

t("status lists networks with prefixes, usage and conditions, nodes with locators, and pods per network; an agent that is not there is named", async () => {
  const r = await run((out, err) => runStatus({ storeSocket: socket, json: true }, out, err));
  assert.is(r.code, 0, r.err);
  const s = JSON.parse(r.out) as { networks: { name: string; type: string; prefixes: string[]; usage?: { allocated: number; total: string }; conditions: { type: string; status: string }[]; pods: { pod: string; node: string; addresses: string[] }[] }[]; nodes: { name: string; locator?: string; ready?: boolean; agent?: string; pods: number }[] };
  const backend = s.networks.find((n) => n.name === "backend")!;
  assert.equal([backend.type, backend.prefixes, backend.usage], ["l3", ["10.40.0.0/16"], { allocated: 1, total: "65532" }]);
  assert.equal(backend.pods, [{ pod: "team-a/api-0", node: "node-1", addresses: ["10.40.1.2"] }]);
  assert.equal(s.networks.find((n) => n.name === "corp")!.prefixes, ["192.0.2.0/24"]);
  assert.equal(s.networks.find((n) => n.name === "vault")!.conditions.map((c) => `${c.type}=${c.status}`), ["Accepted=True", "Ready=False"]);
  assert.equal(s.nodes.map((n) => [n.name, n.locator, n.pods]), [["node-1", "fd00:1ace:1::/48", 1], ["node-2", "fd00:1ace:2::/48", 0]]);
  assert.match(s.nodes[0].agent!, /no agent answers at .*node-1\/debug\.sock: ENOENT/);
  const text = await run((out, err) => runStatus({ storeSocket: socket }, out, err));
  assert.match(text.out, /^backend\s+l3\s+10\.40\.0\.0\/16\s+1\/65532\s+Accepted=True$/m);
  assert.match(text.out, /^ {2}vault: Ready Exhausted: no block left$/m);
  assert.match(text.out, /^ {4}team-a\/api-0 {2}node-1 {2}10\.40\.1\.2$/m);
});

t("--db reads the SQLite file itself; one a store is serving, or none, is refused with the reason", async () => {
  const served = await run((out, err) => runStatus({ db: join(dir, "store.db") }, out, err));
  assert.is(served.code, 1);
  assert.match(served.err, /lace status: cannot read the live state: .*database is locked \(is another lace store serving it\?\)/);
  const other = join(dir, "other", "store.db");
  const c = await connectStore({ db: other, env: {} });
  await c.store.create({ apiVersion: "lace-cni.io/v1alpha1", kind: "Network", metadata: { name: "solo" }, spec: { type: "l3", ipv4Subnet: { prefix: "10.9.0.0/16", hostLocalPrefixLength: 24 } } });
  await c.close();
  const r = await run((out, err) => runStatus({ db: other, json: true }, out, err));
  assert.is(r.code, 0, r.err);
  assert.equal((JSON.parse(r.out) as { networks: { name: string }[] }).networks.map((n) => n.name), ["solo"]);
  const missing = await run((out, err) => runStatus({ db: join(dir, "nope.db") }, out, err));
  assert.is(missing.code, 1);
  assert.match(missing.err, /lace status: cannot read the live state: --db: no store database at .*nope\.db/);
});

t("status asks each node's agent: backend, readiness and revision", async () => {
  const state: NodeDesiredState = { node: "node-1", revision: 9, locator: "fd00:1ace:1::/48", encapsulation: "Reduced", underlay: { interface: "", mtu: 1500 }, networks: [], endpoints: [] };
  const agent = await agentOf("allow", state);
  try {
    const r = await run((out, err) => runStatus({ storeSocket: socket }, out, err));
    assert.match(r.out, /^node-1\s+fd00:1ace:1::\/48\s+\?\s+yes \(revision 9\)\s+1$/m);
    assert.match(r.out, /^node-2\s+fd00:1ace:2::\/48\s+\?\s+\? \(Node Ready=True\) \(no agent answers/m);
  } finally {
    await agent.close();
  }
});

t("live explain: the pod where it runs, the decision, and the path from the store when no agent answers", async () => {
  const { extensions, networkTypes } = await loadRuntime(undefined);
  const r = await run((out, err) => runLiveExplain({ flags: { storeSocket: socket }, from: "team-a/api-0", to: "10.40.2.5", json: true, extensions, networkTypes, out, err }));
  assert.is(r.code, 0, r.err);
  const j = JSON.parse(r.out) as { decision: string; from: { pod: string; binding: { policy: string } }; location: { node: string }; path: { source: { node: string; interface: string }; desiredFrom: string; desired: { verdict: string; via: string; toNode: string; sid: string }; dataplaneError: string; agreement: { agree: boolean; text: string } } };
  assert.equal([j.decision, j.from.pod, j.from.binding.policy, j.location.node], ["allow", "team-a/api-0", "team-a-backend", "node-2"]);
  assert.equal([j.path.source.node, j.path.source.interface, j.path.desiredFrom], ["node-1", "lace3f1c2a9e", "store"]);
  assert.equal([j.path.desired.verdict, j.path.desired.via, j.path.desired.toNode], ["allow", "sid", "node-2"]);
  assert.ok(j.path.desired.sid.startsWith("fd00:1ace:2:"), j.path.desired.sid);
  assert.match(j.path.dataplaneError, /no agent answers/);
  assert.ok(j.path.agreement.agree, j.path.agreement.text);
});

t("live explain: a datapath that disagrees with the decision is shown as such", async () => {
  const { extensions, networkTypes } = await loadRuntime(undefined);
  // The agent's desired state, as the store gives node-1, with a datapath that drops what the policies allow.
  const first = await run((out, err) => runLiveExplain({ flags: { storeSocket: socket }, from: "team-a/api-0", to: "10.40.2.5", json: true, extensions, networkTypes, out, err }));
  const desired = (JSON.parse(first.out) as { path: { desired: { route: unknown; networkId: number; sid: string } } }).path.desired;
  const state: NodeDesiredState = {
    node: "node-1", revision: 3, locator: "fd00:1ace:1::/48", encapsulation: "Reduced", underlay: { interface: "", mtu: 1500 }, endpoints: [],
    peers: [{ node: "node-2", locator: "fd00:1ace:2::/48" }],
    networks: [{ name: "backend", id: desired.networkId, type: "l3", forwarding: "routed", anonymous: false, mtu: 1400, gateways: [], localPrefixes: [], remoteBlocks: [{ prefix: "10.40.2.0/24", node: "node-2", sid: desired.sid }], neighbors: [], fdb: [], egress: [], paths: [desired.route as NodeDesiredState["networks"][0]["paths"][0]] }],
  };
  const agent = await agentOf("deny", state);
  try {
    const r = await run((out, err) => runLiveExplain({ flags: { storeSocket: socket }, from: "team-a/api-0", to: "10.40.2.5", extensions, networkTypes, out, err }));
    assert.is(r.code, 0, r.err);
    assert.match(r.out, /^decision: ALLOW/m);
    assert.match(r.out, /^path from node node-1 \(desired state revision 3, from the agent\):$/m);
    assert.match(r.out, /^ {2}source: {6}pod team-a\/api-0 on node node-1, interface lace3f1c2a9e, network backend/m);
    assert.match(r.out, /^ {2}destination: node node-2 \(SID fd00:1ace:2:/m);
    assert.match(r.out, /^datapath on node-1: DENY via SID fd00:1ace:2::1$/m);
    assert.match(r.out, /^ {4}map {2}lace_encap4\[net 1, 10\.40\.2\.5\]/m);
    assert.match(r.out, /^agreement: DISAGREE: the policies decide allow, but the datapath of node-1 says deny$/m);
  } finally {
    await agent.close();
  }
});

t("live explain refuses an unknown pod or network, naming what there is", async () => {
  const { extensions, networkTypes } = await loadRuntime(undefined);
  const pod = await run((out, err) => runLiveExplain({ flags: { storeSocket: socket }, from: "team-a/nope", to: "10.40.2.5", extensions, networkTypes, out, err }));
  assert.is(pod.code, 1);
  assert.match(pod.err, /--from: pod team-a\/nope has no NetworkEndpoint in the store \(not running, or not on a lace network\): expected one of team-a\/api-0/);
  const net = await run((out, err) => runLiveExplain({ flags: { storeSocket: socket }, from: "backend", to: "nowhere", extensions, networkTypes, out, err }));
  assert.is(net.code, 1);
  assert.match(net.err, /--to: no Network "nowhere" in the store: expected one of backend, corp/);
});

t.run();
