/**
 * Group commit on one Allocation record, with compare-and-swap.
 *
 * Operations queue up; each flush runs every queued operation against the
 * cached record and its in-memory index, then writes the record once with
 * its resourceVersion. Only after that write succeeds does any operation of
 * the batch resolve, so every answer is durable; a `Conflict` (someone else
 * wrote first) drops the cache, reloads and re-runs the whole batch. A batch
 * that changed nothing confirms instead that the record is still at the
 * version its answers were computed from, so a stale cache never answers.
 *
 * Operations are synchronous functions of the draft: they either throw
 * before changing anything, or change the record and set `dirty`.
 *
 * @example
 * const c = new RecordCommitter(store, "backend.node-1", (rec) => indexOf(rec));
 * const address = await c.run((d) => { d.record!.spec!.blocks[0].addresses!["pod-a"] = "10.40.3.2"; d.dirty = true; return "10.40.3.2"; });
 */
import type { Allocation } from "../resources/types.ts";
import { isStoreError, type Store } from "../store/store.ts";

/** What an operation sees and changes. */
export interface Draft<S> {
  /** The record as stored plus the changes of earlier operations in the batch; undefined when absent. */
  record: Allocation | undefined;
  /** The index derived from `record`, kept in step by the operations. */
  state: S;
  /** Set by an operation that changed `record`. */
  dirty: boolean;
}

interface Queued<S> {
  op: (d: Draft<S>) => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  /** An early operation: told its answer before the write, and pinned to it should the batch run again. */
  early?: { answer: (v: unknown) => void; pin: (v: unknown) => (d: Draft<S>) => unknown; answered: boolean };
}

/** An operation's answer, and the same answer once it is durable. */
export interface EarlyAnswer<T> {
  /** Settles as soon as the operation ran against the cached record, before the write. */
  answer: Promise<T>;
  /** Settles once the batch that holds it is written (or rejects: the write failed, or the pinned answer could not be kept). */
  durable: Promise<T>;
}

export class RecordCommitter<S> {
  private cache: Draft<S> | undefined;
  private queue: Queued<S>[] = [];
  private flushing = false;
  /** Store writes made, for benchmarks and tests. */
  writes = 0;

  constructor(
    private readonly store: Store,
    /** The Allocation's name. */
    readonly name: string,
    private readonly build: (record: Allocation | undefined) => S,
    private readonly attempts = 200,
  ) {}

