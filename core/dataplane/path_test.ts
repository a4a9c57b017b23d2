import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { NetworkForwarding, NodeDesiredState } from "./desired_state.ts";
import { desiredPath } from "./path.ts";

const t = suite("dataplane/path");

const net = (over: Partial<NetworkForwarding>): NetworkForwarding => ({
  name: "backend", id: 3, type: "l3", forwarding: "routed", anonymous: false, mtu: 1400, gateways: [], localPrefixes: [],
  remoteBlocks: [], paths: [], neighbors: [], fdb: [], egress: [], ...over,
});

const state: NodeDesiredState = {
  node: "node-1", revision: 7, locator: "fd00:1ace:1::/48", encapsulation: "Reduced", underlay: { interface: "", mtu: 1500 },
  peers: [{ node: "node-2", locator: "fd00:1ace:2::/48" }, { node: "node-3", locator: "fd00:1ace:3::/48" }],
  endpoints: [],
  networks: [
    net({
      localPrefixes: ["10.40.0.0/24"],
      remoteBlocks: [{ prefix: "10.40.5.0/24", node: "node-2", sid: "fd00:1ace:2::3" }],
      paths: [
        { destination: "10.40.0.0/24", toNetwork: "backend", via: "local", toNetworkId: 3, mode: "allow", policy: null },
        { destination: "10.40.2.0/24", toNetwork: "backend", via: "sid", sid: "fd00:1ace:3::3", mode: "allow", policy: null },
        { destination: "10.60.0.0/24", toNetwork: "frontend", via: "sid", sid: "fd00:1ace:2::4", mode: "reply-only", policy: "frontend-to-backend" },
        { destination: "192.0.2.0/24", toNetwork: "corp", via: "underlay", mode: "allow", policy: "backend-to-corp" },
        { destination: "10.40.0.0/16", toNetwork: "backend", via: "local", mode: "allow", policy: null },
      ],
      denied: [{ destination: "10.40.2.128/25", policy: "no-upper" }],
    }),
  ],
};

t("the longest matching route decides, and a SID names its node", () => {
  const p = desiredPath(state, "backend", "10.40.2.2")!;
  assert.equal([p.verdict, p.via, p.sid, p.toNode, p.route?.destination, p.revision], ["allow", "sid", "fd00:1ace:3::3", "node-3", "10.40.2.0/24", 7]);
  assert.equal([desiredPath(state, "backend", "10.40.0.9")!.toNode, desiredPath(state, "backend", "10.40.0.9")!.via], ["node-1", "local"]);
  // The own subnet's route is local; a block of another node in it is encapsulated to that node.
  const remote = desiredPath(state, "backend", "10.40.5.7")!;
  assert.equal([remote.via, remote.sid, remote.toNode, remote.route?.destination], ["sid", "fd00:1ace:2::3", "node-2", "10.40.0.0/16"]);
  assert.equal([desiredPath(state, "backend", "10.40.9.1")!.via, desiredPath(state, "backend", "10.40.9.1")!.toNode], ["local", undefined]);
});

t("bridged: IP → MAC by the neighbours, MAC → node by the FDB, a SID when it is on another node", () => {
  const l2: NodeDesiredState = {
    ...state,
    networks: [net({
      name: "flat", id: 4, forwarding: "bridged", localPrefixes: ["10.46.0.0/24"],
      paths: [{ destination: "10.46.0.0/24", toNetwork: "flat", via: "local", toNetworkId: 4, mode: "allow", policy: null }],
      neighbors: [{ ip: "10.46.0.2", mac: "0a:58:0a:2e:00:02", source: "static" }, { ip: "10.46.0.3", mac: "0a:58:0a:2e:00:03", source: "static" }],
      fdb: [
        { mac: "0a:58:0a:2e:00:02", node: "node-1", source: "static", sequence: 1 },
        { mac: "0a:58:0a:2e:00:03", node: "node-2", sid: "fd00:1ace:2::4", source: "static", sequence: 1 },
      ],
    })],
  };
  const far = desiredPath(l2, "flat", "10.46.0.3")!;
  assert.equal([far.via, far.sid, far.toNode, far.mac], ["sid", "fd00:1ace:2::4", "node-2", "0a:58:0a:2e:00:03"]);
  const near = desiredPath(l2, "flat", "10.46.0.2")!;
  assert.equal([near.via, near.toNode, near.mac], ["local", "node-1", "0a:58:0a:2e:00:02"]);
});

t("reply-only paths, underlay egress, denied pieces and missing routes", () => {
  assert.is(desiredPath(state, "backend", "10.60.0.2")!.verdict, "reply-only");
  const out = desiredPath(state, "backend", "192.0.2.1")!;
  assert.equal([out.verdict, out.via, out.toNode], ["allow", "underlay", undefined]);
  const denied = desiredPath(state, "backend", "10.40.2.200")!;
  assert.equal([denied.verdict, denied.denied?.policy], ["deny", "no-upper"]);
  const none = desiredPath(state, "backend", "10.99.0.1")!;
  assert.equal([none.verdict, none.route], ["deny", undefined]);
  assert.is(desiredPath(state, "vault", "10.40.0.1"), undefined);
});

t.run();
