/**
 * What the node agent needs from its neighbours, as small interfaces: the
 * desired-state engine (the controller's DesiredStateBuilder, restricted
 * to this node) and the pod side of a dataplane. Fakes implement the same
 * interfaces and are checked by the compiler.
 *
 * @example
 * const states: NodeStateSource = new DesiredStateBuilder(...);
 * states.onChange((node, state) => node === "node-1" && dataplane.apply(state));
 */
import type { Dataplane, NodeDesiredState, Resource } from "../../core/mod.ts";
import type { PodAttachment } from "../../plugins/srv6/mod.ts";

/** The incremental desired-state engine (core/controller's DesiredStateBuilder). */
export interface NodeStateSource {
  upsert(resource: Resource): void | Promise<void>;
  remove(kind: string, name: string, namespace?: string): void | Promise<void>;
  stateFor(node: string): NodeDesiredState;
  onChange(listener: (node: string, state: NodeDesiredState) => void): unknown;
  /** Resolves once every event fed so far is reflected in `stateFor`. */
  settled?(): Promise<void>;
}

/** What CHECK found wrong with a pod's interface, or undefined when all is as attached. */
export type PodCheck = string | undefined;

/** A dataplane that also plugs pods in (the srv6 plugin's attach and detach). */
export interface PodDataplane extends Dataplane {
  /** Which network forwarding kinds it can program (from capabilities, cached). */
  attachPod(pod: PodAttachment): Promise<void>;
  /** A missing link or namespace is success. */
  detachPod(pod: { hostIfname: string; netns?: string }): Promise<void>;
  /** Verifies the host link and the pod side (interface, addresses). */
  checkPod(pod: PodAttachment): Promise<PodCheck>;
  /** Host-side names of every pod port this dataplane has on the node (for GC). */
  podPorts(): Promise<string[]>;
}
