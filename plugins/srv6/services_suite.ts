/**
 * ClusterIP load-balancing with real packets, on one backend: two nodes of
 * network namespaces, pods of two networks, a Service whose endpoints are
 * a pod on the client's own bridge (hairpin) and a pod on the other node.
 * Desired states are built by hand (the core's part is tested in
 * core/controller/services_test.ts). Needs root (skipped otherwise).
 * Run per backend by services_bpf_test.ts and services_kernel_test.ts.
 */
import * as assert from "uvu/assert";
import type { NodeDesiredState, ServiceForwarding } from "../../core/mod.ts";
import { Srv6Dataplane } from "./dataplane.ts";
import type { Backend } from "./plan.ts";
import { backendSuite, inNs, podMtu, TestCluster, type TestNetwork, type TestPod } from "./testing.ts";
import { readConntrack } from "./conntrack.ts";
import { NetlinkClient } from "./netlink.ts";
import { NETLINK_NETFILTER } from "./nfsets.ts";
import { answers, startNameServer, udpStream, waitListening } from "./probes.ts";
import { AF } from "./wire.ts";

export function servicesSuite(backend: Backend): void {
  const { t, test, runs } = backendSuite("srv6 services", backend);

  const red: TestNetwork = { name: "red", id: 1, v4: 1, v6: 1 };
  const blue: TestNetwork = { name: "blue", id: 2, v4: 2, v6: 2 };
  const networks = [red, blue];
  const pods: TestPod[] = [
    { name: "ra", node: 1, network: "red", host: 10 },
    { name: "re", node: 1, network: "red", host: 50 },
    { name: "rb", node: 2, network: "red", host: 20 },
    { name: "rc", node: 2, network: "red", host: 30 },
    { name: "ba", node: 1, network: "blue", host: 10 },
    { name: "bb", node: 2, network: "blue", host: 20 },
  ];
  const VIP4 = "10.96.0.10";
  const VIP6 = "fd00:96::10";
  const cluster = new TestCluster(2);
  const dps: Srv6Dataplane[] = [];
  let paths: { from: string; to: string }[] = [];
  const ns = (pod: string) => cluster.podNs(pod);
  const addr = (pod: string) => {
    const p = pods.find((x) => x.name === pod)!;
    return cluster.podAddresses(p, networks.find((n) => n.name === p.network)!).addresses.map((a) => a.split("/")[0]);
  };
  const endpoint = (pod: string) => ({ pod: `default/${pod}`, node: `node-${pods.find((x) => x.name === pod)!.node}`, addresses: addr(pod), ports: [8080, 8080] });
  let service: ServiceForwarding = {
    id: "default/api", network: "red", clusterIPs: [VIP4, VIP6], sessionAffinity: "None",
    ports: [{ protocol: "TCP", port: 80 }, { protocol: "UDP", port: 53 }],
    sources: ["red"], endpoints: [endpoint("re"), endpoint("rb")],
  };
  const state = (n: number): NodeDesiredState => ({ ...cluster.desiredState(n, networks, pods, paths), services: [service] });
  const applyAll = async () => {
    for (let n = 1; n <= 2; n++) await dps[n - 1].apply(state(n));
  };
  const names = (list: string[]) => [...new Set(list)].sort();
  /** Polls `probe` every 10 ms until it returns something; fails with `why` after `ms`. */
  const until = async <T>(probe: () => T | undefined, ms: number, why: string): Promise<T> => {
    for (const end = performance.now() + ms; ;) {
      const v = probe();
      if (v !== undefined) return v;
      if (performance.now() > end) throw new Error(why);
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  process.on("exit", () => cluster.destroy());

  t.before(async () => {
    if (!runs) return;
    cluster.create();
    for (let n = 1; n <= 2; n++) {
      dps.push(await Srv6Dataplane.open({ node: `node-${n}`, netns: cluster.node(n), backend, bpffs: backend === "bpf" ? cluster.bpffs() : undefined }));
      await dps[n - 1].apply(state(n));
    }
    for (const p of pods) {
      const net = networks.find((x) => x.name === p.network)!;
      await dps[p.node - 1].attachPod({
        netns: cluster.addPodNs(p.name), ifname: "eth0", hostIfname: `h-${p.name}`, network: p.network,
        ...cluster.podAddresses(p, net), mtu: podMtu(1500, "Reduced"),
      });
    }
    // As the agent does: the state is applied again once the pods exist (their host routes wait for their ports).
    await applyAll();
    for (const p of ["re", "rb", "ba", "bb"]) {
      for (const a of addr(p)) startNameServer(cluster, ns(p), a, 8080, p);
    }
    await Promise.all(["re", "rb", "ba", "bb"].flatMap((p) => addr(p).map((a) => waitListening(ns(p), a, 8080))));
  });

  t.after(async () => {
    if (!runs) return;
    for (const dp of dps) await dp.close();
    cluster.destroy();
  });

  test("a ClusterIP connection goes to one of the endpoints, on the client's own bridge or another node, TCP and UDP, both families", async () => {
    assert.equal(names(await answers(ns("ra"), VIP4, 80, 16)), ["rb", "re"], "TCP over IPv4 spreads over both endpoints");
    assert.equal(names(await answers(ns("ra"), VIP6, 80, 16)), ["rb", "re"], "TCP over IPv6");
    assert.equal(names(await answers(ns("ra"), VIP4, 53, 16, "udp")), ["rb", "re"], "UDP over IPv4");
    // A client on the other node: there the endpoint on its own bridge is rb, the remote one re.
    assert.equal(names(await answers(ns("rc"), VIP4, 80, 16)), ["rb", "re"], "from node 2");
    assert.equal(names(await answers(ns("rb"), VIP4, 80, 16)), ["rb", "re"], "an endpoint reaches itself through the ClusterIP");
  });

  test("a port the Service does not have, and a network that may not reach the Service's, are dropped", async () => {
    const [other, blueToRed, control] = await Promise.all([
      answers(ns("ra"), VIP4, 81, 2),
      answers(ns("ba"), VIP4, 80, 2),
      answers(ns("ra"), VIP4, 80, 2),
    ]);
    assert.equal(other, ["", ""], "port 81 is not the Service's");
    assert.equal(blueToRed, ["", ""], "blue has no path to red");
    assert.ok(control.every((x) => x === "re" || x === "rb"), `red's pod reaches the Service meanwhile: ${control}`);
  });

  test("a routing policy from another network opens the Service to it, across networks and nodes", async () => {
    paths = [{ from: "blue", to: "red" }];
    service = { ...service, sources: ["blue", "red"] };
    await applyAll();
    assert.equal(names(await answers(ns("ba"), VIP4, 80, 16)), ["rb", "re"], "blue → red's Service over IPv4");
    assert.equal(names(await answers(ns("bb"), VIP6, 80, 16)), ["rb", "re"], "blue on node 2 over IPv6");
    paths = [];
    service = { ...service, sources: ["red"] };
    await applyAll();
    assert.equal(await answers(ns("ba"), VIP4, 80, 2), ["", ""], "closed again");
  });

  test("a removed endpoint gets no new connections within a second; ClientIP affinity keeps a client on one endpoint", async () => {
    service = { ...service, endpoints: [endpoint("re")] };
    const t0 = performance.now();
    await applyAll();
    const took = performance.now() - t0;
    assert.ok(took < 1000, `applied in ${took.toFixed(0)} ms`);
    assert.equal(names(await answers(ns("ra"), VIP4, 80, 12)), ["re"], "only re answers once rb is removed");
    service = { ...service, endpoints: [endpoint("re"), endpoint("rb")], sessionAffinity: "ClientIP" };
    await applyAll();
    const sticky = await answers(ns("ra"), VIP4, 80, 12);
    assert.is(names(sticky).length, 1, `one endpoint for one client: ${sticky}`);
    assert.ok(sticky[0] === "re" || sticky[0] === "rb");
    service = { ...service, sessionAffinity: "None" };
    await applyAll();
    assert.equal(names(await answers(ns("ra"), VIP4, 80, 16)), ["rb", "re"], "random again");
  });

  test("a UDP client that keeps sending from one port is answered by another endpoint within a second of its endpoint's removal", async () => {
    const nf = NetlinkClient.open(`/run/netns/${cluster.node(1)}`, cluster.node(1), NETLINK_NETFILTER);
    const saved = service;
    try {
      for (const vip of [VIP4, VIP6]) {
        const family = vip.includes(":") ? AF.INET6 : AF.INET;
        const client = udpStream(cluster, ns("ra"), vip, 53);
        try {
          const first = await until(() => client.answers.find((a) => a.from !== "")?.from, 3000, `no answer from ${vip}`);
          // Its conntrack entry keeps it there: answered by the same endpoint over and over.
          await until(() => client.answers.filter((a) => a.from === first).length >= 5 || undefined, 3000, `${first} answered fewer than 5 times`);
          assert.equal(names(client.answers.map((a) => a.from)), [first], `one endpoint for one source port over ${vip}`);
          const entries = await readConntrack(nf, family, { proto: 17, dst: vip, dport: 53 });
          assert.ok(entries.some((e) => e.reply.src === addr(first).find((a) => a.includes(":") === (family === AF.INET6))), `node 1 has the entry to ${first}`);

          service = { ...saved, endpoints: saved.endpoints.filter((e) => e.pod !== `default/${first}`) };
          const t0 = performance.now();
          await applyAll();
          const applied = performance.now() - t0;
          const other = await until(() => client.answers.find((a) => a.at > t0 && a.from !== "" && a.from !== first), 1000, `${vip}: still answered by ${first} a second after its removal`);
          console.log(`  ${vip}: apply ${applied.toFixed(1)} ms, answered by ${other.from} ${(other.at - t0).toFixed(0)} ms after the apply began`);
          const later = () => client.answers.filter((a) => a.at > other.at && a.from !== "").map((a) => a.from);
          await until(() => later().length >= 5 || undefined, 2000, "fewer than 5 answers after the move");
          assert.equal(names(later()), [other.from], `only ${other.from} after the move: ${later()}`);
        } finally {
          client.stop();
          service = saved;
          await applyAll();
        }
      }
    } finally {
      nf.close();
    }
  });

  test("without br_netfilter a pod reaches an endpoint on its own bridge, itself included, through the hairpin source NAT", async () => {
    // With bridge-nf-call-iptables (the default here), a connection translated to a pod on the client's own bridge is
    // bridged and its answer translated at the bridge; without it, the answer would skip the node unless the source
    // is translated too. Set in node 1's namespace only.
    const set = (v: string) => inNs(cluster.node(1), ["sysctl", "-qw", `net.bridge.bridge-nf-call-iptables=${v}`, `net.bridge.bridge-nf-call-ip6tables=${v}`]);
    const saved = service;
    service = { ...service, endpoints: [endpoint("re")] };
    await applyAll();
    try {
      set("0");
      assert.equal(names(await answers(ns("ra"), VIP4, 80, 4)), ["re"], "ra → re over IPv4");
      assert.equal(names(await answers(ns("ra"), VIP6, 80, 4)), ["re"], "ra → re over IPv6");
      assert.equal(names(await answers(ns("re"), VIP4, 80, 4)), ["re"], "re → itself");
    } finally {
      set("1");
      service = saved;
      await applyAll();
    }
  });

  test("a state whose Services alone changed writes the Services' table alone; the same state again is reconciled in full, the service table counted", async () => {
    // A route of ours removed behind the dataplane's back shows which applies read the kernel back.
    const route = () => inNs(cluster.node(1), ["ip", "-4", "route", "show", "table", "all", `${addr("ra")[0]}/32`]).out.trim();
    await applyAll();
    const had = route();
    assert.ok(had.length > 0, "ra has a host route on node 1");
    inNs(cluster.node(1), ["sh", "-c", `ip -4 route show table all ${addr("ra")[0]}/32 | while read r; do ip route del $r; done`]);
    assert.is(route(), "", "removed behind the dataplane's back");
    const saved = service;
    try {
      service = { ...service, endpoints: [endpoint("rb")] };
      await applyAll();
      assert.equal(names(await answers(ns("rc"), VIP4, 80, 8)), ["rb"], "the Service changed");
      assert.is(route(), "", "a Services-only apply did not read routes back");
      await applyAll();
      assert.is(route(), had, "the same state again: reconciled in full, the route is back");
      // The service table too: an element removed behind the dataplane's back is back after the same state again.
      const bridge = /^\s*"?(lb\d+)"? \. 10\.96\.0\.10 \. tcp \. 80 :/m.exec(inNs(cluster.node(1), ["sh", "-c", "nft list map inet lace_svc svc4 | tr ',{}' '\\n\\n\\n'"]).out)?.[1];
      assert.ok(bridge, "node 1 translates the ClusterIP for red's bridge");
      assert.is(inNs(cluster.node(1), ["nft", "delete", "element", "inet", "lace_svc", "svc4", `{ "${bridge}" . ${VIP4} . tcp . 80 }`]).status, 0);
      assert.equal(await answers(ns("ra"), VIP4, 80, 1), [""], "not translated any more: dropped");
      await applyAll();
      assert.equal(names(await answers(ns("ra"), VIP4, 80, 4)), ["rb"], "the same state again: the table counted, loaded afresh, translating again");
    } finally {
      service = saved;
      await applyAll();
    }
  });

  test("a Service with more endpoints than the table's first chains gets its chain added to the loaded table, the other Services' elements kept", async () => {
    // 40 endpoint entries (re and rb, 20 times each under other pod names): the chain lb4-r-40 is not among the first 32.
    const saved = service;
    const other: ServiceForwarding = { ...service, id: "default/other", clusterIPs: ["10.96.0.11"], ports: [{ protocol: "TCP", port: 81 }], endpoints: [endpoint("rb")] };
    const many = Array.from({ length: 40 }, (_, i) => ({ ...endpoint(i % 2 ? "rb" : "re"), pod: `default/copy-${i}` }));
    const withOther = (n: number): NodeDesiredState => ({ ...state(n), services: [other, service] });
    try {
      for (let n = 1; n <= 2; n++) await dps[n - 1].apply(withOther(n));
      const handle = () => inNs(cluster.node(1), ["sh", "-c", "nft -a list table inet lace_svc | head -1 | grep -o 'handle [0-9]*'"]).out.trim();
      const before = handle();
      assert.is(inNs(cluster.node(1), ["nft", "list", "chain", "inet", "lace_svc", "lb4-r-40"]).status, 1, "no such chain yet");
      service = { ...service, endpoints: many };
      for (let n = 1; n <= 2; n++) await dps[n - 1].apply(withOther(n));
      assert.is(inNs(cluster.node(1), ["nft", "list", "chain", "inet", "lace_svc", "lb4-r-40"]).status, 0, "the chain was added");
      assert.ok(before !== "" && handle() === before, `the same table (${before}): not loaded afresh`);
      assert.equal(names(await answers(ns("ra"), VIP4, 80, 16)), ["rb", "re"], "spread over the 40");
      assert.equal(names(await answers(ns("ra"), "10.96.0.11", 81, 2)), ["rb"], "the other Service still forwards");
    } finally {
      service = saved;
      await applyAll();
    }
  });

  test("without Services the table is gone", async () => {
    const saved = service;
    service = { ...service, endpoints: [] };
    await applyAll();
    assert.equal(await answers(ns("ra"), VIP4, 80, 1), [""], "no endpoints: dropped");
    for (let n = 1; n <= 2; n++) await dps[n - 1].apply({ ...cluster.desiredState(n, networks, pods, paths) });
    assert.is(inNs(cluster.node(1), ["nft", "list", "table", "inet", "lace_svc"]).status, 1, "no table without Services");
    service = saved;
    await applyAll();
    assert.equal(names(await answers(ns("ra"), VIP4, 80, 16)), ["rb", "re"], "back after a fresh load");
  });

  t.run();
}
