/**
 * Kubernetes Events for what the controller did or could not do: kind
 * `Event` in the store, `involvedObject` naming the resource. Recording is
 * best effort: an event that cannot be written is logged, never fatal.
 *
 * @example
 * const events = new EventRecorder(store);
 * await events.record(service, "Normal", "NetworkChanged", `Service moved from "a" to "b" (policy "p")`);
 */
import { type Clock, type Resource, type Store, systemClock } from "../../core/mod.ts";

export type EventType = "Normal" | "Warning";

/** A core/v1 Event as the controller writes it. */
export interface KubeEvent extends Resource {
  involvedObject: { apiVersion: string; kind: string; name: string; namespace?: string; uid?: string };
  reason: string;
  message: string;
  type: EventType;
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
  source: { component: string };
}

export class EventRecorder {
  private seq = 0;
  /** Events written, newest last (the last 100), for tests and status. */
  readonly recent: KubeEvent[] = [];

  constructor(
    private readonly store: Store,
    private readonly clock: Clock = systemClock,
    private readonly component = "lace-controller",
    private readonly onError: (e: unknown) => void = () => {},
  ) {}

  async record(obj: Resource, type: EventType, reason: string, message: string): Promise<void> {
    const now = new Date(this.clock.now()).toISOString();
    const ev: KubeEvent = {
      apiVersion: "v1",
      kind: "Event",
      metadata: {
        // Cluster-scoped objects' events go to "default", as kubectl expects.
        name: `${obj.metadata.name}.${this.clock.now().toString(16)}${(this.seq++).toString(16)}`,
        namespace: obj.metadata.namespace ?? "default",
      },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: obj.metadata.name,
        ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}),
        ...(obj.metadata.uid ? { uid: obj.metadata.uid } : {}),
      },
      reason,
      message,
      type,
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
      source: { component: this.component },
    };
    this.recent.push(ev);
    if (this.recent.length > 100) this.recent.shift();
    try {
      await this.store.create(ev);
    } catch (e) {
      this.onError(e);
    }
  }
}
