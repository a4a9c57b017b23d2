/**
 * `npm run bench convergence`: how soon the cluster agrees, on a two-node
 * sandbox (real store, controller and agents, the srv6 dataplane on the
 * backend in LACE_BENCH_BACKEND, default bpf).
 *
 * 1. Pod start: a pod on node B pings; a new pod is added on node A through
 *    the real executable (CNI ADD), and the time from ADD returning to B's
 *    first ping reply from it is taken, over up to 200 pods (fewer when the
 *    time budget runs out; the count and the reason are printed). The prober
 *    is `ping -D` started in B's pod namespace right after ADD returns
 *    (nothing can ping an address it does not know yet), so each sample also
 *    holds the prober's own start; that floor is measured against a pod that
 *    is reachable already and printed beside the numbers.
 * 2. Policy change: one pod of network red on each node pings a pod of
 *    network blue on the other node, continuously (`ping -D -i 0.005`). A
 *    NetworkRoutingPolicy red → blue is created (first reply after the
 *    write, per node) and deleted (last reply after the write, per node):
 *    the per-trial number is the slowest node, the time until every node
 *    enforces the change.
 * 3. Service endpoint readiness: a Service of two endpoint pods (one per
 *    node), a client pod on node A opening a new connection to its
 *    ClusterIP every few milliseconds (each answered with the endpoint's
 *    pod name). The endpoint on node B is marked not ready (its Ready
 *    condition False, as the kubelet does when a probe fails or the pod
 *    starts terminating): the time from that write to the start of the last
 *    new connection it still answered; then ready again: the time until it
 *    answers again.
 *
 * Needs root (network namespaces), `ping` and `nsenter`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { percentile, target } from "./_report.ts";
import { Sandbox } from "../agent/sandbox/sandbox.ts";
import { sleep } from "../agent/sandbox/processes.ts";
import type { Resource } from "../core/mod.ts";

const PODS = 200;
const POLICY_TRIALS = 10;
const ENDPOINT_TRIALS = 10;
const CONNECT_EVERY_MS = 5;
/** Wall-clock budget for the pod phase; the rest of the run is setup and the policy phase. */
const POD_BUDGET_MS = Number(process.env.LACE_BENCH_POD_BUDGET_MS ?? 240_000);
const BACKEND = process.env.LACE_BENCH_BACKEND ?? "bpf";
const L = "lace-cni.io/v1alpha1";

if (process.getuid?.() !== 0) {
  console.error("bench convergence needs root: it creates network namespaces");
  process.exit(2);
}

/** The /26 block of an IPv4 address. */
function blockOf(address: string): string {
  const o = address.split(".").map(Number);
  return `${o[0]}.${o[1]}.${o[2]}.${o[3] & 0xc0}/26`;
}

/** Wall-clock time in ms with sub-ms precision, comparable with ping -D's timestamps. */
const wallMs = () => performance.timeOrigin + performance.now();

/** A ping running in a namespace, collecting the wall-clock time (ms) of every reply. */
class Prober {
  readonly replies: number[] = [];
  private readonly proc: ChildProcess;
  private tail = "";
  private waiters: (() => void)[] = [];

