/**
 * A node's desired states sent to the apply worker as what changed since
 * the last one sent, so the worker's copy keeps the identity of what did
 * not change: its Services (planned once per object, services.ts) and the
 * state's other parts (compared by identity first, state_sameness.ts). A
 * message posted whole would arrive as all-new objects every time, and
 * every apply would plan all of a node's Services again.
 *
 * A top-level field identical to the last state's travels as its name; a
 * run of Services identical to a run of the last list travels as that
 * run's index range, so one changed Service among 10,000 makes a message
 * of three items.
 * Each message names the sequence number of the state it builds on; a
 * receiver that holds another refuses it, and the sender then sends the
 * next state whole.
 *
 * @example
 * const sender = new StateSender(), receiver = new StateReceiver();
 * const s2 = receiver.decode(sender.encode(s1)); // whole
 * receiver.decode(sender.encode({ ...s1, revision: 2 })).networks === s2.networks; // true
 */
import type { NodeDesiredState, ServiceForwarding } from "../../core/plugin/mod.ts";

/** How the message of a {@link StateBaseMismatch} starts (it crosses the thread as text). */
export const STATE_MISMATCH = "Cannot decode desired state";

/** A desired state as sent: fields that changed, names of those that did not, Services by index where unchanged. */
export interface StateDelta {
  seq: number;
  /** The state this one builds on; undefined: whole. */
  base?: number;
  fields: Partial<NodeDesiredState>;
  same: string[];
  /** The Services: an object, or `[from, to)`, a run of the base's list that is unchanged. */
  services?: (ServiceForwarding | [number, number])[];
}

export class StateSender {
  private last?: { seq: number; state: NodeDesiredState };
  private seq = 0;

  /** The delta of `state` against the last one encoded (whole after {@link reset}). */
  encode(state: NodeDesiredState): StateDelta {
    const seq = ++this.seq;
    const last = this.last;
    const fields: Record<string, unknown> = {};
    const same: string[] = [];
    for (const [k, v] of Object.entries(state)) {
      if (k === "services") continue;
      if (last && v !== undefined && typeof v === "object" && (last.state as unknown as Record<string, unknown>)[k] === v) same.push(k);
      else fields[k] = v;
    }
    let services: (ServiceForwarding | [number, number])[] | undefined;
    if (state.services) {
      // Both lists sorted by id (the builder's order): one walk beside the last list. An index is sent only
      // for the very same object; anything else (a list in another order too) travels as itself.
      const prev = last?.state.services ?? [];
      services = [];
      let run: [number, number] | undefined;
      let k = 0;
      for (const s of state.services) {
        while (k < prev.length && prev[k].id < s.id) k++;
        if (prev[k] === s) {
          if (run && run[1] === k) run[1]++;
          else services.push(run = [k, k + 1]);
          k++;
        } else {
          services.push(s);
          run = undefined;
          if (prev[k]?.id === s.id) k++;
        }
      }
    }
    this.last = { seq, state };
    return { seq, base: last?.seq, fields: fields as Partial<NodeDesiredState>, same, services };
  }

  /** Forgets the last state: the next one is sent whole (after the receiver refused one, or lost it). */
  reset(): void {
    this.last = undefined;
  }
}

export class StateReceiver {
  private last?: { seq: number; state: NodeDesiredState };

  /** The state `delta` stands for; throws when it builds on a state this receiver does not hold. */
  decode(delta: StateDelta): NodeDesiredState {
    const last = this.last;
    if (delta.base !== undefined && last?.seq !== delta.base) {
      this.last = undefined;
      throw new StateBaseMismatch(`${STATE_MISMATCH} #${delta.seq}: it builds on state #${delta.base}, and this receiver holds ${last ? `#${last.seq}` : "none"}`);
    }
    const out: Record<string, unknown> = { ...delta.fields };
    const prev = last?.state as unknown as Record<string, unknown> | undefined;
    for (const k of delta.same) out[k] = prev![k];
    if (delta.services) {
      const before = last?.state.services ?? [];
      const list: ServiceForwarding[] = [];
      for (const s of delta.services) {
        if (!Array.isArray(s)) {
          list.push(s);
          continue;
        }
        if (s[1] > before.length) throw new StateBaseMismatch(`${STATE_MISMATCH} #${delta.seq}: Services ${s[0]}…${s[1] - 1} are beyond the ${before.length} of state #${delta.base}`);
        for (let i = s[0]; i < s[1]; i++) list.push(before[i]);
      }
      out.services = list;
    }
    const state = out as unknown as NodeDesiredState;
    this.last = { seq: delta.seq, state };
    return state;
  }
}

/** A delta that does not fit the receiver's last state: the sender sends the next one whole. */
export class StateBaseMismatch extends Error {
  override name = "StateBaseMismatch";
}
