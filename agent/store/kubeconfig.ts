/**
 * Kubeconfigs for the embedded store, and loading any kubeconfig so that a
 * unix-socket server works with client-node.
 *
 * A real kubeconfig cannot name a unix socket, so the embedded store's
 * kubeconfig says `server: http://localhost` and carries the socket path in
 * a cluster extension (`lace-cni.io/unix-socket`); {@link loadKubeConfig}
 * honours it by giving client-node an HTTP agent bound to the socket.
 *
 * @example
 * writeFileSync("lace.kubeconfig", embeddedKubeConfig({ url: server.url, socketPath: server.socketPath }));
 * const store = new KubeStore(loadKubeConfig({ path: "lace.kubeconfig" }));
 */
import { readFileSync } from "node:fs";
import { Agent } from "node:http";
import { KubeConfig } from "@kubernetes/client-node";
import { parse } from "yaml";
import { UNIX_SOCKET_EXTENSION } from "./embedded/kubeconfig.ts";

export { embeddedKubeConfig, UNIX_SOCKET_EXTENSION } from "./embedded/kubeconfig.ts";

/** Makes client-node reach its (http) server through a unix socket. */
export function bindToUnixSocket(kc: KubeConfig, socketPath: string): KubeConfig {
  // Node's Agent merges its own options into each connection, so `socketPath` here
  // routes every request to the socket. client-node builds a fresh agent per request in a private method; swapping it
  // is the only hook that reaches both the generated APIs and Watch. One agent for all, keeping connections
  // open between requests: a new connection per request cost an agent's CNI ADD a few milliseconds. An idle
  // connection is closed after FREE_SOCKET_MS, before the server's keep-alive timeout (5 s) would close it
  // under a request about to reuse it. (The timeout does nothing to a socket in use: a watch stays open.)
  const agent = new Agent({ socketPath, keepAlive: true, timeout: FREE_SOCKET_MS } as ConstructorParameters<typeof Agent>[0]);
  (kc as unknown as { createAgent: () => Agent }).createAgent = () => agent;
  return kc;
}

/** How long a kept-alive connection to the store may sit idle (below Node's server keepAliveTimeout of 5 s). */
const FREE_SOCKET_MS = 4_000;

/**
 * Loads a kubeconfig from `path`, `text`, or client-node's defaults
 * (`$KUBECONFIG`, `~/.kube/config`, in-cluster), honouring the unix-socket extension.
 */
export function loadKubeConfig(source: { path?: string; text?: string } = {}): KubeConfig {
  const kc = new KubeConfig();
  let text = source.text;
  if (source.path !== undefined) text = readFileSync(source.path, "utf8");
  if (text === undefined) {
    kc.loadFromDefault();
    return kc;
  }
  kc.loadFromString(text);
  const doc = parse(text) as { clusters?: { name: string; cluster?: { extensions?: { name: string; extension?: { path?: string } }[] } }[] };
  const current = kc.getCurrentCluster()?.name;
  const cluster = doc.clusters?.find((c) => c.name === current);
  const socket = cluster?.cluster?.extensions?.find((x) => x.name === UNIX_SOCKET_EXTENSION)?.extension?.path;
  if (socket) bindToUnixSocket(kc, socket);
  return kc;
}
