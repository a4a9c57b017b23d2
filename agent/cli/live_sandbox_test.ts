/**
 * `lace status` and live `lace explain` against a running sandbox (`lace
 * sandbox --keep`, bpf backend: two nodes, real agents, real datapaths):
 * the status names every node's backend and readiness; explain shows the
 * path a packet takes (node, interface, SID, destination node) beside what
 * the source node's datapath holds, read back by its agent (table route,
 * bpf encap map entry, nft drop of a reply-only path, the l2 neighbour and
 * FDB maps of a bridged network); a route removed behind the agent's back
 * shows as a disagreement. The same run draws the matrix (`--svg`) and the
 * live graph.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const t = suite("lace status and live explain (sandbox)");
const root = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const isRoot = process.getuid?.() === 0;
const prefix = `lv${process.pid.toString(36)}-`;
const socket = `/run/lace-sandbox-${prefix.replace(/-$/, "")}/api.sock`;

function lace(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, ["--import", "tsx", join(root, "agent/cli/main.ts"), ...args], { cwd: root, env: { ...process.env, HOME: "/tmp" } });
    let stdout = "", stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    p.on("close", (status) => done({ status, stdout, stderr }));
  });
}

interface Explained {
  decision: string;
  path: {
    source: { node: string; interface: string };
    backend: string;
    desired: { verdict: string; via: string; toNode?: string; sid?: string; mac?: string };
    dataplane?: { verdict: string; via?: string; sid?: string; entries: { kind: string; text: string }[] };
    dataplaneError?: string;
    agreement: { agree: boolean; text: string };
  };
}

const explain = async (from: string, to: string): Promise<Explained> => {
  const r = await lace(["explain", "--store-socket", socket, "--from", from, "--to", to, "--json"]);
  assert.is(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Explained;
};

(isRoot ? t : t.skip)("status and live explain read the kept sandbox; a route removed from a node's table shows as a disagreement", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lace-live-sb-"));
  // No resync: the checks below change a node's datapath behind its agent's back, which a resync would repair.
  const up = await lace(["sandbox", "-f", "agent/cli/testdata/sandbox/live.yaml", "--nodes", "2", "--backend", "bpf", "--agent-resync", "0", "--keep", "--json", "--svg", join(dir, "matrix.svg"), "--prefix", prefix]);
  try {
    assert.is(up.status, 0, up.stderr);
    const pods = (JSON.parse(up.stdout.trim().split("\n").pop()!) as { pods: { name: string; addresses: string[] }[] }).pods;
    const addr = (name: string) => pods.find((p) => p.name === name)!.addresses[0];

    const st = await lace(["status", "--store-socket", socket, "--json"]);
    assert.is(st.status, 0, st.stderr);
    const status = JSON.parse(st.stdout) as { networks: { name: string; usage?: { allocated: number }; pods: { pod: string }[] }[]; nodes: { name: string; backend?: string; ready?: boolean; locator?: string; pods: number }[] };
    assert.equal(status.nodes.map((n) => [n.name, n.backend, n.ready, n.pods]), [["node-1", "bpf", true, 3], ["node-2", "bpf", true, 3]]);
    assert.ok(status.nodes.every((n) => n.locator?.startsWith("fd00:1ace:")));
    assert.equal(status.networks.find((n) => n.name === "green")!.pods.map((p) => p.pod), ["default/g-1", "default/g-2", "default/g-3"]);
    const text = await lace(["status", "--store-socket", socket]);
    assert.match(text.stdout, /^node-1\s+fd00:1ace:\S+\s+bpf\s+yes \(revision \d+\)\s+3$/m);

    // The matrix as a grid, every cell as expected, and the live graph.
    const svg = readFileSync(join(dir, "matrix.svg"), "utf8");
    assert.ok([...svg.matchAll(/<g class="cell (allow|deny)"/g)].length > 30, "the grid has a cell per tested pair");
    assert.not.match(svg, /class="cell mismatch"/);
    const graph = await lace(["graph", "--store-socket", socket, "--json"]);
    assert.is(graph.status, 0, graph.stderr);
    assert.equal((JSON.parse(graph.stdout) as { edges: { from: string; to: string; kind: string }[] }).edges.map((e) => `${e.from}>${e.to}:${e.kind}`).sort(),
      ["green>red:allow", "green>wan:allow", "red>green:reply", "wan>green:reply"]);

    // Bridged: the neighbour map gives f-2's MAC, the FDB node-2's SID.
    const l2 = await explain("default/f-1", "default/f-2");
    assert.equal([l2.decision, l2.path.desired.via, l2.path.desired.toNode, l2.path.dataplane?.verdict, l2.path.dataplane?.sid], ["allow", "sid", "node-2", "allow", l2.path.desired.sid]);
    assert.ok(l2.path.dataplane!.entries.some((e) => e.text.startsWith("lace_l2_nbrs[") && e.text.endsWith(`= MAC ${l2.path.desired.mac}`)), JSON.stringify(l2.path.dataplane));
    assert.ok(l2.path.dataplane!.entries.some((e) => e.text.startsWith("lace_l2_fdb[") && e.text.endsWith(`= SID ${l2.path.desired.sid}`)), JSON.stringify(l2.path.dataplane));

    // Across nodes: encapsulated by the bpf program to node-2's SID.
    const across = await explain("default/g-1", "default/g-2");
    assert.equal([across.decision, across.path.source.node, across.path.desired.via, across.path.desired.toNode, across.path.backend], ["allow", "node-1", "sid", "node-2", "bpf"]);
    assert.ok(across.path.source.interface, "the source interface is named");
    assert.equal([across.path.dataplane?.verdict, across.path.dataplane?.sid], ["allow", across.path.desired.sid]);
    assert.ok(across.path.dataplane!.entries.some((e) => e.kind === "map" && e.text.startsWith(`lace_encap4[net `) && e.text.includes(`= SID ${across.path.desired.sid}`)), JSON.stringify(across.path.dataplane));
    assert.ok(across.path.agreement.agree, across.path.agreement.text);

    // On one node: delivered there, through the network's bridge.
    const same = await explain("default/g-1", "default/g-3");
    assert.equal([same.decision, same.path.desired.via, same.path.desired.toNode, same.path.dataplane?.verdict, same.path.dataplane?.via], ["allow", "local", "node-1", "allow", "local"]);

    // Reply-only: red may answer green, not open connections to it; the datapath drops new ones with nft.
    const back = await explain("default/r-1", addr("g-1"));
    assert.equal([back.decision, back.path.desired.verdict, back.path.dataplane?.verdict], ["deny", "reply-only", "reply-only"]);
    assert.ok(back.path.dataplane!.entries.some((e) => e.kind === "nft" && /ct state new drop/.test(e.text)), JSON.stringify(back.path.dataplane));
    assert.ok(back.path.agreement.agree, back.path.agreement.text);

    // To the external network: out of the underlay.
    const out = await explain("default/g-2", "192.0.2.1");
    assert.equal([out.decision, out.path.desired.via, out.path.dataplane?.verdict, out.path.dataplane?.via], ["allow", "underlay", "allow", "underlay"]);

    // A Service as the destination, by name or ClusterIP: its recorded network (red), its endpoint, and the path of a
    // connection translated to that endpoint (r-1 on node-2).
    type ServiceExplained = Explained & {
      to: { network: string; service: { endpoints: string[]; clusterIPs: string[] } };
      serviceTable: { node: string; trace?: { verdict: string; entries: { kind: string; text: string }[] }; agreement: { agree: boolean; text: string } };
    };
    const svc = await explain("default/g-1", "svc/default/reds") as ServiceExplained;
    assert.equal([svc.decision, svc.to.network, svc.to.service.endpoints, svc.to.service.clusterIPs], ["allow", "red", ["default/r-1"], ["10.96.0.45"]]);
    assert.equal([svc.path.desired.via, svc.path.desired.toNode, svc.path.dataplane?.verdict], ["sid", "node-2", "allow"]);
    assert.ok(svc.path.agreement.agree, svc.path.agreement.text);
    // node-1's service table, read back: the ClusterIP is translated for green's bridge, to r-1.
    assert.equal([svc.serviceTable.node, svc.serviceTable.trace?.verdict, svc.serviceTable.agreement.agree], ["node-1", "allow", true], JSON.stringify(svc.serviceTable));
    const svcEntry = svc.serviceTable.trace!.entries.find((e) => e.text.startsWith("svc4["))!.text; // "svc4[lb2 . 10.96.0.45 . tcp . 80] = goto lb4-r-1"
    assert.match(svcEntry, /^svc4\[lb\d+ \. 10\.96\.0\.45 \. tcp \. 80\] = goto lb4-r-1$/);
    assert.ok(svc.serviceTable.trace!.entries.some((e) => e.text === `ep4[10.96.0.45 . tcp . 80 . 0] = ${addr("r-1")} . 8080`), JSON.stringify(svc.serviceTable.trace));
    const denied = await explain("default/f-1", "svc/default/reds") as ServiceExplained;
    assert.equal([denied.decision, denied.serviceTable.trace?.verdict, denied.serviceTable.agreement.agree], ["deny", "deny", true], JSON.stringify(denied.serviceTable));
    // Behind the agent's back, node-1 stops translating the ClusterIP for green: the service table now disagrees.
    const bridge = /^svc4\[(lb\d+) /.exec(svcEntry)![1];
    const delSvc = spawnSync("ip", ["netns", "exec", `${prefix}node-1`, "nft", "delete", "element", "inet", "lace_svc", "svc4", `{ "${bridge}" . 10.96.0.45 . tcp . 80 }`]);
    assert.is(delSvc.status, 0, String(delSvc.stderr));
    const drifted = await explain("default/g-1", "svc/default/reds") as ServiceExplained;
    assert.equal([drifted.serviceTable.trace?.verdict, drifted.serviceTable.agreement.agree], ["deny", false]);
    assert.match(drifted.serviceTable.agreement.text, /^DISAGREE: the decision is allow, but the service table of node-1 does not translate 10\.96\.0\.45 for network green$/);
    const byIp = await explain("default/g-2", "10.96.0.45") as Explained & { to: { service: { endpoints: string[] } } };
    assert.equal([byIp.decision, byIp.to.service.endpoints], ["allow", ["default/r-1"]]);
    assert.is((await explain("default/f-1", "svc/default/reds")).decision, "deny", "flat may not reach red");
    const svcText = await lace(["explain", "--store-socket", socket, "--from", "default/g-1", "--to", "svc/default/reds"]);
    assert.match(svcText.stdout, /^to: {3}service default\/reds \(ClusterIP 10\.96\.0\.45\)/m);
    assert.match(svcText.stdout, /^service table on node-1 \(10\.96\.0\.45\): DENY: 10\.96\.0\.45 is not translated for packets from lb\d+/m);
    assert.match(svcText.stdout, /^\(the path of a connection translated to endpoint default\/r-1, 10\.47\.\d+\.\d+\)$/m);
    const none = await lace(["explain", "--store-socket", socket, "--from", "default/g-1", "--to", "svc/default/nope"]);
    assert.is(none.status, 1);
    assert.match(none.stderr, /no Service default\/nope in the store: expected one of svc\/default\/reds/);

    // Behind the agent's back, node-1 loses its route to g-2's block: the datapath now disagrees.
    const route = across.path.dataplane!.entries.find((e) => e.kind === "route")!.text; // "table 1001: 10.45.1.0/24 …"
    const [, table, dst] = /^table (\d+): (\S+)/.exec(route)!;
    const del = spawnSync("ip", ["-n", `${prefix}node-1`, "route", "del", dst, "table", table]);
    assert.is(del.status, 0, String(del.stderr));
    const broken = await lace(["explain", "--store-socket", socket, "--from", "default/g-1", "--to", "default/g-2"]);
    assert.is(broken.status, 0, broken.stderr);
    // The network's own /16 on the bridge still matches: the datapath would deliver on node-1 what lives on node-2.
    assert.match(broken.stdout, /^datapath on node-1 \(bpf backend\): ALLOW via this node$/m);
    assert.match(broken.stdout, new RegExp(`^agreement: DISAGREE: the node's desired state sends it via SID ${across.path.desired.sid}, but the datapath of node-1 via this node$`, "m"));
  } finally {
    await lace(["sandbox", "down", "--prefix", prefix]);
    rmSync(dir, { recursive: true, force: true });
  }
});

t.run();
