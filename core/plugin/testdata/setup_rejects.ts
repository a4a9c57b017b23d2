// Its async setup rejects, after registering something in its container.
import { definePlugin } from "../../mod.ts";

export const HalfDone = Symbol.for("acme-async.Partial");

export default definePlugin({
  name: "acme-async",
  apiVersion: "^1.0.0",
  async setup({ container }) {
    container.register(HalfDone, { useValue: 1 });
    await Promise.resolve();
    throw new Error("Timed out waiting for the license server");
  },
  exports: [HalfDone],
});
