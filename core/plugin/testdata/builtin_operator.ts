// Tries to replace json-rules-engine's own "equal" operator.
import { definePlugin } from "../../mod.ts";

export default definePlugin({
  name: "acme-equal",
  apiVersion: "^1.0.0",
  ruleOperators: [{ name: "equal", evaluate: () => true }],
});
