// A plugin that asks the core for its clock and its logger in setup, and shares what it saw.
import { definePlugin, type PluginLogger } from "../api.ts";
import { type Clock, Tokens } from "../tokens.ts";

export const Seen = Symbol.for("test-uses-core.Seen");

export default definePlugin({
  name: "test-uses-core",
  apiVersion: "^1.0.0",
  setup({ container }) {
    const clock = container.resolve<Clock>(Tokens.Clock);
    container.resolve<PluginLogger>(Tokens.Logger).info("set up", { at: clock.now() });
    container.register(Seen, { useValue: { at: clock.now() } });
  },
  exports: [Seen],
});
