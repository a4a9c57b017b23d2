// Imports a module that does not exist: the plugin is broken, not missing.
// @ts-expect-error the module is missing on purpose
import { helper } from "./does_not_exist.ts";

export default { name: "acme-broken", apiVersion: "^1.0.0", helper };
