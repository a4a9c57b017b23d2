import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { NodeDesiredState, ServiceForwarding } from "../../core/mod.ts";
import { decodeElement, encodeElement, MAX_SERVICE_ENDPOINTS, planServices, removedUdpEndpoints, renderAddLbChains, renderServiceTable } from "./services.ts";
import { TestCluster } from "./testing.ts";

const t = suite("srv6/services (plan)");

const red = { name: "red", id: 1, v4: 1, v6: 1 };
const blue = { name: "blue", id: 2, v4: 2, v6: 2 };
const pods = [{ name: "ra", node: 1, network: "red", host: 10 }];

function state(svc: ServiceForwarding): NodeDesiredState {
  return { ...new TestCluster(2).desiredState(1, [red, blue], pods), services: [svc] };
}

const base: ServiceForwarding = {
  id: "shop/api", network: "red", clusterIPs: ["10.96.0.10"], sessionAffinity: "None",
  ports: [{ protocol: "TCP", port: 80 }, { protocol: "UDP", port: 53, name: "dns" }],
  sources: ["blue", "red", "elsewhere"],
  endpoints: [
    { pod: "shop/api-1", node: "node-1", addresses: ["10.1.1.5", "fd00:1:0:1::5"], ports: [8080, 0] },
    { pod: "shop/api-2", node: "node-2", addresses: ["10.1.2.5"], ports: [9090, 5353] },
  ],
};

const elements = (s: NodeDesiredState) => new Map([...planServices(s).services.values()].flatMap((p) => [...p.elements]));
const text = (s: NodeDesiredState) => [...elements(s).values()].map((e) => `${e.set}: ${e.key}${e.value ? ` → ${e.value}` : ""}`).sort();

t("elements: one lookup per source bridge on the node, endpoints per port with their own target port, hairpin for local endpoints", () => {
  assert.equal(text(state(base)), [
    "ep4: 10.96.0.10 . tcp . 80 . 0 → 10.1.1.5 . 8080",
    "ep4: 10.96.0.10 . tcp . 80 . 1 → 10.1.2.5 . 9090",
    // api-1 has no port named for 53: only api-2 serves it.
    "ep4: 10.96.0.10 . udp . 53 . 0 → 10.1.2.5 . 5353",
    "hairpin4: 0x4d000001 . 10.1.1.5 → 10.1.1.1",
    "hairpin6: 0x4d000001 . fd00:1:0:1::5 → fd00:1:0:1::1",
    "svc4: lb1 . 10.96.0.10 . tcp . 80 → goto lb4-r-2",
    "svc4: lb1 . 10.96.0.10 . udp . 53 → goto lb4-r-1",
    "svc4: lb2 . 10.96.0.10 . tcp . 80 → goto lb4-r-2",
    "svc4: lb2 . 10.96.0.10 . udp . 53 → goto lb4-r-1",
    "vips4: 10.96.0.10",
  ]);
});

t("ClientIP affinity picks by client address; an IPv6 ClusterIP uses the endpoints' IPv6 addresses only", () => {
  const s = text(state({ ...base, clusterIPs: ["fd00:96::10"], sessionAffinity: "ClientIP", sources: ["red"] }));
  assert.ok(s.includes("svc6: lb1 . fd00:96::10 . tcp . 80 → goto lb6-a-1"), s.join("\n"));
  assert.ok(s.includes("ep6: fd00:96::10 . tcp . 80 . 0 → fd00:1:0:1::5 . 8080"));
  assert.not.ok(s.some((x) => x.includes("udp")), "no endpoint has both an IPv6 address and port 53");
});

t("a Service with no endpoints or no source here has only its ClusterIP (dropped); too many endpoints are cut and reported", () => {
  assert.equal(text(state({ ...base, endpoints: [] })), ["vips4: 10.96.0.10"]);
  assert.equal(text(state({ ...base, sources: ["elsewhere"] })), []);
  const many = Array.from({ length: MAX_SERVICE_ENDPOINTS + 3 }, (_, i) => ({ pod: `shop/p-${i}`, node: "node-2", addresses: [`10.1.2.${i % 250}`], ports: [80, 53] }));
  const plan = planServices(state({ ...base, endpoints: many }));
  assert.equal(plan.truncated, [`shop/api 80/TCP: ${MAX_SERVICE_ENDPOINTS + 3} endpoints`, `shop/api 53/UDP: ${MAX_SERVICE_ENDPOINTS + 3} endpoints`]);
  const svc = plan.services.find((p) => p.id === "shop/api")!;
  assert.is(svc.elements.get(`svc4|lb1 . 10.96.0.10 . tcp . 80`)!.value, `goto lb4-r-${MAX_SERVICE_ENDPOINTS}`);
});

