// Its setup throws.
import { definePlugin } from "../../mod.ts";

export default definePlugin({
  name: "acme-vlan-broken",
  apiVersion: "^1.0.0",
  setup() {
    throw new Error("Cannot reach the VLAN controller at 10.0.0.9");
  },
});
