/**
 * A worker thread of the srv6 dataplane for the agent (see
 * pod_dataplane.ts; bundled as `dist/srv6-apply-worker.js`). Netlink sends
 * and `nft` are synchronous: in a thread of their own, an apply or a pod's
 * veth being made or deleted never holds up the agent's thread, which goes
 * on answering CNI requests and reading the store's replies meanwhile.
 * The agent runs two: one applies desired states, one plugs pods in and
 * out. Messages `{ id, op, ... }` → `{ id, result }` or `{ id, error }`:
 * `apply` (a state, as the changes since the last one: state_transfer.ts), `attach` (pod), `detach` (pod), `podNetworks` (the
 * networks' pod-facing sides after an apply), `close`.
 *
 * @example
 * new Worker(new URL("./apply_worker.ts", import.meta.url), { workerData: { node: "node-1", netns: undefined, backend: "bpf" } });
 */
import { parentPort, workerData } from "node:worker_threads";
import type { PodAttachment } from "../../core/plugin/mod.ts";
import { Srv6Dataplane } from "./dataplane.ts";
import type { PodNetwork } from "./plan.ts";
import { type StateDelta, StateReceiver } from "./state_transfer.ts";

/** A request to the worker. */
export type WorkerRequest = { id: number } & (
  | { op: "apply"; state: StateDelta }
  | { op: "attach"; pod: PodAttachment }
  | { op: "detach"; pod: { hostIfname: string; netns?: string } }
  | { op: "podNetworks"; networks: [string, PodNetwork][] }
  | { op: "close" }
);

const port = parentPort!;
const { node, netns, backend, bpffs } = workerData as { node: string; netns?: string; backend: "kernel" | "bpf"; bpffs?: string };
// The backend the parent chose: every thread runs the same one.
const dp = await Srv6Dataplane.open({ node, netns, backend, bpffs });
const states = new StateReceiver();
port.on("message", async (m: WorkerRequest) => {
  if (m.op === "close") {
    await dp.close();
    port.postMessage({ id: m.id });
    port.close();
    return;
  }
  try {
    let result: unknown;
    if (m.op === "apply") result = await dp.apply(states.decode(m.state));
    else if (m.op === "attach") await dp.attachPod(m.pod);
    else if (m.op === "detach") await dp.detachPod(m.pod);
    else dp.usePodNetworks(new Map(m.networks));
    port.postMessage({ id: m.id, result });
  } catch (e) {
    port.postMessage({ id: m.id, error: (e as Error).message });
  }
});
port.postMessage({ ready: true });
