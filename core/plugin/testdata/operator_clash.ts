// Provides rule operator "startsWith", which test-alpha already provides.
import { definePlugin } from "../../mod.ts";

export default definePlugin({
  name: "acme-strings",
  apiVersion: "^1.0.0",
  ruleOperators: [{ name: "startsWith", evaluate: () => false }],
});
