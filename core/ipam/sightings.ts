/**
 * Sightings of things that look gone: a thing is declared gone only once it
 * was seen gone on two separate passes, at least `grace` ms after the
 * first, so a thing that is merely slow to appear (a pod whose API object
 * lags its sandbox) is kept. Seen alive, it starts over. Kept in memory on
 * purpose: losing the sightings in a restart only delays a collection, it
 * never hastens one.
 *
 * @example
 * const sightings = new GoneSightings(60_000);
 * sightings.gone("team-a/web-0", clock.now());  // false: first sighting
 * sightings.gone("team-a/web-0", clock.now() + 60_000);  // true: seen twice, a grace period apart
 */
export class GoneSightings {
  private readonly seen = new Map<string, { first: number; count: number }>();

  constructor(readonly grace: number) {}

  /** Records that `key` was seen gone at `now`; true once it is due for collection. */
  gone(key: string, now: number): boolean {
    const s = this.seen.get(key);
    if (!s) {
      this.seen.set(key, { first: now, count: 1 });
      return false;
    }
    s.count++;
    return s.count >= 2 && now - s.first >= this.grace;
  }

  /** `key` was seen alive (or was collected): it starts over. */
  forget(key: string): void {
    this.seen.delete(key);
  }

  /** Forgets every key not in `present`: things no longer recorded anywhere need no watching. */
  retain(present: ReadonlySet<string>): void {
    for (const key of this.seen.keys()) if (!present.has(key)) this.seen.delete(key);
  }
}
