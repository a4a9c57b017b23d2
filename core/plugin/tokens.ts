/**
 * Injection tokens shared between the core and plugins. Every token is a
 * symbol, and every token lives here.
 *
 * @example
 * const store = container.resolve<Store>(Tokens.Store);
 */
export const Tokens = {
  /** `Store`: where resources live. */
  Store: Symbol.for("lace-cni.Store"),
  /** `Clock`: `{ now(): number }` in milliseconds; injected so tests control time. */
  Clock: Symbol.for("lace-cni.Clock"),
  /** `PluginLogger`: the root logger. */
  Logger: Symbol.for("lace-cni.Logger"),
  /** `NetworkTypeRegistry`: every loaded network type. */
  NetworkTypes: Symbol.for("lace-cni.NetworkTypes"),
  /** `RuleExtensions`: facts and operators contributed by plugins. */
  RuleExtensions: Symbol.for("lace-cni.RuleExtensions"),
  /** `ClusterView`: read-only cluster state for address resolution. */
  ClusterView: Symbol.for("lace-cni.ClusterView"),
  /** Node-local system access (netlink, netns); provided by the agent, never by core. */
  System: Symbol.for("lace-cni.System"),
} as const;

/** Time source. */
export interface Clock {
  now(): number;
}

/** The real clock. */
export const systemClock: Clock = { now: () => Date.now() };
