import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  BlockAllocator,
  DesiredStateBuilder,
  HostLocalAllocator,
  loadPlugins,
  MemoryStore,
  type Network,
  parseConfig,
  Prefix,
  typeDeclarations,
  validateResource,
} from "../../../core/mod.ts";
import { allocation, locatorsFor, topology } from "../../../core/controller/testing.ts";
import { readText } from "../../../test/read_text.ts";

const t = suite("example segment plugin");
const configUrl = new URL("./testdata/lace.yaml", import.meta.url);

async function load() {
  // Only the network types: the srv6 dataplane plugin does not load on Deno.
  const text = (await readText(configUrl)).replace("  - lace-cni/srv6\n", "");
  return loadPlugins(parseConfig(text, configUrl.href), { baseUrl: configUrl });
}

function shop(options?: Record<string, unknown>, id = 7): Network {
  return {
    apiVersion: "lace-cni.io/v1alpha1", kind: "Network", metadata: { name: "shop" },
    spec: { type: "segment", ipv4Subnet: { prefix: "10.80.0.0/16", hostLocalPrefixLength: 24 }, ipv6Subnet: { prefix: "fd00:80::/48", hostLocalPrefixLength: 64 }, ...(options ? { options } : {}) },
    status: { id },
  } as Network;
}

t("loads by configuration and declares a routed, host-local type", async () => {
  const loaded = await load();
  const def = loaded.networkTypes.get("segment")!;
  assert.is(loaded.networkTypes.pluginFor("segment"), "acme-segment");
  assert.is(def.addressing, "host-local");
  assert.is(def.forwarding, "routed");
});

t("validates its spec, naming each bad field and value", async () => {
  const types = (await load()).networkTypes;
  assert.equal(validateResource(shop(), { networkTypes: types }), []);
  const bad = validateResource({ ...shop({ gatewayFromEnd: 0, colour: "red" }) }, { networkTypes: types });
  const text = bad.map((p) => `${p.path}: ${p.message}`).join("\n");
  assert.match(text, /spec\.options\.gatewayFromEnd: expected an integer from 1 \(the last host address\) to 16, got 0/);
  assert.match(text, /spec\.options\.colour: unknown option/);
});

t("its gateway is the end of each block: IPAM keeps it and the desired state puts it on the node", async () => {
  const def = (await load()).networkTypes.get("segment")!;
  assert.is(def.gateway(shop(), Prefix.parse("10.80.1.0/24"))?.toString(), "10.80.1.254");
  assert.is(def.gateway(shop({ gatewayFromEnd: 2 }), Prefix.parse("10.80.1.0/24"))?.toString(), "10.80.1.253");
  assert.is(def.gateway(shop(), Prefix.parse("fd00:80:0:1::/64"))?.toString(), "fd00:80:0:1:ffff:ffff:ffff:ffff");

  // IPAM with the hook: 253 pods fill a /24 without ever taking .254.
  const store = new MemoryStore();
  const net = await store.create(shop({}, 7));
  const ipam = new HostLocalAllocator(store, { network: "shop", node: "node-1", blocks: new BlockAllocator(store), gateway: (p) => def.gateway(net, p) });
  const first = await ipam.allocate({ owner: "pod-0" });
  const v4 = (a: { addresses: { address: { family: number; toString(): string }; gateway: { toString(): string } }[] }) => a.addresses.find((x) => x.address.family === 4)!;
  assert.is(v4(first).gateway.toString(), "10.80.0.254");
  assert.is(v4(first).address.toString(), "10.80.0.1", "the first host is a pod's: the gateway is elsewhere");
  const handed = new Set<string>([v4(first).address.toString()]);
  for (let i = 1; i < 253; i++) handed.add(v4(await ipam.allocate({ owner: `pod-${i}` })).address.toString());
  assert.is(handed.size, 253);
  assert.not.ok(handed.has("10.80.0.254"), "the gateway was never handed out");

  // The desired state's gateways, from the same hook.
  const loaded = await load();
  const b = new DesiredStateBuilder({ ...typeDeclarations(loaded.networkTypes) });
  await b.upsertAll([topology(locatorsFor(["node-1"])), shop({}, 7), allocation("shop", "node-1", ["10.80.0.0/24", "fd00:80::/64"])]);
  assert.equal(b.stateFor("node-1").networks.find((n) => n.name === "shop")?.gateways, ["10.80.0.254/24", "fd00:80::ffff:ffff:ffff:ffff/64"]);
});

t.run();
