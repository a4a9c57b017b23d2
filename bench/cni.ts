/**
 * `npm run bench cni`: CNI ADD and DEL latency, p50/p90 over 50 pods,
 * through the real `lace-cni` executable (dist/lace-cni.cjs; built first
 * when missing) and a lace agent on a one-node sandbox; in the same run and
 * the same namespace setup, the reference `bridge` + `host-local` plugins
 * from Debian's containernetworking-plugins (/usr/lib/cni).
 *
 * Both plugins are started the same way, through `nsenter --net=<node
 * namespace>` (bridge must run in the node's namespace; lace-cni does not
 * care where it runs), one invocation at a time, alternating per pod so
 * machine noise hits both alike. Each call is timed from spawn to exit:
 * what a runtime waits for. Needs root.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { percentile, target } from "./_report.ts";
import { Sandbox } from "../agent/sandbox/sandbox.ts";
import { ROOT } from "../agent/sandbox/processes.ts";
import type { Resource } from "../core/mod.ts";

const PODS = 50;
const REF_DIR = "/usr/lib/cni";

if (process.getuid?.() !== 0) {
  console.error("bench cni needs root: it creates network namespaces");
  process.exit(2);
}
if (!existsSync(join(REF_DIR, "bridge")) || !existsSync(join(REF_DIR, "host-local"))) {
  console.error(`bench cni needs the reference plugins in ${REF_DIR}: apt-get install -y containernetworking-plugins`);
  process.exit(2);
}
const bundle = join(ROOT, "dist", "lace-cni.cjs");
if (!existsSync(bundle)) {
  console.log("building dist/lace-cni.cjs (npm run build)");
  execFileSync(process.execPath, [join(ROOT, "node_modules", "rollup", "dist", "bin", "rollup"), "-c", "--silent"], { cwd: ROOT, stdio: "inherit" });
}

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
const results = { lace: { add: [] as number[], del: [] as number[] }, ref: { add: [] as number[], del: [] as number[] } };
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
  const laceConf = JSON.stringify({ cniVersion: "1.0.0", name: "lace", type: "lace-cni", agentSocket: sb.cniSocket("node-1") });
  const refConf = JSON.stringify({
    cniVersion: "1.0.0", name: "ref", type: "bridge", bridge: "cniref0", isGateway: true, ipMasq: false,
    ipam: { type: "host-local", subnet: "10.99.0.0/16", dataDir: ipamDir },
  });
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
  for (const [argv, conf, netns, ns] of [[[...nsenter, "node", bundle], laceConf, warm.lace, "bench"], [[...nsenter, join(REF_DIR, "bridge")], refConf, warm.ref, "ref"]] as const) {
    const r = await invoke([...argv], env("ADD", warm, netns, ns), conf);
    if (r.status !== 0) throw new Error(`warm-up ADD failed: ${r.out}`);
  }

  for (const cmd of ["ADD", "DEL"] as const) {
    for (const p of pods) {
      const l = await invoke([...nsenter, "node", bundle], env(cmd, p, p.lace, "bench"), laceConf);
      if (l.status !== 0) throw new Error(`lace-cni ${cmd} of ${p.name} failed: ${l.out}`);
      const r = await invoke([...nsenter, join(REF_DIR, "bridge")], env(cmd, p, p.ref, "ref"), refConf);
      if (r.status !== 0) throw new Error(`bridge ${cmd} of ${p.name} failed: ${r.out}`);
      results.lace[cmd === "ADD" ? "add" : "del"].push(l.ms);
      results.ref[cmd === "ADD" ? "add" : "del"].push(r.ms);
    }
  }
  // The cost of starting a process at all, for reference.
  const floor: number[] = [];
  for (let i = 0; i < 20; i++) floor.push((await invoke([...nsenter, "node", "-e", "0"], {}, "")).ms);
  const floorGo: number[] = [];
  for (let i = 0; i < 20; i++) floorGo.push((await invoke([...nsenter, join(REF_DIR, "bridge")], { CNI_COMMAND: "VERSION" }, "")).ms);

  const f = (n: number) => n.toFixed(1);
  console.log(`\n${PODS} pods, one at a time, spawn to exit (ms):`);
  console.log("                         ADD p50  ADD p90  DEL p50  DEL p90");
  for (const [label, r] of [["lace-cni + agent", results.lace], ["bridge + host-local", results.ref]] as const) {
    console.log(`${label.padEnd(24)} ${f(percentile(r.add, 50)).padStart(7)}  ${f(percentile(r.add, 90)).padStart(7)}  ${f(percentile(r.del, 50)).padStart(7)}  ${f(percentile(r.del, 90)).padStart(7)}`);
  }
  console.log(`process start alone: node -e 0 p50 ${f(percentile(floor, 50))} ms; bridge VERSION p50 ${f(percentile(floorGo, 50))} ms (both through nsenter)`);
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
  const addRatio = percentile(results.lace.add, 50) / percentile(results.ref.add, 50);
  const delRatio = percentile(results.lace.del, 50) / percentile(results.ref.del, 50);
  console.log(`ratios: ADD p50 ${addRatio.toFixed(2)}x bridge, DEL p50 ${delRatio.toFixed(2)}x bridge`);
  target("ADD p50", Number(addRatio.toFixed(2)), 1.0, "x", false);
  target("DEL p50", Number(delRatio.toFixed(2)), 0.5, "x", false);
} finally {
  await sb.down();
  rmSync(ipamDir, { recursive: true, force: true });
}
