/**
 * The kubeconfig of an embedded server. A kubeconfig cannot name a unix
 * socket, so for one it says `server: http://localhost` and carries the
 * socket path in a cluster extension (`lace-cni.io/unix-socket`), which
 * `loadKubeConfig` (agent/store/kubeconfig.ts) honours. On TCP it carries
 * the server's certificate (its own root) and bearer token. Kept apart from the
 * loader so that serving does not load client-node.
 *
 * @example
 * writeFileSync("lace.kubeconfig", embeddedKubeConfig({ url: server.url, socketPath: server.socketPath }));
 */
import { stringify } from "yaml";

/** The cluster extension that carries a unix socket path. */
export const UNIX_SOCKET_EXTENSION = "lace-cni.io/unix-socket";

/** A kubeconfig (YAML text) for an embedded server at `url`, or on `socketPath`. */
export function embeddedKubeConfig(
  server: { url: string; socketPath?: string; token?: string; certificate?: string },
  name = "lace-embedded",
): string {
  // On TCP the server is HTTPS with its own certificate: clients verify it rather than skip verification.
  const cluster: Record<string, unknown> = server.certificate
    ? { server: server.url, "certificate-authority-data": Buffer.from(server.certificate).toString("base64") }
    : { server: server.url };
  if (server.socketPath) cluster.extensions = [{ name: UNIX_SOCKET_EXTENSION, extension: { path: server.socketPath } }];
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name, cluster }],
    // On TCP the server wants its bearer token; a socket's file mode is its access control.
    users: [{ name, user: server.token ? { token: server.token } : {} }],
    contexts: [{ name, context: { cluster: name, user: name } }],
    "current-context": name,
  });
}
