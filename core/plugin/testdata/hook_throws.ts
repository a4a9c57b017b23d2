// A network type whose hooks throw, as buggy third-party code does.
import { definePlugin } from "../../mod.ts";

export default definePlugin({
  name: "acme-buggy",
  apiVersion: "^1.0.0",
  networkTypes: [{
    type: "buggy",
    addressing: "global",
    forwarding: "bridged",
    validate(spec) {
      // Reads a field that is not there, as a TypeError would in real code.
      (spec.options as { vlan: { id: number } }).vlan.id;
    },
    gateway() {
      throw new Error("No gateway configured");
    },
    locate() {
      throw "a string, not an Error";
    },
  }],
  ruleOperators: [{
    name: "explodes",
    evaluate() {
      throw new RangeError("Value out of range");
    },
  }],
});