  /** Queues an operation; settles once its batch is durable (or confirmed current). */
  run<T>(op: (d: Draft<S>) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ op, resolve: resolve as (v: unknown) => void, reject });
      if (!this.flushing) {
        this.flushing = true;
        void this.flush();
      }
    });
  }

  /**
   * Queues an operation like `run`, but tells its answer as soon as the
   * operation ran against the cached record, while the write is still to
   * come: the caller overlaps its own work with the write and waits for
   * `durable` before it lets the answer out. Should the batch run again (a
   * `Conflict` reloads the record), the operation runs as `pin(answer)`, so
   * the answer given early stays the answer, or `durable` rejects.
   *
   * @example
   * const { answer, durable } = c.runEarly((d) => pick(d), (a) => (d) => take(d, a));
   * const a = await answer;          // no store round trip when the record is cached
   * await Promise.all([durable, plugIn(a)]);
   */
  runEarly<T>(op: (d: Draft<S>) => T, pin: (answer: T) => (d: Draft<S>) => T): EarlyAnswer<T> {
    let answer!: (v: unknown) => void;
    let refuse!: (e: unknown) => void;
    const early = new Promise<T>((res, rej) => ((answer = res as (v: unknown) => void), (refuse = rej)));
    const durable = new Promise<T>((resolve, reject) => {
      this.queue.push({
        op,
        resolve: resolve as (v: unknown) => void,
        reject: (e) => {
          refuse(e);
          reject(e);
        },
        early: { answer, pin: pin as (v: unknown) => (d: Draft<S>) => unknown, answered: false },
      });
      if (!this.flushing) {
        this.flushing = true;
        void this.flush();
      }
    });
    // A caller that took the answer and then failed elsewhere may never await `durable`.
    durable.catch(() => {});
    return { answer: early, durable };
  }

  /**
   * Runs `fn` on the cached draft, loading it when there is none, without
   * confirming it is current: for hints (which block looks free) that a
   * later `run` confirms. `fn` must not change the draft.
   */
  async peek<T>(fn: (d: Draft<S>) => T): Promise<T> {
    if (!this.cache) this.cache = await this.load();
    return fn(this.cache);
  }

  /** Forgets the cached record: the next batch reloads it. */
  invalidate(): void {
    this.cache = undefined;
  }

  private async load(): Promise<Draft<S>> {
    const record = await this.store.get<Allocation>("Allocation", this.name);
    return { record, state: this.build(record), dirty: false };
  }

  private async flush(): Promise<void> {
    // Requests made in the same turn (a burst awaiting the same promise) join the first batch.
    await Promise.resolve();
    try {
      while (this.queue.length) await this.commit(this.queue.splice(0));
    } finally {
      this.flushing = false;
    }
  }

  private async commit(batch: Queued<S>[]): Promise<void> {
    for (let attempt = 1;; attempt++) {
      let d: Draft<S>;
      try {
        d = this.cache ?? await this.load();
      } catch (e) {
        for (const q of batch) q.reject(e);
        return;
      }
      this.cache = d;
      d.dirty = false;
      // Parallel arrays rather than an outcome object per operation: bursts run thousands per batch.
      const values: unknown[] = new Array(batch.length);
      const failed: boolean[] = new Array(batch.length).fill(false);
      for (let i = 0; i < batch.length; i++) {
        try {
          values[i] = batch[i].op(d);
        } catch (error) {
          values[i] = error;
          failed[i] = true;
        }
        const early = batch[i].early;
        if (early && !failed[i] && !early.answered) {
          early.answered = true;
          early.answer(values[i]);
          batch[i].op = early.pin(values[i]);
        }
      }
      try {
        if (d.dirty) {
          const rec = d.record!;
          this.writes++;
          const saved = rec.metadata.resourceVersion
            ? await this.store.update<Allocation>(rec)
            : await this.store.create<Allocation>(rec);
          rec.metadata = saved.metadata;
          d.dirty = false;
        } else {
          const current = await this.store.get<Allocation>("Allocation", this.name);
          if (current?.metadata.resourceVersion !== d.record?.metadata.resourceVersion) {
            this.cache = { record: current, state: this.build(current), dirty: false };
            continue;
          }
        }
      } catch (e) {
        this.cache = undefined;
        // AlreadyExists: someone created it first; NotFound: it was deleted under us. Either way, reload.
        const retry = isStoreError(e, "Conflict") || isStoreError(e, "AlreadyExists") || isStoreError(e, "NotFound");
        if (!retry || attempt >= this.attempts) {
          for (const q of batch) q.reject(e);
          return;
        }
        // Requests that arrived meanwhile join the retried batch.
        batch.push(...this.queue.splice(0));
        await backoff(attempt);
        continue;
      }
      for (let i = 0; i < batch.length; i++) failed[i] ? batch[i].reject(values[i]) : batch[i].resolve(values[i]);
      return;
    }
  }
}

/**
 * Waits before retry `attempt` after a Conflict. The first retries go at
 * once (the winner has already written, so a reload usually wins); later
 * ones back off exponentially with jitter, up to 20 ms, to break a livelock.
 */
export function backoff(attempt: number): Promise<void> {
  if (attempt <= 2) return Promise.resolve();
  return new Promise((r) => setTimeout(r, Math.random() * Math.min(2 ** (attempt - 2), 20)));
}
