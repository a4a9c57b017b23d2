/**
 * What the node agent needs from its neighbours, as small interfaces: the
 * desired-state engine (the controller's DesiredStateBuilder, restricted
 * to this node) and a dataplane that plugs pods in (the core's
 * PodDataplane, which a dataplane plugin's `create` returns). Fakes implement the same
 * interfaces and are checked by the compiler.
 *
 * @example
 * const states: NodeStateSource = new DesiredStateBuilder(...);
 * states.onChange((node, state) => node === "node-1" && dataplane.apply(state));
 */
import type { NodeDesiredState, Resource } from "../../core/mod.ts";

/** The incremental desired-state engine (core/controller's DesiredStateBuilder). */
export interface NodeStateSource {
  upsert(resource: Resource): void | Promise<void>;
  remove(kind: string, name: string, namespace?: string): void | Promise<void>;
  stateFor(node: string): NodeDesiredState;
  onChange(listener: (node: string, state: NodeDesiredState) => void): unknown;
  /** Resolves once every event fed so far is reflected in `stateFor`. */
  settled?(): Promise<void>;
}

export type { PodAttachment, PodCheck, PodDataplane } from "../../core/mod.ts";
