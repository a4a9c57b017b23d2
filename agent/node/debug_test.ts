/**
 * The agent's debug endpoint over its unix socket: status, the desired
 * path beside the datapath's own trace, and refusals that say why.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DataplaneTrace, NodeDesiredState, TraceQuery } from "../../core/mod.ts";
import { type AgentPath, type AgentStatus, askAgent, DebugServer } from "./debug.ts";
import { RecordingDataplane } from "./testing.ts";

const t = suite("agent/node/debug");

async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("expected a failure");
}

const state: NodeDesiredState = {
  node: "node-1", revision: 4, locator: "fd00:1ace:1::/48", encapsulation: "Reduced", underlay: { interface: "", mtu: 1500 },
  peers: [{ node: "node-2", locator: "fd00:1ace:2::/48" }],
  endpoints: [{ id: "a/x", network: "red", addresses: ["10.1.0.2/32"], interface: "h1" }],
  networks: [{
    name: "red", id: 2, type: "l3", forwarding: "routed", anonymous: false, mtu: 1400, gateways: [], localPrefixes: [], remoteBlocks: [],
    neighbors: [], fdb: [], egress: [],
    paths: [{ destination: "10.1.1.0/24", toNetwork: "red", via: "sid", sid: "fd00:1ace:2::2", mode: "allow", policy: null }],
  }],
};

class TracingDataplane extends RecordingDataplane {
  queries: TraceQuery[] = [];
  trace(q: TraceQuery): Promise<DataplaneTrace> {
    this.queries.push(q);
    return Promise.resolve({ verdict: "deny", entries: [{ kind: "route", text: "table 1002: none" }], reason: "stale" });
  }
}

t("status and path answer over the socket; the datapath's trace is asked with the network's id", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lace-debug-"));
  const dp = new TracingDataplane();
  const server = await DebugServer.listen(join(dir, "debug.sock"), { node: "node-1", dataplane: dp, state: () => state, ready: () => true });
  try {
    assert.is(statSync(server.path).mode & 0o777, 0o600);
    const s = await askAgent<AgentStatus>(server.path, "/v1/status");
    assert.equal([s.node, s.ready, s.revision, s.networks], ["node-1", true, 4, [{ name: "red", id: 2, endpoints: 1 }]]);
    const p = await askAgent<AgentPath>(server.path, "/v1/path?network=red&destination=10.1.1.7");
    assert.equal([p.desired?.verdict, p.desired?.toNode, p.desired?.sid], ["allow", "node-2", "fd00:1ace:2::2"]);
    assert.equal(p.dataplane?.verdict, "deny");
    assert.equal(dp.queries, [{ networkId: 2, destination: "10.1.1.7" }]);
    const absent = await askAgent<AgentPath>(server.path, "/v1/path?network=blue&destination=10.1.1.7");
    assert.match(absent.dataplaneError!, /network "blue" has no forwarding context on node node-1/);
    assert.match(await failure(askAgent(server.path, "/v1/path?network=red&destination=nowhere")), /destination: expected an IPv4 or IPv6 address, got "nowhere"/);
    assert.match(await failure(askAgent(server.path, "/v2")), /Not found: \/v2/);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const gone = await failure(askAgent(join(dir, "debug.sock"), "/v1/status"));
  assert.match(gone, /no agent answers at .*debug\.sock: ENOENT/, gone);
});

t.run();
