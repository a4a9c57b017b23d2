/**
 * The worker thread that applies desired states for the agent (see
 * pod_dataplane.ts; bundled as `dist/srv6-apply-worker.js`). The srv6
 * dataplane runs `nft` synchronously; in its own thread an apply never
 * holds up a CNI request arriving meanwhile. One message at a time:
 * `{ id, state }` → `{ id, report }` or `{ id, error }`; `{ id, close }`.
 *
 * @example
 * new Worker(new URL("./apply_worker.ts", import.meta.url), { workerData: { node: "node-1", netns: undefined } });
 */
import { parentPort, workerData } from "node:worker_threads";
import type { NodeDesiredState } from "../../core/plugin/mod.ts";
import { Srv6Dataplane } from "./dataplane.ts";

interface Request {
  id: number;
  state?: NodeDesiredState;
  close?: boolean;
}

const port = parentPort!;
const { node, netns, backend, bpffs } = workerData as { node: string; netns?: string; backend: "kernel" | "bpf"; bpffs?: string };
// The backend the parent chose: both threads run the same one.
const dp = await Srv6Dataplane.open({ node, netns, backend, bpffs });
port.on("message", async (m: Request) => {
  if (m.close) {
    await dp.close();
    port.postMessage({ id: m.id });
    port.close();
    return;
  }
  try {
    port.postMessage({ id: m.id, report: await dp.apply(m.state!) });
  } catch (e) {
    port.postMessage({ id: m.id, error: (e as Error).message });
  }
});
port.postMessage({ ready: true });
