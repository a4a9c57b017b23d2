/**
 * `npm run bench cni`: CNI ADD, CHECK and DEL latency, p50/p90/p99 over 100
 * pods, through the real `lace-cni` executable (dist/lace-cni, compiled
 * first when missing) and a lace agent on a one-node sandbox; in the same run
 * and the same namespace setup, the reference `bridge` + `host-local` plugins
 * from Debian's containernetworking-plugins (/usr/lib/cni). CHECK carries
 * the ADD's result as `prevResult`, as a runtime does.
 *
 * Both plugins are started the same way, through `nsenter --net=<node
 * namespace>` (bridge must run in the node's namespace; lace-cni does not
 * care where it runs), one invocation at a time, alternating per pod so
 * machine noise hits both alike. Each call is timed from spawn to exit:
 * what a runtime waits for. Needs root.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { cniExecutable } from "../agent/cni/executable.ts";
import { join } from "node:path";
import { percentile, target } from "./_report.ts";
import { Sandbox } from "../agent/sandbox/sandbox.ts";
import { ROOT } from "../agent/sandbox/processes.ts";
import type { Resource } from "../core/mod.ts";

const PODS = 100;
const REF_DIR = "/usr/lib/cni";

if (process.getuid?.() !== 0) {
  console.error("bench cni needs root: it creates network namespaces");
  process.exit(2);
}
if (!existsSync(join(REF_DIR, "bridge")) || !existsSync(join(REF_DIR, "host-local"))) {
  console.error(`bench cni needs the reference plugins in ${REF_DIR}: apt-get install -y containernetworking-plugins`);
  process.exit(2);
}
const exe = cniExecutable(ROOT);

function invoke(argv: string[], env: Record<string, string>, stdin: string): Promise<{ ms: number; status: number; out: string }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const p = spawn(argv[0], argv.slice(1), { env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (out += d));
    p.on("close", (status) => resolve({ ms: performance.now() - t0, status: status ?? 1, out }));
    p.stdin.on("error", () => undefined);
    p.stdin.end(stdin);
  });
}

const prefix = `hb${process.pid.toString(36)}-`;
const sb = await Sandbox.up({ nodes: 1, prefix, progress: (l) => console.log(`  ${l}`) });
const nodeNs = `/run/netns/${sb.nodeNs("node-1")}`;
const ipamDir = join(sb.dir, "host-local");
mkdirSync(ipamDir, { recursive: true });
type Cmd = "ADD" | "CHECK" | "DEL";
const results: Record<"lace" | "ref", Record<Cmd, number[]>> = { lace: { ADD: [], CHECK: [], DEL: [] }, ref: { ADD: [], CHECK: [], DEL: [] } };
try {
  const objects: Resource[] = [
    { apiVersion: "lace-cni.io/v1alpha1", kind: "Topology", metadata: { name: "default" }, spec: { locatorPool: "fd00:1ace::/32", locatorLength: 48 } },
    { apiVersion: "lace-cni.io/v1alpha1", kind: "Network", metadata: { name: "bench" }, spec: { type: "l3", ipv4Subnet: { prefix: "10.80.0.0/16", hostLocalPrefixLength: 24 } } },
    { apiVersion: "lace-cni.io/v1alpha1", kind: "NetworkBindingPolicy", metadata: { name: "bench" }, spec: { network: "bench", priority: 1, matchKind: "Pod" } },
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "bench" } },
  ];
  await sb.apply(objects);
  await sb.waitForAgents();
  const pods: { name: string; uid: string; lace: string; ref: string }[] = [];
  for (let i = 0; i < PODS; i++) {
    const name = `p${i}`;
    const pod = await sb.store.create<Resource>({ apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "bench" }, spec: { nodeName: "node-1" } });
    const lace = sb.podNs("bench", name);
    const ref = sb.podNs("ref", name);
    execFileSync("ip", ["netns", "add", lace]);
    execFileSync("ip", ["netns", "add", ref]);
    pods.push({ name, uid: pod.metadata.uid ?? "", lace, ref });
  }
  const laceConf = { cniVersion: "1.0.0", name: "lace", type: "lace-cni", agentSocket: sb.cniSocket("node-1") };
  const refConf = {
    cniVersion: "1.0.0", name: "ref", type: "bridge", bridge: "cniref0", isGateway: true, ipMasq: false,
    ipam: { type: "host-local", subnet: "10.99.0.0/16", dataDir: ipamDir },
  };
  // What each ADD returned, for the CHECK that follows (the runtime's prevResult).
  const prev = new Map<string, unknown>();
  const confFor = (base: Record<string, unknown>, cmd: Cmd, key: string) =>
    JSON.stringify(cmd === "CHECK" ? { ...base, prevResult: prev.get(key) } : base);
  const nsenter = ["nsenter", `--net=${nodeNs}`];
  const env = (cmd: string, p: { name: string; uid: string }, netns: string, ns: string) => ({
    PATH: process.env.PATH ?? "/usr/bin:/bin", CNI_COMMAND: cmd, CNI_CONTAINERID: `bench${p.name}${ns}`, CNI_NETNS: `/run/netns/${netns}`,
    CNI_IFNAME: "eth0", CNI_PATH: REF_DIR, CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=${p.name};K8S_POD_UID=${p.uid}`,
  });
  // One warm-up pair each, not counted: the first bridge ADD creates the bridge, the first lace ADD the network's forwarding context.
  const warm = { name: "warm", uid: "", lace: sb.podNs("bench", "warm"), ref: sb.podNs("ref", "warm") };
  await sb.store.create<Resource>({ apiVersion: "v1", kind: "Pod", metadata: { name: "warm", namespace: "bench" }, spec: { nodeName: "node-1" } });
  warm.uid = (await sb.store.get<Resource>("Pod", "warm", "bench"))!.metadata.uid ?? "";
  execFileSync("ip", ["netns", "add", warm.lace]);
  execFileSync("ip", ["netns", "add", warm.ref]);
  for (const [argv, conf, netns, ns] of [[[...nsenter, exe], laceConf, warm.lace, "bench"], [[...nsenter, join(REF_DIR, "bridge")], refConf, warm.ref, "ref"]] as const) {
    const r = await invoke([...argv], env("ADD", warm, netns, ns), JSON.stringify(conf));
    if (r.status !== 0) throw new Error(`warm-up ADD failed: ${r.out}`);
  }

  for (const cmd of ["ADD", "CHECK", "DEL"] as const) {
    for (const p of pods) {
      const l = await invoke([...nsenter, exe], env(cmd, p, p.lace, "bench"), confFor(laceConf, cmd, `lace/${p.name}`));
      if (l.status !== 0) throw new Error(`lace-cni ${cmd} of ${p.name} failed: ${l.out}`);
      const r = await invoke([...nsenter, join(REF_DIR, "bridge")], env(cmd, p, p.ref, "ref"), confFor(refConf, cmd, `ref/${p.name}`));
      if (r.status !== 0) throw new Error(`bridge ${cmd} of ${p.name} failed: ${r.out}`);
      if (cmd === "ADD") {
        prev.set(`lace/${p.name}`, JSON.parse(l.out));
        prev.set(`ref/${p.name}`, JSON.parse(r.out));
      }
      results.lace[cmd].push(l.ms);
      results.ref[cmd].push(r.ms);
    }
  }
  // The cost of starting a process at all, for reference.
  const floors: [string, string[]][] = [["lace-cni VERSION", [exe]], ["bridge VERSION", [join(REF_DIR, "bridge")]], ["node -e 0", ["node", "-e", "0"]]];
  const floorMs = new Map<string, number>();
  for (const [label, argv] of floors) {
    const ms: number[] = [];
    for (let i = 0; i < 20; i++) ms.push((await invoke([...nsenter, ...argv], { CNI_COMMAND: "VERSION" }, "")).ms);
    floorMs.set(label, percentile(ms, 50));
  }

  const f = (n: number) => n.toFixed(1);
  const cols: [Cmd, number][] = [["ADD", 50], ["ADD", 90], ["ADD", 99], ["CHECK", 50], ["CHECK", 99], ["DEL", 50], ["DEL", 99]];
  console.log(`\n${PODS} pods, one at a time, spawn to exit (ms):`);
  console.log(`${"".padEnd(24)} ${cols.map(([c, p]) => `${c} p${p}`.padStart(9)).join(" ")}`);
  for (const [label, r] of [["lace-cni + agent", results.lace], ["bridge + host-local", results.ref]] as const) {
    console.log(`${label.padEnd(24)} ${cols.map(([c, p]) => f(percentile(r[c], p)).padStart(9)).join(" ")}`);
  }
  console.log(`process start alone, through nsenter (p50): ${[...floorMs].map(([k, v]) => `${k} ${f(v)} ms`).join("; ")}`);
  // The agent's own share, from its log: everything else is starting the executable and the socket round trip.
  const agentMs = (cmd: string) => readFileSync(join(sb.dir, "node-1", "agent.log"), "utf8").split("\n")
    .filter((l) => l.includes(`"command":"${cmd}"`) && l.includes(`CNI ${cmd} done`) && l.includes("bench/p"))
    .map((l) => Number(/"ms":(\d+)/.exec(l)?.[1]));
  console.log(`in the agent (its log): ADD p50 ${f(percentile(agentMs("ADD"), 50))} ms, DEL p50 ${f(percentile(agentMs("DEL"), 50))} ms`);
  // Where an ADD's time goes in the agent: p50 of the time since the request at which each step ended.
  const phases = new Map<string, number[]>();
  for (const line of readFileSync(join(sb.dir, "node-1", "agent.log"), "utf8").split("\n")) {
    if (!line.includes("CNI ADD done") || !line.includes("bench/p")) continue;
    for (const [k, v] of Object.entries((JSON.parse(line) as { phases?: Record<string, number> }).phases ?? {})) phases.set(k, [...(phases.get(k) ?? []), v]);
  }
  console.log(`ADD steps in the agent, ms since the request (p50): ${[...phases].map(([k, v]) => `${k} ${f(percentile(v, 50))}`).join(", ")}`);
  // The node's applies meanwhile (an ADD's attach waits for one in progress): how many, and how long.
  const applies = readFileSync(join(sb.dir, "node-1", "agent.log"), "utf8").split("\n").filter((l) => l.includes("applied the node's desired state"))
    .map((l) => JSON.parse(l) as { durationMs?: number; writes?: number });
  const applyMs = applies.map((a) => a.durationMs ?? 0);
  console.log(`node applies with writes: ${applies.length}, duration p50 ${f(percentile(applyMs, 50))} ms, p99 ${f(percentile(applyMs, 99))} ms, writes p50 ${percentile(applies.map((a) => a.writes ?? 0), 50)}`);
  // The issue's goals, as ratios to the reference measured in this run.
  const goals: [Cmd, number, number][] = [["ADD", 50, 1.0], ["ADD", 99, 1.5], ["CHECK", 50, 1.0], ["DEL", 50, 0.5]];
  for (const [cmd, p, goal] of goals) {
    const ratio = percentile(results.lace[cmd], p) / percentile(results.ref[cmd], p);
    target(`${cmd} p${p} (lace-cni / bridge+host-local)`, Number(ratio.toFixed(2)), goal, "x", false);
  }
} finally {
  await sb.down();
  rmSync(ipamDir, { recursive: true, force: true });
}
