// Provides network type "alpha", which test-alpha already provides.
import { definePlugin } from "../../mod.ts";

export default definePlugin({
  name: "acme-alpha-clone",
  apiVersion: "^1.0.0",
  networkTypes: [{
    type: "alpha",
    addressing: "none",
    forwarding: "underlay",
    validate() {},
    gateway: () => undefined,
    locate: () => undefined,
  }],
});
