/**
 * The CNI specification (1.1) as far as the plugin executable needs it:
 * reading the runtime's environment and stdin, spec error results, and
 * results shaped for each supported cniVersion. No imports at all: this
 * module is bundled into the tiny `lace-cni` executable, whose start-up
 * cost is part of every pod's start.
 *
 * @example
 * const inv = parseInvocation(process.env, stdinText);
 * if ("code" in inv) print(inv);           // a spec error result
 * else forward(inv);                       // to the node's agent
 */

/** The cniVersions whose results this plugin writes, oldest first. */
export const SUPPORTED_VERSIONS = ["0.4.0", "1.0.0", "1.1.0"] as const;
export type CniVersion = typeof SUPPORTED_VERSIONS[number];

/** The spec's well-known error codes, and ours (100 and up). */
export const CNI_ERRORS = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENVIRONMENT: 4,
  IO_FAILURE: 5,
  DECODE_FAILURE: 6,
  INVALID_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
  UNAVAILABLE: 50,
  /** Ours: the agent failed for a reason of its own (the message says which). */
  AGENT_FAILED: 100,
  /** Ours: no network for the pod (no binding policy matched, unknown network). */
  NO_NETWORK: 101,
  /** Ours: no address left, or the requested one is taken. */
  NO_ADDRESS: 102,
  /** Ours: the pod's network type is not supported by this node's dataplane yet. */
  UNSUPPORTED_NETWORK: 103,
  /** Ours: CHECK found the attachment missing or different. */
  CHECK_FAILED: 104,
  /** Ours: the pod is not known to the store. */
  UNKNOWN_POD: 105,
} as const;

export const CNI_COMMANDS = ["ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION"] as const;
export type CniCommand = typeof CNI_COMMANDS[number];

/** A spec error result (printed on stdout, exit status 1). */
export interface CniError {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

/** One attachment GC must keep (`cni.dev/valid-attachments`). */
export interface Attachment {
  containerID: string;
  ifname: string;
}

/** The network configuration from stdin; fields other than these pass through. */
export interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  /** Ours: the node agent's socket. Default {@link DEFAULT_AGENT_SOCKET}. */
  agentSocket?: string;
  "cni.dev/valid-attachments"?: Attachment[];
  [key: string]: unknown;
}

/** What the executable forwards to the agent: one invocation, validated. */
export interface CniRequest {
  command: Exclude<CniCommand, "VERSION">;
  containerId?: string;
  netns?: string;
  ifname?: string;
  /** CNI_ARGS as key → value. */
  args: Record<string, string>;
  path: string[];
  config: NetConf;
}

/** The version-neutral result the agent returns for ADD (1.1 field names). */
export interface CniResult {
  interfaces: { name: string; mac?: string; mtu?: number; sandbox?: string }[];
  ips: { address: string; gateway?: string; interface?: number }[];
  routes: { dst: string; gw?: string }[];
  dns: Record<string, unknown>;
}

/** The agent's reply to one request. */
export type AgentReply = { ok: true; result?: CniResult } | { ok: false; code: number; msg: string; details?: string };

export const DEFAULT_AGENT_SOCKET = "/run/lace/cni.sock";

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.\-]*$/;

/** A spec error for `version` (the config's, when it was readable). */
export function cniError(code: number, msg: string, details?: string, version = "1.1.0"): CniError {
  return details === undefined ? { cniVersion: version, code, msg } : { cniVersion: version, code, msg, details };
}

/** Why `name` is not a valid Linux interface name, or undefined when it is. */
export function ifnameProblem(name: string): string | undefined {
  if (name.length === 0) return "it is empty";
  if (name.length > 15) return `it is ${name.length} characters long, the limit is 15`;
  if (name === "." || name === "..") return "it is . or ..";
  if (/[/:\s]/.test(name)) return "it contains a slash, a colon or whitespace";
  return undefined;
}

/** Parses CNI_ARGS (`K8S_POD_NAME=web-0;K8S_POD_NAMESPACE=a`). */
export function parseCniArgs(text: string | undefined): Record<string, string> | string {
  const out: Record<string, string> = {};
  if (!text) return out;
  for (const pair of text.split(";")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    if (eq <= 0) return `entry "${pair}" is not KEY=VALUE`;
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

const REQUIRED_ENV: Record<CniCommand, string[]> = {
  ADD: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
  CHECK: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
  DEL: ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"],
  GC: ["CNI_PATH"],
  STATUS: [],
  VERSION: [],
};

/** The oldest cniVersion that has each command. */
const SINCE: Record<CniCommand, string> = { ADD: "0.1.0", DEL: "0.1.0", CHECK: "0.4.0", GC: "1.1.0", STATUS: "1.1.0", VERSION: "0.1.0" };

function versionAtLeast(v: string, min: string): boolean {
  const a = v.split(".").map(Number);
  const b = min.split(".").map(Number);
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

/** The VERSION result: the input's cniVersion echoed (1.1.0 when stdin has none), and the supported versions. */
export function versionResult(stdin = ""): { cniVersion: string; supportedVersions: string[] } {
  let version = "1.1.0";
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown } | null)?.cniVersion;
    if (typeof v === "string" && v) version = v;
  } catch {
    // VERSION may come without a configuration.
  }
  return { cniVersion: version, supportedVersions: [...SUPPORTED_VERSIONS] };
}

/**
 * Reads one invocation the way the spec says: the command and its required
 * variables from `env`, the network configuration from `stdin`. Returns
 * the request to forward, `"VERSION"`, or a spec error.
 */
