/**
 * The CNI network configuration list a node's runtime reads to call
 * lace-cni: one plugin, `lace-cni`, told where the node agent listens. The
 * install step (`lace install-cni`) writes it, the deploy manifests name
 * its file, and the tests parse it with the executable's own parser.
 *
 * @example
 * JSON.stringify(cniConflist("/run/lace/cni.sock"));
 * // {"cniVersion":"1.1.0","name":"lace","plugins":[{"type":"lace-cni","agentSocket":"/run/lace/cni.sock"}]}
 */
import { DEFAULT_AGENT_SOCKET } from "./spec.ts";

/** The file name in the runtime's configuration directory; `10-` so it sorts before most others. */
export const CNI_CONFLIST_FILE = "10-lace.conflist";

/** The executable's name in the CNI bin dir: the conflist's plugin `type`. */
export const CNI_EXECUTABLE_NAME = "lace-cni";

/** The conflist, CNI spec 1.1.0, pointing at the agent's socket. */
export function cniConflist(agentSocket: string = DEFAULT_AGENT_SOCKET): { cniVersion: string; name: string; plugins: { type: string; agentSocket: string }[] } {
  // `agentSocket` is the key agent/cni/spec.ts reads.
  return { cniVersion: "1.1.0", name: "lace", plugins: [{ type: CNI_EXECUTABLE_NAME, agentSocket }] };
}
