/**
 * What the running kernel was built with, read from `/proc/config.gz`
 * (where the kernel exposes it). Used to say plainly which dataplane
 * backends can run here, and by tests to skip what the kernel cannot do.
 * Where the config is not readable, nothing is assumed missing: the
 * capability probes (capabilities.ts) are the final word.
 *
 * @example
 * kernelLacks("CONFIG_IPV6_SEG6_LWTUNNEL"); // true on a kernel without seg6
 */
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";

let config: Map<string, string> | null | undefined;

/** The kernel's build options (`CONFIG_X` → `y`/`m`/value), or null when not readable. */
export function kernelConfig(): Map<string, string> | null {
  if (config !== undefined) return config;
  try {
    const text = gunzipSync(readFileSync("/proc/config.gz")).toString("utf8");
    config = new Map();
    for (const line of text.split("\n")) {
      const m = /^(CONFIG_[A-Z0-9_]+)=(.*)$/.exec(line);
      if (m) config.set(m[1], m[2]);
    }
  } catch {
    config = null;
  }
  return config;
}

/** Whether the kernel config is readable and says `option` is not built (neither `y` nor `m`). */
export function kernelLacks(option: string): boolean {
  const c = kernelConfig();
  if (!c) return false;
  const v = c.get(option);
  return v !== "y" && v !== "m";
}

/** The one-line reason a kernel-seg6 test skips here, or undefined when the kernel has seg6 lwtunnel. */
export function noSeg6Reason(): string | undefined {
  return kernelLacks("CONFIG_IPV6_SEG6_LWTUNNEL") ? "kernel has no seg6 lwtunnel (CONFIG_IPV6_SEG6_LWTUNNEL is not set)" : undefined;
}
