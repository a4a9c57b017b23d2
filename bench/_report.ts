/**
 * Helpers shared by benchmarks: timing, percentiles and the closing
 * `target ...: measured vs goal — met|missed` lines.
 */

/** Nanosecond-resolution monotonic time in milliseconds. */
export function nowMs(): number {
  return performance.now();
}

/** The p-th percentile (0..100) of `samples`, which it sorts in place. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return NaN;
  samples.sort((a, b) => a - b);
  const i = Math.min(samples.length - 1, Math.max(0, Math.ceil((p / 100) * samples.length) - 1));
  return samples[i];
}

/** Prints a target line. `higherIsBetter` picks the comparison. */
export function target(what: string, measured: number, goal: number, unit: string, higherIsBetter: boolean): boolean {
  const met = higherIsBetter ? measured >= goal : measured <= goal;
  const fmt = (n: number) => (Number.isInteger(n) ? n.toLocaleString("en-US") : n.toLocaleString("en-US", { maximumSignificantDigits: 4 }));
  console.log(`target ${what}: ${fmt(measured)}${unit} vs ${fmt(goal)}${unit} — ${met ? "met" : "missed"}`);
  return met;
}

/** Heap in use after a full GC when `--expose-gc` is on, else as is, in MiB. */
export function heapMiB(): number {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) g();
  return process.memoryUsage().heapUsed / 2 ** 20;
}
