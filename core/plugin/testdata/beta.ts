// Depends on test-alpha and uses its export during setup.
import { definePlugin } from "../../mod.ts";
import { Greeter, type GreeterService } from "./alpha.ts";

export const Welcome = Symbol.for("test-beta.Welcome");

export const plugin = definePlugin({
  name: "test-beta",
  apiVersion: ">=1.0.0 <2",
  dependencies: ["test-alpha"],
  setup({ container }) {
    const greeter = container.resolve<GreeterService>(Greeter);
    container.register(Welcome, { useValue: greeter.greet("beta") });
  },
  exports: [Welcome],
});
