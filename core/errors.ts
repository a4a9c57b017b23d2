/**
 * lace-cni's coded errors. Every error the product raises on purpose has a
 * code from {@link ErrorCode}, a whole-sentence message that says what was
 * expected, and, where a plugin was involved, the plugin's name and hook.
 * Each code is documented in `docs/errors.md`; a test keeps the two in step.
 *
 * @example
 * throw laceError("SUBNET_EXHAUSTED", `Network "backend" has no free /24 block for node "node-3"`);
 */

/** Every error code, alphabetised. */
export const ERROR_CODES = [
  "ADDRESS_UNAVAILABLE",
  "INVALID_ARGUMENT",
  "INVALID_CONFIG",
  "INVALID_RESOURCE",
  "NO_BINDING_POLICY",
  "PLUGIN_API_UNSUPPORTED",
  "PLUGIN_DEPENDENCY_MISSING",
  "PLUGIN_DUPLICATE",
  "PLUGIN_DUPLICATE_DATAPLANE",
  "PLUGIN_DUPLICATE_EXPORT",
  "PLUGIN_DUPLICATE_NETWORK_TYPE",
  "PLUGIN_DUPLICATE_RULE_EXTENSION",
  "PLUGIN_HOOK_FAILED",
  "PLUGIN_INVALID",
  "PLUGIN_NOT_FOUND",
  "PLUGIN_UNSUPPORTED_CAPABILITY",
  "SUBNET_EXHAUSTED",
  "UNKNOWN_NETWORK",
  "UNKNOWN_NETWORK_TYPE",
] as const;
export type ErrorCode = typeof ERROR_CODES[number];

export class LaceError extends Error {
  readonly code: ErrorCode;
  /** The plugin involved, when there was one. */
  readonly plugin?: string;
  /** The plugin hook that failed, when there was one. */
  readonly hook?: string;

  constructor(code: ErrorCode, message: string, details: { plugin?: string; hook?: string; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "LaceError";
    this.code = code;
    this.plugin = details.plugin;
    this.hook = details.hook;
  }
}

/** Makes a LaceError; the message is a whole sentence without a final period. */
export function laceError(
  code: ErrorCode,
  message: string,
  details?: { plugin?: string; hook?: string; cause?: unknown },
): LaceError {
  return new LaceError(code, message, details);
}

/** True when `e` is a LaceError, optionally of the given code. */
export function isLaceError(e: unknown, code?: ErrorCode): e is LaceError {
  return e instanceof LaceError && (code === undefined || e.code === code);
}
