/**
 * Injection tokens shared between the core and plugins. Every token is a
 * symbol, every token lives here, and the loader registers each one: a
 * plugin resolves them from the container its `setup` and `create` get.
 *
 * @example
 * const clock = container.resolve<Clock>(Tokens.Clock);
 */
export const Tokens = {
  /** `Clock`: `{ now(): number }` in milliseconds; injected so tests control time. */
  Clock: Symbol.for("lace-cni.Clock"),
  /** `PluginLogger`: in a plugin's container, a logger whose lines carry the plugin's name; in the root, the root logger. */
  Logger: Symbol.for("lace-cni.Logger"),
  /** `NetworkTypeRegistry`: every loaded network type (root container, after loading). */
  NetworkTypes: Symbol.for("lace-cni.NetworkTypes"),
  /** `RuleExtensions`: facts and operators contributed by plugins (root container, after loading). */
  RuleExtensions: Symbol.for("lace-cni.RuleExtensions"),
} as const;

/** Time source. */
export interface Clock {
  now(): number;
}

/** The real clock. */
export const systemClock: Clock = { now: () => Date.now() };