export function parseInvocation(env: Record<string, string | undefined>, stdin: string): CniRequest | "VERSION" | CniError {
  const command = env.CNI_COMMAND;
  if (!command) return cniError(CNI_ERRORS.INVALID_ENVIRONMENT, "CNI_COMMAND is not set", `expected one of ${CNI_COMMANDS.join(", ")}`);
  if (!(CNI_COMMANDS as readonly string[]).includes(command)) {
    return cniError(CNI_ERRORS.INVALID_ENVIRONMENT, `CNI_COMMAND "${command}" is not a CNI command`, `expected one of ${CNI_COMMANDS.join(", ")}`);
  }
  const cmd = command as CniCommand;
  if (cmd === "VERSION") return "VERSION";

  // The configuration first: a readable cniVersion shapes every later error.
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (e) {
    return cniError(CNI_ERRORS.DECODE_FAILURE, "Cannot decode the network configuration on stdin: it is not JSON", (e as Error).message);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    return cniError(CNI_ERRORS.DECODE_FAILURE, "Cannot decode the network configuration on stdin: expected a JSON object", `got ${Array.isArray(raw) ? "an array" : raw === null ? "null" : typeof raw}`);
  }
  const conf = raw as Record<string, unknown>;
  const version = conf.cniVersion;
  if (typeof version !== "string" || !/^\d+\.\d+\.\d+$/.test(version)) {
    return cniError(CNI_ERRORS.INVALID_CONFIG, "Invalid network configuration: cniVersion must be a version such as \"1.1.0\"", `got ${JSON.stringify(version)}`);
  }
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(version)) {
    return cniError(CNI_ERRORS.INCOMPATIBLE_VERSION, `Incompatible CNI version: the configuration asks for ${version}`, `this plugin supports ${SUPPORTED_VERSIONS.join(", ")}`, version);
  }
  if (!versionAtLeast(version, SINCE[cmd])) {
    return cniError(CNI_ERRORS.INCOMPATIBLE_VERSION, `CNI version ${version} does not have ${cmd}`, `${cmd} needs cniVersion ${SINCE[cmd]} or later`, version);
  }
  const bad = (msg: string, details?: string) => cniError(CNI_ERRORS.INVALID_CONFIG, `Invalid network configuration: ${msg}`, details, version);
  if (typeof conf.name !== "string" || !ID_RE.test(conf.name)) {
    return bad("name must start with a letter or digit followed by letters, digits, _, . or -", `got ${JSON.stringify(conf.name)}`);
  }
  if (typeof conf.type !== "string" || conf.type === "") return bad("type must name the plugin", `got ${JSON.stringify(conf.type)}`);
  if (conf.agentSocket !== undefined && (typeof conf.agentSocket !== "string" || !conf.agentSocket.startsWith("/"))) {
    return bad("agentSocket must be an absolute path to the node agent's socket", `got ${JSON.stringify(conf.agentSocket)}`);
  }
  if (cmd === "GC") {
    const valid = conf["cni.dev/valid-attachments"];
    if (valid !== undefined && (!Array.isArray(valid) || valid.some((a) => typeof a?.containerID !== "string" || typeof a?.ifname !== "string"))) {
      return bad("cni.dev/valid-attachments must be a list of {containerID, ifname}", `got ${JSON.stringify(valid)}`);
    }
  }

  const envError = (msg: string, details?: string) => cniError(CNI_ERRORS.INVALID_ENVIRONMENT, msg, details, version);
  for (const name of REQUIRED_ENV[cmd]) {
    if (!env[name]) return envError(`${name} is not set`, `${cmd} needs ${REQUIRED_ENV[cmd].join(", ")}`);
  }
  const containerId = env.CNI_CONTAINERID || undefined;
  if (containerId !== undefined && !ID_RE.test(containerId)) {
    return envError(`CNI_CONTAINERID "${containerId}" is not a valid container id`, "expected a letter or digit followed by letters, digits, _, . or -");
  }
  const ifname = env.CNI_IFNAME || undefined;
  if (ifname !== undefined) {
    const problem = ifnameProblem(ifname);
    if (problem) return envError(`CNI_IFNAME "${ifname}" is not a valid interface name: ${problem}`);
  }
  const netns = env.CNI_NETNS || undefined;
  if (netns !== undefined && !netns.startsWith("/")) return envError(`CNI_NETNS "${netns}" is not a path`, "expected an absolute path such as /var/run/netns/cni-1234");
  const args = parseCniArgs(env.CNI_ARGS);
  if (typeof args === "string") return envError(`CNI_ARGS is malformed: ${args}`, "expected KEY=VALUE pairs separated by semicolons");
  return {
    command: cmd,
    containerId,
    netns,
    ifname,
    args,
    path: (env.CNI_PATH ?? "").split(":").filter(Boolean),
    config: conf as NetConf,
  };
}

/**
 * The ADD result in the shape of `version`: 0.4.0 carries `version` per IP
 * and no MTU; 1.0.0 drops `version`; 1.1.0 adds the interface MTU.
 */
export function formatResult(result: CniResult, version: string): Record<string, unknown> {
  const v11 = version === "1.1.0";
  const interfaces = result.interfaces.map((i) => {
    const out: Record<string, unknown> = { name: i.name };
    if (i.mac) out.mac = i.mac;
    if (v11 && i.mtu) out.mtu = i.mtu;
    if (i.sandbox) out.sandbox = i.sandbox;
    return out;
  });
  const ips = result.ips.map((ip) => {
    const out: Record<string, unknown> = {};
    if (version === "0.4.0") out.version = ip.address.includes(":") ? "6" : "4";
    out.address = ip.address;
    if (ip.gateway) out.gateway = ip.gateway;
    if (ip.interface !== undefined) out.interface = ip.interface;
    return out;
  });
  return { cniVersion: version, interfaces, ips, routes: result.routes.map((r) => ({ ...r })), dns: { ...result.dns } };
}
