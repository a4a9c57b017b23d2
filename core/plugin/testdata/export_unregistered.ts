// Declares an export its setup never registers.
import { definePlugin } from "../../mod.ts";

export default definePlugin({
  name: "acme-forgetful",
  apiVersion: "^1.0.0",
  setup() {},
  exports: [Symbol.for("acme-forgetful.Service")],
});
