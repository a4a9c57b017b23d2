/** The address the sandbox gives each external network's host: deterministic and longest-prefix-matched to that network. */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { Network } from "../../core/mod.ts";
import { externalHostAddresses } from "./external_hosts.ts";

/** As the sandbox decides it from the registry: the type forwards over the underlay. */
const isExternal = (n: Network) => n.spec?.type === "external";

const t = suite("sandbox external hosts");
const ext = (name: string, prefixes: string[]): Network => ({
  apiVersion: "lace-cni.io/v1alpha1", kind: "Network", metadata: { name }, spec: { type: "external", externalPrefixes: prefixes },
});
const l3 = (name: string, v4: string): Network => ({
  apiVersion: "lace-cni.io/v1alpha1", kind: "Network", metadata: { name }, spec: { type: "l3", ipv4Subnet: { prefix: v4, hostLocalPrefixLength: 24 } },
});

t("the first host address of the network's first prefix of each family", () => {
  const m = externalHostAddresses([ext("wan", ["fd00:e0::/64", "203.0.113.0/24", "198.51.100.0/24"]), l3("red", "10.41.0.0/16")], isExternal);
  assert.equal([...m], [["wan", ["203.0.113.1", "fd00:e0::1"]]]);
});

t("inside a covering prefix of another network, an address that longest-prefix-matches to this one", () => {
  // The examples: lab's /25 lies inside corp's /24; corp's probe must not land in lab's half.
  const m = externalHostAddresses([ext("lab", ["192.0.2.128/25", "2001:db8:1ab::/48"]), ext("corp", ["192.0.2.0/24"])], isExternal);
  assert.equal([...m], [["corp", ["192.0.2.1"]], ["lab", ["192.0.2.129", "2001:db8:1ab::1"]]]);
  // The longer prefix at the start of the shorter one: the first address after it.
  const n = externalHostAddresses([ext("a", ["10.9.0.0/16"]), ext("b", ["10.9.0.0/24", "10.9.1.0/24"])], isExternal);
  assert.is(n.get("a")![0], "10.9.2.0");
  assert.equal(n.get("b"), ["10.9.0.1"]);
});

t("a family whose every address belongs to longer prefixes of others is left out", () => {
  const m = externalHostAddresses([ext("a", ["10.9.0.0/24", "fd00:9::/64"]), ext("b", ["10.9.0.0/25"]), ext("c", ["10.9.0.128/25"])], isExternal);
  assert.equal(m.get("a"), ["fd00:9::1"]);
});

t.run();
