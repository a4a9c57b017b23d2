// Provides dataplane "alpha-dp", which test-alpha already provides.
import { definePlugin, type PodDataplane } from "../../mod.ts";

export default definePlugin({
  name: "acme-dp",
  apiVersion: "^1.0.0",
  dataplanes: [{ feature: "alpha-dp", create: () => Promise.resolve({} as PodDataplane) }],
});
