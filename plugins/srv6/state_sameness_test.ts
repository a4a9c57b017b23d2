import { test } from "uvu";
import * as assert from "uvu/assert";
import type { NodeDesiredState, ServiceForwarding } from "../../core/plugin/mod.ts";
import { onlyServicesChanged } from "./state_sameness.ts";

const svc = (id: string): ServiceForwarding => ({
  id, network: "red", clusterIPs: ["10.96.0.10"], sessionAffinity: "None", ports: [{ protocol: "TCP", port: 80 }], sources: ["red"], endpoints: [],
});
const base = (): NodeDesiredState => ({
  node: "node-1", revision: 1, locator: "fd00:0:1::/48", encapsulation: "Reduced", underlay: { interface: "eth0", mtu: 1500 },
  networks: [], endpoints: [{ id: "default/a", network: "red", interface: "lc1", addresses: ["10.1.1.2/24"] } as never], services: [svc("default/a")],
});

test("a state whose Services alone changed, compared by structure (copies, as a worker receives them)", () => {
  const a = base();
  const b = structuredClone(a);
  b.revision = 2;
  b.services = [svc("default/a"), svc("default/b")];
  assert.ok(onlyServicesChanged(a, b));
  assert.ok(onlyServicesChanged(a, { ...a, services: [] }), "all Services gone");
  assert.ok(onlyServicesChanged({ ...a, services: undefined }, { ...a, services: [svc("x/y")] }), "the first Service");
});

test("a change beside the Services is not, nor is a state whose Services are the very same objects (a resync)", () => {
  const a = base();
  assert.not.ok(onlyServicesChanged(a, { ...structuredClone(a), services: [], endpoints: [] }), "endpoints changed too");
  assert.not.ok(onlyServicesChanged(a, { ...structuredClone(a), services: [], underlay: { interface: "eth0", mtu: 9000 } }), "a nested field");
  assert.not.ok(onlyServicesChanged(a, { ...structuredClone(a), services: [], peers: [] }), "a field more");
  assert.not.ok(onlyServicesChanged(a, { ...a, revision: 9, services: a.services!.slice() }), "same Service objects");
  assert.not.ok(onlyServicesChanged(a, a));
});

test.run();
