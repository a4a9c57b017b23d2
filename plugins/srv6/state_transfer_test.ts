import { test } from "uvu";
import * as assert from "uvu/assert";
import type { NodeDesiredState, ServiceForwarding } from "../../core/plugin/mod.ts";
import { StateReceiver, StateSender, STATE_MISMATCH } from "./state_transfer.ts";

const svc = (id: string, port = 80): ServiceForwarding => ({
  id, network: "red", clusterIPs: ["10.96.0.10"], sessionAffinity: "None", ports: [{ protocol: "TCP", port }], sources: ["red"], endpoints: [],
});
const state = (services: ServiceForwarding[], revision = 1): NodeDesiredState => ({
  node: "node-1", revision, locator: "fd00:0:1::/48", encapsulation: "Reduced", underlay: { interface: "eth0", mtu: 1500 }, networks: [], endpoints: [], services,
});
/** What crosses a thread: a structured clone. */
const post = <T>(x: T): T => structuredClone(x);

test("unchanged parts keep their identity on the receiving side; changed Services arrive as new objects", () => {
  const tx = new StateSender();
  const rx = new StateReceiver();
  const a = svc("ns/a"), b = svc("ns/b"), c = svc("ns/c");
  const s1 = state([a, b, c]);
  const r1 = rx.decode(post(tx.encode(s1)));
  assert.equal(r1, s1, "the first state arrives whole and equal");
  const b2 = svc("ns/b", 81);
  const s2 = { ...s1, revision: 2, services: [a, b2, c] };
  const d2 = tx.encode(s2);
  assert.equal(d2.services, [[0, 1], b2, [2, 3]], "the unchanged ones travel as runs of the last list");
  assert.ok(d2.same.includes("networks") && d2.same.includes("underlay"));
  const r2 = rx.decode(post(d2));
  assert.equal(r2, s2);
  assert.ok(r2.services![0] === r1.services![0] && r2.services![2] === r1.services![2], "unchanged Services are the receiver's previous objects");
  assert.ok(r2.services![1] !== r1.services![1]);
  assert.ok(r2.networks === r1.networks && r2.underlay === r1.underlay);
  // Removed and added Services: indexes into the previous list.
  const s3 = { ...s2, revision: 3, services: [svc("ns/0"), c] };
  const r3 = rx.decode(post(tx.encode(s3)));
  assert.equal(r3, s3);
  assert.ok(r3.services![1] === r2.services![2]);
  // A list in another order than by id still arrives equal (its Services travel as themselves where the walk loses them).
  const s4 = { ...s3, revision: 4, services: [c, svc("ns/0"), a] };
  assert.equal(rx.decode(post(tx.encode(s4))), s4);
});

test("a receiver that does not hold the base refuses the delta, naming both; after reset the sender sends it whole", () => {
  const tx = new StateSender();
  const rx = new StateReceiver();
  const s1 = state([svc("ns/a")]);
  tx.encode(s1); // lost on the way
  const d2 = tx.encode({ ...s1, revision: 2 });
  assert.throws(() => rx.decode(post(d2)), (e: Error) => e.message.startsWith(STATE_MISMATCH) && e.message.includes("#1") && e.message.includes("none"));
  tx.reset();
  const d3 = tx.encode({ ...s1, revision: 3 });
  assert.is(d3.base, undefined);
  assert.equal(rx.decode(post(d3)), { ...s1, revision: 3 });
});

test.run();