  constructor(netns: string, address: string, intervalS: number) {
    this.proc = spawn("nsenter", [`--net=/run/netns/${netns}`, "ping", "-D", "-n", "-i", String(intervalS), "-W", "1", address], { stdio: ["ignore", "pipe", "ignore"] });
    this.proc.stdout!.setEncoding("utf8");
    this.proc.stdout!.on("data", (d: string) => {
      const lines = (this.tail + d).split("\n");
      this.tail = lines.pop() ?? "";
      for (const line of lines) {
        // [1764990000.123456] 64 bytes from 10.81.0.2: icmp_seq=1 ttl=63 time=0.1 ms
        const m = /^\[(\d+\.\d+)\] \d+ bytes from/.exec(line);
        if (m) this.replies.push(Number(m[1]) * 1000);
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** The first reply at or after `since`, waiting up to `timeoutMs`; undefined when none came. */
  async firstReplyAfter(since: number, timeoutMs: number): Promise<number | undefined> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const r = this.replies.find((t) => t >= since);
      if (r !== undefined) return r;
      const left = end - Date.now();
      if (left <= 0) return undefined;
      await Promise.race([new Promise<void>((res) => this.waiters.push(res)), sleep(Math.min(left, 50))]);
    }
  }

  stop(): void {
    this.proc.kill("SIGKILL");
  }
}

/** New TCP connections to ip:port from a namespace, one every few ms: when each started and which pod answered. */
class ConnectionLoop {
  readonly answers: { started: number; name: string }[] = [];
  private readonly proc: ChildProcess;
  private tail = "";

  constructor(netns: string, ip: string, port: number) {
    const code = `
import socket, sys, time
while True:
    t = time.time() * 1000
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.settimeout(0.5)
    try:
        s.connect(("${ip}", ${port})); n = s.recv(100).decode().strip()
        sys.stdout.write("%.3f %s\\n" % (t, n)); sys.stdout.flush()
    except Exception:
        pass
    finally:
        s.close()
    time.sleep(${CONNECT_EVERY_MS / 1000})
`;
    this.proc = spawn("nsenter", [`--net=/run/netns/${netns}`, "python3", "-c", code], { stdio: ["ignore", "pipe", "ignore"] });
    this.proc.stdout!.setEncoding("utf8");
    this.proc.stdout!.on("data", (d: string) => {
      const lines = (this.tail + d).split("\n");
      this.tail = lines.pop()!;
      for (const l of lines) {
        const [t, name] = l.split(" ");
        if (name) this.answers.push({ started: Number(t), name });
      }
    });
  }

  /** The start of the first connection `name` answered that started at or after `after` (wall ms), or undefined after `timeoutMs`. */
  async firstFrom(name: string, after: number, timeoutMs: number): Promise<number | undefined> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.answers.find((a) => a.name === name && a.started >= after);
      if (hit || Date.now() > end) return hit?.started;
      await sleep(5);
    }
  }

  stop(): void {
    this.proc.kill("SIGKILL");
  }
}

