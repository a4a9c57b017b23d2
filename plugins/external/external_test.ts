import { suite } from "uvu";
import * as assert from "uvu/assert";
import { IPAddress, type Network, type NetworkSpec, Prefix, SnapshotClusterView } from "../../core/mod.ts";
import plugin, { externalNetworkType as external } from "./mod.ts";

const t = suite("plugins/external");

const ext = (name: string, ...externalPrefixes: string[]): Network => ({
  apiVersion: "lace-cni.io/v1alpha1",
  kind: "Network",
  metadata: { name },
  spec: { type: "external", externalPrefixes },
});
const corp = ext("corp", "192.0.2.0/24", "2001:db8::/32");
const lab = ext("lab", "192.0.2.128/25");

function problems(spec: NetworkSpec): string[] {
  const out: string[] = [];
  external.validate(spec, (path, message) => out.push(`${path}: ${message}`));
  return out;
}

t("definition: no addressing, underlay forwarding, no gateway", () => {
  assert.is(plugin.name, "lace-cni/external");
  assert.equal(plugin.networkTypes?.map((d) => [d.type, d.addressing, d.forwarding]), [["external", "none", "underlay"]]);
  assert.is(external.gateway(corp, Prefix.parse("192.0.2.0/24")), undefined);
});

t("definition: provides the CIDR rule operators", () => {
  const names = plugin.ruleOperators?.map((o) => o.name) ?? [];
  assert.ok(names.length > 0, "no rule operators");
  for (const o of plugin.ruleOperators!) assert.type(o.evaluate, "function");
});

t("locate: longest prefix match over all external networks: 192.0.2.200 is in the /25, not the /24", () => {
  const view = new SnapshotClusterView([corp, lab]);
  assert.equal(external.locate(corp, IPAddress.parse("192.0.2.200"), view), { kind: "external", network: "lab", prefix: "192.0.2.128/25" });
  assert.equal(external.locate(corp, IPAddress.parse("192.0.2.100"), view), { kind: "external", network: "corp", prefix: "192.0.2.0/24" });
  assert.equal(external.locate(lab, IPAddress.parse("2001:db8::1"), view), { kind: "external", network: "corp", prefix: "2001:db8::/32" });
  assert.is(external.locate(corp, IPAddress.parse("198.51.100.1"), view), undefined);
});

t("locate follows the view: removing the /25 sends its addresses back to the /24", () => {
  const view = new SnapshotClusterView([corp, lab]);
  view.remove(lab);
  assert.is((external.locate(corp, IPAddress.parse("192.0.2.200"), view) as { network: string }).network, "corp");
  view.update(ext("lab", "192.0.2.192/26"));
  assert.is((external.locate(corp, IPAddress.parse("192.0.2.200"), view) as { prefix: string }).prefix, "192.0.2.192/26");
});

t("validate: prefixes required, strict, distinct; no subnets", () => {
  assert.equal(problems(corp.spec!), []);
  assert.equal(problems({ type: "external" }), [
    'externalPrefixes: is required for an external network: expected a list of CIDR prefixes such as ["192.0.2.0/24"]',
  ]);
  assert.equal(problems({ type: "external", ipv6Subnet: { prefix: "fd00::/64" }, externalPrefixes: ["192.0.2.0/24", "192.0.2.1/24", "192.0.2.0/24"] }), [
    "ipv6Subnet: not allowed on an external network: an external network has no subnet, list its prefixes in externalPrefixes",
    'externalPrefixes[1]: host bits set in "192.0.2.1/24": expected the network address 192.0.2.0/24',
    'externalPrefixes[2]: duplicate of externalPrefixes[0] "192.0.2.0/24"',
  ]);
});

t.run();
