/**
 * The CNI plugin executable's whole job, as a function: validate the
 * invocation, answer VERSION itself, forward everything else to the node's
 * agent over its unix socket (one JSON line each way) and turn the reply
 * into what the runtime reads on stdout. Only `node:net` is imported, so
 * the bundle stays a few kilobytes and starts as fast as Node.js can.
 *
 * @example
 * const { exitCode, stdout } = await runPlugin(process.env, stdinText);
 */
import { connect } from "node:net";
import {
  type AgentReply, CNI_ERRORS, type CniError, type CniRequest, cniError, DEFAULT_AGENT_SOCKET, formatResult, parseInvocation,
  versionResult,
} from "./spec.ts";

export interface PluginOutcome {
  exitCode: number;
  /** What goes to stdout: a result, an error result, or nothing. */
  stdout: string;
}

/** How long the agent may take before the runtime is told to try again later. */
const TIMEOUT_MS: Record<CniRequest["command"], number> = { ADD: 120_000, DEL: 60_000, CHECK: 30_000, GC: 120_000, STATUS: 10_000 };

/** Runs one CNI invocation. */
export async function runPlugin(env: Record<string, string | undefined>, stdin: string): Promise<PluginOutcome> {
  const inv = parseInvocation(env, stdin);
  if (inv === "VERSION") return { exitCode: 0, stdout: JSON.stringify(versionResult(stdin)) };
  if ("code" in inv) return fail(inv);
  const version = inv.config.cniVersion;
  const socket = inv.config.agentSocket ?? DEFAULT_AGENT_SOCKET;
  let reply: AgentReply;
  try {
    reply = await ask(socket, inv, TIMEOUT_MS[inv.command]);
  } catch (e) {
    return fail(unreachable(e as NodeJS.ErrnoException, socket, inv.command, version));
  }
  if (!reply.ok) return fail(cniError(reply.code, reply.msg, reply.details, version));
  if (inv.command === "ADD") {
    if (!reply.result) return fail(cniError(CNI_ERRORS.AGENT_FAILED, "The agent answered ADD without a result", undefined, version));
    return { exitCode: 0, stdout: JSON.stringify(formatResult(reply.result, version)) };
  }
  return { exitCode: 0, stdout: "" };
}

function fail(e: CniError): PluginOutcome {
  return { exitCode: 1, stdout: JSON.stringify(e) };
}

function unreachable(e: NodeJS.ErrnoException, socket: string, command: string, version: string): CniError {
  const why = e.code ?? e.message;
  if (e.code === "EACCES") {
    return cniError(CNI_ERRORS.IO_FAILURE, `Cannot open the agent socket ${socket}: permission denied`, "the socket is only open to root; run the CNI plugin as root", version);
  }
  if (e.code === "ETIMEDOUT") {
    return cniError(CNI_ERRORS.TRY_AGAIN_LATER, `The lace agent did not answer ${command} in time on ${socket}`, "try again later", version);
  }
  // STATUS asks exactly this question: is the plugin able to serve ADD?
  const code = command === "STATUS" ? CNI_ERRORS.UNAVAILABLE : CNI_ERRORS.TRY_AGAIN_LATER;
  return cniError(code, `The lace agent is not reachable on ${socket} (${why})`, "start the agent on this node (lace agent --node <name>) or wait for it to come up", version);
}

function ask(socket: string, request: CniRequest, timeoutMs: number): Promise<AgentReply> {
  return new Promise((resolve, reject) => {
    const conn = connect(socket);
    let buf = "";
    const timer = setTimeout(() => {
      conn.destroy();
      reject(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" }));
    }, timeoutMs);
    conn.setEncoding("utf8");
    conn.on("connect", () => conn.write(JSON.stringify(request) + "\n"));
    conn.on("data", (d: string) => {
      buf += d;
    });
    conn.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    conn.on("end", () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf) as AgentReply);
      } catch {
        reject(Object.assign(new Error(`the agent closed the connection with an unreadable reply: ${JSON.stringify(buf.slice(0, 200))}`), { code: "EPROTO" }));
      }
    });
  });
}