const prefix = `cv${process.pid.toString(36)}-`;
const sb = await Sandbox.up({ nodes: 2, prefix, backend: BACKEND, progress: (l) => console.log(`  ${l}`) });
const probers: Prober[] = [];
try {
  // /26 blocks (61 pods each) for the pod phase: some ADDs open a new block, whose route node B must learn first.
  const network = (name: string, prefix4: string, blockLength = 24): Resource[] => [
    { apiVersion: L, kind: "Network", metadata: { name }, spec: { type: "l3", ipv4Subnet: { prefix: prefix4, hostLocalPrefixLength: blockLength } } },
    { apiVersion: L, kind: "NetworkBindingPolicy", metadata: { name }, spec: { network: name, priority: 100, matchKind: "Pod", selector: { matchLabels: { net: name } } } },
  ];
  await sb.apply([
    { apiVersion: L, kind: "Topology", metadata: { name: "default" }, spec: { locatorPool: "fd00:1ace::/32", locatorLength: 48 } },
    ...network("conv", "10.81.0.0/16", 26), ...network("red", "10.82.0.0/16"), ...network("blue", "10.83.0.0/16"),
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "bench" } },
  ]);
  await sb.waitForAgents();
  const [A, B] = [sb.nodeName(1), sb.nodeName(2)];
  const pod = (name: string, net: string, node: string): Resource => ({ apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "bench", labels: { net } }, spec: { nodeName: node } });
  const addPod = async (name: string, net: string, node: string) => {
    const p = await sb.addPod(pod(name, net, node));
    if (p.state !== "running") throw new Error(`pod ${name} did not start: ${p.reason}`);
    return p;
  };

  // ---- 1. pod start on A → first reply to a ping from B
  const probe = await addPod("probe", "conv", B);
  const first = await addPod("first", "conv", A);
  // The prober's own start, against a pod that is reachable already (after it surely converged).
  await sleep(1000);
  const floor: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t0 = wallMs();
    const p = new Prober(probe.netns!, first.addresses[0], 0.002);
    const r = await p.firstReplyAfter(t0, 5000);
    p.stop();
    if (r !== undefined) floor.push(r - t0);
  }
  const podMs: number[] = [];
  /** The samples of ADDs that opened a new block on A. */
  const newBlockMs: number[] = [];
  const blocks = new Set([blockOf(first.addresses[0])]);
  let failed = 0;
  const start = Date.now();
  let i = 0;
  for (; i < PODS && Date.now() - start < POD_BUDGET_MS; i++) {
    // The Pod object and the namespace exist before the runtime calls ADD, as on a kubelet.
    const name = `p${i}`;
    const created = await sb.store.create<Resource>(pod(name, "conv", A));
    const netns = sb.podNs("bench", name);
    await new Promise<void>((res, rej) => spawn("ip", ["netns", "add", netns]).on("close", (c) => (c === 0 ? res() : rej(new Error(`ip netns add ${netns}: status ${c}`)))));
    const env = {
      CNI_CONTAINERID: `conv${i}`, CNI_NETNS: `/run/netns/${netns}`, CNI_IFNAME: "eth0",
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=${name};K8S_POD_UID=${created.metadata.uid ?? ""}`,
    };
    const r = await sb.cni("ADD", A, env);
    const added = wallMs();
    if (r.status !== 0) throw new Error(`CNI ADD of ${name} failed: ${r.raw}`);
    const address = ((r.out?.ips as { address: string }[]) ?? [])[0].address.split("/")[0];
    const p = new Prober(probe.netns!, address, 0.002);
    const reply = await p.firstReplyAfter(added, 5000);
    p.stop();
    // One that never answered counts as the whole wait, so it cannot make the numbers look better.
    if (reply === undefined) failed++;
    podMs.push(reply === undefined ? 5000 : reply - added);
    if (!blocks.has(blockOf(address))) {
      blocks.add(blockOf(address));
      newBlockMs.push(podMs[podMs.length - 1]);
    }
  }
  const f = (n: number) => n.toFixed(1);
  const why = i < PODS ? ` (of ${PODS}: the ${POD_BUDGET_MS / 1000} s budget ran out; each pod costs a sandbox ADD plus a prober start on a shared 2-core machine)` : "";
  console.log(`\npod ADD on ${A} → first ping reply from ${B}, ${podMs.length} pods${why}${failed ? `, ${failed} never answered within 5 s (counted as 5000)` : ""} (ms):`);
  console.log(`  p50 ${f(percentile(podMs, 50))}  p90 ${f(percentile(podMs, 90))}  p99 ${f(percentile(podMs, 99))}  max ${f(percentile(podMs, 100))}`);
  const slow = podMs.map((ms, k) => [k, ms] as const).filter(([, ms]) => ms > 20);
  console.log(`  over 20 ms: ${slow.length} pods (${slow.map(([k, ms]) => `p${k} ${f(ms)}`).join(", ")})`);
  console.log(`  the ${newBlockMs.length} ADDs that opened a new /26 block on ${A}: ${newBlockMs.map(f).join(", ")}`);
  console.log(`  of which the prober's own start (nsenter + ping to a reachable pod): p50 ${f(percentile(floor, 50))}, p99 ${f(percentile(floor, 99))}`);

  // ---- 2. policy write → enforced on every node
  const red = [await addPod("red-a", "red", A), await addPod("red-b", "red", B)];
  const blue = [await addPod("blue-a", "blue", A), await addPod("blue-b", "blue", B)];
  // red on A pings blue on B and the other way round: both nodes must act on each change.
  for (const [from, to] of [[red[0], blue[1]], [red[1], blue[0]]]) probers.push(new Prober(from.netns!, to.addresses[0], 0.005));
  const policy: Resource = { apiVersion: L, kind: "NetworkRoutingPolicy", metadata: { name: "red-to-blue" }, spec: { priority: 100, from: { networks: ["red"] }, to: { networks: ["blue"] }, action: "Allow" } };
  const allowMs: number[] = [];
  const denyMs: number[] = [];
  let policyFailures = 0;
  await sleep(500);
  for (let t = 0; t < POLICY_TRIALS; t++) {
    const wrote = wallMs();
    await sb.store.create(policy);
    const firsts = await Promise.all(probers.map((p) => p.firstReplyAfter(wrote, 5000)));
    if (firsts.some((x) => x === undefined)) policyFailures++;
    allowMs.push(Math.max(...firsts.map((x) => (x === undefined ? 5000 : x - wrote))));
    await sleep(300);
    const removed = wallMs();
    await sb.store.delete("NetworkRoutingPolicy", "red-to-blue");
    // Denied once no reply comes for a while: the last reply after the write marks the switch.
    await sleep(1500);
    const lasts = probers.map((p) => p.replies.filter((x) => x >= removed));
    if (lasts.some((r) => r.length && r[r.length - 1] > wallMs() - 700)) {
      policyFailures++;
      denyMs.push(5000);
    } else denyMs.push(Math.max(...lasts.map((r) => (r.length ? r[r.length - 1] - removed : 0))));
  }
  for (const p of probers.splice(0)) p.stop();

  // ---- 3. endpoint not ready → no new connection through the ClusterIP goes to it
  await sb.apply([
    { apiVersion: L, kind: "NetworkBindingPolicy", metadata: { name: "echo-service" }, spec: { network: "conv", priority: 100, matchKind: "Service", selector: { matchLabels: { svc: "echo" } } } },
    { apiVersion: "v1", kind: "Service", metadata: { name: "echo", namespace: "bench", labels: { svc: "echo" } }, spec: { selector: { app: "echo" }, ports: [{ name: "web", protocol: "TCP", port: 80, targetPort: 8080 }] } },
  ]);
  const echo = (name: string, node: string): Resource => ({ ...pod(name, "conv", node), metadata: { name, namespace: "bench", labels: { net: "conv", app: "echo" } } });
  const client = await addPod("client", "conv", A);
  const echoA = await sb.addPod(echo("echo-a", A));
  const echoB = await sb.addPod(echo("echo-b", B));
  const rows = await sb.serviceRows([client, echoA, echoB]);
  const row = rows.find((r) => r.from === "bench/client" && r.family === "ipv4");
  if (row?.observed !== "allow" || row.answeredBy?.join() !== "echo-a,echo-b") throw new Error(`The Service did not answer from both endpoints: ${JSON.stringify(row)}`);
  const vip = ((await sb.store.get<Resource<{ clusterIP?: string }>>("Service", "echo", "bench"))!.spec as { clusterIP: string }).clusterIP;
  const conns = new ConnectionLoop(client.netns!, vip, 80);
  const notReadyMs: number[] = [];
  const readyMs: number[] = [];
  let endpointFailures = 0;
  const setReady = async (ready: boolean) => {
    const p = (await sb.store.get<Resource<unknown, { conditions?: unknown[] }>>("Pod", "echo-b", "bench"))!;
    await sb.store.updateStatus({ ...p, status: { ...p.status, conditions: [{ type: "Ready", status: ready ? "True" : "False" }] } });
  };
  try {
    await conns.firstFrom("echo-b", wallMs(), 5000);
    for (let t = 0; t < ENDPOINT_TRIALS; t++) {
      const wrote = wallMs();
      await setReady(false);
      await sleep(1500);
      const last = conns.answers.filter((a) => a.name === "echo-b" && a.started >= wrote).pop();
      // Still answering at the end of the wait: not removed in time.
      if (last && last.started > wallMs() - 700) {
        endpointFailures++;
        notReadyMs.push(5000);
      } else notReadyMs.push(last ? last.started - wrote : 0);
      const back = wallMs();
      await setReady(true);
      const first = await conns.firstFrom("echo-b", back, 5000);
      if (first === undefined) endpointFailures++;
      readyMs.push(first === undefined ? 5000 : first - back);
    }
  } finally {
    conns.stop();
  }
  console.log(`
Service endpoint on ${B} marked not ready → its last new connection through the ClusterIP, from a client on ${A}, ${ENDPOINT_TRIALS} trials, ${conns.answers.length} connections${endpointFailures ? `, ${endpointFailures} not in time (counted as 5000)` : ""} (ms; a connection every ~${CONNECT_EVERY_MS} ms):`);
  console.log(`  not ready: p50 ${f(percentile(notReadyMs, 50))}  p99 ${f(percentile(notReadyMs, 99))};  ready again → first answer: p50 ${f(percentile(readyMs, 50))}  p99 ${f(percentile(readyMs, 99))}`);

  const both = [...allowMs, ...denyMs];
  console.log(`\npolicy write → enforced on both nodes, ${POLICY_TRIALS} Allow and ${POLICY_TRIALS} removals${policyFailures ? `, ${policyFailures} not enforced in time (counted as 5000)` : ""} (ms; pings every 5 ms, so ±5):`);
  console.log(`  allowed: p50 ${f(percentile(allowMs, 50))}  p99 ${f(percentile(allowMs, 99))};  denied again: p50 ${f(percentile(denyMs, 50))}  p99 ${f(percentile(denyMs, 99))}`);

  console.log("");
  target(`pod ADD on A → first reply from B p99 (${podMs.length} pods, ${BACKEND})`, Number(f(percentile(podMs, 99))), 100, " ms", false);
  target(`policy change → enforced on every node p99 (${both.length} changes, ${BACKEND})`, Number(f(percentile(both, 99))), 200, " ms", false);
  target(`Service endpoint not ready → no new connection to it p99 (${notReadyMs.length} trials, ${BACKEND})`, Number(f(percentile(notReadyMs, 99))), 1000, " ms", false);
  if (failed || policyFailures) console.log(`(${failed} pods and ${policyFailures} policy changes did not converge: each counted as 5000 ms)`);
} finally {
  for (const p of probers) p.stop();
  await sb.down();
}
