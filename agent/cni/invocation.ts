/**
 * One CNI invocation answered in the agent: what the `lace-cni` executable
 * (agent/cni/shim/lace-cni.c) forwards — its CNI_* environment and stdin, as
 * the runtime gave them — checked against the spec, handed to the node
 * agent, and turned into the exit status and stdout the runtime reads.
 * The executable only prints this answer, so the whole CNI contract (error
 * codes 1/4/6/7/11/50/100+, result shapes for 0.4.0–1.1.0) lives here.
 *
 * @example
 * const { exitCode, stdout } = await answerInvocation({ CNI_COMMAND: "DEL", ... }, configText, (req) => agent.handle(req));
 */
import {
  type AgentReply, CNI_ERRORS, type CniError, type CniRequest, cniError, formatResult, parseInvocation, versionResult,
} from "./spec.ts";

/** What the executable prints and exits with. */
export interface InvocationAnswer {
  exitCode: number;
  /** A result, an error result, or nothing; ends with a newline when not empty. */
  stdout: string;
}

/** What serves a checked request: the node agent. */
export type CniHandler = (request: CniRequest) => Promise<AgentReply>;

/** Answers one invocation; never rejects (a failing handler is error 100). */
export async function answerInvocation(env: Record<string, string | undefined>, stdin: string, handler: CniHandler): Promise<InvocationAnswer> {
  const inv = parseInvocation(env, stdin);
  if (inv === "VERSION") return ok(JSON.stringify(versionResult(stdin)));
  if ("code" in inv) return fail(inv);
  const version = inv.config.cniVersion;
  let reply: AgentReply;
  try {
    reply = await handler(inv);
  } catch (e) {
    return fail(cniError(CNI_ERRORS.AGENT_FAILED, (e as Error).message, undefined, version));
  }
  if (!reply.ok) return fail(cniError(reply.code, reply.msg, reply.details, version));
  if (inv.command === "ADD") {
    if (!reply.result) return fail(cniError(CNI_ERRORS.AGENT_FAILED, "The agent answered ADD without a result", undefined, version));
    return ok(JSON.stringify(formatResult(reply.result, version)));
  }
  return { exitCode: 0, stdout: "" };
}

function ok(json: string): InvocationAnswer {
  return { exitCode: 0, stdout: json + "\n" };
}

function fail(e: CniError): InvocationAnswer {
  return { exitCode: 1, stdout: JSON.stringify(e) + "\n" };
}
