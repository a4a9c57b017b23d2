// Exports the token test-alpha exports.
import { definePlugin } from "../../mod.ts";
import { Greeter } from "./alpha.ts";

export default definePlugin({
  name: "acme-greeter",
  apiVersion: "^1.0.0",
  setup({ container }) {
    container.register(Greeter, { useValue: { greet: () => "hi" } });
  },
  exports: [Greeter],
});
