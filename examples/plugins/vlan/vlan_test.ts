import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  type ClusterView,
  IPAddress,
  isLaceError,
  loadPlugins,
  type Network,
  type NetworkSpec,
  parseConfig,
  Prefix,
} from "../../../core/mod.ts";
import { readText } from "../../../test/read_text.ts";
import { type VlanPlanner, VlanPlannerToken } from "./mod.ts";

const t = suite("example vlan plugin");

const configUrl = new URL("./testdata/lace.yaml", import.meta.url);

async function loadFromConfig() {
  const config = parseConfig(await readText(configUrl), configUrl.href);
  return loadPlugins(config, { baseUrl: configUrl });
}

function vlanNetwork(spec: Partial<NetworkSpec>): Network {
  return {
    apiVersion: "lace-cni.io/v1alpha1",
    kind: "Network",
    metadata: { name: "storage-vlan" },
    spec: { type: "vlan", ...spec },
  };
}

async function problemsOf(spec: Partial<NetworkSpec>): Promise<string[]> {
  const vlan = (await loaded()).networkTypes.get("vlan")!;
  const problems: string[] = [];
  vlan.validate({ type: "vlan", ...spec }, (path, msg) => problems.push(`${path}: ${msg}`));
  return problems;
}

// Loaded once, on first use, so a failure is reported by the test that needed it.
let loading: ReturnType<typeof loadFromConfig> | undefined;
const loaded = () => (loading ??= loadFromConfig());

t("loads by configuration beside the built-in network types", async () => {
  const { plugins, networkTypes } = await loaded();
  assert.equal(plugins.map((p) => p.name), ["lace-cni/l3", "lace-cni/l2", "lace-cni/external", "acme-vlan"]);
  assert.is(plugins[3].source, new URL("./mod.ts", import.meta.url).href);
  assert.equal(networkTypes.types(), ["l3", "l2", "external", "vlan"]);
  assert.is(networkTypes.pluginFor("vlan"), "acme-vlan");
  assert.is(networkTypes.get("vlan")?.addressing, "global");
  assert.is(networkTypes.get("vlan")?.forwarding, "bridged");
});

t("accepts a dual-stack vlan network", async () => {
  assert.equal(
    await problemsOf({
      ipv4Subnet: { prefix: "192.168.120.0/24" },
      ipv6Subnet: { prefix: "fd00:120::/64" },
      options: { vlanId: 120, parent: "eth1", gateway: "192.168.120.254" },
    }),
    [],
  );
});

t("reports every problem with its path", async () => {
  assert.equal(
    await problemsOf({
      ipv4Subnet: { prefix: "192.168.120.1/24", hostLocalPrefixLength: 26 },
      ipv6Subnet: { prefix: "10.0.0.0/8" },
      externalPrefixes: ["0.0.0.0/0"],
      options: { vlanId: 4095, parent: "enp129s0f1np1", gateway: "10.9.9.9" },
    }),
    [
      "externalPrefixes: not allowed on a vlan network: it has a subnet",
      `ipv4Subnet.prefix: ${(Prefix.tryParse("192.168.120.1/24") as { error: string }).error}`,
      "ipv4Subnet.hostLocalPrefixLength: not allowed on a vlan network: addresses come from the whole subnet",
      `ipv6Subnet.prefix: expected an IPv6 prefix, got "10.0.0.0/8"`,
      "options.vlanId: expected an 802.1Q VLAN id from 1 to 4094, got 4095",
      `options.parent: the VLAN link "enp129s0f1np1.4094" would be longer than 15 characters: expected a shorter parent name`,
    ],
  );
  assert.equal(await problemsOf({ ipv4Subnet: { prefix: "192.168.120.0/24" }, options: { vlanId: 1, gateway: "10.9.9.9" } }), [
    `options.gateway: expected an address inside the network's subnets (192.168.120.0/24), got "10.9.9.9"`,
  ]);
  assert.equal(await problemsOf({}), [
    "ipv4Subnet: a vlan network needs ipv4Subnet, ipv6Subnet or both",
    "options.vlanId: expected an 802.1Q VLAN id from 1 to 4094, got nothing",
  ]);
});

t("the gateway is the configured router, else the first host address", async () => {
  const vlan = (await loaded()).networkTypes.get("vlan")!;
  const prefix = Prefix.parse("192.168.120.0/24");
  const routed = vlanNetwork({ options: { vlanId: 120, gateway: "192.168.120.254" } });
  assert.is(vlan.gateway(routed, prefix)?.toString(), "192.168.120.254");
  assert.is(vlan.gateway(vlanNetwork({ options: { vlanId: 120 } }), prefix)?.toString(), "192.168.120.1");
  assert.is(vlan.gateway(routed, Prefix.parse("fd00:120::/64"))?.toString(), "fd00:120::1");
});

t("locates an address through its Neighbor and FDBEntry", async () => {
  const vlan = (await loaded()).networkTypes.get("vlan")!;
  const net = vlanNetwork({ ipv4Subnet: { prefix: "192.168.120.0/24" }, options: { vlanId: 120 } });
  const view = {
    neighbor: (network: string, ip: string) =>
      network === "storage-vlan" && ip === "192.168.120.7" ? { spec: { mac: "02:AA:00:00:00:07" } } : undefined,
    fdbEntry: (network: string, mac: string) =>
      network === "storage-vlan" && mac === "02:aa:00:00:00:07" ? { spec: { node: "node-2" } } : undefined,
  } as unknown as ClusterView;
  assert.equal(vlan.locate(net, IPAddress.parse("192.168.120.7"), view), {
    kind: "mac",
    mac: "02:aa:00:00:00:07",
    node: "node-2",
    network: "storage-vlan",
  });
  assert.is(vlan.locate(net, IPAddress.parse("192.168.120.8"), view), undefined);
  assert.is(vlan.locate(net, IPAddress.parse("10.0.0.7"), view), undefined);
});

t("setup reads the plugin options and shares its planner through exports", async () => {
  const planner = (await loaded()).container.resolve<VlanPlanner>(VlanPlannerToken);
  assert.equal(planner.linkFor(vlanNetwork({ options: { vlanId: 120 } })), { link: "bond0.120", parent: "bond0", vlanId: 120 });
  assert.equal(planner.linkFor(vlanNetwork({ options: { vlanId: 7, parent: "eth1" } })), {
    link: "eth1.7",
    parent: "eth1",
    vlanId: 7,
  });
});

t("a bad plugin option is refused naming the plugin and setup", async () => {
  const config = parseConfig("plugins:\n  - name: ../mod.ts\n    options: { defaultParent: 'no spaces allowed' }\n", "bad.yaml");
  try {
    await loadPlugins(config, { baseUrl: configUrl });
    assert.unreachable("expected a refusal");
  } catch (e) {
    assert.ok(isLaceError(e, "PLUGIN_HOOK_FAILED"));
    assert.is(
      (e as Error).message,
      `Plugin "acme-vlan" failed in hook "setup": Invalid options: defaultParent: expected a network interface name such as "eth1", got "no spaces allowed"`,
    );
  }
});

t.run();
