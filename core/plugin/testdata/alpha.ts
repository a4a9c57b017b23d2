// A well-formed plugin using every kind of contribution; other fixtures build on it.
import { definePlugin, type PodDataplane } from "../../mod.ts";

/** What alpha shares with the core and with plugins loaded after it. */
export const Greeter = Symbol.for("test-alpha.Greeter");
/** Kept in alpha's own container only. */
export const Secret = Symbol.for("test-alpha.Secret");

export interface GreeterService {
  greet(who: string): string;
}

export default definePlugin({
  name: "test-alpha",
  apiVersion: "^1.0.0",
  networkTypes: [{
    type: "alpha",
    addressing: "global",
    forwarding: "bridged",
    validate(spec, report) {
      if (spec.ipv4Subnet === undefined) report("ipv4Subnet", "expected a subnet");
    },
    gateway: (_network, prefix) => prefix.firstHost,
    locate: () => undefined,
  }],
  ruleOperators: [{ name: "startsWith", evaluate: (f, v) => String(f).startsWith(String(v)) }],
  ruleFacts: [{ name: "alphaZone", appliesTo: ["binding"], compute: (facts) => `zone-${String(facts.node)}` }],
  dataplanes: [{
    feature: "alpha-dp",
    create: () => Promise.resolve({} as PodDataplane),
  }],
  setup({ container, options }) {
    const salutation = typeof options.salutation === "string" ? options.salutation : "Hello";
    container.register(Secret, { useValue: "s3cret" });
    container.register<GreeterService>(Greeter, { useValue: { greet: (who) => `${salutation}, ${who}` } });
  },
  exports: [Greeter],
});