t("an element read back decodes to the text it was planned as, in every set and both families", () => {
  const all = [...elements(state({ ...base, clusterIPs: ["10.96.0.10", "fd00:96::10"] })).values()];
  assert.equal(new Set(all.map((e) => e.set)), new Set(["svc4", "svc6", "ep4", "ep6", "vips4", "vips6", "hairpin4", "hairpin6"]));
  for (const e of all) {
    const wire = encodeElement(e, true);
    assert.equal(decodeElement(e.set, wire), e);
  }
});

t("an unchanged Service object is planned once per node context", () => {
  const s = state(base);
  const first = planServices(s).services.find((p) => p.id === "shop/api");
  assert.is(planServices(s).services.find((p) => p.id === "shop/api"), first, "same object, same networks: the same plan");
  assert.is.not(planServices({ ...s, node: "node-2" }).services.find((p) => p.id === "shop/api"), first, "another node: planned again");
  assert.is.not(planServices(state({ ...base })).services.find((p) => p.id === "shop/api"), first, "a new Service object: planned again");
});

t("the table has the base chains, and those it is asked for", () => {
  const base = renderServiceTable();
  for (const c of ["lb4-r-1", "lb4-r-32", "lb6-a-8"]) assert.ok(base.includes(`chain ${c} {`), c);
  assert.ok(base.includes("chain lb4-a-32 {"));
  assert.not.ok(base.includes("chain lb4-r-33 "));
  const more = renderServiceTable(["lb4-a-3", `lb6-r-${MAX_SERVICE_ENDPOINTS}`]);
  assert.ok(more.includes("chain lb4-a-3 { meta l4proto tcp dnat ip to ip daddr . meta l4proto . tcp dport . jhash ip saddr mod 3 map @ep4; meta l4proto udp dnat ip to ip daddr . meta l4proto . udp dport . jhash ip saddr mod 3 map @ep4; }"));
  assert.ok(more.includes(`chain lb6-r-${MAX_SERVICE_ENDPOINTS} {`));
});

t("a chain the loaded table lacks is added to it, a rule per protocol", () => {
  assert.is(renderAddLbChains(["lb6-r-40"]), [
    "add chain inet lace_svc lb6-r-40",
    "add rule inet lace_svc lb6-r-40 meta l4proto tcp dnat ip6 to ip6 daddr . meta l4proto . tcp dport . numgen random mod 40 map @ep6",
    "add rule inet lace_svc lb6-r-40 meta l4proto udp dnat ip6 to ip6 daddr . meta l4proto . udp dport . numgen random mod 40 map @ep6",
    "",
  ].join("\n"));
  assert.throws(() => renderAddLbChains(["lb5-r-1"]), /Invalid load-balancing chain name "lb5-r-1"/);
});

t("the UDP endpoints a change removes are those gone from a port, not those that moved to another index; never TCP ones", () => {
  const ep = (n: number) => ({ pod: `shop/api-${n}`, node: "node-2", addresses: [`10.1.2.${n}`, `fd00:1:0:2::${n}`], ports: [8080, 5353] });
  const svc = { ...base, clusterIPs: ["10.96.0.10", "fd00:96::10"], endpoints: [ep(1), ep(2), ep(3)] };
  // As ServiceTable.apply has them: the old elements whose key went or whose value changed, and the elements now written.
  const change = (before: ServiceForwarding, after: ServiceForwarding) => {
    const old = elements(state(before));
    const now = elements(state(after));
    const removed = [...old].filter(([k, e]) => now.get(k)?.value !== e.value).map(([, e]) => e);
    return removedUdpEndpoints(removed, new Map([...now].map(([k, e]) => [k, { e }])));
  };
  // api-1 goes: api-2 and api-3 move down one index each (their old elements are removed too).
  assert.equal(change(svc, { ...svc, endpoints: [ep(2), ep(3)] }), [
    { clusterIP: "10.96.0.10", port: 53, endpoint: "10.1.2.1" },
    { clusterIP: "fd00:96::10", port: 53, endpoint: "fd00:1:0:2::1" },
  ]);
  assert.equal(change(svc, { ...svc, endpoints: [ep(1), ep(2)] }).map((r) => r.endpoint), ["10.1.2.3", "fd00:1:0:2::3"], "the last one");
  assert.equal(change(svc, { ...svc, ports: [svc.ports[0]], endpoints: [ep(1), ep(2), ep(3)].map((e) => ({ ...e, ports: [8080] })) }).length, 6, "the UDP port goes: all of its endpoints");
  assert.equal(change(svc, { ...svc, endpoints: [ep(1), ep(2), { ...ep(3), ports: [8080, 0] }] }).map((r) => r.endpoint), ["10.1.2.3", "fd00:1:0:2::3"], "an endpoint that no longer serves the port");
  assert.equal(change({ ...svc, ports: [svc.ports[0]] }, { ...svc, ports: [svc.ports[0]], endpoints: [ep(2)] }), [], "TCP only: nothing");
  assert.equal(change(svc, { ...svc, endpoints: [ep(3), ep(2), ep(1)] }), [], "reordered: nothing");
});

t.run();
